"""Typed configuration: dataclasses loaded from YAML, overridden with ``key=value`` strings.

    cfg = load_config("configs/paper.yaml", overrides=["optim.lr=5e-4", "data.root=/data/shapenet"])
    cfg.optim.lr          # 0.0005, a float
    dump_config(cfg)      # the resolved config as YAML text (written next to every run's checkpoints)

Unknown keys are errors that list the valid ones, values are converted to the field's type, so a
typo never silently trains with a default.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config file or override that cannot be applied (unknown key, wrong type, bad value)."""


@dataclass
class DataConfig:
    #: dataset folder, or "demo" for the embedded demo dataset (generated once into the user cache; "demo-sensor":
    #: its held-out seed with sensor-like points, crosspoint.data.demo.DEMO_KEYWORDS)
    root: str = "demo"
    #: layout name as ``crosspoint check-data`` prints it, or "auto" to detect
    layout: str = "auto"
    num_points: int = 2048
    image_size: int = 224
    #: fraction of the training objects held out (stratified by class) to select the ``best`` checkpoint
    val_fraction: float = 0.1
    #: DataLoader worker processes (0 = load in the training process)
    workers: int = 2
    #: cap on the objects used for the validation SVM's training features (speed on big datasets)
    svm_train_max: int = 5000
    #: what becomes of a view's transparent background: "drop" (the reference: the alpha channel is
    #: dropped, ``Image.open(...).convert("RGB")``, leaving the colour stored under it), "white" or
    #: "black" (composited on that colour). Pretraining, evaluation and the explorer all use it.
    background: str = "drop"
    #: probability that the second point copy of a pretraining pair is a partial view of the object
    #: (hidden point removal from a random camera, crosspoint.data.transforms.PartialView; N kept).
    #: Not in the paper (0, the default): the intra-modal term then also pairs a whole object with
    #: what one depth camera sees of it, the input of ScanObjectNN. docs/NOTES.md, session 16.
    partial_view: float = 0.0
    #: objects that cannot be read are replaced by the next good one, with a warning counted in
    #: events.jsonl; more than this many stop the run (-1 = no limit)
    max_bad_objects: int = 100


@dataclass
class ModelConfig:
    #: "dgcnn" (the paper's classification encoder), "dgcnn_seg" (part-segmentation backbone) or "pointnet"
    point_encoder: str = "dgcnn"
    #: kNN size of DGCNN's EdgeConv (paper pretraining: 15; DGCNN's default: 20)
    k: int = 20
    emb_dims: int = 1024
    #: torchvision ResNet for the image branch: "resnet50" (paper), "resnet18", "resnet34"
    image_encoder: str = "resnet50"
    #: width of the dense point-pixel embeddings (used when loss.dense_weight > 0)
    dense_dim: int = 64


@dataclass
class OptimConfig:
    optimizer: str = "adam"  # "adam" or "sgd"
    lr: float = 1e-3
    weight_decay: float = 1e-6
    momentum: float = 0.9  # SGD only
    scheduler: str = "cosine"  # "cosine" (over all epochs, to eta_min) or "none"
    eta_min: float = 0.0
    warmup_epochs: int = 0
    #: when the epoch-wise schedule steps: "epoch_start" (the reference calls the cosine scheduler's
    #: step() at the start of every epoch, so epoch 0 already runs at the lr of t = 1/epochs and the
    #: last epoch at eta_min) or "epoch_end" (epoch 0 at the base lr, the textbook schedule)
    lr_step: str = "epoch_start"
    epochs: int = 100
    batch_size: int = 20  # the global batch: split across processes under DDP
    grad_clip: float = 0.0  # 0 = off


@dataclass
class LossConfig:
    temperature: float = 0.1
    intra_weight: float = 1.0
    cross_weight: float = 1.0
    #: weight of the dense point-pixel term (crosspoint.models.dense; 0 = off, the paper). It needs
    #: views rendered by this project (their cameras give each point's pixel): the demo or a folder
    dense_weight: float = 0.0
    #: visible points per object matched to their pixels in the dense term
    dense_points: int = 64
    dense_temperature: float = 0.1
    #: a random horizontal flip of the view mirrors the "image" only (the paper's augmentation, as the
    #: shipped demo checkpoint was trained) or "both" the image and the points, across the camera's
    #: vertical plane (crosspoint.data.dense: the dense term then never matches a point to its
    #: mirror twin's pixels)
    dense_flip: str = "image"
    #: link a point to its pixel only in the copies where the point is still itself after the point
    #: augmentation: the paper's RandomInputDropout replaces ~44 % of each copy's points by its first
    #: point, and a link to a dropped point asks that pixel to match the first point's feature.
    #: False: every link in both copies, as the shipped demo checkpoint was trained (docs/NOTES.md, session 16)
    dense_survivors: bool = True


