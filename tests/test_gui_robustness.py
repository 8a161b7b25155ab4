"""The explorer where issue 10 found it fragile (pytest-qt): a cloud that is one location, a checkpoint
that fails to load, several files that fail at once, and run folders held by a live training process."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _open(qtbot, win, *paths):
    win.open_files([str(p) for p in paths])
    qtbot.waitUntil(lambda: not win.loading, timeout=30_000)
    qtbot.waitUntil(lambda: win.viewer.has_frame or win.state.current is None, timeout=30_000)


def _drawn_pixels(frame: np.ndarray) -> int:
    bg = frame[0, 0].astype(int)
    return int((np.abs(frame.astype(int) - bg).max(axis=2) > 30).sum())


# -- 1. a cloud of 1 point, or of N identical points --------------------------------------------------
@pytest.mark.parametrize("rows, expected", [
    (["0.1 0.2 0.3"], "1 point at (0.1, 0.2, 0.3)"),
    (["1 2 3"] * 50, "50 identical points at (1, 2, 3)"),
    (["250000.5 4100000.25 12.5"] * 7, "7 identical points at (2.5e+05, 4.1e+06, 12.5)"),
])
def test_a_cloud_at_one_location_is_drawn_framed_and_named(qtbot, window, tmp_path, rows, expected):
    path = tmp_path / "one.xyz"
    path.write_text("\n".join(rows) + "\n")
    _open(qtbot, window, path)
    doc = window.state.current
    assert doc is not None and doc.cloud.n_points == len(rows)
    # drawn: the point and its marker are on screen, at the centre of a usable camera
    frame = window.viewer.frame_array()
    assert _drawn_pixels(frame) >= 10, "the 3D view is empty"
    assert expected in window.summary_label.text()
    renderer = window.viewer.renderer()
    assert renderer.has_marker and window.viewer.single_location is not None
    uv, z = renderer.camera().project(doc.cloud.points[:1])
    h, w = frame.shape[:2]
    assert np.isfinite(uv).all() and z[0] > 0
    assert abs(uv[0, 0] - w / 2) < 0.1 * w and abs(uv[0, 1] - h / 2) < 0.1 * h
    # the point itself is visible (not the colour map's darkest end on the dark background)
    x, y = int(round(uv[0, 0])), int(round(uv[0, 1]))
    patch = frame[max(0, y - 2):y + 3, max(0, x - 2):x + 3].astype(int)
    assert (patch.sum(axis=2) > 300).any(), patch
    # the widget rings the location (amber) and says what it is
    img = window.viewer.grab().toImage()
    arr = np.frombuffer(img.convertToFormat(img.Format.Format_RGB888).constBits().asarray(
        img.height() * img.bytesPerLine()), np.uint8).reshape(img.height(), img.bytesPerLine())[:, :img.width() * 3]
    arr = arr.reshape(img.height(), img.width(), 3).astype(int)
    amber = (arr[..., 0] > 200) & (arr[..., 1] > 150) & (arr[..., 1] < 230) & (arr[..., 2] < 160)
    assert amber.sum() > 40, "no marker ring around the location"
    # the view still works: rotate, zoom and reset keep it on screen
    renderer.rotate(120, 40)
    renderer.zoom(3)
    window.viewer.render_now()
    assert _drawn_pixels(window.viewer.frame_array()) >= 10
    window.viewer.reset_view()
    qtbot.waitUntil(lambda: window.viewer.has_frame, timeout=10_000)
    assert _drawn_pixels(window.viewer.frame_array()) >= 10


def test_an_ordinary_cloud_gets_no_marker(qtbot, window, tmp_path):
    path = tmp_path / "two.xyz"
    path.write_text("0 0 0\n0.001 0 0\n0 0.002 0.001\n")
    _open(qtbot, window, path)
    assert not window.viewer.renderer().has_marker and window.viewer.single_location is None
    assert "identical" not in window.summary_label.text() and "marked in the view" not in window.summary_label.text()
    assert _drawn_pixels(window.viewer.frame_array()) >= 3


# -- 2. a checkpoint that fails to load keeps the remembered one ----------------------------------------
@pytest.fixture(scope="module")
def small_ckpts(tmp_path_factory) -> dict:
    import torch

    from crosspoint.models import DGCNN
    from crosspoint.models.checkpoint import save_model_bundle

    d = tmp_path_factory.mktemp("robust_ckpt")
    torch.manual_seed(0)
    meta = {"n_points": 256, "image_size": 64}
    return {name: Path(save_model_bundle(d / f"{name}.pt", point_encoder=DGCNN(k=8, emb_dims=64, projection_dim=32),
                                         meta=meta)) for name in ("good", "other")}


def _launch(qtbot, tmp_path, **kw):
    """A window as ``crosspoint-explorer`` creates it, once its checkpoint load has finished."""
    from explorer.app import create_window

    one = tmp_path / "pt.xyz"
    one.write_text("0 0 0\n1 0 0\n0 1 0\n0 0 1\n")
    win = create_window([str(one)], size=(1100, 760), **kw)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: not win.model_panel._loading and not win.loading, timeout=120_000)
    return win


def _remembered(cfg_dir: Path) -> str:
    from PyQt6.QtCore import QSettings

    return str(QSettings(str(cfg_dir / "explorer.ini"), QSettings.Format.IniFormat).value("checkpoint") or "")


def test_a_checkpoint_that_fails_to_load_keeps_the_remembered_one(qtbot, tmp_path, monkeypatch, small_ckpts):
    from PyQt6.QtCore import QSettings

    cfg = tmp_path / "cfg"
    monkeypatch.setenv("CROSSPOINT_EXPLORER_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("CROSSPOINT_CACHE_DIR", str(tmp_path / "cache"))
    good, other = str(small_ckpts["good"].resolve()), str(small_ckpts["other"].resolve())
    s = QSettings(str(cfg / "explorer.ini"), QSettings.Format.IniFormat)
    s.setValue("checkpoint", good)  # what an earlier session remembered
    s.sync()

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x80\x04not a checkpoint at all" * 10)
    for bad in (garbage, tmp_path / "no-such.pt"):
        win = _launch(qtbot, tmp_path, checkpoint=str(bad))
        # the failure is shown, no other model is loaded in its place, and the setting is kept
        assert win.model_panel.session is None
        assert win.banner.isVisible() and bad.name in win.banner.text(), win.banner.text()
        assert any(bad.name in what + msg for what, msg in win.action_errors)
        assert _remembered(cfg) == good
        win.close()
        assert _remembered(cfg) == good, f"closing after a failed --checkpoint {bad.name} changed the setting"

    # the next launch without --checkpoint loads the remembered one, not the demo
    win = _launch(qtbot, tmp_path)
    assert win.model_panel.session is not None and win.model_panel.checkpoint == good
    assert not win.action_errors
    # a load chosen later, once it succeeds, is the new remembered one at once (not only at close)
    win.model_panel.load(other)
    qtbot.waitUntil(lambda: not win.model_panel._loading, timeout=60_000)
    assert win.model_panel.checkpoint == other and _remembered(cfg) == other
    win.close()
    assert _remembered(cfg) == other
    win = _launch(qtbot, tmp_path, checkpoint=good)  # a --checkpoint that loads is remembered too
    assert _remembered(cfg) == good
    win.close()


def test_a_remembered_checkpoint_that_is_gone_falls_back_to_the_demo_and_stays_remembered(
        qtbot, tmp_path, monkeypatch):
    from PyQt6.QtCore import QSettings

    from crosspoint.analysis.session import default_checkpoint_path

    if not default_checkpoint_path().is_file():
        pytest.skip("no bundled demo checkpoint")
    cfg = tmp_path / "cfg"
    monkeypatch.setenv("CROSSPOINT_EXPLORER_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("CROSSPOINT_CACHE_DIR", str(tmp_path / "cache"))
    gone = str(tmp_path / "unmounted" / "best.pt")
    s = QSettings(str(cfg / "explorer.ini"), QSettings.Format.IniFormat)
    s.setValue("checkpoint", gone)
    s.sync()
    win = _launch(qtbot, tmp_path)
    assert win.model_panel.session is not None and win.model_panel.checkpoint is None  # the demo
    assert _remembered(cfg) == gone
    win.close()
    assert _remembered(cfg) == gone


# -- 3. several files that fail are all listed --------------------------------------------------------
def _bad_files(tmp_path: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        p = tmp_path / f"broken{i}.ply"
        p.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1000\nproperty float x\n"
                      b"property float y\nproperty float z\nend_header\n" + b"\x00" * (12 * i))
        out.append(p)
    return out


def test_every_failed_file_is_listed_in_the_banner(qtbot, window, tmp_path):
    bad = _bad_files(tmp_path, 2) + [tmp_path / "missing.xyz"]
    _open(qtbot, window, *bad)
    text = window.banner.text()
    assert window.banner.isVisible() and "Could not open 3 files" in text, text
    for p in bad:
        assert p.name in text, (p.name, text)
    assert "more" not in text
    assert len(window.load_errors) == 3
    # each with its reason: the missing file says so, the truncated ones say theirs
    line = next(ln for ln in text.splitlines() if "missing.xyz" in ln)
    assert len(line) > len("\u2022 missing.xyz: ") + 5
    # a new batch starts a new list; Dismiss empties it
    _open(qtbot, window, bad[0])
    assert window.banner.text().startswith("Could not open broken0.ply.") and len(window.banner.entries) == 1
    window.banner.dismiss_button.click()
    assert not window.banner.isVisible() and window.banner.entries == []


def test_a_long_list_of_failed_files_collapses_with_the_full_list_available(qtbot, window, tmp_path):
    bad = _bad_files(tmp_path, 9)
    _open(qtbot, window, *bad)
    banner = window.banner
    text = banner.text()
    shown = [p.name for p in bad if p.name in text]
    assert "Could not open 9 files" in text and len(shown) == banner.MAX_SHOWN - 1, text
    assert f"and {9 - len(shown)} more" in text
    # the tooltip and the details list every file with its reason
    for p in bad:
        assert str(p) in banner.label.toolTip() and str(p) in banner.full_text()
    assert banner.details_button.isVisible()
    banner.details_button.click()
    qtbot.waitUntil(lambda: banner.details_box is not None and banner.details_box.isVisible(), timeout=5000)
    assert all(str(p) in banner.details_box.detailedText() for p in bad)
    banner.details_box.close()
    # an action that fails meanwhile joins the list instead of replacing it
    window.show_error("segmentation", "no model loaded")
    assert "10 errors" in banner.text() and "Segmentation failed: no model loaded" in banner.full_text()


# -- 4. run folders held by a live process ------------------------------------------------------------
def _fake_run(folder: Path, *, finished: bool = True) -> Path:
    folder.mkdir(parents=True)
    events = [{"event": "start", "time": 1.0, "name": "fake", "config": {}, "epochs": 2, "steps_per_epoch": 3,
               "world_size": 1, "device": "cpu", "resumed_from": None, "start_epoch": 0, "start_step": 0},
              {"event": "step", "time": 2.0, "step": 1, "epoch": 0, "loss": 1.5, "loss_intra": 0.7,
               "loss_cross": 0.8, "lr": 1e-3, "progress": 0.2, "eta_s": 30, "samples_per_s": 10.0}]
    if finished:
        events.append({"event": "stopped", "time": 3.0, "step": 1, "reason": "signal"})
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.pt").write_bytes(b"not read by the monitor")
    return folder


@pytest.fixture
def monitor(qtbot):
    from explorer.training import RunMonitor

    mon = RunMonitor()
    qtbot.addWidget(mon)
    mon.show()
    yield mon
    mon.shutdown(5000)


def test_resume_and_start_are_refused_while_a_live_process_holds_the_run(qtbot, monitor, tmp_path):
    from crosspoint.config import load_config
    from crosspoint.engine.runlock import RunLock
    from explorer.training import TrainingDialog

    run = _fake_run(tmp_path / "run")
    holder_text = f"pid {os.getpid()} on {socket.gethostname()}"
    lock = RunLock(run).acquire()  # as `crosspoint pretrain --out run` holds it for the run's life
    try:
        monitor.attach(run)
        # Resume refuses: no second process on a held folder, and the message names the holder
        refused = monitor.resume()
        assert monitor.process is None and not monitor.running
        assert refused is False
        assert f"in use by {holder_text}" in monitor.status_label.text()
        assert not monitor.resume_button.isEnabled() and holder_text in monitor.resume_button.toolTip()
        # Attach shows the run is live
        assert "live" in monitor.live_label.text() and str(os.getpid()) in monitor.live_label.text()
        # a new run into the held folder is refused the same way, before anything is written there
        cfg = load_config(REPO / "configs" / "cpu-demo.yaml")
        assert monitor.start(cfg, run) is False
        assert monitor.process is None and not (run / "requested_config.yaml").exists()
        assert f"in use by {holder_text}" in monitor.status_label.text()
        dlg = TrainingDialog(default_out=str(run))
        qtbot.addWidget(dlg)
        dlg._accept()
        assert dlg.accepted_config() is None and f"in use by {holder_text}" in dlg.error.text()
    finally:
        lock.release()
    # the holder is gone: the monitor notices on its own and Resume is possible again
    qtbot.waitUntil(lambda: monitor.resume_button.isEnabled(), timeout=10_000)
    assert "not running" in monitor.live_label.text()


def test_attach_says_whether_the_run_is_live(qtbot, monitor, tmp_path):
    from crosspoint.engine.runlock import RunLock

    # events that end mid-run and a lock nobody holds: the process died without a final event
    dead = _fake_run(tmp_path / "dead", finished=False)
    RunLock(dead).acquire().release()  # leaves the (free) lock file a real run leaves
    monitor.attach(dead)
    assert "not running" in monitor.live_label.text()
    assert "not running" in monitor.status_label.text() and monitor.resume_button.isEnabled()

    live = _fake_run(tmp_path / "live", finished=False)
    lock = RunLock(live).acquire()
    try:
        monitor.attach(live)
        assert "live" in monitor.live_label.text() and "not running" not in monitor.live_label.text()
        assert monitor.status == "running" and not monitor.resume_button.isEnabled()
    finally:
        lock.release()
    qtbot.waitUntil(lambda: "not running" in monitor.live_label.text(), timeout=10_000)
    assert "process is gone" in monitor.status_label.text()

    # a folder from before run folders were locked: liveness unknown, not claimed either way
    old = _fake_run(tmp_path / "old")
    monitor.attach(old)
    assert "not locked" in monitor.live_label.text()


def test_the_dialog_accepts_a_folder_whose_run_failed_before_its_first_checkpoint(qtbot, tmp_path):
    from explorer.training import TrainingDialog

    out = tmp_path / "failed-run"
    out.mkdir()
    (out / "events.jsonl").write_text(json.dumps({"event": "error", "time": 1.0, "message": "boom"}) + "\n")
    dlg = TrainingDialog(default_out=str(out))
    qtbot.addWidget(dlg)
    dlg._accept()
    assert dlg.accepted_config() is not None, dlg.error.text()
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "last.pt").write_bytes(b"x")
    dlg2 = TrainingDialog(default_out=str(out))
    qtbot.addWidget(dlg2)
    dlg2._accept()
    assert dlg2.accepted_config() is None and "already holds a run" in dlg2.error.text()


@pytest.mark.qt_no_exception_capture  # the hook under test must see the exception, not pytest-qt's
def test_an_exception_escaping_a_slot_is_reported_and_the_explorer_keeps_running(qtbot, window, caplog, tmp_path):
    """PyQt6 aborts the process on an exception that leaves a slot (every open object and result
    lost); the explorer's hook logs it and puts it in the error banner instead."""
    import sys

    from PyQt6.QtCore import QTimer

    from explorer.app import install_excepthook

    def broken_slot():
        raise RuntimeError("a bug in some slot")

    before = sys.excepthook
    install_excepthook(window)
    try:
        with caplog.at_level("ERROR", logger="explorer"):
            QTimer.singleShot(0, broken_slot)
            qtbot.waitUntil(lambda: bool(window.banner.entries), timeout=5000)
    finally:
        sys.excepthook = before
    assert "Unexpected error" in window.banner.text() and "RuntimeError: a bug in some slot" in window.banner.text()
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)
    # still running, with what was open: the event loop turns and the demo object is still there
    ticks = []
    QTimer.singleShot(0, lambda: ticks.append(1))
    qtbot.waitUntil(lambda: bool(ticks), timeout=5000)
    window.banner.dismiss_button.click()
    assert not window.banner.entries
    cloud = tmp_path / "after.xyz"
    cloud.write_text("".join(f"{i} {i % 7} {i % 3}\n" for i in range(50)))
    _open(qtbot, window, cloud)
    assert window.state.current is not None and not window.banner.entries
