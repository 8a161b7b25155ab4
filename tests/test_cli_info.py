"""``crosspoint info FILE...``."""

from __future__ import annotations

import json

import numpy as np

from crosspoint.cli import main
from crosspoint.io import write_point_cloud
from crosspoint.pointcloud import PointCloud


def _files(tmp_path):
    good = write_point_cloud(tmp_path / "a.ply", PointCloud(np.random.default_rng(0).random((20, 3)),
                                                            labels=np.arange(20) % 3))
    nan = tmp_path / "n.xyz"
    nan.write_text("0 0 0\nnan 1 1\n1 1 1\n")
    return good, nan


def test_info_ok(tmp_path, capsys):
    good, nan = _files(tmp_path)
    assert main(["info", str(good), str(nan)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0].startswith(f"{good}: ply, 20 points") and "labels (3 distinct)" in out[0]
    assert out[1].startswith(f"{nan}: xyz, 2 points") and "dropped 1 non-finite points" in out[1]


def test_info_reports_every_file_and_fails(tmp_path, capsys):
    good, _ = _files(tmp_path)
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"\x00garbage")
    missing = tmp_path / "missing.pcd"
    assert main(["info", str(bad), str(good), str(missing)]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{good}: ply")
    err = captured.err.splitlines()
    assert err[0].startswith(f"{bad}: error: ") and "PLY" in err[0]
    assert err[1] == f"{missing}: error: no such file"


def test_info_json(tmp_path, capsys, shared_data):
    good, _ = _files(tmp_path)
    off = shared_data / "modelnet40_off" / "chair_0002.off"
    assert main(["info", "--json", str(good), str(off), str(tmp_path / "nope.xyz")]) == 1
    records = json.loads(capsys.readouterr().out)
    assert [r["ok"] for r in records] == [True, True, False]
    assert records[0]["points"] == 20 and records[0]["labels"] == [0, 1, 2] and records[0]["faces"] is None
    assert records[1]["format"] == "off" and records[1]["faces"] == 96 and records[1]["normals"]
    assert "no such file" in records[2]["error"]


def test_the_library_never_imports_qt(tmp_path):
    """``crosspoint`` runs on headless GPU nodes: no module of it may pull in Qt or the explorer.

    Self-contained (it writes its own file), so it runs with or without ``../shared``."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    ply = write_point_cloud(tmp_path / "cloud.ply", PointCloud(np.random.default_rng(0).normal(size=(50, 3))))
    offenders = [str(p.relative_to(repo)) for p in (repo / "crosspoint").rglob("*.py")
                 if any(w in p.read_text() for w in ("PyQt6", "pyqtgraph", "superqt", "from explorer", "import explorer"))]
    assert not offenders, offenders
    code = (
        "import importlib, pkgutil, sys\n"
        "import crosspoint\n"
        "for m in pkgutil.walk_packages(crosspoint.__path__, 'crosspoint.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "from crosspoint.cli import main\n"
        f"assert main(['info', {str(ply)!r}]) == 0\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('PyQt6', 'pyqtgraph', 'superqt', 'explorer'))\n"
        "print('QT', bad)\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
