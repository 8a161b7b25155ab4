"""Atomic file writes: a crash or a kill mid-write never leaves half a file under the final name.

Every writer in the project (checkpoints, configs, caches, exported point clouds) goes through
:func:`atomic_write`: the data goes to a temporary file in the same folder (``.NAME.*.tmp``, so a
rename is atomic on the same file system), is flushed to disk, then renamed over the target; the
folder is synced so that the rename itself survives a power cut. On any error the temporary
file is removed and the error propagates; the previous file, if any, is untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write", "atomic_write_bytes_to", "atomic_write_text", "TEMP_GLOB"]

#: what leftovers of writes that a killed process never finished look like
TEMP_GLOB = ".*.tmp"


def _fsync_path(path: str, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process umask, read without changing it where the OS tells it (Linux), else set and reset."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def atomic_write(path, write: Callable[[str], None], *, durable: bool = True) -> Path:
    """Call ``write(tmp)`` with a temporary path beside ``path`` (the callable creates and fills the
    file), then move it over ``path``. ``durable``: fsync the file and its folder first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp creates 0600; a written file gets the mode any other tool's would (0666 less the
        # umask, usually 0644), so a teammate can read a shared run's checkpoints
        os.chmod(tmp, 0o666 & ~_umask())
        if durable:
            _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        _fsync_path(str(path.parent), directory=True)
    return path


def atomic_write_bytes_to(path, dump: Callable, *, durable: bool = True) -> Path:
    """:func:`atomic_write` for writers that take an open binary file (``np.savez``, ``torch.save``)."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            dump(fh)

    return atomic_write(path, write, durable=durable)


def atomic_write_text(path, text: str, *, durable: bool = True) -> Path:
    """``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), durable=durable)
