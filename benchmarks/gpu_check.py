"""One prepared GPU check (issue 13 item 3): parity, speed, analyses, torchrun and the data pipeline, as one table.

    python benchmarks/gpu_check.py                      # CUDA when available: the paper's sizes, <= 8 min on one GPU
    python benchmarks/gpu_check.py --device cpu --quick # small sizes, ~1 min on 2 cores (tests/test_gpu_check.py)
    python benchmarks/gpu_check.py --json out.json      # also write the rows as JSON

Sections (every row says what it measured and against what; ``check`` rows are correctness and
make the exit status 1 when they fail, ``speed`` rows state a goal and whether it was met, except
at ``--quick`` sizes, where one step after one warm-up says nothing about speed):

1. parity - the project's DGCNN (fast EdgeConv) and the reference formulation
   (:mod:`crosspoint.models.naive`: the ``(B, 2C, N, k)`` edge tensor, same weights), each in
   float32 and under bf16 autocast, against a float64 run of the reference formulation: relative
   L2 of the global features and of all parameter gradients of an NT-Xent loss (training mode,
   batch statistics). All runs use the float64 run's neighbour lists, so only the arithmetic
   differs. Pass: the fast model's errors (features; gradients as the median over parameter
   tensors) are within a factor of the reference formulation's in the same precision, plus a
   floor (``PARITY_BOUNDS``; :func:`parity` says why gradients are compared that way).
2. speed - a DGCNN training step (points only, batch of 2 x 20 clouds) and the full CrossPoint
   training step at the paper config (DGCNN k 15 + ResNet-50 at 224 px, batch 20, both NT-Xent
   losses, Adam), fast vs reference formulation, float32 and bf16 autocast; inference latency of
   one 2048-point cloud. Goal: the fast formulation is not slower (within 5 %).
3. analyses - the explorer's ``crosspoint.analysis`` on the device: segmentation (k-means and the
   head), the Grad-CAM point heatmap, the embedding of a few demo objects; on CUDA each result is
   compared with the same call on the CPU.
4. distributed - ``torchrun --nproc_per_node=1 -m crosspoint pretrain`` for 2 steps (tiny settings),
   and a one-rank process group (NCCL on CUDA, gloo on the CPU) running a DDP step of a
   SyncBatchNorm DGCNN plus an all-reduce. (With one process the pretraining engine does not join a
   process group: ``WORLD_SIZE=1``; the second row is what exercises NCCL.)
5. data - the pretraining pipeline at the paper's settings (2048 points, 224 px views, both
   augmentations): ms per sample on one core (today's path vs the old one, from
   benchmarks/bench_pipeline.py), and samples/s of a DataLoader with ``--workers`` workers against
   the GPU's samples/s at the fastest paper-config step. Goal: the loader keeps up.

Pieces come from benchmarks/bench_dgcnn.py (points, loss, reference-style DGCNN for speed),
bench_pretrain.py (the training step), bench_analysis.py (model bundles) and bench_pipeline.py.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import nullcontext
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))


# ----------------------------------------------------------------------------- sizes
FULL = dict(
    parity_b=8, parity_n=2048, k=15, emb=1024,
    dgcnn_b=40, dgcnn_n=2048, train_batch=20, points=2048, image_size=224, image_arch="resnet50",
    warmup=3, steps=10, infer_n=2048, infer_steps=20, analysis_arch="resnet50", n_objects=8,
    loader_batches=40, pipeline_samples=200, repeats=2, quick=False,
)
QUICK = dict(
    parity_b=4, parity_n=128, k=8, emb=64,
    dgcnn_b=4, dgcnn_n=128, train_batch=4, points=128, image_size=32, image_arch="resnet18",
    warmup=1, steps=1, infer_n=512, infer_steps=2, analysis_arch="resnet18", n_objects=2,
    loader_batches=3, pipeline_samples=16, repeats=1, quick=True,
)
ROWS: list[dict] = []


def row(section: str, item: str, result: str, reference: str = "", status: str = "", kind: str = "info", **data):
    r = {"section": section, "item": item, "result": result, "reference": reference, "status": status,
         "kind": kind, "data": data}
    ROWS.append(r)
    print(f"  [{section}] {item}: {result} {('| ' + reference) if reference else ''} {status}", file=sys.stderr,
          flush=True)
    return r


def verdict(met: bool, sz: dict) -> str:
    """A speed row's status; none at the quick sizes (one step after one warm-up on a small model
    says nothing about speed: the first steps on a CPU are several times slower than later ones)."""
    if sz.get("quick"):
        return "n/a (quick)"
    return "goal met" if met else "GOAL MISSED"


def failed(section: str, item: str, exc: BaseException) -> None:
    tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
    row(section, item, f"error: {tb[:160]}", "", "FAIL", "check")
    traceback.print_exc(file=sys.stderr)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (what a section costs on a busy machine)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device, bf16: bool):
    import torch

    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def without_tf32(fn):
    """``fn()`` with TF32 off for matmuls and cuDNN (float32 then means float32 on an Ampere+ GPU)."""
    import torch

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        return fn()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def rel_l2(a, b) -> float:
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


# ----------------------------------------------------------------------------- 1. parity
#: pass bounds of the parity rows: fast error <= RATIO x the reference formulation's + FLOOR
PARITY_BOUNDS = {
    # (features ratio, floor), (gradients ratio, floor)
    "fp32": ((4.0, 1e-6), (4.0, 1e-4)),
    "bf16": ((4.0, 1e-3), (2.0, 0.1)),
}


def parity(device, sz) -> None:
    """Fast DGCNN and the reference formulation, float32 and bf16 autocast, vs the reference in float64.

    Gradients: the NT-Xent loss of bench_dgcnn on the projections, every parameter. Their error is
    summarised by the median over parameter tensors of the per-tensor relative L2 (the global
    relative L2 is shown too): a pooled maximum or a LeakyReLU input that sits at its kink takes a
    different branch in float32 than in float64, which moves one or two tensors' gradients by up to
    1e-3 in either formulation, seed by seed (tests/test_models.py measures it); the median is not
    at the mercy of those. bf16 gradients at this loss are far from float64 in both formulations
    (BatchNorm makes the conv weights' gradients small differences of large terms): the row says
    whether the fast path is as good as the reference's, not that bf16 is accurate."""
    import torch

    import crosspoint.models.dgcnn as dgcnn_module
    from bench_dgcnn import loss_fn, make_points
    from crosspoint.models import DGCNN
    from crosspoint.models.naive import naive_dgcnn, naive_knn

    torch.manual_seed(0)
    model = DGCNN(k=sz["k"], emb_dims=sz["emb"]).to(device).train()
    pts = make_points(sz["parity_b"], sz["parity_n"], device, 7)

    recorded = []

    def record(x, k):
        idx = naive_knn(x, k)
        recorded.append(idx)
        return idx

    ref = copy.deepcopy(model).double()
    feat64, proj64, _ = naive_dgcnn(ref, pts.double(), knn_fn=record)
    loss_fn(proj64).backward()
    g64 = [p.grad for p in ref.parameters()]
    top = max(float(g.norm()) for g in g64)

    def replay_rows(x, k, **_):
        idx = next(replay)
        b, n, _k = idx.shape
        return (idx + (torch.arange(b, device=idx.device) * n).view(b, 1, 1)).view(b * n, _k)

    results = {}
    for bf16 in (False, True):
        for variant in ("fast", "reference"):
            m = copy.deepcopy(model)
            replay = iter(recorded)
            with autocast(device, bf16):
                if variant == "fast":
                    real = dgcnn_module.knn_rows
                    dgcnn_module.knn_rows = replay_rows
                    try:
                        out = m(pts, with_point_features=False)
                    finally:
                        dgcnn_module.knn_rows = real
                    feat, proj = out.feature, out.projection
                else:
                    feat, proj, _ = naive_dgcnn(m, pts, knn_fn=lambda x, k: next(replay))
                loss = loss_fn(proj.float())
            loss.backward()
            grads = [p.grad for p in m.parameters()]
            per = [rel_l2(g, w) for g, w in zip(grads, g64) if float(w.norm()) > 1e-8 * top]  # not the zeros
            whole = rel_l2(torch.cat([g.flatten() for g in grads]), torch.cat([w.flatten() for w in g64]))
            results[(variant, bf16)] = (rel_l2(feat, feat64), statistics.median(per), whole)
    for bf16 in (False, True):
        prec = "bf16" if bf16 else "fp32"
        (fr, ff), (gr, gf) = PARITY_BOUNDS[prec]
        (f_feat, f_med, f_all), (r_feat, r_med, r_all) = results[("fast", bf16)], results[("reference", bf16)]
        ok = f_feat <= fr * r_feat + ff and f_med <= gr * r_med + gf
        row("parity", f"DGCNN {prec} vs float64 ({sz['parity_b']}x{sz['parity_n']}, k={sz['k']})",
            f"fast: features {f_feat:.1e}, gradients {f_med:.1e} (all {f_all:.1e})",
            f"reference formulation: {r_feat:.1e}, {r_med:.1e} ({r_all:.1e})", "PASS" if ok else "FAIL", "check",
            fast_feature=f_feat, fast_grad=f_med, fast_grad_all=f_all, ref_feature=r_feat, ref_grad=r_med,
            ref_grad_all=r_all)


# ----------------------------------------------------------------------------- 2. speed
def dgcnn_times(device, sz, variant: str, bf16: bool, train: bool) -> float:
    """Median ms of a DGCNN training step (Adam, NT-Xent on the projections) or an inference."""
    import torch

    from bench_dgcnn import build, loss_fn, make_points

    model = build("fast" if variant == "fast" else "naive", sz["k"], device)
    if train:
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        pts = make_points(sz["dgcnn_b"], sz["dgcnn_n"], device, 1)
    else:
        model.eval()
        pts = make_points(1, sz["infer_n"], device, 2)
    times = []
    n = sz["warmup"] + (sz["steps"] if train else sz["infer_steps"])
    for i in range(n):
        sync(device)
        t0 = time.perf_counter()
        if train:
            opt.zero_grad(set_to_none=True)
            with autocast(device, bf16):
                loss = loss_fn(model.project(pts).float())
            loss.backward()
            opt.step()
        else:
            with torch.no_grad(), autocast(device, bf16):
                model.embed(pts)
        sync(device)
        if i >= sz["warmup"]:
            times.append(time.perf_counter() - t0)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return statistics.median(times) * 1e3


def paper_config(sz):
    from crosspoint.config import load_config

    return load_config(REPO / "configs" / "paper.yaml", [
        f"data.num_points={sz['points']}", f"data.image_size={sz['image_size']}", f"model.k={sz['k']}",
        f"model.emb_dims={sz['emb']}", f"model.image_encoder={sz['image_arch']}",
        f"optim.batch_size={sz['train_batch']}"])


def paper_step_ms(device, sz, naive: bool, bf16: bool) -> float:
    import torch

    from bench_dgcnn import make_points
    from bench_pretrain import make_step, time_steps

    cfg = paper_config(sz)
    b = cfg.optim.batch_size
    batch = {"points1": make_points(b, cfg.data.num_points, device, 1),
             "points2": make_points(b, cfg.data.num_points, device, 2),
             "image": torch.randn(b, 3, cfg.data.image_size, cfg.data.image_size, device=device)}
    step = make_step(cfg, device, naive=naive, amp_dtype=torch.bfloat16 if bf16 else None)
    times = time_steps(step, lambda: batch, sz["steps"], sz["warmup"])
    del step
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return statistics.median(times) * 1e3


def speed(device, sz) -> dict:
    out = {}
    tag = f"{sz['dgcnn_b']}x{sz['dgcnn_n']}, k={sz['k']}"
    for bf16 in (False, True):
        prec = "bf16" if bf16 else "fp32"
        try:
            fast = dgcnn_times(device, sz, "fast", bf16, True)
            ref = dgcnn_times(device, sz, "reference", bf16, True)
            row("speed", f"DGCNN train step {prec} ({tag})", f"fast {fast:.1f} ms",
                f"reference formulation {ref:.1f} ms ({ref / fast:.1f}x)",
                verdict(fast <= 1.05 * ref, sz), "speed", fast_ms=fast, ref_ms=ref)
        except Exception as exc:
            failed("speed", f"DGCNN train step {prec}", exc)
    cfg = paper_config(sz)
    tag = (f"batch {cfg.optim.batch_size}, {cfg.data.num_points} pts, {cfg.model.image_encoder} "
           f"{cfg.data.image_size} px")
    for bf16 in (False, True):
        prec = "bf16" if bf16 else "fp32"
        try:
            fast = paper_step_ms(device, sz, False, bf16)
            ref = paper_step_ms(device, sz, True, bf16)
            rate = cfg.optim.batch_size / fast * 1e3
            out[prec] = rate
            row("speed", f"paper train step {prec} ({tag})", f"fast {fast:.1f} ms = {rate:.0f} samples/s",
                f"reference formulation {ref:.1f} ms ({ref / fast:.2f}x)",
                verdict(fast <= 1.05 * ref, sz), "speed", fast_ms=fast, ref_ms=ref,
                samples_per_s=rate)
        except Exception as exc:
            failed("speed", f"paper train step {prec}", exc)
    for bf16 in (False, True):
        prec = "bf16" if bf16 else "fp32"
        try:
            fast = dgcnn_times(device, sz, "fast", bf16, False)
            ref = dgcnn_times(device, sz, "reference", bf16, False)
            row("speed", f"inference 1x{sz['infer_n']} {prec}", f"fast {fast:.1f} ms",
                f"reference formulation {ref:.1f} ms ({ref / fast:.1f}x)",
                verdict(fast <= 1.05 * ref, sz), "speed", fast_ms=fast, ref_ms=ref)
        except Exception as exc:
            failed("speed", f"inference 1x{sz['infer_n']} {prec}", exc)
    return out


# ----------------------------------------------------------------------------- 3. analyses
def analyses(device, sz, tmp: Path) -> None:
    import numpy as np

    from bench_analysis import _models
    from crosspoint import analysis as A
    from crosspoint.data.synthetic import CLASSES, demo_object
    from crosspoint.render import render_views

    full, seg = _models(tmp, sz["analysis_arch"])
    obj = demo_object("chair", 0, n_points=2048)
    img = render_views(obj, 1, size=137, seed=0)[0][0]
    objs = [demo_object(CLASSES[i % len(CLASSES)], 0, index=i // len(CLASSES), n_points=2048)
            for i in range(sz["n_objects"])]
    dev = str(device)
    on_gpu = device.type != "cpu"
    sessions = {"dev": (A.ModelSession(full, device=dev), A.ModelSession(seg, device=dev))}
    if on_gpu:
        sessions["cpu"] = (A.ModelSession(full, device="cpu"), A.ModelSession(seg, device="cpu"))

    def timed(fn, repeats=sz["repeats"]):
        best, out = math.inf, None
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t0)
        return best * 1e3, out

    calls = {
        "segment (k-means, 4 parts)": lambda s, g: A.segment(s, obj, k_parts=4).subset_labels,
        "segment (head, category given)": lambda s, g: A.segment(g, obj, category="chair").subset_labels,
        "point_heatmap (Grad-CAM)": lambda s, g: A.point_heatmap(s, obj, img),
        f"embed_clouds ({len(objs)} demo objects)": lambda s, g: A.embed_clouds(s, objs),
    }
    for name, fn in calls.items():
        try:
            ms, got = timed(lambda: fn(*sessions["dev"]))
            got = np.asarray(got)
            if not np.all(np.isfinite(got)):
                row("analyses", name, f"{ms:.0f} ms, non-finite output", "", "FAIL", "check")
                continue
            if not on_gpu:
                row("analyses", f"{name} on {dev}", f"{ms:.0f} ms", "(no CPU comparison on the CPU)", "PASS",
                    "check", ms=ms)
                continue
            ms_cpu, want = timed(lambda: fn(*sessions["cpu"]), 1)
            want = np.asarray(want)
            if name.startswith("segment"):
                agree = A.matched_miou(got, want) if "k-means" in name else float(np.mean(got == want))
                ok, what = agree >= 0.9, f"agreement with the CPU {agree:.3f}"
            elif name.startswith("point_heatmap"):
                agree = float(np.corrcoef(got.ravel(), want.ravel())[0, 1])
                ok, what = agree >= 0.95, f"correlation with the CPU {agree:.4f}"  # cuDNN's TF32 convs
            else:
                agree = rel_l2_np(got, want)
                ok, what = agree <= 1e-2, f"rel. L2 to the CPU {agree:.1e}"  # a kNN near-tie may flip
            row("analyses", f"{name} on {dev}", f"{ms:.0f} ms ({what})", f"CPU {ms_cpu:.0f} ms",
                "PASS" if ok else "FAIL", "check", ms=ms, cpu_ms=ms_cpu, agreement=agree)
        except Exception as exc:
            failed("analyses", name, exc)


def rel_l2_np(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


# ----------------------------------------------------------------------------- 4. distributed
def child_env(threads: int = 1) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def torchrun(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", *args]
    return subprocess.run(cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, cwd=str(REPO))


def distributed(device, sz, tmp: Path, timeout: int) -> None:
    """The two torchrun children run at the same time (they mostly import)."""
    import threading

    from crosspoint.data.synthetic import generate_demo
    from crosspoint.engine.events import read_events

    demo = generate_demo(tmp / "tiny", seed=0, per_class=1, n_views=2, size=32, workers=0)
    out = tmp / "run"
    sets = ["data.num_points=128", "data.image_size=32", "model.k=8", "model.emb_dims=64",
            "model.image_encoder=resnet18", "optim.batch_size=4", "data.workers=0", "run.log_every=1",
            "data.val_fraction=0.25", "run.threads=1", "run.seed=3", f"data.root={demo}", "optim.epochs=1",
            "run.max_steps_per_epoch=2", "run.val_every=0", f"run.device={device.type}"]
    pretrain = ["-m", "crosspoint", "pretrain", "--no-progress", "--config", str(REPO / "configs" / "paper.yaml"),
                "--out", str(out)]
    for s in sets:
        pretrain += ["--set", s]
    probe = [str(Path(__file__).resolve()), "--probe-ddp", "--device", str(device)]
    done: dict = {}

    def launch(key, args):
        t0 = time.perf_counter()
        try:
            done[key] = (torchrun(args, timeout), time.perf_counter() - t0)
        except Exception as exc:  # timeout, no torch.distributed.run...
            done[key] = (exc, time.perf_counter() - t0)

    threads = [threading.Thread(target=launch, args=a) for a in (("pretrain", pretrain), ("probe", probe))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    name = "torchrun --nproc_per_node=1 crosspoint pretrain, 2 steps"
    r, took = done["pretrain"]
    if isinstance(r, Exception):
        failed("distributed", name, r)
    else:
        events = read_events(out) if out.is_dir() else []
        steps = [e for e in events if e.get("event") == "step"]
        start = events[0] if events else {}
        ok = r.returncode == 0 and len(steps) == 2 and start.get("world_size") == 1
        why = "" if ok else f" (exit {r.returncode}; {len(steps)} steps; {r.stdout[-300:]!r})"
        row("distributed", name, f"{'ok' if ok else 'failed'} in {took:.0f} s{why}",
            f"losses {[round(s['loss'], 3) for s in steps]}" if steps else "", "PASS" if ok else "FAIL", "check",
            seconds=took)

    backend = "nccl" if device.type == "cuda" else "gloo"
    name = f"torchrun 1 rank: {backend} group, DDP SyncBN DGCNN step, all_reduce"
    r, took = done["probe"]
    if isinstance(r, Exception):
        failed("distributed", name, r)
    else:
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        res = json.loads(lines[-1]) if lines else {}
        ok = r.returncode == 0 and res.get("ok") is True and res.get("backend") == backend
        why = "" if ok else f" (exit {r.returncode}: {r.stdout[-300:]!r})"
        row("distributed", name, f"{'ok' if ok else 'failed'} in {took:.0f} s{why}",
            f"loss {res['loss']:.4f}" if "loss" in res else "", "PASS" if ok else "FAIL", "check", seconds=took)


def probe_ddp(device_name: str) -> int:
    """Run under torchrun: join a one-rank process group, one DDP step of a SyncBatchNorm DGCNN, an all-reduce."""
    import torch
    import torch.distributed as dist

    from bench_dgcnn import loss_fn, make_points
    from crosspoint.models import DGCNN
    from crosspoint.models.layers import convert_sync_batchnorm

    device = torch.device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    try:
        torch.manual_seed(0)
        model = convert_sync_batchnorm(DGCNN(k=8, emb_dims=64)).to(device).train()
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        loss = loss_fn(ddp(make_points(4, 128, device, 0), with_point_features=False).projection)
        loss.backward()
        t = torch.full((4,), float(dist.get_rank() + 1), device=device)
        dist.all_reduce(t)
        ok = bool(torch.isfinite(loss)) and float(t.sum()) == 4.0 * dist.get_world_size() and all(
            p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters())
        print(json.dumps({"ok": ok, "backend": dist.get_backend(), "loss": float(loss), "world": dist.get_world_size()}))
    finally:
        dist.destroy_process_group()
    return 0


# ----------------------------------------------------------------------------- 5. data
def data_pipeline(device, sz, tmp: Path, workers: int, gpu_rates: dict) -> None:
    import torch

    import bench_pipeline as bp
    from crosspoint.data.transforms import paper_image_augmentation

    root = bp.make_demo(tmp / "pipe", size=224, per_class=2, views=4)
    try:
        ds = bp.open_dataset(root, "drop")
        tv = paper_image_augmentation(ds.image_size)
        n = bp.check_identical(ds, tv, epochs=(0,))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for i in range(len(ds)):
                ds[i]
            m = bp.compare(lambda i: bp.legacy_item(ds, i, tv), ds.__getitem__, len(ds), sz["pipeline_samples"],
                           sz["repeats"], ds.set_epoch)
            old, new = m["old_cpu"], m["new_cpu"]
        finally:
            torch.set_num_threads(threads)
        row("data", "one sample per core (2048 pts, 224 px view, paper augmentations)",
            f"{new:.2f} ms CPU ({n} items identical to the old path)", f"old path {old:.2f} ms ({old / new:.1f}x)",
            verdict(new <= 3.0, sz), "speed", new_ms=new, old_ms=old)
    except Exception as exc:
        failed("data", "one sample per core", exc)
    try:
        rate = bp.loader_rate(root, workers, batches=sz["loader_batches"])
        gpu = max(gpu_rates.values()) if gpu_rates else float("nan")
        ratio = rate / gpu if gpu == gpu and gpu > 0 else float("nan")
        row("data", f"DataLoader, {workers} workers, batch 20", f"{rate:.0f} samples/s",
            f"GPU step {gpu:.0f} samples/s (fastest paper step) -> loader/GPU {ratio:.1f}",
            verdict(ratio >= 1, sz), "speed", samples_per_s=rate, gpu_samples_per_s=gpu)
    except Exception as exc:
        failed("data", f"DataLoader, {workers} workers", exc)


# ----------------------------------------------------------------------------- main
def print_table(header: str) -> None:
    cols = [("section", 11), ("item", 0), ("result", 0), ("reference / baseline", 0), ("status", 11)]
    w_item = max(len(r["item"]) for r in ROWS)
    w_res = max(len(r["result"]) for r in ROWS)
    w_ref = max(len(r["reference"]) for r in ROWS)
    widths = [11, w_item, w_res, w_ref, 11]
    print(header)
    line = "  ".join(f"{name:<{w}}" for (name, _), w in zip(cols, widths))
    print(line)
    print("-" * len(line))
    for r in ROWS:
        print("  ".join(f"{v:<{w}}" for v, w in zip(
            (r["section"], r["item"], r["result"], r["reference"], r["status"]), widths)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    ap.add_argument("--quick", action="store_true", help="small sizes (the CPU test)")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default 8, 2 with --quick)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("--timeout", type=int, default=240, help="seconds allowed to each torchrun child")
    ap.add_argument("--skip", action="append", default=[],
                    choices=["parity", "speed", "analyses", "distributed", "data"], help="leave a section out")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--probe-ddp", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import torch

    if args.probe_ddp:
        return probe_ddp(args.device or "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            print("CUDA requested but not available", file=sys.stderr)
            return 2
        device = torch.device("cuda", torch.cuda.current_device() if device.index is None else device.index)
        torch.cuda.set_device(device)
    sz = QUICK if args.quick else FULL
    workers = args.workers if args.workers is not None else (2 if args.quick else 8)
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    t_all = time.perf_counter()
    times, cpu = {}, {}
    gpu_rates: dict = {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        tmp = Path(tmp)
        sections = [
            ("parity", lambda: without_tf32(lambda: parity(device, sz))),
            ("speed", lambda: gpu_rates.update(speed(device, sz))),
            ("analyses", lambda: analyses(device, sz, tmp)),
            ("distributed", lambda: distributed(device, sz, tmp, args.timeout)),
            ("data", lambda: data_pipeline(device, sz, tmp, workers, gpu_rates)),
        ]
        for sec, fn in sections:
            if sec in args.skip:
                continue
            t0, c0 = time.perf_counter(), cpu_seconds()
            print(f"{sec} ...", file=sys.stderr, flush=True)
            try:
                fn()
            except Exception as exc:
                failed(sec, f"{sec} section", exc)
            times[sec] = time.perf_counter() - t0
            cpu[sec] = cpu_seconds() - c0
    total = time.perf_counter() - t_all
    tf32 = (f"TF32 matmul {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}, cuDNN "
            f"{'on' if torch.backends.cudnn.allow_tf32 else 'off'} (off in the parity rows); " if device.type == "cuda" else "")
    header = (f"gpu_check on {device} ({what}); torch {torch.__version__}; {tf32}"
              f"{'quick sizes' if args.quick else 'paper sizes'}; {total:.0f} s "
              f"({', '.join(f'{k} {v:.0f} s' for k, v in times.items())})")
    print_table(header)
    failures = [r for r in ROWS if r["kind"] == "check" and r["status"] != "PASS"]
    missed = [r for r in ROWS if r["kind"] == "speed" and r["status"] == "GOAL MISSED"]
    print(f"\n{len(ROWS)} rows: {len(failures)} check(s) failed, {len(missed)} speed goal(s) missed")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(device), "device_name": what, "quick": args.quick,
                                               "seconds": total, "section_seconds": times,
                                               "section_cpu_seconds": cpu, "rows": ROWS}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
