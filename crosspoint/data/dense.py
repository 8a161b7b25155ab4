"""Point-pixel correspondences for the dense pretraining term (:mod:`crosspoint.models.dense`).

A view rendered by this project carries its camera (``rendering_metadata.txt``, read by
:func:`crosspoint.render.read_view_metadata`), so for every point of an object the pixel it lands
on is known. Which points the view actually shows is decided with a splat z-buffer: the points are
projected, each cell of a ``cell`` x ``cell`` pixel grid keeps its nearest depth, and a point is
visible when its depth is within ``tol`` (a fraction of the object's depth range) of its cell's
nearest. It needs only the points and costs well under a millisecond for 2,048 points. Measured
against the renderer's mesh depth buffer on demo objects at 128 px (``tests/test_dense.py``): of
the points it calls visible 96 % are (precision), and it finds 37 % of the visible ones (recall;
6 px cells, tol 0.02). Precision is what matters for a training signal (a hidden point matched to
the occluder's pixel is a wrong label; a visible point left out only costs a sample); the exact
ground truth for evaluation is the renderer's own depth buffer
(:mod:`crosspoint.analysis.correspondence`).

:func:`dense_sample` then picks, for one training sample, ``m`` visible points among the ``N``
sampled ones (seeded: resume stays exact) with their pixels in the augmented image (resized to the
training size, mirrored when the image was flipped).

The flip. The paper's image augmentation flips the view at random and leaves the cloud as it is.
For the global losses that is harmless; for the dense term it is a contradiction on every
mirror-symmetric object: the flipped view of a chair looks like a view from the mirrored azimuth,
in which the pixel that the left front leg's point is sent to shows the right front leg. Half of
the samples teach one assignment of two twin parts, half the other, so a model cannot learn which
twin a pixel shows (short of noticing the flip from the shading: the renderer's headlight comes
from the upper left). ``loss.dense_flip: both`` mirrors the points with the image
(:func:`mirror_in_view`: the pair stays a true object-camera pair); the default, ``image``, is the
paper's augmentation, as the shipped demo checkpoint was trained.
"""

from __future__ import annotations

import numpy as np

from crosspoint.config import CHOICES

__all__ = ["project_visible", "dense_sample", "mirror_in_view", "DENSE_FLIPS"]

#: what a random horizontal flip of the image does to the pair (``loss.dense_flip``): ``"image"``
#: mirrors the image only (the paper's image augmentation; the shipped demo checkpoint), ``"both"``
#: also mirrors the points, across the plane through the camera's centre, its viewing axis and its
#: up axis, so the pair stays one object seen by one camera
DENSE_FLIPS = CHOICES[("loss", "dense_flip")]


def mirror_in_view(points: np.ndarray, camera) -> np.ndarray:
    """``points`` ``(P, 3)`` (the camera's world frame) mirrored across the plane that holds the
    camera's centre, viewing axis and up axis: their projections are the image's mirror
    (``u -> size - u``, same ``v`` and depth), so the mirrored points and the flipped image are the
    same object seen by the same camera. An isometry with determinant -1 (a left leg becomes a right
    one): the view of a mirror-symmetric object and its flip no longer ask a point of one leg to
    match the pixels of the other."""
    v = np.asarray(camera.view_matrix(), np.float64)
    a, b = v[:3, :3], v[:3, 3]
    ai = np.linalg.inv(a)
    f = np.diag([-1.0, 1.0, 1.0])  # camera x (image right) negated
    m = ai @ f @ a
    t = ai @ (f @ b - b)
    pts = np.asarray(points)
    out = pts[:, :3].astype(np.float64) @ m.T + t
    res = np.array(pts, dtype=pts.dtype if pts.dtype.kind == "f" else np.float64, copy=True)
    res[:, :3] = out
    return res


