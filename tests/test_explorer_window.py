"""The explorer's main window driven like a user would (pytest-qt), and its --screenshot mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _open(qtbot, win, *paths):
    win.open_files([str(p) for p in paths])
    qtbot.waitUntil(lambda: not win.loading, timeout=30_000)
    qtbot.waitUntil(lambda: win.viewer.has_frame or win.state.current is None, timeout=30_000)


def test_open_files_show_summary_and_switch(qtbot, window, shared_data):
    _open(qtbot, window, shared_data / "pcd" / "bunny.pcd", shared_data / "ply" / "airplane.ply")
    assert len(window.state.documents) == 2
    names = {d.title for d in window.state.documents}
    assert names == {"bunny.pcd", "airplane.ply"}
    cur = window.state.current
    assert cur.title in window.summary_label.text() and "points" in window.summary_label.text()
    frame = window.viewer.frame_array()
    background = frame[0, 0]
    assert frame is not None and (np.abs(frame.astype(int) - background).max(axis=2) > 30).mean() > 0.002, \
        "something is drawn"
    other = 1 - window.state.current_index
    window.file_list.setCurrentRow(other)
    assert window.state.current_index == other
    qtbot.waitUntil(lambda: window.state.current.title in window.summary_label.text(), timeout=5000)


def test_a_bad_file_shows_an_error_and_keeps_what_was_open(qtbot, window, shared_data, tmp_path):
    _open(qtbot, window, shared_data / "shapenetpart_cap" / "cap_test_0.npz")
    before = window.state.current
    bad = tmp_path / "broken.ply"
    bad.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1000\nproperty float x\n"
                    b"property float y\nproperty float z\nend_header\n" + b"\x00" * 100)
    _open(qtbot, window, bad)
    assert window.state.current is before and len(window.state.documents) == 1
    assert window.banner.isVisible() and "broken.ply" in window.banner.text()
    assert window.load_errors and "broken.ply" in window.load_errors[-1][1]


def test_color_modes_and_label_legend(qtbot, window, shared_data):
    _open(qtbot, window, shared_data / "shapenetpart_cap" / "cap_test_0.npz")
    doc = window.state.current
    assert doc.color_mode == "labels"
    legend = window.viewer._legend
    assert len(legend) == 2  # the cap's two parts
    modes = [window.color_combo.itemData(i) for i in range(window.color_combo.count())]
    assert modes == ["normal", "height", "labels", "uniform"]
    n0 = window.viewer.frames_rendered
    window.set_color_mode("normal")
    qtbot.waitUntil(lambda: window.viewer.frames_rendered > n0, timeout=5000)
    assert window.viewer._legend == [] and doc.color_mode == "normal"
    assert window.color_combo.currentData() == "normal"


def test_demo_object_has_named_parts(qtbot, window):
    window.open_demo("mug")
    qtbot.waitUntil(lambda: window.viewer.has_frame, timeout=10_000)
    names = [n for n, _ in window.viewer._legend]
    assert names and all("mug/" in n for n in names)


def test_off_files_are_shown_z_up_and_the_up_axis_can_change(qtbot, window, shared_data):
    _open(qtbot, window, shared_data / "modelnet40_off" / "chair_0001.off")
    doc = window.state.current
    assert doc.up_axis == 2 and window.up_actions[2].isChecked()
    window.set_up_axis(1)
    assert doc.up_axis == 1 and window.up_actions[1].isChecked()


def test_export_with_labels_and_colours(qtbot, window, shared_data, tmp_path):
    from crosspoint import io

    _open(qtbot, window, shared_data / "shapenetpart_cap" / "cap_test_0.npz")
    out = tmp_path / "cap.ply"
    window.export_document(window.state.current, str(out))
    back = io.read_point_cloud(out)
    assert back.n_points == window.state.current.cloud.n_points
    np.testing.assert_array_equal(back.labels, window.state.current.cloud.labels)
    assert back.colors is not None


def test_recent_files_and_drop(qtbot, window, shared_data):
    from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDropEvent

    path = shared_data / "pcd" / "bunny.pcd"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    ev = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                    Qt.KeyboardModifier.NoModifier)
    window.dropEvent(ev)
    qtbot.waitUntil(lambda: not window.loading and window.state.current is not None, timeout=30_000)
    assert window.state.current.title == "bunny.pcd"
    assert window.recent_files()[0] == str(path.resolve())


def test_screenshot_command(tmp_path, shared_data):
    out = tmp_path / "shot.png"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-X", "faulthandler", "-m", "explorer.app", "--screenshot", str(out),
                        "--size", "1024x700", str(shared_data / "ply" / "ant.ply")], env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, f"exit code {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    assert "3D view unavailable" not in r.stderr, r.stderr[-6000:]
    from PyQt6.QtGui import QImage

    img = QImage(str(out))
    assert img.width() == 1024 and img.height() == 700
    # a failing file: the screenshot is still written, the exit code says it failed
    r = subprocess.run([sys.executable, "-X", "faulthandler", "-m", "explorer.app", "--screenshot", str(out),
                        str(tmp_path / "nope.xyz")], env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 1 and "nope.xyz" in r.stderr and out.is_file(), f"exit code {r.returncode}\n{r.stderr[-6000:]}"


def test_a_window_layout_saved_by_another_version_is_ignored(window):
    from explorer.main_window import LAYOUT_VERSION

    window.settings.setValue("window_state", window.saveState(LAYOUT_VERSION - 1))
    window._restore_settings()
    assert window.settings.value("window_state") is None  # dropped: the default layout applies
    window.settings.setValue("window_state", window.saveState(LAYOUT_VERSION))
    window._restore_settings()
    assert window.settings.value("window_state") is not None  # the current version's layout is kept


def test_a_huge_cloud_is_drawn_subsampled_and_analysed_whole(qtbot, window, tmp_path, monkeypatch):
    import explorer.main_window as mw
    from crosspoint.io import write_point_cloud
    from crosspoint.pointcloud import PointCloud

    monkeypatch.setattr(mw, "DISPLAY_MAX_POINTS", 50_000)  # the real limit is 2M; the logic is the same
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(120_000, 3)).astype(np.float32)
    labels = (pts[:, 0] > 0).astype(np.int64)
    path = tmp_path / "big.ply"
    write_point_cloud(path, PointCloud(pts, labels=labels))
    _open(qtbot, window, path)
    doc = window.state.current
    assert doc.cloud.n_points == 120_000  # the document keeps every point
    shown = doc.display_index
    assert shown is not None and len(shown) == 50_000 and np.all(np.diff(shown) > 0)
    assert len(window.viewer._points) == 50_000
    assert "drawing a random 50,000" in window.summary_label.text()
    # picking maps the drawn point back to the file's numbering
    window._on_point_picked(10)
    j = int(shown[10])
    p = pts[j]
    assert f"point {j}: ({p[0]:.3f}" in window.statusBar().currentMessage()
    # colours follow the subset when the colour mode changes
    window.set_color_mode("labels")
    qtbot.waitUntil(lambda: window.viewer.has_frame, timeout=10_000)
    assert window.state.current.color_mode == "labels"


def test_colour_range_histogram_thresholds_a_scalar_mode(qtbot, window):
    """View > Colour Range: the histogram of the current scalar (here height), a min/max range that
    greys the points outside it and spans the colour map; Reset gives the data's limits back."""
    from explorer import colors

    window.open_demo("chair")
    qtbot.waitUntil(lambda: window.state.current is not None and window.viewer.has_frame, timeout=30_000)
    assert window.set_color_mode("height")
    doc = window.state.current
    dlg = window.open_range_dialog()
    h = window.scalar_values()
    np.testing.assert_array_equal(dlg.values, h)
    lo, hi = float(np.quantile(h, 0.25)), float(np.quantile(h, 0.75))
    dlg.lo.setValue(lo)
    dlg.hi.setValue(hi)
    lo, hi = dlg.lo.value(), dlg.hi.value()  # as the spin boxes hold them (6 decimals)
    dlg._from_spins()
    assert doc.scalar_range["height"] == (lo, hi)
    c = window.viewer._colors
    out = (h < lo) | (h > hi)
    assert np.all(c[out] == colors.OUTSIDE_RANGE) and not np.any(np.all(c[~out] == colors.OUTSIDE_RANGE, axis=1))
    np.testing.assert_array_equal(c[~out], colors.scalar_colors(h[~out], vmin=lo, vmax=hi))
    assert "range" in window.viewer.colorbar_title
    assert f"{int((~out).sum()):,} of {len(h):,}" in dlg.note.text()
    dlg.reset()
    assert "height" not in doc.scalar_range
    np.testing.assert_array_equal(window.viewer._colors, colors.scalar_colors(h))
    window.set_color_mode("labels")
    assert "maps no scalar" in dlg.note.text()
    dlg.close()


