"""The part-segmentation DGCNN (the reference's ``DGCNN_partseg``): backbone, pretraining head and
fine-tuning head, and the ShapeNetPart label facts.

Backbone (:class:`DGCNNPartSeg`, a point encoder with ``feature_dim = 1024``):

* a 3x3 transform net: edge MLP 6->64->128 + max over ``k``, point-wise conv 128->1024 + max over
  the points, Linear 1024->512 and 512->256 (no bias, BN, LeakyReLU), Linear 256->9 initialised to
  the identity; the points are multiplied by the predicted matrix;
* EdgeConv blocks: 6->64->64 (two edge convs, then max), 128->64->64 (two), 128->64 (one);
* point-wise conv 192->1024 and the global feature: the max over the points (1024);
* pretraining head ``inv_head``: Linear(1024, 1024) + BN + ReLU + Linear(1024, 256).

Fine-tuning head (:class:`PartSegHead`): the 16-category one-hot -> 64 (conv + BN + LeakyReLU),
concatenated with the global feature and the three block outputs (1088 + 192 = 1280 channels per
point) -> 256 -> 256 -> 128 (conv + BN + LeakyReLU, dropout 0.5 after the first two) -> 50 logits.
The 1088 global channels are the same for every point of a cloud, so that part of the first
product is computed once per cloud.

:class:`PartSegmenter` = backbone + head: ``segmenter(points (B, N, 3), category (B,)) -> logits
(B, N, 50)``. Parameter names mirror the reference (``transform_net.*``, ``conv1.*`` ...,
``conv11.weight``) under ``backbone.`` and ``head.``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from crosspoint.models.base import PointEncoder, as_points
from crosspoint.models.layers import (
    LEAKY_SLOPE, EdgeConvUnit, EdgeMLPUnit, PointConvUnit, batch_norm_rows, edge_block2, edge_conv,
    pointwise, pointwise_pool, project_head,
)
from crosspoint.models.ops import knn_rows, reuse_buffers

__all__ = [
    "PARTSEG_CATEGORIES", "SEG_NUM", "INDEX_START", "NUM_PART_CLASSES", "NUM_CATEGORIES",
    "part_range", "TransformNet", "DGCNNPartSeg", "PartSegHead", "PartSegmenter",
]

#: the 16 ShapeNetPart categories, in label order
PARTSEG_CATEGORIES = ("airplane", "bag", "cap", "car", "chair", "earphone", "guitar", "knife", "lamp",
                      "laptop", "motorbike", "mug", "pistol", "rocket", "skateboard", "table")
#: number of parts of each category
SEG_NUM = (4, 2, 2, 4, 4, 3, 3, 2, 4, 2, 6, 2, 3, 3, 3, 3)
#: first global part label of each category (parts of category c: INDEX_START[c] .. + SEG_NUM[c])
INDEX_START = tuple(int(v) for v in np.concatenate([[0], np.cumsum(SEG_NUM)[:-1]]))
NUM_PART_CLASSES = int(sum(SEG_NUM))  # 50
NUM_CATEGORIES = len(PARTSEG_CATEGORIES)  # 16


def part_range(category: "int | str") -> range:
    """The global part labels of ``category`` (an index or a name)."""
    c = PARTSEG_CATEGORIES.index(category) if isinstance(category, str) else int(category)
    return range(INDEX_START[c], INDEX_START[c] + SEG_NUM[c])


class TransformNet(nn.Module):
    """The reference's ``Transform_Net`` (names included: its ``bn3`` is the BatchNorm after
    ``linear1``, the 1024-channel BN lives in ``conv3.1``)."""

    def __init__(self):
        super().__init__()
        self.conv1 = EdgeConvUnit(3, 64)
        self.conv2 = EdgeMLPUnit(64, 128)
        self.conv3 = PointConvUnit(128, 1024)
        self.linear1 = nn.Linear(1024, 512, bias=False)
        self.bn3 = nn.BatchNorm1d(512)
        self.linear2 = nn.Linear(512, 256, bias=False)
        self.bn4 = nn.BatchNorm1d(256)
        self.transform = nn.Linear(256, 9)
        nn.init.zeros_(self.transform.weight)
        with torch.no_grad():
            self.transform.bias.copy_(torch.eye(3).flatten())

    def forward(self, x: torch.Tensor, idx: torch.Tensor, batch: int) -> torch.Tensor:
        """Rows ``x`` ``(B*N, 3)`` and their neighbour rows -> the ``(B, 3, 3)`` matrices."""
        e = edge_block2(x, idx, self.conv1, self.conv2, batch)
        h = pointwise_pool(e, batch, self.conv3, keep_map=False, mean=False)[0]
        h = F.leaky_relu(batch_norm_rows(self.linear1(h), self.bn3), LEAKY_SLOPE)
        h = F.leaky_relu(batch_norm_rows(self.linear2(h), self.bn4), LEAKY_SLOPE)
        return self.transform(h).view(batch, 3, 3)


class DGCNNPartSeg(PointEncoder):
    """The part-segmentation DGCNN backbone with its pretraining projection head."""

    arch = "dgcnn_partseg"

    def __init__(self, k: int = 40, emb_dims: int = 1024, projection_dim: int = 256):
        super().__init__()
        self.k = int(k)
        self.emb_dims = int(emb_dims)
        self.transform_net = TransformNet()
        self.conv1 = EdgeConvUnit(3, 64)
        self.conv2 = EdgeMLPUnit(64, 64)
        self.conv3 = EdgeConvUnit(64, 64)
        self.conv4 = EdgeMLPUnit(64, 64)
        self.conv5 = EdgeConvUnit(64, 64)
        self.conv6 = PointConvUnit(192, self.emb_dims)
        self.inv_head = nn.Sequential(
            nn.Linear(self.emb_dims, self.emb_dims),
            nn.BatchNorm1d(self.emb_dims),
            nn.ReLU(inplace=True),
            nn.Linear(self.emb_dims, projection_dim),
        )
        self.feature_dim = self.emb_dims
        self.projection_dim = int(projection_dim)
        self.point_feature_dim = self.emb_dims
        self.edge_feature_dim = 192

    def config(self) -> dict:
        return {"k": self.k, "emb_dims": self.emb_dims, "projection_dim": self.projection_dim}

    def local_rows(self, pts: torch.Tensor) -> torch.Tensor:
        """The three block outputs concatenated, rows ``(B*N, 192)`` (after the transform net)."""
        with reuse_buffers():
            return self._local_rows(pts)

    def _local_rows(self, pts: torch.Tensor) -> torch.Tensor:
        b, n, _ = pts.shape
        k = min(self.k, n)
        idx = knn_rows(pts, k)
        t = self.transform_net(pts.reshape(b * n, 3), idx, b)
        x = torch.bmm(pts, t.to(pts.dtype))
        idx = knn_rows(x, k)
        x1 = edge_block2(x.reshape(b * n, 3), idx, self.conv1, self.conv2, b)
        idx = knn_rows(x1.view(b, n, -1), k)
        x2 = edge_block2(x1, idx, self.conv3, self.conv4, b)
        idx = knn_rows(x2.view(b, n, -1), k)
        x3 = edge_conv(x2, idx, self.conv5, b)
        return torch.cat([x1, x2, x3], dim=1)

    def backbone(self, pts: torch.Tensor, keep_map: bool = False):
        """``(global (B, 1024), local rows (B*N, 192), conv6 map or None)``."""
        b = pts.shape[0]
        rows = self.local_rows(pts)
        g, _, pmap = pointwise_pool(rows, b, self.conv6, keep_map=keep_map, mean=False)
        return g, rows, pmap

    def _encode(self, pts: torch.Tensor, keep_map: bool):
        g, _, pmap = self.backbone(pts, keep_map)
        return g, pmap

    def project_feature(self, feature: torch.Tensor) -> torch.Tensor:
        return project_head(feature, self.inv_head)

    def point_features(self, points, layer: str = "pre_pool") -> torch.Tensor:
        """``layer="pre_pool"``: the conv6 map (1024 channels) the global feature is max-pooled
        from; ``layer="edge"``: the three EdgeConv block outputs (192 channels)."""
        pts = as_points(points, self._param())
        if layer == "edge":
            return self.local_rows(pts).view(pts.shape[0], pts.shape[1], -1)
        if layer != "pre_pool":
            raise ValueError(f"layer must be 'pre_pool' or 'edge', got {layer!r}")
        return self._encode(pts, keep_map=True)[1]


class PartSegHead(nn.Module):
    """The reference's fine-tuning head (``conv7`` .. ``conv11``)."""

    def __init__(self, num_parts: int = NUM_PART_CLASSES, num_categories: int = NUM_CATEGORIES,
                 emb_dims: int = 1024, local_dims: int = 192, dropout: float = 0.5):
        super().__init__()
        self.num_parts, self.num_categories = int(num_parts), int(num_categories)
        self.emb_dims, self.local_dims = int(emb_dims), int(local_dims)
        self.dropout = float(dropout)
        self.conv7 = PointConvUnit(self.num_categories, 64)
        self.conv8 = PointConvUnit(self.emb_dims + 64 + self.local_dims, 256)
        self.dp1 = nn.Dropout(p=dropout)
        self.conv9 = PointConvUnit(256, 256)
        self.dp2 = nn.Dropout(p=dropout)
        self.conv10 = PointConvUnit(256, 128)
        self.conv11 = nn.Conv1d(128, self.num_parts, kernel_size=1, bias=False)

    def config(self) -> dict:
        return {"num_parts": self.num_parts, "num_categories": self.num_categories, "emb_dims": self.emb_dims,
                "local_dims": self.local_dims, "dropout": self.dropout}

    def forward(self, global_feat: torch.Tensor, local_rows: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        b = global_feat.shape[0]
        n = local_rows.shape[0] // b
        lab = pointwise(onehot.to(global_feat.dtype), self.conv7)  # (B, 64)
        g = torch.cat([global_feat, lab.to(global_feat.dtype)], dim=1)  # (B, 1088)
        w8 = self.conv8.matrix()
        ng = g.shape[1]
        # conv8 on [g (repeated over the points); local]: the global part once per cloud
        y = F.linear(local_rows, w8[:, ng:]).view(b, n, -1) + F.linear(g, w8[:, :ng]).unsqueeze(1)
        y = F.leaky_relu(batch_norm_rows(y.view(b * n, -1), self.conv8.bn), LEAKY_SLOPE)
        y = self.dp1(y)
        y = self.dp2(pointwise(y, self.conv9))
        y = pointwise(y, self.conv10)
        w11 = self.conv11.weight.view(self.num_parts, -1)
        return F.linear(y.to(w11.dtype) if not torch.is_autocast_enabled(y.device.type) else y, w11).view(b, n, -1)


class PartSegmenter(nn.Module):
    """``PartSegmenter(backbone, head)``: ``(points (B, N, 3), category) -> logits (B, N, 50)``;
    ``category`` is ``(B,)`` integer labels (see :data:`PARTSEG_CATEGORIES`) or ``(B, 16)`` one-hot."""

    def __init__(self, backbone: "DGCNNPartSeg | None" = None, head: "PartSegHead | None" = None, *, k: int = 40):
        super().__init__()
        self.backbone = backbone if backbone is not None else DGCNNPartSeg(k=k)
        self.head = head if head is not None else PartSegHead(emb_dims=self.backbone.emb_dims)

    @property
    def k(self) -> int:
        return self.backbone.k

    def forward(self, points, category) -> torch.Tensor:
        pts = as_points(points, self.backbone._param())
        category = torch.as_tensor(category, device=pts.device)
        if category.dim() == 1:
            if category.shape[0] != pts.shape[0]:
                raise ValueError(f"category: {category.shape[0]} labels for {pts.shape[0]} clouds")
            if category.dtype.is_floating_point or category.min() < 0 or category.max() >= self.head.num_categories:
                raise ValueError(f"category labels must be integers in [0, {self.head.num_categories})")
            onehot = F.one_hot(category.long(), self.head.num_categories).to(pts.dtype)
        elif category.dim() == 2 and category.shape == (pts.shape[0], self.head.num_categories):
            onehot = category.to(pts.dtype)
        else:
            raise ValueError(f"category must be (B,) labels or (B, {self.head.num_categories}) one-hot, "
                             f"got shape {tuple(category.shape)}")
        g, rows, _ = self.backbone.backbone(pts)
        return self.head(g, rows, onehot)
