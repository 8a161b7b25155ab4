"""Slow, literal reference-style formulations of the DGCNN models, sharing the fast models' weights.

For tests and for checking the fast implementation: everything here builds the ``(B, 2C, N, k)``
edge tensor and runs the models' own ``Sequential(Conv, BN, LeakyReLU)`` units on it, exactly as the
reference does (channels-first ``(B, C, N)`` layout, kNN by ``topk`` of the negative squared
distances, ``[x_j - x_i, x_i]`` edge features, max over ``k``). Not used by the library itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from crosspoint.models.dgcnn import DGCNN
from crosspoint.models.partseg import DGCNNPartSeg, PartSegmenter

__all__ = ["naive_knn", "graph_feature", "naive_dgcnn", "naive_partseg_backbone", "naive_partseg"]


def naive_knn(x: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, C, N)`` -> ``(B, N, k)`` neighbour indices, the reference's formula."""
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    xx = torch.sum(x ** 2, dim=1, keepdim=True)
    return (-xx - inner - xx.transpose(2, 1)).topk(k=k, dim=-1)[1]


def graph_feature(x: torch.Tensor, k: int, idx: "torch.Tensor | None" = None) -> torch.Tensor:
    """``(B, C, N)`` -> edge features ``(B, 2C, N, k)`` = ``[x_j - x_i, x_i]``."""
    b, c, n = x.shape
    if idx is None:
        idx = naive_knn(x, k)
    idx = (idx + torch.arange(b, device=x.device).view(-1, 1, 1) * n).view(-1)
    xt = x.transpose(2, 1).contiguous()
    nb = xt.view(b * n, c)[idx].view(b, n, k, c)
    centre = xt.view(b, n, 1, c).expand(b, n, k, c)
    return torch.cat((nb - centre, centre), dim=3).permute(0, 3, 1, 2).contiguous()


def _knn_fn(knn_fn):
    return knn_fn if knn_fn is not None else naive_knn


def naive_dgcnn(model: DGCNN, points: torch.Tensor, knn_fn=None):
    """``(feature (B, 2048), projection (B, 256), conv5 map (B, N, 1024))`` computed the reference's
    way with ``model``'s parameters (BatchNorm in whatever mode ``model`` is in). ``knn_fn(x (B, C,
    N), k) -> (B, N, k)`` replaces the reference kNN (to share neighbours in comparisons)."""
    knn_fn = _knn_fn(knn_fn)
    x = points.transpose(1, 2)
    b = x.shape[0]
    k = model.k
    outs = []
    for unit in (model.conv1, model.conv2, model.conv3, model.conv4):
        x = unit(graph_feature(x, k, knn_fn(x, k))).max(dim=-1)[0]
        outs.append(x)
    x = model.conv5(torch.cat(outs, dim=1))
    feat = torch.cat((F.adaptive_max_pool1d(x, 1).view(b, -1), F.adaptive_avg_pool1d(x, 1).view(b, -1)), 1)
    return feat, model.inv_head(feat), x.transpose(1, 2)


def naive_partseg_backbone(model: DGCNNPartSeg, points: torch.Tensor, knn_fn=None, project: bool = True):
    """``(global (B, 1024), projection (B, 256) or None, (x1, x2, x3) each (B, 64, N))``,
    reference-style."""
    knn_fn = _knn_fn(knn_fn)
    x = points.transpose(1, 2)
    b = x.shape[0]
    k = model.k
    tn = model.transform_net
    h = tn.conv2(tn.conv1(graph_feature(x, k, knn_fn(x, k)))).max(dim=-1)[0]
    h = tn.conv3(h).max(dim=-1)[0]
    h = F.leaky_relu(tn.bn3(tn.linear1(h)), negative_slope=0.2)
    h = F.leaky_relu(tn.bn4(tn.linear2(h)), negative_slope=0.2)
    t = tn.transform(h).view(b, 3, 3)
    x = torch.bmm(x.transpose(2, 1), t).transpose(2, 1)
    x1 = model.conv2(model.conv1(graph_feature(x, k, knn_fn(x, k)))).max(dim=-1)[0]
    x2 = model.conv4(model.conv3(graph_feature(x1, k, knn_fn(x1, k)))).max(dim=-1)[0]
    x3 = model.conv5(graph_feature(x2, k, knn_fn(x2, k))).max(dim=-1)[0]
    g = model.conv6(torch.cat((x1, x2, x3), dim=1)).max(dim=-1)[0]
    return g, (model.inv_head(g) if project else None), (x1, x2, x3)


def naive_partseg(model: PartSegmenter, points: torch.Tensor, onehot: torch.Tensor, knn_fn=None) -> torch.Tensor:
    """Logits ``(B, N, 50)`` the reference's way."""
    g, _, (x1, x2, x3) = naive_partseg_backbone(model.backbone, points, knn_fn, project=False)
    head = model.head
    b, n = points.shape[0], points.shape[1]
    lab = head.conv7(onehot.view(b, -1, 1))
    x = torch.cat((g.unsqueeze(-1), lab), dim=1).repeat(1, 1, n)
    x = torch.cat((x, x1, x2, x3), dim=1)
    x = head.dp1(head.conv8(x))
    x = head.dp2(head.conv9(x))
    x = head.conv10(x)
    return head.conv11(x).transpose(1, 2)
