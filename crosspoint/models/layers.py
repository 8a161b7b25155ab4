"""Building blocks: the fast EdgeConv, point-wise conv units, BatchNorm on rows, SyncBatchNorm.

Parameter holders mirror the reference. Every ``conv + BN + activation`` of the reference is an
``nn.Sequential(Conv, BatchNorm, LeakyReLU)`` whose state-dict keys are ``convX.0.weight`` and
``convX.1.{weight,bias,running_mean,running_var,num_batches_tracked}``. The units below are the same
``nn.Sequential`` (so an official state dict loads by name), but the models never call them as
``Sequential``: the functions :func:`edge_conv`, :func:`edge_block2` and :func:`pointwise` read their
weights and run a cheaper, numerically equivalent computation on point-major *rows* (``(R, C)``,
``R = B * N``).

Fast EdgeConv (:func:`edge_conv`). The reference builds the edge feature ``[x_j - x_i, x_i]`` for
all ``N * k`` edges and runs the 1x1 conv ``W = [W_a | W_b]`` on each. The conv is linear, so
``W [x_j - x_i; x_i] = a_j + b_i`` with ``a = W_a x`` and ``b = (W_b - W_a) x`` computed once per
*point* (k times less matrix work). BatchNorm and LeakyReLU are per-channel monotone maps after the
affine normalisation ``s * e + t``, so ``max_j LeakyReLU(s (a_j + b_i) + t) =
LeakyReLU(max_j (s a_j) + s b_i + t)`` (the max of ``s a_j`` is the min of ``a_j`` where ``s < 0``).
The ``(B, C, N, k)`` tensor is never built:

* eval: ``s`` and ``t`` come from the running statistics and are folded into the weights; the
  neighbour max, the bias and the activation are one pass (:func:`~.ops.neighbour_max_add_leaky`).
* training: the batch statistics over the ``B*N*k`` edges come from per-point quantities, with the
  in-degree ``c_j`` (how often point ``j`` is a neighbour): ``mean = W_a (sum_j c_j x_j) / (BNk) +
  W_d mean(x)``, and the variance from three ``C x C`` second-moment matrices of centred inputs
  (:func:`_edge_moments`; ``C`` is the layer's *input* width, smaller than its output), so no
  ``(B*N*k, O)`` tensor is needed for them either. ``s`` is then folded into the weights as in eval
  mode. All of it is ordinary autograd (the gradient through the batch statistics is exact); the
  running statistics are updated exactly like ``nn.BatchNorm2d`` (momentum or cumulative average,
  unbiased ``n/(n-1)`` variance with ``n = B N k``, ``num_batches_tracked``). The neighbour max is a
  custom autograd function that keeps only a one-byte arg-max (:mod:`.ops`).
* the product runs on per-cloud centred inputs, and the statistics of few-channel inputs (the xyz
  layer) are taken in float64, so float32 results are as accurate as the reference's.

Point-wise conv + BN + activation + global pooling (conv5 of DGCNN, conv6 of the part-segmentation
net, the transform net's conv3, PointNet's last layer) in training mode is one custom autograd
function (:class:`_BNActPool`): one pass for the statistics, one for BN + activation + max/mean
pooling, two in the backward, without building the normalised or activated ``(B*N, 1024)`` maps.

SyncBatchNorm. :func:`convert_sync_batchnorm` replaces every BatchNorm by :class:`SyncBatchNorm`
(same state-dict names). The functions here see it (or ``torch.nn.SyncBatchNorm``) and all-reduce
their moments across ranks (differentiably) when a process group runs; called as a module (e.g.
inside torchvision's ResNet) it runs torch's fused implementation on CUDA and an all-reduce of the
moments on the CPU (gloo), where torch's own SyncBatchNorm (and DDP's check for it) refuses to run.

AMP. Matrix products follow autocast (bf16 on CUDA); statistics and the normalisation are computed
in float32.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from crosspoint.distributed import all_reduce_with_grad
from crosspoint.models.ops import (
    _kernels, _no_autocast, _run_chunks, block_budget, neighbour_max, neighbour_max_add_leaky, neighbour_sum,
)

__all__ = [
    "LEAKY_SLOPE", "EdgeConvUnit", "EdgeMLPUnit", "PointConvUnit", "SyncBatchNorm",
    "convert_sync_batchnorm", "batch_norm_rows", "edge_conv", "edge_block2", "pointwise", "pointwise_pool",
    "project_head",
]

LEAKY_SLOPE = 0.2
#: EdgeConv inputs with at most this many channels get their batch statistics in float64
SMALL_C = 16
#: rows per block when evaluating an edge MLP without gradients (bounded memory at large N)
EDGE_BLOCK_ELEMS = 8 * 2**20


# ------------------------------------------------------------------------------ holders
class _ConvBNAct(nn.Sequential):
    """``Sequential(Conv, BatchNorm, activation)`` with the reference's layout and names."""

    def __init__(self, conv: nn.Module, bn: nn.Module, act: str):
        super().__init__(conv, bn, nn.LeakyReLU(negative_slope=LEAKY_SLOPE) if act == "leaky" else nn.ReLU())
        self.act = act

    @property
    def conv(self) -> nn.Module:
        return self[0]

    @property
    def bn(self) -> nn.Module:
        return self[1]

    def matrix(self) -> torch.Tensor:
        """The conv weight as an ``(out, in)`` matrix (a view: gradients flow to the parameter)."""
        w = self[0].weight
        return w.view(w.shape[0], -1)

    def slope(self) -> float:
        return LEAKY_SLOPE if self.act == "leaky" else 0.0


