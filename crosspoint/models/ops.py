"""Graph operations behind the fast EdgeConv: kNN and the neighbour max (with its backward).

Rows and neighbour lists. The models keep per-point features as a ``(R, C)`` matrix of rows
(``R = B * N``, point-major) and a neighbour list ``idx`` of shape ``(R, k)`` holding *row*
indices into that matrix (:func:`knn_rows` adds the batch offsets). A neighbour max then reads
``k`` rows per point and never builds the ``(B, C, N, k)`` edge tensor.

Kernels. On the CPU, the neighbour max (fused with the bias and LeakyReLU that follow it in an
EdgeConv) and its scatter-add backward, the kNN's top-k selection, and the fused BatchNorm +
activation + pooling of :mod:`.layers` are small numba loops (compiled on first use, cached on
disk, run without the GIL, the big ones split over ``torch.get_num_threads()`` threads). The
neighbour max is one pass over the gathered values with no temporary and a one-byte arg-max per
output: 5-15x faster here than ``index_select`` + ``max`` (the gathered ``(R, k, C)`` block and
``max``'s int64 indices are what costs). Elsewhere (CUDA), or with ``CROSSPOINT_NO_NUMBA=1``, the
same maths runs with torch ops in bounded chunks.

Chunks on CUDA. The bounds above (:data:`KNN_BLOCK_BYTES`, :data:`GATHER_BLOCK_BYTES`) keep CPU
memory small; on a GPU they would split the paper's batch (40 clouds x 2048 points: a 640 MiB
distance matrix, up to 1.2 GiB of gathered neighbours) into a Python loop of small kernels. There a
block may instead take up to :data:`CUDA_BLOCK_FRACTION` of the memory the device has available
(:func:`block_budget`: free on the device plus what torch's allocator holds unused), so the whole
problem runs as one piece whenever it fits, and in as few pieces as fit otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import threading

import torch

from crosspoint.lazykernels import LazyKernels, kernel_pool

log = logging.getLogger(__name__)

__all__ = ["knn", "knn_rows", "neighbour_max", "neighbour_max_add_leaky", "neighbour_sum", "reuse_buffers",
           "block_budget", "cuda_available_bytes"]

#: memory bound for one block of the kNN distance matrix (bytes)
KNN_BLOCK_BYTES = 256 * 2**20
#: entries of a row that guess the k-NN selection threshold (numba top-k)
TOPK_SAMPLE = 128
#: memory bound for one block of gathered neighbour values in the torch fallback (bytes)
GATHER_BLOCK_BYTES = 64 * 2**20
#: on CUDA, the share of the device's available memory one temporary block may take
CUDA_BLOCK_FRACTION = 0.25


def cuda_available_bytes(device) -> int:
    """Bytes a new CUDA allocation can get on ``device``: free on the device plus what torch's
    caching allocator holds unused."""
    device = torch.device(device)
    free, _total = torch.cuda.mem_get_info(device)
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return int(free) + max(0, int(cached))


def block_budget(device, default: int) -> int:
    """Bytes one temporary block may take on ``device``: ``default`` on the CPU (and any non-CUDA
    device); on CUDA the larger of ``default`` and :data:`CUDA_BLOCK_FRACTION` of
    :func:`cuda_available_bytes`, so a problem that fits runs in one piece."""
    device = torch.device(device)
    if device.type != "cuda":
        return int(default)
    try:
        avail = cuda_available_bytes(device)
    except Exception:  # pragma: no cover - no driver answer: keep the CPU bound
        return int(default)
    return max(int(default), int(avail * CUDA_BLOCK_FRACTION))


# ------------------------------------------------------------------------------ scratch buffers
_LOCAL = threading.local()


@contextlib.contextmanager
def reuse_buffers():
    """Within this block (per thread), temporary work buffers of the same role are reused instead of
    freshly allocated: large fresh CPU allocations cost a page fault per 4 KiB, which is a large
    part of a kNN's time. The buffers are dropped when the outermost block ends."""
    outer = getattr(_LOCAL, "buffers", None) is None
    if outer:
        _LOCAL.buffers = {}
    try:
        yield
    finally:
        if outer:
            _LOCAL.buffers = None


