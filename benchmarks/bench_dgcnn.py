"""DGCNN speed and memory: the project's fast EdgeConv against a naive, reference-style formulation.

The naive model below is written the way the reference computes DGCNN (build the ``(B, 2C, N, k)``
edge tensor ``[x_j - x_i, x_i]``, 1x1 conv + BatchNorm + LeakyReLU on every edge, max over ``k``),
with the same parameter names, so both variants run the *same weights* in the same run.

Measured, each variant in its own subprocess (so peak memory is its own):

* training step: batch 16 x 1024 points, k = 20, forward + NT-Xent on the projections + backward +
  Adam; median over ``--steps`` steps after ``--warmup`` steps, and the median of that over
  ``--repeats`` subprocesses;
* inference: one 2048-point cloud, eval mode, no gradients;
* peak memory: CPU, the growth of the process's peak RSS (``ru_maxrss``) over its RSS before the
  measured work; CUDA, ``torch.cuda.max_memory_allocated``.

Before timing, the two variants are run in one process on the same input and their outputs and
gradients compared. ``--device cuda`` measures on a GPU (CUDA events are not needed: the step ends
with a synchronise). The CPU shares cores with other processes on a busy machine: the script
reports the spread of the repeats. ``--thp`` runs the workers with ``THP_MEM_ALLOC_ENABLE=1``
(PyTorch then backs large CPU tensors with transparent huge pages: far fewer page faults, which
helps the naive variant most).

    python benchmarks/bench_dgcnn.py                  # CPU, 2 threads
    python benchmarks/bench_dgcnn.py --device cuda --threads 8
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------- the naive variant
def naive_knn(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, C, N) -> (B, N, k): top-k of the negative squared distances, as the reference does."""
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    sq = torch.sum(x ** 2, dim=1, keepdim=True)
    return (-sq - inner - sq.transpose(2, 1)).topk(k=k, dim=-1)[1]


def naive_edges(x: torch.Tensor, k: int, knn_fn=naive_knn) -> torch.Tensor:
    """(B, C, N) -> (B, 2C, N, k) edge features [x_j - x_i, x_i]."""
    b, c, n = x.shape
    idx = knn_fn(x, k) + torch.arange(b, device=x.device).view(-1, 1, 1) * n
    pts = x.transpose(2, 1).contiguous()
    nbrs = pts.view(b * n, c)[idx.view(-1)].view(b, n, k, c)
    centre = pts.view(b, n, 1, c).repeat(1, 1, k, 1)
    return torch.cat((nbrs - centre, centre), dim=3).permute(0, 3, 1, 2).contiguous()


def _unit(cin: int, cout: int, dims: int) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, 1, bias=False) if dims == 2 else nn.Conv1d(cin, cout, 1, bias=False)
    bn = nn.BatchNorm2d(cout) if dims == 2 else nn.BatchNorm1d(cout)
    return nn.Sequential(conv, bn, nn.LeakyReLU(negative_slope=0.2))


class NaiveDGCNN(nn.Module):
    """Reference-style DGCNN (points in ``(B, N, 3)`` like ours); parameter names as ours."""

    def __init__(self, k: int = 20, emb_dims: int = 1024):
        super().__init__()
        self.k = k
        self.knn_fn = naive_knn
        self.conv1, self.conv2 = _unit(6, 64, 2), _unit(128, 64, 2)
        self.conv3, self.conv4 = _unit(128, 128, 2), _unit(256, 256, 2)
        self.conv5 = _unit(512, emb_dims, 1)
        self.inv_head = nn.Sequential(nn.Linear(2 * emb_dims, emb_dims), nn.BatchNorm1d(emb_dims),
                                      nn.ReLU(inplace=True), nn.Linear(emb_dims, 256))

    def embed(self, points: torch.Tensor) -> torch.Tensor:
        x = points.transpose(1, 2)
        b = x.shape[0]
        outs = []
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = conv(naive_edges(x, self.k, self.knn_fn)).max(dim=-1)[0]
            outs.append(x)
        x = self.conv5(torch.cat(outs, dim=1))
        return torch.cat((F.adaptive_max_pool1d(x, 1).view(b, -1), F.adaptive_avg_pool1d(x, 1).view(b, -1)), 1)

    def project(self, points: torch.Tensor) -> torch.Tensor:
        return self.inv_head(self.embed(points))


