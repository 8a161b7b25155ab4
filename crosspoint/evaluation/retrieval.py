"""Cross-modal retrieval: does an object's point cloud find its own rendered view, and back?

CrossPoint's cross-modal loss pulls the projection of a point cloud (the mean of its two
augmentations' projections) towards the projection of one of its rendered views. The retrieval
protocol measures how well that worked on objects with images (the ShapeNetRender layout, the
demo dataset):

* every object's points go through the point encoder's projection head, one fixed view of it
  through the image encoder's projection head (no augmentation on either side);
* both are L2-normalised; the cosine-similarity matrix ``S = P I^T`` is ``(objects, objects)``;
* point -> image: for row ``i`` the rank of the true image ``i`` among all images; image -> point
  the same per column. Top-k accuracy is the fraction of objects whose true partner ranks within
  the first k; ties are counted *against* the object (a collapsed, constant embedding scores 0,
  not 1). Chance level for top-k is ``k / objects``; the median rank (1 = best) is reported too.

The paper does not report this number; it is a diagnostic of the cross-modal objective, useful on
the demo dataset where ModelNet40 and ScanObjectNN are not available.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["l2_normalize", "retrieval_ranks", "retrieval_scores"]


def l2_normalize(x, dtype=np.float64) -> np.ndarray:
    """Rows (the last axis) scaled to unit L2 norm (all-zero rows stay zero), as a contiguous
    ``dtype`` array (float64 for scores; the analyses keep float32 features)."""
    x = np.asarray(x, dtype=dtype)
    return np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12), dtype=dtype)


def retrieval_ranks(query, gallery) -> np.ndarray:
    """Rank (1 = best) of ``gallery[i]`` for ``query[i]`` under cosine similarity, ties counted
    against the query: ``1 + #{j != i: s_ij >= s_ii}``."""
    q, g = l2_normalize(query), l2_normalize(gallery)
    if q.shape != g.shape:
        raise ValueError(f"query {q.shape} and gallery {g.shape} must have the same shape (one partner each)")
    sim = q @ g.T
    true = np.diag(sim)[:, None]
    ahead = (sim >= true).sum(axis=1) - 1  # the true partner itself is not ahead of itself
    return (1 + ahead).astype(np.int64)


def retrieval_scores(point_emb, image_emb, ks: Sequence[int] = (1, 5)) -> dict:
    """Top-k accuracies both ways for paired embeddings (row ``i`` of both is object ``i``)::

        {"n": objects,
         "point_to_image": {"top1": .., "top5": .., "median_rank": ..},
         "image_to_point": {...},
         "chance": {"top1": 1/n, "top5": 5/n}}
    """
    p = np.asarray(point_emb)
    i = np.asarray(image_emb)
    if p.ndim != 2 or i.ndim != 2 or p.shape[0] != i.shape[0]:
        raise ValueError(f"need paired (n, d) embeddings, got {p.shape} and {i.shape}")
    if p.shape[1] != i.shape[1]:
        raise ValueError(f"point embeddings are {p.shape[1]}-wide, image embeddings {i.shape[1]}-wide "
                         "(use the projection-head outputs of both encoders)")
    n = p.shape[0]
    if n < 2:
        raise ValueError("retrieval needs at least 2 objects")
    out = {"n": int(n), "chance": {f"top{k}": float(min(k, n) / n) for k in ks}}
    for name, ranks in (("point_to_image", retrieval_ranks(p, i)), ("image_to_point", retrieval_ranks(i, p))):
        entry = {f"top{k}": float((ranks <= k).mean()) for k in ks}
        entry["median_rank"] = float(np.median(ranks))
        entry["mean_reciprocal_rank"] = float(np.mean(1.0 / ranks))
        out[name] = entry
    return out
