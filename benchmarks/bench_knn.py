"""k-NN selection of the DGCNN: the numba top-k of ``crosspoint.models.ops`` against two baselines
measured in the same run.

    python benchmarks/bench_knn.py [--batch 32] [--points 1024] [--k 20] [--repeats 5]

The distance rows are the ones ``ops.knn`` builds (one batched product of augmented coordinates, for
1024 random points with 3, 64 and 128 channels: the four EdgeConvs' inputs). Timed, per row set:

* ``ops`` -- the project's kernel: a threshold guessed from each row's first 128 entries, one
  branch-free pass keeping the entries above it, a heap over those (exact; ties to the lower index);
* ``scan`` -- the previous kernel (until 2026-12-01): one pass keeping the k best in an array and
  rescanning it for its minimum after every replacement (the same selection up to ties);
* ``torch.topk`` -- what the kNN runs without numba.

Each figure is the best of ``--repeats`` calls, with torch's thread count (the kernels split rows
across it). The selections are checked to be equal as sets (random floats: no ties).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crosspoint.models import ops  # noqa: E402


def _scan_kernel():
    import numba

    @numba.njit(nogil=True, boundscheck=False)
    def topk_scan(d, k, out, r0, r1):
        n = d.shape[1]
        vals = np.empty(k, d.dtype)
        for r in range(r0, r1):
            for t in range(k):
                vals[t] = d[r, t]
                out[r, t] = t
            mpos = 0
            mval = vals[0]
            for t in range(1, k):
                if vals[t] < mval:
                    mval = vals[t]
                    mpos = t
            for j in range(k, n):
                v = d[r, j]
                if v > mval:
                    vals[mpos] = v
                    out[r, mpos] = j
                    mpos = 0
                    mval = vals[0]
                    for t in range(1, k):
                        if vals[t] < mval:
                            mval = vals[t]
                            mpos = t

    return topk_scan


def _rows(b: int, n: int, c: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, c, generator=g)
    x = x - x.mean(dim=1, keepdim=True)
    q = torch.cat([x * 2.0, x.new_full((b, n, 1), -1.0)], dim=2)
    xt = torch.cat([x, x.square().sum(-1, keepdim=True)], dim=2).transpose(1, 2)
    return torch.bmm(q, xt).reshape(b * n, n).contiguous()


def _best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--points", type=int, default=1024)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    if ops._kernels() is None:
        print("numba kernels unavailable (CROSSPOINT_NO_NUMBA or numba missing): nothing to compare")
        return 0
    scan = _scan_kernel()
    k = args.k
    print(f"k-NN selection, {args.batch} clouds x {args.points} points, k {k}, {torch.get_num_threads()} threads "
          "(best of %d; ms per call)" % args.repeats)
    print(f"{'channels':>8} {'ops':>8} {'scan':>8} {'topk':>8} {'scan/ops':>9} {'topk/ops':>9}")
    for c in (3, 64, 128):
        d = _rows(args.batch, args.points, c, seed=c)
        out = torch.empty(d.shape[0], k, dtype=torch.long)

        def run_scan():
            ops._split_rows(scan, d.shape[0], d.numpy(), k, out.numpy())

        t_ops = _best(lambda: ops._topk_numba(d, k), args.repeats)
        t_scan = _best(run_scan, args.repeats)
        t_topk = _best(lambda: d.topk(k, dim=-1, sorted=False), args.repeats)
        ours = ops._topk_numba(d, k).sort(-1)[0]
        same = torch.equal(ours, out.sort(-1)[0]) and torch.equal(ours, d.topk(k, dim=-1)[1].sort(-1)[0])
        print(f"{c:>8} {t_ops * 1e3:8.1f} {t_scan * 1e3:8.1f} {t_topk * 1e3:8.1f} {t_scan / t_ops:8.2f}x "
              f"{t_topk / t_ops:8.2f}x{'' if same else '  (selections differ: ties?)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
