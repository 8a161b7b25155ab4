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

The loop is :class:`crosspoint.engine.trainer.Trainer`, as pretraining's: the same step events,
checkpoint hook (``best`` ties go to the later epoch), stop handling and run-folder lock. The config
has pretraining's shape (``data``, ``model``, ``optim``, ``run``; ``run`` is pretraining's
:class:`~crosspoint.config.RunConfig`), so ``--set optim.lr=0.05`` reads alike for both commands;
the flat keys of earlier versions (``--set lr=0.05``) are still accepted.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from crosspoint.config import RunConfig
from crosspoint.engine.checkpoint import atomic_torch_save, atomic_write_text, clean_stale_temp_files
from crosspoint.engine.events import EventWriter
from crosspoint.engine.runtime import Runtime
from crosspoint.engine.trainer import (
    CheckpointHook,
    ProgressBarHook,
    StepEventsHook,
    StepOutput,
    TensorBoardHook,
    Trainer,
    TrainState,
    ValidationHook,
)

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
class FinetuneDataConfig:
    #: dataset folder (ShapeNetPart HDF5 or txt release, or a demo dataset) or "demo"
    root: str = "demo"
    num_points: int = 2048
    train_split: str = "train"
    #: split that selects ``best`` ("none": keep the last epoch)
    val_split: str = "val"
    #: split evaluated once at the end ("none": skip)
    test_split: str = "test"
    #: "shuffle" (the reference: a random point order), "none" or "scale_shift"
    augment: str = "shuffle"
    workers: int = 0
    #: cap on the validation/test objects (0 = all); smoke tests
    max_eval_objects: int = 0


@dataclass
class FinetuneModelConfig:
    #: pretrained checkpoint (official CrossPoint file or ours), or "random" (the no-pretraining baseline)
    init: str = "random"
    #: "auto" (from the init checkpoint; "dgcnn_partseg" for random), "dgcnn_partseg" or "dgcnn" (light variant)
    arch: str = "auto"
    #: "finetune" (train everything, the reference) or "frozen" (train the head only)
    backbone: str = "finetune"
    #: kNN size; 0 = auto (40 for dgcnn_partseg as the reference fine-tunes; the checkpoint's for dgcnn)
    k: int = 0
    dropout: float = 0.5


@dataclass
class FinetuneOptimConfig:
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    #: cosine annealing over the epochs, stepped after each epoch, to eta_min
    eta_min: float = 1e-3
    epochs: int = 300
    batch_size: int = 8
    eval_batch_size: int = 8
    label_smoothing: float = 0.2
    grad_clip: float = 0.0


@dataclass
class FinetuneRunConfig(RunConfig):
    """Pretraining's :class:`~crosspoint.config.RunConfig` (one shape for both commands) with the
    fine-tuning defaults, plus ``select``."""

    amp: str = "off"
    save_every: int = 0
    #: the validation metric that selects ``best``: "instance_miou" or "class_miou"
    select: str = "instance_miou"


@dataclass
class FinetuneConfig:
    """The config of ``crosspoint finetune-partseg``: the sections of the pretraining config (``data``,
    ``model``, ``optim``, ``run``), so ``--set section.key=value`` works alike for both commands.
    The flat keys of earlier versions (``--set epochs=4``) are still accepted (:data:`FLAT_KEYS`)."""

    data: FinetuneDataConfig = field(default_factory=FinetuneDataConfig)
    model: FinetuneModelConfig = field(default_factory=FinetuneModelConfig)
    optim: FinetuneOptimConfig = field(default_factory=FinetuneOptimConfig)
    run: FinetuneRunConfig = field(default_factory=FinetuneRunConfig)
    name: str = "partseg"


def _flat_keys() -> dict[str, str]:
    out = {"data": "data.root", "name": "name"}
    for sec, cls in (("data", FinetuneDataConfig), ("model", FinetuneModelConfig), ("optim", FinetuneOptimConfig),
                     ("run", FinetuneRunConfig)):
        for f in dataclasses.fields(cls):
            out.setdefault(f.name, f"{sec}.{f.name}")
    return out


#: the flat keys of the earlier fine-tuning config -> their place now (``epochs`` -> ``optim.epochs``)
FLAT_KEYS = _flat_keys()


