"""The import layers of ``crosspoint`` hold: the import-linter contracts in pyproject.toml.

``commands -> engine | analysis -> evaluation -> data : models -> io | render | losses -> core``,
and no Qt or explorer import anywhere in the library. Run ``lint-imports`` for the full report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import under_ci

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def lint_imports():
    """``lint-imports`` (no cache) from the repository root, where pyproject.toml is: ``run(config=None)``
    returns (exit status, report). A separate process, because import-linter reconfigures logging."""
    try:
        import importlinter  # noqa: F401
    except ImportError:
        if under_ci():
            pytest.fail("import-linter is not installed (pip install -e '.[test]')", pytrace=False)
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")

    def run(config: Path | None = None) -> tuple[int, str]:
        code = ("import sys\nfrom importlinter.cli import lint_imports\n"
                f"sys.exit(lint_imports(config_filename={str(config) if config else None!r}, no_cache=True, "
                "no_logo=True))\n")
        r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
        return r.returncode, r.stdout + r.stderr

    return run


def test_the_import_contracts_hold(lint_imports):
    rc, report = lint_imports()
    assert rc == 0, report
    assert "2 kept, 0 broken" in report, report


def test_a_broken_contract_fails(lint_imports, tmp_path):
    """The checker sees the real graph: a contract the code breaks is reported as broken."""
    config = tmp_path / "broken.ini"
    config.write_text(
        "[importlinter]\nroot_package = crosspoint\n\n"
        "[importlinter:contract:io-without-its-data-types]\n"
        "name = io may not import pointcloud (it must, so this breaks)\ntype = forbidden\n"
        "source_modules = crosspoint.io\nforbidden_modules = crosspoint.pointcloud\n"
    )
    rc, report = lint_imports(config)
    assert rc == 1, report
    assert "crosspoint.io" in report and "BROKEN" in report, report
