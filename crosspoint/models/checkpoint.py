"""Building, saving and loading models: the project's checkpoint format and the official files.

Project format (``format_version`` 1): one ``torch.save`` of a dict holding only tensors and plain
Python types, so it loads with ``torch.load(..., weights_only=True)``::

    {
      "format": "crosspoint-explorer",
      "version": 1,
      "point_encoder": {"arch": "dgcnn" | "dgcnn_partseg" | "pointnet",
                        "config": {"k": 20, "emb_dims": 1024, "projection_dim": 256},
                        "state_dict": {name: tensor}},
      "image_encoder": {"arch": "resnet50" | "resnet18" | "resnet34" | "resnet101",   # optional
                        "config": {"projection_dim": 256, "hidden_dim": 512},
                        "state_dict": {...}},
      "seg_head":      {"arch": "dgcnn_partseg_head",                                   # optional
                        "config": {"num_parts": 50, "num_categories": 16, "emb_dims": 1024},
                        "state_dict": {...}},
      "seg_backbone":  {"arch": ..., "config": ..., "state_dict": ...},                 # optional
      "meta": {"crosspoint_version": "0.1.0", "created": "2024-...", ...},               # plain types
    }

``config`` holds the keyword arguments of the model's constructor (``build_point_encoder(arch,
**config)``). State-dict names are the models' own, which are the reference's names without its
duplicated BatchNorm aliases. ``seg_backbone`` (with ``seg_head`` only): the copy of the point
encoder that the head was fine-tuned with; ``point_encoder`` stays the pretrained encoder that
embeddings, retrieval and heatmaps use. Training checkpoints add their own top-level keys (optimizer,
scheduler, ...); every loader here ignores top-level keys it does not know.

Official files (``best_model.pth``, ``ckpt_epoch_*.pth``, ``model.t7``, ``img_model_best.pth``):
plain state dicts of the reference's ``DGCNN``, ``DGCNN_partseg`` (pretraining or fine-tuned) and
``ResNet``, with or without the ``module.`` prefix of ``nn.DataParallel``. The reference registers
each EdgeConv BatchNorm twice (``bnX`` and ``convX.1``), so both key sets exist with identical
tensors: both are accepted (either one alone too), checked to agree and loaded once. In its
transform net ``bn3`` is the BatchNorm after ``linear1`` and ``conv3.1`` the 1024-channel one. A
part-segmentation *pretraining* file carries the (unused) ``bn7`` .. ``bn10`` of the fine-tuning
head: accepted and ignored. Keys are otherwise matched strictly: an error lists the missing and the
unexpected ones. :func:`to_official_state_dict` goes the other way.

kNN size: the loaders build a DGCNN with the k it was trained with unless ``k=`` is given: the
recorded one for a project checkpoint, the reference's 15 for an official pretraining file and 40
for an official fine-tuned ``model.t7``; ``model.k_source`` says which (:func:`load_point_encoder`).
:func:`checkpoint_background` tells how its image encoder saw transparent pixels.

Every failure to read or match a file raises :class:`CheckpointError` (a ``ValueError``) naming
the file and saying what it is: missing, a directory, empty, truncated (with the sizes known), not
a PyTorch file at all, or a pickle that would need to run code. Every load is
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn

from crosspoint.models.base import PointEncoder
from crosspoint.models.dgcnn import DGCNN
from crosspoint.models.image import IMAGE_ARCHS, ImageEncoder
from crosspoint.models.partseg import DGCNNPartSeg, PartSegHead, PartSegmenter
from crosspoint.models.pointnet import PointNet

log = logging.getLogger(__name__)

__all__ = [
    "FORMAT", "FORMAT_VERSION", "SEG_BACKBONE_KEY", "CheckpointError", "POINT_ARCHS", "build_point_encoder",
    "build_image_encoder", "build_seg_head", "model_bundle", "save_model_bundle", "read_checkpoint",
    "load_point_encoder", "load_image_encoder", "load_part_segmenter", "to_official_state_dict",
    "save_official", "recorded_k", "describe_k", "checkpoint_background", "shared_reads", "OFFICIAL_PRETRAIN_K",
    "OFFICIAL_FINETUNE_K", "FALLBACK_K", "K_SOURCES", "check_finite",
]

FORMAT = "crosspoint-explorer"
FORMAT_VERSION = 1
SEG_HEAD_ARCH = "dgcnn_partseg_head"
#: optional bundle entry: the point encoder a ``seg_head`` was fine-tuned with, when it differs from
#: ``point_encoder`` (the pretrained encoder every other analysis uses); same layout as ``point_encoder``
SEG_BACKBONE_KEY = "seg_backbone"

POINT_ARCHS = {"dgcnn": DGCNN, "dgcnn_partseg": DGCNNPartSeg, "pointnet": PointNet}

_HEAD_KEY = re.compile(r"^conv(7|8|9|10|11)\.")
_LIST_MAX = 12


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model (the message names the file)."""


