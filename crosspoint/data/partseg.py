"""ShapeNetPart part segmentation: the category/part table, and the txt release.

Part numbering
--------------
Part labels are *global* ids: each category owns a contiguous range. The standard table
(:meth:`PartTable.standard`) is ShapeNetPart's 16 categories ``airplane bag cap car chair earphone
guitar knife lamp laptop motorbike mug pistol rocket skateboard table`` with 4, 2, 2, 4, 4, 3, 3,
2, 4, 2, 6, 2, 3, 3, 3, 3 parts, ids 0..49 in that order. The demo dataset has its own table, read
from ``demo_meta.json`` (:meth:`PartTable.from_demo_meta`), so code must use ``num_categories``,
``num_parts``, ``part_ranges`` rather than 16 / 50.

Every part-segmentation dataset (:class:`ShapeNetPartTxt`, :class:`~crosspoint.data.h5data.ShapeNetPartH5`)
exposes ``table`` and, through it, ``category_names``, ``parts_per_category``, ``num_categories``,
``num_parts``, ``part_ranges`` (``[(start, stop), ...]``, stop exclusive), ``part_names`` and
``objects()``; ``ds[i] -> (points (N, 3) float32, category int, part_labels (N,) int64)``.

The txt release
---------------
``shapenetcore_partanno_segmentation_benchmark_v0_normal/``::

    synsetoffset2category.txt                          # "Airplane<TAB>02691156", category order
    <synset>/<id>.txt                                  # "x y z nx ny nz part" per point
    train_test_split/shuffled_{train,val,test}_file_list.json   # ["shape_data/<synset>/<id>", ...]

``ShapeNetPartTxt(root, split="train"|"val"|"test"|"trainval", num_points=2048, seed=0)``. Files
hold about 2-3k points each; an item has exactly ``num_points``: a random subset (padded by
resampling when the file has fewer) drawn from ``item_rng(seed, epoch, i)`` - call
:meth:`ShapeNetPartTxt.set_epoch` in training; evaluation at epoch 0 is deterministic.
``sampling="first"`` takes the first points instead. Coordinates are used as stored. The
standard table is used when every category is a standard one; otherwise ``demo_meta.json`` in the
folder or its parent must give the table.

At construction every split entry must name an existing file and every category must be known
(:class:`~crosspoint.data.base.DatasetError` otherwise); contents are read lazily, and a file that
turns out unreadable, with NaNs or with part ids outside its category's range raises a
``DatasetError`` naming it (``check-data`` finds those up front).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crosspoint.data.base import DatasetError, ObjectRef, fix_point_count, format_problems
from crosspoint.data.layouts import (
    PART_TXT_DIR,
    SHAPENETPART_CATEGORIES,
    SHAPENETPART_PARTS,
    SHAPENETPART_SYNSETS,
    detect_layouts,
    read_demo_meta,
)

log = logging.getLogger(__name__)

__all__ = ["PartTable", "PartSegDataset", "ShapeNetPartTxt", "scan_part_txt", "read_part_txt"]

SPLIT_FILES = {s: f"shuffled_{s}_file_list.json" for s in ("train", "val", "test")}


@dataclass
class PartTable:
    """Categories and their global part-id ranges."""

    category_names: list[str]
    part_start: np.ndarray  # (C,) int64
    part_stop: np.ndarray  # (C,) int64, exclusive
    num_parts: int
    synsets: list[str] | None = None
    part_names: list[str] | None = None  # global id -> name, when known

    @classmethod
    def standard(cls) -> "PartTable":
        counts = np.array(SHAPENETPART_PARTS, dtype=np.int64)
        stop = np.cumsum(counts)
        return cls(list(SHAPENETPART_CATEGORIES), stop - counts, stop, int(stop[-1]), list(SHAPENETPART_SYNSETS))

    @classmethod
    def from_demo_meta(cls, meta: dict, path="demo_meta.json") -> "PartTable":
        classes = meta.get("classes")
        if not isinstance(classes, list) or not classes:
            raise DatasetError(f"{path}: no 'classes' list")
        names, syn, start, stop = [], [], [], []
        for c in classes:
            try:
                ids = [int(i) for i in c["part_ids"]]
                names.append(str(c["name"]))
                syn.append(str(c["synset"]))
            except (KeyError, TypeError, ValueError):
                raise DatasetError(f"{path}: class entry {c!r} lacks name/synset/part_ids") from None
            if not ids or ids != list(range(ids[0], ids[0] + len(ids))):
                raise DatasetError(f"{path}: part ids of {c.get('name')} are not a contiguous range: {ids}")
            start.append(ids[0])
            stop.append(ids[-1] + 1)
        n_parts = int(meta.get("n_parts", max(stop)))
        part_names = meta.get("part_names")
        if not (isinstance(part_names, list) and len(part_names) == n_parts):
            part_names = None
        return cls(names, np.array(start, np.int64), np.array(stop, np.int64), n_parts, syn, part_names)

    @classmethod
    def from_meta(cls, meta: dict) -> "PartTable":
        """The table of :meth:`to_meta`'s dict (a checkpoint's ``meta["part_table"]``)."""
        return cls(list(meta["category_names"]), np.asarray(meta["part_start"], np.int64),
                   np.asarray(meta["part_stop"], np.int64), int(meta["num_parts"]), meta.get("synsets"),
                   meta.get("part_names"))

    def to_meta(self) -> dict:
        """The table as plain types (for checkpoint ``meta`` and JSON results); :meth:`from_meta` reads it."""
        return {"category_names": list(self.category_names), "part_start": [int(v) for v in self.part_start],
                "part_stop": [int(v) for v in self.part_stop], "num_parts": int(self.num_parts),
                "synsets": list(self.synsets) if self.synsets else None,
                "part_names": list(self.part_names) if self.part_names else None}

    @property
    def num_categories(self) -> int:
        return len(self.category_names)

    @property
    def parts_per_category(self) -> list[int]:
        return (self.part_stop - self.part_start).tolist()

    @property
    def part_ranges(self) -> list[tuple[int, int]]:
        return [(int(a), int(b)) for a, b in zip(self.part_start, self.part_stop)]

    def category_of_part(self) -> np.ndarray:
        """``(num_parts,)`` the category owning each global part id (-1 for unowned ids)."""
        out = np.full(self.num_parts, -1, dtype=np.int64)
        for c, (a, b) in enumerate(self.part_ranges):
            out[a:b] = c
        return out


class PartSegDataset:
    """Base class: subclasses set ``self.table`` and implement ``__len__``, ``__getitem__``, ``objects``."""

    table: PartTable

    @property
    def category_names(self) -> list[str]:
        return list(self.table.category_names)

    @property
    def parts_per_category(self) -> list[int]:
        return self.table.parts_per_category

    @property
    def num_categories(self) -> int:
        return self.table.num_categories

    @property
    def num_parts(self) -> int:
        return self.table.num_parts

    @property
    def part_ranges(self) -> list[tuple[int, int]]:
        return self.table.part_ranges

    @property
    def part_names(self) -> list[str] | None:
        return self.table.part_names


# ------------------------------------------------------------------------------------- txt layout


@dataclass
class PartTxtIndex:
    root: Path
    table: PartTable
    category_synsets: list[str]  # in category order
    splits: dict[str, list[tuple[str, str]]]  # split -> [(synset, id)] of entries naming existing files
    problems: list[str]
    warnings: list[str]
    n_files: int

    def path(self, synset: str, obj_id: str) -> Path:
        return self.root / synset / f"{obj_id}.txt"


def _find_txt_root(root) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    if (root / "synsetoffset2category.txt").is_file() or root.name == PART_TXT_DIR:
        return root
    for info in detect_layouts(root):
        if info.name == "shapenetpart_txt":
            return info.root
        if info.name == "crosspoint_demo" and info.details.get("part_root"):
            return Path(info.details["part_root"])
    raise DatasetError(f"{root}: no ShapeNetPart txt dataset ({PART_TXT_DIR}/ with synsetoffset2category.txt) found")


def _read_json_list(path: Path, problems: list[str]) -> list[str] | None:
    try:
        with open(path, encoding="utf-8") as f:
            val = json.load(f)
    except (OSError, ValueError) as e:
        problems.append(f"{path}: unreadable split file ({e})")
        return None
    if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
        problems.append(f"{path}: expected a JSON list of 'shape_data/<synset>/<id>' strings")
        return None
    return val


def scan_part_txt(root) -> PartTxtIndex:
    """Index the txt release: categories, split entries, and what is missing (no file contents read)."""
    root = _find_txt_root(root)
    problems: list[str] = []
    warnings: list[str] = []
    cat_file = root / "synsetoffset2category.txt"
    names, synsets = [], []
    if not cat_file.is_file():
        problems.append(f"{cat_file}: missing (the category list)")
    else:
        for ln_no, line in enumerate(cat_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                problems.append(f"{cat_file}:{ln_no}: expected '<Name> <synset>', got {line!r}")
                continue
            names.append(parts[0].lower())
            synsets.append(parts[1])
    # the part table
    meta_path = next((p / "demo_meta.json" for p in (root, root.parent) if (p / "demo_meta.json").is_file()), None)
    table = None
    if meta_path is not None:
        try:
            table = PartTable.from_demo_meta(read_demo_meta(meta_path), meta_path)
        except DatasetError as e:
            problems.append(str(e))
    if table is None and names and all(n in SHAPENETPART_CATEGORIES for n in names):
        table = PartTable.standard()
    if table is None:
        if names:
            unknown = [n for n in names if n not in SHAPENETPART_CATEGORIES]
            problems.append(
                f"{cat_file}: categories {', '.join(unknown)} are not ShapeNetPart's and no demo_meta.json gives their parts"
            )
        table = PartTable([], np.zeros(0, np.int64), np.zeros(0, np.int64), 0, [])
    # categories listed must be in the table and have a folder
    table_syn = table.synsets or []
    cat_syn: list[str] = []
    for n, s in zip(names, synsets):
        if s not in table_syn and n not in table.category_names:
            problems.append(f"{cat_file}: category {n} ({s}) is not in the part table")
        if not (root / s).is_dir():
            problems.append(f"{root / s}: missing folder of category {n}")
        cat_syn.append(s)
    syn_to_cat = {}
    for c, name in enumerate(table.category_names):
        s = table_syn[c] if c < len(table_syn) else None
        if s is not None:
            syn_to_cat[s] = c
    for n, s in zip(names, synsets):  # a category file naming standard categories by name
        if s not in syn_to_cat and n in table.category_names:
            syn_to_cat[s] = table.category_names.index(n)
    # split files
    splits: dict[str, list[tuple[str, str]]] = {}
    listed = set()
    n_missing = 0
    for split, fname in SPLIT_FILES.items():
        sf = root / "train_test_split" / fname
        if not sf.is_file():
            problems.append(f"{sf}: missing split file")
            splits[split] = []
            continue
        entries = _read_json_list(sf, problems) or []
        good = []
        for e in entries:
            bits = e.strip("/").split("/")
            if len(bits) < 2:
                problems.append(f"{sf}: malformed entry {e!r}")
                continue
            syn, oid = bits[-2], bits[-1]
            if syn not in syn_to_cat:
                problems.append(f"{sf}: entry {e} names unknown category {syn}")
                continue
            if not (root / syn / f"{oid}.txt").is_file():
                n_missing += 1
                if n_missing <= 20:
                    problems.append(f"{sf}: entry {e} names a missing file {root / syn / (oid + '.txt')}")
                continue
            good.append((syn, oid))
            listed.add((syn, oid))
        splits[split] = good
        if not entries and sf.is_file():
            warnings.append(f"{sf}: empty split")
    if n_missing > 20:
        problems.append(f"... {n_missing - 20} more split entries name missing files")
    n_files = 0
    unlisted = []
    for s in cat_syn:
        d = root / s
        if not d.is_dir():
            continue
        files = sorted(d.glob("*.txt"))
        n_files += len(files)
        if not files:
            problems.append(f"{d}: empty category folder (no .txt files)")
        unlisted += [f for f in files if (s, f.stem) not in listed]
    if unlisted:
        warnings.append(f"{len(unlisted)} file(s) are in no split and are ignored, e.g. {unlisted[0]}")
    for c, name in enumerate(table.category_names):
        if table_syn and c < len(table_syn) and table_syn[c] in cat_syn:
            if not any(syn_to_cat.get(s) == c for s, _ in splits.get("train", [])) and splits.get("train"):
                warnings.append(f"category {name} has no training objects")
    idx = PartTxtIndex(root, table, cat_syn, splits, problems, warnings, n_files)
    idx.syn_to_cat = syn_to_cat  # type: ignore[attr-defined]
    return idx


def read_part_txt(path) -> tuple[np.ndarray, np.ndarray]:
    """``(points (M, 3) float32, part labels (M,) int64)`` of a ``x y z nx ny nz part`` file.

    Raises :class:`DatasetError` naming the file when it is unreadable, malformed, empty, or has
    non-finite values or non-integer labels.
    """
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: unreadable ({e})") from None
    try:
        vals = np.array(text.split(), dtype=np.float64)
    except ValueError:
        raise DatasetError(f"{path}: not a table of numbers") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DatasetError(f"{path}: empty file")
    ncol = len(lines[0].split())
    if ncol not in (4, 7) or vals.size != ncol * len(lines):
        raise DatasetError(f"{path}: expected 7 columns (x y z nx ny nz part) on every line, first line has {ncol}")
    arr = vals.reshape(len(lines), ncol)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr).all(axis=1)).sum())
        raise DatasetError(f"{path}: {bad} line(s) with NaN/inf values")
    lab = arr[:, -1]
    if not np.all(lab == np.round(lab)):
        raise DatasetError(f"{path}: part labels (last column) are not integers")
    return arr[:, :3].astype(np.float32), lab.astype(np.int64)


class ShapeNetPartTxt(PartSegDataset):
    """ShapeNetPart (or demo) part segmentation from the txt release (see the module docstring)."""

    def __init__(
        self,
        root,
        split: str = "train",
        num_points: int = 2048,
        seed: int = 0,
        *,
        sampling: str = "random",
        cache: bool = True,
    ) -> None:
        if split not in ("train", "val", "test", "trainval"):
            raise ValueError(f"split must be 'train', 'val', 'test' or 'trainval', got {split!r}")
        index = scan_part_txt(root)
        needed = ("train", "val") if split == "trainval" else (split,)
        problems = [
            p for p in index.problems
            if not any(SPLIT_FILES[s] in p for s in SPLIT_FILES if s not in needed)
        ]
        if problems:
            raise DatasetError(format_problems(f"{index.root}: broken ShapeNetPart txt dataset:", problems), problems)
        self.root = index.root
        self.table = index.table
        self.split, self.num_points, self.seed, self.sampling = split, int(num_points), int(seed), sampling
        self.epoch = 0
        entries = [e for s in needed for e in index.splits[s]]
        if not entries:
            raise DatasetError(f"{self.root}: the {split} split is empty")
        syn_to_cat = index.syn_to_cat  # type: ignore[attr-defined]
        self._entries = entries
        self._paths = [index.path(s, o) for s, o in entries]
        self.categories = np.array([syn_to_cat[s] for s, _ in entries], dtype=np.int64)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._entries)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """All points and part labels of object ``i``, checked against its category's part range."""
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        pts, lab = read_part_txt(self._paths[i])
        c = int(self.categories[i])
        a, b = self.table.part_ranges[c]
        bad = (lab < a) | (lab >= b)
        if bad.any():
            raise DatasetError(
                f"{self._paths[i]}: {int(bad.sum())} part label(s) outside {self.table.category_names[c]}'s range "
                f"{a}..{b - 1} (e.g. {int(lab[bad][0])})"
            )
        if self._cache is not None:
            self._cache[i] = (pts, lab)
        return pts, lab

    def __getitem__(self, i: int):
        from crosspoint.data.transforms import item_rng

        if not 0 <= i < len(self):
            raise IndexError(i)
        pts, lab = self.load(i)
        method = "first" if self.sampling == "first" else "random"
        pts, lab = fix_point_count(pts, self.num_points, method, item_rng(self.seed, self.epoch, i), extra=(lab,))
        return np.ascontiguousarray(pts, dtype=np.float32), int(self.categories[i]), np.ascontiguousarray(lab)

    def objects(self) -> list[ObjectRef]:
        return [
            ObjectRef(f"{self.table.category_names[int(c)]}/{o}", str(p), int(c))
            for (s, o), p, c in zip(self._entries, self._paths, self.categories)
        ]
