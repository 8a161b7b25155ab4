"""CrossPoint pretraining: the loop behind ``crosspoint pretrain`` and the explorer's training dialog.

One command for one CPU, one GPU or many (``torchrun``, DDP with SyncBatchNorm and negatives
gathered across ranks). A run folder holds::

    RUN/config.yaml          the resolved config
    RUN/events.jsonl         the event stream (crosspoint.engine.events) the GUI monitor reads
    RUN/log.txt              the log
    RUN/checkpoints/last.pt  after every epoch, and when the run is stopped (SIGINT/SIGTERM)
    RUN/checkpoints/best.pt  the best linear-SVM accuracy on the held-out validation split
    RUN/checkpoints/epoch_0010.pt ...   every ``run.save_every`` epochs

Every checkpoint is a full training checkpoint (models, optimizer, scheduler, AMP scaler, epoch,
step, RNG states, config; see :mod:`crosspoint.engine.checkpoint`), written atomically, loadable
with ``weights_only=True`` and usable directly by ``load_point_encoder`` and the explorer.

Resuming (``--resume``) continues exactly where ``last.pt`` left off, also in the middle of an
epoch: the epoch's sample order is a pure function of (seed, epoch) and every augmentation a pure
function of (seed, epoch, object), so the remaining batches are the ones the interrupted run
would have seen.

Differences from the reference implementation (MohamedAfham/CrossPoint): ``configs/paper.yaml``
reproduces the reference by default; each improvement is a setting (docs/RESULTS.md lists them):

- ``run.selection``: ``best`` is selected on a validation split held out of the *training* data
  (``"val"``, the default); ``"test"`` is the reference's choice (linear SVM on the test split of
  ``run.selection_data``, e.g. ModelNet40: this selects on a test set and warns so) and trains on
  the whole pretraining set when ``data.val_fraction = 0``; ties go to the earlier epoch there, as
  in the reference (``>``), and to the later epoch with ``"val"``;
- ``optim.lr_step``: ``"epoch_start"`` (the reference: the cosine scheduler steps at the start of
  every epoch, so epoch 0 runs at the lr of t = 1/epochs and the last one at ``eta_min``) or
  ``"epoch_end"`` (the textbook schedule);
- ``run.amp`` (``"off"`` = the reference's float32) and ``run.dtype`` (``"float64"`` for exact
  comparisons);
- the device is chosen, never hard-coded (the reference's kNN used ``cuda:1``);
- ``--resume`` restores the optimizer, scheduler and position (the reference's resume referenced
  an undefined variable and restored nothing but weights).
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from crosspoint.config import PretrainConfig, dump_config, from_dict, to_dict
from crosspoint.engine.checkpoint import (
    atomic_torch_save,
    atomic_write_text,
    capture_rng_state,
    clean_stale_temp_files,
    load_training_checkpoint,
    restore_rng_state,
)
from crosspoint.engine.events import EventWriter
from crosspoint.engine.runtime import Runtime, StopFlag, setup_runtime
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

#: config keys a ``--resume`` may change (everything else must match the run's config)
RESUMABLE_OVERRIDES = ("optim.epochs", "run.", "data.workers", "name")
ARCH_NAMES = {"dgcnn": "dgcnn", "dgcnn_seg": "dgcnn_partseg", "pointnet": "pointnet"}


class PretrainError(RuntimeError):
    """A run that cannot start or continue (bad folder, missing data, incompatible resume)."""


# ------------------------------------------------------------------------------------------------
# data
def resolve_data_root(root: str, *, progress=None) -> Path:
    """The dataset folder of ``data.root`` (:func:`crosspoint.data.base.resolve_root`)."""
    from crosspoint.data.base import DatasetError, resolve_root

    try:
        return resolve_root(root, "data.root", progress=progress)
    except DatasetError as exc:
        raise PretrainError(str(exc)) from None


def build_datasets(cfg: PretrainConfig, root: Path):
    """``(train pairs, SVM-train classification, SVM-val classification, layout name)``."""
    from crosspoint.data.layouts import detect_layout

    layout = detect_layout(root, task="pretrain", layout=None if cfg.data.layout == "auto" else cfg.data.layout)
    seed, vf = cfg.run.seed, cfg.data.val_fraction
    svm_points = min(1024, cfg.data.num_points)
    if layout.name in ("shapenet_render", "crosspoint_demo"):
        from crosspoint.data.shapenet_render import ShapeNetRenderClassification, ShapeNetRenderDataset

        # check_sample=0: the engine checks every object's file itself and skips bad ones (up to a limit)
        train = ShapeNetRenderDataset(layout.root, cfg.data.num_points, cfg.data.image_size, split="train",
                                      val_fraction=vf, seed=seed, background=cfg.data.background, check_sample=0)
        if vf > 0:
            svm_train = ShapeNetRenderClassification(layout.root, "train", svm_points, vf, seed)
            svm_val = ShapeNetRenderClassification(layout.root, "val", svm_points, vf, seed)
        else:
            svm_train = svm_val = None
    elif layout.name == "folder":
        from crosspoint.data.folder import FolderClassification, FolderPretrainDataset

        train = FolderPretrainDataset(layout.root, cfg.data.num_points, cfg.data.image_size, split="train",
                                      val_fraction=vf, seed=seed, background=cfg.data.background)
        n = train.prepare(progress=True)  # render missing views now, not inside DataLoader workers
        if n:
            log.info("rendered views for %d objects into the cache", n)
        if vf > 0:
            svm_train = FolderClassification(layout.root, split="train", num_points=svm_points, val_fraction=vf,
                                             seed=seed)
            svm_val = FolderClassification(layout.root, split="val", num_points=svm_points, val_fraction=vf,
                                           seed=seed)
        else:
            svm_train = svm_val = None
    else:  # pragma: no cover - detect_layout(task="pretrain") only returns the layouts above
        raise PretrainError(f"{root}: layout {layout.name} has no images to pretrain on")
    if cfg.data.partial_view > 0:
        from crosspoint.data.transforms import PartialView

        train.partial_view = PartialView(p=cfg.data.partial_view)
    if cfg.run.selection == "test":
        svm_train, svm_val = selection_test_datasets(cfg)
    elif cfg.run.selection == "none":
        svm_train = svm_val = None
    if len(train) < cfg.optim.batch_size:
        raise PretrainError(f"{layout.root}: {len(train)} training objects, fewer than one batch "
                            f"({cfg.optim.batch_size}); lower optim.batch_size or add data")
    return train, svm_train, svm_val, layout.name


def training_items(cfg: PretrainConfig, train):
    """What the engine's DataLoader reads from the training dataset ``train``: its items, or with the
    dense term (``loss.dense_weight > 0``) the items of :class:`~crosspoint.data.dense.DenseItems`
    (the same points, the view's flip drawn with its pixels, and the point-pixel links). The
    training-pair inspector reads the same (:func:`crosspoint.engine.pairs.open_training_data`)."""
    if cfg.loss.dense_weight > 0:
        from crosspoint.data.dense import DenseItems

        return DenseItems(train, cfg.loss.dense_points, cfg.loss.dense_flip, cfg.loss.dense_survivors)
    return train


def selection_test_datasets(cfg: PretrainConfig):
    """The reference's model selection: the train and test splits of ``run.selection_data`` (ModelNet40
    or ScanObjectNN HDF5), 1,024 points, as ``train_crosspoint.py`` scores every epoch."""
    from crosspoint.data import open_dataset
    from crosspoint.data.base import DatasetError
    from crosspoint.data.layouts import detect_layout

    root = Path(cfg.run.selection_data).expanduser()
    if not root.exists():
        raise PretrainError(f"run.selection_data {cfg.run.selection_data!r}: no such folder")
    try:
        info = detect_layout(root, task="classification")
    except DatasetError as exc:
        raise PretrainError(f"run.selection_data: {exc}") from None
    if info.name not in ("modelnet40_h5", "scanobjectnn_h5"):
        raise PretrainError(f"run.selection_data {root}: a {info.name} dataset has no test split; "
                            "run.selection = test needs ModelNet40 or ScanObjectNN HDF5")
    points = min(1024, cfg.data.num_points)
    tr = open_dataset(info.root, "classification", "train", layout=info.name, num_points=points)
    te = open_dataset(info.root, "classification", "test", layout=info.name, num_points=points)
    log.warning("run.selection = test: 'best' is chosen by linear-SVM accuracy on the TEST split of %s, as "
                "the reference does; figures measured on that split with 'best' are then optimistic", info.root)
    return tr, te


class EpochSampler(torch.utils.data.Sampler):
    """This rank's indices of one epoch: a permutation fixed by (seed, epoch), cut to whole global
    batches, dealt to ranks batch by batch, starting after ``skip_batches`` batches (resume)."""

    def __init__(self, n: int, *, batch_per_rank: int, world_size: int, rank: int, seed: int, epoch: int,
                 skip_batches: int = 0, max_batches: int = 0):
        self.n, self.bpr, self.world, self.rank = n, batch_per_rank, world_size, rank
        self.seed, self.epoch, self.skip, self.max_batches = seed, epoch, skip_batches, max_batches

    def batches_per_epoch(self) -> int:
        full = self.n // (self.bpr * self.world)
        return min(full, self.max_batches) if self.max_batches > 0 else full

    def __len__(self) -> int:
        return max(self.batches_per_epoch() - self.skip, 0) * self.bpr

    def __iter__(self):
        g = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(self.epoch))
        perm = torch.randperm(self.n, generator=g).tolist()
        gb = self.bpr * self.world
        for b in range(self.skip, self.batches_per_epoch()):
            chunk = perm[b * gb:(b + 1) * gb]
            yield from chunk[self.rank * self.bpr:(self.rank + 1) * self.bpr]


# ------------------------------------------------------------------------------------------------
# models and optimisation
def build_models(cfg: PretrainConfig):
    from crosspoint.models import build_image_encoder, build_point_encoder

    arch = ARCH_NAMES[cfg.model.point_encoder]
    kw = {"emb_dims": cfg.model.emb_dims}
    if arch != "pointnet":
        kw["k"] = cfg.model.k
    return build_point_encoder(arch, **kw), build_image_encoder(cfg.model.image_encoder)


def lr_factor(cfg: PretrainConfig, epoch: int) -> float:
    """Learning-rate multiplier for ``epoch`` (0-based): linear warm-up, then cosine to eta_min.

    With ``optim.lr_step = "epoch_start"`` (the reference) the schedule is one epoch ahead: epoch
    ``e`` trains at the value the textbook schedule gives epoch ``e + 1``."""
    o = cfg.optim
    if getattr(o, "lr_step", "epoch_end") == "epoch_start":
        epoch = epoch + 1
    if o.warmup_epochs > 0 and epoch < o.warmup_epochs:
        return (epoch + 1) / (o.warmup_epochs + 1)
    if o.scheduler == "none":
        return 1.0
    span = max(o.epochs - o.warmup_epochs, 1)
    t = min(max(epoch - o.warmup_epochs, 0), span) / span
    floor = o.eta_min / o.lr
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


def build_optimizer(cfg: PretrainConfig, params):
    o = cfg.optim
    if o.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: lr_factor(cfg, e))
    return opt, sched


# ------------------------------------------------------------------------------------------------
def validation_accuracy(encoder: nn.Module, svm_train, svm_val, *, device, c: float, max_train: int,
                        batch_size: int = 32, seed: int = 0, standardise: bool = False) -> float:
    """Linear-SVM accuracy of frozen features: fit on (a stratified subset of) the training split,
    score on the held-out validation split. ``standardise``: the features standardised by the
    training rows' statistics first (``run.svm_standardise``)."""
    from sklearn.svm import SVC

    def feats(ds, idx):
        out = []
        encoder.eval()
        with torch.no_grad():
            for s in range(0, len(idx), batch_size):
                pts = np.stack([np.asarray(ds[int(i)][0], np.float32) for i in idx[s:s + batch_size]])
                out.append(encoder.embed(torch.from_numpy(pts).to(device)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)

    labels_tr = np.asarray(svm_train.labels)
    idx_tr = np.arange(len(labels_tr))
    if len(idx_tr) > max_train:
        rng = np.random.default_rng(seed)
        idx_tr = np.sort(rng.choice(idx_tr, max_train, replace=False))
    idx_va = np.arange(len(svm_val.labels))
    xtr, ytr = feats(svm_train, idx_tr), labels_tr[idx_tr]
    xva, yva = feats(svm_val, idx_va), np.asarray(svm_val.labels)
    if len(np.unique(ytr)) < 2 or len(yva) == 0:
        return float("nan")
    if standardise:
        from crosspoint.evaluation.svm import standardise as scale

        xtr, xva = scale(xtr, xva)
    clf = SVC(C=c, kernel="linear")
    clf.fit(xtr, ytr)
    return float(clf.score(xva, yva))


def quiet_worker_init(worker_id: int) -> None:
    """DataLoader workers leave SIGINT/SIGTERM to the training process: a signal to the whole process
    group (``timeout``, Slurm preemption, Ctrl+C in a terminal) must not kill them before the main
    process has finished its step and written ``last.pt``."""
    import signal

    from crosspoint.data.transforms import worker_init_fn

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    worker_init_fn(worker_id)


def point_file_problem(path) -> str | None:
    """A cheap check of one point file (exists, not empty, readable): what is wrong, or None."""
    import os

    p = Path(str(path).split("#", 1)[0])
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return exc.strerror or str(exc)
    if not p.is_file():
        return "not a file"
    if st.st_size == 0:
        return "empty file"
    try:
        with open(p, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        return exc.strerror or str(exc)
    if not head.strip(b"\x00 \t\r\n"):
        return "holds only zero bytes or blanks"
    return None


class SkipBadObjects(torch.utils.data.Dataset):
    """The training set, with an object that cannot be loaded replaced by the next good one (a pure
    function of the index, so resume stays exact); the sample's ``"bad"`` field carries the message
    for the training loop to count and report ("" for a good object)."""

    def __init__(self, dataset, max_tries: int = 16):
        self.dataset, self.max_tries = dataset, max_tries

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        from crosspoint.data.base import DatasetError

        first = None
        n = len(self.dataset)
        for t in range(min(self.max_tries, n)):
            i = (index + t) % n
            try:
                item = self.dataset[i]
            except (DatasetError, OSError, ValueError, EOFError) as exc:
                if first is None:
                    first = f"object {index}: {exc}"
                continue
            item["bad"] = first or ""
            return item
        raise DatasetError(f"{first}; and the next {min(self.max_tries, n) - 1} objects are unreadable too")


class Pretrainer:
    """Runs (or resumes) one pretraining run into ``out_dir``. ``run()`` returns an exit code."""

    def __init__(self, cfg: PretrainConfig | None, out_dir: str | Path, *, resume: bool = False,
                 init: str | Path | None = None, runtime: Runtime | None = None, progress_bar: bool = True,
                 overrides: list[str] | tuple = ()):
        """``cfg`` may be None when resuming (the run's saved config is used); ``overrides`` are
        ``section.key=value`` strings applied on top (when resuming, only to resumable keys)."""
        if cfg is None and not resume:
            raise PretrainError("a config is needed to start a run")
        self.cfg = cfg
        self.overrides = list(overrides)
        self.out = Path(out_dir)
        self.ckpt_dir = self.out / "checkpoints"
        self.resume = resume
        self.init = init
        self.rt = runtime
        self.progress_bar = progress_bar
        self.state = TrainState()
        self.stop = StopFlag()
        self.events: EventWriter | None = None

    # -- setup ----------------------------------------------------------------------------------
    def _prepare_folder(self) -> dict | None:
        """The checkpoint to resume from (None for a fresh start), after checking the folder."""
        last = self.ckpt_dir / "last.pt"
        has_ckpt = last.is_file() or any(self.ckpt_dir.glob("*.pt")) if self.ckpt_dir.is_dir() else False
        if self.resume:
            if not last.is_file():
                if (self.out / "events.jsonl").is_file() or (self.out / "config.yaml").is_file():
                    raise PretrainError(f"{self.out}: nothing to resume: the run there stopped before its first "
                                        "checkpoint; start it again without --resume (the folder will be reused)")
                raise PretrainError(f"{self.out}: nothing to resume (no checkpoints/last.pt)")
            from crosspoint.models.checkpoint import CheckpointError

            try:
                return load_training_checkpoint(last)
            except CheckpointError as exc:
                others = sorted((p for p in self.ckpt_dir.glob("*.pt") if p.name != "last.pt"),
                                key=lambda p: p.stat().st_mtime, reverse=True)
                if not others:
                    raise
                names = ", ".join(f"checkpoints/{p.name}" for p in others[:6])
                msg = str(exc)
                end = "" if msg.endswith((".", "?", "!")) else "."
                raise CheckpointError(
                    f"{msg}{end} The run has other checkpoints (newest first): {names}. To continue from one, copy "
                    "it over checkpoints/last.pt and --resume again: the epochs after it are trained again") from None
        if has_ckpt:
            raise PretrainError(f"{self.out} already holds a run; use --resume to continue it or choose another --out")
        events = self.out / "events.jsonl"
        if events.is_file():
            # a run that failed before its first checkpoint: nothing in it can be resumed; keep its log
            # and events beside the new ones instead of refusing the folder
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for name in ("events.jsonl", "log.txt", "config.yaml"):
                f = self.out / name
                if f.is_file() and self._is_main_env():
                    f.rename(self.out / f"{name}.failed-{stamp}")
            log.warning("%s held a run that stopped before its first checkpoint; starting afresh (its events "
                        "and log are kept as *.failed-%s)", self.out, stamp)
        return None

    @staticmethod
    def _is_main_env() -> bool:
        import os

        return int(os.environ.get("RANK", "0")) == 0

    def _make_out_dir(self) -> None:
        """Create ``--out`` (and check that it is a writable folder) with a message, not a traceback."""
        import errno
        import os

        out = self.out
        if out.exists() and not out.is_dir():
            raise PretrainError(f"--out {out}: is a file, not a folder")
        try:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = exc.strerror or str(exc)
            if exc.errno == errno.ENOTDIR:
                why = "a part of the path is a file"
            raise PretrainError(f"--out {out}: cannot create the run folder ({why})") from None
        if not os.access(out, os.W_OK | os.X_OK) or not os.access(self.ckpt_dir, os.W_OK | os.X_OK):
            raise PretrainError(f"--out {out}: the folder is not writable")

    def _log_to_file(self) -> None:
        if not self.rt.is_main:
            return
        handler = logging.FileHandler(self.out / "log.txt", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.INFO)
        logging.getLogger("crosspoint").addHandler(handler)
        logging.getLogger("crosspoint").setLevel(min(logging.getLogger("crosspoint").level or logging.INFO,
                                                     logging.INFO))
        self._file_handler = handler

    def run(self) -> int:
        from crosspoint.engine.runlock import RunLock

        main_rank = self._is_main_env()
        if main_rank:
            self._make_out_dir()
        # one process owns the folder for the run's whole life (the OS releases the lock on any death)
        self._lock = RunLock(self.out).acquire() if main_rank else None
        try:
            return self._run_locked()
        finally:
            if main_rank:
                clean_stale_temp_files(self.ckpt_dir) if self.ckpt_dir.exists() else None
            if self._lock is not None:
                self._lock.release()

    def _run_locked(self) -> int:
        resume_ckpt = self._prepare_folder()
        if resume_ckpt is not None:
            self.cfg = self._merge_resume_config(resume_ckpt)
        elif self.overrides:
            from crosspoint.config import apply_overrides

            self.cfg = apply_overrides(self.cfg, self.overrides)
        cfg = self.cfg
        self.rt = self.rt or setup_runtime(cfg.run.device, cfg.run.amp, cfg.run.threads)
        rt = self.rt
        if rt.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            clean_stale_temp_files(self.ckpt_dir) if self.ckpt_dir.exists() else None
        rt.barrier()
        self._log_to_file()
        self.events = EventWriter(self.out, enabled=rt.is_main)
        self.stop.install()
        t_start = time.time()
        try:
            return self._run(resume_ckpt, t_start)
        except BaseException as exc:
            if rt.is_main and not isinstance(exc, KeyboardInterrupt):
                self.events.emit("error", message=f"{type(exc).__name__}: {exc}",
                                 traceback=traceback.format_exc(limit=20))
            raise
        finally:
            self.stop.restore()
            self.events.close()
            if getattr(self, "_file_handler", None) is not None:
                logging.getLogger("crosspoint").removeHandler(self._file_handler)
                self._file_handler.close()

    def _merge_resume_config(self, ckpt: dict) -> PretrainConfig:
        """The run's own config, with what this invocation changes where a resume may change it."""
        from crosspoint.config import apply_overrides

        from crosspoint.config import upgrade_legacy

        saved = from_dict(upgrade_legacy(ckpt["config"]))
        base = self.cfg if self.cfg is not None else saved
        merged = apply_overrides(base, list(self.overrides)) if self.overrides else base
        new, old = to_dict(merged), to_dict(saved)
        changed = [f"{sec}.{k}" for sec, values in new.items() if isinstance(values, dict)
                   for k, v in values.items() if old[sec].get(k) != v]
        bad = [k for k in changed if not any(k == p or (p.endswith(".") and k.startswith(p))
                                             for p in RESUMABLE_OVERRIDES)]
        if bad:
            raise PretrainError(
                f"--resume: the run in {self.out} was started with different {', '.join(bad)}; "
                "only optim.epochs, run.* and data.workers may change when resuming")
        if changed:
            log.info("resuming with changed %s", ", ".join(changed))
        return merged

    def _run(self, resume_ckpt: dict | None, t_start: float) -> int:
        cfg, rt = self.cfg, self.rt
        self.dtype = torch.float64 if cfg.run.dtype == "float64" else torch.float32
        torch.manual_seed(cfg.run.seed)
        np.random.seed(cfg.run.seed % 2**32)
        root = resolve_data_root(cfg.data.root)
        train_ds, svm_train, svm_val, layout = build_datasets(cfg, root)
        if rt.is_main:
            atomic_write_text(self.out / "config.yaml", dump_config(cfg))
        pe, ie = build_models(cfg)
        if self.init is not None and resume_ckpt is None:
            self._load_init(pe, ie)
        from crosspoint.models import CrossPointModel, convert_sync_batchnorm

        heads = None
        if cfg.loss.dense_weight > 0:
            from crosspoint.models.dense import DenseHeads

            if layout != "crosspoint_demo":
                raise PretrainError(f"loss.dense_weight > 0 needs views rendered by this project with the points in "
                                    f"the same frame (the demo: `crosspoint make-demo`); {root} is a {layout} dataset")
            heads = DenseHeads(pe.point_feature_dim, cfg.model.image_encoder, cfg.model.dense_dim)
        model = CrossPointModel(pe, ie, temperature=cfg.loss.temperature, dense_heads=heads,
                                dense_temperature=cfg.loss.dense_temperature)
        model.to(device=rt.device, dtype=self.dtype)
        if rt.distributed and cfg.run.sync_bn:
            model = convert_sync_batchnorm(model)
        opt, sched = build_optimizer(cfg, model.parameters())
        scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.amp_dtype == torch.float16)
        if resume_ckpt is not None:
            self._restore(resume_ckpt, model, opt, sched, scaler)
        train_model = model
        if rt.distributed:
            train_model = nn.parallel.DistributedDataParallel(
                model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)

        if cfg.optim.batch_size % rt.world_size:
            raise PretrainError(f"optim.batch_size {cfg.optim.batch_size} must divide evenly over "
                                f"{rt.world_size} processes")
        bpr = cfg.optim.batch_size // rt.world_size
        probe = EpochSampler(len(train_ds), batch_per_rank=bpr, world_size=rt.world_size, rank=rt.rank,
                             seed=cfg.run.seed, epoch=0, max_batches=cfg.run.max_steps_per_epoch)
        steps_per_epoch = probe.batches_per_epoch()
        if rt.is_main:
            self._precheck_data(train_ds)
        st = self.state
        tb_hook = self._tensorboard() if cfg.run.tensorboard and rt.is_main else None  # fails before "start"
        self.events.emit("start", name=cfg.name, config=to_dict(cfg), epochs=cfg.optim.epochs,
                         steps_per_epoch=steps_per_epoch, world_size=rt.world_size, device=str(rt.device),
                         layout=layout, train_objects=len(train_ds), data_root=str(root),
                         val_objects=0 if svm_val is None else len(svm_val.labels),
                         resumed_from=str(self.ckpt_dir / "last.pt") if resume_ckpt else None,
                         start_epoch=st.epoch, start_step=st.step)
        log.info("pretraining %s: %d objects, %d steps/epoch, %d epochs, device %s, world %d",
                 cfg.name, len(train_ds), steps_per_epoch, cfg.optim.epochs, rt.device, rt.world_size)

        guarded = SkipBadObjects(training_items(cfg, train_ds))  # DenseItems exactly when heads is not None
        w_intra, w_cross = cfg.loss.intra_weight, cfg.loss.cross_weight

        def batches(epoch: int, skip: int):
            guarded.set_epoch(epoch)
            sampler = EpochSampler(len(train_ds), batch_per_rank=bpr, world_size=rt.world_size, rank=rt.rank,
                                   seed=cfg.run.seed, epoch=epoch, skip_batches=skip,
                                   max_batches=cfg.run.max_steps_per_epoch)
            return torch.utils.data.DataLoader(
                guarded, batch_size=bpr, sampler=sampler, num_workers=cfg.data.workers, drop_last=True,
                pin_memory=rt.device.type == "cuda", worker_init_fn=quiet_worker_init, persistent_workers=False)

        def step(batch) -> StepOutput:
            self._note_bad_objects(batch, st.epoch, len(train_ds))
            p1 = batch["points1"].to(rt.device, self.dtype, non_blocking=True)
            p2 = batch["points2"].to(rt.device, self.dtype, non_blocking=True)
            img = batch["image"].to(rt.device, self.dtype, non_blocking=True)
            dense = None
            if heads is not None:
                dense = {"idx": batch["dense_idx"], "uv": batch["dense_uv"].to(rt.device, self.dtype),
                         "valid": batch["dense_valid"], "valid2": batch.get("dense_valid2")}
            out = train_model(p1, p2, img, dense)
            loss = w_intra * out["intra_loss"] + w_cross * out["cross_loss"]
            logs = {"loss": loss, "loss_intra": out["intra_loss"], "loss_cross": out["cross_loss"]}
            if heads is not None:
                loss = loss + cfg.loss.dense_weight * out["dense_loss"]
                logs.update(loss=loss, loss_dense=out["dense_loss"])
            return StepOutput(loss, logs, cfg.optim.batch_size)

        def validate(epochs_done: int):
            return self._validate(model, svm_train, svm_val), {}

        def save(kind: str) -> None:
            self._save(kind, model, opt, sched, scaler)

        hooks = []
        if svm_val is not None:
            hooks.append(ValidationHook(validate, cfg.run.val_every))
        hooks.append(StepEventsHook(self.events, cfg.run.log_every))
        hooks.append(CheckpointHook(save, save_every=cfg.run.save_every,
                                    ties="earlier" if cfg.run.selection == "test" else "later"))
        if self.progress_bar and rt.is_main:
            hooks.append(ProgressBarHook(cfg.name))
        if tb_hook is not None:
            hooks.append(tb_hook)
        trainer = Trainer(model=train_model, optimizer=opt, scheduler=sched, step=step, batches=batches, state=st,
                          epochs=cfg.optim.epochs, steps_per_epoch=steps_per_epoch, runtime=rt, stop=self.stop,
                          hooks=hooks, grad_clip=cfg.optim.grad_clip, scaler=scaler, clip_params=model.parameters())
        stopped = trainer.run()
        if stopped:
            self.events.emit("stopped", reason="signal", epoch=st.epoch, step=st.step, signal=self.stop.signal_name)
            log.warning("stopped by %s after step %d; resume with --resume", self.stop.signal_name, st.step)
        else:
            self.events.emit("end", best_acc=None if st.best_acc < 0 else st.best_acc,
                             seconds=time.time() - t_start, epoch=st.epoch, step=st.step)
        rt.barrier()
        return 0

    # -- data checks ----------------------------------------------------------------------------
    def _precheck_data(self, train_ds) -> None:
        """Before the first step: every point file exists and starts like a point file (cheap: a stat
        and the first bytes), and the objects hold at least ``data.num_points`` points."""
        refs = train_ds.objects() if hasattr(train_ds, "objects") else []
        bad = []
        for ref in refs:
            problem = point_file_problem(ref.ref)
            if problem:
                bad.append(f"{ref.ref}: {problem}")
        limit = self._bad_limit(len(train_ds))
        for msg in bad[:20]:
            log.warning("bad object (it will be replaced by the next good one): %s", msg)
        if bad:
            self.events.emit("bad_objects", stage="precheck", count=len(bad), examples=bad[:20], limit=limit)
        if len(bad) > limit:
            raise PretrainError(f"{len(bad)} of {len(refs)} training objects are unreadable (limit {limit}, "
                                f"data.max_bad_objects); first: {bad[0]}; run `crosspoint check-data` on the dataset")
        counts = []
        for i in range(min(8, len(train_ds))):
            try:
                counts.append(len(train_ds._load_points(i)))  # noqa: SLF001 - the raw object, before sampling
            except Exception:  # noqa: BLE001 - a bad object is reported by the checks above/at its step
                continue
        want = self.cfg.data.num_points
        if counts and max(counts) < want:
            raise PretrainError(f"data.num_points = {want}, but the objects hold {min(counts)}-{max(counts)} points "
                                f"(first {len(counts)} checked): every cloud would be padded by repeating points; "
                                f"set data.num_points to at most {min(counts)}")
        if counts and min(counts) < want:
            log.warning("data.num_points = %d but some objects hold only %d points: those are padded by repeating "
                        "points", want, min(counts))

    def _bad_limit(self, n: int) -> int:
        return max(int(self.cfg.data.max_bad_objects), 0) if self.cfg.data.max_bad_objects >= 0 else n

    def _note_bad_objects(self, batch, epoch: int, n: int) -> None:
        msgs = [m for m in batch.pop("bad", []) if m]
        if not msgs:
            return
        self._bad_seen = getattr(self, "_bad_seen", 0) + len(msgs)
        for m in msgs:
            log.warning("skipped a bad object (replaced by the next good one): %s", m)
        self.events.emit("bad_objects", stage="train", epoch=epoch, step=self.state.step, count=len(msgs),
                         total=self._bad_seen, examples=msgs[:5])
        limit = self._bad_limit(n)
        if self._bad_seen > limit:
            raise PretrainError(f"{self._bad_seen} bad objects met during training (limit {limit}, "
                                f"data.max_bad_objects); last: {msgs[-1]}")

    # -- pieces ---------------------------------------------------------------------------------
    def _validate(self, model, svm_train, svm_val) -> float:
        acc = float("nan")
        if self.rt.is_main:
            t0 = time.time()
            acc = validation_accuracy(model.point_encoder, svm_train, svm_val, device=self.rt.device,
                                      c=self.cfg.run.svm_c, max_train=self.cfg.data.svm_train_max,
                                      seed=self.cfg.run.seed, standardise=self.cfg.run.svm_standardise)
            self.events.emit("validation", epoch=self.state.epoch, step=self.state.step, val_acc=acc,
                             best_acc=max(acc, self.state.best_acc) if math.isfinite(acc) else None,
                             seconds=time.time() - t0)
            log.info("epoch %d: validation linear-SVM accuracy %.4f", self.state.epoch, acc)
        if self.rt.distributed:
            t = torch.tensor([acc], device=self.rt.device, dtype=torch.float64)
            torch.distributed.broadcast(t, 0)
            acc = float(t.item())
        model.train()
        return acc

    def _checkpoint_dict(self, model, opt, sched, scaler) -> dict:
        from crosspoint.models import model_bundle

        st = self.state
        ckpt = model_bundle(point_encoder=model.point_encoder, image_encoder=model.image_encoder,
                            meta={"run": self.cfg.name, "epoch": st.epoch, "step": st.step,
                                  "best_acc": None if st.best_acc < 0 else st.best_acc})
        ckpt.update({
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict(),
            "epoch": st.epoch,
            "step": st.step,
            "step_in_epoch": st.step_in_epoch,
            "best_acc": st.best_acc,
            "history": list(st.history),
            "rng": capture_rng_state(),
            "config": to_dict(self.cfg),
            "world_size": self.rt.world_size,
        })
        if getattr(model, "dense_heads", None) is not None:
            heads = model.dense_heads
            ckpt["dense_heads"] = {"config": heads.config(),
                                   "state_dict": {k: v.detach().cpu() for k, v in heads.state_dict().items()}}
        return ckpt

    def _save(self, kind: str, model, opt, sched, scaler) -> None:
        if not self.rt.is_main:
            return
        path = self.ckpt_dir / f"{kind}.pt"
        atomic_torch_save(self._checkpoint_dict(model, opt, sched, scaler), path)
        self.events.emit("checkpoint", path=str(path), kind="epoch" if kind.startswith("epoch_") else kind,
                         epoch=self.state.epoch, step=self.state.step)

    def _restore(self, ckpt: dict, model, opt, sched, scaler) -> None:
        from crosspoint.models.checkpoint import CheckpointError

        try:
            model.point_encoder.load_state_dict(ckpt["point_encoder"]["state_dict"])
            if getattr(model, "dense_heads", None) is not None:
                model.dense_heads.load_state_dict(ckpt["dense_heads"]["state_dict"])
            model.image_encoder.load_state_dict(ckpt["image_encoder"]["state_dict"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{self.ckpt_dir / 'last.pt'}: cannot resume from it: {exc}") from None
        st = self.state
        st.epoch, st.step = int(ckpt["epoch"]), int(ckpt["step"])
        st.step_in_epoch = int(ckpt.get("step_in_epoch", 0))
        st.best_acc = float(ckpt.get("best_acc", -1.0))
        st.history = list(ckpt.get("history", []))
        if int(ckpt.get("world_size", 1)) != self.rt.world_size and st.step_in_epoch:
            log.warning("resuming mid-epoch with a different number of processes: the rest of epoch %d "
                        "is re-dealt over %d processes", st.epoch, self.rt.world_size)
        restore_rng_state(ckpt.get("rng", {}))
        log.info("resumed from %s at epoch %d, step %d", self.ckpt_dir / "last.pt", st.epoch, st.step)

    def _load_init(self, pe, ie) -> None:
        """Start from pretrained weights (an official CrossPoint file or one of ours)."""
        from crosspoint.models import load_image_encoder, load_point_encoder, read_checkpoint

        src = load_point_encoder(self.init, k=getattr(pe, "k", None))
        if type(src) is not type(pe):
            raise PretrainError(f"--init {self.init}: holds a {src.arch} encoder but the config trains "
                                f"{pe.arch}")
        pe.load_state_dict(src.state_dict())
        obj = read_checkpoint(self.init)
        if isinstance(obj, dict) and "image_encoder" in obj:
            ie.load_state_dict(load_image_encoder(self.init, arch=ie.arch).state_dict())
        log.info("initialised from %s", self.init)

    def _tensorboard(self) -> TensorBoardHook:
        try:
            return TensorBoardHook(self.out / "tensorboard")
        except RuntimeError as exc:
            raise PretrainError(str(exc)) from None


def pretrain(cfg: PretrainConfig | None, out_dir, *, resume: bool = False, init=None, progress_bar: bool = True,
             overrides=()) -> int:
    return Pretrainer(cfg, out_dir, resume=resume, init=init, progress_bar=progress_bar, overrides=overrides).run()