# ------------------------------------------------------------------------------ builders
def build_point_encoder(arch: str = "dgcnn", **config) -> PointEncoder:
    """A freshly initialised point encoder: ``"dgcnn"`` (k, emb_dims, projection_dim),
    ``"dgcnn_partseg"`` (same) or ``"pointnet"`` (emb_dims, projection_dim, hidden_dim)."""
    if arch not in POINT_ARCHS:
        raise ValueError(f"unknown point encoder {arch!r}; choose one of {', '.join(POINT_ARCHS)}")
    return POINT_ARCHS[arch](**config)


def build_image_encoder(arch: str = "resnet50", **config) -> ImageEncoder:
    """A freshly initialised image encoder (torchvision ResNet, never downloaded) + image head."""
    return ImageEncoder(arch, **config)


def build_seg_head(arch: str = SEG_HEAD_ARCH, **config) -> PartSegHead:
    if arch != SEG_HEAD_ARCH:
        raise ValueError(f"unknown segmentation head {arch!r} (only {SEG_HEAD_ARCH!r})")
    return PartSegHead(**config)


# ------------------------------------------------------------------------------ saving
def _unwrap(model: nn.Module) -> nn.Module:
    while isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)) or (
            hasattr(model, "_orig_mod") and isinstance(getattr(model, "_orig_mod"), nn.Module)):
        model = model.module if hasattr(model, "module") else model._orig_mod
    return model


def _cpu_state(model: nn.Module) -> dict:
    return OrderedDict((k, v.detach().cpu()) for k, v in model.state_dict().items())


def _entry(model: nn.Module, arch: str) -> dict:
    return {"arch": arch, "config": dict(model.config()), "state_dict": _cpu_state(model)}


def model_bundle(*, point_encoder: "nn.Module | None" = None, image_encoder: "nn.Module | None" = None,
                 seg_head: "nn.Module | None" = None, part_segmenter: "nn.Module | None" = None,
                 meta: "dict | None" = None, seg_backbone: "nn.Module | None" = None) -> dict:
    """The checkpoint dict of the given models (see the module docstring). ``part_segmenter``
    stands for its backbone (``point_encoder``) and head (``seg_head``). ``seg_backbone``: the
    encoder ``seg_head`` was fine-tuned with, kept beside the pretrained ``point_encoder``
    (:data:`SEG_BACKBONE_KEY`). DDP / DataParallel / ``torch.compile`` wrappers are removed."""
    out: dict = {"format": FORMAT, "version": FORMAT_VERSION}
    if part_segmenter is not None:
        seg = _unwrap(part_segmenter)
        if point_encoder is not None or seg_head is not None:
            raise ValueError("give either part_segmenter or point_encoder/seg_head, not both")
        point_encoder, seg_head = seg.backbone, seg.head
    if point_encoder is not None:
        pe = _unwrap(point_encoder)
        if not isinstance(pe, PointEncoder) or pe.arch not in POINT_ARCHS:
            raise TypeError(f"point_encoder must be one of the project's point encoders, got {type(pe).__name__}")
        out["point_encoder"] = _entry(pe, pe.arch)
    if image_encoder is not None:
        ie = _unwrap(image_encoder)
        if not isinstance(ie, ImageEncoder):
            raise TypeError(f"image_encoder must be an ImageEncoder, got {type(ie).__name__}")
        out["image_encoder"] = _entry(ie, ie.arch)
    if seg_head is not None:
        out["seg_head"] = _entry(_unwrap(seg_head), SEG_HEAD_ARCH)
    if seg_backbone is not None:
        sb = _unwrap(seg_backbone)
        if seg_head is None or point_encoder is None:
            raise ValueError("seg_backbone goes with a seg_head and a point_encoder")
        if not isinstance(sb, PointEncoder) or sb.arch != out["point_encoder"]["arch"]:
            raise TypeError(f"seg_backbone must be a {out['point_encoder']['arch']} like the point encoder")
        out[SEG_BACKBONE_KEY] = _entry(sb, sb.arch)
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    info = {"crosspoint_version": _version(), "created": created}
    info.update(meta or {})
    out["meta"] = info
    return out


def _version() -> str:
    try:
        from crosspoint import __version__
        return __version__
    except ImportError:  # pragma: no cover
        return "unknown"


def save_model_bundle(path: "str | os.PathLike", *, point_encoder=None, image_encoder=None, seg_head=None,
                      part_segmenter=None, meta: "dict | None" = None, extra: "dict | None" = None,
                      seg_backbone=None) -> Path:
    """Write :func:`model_bundle` (plus ``extra`` top-level keys, e.g. training state) to ``path``
    atomically: a temporary file in the same folder, flushed and renamed over ``path``."""
    obj = model_bundle(point_encoder=point_encoder, image_encoder=image_encoder, seg_head=seg_head,
                       part_segmenter=part_segmenter, meta=meta, seg_backbone=seg_backbone)
    for key, value in (extra or {}).items():
        if key in obj:
            raise ValueError(f"extra key {key!r} would overwrite a model-bundle key")
        obj[key] = value
    return _atomic_save(obj, path)


