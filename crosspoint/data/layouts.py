"""Recognising dataset layouts on disk, and the standard class/part tables.

:func:`detect_layouts` looks at a folder and returns every layout it recognises there, the folder
itself first and then its immediate sub-folders (so ``root`` may be a dataset folder or its
parent, e.g. the reference's ``data/`` holding ``ShapeNet/``, ``ShapeNetRendering/``,
``modelnet40_ply_hdf5_2048/``, ``ScanObjectNN/`` and ``shapenet_part_seg_hdf5_data/``).
:func:`detect_layout` picks one, optionally restricted to what a task can use.

Layouts (``LayoutInfo.name``):

``crosspoint_demo``
    The demo dataset: ``demo_meta.json`` + ``ShapeNet/`` + ``ShapeNetRendering/`` (+ the
    ShapeNetPart txt layout in ``shapenetcore_partanno_segmentation_benchmark_v0_normal/``).
``shapenet_render``
    The reference's pretraining data: ``ShapeNet/<synset>/<id>.ply`` and
    ``ShapeNetRendering/<synset>/<id>/rendering/*.png``. Recognised when either folder is there
    (a partial copy is then reported, not ignored). ``root`` may also be ``ShapeNet/`` itself when
    ``ShapeNetRendering/`` is its sibling.
``modelnet40_h5``
    ``modelnet40_ply_hdf5_2048/ply_data_{train,test}*.h5`` (+ ``shape_names.txt``).
``scanobjectnn_h5``
    ``main_split/`` and/or ``main_split_nobg/`` holding ``training_objectdataset*.h5`` /
    ``test_objectdataset*.h5`` (the release's ``h5_files/``), or the reference's repackaging
    ``main_split/train.h5`` + ``test.h5``. Found up to two levels down
    (``ScanObjectNN/h5_files/main_split``).
``shapenetpart_h5``
    ``shapenet_part_seg_hdf5_data/ply_data_{train,val,test}*.h5`` with a ``pid`` dataset.
``shapenetpart_txt``
    ``shapenetcore_partanno_segmentation_benchmark_v0_normal/`` with ``synsetoffset2category.txt``,
    ``<synset>/<id>.txt`` and ``train_test_split/shuffled_{train,val,test}_file_list.json``.
``folder``
    ``root/<class>/<files>`` in any format :mod:`crosspoint.io` reads (only tried on ``root``
    itself, and only when nothing else matched there). A flat folder -- files directly in
    ``root``, no class sub-folders -- is one unlabelled class (``details["flat"]``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from crosspoint.data.base import DatasetError, natural_key

__all__ = [
    "LayoutInfo",
    "LAYOUTS",
    "TASK_LAYOUTS",
    "detect_layouts",
    "detect_layout",
    "MODELNET40_CLASSES",
    "SCANOBJECTNN_CLASSES",
    "SCANOBJECTNN_VARIANTS",
    "SHAPENETPART_CATEGORIES",
    "SHAPENETPART_SYNSETS",
    "SHAPENETPART_PARTS",
    "SHAPENET_SYNSET_NAMES",
    "PART_TXT_DIR",
    "CACHE_DIR_NAME",
]

# Order = priority when several layouts are found under one root.
LAYOUTS = (
    "crosspoint_demo",
    "shapenet_render",
    "modelnet40_h5",
    "scanobjectnn_h5",
    "shapenetpart_h5",
    "shapenetpart_txt",
    "folder",
)
TASK_LAYOUTS = {
    "pretrain": ("crosspoint_demo", "shapenet_render", "folder"),
    "classification": ("modelnet40_h5", "scanobjectnn_h5", "crosspoint_demo", "shapenet_render", "folder"),
    "partseg": ("shapenetpart_h5", "shapenetpart_txt", "crosspoint_demo"),
}

PART_TXT_DIR = "shapenetcore_partanno_segmentation_benchmark_v0_normal"
CACHE_DIR_NAME = ".crosspoint_cache"

MODELNET40_CLASSES = (
    "airplane bathtub bed bench bookshelf bottle bowl car chair cone cup curtain desk door dresser "
    "flower_pot glass_box guitar keyboard lamp laptop mantel monitor night_stand person piano plant "
    "radio range_hood sink sofa stairs stool table tent toilet tv_stand vase wardrobe xbox"
).split()

SCANOBJECTNN_CLASSES = (
    "bag bin box cabinet chair desk display door shelf table bed pillow sink sofa toilet"
).split()

# variant -> (folder, train file, test file), in the release's names.
SCANOBJECTNN_VARIANTS = {
    "OBJ_BG": ("main_split", "training_objectdataset.h5", "test_objectdataset.h5"),
    "OBJ_ONLY": ("main_split_nobg", "training_objectdataset.h5", "test_objectdataset.h5"),
    "PB_T50_RS": (
        "main_split",
        "training_objectdataset_augmentedrot_scale75.h5",
        "test_objectdataset_augmentedrot_scale75.h5",
    ),
}
# The reference repository's own repackaging (data/ScanObjectNN/main_split/{train,test}.h5).
SCANOBJECTNN_REPACKAGED = ("train.h5", "test.h5")

SHAPENETPART_CATEGORIES = (
    "airplane bag cap car chair earphone guitar knife lamp laptop motorbike mug pistol rocket "
    "skateboard table"
).split()
SHAPENETPART_SYNSETS = (
    "02691156 02773838 02954340 02958343 03001627 03261776 03467517 03624134 03636649 03642806 "
    "03790512 03797390 03948459 04099429 04225987 04379243"
).split()
SHAPENETPART_PARTS = (4, 2, 2, 4, 4, 3, 3, 2, 4, 2, 6, 2, 3, 3, 3, 3)

# Names of the ShapeNetCore synsets the public releases use (3D-R2N2's 13 + ShapeNetPart's 16).
SHAPENET_SYNSET_NAMES = {
    "02691156": "airplane",
    "02773838": "bag",
    "02828884": "bench",
    "02933112": "cabinet",
    "02954340": "cap",
    "02958343": "car",
    "03001627": "chair",
    "03211117": "display",
    "03261776": "earphone",
    "03467517": "guitar",
    "03624134": "knife",
    "03636649": "lamp",
    "03642806": "laptop",
    "03691459": "loudspeaker",
    "03790512": "motorbike",
    "03797390": "mug",
    "03948459": "pistol",
    "04090263": "rifle",
    "04099429": "rocket",
    "04225987": "skateboard",
    "04256520": "sofa",
    "04379243": "table",
    "04401088": "telephone",
    "04530566": "watercraft",
}


@dataclass
class LayoutInfo:
    """A recognised layout: its ``name`` (one of :data:`LAYOUTS`), the dataset folder ``root``
    (resolved: for ``modelnet40_h5`` the ``modelnet40_ply_hdf5_2048`` folder, for
    ``shapenet_render`` the folder holding ``ShapeNet/``), and layout-specific ``details``."""

    name: str
    root: Path
    details: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.name} at {self.root}"


def _is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except OSError:
        return False


def _subdirs(p: Path) -> list[Path]:
    try:
        return sorted((c for c in p.iterdir() if _is_dir(c) and not c.name.startswith(".")), key=lambda c: c.name)
    except OSError:
        return []


def _h5_group(p: Path, prefix: str) -> list[Path]:
    return sorted(p.glob(f"ply_data_{prefix}*.h5"), key=natural_key)


def _h5_keys(path: Path) -> set[str] | None:
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return set(f.keys())
    except Exception:  # unreadable: the validator reports it
        return None


def _match_ply_h5(d: Path) -> LayoutInfo | None:
    train, val, test = _h5_group(d, "train"), _h5_group(d, "val"), _h5_group(d, "test")
    if not (train or val or test):
        return None
    name = d.name.lower()
    if "modelnet" in name:
        kind = "modelnet40_h5"
    elif "shapenet" in name or "part" in name or name == "hdf5_data":
        kind = "shapenetpart_h5"
    elif (d / "all_object_categories.txt").is_file() or val:
        kind = "shapenetpart_h5"
    elif (d / "shape_names.txt").is_file():
        kind = "modelnet40_h5"
    else:
        keys = _h5_keys((train + test + val)[0])
        kind = "shapenetpart_h5" if keys and "pid" in keys else "modelnet40_h5"
    details = {"train_files": [f.name for f in train], "test_files": [f.name for f in test]}
    if kind == "shapenetpart_h5":
        details["val_files"] = [f.name for f in val]
    return LayoutInfo(kind, d, details)


def _scanobjectnn_variants(d: Path) -> dict:
    """variant -> {"train": Path, "test": Path, "source": "release"|"reference"} found under ``d``."""
    found = {}
    for variant, (folder, tr, te) in SCANOBJECTNN_VARIANTS.items():
        fd = d / folder
        if (fd / tr).is_file() or (fd / te).is_file():
            found[variant] = {"train": fd / tr, "test": fd / te, "source": "release"}
    for folder, variant in (("main_split", "OBJ_BG"), ("main_split_nobg", "OBJ_ONLY")):
        fd = d / folder
        if variant not in found and ((fd / "train.h5").is_file() or (fd / "test.h5").is_file()):
            found[variant] = {"train": fd / "train.h5", "test": fd / "test.h5", "source": "reference"}
    return found


def _match_scanobjectnn(d: Path) -> LayoutInfo | None:
    variants = _scanobjectnn_variants(d)
    if not variants:
        return None
    return LayoutInfo("scanobjectnn_h5", d, {"variants": {k: {kk: str(vv) for kk, vv in v.items()} for k, v in variants.items()}})


def _match_part_txt(d: Path) -> LayoutInfo | None:
    if (d / "synsetoffset2category.txt").is_file() or (
        d.name == PART_TXT_DIR and (_is_dir(d / "train_test_split") or any(_subdirs(d)))
    ):
        return LayoutInfo("shapenetpart_txt", d, {})
    return None


def _match_render(d: Path) -> LayoutInfo | None:
    has_pc, has_img = _is_dir(d / "ShapeNet"), _is_dir(d / "ShapeNetRendering")
    is_demo = (d / "demo_meta.json").is_file() or (d / ".crosspoint-demo").is_file()
    if is_demo and (has_pc or has_img or _is_dir(d / PART_TXT_DIR)):
        details = {"meta": str(d / "demo_meta.json")}
        if not (d / "demo_meta.json").is_file():
            details["incomplete"] = True
        if _is_dir(d / PART_TXT_DIR):
            details["part_root"] = str(d / PART_TXT_DIR)
        return LayoutInfo("crosspoint_demo", d, details)
    if has_pc or has_img:
        return LayoutInfo(
            "shapenet_render", d, {"has_points": has_pc, "has_renderings": has_img}
        )
    return None


def _match_folder(d: Path) -> LayoutInfo | None:
    from crosspoint.io import SUPPORTED_EXTENSIONS

    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in SUPPORTED_EXTENSIONS}
    classes = []
    for c in _subdirs(d):
        try:
            if any(f.is_file() and f.suffix.lower() in exts for f in c.iterdir()):
                classes.append(c.name)
        except OSError:
            continue
    if not classes:
        try:  # a flat folder of files: one unlabelled class
            if any(f.is_file() and not f.name.startswith(".") and f.suffix.lower() in exts for f in d.iterdir()):
                return LayoutInfo("folder", d, {"classes": [], "flat": True})
        except OSError:
            pass
        return None
    return LayoutInfo("folder", d, {"classes": classes})


def _match_here(d: Path) -> list[LayoutInfo]:
    out = []
    for fn in (_match_render, _match_ply_h5, _match_scanobjectnn, _match_part_txt):
        info = fn(d)
        if info is not None:
            out.append(info)
    return out


def detect_layouts(root) -> list[LayoutInfo]:
    """Every layout recognised at ``root`` or one/two levels below it, best first.

    Raises :class:`DatasetError` when ``root`` does not exist or is not a folder.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder (point at the dataset folder or its parent)")
    root = root.resolve()
    found: list[LayoutInfo] = []
    # ShapeNet/ given directly, with ShapeNetRendering/ beside it.
    if root.name in ("ShapeNet", "ShapeNetRendering") and _is_dir(root.parent / "ShapeNetRendering") and _is_dir(
        root.parent / "ShapeNet"
    ):
        found += [i for i in _match_here(root.parent) if i.name in ("shapenet_render", "crosspoint_demo")]
    # A ScanObjectNN split folder given directly.
    if root.name in ("main_split", "main_split_nobg"):
        info = _match_scanobjectnn(root.parent)
        if info is not None:
            found.append(info)
    found += _match_here(root)
    claimed = {"ShapeNet", "ShapeNetRendering"} if any(i.root == root and i.name in ("shapenet_render", "crosspoint_demo") for i in found) else set()
    if any(i.name == "crosspoint_demo" and i.root == root for i in found):
        claimed.add(PART_TXT_DIR)
    if any(i.name == "scanobjectnn_h5" and i.root == root for i in found):
        claimed |= {"main_split", "main_split_nobg"}
    for child in _subdirs(root):
        if child.name in claimed or child.name == CACHE_DIR_NAME:
            continue
        here = _match_here(child)
        found += here
        if not here:
            for grandchild in _subdirs(child):
                found += [i for i in _match_here(grandchild) if i.name in ("scanobjectnn_h5", "shapenetpart_txt")]
    if not found:
        info = _match_folder(root)
        if info is not None:
            found.append(info)
    seen, unique = set(), []
    for info in found:
        key = (info.name, str(info.root))
        if key not in seen:
            seen.add(key)
            unique.append(info)
    unique.sort(key=lambda i: (LAYOUTS.index(i.name), len(i.root.parts)))
    return unique


