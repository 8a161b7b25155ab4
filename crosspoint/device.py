"""Device selection and mixed precision, in one place so that no module hard-codes a device.

``resolve_device("auto")`` picks the first CUDA device when there is one and the CPU otherwise;
``"cuda"``, ``"cuda:1"``, ``"cpu"`` (or a :class:`torch.device`) are checked and returned.
:func:`autocast` is the mixed-precision context the models are written for: bfloat16 autocast on
CUDA (matrix products in bf16, BatchNorm statistics and losses kept in float32 by the models),
and a no-op on the CPU.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["resolve_device", "autocast", "amp_dtype"]


def resolve_device(spec: "str | torch.device | None" = "auto", local_rank: int = 0) -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` (or a device) into a usable :class:`torch.device`.

    ``local_rank`` (a torchrun process's ``LOCAL_RANK``) picks the GPU for ``"auto"`` and a bare
    ``"cuda"``: process *r* of a node gets ``cuda:r`` (modulo the GPU count); never a hard-coded GPU.
    Raises ``ValueError`` with a clear message for an unknown name, for CUDA on a machine without
    it, or for a CUDA index that does not exist.
    """
    if isinstance(spec, torch.device):
        name = str(spec)
    else:
        name = (spec or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and torch.cuda.is_available():
        return torch.device("cuda", int(local_rank) % max(torch.cuda.device_count(), 1))
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {spec!r} (use 'auto', 'cpu', 'cuda' or 'cuda:N')") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} requested but CUDA is not available on this machine")
        index = 0 if dev.index is None else dev.index
        count = torch.cuda.device_count()
        if index >= count:
            raise ValueError(f"device {spec!r} requested but this machine has {count} CUDA device(s)")
        return torch.device("cuda", index)
    if dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"device {spec!r} requested but MPS is not available on this machine")
        return dev
    if dev.type != "cpu":
        raise ValueError(f"unsupported device {spec!r} (use 'auto', 'cpu', 'cuda' or 'cuda:N')")
    return dev


def amp_dtype(device: "str | torch.device") -> "torch.dtype | None":
    """The autocast dtype used on ``device``: bfloat16 on CUDA GPUs that support it, else None."""
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    if dev.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: "str | torch.device", enabled: bool = True, dtype: "torch.dtype | None" = None):
    """Mixed-precision context for ``device``: bf16 autocast on CUDA, a no-op elsewhere (or when
    ``enabled`` is false)."""
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    dtype = dtype or amp_dtype(dev)
    if not enabled or dtype is None or dev.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)