def nest_overrides(overrides) -> list[str]:
    """``key=value`` strings with earlier flat keys moved to their section (``epochs=4`` ->
    ``optim.epochs=4``); sectioned keys pass unchanged."""
    out = []
    for item in overrides or ():
        key, sep, value = str(item).partition("=")
        k = key.strip()
        if sep and "." not in k and k in FLAT_KEYS and FLAT_KEYS[k] != k:
            out.append(f"{FLAT_KEYS[k]}={value}")
        else:
            out.append(item)
    return out


def validate_config(cfg: FinetuneConfig) -> None:
    d, m, o, r = cfg.data, cfg.model, cfg.optim, cfg.run
    checks = [
        (m.arch in ARCHS, f"model.arch must be one of {', '.join(ARCHS)}"),
        (m.backbone in BACKBONE_MODES, f"model.backbone must be one of {', '.join(BACKBONE_MODES)}"),
        (d.augment in AUGMENTS, f"data.augment must be one of {', '.join(AUGMENTS)}"),
        (r.select in SELECT, f"run.select must be one of {', '.join(SELECT)}"),
        (o.optimizer in ("sgd", "adam"), "optim.optimizer must be sgd or adam"),
        (d.train_split in ("train", "trainval"), "data.train_split must be train or trainval"),
        (d.val_split in ("val", "none"), "data.val_split must be val or none (never the test split)"),
        (d.test_split in ("test", "none"), "data.test_split must be test or none"),
        (o.epochs >= 1, "optim.epochs must be >= 1"),
        (o.batch_size >= 2, "optim.batch_size must be >= 2 (BatchNorm)"),
        (o.eval_batch_size >= 1, "optim.eval_batch_size must be >= 1"),
        (o.lr > 0, "optim.lr must be > 0"),
        (o.weight_decay >= 0, "optim.weight_decay must be >= 0"),
        (0 <= o.momentum < 1, "optim.momentum must be in [0, 1)"),
        (0 <= o.eta_min <= o.lr, f"optim.eta_min (the cosine schedule's floor, {o.eta_min:g}) must be in [0, optim.lr]"
                                 f" (optim.lr is {o.lr:g}: with a smaller lr, set optim.eta_min too)"),
        (o.grad_clip >= 0, "optim.grad_clip must be >= 0 (0 = off)"),
        (0 <= m.dropout < 1, "model.dropout must be in [0, 1)"),
        (0 <= o.label_smoothing < 1, "optim.label_smoothing must be in [0, 1)"),
        (d.num_points >= 16, "data.num_points must be >= 16"),
        (m.k >= 0, "model.k must be >= 0 (0 = auto)"),
        (m.k <= d.num_points, "model.k must not exceed data.num_points"),
        (r.log_every >= 1, "run.log_every must be >= 1"),
        (r.val_every >= 1, "run.val_every must be >= 1"),
        (r.amp in ("auto", "bf16", "fp16", "off"), "run.amp must be auto, bf16, fp16 or off"),
        (r.dtype == "float32", "run.dtype must be float32 for fine-tuning (float64 is for pretraining parity checks)"),
        (r.selection == "val", "run.selection is pretraining's; fine-tuning selects on data.val_split (or none)"),
    ]
    for ok, msg in checks:
        if not ok:
            raise FinetuneError(msg)
    if d.train_split == "trainval" and d.val_split == "val":
        raise FinetuneError("data.train_split=trainval trains on the validation split: set data.val_split=none")


def config_from_dict(data: dict) -> FinetuneConfig:
    """A config from a dict: the sectioned shape, or the flat one of earlier versions."""
    from crosspoint.config import ConfigError, from_dict

    data = dict(data or {})
    if any(k in FLAT_KEYS and FLAT_KEYS[k] != k and not isinstance(v, dict) for k, v in data.items()):
        nested: dict = {}
        for k, v in data.items():
            path = FLAT_KEYS.get(k, k).split(".")
            node = nested
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = v
        data = nested
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
    """The dataset folder of ``data.root`` (:func:`crosspoint.data.base.resolve_root`)."""
    from crosspoint.data.base import DatasetError, resolve_root

    try:
        return resolve_root(root, "data.root")
    except DatasetError as exc:
        raise FinetuneError(str(exc)) from None


