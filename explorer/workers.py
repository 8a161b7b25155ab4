"""Background work off the GUI thread, on superqt's workers.

- :func:`run_in_thread` runs a plain function; its result or exception comes back to the GUI thread.
- :func:`run_generator` runs a generator that ``yield``-s progress (``(done, total, text)``) and
  checks for cancellation at each yield (``worker.quit()``); the GUI stays responsive and can cancel.

Training never runs here: it runs in a subprocess (:mod:`explorer.training`).
"""

from __future__ import annotations

import logging
from typing import Callable

from superqt.utils import GeneratorWorker, WorkerBase, create_worker

log = logging.getLogger(__name__)

# Workers must stay referenced until they finish; the GUI objects that start them may go away.
_LIVE: set[WorkerBase] = set()


def _track(worker: WorkerBase) -> WorkerBase:
    _LIVE.add(worker)
    worker.finished.connect(lambda: _LIVE.discard(worker))
    return worker


def run_in_thread(func: Callable, *args, on_result: Callable | None = None, on_error: Callable | None = None,
                  on_finished: Callable | None = None, **kwargs) -> WorkerBase:
    """Run ``func(*args, **kwargs)`` in a thread; callbacks run in the GUI thread."""
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


def run_generator(gen_func: Callable, *args, on_progress: Callable | None = None, on_result: Callable | None = None,
                  on_error: Callable | None = None, on_finished: Callable | None = None,
                  **kwargs) -> GeneratorWorker:
    """Run a generator function in a thread. Each ``yield`` value goes to ``on_progress``; ``worker.quit()``
    stops it at the next yield (``on_finished`` still runs; ``on_result`` does not)."""
    worker = create_worker(gen_func, *args, _start_thread=False, _ignore_errors=True, **kwargs)
    if on_progress is not None:
        worker.yielded.connect(on_progress)
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
