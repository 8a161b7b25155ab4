"""The interface every point encoder offers (DGCNN, the part-segmentation DGCNN's backbone, PointNet).

``encoder(points)`` takes ``(B, N, 3)`` float32 points (numpy arrays and other float dtypes are
converted; the tensor is moved to the encoder's device) and returns an :class:`EncoderOutput`:

* ``feature`` ``(B, feature_dim)``: the global feature used downstream (linear SVM, few-shot, ...);
* ``projection`` ``(B, projection_dim)``: the contrastive projection-head output (``inv_head``);
* ``point_features`` ``(B, N, point_feature_dim)``: the per-point map that the global feature is
  pooled from (for heatmaps), or None with ``with_point_features=False``.

``embed``, ``project`` and ``point_features`` are the three parts on their own.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn

__all__ = ["EncoderOutput", "PointEncoder", "as_points"]


class EncoderOutput(NamedTuple):
    feature: torch.Tensor
    projection: torch.Tensor
    point_features: "torch.Tensor | None"


def as_points(points, like: "torch.Tensor | None" = None) -> torch.Tensor:
    """``points`` as a ``(B, N, 3)`` floating tensor on ``like``'s device and dtype."""
    if isinstance(points, np.ndarray):
        points = torch.from_numpy(np.ascontiguousarray(points))
    if not isinstance(points, torch.Tensor):
        raise TypeError(f"points must be a tensor or numpy array, got {type(points).__name__}")
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must have shape (B, N, 3), got {tuple(points.shape)}")
    if points.shape[1] == 0:
        raise ValueError("points: empty point cloud (N = 0)")
    if like is not None:
        points = points.to(device=like.device, dtype=like.dtype if like.is_floating_point() else None)
    elif not points.is_floating_point():
        points = points.float()
    return points


class PointEncoder(nn.Module):
    """Base class: subclasses set ``arch``, ``feature_dim``, ``projection_dim``, ``point_feature_dim``
    and implement ``_encode(points, keep_map) -> (feature, point_map or None)``, ``project_feature``
    and ``config()``."""

    arch: str = ""
    feature_dim: int
    projection_dim: int
    point_feature_dim: int

    def _param(self) -> torch.Tensor:
        return next(self.parameters())

    def _encode(self, points: torch.Tensor, keep_map: bool):  # pragma: no cover - abstract
        raise NotImplementedError

    def project_feature(self, feature: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, points, *, with_point_features: bool = True) -> EncoderOutput:
        pts = as_points(points, self._param())
        feature, pmap = self._encode(pts, keep_map=with_point_features)
        return EncoderOutput(feature, self.project_feature(feature), pmap)

    def embed(self, points) -> torch.Tensor:
        """The global feature ``(B, feature_dim)``."""
        return self._encode(as_points(points, self._param()), keep_map=False)[0]

    def project(self, points) -> torch.Tensor:
        """The projection ``(B, projection_dim)`` (what the contrastive losses see)."""
        return self.project_feature(self.embed(points))

    def point_features(self, points) -> torch.Tensor:
        """The per-point map ``(B, N, point_feature_dim)`` the global feature is pooled from."""
        return self._encode(as_points(points, self._param()), keep_map=True)[1]

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items())