@dataclass
class RunConfig:
    seed: int = 1
    #: "auto" (CUDA when available), "cuda", "cuda:N" or "cpu"
    device: str = "auto"
    #: autocast: "off" (full precision, the reference), "auto" (bf16 on CUDA, off on CPU), "bf16" or "fp16".
    #: bf16 perturbs DGCNN features by 5-9 % relative L2 against float64 (measured): opt-in only
    amp: str = "off"
    #: parameter and input dtype: "float32" (the reference) or "float64" (exact comparisons, e.g. the
    #: DDP parity test: one process and N processes then agree to ~1e-12; CPU or a GPU with fast fp64)
    dtype: str = "float32"
    #: convert BatchNorm to SyncBatchNorm under DDP (the reference's single-GPU statistics over the global batch)
    sync_bn: bool = True
    #: keep a numbered checkpoint every N epochs (0 = only last and best)
    save_every: int = 10
    #: run the validation SVM every N epochs (0 = never; then ``best`` is not written)
    val_every: int = 1
    #: what selects ``best``: "val" (linear SVM on data.val_fraction held out of the training data),
    #: "test" (the reference: linear SVM on the test split of run.selection_data, e.g. ModelNet40;
    #: this selects on a test set and warns so), or "none" (no ``best``; keep ``last``)
    selection: str = "val"
    #: dataset whose train/test splits score the checkpoints when run.selection is "test"
    selection_data: str = ""
    #: SVM regularisation for the validation accuracy (the reference uses C=0.1)
    svm_c: float = 0.1
    #: standardise the validation SVM's features (StandardScaler fitted on its training rows) before the fit:
    #: off as the reference (raw features at svm_c); on, the accuracy no longer depends on the features'
    #: scale, which grows during training from a random initialisation's ~50x smaller features, so an early
    #: epoch is not scored low only because C = 0.1 is too small for its scale (docs/RESULTS.md section 5)
    svm_standardise: bool = False
    #: write a "step" event every N optimiser steps
    log_every: int = 10
    tensorboard: bool = False
    #: stop each epoch after this many steps (0 = full epochs); for smoke tests and debugging
    max_steps_per_epoch: int = 0
    #: torch threads on CPU (0 = torch's default)
    threads: int = 0


@dataclass
class PretrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    run: RunConfig = field(default_factory=RunConfig)
    #: a free-form name shown in the GUI and the event log
    name: str = "crosspoint"


# ----------------------------------------------------------------------------------------------
def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _convert(value: Any, typ: Any, key: str) -> Any:
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _convert(value, args[0], key)
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {', '.join(_field_types(typ))}, got {value!r}")
        return _from_dict(typ, value, prefix=key + ".")
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            text = str(value).strip().lower()
            if text in ("true", "yes", "on", "1"):
                return True
            if text in ("false", "no", "off", "0"):
                return False
            raise ValueError(value)
        if typ is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            if isinstance(value, str):
                try:
                    return int(value)
                except ValueError:
                    f = float(value)  # "1e3" is a fine integer
                    if not f.is_integer():
                        raise
                    return int(f)
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if typ is float:
            f = float(value)
            if not math.isfinite(f):  # .inf / .nan in YAML, 1e400 on the command line
                raise ConfigError(f"{key}: {value!r} is not a finite number")
            return f
        if typ is str:
            if isinstance(value, (dict, list)):
                raise ValueError(value)
            return str(value)
    except ConfigError:
        raise
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: {value!r} is not a valid {getattr(typ, '__name__', typ)}") from None
    return value