def test_layers_draw_checked_objects_beside_the_current_one(qtbot, window, shared_data):
    """The Objects list's checkboxes: a checked object is drawn beside the one shown (in its own colours,
    the current one's frame); the current one is never a layer of itself; unchecking removes it."""
    files = sorted((shared_data / "ply").glob("*.ply"))[:2]
    window.open_files([str(f) for f in files])
    qtbot.waitUntil(lambda: len(window.state.documents) == 2 and not window.loading and window.viewer.has_frame,
                    timeout=60_000)
    window.state.set_current(0)
    qtbot.waitUntil(lambda: window.viewer.has_frame, timeout=10_000)
    window.set_layer(1, True)
    other = window.state.documents[1]
    assert other.overlay and window.viewer.layer_count == 1
    qtbot.waitUntil(lambda: len(window.viewer.renderer()._layers) == 1, timeout=10_000)
    pts = np.asarray(window.viewer.renderer()._layers[0].points, np.float32)
    idx = other.ensure_display_index(10 ** 9)
    want = other.cloud.points if idx is None else other.cloud.points[idx]
    np.testing.assert_array_equal(pts, want)
    window.state.set_current(1)  # the layer is now the current object: not drawn twice
    qtbot.waitUntil(lambda: window.viewer.layer_count == 0, timeout=10_000)
    window.state.set_current(0)
    qtbot.waitUntil(lambda: window.viewer.layer_count == 1, timeout=10_000)
    # Frame All: the camera frames both objects, so every point of both projects inside the view
    window.viewer.reset_view(with_layers=True)
    cam = window.viewer.renderer().camera()
    both = np.concatenate([window.state.documents[0].cloud.points, other.cloud.points])
    uv, z = cam.project(both)
    assert (z > 0).all() and (uv[:, 0] >= 0).all() and (uv[:, 0] <= cam.width).all()
    assert (uv[:, 1] >= 0).all() and (uv[:, 1] <= cam.height).all()
    window.set_layer(1, False)
    assert not other.overlay and window.viewer.layer_count == 0
