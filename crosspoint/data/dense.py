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
"""

from __future__ import annotations

import numpy as np

__all__ = ["project_visible", "dense_sample"]


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