# ----------------------------------------------------------------------------- shared set-up
def build(variant: str, k: int, device: torch.device) -> nn.Module:
    from crosspoint.models import DGCNN

    torch.manual_seed(0)
    fast = DGCNN(k=k)
    if variant == "fast":
        return fast.to(device)
    naive = NaiveDGCNN(k=k)
    naive.load_state_dict(fast.state_dict())  # the same weights
    return naive.to(device)


def loss_fn(proj: torch.Tensor) -> torch.Tensor:
    from crosspoint.losses import nt_xent

    half = proj.shape[0] // 2
    return nt_xent(proj[:half], proj[half:])


def make_points(b: int, n: int, device, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(b, n, 3, generator=g)
    return (pts / pts.norm(dim=-1, keepdim=True) * (1 + 0.05 * torch.randn(b, n, 1, generator=g))).to(device)


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) so that start-up (imports, kernel compilation)
    does not count; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ----------------------------------------------------------------------------- worker
def worker(args) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = build(args.variant, args.k, device)
    # load kernels / allocator pools with a tiny step, outside the measurement
    model.train()
    loss_fn(model.project(make_points(4, 64, device, 99))).backward()
    model.zero_grad(set_to_none=True)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device) / 2**20
    else:
        reset_peak_rss()
        base = current_rss_mb()
    times = []
    if args.task == "train":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        pts = make_points(args.batch, args.points, device, 1)
        for i in range(args.warmup + args.steps):
            sync(device)
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model.project(pts))
            loss.backward()
            opt.step()
            sync(device)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
    else:
        model.eval()
        pts = make_points(1, args.infer_points, device, 2)
        with torch.no_grad():
            for i in range(args.warmup + args.steps):
                sync(device)
                t0 = time.perf_counter()
                model.embed(pts)
                sync(device)
                if i >= args.warmup:
                    times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20 - base
    else:
        peak = peak_rss_mb() - base
    return {"ms": statistics.median(times) * 1e3, "all_ms": [t * 1e3 for t in times], "peak_mb": peak}


