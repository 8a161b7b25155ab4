"""Point and image augmentations of CrossPoint, and the seeding that makes them reproducible.

Point transforms
----------------
Every point transform is a small class that works on a ``(N, C)`` float32 NumPy array
(``C >= 3``; columns 0-2 are xyz, and a rotation also turns columns 3-5 when ``C >= 6``, i.e.
normals) and returns a new array; the input is never modified. Randomness comes from a
:class:`numpy.random.Generator`:

- ``transform(points, rng)`` uses the generator passed in (what the datasets do: one generator
  per item, derived from ``(seed, epoch, index)``, see :func:`item_rng`);
- ``transform(points)`` uses the generator given to the constructor (``rng=`` a Generator or an
  int seed), or else this process's generator (:func:`process_rng`), which
  :func:`worker_init_fn` and :func:`seed_everything` reseed, so DataLoader workers differ.

``Compose([...])(points, rng)`` threads one generator through its transforms in order.

The paper's augmentation (:func:`paper_point_augmentation`) is the reference implementation's
``trans_1``/``trans_2`` chain, every step with probability 1:

1. :class:`Normalize` - centre on the centroid (mean), divide by the largest norm (unit sphere);
2. :class:`RandomScale` ``(0.5, 2.0)`` - one isotropic factor ``U[0.5, 2]``;
3. :class:`RandomRotateUp` ``("y")`` - angle ``U[0, 2 pi)`` about the up axis (ShapeNet is +Y
   up; the reference rotates about ``(0, 1, 0)``);
4. :class:`RandomTranslate` ``(0.5)`` - per axis ``U(-0.5, 0.5)`` times the bounding-box extent
   along that axis (after scaling and rotation);
5. :class:`Jitter` ``(0.01, 0.05)`` - per-point ``N(0, 0.01)`` noise clipped to ``+-0.05``;
6. :class:`RandomInputDropout` ``(0.875)`` - a ratio ``r = U[0, 1) * 0.875`` is drawn, every
   point is dropped with probability ``r`` and *replaced by the first point*, so N is kept.

Image transforms
----------------
:func:`paper_image_augmentation` is the reference's torchvision chain (``Resize((224, 224))``,
``ColorJitter(0.4, 0.4, 0.4)``, ``RandomHorizontalFlip()``, ``ToTensor()``, ImageNet
``Normalize``); :func:`eval_image_transform` is the same without the random parts. Both take an
RGB :class:`PIL.Image.Image`; use :func:`load_rgb` to read a render. Torchvision's random
transforms draw from torch's global RNG; the datasets fork and seed it per item
(:func:`seeded_torch`), so image augmentation is as reproducible as the point augmentation.

Transparent backgrounds
-----------------------
ShapeNetRendering PNGs are 137x137 RGBA with a transparent background. The reference opens them
with ``Image.open(p).convert('RGB')``, which simply *drops* the alpha channel: the colour stored
under transparent pixels shows through, which in the real renders is mostly black (0, 0, 0) with
stray dark or grey pixels. We composite on a background instead (default white, as the object
renders were made to be seen); ``background="black"`` gives nearly what the reference's models
saw, and ``background="drop"`` reproduces ``.convert('RGB')`` exactly.

Seeding
-------
- :func:`worker_init_fn` - pass to ``DataLoader(worker_init_fn=...)``: seeds ``random``,
  ``numpy`` and this module's process generator from the worker's seed (``base_seed +
  worker_id``, which the DataLoader draws from its ``generator``), so a run is reproducible given
  the loader's generator and the workers differ from one another.
- :func:`seed_everything` - the same for the main process.
- :func:`item_rng` - the per-item generator ``default_rng([seed, epoch, index])`` the datasets
  use when constructed with an integer ``seed``: the augmentations of item ``i`` at epoch ``e``
  are then the same whatever the number of workers or the batch order.
- :class:`SeededEpochSampler` - a shuffling sampler whose order is a function of
  ``(seed, epoch)`` only.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
from typing import Callable, Iterator, Sequence

import numpy as np

__all__ = [
    "PointTransform",
    "Compose",
    "Normalize",
    "RandomScale",
    "RandomRotateUp",
    "RandomTranslate",
    "Jitter",
    "RandomInputDropout",
    "paper_point_augmentation",
    "paper_image_augmentation",
    "eval_image_transform",
    "load_rgb",
    "composite_background",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "process_rng",
    "seed_everything",
    "worker_init_fn",
    "item_rng",
    "seeded_torch",
    "SeededEpochSampler",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# --------------------------------------------------------------------------- process generator

_PROCESS_RNG: dict = {"pid": None, "rng": None}


def process_rng() -> np.random.Generator:
    """This process's generator for transforms called without one.

    Created on first use in each process from NumPy's global state (which
    :func:`worker_init_fn` seeds per worker), so forked DataLoader workers never share a stream.
    """
    pid = os.getpid()
    if _PROCESS_RNG["pid"] != pid or _PROCESS_RNG["rng"] is None:
        _PROCESS_RNG["rng"] = np.random.default_rng(np.random.randint(0, 2**32 - 1, dtype=np.uint64))
        _PROCESS_RNG["pid"] = pid
    return _PROCESS_RNG["rng"]


def _reseed_process_rng(seed: int) -> None:
    _PROCESS_RNG["rng"] = np.random.default_rng(seed)
    _PROCESS_RNG["pid"] = os.getpid()


def seed_everything(seed: int) -> None:
    """Seed ``random``, ``numpy``, ``torch`` and this module's process generator."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    _reseed_process_rng(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def worker_init_fn(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=...)``: seed this worker from the loader's base seed.

    The DataLoader already seeds torch in each worker with ``base_seed + worker_id`` (``base_seed``
    is drawn from the loader's ``generator``); this extends it to ``random``, ``numpy`` and the
    transforms' process generator. Outside a worker it seeds from ``worker_id`` alone.
    """
    import torch.utils.data

    info = torch.utils.data.get_worker_info()
    seed = int(info.seed) if info is not None else int(worker_id)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    _reseed_process_rng(seed)


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for item ``index`` at ``epoch`` of a dataset seeded with ``seed``."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFFFFFF, int(epoch), int(index)])


@contextlib.contextmanager
def seeded_torch(seed: int | None):
    """Run a block with torch's CPU RNG seeded to ``seed`` and restore it afterwards.

    ``seed=None`` leaves torch's RNG alone (the block draws from the worker's stream).
    """
    if seed is None:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


class SeededEpochSampler:
    """Shuffles ``range(n)`` as a function of ``(seed, epoch)``; call :meth:`set_epoch` each epoch.

    Use as ``DataLoader(dataset, sampler=SeededEpochSampler(len(dataset), seed))``.
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True) -> None:
        self.n = int(n)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, self.epoch, 0x5A3]).permutation(self.n)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.n


