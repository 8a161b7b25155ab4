"""Pieces shared by the analysis modules: errors, cancellation, progress, caches, small maths."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np

log = logging.getLogger(__name__)

Progress = Optional[Callable[[int, int, str], None]]
Cancel = Optional[Callable[[], bool]]

#: bump when anything that changes cached numbers changes (protocol, file layout)
CACHE_VERSION = 1


class AnalysisError(ValueError):
    """A request the analysis cannot serve (missing model part, bad input); the message says why."""


class Cancelled(Exception):
    """Raised when the caller's ``cancel()`` returned true (checked between batches)."""


def check_cancel(cancel: Cancel, what: str = "analysis") -> None:
    if cancel is not None and cancel():
        raise Cancelled(f"{what} cancelled")


def report(progress: Progress, done: int, total: int, text: str = "") -> None:
    if progress is not None:
        progress(int(done), int(total), str(text))


def user_cache_dir(*parts: str) -> Path:
    """``<user cache>/crosspoint-explorer/<parts>`` (``CROSSPOINT_CACHE_DIR`` overrides the base)."""
    base = os.environ.get("CROSSPOINT_CACHE_DIR")
    if not base:
        import platformdirs

        base = platformdirs.user_cache_dir("crosspoint-explorer")
    return Path(base).joinpath(*parts)


def atomic_savez(path: Path, **arrays) -> Path:
    """``np.savez`` to ``path`` atomically (:mod:`crosspoint.atomic`)."""
    from crosspoint.atomic import atomic_write_bytes_to

    return atomic_write_bytes_to(path, lambda fh: np.savez(fh, **arrays))


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """:func:`crosspoint.evaluation.retrieval.l2_normalize` in float32, the analyses' feature dtype."""
    from crosspoint.evaluation.retrieval import l2_normalize as _unit_rows

    return _unit_rows(x, np.float32)


def unit_range(h: np.ndarray) -> np.ndarray:
    """``h / max(h)`` for non-negative ``h`` (all zeros stay zeros), float32 in [0, 1]."""
    h = np.asarray(h, dtype=np.float32)
    m = float(h.max()) if h.size else 0.0
    if not np.isfinite(m) or m <= 0:
        return np.zeros_like(h, dtype=np.float32)
    return np.clip(h / m, 0.0, 1.0).astype(np.float32)


def image_array_uint8(image) -> np.ndarray:
    """An image array as ``(H, W, 3 or 4)`` uint8: grey is repeated to RGB, floats in [0, 1] are
    scaled to 0-255 (other floats taken as 0-255), rounded and clipped."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise AnalysisError(f"an image must be (H, W, 3) or (H, W, 4), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        a = arr.astype(np.float64)
        if a.size and a.max() <= 1.0:
            a = a * 255.0
        arr = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return arr