def run_worker(variant: str, task: str, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant, "--task", task, "--device", args.device,
           "--threads", str(args.threads), "--batch", str(args.batch), "--points", str(args.points),
           "--k", str(args.k), "--infer-points", str(args.infer_points),
           "--steps", str(args.steps if task == "train" else args.infer_steps), "--warmup", str(args.warmup)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if args.thp:
        env["THP_MEM_ALLOC_ENABLE"] = "1"
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker {variant}/{task} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- agreement
def check_agreement(args) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    import crosspoint.models.dgcnn as dgcnn_module

    out = {}
    real_knn_rows = dgcnn_module.knn_rows
    recorded = []

    def recording_knn_rows(x, k, **kw):  # remember the fast model's neighbour lists
        idx = real_knn_rows(x, k, **kw)
        b, n, _ = x.shape
        recorded.append(idx.view(b, n, k) - (torch.arange(b, device=idx.device) * n).view(b, 1, 1))
        return idx

    for shared in (True, False):
        fast, naive = build("fast", args.k, device), build("naive", args.k, device)
        recorded.clear()
        if shared:  # the naive side replays them: only the arithmetic differs
            dgcnn_module.knn_rows = recording_knn_rows
            replay = iter(recorded)
            naive.knn_fn = lambda x, k: next(replay)
        pts = make_points(8, 512, device, 3)
        fast.train(), naive.train()
        lf = loss_fn(fast.project(pts))
        dgcnn_module.knn_rows = real_knn_rows
        ln = loss_fn(naive.project(pts))
        lf.backward()
        ln.backward()
        nparams = dict(naive.named_parameters())
        top = max(p.grad.abs().max().item() for p in naive.parameters())
        grad_diff = max((p.grad - nparams[n].grad).abs().max().item() for n, p in fast.named_parameters()) / top
        fast.eval(), naive.eval()
        with torch.no_grad():
            x = make_points(1, args.infer_points, device, 4)
            recorded.clear()
            if shared:
                dgcnn_module.knn_rows = recording_knn_rows
                replay = iter(recorded)
            ef = fast.embed(x)
            dgcnn_module.knn_rows = real_knn_rows
            en = naive.embed(x)
        out["shared_knn" if shared else "own_knn"] = {
            "loss_fast": lf.item(), "loss_naive": ln.item(), "grad_diff_rel_to_max": grad_diff,
            "eval_embed_max_abs_diff": (ef - en).abs().max().item(), "eval_embed_scale": en.abs().max().item()}
    return out


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--points", type=int, default=1024)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--infer-points", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=4, help="measured training steps per subprocess")
    ap.add_argument("--infer-steps", type=int, default=10, help="measured inferences per subprocess")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="subprocesses per variant and task")
    ap.add_argument("--thp", action="store_true", help="run the workers with THP_MEM_ALLOC_ENABLE=1")
    ap.add_argument("--skip-naive-train", action="store_true", help="the naive training step is slow on a CPU")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--worker", choices=["fast", "naive"], help=argparse.SUPPRESS)
    ap.add_argument("--task", choices=["train", "infer"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if args.worker:
        args.variant = args.worker
        print(json.dumps(worker(args)))
        return 0

    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("CUDA requested but not available", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"DGCNN benchmark on {name}; torch {torch.__version__}; THP_MEM_ALLOC_ENABLE={'1' if args.thp else 'unset'}")
    agree = check_agreement(args)
    for key, label in (("shared_knn", "same neighbours"), ("own_knn", "each its own kNN (near-ties may flip)")):
        a = agree[key]
        print(f"agreement, {label}: train loss (B=8, N=512) fast {a['loss_fast']:.6f} vs naive {a['loss_naive']:.6f}; "
              f"max gradient difference {a['grad_diff_rel_to_max']:.1e} of the largest gradient; eval embedding "
              f"(1 x {args.infer_points}) max |diff| {a['eval_embed_max_abs_diff']:.1e} (values up to "
              f"{a['eval_embed_scale']:.2f})")

    results = {"agreement": agree, "config": vars(args)}
    rows = []
    for task in ("train", "infer"):
        for variant in ("naive", "fast"):
            if task == "train" and variant == "naive" and args.skip_naive_train:
                continue
            runs = [run_worker(variant, task, args) for _ in range(args.repeats)]
            med = statistics.median(r["ms"] for r in runs)
            results[f"{task}_{variant}"] = runs
            rows.append((task, variant, med, [round(r["ms"], 1) for r in runs],
                         statistics.median(r["peak_mb"] for r in runs)))
    print(f"\n{'task':6} {'variant':7} {'median ms':>10} {'peak MB':>9}   per-subprocess medians (ms)")
    for task, variant, med, per, mem in rows:
        print(f"{task:6} {variant:7} {med:10.1f} {mem:9.0f}   {per}")
    med = {(t, v): m for t, v, m, _, _ in rows}
    mem = {(t, v): m for t, v, _, _, m in rows}
    for task in ("train", "infer"):
        if (task, "naive") in med:
            print(f"{task}: fast is {med[(task, 'naive')] / med[(task, 'fast')]:.1f}x faster, peak memory "
                  f"{mem[(task, 'fast')]:.0f} MB vs {mem[(task, 'naive')]:.0f} MB "
                  f"({mem[(task, 'naive')] / max(mem[(task, 'fast')], 1e-9):.1f}x less)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