# --------------------------------------------------------------------------- point transforms


def _as_rng(rng) -> np.random.Generator | None:
    if rng is None or isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, not {type(rng).__name__}")


def _check_points(points) -> np.ndarray:
    pts = np.array(points, dtype=np.float32, copy=True)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"expected points of shape (N, C>=3), got {pts.shape}")
    return pts


class PointTransform:
    """Base class: ``__call__(points, rng=None) -> points`` on ``(N, C)`` float32 arrays.

    ``p`` is the probability the transform is applied (1 in the paper).
    """

    def __init__(self, *, p: float = 1.0, rng: np.random.Generator | int | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)
        self.rng = _as_rng(rng)

    def _generator(self, rng) -> np.random.Generator:
        rng = _as_rng(rng)
        if rng is not None:
            return rng
        if self.rng is not None:
            return self.rng
        return process_rng()

    def __call__(self, points, rng: np.random.Generator | int | None = None) -> np.ndarray:
        pts = _check_points(points)
        gen = self._generator(rng)
        if self.p < 1.0 and gen.uniform() > self.p:
            return pts
        return self.apply(pts, gen)

    def apply(self, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def _params(self) -> dict:
        return {}


class Compose(PointTransform):
    """Apply ``transforms`` in order, all drawing from the same generator."""

    def __init__(self, transforms: Sequence[Callable], *, rng=None) -> None:
        super().__init__(rng=rng)
        self.transforms = list(transforms)

    def __call__(self, points, rng=None) -> np.ndarray:
        gen = self._generator(rng)
        pts = _check_points(points)
        for t in self.transforms:
            if isinstance(t, PointTransform):
                pts = t(pts, gen)
            else:
                pts = np.asarray(t(pts), dtype=np.float32)
        return pts

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"Compose([\n  {inner}\n])"


class Normalize(PointTransform):
    """Centre on the centroid (the mean point) and scale so the farthest point has norm ``radius``
    (:func:`crosspoint.geometry.normalize_unit_sphere`, the reference's ``pc_normalize``).

    Deterministic. A cloud whose points all coincide is only centred.
    """

    def __init__(self, radius: float = 1.0) -> None:
        super().__init__()
        self.radius = float(radius)

    def apply(self, points, rng):
        from crosspoint.geometry import normalize_unit_sphere

        if points.shape[0] == 0:
            return points
        xyz, _, _ = normalize_unit_sphere(points[:, :3])
        points[:, :3] = xyz * np.float32(self.radius)
        return points

    def __call__(self, points, rng=None):
        return self.apply(_check_points(points), None)

    def _params(self):
        return {"radius": self.radius}


class RandomScale(PointTransform):
    """Multiply xyz by one factor drawn from ``U[lo, hi]`` (isotropic)."""

    def __init__(self, lo: float = 0.5, hi: float = 2.0, *, p: float = 1.0, rng=None) -> None:
        super().__init__(p=p, rng=rng)
        if not 0 < lo <= hi:
            raise ValueError(f"need 0 < lo <= hi, got lo={lo}, hi={hi}")
        self.lo, self.hi = float(lo), float(hi)

    def apply(self, points, rng):
        points[:, :3] *= np.float32(rng.uniform(self.lo, self.hi))
        return points

    def _params(self):
        return {"lo": self.lo, "hi": self.hi, "p": self.p}


_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


def rotation_matrix(angle: float, axis) -> np.ndarray:
    """Rodrigues' rotation matrix (3, 3) for ``angle`` radians about ``axis`` (right-handed)."""
    u = np.asarray(_AXES[axis] if isinstance(axis, str) else axis, dtype=np.float64)
    u = u / np.linalg.norm(u)
    c, s = math.cos(angle), math.sin(angle)
    k = np.array([[0.0, -u[2], u[1]], [u[2], 0.0, -u[0]], [-u[1], u[0], 0.0]])
    return c * np.eye(3) + s * k + (1.0 - c) * np.outer(u, u)


class RandomRotateUp(PointTransform):
    """Rotate by an angle ``U[0, 2 pi)`` about the up ``axis`` ("x", "y", "z" or a 3-vector).

    Normals (columns 3-5) are rotated with the points.
    """

    def __init__(self, axis="y", *, p: float = 1.0, rng=None) -> None:
        super().__init__(p=p, rng=rng)
        if isinstance(axis, str) and axis.lower() not in _AXES:
            raise ValueError(f"axis must be 'x', 'y', 'z' or a vector, got {axis!r}")
        self.axis = axis.lower() if isinstance(axis, str) else tuple(float(a) for a in axis)

    def apply(self, points, rng):
        r = rotation_matrix(rng.uniform() * 2.0 * math.pi, self.axis).astype(np.float32)
        points[:, :3] = points[:, :3] @ r.T
        if points.shape[1] >= 6:
            points[:, 3:6] = points[:, 3:6] @ r.T
        return points

    def _params(self):
        return {"axis": self.axis, "p": self.p}


class RandomTranslate(PointTransform):
    """Shift by ``U(-r, r)`` times the bounding-box extent, independently per axis."""

    def __init__(self, translate_range: float = 0.5, *, p: float = 1.0, rng=None) -> None:
        super().__init__(p=p, rng=rng)
        self.translate_range = float(translate_range)

    def apply(self, points, rng):
        if points.shape[0] == 0:
            return points
        extent = points[:, :3].max(axis=0) - points[:, :3].min(axis=0)
        shift = rng.uniform(-self.translate_range, self.translate_range, size=3) * extent
        points[:, :3] += shift.astype(np.float32)
        return points

    def _params(self):
        return {"translate_range": self.translate_range, "p": self.p}


class Jitter(PointTransform):
    """Add per-point Gaussian noise ``N(0, std)`` clipped to ``[-clip, clip]`` to xyz."""

    def __init__(self, std: float = 0.01, clip: float = 0.05, *, p: float = 1.0, rng=None) -> None:
        super().__init__(p=p, rng=rng)
        if std < 0 or clip < 0:
            raise ValueError("std and clip must be >= 0")
        self.std, self.clip = float(std), float(clip)

    def apply(self, points, rng):
        noise = np.clip(rng.normal(0.0, self.std, size=(points.shape[0], 3)), -self.clip, self.clip)
        points[:, :3] += noise.astype(np.float32)
        return points

    def _params(self):
        return {"std": self.std, "clip": self.clip, "p": self.p}


class RandomInputDropout(PointTransform):
    """Drop a random fraction of points, replacing them by the first point (N is unchanged).

    The ratio is ``U[0, 1) * max_dropout_ratio``; each point is dropped with that probability.
    """

    def __init__(self, max_dropout_ratio: float = 0.875, *, p: float = 1.0, rng=None) -> None:
        super().__init__(p=p, rng=rng)
        if not 0.0 <= max_dropout_ratio < 1.0:
            raise ValueError(f"max_dropout_ratio must be in [0, 1), got {max_dropout_ratio}")
        self.max_dropout_ratio = float(max_dropout_ratio)

    def apply(self, points, rng):
        if points.shape[0] == 0:
            return points
        ratio = rng.uniform() * self.max_dropout_ratio
        drop = rng.uniform(size=points.shape[0]) <= ratio
        if drop.any():
            points[drop] = points[0]
        return points

    def _params(self):
        return {"max_dropout_ratio": self.max_dropout_ratio, "p": self.p}


def paper_point_augmentation(*, up_axis="y", rng=None) -> Compose:
    """The reference's point augmentation chain (see the module docstring)."""
    return Compose(
        [
            Normalize(),
            RandomScale(0.5, 2.0),
            RandomRotateUp(up_axis),
            RandomTranslate(0.5),
            Jitter(0.01, 0.05),
            RandomInputDropout(0.875),
        ],
        rng=rng,
    )


# --------------------------------------------------------------------------- images

_BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}


