"""Part segmentation of a user's cloud: with the checkpoint's segmentation head, or unsupervised.

**With a head** (a bundle with ``seg_head`` or an official fine-tuned ``model.t7``): the head
takes the object's category (a one-hot over the part table's categories). It is ``category``
when given (a name or an index), else the cloud's own ``category`` when it names a known
category, else it is inferred (``category_source`` "given" | "cloud" | "inferred"):

* with a **category probe** in the checkpoint (a linear classifier on the global feature, trained
  with the head: a bundle's top-level :data:`PROBE_KEY` entry, made by :func:`fit_category_probe`),
  the probe's arg-max; ``category_confidence`` is its probability;
* without one, the **head's score**: the head is run with each category's one-hot and scored by
  the mean over points of the probability mass (softmax over *all* parts) falling on that
  category's parts; ``category_confidence`` is the margin between the best and the second-best
  score. On the easy demo (seed 1, 80 objects) this score was right 95 % of the time and every
  wrong inference had a margin under 0.02; on the **hard** demo with the shipped checkpoint it is
  right for 21 of 48 held-out meshes (44 %) with the 10-epoch head, 25 of 48 (52 %) with the
  40-epoch head shipped now; wrong inferences have margins up to 0.08, so the
  margin does not warn (:data:`LOW_MARGIN` is kept only as the easy demo's figure). The probe the
  shipped checkpoint carries (fitted on the seed-0 demo's global features) is right for 39 of the
  same 48 (81 %; ``scripts/make_demo_checkpoint.py --probe-only``). The score used before the
  probability mass (the mean maximal probability with the softmax restricted to the category's
  parts) favoured categories with few parts (51 % on the easy demo). The note says how reliable
  the inference is; give the category when you know it.

``category_method`` says which ("probe" | "head score"), ``category_scores`` holds the scores
(probabilities for the probe). The backbone runs once; only the head runs per candidate category.
Predictions are the arg-max over the category's own parts; ``labels`` are local (0 .. parts-1),
``part_ids`` maps them to the table's global part ids, ``confidence`` is the restricted maximal
probability.

**Without a head**: unsupervised part discovery. k-means (scikit-learn, ``n_init`` fixed,
seeded) on the per-point features concatenated with the unit-sphere coordinates, both centred
and scaled to a mean squared norm of 1, weighted ``sqrt(1 - xyz_weight)`` and
``sqrt(xyz_weight)`` (so ``xyz_weight`` is the share of the position, 0..1). Clusters are
renumbered by their mean height (+Y up; ties by x then z), so the colours stay put between runs;
``confidence`` is ``1 - d1 / d2`` (nearest vs second-nearest centroid distance). Beside the
result, the baseline the features must beat: k-means on the coordinates alone
(``baseline_labels``; ``scores["agreement_with_baseline"]``, and with the cloud's own part labels
``scores["miou"]`` and ``scores["baseline_miou"]``).

Default position share, measured (demo checkpoint, 160 objects of a demo generated with seed 1,
k = the object's number of ground-truth parts, Hungarian-matched mIoU; chosen on the first 80,
confirmed on the other 80; docs/RESULTS.md): ``layer="edge"`` with ``xyz_weight`` 0 (features
only) 0.480, **0.1: 0.480**, 0.25: 0.467, 0.5 (the former default): 0.447, and k-means on xyz
alone 0.401 (``"pre_pool"`` features only: 0.486). 0.1 beats 0.5 (+0.033, Wilcoxon p = 0.019)
and xyz alone (+0.079, p = 0.002) and keeps a little spatial coherence, so it is the default.
Expect clusters to follow geometry more than semantics on objects whose parts the encoder does
not separate (mugs, cars, bottles, airplanes stay at the xyz level). Every result is computed on
``n_points`` FPS points and carried to every original point by nearest neighbour
(:func:`~crosspoint.analysis.points.to_full`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from crosspoint.analysis._common import AnalysisError, Cancel, Progress, check_cancel, report
from crosspoint.analysis.points import Prepared, prepare_points, propagation_index, to_full

log = logging.getLogger(__name__)

__all__ = ["SegmentationResult", "segment", "point_features", "cluster_parts", "matched_miou", "infer_category",
           "category_probe", "fit_category_probe", "DEFAULT_K_PARTS", "DEFAULT_XYZ_WEIGHT", "DEFAULT_LAYER",
           "KMEANS_N_INIT", "PROBE_KEY", "HEAD_SCORE_ACCURACY", "LOW_MARGIN"]

DEFAULT_K_PARTS = 4
DEFAULT_XYZ_WEIGHT = 0.1  # measured: see the module docstring
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
    category_scores: dict = field(default_factory=dict)  # name -> score the category was chosen by (inferred only)
    category_confidence: "float | None" = None  # how sure the inference is, in [0, 1] (inferred only)
    category_method: "str | None" = None  # "probe" | "head score" (inferred only)
    baseline_labels: "np.ndarray | None" = None  # (N_full,) k-means on xyz alone (clusters only)
    scores: dict = field(default_factory=dict)  # "agreement_with_baseline"; "miou", "baseline_miou" with labels


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
    # one OpenMP thread: on a few thousand points a second one buys nothing, and on shared cores its
    # waiting made k-means 10-100x slower (docs/RESULTS.md "Scale")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        km = KMeans(n_clusters=k, n_init=int(n_init), random_state=int(seed)).fit(x)
        dist = km.transform(x) if k > 1 else None
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
        d = np.sort(dist, axis=1)
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


#: the bundle key of a category probe: ``{"weight" (C, F), "bias" (C,), "categories" [names]}``, a linear
#: classifier on the point encoder's global feature (:func:`fit_category_probe` makes one)
PROBE_KEY = "category_probe"
#: the head-score inference's measured accuracy (shipped checkpoint, held-out hard demo, 48 meshes; the
#: easy demo gave 0.95 with the checkpoint trained on it)
HEAD_SCORE_ACCURACY = 25 / 48
#: on the easy demo every wrong head-score inference had a margin under 0.02 and every one of the 70 of 80
#: objects with a margin of at least 0.05 was right; on the hard demo wrong ones reach 0.08 (see the module)
LOW_MARGIN = 0.05
_PROBES: dict = {}


def _as_probe(raw, session) -> "dict | None":
    try:
        w = np.asarray(raw["weight"].cpu() if hasattr(raw["weight"], "cpu") else raw["weight"], np.float64)
        b = np.asarray(raw["bias"].cpu() if hasattr(raw["bias"], "cpu") else raw["bias"], np.float64).reshape(-1)
    except (KeyError, TypeError, ValueError):
        return None
    names = [str(n) for n in session.part_table.category_names]
    cats = [str(c) for c in raw.get("categories", names)]
    if w.ndim != 2 or w.shape[0] != len(cats) or b.shape[0] != len(cats) \
            or w.shape[1] != int(session.point_encoder.feature_dim) or set(cats) != set(names):
        log.warning("%s: the category probe does not fit this model (shape %s, categories %s); ignoring it",
                    session.path, w.shape, cats)
        return None
    order = [cats.index(n) for n in names]  # rows in the part table's category order
    num = lambda k: raw.get(k) if isinstance(raw.get(k), (int, float)) else None  # noqa: E731
    return {"weight": w[order], "bias": b[order], "categories": names, "accuracy": num("accuracy"),
            "heldout_accuracy": num("heldout_accuracy"), "heldout_note": str(raw.get("heldout_note") or "")}


def category_probe(session) -> "dict | None":
    """The checkpoint's category probe (``session.category_probe`` when the session has the attribute:
    a :class:`~crosspoint.analysis.ModelSession` sets it from its one read of the file, None when the
    file has none; else a bundle's top-level :data:`PROBE_KEY` entry, read once per checkpoint), or None."""
    if hasattr(session, "category_probe"):
        own = session.category_probe
        return _as_probe(own, session) if isinstance(own, dict) else None
    key = getattr(session, "fingerprint", None)
    if key in _PROBES:
        return _PROBES[key]
    probe = None
    if getattr(session, "format", None) == "bundle":
        try:
            from crosspoint.models import read_checkpoint

            obj = read_checkpoint(session.path)
            raw = obj.get(PROBE_KEY) if isinstance(obj, dict) else None
            probe = _as_probe(raw, session) if isinstance(raw, dict) else None
            del obj
        except Exception as exc:  # noqa: BLE001 - an unreadable probe is no probe
            log.warning("%s: cannot read a category probe (%s)", session.path, exc)
    _PROBES[key] = probe
    return probe


