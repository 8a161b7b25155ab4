"""Small helpers for ``torch.distributed`` (DDP): who am I, how many are we, and collectives that
carry gradients.

Both collectives here are differentiable and work on every backend (gloo on the CPU, NCCL on
GPUs); they fall back to the identity when no process group is running, so the same model code
runs in one process and under ``torchrun``.

Gradient convention. The backward of :func:`all_gather_with_grad` *sums* the gradients that all
ranks send to a rank's slice (and :func:`all_reduce_with_grad` sums the gradients of all ranks).
When every rank computes the same global loss from gathered tensors, each rank's local gradient
is therefore ``world_size`` times that of the global loss, and DDP's gradient *averaging* turns
that back into exactly the gradient of one process on the whole batch (see
:mod:`crosspoint.losses`).
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["is_dist", "rank", "world_size", "all_gather_with_grad", "all_reduce_with_grad"]


def is_dist() -> bool:
    """True when a default process group is running."""
    return dist.is_available() and dist.is_initialized()


def rank(group=None) -> int:
    return dist.get_rank(group) if is_dist() else 0


def world_size(group=None) -> int:
    return dist.get_world_size(group) if is_dist() else 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums, over ranks, the gradient each rank computed for our slice."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        ctx.rank = dist.get_rank(group)
        ctx.size = tensor.shape[0]
        tensor = tensor.contiguous()
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, tensor, group=group)
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        start = ctx.rank * ctx.size
        return grad[start:start + ctx.size], None


class _AllReduceWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        out = tensor.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def all_gather_with_grad(tensor: torch.Tensor, group=None) -> torch.Tensor:
    """Concatenate ``tensor`` (same shape on every rank) from all ranks along dim 0, in rank order,
    keeping the autograd graph. Identity without a process group."""
    if not is_dist() or dist.get_world_size(group) == 1:
        return tensor
    return _GatherWithGrad.apply(tensor, group)


def all_reduce_with_grad(tensor: torch.Tensor, group=None) -> torch.Tensor:
    """Sum of ``tensor`` over ranks, differentiable (backward: the sum of the ranks' gradients).
    Identity without a process group."""
    if not is_dist() or dist.get_world_size(group) == 1:
        return tensor
    return _AllReduceWithGrad.apply(tensor, group)
