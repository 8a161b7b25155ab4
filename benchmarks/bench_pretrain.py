"""Pretraining throughput (objects/s) of ``configs/cpu-demo.yaml`` on the demo dataset.

    python benchmarks/bench_pretrain.py [--steps 6] [--config configs/cpu-demo.yaml] [--device auto]

Measures full CrossPoint training steps (data loading, both point views through DGCNN, the image
through the ResNet, both NT-Xent losses, backward, Adam) with the project's DGCNN and, as the
baseline in the same run, with the reference's formulation of DGCNN (``crosspoint.models.naive``:
the (B, 2C, N, k) edge tensor and a conv on every edge; same weights). Also prints the projected
time of the whole cpu-demo run. With ``--config configs/paper.yaml --device cuda`` it measures
the paper setup on a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    import torch

    from crosspoint.config import load_config
    from crosspoint.data.shapenet_render import ShapeNetRenderDataset
    from crosspoint.data.synthetic import ensure_demo
    from crosspoint.engine.pretrain import build_models, build_optimizer
    from crosspoint.engine.runtime import setup_runtime
    from crosspoint.losses import crosspoint_loss
    from crosspoint.models.naive import naive_dgcnn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "configs" / "cpu-demo.yaml"))
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data", default=None, help="dataset root (default: the demo)")
    ap.add_argument("--no-naive", action="store_true", help="skip the reference-formulation baseline")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    rt = setup_runtime(args.device, cfg.run.amp, cfg.run.threads)
    root = args.data or (ensure_demo() if cfg.data.root == "demo" else cfg.data.root)
    ds = ShapeNetRenderDataset(root, cfg.data.num_points, cfg.data.image_size, split="train",
                               val_fraction=cfg.data.val_fraction, seed=cfg.run.seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.optim.batch_size, shuffle=True, drop_last=True,
                                         num_workers=cfg.data.workers)

    def run(naive: bool) -> list[float]:
        torch.manual_seed(0)
        pe, ie = build_models(cfg)
        pe.to(rt.device).train()
        ie.to(rt.device).train()
        opt, _ = build_optimizer(cfg, list(pe.parameters()) + list(ie.parameters()))
        times = []
        it = iter(loader)
        for step in range(args.steps + 1):
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                it = iter(loader)
                batch = next(it)
            p = torch.cat([batch["points1"], batch["points2"]]).to(rt.device)
            img = batch["image"].to(rt.device)
            with rt.autocast():
                proj = naive_dgcnn(pe, p)[1] if naive else pe.project(p)
                b = batch["points1"].shape[0]
                total, _, _ = crosspoint_loss(proj[:b], proj[b:], ie.project(img), cfg.loss.temperature)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            if rt.device.type == "cuda":
                torch.cuda.synchronize()
            if step > 0:  # the first step warms up caches and compiles kernels
                times.append(time.perf_counter() - t0)
        return times

    bs = cfg.optim.batch_size
    ours = run(False)
    med = statistics.median(ours)
    print(f"{cfg.name}: batch {bs} ({cfg.data.num_points} points, {cfg.model.image_encoder} at "
          f"{cfg.data.image_size} px, k={cfg.model.k}) on {rt.device}, median of {len(ours)} steps")
    print(f"  ours:  {med:.2f} s/step, {bs / med:.1f} objects/s")
    if not args.no_naive:
        base = statistics.median(run(True))
        print(f"  reference formulation of DGCNN (same run): {base:.2f} s/step, {bs / base:.1f} objects/s "
              f"-> ours {base / med:.1f}x faster end to end")
    steps_per_epoch = len(ds) // bs
    total = steps_per_epoch * cfg.optim.epochs * med
    print(f"  projected: {steps_per_epoch} steps/epoch x {cfg.optim.epochs} epochs = {total / 60:.1f} min "
          "(plus validation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
