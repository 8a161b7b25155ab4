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
ShapeNetRendering PNGs are 137x137 RGBA, straight (not premultiplied) alpha. The reference opens
them with ``Image.open(p).convert('RGB')``, which *drops* the alpha channel, so the image encoder
sees the RGB stored under each pixel. Measured on the real renders in ``shared/data/renders``
(six 3D-R2N2 views from Pixel2Mesh and one DISN view, 15.4k-17.7k fully transparent pixels of
18769 each): under fully transparent pixels the stored RGB is ``(0, 0, 0)`` for all but 1-8
stray pixels per image (e.g. ``(255, 255, 255)``, ``(113, 113, 113)``, ``(3, 21, 19)``), and the
364-942 partly transparent edge pixels per image store the object's colour at full strength
(alpha only says how much of the pixel the object covers). So "drop" is *nearly* a black
background, but not exactly: its edges are hard where "black" darkens them by ``alpha``.

:func:`to_rgb` is the one place where an RGBA image becomes RGB; pretraining
(``background=`` of the datasets, from the config's ``data.background``), evaluation and the
explorer (the background recorded in the checkpoint's config) all call it:

- ``"drop"`` (the reference, the config's default): PIL's ``convert("RGB")``, byte for byte;
- ``"white"`` / ``"black"`` / an ``(r, g, b)`` tuple of ints in 0..255: composited in exact
  integer arithmetic, per channel ``out = (c * a + b * (255 - a) + 127) // 255`` for a stored
  colour ``c``, alpha ``a`` and background ``b`` (all 0..255), i.e. ``c a/255 + b (1 - a/255)``
  rounded to the nearest integer (never a tie: an integer over 255 is never halfway between two
  integers). ``a = 255`` gives ``c``, ``a = 0`` gives ``b``. "white" is what the project did
  before the setting existed (:func:`crosspoint.config.upgrade_legacy` gives it to older configs).

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
    "to_rgb",
    "BACKGROUNDS",
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

#: the named backgrounds of :func:`to_rgb` (``data.background``); "drop" keeps the stored colour
BACKGROUNDS = {"drop": None, "white": (255, 255, 255), "black": (0, 0, 0)}

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _background_rgb(background) -> "tuple[int, int, int] | None":
    """``None`` for "drop", else the background colour as three ints in 0..255."""
    if isinstance(background, str):
        if background not in BACKGROUNDS:
            raise ValueError(f"unknown background {background!r}: use 'drop', 'white', 'black' or (r, g, b) in 0..255")
        return BACKGROUNDS[background]
    try:
        rgb = tuple(int(c) for c in background)
    except TypeError:
        raise ValueError(f"unknown background {background!r}: use 'drop', 'white', 'black' or (r, g, b) "
                         "in 0..255") from None
    if len(rgb) != 3 or any(c != v or not 0 <= c <= 255 for c, v in zip(rgb, background)):
        raise ValueError(f"background colour {background!r}: expected three integers in 0..255")
    return rgb


def _composite_array(rgba: np.ndarray, rgb: "tuple[int, int, int]") -> np.ndarray:
    """``(H, W, 4)`` uint8 straight-alpha -> ``(H, W, 3)`` uint8 on ``rgb`` (exact, see the module docstring)."""
    c = rgba[..., :3].astype(np.uint32)
    a = rgba[..., 3:4].astype(np.uint32)
    b = np.asarray(rgb, dtype=np.uint32)
    return ((c * a + b * (255 - a) + 127) // 255).astype(np.uint8)


def to_rgb(image, background):
    """The RGB image a model sees of ``image``: the one function that turns an RGBA render into RGB.

    ``image``: a PIL image (any mode; returns a PIL ``"RGB"`` image) or a uint8 array ``(H, W)``,
    ``(H, W, 2)`` (grey + alpha), ``(H, W, 3)`` or ``(H, W, 4)`` (straight alpha; returns a new
    ``(H, W, 3)`` uint8 array). ``background``: ``"drop"`` (the reference's ``convert("RGB")``:
    the alpha channel is discarded and the colour stored under transparent pixels shows),
    ``"white"``, ``"black"`` or an ``(r, g, b)`` tuple of ints in 0..255 (composited with the
    integer formula of the module docstring). Images without alpha are returned as RGB unchanged
    whatever the background. There is no default: every caller says which background it means.
    """
    rgb = _background_rgb(background)
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            raise TypeError(f"to_rgb wants a uint8 image array, got {arr.dtype}")
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"an image must be (H, W), (H, W, 2), (H, W, 3) or (H, W, 4), got shape {image.shape}")
        if arr.shape[2] in (1, 2):  # grey (+ alpha): the grey value in all three channels, as PIL converts
            arr = np.concatenate([np.repeat(arr[:, :, :1], 3, axis=2), arr[:, :, 1:]], axis=2)
        if arr.shape[2] == 3 or rgb is None:
            return np.ascontiguousarray(arr[:, :, :3]).copy()
        return _composite_array(arr, rgb)
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise TypeError(f"to_rgb wants a PIL image or a uint8 array, got {type(image).__name__}")
    has_alpha = image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)
    if rgb is None or not has_alpha:
        return image.convert("RGB")
    return Image.fromarray(_composite_array(np.asarray(image.convert("RGBA")), rgb), "RGB")


def composite_background(image, background="white"):
    """:func:`to_rgb` of a PIL image (kept for existing callers; default white, the project's
    behaviour before ``data.background`` existed)."""
    return to_rgb(image, background)


def load_rgb(path, background="white"):
    """Open an image file fully (decoding errors surface here) and return :func:`to_rgb` of it
    (default white, the datasets' legacy default; pass the config's ``data.background``)."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return to_rgb(im, background)


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
