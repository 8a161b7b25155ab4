"""Shared test fixtures.

Tests read the small real files in ``../shared/data`` and the reference checkpoints in
``../shared/fixtures`` (beside the checkout, as CI has them; ``CROSSPOINT_SHARED`` points
elsewhere); the application never needs them. Without them those tests skip -- except under CI
(``CI`` set, as every CI service does), where a missing folder fails the run before any test.
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
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as crosspoint/__init__.py sets it (see there)
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "crosspoint-explorer" / "numba"))


# fixture name -> (folder, what it holds)
SHARED_FOLDERS = {
    "shared_data": (SHARED_DATA, "shared test data"),
    "reference_fixtures": (REFERENCE_FIXTURES, "reference checkpoints"),
}


def under_ci() -> bool:
    """True when the ``CI`` environment variable is set to anything but empty / 0 / false / no."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing_shared(name: str) -> None:
    folder, what = SHARED_FOLDERS[name]
    if folder.is_dir():
        return
    msg = f"{what} not found at {folder}"
    if under_ci():
        pytest.fail(f"{msg}; under CI the shared files must be present (set CROSSPOINT_SHARED)", pytrace=False)
    pytest.skip(msg)


def pytest_collection_modifyitems(config, items) -> None:
    """Under CI, fail the run up front when selected tests need a ``../shared`` folder that is missing."""
    if not under_ci():
        return
    lines = []
    for name, (folder, what) in SHARED_FOLDERS.items():
        if folder.is_dir():
            continue
        needing = [it.nodeid for it in items if name in getattr(it, "fixturenames", ())]
        if needing:
            lines.append(f"{what} not found at {folder}; {len(needing)} selected test(s) need it, "
                         f"e.g. {', '.join(needing[:3])}")
    if lines:
        raise pytest.UsageError(
            "CI is set, so tests that need the shared files may not skip:\n  " + "\n  ".join(lines)
            + "\nput the shared folder beside the checkout, point CROSSPOINT_SHARED at it, or unset CI"
        )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    _missing_shared("shared_data")
    return SHARED_DATA


@pytest.fixture(scope="session")
def reference_fixtures() -> Path:
    _missing_shared("reference_fixtures")
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