def _atomic_save(obj, path) -> Path:
    from crosspoint.atomic import atomic_write_bytes_to

    return atomic_write_bytes_to(path, lambda fh: torch.save(obj, fh))


# ------------------------------------------------------------------------------ reading
def _fmt_keys(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_LIST_MAX])
    more = f", ... and {len(keys) - _LIST_MAX} more" if len(keys) > _LIST_MAX else ""
    return f"{len(keys)}: {shown}{more}"


_reads = threading.local()


@contextlib.contextmanager
def shared_reads():
    """Within the block (in this thread), :func:`read_checkpoint` reads each file once: a file read
    again, unchanged (same inode, size and modification time), gives the object already read.
    For a caller that runs several loaders on one file (a :class:`~crosspoint.analysis.ModelSession`
    reads a bundle's point encoder, image encoder, segmenter, ...): the loaders copy what they take
    and never change the object read. Nested blocks share the outer one's reads."""
    if getattr(_reads, "cache", None) is not None:
        yield
        return
    _reads.cache = {}
    try:
        yield
    finally:
        _reads.cache = None


def read_checkpoint(path: "str | os.PathLike"):
    """``torch.load(path, weights_only=True)`` on the CPU, every failure as a :class:`CheckpointError`
    that says what the file is: missing, a directory, empty, truncated (with the sizes when known),
    not a PyTorch checkpoint at all, or a pickle that would need to run code. Inside
    :func:`shared_reads`, an unchanged file is read once."""
    p = Path(path)
    st = _check_is_file(p)
    cache = getattr(_reads, "cache", None)
    key = (str(p.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) if cache is not None else None
    if key is not None and key in cache:
        return cache[key]
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(_diagnose(p, exc)) from None
    if key is not None:
        cache[key] = obj
    return obj


def _check_is_file(p: Path) -> os.stat_result:
    try:
        st = p.stat()
    except OSError as exc:
        if p.is_symlink():
            raise CheckpointError(f"{p}: a symbolic link that leads nowhere ({exc.strerror or exc})") from None
        if isinstance(exc, FileNotFoundError):
            raise CheckpointError(f"{p}: no such checkpoint file") from None
        raise CheckpointError(f"{p}: cannot read it ({exc.strerror or exc})") from None
    import stat as _stat

    if _stat.S_ISDIR(st.st_mode):
        inside = _checkpoints_in(p)
        hint = (f"; checkpoint files in it: {', '.join(inside)}" if inside
                else "; it holds no .pt/.pth/.t7 file")
        raise CheckpointError(f"{p}: is a directory, not a checkpoint file{hint}") from None
    if not _stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{p}: not a regular file (a device, pipe or socket), not a checkpoint file") from None
    return st


def _checkpoints_in(folder: Path, limit: int = 5) -> list:
    """Checkpoint-looking files directly in ``folder`` or in its ``checkpoints/`` (relative names)."""
    found = []
    for sub in (folder, folder / "checkpoints"):
        try:
            names = sorted(e.name for e in os.scandir(sub) if e.is_file() and e.name.endswith((".pt", ".pth", ".t7")))
        except OSError:
            continue
        found += [str((sub / n).relative_to(folder)) for n in names]
    return found[:limit] + ([f"... ({len(found) - limit} more)"] if len(found) > limit else [])


_ZIP_MAGIC = b"PK\x03\x04"
_ZIP_EMPTY = b"PK\x05\x06"
_PICKLE_PROTO = 0x80  # the PROTO opcode every pickle of protocol 2+ starts with


def _legacy_magic() -> bytes:
    """The first bytes of every legacy (non-zip) ``torch.save`` file: its magic number, pickled."""
    import pickle

    return pickle.dumps(torch.serialization.MAGIC_NUMBER, protocol=2)


def _sentences(text: str, limit: int = 300) -> str:
    """The first line of ``text`` cut at a sentence end, never mid-sentence (whole when short)."""
    line = " ".join(text.split("\n")[0].split())
    if len(line) <= limit:
        return line
    cut = line.rfind(". ", 0, limit)
    return line[:cut + 1] if cut > 0 else line.split(". ")[0].rstrip(".") + "."


def _pickle_truncated(p: Path, size: int) -> bool:
    """Whether the pickles at the start of a legacy (non-zip) torch file run into the end of the file
    (walked with :mod:`pickletools`, which reads opcodes and runs nothing)."""
    import pickletools

    with open(p, "rb") as fh:
        try:
            for _ in range(5):  # magic number, protocol, sys info, the object, the storage keys
                for _op in pickletools.genops(fh):
                    pass
        except Exception:
            return fh.tell() >= size
    return False


def _diagnose(p: Path, exc: Exception) -> str:
    """The message for a file that ``torch.load`` refused (see :func:`read_checkpoint`)."""
    text = str(exc)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(32)
    except OSError as err:
        return f"{p}: cannot read it ({err.strerror or err})"
    if isinstance(exc, OSError) and not isinstance(exc, EOFError):
        return f"{p}: cannot read it ({exc.strerror or _sentences(text)})"
    if size == 0:
        return f"{p}: empty file (0 bytes), not a checkpoint: an interrupted save, copy or download?"
    if head.startswith((_ZIP_MAGIC, _ZIP_EMPTY)):
        import zipfile

        try:
            with zipfile.ZipFile(p) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            return (f"{p}: truncated or incomplete: a zip archive (PyTorch's format) without its end "
                    f"(the central directory), {size} bytes on disk; an interrupted save, copy or download?")
        except Exception:  # pragma: no cover - unreadable in another way
            names = None
        if names is not None and not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            return (f"{p}: a zip archive but not a PyTorch checkpoint (no data.pkl record; it holds "
                    f"{shown or 'nothing'}): an .npz file or another program's archive?")
        if not _needs_code(text):
            return f"{p}: a damaged PyTorch checkpoint (zip archive, {size} bytes): {_sentences(text)}"
        return _refused(p)
    magic = _legacy_magic()
    if not (head.startswith(magic) or magic.startswith(head)):
        if head[0] == _PICKLE_PROTO and len(head) > 1 and 2 <= head[1] <= 5:
            return (f"{p}: not a PyTorch checkpoint: a Python pickle without PyTorch's magic number "
                    "(written by pickle.dump or another program, not torch.save)")
        return (f"{p}: not a PyTorch checkpoint (neither a zip archive nor a legacy pickle; it starts with "
                f"bytes {head[:4].hex(' ')}, {size} bytes in all)")
    m = re.search(r"expected (\d+) more bytes", text)
    if m:
        return (f"{p}: truncated: {size} bytes on disk, at least {m.group(1)} more expected (an interrupted "
                "save, copy or download?)")
    if isinstance(exc, EOFError) or _pickle_truncated(p, size):
        return (f"{p}: truncated or incomplete: the data ends after {size} bytes, inside the checkpoint's "
                "pickled header (an interrupted save, copy or download?)")
    if _needs_code(text):
        return _refused(p)
    return f"{p}: not a readable PyTorch checkpoint ({type(exc).__name__}: {_sentences(text)})"


def _needs_code(text: str) -> bool:
    return "Weights only load failed" in text or "weights_only" in text


def _refused(p: Path) -> str:
    return (f"{p}: refused to load: unpickling it would need to run code (a pickled model object or "
            "another program's data?). Only state dicts and CrossPoint Explorer checkpoints "
            "(tensors and plain types) are loaded.")


def _is_bundle(obj) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def _check_bundle(obj, path) -> None:
    version = obj.get("version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: CrossPoint Explorer checkpoint without a valid version ({version!r})")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer CrossPoint Explorer (format version {version}, "
                              f"this one reads up to {FORMAT_VERSION}); please upgrade")


def _bundle_entry(obj, name: str, path) -> dict:
    entry = obj.get(name)
    if entry is None:
        present = [k for k in ("point_encoder", "image_encoder", "seg_head", SEG_BACKBONE_KEY) if obj.get(k) is not None]
        raise CheckpointError(f"{path}: this checkpoint has no {name.replace('_', ' ')} "
                              f"(it holds: {', '.join(present) or 'no models'})")
    if not (isinstance(entry, dict) and isinstance(entry.get("arch"), str) and isinstance(entry.get("state_dict"), dict)
            and isinstance(entry.get("config", {}), dict)):
        raise CheckpointError(f"{path}: malformed {name!r} entry (needs 'arch', 'config' and 'state_dict')")
    return entry


def _as_state_dict(obj, path) -> dict:
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state dict or a CrossPoint Explorer checkpoint, "
                              f"found a {type(obj).__name__}")
    if not obj:
        raise CheckpointError(f"{path}: empty state dict")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        nested = [k for k in bad if isinstance(obj.get(k), dict)]
        hint = (f" (it nests dicts under {_fmt_keys(map(str, nested))}: a training checkpoint of another program?)"
                if nested else "")
        raise CheckpointError(f"{path}: not a state dict: entries that are not tensors: "
                              f"{_fmt_keys(map(str, bad))}{hint}")
    return _strip_prefixes(obj)