def _from_dict(cls, data: dict, prefix: str = ""):
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + u for u in unknown)}; "
            f"valid keys under {prefix.rstrip('.') or 'the top level'}: {', '.join(types_)}")
    kwargs = {k: _convert(v, types_[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(data: dict, cls=PretrainConfig):
    cfg = _from_dict(cls, data or {})
    validate(cfg)
    return cfg


def apply_overrides(cfg, overrides: list[str] | tuple[str, ...]):
    """Apply ``section.key=value`` strings (values parsed as YAML scalars) to a copy of ``cfg``."""
    import yaml

    data = to_dict(cfg)
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            if p not in node or not isinstance(node[p], dict):
                raise ConfigError(f"override {item!r}: no config section {p!r}; sections: "
                                  f"{', '.join(k for k, v in data.items() if isinstance(v, dict))}")
            node = node[p]
        if parts[-1] not in node:
            raise ConfigError(f"override {item!r}: unknown key {key!r}; valid keys here: {', '.join(node)}")
        node[parts[-1]] = value
    return from_dict(data, type(cfg))


def load_config(path: str | Path | None = None, overrides=(), cls=PretrainConfig):
    """Read a YAML config (``None`` = all defaults) and apply overrides."""
    import yaml

    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level")
    try:
        cfg = from_dict(data, cls)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from None
    return apply_overrides(cfg, list(overrides)) if overrides else cfg


def dump_config(cfg) -> str:
    import yaml

    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


#: the settings that take one of a few values: (section, key) -> the values (the training dialog's
#: drop-downs read it)
CHOICES = {
    ("model", "point_encoder"): ("dgcnn", "dgcnn_seg", "pointnet"),
    ("model", "image_encoder"): ("resnet18", "resnet34", "resnet50"),
    ("optim", "optimizer"): ("adam", "sgd"),
    ("optim", "scheduler"): ("cosine", "none"),
    ("run", "amp"): ("auto", "bf16", "fp16", "off"),
    ("run", "dtype"): ("float32", "float64"),
    ("run", "selection"): ("val", "test", "none"),
    ("optim", "lr_step"): ("epoch_start", "epoch_end"),
    ("data", "background"): ("drop", "white", "black"),
    ("loss", "dense_flip"): ("image", "both"),
}

#: what a config written before a setting existed meant by it (a run or checkpoint of an earlier
#: version is resumed and evaluated as it was trained, not with today's defaults)
LEGACY_DEFAULTS = {
    ("data", "max_bad_objects"): 100,
    ("data", "partial_view"): 0.0,
    ("loss", "dense_survivors"): False,
    ("data", "background"): "white",
    ("optim", "lr_step"): "epoch_end",
    ("run", "amp"): "auto",
    ("run", "dtype"): "float32",
    ("run", "selection"): "val",
    ("run", "selection_data"): "",
}


_CHOICES = CHOICES  # the name of earlier versions


def upgrade_legacy(data: dict) -> dict:
    """A copy of a saved config dict with the settings it predates filled in as it behaved then."""
    import copy

    out = copy.deepcopy(data or {})
    for (sec, key), value in LEGACY_DEFAULTS.items():
        if isinstance(out.get(sec), dict) and key not in out[sec]:
            out[sec][key] = value
    return out


def validate(cfg) -> None:
    if not isinstance(cfg, PretrainConfig):
        return
    for (sec, key), choices in CHOICES.items():
        v = getattr(getattr(cfg, sec), key)
        if v not in choices:
            raise ConfigError(f"{sec}.{key} = {v!r}; choose one of {', '.join(choices)}")
    checks = [
        (cfg.data.num_points >= 16, "data.num_points must be >= 16"),
        (cfg.data.image_size >= 32, "data.image_size must be >= 32"),
        (0.0 <= cfg.data.val_fraction < 0.9, "data.val_fraction must be in [0, 0.9)"),
        (0.0 <= cfg.data.partial_view <= 1.0, "data.partial_view must be a probability in [0, 1]"),
        (cfg.data.workers >= 0, "data.workers must be >= 0"),
        (cfg.model.k >= 2, "model.k must be >= 2"),
        (cfg.model.k <= cfg.data.num_points, "model.k must not exceed data.num_points"),
        (cfg.optim.lr > 0, "optim.lr must be > 0"),
        (cfg.optim.weight_decay >= 0, "optim.weight_decay must be >= 0"),
        (0 <= cfg.optim.momentum < 1, "optim.momentum must be in [0, 1)"),
        (0 <= cfg.optim.eta_min <= cfg.optim.lr, "optim.eta_min must be in [0, optim.lr]"),
        (0 <= cfg.optim.warmup_epochs < max(cfg.optim.epochs, 1), "optim.warmup_epochs must be in [0, optim.epochs)"),
        (cfg.optim.grad_clip >= 0, "optim.grad_clip must be >= 0 (0 = off)"),
        (cfg.loss.intra_weight >= 0 and cfg.loss.cross_weight >= 0,
         "loss.intra_weight and loss.cross_weight must be >= 0"),
        (cfg.run.svm_c > 0, "run.svm_c must be > 0"),
        (cfg.optim.epochs >= 1, "optim.epochs must be >= 1"),
        (cfg.optim.batch_size >= 2, "optim.batch_size must be >= 2 (NT-Xent needs negatives)"),
        (cfg.loss.temperature > 0, "loss.temperature must be > 0"),
        (cfg.loss.dense_weight >= 0, "loss.dense_weight must be >= 0"),
        (cfg.loss.dense_points >= 2, "loss.dense_points must be >= 2 (the other points are the negatives)"),
        (cfg.loss.dense_temperature > 0, "loss.dense_temperature must be > 0"),
        (cfg.run.log_every >= 1, "run.log_every must be >= 1"),
        (cfg.run.selection != "test" or bool(cfg.run.selection_data),
         "run.selection = test needs run.selection_data (a dataset with a test split, e.g. ModelNet40)"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
