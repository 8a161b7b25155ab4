"""What keeps the explorer's first frame under 2 s (issue 14 item 7; benchmarks/bench_startup.py
measures it): nothing before the first frame imports torch, and Open3D's Plotly/Dash module is
loaded only if one of its functions is called."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_open3d_without_dash_until_plotly_is_used():
    out = _run(
        "import sys\n"
        "from explorer.o3d_renderer import _skip_plotly_import\n"
        "_skip_plotly_import()\n"
        "import open3d as o3d, numpy as np\n"
        "print('dash' in sys.modules, 'plotly' in sys.modules)\n"
        "pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.random.rand(20, 3)))\n"
        "fig = o3d.visualization.get_plotly_fig([pc])\n"
        "print('dash' in sys.modules, type(fig).__name__)\n")
    assert out.split() == ["False", "False", "True", "Figure"]


def test_building_the_window_imports_open3d_on_the_main_thread_but_not_torch():
    """The window (the model panel's device combo included) is built without torch; the model load
    imports it in a worker. Open3D is imported by ``create_app``, on the main thread before any
    worker thread exists (its ``__init__`` walks ``sys.modules``, which a worker importing at the same
    time breaks), without its Plotly/Dash part."""
    out = _run(
        "import os, sys, threading\n"
        "os.environ.setdefault('QT_QPA_PLATFORM', 'offscreen')\n"
        "from explorer.app import create_app\n"
        "from explorer.main_window import MainWindow\n"
        "app = create_app()\n"
        "print('open3d' in sys.modules, threading.active_count())\n"
        "w = MainWindow()\n"
        "print('torch' in sys.modules, 'open3d' in sys.modules, 'dash' in sys.modules)\n")
    first, second = out.split("\n")[-3:-1]
    assert first.split() == ["True", "1"]
    assert second.split() == ["False", "True", "False"]
