"""Shared test fixtures.

Tests read the small real files in ``../shared/data`` and the reference checkpoints in
``../shared/fixtures`` (beside the checkout, as CI has them); the application never needs them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CROSSPOINT_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"
REFERENCE_FIXTURES = SHARED / "fixtures" / "crosspoint_reference"

# Keep tests snappy and deterministic on the 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "crosspoint-explorer" / "numba"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def reference_fixtures() -> Path:
    if not REFERENCE_FIXTURES.is_dir():
        pytest.skip(f"reference checkpoints not found at {REFERENCE_FIXTURES}")
    return REFERENCE_FIXTURES


def _configure_gui_environment() -> None:
    """Qt: use the real display (Xvfb in CI) when there is one, else the offscreen platform; keep the
    explorer's settings out of the user's home."""
    import tempfile

    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("CROSSPOINT_EXPLORER_CONFIG_DIR", tempfile.mkdtemp(prefix="crosspoint-explorer-cfg-"))
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="xdg-runtime-")


_configure_gui_environment()


@pytest.fixture(autouse=True)
def _drain_gui_workers():
    """After a GUI test, cancel and wait for the explorer's background workers: a worker that
    outlives its test (or the interpreter) reports to Qt objects that are gone."""
    yield
    workers = sys.modules.get("explorer.workers")
    if workers is not None:
        workers.drain(60_000)


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """A shown explorer main window with its own settings and cache folders."""
    monkeypatch.setenv("CROSSPOINT_CACHE_DIR", str(tmp_path / "cache"))
    from explorer.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 860)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