def _read_bundle(path):
    from crosspoint.models import read_checkpoint

    obj = read_checkpoint(path)
    return obj if isinstance(obj, dict) and obj.get("format") == "crosspoint-explorer" else None


def build_segmenter(cfg: FinetuneConfig, table, *, seed: int = 0) -> tuple[nn.Module, dict]:
    """The model to fine-tune and a report ``{"arch", "init", "loaded", "new", "k"}``."""
    from crosspoint.evaluation.partseg import ClsPartSegmenter
    from crosspoint.models import CheckpointError, PartSegHead, PartSegmenter, build_point_encoder, load_point_encoder

    frozen = cfg.model.backbone == "frozen"
    report = {"init": cfg.model.init, "loaded": [], "new": []}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if cfg.model.init == "random":
            arch = "dgcnn_partseg" if cfg.model.arch == "auto" else cfg.model.arch
            k = cfg.model.k or (40 if arch == "dgcnn_partseg" else 20)
            backbone = build_point_encoder(arch, k=k)
            report["new"].append(f"{arch} backbone (random, seed {seed})")
        else:
            backbone = load_point_encoder(cfg.model.init, k=cfg.model.k or None)
            arch = backbone.arch
            if cfg.model.arch != "auto" and cfg.model.arch != arch:
                raise FinetuneError(f"{cfg.model.init}: holds a {arch} encoder, but arch={cfg.model.arch} was asked for")
            if arch == "pointnet":
                raise FinetuneError(f"{cfg.model.init}: a PointNet encoder; part segmentation needs a DGCNN backbone")
            if arch == "dgcnn_partseg" and not cfg.model.k:
                backbone.k = 40
            n = len(backbone.state_dict())
            report["loaded"].append(f"{arch} backbone ({n} tensors, strict)")
        local = backbone.edge_feature_dim
        glob = backbone.feature_dim
        head = PartSegHead(num_parts=int(table.num_parts), num_categories=int(table.num_categories), emb_dims=glob,
                           local_dims=local, dropout=cfg.model.dropout)
    head_note = f"seg head {head.num_categories} categories -> {head.num_parts} parts (random)"
    if cfg.model.init != "random":  # a fine-tuned file: take its head when it fits
        from crosspoint.evaluation.partseg import load_segmenter

        try:
            prev = load_segmenter(cfg.model.init, k=backbone.k)
        except CheckpointError:
            prev = None
        own = bool(getattr(prev, "own_backbone", False))
        if own and frozen:  # its head was fine-tuned with another encoder than the frozen point_encoder
            log.info("%s: its seg head was fine-tuned with the bundle's seg_backbone; the frozen point_encoder "
                     "gets a new head", cfg.model.init)
            report["new"].append("seg head (the init's goes with its seg_backbone, not with the frozen encoder)")
            prev = None
        if prev is not None:
            try:
                head.load_state_dict(prev.head.state_dict(), strict=True)
                head_note = None
                report["loaded"].append("seg head (from the init checkpoint)")
                if own:  # go on fine-tuning the encoder the head was fine-tuned with
                    backbone.load_state_dict(prev.backbone.state_dict(), strict=True)
                    report["loaded"].append("its seg_backbone (the encoder fine-tuned with that head)")
            except RuntimeError:
                log.warning("%s: its seg head does not fit this dataset's %d parts; starting a new head",
                            cfg.model.init, head.num_parts)
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
        device = resolve_device(cfg.run.device)
    except ValueError as exc:
        raise FinetuneError(str(exc)) from None
    amp_dtype = resolve_amp(cfg.run.amp, device)
    if cfg.run.threads > 0:
        torch.set_num_threads(cfg.run.threads)

    # data and model first: a run that cannot start leaves no folder behind
    root = resolve_data(cfg.data.root)
    train_ds = open_partseg_dataset(root, cfg.data.train_split, cfg.data.num_points, cfg.run.seed)
    table = train_ds.table
    val_ds = None
    if cfg.data.val_split != "none":
        val_ds = open_partseg_dataset(root, cfg.data.val_split, cfg.data.num_points, cfg.run.seed)
    if cfg.data.max_eval_objects and val_ds is not None:
        val_ds = _Subset(val_ds, cfg.data.max_eval_objects)
    if len(train_ds) < cfg.optim.batch_size:
        raise FinetuneError(f"{root}: {len(train_ds)} training objects, fewer than one batch "
                            f"({cfg.optim.batch_size})")
    model, report = build_segmenter(cfg, table, seed=cfg.run.seed)
    model.to(device)
    for line in report["loaded"]:
        log.info("loaded: %s", line)
    for line in report["new"]:
        log.info("new: %s", line)
    image_entry = None
    if cfg.model.backbone == "frozen" and cfg.model.init != "random":
        b = _read_bundle(cfg.model.init)
        image_entry = b.get("image_encoder") if b else None

    ckpt_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temp_files(ckpt_dir)
    atomic_write_text(out / "config.yaml", dump_config(cfg))

    torch.manual_seed(cfg.run.seed)  # dropout draws from the global generator
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optim.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                              weight_decay=cfg.optim.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.optim.epochs, eta_min=cfg.optim.eta_min)
    runtime = Runtime(device=device, amp_dtype=amp_dtype)

    items = _TrainItems(train_ds, cfg.data.augment, cfg.run.seed)
    sampler = SeededEpochSampler(len(items), cfg.run.seed)
    from crosspoint.engine.pretrain import quiet_worker_init

    loader = torch.utils.data.DataLoader(items, batch_size=cfg.optim.batch_size, sampler=sampler, drop_last=True,
                                         num_workers=cfg.data.workers, pin_memory=device.type == "cuda",
                                         worker_init_fn=quiet_worker_init)
    steps_per_epoch = len(loader)
    if cfg.run.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.run.max_steps_per_epoch)

    table_meta = part_table_to_meta(table)
    base_meta = {"task": "partseg", "part_table": table_meta, "init": str(cfg.model.init),
                 "backbone_mode": cfg.model.backbone, "dataset": str(root), "train_split": cfg.data.train_split}
    if image_entry is not None:  # the copied image encoder keeps the view background it was trained with
        from crosspoint.models import checkpoint_background

        base_meta["background"] = checkpoint_background(cfg.model.init)[0]
    cfg_dict = dataclasses.asdict(cfg)
    writer = EventWriter(out)
    stop = StopFlag().install()
    t_start = time.time()
    st = TrainState()
    val_metrics: dict = {}
    writer.emit("start", name=cfg.name, config=cfg_dict, epochs=cfg.optim.epochs, steps_per_epoch=steps_per_epoch,
                world_size=1, device=str(device), resumed_from=None, start_epoch=0, start_step=0,
                loaded=report["loaded"], new=report["new"], arch=report["arch"], k=report["k"],
                train_objects=len(train_ds), val_objects=0 if val_ds is None else len(val_ds), part_table=table_meta)

    def save(kind: str, meta_extra: dict | None = None) -> None:
        if meta_extra is None:
            meta_extra = {"val": dict(val_metrics), "val_split": cfg.data.val_split} if kind == "best" else {}
        path = ckpt_dir / f"{kind}.pt"
        state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "epoch": st.epoch, "step": st.step,
                 "step_in_epoch": st.step_in_epoch, "config": cfg_dict, "best_acc": st.best_acc,
                 "history": list(st.history)}
        obj = _bundle(model, {**base_meta, "epoch": st.epoch, **meta_extra}, state, image_entry)
        atomic_torch_save(obj, path)
        writer.emit("checkpoint", epoch=st.epoch, step=st.step, path=str(path),
                    kind="epoch" if kind.startswith("epoch_") else kind)

    def batches(epoch: int, skip: int):
        if skip:  # pragma: no cover - fine-tuning has no resume
            raise FinetuneError("fine-tuning cannot resume inside an epoch")
        items.set_epoch(epoch)
        sampler.set_epoch(epoch)
        return loader

    def step(batch) -> StepOutput:
        pts, cat, lab = (t.to(device, non_blocking=True) for t in batch)
        logits = model(pts, cat)
        loss = smoothed_cross_entropy(logits, lab, cfg.optim.label_smoothing)
        return StepOutput(loss, {"loss": loss}, int(pts.shape[0]))

    def validate(epochs_done: int):
        t_val = time.time()
        m = evaluate_segmenter(model, val_ds, table, batch_size=cfg.optim.eval_batch_size, device=device,
                               amp=amp_dtype is not None)
        score = float(m[cfg.run.select])
        val_metrics.clear()
        val_metrics.update(_metric_summary(m))
        writer.emit("validation", epoch=epochs_done - 1, step=st.step, val_acc=score,
                    best_acc=max(score, st.best_acc), val_instance_miou=m["instance_miou"],
                    val_class_miou=m["class_miou"], seconds=time.time() - t_val)
        log.info("  val (%s) after epoch %d: instance mIoU %.4f, class mIoU %.4f%s", cfg.data.val_split,
                 epochs_done, m["instance_miou"], m["class_miou"], "  (best)" if score >= st.best_acc else "")
        return score, {f"val_{k}": v for k, v in _metric_summary(m).items()}

    hooks: list = []
    if val_ds is not None:
        hooks.append(ValidationHook(validate, cfg.run.val_every))
    hooks.append(StepEventsHook(writer, cfg.run.log_every))
    hooks.append(CheckpointHook(save, save_every=cfg.run.save_every, ties="later"))
    if progress_bar:
        hooks.append(ProgressBarHook("finetune-partseg"))
    if cfg.run.tensorboard:
        try:
            hooks.append(TensorBoardHook(out / "tensorboard"))
        except RuntimeError as exc:
            raise FinetuneError(str(exc)) from None
    trainer = Trainer(model=model, optimizer=opt, scheduler=sched, step=step, batches=batches, state=st,
                      epochs=cfg.optim.epochs, steps_per_epoch=steps_per_epoch, runtime=runtime, stop=stop,
                      hooks=hooks, grad_clip=cfg.optim.grad_clip, clip_params=params)
    try:
        stopped = trainer.run()
        best_epoch = -1
        for i, h in enumerate(st.history):
            if h.get("val_acc") is not None and h["val_acc"] == st.best_acc:
                best_epoch = i  # ties: the later epoch, as the checkpoint hook chose
        if val_ds is None and not stopped:  # keep the last epoch as the selected model
            best_epoch = cfg.optim.epochs - 1
            save("best", {"selected": "last epoch (no validation split)"})

        # test, once, on the selected model
        best = st.best_acc
        results = {"best_epoch": best_epoch, "best_val": best if best >= 0 else None, "select": cfg.run.select,
                   "val_split": cfg.data.val_split, "report": report, "seconds": None, "test": None}
        best_path = ckpt_dir / "best.pt"
        if cfg.data.test_split != "none" and best_path.is_file():
            from crosspoint.evaluation.partseg import load_segmenter

            test_ds = open_partseg_dataset(root, cfg.data.test_split, cfg.data.num_points, cfg.run.seed)
            if cfg.data.max_eval_objects:
                test_ds = _Subset(test_ds, cfg.data.max_eval_objects)
            sel = load_segmenter(best_path, device=device)
            m = evaluate_segmenter(sel, test_ds, table, batch_size=cfg.optim.eval_batch_size, device=device,
                                   amp=amp_dtype is not None)
            results["test"] = {**_metric_summary(m), "per_category": m["per_category"]}
            obj = torch.load(best_path, map_location="cpu", weights_only=True)  # record the test figures in best.pt
            obj["meta"]["test"] = _metric_summary(m)
            atomic_torch_save(obj, best_path)
            log.info("test (epoch %d model): instance mIoU %.4f, class mIoU %.4f", best_epoch + 1,
                     m["instance_miou"], m["class_miou"])
        results["seconds"] = time.time() - t_start
        atomic_write_text(out / "results.json", json.dumps(results, indent=1, default=float) + "\n")
        summary = {"step": st.step, "epoch": st.epoch, "best_acc": best if best >= 0 else None,
                   "best_epoch": best_epoch, "seconds": results["seconds"],
                   "test": None if results["test"] is None else _metric_summary(results["test"])}
        if stopped:  # one closing event, as pretraining: "stopped" or "end", never both
            writer.emit("stopped", reason="signal", signal=stop.signal_name, **summary)
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