class EdgeConvUnit(_ConvBNAct):
    """First layer of an edge MLP on per-point features of ``in_channels``: the reference's
    ``Sequential(Conv2d(2C, O, 1, bias=False), BatchNorm2d(O), LeakyReLU(0.2))``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv2d(2 * in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), "leaky")
        self.in_channels, self.out_channels = in_channels, out_channels


class EdgeMLPUnit(_ConvBNAct):
    """A later layer of an edge MLP (applied to every edge): ``Conv2d(C, O, 1) + BN2d + LeakyReLU``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), "leaky")
        self.in_channels, self.out_channels = in_channels, out_channels


class PointConvUnit(_ConvBNAct):
    """Point-wise ``Conv1d(C, O, 1, bias=False) + BatchNorm1d + LeakyReLU(0.2)`` (or ReLU)."""

    def __init__(self, in_channels: int, out_channels: int, act: str = "leaky"):
        super().__init__(nn.Conv1d(in_channels, out_channels, 1, bias=False), nn.BatchNorm1d(out_channels), act)
        self.in_channels, self.out_channels = in_channels, out_channels


# ------------------------------------------------------------------------------ BatchNorm maths
def _stat_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _sync_group(bn: nn.Module):
    """The process group whose ranks share ``bn``'s batch statistics, or None (no syncing)."""
    if not isinstance(bn, (nn.SyncBatchNorm, SyncBatchNorm)) or not bn.training:
        return None
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    group = bn.process_group if bn.process_group is not None else torch.distributed.group.WORLD
    return group if torch.distributed.get_world_size(group) > 1 else None


def _uses_batch_stats(bn: nn.Module) -> bool:
    return bn.training or bn.running_mean is None


def _running_factor(bn: nn.Module):
    """Advance ``num_batches_tracked`` like ``_BatchNorm.forward``; the EMA factor, or None when
    the running statistics are not to be updated."""
    if not (bn.training and bn.track_running_stats and bn.running_mean is not None):
        return None
    if bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    if bn.momentum is None:
        return 1.0 / float(bn.num_batches_tracked)
    return float(bn.momentum)


def _update_running(bn: nn.Module, factor, mean: torch.Tensor, var: torch.Tensor, n: float) -> None:
    if factor is None:
        return
    with torch.no_grad():
        unbiased = var.detach() * (n / (n - 1.0)) if n > 1 else var.detach()
        bn.running_mean.mul_(1.0 - factor).add_(mean.detach().to(bn.running_mean.dtype), alpha=factor)
        bn.running_var.mul_(1.0 - factor).add_(unbiased.to(bn.running_var.dtype), alpha=factor)