def fit_category_probe(features: np.ndarray, labels: np.ndarray, categories, *, C: float = 1.0,
                       seed: int = 0) -> dict:
    """A linear category probe on global features ``(M, F)`` with labels ``(M,)`` (indices into
    ``categories``): multinomial logistic regression on standardised features, folded back into a
    ``weight`` ``(C, F)`` / ``bias`` ``(C,)`` on raw features; save it under :data:`PROBE_KEY` in a
    bundle (``save_model_bundle(..., extra={PROBE_KEY: probe})``) and :func:`segment` infers the
    category with it."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, np.float64)
    y = np.asarray(labels, np.int64)
    cats = [str(c) for c in categories]
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = LogisticRegression(C=float(C), max_iter=2000, random_state=int(seed)).fit((x - mu) / sd, y)
    w = np.zeros((len(cats), x.shape[1]))
    b = np.full(len(cats), -1e4)  # a category never seen in training is never predicted
    w[clf.classes_] = clf.coef_ / sd if len(clf.classes_) > 2 else np.vstack([-clf.coef_, clf.coef_]) / sd
    b[clf.classes_] = (clf.intercept_ if len(clf.classes_) > 2 else np.array([-clf.intercept_[0], clf.intercept_[0]])) \
        - (w[clf.classes_] * mu).sum(axis=1)
    acc = float(np.mean(np.argmax(x @ w.T + b, axis=1) == y))
    return {"weight": w.astype(np.float32), "bias": b.astype(np.float32), "categories": cats,
            "feature": "global", "accuracy": acc}


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def _head_scores(seg, table, g, rows, candidates, device, cancel=None):
    """For each candidate category ``c``: the head run with ``c``'s one-hot, and its score -- the
    mean over points of the probability mass (softmax over *all* parts) that falls on ``c``'s
    parts -- with the restricted prediction. The mass does not favour categories with few parts,
    which the older score (the mean maximal probability restricted to ``c``'s parts) did: on the
    demo it inferred the category right 51 % of the time, the mass 95 % (docs/RESULTS.md)."""
    import torch

    nc = seg.head.num_categories
    out = {}
    for i, c in enumerate(candidates):
        check_cancel(cancel, "segmentation")
        onehot = torch.zeros(1, nc, device=device, dtype=g.dtype)
        onehot[0, c] = 1
        logits = seg.head(g, rows, onehot)[0].float()
        a, b = int(table.part_start[c]), int(table.part_stop[c])
        mass = float(torch.softmax(logits, dim=1)[:, a:b].sum(dim=1).mean())
        prob = torch.softmax(logits[:, a:b], dim=1)
        conf, lab = prob.max(dim=1)
        out[c] = (mass, lab.cpu().numpy().astype(np.int64), conf.cpu().numpy().astype(np.float32))
    return out


def infer_category(session, cloud, *, n_points: "int | None" = None, seed: int = 0, method: str = "auto") -> dict:
    """The category of ``cloud`` for the segmentation head: ``{"category", "index", "confidence",
    "method", "scores", "note"}``. With a category probe (:func:`category_probe`) it is the probe's
    arg-max on the global feature, ``confidence`` its probability; without one, the head's score
    (:func:`_head_scores`; right 95 % of the time on the demo), ``confidence`` the margin between
    the best and the second-best score. ``method``: "auto", or "head score" to ignore a probe (to
    compare the two)."""
    if not session.has_seg_head:
        raise AnalysisError(f"{session.path} has no part-segmentation head: no category to infer for it")
    if method not in ("auto", "head score"):
        raise AnalysisError(f"method must be 'auto' or 'head score', got {method!r}")
    return _segment_head(session, cloud, None, n_points, seed, None, None, None, infer_only=True,
                         use_probe=method == "auto")


def _segment_head(session, cloud, category, n_points, seed, progress, cancel, full_points, infer_only=False,
                  use_probe=True):
    import torch

    seg = session.segmenter
    table = session.part_table
    prep = prepare_points(cloud, session.points_for(n_points), seed)
    cat, how = (None, None) if infer_only else _resolve_category(session, category, cloud)
    names = [str(n) for n in table.category_names]
    probe = category_probe(session) if cat is None and use_probe else None
    method, confidence, scores = None, None, {}
    report(progress, 0, 1, "segmenting")
    with session.inference():
        x = torch.from_numpy(prep.points[None]).to(session.device)
        g, rows = _seg_features(seg, x)
        if cat is None and probe is not None:
            feat = session.point_encoder.embed(x)[0].float().cpu().numpy().astype(np.float64)
            p = _softmax(probe["weight"] @ feat + probe["bias"])
            cat, method, confidence = int(np.argmax(p)), "probe", float(p.max())
            scores = {names[i]: float(p[i]) for i in range(len(names))}
        candidates = [cat] if cat is not None else list(range(table.num_categories))
        per = _head_scores(seg, table, g, rows, candidates, session.device, cancel)
    if cat is None:
        ranked = sorted(per, key=lambda c: -per[c][0])
        cat, method = ranked[0], "head score"
        scores = {names[c]: per[c][0] for c in per}
        confidence = float(per[ranked[0]][0] - (per[ranked[1]][0] if len(ranked) > 1 else 0.0))
    _, lab, conf = per[cat]
    name = names[cat]
    if infer_only:
        return {"category": name, "index": cat, "confidence": confidence, "method": method, "scores": scores,
                "note": _category_note(name, method, confidence, scores, probe)}
    if how is None:
        how = "inferred"
        note = _category_note(name, method, confidence, scores, probe)
    else:
        note = f"category {name} ({'given' if how == 'given' else 'from the cloud'})"
        method = None
    if session.seg_note:
        note += f"; {session.seg_note}"
    a, b = int(table.part_start[cat]), int(table.part_stop[cat])
    part_names = session.part_names(cat)
    orig = full_points if full_points is not None else _original(cloud)
    labels, confidence_full = _to_full_all(prep, orig, cancel, lab, conf)
    report(progress, 1, 1, "segmented")
    return SegmentationResult(labels=labels, names={i: n for i, n in enumerate(part_names)}, source="head",
                              confidence=confidence_full, category=name, category_source=how, note=note,
                              subset_labels=lab, prepared=prep, part_ids=np.arange(a, b, dtype=np.int64),
                              category_scores=scores if how == "inferred" else {},
                              category_confidence=confidence if how == "inferred" else None,
                              category_method=method if how == "inferred" else None)


def _category_note(name, method, confidence, scores, probe) -> str:
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    runner = f"; next: {ranked[1][0]} {ranked[1][1]:.2f}" if len(ranked) > 1 else ""
    if method == "probe":
        held = probe.get("heldout_accuracy") if probe else None
        acc = probe.get("accuracy") if probe else None
        if held is not None:
            extra = f"; the probe was right for {100 * held:.0f} % of held-out objects" + (
                f" ({probe['heldout_note']})" if probe.get("heldout_note") else "")
        else:
            extra = f", the probe was {100 * acc:.0f} % right on its training data" if acc is not None else ""
        return f"category inferred by the checkpoint's probe: {name} (probability {confidence:.2f}{runner}{extra})"
    warn = (f"; low margin (under {LOW_MARGIN:g})" if confidence < LOW_MARGIN else "")
    return (f"category inferred from the segmentation head's scores: {name} (score {scores[name]:.2f}, margin "
            f"{confidence:.2f}{runner}{warn}); this checkpoint has no category probe, and the head's scores were "
            f"right {100 * HEAD_SCORE_ACCURACY:.0f} % of the time on held-out demo objects: give the category when "
            "you know it")


# ------------------------------------------------------------------------------ entry point
def segment(session, cloud, *, category=None, n_points: "int | None" = None, k_parts: "int | None" = None,
            method: str = "auto", seed: int = 0, xyz_weight: float = DEFAULT_XYZ_WEIGHT,
            layer: str = DEFAULT_LAYER, full_points=None, baseline: bool = True, progress: Progress = None,
            cancel: Cancel = None) -> SegmentationResult:
    """Segment ``cloud`` into parts (see the module docstring). ``method``: "auto" (the head when
    the session has one, else clusters), "head" or "clusters". ``k_parts``: clusters (default 4;
    ignored by the head). ``full_points``: the original points when ``cloud`` is a
    :class:`Prepared` (labels are then returned for them; without it, for the prepared points).
    ``baseline`` (clusters only): also k-means on the position alone, the baseline the discovered
    parts must beat: ``baseline_labels``, and ``scores`` (``agreement_with_baseline``; with the
    cloud's own part labels, e.g. a demo object's, ``miou`` and ``baseline_miou``)."""
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
    scores: dict = {}
    extra = ()
    if baseline:
        base, _ = cluster_parts(feats, prep.points, k, xyz_weight=1.0, seed=seed)  # position alone
        scores["agreement_with_baseline"] = matched_miou(lab, base)
        gt = getattr(cloud, "labels", None)
        if gt is not None and not isinstance(cloud, Prepared) and np.asarray(gt).shape[0] == prep.n_original:
            sub_gt = np.asarray(gt).reshape(-1)[prep.index]
            scores["miou"] = matched_miou(lab, sub_gt)
            scores["baseline_miou"] = matched_miou(base, sub_gt)
        extra = (base,)
    report(progress, 2, 3, "propagating")
    orig = full_points if full_points is not None else _original(cloud)
    labels, confidence, *base_full = _to_full_all(prep, orig, cancel, lab, conf, *extra)
    report(progress, 3, 3, "segmented")
    k_found = int(lab.max()) + 1
    note = (f"unsupervised: k-means on {layer} features" + (f" and position (position share {xyz_weight:g})"
                                                            if xyz_weight > 0 else "")
            + f", {k_found} parts ordered bottom to top")
    if k_found < k:
        note += f" (asked for {k}: the cloud has too few distinct points)"
    if "miou" in scores:
        note += (f"; against the cloud's own part labels: {scores['miou']:.2f} matched mIoU, k-means on position "
                 f"alone {scores['baseline_miou']:.2f}")
    elif scores:
        note += f"; agreement with k-means on position alone: {scores['agreement_with_baseline']:.2f} matched mIoU"
    return SegmentationResult(labels=labels, names={i: f"part {i + 1}" for i in range(k_found)}, source="clusters",
                              confidence=confidence, category=None, category_source=None, note=note,
                              subset_labels=lab, prepared=prep, baseline_labels=base_full[0] if base_full else None,
                              scores=scores)