def composite_background(image, background="white"):
    """An RGB copy of a PIL image with transparency composited on ``background``.

    ``background``: "white", "black", an ``(r, g, b)`` tuple, or "drop" (discard alpha like the
    reference's ``.convert('RGB')``, showing whatever colour is stored under transparent pixels).
    """
    from PIL import Image

    if background == "drop":
        return image.convert("RGB")
    if image.mode not in ("RGBA", "LA", "PA") and not (image.mode == "P" and "transparency" in image.info):
        return image.convert("RGB")
    rgb = _BACKGROUNDS.get(background, background) if isinstance(background, str) else background
    if isinstance(rgb, str):
        raise ValueError(f"unknown background {background!r}: use 'white', 'black', 'drop' or (r, g, b)")
    rgba = image.convert("RGBA")
    base = Image.new("RGBA", rgba.size, tuple(int(c) for c in rgb) + (255,))
    return Image.alpha_composite(base, rgba).convert("RGB")


def load_rgb(path, background="white"):
    """Open an image file fully (decoding errors surface here) and return it as RGB."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return composite_background(im, background)


def paper_image_augmentation(size: int = 224):
    """The reference's image augmentation: resize, colour jitter 0.4, h-flip, tensor, ImageNet norm."""
    from torchvision import transforms as T

    return T.Compose(
        [
            T.Resize((size, size)),
            T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def eval_image_transform(size: int = 224):
    """Deterministic image transform: resize to ``(size, size)``, tensor, ImageNet normalisation."""
    from torchvision import transforms as T

    return T.Compose([T.Resize((size, size)), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