def _global_count(n_local: float, sums: torch.Tensor, group):
    """(sums, n) summed over the ranks of ``group`` (identity without a group)."""
    if group is None:
        return sums, float(n_local)
    packed = torch.cat([sums, sums.new_tensor([float(n_local)])])
    packed = all_reduce_with_grad(packed, group)
    return packed[:-1], float(packed[-1].item())


def _scale_shift(bn: nn.Module, mean: torch.Tensor, var: torch.Tensor):
    """``(s, t)`` with ``BN(e) = s * e + t`` for the given statistics."""
    inv = torch.rsqrt(var + bn.eps)
    if bn.weight is not None:
        s = bn.weight.to(inv.dtype) * inv
        t = bn.bias.to(inv.dtype) - mean * s
    else:
        s = inv
        t = -mean * s
    return s, t


def _eval_scale_shift(bn: nn.Module, dtype: torch.dtype):
    return _scale_shift(bn, bn.running_mean.to(dtype), bn.running_var.to(dtype))


def batch_norm_rows(y: torch.Tensor, bn: nn.Module) -> torch.Tensor:
    """``bn`` applied to rows ``(R, C)`` (statistics per channel over the rows), whatever ``bn``'s
    dimensionality; the exact ``nn.BatchNorm`` semantics (running statistics, momentum ``None``,
    eval mode), synchronised across ranks when ``bn`` is a :class:`SyncBatchNorm` and a process
    group runs. Computed in float32 (float64 for float64 input)."""
    y = y.to(_stat_dtype(y))
    if not _uses_batch_stats(bn):
        return F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    group = _sync_group(bn)
    factor = _running_factor(bn)
    if group is None:
        track = factor is not None
        return F.batch_norm(y, bn.running_mean if track else None, bn.running_var if track else None,
                            bn.weight, bn.bias, True, factor if track else 0.0, bn.eps)
    sums, n = _global_count(y.shape[0], y.sum(0), group)
    mean = sums / n
    yc = y - mean
    m2 = all_reduce_with_grad(yc.square().sum(0), group)
    var = m2 / n
    _update_running(bn, factor, mean, var, n)
    s, t = _scale_shift(bn, torch.zeros_like(mean), var)
    return torch.addcmul(t, yc, s)


def _activate(y: torch.Tensor, slope: float, inplace: bool = False) -> torch.Tensor:
    if slope > 0:
        return F.leaky_relu_(y, slope) if inplace else F.leaky_relu(y, slope)
    return F.relu_(y) if inplace else F.relu(y)


# ------------------------------------------------------------------------------ point-wise units
def pointwise(x: torch.Tensor, unit: _ConvBNAct, *, activation: bool = True) -> torch.Tensor:
    """``unit`` (1x1 conv + BN + activation) on rows ``x`` ``(R, C)`` -> ``(R, O)``.

    Eval mode folds the BatchNorm into the matrix product (one ``addmm``), so it is row-independent
    and callers may evaluate it in blocks."""
    w = unit.matrix()
    bn = unit.bn
    if _uses_batch_stats(bn):
        y = batch_norm_rows(F.linear(x, w), bn)
        return _activate(y, unit.slope()) if activation else y
    s, t = _eval_scale_shift(bn, _stat_dtype(w))
    y = F.linear(x, w * s.unsqueeze(1).to(w.dtype), t.to(w.dtype))
    if not activation:
        return y
    return _activate(y, unit.slope(), inplace=not torch.is_grad_enabled())


# ------------------------------------------------------------------------------ EdgeConv
def _split_edge_weight(unit: EdgeConvUnit):
    w = unit.matrix()  # (O, 2C): [W_a | W_b] acting on [x_j - x_i ; x_i]
    c = w.shape[1] // 2
    wa = w[:, :c]
    return wa, w[:, c:] - wa


