"""PointNet encoder (the paper reports CrossPoint with PointNet too; the reference repository has none).

Shared MLP 3 -> 64 -> 64 -> 64 -> 128 -> 1024 (1x1 conv without bias + BatchNorm + ReLU each, the
layout of DGCNN's PointNet baseline, without input/feature transform nets), global max-pool
(``feature_dim = 1024``). Projection head ``inv_head`` (our choice, mirroring the image head's
width): Linear(1024, 512) + BatchNorm1d + ReLU + Linear(512, 256). ``point_features`` is the
1024-channel map before the max-pool. Parameter names: ``conv1.0.weight``, ``conv1.1.*`` ...
``conv5.*``, ``inv_head.{0,1,3}.*``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from crosspoint.models.base import PointEncoder
from crosspoint.models.layers import PointConvUnit, pointwise, pointwise_pool, project_head

__all__ = ["PointNet"]


class PointNet(PointEncoder):
    arch = "pointnet"

    def __init__(self, emb_dims: int = 1024, projection_dim: int = 256, hidden_dim: int = 512):
        super().__init__()
        self.emb_dims = int(emb_dims)
        self.hidden_dim = int(hidden_dim)
        self.conv1 = PointConvUnit(3, 64, act="relu")
        self.conv2 = PointConvUnit(64, 64, act="relu")
        self.conv3 = PointConvUnit(64, 64, act="relu")
        self.conv4 = PointConvUnit(64, 128, act="relu")
        self.conv5 = PointConvUnit(128, self.emb_dims, act="relu")
        self.inv_head = nn.Sequential(
            nn.Linear(self.emb_dims, self.hidden_dim),
            nn.BatchNorm1d(self.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(self.hidden_dim, projection_dim),
        )
        self.feature_dim = self.emb_dims
        self.projection_dim = int(projection_dim)
        self.point_feature_dim = self.emb_dims

    def config(self) -> dict:
        return {"emb_dims": self.emb_dims, "projection_dim": self.projection_dim, "hidden_dim": self.hidden_dim}

    def _encode(self, pts: torch.Tensor, keep_map: bool):
        b, n, _ = pts.shape
        x = pts.reshape(b * n, 3)
        for unit in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = pointwise(x, unit)
        mx, _, pmap = pointwise_pool(x, b, self.conv5, keep_map=keep_map, mean=False)
        return mx, pmap

    def project_feature(self, feature: torch.Tensor) -> torch.Tensor:
        return project_head(feature, self.inv_head)
