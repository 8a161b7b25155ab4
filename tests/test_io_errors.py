"""crosspoint.io: messages that say what is wrong (issue 10, item 7), MeshLab's Expe PTS (item 8), the registry."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from crosspoint import io
from crosspoint.cli import main
from crosspoint.io import FORMATS, ReadError, read_point_cloud, sniff_format

# -- misleading messages -----------------------------------------------------------------------------


def test_a_symlink_loop_is_not_a_missing_file(tmp_path):
    a, b = tmp_path / "a.ply", tmp_path / "b.ply"
    os.symlink(b, a)
    os.symlink(a, b)
    with pytest.raises(ReadError, match="symbolic link loop") as info:
        read_point_cloud(a)
    assert "no such file" not in str(info.value) and str(a) in str(info.value)


def _rows_h5(path, rows=3):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=np.arange(rows * 4 * 3, dtype=np.float32).reshape(rows, 4, 3))
    return path


def test_a_row_that_is_not_an_integer_says_so(tmp_path):
    path = _rows_h5(tmp_path / "rows.h5")
    with pytest.raises(ReadError, match=r"rows\.h5: the row after '#' must be a non-negative integer, got 'abc'"):
        read_point_cloud(f"{path}#abc")
    with pytest.raises(ReadError, match="no such file"):  # a missing file is still a missing file
        read_point_cloud(f"{tmp_path / 'other.h5'}#abc")


@pytest.mark.parametrize("kind", ["h5", "npy", "npz"])
def test_negative_rows_are_refused(tmp_path, kind):
    batch = np.arange(3 * 4 * 3, dtype=np.float32).reshape(3, 4, 3)
    if kind == "h5":
        path = _rows_h5(tmp_path / "rows.h5")
    elif kind == "npy":
        np.save(path := tmp_path / "rows.npy", batch)
    else:
        np.savez(path := tmp_path / "rows.npz", points=batch)
    for how in ({"path": f"{path}#-1"}, {"path": path, "index": -1}):
        with pytest.raises(ReadError, match=r"row -1 is negative: rows are numbered from 0 \(.* 3 rows: 0\.\.2\)"):
            read_point_cloud(how["path"], index=how.get("index"))
    assert read_point_cloud(f"{path}#2").meta["index"] == 2


def test_obj_face_out_of_range_names_the_index_and_the_vertex_count(tmp_path):
    pytest.importorskip("trimesh")
    path = tmp_path / "bad.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 11\n")
    with pytest.raises(ReadError) as info:
        read_point_cloud(path)
    msg = str(info.value)
    assert "line 6" in msg and "vertex 11" in msg and "4 vertices" in msg and "1..4" in msg
    assert "out of bounds" not in msg and "IndexError" not in msg
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf -1 -2 -9/1/1\n")
    with pytest.raises(ReadError, match=r"line 5: a face refers to vertex -9, but the file has 3 vertices"):
        read_point_cloud(path)


def test_object_arrays_are_refused_for_safety(tmp_path):
    np.save(tmp_path / "o.npy", np.array([[1.0, 2.0, 3.0], "x", None], dtype=object))
    with pytest.raises(ReadError, match=r"o\.npy: holds Python objects .*refused for safety") as info:
        read_point_cloud(tmp_path / "o.npy")
    assert "memory-mapped" not in str(info.value)
    np.savez(tmp_path / "o.npz", points=np.array([1, "a", None], dtype=object))
    with pytest.raises(ReadError, match=r"o\.npz: NPZ array 'points' holds Python objects .*refused for safety"):
        read_point_cloud(tmp_path / "o.npz")


# -- MeshLab's Expe PTS ----------------------------------------------------------------------------------

PTS = np.array([[1.0, 2.0, 3.0], [-4.5, 5.25, 6.0], [0.125, -7.0, 8.5]], np.float32)
NRM = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], np.float32)
RGBA = np.array([[255, 0, 0, 255], [0, 255, 0, 128], [10, 20, 30, 0]], np.uint8)


def _expe_binary_01(path, n=3, cut=0):
    """The layout vcglib's import_expe.h reads: header lines, 'data', one line break, packed records."""
    header = (
        b"[Expe/PointSet/Binary/0.1]\n"
        b"property position 12\n"
        b"property radius 4\n"
        b"property normal 12\n"
        b"property color 4\n"
        b"nofpoints " + str(n).encode() + b"\n"
        b"data\n"
    )
    records = b"".join(
        struct.pack("<3f", *PTS[i]) + struct.pack("<f", 0.01 * (i + 1)) + struct.pack("<3f", *NRM[i])
        + struct.pack("4B", *RGBA[i])
        for i in range(3)
    )
    assert len(records) == 3 * 32
    path.write_bytes(header + records[: len(records) - cut])
    return path


def test_expe_binary_point_set_reads(tmp_path):
    path = _expe_binary_01(tmp_path / "meshlab.pts")
    assert sniff_format(path) == "expe"
    c = read_point_cloud(path)
    assert c.source_format == "expe" and c.warnings == []
    assert np.array_equal(c.points, PTS) and np.array_equal(c.normals, NRM)
    assert np.allclose(c.colors, RGBA[:, :3] / 255.0)
    assert c.meta["encoding"] == "binary" and c.meta["version"] == "0.1"
    assert c.meta["other_fields"] == ["radius"]


