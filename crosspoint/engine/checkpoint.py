"""Training checkpoints that survive: atomic writes, everything needed to resume, safe loading.

A training checkpoint is the model bundle of :mod:`crosspoint.models.checkpoint` (so every
checkpoint opens in the explorer and in ``load_point_encoder``) plus the training state:

``optimizer``, ``scheduler``, ``scaler`` (state dicts), ``epoch`` (epochs completed),
``step`` (optimizer steps so far), ``step_in_epoch`` (steps done in the unfinished epoch, 0 at
epoch ends), ``rng`` (torch CPU/CUDA, numpy and Python generator states), ``config`` (the
resolved run config as a plain dict), ``best_acc``, ``history`` (per-epoch summaries).

Files are written to a temporary file in the same folder, flushed, fsync-ed and renamed over the
target, so a run killed at any moment leaves either the old or the new checkpoint, never half of
one. They load with ``torch.load(..., weights_only=True)``: tensors and plain Python types only.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from crosspoint.atomic import TEMP_GLOB, atomic_write_bytes_to
from crosspoint.atomic import atomic_write_text as atomic_write_text  # re-exported for the engine


class CheckpointWriteError(OSError):
    pass


def payload_bytes(obj) -> int:
    """The bytes of the tensors in ``obj`` (nested dicts/lists): about what ``torch.save`` writes."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(payload_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(payload_bytes(v) for v in obj)
    return 0


def _no_space(exc: BaseException, folder: Path, need: int) -> bool:
    import errno
    import shutil

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    if "no space left" in text:
        return True
    # torch.save's C++ writer reports a failed write as "[enforce fail at inline_container.cc] ... file
    # write failed" (a RuntimeError) without the cause: it is the disk when the checkpoint does not fit
    if "file write failed" in text or "inline_container" in text:
        try:
            return shutil.disk_usage(folder).free < need + (16 << 20)
        except OSError:
            return False
    return False


def atomic_torch_save(obj, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically (:mod:`crosspoint.atomic`). Errors become
    :class:`CheckpointWriteError` naming the checkpoint; a full disk says so, with the space needed
    (the temporary file is removed and the previous checkpoint under ``path`` stays intact)."""
    import shutil

    path = Path(path)
    try:
        return atomic_write_bytes_to(path, lambda fh: torch.save(obj, fh))
    except (OSError, RuntimeError) as exc:
        if _no_space(exc, path.parent, payload_bytes(obj)):
            need = payload_bytes(obj) / 2**20
            try:
                free = shutil.disk_usage(path.parent).free / 2**20
                where = f"{_mount_point(path.parent)} ({free:.0f} MB free)"
            except OSError:
                where = str(path.parent)
            raise CheckpointWriteError(
                f"could not write checkpoint {path}: no space left on {where}, about {need:.0f} MB needed; "
                "earlier checkpoints are intact") from None
        if isinstance(exc, OSError):
            raise CheckpointWriteError(f"could not write checkpoint {path}: {exc.strerror or exc}") from None
        if "inline_container" in str(exc) or "file write failed" in str(exc):
            raise CheckpointWriteError(f"could not write checkpoint {path}: the write failed "
                                       f"({str(exc).splitlines()[0][:200]}); earlier checkpoints are intact") from None
        raise


def _mount_point(p: Path) -> str:
    p = p.resolve()
    while not p.is_mount() and p != p.parent:
        p = p.parent
    return str(p)


def clean_stale_temp_files(folder: str | Path) -> list[Path]:
    """Remove ``.*.tmp`` leftovers of writes that a killed process never finished."""
    removed = []
    for p in Path(folder).glob(TEMP_GLOB):
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


# -- random number generator states -----------------------------------------------------------
def capture_rng_state() -> dict:
    """Generator states as tensors and plain types (``weights_only``-loadable)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    if not state:
        return
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu().to(torch.uint8))
    if "numpy" in state:
        s = state["numpy"]
        np.random.set_state((s["name"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"],
                             s["cached_gaussian"]))
    if "python" in state:
        random.setstate(_python_state_from_plain(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all([t.cpu().to(torch.uint8) for t in state["cuda"]])
        except (RuntimeError, IndexError):  # a different number of GPUs: per-device streams restart
            pass


def _python_state_to_plain(st):
    version, internal, gauss = st
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _python_state_from_plain(d):
    return (d["version"], tuple(int(v) for v in d["internal"].tolist()), d["gauss"])


def load_training_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint on the CPU with ``weights_only=True``; clear errors for missing/corrupt/foreign
    files (:func:`~crosspoint.models.checkpoint.read_checkpoint`: truncated with its sizes, not a torch
    file, a pickle needing code execution, said in sentences)."""
    from crosspoint.models.checkpoint import CheckpointError, read_checkpoint

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or "optimizer" not in ckpt or "epoch" not in ckpt:
        raise CheckpointError(f"{path}: not a CrossPoint Explorer training checkpoint (no optimizer/epoch state); "
                              "to start from pretrained weights use `crosspoint pretrain --init FILE`")
    return ckpt
