"""Numba kernels compiled once, on first use, from any thread; and the one thread pool they share.

Every module with numba code (DGCNN ops, image augmentation, the rasteriser, LZF) builds its kernels
through :class:`LazyKernels`::

    _KERNELS = LazyKernels(_build, "DGCNN kernels")
    k = _KERNELS.get()          # the built kernels, or None (numba missing or broken, or
                                # CROSSPOINT_NO_NUMBA=1): callers fall back to torch / numpy

The first ``get`` builds under a lock (a second thread waits instead of compiling again); a build
that fails is logged once and remembered as unavailable. :func:`kernel_pool` is the process's thread
pool for kernels that split rows across threads (they release the GIL): created under a lock, grown
when more threads are asked for, and made anew in a forked child.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

log = logging.getLogger(__name__)

__all__ = ["LazyKernels", "kernel_pool", "numba_disabled"]


def numba_disabled() -> bool:
    """``CROSSPOINT_NO_NUMBA`` set to anything but "" or "0"."""
    return os.environ.get("CROSSPOINT_NO_NUMBA", "").strip() not in ("", "0")


class LazyKernels:
    """``build()`` run once, on the first :meth:`get`, under a lock; its result, or None when it
    failed (or numba is disabled and ``respect_env``)."""

    def __init__(self, build: Callable, name: str, *, respect_env: bool = True):
        self._build, self.name, self.respect_env = build, name, respect_env
        self._value = None
        self._state = "new"  # "new" | "ready" | "unavailable"
        self._lock = threading.Lock()

    def get(self):
        if self._state == "new":
            with self._lock:
                if self._state == "new":
                    if self.respect_env and numba_disabled():
                        self._state = "unavailable"
                    else:
                        try:
                            self._value = self._build()
                            self._state = "ready"
                        except Exception as exc:  # noqa: BLE001 - numba missing or broken: fall back
                            log.info("%s unavailable (%s); using the fallback", self.name, exc)
                            self._state = "unavailable"
        return self._value if self._state == "ready" else None

    @property
    def built(self) -> bool:
        return self._state == "ready"


_POOL = None
_POOL_SIZE = 0
_POOL_PID = None
_POOL_LOCK = threading.Lock()


def kernel_pool(workers: int):
    """A :class:`~concurrent.futures.ThreadPoolExecutor` with at least ``workers`` threads."""
    global _POOL, _POOL_SIZE, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_PID != os.getpid() or _POOL_SIZE < workers:
            from concurrent.futures import ThreadPoolExecutor

            old = _POOL if _POOL_PID == os.getpid() else None
            _POOL = ThreadPoolExecutor(max_workers=int(workers), thread_name_prefix="crosspoint-kernel")
            _POOL_SIZE, _POOL_PID = int(workers), os.getpid()
            if old is not None:
                old.shutdown(wait=False)
        return _POOL
