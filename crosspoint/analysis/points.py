"""From a user's cloud to what the model sees, and back.

:func:`prepare_points` picks ``n`` points by farthest point sampling (every point, padded with
seeded repeats, when the cloud has fewer) and normalises them into the unit sphere (centroid of
the picked points at the origin, farthest picked point at distance 1, as the training data is).
:func:`to_full` carries per-point results on those ``n`` points back to every original point by
nearest neighbour (a :class:`scipy.spatial.cKDTree` on the picked points, queried in chunks so a
cloud of millions of points never needs more than a chunk's worth of temporaries).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crosspoint.analysis._common import AnalysisError, Cancel, check_cancel

__all__ = ["Prepared", "prepare_points", "to_full", "propagation_index", "cloud_points", "PROPAGATE_CHUNK"]

#: query rows per chunk in :func:`to_full`
PROPAGATE_CHUNK = 262_144


@dataclass
class Prepared:
    """``points`` ``(n, 3)`` float32 in the unit sphere; ``index`` ``(n,)`` int64 rows of the
    original cloud they come from (repeats when it had fewer than ``n``); ``points == (original
    [index] - center) / scale``; ``n_original`` the original point count."""

    points: np.ndarray
    index: np.ndarray
    center: np.ndarray
    scale: float
    n_original: int

    @property
    def n(self) -> int:
        return int(self.points.shape[0])

    def original_points(self) -> np.ndarray:
        """The picked points before normalisation, ``(n, 3)`` float32, in the frame the model sees
        (+Y up: a +Z-up cloud's points turned by :func:`crosspoint.pointcloud.to_y_up`)."""
        return (self.points.astype(np.float64) * self.scale + self.center).astype(np.float32)


def cloud_points(cloud) -> np.ndarray:
    """``(N, 3)`` float32 points of a :class:`~crosspoint.pointcloud.PointCloud`, an array with at
    least 3 columns, or a file (read with :func:`crosspoint.io.read_point_cloud`)."""
    if isinstance(cloud, Prepared):
        return cloud.points
    if isinstance(cloud, (str, Path)):
        from crosspoint.io import read_point_cloud

        cloud = read_point_cloud(cloud)
    # a PointCloud is given to the model +Y up, as CrossPoint was trained (its up_axis says which
    # axis is up in the file: ModelNet's OFF meshes and LAS scans are +Z up)
    pts = cloud.model_points() if hasattr(cloud, "model_points") else getattr(cloud, "points", cloud)
    try:
        import torch

        if isinstance(pts, torch.Tensor):
            pts = pts.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    pts = np.asarray(pts)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise AnalysisError(f"a point cloud must be (N, 3), got shape {pts.shape}")
    if pts.shape[0] == 0:
        raise AnalysisError("the point cloud is empty")
    pts = np.ascontiguousarray(pts[:, :3], dtype=np.float32)
    if not np.isfinite(pts).all():
        raise AnalysisError("the point cloud has NaN or infinite coordinates")
    return pts


def prepare_points(cloud_or_array, n: int = 2048, seed: int = 0) -> Prepared:
    """``n`` points of the cloud for the model (see the module docstring). A :class:`Prepared`
    is returned unchanged when it already has ``n`` points."""
    if isinstance(cloud_or_array, Prepared) and cloud_or_array.n == int(n):
        return cloud_or_array
    if int(n) < 1:
        raise AnalysisError(f"the number of points must be >= 1, got {n}")
    from crosspoint.geometry import farthest_point_sample, normalize_unit_sphere

    pts = cloud_points(cloud_or_array)
    idx = farthest_point_sample(pts, int(n), seed=seed)
    sub, center, scale = normalize_unit_sphere(pts[idx])
    return Prepared(np.ascontiguousarray(sub, np.float32), np.asarray(idx, np.int64),
                    np.asarray(center, np.float32), float(scale), int(pts.shape[0]))


def propagation_index(prepared: Prepared, full_points=None, *, chunk: int = PROPAGATE_CHUNK,
                      cancel: Cancel = None) -> np.ndarray:
    """``(N,)`` int64: for every original point, the row of ``prepared.points`` whose value it
    takes in :func:`to_full` (its nearest picked point; a picked point takes its own row)."""
    from scipy.spatial import cKDTree

    uniq, first = np.unique(prepared.index, return_index=True)
    if full_points is None:
        if prepared.n_original <= prepared.n and uniq.size == prepared.n_original:
            out = np.empty(prepared.n_original, np.int64)
            out[uniq] = first  # repeats carry the same point: any copy will do
            return out
        raise AnalysisError("to_full needs the original points (full_points) for a subsampled cloud")
    full = cloud_points(full_points)
    if full.shape[0] != prepared.n_original:
        raise AnalysisError(f"full_points has {full.shape[0]} points, the prepared cloud came from "
                            f"{prepared.n_original}")
    out = np.empty(full.shape[0], np.int64)
    if uniq.size < full.shape[0]:
        tree = cKDTree(full[uniq].astype(np.float64))
        chunk = max(1, int(chunk))
        for s in range(0, full.shape[0], chunk):
            check_cancel(cancel, "propagation")
            e = min(full.shape[0], s + chunk)
            _, nn = tree.query(full[s:e].astype(np.float64), k=1)
            out[s:e] = first[nn]
    out[uniq] = first  # the picked points keep their own values (no tie-breaking between duplicates)
    return out


def to_full(values_on_subset, prepared: Prepared, full_points=None, *, chunk: int = PROPAGATE_CHUNK,
            cancel: Cancel = None, index: "np.ndarray | None" = None) -> np.ndarray:
    """Per-point ``values`` ``(n,)`` / ``(n, C)`` on ``prepared.points`` -> ``(N, ...)`` on every
    point of ``full_points``, each original point taking the value of its nearest picked point
    (picked points keep their own value). Without ``full_points`` the cloud must have been used
    whole (``n >= N``): the values are scattered back by ``prepared.index``. ``index``: a
    :func:`propagation_index` computed before, to propagate several arrays with one search."""
    vals = np.asarray(values_on_subset)
    if vals.shape[0] != prepared.n:
        raise AnalysisError(f"{vals.shape[0]} values for {prepared.n} prepared points")
    if index is None:
        index = propagation_index(prepared, full_points, chunk=chunk, cancel=cancel)
    return vals[index]
