"""One process owns a run folder: an advisory lock held for the run's whole life.

``RUN/.lock`` is locked with ``fcntl.flock`` (exclusive, non-blocking) when a run starts or resumes
and stays locked until the process exits; the operating system releases it on any death, SIGKILL
included, so a lock never outlives its holder and never needs cleaning up by hand. The file holds the
holder's pid, host and start time as JSON, for the message a second process gets::

    with RunLock(run_dir):          # RunLocked: "... is in use by pid 4242 on node17 since ..."
        train()

    holder = lock_holder(run_dir)   # None, or {"pid": ..., "host": ..., "since": ...} (the explorer)

A lock on a network file system that does not support ``flock`` degrades to no lock with a warning
(the run still works; two runs in one folder are then the user's to avoid).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["RunLock", "RunLocked", "lock_holder", "LOCK_NAME"]

LOCK_NAME = ".lock"


class RunLocked(RuntimeError):
    """The run folder is owned by another live process."""

    def __init__(self, run_dir: Path, holder: dict | None):
        self.run_dir, self.holder = Path(run_dir), holder or {}
        super().__init__(f"{run_dir} is in use by {describe_holder(self.holder)}; wait for that run to end or stop "
                         "it (Ctrl+C / SIGTERM writes its last checkpoint), or choose another --out")


def describe_holder(holder: dict | None) -> str:
    if not holder:
        return "another process"
    since = holder.get("since")
    when = time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(since)) if since else ""
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}{when}"


def _read_holder(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class RunLock:
    """The exclusive lock of ``run_dir`` (created if missing). ``acquire()`` raises
    :class:`RunLocked` when another process holds it; ``release()`` is idempotent."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunLock":
        import fcntl

        if self._fd is not None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + 0.5
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(self.path)
                # an owner writes its pid at once; a lock with no owner named is a probe (lock_holder(),
                # e.g. the explorer's every 1.5 s) that lets go within microseconds: wait for it briefly
                if holder or time.monotonic() > deadline:
                    os.close(fd)
                    raise RunLocked(self.run_dir, holder) from None
                time.sleep(0.01)
            except OSError as exc:  # e.g. ENOLCK on a file system without flock
                log.warning("%s: cannot lock the run folder (%s); two runs in it would not be stopped",
                            self.run_dir, exc)
                os.close(fd)
                return self
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        import fcntl

        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_holder(run_dir: str | Path) -> dict | None:
    """Who holds ``run_dir`` now: ``{"pid", "host", "since"}``, or None when no live process does.
    Probes the lock without keeping it (a free lock is released at once)."""
    import fcntl

    path = Path(run_dir) / LOCK_NAME
    if not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(path) or {}
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
