"""The common machinery of the pretraining datasets (:class:`ShapeNetRenderDataset`,
:class:`FolderPretrainDataset`).

An item is a dict::

    {"points1": (N, 3) float32 tensor,   # one augmentation of the object's points
     "points2": (N, 3) float32 tensor,   # another, independent augmentation
     "image":   (3, S, S) float32 tensor, # one random view of the object, augmented
     "index":   int,                      # position in this dataset
     "label":   int}                      # class / synset index, -1 when unknown

Randomness. With an integer ``seed`` (the default, 0) everything random about item ``i`` - the
point subset when a file has more than ``num_points`` points, both point augmentations, the
choice of view and the image augmentation - comes from ``item_rng(seed, epoch, i)``; call
:meth:`PretrainDataset.set_epoch` at the start of every epoch (the same augmentations repeat
otherwise). Results then do not depend on the number of DataLoader workers or the batch order.
With ``seed=None`` the dataset draws from the worker's generators instead (seeded by
:func:`crosspoint.data.transforms.worker_init_fn`): reproducible for a given DataLoader
generator and number of workers only.

The ``seed`` also fixes the held-out validation split (``split="train"|"val"``, stratified by
class, ``val_fraction`` of each class): the engine selects its ``best`` checkpoint by linear-SVM
accuracy on that split, never on a test set.

Views. ``background`` says what becomes of a view's transparent pixels
(:func:`crosspoint.data.transforms.to_rgb`): "drop" (the reference's ``convert("RGB")``),
"white" or "black". The pretraining engine passes the config's ``data.background``; the
constructors' default "white" is the project's behaviour before that setting existed.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

from crosspoint.data.base import DatasetError, ObjectRef, fix_point_count, stratified_split
from crosspoint.data.transforms import (
    Compose,
    FastPaperImageAugmentation,
    _background_rgb,
    decode_view,
    item_rng,
    load_rgb,
    paper_image_augmentation,
    paper_point_augmentation,
    process_rng,
    seeded_torch,
)

log = logging.getLogger(__name__)

try:  # subclass torch's Dataset when available (it always is in the venv)
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # pragma: no cover
    _TorchDataset = object


def select_split(labels: np.ndarray, split: str | None, val_fraction: float, seed: int | None) -> np.ndarray:
    """Indices (into the full, sorted object list) of ``split``: None/"all", "train" or "val"."""
    labels = np.asarray(labels)
    if split in (None, "all"):
        return np.arange(labels.size)
    if split not in ("train", "val"):
        raise ValueError(f"split must be None, 'train' or 'val', got {split!r}")
    train, val = stratified_split(labels, val_fraction, 0 if seed is None else seed)
    return train if split == "train" else val


class PretrainDataset(_TorchDataset):
    """Base class. Subclasses fill ``self._refs`` (list of :class:`ObjectRef`, the selected split),
    ``self._labels``, ``self.class_names`` and implement ``_load_points(i)`` (raw ``(M, 3)``) and
    ``_view_paths(i)`` (list of image paths)."""

    def __init__(
        self,
        num_points: int = 2048,
        image_size: int = 224,
        *,
        seed: int | None = 0,
        point_transform: Callable | None = None,
        image_transform: Callable | None = None,
        background="white",
        sampling: str = "random",
    ) -> None:
        self.num_points = int(num_points)
        self.image_size = int(image_size)
        self.seed = seed
        self.epoch = 0
        self.point_transform = point_transform if point_transform is not None else paper_point_augmentation()
        self.image_transform = image_transform if image_transform is not None else paper_image_augmentation(image_size)
        # the default chain runs as FastPaperImageAugmentation (the same tensors, bit for bit) while
        # image_transform is still the object made here; kernels compiled now, before any fork
        self._fast_image = None
        if image_transform is None:
            fast = FastPaperImageAugmentation(self.image_size)
            if fast.warm_up():
                self._fast_image = (self.image_transform, fast)
        self._torch_gen = None
        _background_rgb(background)  # an unknown background fails here, not in a DataLoader worker
        self.background = background
        self.sampling = sampling
        #: an optional :class:`~crosspoint.data.transforms.PartialView` for the second point copy
        #: (the config's ``data.partial_view``; None: both copies see the whole object, as the paper)
        self.partial_view = None
        self._refs: list[ObjectRef] = []
        self._labels = np.zeros(0, dtype=np.int64)
        self.class_names: list[str] = []
        self._warned_views: set[str] = set()

    # -- public ------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the augmentations of ``epoch`` (with an integer ``seed``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._refs)

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def objects(self) -> list[ObjectRef]:
        """``(name, path, label)`` of every object in this split, for the GUI."""
        return list(self._refs)

    def __getitem__(self, index: int) -> dict:
        import torch

        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = item_rng(self.seed, self.epoch, index) if self.seed is not None else process_rng()
        raw = self._load_points(index)
        pts = fix_point_count(raw, self.num_points, self.sampling, rng)
        if self.partial_view is not None:
            a1, a2, _ = two_point_copies(self.point_transform, self.partial_view, pts, rng)
        elif type(self.point_transform) is Compose:  # the same two draws, the shared normalisation once
            a1, a2 = self.point_transform.repeat(pts, rng, 2)
        else:
            a1 = apply_point_transform(self.point_transform, pts, rng)
            a2 = apply_point_transform(self.point_transform, pts, rng)
        fast = self._fast_image[1] if self._fast_image and self._fast_image[0] is self.image_transform else None
        if fast is not None:
            view = self._load_view(index, rng, size=self.image_size)
            gen = None
            if self.seed is not None:
                if self._torch_gen is None:
                    self._torch_gen = torch.Generator()
                gen = self._torch_gen.manual_seed(int(rng.integers(2**62)))
            img = fast.augment_array(view, gen)
        else:
            image = self._load_view(index, rng)
            torch_seed = int(rng.integers(2**62)) if self.seed is not None else None
            with seeded_torch(torch_seed):
                img = self.image_transform(image)
        return {
            "points1": torch.from_numpy(np.ascontiguousarray(a1[:, :3], dtype=np.float32)),
            "points2": torch.from_numpy(np.ascontiguousarray(a2[:, :3], dtype=np.float32)),
            "image": img,
            "index": int(index),
            "label": int(self._labels[index]),
        }

    # -- helpers -----------------------------------------------------------------------------
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_torch_gen"] = None  # made again where it is used
        return state

    def _load_view(self, index: int, rng: np.random.Generator, size: int | None = None):
        """A random readable view: :func:`load_rgb` (a PIL image), or with ``size`` the uint8 array
        of :func:`~crosspoint.data.transforms.decode_view` at that size."""
        paths: Sequence = self._view_paths(index)
        if not paths:
            raise DatasetError(f"{self._refs[index].ref}: no rendered views")
        order = rng.permutation(len(paths))
        errors = []
        for k in order:
            path = paths[int(k)]
            try:
                if size is not None:
                    return decode_view(path, self.background, size)
                return load_rgb(path, self.background)
            except Exception as e:  # unreadable PNG: try another view of the same object
                errors.append(f"{path}: {e}")
                if str(path) not in self._warned_views:
                    self._warned_views.add(str(path))
                    log.warning("unreadable view %s (%s); using another view of the object", path, e)
        raise DatasetError(f"{self._refs[index].ref}: none of its {len(paths)} views can be read: {errors[0]}")

    def _load_points(self, index: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _view_paths(self, index: int) -> list:  # pragma: no cover - abstract
        raise NotImplementedError


def apply_point_transform(transform, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Call ``transform(points, rng)`` for our transforms, ``transform(points)`` for any other callable."""
    from crosspoint.data.transforms import PointTransform

    if isinstance(transform, PointTransform):
        return transform(points, rng)
    out = transform(points)
    if hasattr(out, "numpy"):
        out = out.numpy()
    return np.asarray(out, dtype=np.float32)


