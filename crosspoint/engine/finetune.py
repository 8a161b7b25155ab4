"""Part-segmentation fine-tuning: the loop behind ``crosspoint finetune-partseg``.

The reference's setup (``train_partseg.py`` as ``scripts/script.sh`` runs it), kept:

* model: ``DGCNN_partseg`` (:class:`~crosspoint.models.PartSegmenter`) with ``k = 40``, 2048
  points, dropout 0.5, initialised from a CrossPoint ``dgcnn_seg`` pretraining checkpoint (the
  official file or ours); the fine-tuning head (``conv7`` .. ``conv11``) is new;
* SGD, lr ``0.1`` (the script's ``0.001 * 100``), momentum 0.9, weight decay 1e-4, cosine
  annealing over the epochs to ``eta_min = 1e-3``, stepped after every epoch; 300 epochs, batch 8;
* loss: cross-entropy with the reference's label smoothing (``eps = 0.2``: the true part gets
  ``1 - eps``, every other part ``eps / (parts - 1)``), over *all* part logits;
* augmentation: none but a random permutation of the point order (``augment="shuffle"``; the
  reference defines DGCNN's scale-and-shift ``translate_pointcloud`` but does not call it, which
  ``augment="scale_shift"`` enables).

Changed, on purpose:

* the reference trains on ``trainval`` and keeps the epoch with the best **test** mIoU. Here the
  model is trained on ``train``, the ``best`` checkpoint is selected on ``val`` (instance mIoU by
  default, ``select="class_miou"`` otherwise) and the test split is evaluated once, at the end,
  on the selected checkpoint (``results.json``). ``train_split="trainval"`` with
  ``val_split="none"`` trains on train+val and keeps the last epoch, for a test-free final model;
* the device is chosen (``device``), never hard-coded (the reference used ``cuda:1``);
* the pretrained weights are loaded strictly (every backbone tensor must match; the reference
  used ``strict=False``, which silently trains from scratch when the names differ), and the run
  logs what is new;
* test-time mIoU uses the arg-max over the category's own parts (see
  :mod:`crosspoint.evaluation.partseg`), the reference's all-part arg-max is reported too.

The light variant (``arch="dgcnn"``): a :class:`~crosspoint.evaluation.partseg.ClsPartSegmenter`,
the same head on a *classification* DGCNN's per-point features, with the encoder ``frozen`` (only
the head trains; the demo uses this to give a pretrained checkpoint a segmentation head measured on
the demo's parts) or fine-tuned. With a frozen encoder the init checkpoint's image encoder is
copied into the output checkpoints, so one file carries the whole demo model.

A run folder holds ``config.yaml``, ``events.jsonl`` (:mod:`crosspoint.engine.events`: ``start``,
``step``, ``epoch``, ``validation``, ``checkpoint``, ``stopped``, ``end``, ``error``; the
validation event's ``val_acc`` is the selection metric), ``checkpoints/last.pt`` (every epoch),
``checkpoints/best.pt`` and ``results.json``. Checkpoints are model bundles
(:mod:`crosspoint.models.checkpoint`) plus training state, written atomically; their ``meta``
holds the part table and the metrics. :func:`crosspoint.evaluation.partseg.load_segmenter` opens
both kinds; :func:`crosspoint.models.load_part_segmenter` opens the ``dgcnn_partseg`` ones.

SIGINT/SIGTERM stop after the current step: ``last.pt`` is written, the test split is evaluated
on ``best.pt`` when there is one, and the run ends with a ``stopped`` event. There is no resume.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from crosspoint.engine.checkpoint import atomic_torch_save, atomic_write_text, clean_stale_temp_files
from crosspoint.engine.events import EventWriter

log = logging.getLogger(__name__)

__all__ = ["FinetuneConfig", "FinetuneError", "finetune_partseg", "smoothed_cross_entropy", "build_segmenter",
           "open_partseg_dataset"]

ARCHS = ("auto", "dgcnn_partseg", "dgcnn")
BACKBONE_MODES = ("finetune", "frozen")
AUGMENTS = ("shuffle", "none", "scale_shift")
SELECT = ("instance_miou", "class_miou")


class FinetuneError(RuntimeError):
    """A run that cannot start (bad data, checkpoint or settings)."""


@dataclass
class FinetuneConfig:
    #: dataset folder (ShapeNetPart HDF5 or txt release, or a demo dataset) or "demo"
    data: str = "demo"
    #: pretrained checkpoint (official CrossPoint file or ours), or "random" (the no-pretraining baseline)
    init: str = "random"
    #: "auto" (from the init checkpoint; "dgcnn_partseg" for random), "dgcnn_partseg" or "dgcnn" (light variant)
    arch: str = "auto"
    #: "finetune" (train everything, the reference) or "frozen" (train the head only)
    backbone: str = "finetune"
    #: kNN size; 0 = auto (40 for dgcnn_partseg as the reference fine-tunes; the checkpoint's for dgcnn)
    k: int = 0
    num_points: int = 2048
    dropout: float = 0.5
    epochs: int = 300
    batch_size: int = 8
    eval_batch_size: int = 8
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    eta_min: float = 1e-3
    label_smoothing: float = 0.2
    augment: str = "shuffle"
    train_split: str = "train"
    #: split that selects ``best`` ("none": keep the last epoch)
    val_split: str = "val"
    #: split evaluated once at the end ("none": skip)
    test_split: str = "test"
    select: str = "instance_miou"
    val_every: int = 1
    seed: int = 1
    device: str = "auto"
    amp: str = "auto"
    workers: int = 0
    threads: int = 0
    log_every: int = 10
    #: stop each epoch after this many steps (0 = full epochs); smoke tests
    max_steps_per_epoch: int = 0
    #: cap on the validation/test objects (0 = all); smoke tests
    max_eval_objects: int = 0
    name: str = "partseg"


def validate_config(cfg: FinetuneConfig) -> None:
    checks = [
        (cfg.arch in ARCHS, f"arch must be one of {', '.join(ARCHS)}"),
        (cfg.backbone in BACKBONE_MODES, f"backbone must be one of {', '.join(BACKBONE_MODES)}"),
        (cfg.augment in AUGMENTS, f"augment must be one of {', '.join(AUGMENTS)}"),
        (cfg.select in SELECT, f"select must be one of {', '.join(SELECT)}"),
        (cfg.optimizer in ("sgd", "adam"), "optimizer must be sgd or adam"),
        (cfg.train_split in ("train", "trainval"), "train_split must be train or trainval"),
        (cfg.val_split in ("val", "none"), "val_split must be val or none (never the test split)"),
        (cfg.test_split in ("test", "none"), "test_split must be test or none"),
        (cfg.epochs >= 1, "epochs must be >= 1"),
        (cfg.batch_size >= 2, "batch_size must be >= 2 (BatchNorm)"),
        (cfg.eval_batch_size >= 1, "eval_batch_size must be >= 1"),
        (cfg.lr > 0, "lr must be > 0"),
        (0 <= cfg.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
        (cfg.num_points >= 16, "num_points must be >= 16"),
        (cfg.k >= 0, "k must be >= 0 (0 = auto)"),
        (cfg.k <= cfg.num_points, "k must not exceed num_points"),
        (cfg.log_every >= 1, "log_every must be >= 1"),
        (cfg.val_every >= 1, "val_every must be >= 1"),
    ]
    for ok, msg in checks:
        if not ok:
            raise FinetuneError(msg)
    if cfg.train_split == "trainval" and cfg.val_split == "val":
        raise FinetuneError("train_split=trainval trains on the validation split: set val_split=none")


def config_from_dict(data: dict) -> FinetuneConfig:
    from crosspoint.config import ConfigError, from_dict

    try:
        cfg = from_dict(data, FinetuneConfig)
    except ConfigError as exc:
        raise FinetuneError(str(exc)) from None
    validate_config(cfg)
    return cfg


# ------------------------------------------------------------------------------ pieces
def smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, eps: float = 0.2) -> torch.Tensor:
    """The reference's ``cal_loss``: cross-entropy against ``1 - eps`` on the true class and
    ``eps / (classes - 1)`` on every other class, averaged over rows. ``eps = 0``: plain CE."""
    logits = logits.reshape(-1, logits.shape[-1]).float()
    target = target.reshape(-1).long()
    if eps <= 0:
        return F.cross_entropy(logits, target)
    n = logits.shape[1]
    logp = F.log_softmax(logits, dim=1)
    true = logp.gather(1, target[:, None]).squeeze(1)
    other = logp.sum(dim=1) - true
    return -((1.0 - eps) * true + eps / (n - 1) * other).mean()


def open_partseg_dataset(root, split: str, num_points: int, seed: int = 0):
    """The part-segmentation dataset of ``root`` (ShapeNetPart HDF5, the txt release or a demo)."""
    from crosspoint.data.layouts import detect_layout

    layout = detect_layout(root, task="partseg")
    if layout.name == "shapenetpart_h5":
        from crosspoint.data.h5data import ShapeNetPartH5

        return ShapeNetPartH5(layout.root, split=split, num_points=num_points)
    from crosspoint.data.partseg import ShapeNetPartTxt

    root = layout.details.get("part_root", layout.root) if layout.name == "crosspoint_demo" else layout.root
    return ShapeNetPartTxt(root, split=split, num_points=num_points, seed=seed, sampling="random")


def resolve_data(root: str) -> Path:
    if root == "demo":
        from crosspoint.data.synthetic import ensure_demo

        return Path(ensure_demo())
    p = Path(root).expanduser()
    if not p.exists():
        raise FinetuneError(f"{root}: no such folder")
    return p


def _read_bundle(path):
    from crosspoint.models import read_checkpoint

    obj = read_checkpoint(path)
    return obj if isinstance(obj, dict) and obj.get("format") == "crosspoint-explorer" else None


def build_segmenter(cfg: FinetuneConfig, table, *, seed: int = 0) -> tuple[nn.Module, dict]:
    """The model to fine-tune and a report ``{"arch", "init", "loaded", "new", "k"}``."""
    from crosspoint.evaluation.partseg import ClsPartSegmenter
    from crosspoint.models import CheckpointError, PartSegHead, PartSegmenter, build_point_encoder, load_point_encoder

    frozen = cfg.backbone == "frozen"
    report = {"init": cfg.init, "loaded": [], "new": []}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if cfg.init == "random":
            arch = "dgcnn_partseg" if cfg.arch == "auto" else cfg.arch
            k = cfg.k or (40 if arch == "dgcnn_partseg" else 20)
            backbone = build_point_encoder(arch, k=k)
            report["new"].append(f"{arch} backbone (random, seed {seed})")
        else:
            backbone = load_point_encoder(cfg.init, k=cfg.k or None)
            arch = backbone.arch
            if cfg.arch != "auto" and cfg.arch != arch:
                raise FinetuneError(f"{cfg.init}: holds a {arch} encoder, but arch={cfg.arch} was asked for")
            if arch == "pointnet":
                raise FinetuneError(f"{cfg.init}: a PointNet encoder; part segmentation needs a DGCNN backbone")
            if arch == "dgcnn_partseg" and not cfg.k:
                backbone.k = 40
            n = len(backbone.state_dict())
            report["loaded"].append(f"{arch} backbone ({n} tensors, strict)")
        local = backbone.edge_feature_dim
        glob = backbone.feature_dim
        head = PartSegHead(num_parts=int(table.num_parts), num_categories=int(table.num_categories), emb_dims=glob,
                           local_dims=local, dropout=cfg.dropout)
    head_note = f"seg head {head.num_categories} categories -> {head.num_parts} parts (random)"
    if cfg.init != "random":  # a fine-tuned file: take its head when it fits
        from crosspoint.evaluation.partseg import load_segmenter

        try:
            prev = load_segmenter(cfg.init, k=backbone.k)
        except CheckpointError:
            prev = None
        if prev is not None:
            try:
                head.load_state_dict(prev.head.state_dict(), strict=True)
                head_note = None
                report["loaded"].append("seg head (from the init checkpoint)")
            except RuntimeError:
                log.warning("%s: its seg head does not fit this dataset's %d parts; starting a new head",
                            cfg.init, head.num_parts)
    if head_note:
        report["new"].append(head_note)
    model = ClsPartSegmenter(backbone, head, frozen=frozen) if arch == "dgcnn" else PartSegmenter(backbone, head)
    if frozen:
        for p in model.backbone.parameters():
            p.requires_grad_(False)
    report["arch"], report["k"] = arch, int(backbone.k)
    return model, report


def _augment(pts: np.ndarray, lab: np.ndarray, mode: str, rng: np.random.Generator):
    if mode == "none":
        return pts, lab
    perm = rng.permutation(pts.shape[0])
    pts, lab = pts[perm], lab[perm]
    if mode == "scale_shift":
        scale = rng.uniform(2.0 / 3.0, 1.5, size=3).astype(np.float32)
        shift = rng.uniform(-0.2, 0.2, size=3).astype(np.float32)
        pts = pts * scale + shift
    return pts, lab


class _TrainItems(torch.utils.data.Dataset):
    """Items ``(points, category, labels)`` with the run's augmentation, seeded by (seed, epoch, i)."""

    def __init__(self, ds, mode: str, seed: int):
        self.ds, self.mode, self.seed, self.epoch = ds, mode, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.ds, "set_epoch"):
            self.ds.set_epoch(epoch)

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        from crosspoint.data.transforms import item_rng

        pts, cat, lab = self.ds[i]
        rng = item_rng(self.seed + 7919, self.epoch, i)
        pts, lab = _augment(np.asarray(pts, np.float32)[:, :3], np.asarray(lab, np.int64), self.mode, rng)
        return torch.from_numpy(np.ascontiguousarray(pts)), int(cat), torch.from_numpy(np.ascontiguousarray(lab))


