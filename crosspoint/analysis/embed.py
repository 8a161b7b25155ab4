"""Embeddings of clouds and images, and cross-modal retrieval.

* :func:`embed_clouds` -- global features ``(M, feature_dim)`` (DGCNN: max-pool || avg-pool, what
  the linear SVM reads);
* :func:`project_clouds` -- L2-normalised projections ``(M, projection_dim)`` (what the
  contrastive losses compare; the cross-modal space);
* :func:`embed_images` -- L2-normalised image projections; an RGBA render is made RGB with the
  background the image encoder was trained with (``session.background``: the checkpoint's
  ``data.background``, :func:`crosspoint.data.transforms.to_rgb`), then resized to ``size`` x
  ``size`` with the ImageNet normalisation (:func:`crosspoint.data.transforms.eval_image_transform`);
* :func:`retrieve` (an image against clouds) and :func:`retrieve_images` (a cloud against images):
  cosine similarities of the projections, best first.

Clouds may be :class:`~crosspoint.pointcloud.PointCloud` objects, ``(N, 3)`` arrays, files or
:class:`~crosspoint.analysis.points.Prepared` clouds; each is reduced to ``n_points`` by
:func:`~crosspoint.analysis.points.prepare_points` (FPS, unit sphere). Images may be ``(H, W, 4)``
/ ``(H, W, 3)`` uint8 arrays, PIL images or files. ``progress(done, total, text)`` is called after
every batch, ``cancel()`` is checked before every batch (raises :class:`Cancelled`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crosspoint.analysis._common import (
    AnalysisError, Cancel, Progress, check_cancel, image_array_uint8, l2_normalize, report,
)
from crosspoint.analysis.points import Prepared, prepare_points

__all__ = [
    "embed_clouds", "project_clouds", "encode_clouds", "embed_images", "image_tensor", "image_size",
    "retrieve", "retrieve_images", "encode_points",
]


# ------------------------------------------------------------------------------ points
def _as_cloud_list(clouds) -> list:
    if isinstance(clouds, np.ndarray):
        if clouds.ndim == 3:
            return list(clouds)
        if clouds.ndim == 2:
            return [clouds]
        raise AnalysisError(f"clouds: expected (M, N, 3) or a list of clouds, got an array of shape {clouds.shape}")
    from crosspoint.pointcloud import PointCloud

    if isinstance(clouds, (str, Path, Prepared, PointCloud)):
        return [clouds]
    return list(clouds)


def encode_points(session, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(features, projections)`` float32 of a ``(B, n, 3)`` batch of prepared clouds (no
    normalisation of the projections)."""
    import torch


    enc = session.point_encoder
    with session.inference():
        x = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)).to(session.device)
        f = enc.embed(x)
        p = enc.project_feature(f)
        return f.float().cpu().numpy(), p.float().cpu().numpy()


def encode_clouds(session, clouds, *, n_points: "int | None" = None, seed: int = 0, batch_size: int = 8,
                  progress: Progress = None, cancel: Cancel = None) -> tuple[np.ndarray, np.ndarray]:
    """``(features (M, feature_dim), L2-normalised projections (M, projection_dim))`` in one pass."""
    items = _as_cloud_list(clouds)
    total = len(items)
    enc = session.point_encoder
    if total == 0:
        return (np.zeros((0, enc.feature_dim), np.float32), np.zeros((0, enc.projection_dim), np.float32))
    bs = max(1, int(batch_size))
    feats, projs = [], []
    for s in range(0, total, bs):
        check_cancel(cancel, "embedding")
        batch = np.stack([prepare_points(c, session.points_for(n_points), seed).points for c in items[s:s + bs]])
        f, p = encode_points(session, batch)
        feats.append(f)
        projs.append(p)
        e = min(total, s + bs)
        report(progress, e, total, f"embedded {e}/{total} clouds")
    return (np.ascontiguousarray(np.concatenate(feats), np.float32), l2_normalize(np.concatenate(projs)))


def embed_clouds(session, clouds, *, n_points: "int | None" = None, seed: int = 0, batch_size: int = 8,
                 progress: Progress = None, cancel: Cancel = None) -> np.ndarray:
    """Global features ``(M, feature_dim)`` float32 of the clouds."""
    return encode_clouds(session, clouds, n_points=n_points, seed=seed, batch_size=batch_size,
                         progress=progress, cancel=cancel)[0]


def project_clouds(session, clouds, *, n_points: "int | None" = None, seed: int = 0, batch_size: int = 8,
                   progress: Progress = None, cancel: Cancel = None) -> np.ndarray:
    """L2-normalised projections ``(M, projection_dim)`` float32 of the clouds."""
    return encode_clouds(session, clouds, n_points=n_points, seed=seed, batch_size=batch_size,
                         progress=progress, cancel=cancel)[1]


# ------------------------------------------------------------------------------ images
def _pil(image, background):
    from PIL import Image

    from crosspoint.data.transforms import load_rgb, to_rgb

    if isinstance(image, (str, Path)):
        try:
            return load_rgb(image, background)
        except (OSError, ValueError) as exc:
            raise AnalysisError(f"{image}: cannot read the image ({exc})") from None
    if isinstance(image, Image.Image):
        return to_rgb(image, background)
    arr = image_array_uint8(image)
    return Image.fromarray(to_rgb(np.ascontiguousarray(arr), background), "RGB")