def detect_layout(root, task: str | None = None, layout: str | None = None) -> LayoutInfo:
    """The layout to use at ``root``: the best one usable for ``task`` (or named ``layout``).

    Raises :class:`DatasetError` naming the folder and what was looked for when none fits.
    """
    if task is not None and task not in TASK_LAYOUTS:
        raise ValueError(f"unknown task {task!r}: use one of {', '.join(TASK_LAYOUTS)}")
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    found = detect_layouts(root)
    candidates = found
    if layout is not None:
        candidates = [i for i in candidates if i.name == layout]
        if not candidates and layout == "folder":
            info = _match_folder(Path(root).expanduser().resolve())
            candidates = [info] if info is not None else []
    if task is not None:
        order = TASK_LAYOUTS[task]
        candidates = sorted((i for i in candidates if i.name in order), key=lambda i: order.index(i.name))
    if candidates:
        return candidates[0]
    what = f" usable for {task}" if task else ""
    if layout:
        what += f" of layout {layout}"
    if found:
        names = ", ".join(str(i) for i in found)
        wanted = ", ".join(TASK_LAYOUTS[task]) if task else ", ".join(LAYOUTS)
        raise DatasetError(f"{root}: no dataset{what} found (found {names}; {task or 'this'} needs one of: {wanted})")
    raise DatasetError(
        f"{root}: no dataset layout recognised. Expected one of: ShapeNet/ + ShapeNetRendering/ "
        f"(shapenet_render), modelnet40_ply_hdf5_2048/ply_data_*.h5, ScanObjectNN main_split/*.h5, "
        f"shapenet_part_seg_hdf5_data/ply_data_*.h5, {PART_TXT_DIR}/ with synsetoffset2category.txt, "
        f"or one sub-folder per class holding point-cloud/mesh files (or the files themselves)"
    )


def read_demo_meta(path) -> dict:
    """Read ``demo_meta.json``; raises :class:`DatasetError` naming the file when it is unreadable."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path}: unreadable dataset metadata ({e})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    return meta
