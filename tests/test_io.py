"""crosspoint.io: every shared real file, generated files in every format, corrupt input, round trips."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA  # the folder the shared_data fixture serves

from crosspoint import io
from crosspoint.io import Mesh, PointCloud, ReadError, read_mesh, read_point_cloud, sniff_format, write_point_cloud

_SHARED_FILES = sorted(
    str(p.relative_to(SHARED_DATA))
    for p in SHARED_DATA.rglob("*")
    if p.is_file() and p.suffix.lower() in io.SUPPORTED_EXTENSIONS
) if SHARED_DATA.is_dir() else []


def _pcd_header_points(path: Path) -> int:
    with open(path, "rb") as fh:
        for line in fh:
            if line.startswith(b"POINTS"):
                return int(line.split()[1])
    raise AssertionError("no POINTS line")


# -- the shared real files -------------------------------------------------------------------


@pytest.mark.parametrize("rel", _SHARED_FILES)
def test_shared_file_reads(shared_data, rel):
    path = shared_data / rel
    cloud = read_point_cloud(path)
    assert isinstance(cloud, PointCloud)
    assert cloud.points.dtype == np.float32 and cloud.points.ndim == 2 and cloud.points.shape[1] == 3
    assert cloud.n_points > 0 and np.isfinite(cloud.points).all()
    assert cloud.path == path
    folder = Path(rel).parts[0]
    if cloud.normals is not None:
        assert cloud.normals.shape == cloud.points.shape and np.isfinite(cloud.normals).all()
    if cloud.colors is not None:
        assert cloud.colors.min() >= 0 and cloud.colors.max() <= 1
    if folder in ("modelnet40_off", "obj", "ply"):
        assert cloud.mesh is not None and cloud.mesh.n_faces > 0
        assert cloud.n_points == io.DEFAULT_MESH_SAMPLES
        assert cloud.mesh.faces.max() < cloud.mesh.n_vertices
        lo, hi = cloud.mesh.vertices.min(0), cloud.mesh.vertices.max(0)
        assert (cloud.points >= lo - 1e-3 * (hi - lo).max()).all() and (cloud.points <= hi + 1e-3 * (hi - lo).max()).all()
        assert np.allclose(np.linalg.norm(cloud.normals, axis=1), 1, atol=1e-3)
    if folder == "pcd":
        expected = _pcd_header_points(path)
        dropped = sum(int(w.split()[1].replace(",", "")) for w in cloud.warnings if w.startswith("dropped"))
        assert cloud.n_points + dropped == expected
        assert cloud.source_format == "pcd"
    if rel.endswith("bunny.pcd") or rel.endswith("bun0.pcd"):
        assert cloud.n_points == 397
    if rel.endswith("bun0.pcd"):
        assert cloud.normals is not None
    if rel.startswith("pcd/table_scene"):
        assert cloud.colors is not None and cloud.meta["organized"] == (480, 640)
        assert any("non-finite" in w for w in cloud.warnings)
    if folder == "modelnet40_normal_resampled":
        assert cloud.n_points == 10_000 and cloud.normals is not None
        assert np.allclose(np.linalg.norm(cloud.normals, axis=1), 1, atol=0.02)
    if folder == "shapenetpart_cap":
        assert cloud.labels is not None and set(np.unique(cloud.labels)) <= {6, 7}
        assert cloud.normals is not None and cloud.class_label is not None


def test_shared_pcd_matches_open3d(shared_data):
    o3d = pytest.importorskip("open3d")
    for path in sorted((shared_data / "pcd").glob("*.pcd")):
        ours = read_point_cloud(path)
        ref = o3d.io.read_point_cloud(str(path), remove_nan_points=True)
        ref_pts = np.asarray(ref.points, np.float32)
        assert ref_pts.shape == ours.points.shape, path.name
        assert np.allclose(ref_pts, ours.points), path.name
        if ref.has_colors():
            assert np.allclose(np.asarray(ref.colors), ours.colors, atol=1e-6), path.name


def test_modelnet_off_quirk_header(shared_data):
    path = shared_data / "modelnet40_off" / "bathtub_0001.off"
    assert path.read_bytes().startswith(b"OFF3514 3546 0")
    mesh = read_mesh(path)
    assert isinstance(mesh, Mesh) and mesh.n_vertices == 3514 and mesh.n_faces == 3546


def test_mesh_sampling_is_deterministic_and_limited(shared_data):
    path = shared_data / "ply" / "ant.ply"
    a, b = read_point_cloud(path), read_point_cloud(path)
    assert np.array_equal(a.points, b.points)
    c = read_point_cloud(path, max_points=500)
    assert c.n_points == 500 and c.mesh is not None
    d = read_point_cloud(path, mesh_samples=2000)
    assert d.n_points == 2000
    assert not np.array_equal(read_point_cloud(path, seed=1).points, a.points)


def test_obj_with_texture_reference(shared_data):
    cloud = read_point_cloud(shared_data / "obj" / "spot.obj")
    assert cloud.mesh.n_faces == 5856 and cloud.source_format == "obj"


# -- text ------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_xyz_variants(tmp_path):
    pts = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    lines = "\n".join(" ".join(f"{v:.6f}" for v in p) for p in pts)
    c = read_point_cloud(_write(tmp_path / "a.xyz", lines + "\n\n\n"))
    assert np.allclose(c.points, pts, atol=1e-5) and c.normals is None and c.colors is None
    # comma separated, header line, CRLF, tabs
    csv = "x,y,z\r\n" + "\r\n".join(",".join(f"{v:.6f}" for v in p) for p in pts) + "\r\n"
    c = read_point_cloud(_write(tmp_path / "a.csv", csv))
    assert np.allclose(c.points, pts, atol=1e-5) and c.meta["header_lines"] == 1
    tabs = "\n".join("\t".join(f"{v:.6f}" for v in p) for p in pts)
    assert read_point_cloud(_write(tmp_path / "t.txt", tabs)).n_points == 20


def test_text_six_columns_normals_or_colours(tmp_path):
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(30, 3))
    nrm = rng.normal(size=(30, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    rgb = rng.integers(0, 256, size=(30, 3))
    fmt = lambda a: "\n".join(" ".join(f"{v:.6f}" for v in r) for r in a)  # noqa: E731
    c = read_point_cloud(_write(tmp_path / "n.txt", fmt(np.hstack([pts, nrm]))))
    assert c.normals is not None and c.colors is None
    c = read_point_cloud(_write(tmp_path / "c.txt", fmt(np.hstack([pts, rgb]))))
    assert c.colors is not None and np.allclose(c.colors, rgb / 255, atol=1e-6)
    c = read_point_cloud(_write(tmp_path / "c01.txt", fmt(np.hstack([pts, rgb / 255]))))
    assert np.allclose(c.colors, rgb / 255, atol=1e-5)
    # the extension decides over the heuristic
    assert read_point_cloud(_write(tmp_path / "n.xyzrgb", fmt(np.hstack([pts, nrm * 0 + 0.5])))).colors is not None
    assert read_point_cloud(_write(tmp_path / "c.xyzn", fmt(np.hstack([pts, rgb / 255])))).normals is not None


def test_text_label_columns(tmp_path):
    rng = np.random.default_rng(2)
    pts = rng.normal(size=(25, 3))
    nrm = rng.normal(size=(25, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    lab = rng.integers(0, 4, size=(25, 1))
    fmt = lambda a: "\n".join(" ".join(f"{v:.6f}" for v in r) for r in a)  # noqa: E731
    c = read_point_cloud(_write(tmp_path / "part.txt", fmt(np.hstack([pts, nrm, lab]))))  # ShapeNetPart
    assert c.normals is not None and np.array_equal(c.labels, lab[:, 0])
    c = read_point_cloud(_write(tmp_path / "l.txt", fmt(np.hstack([pts, lab]))))
    assert np.array_equal(c.labels, lab[:, 0])
    c = read_point_cloud(_write(tmp_path / "i.txt", fmt(np.hstack([pts, rng.random((25, 1))]))))
    assert c.labels is None and c.meta["ignored_columns"] == [4]
    # Leica PTS: a count line, then x y z intensity r g b
    rgb = rng.integers(0, 256, size=(25, 3))
    body = "25\n" + fmt(np.hstack([pts, rng.integers(-2000, 2000, (25, 1)), rgb]))
    c = read_point_cloud(_write(tmp_path / "s.pts", body))
    assert np.allclose(c.colors, rgb / 255, atol=1e-6) and c.labels is None


def test_text_large_is_consistent(tmp_path):
    pts = np.random.default_rng(3).random((20_000, 3)).astype(np.float32)
    np.savetxt(tmp_path / "big.xyz", pts, fmt="%.7f")
    c = read_point_cloud(tmp_path / "big.xyz")
    assert np.allclose(c.points, pts, atol=1e-6)


# -- PLY -------------------------------------------------------------------------------------


def _plyfile_vertices(n=50, seed=0):
    rng = np.random.default_rng(seed)
    v = np.empty(n, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("nx", "f4"), ("ny", "f4"), ("nz", "f4"),
                           ("red", "u1"), ("green", "u1"), ("blue", "u1"), ("scalar_label", "f4")])
    for k in ("x", "y", "z", "nx", "ny", "nz"):
        v[k] = rng.normal(size=n)
    for k in ("red", "green", "blue"):
        v[k] = rng.integers(0, 256, n)
    v["scalar_label"] = rng.integers(0, 5, n)
    return v


@pytest.mark.parametrize("text,byte_order", [(True, "="), (False, "<"), (False, ">")])
def test_ply_points_all_encodings(tmp_path, text, byte_order):
    plyfile = pytest.importorskip("plyfile")
    v = _plyfile_vertices()
    path = tmp_path / "p.ply"
    plyfile.PlyData([plyfile.PlyElement.describe(v, "vertex")], text=text, byte_order=byte_order).write(str(path))
    c = read_point_cloud(path)
    assert c.mesh is None and c.n_points == 50
    assert np.allclose(c.points, np.stack([v["x"], v["y"], v["z"]], 1))
    assert np.allclose(c.normals, np.stack([v["nx"], v["ny"], v["nz"]], 1))
    assert np.allclose(c.colors * 255, np.stack([v["red"], v["green"], v["blue"]], 1), atol=1e-3)
    assert np.array_equal(c.labels, v["scalar_label"].astype(int))


@pytest.mark.parametrize("text", [True, False])
@pytest.mark.parametrize("mixed", [False, True])
def test_ply_mesh_polygons(tmp_path, text, mixed):
    plyfile = pytest.importorskip("plyfile")
    verts = np.array([(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1)], dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    if mixed:
        faces = [([0, 1, 2, 3], 1), ([0, 1, 4], 2)]
    else:
        faces = [([0, 1, 2, 3], 1), ([0, 1, 4, 3], 2)]
    f = np.empty(len(faces), dtype=[("vertex_indices", "O"), ("label", "i4")])
    for i, (idx, lab) in enumerate(faces):
        f[i] = (np.array(idx, np.int32), lab)
    path = tmp_path / "m.ply"
    plyfile.PlyData([plyfile.PlyElement.describe(verts, "vertex"), plyfile.PlyElement.describe(f, "face")],
                    text=text).write(str(path))
    c = read_point_cloud(path, mesh_samples=400)
    n_tri = 2 + (1 if mixed else 2)
    assert c.mesh.n_faces == n_tri and c.n_points == 400
    assert set(np.unique(c.labels)) <= {1, 2}
    assert read_mesh(path).n_faces == n_tri


def test_ply_face_index_out_of_range(tmp_path):
    path = tmp_path / "bad.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
                    "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n")
    with pytest.raises(ReadError, match="vertex 7"):
        read_point_cloud(path)


# -- PCD -------------------------------------------------------------------------------------


def _pcd_header(fields, sizes, types, n, data, width=None, height=1):
    width = n if width is None else width
    return (f"# .PCD v0.7\nVERSION 0.7\nFIELDS {' '.join(fields)}\nSIZE {' '.join(map(str, sizes))}\n"
            f"TYPE {' '.join(types)}\nCOUNT {' '.join('1' for _ in fields)}\nWIDTH {width}\nHEIGHT {height}\n"
            f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {data}\n").encode()


def test_pcd_ascii_packed_rgb_and_label(tmp_path):
    rgb = [0xFF0000, 0x00FF00, 0x0000FF]
    body = "".join(f"{i} {i + 1} {i + 2} {c} {i}\n" for i, c in enumerate(rgb))
    path = tmp_path / "a.pcd"
    path.write_bytes(_pcd_header(["x", "y", "z", "rgb", "label"], [4, 4, 4, 4, 4], ["F", "F", "F", "U", "U"], 3, "ascii")
                     + body.encode())
    c = read_point_cloud(path)
    assert np.allclose(c.colors, np.eye(3)) and np.array_equal(c.labels, [0, 1, 2])


def test_pcd_binary_compressed_and_organized(tmp_path):
    from crosspoint.io.lzf import compress

    n = 6
    x = np.arange(n, dtype="<f4")
    x[2] = np.nan
    cols = [x, x + 1, x + 2, np.arange(n, dtype="<u4")]
    soa = b"".join(c.tobytes() for c in cols)
    comp = compress(soa)
    path = tmp_path / "c.pcd"
    path.write_bytes(_pcd_header(["x", "y", "z", "label"], [4] * 4, ["F", "F", "F", "U"], n, "binary_compressed",
                                 width=3, height=2) + struct.pack("<II", len(comp), len(soa)) + comp)
    c = read_point_cloud(path)
    assert c.n_points == 5 and c.meta["organized"] == (2, 3)
    assert np.array_equal(c.labels, [0, 1, 3, 4, 5])
    assert c.warnings == ["dropped 1 non-finite points"]


def test_lzf_roundtrip_with_back_references():
    from crosspoint.io.lzf import decompress

    # hand-made stream: literal "abc", then a back reference of length 6 at distance 3 -> "abcabcabc"
    src = bytes([2]) + b"abc" + bytes([(4 << 5) | 0, 2])
    assert decompress(src, 9).tobytes() == b"abcabcabc"
    with pytest.raises(ValueError):
        decompress(src[:-1], 9)
    with pytest.raises(ValueError):
        decompress(src, 8)


# -- OFF -------------------------------------------------------------------------------------


def test_off_variants(tmp_path):
    body = "# a comment\nOFF\n5 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n0 0 1\n4 0 1 2 3\n3 0 1 4 255 0 0\n"
    mesh = read_mesh(_write(tmp_path / "a.off", body))
    assert mesh.n_faces == 3 and mesh.n_vertices == 5
    quirk = "OFF5 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n0 0 1\n4 0 1 2 3\n3 0 1 4\n"
    assert read_mesh(_write(tmp_path / "b.off", quirk)).n_faces == 3
    coff = "COFF\n3 1 0\n0 0 0 255 0 0 255\n1 0 0 0 255 0 255\n0 1 0 0 0 255 255\n3 0 1 2\n"
    c = read_point_cloud(_write(tmp_path / "c.off", coff), mesh_samples=10)
    assert c.mesh.vertex_colors is not None and c.colors is not None
    pts_only = "OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n"
    c = read_point_cloud(_write(tmp_path / "p.off", pts_only))
    assert c.mesh is None and c.n_points == 3


# -- trimesh formats -------------------------------------------------------------------------


def test_stl_glb_gltf_obj(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    box = trimesh.creation.box()
    box.export(tmp_path / "b.stl")
    box.export(tmp_path / "a.stl", file_type="stl_ascii")
    for name in ("b.stl", "a.stl"):
        c = read_point_cloud(tmp_path / name, mesh_samples=100)
        assert c.mesh.n_faces == 12 and c.source_format == "stl"
    moved = trimesh.creation.icosphere(subdivisions=1)
    moved.apply_translation([5, 0, 0])
    scene = trimesh.Scene([box, moved])
    scene.export(tmp_path / "s.glb")
    c = read_point_cloud(tmp_path / "s.glb", mesh_samples=200)
    assert c.mesh.n_faces == 12 + len(moved.faces) and c.points[:, 0].max() > 4
    scene.export(tmp_path / "s.gltf")
    assert read_point_cloud(tmp_path / "s.gltf").mesh.n_faces == 12 + len(moved.faces)
    obj = "mtllib missing.mtl\nusemtl stuff\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1 2 3\n"
    c = read_point_cloud(_write(tmp_path / "t.obj", obj), mesh_samples=10)
    assert c.mesh.n_faces == 1
    c = read_point_cloud(_write(tmp_path / "pts.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n"))
    assert c.mesh is None and c.n_points == 3


# -- NumPy / HDF5 / LAS ----------------------------------------------------------------------


def test_npy_and_npz(tmp_path):
    rng = np.random.default_rng(4)
    pts = rng.normal(size=(40, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", pts)
    assert np.array_equal(read_point_cloud(tmp_path / "a.npy").points, pts)
    nrm = pts / np.linalg.norm(pts, axis=1, keepdims=True)
    np.save(tmp_path / "n.npy", np.hstack([pts, nrm]))
    assert read_point_cloud(tmp_path / "n.npy").normals is not None
    batch = rng.normal(size=(3, 10, 3)).astype(np.float32)
    np.save(tmp_path / "b.npy", batch)
    c = read_point_cloud(str(tmp_path / "b.npy") + "#2")
    assert np.array_equal(c.points, batch[2]) and c.meta["rows"] == 3 and c.meta["index"] == 2
    np.savez(tmp_path / "k.npz", xyz=pts, rgb=rng.integers(0, 256, (40, 3)).astype(np.uint8),
             seg=rng.integers(0, 3, 40), class_label=np.array(7))
    c = read_point_cloud(tmp_path / "k.npz")
    assert c.colors is not None and c.labels.shape == (40,) and c.class_label == 7


def _h5(path, **arrays):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return path


def test_hdf5_modelnet_and_shapenetpart(tmp_path):
    rng = np.random.default_rng(5)
    data = rng.normal(size=(4, 16, 3)).astype(np.float32)
    path = _h5(tmp_path / "ply_data_test0.h5", data=data, label=np.array([[0], [2], [1], [2]], np.uint8))
    (tmp_path / "shape_names.txt").write_text("airplane\nbathtub\nbed\n")
    c = read_point_cloud(path)
    assert c.meta["rows"] == 4 and c.meta["index"] == 0 and np.array_equal(c.points, data[0])
    c = read_point_cloud(f"{path}#1")
    assert c.class_label == 2 and c.category == "bed" and np.array_equal(c.points, data[1])
    with pytest.raises(ReadError, match="row -1 is negative"):  # rows count from 0, never from the end
        read_point_cloud(path, index=-1)
    assert "row 1 of 4" in read_point_cloud(path, index=1).summary()
    pid = rng.integers(0, 50, size=(4, 16)).astype(np.uint8)
    sp = _h5(tmp_path / "part.h5", data=data, label=np.array([[1], [1], [3], [3]]), pid=pid)
    c = read_point_cloud(sp, index=3)
    assert c.class_label == 3 and np.array_equal(c.labels, pid[3])


def test_las_and_laz(tmp_path):
    laspy = pytest.importorskip("laspy")
    for ext in ("las", "laz"):
        header = laspy.LasHeader(point_format=3, version="1.2")
        header.scales = [0.001] * 3
        header.offsets = [500_000, 4_000_000, 0]
        las = laspy.LasData(header)
        n = 64
        rng = np.random.default_rng(6)
        las.x = 500_000 + rng.random(n) * 10
        las.y = 4_000_000 + rng.random(n) * 10
        las.z = rng.random(n)
        las.red = np.full(n, 65535, np.uint16)
        las.green = np.zeros(n, np.uint16)
        las.blue = np.zeros(n, np.uint16)
        las.classification = np.full(n, 2, np.uint8)
        path = tmp_path / f"t.{ext}"
        las.write(path)
        c = read_point_cloud(path)
        assert c.source_format == ext and c.n_points == n
        assert np.allclose(c.colors, [1, 0, 0]) and set(c.labels) == {2}
        assert "origin" in c.meta and c.points.max() < 100  # shifted to keep float32 precision
        assert np.allclose(c.points[:, 0] + c.meta["origin"][0], np.asarray(las.x), atol=2e-3)


# -- errors ----------------------------------------------------------------------------------


def _truncated_binary_ply(p):
    n = 100
    data = b"ply\nformat binary_little_endian 1.0\nelement vertex 100\nproperty float x\nproperty float y\n" \
           b"property float z\nend_header\n" + np.zeros((n, 3), "<f4").tobytes()
    p.write_bytes(data[: len(data) - 37])


def _truncated_binary_ply_faces(p):
    hdr = b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n" \
          b"property float z\nelement face 2\nproperty list uchar int vertex_indices\nend_header\n"
    p.write_bytes(hdr + np.eye(3, dtype="<f4").tobytes() + bytes([3]) + np.array([0, 1, 2], "<i4").tobytes() + bytes([3, 0]))


def _pcd_more_points_than_data(p):
    p.write_bytes(_pcd_header(["x", "y", "z"], [4, 4, 4], ["F", "F", "F"], 10, "ascii") + b"1 2 3\n4 5 6\n")


def _pcd_binary_short(p):
    p.write_bytes(_pcd_header(["x", "y", "z"], [4, 4, 4], ["F", "F", "F"], 10, "binary") + b"\0" * 50)


def _pcd_compressed_corrupt(p):
    p.write_bytes(_pcd_header(["x", "y", "z"], [4, 4, 4], ["F", "F", "F"], 2, "binary_compressed")
                  + struct.pack("<II", 4, 24) + b"\xff\xff\xff\xff")


def _npz_without_points(p):
    with open(p, "wb") as fh:
        np.savez(fh, normals=np.zeros((3, 3)))


def _npz_pickled(p):
    with open(p, "wb") as fh:
        np.savez(fh, points=np.array([{"a": 1}], dtype=object))


def _h5_without_data(p):
    _h5(p, points=np.zeros((1, 4, 3)))


CORRUPT = {
    "empty.ply": lambda p: p.write_bytes(b""),
    "empty.xyz": lambda p: p.write_bytes(b""),
    "blank.txt": lambda p: p.write_text("\n\n  \n"),
    "truncated.ply": _truncated_binary_ply,
    "truncated_faces.ply": _truncated_binary_ply_faces,
    "garbage.ply": lambda p: p.write_bytes(bytes(range(256)) * 4),
    "header_only.ply": lambda p: p.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\n"),
    "zero_vertices.ply": lambda p: p.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\n"
                                                 b"property float y\nproperty float z\nend_header\n"),
    "more_points.pcd": _pcd_more_points_than_data,
    "short_binary.pcd": _pcd_binary_short,
    "corrupt_lzf.pcd": _pcd_compressed_corrupt,
    "garbage.pcd": lambda p: p.write_bytes(b"\x00\x01\x02" * 100),
    "lying_counts.off": lambda p: p.write_text("OFF\n10 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"),
    "extra_lines.off": lambda p: p.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n3 0 1 2\n"),
    "bad_index.off": lambda p: p.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 9\n"),
    "no_header.off": lambda p: p.write_text("3 1 0\n0 0 0\n"),
    "ragged.txt": lambda p: p.write_text("1 2 3\n4 5 6\n7 8\n"),
    "words.xyz": lambda p: p.write_text("1 2 3\n4 five 6\n"),
    "two_columns.xyz": lambda p: p.write_text("1 2\n3 4\n"),
    "binary.txt": lambda p: p.write_bytes(b"\x00\xff" * 64),
    "all_nan.xyz": lambda p: p.write_text("nan nan nan\ninf 0 0\n"),
    "pts_count_lies.pts": lambda p: p.write_text("5\n1 2 3\n4 5 6\n"),
    "no_points.npz": _npz_without_points,
    "pickled.npz": _npz_pickled,
    "garbage.npz": lambda p: p.write_bytes(b"PK\x03\x04" + b"\x00" * 40),
    "garbage.npy": lambda p: p.write_bytes(b"\x93NUMPY garbage"),
    "strings.npy": lambda p: np.save(p, np.array(["a", "b"])),
    "no_data.h5": _h5_without_data,
    "garbage.h5": lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100),
    "garbage.las": lambda p: p.write_bytes(b"LASF" + b"\x00" * 300),
    "garbage.laz": lambda p: p.write_bytes(b"nothing like a laz file"),
    "garbage.glb": lambda p: p.write_bytes(b"glTF" + b"\x02\x00\x00\x00" + b"\xff" * 30),
    "garbage.obj": lambda p: p.write_text("this is not an obj\n"),
    "garbage.stl": lambda p: p.write_bytes(b"\x00" * 10),
    "unknown.foo": lambda p: p.write_text("1 2 3\n"),
    "noext": lambda p: p.write_text("1 2 3\n"),
    "folder.ply": lambda p: p.mkdir(),
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_files_raise_read_error(tmp_path, name):
    path = tmp_path / name
    CORRUPT[name](path)
    with pytest.raises(ReadError) as info:
        read_point_cloud(path)
    assert isinstance(info.value, ValueError)
    assert name in str(info.value)
    assert "Traceback" not in str(info.value)


def test_missing_file_and_bad_index(tmp_path):
    with pytest.raises(ReadError, match="nope.ply.*no such file"):
        read_point_cloud(tmp_path / "nope.ply")
    path = _h5(tmp_path / "m.h5", data=np.zeros((2, 4, 3), np.float32), label=np.zeros((2, 1)))
    with pytest.raises(ReadError, match=r"m\.h5.*index 5 is out of range.*2 rows"):
        read_point_cloud(f"{path}#5")
    with pytest.raises(ReadError, match="m.h5"):
        read_point_cloud(path, index=-3)
    np.save(tmp_path / "one.npy", np.zeros((5, 3)))
    with pytest.raises(ReadError, match="one.npy"):
        read_point_cloud(tmp_path / "one.npy", index=1)
    (tmp_path / "x.xyz").write_text("1 2 3\n")
    with pytest.raises(ReadError, match="x.xyz.*only applies"):
        read_point_cloud(f"{tmp_path / 'x.xyz'}#1")


def test_nan_points_are_dropped(tmp_path):
    path = _write(tmp_path / "n.xyz", "0 0 0 0\n1 nan 2 1\n3 4 5 2\ninf 1 1 3\n6 7 8 4\n")
    c = read_point_cloud(path)
    assert c.n_points == 3 and np.array_equal(c.labels, [0, 2, 4])
    assert c.warnings == ["dropped 2 non-finite points"]


@pytest.mark.timeout(120)
def test_damaged_files_never_crash(tmp_path, shared_data):
    """Truncations and byte flips of real files: a cloud or a ReadError, nothing else."""
    rng = np.random.default_rng(7)
    sources = [shared_data / "ply" / "ant.ply", shared_data / "pcd" / "milk.pcd", shared_data / "pcd" / "bun0.pcd",
               shared_data / "modelnet40_off" / "chair_0002.off", shared_data / "shapenetpart_cap" / "cap_val_0.npz"]
    for src in sources:
        data = src.read_bytes()
        for trial in range(8):
            b = bytearray(data)
            if trial < 4:
                b = b[: int(len(b) * rng.uniform(0.05, 0.98))]
            else:
                for pos in rng.integers(0, len(b), size=8):
                    b[pos] = int(rng.integers(0, 256))
            path = tmp_path / f"{trial}_{src.name}"
            path.write_bytes(bytes(b))
            try:
                c = read_point_cloud(path)
            except ReadError as e:
                assert path.name in str(e)
            else:
                assert c.n_points > 0 and np.isfinite(c.points).all()


# -- lying extensions ------------------------------------------------------------------------


def test_lying_extension_is_read_by_content(tmp_path):
    cloud = PointCloud(np.random.default_rng(8).random((10, 3)))
    write_point_cloud(tmp_path / "real.ply", cloud)
    lying = tmp_path / "really_a_ply.pcd"
    lying.write_bytes((tmp_path / "real.ply").read_bytes())
    c = read_point_cloud(lying)
    assert c.source_format == "ply" and np.allclose(c.points, cloud.points)
    assert any("content is PLY" in w for w in c.warnings)
    txt = _write(tmp_path / "text.ply", "1 2 3\n4 5 6\n")
    assert read_point_cloud(txt).n_points == 2


def test_sniff_format(tmp_path, shared_data):
    assert sniff_format(shared_data / "ply" / "ant.ply") == "ply"
    assert sniff_format(shared_data / "pcd" / "milk.pcd") == "pcd"
    assert sniff_format(shared_data / "modelnet40_off" / "bathtub_0001.off") == "off"
    assert sniff_format(shared_data / "obj" / "cow.obj") == "obj"
    assert sniff_format(shared_data / "shapenetpart_cap" / "cap_val_0.npz") == "npz"
    assert sniff_format(shared_data / "modelnet40_normal_resampled" / "person_0001.txt") == "text"
    np.save(tmp_path / "a.npy", np.zeros((2, 3)))
    assert sniff_format(tmp_path / "a.npy") == "npy"
    _h5(tmp_path / "a.h5", data=np.zeros((1, 2, 3)))
    assert sniff_format(tmp_path / "a.h5") == "hdf5"
    (tmp_path / "e.bin").write_bytes(b"")
    assert sniff_format(tmp_path / "e.bin") is None


def test_filter_and_extensions():
    assert all(e.startswith(".") and e == e.lower() for e in io.SUPPORTED_EXTENSIONS)
    assert "*.ply" in io.FILE_DIALOG_FILTER and "*.laz" in io.FILE_DIALOG_FILTER
    assert io.FILE_DIALOG_FILTER.endswith("All files (*)")


def test_read_mesh_rejects_point_clouds(tmp_path):
    with pytest.raises(ReadError, match="no faces"):
        read_mesh(_write(tmp_path / "p.xyz", "1 2 3\n4 5 6\n"))


def test_max_points_subsamples(tmp_path):
    pts = np.random.default_rng(9).random((1000, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", pts)
    c = read_point_cloud(tmp_path / "a.npy", max_points=100)
    assert c.n_points == 100 and any("subsampled 1,000 points to 100" in w for w in c.warnings)
    assert np.array_equal(c.points, read_point_cloud(tmp_path / "a.npy", max_points=100).points)


# -- writing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".ply", ".pcd", ".npz"])
def test_write_round_trip(tmp_path, ext):
    rng = np.random.default_rng(10)
    n = 200
    nrm = rng.normal(size=(n, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    cloud = PointCloud(rng.normal(size=(n, 3)), normals=nrm, colors=rng.integers(0, 256, (n, 3)) / 255.0,
                       labels=rng.integers(0, 50, n))
    path = write_point_cloud(tmp_path / f"out{ext}", cloud)
    back = read_point_cloud(path)
    assert np.array_equal(back.points, cloud.points)
    assert np.allclose(back.normals, cloud.normals)
    assert np.allclose(back.colors, cloud.colors, atol=1e-6)
    assert np.array_equal(back.labels, cloud.labels)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    bare = write_point_cloud(tmp_path / f"bare{ext}", PointCloud(cloud.points))
    b = read_point_cloud(bare)
    assert b.normals is None and b.colors is None and b.labels is None


@pytest.mark.parametrize("ext", [".ply", ".pcd"])
def test_written_files_open_in_open3d(tmp_path, ext):
    o3d = pytest.importorskip("open3d")
    rng = np.random.default_rng(11)
    cloud = PointCloud(rng.normal(size=(50, 3)), colors=rng.random((50, 3)))
    path = write_point_cloud(tmp_path / f"o{ext}", cloud)
    ref = o3d.io.read_point_cloud(str(path))
    assert np.allclose(np.asarray(ref.points), cloud.points, atol=1e-6)
    assert np.allclose(np.asarray(ref.colors), cloud.colors, atol=1 / 255)


def test_write_rejects_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match="xyz"):
        write_point_cloud(tmp_path / "a.xyz", PointCloud(np.zeros((2, 3))))


def test_mesh_nan_vertices_and_zero_area(tmp_path):
    c = read_point_cloud(_write(tmp_path / "n.off", "OFF\n4 2 0\n0 0 0\n1 0 0\n0 1 0\nnan 0 0\n3 0 1 2\n3 0 1 3\n"))
    assert c.mesh.n_vertices == 3 and c.mesh.n_faces == 1 and np.isfinite(c.points).all()
    assert "dropped 1 non-finite vertices and 1 faces using them" in c.warnings
    c = read_point_cloud(_write(tmp_path / "z.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n2 0 0\n3 0 1 2\n"))
    assert c.n_points == 3 and any("zero surface area" in w for w in c.warnings)