def _strip_prefixes(sd: dict) -> dict:
    for prefix in ("module.", "_orig_mod."):
        while sd and all(k.startswith(prefix) for k in sd):
            sd = OrderedDict((k[len(prefix):], v) for k, v in sd.items())
    return sd


# ------------------------------------------------------------------------------ official layouts
_DGCNN_ALIASES = {f"bn{i}": f"conv{i}.1" for i in range(1, 6)}
_PARTSEG_ALIASES = {
    **{f"bn{i}": f"conv{i}.1" for i in range(1, 11)},
    "transform_net.bn1": "transform_net.conv1.1",
    "transform_net.bn2": "transform_net.conv2.1",
}
_BN_FIELDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _detect_layout(sd: dict) -> str:
    keys = set(sd)
    if any(k.startswith("resnet.") for k in keys):
        return "image"
    if any(k.startswith("transform_net.") for k in keys):
        return "dgcnn_partseg_finetuned" if any(_HEAD_KEY.match(k) for k in keys) and "conv11.weight" in keys \
            else "dgcnn_partseg_pretrain"
    w = sd.get("conv1.0.weight")
    if w is not None and w.dim() == 3 and w.shape[1] == 3:
        return "pointnet"
    if w is not None or "conv5.0.weight" in keys or "bn5.weight" in keys:
        return "dgcnn"
    return "unknown"


