"""The HDF5 releases: ModelNet40, ScanObjectNN and ShapeNetPart, loaded into memory.

All three keep ``data`` ``(M, 2048, 3)`` float32 and ``label`` ``(M,)`` or ``(M, 1)``; ShapeNetPart
adds ``pid`` ``(M, 2048)``, the global part id of every point. As in the reference, an item is the
*first* ``num_points`` points of its row (``data[i][:num_points]``; the SVM protocol depends on
it); a row with fewer points than asked is padded by resampling. Coordinates are used as stored
(the releases are already normalised to the unit sphere).

``ModelNet40H5(root, split="train"|"test", num_points=1024)``
    ``modelnet40_ply_hdf5_2048/ply_data_{split}*.h5``, files in natural order (train0, train1,
    ...; the reference's ``glob`` order is unspecified). Class names from ``shape_names.txt``
    when present, else the standard 40.

``ScanObjectNNH5(root, variant="OBJ_BG"|"OBJ_ONLY"|"PB_T50_RS", split="train"|"test", num_points=1024)``
    The release's ``h5_files/``: OBJ_BG = ``main_split/{training,test}_objectdataset.h5``,
    OBJ_ONLY = ``main_split_nobg/{training,test}_objectdataset.h5``, PB_T50_RS =
    ``main_split/{training,test}_objectdataset_augmentedrot_scale75.h5``. The reference
    repository's repackaging ``main_split/{train,test}.h5`` is accepted as OBJ_BG (and
    ``main_split_nobg/{train,test}.h5`` as OBJ_ONLY) when the release files are absent. 15
    classes.

``ShapeNetPartH5(root, split="train"|"val"|"test"|"trainval", num_points=2048)``
    ``shapenet_part_seg_hdf5_data/ply_data_{split}*.h5`` (``trainval`` = train + val, as the
    reference fine-tunes on). Items ``(points (N, 3) float32, category int, part_labels (N,)
    int64)`` with global part ids. The 16 standard categories; ``all_object_categories.txt``, when
    present, is checked against them.

``root`` may be the dataset folder or a parent of it. Everything is checked at construction
(missing files or datasets, shape mismatches, NaNs, labels or part ids out of range) and reported
as a :class:`~crosspoint.data.base.DatasetError` naming the file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from crosspoint.data.base import ClassificationDataset, DatasetError, ObjectRef, fix_point_count, natural_key
from crosspoint.data.layouts import (
    MODELNET40_CLASSES,
    SCANOBJECTNN_CLASSES,
    SCANOBJECTNN_VARIANTS,
    SHAPENETPART_SYNSETS,
    detect_layouts,
)
from crosspoint.data.partseg import PartSegDataset, PartTable

log = logging.getLogger(__name__)

__all__ = ["ModelNet40H5", "ScanObjectNNH5", "ShapeNetPartH5", "read_h5_rows", "ClassificationDataset"]


def _find_root(root, layout: str) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    found = [i for i in detect_layouts(root) if i.name == layout]
    if not found:
        raise DatasetError(f"{root}: no {layout} dataset found there (nor in its sub-folders)")
    return found[0].root


def read_h5_rows(files: list[Path], keys: tuple[str, ...], num_points: int | None) -> dict:
    """Concatenate ``keys`` of ``files``; ``data``/``pid`` cut to the first ``num_points`` columns.

    Returns ``{key: array, "_file": (M,) index into files, "_row": (M,) row in its file}``.
    Raises :class:`DatasetError` naming the file for anything unreadable or inconsistent.
    """
    import h5py

    out: dict[str, list] = {k: [] for k in keys}
    file_idx, row_idx = [], []
    for fi, path in enumerate(files):
        if not Path(path).is_file():
            raise DatasetError(f"{path}: missing file")
        try:
            with h5py.File(path, "r") as f:
                missing = [k for k in keys if k not in f]
                if missing:
                    raise DatasetError(
                        f"{path}: no dataset named {', '.join(repr(m) for m in missing)} (has {', '.join(sorted(f.keys())) or 'nothing'})"
                    )
                arrays = {}
                for k in keys:
                    ds = f[k]
                    if k in ("data", "pid") and num_points is not None and ds.ndim >= 2:
                        arrays[k] = ds[:, :num_points]
                    else:
                        arrays[k] = ds[()]
        except DatasetError:
            raise
        except Exception as e:  # OSError from h5py on a corrupt/truncated file
            raise DatasetError(f"{path}: unreadable HDF5 file ({e})") from None
        data = arrays.get("data")
        if data is not None and (data.ndim != 3 or data.shape[2] < 3):
            raise DatasetError(f"{path}: 'data' has shape {data.shape}, expected (objects, points, 3)")
        m = None
        for k, a in arrays.items():
            if k == "label":
                a = np.asarray(a).reshape(a.shape[0], -1)
                if a.shape[1] != 1:
                    raise DatasetError(f"{path}: 'label' has shape {arrays[k].shape}, expected (objects,) or (objects, 1)")
                a = a[:, 0]
                arrays[k] = a
            if m is None:
                m = a.shape[0]
            elif a.shape[0] != m:
                raise DatasetError(f"{path}: '{k}' has {a.shape[0]} rows but '{keys[0]}' has {m}")
        if data is not None and "pid" in arrays and arrays["pid"].shape[:2] != data.shape[:2]:
            raise DatasetError(f"{path}: 'pid' has shape {arrays['pid'].shape}, 'data' {data.shape}")
        for k in keys:
            out[k].append(arrays[k])
        file_idx.append(np.full(m or 0, fi, dtype=np.int32))
        row_idx.append(np.arange(m or 0, dtype=np.int64))
    result = {k: np.concatenate(v, axis=0) if v else np.zeros((0,)) for k, v in out.items()}
    result["_file"] = np.concatenate(file_idx) if file_idx else np.zeros(0, np.int32)
    result["_row"] = np.concatenate(row_idx) if row_idx else np.zeros(0, np.int64)
    return result


def _check_finite(data: np.ndarray, files: list[Path], file_idx, row_idx) -> None:
    bad = ~np.isfinite(data.reshape(data.shape[0], -1)).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{files[file_idx[first]]}: {int(bad.sum())} object(s) with NaN/inf coordinates, first at row {int(row_idx[first])}"
        )


def _check_labels(labels: np.ndarray, n: int, what: str, files, file_idx, row_idx) -> None:
    bad = (labels < 0) | (labels >= n)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{files[file_idx[first]]}: {what} {int(labels[first])} at row {int(row_idx[first])} is out of range 0..{n - 1} "
            f"({int(bad.sum())} row(s) affected)"
        )


def _pad_rows(data: np.ndarray, num_points: int, extra: np.ndarray | None = None):
    if data.shape[1] >= num_points:
        return data, extra
    rows, rows_extra = [], []
    for i in range(data.shape[0]):
        res = fix_point_count(data[i], num_points, "first", np.random.default_rng([i]), extra=() if extra is None else (extra[i],))
        if extra is None:
            rows.append(res)
        else:
            rows.append(res[0])
            rows_extra.append(res[1])
    return np.stack(rows), (np.stack(rows_extra) if extra is not None else None)


class _H5Classification(ClassificationDataset):
    def _load(self, files: list[Path], num_points: int, class_names: list[str]) -> None:
        if not files:
            raise DatasetError(f"{self.root}: no {self.split} files")
        rows = read_h5_rows(files, ("data", "label"), num_points)
        self.files = list(files)
        self._file, self._row = rows["_file"], rows["_row"]
        data = np.asarray(rows["data"][:, :, :3], dtype=np.float32)
        _check_finite(data, files, self._file, self._row)
        labels = np.asarray(rows["label"]).astype(np.int64)
        _check_labels(labels, len(class_names), "label", files, self._file, self._row)
        data, _ = _pad_rows(data, num_points)
        self.points = np.ascontiguousarray(data)
        self.labels = labels
        self.class_names = list(class_names)
        if len(self.labels) == 0:
            raise DatasetError(f"{self.root}: the {self.split} files hold no objects")

    def objects(self) -> list[ObjectRef]:
        out = []
        for i in range(len(self)):
            f = self.files[self._file[i]]
            out.append(ObjectRef(f"{self.class_names[self.labels[i]]}/{f.stem}#{self._row[i]}", f"{f}#{self._row[i]}", int(self.labels[i])))
        return out


def _read_names(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    try:
        names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: unreadable ({e})") from None
    return names or None


class ModelNet40H5(_H5Classification):
    """ModelNet40 (``modelnet40_ply_hdf5_2048``) for the SVM/few-shot protocols."""

    def __init__(self, root, split: str = "train", num_points: int = 1024) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.root = _find_root(root, "modelnet40_h5")
        self.split = split
        self.num_points = int(num_points)
        files = sorted(self.root.glob(f"ply_data_{split}*.h5"), key=natural_key)
        if not files:
            raise DatasetError(f"{self.root}: no ply_data_{split}*.h5 files (partial ModelNet40 download?)")
        names = _read_names(self.root / "shape_names.txt") or list(MODELNET40_CLASSES)
        self._load(files, self.num_points, names)


class ScanObjectNNH5(_H5Classification):
    """ScanObjectNN (h5_files release, or the reference's repackaging) for the SVM/few-shot protocols."""

    def __init__(self, root, variant: str = "OBJ_BG", split: str = "train", num_points: int = 1024) -> None:
        if variant not in SCANOBJECTNN_VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(SCANOBJECTNN_VARIANTS)}, got {variant!r}")
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.root = _find_root(root, "scanobjectnn_h5")
        self.variant, self.split, self.num_points = variant, split, int(num_points)
        folder, tr, te = SCANOBJECTNN_VARIANTS[variant]
        path = self.root / folder / (tr if split == "train" else te)
        if not path.is_file():
            alt = self.root / folder / ("train.h5" if split == "train" else "test.h5")
            if variant != "PB_T50_RS" and alt.is_file() and not (self.root / folder / (te if split == "train" else tr)).is_file():
                path = alt
                self.source = "reference"
            else:
                raise DatasetError(f"{path}: missing file for ScanObjectNN {variant} {split} split")
        else:
            self.source = "release"
        self._load([path], self.num_points, list(SCANOBJECTNN_CLASSES))


