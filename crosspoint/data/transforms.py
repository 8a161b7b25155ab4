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
import logging
import math
import os
import random
from typing import Callable, Iterator, Sequence

import numpy as np

from crosspoint.lazykernels import LazyKernels

log = logging.getLogger(__name__)

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
    "PartialView",
    "paper_image_augmentation",
    "FastPaperImageAugmentation",
    "decode_view",
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
        # the CPU generator only: ``torch.manual_seed`` would also (lazily) seed every accelerator's
        # generator, which fork_rng(devices=[]) does not restore, and records a stack trace for each
        # lazy call (~0.15 ms per item)
        torch.default_generator.manual_seed(int(seed))
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
        return self._run(self.transforms, _check_points(points), gen)

    def repeat(self, points, rng=None, times: int = 2) -> list[np.ndarray]:
        """``[self(points, rng) for _ in range(times)]``, the same arrays and the same draws from
        ``rng``, but the deterministic leading transforms (:class:`Normalize`) run once."""
        gen = self._generator(rng)
        pts = _check_points(points)
        lead = 0
        while lead < len(self.transforms) and type(self.transforms[lead]) is Normalize:
            lead += 1
        pts = self._run(self.transforms[:lead], pts, gen)
        rest = self.transforms[lead:]
        return [self._run(rest, pts.copy() if i < times - 1 else pts, gen) for i in range(times)]

    @staticmethod
    def _run(transforms, pts: np.ndarray, gen) -> np.ndarray:
        # ``pts`` is this call's own float32 copy: the built-in transforms work on it in place
        # (their ``__call__`` would copy it again first); anything else is called as it is
        for t in transforms:
            call = type(t).__call__
            if call is PointTransform.__call__:
                if not (t.p < 1.0 and gen.uniform() > t.p):
                    pts = t.apply(pts, gen)
            elif call is Normalize.__call__:
                pts = t.apply(pts, None)
            elif isinstance(t, PointTransform):
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
        cols = np.ascontiguousarray(points[:, :3].T)  # (3, N): the reductions run 10x faster than on axis 0
        extent = cols.max(axis=1) - cols.min(axis=1)
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
        noise = rng.normal(0.0, self.std, size=(points.shape[0], 3))
        np.clip(noise, -self.clip, self.clip, out=noise)
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