def two_point_copies(transform, partial, points: np.ndarray, rng: np.random.Generator, keep=None, trace=None):
    """``(copy 1, copy 2, keep)``: ``transform`` applied twice to ``points``, the second time to the
    partial view that ``partial`` (a :class:`~crosspoint.data.transforms.PartialView`) draws with
    probability ``partial.p``. ``keep`` ``(N,)`` bool says which points copy 2 still holds at their
    own index (all True when no partial view was drawn). Passing ``keep`` imposes that mask instead
    of the drawn one while consuming the same draws from ``rng`` (a replay on mirrored points).
    ``trace``, a list, receives ``(the generator's state, the input)`` of each of the two transforms
    (:func:`surviving_rows`)."""
    if trace is not None:
        trace.append((rng.bit_generator.state, points))
    a1 = apply_point_transform(transform, points, rng)
    drawn = partial is not None and not (partial.p < 1.0 and rng.uniform() > partial.p)
    if drawn:
        mask = partial.keep(points, rng)
        keep = mask if keep is None else np.asarray(keep, bool)
        src = partial.fill(np.array(points, dtype=np.float32, copy=True), keep, rng)
    else:
        keep = np.ones(len(points), bool)
        src = points
    if trace is not None:
        trace.append((rng.bit_generator.state, src))
    a2 = apply_point_transform(transform, src, rng)
    return a1, a2, keep


def surviving_rows(transform, points: np.ndarray, state: dict) -> np.ndarray:
    """``(N,)`` bool: the rows of ``transform(points)`` that are still the input's own row, when it
    runs from the generator state ``state`` (a ``bit_generator.state``). A transform may replace rows
    by others (:class:`~crosspoint.data.transforms.RandomInputDropout` replaces dropped points by the
    first one); this replays it, with the same draws, on the points carrying their row number in a
    fourth column (every built-in transform moves only columns 0-2, or 3-5 from six columns on).
    Transforms of other libraries cannot be replayed: all True."""
    from crosspoint.data.transforms import PointTransform

    n = len(points)
    if not isinstance(transform, PointTransform):
        return np.ones(n, bool)
    gen = np.random.Generator(getattr(np.random, state["bit_generator"])())
    gen.bit_generator.state = state
    rows = np.arange(n, dtype=np.float32)
    tagged = np.empty((n, 4), np.float32)
    tagged[:, :3] = np.asarray(points)[:, :3]
    tagged[:, 3] = rows
    return transform(tagged, gen)[:, 3] == rows


def read_points_file(path, max_points: int | None = None) -> np.ndarray:
    """Points ``(M, 3)`` float32 of a file via :func:`crosspoint.io.read_point_cloud`.

    Raises :class:`DatasetError` naming the file when it cannot be read, has no points or has
    non-finite coordinates.
    """
    from crosspoint.io import read_point_cloud

    try:
        pc = read_point_cloud(path, max_points=max_points)
    except (ValueError, OSError) as e:  # ReadError is a ValueError
        raise DatasetError(f"{path}: unreadable point file ({e})") from None
    pts = np.asarray(pc.points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[0] == 0:
        raise DatasetError(f"{path}: no points")
    if not np.isfinite(pts).all():
        raise DatasetError(f"{path}: non-finite (NaN/inf) coordinates")
    return pts
