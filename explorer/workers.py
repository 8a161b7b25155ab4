"""Background work off the GUI thread, on superqt's workers.

- :func:`run_in_thread` runs a plain function; its result or exception comes back to the GUI thread.
- :func:`run_job` runs a :mod:`crosspoint.analysis` function (``progress``/``cancel`` keywords) as a
  cancellable :class:`Job` whose progress reaches the GUI thread as a signal.

Training never runs here: it runs in a subprocess (:mod:`explorer.training`).
"""

from __future__ import annotations

import logging
import weakref
from typing import Callable, NoReturn

from PyQt6.QtCore import QObject, pyqtSignal
from superqt.utils import WorkerBase, create_worker

log = logging.getLogger(__name__)

# Workers must stay referenced until they finish; the GUI objects that start them may go away.
_LIVE: set[WorkerBase] = set()
# Jobs still running (so that drain() can cancel them).
_JOBS: "weakref.WeakSet[Job]" = weakref.WeakSet()


def _track(worker: WorkerBase) -> WorkerBase:
    _LIVE.add(worker)
    worker.finished.connect(lambda: _LIVE.discard(worker))
    return worker


def _guard(owner, cb: Callable | None) -> Callable | None:
    """``cb`` that does nothing once ``owner`` (a QObject) has been deleted: a worker may finish after
    the widget that started it has gone (a closed window)."""
    if cb is None or owner is None:
        return cb
    from PyQt6 import sip

    def guarded(*a):
        if not sip.isdeleted(owner):
            cb(*a)

    return guarded


def freeze_heap() -> None:
    """Move every object alive now out of the garbage collector's view (``gc.freeze``).

    With torch, numba, scikit-learn and a model loaded, the process tracks ~340k container objects,
    and a full (generation-2) collection over them holds the GIL for 100-150 ms: a freeze of the
    GUI at a random moment, whichever thread triggered it (measured: the 3D view stalled 138 ms
    while a worker listed a dataset). Called once the long-lived objects exist (startup, a loaded
    checkpoint), it makes those collections scan only what came later. Frozen garbage is never
    freed, so this is for the few moments after large, long-lived allocations."""
    import gc

    gc.freeze()


def drain(timeout_ms: int = 5000) -> bool:
    """Cancel running jobs and wait (bounded) for the thread pool, so that no worker reports to
    signal objects Qt has already destroyed. True when all finished."""
    from PyQt6.QtCore import QThreadPool

    for job in list(_JOBS):
        job.cancel()
    return bool(QThreadPool.globalInstance().waitForDone(timeout_ms))


def exit_after_drain(code: int, timeout_ms: int = 10_000) -> "NoReturn":
    """End the application process: wait (bounded) for background work, flush the logs and the
    standard streams, and leave with ``os._exit(code)``.

    Interpreter finalisation is skipped on purpose: tearing down Qt, Open3D's GL context, torch and
    numba in whatever order Python's shutdown picks crashed the process with SIGSEGV after a clean
    run (about 1 exit in 6 under Xvfb, no Python frame on the stack), and a thread still inside
    torch at shutdown can do the same. Settings are written in ``closeEvent`` before this point.
    """
    import logging as _logging
    import os
    import sys

    if not drain(timeout_ms):
        log.warning("background work still running at exit; leaving without waiting for it")
    _logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    os._exit(int(code))


def run_in_thread(func: Callable, *args, on_result: Callable | None = None, on_error: Callable | None = None,
                  on_finished: Callable | None = None, owner=None, **kwargs) -> WorkerBase:
    """Run ``func(*args, **kwargs)`` in a thread; callbacks run in the GUI thread (and not at all once
    ``owner`` has been deleted)."""
    on_result, on_error, on_finished = (_guard(owner, c) for c in (on_result, on_error, on_finished))
    worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True, **kwargs)
    if on_result is not None:
        worker.returned.connect(on_result)
    if on_error is not None:
        worker.errored.connect(on_error)
    else:
        worker.errored.connect(lambda e: log.error("background task failed: %s", e, exc_info=e))
    if on_finished is not None:
        worker.finished.connect(on_finished)
    _track(worker)
    worker.start()
    return worker


class Job(QObject):
    """A cancellable background computation with progress, for functions taking ``progress`` and
    ``cancel`` keyword arguments (the :mod:`crosspoint.analysis` convention)."""

    progress = pyqtSignal(int, int, str)

    def __init__(self, name: str = ""):
        super().__init__()
        self.name = name
        self.cancelled = False
        self.done = False
        self.worker: WorkerBase | None = None

    def cancel(self) -> None:
        self.cancelled = True


def run_job(func: Callable, *, name: str = "", on_result: Callable | None = None, on_error: Callable | None = None,
            on_progress: Callable | None = None, on_finished: Callable | None = None, owner=None) -> Job:
    """Run ``func(progress=..., cancel=...)`` in a thread; progress reaches the GUI thread as a signal."""
    job = Job(name)
    if on_progress is not None:
        job.progress.connect(_guard(owner, on_progress))

    def progress(done, total, text=""):
        job.progress.emit(int(done), int(total), str(text))

    def work():
        return func(progress=progress, cancel=lambda: job.cancelled)

    def finished():
        job.done = True
        _JOBS.discard(job)
        if on_finished is not None:
            on_finished()

    _JOBS.add(job)
    job.worker = run_in_thread(work, on_result=on_result, on_error=on_error, on_finished=_guard(owner, finished)
                               if on_finished is not None else finished, owner=owner)
    return job


class StallMeter(QObject):
    """Measures how long the GUI event loop goes without running: a timer that should fire every
    ``interval_ms``; the longest gap beyond that is the worst stall the user could feel."""

    def __init__(self, parent=None, interval_ms: int = 10):
        from PyQt6.QtCore import QElapsedTimer, QTimer

        super().__init__(parent)
        self.interval_ms = interval_ms
        self._clock = QElapsedTimer()
        self._clock.start()
        self._last = 0
        self.max_stall_ms = 0.0
        self.samples = 0
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _tick(self) -> None:
        now = self._clock.elapsed()
        gap = now - self._last - self.interval_ms
        self._last = now
        self.samples += 1
        if self.samples > 1 and gap > self.max_stall_ms:
            self.max_stall_ms = float(gap)

    def reset(self) -> None:
        self.max_stall_ms = 0.0
        self.samples = 0
        self._last = self._clock.elapsed()