def _dedupe_aliases(sd: dict, aliases: dict, path) -> dict:
    """Fold the reference's duplicated BatchNorm keys (``bnX.*`` == ``convX.1.*``) into ``convX.1.*``."""
    out = OrderedDict()
    pending = []
    for key, value in sd.items():
        head, _, field = key.rpartition(".")
        if head in aliases and field in _BN_FIELDS:
            pending.append((key, f"{aliases[head]}.{field}", value))
        else:
            out[key] = value
    for key, target, value in pending:
        if target in out:
            other = out[target]
            if other.shape != value.shape or not torch.equal(other, value):
                raise CheckpointError(f"{path}: {key} and {target} must hold the same tensor (the reference "
                                      "registers one BatchNorm under both names) but they differ")
        else:
            out[target] = value
    return out


def _official_point_state(sd: dict, path):
    """``(arch, config, backbone state, head state or None)`` of an official point-model state dict."""
    layout = _detect_layout(sd)
    if layout == "image":
        raise CheckpointError(f"{path}: this is an image-encoder checkpoint (resnet.* keys); "
                              "load it with load_image_encoder")
    if layout == "unknown":
        raise CheckpointError(f"{path}: not a CrossPoint point-encoder checkpoint: none of the expected keys "
                              f"(conv1.0.weight, conv5.0.weight, transform_net.*); found {_fmt_keys(sd)}")
    if layout == "dgcnn":
        state = _dedupe_aliases(sd, _DGCNN_ALIASES, path)
        config = {}
        if "conv5.0.weight" in state:
            config["emb_dims"] = int(state["conv5.0.weight"].shape[0])
        if "inv_head.3.weight" in state:
            config["projection_dim"] = int(state["inv_head.3.weight"].shape[0])
        return "dgcnn", config, state, None
    if layout == "pointnet":
        config = {}
        if "conv5.0.weight" in sd:
            config["emb_dims"] = int(sd["conv5.0.weight"].shape[0])
        if "inv_head.0.weight" in sd:
            config["hidden_dim"] = int(sd["inv_head.0.weight"].shape[0])
        if "inv_head.3.weight" in sd:
            config["projection_dim"] = int(sd["inv_head.3.weight"].shape[0])
        return "pointnet", config, sd, None
    state = _dedupe_aliases(sd, _PARTSEG_ALIASES, path)
    head = OrderedDict((k, v) for k, v in state.items() if _HEAD_KEY.match(k))
    backbone = OrderedDict((k, v) for k, v in state.items() if not _HEAD_KEY.match(k))
    config = {}
    if "conv6.0.weight" in backbone:
        config["emb_dims"] = int(backbone["conv6.0.weight"].shape[0])
    if "inv_head.3.weight" in backbone:
        config["projection_dim"] = int(backbone["inv_head.3.weight"].shape[0])
    if layout == "dgcnn_partseg_pretrain":
        # only the unused BatchNorms of the fine-tuning head (bn7..bn10) may be there
        stray = [k for k in head if not re.match(r"^conv(7|8|9|10)\.1\.", k)]
        if stray:
            raise CheckpointError(f"{path}: incomplete part-segmentation head: unexpected keys {_fmt_keys(stray)}")
        head = None
    return "dgcnn_partseg", config, backbone, head


def check_finite(state: dict, path, what: str) -> None:
    """A :class:`CheckpointError` naming the tensors of ``state`` that hold NaN or inf.

    Such a file loads (the bytes are valid) but every feature computed with it is NaN: the run
    that wrote it diverged, or a damaged copy flipped bits inside a tensor's data."""
    bad = []
    for name, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel():
            n = t.numel() - int(torch.isfinite(t).sum())
            if n:
                bad.append(f"{name} ({n} of {t.numel()})")
    if bad:
        shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
        raise CheckpointError(
            f"{path}: {what} has non-finite weights (NaN or inf): {shown}. The training run that wrote it "
            "diverged, or the file is damaged; use an earlier checkpoint of the run (e.g. best.pt)")


def _load_strict(model: nn.Module, state: dict, path, what: str, hint: str = "") -> None:
    expected = set(model.state_dict().keys())
    got = set(state)
    missing, unexpected = expected - got, got - expected
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys ({_fmt_keys(missing)})")
        if unexpected:
            parts.append(f"unexpected keys ({_fmt_keys(unexpected)})")
        raise CheckpointError(f"{path}: does not match {what}: {'; '.join(parts)}{hint}")
    check_finite(state, path, what)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        msg = " ".join(str(exc).split())
        raise CheckpointError(f"{path}: does not match {what}: {msg[:600]}{hint}") from None