def _scratch(role: str, numel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    buffers = getattr(_LOCAL, "buffers", None)
    if buffers is None:
        return torch.empty(numel, dtype=dtype, device=device)
    buf = buffers.get(role)
    if buf is None or buf.numel() < numel or buf.dtype != dtype or buf.device != device:
        buf = buffers[role] = torch.empty(numel, dtype=dtype, device=device)
    return buf[:numel]


# ----------------------------------------------------------------------------------------- kNN
def knn(x: torch.Tensor, k: int, *, block_bytes: int | None = None) -> torch.Tensor:
    """Indices ``(B, N, k)`` of the ``k`` nearest points (Euclidean, the point itself included) of
    every point of ``x`` ``(B, N, C)``.

    The same selection as the reference (the ``k`` largest negative squared distances; ties: the
    lower index on the CPU): one batched matrix product per block of query rows, blocks bounded by
    ``block_bytes`` (default :data:`KNN_BLOCK_BYTES`), so 100k points run in bounded memory, then a
    top-k selection (numba on the CPU, ``torch.topk`` elsewhere; the neighbours come unordered). No
    autograd, no autocast (distances in float32 or float64). Coordinates are centred first, which
    changes no distance but avoids float32 cancellation far from the origin.
    """
    if x.dim() != 3:
        raise ValueError(f"knn expects (B, N, C), got shape {tuple(x.shape)}")
    B, N, _ = x.shape
    if not 0 < k <= N:
        raise ValueError(f"k={k} neighbours requested from {N} points")
    budget = block_budget(x.device, KNN_BLOCK_BYTES) if block_bytes is None else int(block_bytes)
    with torch.no_grad(), _no_autocast(x.device):
        xf = x.detach()
        if xf.dtype not in (torch.float32, torch.float64):
            xf = xf.float()
        xf = xf - xf.mean(dim=1, keepdim=True)
        # 2 x_i.x_j - |x_j|^2 = |x_i|^2 - |x_i - x_j|^2: the row constant |x_i|^2 does not change the
        # order within a row, so it is left out; computed as one batched product of augmented
        # coordinates [2x, -1].[x, |x|^2] (no broadcast add, no extra pass over the block)
        q = torch.cat([xf * 2.0, xf.new_full((B, N, 1), -1.0)], dim=2)
        xt = torch.cat([xf, xf.square().sum(-1, keepdim=True)], dim=2).transpose(1, 2)
        rows = max(1, min(N, budget // max(1, B * N * xf.element_size())))
        fast = _use_numba(xf, 0)
        if rows >= N:
            d = torch.bmm(q, xt, out=_scratch("knn", B * N * N, xf.dtype, x.device).view(B, N, N))
            if fast:
                return _topk_numba(d.view(B * N, N), k).view(B, N, k)
            return d.topk(k, dim=-1, sorted=False)[1]
        out = torch.empty(B, N, k, dtype=torch.long, device=x.device)
        buf = _scratch("knn", B * rows * N, xf.dtype, x.device)
        vals = torch.empty(B * rows * k, dtype=xf.dtype, device=x.device)
        ibuf = torch.empty(B * rows * k, dtype=torch.long, device=x.device)
        for s in range(0, N, rows):
            e = min(N, s + rows)
            n = e - s
            d = torch.bmm(q[:, s:e], xt, out=buf[: B * n * N].view(B, n, N))
            i = ibuf[: B * n * k].view(B, n, k)
            if fast:
                _topk_numba(d.view(B * n, N), k, out=i.view(B * n, k))
            else:
                torch.topk(d, k, dim=-1, sorted=False, out=(vals[: B * n * k].view(B, n, k), i))
            out[:, s:e] = i
        return out


def _topk_numba(d: torch.Tensor, k: int, out: "torch.Tensor | None" = None) -> torch.Tensor:
    """Column indices of the ``k`` largest entries of every row of ``d`` ``(M, N)`` (numba, rows
    split over torch's thread count)."""
    m = d.shape[0]
    if out is None:
        out = torch.empty(m, k, dtype=torch.long)
    dn, on = d.numpy(), out.numpy()
    _split_rows(_kernels()["topk_rows"], m, dn, k, on)
    return out


def knn_rows(x: torch.Tensor, k: int, *, block_bytes: int | None = None) -> torch.Tensor:
    """:func:`knn` as row indices ``(B*N, k)`` into ``x.reshape(B*N, C)`` (batch offsets added)."""
    B, N, _ = x.shape
    idx = knn(x, k, block_bytes=block_bytes)
    idx += (torch.arange(B, device=idx.device) * N).view(B, 1, 1)
    return idx.view(B * N, k)


class _no_autocast:
    def __init__(self, device):
        self.device_type = device.type if device.type in ("cuda", "cpu") else None

    def __enter__(self):
        if self.device_type is None:
            self.ctx = None
            return
        self.ctx = torch.autocast(device_type=self.device_type, enabled=False)
        self.ctx.__enter__()

    def __exit__(self, *exc):
        if self.ctx is not None:
            self.ctx.__exit__(*exc)


# ------------------------------------------------------------------------------ numba kernels
def _kernels():
    """The numba kernels, or None when numba is missing or disabled (``CROSSPOINT_NO_NUMBA=1``)."""
    return _KERNELS.get()


def _build_kernels():
    import numba
    import numpy as np

    jit = numba.njit(cache=True, nogil=True, boundscheck=False)

    @jit
    def nmax_arg(v, idx, out, arg, r0, r1):
        # out[i, c] = max_t v[idx[i, t], c]; arg[i, c] = first t reaching it (rows r0..r1)
        k = idx.shape[1]
        o = v.shape[1]
        for i in range(r0, r1):
            j = idx[i, 0]
            for c in range(o):
                out[i, c] = v[j, c]
                arg[i, c] = 0
            for t in range(1, k):
                j = idx[i, t]
                for c in range(o):
                    x = v[j, c]
                    m = out[i, c]
                    g = x > m
                    out[i, c] = x if g else m
                    arg[i, c] = t if g else arg[i, c]

    @jit
    def nmax_add_leaky(v, idx, bias, slope, out, r0, r1):
        # out[i, c] = leaky(max_t v[idx[i, t], c] + bias[i, c]) (rows r0..r1); slope >= 1 means no
        # activation
        k = idx.shape[1]
        o = v.shape[1]
        for i in range(r0, r1):
            j = idx[i, 0]
            for c in range(o):
                out[i, c] = v[j, c]
            for t in range(1, k):
                j = idx[i, t]
                for c in range(o):
                    x = v[j, c]
                    m = out[i, c]
                    out[i, c] = x if x > m else m
            for c in range(o):
                y = out[i, c] + bias[i, c]
                out[i, c] = y if y >= 0 else y * slope

    @jit
    def nmax_add_leaky_arg(v, idx, bias, slope, out, arg, r0, r1):
        # out = leaky(max_t v[idx[i, t]] + bias[i]); arg = first t reaching the max (rows r0..r1)
        k = idx.shape[1]
        o = v.shape[1]
        for i in range(r0, r1):
            j = idx[i, 0]
            for c in range(o):
                out[i, c] = v[j, c]
                arg[i, c] = 0
            for t in range(1, k):
                j = idx[i, t]
                for c in range(o):
                    x = v[j, c]
                    m = out[i, c]
                    g = x > m
                    out[i, c] = x if g else m
                    arg[i, c] = t if g else arg[i, c]
            for c in range(o):
                y = out[i, c] + bias[i, c]
                out[i, c] = y if y > 0 else y * slope

    @jit
    def nmax_add_leaky_backward(grad, out, idx, arg, slope, gbias, gv, c0, c1):
        # through the activation (its sign is the output's), then to the bias and the arg-max rows;
        # channels c0..c1 (a split by channel keeps every sum in row order, whatever the threads)
        q = grad.shape[0]
        for i in range(q):
            for c in range(c0, c1):
                g = grad[i, c] if out[i, c] > 0 else grad[i, c] * slope
                gbias[i, c] = g
                gv[idx[i, arg[i, c]], c] += g

    @jit
    def nmax_backward(grad, idx, arg, gv, c0, c1):
        # gv[idx[i, arg[i, c]], c] += grad[i, c] for channels c0..c1
        q = grad.shape[0]
        for i in range(q):
            for c in range(c0, c1):
                gv[idx[i, arg[i, c]], c] += grad[i, c]

    @jit
    def nsum_backward(grad, idx, gv, d0, d1):
        # gv[idx[i, t]] += grad[i] for the destination rows d0..d1, in (i, t) order: every row's sum
        # is taken in the same order whatever the split (the order embedding_bag's backward uses)
        q, k = idx.shape
        o = grad.shape[1]
        for i in range(q):
            for t in range(k):
                j = idx[i, t]
                if d0 <= j < d1:
                    for c in range(o):
                        gv[j, c] += grad[i, c]

    @jit
    def worse(va, ia, vb, ib):
        # (va, ia) ranks below (vb, ib): a smaller value, or the same value at a higher index
        return va < vb or (va == vb and ia > ib)

    @jit
    def heap_select(vals, idxs, m, k, hv, hi):
        # the k best of (vals[:m], idxs[:m]) into a heap (hv, hi) whose root is the worst kept;
        # "better" = larger value, then lower index (a total order: ties are well defined)
        for t in range(m):
            v = vals[t]
            q = idxs[t]
            if t < k:  # sift up
                c = t
                while c > 0:
                    p = (c - 1) >> 1
                    if worse(v, q, hv[p], hi[p]):
                        hv[c] = hv[p]
                        hi[c] = hi[p]
                        c = p
                    else:
                        break
                hv[c] = v
                hi[c] = q
            elif worse(hv[0], hi[0], v, q):  # replace the root, sift down
                c = 0
                while True:
                    ch = 2 * c + 1
                    if ch >= k:
                        break
                    r2 = ch + 1
                    if r2 < k and worse(hv[r2], hi[r2], hv[ch], hi[ch]):
                        ch = r2
                    if worse(hv[ch], hi[ch], v, q):
                        hv[c] = hv[ch]
                        hi[c] = hi[ch]
                        c = ch
                    else:
                        break
                hv[c] = v
                hi[c] = q

    @jit
    def topk_rows(d, k, out, r0, r1):
        # indices of the k largest entries of each row r0..r1 of d (unordered); ties: lower index.
        # A guess of the threshold from the row's first TOPK_SAMPLE entries (their g-th largest,
        # g ~ 2 k / n of the sample, so ~2k entries of the row lie above it), then one branch-free
        # pass keeps the entries at or above it and a heap selects among those. Exact: when fewer
        # than k entries pass (rare) the row is redone with every entry.
        n = d.shape[1]
        hv = np.empty(k, d.dtype)
        hi = np.empty(k, np.int64)
        cv = np.empty(n, d.dtype)
        ci = np.empty(n, np.int64)
        s = min(n, TOPK_SAMPLE)
        g = 2 * max(1, (k * s + n - 1) // n)
        sv = np.empty(g, d.dtype)
        si = np.empty(g, np.int64)
        guess = n > 4 * k and g < s
        for r in range(r0, r1):
            m = 0
            if guess:
                for t in range(s):
                    cv[t] = d[r, t]
                    ci[t] = t
                heap_select(cv, ci, s, g, sv, si)
                thr = sv[0]
                for q in range(n):
                    v = d[r, q]
                    cv[m] = v
                    ci[m] = q
                    m += v >= thr
            if m < k:  # no guess, or it was too high: every entry is a candidate
                for q in range(n):
                    cv[q] = d[r, q]
                    ci[q] = q
                m = n
            heap_select(cv, ci, m, k, hv, hi)
            for t in range(k):
                out[r, t] = hi[t]

    @jit
    def bn_act_pool(y, nb, s, t, slope, omax, omean, arg, amap, b0, b1):
        # a = act(s * y + t) on rows y (nb*N, O); per cloud: max (and its row), mean; with a map
        # (amap of y's shape, else (0, 0)) the activated rows are written there too
        r_all, o = y.shape
        n = r_all // nb
        write = amap.shape[0] == r_all
        acc = np.zeros(o, np.float64)
        for b in range(b0, b1):
            for c in range(o):
                acc[c] = 0.0
                z = y[b * n, c] * s[c] + t[c]
                omax[b, c] = z if z > 0 else z * slope
                arg[b, c] = 0
            for i in range(n):
                r = b * n + i
                for c in range(o):
                    z = y[r, c] * s[c] + t[c]
                    a = z if z > 0 else z * slope
                    acc[c] += a
                    g = a > omax[b, c]
                    omax[b, c] = a if g else omax[b, c]
                    arg[b, c] = i if g else arg[b, c]
                    if write:
                        amap[r, c] = a
            for c in range(o):
                omean[b, c] = acc[c] / n

    @jit
    def bn_act_pool_sums(y, nb, s, t, slope, mu, inv, gmax, gmean, arg, gmap, sum_dz, sum_dzy, b0, b1):
        # per channel: sum of dz and of dz * yhat, dz = act'(z) * (gmean / N + [row = argmax] gmax
        # + gmap) (gmap: the gradient of the activated map, or (0, 0) when the map was not kept)
        r_all, o = y.shape
        n = r_all // nb
        has_map = gmap.shape[0] == r_all
        for b in range(b0, b1):
            for i in range(n):
                r = b * n + i
                for c in range(o):
                    yv = y[r, c]
                    z = yv * s[c] + t[c]
                    g = gmean[b, c] / n + (gmax[b, c] if arg[b, c] == i else 0.0)
                    if has_map:
                        g += gmap[r, c]
                    dz = g if z > 0 else g * slope
                    sum_dz[c] += dz
                    sum_dzy[c] += dz * (yv - mu[c]) * inv[c]

    @jit
    def bn_act_pool_dy(y, nb, s, t, slope, mu, inv, gmax, gmean, arg, gmap, k1, k2, k3, dy, b0, b1):
        # dy = k1 * dz - k2 - k3 * yhat
        r_all, o = y.shape
        n = r_all // nb
        has_map = gmap.shape[0] == r_all
        for b in range(b0, b1):
            for i in range(n):
                r = b * n + i
                for c in range(o):
                    yv = y[r, c]
                    z = yv * s[c] + t[c]
                    g = gmean[b, c] / n + (gmax[b, c] if arg[b, c] == i else 0.0)
                    if has_map:
                        g += gmap[r, c]
                    dz = g if z > 0 else g * slope
                    dy[r, c] = k1[c] * dz - k2[c] - k3[c] * (yv - mu[c]) * inv[c]

    @jit
    def col_stats(y, shift, s1, s2, r0, r1):
        # s1[c] += sum (y - shift), s2[c] += sum (y - shift)^2 over rows r0..r1 (float64)
        o = y.shape[1]
        for r in range(r0, r1):
            for c in range(o):
                d = y[r, c] - shift[c]
                s1[c] += d
                s2[c] += d * d

    return {"col_stats": col_stats, "nmax_arg": nmax_arg, "nmax_add_leaky_arg": nmax_add_leaky_arg,
            "nmax_add_leaky_backward": nmax_add_leaky_backward, "nmax_add_leaky": nmax_add_leaky,
            "nmax_backward": nmax_backward, "nsum_backward": nsum_backward,
            "topk_rows": topk_rows, "bn_act_pool": bn_act_pool, "bn_act_pool_sums": bn_act_pool_sums,
            "bn_act_pool_dy": bn_act_pool_dy}


_KERNELS = LazyKernels(_build_kernels, "numba DGCNN kernels")


def _split_rows(kernel, rows: int, *args, min_rows: int = 2048) -> None:
    """Run ``kernel(*args, r0, r1)`` over ``rows`` rows, split across threads (the kernels release
    the GIL)."""
    _run_chunks(lambda _i, r0, r1: kernel(*args, r0, r1), rows, min_rows)


def _run_chunks(fn, rows: int, min_rows: int = 2048) -> int:
    """Call ``fn(chunk, r0, r1)`` for contiguous row chunks covering ``rows``, the chunks in
    parallel threads (up to ``torch.get_num_threads()``); returns the number of chunks."""
    threads = max(1, min(torch.get_num_threads(), rows // max(1, min_rows)))
    if threads == 1:
        fn(0, 0, rows)
        return 1
    pool = kernel_pool(threads - 1)
    bounds = [rows * i // threads for i in range(threads + 1)]
    futures = [pool.submit(fn, i, bounds[i], bounds[i + 1]) for i in range(1, threads)]
    fn(0, bounds[0], bounds[1])
    for f in futures:
        f.result()
    return threads


def _split_channels(kernel, channels: int, *args, min_channels: int = 16) -> None:
    """Run ``kernel(*args, c0, c1)`` over channel ranges, split across threads."""
    _run_chunks(lambda _i, c0, c1: kernel(*args, c0, c1), channels, min_channels)


def _use_numba(t: torch.Tensor, k: int) -> bool:
    return (t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) and k <= 255
            and _kernels() is not None)


def _np(t: torch.Tensor):
    return t.detach().contiguous().numpy()


# ------------------------------------------------------------------------------ neighbour max
def _chunk_rows(k: int, c: int, elem: int, device=None) -> int:
    """Rows per block when a block holds ``k * c`` elements of ``elem`` bytes per row (one block,
    all rows, on CUDA when they fit: :func:`block_budget`)."""
    budget = GATHER_BLOCK_BYTES if device is None else block_budget(device, GATHER_BLOCK_BYTES)
    return max(1, budget // max(1, k * c * elem))


def _nmax_forward(values: torch.Tensor, idx: torch.Tensor, with_arg: bool):
    q, k = idx.shape
    o = values.shape[1]
    out = values.new_empty(q, o)
    arg = None
    if _use_numba(values, k):
        arg = torch.empty(q, o, dtype=torch.uint8)
        _split_rows(_kernels()["nmax_arg"], q, _np(values), _np(idx), out.numpy(), arg.numpy())
        return out, (arg if with_arg else None)
    if with_arg:
        arg = torch.empty(q, o, dtype=torch.uint8 if k <= 255 else torch.int64, device=values.device)
    rows = _chunk_rows(k, o, values.element_size(), values.device)  # per row: the gathered k x o values
    for s in range(0, q, rows):
        e = min(q, s + rows)
        g = values.index_select(0, idx[s:e].reshape(-1)).view(e - s, k, o)
        if with_arg:
            m, a = g.max(dim=1)
            out[s:e] = m
            arg[s:e] = a
        else:
            torch.amax(g, dim=1, out=out[s:e])
    return out, arg


def _nmax_backward(grad: torch.Tensor, idx: torch.Tensor, arg: torch.Tensor, num_rows: int):
    q, k = idx.shape
    o = grad.shape[1]
    gv = grad.new_zeros(num_rows, o)
    if arg.dtype == torch.uint8 and _use_numba(grad, k):
        _split_channels(_kernels()["nmax_backward"], o, _np(grad), _np(idx), _np(arg), gv.numpy())
        return gv
    rows = _chunk_rows(2, o, 8, grad.device)  # per row: the int64 arg-max and the source rows
    for s in range(0, q, rows):
        e = min(q, s + rows)
        src = idx[s:e].gather(1, arg[s:e].long())
        gv.scatter_add_(0, src, grad[s:e])
    return gv


class _NeighbourMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, idx):
        out, arg = _nmax_forward(values, idx, with_arg=True)
        ctx.save_for_backward(idx, arg)
        ctx.num_rows = values.shape[0]
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        idx, arg = ctx.saved_tensors
        return _nmax_backward(grad, idx, arg, ctx.num_rows), None


def neighbour_max(values: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``out[i] = max_t values[idx[i, t]]`` channel-wise; ``values`` ``(R, C)``, ``idx`` ``(Q, k)``.

    Differentiable in ``values``: the forward keeps only the arg-max (one byte per output when
    ``k <= 255``) and the backward scatter-adds the gradient to the selected rows (ties: the first
    neighbour in ``idx`` order, like ``torch.max``).
    """
    if idx.dtype != torch.long:
        idx = idx.long()
    if torch.is_grad_enabled() and values.requires_grad:
        return _NeighbourMax.apply(values, idx)
    return _nmax_forward(values, idx, with_arg=False)[0]


class _NeighbourMaxAddLeaky(torch.autograd.Function):
    """numba CPU version of ``leaky_relu(neighbour_max(values, idx) + bias)``: one pass forward
    (keeps the output and a one-byte arg-max), one pass backward."""

    @staticmethod
    def forward(ctx, values, idx, bias, slope):
        q, o = idx.shape[0], values.shape[1]
        out = values.new_empty(q, o)
        arg = torch.empty(q, o, dtype=torch.uint8)
        _split_rows(_kernels()["nmax_add_leaky_arg"], idx.shape[0], _np(values), _np(idx), _np(bias), float(slope),
                    out.numpy(), arg.numpy())
        ctx.save_for_backward(out, idx, arg)
        ctx.slope, ctx.num_rows = float(slope), values.shape[0]
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        out, idx, arg = ctx.saved_tensors
        gbias = torch.empty_like(grad)
        gv = grad.new_zeros(ctx.num_rows, grad.shape[1])
        _split_channels(_kernels()["nmax_add_leaky_backward"], grad.shape[1], _np(grad), out.numpy(), idx.numpy(),
                        arg.numpy(), ctx.slope, gbias.numpy(), gv.numpy())
        return gv, None, gbias, None


def neighbour_max_add_leaky(values: torch.Tensor, idx: torch.Tensor, bias: torch.Tensor,
                            slope: float = 0.2) -> torch.Tensor:
    """``leaky_relu(neighbour_max(values, idx) + bias, slope)`` (``slope > 0``); fused passes on the
    CPU, the autograd composition of :func:`neighbour_max` elsewhere."""
    if idx.dtype != torch.long:
        idx = idx.long()
    if torch.is_grad_enabled() and (values.requires_grad or bias.requires_grad):
        if (_use_numba(values, idx.shape[1]) and bias.dtype == values.dtype and bias.device.type == "cpu"
                and slope > 0):
            return _NeighbourMaxAddLeaky.apply(values.contiguous(), idx.contiguous(), bias.contiguous(), slope)
        return torch.nn.functional.leaky_relu(neighbour_max(values, idx) + bias, slope)
    if idx.dtype != torch.long:
        idx = idx.long()
    k = idx.shape[1]
    if _use_numba(values, k) and bias.dtype == values.dtype and bias.device.type == "cpu":
        out = values.new_empty(idx.shape[0], values.shape[1])
        _split_rows(_kernels()["nmax_add_leaky"], idx.shape[0], _np(values), _np(idx), _np(bias), float(slope),
                    out.numpy())
        return out
    out = _nmax_forward(values, idx, with_arg=False)[0]
    out += bias
    return torch.nn.functional.leaky_relu_(out, slope)


class _NeighbourSum(torch.autograd.Function):
    """``embedding_bag(idx, values, mode="sum")`` with a numba backward: the scatter-add of the
    gradient rows to their neighbours, split over threads by destination row, every row's sum in
    ``(i, t)`` order (the numbers torch's own backward gives, without its sort of all ``R * k``
    indices: forward and backward 3-8x faster here at 48 x 1024 rows, k = 20, 3 to 128 channels)."""

    @staticmethod
    def forward(ctx, values, idx):
        ctx.save_for_backward(idx)
        ctx.num_rows = values.shape[0]
        return torch.nn.functional.embedding_bag(idx, values, mode="sum")

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        gv = grad.new_zeros(ctx.num_rows, grad.shape[1])
        args = (_np(grad), idx.numpy(), gv.numpy())
        _run_chunks(lambda _i, d0, d1: _kernels()["nsum_backward"](*args, d0, d1), ctx.num_rows, 2048)
        return gv, None


def neighbour_sum(values: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``out[i] = sum_t values[idx[i, t]]`` (differentiable; one fused ``embedding_bag``, with a numba
    backward on the CPU)."""
    if (torch.is_grad_enabled() and values.requires_grad and _use_numba(values, 0)
            and idx.dtype == torch.long and idx.is_contiguous()):
        return _NeighbourSum.apply(values, idx)
    return torch.nn.functional.embedding_bag(idx, values, mode="sum")
