"""crosspoint.lazykernels: one build from many threads, failures remembered, the pool shared."""

from __future__ import annotations

import threading
import time

from crosspoint.lazykernels import LazyKernels, kernel_pool


def test_kernels_are_built_once_whatever_the_number_of_threads(monkeypatch):
    monkeypatch.delenv("CROSSPOINT_NO_NUMBA", raising=False)
    calls = []

    def build():
        calls.append(1)
        time.sleep(0.05)  # long enough for the other threads to arrive meanwhile
        return {"k": len(calls)}

    lazy = LazyKernels(build, "test kernels")
    got = []
    threads = [threading.Thread(target=lambda: got.append(lazy.get())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and all(g is got[0] for g in got) and got[0] == {"k": 1} and lazy.built


def test_a_failed_build_is_remembered_and_the_switch_is_respected(monkeypatch):
    monkeypatch.delenv("CROSSPOINT_NO_NUMBA", raising=False)
    calls = []

    def broken():
        calls.append(1)
        raise ImportError("no numba here")

    lazy = LazyKernels(broken, "broken kernels")
    assert lazy.get() is None and lazy.get() is None and calls == [1]
    monkeypatch.setenv("CROSSPOINT_NO_NUMBA", "1")
    off = LazyKernels(lambda: calls.append(2) or "built", "switched off")
    assert off.get() is None and calls == [1]


def test_the_kernel_pool_grows_and_is_shared():
    a = kernel_pool(1)
    assert kernel_pool(1) is a
    b = kernel_pool(3)
    assert kernel_pool(2) is b
    assert sorted(b.map(lambda x: x * x, range(5))) == [0, 1, 4, 9, 16]