def image_size(image) -> tuple[int, int]:
    """``(H, W)`` of an image (array, PIL image or file)."""
    if isinstance(image, (str, Path)):
        from PIL import Image

        with Image.open(image) as im:
            return im.size[1], im.size[0]
    if hasattr(image, "size") and not isinstance(image, np.ndarray) and isinstance(image.size, tuple):
        return image.size[1], image.size[0]
    arr = np.asarray(image)
    return int(arr.shape[0]), int(arr.shape[1])


def image_tensor(image, size: int = 224, background="white"):
    """The model input ``(3, size, size)`` float32 tensor of one image (made RGB with
    ``background``, :func:`crosspoint.data.transforms.to_rgb`; resized, ImageNet-normalised). The
    analysis functions pass ``session.background``, the one the image encoder was trained with."""
    from crosspoint.data.transforms import eval_image_transform

    return eval_image_transform(int(size))(_pil(image, background))


def _as_image_list(images) -> list:
    if isinstance(images, (str, Path)):
        return [images]
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            return list(images)
        return [images]
    try:
        from PIL import Image

        if isinstance(images, Image.Image):
            return [images]
    except ImportError:  # pragma: no cover
        pass
    return list(images)


def embed_images(session, images, *, size: "int | None" = None, batch_size: int = 16, progress: Progress = None,
                 cancel: Cancel = None) -> np.ndarray:
    """L2-normalised image projections ``(M, projection_dim)`` float32."""
    import torch


    enc = session.require_image_encoder()
    items = _as_image_list(images)
    total = len(items)
    if total == 0:
        return np.zeros((0, enc.projection_dim), np.float32)
    bs = max(1, int(batch_size))
    rows = []
    for s in range(0, total, bs):
        check_cancel(cancel, "image embedding")
        x = torch.stack([image_tensor(im, session.size_for(size), session.background) for im in items[s:s + bs]])
        with session.inference():
            p = enc(x.to(session.device)).projection
            rows.append(p.float().cpu().numpy())
        e = min(total, s + bs)
        report(progress, e, total, f"embedded {e}/{total} images")
    return l2_normalize(np.concatenate(rows))


# ------------------------------------------------------------------------------ retrieval
def _is_vector(x, width: int) -> bool:
    return isinstance(x, np.ndarray) and x.ndim == 1 and x.shape[0] == width and x.dtype.kind == "f"


def _gallery(session, items, kind: str, *, n_points: int, seed: int, size: int) -> np.ndarray:
    width = session.point_encoder.projection_dim
    proj = getattr(items, "projections", None)
    if proj is not None:  # a DatasetEmbedding
        items = proj
    if isinstance(items, np.ndarray) and items.ndim == 2 and items.dtype.kind == "f" and items.shape[1] != 3 \
            and not (kind == "images" and items.shape[1] in (3, 4) and items.dtype == np.uint8):
        if items.shape[1] != width:
            raise AnalysisError(f"features are {items.shape[1]}-wide but the projections are {width}-wide "
                                "(pass projections, not global features)")
        return l2_normalize(items)
    if kind == "clouds":
        return project_clouds(session, items, n_points=n_points, seed=seed)
    return embed_images(session, items, size=size)


def _ranked(sims: np.ndarray, top_k: int) -> list[tuple[int, float]]:
    order = np.argsort(-sims, kind="stable")[: max(0, int(top_k))]
    return [(int(i), float(sims[i])) for i in order]


def _image_query(session, image, size: int) -> np.ndarray:
    width = session.point_encoder.projection_dim
    if _is_vector(image, width):
        session.require_image_encoder()
        return l2_normalize(image)
    return embed_images(session, [image], size=size)[0]


def _cloud_query(session, cloud, n_points: int, seed: int) -> np.ndarray:
    width = session.point_encoder.projection_dim
    if _is_vector(cloud, width):
        return l2_normalize(cloud)
    return project_clouds(session, [cloud], n_points=n_points, seed=seed)[0]


def retrieve(session, image, clouds_or_features, top_k: int = 5, *, n_points: "int | None" = None, seed: int = 0,
             size: "int | None" = None) -> list[tuple[int, float]]:
    """The ``top_k`` clouds most similar to ``image``: ``[(index, cosine similarity)]``, best
    first. ``clouds_or_features``: clouds, an ``(M, projection_dim)`` array of projections, or a
    :class:`~crosspoint.analysis.dataset.DatasetEmbedding`. ``image`` may also be its projection."""
    q = _image_query(session, image, size)
    g = _gallery(session, clouds_or_features, "clouds", n_points=n_points, seed=seed, size=size)
    return _ranked(g @ q, top_k)


def retrieve_images(session, cloud, images_or_features, top_k: int = 5, *, n_points: "int | None" = None, seed: int = 0,
                    size: "int | None" = None) -> list[tuple[int, float]]:
    """The ``top_k`` images most similar to ``cloud`` (the reverse of :func:`retrieve`)."""
    session.require_image_encoder()
    q = _cloud_query(session, cloud, n_points, seed)
    g = _gallery(session, images_or_features, "images", n_points=n_points, seed=seed, size=size)
    return _ranked(g @ q, top_k)