class _Subset:
    def __init__(self, ds, n: int):
        self.ds, self.n = ds, min(n, len(ds))
        self.table = getattr(ds, "table", None)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.ds[i]


def _bundle(model, meta: dict, extra: dict, image_entry) -> dict:
    from crosspoint.models import model_bundle

    obj = model_bundle(part_segmenter=model, meta=meta)
    if image_entry is not None:
        obj["image_encoder"] = image_entry
    for k, v in extra.items():
        obj[k] = v
    return obj


def _metric_summary(m: dict) -> dict:
    keys = ("instance_miou", "class_miou", "point_acc", "instance_miou_unrestricted", "class_miou_unrestricted", "shapes")
    return {k: m[k] for k in keys if k in m}


# ------------------------------------------------------------------------------ the run
def finetune_partseg(cfg: FinetuneConfig, out_dir, *, progress_bar: bool = False) -> dict:
    """Run one fine-tuning into ``out_dir`` (see the module docstring). Returns ``results.json``'s
    content. Raises :class:`FinetuneError` / ``DatasetError`` / ``CheckpointError`` for bad input."""
    validate_config(cfg)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise FinetuneError("finetune-partseg runs in one process (no torchrun); it takes a few GPU hours")
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    if out.exists() and not out.is_dir():
        raise FinetuneError(f"--out {out}: is a file, not a folder")
    if any(ckpt_dir.glob("*.pt")):
        raise FinetuneError(f"{out}: already holds a run; choose a new folder")
    from crosspoint.engine.runlock import RunLock

    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FinetuneError(f"--out {out}: cannot create the run folder ({exc.strerror or exc})") from None
    try:
        with RunLock(out):  # one process owns the folder for the run's life
            return _finetune_locked(cfg, out, ckpt_dir, progress_bar)
    except BaseException:
        # a run that could not start leaves no folder behind (only the lock file was written)
        if created and {p.name for p in out.iterdir()} <= {".lock"}:
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        raise