def _empty(build, *args, **kwargs) -> nn.Module:
    """Build a model without paying for its random initialisation (every tensor is then loaded)."""
    with torch.device("meta"):
        model = build(*args, **kwargs)
    return model.to_empty(device="cpu")


def _finish(model: nn.Module, device) -> nn.Module:
    model.eval()
    if device is not None:
        from crosspoint.device import resolve_device
        model.to(resolve_device(device))
    return model


# ------------------------------------------------------------------------------ loaders
#: kNN size of the official pretraining files (``scripts/script.sh``: ``--k 15`` for both
#: ``--model dgcnn`` and ``--model dgcnn_seg``)
OFFICIAL_PRETRAIN_K = 15
#: kNN size of the official part-segmentation fine-tuning (``train_partseg.py --k 40``: ``model.t7``)
OFFICIAL_FINETUNE_K = 40
#: DGCNN's own default, for a project checkpoint that does not record its k
FALLBACK_K = 20

#: where a loaded model's ``k`` came from (``model.k_source``)
K_SOURCES = ("argument", "checkpoint", "official default", "default")


class _Source:
    """What a point-model file holds: ``arch``, ``config`` (constructor kwargs), ``state``,
    ``head``, ``own`` (a project checkpoint), ``layout`` (of an official file), ``obj`` (as read)."""

    def __init__(self, arch, config, state, head, own, layout, obj):
        self.arch, self.config, self.state, self.head = arch, config, state, head
        self.own, self.layout, self.obj = own, layout, obj


def _point_source(path, entry_name: str = "point_encoder") -> _Source:
    obj = read_checkpoint(path)
    if _is_bundle(obj):
        _check_bundle(obj, path)
        entry = _bundle_entry(obj, entry_name, path)
        if entry["arch"] not in POINT_ARCHS:
            raise CheckpointError(f"{path}: unknown point encoder {entry['arch']!r} "
                                  f"(this version knows {', '.join(POINT_ARCHS)})")
        return _Source(entry["arch"], dict(entry.get("config", {})), _strip_prefixes(entry["state_dict"]),
                       obj.get("seg_head"), True, "bundle", obj)
    sd = _as_state_dict(obj, path)
    layout = _detect_layout(sd)
    arch, config, state, head = _official_point_state(sd, path)
    return _Source(arch, config, state, head, False, layout, obj)


def _int_k(v) -> "int | None":
    return int(v) if isinstance(v, int) and not isinstance(v, bool) and v >= 1 else None


def recorded_k(obj) -> "int | None":
    """The DGCNN k a project checkpoint (as read) records: its point encoder's config, else the
    training config (``config["model"]["k"]``, or a flat ``config["k"]``), else ``meta["k"]``;
    None for an official file or when none is recorded."""
    if not _is_bundle(obj):
        return None
    cands = []
    entry = obj.get("point_encoder")
    if isinstance(entry, dict) and isinstance(entry.get("config"), dict):
        cands.append(entry["config"].get("k"))
    cfg = obj.get("config")
    if isinstance(cfg, dict):
        cands.append(cfg["model"].get("k") if isinstance(cfg.get("model"), dict) else cfg.get("k"))
    meta = obj.get("meta")
    if isinstance(meta, dict):
        cands.append(meta.get("k"))
    for v in cands:
        if _int_k(v) is not None:
            return _int_k(v)
    return None


def _resolve_k(src: _Source, k, path, *, official: int) -> "tuple[int | None, str | None]":
    """``(k, where it came from)`` for a DGCNN of ``src`` (``(None, None)`` for PointNet)."""
    if src.arch == "pointnet":
        return None, None
    if k is not None:
        return int(k), "argument"
    if src.own:
        rec = recorded_k(src.obj)
        if rec is not None:
            return rec, "checkpoint"
        log.warning("%s: the checkpoint records no kNN size k; using %d (DGCNN's default). Pass k= if it "
                    "was trained with another.", path, FALLBACK_K)
        return FALLBACK_K, "default"
    return official, "official default"


def _tag_k(model: nn.Module, k_source) -> nn.Module:
    """Record where ``model.k`` came from (one of :data:`K_SOURCES`; None for PointNet)."""
    model.k_source = k_source
    return model


def describe_k(model) -> "str | None":
    """``"k = 15 (official default)"`` for a loaded DGCNN model; None for a model without k."""
    k = getattr(model, "k", None)
    if k is None:
        return None
    src = getattr(model, "k_source", None)
    return f"k = {k}" + (f" ({src})" if src else "")


