"""The CrossPoint pair: a point encoder and an image encoder trained with the CrossPoint losses.

``CrossPointModel(point_encoder, image_encoder)(points1, points2, images)`` returns a dict of
losses, computed as the reference does: both point views go through the point encoder as one
batch (so BatchNorm sees both), ``intra = NT-Xent(p1, p2)``, ``cross = NT-Xent(mean(p1, p2), img)``,
``loss = intra + cross``. Wrap the whole model in DDP (after
:func:`~crosspoint.models.convert_sync_batchnorm`) to train on several processes; the losses gather
the negatives from the global batch (see :mod:`crosspoint.losses`).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from crosspoint.losses import DEFAULT_TEMPERATURE, crosspoint_loss
from crosspoint.models.base import as_points

__all__ = ["CrossPointModel"]


class CrossPointModel(nn.Module):
    def __init__(self, point_encoder: nn.Module, image_encoder: nn.Module,
                 temperature: float = DEFAULT_TEMPERATURE, gather: bool = True):
        super().__init__()
        self.point_encoder = point_encoder
        self.image_encoder = image_encoder
        self.temperature = float(temperature)
        self.gather = bool(gather)

    def forward(self, points1, points2, images) -> dict:
        """``{"loss", "intra_loss", "cross_loss"}`` (scalars) plus the projections
        ``"point_proj1"``, ``"point_proj2"``, ``"image_proj"`` (detached, for monitoring)."""
        pe = self.point_encoder
        p = next(pe.parameters())
        pts1, pts2 = as_points(points1, p), as_points(points2, p)
        if pts1.shape != pts2.shape:
            raise ValueError(f"the two point views differ in shape: {tuple(pts1.shape)} vs {tuple(pts2.shape)}")
        b = pts1.shape[0]
        proj = pe.project(torch.cat([pts1, pts2], dim=0))
        p1, p2 = proj[:b], proj[b:]
        img = self.image_encoder.project(images)
        total, intra, cross = crosspoint_loss(p1, p2, img, self.temperature, self.gather)
        return {"loss": total, "intra_loss": intra, "cross_loss": cross,
                "point_proj1": p1.detach(), "point_proj2": p2.detach(), "image_proj": img.detach()}

    def point_features(self, points, **kwargs) -> torch.Tensor:
        """Per-point features of the point encoder (see its ``point_features``), for heatmaps."""
        return self.point_encoder.point_features(points, **kwargs)

    def image_feature_map(self, images) -> torch.Tensor:
        """The image encoder's last-stage feature map, for Grad-CAM."""
        return self.image_encoder.feature_map(images)
