"""Frozen features for the downstream protocols: point clouds and rendered views through an encoder.

:func:`extract_features` runs a point encoder over a set of clouds and returns one row per
cloud as float32 NumPy: ``kind="feature"`` the global feature the linear SVM and the few-shot
protocol use (DGCNN: the 2048-wide ``max-pool || avg-pool``, what the reference reads as
``model(x)[2]``), ``kind="projection"`` the projection-head output (what the contrastive losses
and the cross-modal retrieval see). :func:`extract_image_features` does the same for images.

The reference protocol is kept: the clouds are used as given (the first ``num_points`` rows of
each, no augmentation, no re-normalisation), the model runs in eval mode (BatchNorm running
statistics, no dropout) without gradients; on CUDA the matrix products run under bf16 autocast
(:func:`crosspoint.device.autocast`), the output is always float32. The encoder's train/eval mode
is restored afterwards. ``amp=False`` keeps float32 on CUDA too: bf16 features differ slightly
from float32 ones, and the reference ran in float32, so use it to reproduce its numerics.

Both functions are pure functions of their inputs (same encoder weights and clouds, same rows,
batch size aside), so callers may cache the arrays. Features are computed once per object, also
for the few-shot protocol (the reference re-embedded every object of every episode).

``progress(done, total)`` is called after each batch; ``cancel()`` returning true stops with
:class:`EvaluationCancelled` (for GUI workers).
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator, Sequence

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "EvaluationCancelled",
    "extract_features",
    "extract_image_features",
    "as_point_list",
    "dataset_labels",
    "build_eval_encoder",
]

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


class EvaluationCancelled(Exception):
    """Raised when the ``cancel()`` callback of an evaluation returned true."""


# ------------------------------------------------------------------------------ inputs
def _item_points(item):
    if isinstance(item, dict):
        for key in ("points", "points1", "pos"):
            if key in item:
                return item[key]
        raise TypeError(f"dataset item has no 'points' entry (keys: {', '.join(map(str, item))})")
    if isinstance(item, (tuple, list)) and item and not np.isscalar(item[0]) and np.ndim(item[0]) == 2:
        return item[0]
    return item


class _DatasetPoints(Sequence):
    def __init__(self, ds):
        self._ds = ds

    def __len__(self) -> int:
        return len(self._ds)

    def __getitem__(self, i):
        return _item_points(self._ds[i])


def as_point_list(data) -> Sequence:
    """A sequence of ``(N, 3)`` clouds from: an ``(M, N, 3)`` array or tensor, a list of clouds, a
    dataset with a ``points`` attribute (the project's classification datasets), or a dataset
    whose items are ``(points, ...)`` tuples or dicts with ``"points"``."""
    try:
        import torch

        if isinstance(data, torch.Tensor):
            data = data.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(data, np.ndarray):
        if data.ndim != 3 or data.shape[-1] < 3:
            raise ValueError(f"points must have shape (M, N, 3), got {data.shape}")
        return data
    pts = getattr(data, "points", None)
    if pts is not None and hasattr(pts, "__len__") and hasattr(pts, "__getitem__") and len(pts) == len(data):
        return pts
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        return _DatasetPoints(data)
    raise TypeError(f"cannot read point clouds from a {type(data).__name__}")


def dataset_labels(data) -> np.ndarray:
    """The ``(M,)`` int64 class labels of a dataset (its ``labels`` attribute, else item ``[1]``)."""
    labels = getattr(data, "labels", None)
    if labels is not None:
        return np.asarray(labels, dtype=np.int64).reshape(-1)
    return np.asarray([int(np.asarray(data[i][1]).reshape(-1)[0]) for i in range(len(data))], dtype=np.int64)


def _fixed(points, num_points: "int | None", index: int) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"cloud {index}: expected (N, 3) points, got shape {pts.shape}")
    pts = pts[:, :3]
    if num_points is not None and pts.shape[0] != num_points:
        if pts.shape[0] > num_points:
            pts = pts[:num_points]  # the reference protocol: the first num_points rows
        else:
            from crosspoint.data.base import fix_point_count

            pts = fix_point_count(pts, num_points, "first", np.random.default_rng([index]))
    return np.ascontiguousarray(pts)


def _batches(points: Sequence, batch_size: int, num_points: "int | None") -> Iterator[tuple[int, np.ndarray]]:
    """``(start, (b, N, 3) array)``; consecutive clouds of different sizes go in separate batches."""
    if isinstance(points, np.ndarray):
        arr = points[:, :num_points, :3] if num_points is not None and points.shape[1] >= num_points else None
        if arr is not None or num_points is None:
            arr = points[:, :, :3] if arr is None else arr
            for s in range(0, arr.shape[0], batch_size):
                yield s, np.ascontiguousarray(arr[s:s + batch_size], dtype=np.float32)
            return
    buf: list[np.ndarray] = []
    start = 0
    for i in range(len(points)):
        p = _fixed(points[i], num_points, i)
        if buf and (len(buf) >= batch_size or p.shape[0] != buf[0].shape[0]):
            yield start, np.stack(buf)
            start, buf = i, []
        buf.append(p)
    if buf:
        yield start, np.stack(buf)


def _prepare(model, device):
    import torch

    from crosspoint.device import resolve_device

    params = list(model.parameters())
    if device is None:
        dev = params[0].device if params else torch.device("cpu")
    else:
        dev = resolve_device(device)
        model.to(dev)
    return dev


# ------------------------------------------------------------------------------ points
def extract_features(
    encoder,
    data,
    *,
    kind: str = "feature",
    batch_size: int = 32,
    device=None,
    num_points: "int | None" = None,
    normalize: bool = False,
    amp: bool = True,
    progress: "Progress | None" = None,
    cancel: "Cancel | None" = None,
):
    """Features ``(M, D)`` float32 of every cloud in ``data`` (see :func:`as_point_list`).

    ``kind``: ``"feature"`` (global feature), ``"projection"`` (projection head) or ``"both"``
    (a ``(features, projections)`` pair from one pass). ``num_points``: use the first
    ``num_points`` points of each cloud (clouds with fewer are padded by repeating points, as the
    datasets do); None uses the clouds as they are. ``device``: None keeps the encoder where it
    is, otherwise it is moved there (``"auto"``, ``"cpu"``, ``"cuda:1"``...). ``normalize``:
    L2-normalise the rows (cosine-similarity use). ``amp``: bf16 autocast on CUDA (False: float32
    throughout; no effect on the CPU).
    """
    import torch

    from crosspoint.device import autocast

    if kind not in ("feature", "projection", "both"):
        raise ValueError(f"kind must be 'feature', 'projection' or 'both', got {kind!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    points = as_point_list(data)
    total = len(points)
    dev = _prepare(encoder, device)
    was_training = encoder.training
    encoder.eval()
    feats: list[np.ndarray] = []
    projs: list[np.ndarray] = []
    done = 0
    try:
        with torch.no_grad():
            for _, batch in _batches(points, batch_size, num_points):
                if cancel is not None and cancel():
                    raise EvaluationCancelled("feature extraction cancelled")
                x = torch.from_numpy(batch).to(dev, non_blocking=True)
                with autocast(dev, enabled=amp):
                    f = encoder.embed(x)
                    p = encoder.project_feature(f) if kind != "feature" else None
                if kind != "projection":
                    feats.append(f.float().cpu().numpy())
                if p is not None:
                    projs.append(p.float().cpu().numpy())
                done += batch.shape[0]
                if progress is not None:
                    progress(done, total)
    finally:
        encoder.train(was_training)

    def _cat(rows: list, width: int) -> np.ndarray:
        out = np.concatenate(rows, axis=0) if rows else np.zeros((0, width), np.float32)
        out = np.ascontiguousarray(out, dtype=np.float32)
        if normalize and out.size:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    f_out = _cat(feats, getattr(encoder, "feature_dim", 0)) if kind != "projection" else None
    p_out = _cat(projs, getattr(encoder, "projection_dim", 0)) if kind != "feature" else None
    if kind == "feature":
        return f_out
    if kind == "projection":
        return p_out
    return f_out, p_out


# ------------------------------------------------------------------------------ images
def extract_image_features(
    image_encoder,
    images,
    *,
    kind: str = "projection",
    batch_size: int = 32,
    device=None,
    image_size: int = 224,
    background="white",
    normalize: bool = False,
    amp: bool = True,
    progress: "Progress | None" = None,
    cancel: "Cancel | None" = None,
) -> np.ndarray:
    """Features ``(M, D)`` float32 of ``images``: a ``(M, 3, H, W)`` tensor already normalised, or
    a sequence of image paths / PIL images, made RGB with ``background`` ("drop", "white" or
    "black": :func:`crosspoint.data.transforms.to_rgb`; pass the background the image encoder was
    trained with, :func:`crosspoint.models.checkpoint_background`) and resized to ``image_size`` with the ImageNet
    normalisation (:func:`~crosspoint.data.transforms.eval_image_transform`). ``kind``:
    ``"projection"`` (default) or ``"feature"`` (the pooled ResNet feature)."""
    import torch

    from crosspoint.device import autocast

    if kind not in ("feature", "projection"):
        raise ValueError(f"kind must be 'feature' or 'projection', got {kind!r}")
    dev = _prepare(image_encoder, device)
    if isinstance(images, torch.Tensor):
        total = images.shape[0]

        def load(s, e):
            return images[s:e]
    else:
        from PIL import Image

        from crosspoint.data.transforms import eval_image_transform, load_rgb, to_rgb

        tf = eval_image_transform(image_size)
        total = len(images)

        def load(s, e):
            out = []
            for im in images[s:e]:
                pil = to_rgb(im, background) if isinstance(im, Image.Image) else load_rgb(im, background)
                out.append(tf(pil))
            return torch.stack(out)

    was_training = image_encoder.training
    image_encoder.eval()
    rows: list[np.ndarray] = []
    try:
        with torch.no_grad():
            for s in range(0, total, batch_size):
                if cancel is not None and cancel():
                    raise EvaluationCancelled("image feature extraction cancelled")
                x = load(s, min(s + batch_size, total)).to(dev)
                with autocast(dev, enabled=amp):
                    out = image_encoder(x)
                y = out.projection if kind == "projection" else out.feature
                rows.append(y.float().cpu().numpy())
                if progress is not None:
                    progress(min(s + batch_size, total), total)
    finally:
        image_encoder.train(was_training)
    width = image_encoder.projection_dim if kind == "projection" else image_encoder.feature_dim
    out = np.concatenate(rows, axis=0) if rows else np.zeros((0, width), np.float32)
    out = np.ascontiguousarray(out, dtype=np.float32)
    if normalize and out.size:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


# ------------------------------------------------------------------------------ encoders
def build_eval_encoder(spec: str, *, arch: str = "dgcnn", k: "int | None" = None, seed: int = 0, device=None):
    """The point encoder to evaluate: a checkpoint path (official CrossPoint file or ours, see
    :func:`crosspoint.models.load_point_encoder`), or ``"random"``: a randomly initialised
    ``arch`` encoder (seeded; BatchNorm at its initial statistics), the usual baseline.
    ``k`` overrides the kNN size (default: the one the checkpoint was trained with, 15 for an
    official file; 20 for ``random``); ``enc.k_source`` says which."""
    import torch

    from crosspoint.models import build_point_encoder, load_point_encoder

    if spec == "random":
        cfg = {} if arch == "pointnet" else {"k": 20 if k is None else int(k)}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            enc = build_point_encoder(arch, **cfg)
        enc.eval()
        enc.k_source = None if arch == "pointnet" else ("default" if k is None else "argument")
        if device is not None:
            from crosspoint.device import resolve_device

            enc.to(resolve_device(device))
        return enc
    return load_point_encoder(spec, k=k, device=device)
