"""Datasets in every supported layout: detection, counts, items, splits, determinism, corruptions.

Every dataset is built in tmp dirs in its real on-disk layout by crosspoint.data.testing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from crosspoint.data import (
    DatasetError,
    FolderClassification,
    FolderPretrainDataset,
    ModelNet40H5,
    ScanObjectNNH5,
    ShapeNetPartH5,
    ShapeNetPartTxt,
    ShapeNetRenderClassification,
    ShapeNetRenderDataset,
    detect_layout,
    detect_layouts,
    holdout_split,
    open_dataset,
    stratified_split,
    validate_dataset,
)
from crosspoint.data import testing as fake
from crosspoint.data.base import fix_point_count
from crosspoint.data.transforms import eval_image_transform, worker_init_fn

torch.set_num_threads(2)

SYN = ("02691156", "03001627", "04379243")


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """The reference's ``data/`` folder: every layout side by side (read-only use)."""
    root = tmp_path_factory.mktemp("data")
    fake.make_shapenet_render(root, synsets=SYN, per_class=5, n_points=48)
    fake.make_modelnet40_h5(root)
    fake.make_scanobjectnn_h5(root / "ScanObjectNN")
    fake.make_shapenetpart_h5(root)
    fake.make_shapenetpart_txt(root)
    return root


@pytest.fixture
def render_root(tmp_path) -> Path:
    return fake.make_shapenet_render(tmp_path / "sn", synsets=SYN[:2], per_class=4, n_points=40, n_views=3)


@pytest.fixture
def folder_root(tmp_path) -> Path:
    return fake.make_folder_dataset(tmp_path / "objs", per_class=3)


def _problems_mention(report, *needles) -> bool:
    return any(all(n in p for n in needles) for p in report.problems)


# ----------------------------------------------------------------------------- detection


def test_detect_every_layout_under_the_reference_data_folder(data_dir):
    found = {i.name: i.root for i in detect_layouts(data_dir)}
    assert found == {
        "shapenet_render": data_dir,
        "modelnet40_h5": data_dir / "modelnet40_ply_hdf5_2048",
        "scanobjectnn_h5": data_dir / "ScanObjectNN" / "h5_files",
        "shapenetpart_h5": data_dir / "shapenet_part_seg_hdf5_data",
        "shapenetpart_txt": data_dir / "shapenetcore_partanno_segmentation_benchmark_v0_normal",
    }
    assert detect_layout(data_dir, task="classification").name == "modelnet40_h5"
    assert detect_layout(data_dir, task="partseg").name == "shapenetpart_h5"
    assert detect_layout(data_dir, task="pretrain").name == "shapenet_render"
    # the dataset folder itself, and special entry points
    assert detect_layout(data_dir / "modelnet40_ply_hdf5_2048").name == "modelnet40_h5"
    assert detect_layout(data_dir / "ShapeNet").root == data_dir
    assert detect_layout(data_dir / "ScanObjectNN" / "h5_files" / "main_split").name == "scanobjectnn_h5"
    sonn = detect_layout(data_dir / "ScanObjectNN")
    assert set(sonn.details["variants"]) == {"OBJ_BG", "OBJ_ONLY", "PB_T50_RS"}


