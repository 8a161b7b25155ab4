"""DGCNN encoder as CrossPoint pretrains it (the reference's ``DGCNN(args)``, ``cls=-1``).

Four EdgeConv layers (64, 64, 128, 256 channels; kNN in the current feature space, the point
itself included; edge feature ``[x_j - x_i, x_i]``; 1x1 conv without bias + BatchNorm +
LeakyReLU(0.2); max over the ``k`` neighbours), their outputs concatenated (512 channels), a
point-wise conv to ``emb_dims`` (1024) and the global feature ``max-pool || avg-pool`` (2048).
Projection head ``inv_head``: Linear(2048, 1024) + BN + ReLU + Linear(1024, 256).

Parameter names are the reference's (``conv1.0.weight``, ``conv1.1.running_mean``, ...,
``inv_head.3.bias``), minus its duplicated ``bnX.*`` aliases (see :mod:`.checkpoint`).

Per-point features. ``point_features(points)`` is the ``emb_dims``-channel conv5 map (after its
BN + LeakyReLU) that the global feature is pooled from: its max over the points is
``feature[:, :emb_dims]`` and its mean ``feature[:, emb_dims:]``. ``point_features(points,
layer="edge")`` gives the 512-channel concatenation of the four EdgeConv outputs instead.

The layers run the fast EdgeConv of :mod:`.layers` (same weights, same numbers, no
``(B, C, N, k)`` tensor); without gradients in eval mode every stage runs in bounded blocks, so
``point_features`` works on 100k-point clouds.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from crosspoint.models.base import PointEncoder, as_points
from crosspoint.models.layers import EdgeConvUnit, PointConvUnit, edge_conv, pointwise_pool, project_head
from crosspoint.models.ops import knn_rows, reuse_buffers

__all__ = ["DGCNN"]


class DGCNN(PointEncoder):
    arch = "dgcnn"

    def __init__(self, k: int = 20, emb_dims: int = 1024, projection_dim: int = 256):
        super().__init__()
        self.k = int(k)
        self.emb_dims = int(emb_dims)
        self.conv1 = EdgeConvUnit(3, 64)
        self.conv2 = EdgeConvUnit(64, 64)
        self.conv3 = EdgeConvUnit(64, 128)
        self.conv4 = EdgeConvUnit(128, 256)
        self.conv5 = PointConvUnit(512, self.emb_dims)
        self.inv_head = nn.Sequential(
            nn.Linear(2 * self.emb_dims, self.emb_dims),
            nn.BatchNorm1d(self.emb_dims),
            nn.ReLU(inplace=True),
            nn.Linear(self.emb_dims, projection_dim),
        )
        self.feature_dim = 2 * self.emb_dims
        self.projection_dim = int(projection_dim)
        self.point_feature_dim = self.emb_dims
        self.edge_feature_dim = 512

    def config(self) -> dict:
        return {"k": self.k, "emb_dims": self.emb_dims, "projection_dim": self.projection_dim}

    def _edge_rows(self, pts: torch.Tensor) -> torch.Tensor:
        """The four EdgeConv outputs concatenated, as rows ``(B*N, 512)``."""
        b, n, _ = pts.shape
        k = min(self.k, n)
        x = pts.reshape(b * n, 3)
        outs = []
        with reuse_buffers():
            for unit in (self.conv1, self.conv2, self.conv3, self.conv4):
                idx = knn_rows(x.view(b, n, -1), k)
                x = edge_conv(x, idx, unit, b)
                outs.append(x)
                del idx
        return torch.cat(outs, dim=1)

    def _encode(self, pts: torch.Tensor, keep_map: bool):
        b = pts.shape[0]
        rows = self._edge_rows(pts)
        mx, mean, pmap = pointwise_pool(rows, b, self.conv5, keep_map=keep_map, mean=True)
        return torch.cat([mx, mean], dim=1), pmap

    def project_feature(self, feature: torch.Tensor) -> torch.Tensor:
        return project_head(feature, self.inv_head)

    def point_features(self, points, layer: str = "pre_pool") -> torch.Tensor:
        """Per-point features ``(B, N, C)``: ``layer="pre_pool"`` (default) the conv5 map the global
        feature is pooled from (``emb_dims`` channels); ``layer="edge"`` the four EdgeConv outputs
        (512 channels)."""
        pts = as_points(points, self._param())
        if layer == "edge":
            return self._edge_rows(pts).view(pts.shape[0], pts.shape[1], -1)
        if layer != "pre_pool":
            raise ValueError(f"layer must be 'pre_pool' or 'edge', got {layer!r}")
        return self._encode(pts, keep_map=True)[1]
