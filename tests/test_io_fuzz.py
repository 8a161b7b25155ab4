"""Damaged files of every format, made by seeded mutation (truncation, flipped bytes, a header
number replaced by a huge, negative or non-numeric one, a cut-out span): each one either reads or
raises :class:`~crosspoint.io.ReadError`, never another exception. The hand-written catalogue of
broken files is in tests/test_io.py; this covers the damage nobody thought to write by hand."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from crosspoint.io import PointCloud, ReadError, read_point_cloud, write_point_cloud
from damage_support import Tally

MUTATIONS_PER_FILE = 24


def _seed_files(tmp_path) -> dict:
    """One small valid file per format (and per variant: ascii / binary PLY, a mesh PLY)."""
    rng = np.random.default_rng(0)
    n = 300
    cloud = PointCloud(points=rng.normal(size=(n, 3)).astype(np.float32),
                       normals=rng.normal(size=(n, 3)).astype(np.float32),
                       colors=rng.uniform(size=(n, 3)).astype(np.float32), labels=rng.integers(0, 4, n))
    out = {}
    for ext in (".ply", ".pcd", ".npz"):
        f = tmp_path / f"seed{ext}"
        write_point_cloud(f, cloud)
        out[f"written{ext}"] = (ext, f.read_bytes())
    out["ascii mesh.ply"] = (".ply", b"ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\n"
                             b"property float z\nelement face 2\nproperty list uchar int vertex_indices\nend_header\n"
                             b"0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 2 3\n")
    out["ascii.pcd"] = (".pcd", b"# .PCD v0.7\nVERSION 0.7\nFIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F F\n"
                        b"COUNT 1 1 1 1\nWIDTH 3\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 3\nDATA ascii\n"
                        b"0 0 0 4.2108e+06\n1 0 0 4.2108e+06\n0 1 0 4.2108e+06\n")
    out["modelnet.txt"] = (".txt", "".join(f"{a:.6f},{b:.6f},{c:.6f},0,1,0\n" for a, b, c in cloud.points[:50]).encode())
    out["mesh.off"] = (".off", b"OFF\n4 2 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 2 3\n")
    out["mesh.obj"] = (".obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nvn 0 0 1\nf 1 2 3\nf 1 3 4\n")
    np.save(tmp_path / "a.npy", cloud.points)
    out["a.npy"] = (".npy", (tmp_path / "a.npy").read_bytes())
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "s.h5", "w") as h:
        h["data"] = rng.normal(size=(2, 64, 3)).astype("f4")
        h["label"] = np.arange(2)
    out["modelnet.h5"] = (".h5", (tmp_path / "s.h5").read_bytes())
    trimesh = pytest.importorskip("trimesh")
    mesh = trimesh.creation.icosphere(1)
    for ext in (".stl", ".glb"):
        out[f"sphere{ext}"] = (ext, mesh.export(file_type=ext[1:]))
    laspy = pytest.importorskip("laspy")
    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales = [0.001] * 3
    las = laspy.LasData(header)
    las.x, las.y, las.z = cloud.points.T.astype(float)
    las.write(str(tmp_path / "a.las"))
    out["a.las"] = (".las", (tmp_path / "a.las").read_bytes())
    return out


def _mutate(data: bytes, r: random.Random) -> "tuple[str, bytes]":
    d = bytearray(data)
    kind = r.choice(["truncate", "flip", "flip header", "header number", "cut"])
    if kind == "truncate":
        return kind, bytes(d[: r.randrange(len(d))])
    if kind in ("flip", "flip header"):
        span = len(d) if kind == "flip" else min(len(d), 400)
        for _ in range(r.randint(1, 8)):
            d[r.randrange(span)] = r.randrange(256)
        return kind, bytes(d)
    if kind == "header number":
        digits = [i for i, c in enumerate(d[:1500]) if 48 <= c <= 57]
        if digits:
            i = r.choice(digits)
            d[i:i + 1] = r.choice([b"9999999999", b"-1", b"0", b"1e30", b"nan", b"4294967295"])
        return kind, bytes(d)
    a, b = sorted((r.randrange(len(d)), r.randrange(len(d))))
    return kind, bytes(d[:a] + d[b:])


def _read_strict(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy overflow etc. must not leak either
        read_point_cloud(path, max_points=100_000)


def test_damaged_files_read_or_raise_read_error(tmp_path):
    seeds = _seed_files(tmp_path)
    r = random.Random(20261203)
    tally = Tally(_read_strict, ReadError)
    for name, (ext, data) in seeds.items():
        read_point_cloud(tmp_path / f"seed{ext}" if name.startswith("written") else _write(tmp_path, name, ext, data))
        for i in range(MUTATIONS_PER_FILE):
            kind, damaged = _mutate(data, r)
            path = _write(tmp_path, f"{name}-{i}", ext, damaged)
            tally.add(path, f"{name} #{i} ({kind})")
    # the mutations are not all harmless: most of them must have been caught
    tally.check(min_refused=len(seeds) * MUTATIONS_PER_FILE // 3)


def _write(tmp_path, name, ext, data):
    path = tmp_path / (name.replace(" ", "_").replace(".", "_") + ext)
    path.write_bytes(data)
    return path
