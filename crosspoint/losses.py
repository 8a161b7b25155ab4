"""CrossPoint's contrastive losses.

NT-Xent, as the reference uses it (lightly 1.1.21 ``NTXentLoss(temperature=0.1)``, SimCLR form):
rows of ``z1`` and ``z2`` ``(B, D)`` are L2-normalised, the ``2B x 2B`` cosine similarities are
divided by the temperature, each row's similarity with itself is left out, and row ``i`` of one view
must pick row ``i`` of the other view among the remaining ``2B - 1`` (one positive, ``2B - 2``
negatives, same-view ones included); the loss is the cross entropy averaged over all ``2B`` rows
(both directions).

CrossPoint (:func:`crosspoint_loss`): ``intra = nt_xent(p1, p2)`` between the projections of the two
augmented point clouds, ``cross = nt_xent((p1 + p2) / 2, img)`` between their mean and the image
projection, ``total = intra + cross``.

Distributed training (``gather=True``, the default, with a running process group). Every rank
gathers all ranks' rows (with gradients, :func:`crosspoint.distributed.all_gather_with_grad`) and
computes the loss of the *global* batch, so the negatives come from the whole batch and every
rank's loss value equals what one process computes on the global batch (ranks must hold equal
numbers of rows, e.g. ``drop_last=True``). Gradients: the gather's backward sums, over ranks, the
gradient each rank's loss sends to a rank's rows, which is ``world_size`` times the global loss's
gradient; DDP averages gradients over ranks, which divides that factor out again. Net effect: the
DDP gradient equals the single-process gradient on the global batch (with SyncBatchNorm, see
:func:`crosspoint.models.convert_sync_batchnorm`), as ``tests/test_ddp.py`` checks. If you reduce
gradients yourself by summing instead of averaging, divide the loss by the world size.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from crosspoint.distributed import all_gather_with_grad, is_dist

__all__ = ["nt_xent", "crosspoint_loss", "CrossPointLosses", "DEFAULT_TEMPERATURE"]

DEFAULT_TEMPERATURE = 0.1


class CrossPointLosses(NamedTuple):
    total: torch.Tensor
    intra: torch.Tensor
    cross: torch.Tensor


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE,
            gather: bool = True) -> torch.Tensor:
    """SimCLR NT-Xent between the paired rows of ``z1`` and ``z2`` ``(B, D)`` (scalar, float32)."""
    if z1.dim() != 2 or z1.shape != z2.shape:
        raise ValueError(f"nt_xent expects two (B, D) tensors of the same shape, "
                         f"got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    dt = torch.float64 if z1.dtype == torch.float64 else torch.float32
    z1 = F.normalize(z1.to(dt), dim=1)
    z2 = F.normalize(z2.to(dt), dim=1)
    if gather and is_dist():
        z1 = all_gather_with_grad(z1)
        z2 = all_gather_with_grad(z2)
    n = z1.shape[0]
    z = torch.cat([z1, z2], dim=0)
    logits = (z @ z.t()) / temperature
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def crosspoint_loss(p1: torch.Tensor, p2: torch.Tensor, img: torch.Tensor,
                    temperature: float = DEFAULT_TEMPERATURE, gather: bool = True) -> CrossPointLosses:
    """``(total, intra, cross)``: intra-modal NT-Xent between the two point views' projections,
    cross-modal NT-Xent between their mean and the image projection, and their sum."""
    intra = nt_xent(p1, p2, temperature, gather)
    cross = nt_xent((p1 + p2) / 2, img, temperature, gather)
    return CrossPointLosses(intra + cross, intra, cross)