class ShapeNetPartH5(PartSegDataset):
    """ShapeNetPart part segmentation from ``shapenet_part_seg_hdf5_data``."""

    def __init__(self, root, split: str = "train", num_points: int = 2048) -> None:
        if split not in ("train", "val", "test", "trainval"):
            raise ValueError(f"split must be 'train', 'val', 'test' or 'trainval', got {split!r}")
        self.root = _find_root(root, "shapenetpart_h5")
        self.split, self.num_points = split, int(num_points)
        parts = ("train", "val") if split == "trainval" else (split,)
        files: list[Path] = []
        for p in parts:
            got = sorted(self.root.glob(f"ply_data_{p}*.h5"), key=natural_key)
            if not got:
                raise DatasetError(f"{self.root}: no ply_data_{p}*.h5 files (partial ShapeNetPart download?)")
            files += got
        table = PartTable.standard()
        names = _read_names(self.root / "all_object_categories.txt")
        if names:
            listed = [n.split()[-1] for n in names]
            if listed != list(SHAPENETPART_SYNSETS):
                log.warning("%s lists other categories than the standard 16; using the standard table",
                            self.root / "all_object_categories.txt")
        rows = read_h5_rows(files, ("data", "label", "pid"), self.num_points)
        self.files = files
        self._file, self._row = rows["_file"], rows["_row"]
        data = np.asarray(rows["data"][:, :, :3], dtype=np.float32)
        _check_finite(data, files, self._file, self._row)
        cats = np.asarray(rows["label"]).astype(np.int64)
        _check_labels(cats, table.num_categories, "category", files, self._file, self._row)
        pid = np.asarray(rows["pid"]).astype(np.int64)
        lo, hi = table.part_start[cats][:, None], table.part_stop[cats][:, None]
        bad = ((pid < lo) | (pid >= hi)).any(axis=1)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            c = int(cats[first])
            raise DatasetError(
                f"{files[self._file[first]]}: part ids of row {int(self._row[first])} ({table.category_names[c]}) "
                f"outside its range {table.part_start[c]}..{table.part_stop[c] - 1} ({int(bad.sum())} row(s) affected)"
            )
        data, pid = _pad_rows(data, self.num_points, pid)
        self.table = table
        self.points = np.ascontiguousarray(data)
        self.categories = cats
        self.part_labels = pid
        if len(self.categories) == 0:
            raise DatasetError(f"{self.root}: the {split} files hold no objects")

    def __len__(self) -> int:
        return int(self.categories.shape[0])

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.points[i], int(self.categories[i]), self.part_labels[i]

    def objects(self) -> list[ObjectRef]:
        out = []
        for i in range(len(self)):
            f = self.files[self._file[i]]
            c = int(self.categories[i])
            out.append(ObjectRef(f"{self.category_names[c]}/{f.stem}#{self._row[i]}", f"{f}#{self._row[i]}", c))
        return out