def _edge_moments(x: torch.Tensor, idx: torch.Tensor, wa: torch.Tensor, wd: torch.Tensor, bn: nn.Module):
    """Mean and (biased) variance over all ``B*N*k`` edges of ``e_ij = W_a x_j + W_d x_i``, from
    per-point sums and three ``C x C`` second-moment matrices; updates ``bn``'s running statistics as
    ``nn.BatchNorm2d`` does on the edge tensor. Differentiable; synchronised across ranks for a
    :class:`SyncBatchNorm`.

    Centring keeps float32 accurate: with ``xh = x - mean(x)`` (zero plain mean) and
    ``u = xh - m_a`` (zero in-degree-weighted mean), ``e_ij - mean = W_a u_j + W_d xh_i`` exactly, so
    ``var = diag(W_a G_deg W_a' + 2 W_a M W_d' + k W_d G W_d') / n`` with ``G_deg = u' diag(c) u``,
    ``M = (sum_{j in N(i)} u_j)' xh`` and ``G = xh' xh`` holds no difference of large numbers.
    """
    r, c = x.shape
    k = idx.shape[1]
    group = _sync_group(bn)
    factor = _running_factor(bn)
    deg = torch.bincount(idx.reshape(-1), minlength=r).to(x.dtype)  # in-degree of every point
    sums, r_all = _global_count(r, torch.cat([x.sum(0), deg @ x]), group)
    n = r_all * k
    xbar = sums[:c] / r_all
    m_a = sums[c:] / n - xbar
    xh = x - xbar
    u = xh - m_a
    g_deg = u.t() @ (u * deg.unsqueeze(1))
    m_cross = neighbour_sum(u, idx).t() @ xh
    g_pts = xh.t() @ xh
    q = ((wa @ g_deg) * wa).sum(1) + 2.0 * ((wa @ m_cross) * wd).sum(1) + k * ((wd @ g_pts) * wd).sum(1)
    if group is not None:
        q = all_reduce_with_grad(q, group)
    var = (q / n).clamp_min(0.0)
    mean = wa @ (m_a + xbar) + wd @ xbar
    _update_running(bn, factor, mean, var, n)
    return mean, var


