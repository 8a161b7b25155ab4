"""Tiny datasets in the real on-disk layouts, for tests (ours and other modules').

Every builder writes into a folder it is given, is deterministic for its ``seed``, and returns
the dataset folder. Objects are small random shapes (an anisotropic blob per class, so classes
are separable), views are tiny RGBA PNGs with a transparent background.

- :func:`make_shapenet_render` - ``ShapeNet/<synset>/<id>.ply`` + ``ShapeNetRendering/.../rendering/*.png``
- :func:`make_modelnet40_h5` - ``modelnet40_ply_hdf5_2048/ply_data_{train,test}N.h5`` + ``shape_names.txt``
- :func:`make_scanobjectnn_h5` - ``h5_files/main_split{,_nobg}/...`` (release names) or the
  reference's ``main_split/{train,test}.h5``
- :func:`make_shapenetpart_h5` - ``shapenet_part_seg_hdf5_data/ply_data_{train,val,test}0.h5``
- :func:`make_shapenetpart_txt` - ``shapenetcore_partanno_segmentation_benchmark_v0_normal/``
- :func:`make_folder_dataset` - ``<class>/<files>`` in several formats
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from crosspoint.data.layouts import (
    MODELNET40_CLASSES,
    PART_TXT_DIR,
    SCANOBJECTNN_VARIANTS,
    SHAPENETPART_CATEGORIES,
    SHAPENETPART_PARTS,
    SHAPENETPART_SYNSETS,
)

__all__ = [
    "blob",
    "write_png",
    "write_ply",
    "make_shapenet_render",
    "make_modelnet40_h5",
    "make_scanobjectnn_h5",
    "make_shapenetpart_h5",
    "make_shapenetpart_txt",
    "make_folder_dataset",
]


def blob(rng: np.random.Generator, n: int, label: int = 0) -> np.ndarray:
    """``(n, 3)`` float32 points on an ellipsoid whose proportions depend on ``label``, in the unit sphere."""
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-9
    axes = np.array([1.0, 0.4 + 0.15 * (label % 5), 0.3 + 0.2 * ((label // 5) % 4)])
    pts = d * axes + rng.normal(scale=0.01, size=(n, 3))
    pts /= np.linalg.norm(pts, axis=1).max()
    return pts.astype(np.float32)


def write_png(path: Path, size: int = 16, color=(200, 60, 60), seed: int = 0) -> Path:
    """A small RGBA PNG: a filled disc on a transparent background."""
    from PIL import Image

    yy, xx = np.mgrid[:size, :size]
    r = size * (0.3 + 0.1 * (seed % 3))
    inside = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < r**2
    img = np.zeros((size, size, 4), np.uint8)
    img[inside, :3] = color
    img[inside, 3] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img, "RGBA").save(path)
    return path


def write_ply(path: Path, points: np.ndarray) -> Path:
    """An ascii PLY point cloud (what the ShapeNetRender release ships)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pts = np.asarray(points, np.float32)
    header = f"ply\nformat ascii 1.0\nelement vertex {len(pts)}\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
    body = "\n".join(f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in pts)
    path.write_text(header + body + "\n")
    return path


def make_shapenet_render(
    root, synsets=("02691156", "03001627"), per_class: int = 4, n_points: int = 64, n_views: int = 2,
    size: int = 16, seed: int = 0,
) -> Path:
    """``root/ShapeNet`` + ``root/ShapeNetRendering``; object ids ``obj<k>``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for label, syn in enumerate(synsets):
        for k in range(per_class):
            oid = f"obj{label}{k:03d}"
            write_ply(root / "ShapeNet" / syn / f"{oid}.ply", blob(rng, n_points, label))
            vdir = root / "ShapeNetRendering" / syn / oid / "rendering"
            for v in range(n_views):
                write_png(vdir / f"{v:02d}.png", size, color=(50 + 100 * label % 200, 80, 200), seed=v)
            (vdir / "renderings.txt").write_text("".join(f"{v:02d}.png\n" for v in range(n_views)))
    return root


def _write_h5(path: Path, **arrays) -> Path:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return path


def _cls_rows(rng, labels, n_points):
    return np.stack([blob(rng, n_points, int(c)) for c in labels]) if len(labels) else np.zeros((0, n_points, 3), np.float32)


def make_modelnet40_h5(
    root, n_train: int = 12, n_test: int = 6, n_points: int = 64, n_classes: int = 4, train_files: int = 2, seed: int = 0
) -> Path:
    """``root/modelnet40_ply_hdf5_2048``: labels ``(M, 1)`` uint8 in ``0..n_classes-1``, the 40 names."""
    d = Path(root) / "modelnet40_ply_hdf5_2048"
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    (d / "shape_names.txt").write_text("".join(n + "\n" for n in MODELNET40_CLASSES))
    labels = np.arange(n_train) % n_classes
    for k, chunk in enumerate(np.array_split(labels, train_files)):
        _write_h5(d / f"ply_data_train{k}.h5", data=_cls_rows(rng, chunk, n_points), label=chunk.astype(np.uint8)[:, None])
    lt = np.arange(n_test) % n_classes
    _write_h5(d / "ply_data_test0.h5", data=_cls_rows(rng, lt, n_points), label=lt.astype(np.uint8)[:, None])
    return d


def make_scanobjectnn_h5(
    root, variants=("OBJ_BG", "OBJ_ONLY", "PB_T50_RS"), n_train: int = 10, n_test: int = 5, n_points: int = 64,
    reference: bool = False, seed: int = 0,
) -> Path:
    """``root/h5_files/main_split{,_nobg}/`` in the release's names, or with ``reference`` the
    reference's ``root/main_split/{train,test}.h5``. Returns the folder holding ``main_split``."""
    rng = np.random.default_rng(seed)
    base = Path(root) if reference else Path(root) / "h5_files"
    todo = [("main_split", "train.h5", "test.h5")] if reference else [SCANOBJECTNN_VARIANTS[v] for v in variants]
    for folder, tr, te in todo:
        for name, n in ((tr, n_train), (te, n_test)):
            lab = np.arange(n) % 15
            _write_h5(base / folder / name, data=_cls_rows(rng, lab, n_points), label=lab.astype(np.int8),
                      mask=np.zeros((n, n_points), np.int8))
    return base


