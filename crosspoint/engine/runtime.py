"""Process setup for training: device, distributed (torchrun / DDP), AMP, threads, signals.

``torchrun --nproc_per_node=G -m crosspoint pretrain ...`` sets ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK``; :func:`setup_runtime` then joins the process group (NCCL on CUDA, gloo on CPU)
and pins each process to its local GPU. The same command without torchrun runs one process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    distributed: bool = False
    amp_dtype: torch.dtype | None = None  # bf16/fp16 autocast on CUDA, None = full precision

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def barrier(self) -> None:
        if self.distributed:
            if self.device.type == "cuda":
                torch.distributed.barrier(device_ids=[self.device.index])
            else:
                torch.distributed.barrier()

    def shutdown(self) -> None:
        if self.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """:func:`crosspoint.device.resolve_device` for the training loop (errors as ``RuntimeError``)."""
    from crosspoint.device import resolve_device as _resolve

    try:
        return _resolve(name, local_rank)
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    amp = (amp or "auto").lower()
    if device.type != "cuda" or amp == "off":
        return None
    if amp in ("auto", "bf16"):
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if amp == "bf16":
            raise RuntimeError("bf16 autocast requested but this GPU does not support bfloat16")
        return torch.float16
    if amp == "fp16":
        return torch.float16
    raise RuntimeError(f"unknown amp setting {amp!r}")


def setup_runtime(device: str = "auto", amp: str = "auto", threads: int = 0) -> Runtime:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if threads > 0:
        torch.set_num_threads(threads)
    dev = resolve_device(device, local_rank)
    distributed = world_size > 1
    if distributed and not torch.distributed.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        torch.distributed.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                             device_id=dev if dev.type == "cuda" else None)
        log.info("joined process group: rank %d/%d, backend %s, device %s", rank, world_size, backend, dev)
    elif dev.type == "cuda":
        torch.cuda.set_device(dev)
    return Runtime(device=dev, rank=rank, world_size=world_size, local_rank=local_rank, distributed=distributed,
                   amp_dtype=resolve_amp(amp, dev))


class StopFlag:
    """Set by SIGINT/SIGTERM: the loop finishes its step, writes ``last`` and exits cleanly.

    A second signal restores the default handler, so pressing Ctrl+C twice still interrupts.
    """

    def __init__(self):
        self.requested = False
        self.signal_name: str | None = None
        self._old = {}

    def install(self) -> "StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. tests): signals are not ours to take
                pass
        return self

    def _handle(self, signum, frame):
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        log.warning("%s received: finishing the current step, then writing the last checkpoint",
                    self.signal_name)
        signal.signal(signum, self._old.get(signum, signal.SIG_DFL))

    def restore(self) -> None:
        for sig, old in self._old.items():
            try:
                signal.signal(sig, old)
            except (ValueError, TypeError):
                pass
        self._old.clear()