def test_expe_binary_version_02_with_typed_properties(tmp_path):
    header = (
        b"[Expe/PointSet/Binary/0.2]\nproperty position 3 r32\nproperty flags 1 ui16\nproperty color 4 ui8\n"
        b"nofpoints 3\ndata\n"
    )
    body = b"".join(struct.pack("<3fH4B", *PTS[i], 7, *RGBA[i]) for i in range(3))
    (tmp_path / "v2.pts").write_bytes(header + body)
    c = read_point_cloud(tmp_path / "v2.pts")
    assert np.array_equal(c.points, PTS) and c.normals is None and np.allclose(c.colors, RGBA[:, :3] / 255.0)
    assert c.meta["version"] == "0.2" and c.meta["other_fields"] == ["flags"]


def test_expe_ascii_point_set(tmp_path):
    lines = ["[Expe/PointSet/Ascii/0.2]", "property position 3 r32", "property radius 1 r32",
             "property normal 3 r32", "property color 4 r32", "nofpoints 3", "data"]
    for p, n, c in zip(PTS, NRM, RGBA / 255.0):
        lines.append(f"{p[0]} {p[1]} {p[2]} ; 0.01 ; {n[0]} {n[1]} {n[2]} ; {c[0]} {c[1]} {c[2]} {c[3]}")
    (tmp_path / "a.pts").write_text("\n".join(lines) + "\n")
    c = read_point_cloud(tmp_path / "a.pts")
    assert c.source_format == "expe" and c.meta["encoding"] == "ascii"
    assert np.allclose(c.points, PTS) and np.allclose(c.normals, NRM) and np.allclose(c.colors, RGBA[:, :3] / 255.0)


def test_expe_damage_is_reported(tmp_path):
    with pytest.raises(ReadError, match=r"says 3 points \(96 bytes of 32-byte records\) but only 86 bytes follow"):
        read_point_cloud(_expe_binary_01(tmp_path / "cut.pts", cut=10))
    path = tmp_path / "nodata.pts"
    path.write_bytes(b"[Expe/PointSet/Binary/0.1]\nproperty position 12\nnofpoints 3\n")
    with pytest.raises(ReadError, match="no 'data' line"):
        read_point_cloud(path)
    path.write_bytes(b"[Expe/PointSet/Binary/0.1]\nproperty normal 12\nnofpoints 1\ndata\n" + bytes(12))
    with pytest.raises(ReadError, match="no 'position' property"):
        read_point_cloud(path)
    path.write_bytes(b"[Expe/PointSet/Binary/0.9]\nproperty position 12\nnofpoints 1\ndata\n" + bytes(12))
    with pytest.raises(ReadError, match="unsupported Expe point set header"):
        read_point_cloud(path)


def test_expe_content_under_another_name(tmp_path):
    src = _expe_binary_01(tmp_path / "m.pts")
    other = tmp_path / "m.xyz"
    other.write_bytes(src.read_bytes())
    c = read_point_cloud(other)
    assert np.array_equal(c.points, PTS) and "the content is an Expe (MeshLab) point set" in c.warnings[0]
    unknown = tmp_path / "m.bin"
    unknown.write_bytes(src.read_bytes())
    with pytest.raises(ReadError, match="looks like an Expe"):
        read_point_cloud(unknown)


def test_leica_pts_text_is_still_text(tmp_path):
    path = tmp_path / "scan.pts"
    path.write_text("2\n1 2 3 -100 255 0 0\n4 5 6 -200 0 255 0\n")
    c = read_point_cloud(path)
    assert c.source_format == "pts" and c.n_points == 2 and c.warnings == []
    assert np.allclose(c.colors, [[1, 0, 0], [0, 1, 0]])


def test_info_reports_an_expe_file(tmp_path, capsys):
    path = _expe_binary_01(tmp_path / "meshlab.pts")
    assert main(["info", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: expe, 3 points")


# -- the registry ------------------------------------------------------------------------------------


def test_the_registry_drives_extensions_filters_and_dispatch():
    keys = [f.key for f in FORMATS]
    assert len(keys) == len(set(keys))
    assert io.SUPPORTED_EXTENSIONS == tuple(dict.fromkeys(e for f in FORMATS for e in f.extensions))
    assert io.WRITE_EXTENSIONS == (".ply", ".pcd", ".npz")
    assert io.WRITE_DIALOG_FILTER == "PLY (*.ply);;PCD (*.pcd);;NumPy (*.npz)"
    for f in FORMATS:
        assert callable(f.read) and f.sniff is not None
        assert f"{f.group} (" in io.FILE_DIALOG_FILTER
        assert all(e.startswith(".") and e == e.lower() for e in f.extensions)
        assert io.format_by_key(f.key) is f
    assert io.format_for_path("x.PTS") == "text" and io.format_for_path("x.laz") == "laz"
    assert io.format_for_path("x.unknown") is None
    assert {f.key for f in FORMATS if f.rows} == {"npy", "npz", "hdf5"}


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.writable], ids=lambda f: f.key)
def test_every_writer_round_trips_what_its_format_holds(tmp_path, fmt):
    rng = np.random.default_rng(1)
    n = 30
    nrm = rng.normal(size=(n, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    cloud = io.PointCloud(rng.normal(size=(n, 3)), normals=nrm if fmt.normals else None,
                          colors=rng.integers(0, 256, (n, 3)) / 255.0 if fmt.colors else None,
                          labels=rng.integers(0, 9, n) if fmt.labels else None)
    back = read_point_cloud(io.write_point_cloud(tmp_path / f"c{fmt.extensions[0]}", cloud))
    assert back.source_format == fmt.key and np.array_equal(back.points, cloud.points)
    assert (back.normals is not None) == fmt.normals and (back.colors is not None) == fmt.colors
    assert (back.labels is not None) == fmt.labels
