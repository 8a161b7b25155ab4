"""Pretraining throughput (objects/s) of ``configs/cpu-demo.yaml`` on the demo dataset.

    python benchmarks/bench_pretrain.py [--steps 6] [--config configs/cpu-demo.yaml] [--device auto]
    python benchmarks/bench_pretrain.py --config configs/cpu-demo-hard.yaml   # with the dense term

Measures full CrossPoint training steps (data loading, both point views through DGCNN, the image
through the ResNet, both NT-Xent losses, backward, Adam) with the project's DGCNN and, as the
baseline in the same run, with the reference's formulation of DGCNN (``crosspoint.models.naive``:
the (B, 2C, N, k) edge tensor and a conv on every edge; same weights). Also prints the projected
time of the whole cpu-demo run. With ``--config configs/paper.yaml --device cuda`` it measures
the paper setup on a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _naive_encoder(pe):
    """``pe`` run in the reference's formulation (``crosspoint.models.naive``), as a point encoder that
    :class:`~crosspoint.models.CrossPointModel` can hold (same parameters)."""
    import torch.nn as nn

    from crosspoint.models.base import EncoderOutput, as_points
    from crosspoint.models.naive import naive_dgcnn

    class Naive(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = pe

        def forward(self, points, *, with_point_features: bool = True):
            feat, proj, pmap = naive_dgcnn(self.inner, as_points(points, next(pe.parameters())))
            return EncoderOutput(feat, proj, pmap if with_point_features else None)

        def project(self, points):
            return self.forward(points, with_point_features=False).projection

    return Naive()


def make_step(cfg, device, *, naive: bool = False, amp_dtype=None, seed: int = 0):
    """A CrossPoint training step at ``cfg``'s model and optimiser settings, as a function of a batch
    (``{"points1", "points2", "image"}`` tensors): both point views through DGCNN (the project's, or
    with ``naive`` the reference's formulation, ``crosspoint.models.naive``, same weights), the image
    through the image encoder, both NT-Xent losses, backward, optimiser step; under autocast to
    ``amp_dtype`` when given. Returns ``step(batch) -> loss`` (synchronised on CUDA).

    With ``cfg.loss.dense_weight > 0`` the step is the trainer's with the dense point-pixel term
    (:class:`~crosspoint.models.CrossPointModel` with dense heads; batches from
    :class:`~crosspoint.data.dense.DenseItems`), the point map taken from the same formulation."""
    import torch

    from crosspoint.engine.pretrain import build_models, build_optimizer
    from crosspoint.losses import crosspoint_loss
    from crosspoint.models.naive import naive_dgcnn

    torch.manual_seed(seed)
    pe, ie = build_models(cfg)
    pe.to(device).train()
    ie.to(device).train()
    autocast = (torch.autocast(device_type=device.type, dtype=amp_dtype) if amp_dtype is not None
                else contextlib.nullcontext())
    params = list(pe.parameters()) + list(ie.parameters())
    if cfg.loss.dense_weight > 0:
        from crosspoint.models import CrossPointModel
        from crosspoint.models.dense import DenseHeads

        heads = DenseHeads(pe.point_feature_dim, cfg.model.image_encoder, cfg.model.dense_dim)
        model = CrossPointModel(_naive_encoder(pe) if naive else pe, ie, temperature=cfg.loss.temperature,
                                dense_heads=heads, dense_temperature=cfg.loss.dense_temperature).to(device).train()
        params += list(heads.parameters())

        def loss_of(batch):
            dense = {"idx": batch["dense_idx"], "uv": batch["dense_uv"].to(device, torch.float32),
                     "valid": batch["dense_valid"], "valid2": batch.get("dense_valid2")}
            out = model(batch["points1"].to(device), batch["points2"].to(device), batch["image"].to(device), dense)
            return out["intra_loss"] + out["cross_loss"] + cfg.loss.dense_weight * out["dense_loss"]
    else:
        def loss_of(batch):
            p = torch.cat([batch["points1"], batch["points2"]]).to(device, non_blocking=True)
            img = batch["image"].to(device, non_blocking=True)
            proj = naive_dgcnn(pe, p)[1] if naive else pe.project(p)
            b = batch["points1"].shape[0]
            return crosspoint_loss(proj[:b], proj[b:], ie.project(img), cfg.loss.temperature)[0]
    opt, _ = build_optimizer(cfg, params)

    def step(batch) -> float:
        with autocast:
            total = loss_of(batch)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return float(total.detach())

    return step


def time_steps(step, batches, steps: int, warmup: int = 1) -> list[float]:
    """Seconds of each of ``steps`` calls of ``step`` after ``warmup`` untimed ones; ``batches`` an
    iterator (cycled when it runs out, e.g. a DataLoader's) or a callable returning a batch."""
    times = []
    it = None
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        if callable(batches):
            batch = batches()
        else:
            if it is None:
                it = iter(batches)
            try:
                batch = next(it)
            except StopIteration:
                it = iter(batches)
                batch = next(it)
        step(batch)
        if i >= warmup:  # the first steps warm up caches and compile kernels
            times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    import torch

    from crosspoint.config import load_config
    from crosspoint.data.shapenet_render import ShapeNetRenderDataset
    from crosspoint.data.synthetic import ensure_demo
    from crosspoint.engine.runtime import setup_runtime

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
    from crosspoint.engine.pretrain import training_items

    ds = training_items(cfg, ds)  # the trainer's items: with the dense term, its points and their pixels
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.optim.batch_size, shuffle=True, drop_last=True,
                                         num_workers=cfg.data.workers)

    def run(naive: bool) -> list[float]:
        return time_steps(make_step(cfg, rt.device, naive=naive, amp_dtype=rt.amp_dtype), loader, args.steps)

    bs = cfg.optim.batch_size
    ours = run(False)
    med = statistics.median(ours)
    print(f"{cfg.name}: batch {bs} ({cfg.data.num_points} points, {cfg.model.image_encoder} at "
          f"{cfg.data.image_size} px, k={cfg.model.k}"
          + (f", the dense term on {cfg.loss.dense_points} points" if cfg.loss.dense_weight > 0 else "")
          + f") on {rt.device}, median of {len(ours)} steps")
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