def _edge_terms(x: torch.Tensor, idx: torch.Tensor, unit: EdgeConvUnit, batch: int = 1):
    """``(s*a, s*b + t)``: the per-point halves of the normalised edge pre-activation, with the
    BatchNorm scale ``s`` folded into the matrix products (``a = W_a x``, ``b = (W_b - W_a) x``).

    The products run on coordinates centred per cloud (``x = c + xc``; neighbours always share
    the cloud): ``W_a x_j + W_d x_i = W_a xc_j + W_d xc_i + W_b c``, the last term a per-cloud bias.
    ``a`` then stays small where the reference's ``x_j - x_i`` is small, which keeps float32 as
    accurate as the reference for clouds far from the origin."""
    wa, wd = _split_edge_weight(unit)
    bn = unit.bn
    r, c = x.shape
    if _uses_batch_stats(bn):
        # few input channels (the xyz layer): the moments are cheap, so take them in float64, where
        # the cancellation between the terms (close neighbours: W_a x_j ~ W_a x_i) costs nothing
        dt = torch.float64 if c <= SMALL_C or x.dtype == torch.float64 else torch.float32
        with _no_autocast(x.device):
            mean, var = _edge_moments(x.to(dt), idx, wa.to(dt), wd.to(dt), bn)
        sdt = _stat_dtype(x)
        s, t = _scale_shift(bn, mean, var)
        s, t = s.to(sdt), t.to(sdt)
    else:
        s, t = _eval_scale_shift(bn, _stat_dtype(wa))
    s_col = s.unsqueeze(1).to(wa.dtype)
    centre = x.detach().view(batch, r // batch, c).mean(dim=1, keepdim=True)  # (B, 1, C)
    xc = (x.view(batch, r // batch, c) - centre).view(r, c)
    was = wa * s_col
    a = F.linear(xc, was)
    bias = F.linear(centre, was + wd * s_col, t.to(wa.dtype))  # (B, 1, O): s * W_b c + t
    bt = (F.linear(xc, wd * s_col).view(batch, r // batch, -1) + bias).view(r, -1)
    return a, bt


def edge_conv(x: torch.Tensor, idx: torch.Tensor, unit: EdgeConvUnit, batch: int = 1) -> torch.Tensor:
    """One EdgeConv layer: ``max_{j in N(i)} LeakyReLU(BN(W [x_j - x_i; x_i]))`` for rows ``x``
    ``(R, C)`` and neighbour rows ``idx`` ``(R, k)`` -> ``(R, O)``; the reference's numbers, the
    fast way (see the module docstring)."""
    a, bt = _edge_terms(x, idx, unit, batch)
    if a.dtype != bt.dtype:
        a = a.to(bt.dtype)
    return neighbour_max_add_leaky(a.contiguous(), idx, bt, LEAKY_SLOPE)


def edge_block2(x: torch.Tensor, idx: torch.Tensor, first: EdgeConvUnit, second: EdgeMLPUnit,
                batch: int = 1) -> torch.Tensor:
    """A two-layer edge MLP then the max over neighbours (the part-segmentation DGCNN's blocks and
    its transform net): ``max_j act(BN2(W2 act(BN1(W1 [x_j - x_i; x_i]))))`` -> ``(R, O2)``.

    Only the first layer factorises; the second needs the ``(R*k, O1)`` edge tensor. Training
    builds it once (the max over ``k`` is taken before the second BN's affine map, so the
    normalised tensor is not built); inference without gradients runs in blocks of rows.
    """
    r, k = idx.shape
    bn2 = second.bn
    w2 = second.matrix()
    if not torch.is_grad_enabled() and not _uses_batch_stats(first.bn) and not _uses_batch_stats(bn2):
        return _edge_block2_blocks(x, idx, first, second, batch)
    a, bt = _edge_terms(x, idx, first, batch)
    if a.dtype != bt.dtype:
        a = a.to(bt.dtype)
    e1 = F.leaky_relu(a[idx] + bt.unsqueeze(1), LEAKY_SLOPE)  # (R, k, O1)
    z = F.linear(e1.view(r * k, -1), w2)
    dt = _stat_dtype(z)
    z = z.to(dt)
    if _uses_batch_stats(bn2):
        group = _sync_group(bn2)
        factor = _running_factor(bn2)
        if group is None:
            var, mean = torch.var_mean(z, dim=0, correction=0)
            n = float(z.shape[0])
        else:
            sums, n = _global_count(z.shape[0], z.sum(0), group)
            mean = sums / n
            var = all_reduce_with_grad((z - mean).square().sum(0), group) / n
        _update_running(bn2, factor, mean, var, n)
        s, t = _scale_shift(bn2, mean, var)
    else:
        s, t = _eval_scale_shift(bn2, dt)
    # max over each point's k edges of s*z (= the max of the affine map, see the module docstring)
    dense = torch.arange(r * k, device=z.device).view(r, k)
    zmax = neighbour_max((z * s).view(r * k, -1), dense)
    return F.leaky_relu(zmax + t, LEAKY_SLOPE)


def _edge_block2_blocks(x, idx, first, second, batch):
    r, k = idx.shape
    a, bt = _edge_terms(x, idx, first, batch)
    if a.dtype != bt.dtype:
        a = a.to(bt.dtype)
    w2 = second.matrix()
    s2, t2 = _eval_scale_shift(second.bn, _stat_dtype(w2))
    w2s = w2 * s2.unsqueeze(1).to(w2.dtype)
    o1, o2 = a.shape[1], w2.shape[0]
    elem = a.element_size()
    budget = block_budget(x.device, EDGE_BLOCK_ELEMS * elem) // elem  # on CUDA: one block when it fits
    rows = max(1, budget // (k * max(o1, o2)))
    out = torch.empty(r, o2, dtype=t2.dtype, device=x.device)
    for s in range(0, r, rows):
        e = min(r, s + rows)
        e1 = a[idx[s:e]]
        e1 += bt[s:e].unsqueeze(1)
        F.leaky_relu_(e1, LEAKY_SLOPE)
        z = F.linear(e1.view((e - s) * k, o1), w2s).view(e - s, k, o2)
        out[s:e] = z.amax(dim=1)
    out += t2
    return F.leaky_relu_(out, LEAKY_SLOPE)


# ------------------------------------------------------------------------------ SyncBatchNorm
class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """A BatchNorm whose batch statistics are shared by the ranks of ``process_group`` (default: all)
    while training under a running process group; plain BatchNorm otherwise. Same parameters,
    buffers and state-dict names as any BatchNorm.

    Unlike ``torch.nn.SyncBatchNorm`` it also works on the CPU (gloo): the moments are all-reduced
    with autograd. On CUDA it runs torch's fused implementation. The fast EdgeConv and the other
    functions of this module recognise it (and ``torch.nn.SyncBatchNorm``) and synchronise their own
    statistics."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
        self.process_group = process_group

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def _check_non_zero_input_channels(self, input):
        if input.size(1) == 0:
            raise ValueError("SyncBatchNorm number of input channels should be non-zero")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        group = _sync_group(self)
        if group is None:  # eval, or no process group: plain BatchNorm on any device
            return super().forward(input)
        if input.device.type == "cuda":
            return nn.SyncBatchNorm.forward(self, input)
        c = input.shape[1]
        moved = input.movedim(1, -1)
        y = batch_norm_rows(moved.reshape(-1, c), self)
        return y.view(moved.shape).movedim(-1, 1).to(input.dtype)


def convert_sync_batchnorm(module: nn.Module, process_group=None) -> nn.Module:
    """Replace every BatchNorm of ``module`` (also inside the fast EdgeConv units and torchvision
    models) by :class:`SyncBatchNorm` sharing its parameters and buffers; returns the module (a new
    one if ``module`` itself is a BatchNorm). Call it before wrapping the model in DDP."""
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
        out = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, process_group or getattr(module, "process_group", None))
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
        if hasattr(module, "qconfig"):
            out.qconfig = module.qconfig
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child, process_group))
    return out


# ------------------------------------------------------------------------------ global pooling
#: rows per block when a point-wise unit is evaluated without gradients (bounded memory)
POINTWISE_BLOCK_ROWS = 8192


class _BNActPool(torch.autograd.Function):
    """Training-mode BatchNorm (batch statistics over all rows, optionally synchronised) + LeakyReLU /
    ReLU + max-pool and mean-pool over each cloud's rows, without building the normalised tensor:
    one pass forward, two passes backward over the saved ``y``. The activated ``(R, O)`` map is
    written (third output) only with ``keep_map``; otherwise the third output is empty."""

    @staticmethod
    def forward(ctx, y, weight, bias, bn, batch, slope, group, keep_map):
        r, o = y.shape
        n_local = float(r)
        kern = _kernels() if y.device.type == "cpu" else None
        if group is None and kern is not None:
            mu, var = _col_stats(y, kern)
            n = n_local
        elif group is None:
            var, mu = torch.var_mean(y, dim=0, correction=0)
            n = n_local
        else:
            sums = torch.cat([y.sum(0), y.new_tensor([n_local])])
            torch.distributed.all_reduce(sums, group=group)
            n = float(sums[-1].item())
            mu = sums[:-1] / n
            m2 = (y - mu).square().sum(0)
            torch.distributed.all_reduce(m2, group=group)
            var = m2 / n
        factor = _running_factor(bn)
        _update_running(bn, factor, mu, var, n)
        inv = torch.rsqrt(var + bn.eps)
        gamma = weight if weight is not None else torch.ones_like(inv)
        beta = bias if bias is not None else torch.zeros_like(inv)
        s = gamma * inv
        t = beta - mu * s
        if kern is not None:
            omax = y.new_empty(batch, o)
            omean = y.new_empty(batch, o)
            arg = torch.empty(batch, o, dtype=torch.int32)
            amap = y.new_empty((r, o) if keep_map else (0, 0))
            args = (y.numpy(), batch, s.numpy(), t.numpy(), float(slope), omax.numpy(), omean.numpy(), arg.numpy(),
                    amap.numpy())
            _run_chunks(lambda _i, b0, b1: kern["bn_act_pool"](*args, b0, b1), batch, 1)
        else:
            a = torch.addcmul(t, y, s)
            a = F.leaky_relu_(a, slope) if slope > 0 else F.relu_(a)
            amap = a if keep_map else y.new_empty(0, 0)
            a = a.view(batch, r // batch, o)
            omax, arg = a.max(dim=1)
            omean = a.mean(dim=1)
        ctx.save_for_backward(y, s, t, mu, inv, gamma, arg)
        ctx.batch, ctx.slope, ctx.group, ctx.n = batch, float(slope), group, n
        ctx.has_weight, ctx.has_bias = weight is not None, bias is not None
        if not keep_map:
            ctx.mark_non_differentiable(amap)
        return omax, omean, amap

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gmax, gmean, gmap):
        y, s, t, mu, inv, gamma, arg = ctx.saved_tensors
        r, o = y.shape
        b = ctx.batch
        gmax = torch.zeros(b, o, dtype=y.dtype, device=y.device) if gmax is None else gmax.contiguous()
        gmean = torch.zeros(b, o, dtype=y.dtype, device=y.device) if gmean is None else gmean.contiguous()
        if gmap is not None and gmap.shape != y.shape:
            gmap = None  # the empty placeholder of a pass without the map
        if gmap is not None:
            gmap = gmap.contiguous()
        k = _kernels() if y.device.type == "cpu" else None
        if k is not None:
            threads = max(1, min(torch.get_num_threads(), b))
            acc = torch.zeros(threads, 2, o, dtype=torch.float64)
            accn = acc.numpy()
            gm = (gmap if gmap is not None else y.new_empty(0, 0)).numpy()
            args = (y.numpy(), b, s.numpy(), t.numpy(), ctx.slope, mu.numpy(), inv.numpy(), gmax.numpy(),
                    gmean.numpy(), arg.numpy(), gm)
            used = _run_chunks(lambda i, b0, b1: k["bn_act_pool_sums"](*args, accn[i, 0], accn[i, 1], b0, b1), b, 1)
            tot = acc[:used].sum(0).to(y.dtype)
            sum_dz, sum_dzy = tot[0], tot[1]
        else:
            dz = _pool_dz(y, s, t, ctx.slope, gmax, gmean, arg, b, gmap)
            yhat = (y - mu) * inv
            sum_dz, sum_dzy = dz.sum(0), (dz * yhat).sum(0)
        grad_w, grad_b = sum_dzy, sum_dz  # this rank's share; DDP averages the parameters' gradients
        if ctx.group is not None:
            packed = torch.cat([sum_dz, sum_dzy])
            torch.distributed.all_reduce(packed, group=ctx.group)
            sum_dz, sum_dzy = packed.split(o)
        k1 = gamma * inv
        k2 = k1 * sum_dz / ctx.n
        k3 = k1 * sum_dzy / ctx.n
        if k is not None:
            dy = torch.empty_like(y)
            dargs = args + (k1.numpy(), k2.numpy(), k3.numpy(), dy.numpy())
            _run_chunks(lambda _i, b0, b1: k["bn_act_pool_dy"](*dargs, b0, b1), b, 1)
        else:
            dy = k1 * dz - k2 - k3 * yhat
        return (dy, grad_w if ctx.has_weight else None, grad_b if ctx.has_bias else None,
                None, None, None, None, None)


def _col_stats(y: torch.Tensor, kern):
    """Per-column mean and biased variance of ``y`` ``(R, O)`` in one pass (float64 sums of values
    shifted by the first row)."""
    r, o = y.shape
    shift = y[0].contiguous()
    threads = max(1, min(torch.get_num_threads(), r // 2048))
    acc = torch.zeros(threads, 2, o, dtype=torch.float64)
    accn, yn, sn = acc.numpy(), y.numpy(), shift.numpy()
    used = _run_chunks(lambda i, r0, r1: kern["col_stats"](yn, sn, accn[i, 0], accn[i, 1], r0, r1), r)
    tot = acc[:used].sum(0)
    m1 = tot[0] / r
    var = (tot[1] / r - m1.square()).clamp_min(0.0)
    return (shift.to(torch.float64) + m1).to(y.dtype), var.to(y.dtype)


def _pool_dz(y, s, t, slope, gmax, gmean, arg, batch, gmap=None):
    r, o = y.shape
    n = r // batch
    z = torch.addcmul(t, y, s).view(batch, n, o)
    g = (gmean / n).unsqueeze(1).expand(batch, n, o).clone()
    g.scatter_add_(1, arg.long().unsqueeze(1), gmax.unsqueeze(1))
    if gmap is not None:
        g += gmap.view(batch, n, o)
    return torch.where(z > 0, g, g * slope).view(r, o)


def _fused_pool_ok(unit: _ConvBNAct, x: torch.Tensor, keep_map: bool) -> bool:
    """The fused BatchNorm + activation + pooling applies: training-mode statistics, and the map
    (when kept) is for a backward pass (without gradients the blocked evaluation holds less)."""
    bn = unit.bn
    return ((not keep_map or torch.is_grad_enabled()) and bn.training and bn.running_mean is not None
            and bn.track_running_stats and x.device.type in ("cpu", "cuda"))


def pointwise_pool(x: torch.Tensor, batch: int, unit: _ConvBNAct, *, keep_map: bool, mean: bool):
    """``unit`` on rows ``x`` ``(B*N, C)`` then max-pool (and mean-pool) over each cloud's points.

    Returns ``(max (B, O), mean (B, O) or None, map (B, N, O) or None)``. Without gradients in eval
    mode the unit runs in blocks of rows, so only the pooled vectors (and the map when asked for)
    are ever held."""
    r = x.shape[0]
    n = r // batch
    if _fused_pool_ok(unit, x, keep_map):
        y = F.linear(x, unit.matrix())
        y = y.to(_stat_dtype(y)).contiguous()
        bn = unit.bn
        mx, mn, amap = _BNActPool.apply(y, bn.weight, bn.bias, bn, batch, unit.slope(), _sync_group(bn), keep_map)
        return mx, (mn if mean else None), (amap.view(batch, n, -1) if keep_map else None)
    whole = POINTWISE_BLOCK_ROWS
    if x.device.type == "cuda":  # all rows at once when their (R, O) map fits (no Python loop)
        o = unit.matrix().shape[0]
        whole = max(whole, block_budget(x.device, 0) // max(1, 2 * o * x.element_size()))
    if torch.is_grad_enabled() or _uses_batch_stats(unit.bn) or r <= whole:
        y = pointwise(x, unit).view(batch, n, -1)
        return y.amax(dim=1), (y.mean(dim=1) if mean else None), (y if keep_map else None)
    o = unit.matrix().shape[0]
    acc = _stat_dtype(x)  # float32, or float64 for a float64 model (blocked = whole, exactly)
    ymax = torch.empty(batch, o, device=x.device, dtype=acc)
    ysum = torch.zeros(batch, o, device=x.device, dtype=acc) if mean else None
    pmap = None
    for b in range(batch):
        for s in range(0, n, POINTWISE_BLOCK_ROWS):
            e = min(n, s + POINTWISE_BLOCK_ROWS)
            y = pointwise(x[b * n + s: b * n + e], unit)
            if pmap is None and keep_map:
                pmap = torch.empty(batch, n, o, device=x.device, dtype=y.dtype)
            if keep_map:
                pmap[b, s:e] = y
            m = y.amax(dim=0).to(acc)
            ymax[b] = m if s == 0 else torch.maximum(ymax[b], m)
            if mean:
                ysum[b] += y.sum(dim=0, dtype=acc)
    return ymax, (ysum / n if mean else None), pmap


def project_head(feature: torch.Tensor, head: nn.Sequential) -> torch.Tensor:
    """The reference's ``inv_head`` ``Sequential(Linear, BatchNorm1d, ReLU, Linear)`` (BatchNorm via
    :func:`batch_norm_rows`, so it follows :func:`convert_sync_batchnorm` on every device)."""
    lin0, bn, _, lin3 = head
    h = batch_norm_rows(lin0(feature), bn)
    h = F.relu(h)
    if not torch.is_autocast_enabled(h.device.type):
        h = h.to(lin3.weight.dtype)
    return lin3(h)
