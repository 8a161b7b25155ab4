"""Tests that need ``../shared`` skip locally without it, but fail the run under CI (conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NEEDS_SHARED = "tests/test_cli_info.py::test_info_json"
QT_GUARD = "tests/test_cli_info.py::test_the_library_never_imports_qt"


def _pytest(tmp_path, *args, ci: str | None):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["CROSSPOINT_SHARED"] = str(tmp_path / "no-shared-here")
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_missing_shared_files_skip_locally(tmp_path):
    r = _pytest(tmp_path, NEEDS_SHARED, ci=None)
    assert r.returncode == 0 and "1 skipped" in r.stdout, r.stdout + r.stderr
    r = _pytest(tmp_path, NEEDS_SHARED, ci="false")
    assert r.returncode == 0 and "1 skipped" in r.stdout, r.stdout + r.stderr


def test_missing_shared_files_fail_the_run_under_ci(tmp_path):
    r = _pytest(tmp_path, NEEDS_SHARED, ci="true")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "CI is set" in out and "shared test data not found" in out and NEEDS_SHARED in out


def test_the_qt_guard_needs_no_shared_files(tmp_path):
    r = _pytest(tmp_path, "--collect-only", QT_GUARD, ci="true")
    assert r.returncode == 0 and "1 test collected" in r.stdout, r.stdout + r.stderr