def project_visible(points: np.ndarray, camera, *, cell: int = 6, tol: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """``(uv (P, 2) float32 pixels at the camera's size, visible (P,) bool)`` of ``points`` ``(P, 3)``."""
    pts = np.asarray(points, np.float64)[:, :3]
    uv, z = camera.project(pts)
    uv = uv.astype(np.float64)
    z = z.astype(np.float64)
    size = int(camera.size)
    ok = np.isfinite(uv).all(axis=1) & (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < size) & (uv[:, 1] >= 0) & (
        uv[:, 1] < size)
    visible = np.zeros(len(pts), bool)
    if not ok.any():
        return uv.astype(np.float32), visible
    g = max(1, size // max(1, int(cell)))
    cx = np.clip((uv[ok, 0] * g / size).astype(np.int64), 0, g - 1)
    cy = np.clip((uv[ok, 1] * g / size).astype(np.int64), 0, g - 1)
    key = cy * g + cx
    nearest = np.full(g * g, np.inf)
    np.minimum.at(nearest, key, z[ok])
    span = float(z[ok].max() - z[ok].min()) or 1.0
    visible[np.flatnonzero(ok)] = z[ok] <= nearest[key] + tol * span
    return uv.astype(np.float32), visible


def dense_sample(uv: np.ndarray, visible: np.ndarray, m: int, rng: np.random.Generator, *, view_size: int,
                 image_size: int, flipped: bool) -> dict:
    """The dense fields of one sample: ``m`` of the ``N`` sampled points that are visible, with their
    pixels in the training image. ``uv``/``visible`` are per sampled point (``(N, 2)``, ``(N,)``, at
    the rendered ``view_size``); the image was resized to ``image_size`` and mirrored when
    ``flipped``. Fewer than ``m`` visible points: the rest is padding (``valid`` False)."""
    cand = np.flatnonzero(np.asarray(visible, bool))
    take = rng.permutation(cand)[:m] if cand.size else cand
    idx = np.zeros(m, np.int64)
    out_uv = np.zeros((m, 2), np.float32)
    valid = np.zeros(m, bool)
    k = take.size
    idx[:k] = take
    scale = float(image_size) / float(view_size)
    pix = np.asarray(uv, np.float64)[take] * scale
    if flipped:
        pix[:, 0] = image_size - pix[:, 0]
    out_uv[:k] = pix
    valid[:k] = True
    return {"dense_idx": idx, "dense_uv": out_uv, "dense_valid": valid}


def _dense_image_transform(size: int):
    """The paper's image augmentation without its random flip (the flip is drawn and applied by
    :func:`dense_item`, which must mirror the pixels too): resize, colour jitter 0.4, ImageNet norm."""
    from torchvision import transforms as T

    from crosspoint.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    return T.Compose([T.Resize((size, size)), T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
                      T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def _view_camera(path, cache: dict):
    """The camera of one rendered view (its folder's ``rendering_metadata.txt``), cached per folder."""
    from pathlib import Path

    from crosspoint.render import read_view_metadata

    p = Path(path)
    folder = str(p.parent)
    if folder not in cache:
        names_file = p.parent / "renderings.txt"
        names = names_file.read_text().split() if names_file.is_file() else sorted(x.name for x in p.parent.glob("*.png"))
        cache[folder] = (names, read_view_metadata(p.parent))
    names, cams = cache[folder]
    if p.name not in names or names.index(p.name) >= len(cams):
        raise ValueError(f"{p}: not listed in its folder's renderings.txt / rendering_metadata.txt")
    return cams[names.index(p.name)]


def dense_item(ds, index: int) -> dict:
    """One pretraining sample of ``ds`` (a :class:`~crosspoint.data.pretrain.PretrainDataset` with
    ``dense_points > 0``) with the dense fields ``dense_idx`` (M,), ``dense_uv`` (M, 2) and
    ``dense_valid`` (M,), the links of the first point copy, and ``dense_valid2`` (M,), those of the
    second (they differ with ``loss.dense_survivors``, which drops from each copy the links to points
    its augmentation replaced, or with a partial view, ``data.partial_view``), and ``dense_alive``,
    ``dense_alive2`` (M,), only when the dataset's ``dense_report_alive`` is set: whether each linked
    point is still itself in that copy (the training-pair inspector shows them; training does not
    compute them): the same points,
    augmentations and view choice as the dataset draws them,
    a pure function of (seed, epoch, object), with the image flip drawn here so that the pixels can
    be mirrored with it."""
    import torch

    from crosspoint.data.base import DatasetError, fix_point_count
    from crosspoint.data.pretrain import apply_point_transform, surviving_rows, two_point_copies
    from crosspoint.data.transforms import item_rng, load_rgb, process_rng, seeded_torch

    if not 0 <= index < len(ds):
        raise IndexError(index)
    rng = item_rng(ds.seed, ds.epoch, index) if ds.seed is not None else process_rng()
    raw = np.asarray(ds._load_points(index))  # noqa: SLF001 - the dataset's own raw object
    pts, pidx = fix_point_count(raw, ds.num_points, ds.sampling, rng, extra=(np.arange(len(raw)),))
    before_aug = rng.bit_generator.state
    partial = getattr(ds, "partial_view", None)
    trace: list = []
    if partial is not None:
        a1, a2, keep = two_point_copies(ds.point_transform, partial, pts, rng, trace=trace)
    else:
        trace.append((rng.bit_generator.state, pts))
        a1 = apply_point_transform(ds.point_transform, pts, rng)
        trace.append((rng.bit_generator.state, pts))
        a2 = apply_point_transform(ds.point_transform, pts, rng)
        keep = None
    # which points each copy still holds where they were (RandomInputDropout overwrites some with the
    # first point); with dense_survivors, each copy's links only to those
    survivors, report = getattr(ds, "dense_survivors", False), getattr(ds, "dense_report_alive", False)
    alive = ([surviving_rows(ds.point_transform, src, state) for state, src in trace]
             if survivors or report else None)
    paths = ds._view_paths(index)  # noqa: SLF001
    if not paths:
        raise DatasetError(f"{ds.objects()[index].ref}: no rendered views")
    cache = ds.__dict__.setdefault("_dense_cameras", {})
    image = camera = None
    errors = []
    for k in rng.permutation(len(paths)):
        path = paths[int(k)]
        try:
            image = load_rgb(path, ds.background)
            camera = _view_camera(path, cache)
            break
        except Exception as exc:  # noqa: BLE001 - an unreadable view: try another one of the object
            errors.append(f"{path}: {exc}")
    if image is None or camera is None:
        raise DatasetError(f"{ds.objects()[index].ref}: no view with a readable image and camera: {errors[0]}")
    flip = bool(rng.random() < 0.5)
    torch_seed = int(rng.integers(2**62)) if ds.seed is not None else None
    tf = ds.__dict__.get("_dense_tf")
    if tf is None or tf[0] != ds.image_size:
        tf = (ds.image_size, _dense_image_transform(ds.image_size))
        ds._dense_tf = tf
    with seeded_torch(torch_seed):
        img = tf[1](image)
    if flip:
        img = torch.flip(img, dims=[-1])
        if getattr(ds, "dense_flip", "image") == "both":
            # the points mirrored with the image, then the same augmentations as drawn above (the
            # generator replayed from before them, so every other draw of the item is unchanged)
            after = rng.bit_generator.state
            rng.bit_generator.state = before_aug
            mirrored = mirror_in_view(pts, camera)
            if partial is not None:  # the same points kept: the partial view is of the object, not of its mirror
                a1, a2, _ = two_point_copies(ds.point_transform, partial, mirrored, rng, keep=keep)
            else:
                a1 = apply_point_transform(ds.point_transform, mirrored, rng)
                a2 = apply_point_transform(ds.point_transform, mirrored, rng)
            rng.bit_generator.state = after
    uv_all, vis_all = project_visible(raw[:, :3], camera)
    fields = dense_sample(uv_all[pidx], vis_all[pidx], int(ds.dense_points), rng, view_size=int(camera.size),
                          image_size=int(ds.image_size), flipped=flip)
    # the links of the second copy: only to points that its partial view still holds where they were
    idx = fields["dense_idx"]
    fields["dense_valid2"] = fields["dense_valid"] & (True if keep is None else keep[idx])
    if report:
        fields["dense_alive"], fields["dense_alive2"] = alive[0][idx], alive[1][idx]
    if survivors:
        fields["dense_valid2"] &= alive[1][idx]
        fields["dense_valid"] = fields["dense_valid"] & alive[0][idx]
    return {
        "points1": torch.from_numpy(np.ascontiguousarray(a1[:, :3], dtype=np.float32)),
        "points2": torch.from_numpy(np.ascontiguousarray(a2[:, :3], dtype=np.float32)),
        "image": img,
        "index": int(index),
        "label": int(ds.labels[index]),
        **{k: torch.from_numpy(v) for k, v in fields.items()},
    }


class DenseItems:
    """``dataset`` whose items carry the dense fields (:func:`dense_item`, ``points`` visible points
    each; ``flip``: one of :data:`DENSE_FLIPS`; ``survivors``: ``loss.dense_survivors``, each copy
    links only the points its augmentation left in place); ``set_epoch``, ``len`` and ``objects`` are
    the dataset's."""

    def __init__(self, dataset, points: int, flip: str = "image", survivors: bool = False):
        if flip not in DENSE_FLIPS:
            raise ValueError(f"flip must be one of {', '.join(DENSE_FLIPS)}, got {flip!r}")
        self.dataset = dataset
        dataset.dense_points = int(points)
        dataset.dense_flip = flip
        dataset.dense_survivors = bool(survivors)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def objects(self):
        return self.dataset.objects()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return dense_item(self.dataset, index)
