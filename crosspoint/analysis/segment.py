"""Part segmentation of a user's cloud: with the checkpoint's segmentation head, or unsupervised.

**With a head** (a bundle with ``seg_head`` or an official fine-tuned ``model.t7``): the head
takes the object's category (a one-hot over the part table's categories). It is ``category``
when given (a name or an index), else the cloud's own ``category`` when it names a known
category, else the category whose *restricted* prediction is the most confident (the highest
mean over points of the maximal part probability, the softmax taken over that category's parts
only); the result says which (``category_source`` "given" | "cloud" | "inferred", and
``category_scores``). The backbone runs once; only the head runs per candidate category.
Predictions are the arg-max over the category's own parts; ``labels`` are local (0 .. parts-1),
``part_ids`` maps them to the table's global part ids, ``confidence`` is the restricted maximal
probability.

**Without a head**: unsupervised part discovery. k-means (scikit-learn, ``n_init`` fixed,
seeded) on the per-point features concatenated with the unit-sphere coordinates, both centred
and scaled to a mean squared norm of 1, weighted ``sqrt(1 - xyz_weight)`` and
``sqrt(xyz_weight)`` (so ``xyz_weight`` is the share of the position, 0..1), so that clusters
are spatially coherent. Clusters are renumbered by their mean height (+Y up; ties by x then z),
so the colours stay put between runs; ``confidence`` is ``1 - d1 / d2`` (nearest vs
second-nearest centroid distance).

Defaults (``layer="edge"``, ``xyz_weight=0.5``) were chosen on 16 demo objects (8 classes x 2
seeds, k = the object's number of ground-truth parts, Hungarian-matched mIoU): with random
weights and with a briefly pretrained demo model alike, every setting landed at 0.47-0.50 mIoU,
the level of k-means on the coordinates alone (0.48); raw L2-normalised features without
centring did worse (0.42 with random weights), which is why the blocks are centred. Expect
clusters to follow geometry more than semantics until a model is trained well. Every result is
computed on ``n_points`` FPS points and carried to every original point by nearest neighbour
(:func:`~crosspoint.analysis.points.to_full`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crosspoint.analysis._common import AnalysisError, Cancel, Progress, check_cancel, report
from crosspoint.analysis.points import Prepared, prepare_points, propagation_index, to_full

__all__ = ["SegmentationResult", "segment", "point_features", "cluster_parts", "matched_miou",
           "DEFAULT_K_PARTS", "DEFAULT_XYZ_WEIGHT", "DEFAULT_LAYER", "KMEANS_N_INIT"]

DEFAULT_K_PARTS = 4
DEFAULT_XYZ_WEIGHT = 0.5
DEFAULT_LAYER = "edge"
KMEANS_N_INIT = 4


@dataclass
class SegmentationResult:
    labels: np.ndarray  # (N_full,) int64, 0 .. K-1
    names: dict  # {label: name}
    source: str  # "head" | "clusters"
    confidence: "np.ndarray | None"  # (N_full,) float32 in [0, 1]
    category: "str | None" = None
    category_source: "str | None" = None  # "given" | "cloud" | "inferred"
    note: str = ""
    subset_labels: "np.ndarray | None" = None  # (n,) on prepared.points
    prepared: "Prepared | None" = None
    part_ids: "np.ndarray | None" = None  # (K,) global part id of each label (head only)
    category_scores: dict = field(default_factory=dict)  # name -> mean max-probability (inferred only)


# ------------------------------------------------------------------------------ helpers
def _to_full_all(prep: Prepared, full_points, cancel, *arrays):
    """Every array carried to the original points with one nearest-neighbour search."""
    if full_points is None and prep.n_original > prep.n:
        return tuple(np.asarray(a).copy() for a in arrays)  # a Prepared cloud without its original points
    idx = propagation_index(prep, full_points, cancel=cancel)
    return tuple(to_full(a, prep, index=idx) for a in arrays)


def _original(cloud):
    from crosspoint.analysis.points import cloud_points

    return None if isinstance(cloud, Prepared) else cloud_points(cloud)


def _effective_layer(enc, layer: str) -> str:
    return "pre_pool" if layer == "edge" and not hasattr(enc, "edge_feature_dim") else layer  # PointNet


def point_features(session, prepared: Prepared, layer: str = DEFAULT_LAYER) -> np.ndarray:
    """Per-point features ``(n, C)`` float32 of a prepared cloud: ``layer="pre_pool"`` the map the
    global feature is pooled from, ``"edge"`` the concatenated EdgeConv outputs (DGCNNs; other
    encoders give their pre-pool map)."""
    import torch

    enc = session.point_encoder
    layer = _effective_layer(enc, layer)
    if layer not in ("pre_pool", "edge"):
        raise AnalysisError(f"layer must be 'edge' or 'pre_pool', got {layer!r}")
    with session.inference():
        x = torch.from_numpy(prepared.points[None]).to(session.device)
        f = enc.point_features(x) if layer == "pre_pool" else enc.point_features(x, layer="edge")
        return np.ascontiguousarray(f[0].float().cpu().numpy())


def _unit_block(x: np.ndarray) -> np.ndarray:
    """Centred over the points and scaled to a mean squared norm of 1."""
    x = x - x.mean(axis=0)
    return x / np.sqrt(max(float((x * x).sum(axis=1).mean()), 1e-24))


def cluster_parts(features: np.ndarray, xyz: np.ndarray, k: int, *, xyz_weight: float = DEFAULT_XYZ_WEIGHT,
                  seed: int = 0, n_init: int = KMEANS_N_INIT) -> tuple[np.ndarray, np.ndarray]:
    """k-means parts of one cloud: ``(labels (n,) ordered by mean height, confidence (n,))``.

    Both blocks are centred and scaled to a mean squared norm of 1; ``xyz_weight`` (0..1) is the
    share of the position: ``x = [sqrt(1 - w) * features, sqrt(w) * xyz]``."""
    from sklearn.cluster import KMeans

    w = float(xyz_weight)
    if not 0.0 <= w <= 1.0:
        raise AnalysisError(f"xyz_weight must be in [0, 1], got {xyz_weight}")
    xyz = np.asarray(xyz, np.float64)
    blocks = []
    if w < 1.0:
        blocks.append(np.sqrt(1.0 - w) * _unit_block(np.asarray(features, np.float64)))
    if w > 0.0:
        blocks.append(np.sqrt(w) * _unit_block(xyz))
    x = np.concatenate(blocks, axis=1)
    distinct = np.unique(np.round(x, 6), axis=0).shape[0]
    k = int(max(1, min(int(k), distinct)))
    km = KMeans(n_clusters=k, n_init=int(n_init), random_state=int(seed)).fit(x)
    raw = km.labels_.astype(np.int64)
    present = np.unique(raw)
    keys = []
    for c in present:
        m = xyz[raw == c].mean(axis=0)
        keys.append((round(float(m[1]), 9), round(float(m[0]), 9), round(float(m[2]), 9), int(c)))
    order = [c for *_, c in sorted(keys)]
    remap = np.full(k, -1, np.int64)
    remap[order] = np.arange(len(order))
    labels = remap[raw]
    if k > 1:
        d = np.sort(km.transform(x), axis=1)
        conf = 1.0 - d[:, 0] / np.maximum(d[:, 1], 1e-12)
    else:
        conf = np.ones(x.shape[0])
    return labels, np.clip(conf, 0.0, 1.0).astype(np.float32)


def matched_miou(pred, gt) -> float:
    """Mean IoU over the ground-truth parts after matching predicted clusters to parts one-to-one
    (Hungarian, maximal total IoU); a part left without a cluster scores 0."""
    from scipy.optimize import linear_sum_assignment

    pred = np.asarray(pred).reshape(-1)
    gt = np.asarray(gt).reshape(-1)
    if pred.shape != gt.shape:
        raise ValueError(f"{pred.size} predictions for {gt.size} ground-truth labels")
    ps, gs = np.unique(pred), np.unique(gt)
    iou = np.zeros((ps.size, gs.size))
    for i, p in enumerate(ps):
        pm = pred == p
        for j, g in enumerate(gs):
            gm = gt == g
            inter = np.count_nonzero(pm & gm)
            iou[i, j] = inter / np.count_nonzero(pm | gm) if inter else 0.0
    r, c = linear_sum_assignment(iou, maximize=True)
    return float(iou[r, c].sum() / gs.size)


# ------------------------------------------------------------------------------ head
def _seg_features(seg, x):
    if hasattr(seg, "features"):  # ClsPartSegmenter: a classification DGCNN + head
        return seg.features(x)
    g, rows, _ = seg.backbone.backbone(x)  # PartSegmenter (DGCNN_partseg)
    return g, rows


def _resolve_category(session, category, cloud) -> "tuple[int | None, str | None]":
    names = [str(n) for n in session.part_table.category_names]
    folded = [n.casefold() for n in names]
    if category is not None:
        if isinstance(category, (int, np.integer)) and not isinstance(category, bool):
            c = int(category)
            if not 0 <= c < len(names):
                raise AnalysisError(f"category index {c} out of range (0..{len(names) - 1})")
            return c, "given"
        key = str(category).strip().casefold()
        if key in folded:
            return folded.index(key), "given"
        raise AnalysisError(f"unknown category {category!r}; the segmentation head knows: {', '.join(names)}")
    own = getattr(cloud, "category", None)
    if isinstance(own, str) and own.strip().casefold() in folded:
        return folded.index(own.strip().casefold()), "cloud"
    return None, None


def _segment_head(session, cloud, category, n_points, seed, progress, cancel, full_points) -> SegmentationResult:
    import torch

    seg = session.segmenter
    table = session.part_table
    prep = prepare_points(cloud, session.points_for(n_points), seed)
    cat, how = _resolve_category(session, category, cloud)
    candidates = [cat] if cat is not None else list(range(table.num_categories))
    nc = seg.head.num_categories
    scores = {}
    best = None
    report(progress, 0, len(candidates) + 1, "segmenting")
    with session.inference():
        x = torch.from_numpy(prep.points[None]).to(session.device)
        g, rows = _seg_features(seg, x)
        for i, c in enumerate(candidates):
            check_cancel(cancel, "segmentation")
            onehot = torch.zeros(1, nc, device=session.device, dtype=g.dtype)
            onehot[0, c] = 1
            logits = seg.head(g, rows, onehot)[0].float()
            a, b = int(table.part_start[c]), int(table.part_stop[c])
            prob = torch.softmax(logits[:, a:b], dim=1)
            conf, lab = prob.max(dim=1)
            score = float(conf.mean())
            scores[str(table.category_names[c])] = score
            if best is None or score > best[0]:
                best = (score, c, lab.cpu().numpy().astype(np.int64), conf.cpu().numpy().astype(np.float32))
            report(progress, i + 1, len(candidates) + 1, "segmenting")
    score, c, lab, conf = best
    name = str(table.category_names[c])
    if how is None:
        how = "inferred"
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        runner = f"; next: {ranked[1][0]} {ranked[1][1]:.2f}" if len(ranked) > 1 else ""
        note = f"category inferred: {name} (mean confidence {score:.2f}{runner})"
    else:
        note = f"category {name} ({'given' if how == 'given' else 'from the cloud'})"
    if session.seg_note:
        note += f"; {session.seg_note}"
    a, b = int(table.part_start[c]), int(table.part_stop[c])
    part_names = session.part_names(c)
    orig = full_points if full_points is not None else _original(cloud)
    labels, confidence = _to_full_all(prep, orig, cancel, lab, conf)
    report(progress, len(candidates) + 1, len(candidates) + 1, "segmented")
    return SegmentationResult(labels=labels, names={i: n for i, n in enumerate(part_names)}, source="head",
                              confidence=confidence, category=name, category_source=how, note=note,
                              subset_labels=lab, prepared=prep, part_ids=np.arange(a, b, dtype=np.int64),
                              category_scores=scores if how == "inferred" else {})


# ------------------------------------------------------------------------------ entry point
def segment(session, cloud, *, category=None, n_points: "int | None" = None, k_parts: "int | None" = None,
            method: str = "auto", seed: int = 0, xyz_weight: float = DEFAULT_XYZ_WEIGHT,
            layer: str = DEFAULT_LAYER, full_points=None, progress: Progress = None,
            cancel: Cancel = None) -> SegmentationResult:
    """Segment ``cloud`` into parts (see the module docstring). ``method``: "auto" (the head when
    the session has one, else clusters), "head" or "clusters". ``k_parts``: clusters (default 4;
    ignored by the head). ``full_points``: the original points when ``cloud`` is a
    :class:`Prepared` (labels are then returned for them; without it, for the prepared points)."""
    if method not in ("auto", "head", "clusters"):
        raise AnalysisError(f"method must be 'auto', 'head' or 'clusters', got {method!r}")
    if method == "head" and not session.has_seg_head:
        raise AnalysisError(f"{session.path} has no part-segmentation head (fine-tune one with "
                            "`crosspoint finetune-partseg`, or use method='clusters')")
    if method == "head" or (method == "auto" and session.has_seg_head):
        return _segment_head(session, cloud, category, n_points, seed, progress, cancel, full_points)
    k = DEFAULT_K_PARTS if k_parts is None else int(k_parts)
    if k < 1:
        raise AnalysisError(f"k_parts must be >= 1, got {k_parts}")
    report(progress, 0, 3, "features")
    prep = prepare_points(cloud, session.points_for(n_points), seed)
    check_cancel(cancel, "segmentation")
    layer = _effective_layer(session.point_encoder, layer)
    feats = point_features(session, prep, layer)
    report(progress, 1, 3, "clustering")
    check_cancel(cancel, "segmentation")
    lab, conf = cluster_parts(feats, prep.points, k, xyz_weight=xyz_weight, seed=seed)
    report(progress, 2, 3, "propagating")
    orig = full_points if full_points is not None else _original(cloud)
    labels, confidence = _to_full_all(prep, orig, cancel, lab, conf)
    report(progress, 3, 3, "segmented")
    k_found = int(lab.max()) + 1
    note = (f"unsupervised: k-means on {layer} features and position (position share {xyz_weight:g}), "
            f"{k_found} parts ordered bottom to top")
    if k_found < k:
        note += f" (asked for {k}: the cloud has too few distinct points)"
    return SegmentationResult(labels=labels, names={i: f"part {i + 1}" for i in range(k_found)}, source="clusters",
                              confidence=confidence, category=None, category_source=None, note=note,
                              subset_labels=lab, prepared=prep)
