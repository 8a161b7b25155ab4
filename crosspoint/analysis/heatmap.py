"""Grad-CAM heatmaps: which points and which pixels drive the object-view similarity.

Both heatmaps explain ``s = cos(proj(cloud), proj(image))``, the cross-modal similarity
CrossPoint's loss raises for matching pairs. They are *not* a point-pixel correspondence: they
say what drives the global object-view similarity (:data:`GRADCAM_LABEL`, the label every
display should carry). The exact geometric correspondence is :mod:`.correspondence`; what the
heatmaps are worth is :func:`heat_readouts` (measured on the demo: docs/RESULTS.md, "3D-2D
correspondence").

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

**Honest readouts** (:func:`heat_readouts`, next to every heatmap): the deletion curve of the
point heat against a random *contiguous blob* of the same size (a kNN ball around a random point)
and scattered random points; its specificity (the heat computed for ANOTHER object's image:
correlation with this view's heat, and how well it deletes for this view); and its agreement with
the geometric ground truth (Spearman of the point heat against the image heat at each visible
point's own pixel, the heat of visible vs occluded points, the image heat's mass on the object).

The image (or the cloud) may also be given as its projection vector, e.g. from a cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crosspoint.analysis._common import AnalysisError, l2_normalize, unit_range
from crosspoint.analysis.embed import _cloud_query, _image_query, image_size, image_tensor
from crosspoint.analysis.points import Prepared, cloud_points, prepare_points, to_full

__all__ = ["PointHeatmap", "point_heatmap", "point_heatmap_result", "image_heatmap", "similarity",
           "deletion_test", "point_saliency", "heat_readouts", "HEAT_METHODS", "GRADCAM_LABEL", "IMAGE_CAM_LAYERS"]

HEAT_METHODS = ("gradcam", "grad_x_input")
#: what the heatmaps show, for every display that draws them
GRADCAM_LABEL = "Grad-CAM: what drives the object-view similarity (not a point-pixel correspondence)"
#: image Grad-CAM targets: the last stage (stride 32: 4x4 at 128 px) or the one before (stride 16)
IMAGE_CAM_LAYERS = ("layer4", "layer3")


@dataclass
class PointHeatmap:
    heat: np.ndarray  # (N_full,) float32 in [0, 1]
    subset_heat: np.ndarray  # (n,) on prepared.points
    prepared: Prepared
    similarity: float
    method: str
    note: str = ""
    label: str = GRADCAM_LABEL


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
                  size: "int | None" = None, layer: str = "layer4", mask: "np.ndarray | None" = None) -> np.ndarray:
    """Grad-CAM ``(H, W)`` float32 in [0, 1] over ``image`` (its own size) for the similarity with
    ``cloud`` (see the module docstring). ``layer``: "layer4" (the last stage, default) or
    "layer3" (twice finer). ``mask`` ``(H, W)`` bool: the heat is kept on those pixels only (the
    object's mask, e.g. the image's alpha or :attr:`ViewCorrespondence.object_mask`) and scaled
    into [0, 1] there."""
    import torch
    import torch.nn.functional as F

    enc = session.require_image_encoder()
    if isinstance(image, np.ndarray) and image.ndim == 1:
        raise AnalysisError("image_heatmap needs the image itself, not its projection")
    if layer not in IMAGE_CAM_LAYERS:
        raise AnalysisError(f"layer must be one of {', '.join(IMAGE_CAM_LAYERS)}, got {layer!r}")
    target = _cloud_query(session, cloud, n_points, seed)
    h, w = image_size(image)
    if mask is not None and np.asarray(mask).shape != (h, w):
        raise AnalysisError(f"mask is {np.asarray(mask).shape}, the image {h}x{w}")
    x = image_tensor(image, session.size_for(size), session.background)[None].to(session.device)
    with session.inference(grad=True, autocast=False):  # float32 gradients for Grad-CAM
        x.requires_grad_(True)
        if layer == "layer4":
            out = enc(x, with_feature_map=True)
            proj, fmap = out.projection, out.feature_map
        else:
            from crosspoint.analysis.correspondence import _resnet_stages

            proj, stages = _resnet_stages(enc, x)
            fmap = stages[layer]
        t = torch.as_tensor(np.asarray(target, np.float32), device=proj.device)
        s = F.cosine_similarity(proj.float(), t[None], dim=1)[0]
        (grad,) = torch.autograd.grad(s, fmap)
        a = fmap.detach().float()
        alpha = grad.float().mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((alpha * a).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        cam = cam.cpu().numpy()
    if mask is not None:
        cam = np.where(np.asarray(mask, bool), cam, 0.0)
    return unit_range(cam)


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


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def heat_readouts(session, cloud, image, camera=None, *, view=None, mesh=None, other_image=None,
                  method: str = "gradcam", fractions=(0.1, 0.2, 0.3), n_random: int = 2, mode: str = "replace",
                  n_points: "int | None" = None, seed: int = 0, size: "int | None" = None) -> dict:
    """What the Grad-CAM heatmaps of ``cloud`` and ``image`` are worth (see the module docstring).

    Returns plain numbers: ``label`` (:data:`GRADCAM_LABEL`), ``similarity``;
    ``deletion_curve`` ``{"fractions", "top", "blob", "random", "other_top"}``: the similarity
    drop after deleting, for each fraction of the model's input points, the hottest points, a
    random contiguous blob (kNN ball, mean of ``n_random``), scattered random points (mean of
    ``n_random``) and -- with ``other_image`` -- the hottest points of the heat computed for that
    other image; the same at 20 % (or the fraction nearest it) as ``top_drop``, ``blob_drop``,
    ``random_drop``, ``other_top_drop`` and ``top_minus_blob``; ``other_heat_corr``: Pearson
    correlation of this heat with the other image's heat (1 = not specific at all).
    With ``camera`` (or a :func:`~crosspoint.analysis.correspondence.view_correspondence` as
    ``view``; ``mesh`` when the view is a mesh render): ``spearman_point_image`` (point heat vs
    image heat at each visible point's pixel), ``visible_heat``/``hidden_heat`` (mean point heat
    of visible / occluded points), ``image_heat_on_object`` (share of the image heat on object
    pixels) and ``object_area`` (share of the image the object covers).
    ``mode``: how points are deleted ("replace" by the nearest kept point, as
    :func:`deletion_test`; "drop"; or "repool", the per-point map pooled without them)."""
    import torch

    from crosspoint.analysis.correspondence import _cloud_sims, random_blob, view_correspondence

    if mode not in ("replace", "drop", "repool"):
        raise AnalysisError(f"mode must be 'replace', 'drop' or 'repool', got {mode!r}")
    target = _image_query(session, image, size)
    prep = prepare_points(cloud, session.points_for(n_points), seed)
    heat, s0 = point_saliency(session, prep.points, target, method)
    n = prep.n
    rng = np.random.default_rng(seed)
    fr = [float(f) for f in fractions]
    other_heat = None
    if other_image is not None:
        other_heat, _ = point_saliency(session, prep.points, _image_query(session, other_image, size), method)
    removals, keys = [], []
    for k, f in enumerate(fr):
        m = max(1, int(round(f * n)))
        sets = [("top", np.argsort(-heat, kind="stable")[:m])]
        if other_heat is not None:
            sets.append(("other_top", np.argsort(-other_heat, kind="stable")[:m]))
        for _ in range(int(n_random)):
            sets.append(("blob", random_blob(prep.points, m, rng)))
            sets.append(("random", rng.choice(n, m, replace=False)))
        for name, idx in sets:
            rm = np.zeros(n, bool)
            rm[idx] = True
            removals.append(rm)
            keys.append((k, name))
    pmap = None
    if mode == "repool":
        with session.inference(autocast=False):
            x = torch.from_numpy(np.ascontiguousarray(prep.points, np.float32)[None]).to(session.device)
            pmap = session.point_encoder(x, with_point_features=True).point_features
    sims = _cloud_sims(session, prep.points, removals, target, mode, pmap)
    names = ["top", "blob", "random"] + (["other_top"] if other_heat is not None else [])
    curve = {name: [[] for _ in fr] for name in names}
    for (k, name), s in zip(keys, sims):
        curve[name][k].append(s0 - s)
    curve = {name: [float(np.mean(v)) if v else float("nan") for v in vals] for name, vals in curve.items()}
    at = int(np.argmin([abs(f - 0.2) for f in fr]))
    out = {"label": GRADCAM_LABEL, "method": method, "similarity": float(s0), "mode": mode,
           "deletion_curve": {"fractions": fr, **curve}, "fraction": fr[at]}
    for name in names:
        out[f"{name}_drop"] = curve[name][at]
    out["top_minus_blob"] = out["top_drop"] - out["blob_drop"]
    if other_heat is not None:
        out["other_heat_corr"] = _pearson(heat, other_heat)
    if camera is not None or view is not None:
        from crosspoint.analysis.points import cloud_points

        pts = prep.points if isinstance(cloud, Prepared) else cloud_points(cloud)
        if view is None:
            view = view_correspondence(pts, camera, mesh=mesh)
        vis = view.visible[prep.index]
        img = np.asarray(image) if isinstance(image, np.ndarray) else image
        img_heat = image_heatmap(session, prep if isinstance(cloud, Prepared) else cloud, img, n_points=n_points,
                                 seed=seed, size=size)
        if img_heat.shape != view.shape:
            raise AnalysisError(f"the view is {view.shape}, the image {img_heat.shape}")
        rc = view.pixel[prep.index]
        from crosspoint.analysis.correspondence import _spearman

        out["spearman_point_image"] = _spearman(heat[vis], img_heat[rc[vis, 0], rc[vis, 1]]) if vis.any() \
            else float("nan")
        out["visible_heat"] = float(heat[vis].mean()) if vis.any() else float("nan")
        out["hidden_heat"] = float(heat[~vis].mean()) if (~vis).any() else float("nan")
        obj = view.object_mask
        tot = float(img_heat.sum())
        out["image_heat_on_object"] = float(img_heat[obj].sum() / tot) if tot > 0 else float("nan")
        out["object_area"] = float(obj.mean())
    return out