def load_point_encoder(path: "str | os.PathLike", *, k: "int | None" = None, device=None,
                       entry: str = "point_encoder") -> PointEncoder:
    """A point encoder (eval mode) from an official CrossPoint file (DGCNN, part-segmentation DGCNN
    pretraining or fine-tuned: the backbone; with or without ``module.``) or a project checkpoint.

    ``k``: kNN size of the DGCNN models. None (the default) uses the k the model was trained with:
    a project checkpoint's recorded k (:func:`recorded_k`); for an official file the reference's
    :data:`OFFICIAL_PRETRAIN_K` = 15 (its pretraining ``--k 15``), or :data:`OFFICIAL_FINETUNE_K` =
    40 for a fine-tuned part-segmentation file (``model.t7``); else 20 with a logged warning.
    The encoder's ``k`` is the value used and ``k_source`` says where it came from ("argument",
    "checkpoint", "official default" or "default"; None for PointNet). ``device``: where to put it
    (default CPU). ``entry``: which point encoder of a project checkpoint (``"point_encoder"``, or
    :data:`SEG_BACKBONE_KEY` for the copy a segmentation head was fine-tuned with); official files
    hold one.
    """
    src = _point_source(path, entry)
    official = OFFICIAL_FINETUNE_K if src.layout == "dgcnn_partseg_finetuned" else OFFICIAL_PRETRAIN_K
    k_used, k_source = _resolve_k(src, k, path, official=official)
    config = dict(src.config)
    if k_used is not None:
        config["k"] = k_used
    try:
        model = _empty(build_point_encoder, src.arch, **config)
    except TypeError as exc:
        raise CheckpointError(f"{path}: bad {src.arch} config {config!r}: {exc}") from None
    _load_strict(model, src.state, path, f"the {src.arch} point encoder")
    return _tag_k(_finish(model, device), k_source)