def _finetune_locked(cfg: FinetuneConfig, out: Path, ckpt_dir: Path, progress_bar: bool) -> dict:
    from crosspoint.config import dump_config
    from crosspoint.data.transforms import SeededEpochSampler
    from crosspoint.engine.runtime import StopFlag, resolve_amp
    from crosspoint.evaluation.partseg import evaluate_segmenter, part_table_to_meta

    if (out / "events.jsonl").exists():  # a run that failed before its first checkpoint: start afresh
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for name in ("events.jsonl", "log.txt", "config.yaml"):
            if (out / name).is_file():
                (out / name).rename(out / f"{name}.failed-{stamp}")
        log.warning("%s held a run that stopped before its first checkpoint; starting afresh", out)
    from crosspoint.device import resolve_device

    try:
        device = resolve_device(cfg.device)
    except ValueError as exc:
        raise FinetuneError(str(exc)) from None
    amp_dtype = resolve_amp(cfg.amp, device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)

    # data and model first: a run that cannot start leaves no folder behind
    root = resolve_data(cfg.data)
    train_ds = open_partseg_dataset(root, cfg.train_split, cfg.num_points, cfg.seed)
    table = train_ds.table
    val_ds = None if cfg.val_split == "none" else open_partseg_dataset(root, cfg.val_split, cfg.num_points, cfg.seed)
    if cfg.max_eval_objects and val_ds is not None:
        val_ds = _Subset(val_ds, cfg.max_eval_objects)
    if len(train_ds) < cfg.batch_size:
        raise FinetuneError(f"{root}: {len(train_ds)} training objects, fewer than one batch ({cfg.batch_size})")
    model, report = build_segmenter(cfg, table, seed=cfg.seed)
    model.to(device)
    for line in report["loaded"]:
        log.info("loaded: %s", line)
    for line in report["new"]:
        log.info("new: %s", line)
    image_entry = None
    if cfg.backbone == "frozen" and cfg.init != "random":
        b = _read_bundle(cfg.init)
        image_entry = b.get("image_encoder") if b else None

    ckpt_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temp_files(ckpt_dir)
    atomic_write_text(out / "config.yaml", dump_config(cfg))

    torch.manual_seed(cfg.seed)  # dropout draws from the global generator
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs, eta_min=cfg.eta_min)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

    items = _TrainItems(train_ds, cfg.augment, cfg.seed)
    sampler = SeededEpochSampler(len(items), cfg.seed)
    from crosspoint.engine.pretrain import quiet_worker_init

    loader = torch.utils.data.DataLoader(items, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                                         num_workers=cfg.workers, pin_memory=device.type == "cuda",
                                         worker_init_fn=quiet_worker_init)
    steps_per_epoch = len(loader) if not cfg.max_steps_per_epoch else min(len(loader), cfg.max_steps_per_epoch)
    total_steps = steps_per_epoch * cfg.epochs

    table_meta = part_table_to_meta(table)
    base_meta = {"task": "partseg", "part_table": table_meta, "init": str(cfg.init), "backbone_mode": cfg.backbone,
                 "dataset": str(root), "train_split": cfg.train_split}
    if image_entry is not None:  # the copied image encoder keeps the view background it was trained with
        from crosspoint.models import checkpoint_background

        base_meta["background"] = checkpoint_background(cfg.init)[0]
    cfg_dict = dataclasses.asdict(cfg)
    writer = EventWriter(out)
    stop = StopFlag().install()
    t_start = time.time()
    best, best_epoch, step, history = -1.0, -1, 0, []
    reason = None
    writer.emit("start", name=cfg.name, config=cfg_dict, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch,
                world_size=1, device=str(device), resumed_from=None, start_epoch=0, loaded=report["loaded"],
                new=report["new"], arch=report["arch"], k=report["k"], train_objects=len(train_ds),
                val_objects=0 if val_ds is None else len(val_ds), part_table=table_meta)

    def state(epoch_done: int) -> dict:
        return {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "epoch": epoch_done, "step": step,
                "step_in_epoch": 0, "config": cfg_dict, "best_acc": best, "history": history}

    def save(kind: str, epoch_done: int, meta_extra: dict) -> Path:
        path = ckpt_dir / f"{kind}.pt"
        obj = _bundle(model, {**base_meta, "epoch": epoch_done, **meta_extra}, state(epoch_done), image_entry)
        atomic_torch_save(obj, path)
        writer.emit("checkpoint", epoch=epoch_done - 1, step=step, path=str(path), kind=kind)
        return path

    bar = None
    if progress_bar:
        try:
            from tqdm import tqdm

            bar = tqdm(total=total_steps, unit="step", desc="finetune-partseg", disable=None)
        except ImportError:  # pragma: no cover
            bar = None
    try:
        t_steps = time.time()
        for epoch in range(cfg.epochs):
            items.set_epoch(epoch)
            sampler.set_epoch(epoch)
            model.train()
            t_epoch = time.time()
            losses, n_seen = [], 0
            for i, (pts, cat, lab) in enumerate(loader):
                if cfg.max_steps_per_epoch and i >= cfg.max_steps_per_epoch:
                    break
                pts = pts.to(device, non_blocking=True)
                cat = cat.to(device, non_blocking=True)
                lab = lab.to(device, non_blocking=True)
                opt.zero_grad(set_to_none=True)
                ctx = torch.autocast(device_type=device.type, dtype=amp_dtype) if amp_dtype is not None else _null()
                with ctx:
                    logits = model(pts, cat)
                loss = smoothed_cross_entropy(logits, lab, cfg.label_smoothing)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite loss at epoch {epoch}, step {step}; lower the learning rate")
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    opt.step()
                step += 1
                n_seen += pts.shape[0]
                losses.append(float(loss.detach()))
                if bar is not None:
                    bar.update(1)
                if step % cfg.log_every == 0 or step == 1:
                    el = time.time() - t_steps
                    rate = step * cfg.batch_size / max(el, 1e-9)
                    writer.emit("step", epoch=epoch, step=step, loss=losses[-1], lr=opt.param_groups[0]["lr"],
                                samples_per_s=rate, eta_s=(total_steps - step) * el / step, progress=step / total_steps)
                if stop.requested:
                    break
            sched.step()
            ep = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else float("nan"),
                  "lr": opt.param_groups[0]["lr"], "seconds": time.time() - t_epoch}
            writer.emit("epoch", step=step, **ep)
            log.info("epoch %d/%d: loss %.4f, lr %.4g (%.1f s)", epoch + 1, cfg.epochs, ep["loss"], ep["lr"], ep["seconds"])
            if stop.requested:
                reason = "signal"
                save("last", epoch + 1, {})
                break
            if val_ds is not None and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
                t_val = time.time()
                m = evaluate_segmenter(model, val_ds, table, batch_size=cfg.eval_batch_size, device=device,
                                       amp=amp_dtype is not None)
                score = m[cfg.select]
                improved = score >= best  # ties go to the later epoch, as in pretraining
                if improved:
                    best, best_epoch = score, epoch
                ep.update({f"val_{k}": v for k, v in _metric_summary(m).items()})
                writer.emit("validation", epoch=epoch, step=step, val_acc=score, best_acc=best,
                            val_instance_miou=m["instance_miou"], val_class_miou=m["class_miou"],
                            seconds=time.time() - t_val)
                log.info("  val (%s): instance mIoU %.4f, class mIoU %.4f%s", cfg.val_split, m["instance_miou"],
                         m["class_miou"], "  (best)" if improved else "")
                history.append(ep)
                if improved:
                    save("best", epoch + 1, {"val": _metric_summary(m), "val_split": cfg.val_split})
            else:
                history.append(ep)
            save("last", epoch + 1, {})
        if bar is not None:
            bar.close()
            bar = None
        if val_ds is None and reason is None:  # keep the last epoch as the selected model
            best_epoch = cfg.epochs - 1
            save("best", cfg.epochs, {"selected": "last epoch (no validation split)"})

        # test, once, on the selected model
        results = {"best_epoch": best_epoch, "best_val": best if best >= 0 else None, "select": cfg.select,
                   "val_split": cfg.val_split, "report": report, "seconds": None, "test": None}
        best_path = ckpt_dir / "best.pt"
        if cfg.test_split != "none" and best_path.is_file():
            from crosspoint.evaluation.partseg import load_segmenter

            test_ds = open_partseg_dataset(root, cfg.test_split, cfg.num_points, cfg.seed)
            if cfg.max_eval_objects:
                test_ds = _Subset(test_ds, cfg.max_eval_objects)
            sel = load_segmenter(best_path, device=device)
            m = evaluate_segmenter(sel, test_ds, table, batch_size=cfg.eval_batch_size, device=device,
                                   amp=amp_dtype is not None)
            results["test"] = {**_metric_summary(m), "per_category": m["per_category"]}
            obj = torch.load(best_path, map_location="cpu", weights_only=True)  # record the test figures in best.pt
            obj["meta"]["test"] = _metric_summary(m)
            atomic_torch_save(obj, best_path)
            log.info("test (epoch %d model): instance mIoU %.4f, class mIoU %.4f", best_epoch + 1,
                     m["instance_miou"], m["class_miou"])
        results["seconds"] = time.time() - t_start
        atomic_write_text(out / "results.json", json.dumps(results, indent=1, default=float) + "\n")
        summary = {"step": step, "best_acc": best if best >= 0 else None, "best_epoch": best_epoch,
                   "seconds": results["seconds"],
                   "test": None if results["test"] is None else _metric_summary(results["test"])}
        if reason is not None:  # one closing event, as pretraining: "stopped" or "end", never both
            writer.emit("stopped", reason=reason, signal=stop.signal_name, **summary)
        else:
            writer.emit("end", **summary)
        return results
    except BaseException as exc:
        if not isinstance(exc, KeyboardInterrupt):
            writer.emit("error", message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
        raise
    finally:
        stop.restore()
        writer.close()
        if bar is not None:
            bar.close()


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