def test_detect_folder_and_errors(tmp_path, folder_root):
    info = detect_layout(folder_root)
    assert info.name == "folder" and info.details["classes"] == ["chair", "mug"]
    with pytest.raises(DatasetError, match="no such folder"):
        detect_layout(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no dataset layout recognised"):
        detect_layout(tmp_path / "empty")
    with pytest.raises(DatasetError, match="partseg"):
        detect_layout(folder_root, task="partseg")


def test_detect_h5_by_content_when_names_are_generic(tmp_path):
    mn = fake.make_modelnet40_h5(tmp_path / "a")
    part = fake.make_shapenetpart_h5(tmp_path / "b")
    (mn / "shape_names.txt").unlink()
    (part / "all_object_categories.txt").unlink()
    os.rename(mn, tmp_path / "x1")
    os.rename(part, tmp_path / "x2")
    assert detect_layout(tmp_path / "x1").name == "modelnet40_h5"
    assert detect_layout(tmp_path / "x2").name == "shapenetpart_h5"


# ----------------------------------------------------------------------------- ShapeNetRender


def test_shapenet_render_items(data_dir):
    ds = ShapeNetRenderDataset(data_dir, num_points=64, image_size=32)
    assert len(ds) == 15 and ds.num_classes == 3
    assert ds.class_names == ["airplane", "chair", "table"]
    np.testing.assert_array_equal(np.bincount(ds.labels), [5, 5, 5])
    item = ds[4]
    assert set(item) == {"points1", "points2", "image", "index", "label"}
    for k in ("points1", "points2"):
        assert item[k].shape == (64, 3) and item[k].dtype == torch.float32  # 48-point files padded to 64
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["index"] == 4 and item["label"] == 0
    assert not torch.equal(item["points1"], item["points2"])
    refs = ds.objects()
    assert refs[0].name == "02691156/obj0000" and refs[0].ref.endswith("obj0000.ply") and refs[0].label == 0


def test_pretrain_split_held_out_stratified_deterministic(data_dir):
    tr = ShapeNetRenderDataset(data_dir, split="train", val_fraction=0.2, seed=1)
    va = ShapeNetRenderDataset(data_dir, split="val", val_fraction=0.2, seed=1)
    names_tr = {r.name for r in tr.objects()}
    names_va = {r.name for r in va.objects()}
    assert not names_tr & names_va
    assert len(names_tr | names_va) == 15
    np.testing.assert_array_equal(np.bincount(va.labels), [1, 1, 1])  # stratified by synset
    again = ShapeNetRenderDataset(data_dir, split="val", val_fraction=0.2, seed=1)
    assert [r.name for r in again.objects()] == [r.name for r in va.objects()]
    # the classification view and the function use the same split
    cls_va = ShapeNetRenderClassification(data_dir, split="val", val_fraction=0.2, seed=1, num_points=32)
    assert [r.name for r in cls_va.objects()] == [r.name for r in va.objects()]
    f_tr, f_va = holdout_split(data_dir, 0.2, 1)
    assert [r.name for r in f_va] == [r.name for r in va.objects()] and len(f_tr) == 12
    # another seed, another split
    other = {frozenset(r.name for r in holdout_split(data_dir, 0.2, s)[1]) for s in range(2, 8)}
    assert len(other) > 1


def test_stratified_split_properties():
    labels = np.repeat(np.arange(4), [10, 5, 2, 1])
    tr, va = stratified_split(labels, 0.2, seed=0)
    assert not set(tr) & set(va) and len(tr) + len(va) == labels.size
    np.testing.assert_array_equal(np.bincount(labels[va], minlength=4), [2, 1, 1, 0])  # singletons stay in train
    tr2, va2 = stratified_split(labels, 0.2, seed=0)
    np.testing.assert_array_equal(va, va2)


def test_pretrain_seeded_determinism_epochs_and_workers(data_dir):
    ds = ShapeNetRenderDataset(data_dir, num_points=48, image_size=16, seed=3)
    a, b = ds[2], ds[2]
    assert torch.equal(a["points1"], b["points1"]) and torch.equal(a["image"], b["image"])
    ds.set_epoch(1)
    c = ds[2]
    assert not torch.equal(a["points1"], c["points1"])
    ds.set_epoch(0)
    other = ShapeNetRenderDataset(data_dir, num_points=48, image_size=16, seed=4)
    assert not torch.equal(a["points1"], other[2]["points1"])
    # the same batches whatever the number of workers
    loader0 = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=0)
    loader2 = torch.utils.data.DataLoader(
        ds, batch_size=5, num_workers=2, worker_init_fn=worker_init_fn, multiprocessing_context="fork"
    )
    for x, y in zip(loader0, loader2):
        assert torch.equal(x["points1"], y["points1"]) and torch.equal(x["image"], y["image"])


def test_one_random_view_per_step(render_root):
    # give each view a distinct solid colour, then watch which one each epoch picks
    from PIL import Image

    for k, png in enumerate(sorted(render_root.glob("ShapeNetRendering/*/*/rendering/*.png"))):
        v = int(png.stem)
        Image.new("RGBA", (8, 8), (40 + 80 * v, 0, 0, 255)).save(png)
    ds = ShapeNetRenderDataset(render_root, num_points=40, image_size=8, image_transform=eval_image_transform(8))
    seen = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        seen.add(round(float(ds[0]["image"][0].mean()), 3))
    assert len(seen) == 3  # all three views get used


