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
                 temperature: float = DEFAULT_TEMPERATURE, gather: bool = True,
                 dense_heads: "nn.Module | None" = None, dense_temperature: float = 0.1):
        super().__init__()
        self.point_encoder = point_encoder
        self.image_encoder = image_encoder
        self.temperature = float(temperature)
        self.gather = bool(gather)
        #: optional :class:`~crosspoint.models.dense.DenseHeads` for the dense point-pixel term
        self.dense_heads = dense_heads
        self.dense_temperature = float(dense_temperature)

    def forward(self, points1, points2, images, dense: "dict | None" = None) -> dict:
        """``{"loss", "intra_loss", "cross_loss"}`` (scalars) plus the projections
        ``"point_proj1"``, ``"point_proj2"``, ``"image_proj"`` (detached, for monitoring).

        With dense heads and ``dense = {"idx" (B, M) point indices, "uv" (B, M, 2) their pixels in
        ``images``, "valid" (B, M), optionally "valid2" (B, M): the links of the second view when they
        differ (a partial view)}``, also ``"dense_loss"``: :func:`~crosspoint.models.dense.dense_nce`
        between both point views' per-point embeddings and the image embeddings at those pixels
        (averaged over the two views; not part of ``"loss"``: the caller weighs it)."""
        pe = self.point_encoder
        p = next(pe.parameters())
        pts1, pts2 = as_points(points1, p), as_points(points2, p)
        if pts1.shape != pts2.shape:
            raise ValueError(f"the two point views differ in shape: {tuple(pts1.shape)} vs {tuple(pts2.shape)}")
        b = pts1.shape[0]
        use_dense = self.dense_heads is not None and dense is not None
        if not use_dense:
            proj = pe.project(torch.cat([pts1, pts2], dim=0))
            img = self.image_encoder.project(images)
        else:
            out = pe(torch.cat([pts1, pts2], dim=0), with_point_features=True)
            proj, pmap = out.projection, out.point_features
            iout, stages = self.image_encoder.forward_stages(images)
            img = iout.projection
        p1, p2 = proj[:b], proj[b:]
        total, intra, cross = crosspoint_loss(p1, p2, img, self.temperature, self.gather)
        res = {"loss": total, "intra_loss": intra, "cross_loss": cross,
               "point_proj1": p1.detach(), "point_proj2": p2.detach(), "image_proj": img.detach()}
        if use_dense:
            from crosspoint.models.dense import dense_nce, sample_pixels

            heads = self.dense_heads
            idx = dense["idx"].to(pmap.device).long().clamp_min(0)
            valid = dense["valid"].to(pmap.device)
            pix_map = heads.image_embeddings(stages)
            pix = sample_pixels(pix_map, dense["uv"].to(pix_map.device), tuple(images.shape[-2:]))
            # one gather for both views (two slices of the map would each cost a map-sized zero
            # tensor in the backward pass); the whole map is the context only for pooled heads
            both = torch.cat([idx, idx])
            picked = torch.gather(pmap, 1, both.unsqueeze(-1).expand(-1, -1, pmap.shape[-1]))
            pooled = heads.point_context == "pooled"
            valid2 = dense["valid2"].to(pmap.device) if dense.get("valid2") is not None else valid
            losses = []
            for half, ok in ((slice(0, b), valid), (slice(b, 2 * b), valid2)):
                emb = heads.point_embeddings(picked[half], pmap[half] if pooled else None)
                losses.append(dense_nce(emb, pix, ok, self.dense_temperature))
            res["dense_loss"] = 0.5 * (losses[0] + losses[1])
        return res

    def point_features(self, points, **kwargs) -> torch.Tensor:
        """Per-point features of the point encoder (see its ``point_features``), for heatmaps."""
        return self.point_encoder.point_features(points, **kwargs)

    def image_feature_map(self, images) -> torch.Tensor:
        """The image encoder's last-stage feature map, for Grad-CAM."""
        return self.image_encoder.feature_map(images)
