"""The procedural demo dataset: objects, layouts on disk, determinism, and the make-demo CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crosspoint.data.demo import SHIPPED_PRESET, get_preset
from crosspoint.data import synthetic as syn
from crosspoint.data.synthetic import (
    CLASS_PARTS,
    CLASSES,
    SYNSETS,
    DemoCancelled,
    class_part_ids,
    demo_is_complete,
    demo_object,
    ensure_demo,
    generate_demo,
    make_object,
)

TINY = dict(per_class=2, n_points=256, n_views=2, size=32, workers=0)


def test_tables():
    assert len(CLASSES) >= 8
    ids = [i for c in CLASSES for i in class_part_ids(c)]
    assert ids == list(range(len(ids)))  # contiguous, global
    assert all(2 <= len(CLASS_PARTS[c]) <= 4 for c in CLASSES)
    assert len(set(SYNSETS.values())) == len(CLASSES)
    assert all(len(s) == 8 and s.isdigit() and s[0] == "9" for s in SYNSETS.values())


@pytest.mark.parametrize("name", CLASSES)
def test_every_class_builds_valid_varied_meshes(name):
    shapes = []
    for seed in range(8):
        mesh, labels = make_object(name, np.random.default_rng(seed))
        v, f = mesh.vertices, mesh.faces
        assert v.dtype == np.float32 and f.dtype == np.int64
        assert np.isfinite(v).all() and len(f) > 10
        assert f.min() >= 0 and f.max() < len(v)
        assert labels.shape == (len(f),)
        ids = class_part_ids(name)
        assert labels.min() >= ids[0] and labels.max() <= ids[-1]
        assert 2 <= len(np.unique(labels)) <= 4
        assert np.linalg.norm(v, axis=1).max() <= 1.0 + 1e-4  # unit sphere
        assert np.allclose(np.linalg.norm(mesh.vertex_normals, axis=1), 1, atol=1e-4)
        assert mesh.vertex_colors.shape == v.shape
        area = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
        assert (area > 0).all()
        ext = v.max(0) - v.min(0)
        shapes.append(np.round(ext / ext.max(), 3).tolist() + [len(f)])
    # objects differ with the seed: proportions or tessellation (part shapes) change
    assert len({tuple(s) for s in shapes}) >= 6, shapes
    m1, l1 = make_object(name, np.random.default_rng(3))
    m2, l2 = make_object(name, np.random.default_rng(3))
    assert np.array_equal(m1.vertices, m2.vertices) and np.array_equal(l1, l2)


def test_demo_object_is_instant_pointcloud():
    pc = demo_object("chair", seed=0)
    assert pc.points.shape == (2048, 3) and pc.normals.shape == (2048, 3)
    assert pc.labels.min() >= 0 and pc.labels.max() <= 3 and len(np.unique(pc.labels)) >= 3
    assert pc.mesh is not None and pc.category == "chair" and pc.class_label == CLASSES.index("chair")
    assert np.array_equal(pc.points, demo_object("chair", seed=0).points)
    assert not np.array_equal(pc.points, demo_object("chair", seed=1).points)
    assert demo_object(seed=3).category == CLASSES[3]
    with pytest.raises(ValueError, match="unknown demo class"):
        demo_object("spaceship")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generate_tiny_layout(tmp_path):
    out = generate_demo(tmp_path / "demo", seed=3, **TINY)
    assert demo_is_complete(out)
    n_obj = 2 * len(CLASSES)
    assert len(list((out / "ShapeNet").glob("*/*.ply"))) == n_obj
    assert len(list((out / "meshes").glob("*/*.ply"))) == n_obj
    assert len(list((out / "ShapeNetRendering").glob("*/*/rendering/*.png"))) == 2 * n_obj
    assert len(list((out / "ShapeNetRendering").glob("*/*/rendering/renderings.txt"))) == n_obj
    assert len(list((out / "ShapeNetRendering").glob("*/*/rendering/rendering_metadata.txt"))) == n_obj
    part = out / syn.PART_DIR
    assert len(list(part.glob("9*/*.txt"))) == n_obj
    cats = (part / "synsetoffset2category.txt").read_text().splitlines()
    assert cats[0] == "Chair\t90000001" and len(cats) == len(CLASSES)
    lists = {s: json.loads((part / "train_test_split" / f"shuffled_{s}_file_list.json").read_text()) for s in ("train", "val", "test")}
    allf = sum(lists.values(), [])
    assert len(allf) == n_obj == len(set(allf)) and len(lists["test"]) == len(CLASSES)
    assert all(e.startswith("shape_data/9") and len(e.split("/")) == 3 for e in allf)
    meta = json.loads((out / "demo_meta.json").read_text())
    assert meta["format_version"] == syn.FORMAT_VERSION and meta["seed"] == 3
    assert [c["name"] for c in meta["classes"]] == list(CLASSES)
    assert len(meta["part_names"]) == meta["n_parts"] == sum(len(p) for p in CLASS_PARTS.values())
    assert {o["split"] for o in meta["objects"]} <= {"train", "val", "test"} and len(meta["objects"]) == n_obj

    # one object across the layouts
    syn_chair = SYNSETS["chair"]
    rows = np.loadtxt(part / syn_chair / "chair_0001.txt")
    assert rows.shape == (256, 7)
    assert set(rows[:, 6].astype(int)) <= set(class_part_ids("chair"))
    from plyfile import PlyData

    ply = PlyData.read(str(out / "ShapeNet" / syn_chair / "chair_0001.ply"))["vertex"]
    xyz = np.stack([ply["x"], ply["y"], ply["z"]], 1)
    assert np.allclose(xyz, rows[:, :3], atol=1e-5)
    mesh = PlyData.read(str(out / "meshes" / syn_chair / "chair_0001.ply"))
    assert set(mesh["face"]["label"]) <= set(class_part_ids("chair"))
    # the instant object is the dataset's <class>_0000
    pc = demo_object("chair", seed=3, n_points=256)
    rows0 = np.loadtxt(part / syn_chair / "chair_0000.txt")
    assert np.allclose(pc.points, rows0[:, :3], atol=1e-5) and np.array_equal(pc.labels, rows0[:, 6].astype(int))
    # the cameras of the views project the points into the drawn object
    from PIL import Image

    from crosspoint.render import read_view_metadata

    rdir = out / "ShapeNetRendering" / syn_chair / "chair_0000" / "rendering"
    cams = read_view_metadata(rdir)
    assert len(cams) == 2 and cams[0].size == 32
    img = np.asarray(Image.open(rdir / "00.png"))
    assert img.shape == (32, 32, 4)
    uv, _ = cams[0].project(pc.points)
    hit = img[uv[:, 1].astype(int).clip(0, 31), uv[:, 0].astype(int).clip(0, 31), 3] > 0
    assert hit.mean() > 0.95


def test_generate_is_deterministic_and_worker_independent(tmp_path):
    a = _files(generate_demo(tmp_path / "a", seed=1, **TINY))
    b = _files(generate_demo(tmp_path / "b", seed=1, **{**TINY, "workers": 2}))
    assert a.keys() == b.keys()
    diff = [k for k in a if a[k] != b[k]]
    assert not diff, diff[:5]
    c = _files(generate_demo(tmp_path / "c", seed=2, **TINY))
    assert a["ShapeNet/90000001/chair_0000.ply"] != c["ShapeNet/90000001/chair_0000.ply"]


def test_refuses_foreign_folder_and_detects_incomplete(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not empty"):
        generate_demo(foreign, **TINY)
    assert (foreign / "thesis.tex").read_text() == "precious"

    out = generate_demo(tmp_path / "demo", **{**TINY, "per_class": 1, "n_views": 1})
    stamp = (out / "demo_meta.json").stat().st_mtime_ns
    generate_demo(out, **{**TINY, "per_class": 1, "n_views": 1})  # same parameters: kept
    assert (out / "demo_meta.json").stat().st_mtime_ns == stamp
    (out / "ShapeNet" / SYNSETS["mug"] / "mug_0000.ply").unlink()
    assert not demo_is_complete(out)
    (out / "demo_meta.json").unlink()
    assert not demo_is_complete(out)
    generate_demo(out, **{**TINY, "per_class": 1, "n_views": 1})  # a previous (broken) demo: regenerated
    assert demo_is_complete(out)


def test_ensure_demo_cancel_and_complete(tmp_path):
    target = tmp_path / "cache" / "demo"
    calls = []

    with pytest.raises(DemoCancelled):
        ensure_demo(lambda d, t: calls.append((d, t)), cancel=lambda: bool(calls), directory=target,
                    per_class=3, n_points=64, n_views=1, size=16, workers=0)
    assert not target.exists() and not any((tmp_path / "cache").iterdir())
    calls.clear()
    got = ensure_demo(lambda d, t: calls.append((d, t)), directory=target, per_class=1, n_points=64,
                      n_views=1, size=16, workers=0)
    n_classes = len(get_preset(SHIPPED_PRESET).classes)  # ensure_demo makes the shipped checkpoint's demo
    assert got == target and demo_is_complete(target) and calls[-1] == (n_classes, n_classes)
    assert ensure_demo(directory=target) == target  # already there: nothing to do


def test_default_demo_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CROSSPOINT_CACHE_DIR", str(tmp_path))
    assert syn.default_demo_dir() == tmp_path / f"demo-{SHIPPED_PRESET}-v{syn.FORMAT_VERSION}-seed0"
    assert syn.default_demo_dir(0, "easy") == tmp_path / f"demo-v{syn.FORMAT_VERSION}-seed0"
    monkeypatch.delenv("CROSSPOINT_CACHE_DIR")
    assert "crosspoint-explorer" in str(syn.default_demo_dir(seed=2)) and str(syn.default_demo_dir(2)).endswith("seed2")


def test_cli_make_demo_and_loader(tmp_path):
    from crosspoint.cli import main

    out = tmp_path / "demo"
    argv = ["make-demo", str(out), "--per-class", "1", "--views", "1", "--size", "24", "--points", "128", "--workers", "0"]
    assert main(argv) == 0
    assert demo_is_complete(out)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.txt").write_text("x")
    assert main(["make-demo", str(bad), "--per-class", "1"]) != 0
    # the ShapeNetRender loader reads it with the class names from demo_meta.json
    from crosspoint.data.shapenet_render import scan_shapenet_render

    index = scan_shapenet_render(out)
    # the CLI's default is the hard preset: one object of each of its (>= 16) classes
    assert not index.problems and len(index.refs) == len(index.class_names) >= 16
    easy = tmp_path / "easy"
    assert main(["make-demo", str(easy), "--preset", "easy", *argv[2:]]) == 0
    index = scan_shapenet_render(easy)
    assert not index.problems and len(index.refs) == len(CLASSES)
    assert sorted(index.class_names) == sorted(CLASSES)
