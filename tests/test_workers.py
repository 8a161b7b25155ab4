"""explorer.workers on their own: results, errors and progress come back to the GUI thread; a job
cancels at its next check; callbacks of a deleted owner are dropped; drain() waits for everything."""

from __future__ import annotations

import threading
import time



def test_run_in_thread_returns_results_and_errors_in_the_gui_thread(qtbot):
    from PyQt6.QtCore import QThread

    from explorer.workers import run_in_thread

    gui = QThread.currentThread()
    got, where = [], []

    def on_result(v):
        got.append(v)
        where.append(QThread.currentThread() is gui)

    w = run_in_thread(lambda a, b: a + b, 2, 3, on_result=on_result)
    qtbot.waitUntil(lambda: got == [5], timeout=5000)
    assert where == [True]
    errors = []
    run_in_thread(lambda: 1 / 0, on_error=errors.append)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert isinstance(errors[0], ZeroDivisionError)
    assert w is not None


def test_run_job_reports_progress_and_cancels(qtbot):
    from explorer.workers import drain, run_job

    seen, results, finished = [], [], []
    started = threading.Event()

    def work(progress, cancel):
        for i in range(1000):
            started.set()
            progress(i, 1000, "step")
            if cancel():
                return "cancelled at %d" % i
            time.sleep(0.002)
        return "ran to the end"

    job = run_job(work, on_progress=lambda d, t, s: seen.append(d), on_result=results.append,
                  on_finished=lambda: finished.append(True))
    assert started.wait(5)
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=5000)
    job.cancel()
    qtbot.waitUntil(lambda: finished == [True], timeout=5000)
    assert job.done and results and results[0].startswith("cancelled at")
    assert drain(2000)


def test_callbacks_of_a_deleted_owner_are_dropped(qtbot):
    from PyQt6 import sip
    from PyQt6.QtWidgets import QWidget

    from explorer.workers import drain, run_in_thread

    owner = QWidget()
    calls = []
    gate = threading.Event()
    run_in_thread(lambda: gate.wait(5) and 1, on_result=calls.append, owner=owner)
    owner.deleteLater()
    qtbot.waitUntil(lambda: sip.isdeleted(owner), timeout=5000)
    gate.set()
    assert drain(5000)
    qtbot.wait(50)
    assert calls == []