def test_fix_point_count_methods():
    pts = np.arange(30, dtype=np.float32).reshape(10, 3)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(fix_point_count(pts, 4, "first"), pts[:4])
    sub = fix_point_count(pts, 4, "random", rng)
    assert sub.shape == (4, 3) and len({tuple(r) for r in sub}) == 4
    up = fix_point_count(pts, 25, "random", rng)
    assert up.shape == (25, 3)
    np.testing.assert_array_equal(up[:10], pts)  # all kept, then resampled duplicates
    assert fix_point_count(pts, 10, "random", rng) is pts or np.array_equal(fix_point_count(pts, 10, "random", rng), pts)
    fps = fix_point_count(np.random.default_rng(1).normal(size=(200, 3)).astype(np.float32), 16, "fps", rng)
    assert fps.shape == (16, 3)
    lab = np.arange(10)
    p2, l2 = fix_point_count(pts, 6, "random", rng, extra=(lab,))
    np.testing.assert_array_equal(p2[:, 0] / 3, l2)


def test_shapenet_render_classification_view(data_dir):
    ds = ShapeNetRenderClassification(data_dir, split=None, num_points=32)
    x, y = ds[7]
    assert x.shape == (32, 3) and x.dtype == np.float32 and y == 1
    assert np.linalg.norm(x, axis=1).max() == pytest.approx(1.0, abs=1e-5)
    arr = np.asarray(ds.points)
    assert arr.shape == (15, 32, 3)
    np.testing.assert_array_equal(ds.labels, np.repeat([0, 1, 2], 5))


# ----------------------------------------------------------------------------- ModelNet40 / ScanObjectNN


def test_modelnet40_first_points_labels_and_natural_order(data_dir):
    root = data_dir / "modelnet40_ply_hdf5_2048"
    tr = ModelNet40H5(data_dir, "train", num_points=32)  # parent folder works
    te = ModelNet40H5(root, "test", num_points=32)
    assert len(tr) == 12 and len(te) == 6 and tr.num_classes == 40 and tr.class_names[0] == "airplane"
    assert tr.points.shape == (12, 32, 3) and tr.points.dtype == np.float32
    assert tr.labels.dtype == np.int64 and tr.labels.shape == (12,)
    with h5py.File(root / "ply_data_train0.h5") as f:
        first = f["data"][0]
        lab0 = int(f["label"][0, 0])
    x, y = tr[0]
    np.testing.assert_array_equal(x, first[:32])  # the FIRST points, as the reference
    assert y == lab0
    assert [p.name for p in tr.files] == ["ply_data_train0.h5", "ply_data_train1.h5"]
    name, ref, label = tr.objects()[7]
    assert ref.endswith(".h5#1") and label == tr.labels[7]
    from crosspoint.io import read_point_cloud

    pc = read_point_cloud(ref)
    np.testing.assert_allclose(pc.points[:32], tr.points[7], atol=1e-6)


def test_scanobjectnn_variants_and_reference_repackaging(data_dir, tmp_path):
    for variant in ("OBJ_BG", "OBJ_ONLY", "PB_T50_RS"):
        tr = ScanObjectNNH5(data_dir / "ScanObjectNN", variant, "train", num_points=16)
        te = ScanObjectNNH5(data_dir / "ScanObjectNN", variant, "test", num_points=16)
        assert (len(tr), len(te)) == (10, 5) and tr.num_classes == 15 and tr.source == "release"
        assert tr[0][0].shape == (16, 3)
    ref = fake.make_scanobjectnn_h5(tmp_path / "ScanObjectNN", reference=True)
    ds = ScanObjectNNH5(tmp_path, "OBJ_BG", "test", num_points=16)
    assert ds.source == "reference" and len(ds) == 5
    with pytest.raises(DatasetError, match="training_objectdataset_augmentedrot_scale75.h5"):
        ScanObjectNNH5(ref, "PB_T50_RS", "train")


