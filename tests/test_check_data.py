"""``crosspoint check-data DIR``: layout name, counts, every problem with its path, exit codes."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from crosspoint.cli import main
from crosspoint.data import testing as fake

SYN = ("02691156", "03001627")


def _run(capsys, *args):
    code = main(["check-data", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_clean_shapenet_render(tmp_path, capsys):
    root = fake.make_shapenet_render(tmp_path / "data", synsets=SYN, per_class=3, n_views=2)
    code, out, _ = _run(capsys, root)
    assert code == 0
    assert "layout: shapenet_render" in out
    assert "objects: 6" in out and "classes: 2" in out and "views: 12" in out
    assert "problems: 0" in out and "OK" in out


def test_json_output(tmp_path, capsys):
    root = fake.make_modelnet40_h5(tmp_path)
    code, out, _ = _run(capsys, root, "--json")
    rep = json.loads(out)
    assert code == 0 and rep["layout"] == "modelnet40_h5" and rep["ok"] is True
    assert rep["counts"]["splits"] == {"train": 12, "test": 6}
    assert rep["counts"]["classes"] == 40


def test_objects_without_views_and_unreadable_files(tmp_path, capsys):
    root = fake.make_shapenet_render(tmp_path / "data", synsets=SYN, per_class=3, n_views=2)
    shutil.rmtree(root / "ShapeNetRendering" / SYN[0] / "obj0001")
    (root / "ShapeNet" / SYN[1] / "obj1002.ply").write_bytes(b"not a ply at all")
    (root / "ShapeNetRendering" / SYN[1] / "obj1000" / "rendering" / "00.png").write_bytes(b"broken")
    code, out, _ = _run(capsys, root)
    assert code == 1
    assert "objects_without_views: 1" in out
    err_lines = [ln for ln in out.splitlines() if "ERROR" in ln]
    assert any("obj0001" in ln and "without views" in ln for ln in err_lines)
    assert any("obj1002.ply" in ln for ln in err_lines)
    assert any("obj1000/rendering/00.png" in ln and "unreadable view" in ln for ln in err_lines)
    assert "FAILED: 3 problem(s)" in out


def test_labels_out_of_range_and_nans_h5(tmp_path, capsys):
    root = fake.make_scanobjectnn_h5(tmp_path / "ScanObjectNN", variants=("OBJ_BG",))
    path = root / "main_split" / "test_objectdataset.h5"
    with h5py.File(path, "r+") as f:
        lab = f["label"][:]
        lab[3] = 15
        f["label"][...] = lab
        d = f["data"][:]
        d[0, 0, 1] = np.inf
        f["data"][...] = d
    code, out, _ = _run(capsys, tmp_path)
    assert code == 1
    assert "layout: scanobjectnn_h5" in out
    assert f"{path}: 1 label(s) out of range 0..14 (row 3 has 15)" in out
    assert f"{path}: 1 object(s) with NaN/inf coordinates (rows 0)" in out


def test_missing_split_entries_txt(tmp_path, capsys):
    root = fake.make_shapenetpart_txt(tmp_path)
    (root / "02954340" / "cap0000.txt").unlink()
    code, out, _ = _run(capsys, root, "--quick")
    assert code == 1
    assert "layout: shapenetpart_txt" in out
    assert "shuffled_train_file_list.json: entry shape_data/02954340/cap0000 names a missing file" in out
    assert "quick check" in out


def test_folder_with_unreadable_file_and_empty_class(tmp_path, capsys):
    root = fake.make_folder_dataset(tmp_path / "objs")
    (root / "chair" / "bad.off").write_text("OFF\n3 1 0\n0 0 0\n")
    (root / "empty_class").mkdir()
    code, out, _ = _run(capsys, root)
    assert code == 1
    assert "layout: folder" in out and "classes: 3" in out
    assert "bad.off" in out and "empty_class" in out and "empty class folder" in out


def test_parent_with_several_layouts(tmp_path, capsys):
    fake.make_modelnet40_h5(tmp_path)
    fake.make_shapenetpart_h5(tmp_path)
    code, out, _ = _run(capsys, tmp_path, "--json")
    reps = json.loads(out)
    assert code == 0 and {r["layout"] for r in reps} == {"modelnet40_h5", "shapenetpart_h5"}
    code, out, _ = _run(capsys, tmp_path, "--layout", "shapenetpart_h5")
    assert code == 0 and "layout: shapenetpart_h5" in out and "modelnet40" not in out


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_nothing_recognised(tmp_path, capsys, make):
    target = tmp_path / "nothing"
    if make == "empty":
        target.mkdir()
    code, out, _ = _run(capsys, target)
    assert code == 1
    assert str(target) in out
    assert ("no such folder" in out) if make == "missing" else ("no dataset layout recognised" in out)


def test_interrupted_demo_is_reported(tmp_path, capsys):
    root = fake.make_shapenet_render(tmp_path / "demo", synsets=("90000001",), per_class=2)
    (root / ".crosspoint-demo").write_text("{}")  # the generator's marker, without demo_meta.json
    code, out, _ = _run(capsys, root)
    assert code == 1 and "layout: crosspoint_demo" in out
    assert "incomplete demo dataset" in out