class PartialView(PointTransform):
    """What one depth camera sees of the cloud: hidden point removal (Katz, Tal and Basri, "Direct
    visibility of point sets", SIGGRAPH 2007) from a random viewpoint, N kept. Not part of the paper;
    the opt-in ``data.partial_view`` of pretraining applies it to the second point copy, so that the
    intra-modal term pairs a whole object with a partial view of it (ScanObjectNN-style inputs).

    The camera looks at the cloud's centroid from ``distance`` x its radius (the largest distance of a
    point from the centroid), at an azimuth ``U[0, 360)`` about the ``up`` axis and an elevation
    ``U[elevation]`` degrees above the plane normal to it. A point is visible when it is a vertex of
    the convex hull of the cloud spherically flipped about the camera (radius ``radius`` x the
    farthest point's distance from the camera) together with the camera itself. Hidden points are
    replaced by visible ones drawn at random, so N and the order of the kept points are unchanged
    (point ``i`` of the output is point ``i`` of the input when ``keep[i]``; the dense term relies on
    it). Fewer than ``min_visible`` x N visible points (a degenerate cloud): the cloud is returned
    whole. Measured on demo objects against the renderer's mesh depth buffer (``tests/test_dense.py``):
    89-93 % of the points it keeps are visible, and it keeps 88-90 % of the visible ones (radius 100).
    """

    def __init__(self, *, p: float = 1.0, up="y", elevation=(0.0, 60.0), distance=(2.5, 3.6),
                 radius: float = 100.0, min_visible: float = 0.05, rng=None) -> None:
        super().__init__(p=p, rng=rng)
        if isinstance(up, str) and up.lower() not in _AXES:
            raise ValueError(f"up must be 'x', 'y', 'z' or a vector, got {up!r}")
        self.up = up.lower() if isinstance(up, str) else tuple(float(a) for a in up)
        lo, hi = (float(x) for x in elevation)
        if not -90.0 <= lo <= hi <= 90.0:
            raise ValueError(f"elevation must be a range within [-90, 90] degrees, got {elevation!r}")
        d0, d1 = (float(x) for x in distance)
        if not 1.0 < d0 <= d1:
            raise ValueError(f"distance must be a range above 1 (the camera outside the cloud), got {distance!r}")
        if radius <= 1.0:
            raise ValueError(f"radius must be > 1, got {radius}")
        self.elevation, self.distance, self.radius = (lo, hi), (d0, d1), float(radius)
        self.min_visible = float(min_visible)

    def camera(self, points, rng: np.random.Generator) -> np.ndarray:
        """The camera position ``(3,)`` float64 drawn for ``points`` (3 draws from ``rng``)."""
        xyz = np.asarray(points, np.float64)[:, :3]
        c = xyz.mean(axis=0)
        r = float(np.sqrt(((xyz - c) ** 2).sum(axis=1).max())) or 1.0
        u = np.asarray(_AXES[self.up] if isinstance(self.up, str) else self.up, np.float64)
        u = u / np.linalg.norm(u)
        e1 = np.cross(u, [1.0, 0.0, 0.0] if abs(u[0]) < 0.9 else [0.0, 0.0, 1.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(u, e1)
        az = rng.uniform() * 2.0 * math.pi
        el = math.radians(rng.uniform(*self.elevation))
        dist = rng.uniform(*self.distance) * r
        d = math.cos(el) * (math.cos(az) * e1 + math.sin(az) * e2) + math.sin(el) * u
        return c + dist * d

    def visible(self, points, camera) -> np.ndarray:
        """``(N,)`` bool: the points of ``points`` that ``camera`` (a position) sees (hidden point removal)."""
        from scipy.spatial import ConvexHull, QhullError

        xyz = np.asarray(points, np.float64)[:, :3] - np.asarray(camera, np.float64)
        norm = np.sqrt((xyz**2).sum(axis=1))
        vis = np.zeros(len(xyz), bool)
        ok = norm > 0
        if ok.sum() < 4:
            return vis
        big = self.radius * float(norm.max())
        flipped = xyz[ok] * ((2.0 * big - norm[ok]) / norm[ok])[:, None]
        try:
            hull = ConvexHull(np.vstack([flipped, np.zeros((1, 3))]))
        except QhullError:  # flat or degenerate: no hull, nothing decided
            return vis
        on = hull.vertices[hull.vertices < flipped.shape[0]]
        vis[np.flatnonzero(ok)[on]] = True
        return vis

    def keep(self, points, rng: np.random.Generator) -> np.ndarray:
        """``(N,)`` bool: the points seen from a camera drawn from ``rng``; all True when fewer than
        ``min_visible`` x N are seen."""
        vis = self.visible(points, self.camera(points, rng))
        if vis.sum() < max(1, math.ceil(self.min_visible * len(vis))):
            return np.ones(len(vis), bool)
        return vis

    def fill(self, points: np.ndarray, keep: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``points`` with every row outside ``keep`` replaced by a row of ``keep`` drawn at random."""
        hidden = np.flatnonzero(~keep)
        if hidden.size:
            seen = np.flatnonzero(keep)
            points[hidden] = points[seen[rng.integers(0, seen.size, hidden.size)]]
        return points

    def apply(self, points, rng):
        if points.shape[0] == 0:
            return points
        return self.fill(points, self.keep(points, rng), rng)

    def _params(self):
        return {"up": self.up, "elevation": self.elevation, "distance": self.distance, "radius": self.radius,
                "min_visible": self.min_visible, "p": self.p}


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
    kern = _image_kernels()
    if kern is not None and rgba.ndim == 3 and rgba.shape[2] == 4:
        out = np.empty(rgba.shape[:2] + (3,), np.uint8)
        kern["composite"](rgba, int(rgb[0]), int(rgb[1]), int(rgb[2]), out)  # one pass, same integers
        return out
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


# --------------------------------------------------------------------------- fast image path
#
# The pretraining datasets do not run the torchvision chain of :func:`paper_image_augmentation`
# item by item: :class:`FastPaperImageAugmentation` computes the same tensor, bit for bit, from the
# decoded view in three or four passes of small numba loops (4x faster here). How it stays exact:
#
# - the random draws are torchvision's, in its order, from the same generator (``randperm(4)``,
#   three ``uniform_`` factors, then ``rand(1)`` for the flip);
# - PIL's ``ImageEnhance`` steps are ``Image.blend(degenerate, image, f)``, a per-byte function of
#   (degenerate byte, image byte): brightness and contrast are then 256-entry lookup tables, the
#   saturation a 65536-entry table indexed by (grey, channel). The tables are computed *by PIL's
#   blend itself* on ramps (``_blend_lut``), so they hold PIL's own roundings;
# - the grey level is PIL's ``convert("L")``, ``(19595 R + 38470 G + 7471 B + 0x8000) >> 16``
#   (checked against PIL for all 2^24 colours), and the contrast's mean is ImageStat's
#   ``int(sum / count + 0.5)``;
# - ``ToTensor`` + ``Normalize`` map each byte value of each channel to one float: a (3, 256)
#   table computed with torch's own ops (``to(float).div(255)``, ``sub_(mean).div_(std)``);
# - the resize is PIL's, as torchvision calls it (no resize when the view has the output size).
#
# tests/test_pipeline_speedups.py compares it with the torchvision chain on random images and
# renders, over many seeds. Without numba (or with CROSSPOINT_NO_NUMBA=1) the datasets run the
# torchvision chain.

def _image_kernels():
    """The numba image kernels, or None (numba missing or broken, or ``CROSSPOINT_NO_NUMBA=1``)."""
    return _IMG_KERNELS.get()


def _build_image_kernels():
    import numba

    jit = numba.njit(cache=True, nogil=True, boundscheck=False)

    @jit
    def composite(src, b0, b1, b2, out):
        # out = (c a + b (255 - a) + 127) // 255 per channel (straight alpha in src[..., 3])
        h, w = src.shape[0], src.shape[1]
        for y in range(h):
            for x in range(w):
                a = np.int64(src[y, x, 3])
                na = 255 - a
                out[y, x, 0] = (np.int64(src[y, x, 0]) * a + b0 * na + 127) // 255
                out[y, x, 1] = (np.int64(src[y, x, 1]) * a + b1 * na + 127) // 255
                out[y, x, 2] = (np.int64(src[y, x, 2]) * a + b2 * na + 127) // 255

    @jit
    def luma_sum(img, lut):
        # sum over pixels of PIL's grey level of lut[img] (channels 0-2 of img)
        h, w = img.shape[0], img.shape[1]
        total = np.int64(0)
        for y in range(h):
            for x in range(w):
                r = np.int64(lut[img[y, x, 0]])
                g = np.int64(lut[img[y, x, 1]])
                b = np.int64(lut[img[y, x, 2]])
                total += (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
        return total

    @jit
    def saturate(img, lut, lut2, out):
        # out[c] = lut2[grey * 256 + c] for c = lut[img] (PIL's blend of the grey image with the image)
        h, w = img.shape[0], img.shape[1]
        for y in range(h):
            for x in range(w):
                r = np.int64(lut[img[y, x, 0]])
                g = np.int64(lut[img[y, x, 1]])
                b = np.int64(lut[img[y, x, 2]])
                base = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) * 256
                out[y, x, 0] = lut2[base + r]
                out[y, x, 1] = lut2[base + g]
                out[y, x, 2] = lut2[base + b]

    @jit
    def to_chw(img, flut, flip, out):
        # out[c, y, x] = flut[c, img[y, x', c]], x' mirrored when flip
        h, w = img.shape[0], img.shape[1]
        for c in range(3):
            for y in range(h):
                for x in range(w):
                    sx = w - 1 - x if flip else x
                    out[c, y, x] = flut[c, img[y, sx, c]]

    return {"composite": composite, "luma_sum": luma_sum, "saturate": saturate, "to_chw": to_chw}


_RAMPS: "dict | None" = None


def _ramps() -> dict:
    """PIL "L" images: the 256 byte values (1 x 256), and the (grey, value) grid of 256 x 256."""
    global _RAMPS
    if _RAMPS is None:
        from PIL import Image

        v = np.arange(256, dtype=np.uint8)
        _RAMPS = {  # assigned whole: other threads see all three or none
            "ramp": Image.fromarray(v[None, :], "L"),
            "grey": Image.fromarray(np.ascontiguousarray(np.repeat(v[:, None], 256, axis=1)), "L"),
            "value": Image.fromarray(np.ascontiguousarray(np.repeat(v[None, :], 256, axis=0)), "L"),
        }
    return _RAMPS


def _blend_lut(degenerate: int, factor: float) -> np.ndarray:
    """``Image.blend(degenerate, image, factor)`` as a table over the image byte (PIL computes it)."""
    from PIL import Image

    r = _ramps()["ramp"]
    return np.array(Image.blend(Image.new("L", r.size, int(degenerate)), r, factor), dtype=np.uint8).reshape(256)


def _saturation_lut(factor: float) -> np.ndarray:
    """``Image.blend(grey, image, factor)`` as a table over ``grey * 256 + byte`` (PIL computes it)."""
    from PIL import Image

    r = _ramps()
    return np.array(Image.blend(r["grey"], r["value"], factor), dtype=np.uint8).reshape(65536)


_NORM_LUTS: dict = {}


def _normalize_lut(mean, std) -> np.ndarray:
    """(3, 256): torchvision's ``ToTensor`` + ``Normalize(mean, std)`` of every byte value, per channel,
    in torch's default float dtype, computed with the same torch ops."""
    import torch

    dtype = torch.get_default_dtype()
    key = (tuple(mean), tuple(std), dtype)
    lut = _NORM_LUTS.get(key)
    if lut is None:
        v = torch.arange(256, dtype=torch.uint8).view(1, 1, 256).expand(3, 1, 256).contiguous()
        t = v.to(dtype=dtype).div(255)
        m = torch.as_tensor(mean, dtype=dtype).view(-1, 1, 1)
        s = torch.as_tensor(std, dtype=dtype).view(-1, 1, 1)
        lut = _NORM_LUTS[key] = np.ascontiguousarray(t.sub_(m).div_(s).view(3, 256).numpy())
    return lut


class FastPaperImageAugmentation:
    """:func:`paper_image_augmentation` ``(size)`` bit for bit, without PIL images or torchvision
    (see the comment above this class): the same draws from the same torch generator, the same
    tensor. ``__call__(image, generator=None)``: ``image`` an RGB PIL image or a ``(H, W, 3)``
    uint8 array (:meth:`augment_array` also takes ``(H, W, 4)`` and ignores the fourth channel,
    i.e. the "drop" background), ``generator`` a ``torch.Generator`` (None: torch's global one,
    as torchvision). Needs numba (:func:`available`)."""

    def __init__(self, size: int = 224, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4, flip_p: float = 0.5, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        self.size = int(size)
        # torchvision's ranges; a zero strength is no step at all (ColorJitter draws nothing for it)
        self.ranges = [None if float(v) == 0 else (max(0.0, 1.0 - float(v)), 1.0 + float(v))
                       for v in (brightness, contrast, saturation)]
        self.flip_p = float(flip_p)
        self.mean, self.std = tuple(mean), tuple(std)

    @staticmethod
    def available() -> bool:
        return _image_kernels() is not None

    def reference(self):
        """The torchvision chain this computes."""
        from torchvision import transforms as T

        b, c, s = (r if r is not None else 0 for r in self.ranges)
        return T.Compose([T.Resize((self.size, self.size)), T.ColorJitter(brightness=b, contrast=c, saturation=s),
                          T.RandomHorizontalFlip(self.flip_p), T.ToTensor(), T.Normalize(self.mean, self.std)])

    def draw(self, generator=None):
        """``(order, factors, flip)`` as torchvision draws them: ColorJitter's ``randperm(4)`` and
        three uniform factors, then RandomHorizontalFlip's ``rand(1)``."""
        import torch

        order = torch.randperm(4, generator=generator).tolist()
        factors = [None if r is None else float(torch.empty(1).uniform_(r[0], r[1], generator=generator))
                   for r in self.ranges]
        flip = bool(torch.rand(1, generator=generator) < self.flip_p)
        return order, factors, flip

    def resize(self, image):
        """``image`` (RGB PIL image or uint8 array) as a ``(size, size, C)`` uint8 array (PIL's bilinear
        resize, as torchvision's ``Resize``; none at the output size)."""
        from PIL import Image

        if isinstance(image, Image.Image):
            if image.mode != "RGB":
                raise ValueError(f"expected an RGB image, got mode {image.mode}")
            if image.size != (self.size, self.size):
                image = image.resize((self.size, self.size), Image.BILINEAR)
            return np.array(image)
        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ValueError(f"expected a (H, W, 3|4) uint8 array, got {arr.dtype} {arr.shape}")
        if arr.shape[:2] != (self.size, self.size):
            im = Image.fromarray(np.ascontiguousarray(arr[:, :, :3]), "RGB")
            return np.array(im.resize((self.size, self.size), Image.BILINEAR))
        return arr

    def __call__(self, image, generator=None):
        return self.augment_array(self.resize(image), generator)

    def augment_array(self, arr: np.ndarray, generator=None):
        """The augmented ``(3, size, size)`` tensor of ``arr`` ``(size, size, 3|4)`` uint8."""
        import torch

        kern = _image_kernels()
        if kern is None:
            raise RuntimeError("FastPaperImageAugmentation needs numba (see FastPaperImageAugmentation.available)")
        if arr.shape[:2] != (self.size, self.size):
            raise ValueError(f"expected a {self.size}x{self.size} image, got {arr.shape[1]}x{arr.shape[0]}")
        order, (fb, fc, fs), flip = self.draw(generator)
        cur = arr
        pending = _IDENTITY  # a per-byte map not yet applied to cur
        for fn in order:
            if fn == 3 or (fb, fc, fs)[fn] is None:  # hue (not in the paper's chain) or a zero strength
                continue
            if fn == 0:  # brightness: blend with black
                pending = _blend_lut(0, fb)[pending]
            elif fn == 1:  # contrast: blend with the mean grey level (rounded as ImageStat + int(.. + 0.5))
                n = cur.shape[0] * cur.shape[1]
                mean = int(int(kern["luma_sum"](cur, pending)) / n + 0.5)
                pending = _blend_lut(mean, fc)[pending]
            elif fn == 2:  # saturation: blend with the grey image
                out = np.empty(cur.shape[:2] + (3,), np.uint8)
                kern["saturate"](cur, pending, _saturation_lut(fs), out)
                cur, pending = out, _IDENTITY
        flut = np.ascontiguousarray(_normalize_lut(self.mean, self.std)[:, pending])
        out = torch.empty((3, self.size, self.size), dtype=torch.get_default_dtype())
        kern["to_chw"](cur, flut, flip, out.numpy())
        return out

    def warm_up(self) -> bool:
        """Compile (or load from numba's cache) the kernels for the array types used; True when the
        fast path is available. Call it before forking workers."""
        if _image_kernels() is None:
            return False
        import torch

        g = torch.Generator().manual_seed(0)
        small = FastPaperImageAugmentation(4)
        for channels in (3, 4):
            for _ in range(4):  # every op order reaches every kernel
                small.augment_array(np.zeros((4, 4, channels), np.uint8), g)
        rgba = np.zeros((2, 2, 4), np.uint8)
        _composite_array(rgba, (255, 255, 255))
        rgba.setflags(write=False)  # what np.asarray of a PIL image gives (to_rgb of a PIL image)
        _composite_array(rgba, (255, 255, 255))
        return True

    def __repr__(self) -> str:
        return f"FastPaperImageAugmentation(size={self.size})"


_IDENTITY = np.arange(256, dtype=np.uint8)


def decode_view(path, background, size: int | None = None) -> np.ndarray:
    """A rendered view as a uint8 array ``(H, W, 3)`` or ``(H, W, 4)`` whose first three channels
    are :func:`load_rgb` ``(path, background)`` (the fourth, when present, is to be ignored: the
    alpha channel under "drop"), resized to ``(size, size)`` as torchvision's ``Resize`` would when
    ``size`` is given and differs. Decoding errors surface here."""
    from PIL import Image

    rgb = _background_rgb(background)
    with Image.open(path) as im:
        im.load()
        if im.mode in ("RGB", "RGBA") and (size is None or im.size == (size, size)):
            arr = np.array(im)
            if im.mode == "RGBA" and rgb is not None:
                return _composite_array(arr, rgb)
            return arr
        out = to_rgb(im, background)
    if size is not None and out.size != (size, size):
        out = out.resize((size, size), Image.BILINEAR)
    return np.array(out)


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


_IMG_KERNELS = LazyKernels(_build_image_kernels, "numba image kernels")
