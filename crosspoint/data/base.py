"""Pieces shared by the dataset modules: the error type, object references, fixed point counts,
stratified splits and lazily loaded point arrays.

Fixed point count (:func:`fix_point_count`)
-------------------------------------------
Every dataset item has exactly ``num_points`` points:

- ``"first"``: the first ``num_points`` rows, as the reference does for the HDF5 releases
  (ModelNet40, ScanObjectNN, ShapeNetPart ``[:num_points]``) - kept for the SVM protocol;
- ``"random"``: a random subset without replacement (a fresh one per item and epoch in training
  datasets, a fixed one per item in evaluation datasets);

A cloud that already has ``num_points`` points is returned as it is, whatever the method (the
reference feeds ShapeNet's 2048-point PLYs unchanged).
- ``"fps"``: farthest point sampling (:func:`crosspoint.geometry.farthest_point_sample`).

When a cloud has *fewer* points than asked, every method keeps all of them and pads with
randomly chosen duplicates (the usual resampling; a duplicated point changes neither a max-pooled
DGCNN feature much nor the part labels). A cloud with no points is an error.
"""

from __future__ import annotations

from pathlib import Path

import logging
import re
from typing import Iterable, NamedTuple, Sequence

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "ClassificationDataset",
    "DatasetError",
    "ObjectRef",
    "fix_point_count",
    "stratified_split",
    "LazyPoints",
    "natural_key",
    "format_problems",
]


class DatasetError(ValueError):
    """A dataset is missing, partial or broken. The message names the path and what is wrong.

    ``problems`` holds the individual findings when there are several.
    """

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class ObjectRef(NamedTuple):
    """One object of a dataset, for listing in the GUI: ``(name, ref, label)``.

    ``ref`` is a file path, or ``"file.h5#row"`` for a row of an HDF5 file (the syntax
    :func:`crosspoint.io.read_point_cloud` understands); ``label`` is the class (or category)
    index, -1 when unknown.
    """

    name: str
    ref: str
    label: int


def format_problems(header: str, problems: Sequence[str], limit: int = 10) -> str:
    """``header`` followed by up to ``limit`` problems, one a line, and how many more there are."""
    lines = [header]
    lines += [f"  - {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more (run `crosspoint check-data` for the full list)")
    return "\n".join(lines)


def natural_key(s) -> list:
    """Sort key that orders ``train2`` before ``train10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(s))]


def fix_point_count(
    points: np.ndarray,
    num_points: int,
    method: str = "first",
    rng: np.random.Generator | None = None,
    *,
    extra: Sequence[np.ndarray] = (),
):
    """Return ``points`` with exactly ``num_points`` rows (see the module docstring).

    ``extra`` arrays (per-point labels, normals) are indexed the same way; when given, the result
    is ``(points, *extra)``.
    """
    pts = np.asarray(points)
    n = pts.shape[0]
    if n == 0:
        raise ValueError("a point cloud with no points")
    if num_points <= 0:
        raise ValueError(f"num_points must be positive, got {num_points}")
    rng = rng if rng is not None else np.random.default_rng(0)
    if n == num_points:
        idx = None
    elif n >= num_points:
        if method == "first":
            idx = np.arange(num_points)
        elif method == "random":
            idx = rng.permutation(n)[:num_points]
        elif method == "fps":
            from crosspoint.geometry import farthest_point_sample

            idx = np.asarray(farthest_point_sample(pts[:, :3], num_points, seed=int(rng.integers(2**31))))
        else:
            raise ValueError(f"unknown sampling method {method!r}: use 'first', 'random' or 'fps'")
    else:
        pad = rng.integers(0, n, size=num_points - n)
        idx = np.concatenate([np.arange(n), pad])
    if idx is None:
        out = [pts] + [np.asarray(e) for e in extra]
    else:
        out = [pts[idx]] + [np.asarray(e)[idx] for e in extra]
    return tuple(out) if extra else out[0]


def stratified_split(
    labels: Sequence[int] | np.ndarray, val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into ``(train, val)``, stratified by label, deterministic for a seed.

    Each class contributes ``round(val_fraction * n_c)`` items to val, at least one when it has two
    or more items and ``val_fraction > 0``, and always leaves at least one in train. Both arrays
    are sorted. Labels of -1 (unknown) form their own stratum.
    """
    labels = np.asarray(labels).reshape(-1)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng_c = np.random.default_rng([int(seed), 0x7A1, int(c) + 1])
        idx = rng_c.permutation(idx)
        k = int(round(val_fraction * idx.size))
        if val_fraction > 0 and idx.size >= 2:
            k = max(k, 1)
        k = min(k, idx.size - 1)
        val.extend(idx[:k].tolist())
    val = np.array(sorted(val), dtype=np.int64)
    train = np.setdiff1d(np.arange(labels.size), val).astype(np.int64)
    return train, val


class ClassificationDataset:
    """Base of every classification dataset (h5, folder, ShapeNetRender): ``points`` ``(M, N, 3)``
    float32 (an array, or lazy), ``labels`` ``(M,)`` int64, ``class_names``;
    ``ds[i] -> (points (N, 3) float32, label int)``; ``objects() -> [ObjectRef]``."""

    points: np.ndarray
    labels: np.ndarray
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.points[i], int(self.labels[i])

    def objects(self) -> list[ObjectRef]:  # pragma: no cover - overridden
        raise NotImplementedError


class LazyPoints(Sequence):
    """A read-only sequence of ``(N, 3)`` float32 arrays loaded on access.

    ``np.asarray(lazy)`` (or :meth:`load_all`) reads them all into an ``(M, N, 3)`` array.
    """

    def __init__(self, loader, count: int, num_points: int) -> None:
        self._loader = loader
        self._count = int(count)
        self.num_points = int(num_points)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._loader(j) for j in range(*i.indices(self._count))]
        if i < 0:
            i += self._count
        if not 0 <= i < self._count:
            raise IndexError(i)
        return self._loader(i)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self._count, self.num_points, 3)

    def load_all(self, progress: bool = False) -> np.ndarray:
        out = np.empty(self.shape, dtype=np.float32)
        it: Iterable[int] = range(self._count)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc="loading points", unit="obj")
        for i in it:
            out[i] = self._loader(i)
        return out

    def __array__(self, dtype=None, copy=None):
        arr = self.load_all()
        return arr if dtype is None else arr.astype(dtype)


#: the data arguments that name a demo the project generates itself (``crosspoint.data.demo.DEMO_KEYWORDS``
#: says how; here without importing the generator)
DEMO_DATA_KEYWORDS = ("demo", "demo-sensor")


def resolve_root(root, what: str = "data root", *, progress=None) -> Path:
    """The folder that ``root`` names: ``"demo"`` is the embedded demo dataset (generated into the
    user cache the first time, ``progress(done, total)`` meanwhile), ``"demo-sensor"`` its held-out
    seed with sensor-like points (``make-demo --seed 1 --sensor``); anything else must exist
    (:class:`DatasetError` "<what> '<root>': no such folder" otherwise). The one place every command
    and the explorer turn a data argument into a folder."""
    if str(root) in DEMO_DATA_KEYWORDS:
        from crosspoint.data.demo import DEMO_KEYWORDS, ensure_demo

        return Path(ensure_demo(progress, **DEMO_KEYWORDS[str(root)]))
    p = Path(str(root)).expanduser()
    if not p.exists():
        raise DatasetError(f"{what} {str(root)!r}: no such folder")
    return p