def checkpoint_background(checkpoint) -> "tuple[str, str]":
    """``(background, where it came from)``: how the image encoder of ``checkpoint`` (a path, or a
    checkpoint already read with :func:`read_checkpoint`) saw transparent pixels, i.e. the
    ``background`` to give :func:`crosspoint.data.transforms.to_rgb` when feeding it images.

    * ``meta["background"]`` when set (a fine-tuning run records the background of the image encoder
      it copies) -> ``"checkpoint"``;
    * else a training config's ``data.background`` read through :func:`crosspoint.config.upgrade_legacy`
      (a config saved before the setting existed gives "white", what the project did then) ->
      ``"checkpoint"`` / ``"legacy default"``; else "white" (``"legacy default"``);
    * an official file: "drop", the reference's ``convert('RGB')`` (``"official default"``).
    """
    from crosspoint.config import upgrade_legacy
    from crosspoint.data.transforms import BACKGROUNDS

    obj = read_checkpoint(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
    if not _is_bundle(obj):
        return "drop", "official default"
    meta = obj.get("meta")
    if isinstance(meta, dict) and meta.get("background") in BACKGROUNDS:  # recorded with the image encoder
        return meta["background"], "checkpoint"
    cfg = obj.get("config")
    if isinstance(cfg, dict) and isinstance(cfg.get("data"), dict):
        saved = cfg["data"].get("background")
        value = upgrade_legacy(cfg)["data"].get("background")
        if value in BACKGROUNDS:
            return value, "checkpoint" if saved is not None else "legacy default"
    return "white", "legacy default"


def _guess_resnet(state: dict) -> "str | None":
    blocks = {int(m.group(1)) for k in state for m in [re.match(r"^resnet\.layer3\.(\d+)\.", k)] if m}
    if not blocks:
        return None
    n = max(blocks) + 1
    bottleneck = any(k.startswith("resnet.layer1.0.conv3.") for k in state)
    if bottleneck:
        return {6: "resnet50", 23: "resnet101"}.get(n)
    return {2: "resnet18", 6: "resnet34"}.get(n)


def load_image_encoder(path: "str | os.PathLike", *, arch: str = "resnet50", device=None) -> ImageEncoder:
    """An image encoder (eval mode) from an official ``img_model_best.pth``-style file (torchvision
    ResNet ``arch`` + ``inv_head``; ``module.`` accepted) or a project checkpoint (its own arch)."""
    obj = read_checkpoint(path)
    if _is_bundle(obj):
        _check_bundle(obj, path)
        entry = _bundle_entry(obj, "image_encoder", path)
        if entry["arch"] not in IMAGE_ARCHS:
            raise CheckpointError(f"{path}: unknown image encoder {entry['arch']!r}")
        try:
            model = _empty(build_image_encoder, entry["arch"], **dict(entry.get("config", {})))
        except TypeError as exc:
            raise CheckpointError(f"{path}: bad image encoder config: {exc}") from None
        _load_strict(model, _strip_prefixes(entry["state_dict"]), path, f"the {entry['arch']} image encoder")
        return _finish(model, device)
    state = _as_state_dict(obj, path)
    if not any(k.startswith("resnet.") for k in state):
        raise CheckpointError(f"{path}: not an image-encoder checkpoint (no resnet.* keys); "
                              f"found {_fmt_keys(state)}")
    config = {}
    if "inv_head.3.weight" in state:
        config["projection_dim"] = int(state["inv_head.3.weight"].shape[0])
    if "inv_head.0.weight" in state:
        config["hidden_dim"] = int(state["inv_head.0.weight"].shape[0])
    model = _empty(build_image_encoder, arch, **config)
    guess = _guess_resnet(state)
    hint = f" (the keys look like a {guess}: pass arch={guess!r})" if guess and guess != arch else ""
    _load_strict(model, state, path, f"the {arch} image encoder", hint)
    return _finish(model, device)


def load_part_segmenter(path: "str | os.PathLike", *, k: "int | None" = None, device=None) -> PartSegmenter:
    """A part segmenter (eval mode), ``(points (B, N, 3), category (B,)) -> logits (B, N, 50)``, from
    an official fine-tuned ``DGCNN_partseg`` file (``model.t7``) or a project checkpoint with a
    ``dgcnn_partseg`` point encoder and a ``seg_head``. ``k`` defaults to the saved value, else 40
    (the reference's fine-tuning ``--k 40``); ``k_source`` on the segmenter and its backbone says
    which (see :func:`load_point_encoder`)."""
    src = _point_source(path)
    arch, config, state, head, own = src.arch, dict(src.config), src.state, src.head, src.own
    if arch != "dgcnn_partseg":
        raise CheckpointError(f"{path}: holds a {arch} point encoder, not a part-segmentation DGCNN")
    if head is None:
        raise CheckpointError(f"{path}: no part-segmentation head in this checkpoint (a pretraining "
                              "checkpoint? fine-tune it first; load_point_encoder loads its backbone)")
    k_used, k_source = _resolve_k(src, k, path, official=OFFICIAL_FINETUNE_K)
    config["k"] = k_used
    try:
        backbone = _empty(build_point_encoder, arch, **config)
    except TypeError as exc:
        raise CheckpointError(f"{path}: bad {arch} config {config!r}: {exc}") from None
    _load_strict(backbone, state, path, "the part-segmentation backbone")
    if own:
        if not (isinstance(head, dict) and isinstance(head.get("state_dict"), dict)):
            raise CheckpointError(f"{path}: malformed 'seg_head' entry")
        try:
            seg_head = _empty(build_seg_head, head.get("arch", SEG_HEAD_ARCH), **dict(head.get("config", {})))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: bad seg_head entry: {exc}") from None
        head_state = _strip_prefixes(head["state_dict"])
    else:
        num_parts = int(head["conv11.weight"].shape[0]) if "conv11.weight" in head else 50
        num_cat = int(head["conv7.0.weight"].shape[1]) if "conv7.0.weight" in head else 16
        seg_head = _empty(build_seg_head, num_parts=num_parts, num_categories=num_cat, emb_dims=backbone.emb_dims)
        head_state = head
    _load_strict(seg_head, head_state, path, "the part-segmentation head")
    _tag_k(backbone, k_source)
    return _tag_k(_finish(PartSegmenter(backbone, seg_head), device), k_source)


# ------------------------------------------------------------------------------ export
def _add_aliases(sd: dict, aliases: dict, prefix: str = "") -> OrderedDict:
    out = OrderedDict(sd)
    for alias, target in aliases.items():
        for field in _BN_FIELDS:
            key = f"{prefix}{target}.{field}"
            if key in sd:
                out[f"{prefix}{alias}.{field}"] = sd[key]
    return out


def _default_bn(prefix: str, channels: int) -> dict:
    bn = nn.BatchNorm1d(channels)
    return {f"{prefix}.{k}": v.detach() for k, v in bn.state_dict().items()}


def to_official_state_dict(model: nn.Module) -> "OrderedDict[str, torch.Tensor]":
    """The state dict in the reference's layout (duplicated BatchNorm keys included), loadable with
    ``strict=True`` into the reference's ``DGCNN``, ``DGCNN_partseg`` (pretraining for a backbone,
    fine-tuned for a :class:`PartSegmenter`) or ``ResNet``."""
    model = _unwrap(model)
    if isinstance(model, DGCNN):
        return _add_aliases(_cpu_state(model), _DGCNN_ALIASES)
    if isinstance(model, DGCNNPartSeg):
        sd = _add_aliases(_cpu_state(model), _PARTSEG_ALIASES)
        for i, ch in zip(range(7, 11), (64, 256, 256, 128)):  # the pretraining model's unused head BNs
            sd.update(_default_bn(f"bn{i}", ch))
        return sd
    if isinstance(model, PartSegmenter):
        sd = _cpu_state(model.backbone)
        sd.update(_cpu_state(model.head))
        return _add_aliases(sd, _PARTSEG_ALIASES)
    if isinstance(model, ImageEncoder):
        return _cpu_state(model)
    raise TypeError(f"no official layout for {type(model).__name__}")


def save_official(model: nn.Module, path: "str | os.PathLike") -> Path:
    """Write :func:`to_official_state_dict` of ``model`` to ``path`` (atomically)."""
    return _atomic_save(to_official_state_dict(model), path)
