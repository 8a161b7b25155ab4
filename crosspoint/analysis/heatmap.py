"""3D-2D correspondence: which points and which pixels drive the cloud-image similarity.

Both heatmaps explain ``s = cos(proj(cloud), proj(image))``, the cross-modal similarity
CrossPoint's loss raises for matching pairs.

**Points** (:func:`point_heatmap`). ``F`` ``(n, C)`` is the point encoder's per-point map before
pooling (``point_features`` of :class:`~crosspoint.models.EncoderOutput`; DGCNN: the conv5 map
whose max || mean is the global feature). It comes from the *same* forward pass as the
projection, with the input marked as requiring gradients, so ``s`` is differentiated through the
real pooling and projection head (``torch.autograd.grad(s, F)``; the weights themselves never
require gradients). Then

* ``method="gradcam"``: ``alpha_c = mean_n ds/dF[n, c]``, ``heat_n = ReLU(sum_c alpha_c F[n, c])``;
* ``method="grad_x_input"``: ``heat_n = sum_c |ds/dF[n, c] * F[n, c]|``;

scaled by the maximum into [0, 1] and carried to every original point by nearest neighbour.
Grad-CAM can be zero everywhere: no point's weighted activation raises ``s`` (common with
untrained weights); :class:`PointHeatmap` then says so in ``note``.
With max pooling, ``ds/dF[n, c]`` is non-zero from the max branch only at the arg-max point of
each channel (and ``1/n`` times the avg branch's gradient everywhere), so grad x input is sparse
and Grad-CAM smoother.

**Pixels** (:func:`image_heatmap`). Grad-CAM on the last ResNet stage's map ``A`` ``(C, h, w)``
(7 x 7 at 224 px) for the same ``s``: ``alpha_c = mean_hw ds/dA``, ``cam = ReLU(sum_c alpha_c
A_c)``, upsampled bilinearly to the image's own size and scaled into [0, 1].
:func:`overlay` blends a heatmap over the image for display.

:func:`deletion_test` measures faithfulness: the similarity after deleting the top / bottom /
random ``fraction`` of the points by heat (each deleted point replaced by its nearest kept
point, so the count stays the same, or dropped).

The image (or the cloud) may also be given as its projection vector, e.g. from a cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crosspoint.analysis._common import AnalysisError, l2_normalize, unit_range
from crosspoint.analysis.embed import _cloud_query, _image_query, image_size, image_tensor
from crosspoint.analysis.points import Prepared, cloud_points, prepare_points, to_full

__all__ = ["PointHeatmap", "point_heatmap", "point_heatmap_result", "image_heatmap", "similarity",
           "deletion_test", "point_saliency", "HEAT_METHODS"]

HEAT_METHODS = ("gradcam", "grad_x_input")


@dataclass
class PointHeatmap:
    heat: np.ndarray  # (N_full,) float32 in [0, 1]
    subset_heat: np.ndarray  # (n,) on prepared.points
    prepared: Prepared
    similarity: float
    method: str
    note: str = ""


def point_saliency(session, points: np.ndarray, target: np.ndarray,
                   method: str = "gradcam") -> tuple[np.ndarray, float]:
    """``(heat (n,) float32 in [0, 1], similarity)`` of prepared ``points`` ``(n, 3)`` for the
    unit projection vector ``target``."""
    import torch
    import torch.nn.functional as F

    if method not in HEAT_METHODS:
        raise AnalysisError(f"method must be one of {', '.join(HEAT_METHODS)}, got {method!r}")
    enc = session.point_encoder
    with session.inference(grad=True, autocast=False):  # float32 gradients for Grad-CAM
        x = torch.from_numpy(np.ascontiguousarray(points, np.float32)[None]).to(session.device)
        x.requires_grad_(True)
        out = enc(x, with_point_features=True)
        fmap = out.point_features
        if fmap is None or not fmap.requires_grad:
            raise AnalysisError(f"the {getattr(enc, 'arch', '?')} encoder does not return its per-point map "
                                "inside the autograd graph of its projection; point heatmaps need it")
        t = torch.as_tensor(np.asarray(target, np.float32), device=out.projection.device)
        s = F.cosine_similarity(out.projection.float(), t[None], dim=1)[0]
        (grad,) = torch.autograd.grad(s, fmap)
        fm, g = fmap.detach()[0].float(), grad[0].float()
        if method == "gradcam":
            heat = torch.relu(fm @ g.mean(dim=0))
        else:
            heat = (g * fm).abs().sum(dim=1)
        return unit_range(heat.cpu().numpy()), float(s.detach())


def point_heatmap_result(session, cloud, image, *, method: str = "gradcam", n_points: "int | None" = None,
                         seed: int = 0, size: "int | None" = None, full_points=None) -> PointHeatmap:
    """:func:`point_heatmap` with the details (subset heat, prepared cloud, similarity)."""
    target = _image_query(session, image, size)
    prep = prepare_points(cloud, session.points_for(n_points), seed)
    heat, s = point_saliency(session, prep.points, target, method)
    full = full_points if full_points is not None else (None if isinstance(cloud, Prepared) else cloud_points(cloud))
    if full is None:
        full_heat = to_full(heat, prep, None) if prep.n_original <= prep.n else heat.copy()
    else:
        full_heat = to_full(heat, prep, full)
    note = "" if heat.max() > 0 else "no point raises the similarity: the heatmap is empty"
    return PointHeatmap(full_heat.astype(np.float32), heat, prep, s, method, note)


def point_heatmap(session, cloud, image, *, method: str = "gradcam", n_points: "int | None" = None, seed: int = 0,
                  size: "int | None" = None) -> np.ndarray:
    """Per-point heat ``(N_full,)`` float32 in [0, 1]: how strongly each point drives the cosine
    similarity between the cloud's and the image's projections (see the module docstring)."""
    return point_heatmap_result(session, cloud, image, method=method, n_points=n_points, seed=seed, size=size).heat


def image_heatmap(session, cloud, image, *, n_points: "int | None" = None, seed: int = 0,
                  size: "int | None" = None) -> np.ndarray:
    """Grad-CAM ``(H, W)`` float32 in [0, 1] over ``image`` (its own size) for the similarity with
    ``cloud`` (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    enc = session.require_image_encoder()
    if isinstance(image, np.ndarray) and image.ndim == 1:
        raise AnalysisError("image_heatmap needs the image itself, not its projection")
    target = _cloud_query(session, cloud, n_points, seed)
    h, w = image_size(image)
    x = image_tensor(image, session.size_for(size), session.background)[None].to(session.device)
    with session.inference(grad=True, autocast=False):  # float32 gradients for Grad-CAM
        x.requires_grad_(True)
        out = enc(x, with_feature_map=True)
        fmap = out.feature_map
        t = torch.as_tensor(np.asarray(target, np.float32), device=out.projection.device)
        s = F.cosine_similarity(out.projection.float(), t[None], dim=1)[0]
        (grad,) = torch.autograd.grad(s, fmap)
        a = fmap.detach().float()
        alpha = grad.float().mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((alpha * a).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        return unit_range(cam.cpu().numpy())


def similarity(session, cloud, image, *, n_points: "int | None" = None, seed: int = 0,
               size: "int | None" = None) -> float:
    """``cos(proj(cloud), proj(image))`` (either may be given as its projection vector)."""
    return float(_cloud_query(session, cloud, n_points, seed) @ _image_query(session, image, size))


def _delete(points: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "drop":
        return points[~mask]
    from scipy.spatial import cKDTree

    kept = points[~mask]
    out = points.copy()
    _, nn = cKDTree(kept).query(points[mask], k=1)
    out[mask] = kept[nn]
    return out


def deletion_test(session, cloud, image, *, method: str = "gradcam", fraction: float = 0.2, n_random: int = 5,
                  mode: str = "replace", n_points: "int | None" = None, seed: int = 0,
                  size: "int | None" = None) -> dict:
    """Faithfulness of the point heatmap: ``{"similarity", "top", "bottom", "random",
    "random_all"}`` = ``s`` before and after deleting the ``fraction`` of points with the highest /
    lowest heat / a random set (mean over ``n_random`` seeded draws). ``mode``: "replace" (by the
    nearest kept point) or "drop". A faithful heatmap gives ``top < random < bottom``."""
    import torch

    from crosspoint.analysis.embed import encode_points

    if mode not in ("replace", "drop"):
        raise AnalysisError(f"mode must be 'replace' or 'drop', got {mode!r}")
    target = _image_query(session, image, size)
    prep = prepare_points(cloud, session.points_for(n_points), seed)
    heat, s0 = point_saliency(session, prep.points, target, method)
    n = prep.n
    m = max(1, int(round(fraction * n)))
    order = np.argsort(-heat, kind="stable")
    rng = np.random.default_rng(seed)
    sets = [order[:m], order[-m:]] + [rng.choice(n, m, replace=False) for _ in range(int(n_random))]
    clouds = []
    for idx in sets:
        mask = np.zeros(n, bool)
        mask[idx] = True
        clouds.append(_delete(prep.points, mask, mode))
    sims = []
    with torch.no_grad():
        for c in clouds:
            _, p = encode_points(session, c[None])
            sims.append(float(l2_normalize(p)[0] @ target))
    return {"similarity": s0, "top": sims[0], "bottom": sims[1], "random": float(np.mean(sims[2:])) if n_random else
            float("nan"), "random_all": sims[2:]}