# ----------------------------------------------------------------------------- ShapeNetPart


def test_shapenetpart_h5(data_dir):
    tr = ShapeNetPartH5(data_dir, "train", num_points=32)
    tv = ShapeNetPartH5(data_dir, "trainval", num_points=32)
    te = ShapeNetPartH5(data_dir, "test", num_points=32)
    assert (len(tr), len(tv), len(te)) == (8, 12, 4)
    assert tr.num_categories == 16 and tr.num_parts == 50
    assert tr.parts_per_category == [4, 2, 2, 4, 4, 3, 3, 2, 4, 2, 6, 2, 3, 3, 3, 3]
    assert tr.part_ranges[2] == (6, 8) and tr.part_ranges[-1] == (47, 50)
    pts, cat, seg = tr[3]
    assert pts.shape == (32, 3) and seg.shape == (32,) and seg.dtype == np.int64
    a, b = tr.part_ranges[cat]
    assert np.all((seg >= a) & (seg < b))
    assert tr.objects()[3].label == cat


def test_shapenetpart_txt_standard(data_dir):
    root = data_dir / "shapenetcore_partanno_segmentation_benchmark_v0_normal"
    tr = ShapeNetPartTxt(data_dir, "train", num_points=64)
    assert len(tr) == 9 and tr.num_parts == 50 and tr.category_names[2] == "cap"
    assert sorted(set(tr.categories.tolist())) == [0, 2, 11]
    for i in range(len(tr)):
        pts, cat, seg = tr[i]
        assert pts.shape == (64, 3) and seg.shape == (64,)
        a, b = tr.part_ranges[cat]
        assert np.all((seg >= a) & (seg < b))
    # files have 80..108 points: a random subset per epoch, fixed for a seed
    p0 = tr[1][0]
    np.testing.assert_array_equal(p0, tr[1][0])
    tr.set_epoch(1)
    assert not np.array_equal(p0, tr[1][0])
    assert len(ShapeNetPartTxt(root, "trainval")) == 12 and len(ShapeNetPartTxt(root, "test")) == 3
    big = ShapeNetPartTxt(root, "val", num_points=200)  # more than the files have: padded
    assert big[0][0].shape == (200, 3)


