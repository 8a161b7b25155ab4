"""Reading speed of ``crosspoint.io.read_point_cloud`` against Open3D's own readers, same files, same run.

Files (generated into a temporary folder):

- a 1M-point binary little-endian PLY with normals and uchar colours,
- a 1M-point ascii ``.xyz`` (``%.6f``, 3 columns),
- a 1M-point ``binary_compressed`` PCD (LZF) with colours, written by Open3D,
- a ~200k-face OFF mesh (read only; Open3D's ``read_triangle_mesh`` as the baseline).

Goal: the 1M-point binary PLY well under a second (the explorer's open-to-first-frame budget for
1M points is 2 s). Prints the best of ``--repeats`` runs and the ratio ours / Open3D (< 1 means
faster). The first crosspoint PCD read of a fresh install includes numba compiling the LZF kernel
(cached afterwards); ``--repeats`` >= 2 hides that.

Run: ``python benchmarks/bench_io.py [--points N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _grid_mesh(n_side: int):
    u, v = np.meshgrid(np.linspace(0, 1, n_side), np.linspace(0, 1, n_side), indexing="ij")
    verts = np.stack([u, v, 0.1 * np.sin(6 * u) * np.cos(6 * v)], -1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(n_side - 1), np.arange(n_side - 1), indexing="ij")
    a = (i * n_side + j).ravel()
    b, c, d = a + n_side, a + n_side + 1, a + 1
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return verts, faces


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    import open3d as o3d

    from crosspoint.io import read_point_cloud, write_point_cloud
    from crosspoint.pointcloud import PointCloud

    n = args.points
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(n, 3)).astype(np.float32)
    nrm = pts / np.linalg.norm(pts, axis=1, keepdims=True)
    cols = rng.random((n, 3)).astype(np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ply = write_point_cloud(tmp / "big.ply", PointCloud(pts, normals=nrm, colors=cols))
        xyz = tmp / "big.xyz"
        np.savetxt(xyz, pts, fmt="%.6f")
        pcd = tmp / "big_compressed.pcd"
        o = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts.astype(np.float64)))
        o.colors = o3d.utility.Vector3dVector(cols.astype(np.float64))
        o3d.io.write_point_cloud(str(pcd), o, compressed=True)
        assert pcd.read_bytes()[:400].find(b"DATA binary_compressed") >= 0
        off = tmp / "mesh.off"
        verts, faces = _grid_mesh(317)  # 199,712 triangles
        with open(off, "w") as fh:
            fh.write(f"OFF\n{len(verts)} {len(faces)} 0\n")
            np.savetxt(fh, verts, fmt="%.6f")
            np.savetxt(fh, np.hstack([np.full((len(faces), 1), 3), faces]), fmt="%d")

        read_point_cloud(pcd)  # warm up (numba LZF kernel compile / cache load, imports)
        cases = [
            (f"binary PLY, {n:,} pts (xyz+normals+rgb)", ply,
             lambda: read_point_cloud(ply), lambda: o3d.io.read_point_cloud(str(ply))),
            (f"ascii XYZ, {n:,} pts", xyz,
             lambda: read_point_cloud(xyz), lambda: o3d.io.read_point_cloud(str(xyz))),
            (f"binary_compressed PCD, {n:,} pts (xyz+rgb)", pcd,
             lambda: read_point_cloud(pcd), lambda: o3d.io.read_point_cloud(str(pcd))),
            (f"OFF mesh, {len(faces):,} faces (+10k samples)", off,
             lambda: read_point_cloud(off), lambda: o3d.io.read_triangle_mesh(str(off))),
        ]
        for name, path, ours, theirs in cases:
            c = ours()
            ref = theirs()
            ref_n = len(ref.points) if hasattr(ref, "points") else len(ref.vertices)
            t_ours = _best(ours, args.repeats)
            t_ref = _best(theirs, args.repeats)
            rows.append((name, path.stat().st_size / 1e6, t_ours, t_ref, c.n_points, ref_n))

    print(f"{'file':48s} {'MB':>7s} {'crosspoint s':>13s} {'open3d s':>9s} {'ratio':>6s}")
    for name, mb, a, b, n_ours, n_ref in rows:
        print(f"{name:48s} {mb:7.1f} {a:13.3f} {b:9.3f} {a / b:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
