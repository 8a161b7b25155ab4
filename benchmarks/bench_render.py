"""Rendering speed: views per second for a 2k-point cloud and a 50k-face mesh at 224x224.

Goals (single process, this 2-core machine): >= 20 views/s for the cloud, >= 10 views/s for the
mesh. Baselines measured in the same run:

- a straightforward rasteriser written as a Python loop over triangles / points (numpy inside
  each triangle's bounding box), the obvious first implementation;
- Open3D's legacy offscreen Visualizer (EGL, no display), when it starts here: the GPU-style
  path the renderer deliberately does not use (not bit-deterministic, not fork-safe in
  DataLoader workers). Its figure includes reading the frame back to numpy.

Run: ``python benchmarks/bench_render.py [--repeats N] [--no-open3d]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def torus(n_major: int = 160, n_minor: int = 156, R: float = 0.7, r: float = 0.3):
    """A torus with 2 * n_major * n_minor faces (49,920 by default), axis +Y."""
    u = 2 * np.pi * np.arange(n_major) / n_major
    v = 2 * np.pi * np.arange(n_minor) / n_minor
    U, V = np.meshgrid(u, v, indexing="ij")
    x = (R + r * np.cos(V)) * np.cos(U)
    z = (R + r * np.cos(V)) * np.sin(U)
    y = r * np.sin(V)
    verts = np.stack([x, y, z], -1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(n_major), np.arange(n_minor), indexing="ij")
    a = i * n_minor + j
    b = ((i + 1) % n_major) * n_minor + j
    c = ((i + 1) % n_major) * n_minor + (j + 1) % n_minor
    d = i * n_minor + (j + 1) % n_minor
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    normals = np.stack([np.cos(V) * np.cos(U), np.sin(V), np.cos(V) * np.sin(U)], -1).reshape(-1, 3)
    return verts.astype(np.float32), faces.astype(np.int64), normals.astype(np.float32)


def torus_points(n: int, seed: int = 0, R: float = 0.7, r: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u = rng.uniform(0, 2 * np.pi, n)
    v = rng.uniform(0, 2 * np.pi, n)
    return np.stack([(R + r * np.cos(v)) * np.cos(u), r * np.sin(v), (R + r * np.cos(v)) * np.sin(u)], 1).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# baseline: the straightforward Python-loop rasteriser
# ---------------------------------------------------------------------------------------------


def naive_render_mesh(vertices, faces, camera):
    size = camera.size
    uv, z = camera._project64(vertices)
    zbuf = np.full((size, size), np.inf)
    img = np.zeros((size, size, 4), np.uint8)
    v = np.asarray(vertices, np.float64)
    light = np.array([-0.35, -0.45, -1.0]) / np.linalg.norm([-0.35, -0.45, -1.0])
    rot = camera.view_matrix()[:3, :3]
    for f in faces:
        p = uv[f]
        zz = z[f]
        if (zz <= 1e-3).any():
            continue
        x0, y0 = np.floor(p.min(0) - 0.5).astype(int)
        x1, y1 = np.ceil(p.max(0) - 0.5).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size - 1), min(y1, size - 1)
        if x0 > x1 or y0 > y1:
            continue
        area = (p[1, 0] - p[0, 0]) * (p[2, 1] - p[0, 1]) - (p[2, 0] - p[0, 0]) * (p[1, 1] - p[0, 1])
        if area == 0:
            continue
        X, Y = np.meshgrid(np.arange(x0, x1 + 1) + 0.5, np.arange(y0, y1 + 1) + 0.5)
        w0 = ((p[1, 0] - X) * (p[2, 1] - Y) - (p[2, 0] - X) * (p[1, 1] - Y)) / area
        w1 = ((p[2, 0] - X) * (p[0, 1] - Y) - (p[0, 0] - X) * (p[2, 1] - Y)) / area
        w2 = 1 - w0 - w1
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
        if not inside.any():
            continue
        depth = 1.0 / (w0 / zz[0] + w1 / zz[1] + w2 / zz[2])
        sub = zbuf[y0:y1 + 1, x0:x1 + 1]
        win = inside & (depth < sub)
        sub[win] = depth[win]
        n = np.cross(v[f[1]] - v[f[0]], v[f[2]] - v[f[0]]) @ rot.T
        n /= np.linalg.norm(n) + 1e-12
        shade = int(255 * (0.35 + 0.65 * abs(n @ light)))
        img[y0:y1 + 1, x0:x1 + 1][win] = (shade, shade, shade, 255)
    return img


def naive_render_points(points, camera, radius=1.5):
    size = camera.size
    uv, z = camera._project64(points)
    zbuf = np.full((size, size), np.inf)
    img = np.zeros((size, size, 4), np.uint8)
    zmin, zmax = z.min(), z.max()
    for (u, v), d in zip(uv, z):
        x0, x1 = max(int(u - radius), 0), min(int(u + radius) + 1, size)
        y0, y1 = max(int(v - radius), 0), min(int(v + radius) + 1, size)
        for py in range(y0, y1):
            for px in range(x0, x1):
                if (px + 0.5 - u) ** 2 + (py + 0.5 - v) ** 2 <= radius * radius and d < zbuf[py, px]:
                    zbuf[py, px] = d
                    s = int(255 * (1 - 0.55 * (d - zmin) / (zmax - zmin)))
                    img[py, px] = (s, s, s, 255)
    return img


# ---------------------------------------------------------------------------------------------
# baseline: Open3D legacy offscreen visualiser
# ---------------------------------------------------------------------------------------------


def open3d_views_per_s(vertices, faces, normals, points, cameras, repeats):
    import open3d as o3d

    vis = o3d.visualization.Visualizer()
    if not vis.create_window(visible=False, width=224, height=224):
        raise RuntimeError("create_window failed")
    try:
        res = {}
        mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices.astype(np.float64)),
                                         o3d.utility.Vector3iVector(faces.astype(np.int32)))
        mesh.vertex_normals = o3d.utility.Vector3dVector(normals.astype(np.float64))
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
        for name, geom in (("mesh", mesh), ("cloud", pcd)):
            vis.clear_geometries()
            vis.add_geometry(geom)
            ctr = vis.get_view_control()
            params = ctr.convert_to_pinhole_camera_parameters()
            k = 0
            t0 = None
            n = repeats + 2
            for i in range(n):
                if i == 2:
                    t0 = time.perf_counter()
                cam = cameras[i % len(cameras)]
                params.extrinsic = cam.view_matrix()
                ctr.convert_from_pinhole_camera_parameters(params, allow_arbitrary=True)
                vis.poll_events()
                vis.update_renderer()
                buf = np.asarray(vis.capture_screen_float_buffer(do_render=True))
                k += buf.shape[0] > 0
            res[name] = repeats / (time.perf_counter() - t0)
        return res
    finally:
        vis.destroy_window()


# ---------------------------------------------------------------------------------------------


def rate(fn, cameras, repeats):
    fn(cameras[0])  # warm-up (numba compile / cache load)
    t0 = time.perf_counter()
    for i in range(repeats):
        fn(cameras[i % len(cameras)])
    return repeats / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--no-open3d", action="store_true")
    args = ap.parse_args(argv)

    from crosspoint.pointcloud import Mesh
    from crosspoint.render import render_mesh, render_points, view_cameras

    verts, faces, normals = torus()
    mesh_flat = Mesh(verts, faces)
    mesh_smooth = Mesh(verts, faces, vertex_normals=normals)
    pts = torus_points(2048)
    cams = view_cameras(24, size=224, seed=0)
    cams137 = view_cameras(24, size=137, seed=0)
    print(f"mesh: torus, {len(faces):,} faces, {len(verts):,} vertices; cloud: {len(pts):,} points; 224x224")

    t0 = time.perf_counter()
    render_mesh(mesh_flat, cams[0])
    render_points(pts, cams[0])
    print(f"first call (numba compile or cache load): {time.perf_counter() - t0:.2f} s")

    rows = []
    r_cloud = rate(lambda c: render_points(pts, c), cams, args.repeats * 2)
    r_cloud_noaa = rate(lambda c: render_points(pts, c, antialias=False), cams, args.repeats * 2)
    r_mesh = rate(lambda c: render_mesh(mesh_flat, c), cams, args.repeats)
    r_mesh_s = rate(lambda c: render_mesh(mesh_smooth, c), cams, args.repeats)
    r_mesh_noaa = rate(lambda c: render_mesh(mesh_flat, c, antialias=False), cams, args.repeats)
    r_mesh_137 = rate(lambda c: render_mesh(mesh_smooth, c), cams137, args.repeats)
    rows += [
        ("cloud 2k, splats, 2x AA", r_cloud, 20.0),
        ("cloud 2k, splats, no AA", r_cloud_noaa, None),
        ("mesh 50k, flat, 2x AA", r_mesh, 10.0),
        ("mesh 50k, smooth, 2x AA", r_mesh_s, 10.0),
        ("mesh 50k, flat, no AA", r_mesh_noaa, None),
        ("mesh 50k, smooth, 2x AA, 137px", r_mesh_137, None),
    ]

    n_naive = 1
    t0 = time.perf_counter()
    naive_render_mesh(verts, faces, cams[0])
    b_mesh = n_naive / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    naive_render_points(pts, cams[0])
    b_cloud = 1 / (time.perf_counter() - t0)

    o3d_res = None
    if not args.no_open3d:
        try:
            o3d_res = open3d_views_per_s(verts, faces, normals, pts, cams, args.repeats)
        except Exception as e:  # noqa: BLE001 - a baseline that does not start is reported, not fatal
            print(f"open3d offscreen baseline unavailable: {e}")

    print()
    print(f"{'case':34s} {'views/s':>9s} {'goal':>6s}")
    for name, r, goal in rows:
        g = f">={goal:g}" if goal else ""
        ok = "" if goal is None else ("  met" if r >= goal else "  MISSED")
        print(f"{name:34s} {r:9.1f} {g:>6s}{ok}")
    print()
    print("baselines (same run):")
    print(f"  python-loop rasteriser, mesh 50k (no AA):  {b_mesh:8.2f} views/s -> ours (2x AA) is {r_mesh / b_mesh:7.1f}x, no AA {r_mesh_noaa / b_mesh:7.1f}x")
    print(f"  python-loop splatter, cloud 2k (no AA):    {b_cloud:8.2f} views/s -> ours (2x AA) is {r_cloud / b_cloud:7.1f}x, no AA {r_cloud_noaa / b_cloud:7.1f}x")
    if o3d_res:
        print(f"  open3d offscreen (EGL), mesh 50k:          {o3d_res['mesh']:8.1f} views/s -> ours (2x AA) is {r_mesh / o3d_res['mesh']:7.2f}x")
        print(f"  open3d offscreen (EGL), cloud 2k:          {o3d_res['cloud']:8.1f} views/s -> ours (2x AA) is {r_cloud / o3d_res['cloud']:7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