def test_shapenetpart_txt_demo_table(tmp_path):
    """A demo-style dataset: non-standard categories, table from demo_meta.json."""
    d = tmp_path / "demo" / "shapenetcore_partanno_segmentation_benchmark_v0_normal"
    (d / "90000001").mkdir(parents=True)
    (d / "90000002").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for syn, ids in (("90000001", (0, 1)), ("90000002", (2, 3, 4))):
        for k in range(3):
            pts = rng.normal(size=(30, 3))
            lab = rng.choice(ids, size=30)
            np.savetxt(d / syn / f"o{k}.txt", np.hstack([pts, pts, lab[:, None]]), fmt="%.5f")
    (d / "synsetoffset2category.txt").write_text("Widget\t90000001\nGizmo\t90000002\n")
    (d / "train_test_split").mkdir()
    for split, k in (("train", 0), ("val", 1), ("test", 2)):
        (d / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(
            json.dumps([f"shape_data/90000001/o{k}", f"shape_data/90000002/o{k}"])
        )
    meta = {"classes": [{"name": "widget", "synset": "90000001", "parts": ["a", "b"], "part_ids": [0, 1]},
                        {"name": "gizmo", "synset": "90000002", "parts": ["c", "d", "e"], "part_ids": [2, 3, 4]}],
            "n_parts": 5, "part_names": ["widget/a", "widget/b", "gizmo/c", "gizmo/d", "gizmo/e"]}
    (tmp_path / "demo" / "demo_meta.json").write_text(json.dumps(meta))
    ds = ShapeNetPartTxt(d, "train", num_points=16)
    assert ds.num_categories == 2 and ds.num_parts == 5 and ds.part_ranges == [(0, 2), (2, 5)]
    assert ds.category_names == ["widget", "gizmo"] and ds.part_names[3] == "gizmo/d"
    assert ds[1][1] == 1 and np.all(ds[1][2] >= 2)
    # without the metadata the categories are unknown: a clear error
    (tmp_path / "demo" / "demo_meta.json").unlink()
    with pytest.raises(DatasetError, match="not ShapeNetPart's"):
        ShapeNetPartTxt(d, "train")


def test_real_demo_generator_layout(tmp_path):
    synthetic = pytest.importorskip("crosspoint.data.synthetic")
    root = synthetic.generate_demo(tmp_path / "demo", per_class=3, n_points=96, n_views=2, size=24, workers=0,
                                   classes=("chair", "mug", "car"))
    info = detect_layout(root)
    assert info.name == "crosspoint_demo"
    pre = open_dataset(root, "pretrain", num_points=64, image_size=24)
    assert pre.class_names == ["chair", "mug", "car"] and len(pre) == 9
    assert pre[0]["points1"].shape == (64, 3)
    seg = open_dataset(root, "partseg", split="trainval", num_points=64)
    assert seg.category_names == ["chair", "mug", "car"]
    meta = json.loads((root / "demo_meta.json").read_text())
    assert seg.num_parts == meta["n_parts"]
    for i in range(len(seg)):
        _, c, lab = seg[i]
        a, b = seg.part_ranges[c]
        assert np.all((lab >= a) & (lab < b))
    cls = open_dataset(root, "classification", split="val", num_points=32)
    assert len(cls) == 3
    rep = validate_dataset(root)
    assert rep.layout == "crosspoint_demo" and rep.ok, rep.problems


# ----------------------------------------------------------------------------- folder datasets


def test_folder_classification_and_cache(folder_root):
    ds = FolderClassification(folder_root, num_points=50)
    assert ds.class_names == ["chair", "mug"] and len(ds) == 6 and ds.excluded == []
    assert ds.points.shape == (6, 50, 3)
    assert np.linalg.norm(ds.points, axis=2).max() == pytest.approx(1.0, abs=1e-5)
    names = [o.name for o in ds.objects()]
    assert names[:3] == ["chair/chair_0", "chair/chair_1", "chair/chair_2"]
    assert (folder_root / ".crosspoint_cache" / "points" / "chair" / "chair_0.fps50.npz").is_file()
    # the cache gives the same points without reading the files again
    again = FolderClassification(folder_root, num_points=50)
    np.testing.assert_array_equal(again.points, ds.points)
    # a changed file is re-read
    f = folder_root / "chair" / "chair_0.ply"
    fake.write_ply(f, fake.blob(np.random.default_rng(9), 300, 4) * 3)
    os.utime(f, ns=(1, 1))
    changed = FolderClassification(folder_root, num_points=50)
    assert not np.allclose(changed.points[0], ds.points[0])
    np.testing.assert_array_equal(changed.points[1:], ds.points[1:])
    # the layout is not mistaken for anything else even with the cache present
    assert [i.name for i in detect_layouts(folder_root)] == ["folder"]


def test_folder_pretrain_views_rendered_once_and_rerendered_on_change(folder_root):
    ds = FolderPretrainDataset(folder_root, num_points=32, image_size=16, n_views=2)
    item = ds[2]
    assert item["points1"].shape == (32, 3) and item["image"].shape == (3, 16, 16) and item["label"] == 0
    vdir = folder_root / ".crosspoint_cache" / "views" / "chair" / "chair_2"
    pngs = sorted(vdir.glob("*.png"))
    assert [p.name for p in pngs] == ["00.png", "01.png"]
    assert (vdir / "renderings.txt").is_file() and (vdir / "rendering_metadata.txt").is_file()
    stamp = pngs[0].stat().st_mtime_ns
    ds2 = FolderPretrainDataset(folder_root, num_points=32, image_size=16, n_views=2)
    ds2[2]
    assert pngs[0].stat().st_mtime_ns == stamp  # cached
    src = folder_root / "chair" / "chair_2.off"
    src.write_text(src.read_text().replace("OFF\n", "OFF\n# changed\n"))
    ds3 = FolderPretrainDataset(folder_root, num_points=32, image_size=16, n_views=2)
    assert ds3.prepare() == 6  # chair_2 re-rendered (its file changed) + the five never rendered
    info = json.loads((vdir / "source.json").read_text())
    assert info["size"] == src.stat().st_size
    assert FolderPretrainDataset(folder_root, num_points=32, image_size=16, n_views=2).prepare() == 0


def test_folder_read_only_root_uses_user_cache(folder_root, tmp_path, monkeypatch):
    import crosspoint.data.folder as folder_mod

    monkeypatch.setenv("CROSSPOINT_CACHE_DIR", str(tmp_path / "usercache"))
    monkeypatch.setattr(folder_mod.os, "access", lambda *a, **k: False)
    monkeypatch.setattr(folder_mod, "_writable", lambda d: False)
    ds = FolderClassification(folder_root, num_points=20)
    assert str(ds.cache_root).startswith(str(tmp_path / "usercache"))
    assert not (folder_root / ".crosspoint_cache").exists()
    assert list((tmp_path / "usercache").rglob("*.npz"))


def test_folder_unreadable_files_excluded_with_names(folder_root, caplog):
    (folder_root / "mug" / "broken.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 99\n")
    (folder_root / "mug" / "notes.md").write_text("not a cloud")
    with caplog.at_level("WARNING"):
        ds = FolderClassification(folder_root, num_points=20)
    assert len(ds) == 6
    assert [Path(p).name for p, _ in ds.excluded] == ["broken.ply"]
    assert "broken.ply" in caplog.text
    rep = validate_dataset(folder_root)
    assert _problems_mention(rep, "broken.ply")
    assert any("notes.md" in w for w in rep.warnings)


def test_folder_empty_class_is_a_problem(folder_root):
    (folder_root / "lamp").mkdir()
    rep = validate_dataset(folder_root)
    assert _problems_mention(rep, "lamp", "empty class")
    shutil.rmtree(folder_root / "chair")
    shutil.rmtree(folder_root / "mug")
    with pytest.raises(DatasetError, match="empty class"):
        FolderClassification(folder_root)


# ----------------------------------------------------------------------------- open_dataset


def test_open_dataset_dispatch(data_dir, folder_root):
    assert type(open_dataset(data_dir, "pretrain", num_points=32, image_size=16)).__name__ == "ShapeNetRenderDataset"
    assert type(open_dataset(data_dir, "classification", split="test")).__name__ == "ModelNet40H5"
    assert type(open_dataset(data_dir / "ScanObjectNN", "classification", variant="OBJ_ONLY")).__name__ == "ScanObjectNNH5"
    assert type(open_dataset(data_dir, "partseg", split="val")).__name__ == "ShapeNetPartH5"
    assert type(open_dataset(data_dir, "partseg", layout="shapenetpart_txt")).__name__ == "ShapeNetPartTxt"
    assert type(open_dataset(data_dir, "classification", layout="shapenet_render")).__name__ == "ShapeNetRenderClassification"
    assert type(open_dataset(folder_root, "classification", num_points=16)).__name__ == "FolderClassification"
    assert type(open_dataset(folder_root, "pretrain", num_points=16, image_size=16)).__name__ == "FolderPretrainDataset"
    with pytest.raises(DatasetError):
        open_dataset(data_dir / "modelnet40_ply_hdf5_2048", "pretrain")


# ----------------------------------------------------------------------------- corruptions


def test_missing_view_folder(render_root):
    shutil.rmtree(render_root / "ShapeNetRendering" / SYN[0] / "obj0001")
    with pytest.raises(DatasetError, match="obj0001") as e:
        ShapeNetRenderDataset(render_root)
    assert "without views" in str(e.value)
    ds = ShapeNetRenderDataset(render_root, on_missing_views="skip", num_points=40, image_size=16)
    assert len(ds) == 7 and "02691156/obj0001" not in [r.name for r in ds.objects()]
    rep = validate_dataset(render_root)
    assert not rep.ok and _problems_mention(rep, "obj0001", "without views")
    assert rep.counts["objects_without_views"] == 1


def test_empty_view_folder_and_missing_renderings(render_root):
    for p in (render_root / "ShapeNetRendering" / SYN[1] / "obj1002" / "rendering").glob("*.png"):
        p.unlink()
    rep = validate_dataset(render_root)
    assert _problems_mention(rep, "obj1002", "no PNG")
    shutil.rmtree(render_root / "ShapeNetRendering")
    with pytest.raises(DatasetError, match="ShapeNetRendering: missing"):
        ShapeNetRenderDataset(render_root)
    assert _problems_mention(validate_dataset(render_root), "ShapeNetRendering", "missing")


def test_unreadable_ply_and_png(render_root):
    bad_ply = render_root / "ShapeNet" / SYN[0] / "obj0002.ply"
    bad_ply.write_bytes(b"\x00garbage" * 10)
    bad_png = render_root / "ShapeNetRendering" / SYN[1] / "obj1000" / "rendering" / "01.png"
    bad_png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    rep = validate_dataset(render_root)
    assert _problems_mention(rep, "obj0002.ply")
    assert _problems_mention(rep, "obj1000", "01.png", "unreadable view")
    with pytest.raises(DatasetError, match="obj0002.ply"):
        ShapeNetRenderDataset(render_root, check_sample=100)
    # a bad view mid-epoch: another view of the object is used instead
    bad_ply.unlink()
    shutil.rmtree(render_root / "ShapeNetRendering" / SYN[0] / "obj0002")
    ds = ShapeNetRenderDataset(render_root, num_points=40, image_size=8, check_sample=0)
    k = [r.name for r in ds.objects()].index(f"{SYN[1]}/obj1000")
    for epoch in range(4):
        ds.set_epoch(epoch)
        assert ds[k]["image"].shape == (3, 8, 8)


def test_nan_points_in_ply(render_root):
    pts = fake.blob(np.random.default_rng(0), 40)
    pts[3] = np.nan
    fake.write_ply(render_root / "ShapeNet" / SYN[0] / "obj0000.ply", pts)
    rep = validate_dataset(render_root)
    assert _problems_mention(rep, "obj0000.ply", "NaN")


def test_h5_label_out_of_range_nan_and_missing_key(tmp_path):
    root = fake.make_modelnet40_h5(tmp_path)
    f0 = root / "ply_data_train1.h5"
    with h5py.File(f0, "r+") as f:
        lab = f["label"][:]
        lab[2, 0] = 41
        f["label"][...] = lab
    with pytest.raises(DatasetError, match=r"ply_data_train1.h5.*label 41 at row 2 is out of range 0..39"):
        ModelNet40H5(root, "train")
    rep = validate_dataset(root)
    assert _problems_mention(rep, "ply_data_train1.h5", "out of range")
    with h5py.File(root / "ply_data_test0.h5", "r+") as f:
        d = f["data"][:]
        d[1, 5, 0] = np.nan
        f["data"][...] = d
    with pytest.raises(DatasetError, match="ply_data_test0.h5.*NaN"):
        ModelNet40H5(root, "test")
    assert _problems_mention(validate_dataset(root), "ply_data_test0.h5", "NaN", "rows 1")
    with h5py.File(root / "ply_data_train0.h5", "r+") as f:
        del f["label"]
    with pytest.raises(DatasetError, match="ply_data_train0.h5.*no dataset named 'label'"):
        ModelNet40H5(root, "train")


def test_h5_truncated_and_partial(tmp_path):
    root = fake.make_modelnet40_h5(tmp_path)
    p = root / "ply_data_train0.h5"
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(DatasetError, match="ply_data_train0.h5.*unreadable"):
        ModelNet40H5(root, "train")
    (root / "ply_data_test0.h5").unlink()
    with pytest.raises(DatasetError, match="no ply_data_test"):
        ModelNet40H5(root, "test")
    rep = validate_dataset(root)
    assert _problems_mention(rep, "test split missing") and _problems_mention(rep, "ply_data_train0.h5")


def test_part_ids_out_of_range(tmp_path):
    root = fake.make_shapenetpart_h5(tmp_path)
    with h5py.File(root / "ply_data_val0.h5", "r+") as f:
        pid = f["pid"][:]
        pid[1, :3] = 0  # row 1 is a bag (parts 4..5)
        f["pid"][...] = pid
    with pytest.raises(DatasetError, match=r"ply_data_val0.h5: part ids of row 1 \(bag\)"):
        ShapeNetPartH5(root, "val")
    assert _problems_mention(validate_dataset(root), "ply_data_val0.h5", "row 1")
    txt = fake.make_shapenetpart_txt(tmp_path / "t")
    f = txt / "02954340" / "cap0001.txt"  # cap: parts 6..7
    lines = f.read_text().splitlines()
    lines[0] = " ".join(lines[0].split()[:6] + ["30.000000"])
    f.write_text("\n".join(lines) + "\n")
    rep = validate_dataset(txt)
    assert _problems_mention(rep, "cap0001.txt", "out of range 6..7")
    ds = ShapeNetPartTxt(txt, "train")
    k = [o.name for o in ds.objects()].index("cap/cap0001")
    with pytest.raises(DatasetError, match="cap0001.txt"):
        ds[k]


def test_split_files_naming_missing_objects(tmp_path):
    txt = fake.make_shapenetpart_txt(tmp_path)
    (txt / "02691156" / "airplane0001.txt").unlink()
    with pytest.raises(DatasetError, match="airplane0001"):
        ShapeNetPartTxt(txt, "train")
    ShapeNetPartTxt(txt, "test")  # other splits are still usable
    rep = validate_dataset(txt)
    assert _problems_mention(rep, "shuffled_train_file_list.json", "airplane0001", "missing file")
    (txt / "train_test_split" / "shuffled_val_file_list.json").unlink()
    assert _problems_mention(validate_dataset(txt), "shuffled_val_file_list.json", "missing split file")
    with pytest.raises(DatasetError, match="shuffled_val_file_list.json"):
        ShapeNetPartTxt(txt, "val")


def test_nan_in_part_txt(tmp_path):
    txt = fake.make_shapenetpart_txt(tmp_path)
    f = txt / "03797390" / "mug0000.txt"
    lines = f.read_text().splitlines()
    lines[4] = "nan " + " ".join(lines[4].split()[1:])
    f.write_text("\n".join(lines) + "\n")
    assert _problems_mention(validate_dataset(txt), "mug0000.txt", "NaN")


def test_empty_class_folder_in_shapenet(render_root):
    (render_root / "ShapeNet" / "04530566").mkdir()
    with pytest.raises(DatasetError, match="04530566: empty class folder"):
        ShapeNetRenderDataset(render_root)


def test_quick_validation_samples_contents(render_root):
    for k in range(4):
        (render_root / "ShapeNet" / SYN[0] / f"obj000{k}.ply").write_bytes(b"junk")
    full = validate_dataset(render_root)
    quick = validate_dataset(render_root, quick=True, sample=2)
    assert sum("obj000" in p for p in full.problems) == 4
    assert quick.quick and sum("obj000" in p for p in quick.problems) <= 2


# ----------------------------------------------------------------------------- real files


def test_real_files_folder_and_renders(shared_data, tmp_path):
    """Real ModelNet OFF meshes as a folder dataset; real ShapeNet renders as views."""
    root = tmp_path / "mn"
    offs = sorted((shared_data / "modelnet40_off").glob("*.off"))
    for f in offs:
        cls = f.stem.split("_0")[0]
        (root / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, root / cls / f.name)
    ds = FolderClassification(root, num_points=64)
    assert ds.excluded == [] and len(ds) == len(offs)
    assert ds.class_names == ["airplane", "bathtub", "bed", "chair", "toilet"]
    assert ds.points.shape == (len(offs), 64, 3) and np.isfinite(ds.points).all()
    # real 137x137 RGBA renders as ShapeNetRendering views
    sn = fake.make_shapenet_render(tmp_path / "sn", synsets=("03001627",), per_class=2, n_views=1)
    real = sorted((shared_data / "renders" / "pixel2mesh").glob("*.png"))[:2]
    for k, png in enumerate(real):
        shutil.copy(png, sn / "ShapeNetRendering" / "03001627" / f"obj0{k:03d}" / "rendering" / "00.png")
    pre = ShapeNetRenderDataset(sn, num_points=48, image_size=137, image_transform=eval_image_transform(137))
    img = pre[0]["image"]
    white = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(img[:, 0, 0], white)  # transparent background composited on white
    assert validate_dataset(sn).ok