def _part_rows(rng, cats, n_points):
    start = np.concatenate([[0], np.cumsum(SHAPENETPART_PARTS)[:-1]])
    data, pid = [], []
    for c in cats:
        pts = blob(rng, n_points, int(c))
        k = SHAPENETPART_PARTS[c]
        # part by height band, so labels are spatially coherent
        band = np.clip(((pts[:, 1] + 1) / 2 * k).astype(int), 0, k - 1)
        data.append(pts)
        pid.append(start[c] + band)
    return np.stack(data).astype(np.float32), np.stack(pid).astype(np.uint8)


def make_shapenetpart_h5(root, n_train: int = 8, n_val: int = 4, n_test: int = 4, n_points: int = 64, seed: int = 0) -> Path:
    """``root/shapenet_part_seg_hdf5_data``: categories cycle through the 16, global pids."""
    d = Path(root) / "shapenet_part_seg_hdf5_data"
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        cats = np.arange(n) % 16
        data, pid = _part_rows(rng, cats, n_points)
        _write_h5(d / f"ply_data_{split}0.h5", data=data, label=cats.astype(np.uint8)[:, None], pid=pid)
    (d / "all_object_categories.txt").write_text(
        "".join(f"{c.capitalize()}\t{s}\n" for c, s in zip(SHAPENETPART_CATEGORIES, SHAPENETPART_SYNSETS))
    )
    return d


def make_shapenetpart_txt(
    root, categories=("airplane", "cap", "mug"), per_category: int = 5, n_points: int = 80, seed: int = 0
) -> Path:
    """``root/shapenetcore_partanno_segmentation_benchmark_v0_normal`` holding ``categories`` (standard
    names, global part ids); the last two objects of each category go to val and test, the rest to
    train. Files have ``n_points + 7 k`` points (they vary, as in the release)."""
    d = Path(root) / PART_TXT_DIR
    rng = np.random.default_rng(seed)
    splits = {"train": [], "val": [], "test": []}
    start = np.concatenate([[0], np.cumsum(SHAPENETPART_PARTS)[:-1]])
    lines = []
    for name in categories:
        c = SHAPENETPART_CATEGORIES.index(name)
        syn = SHAPENETPART_SYNSETS[c]
        lines.append(f"{name.capitalize()}\t{syn}\n")
        for k in range(per_category):
            oid = f"{name}{k:04d}"
            pts = blob(rng, n_points + 7 * k, c)
            nrm = pts / (np.linalg.norm(pts, axis=1, keepdims=True) + 1e-9)
            kp = SHAPENETPART_PARTS[c]
            band = np.clip(((pts[:, 1] + 1) / 2 * kp).astype(int), 0, kp - 1)
            lab = start[c] + band
            (d / syn).mkdir(parents=True, exist_ok=True)
            with open(d / syn / f"{oid}.txt", "w") as f:
                for p, q, l in zip(pts, nrm, lab):
                    f.write(f"{p[0]:.6f} {p[1]:.6f} {p[2]:.6f} {q[0]:.6f} {q[1]:.6f} {q[2]:.6f} {float(l):.6f}\n")
            split = "val" if k == per_category - 2 else "test" if k == per_category - 1 else "train"
            splits[split].append(f"shape_data/{syn}/{oid}")
    (d / "synsetoffset2category.txt").write_text("".join(lines))
    (d / "train_test_split").mkdir(parents=True, exist_ok=True)
    for split, lst in splits.items():
        (d / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(json.dumps(lst))
    return d


def _write_off(path: Path, points: np.ndarray) -> None:
    """A closed mesh (the points' convex-ish octahedron scaled to their extent) in OFF."""
    lo, hi = points.min(0), points.max(0)
    c, h = (lo + hi) / 2, (hi - lo) / 2
    v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float) * h + c
    f = [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]]
    path.write_text(
        "OFF\n6 8 0\n" + "".join(f"{a:.6f} {b:.6f} {e:.6f}\n" for a, b, e in v) + "".join(f"3 {a} {b} {e}\n" for a, b, e in f)
    )


def make_folder_dataset(root, classes=("mug", "chair"), per_class: int = 3, n_points: int = 100, seed: int = 0) -> Path:
    """``root/<class>/`` holding ``.ply`` point clouds, ``.xyz`` text clouds and one ``.off`` mesh per class."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for label, cls in enumerate(classes):
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            pts = blob(rng, n_points + 10 * k, label)
            if k % 3 == 0:
                write_ply(d / f"{cls}_{k}.ply", pts)
            elif k % 3 == 1:
                np.savetxt(d / f"{cls}_{k}.xyz", pts, fmt="%.6f")
            else:
                _write_off(d / f"{cls}_{k}.off", pts)
    return root
