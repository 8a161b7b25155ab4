"""Issue 14 in the window (pytest-qt): results tied to what they were computed for (stale ones marked or
not drawn), segmentation beside the file's own labels, the small defects, the training dialog."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, QPointF, Qt
from PyQt6.QtGui import QWheelEvent

from crosspoint.data.demo import SHIPPED_PRESET, get_preset

from tests.gui_support import small_bundles

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict:
    # the explorer's demo objects are the shipped preset's
    return small_bundles(tmp_path_factory.mktemp("results_ckpt"), SHIPPED_PRESET, seg_image=True)


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    """A main window with settings of its own (remembered colour modes must not leak into other tests)."""
    monkeypatch.setenv("CROSSPOINT_EXPLORER_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("CROSSPOINT_CACHE_DIR", str(tmp_path / "cache"))
    from explorer.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 860)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def _load(qtbot, win, checkpoint) -> None:
    win.model_panel.load(str(checkpoint))
    qtbot.waitUntil(lambda: not win.model_panel.busy, timeout=60_000)
    assert win.model_panel.session is not None, win.action_errors


def _demo(qtbot, win, cls="chair", seed=0) -> None:
    win.open_demo(cls, seed=seed)
    qtbot.waitUntil(lambda: win.viewer.has_frame, timeout=30_000)
    qtbot.waitUntil(lambda: win.views.image_count() > 0 and not win.views.rendering, timeout=60_000)


def _segment(qtbot, win):
    mp, doc = win.model_panel, win.state.current
    qtbot.mouseClick(mp.seg_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "segmentation" in doc.results and not mp.busy, timeout=60_000)
    return doc.results["segmentation"].value


# -- item 3: the file's labels kept, compared, exported ------------------------------------------------
def test_segmentation_keeps_the_files_labels_and_compares_with_them(qtbot, win, ckpts, tmp_path):
    _load(qtbot, win, ckpts["seg"])
    _demo(qtbot, win, "airplane")
    doc = win.state.current
    gt = doc.cloud.labels.copy()
    seg = _segment(qtbot, win)
    np.testing.assert_array_equal(doc.cloud.labels, gt)  # the file's labels are still there
    np.testing.assert_array_equal(doc.label_array(), gt)
    modes = [win.color_combo.itemData(i) for i in range(win.color_combo.count())]
    assert {"labels", "prediction", "errors", "uncertainty"} <= set(modes)
    assert win.color_combo.itemText(modes.index("labels")) == "Labels (file)"
    assert doc.color_mode == "prediction"

    mp = win.model_panel
    cmp = seg["comparison"]
    if seg["category"] == "airplane":  # the random head may infer another category: then no comparison
        assert cmp["miou"] is not None and f"mIoU {cmp['miou']:.3f}" in mp.iou_label.text()
        for _, name, iou, _, _ in cmp["parts"]:
            assert f"{name}: IoU {iou:.3f}" in mp.iou_label.text()
    # force the file's category: then the comparison always exists
    mp.category.setCurrentIndex(mp.category.findData("airplane"))
    seg = _segment(qtbot, win)
    cmp = seg["comparison"]
    pred = seg["labels"]
    assert set(np.unique(pred)) <= set(get_preset(SHIPPED_PRESET).class_part_ids("airplane"))
    assert np.array_equal(cmp["errors"], (pred != gt).astype(np.int8))
    assert cmp["miou"] == pytest.approx(np.mean([cmp_iou for _, _, cmp_iou, _, _ in cmp["parts"]]))
    assert "mIoU" in mp.iou_label.text() and "airplane" in mp.seg_note.text()

    # the colour modes draw what they say
    from explorer import colors

    def shown():
        qtbot.waitUntil(lambda: win.viewer.has_frame, timeout=10_000)
        return win.viewer._colors

    win.set_color_mode("labels")
    np.testing.assert_allclose(shown(), colors.label_colors(gt))
    win.set_color_mode("prediction")
    np.testing.assert_allclose(shown(), colors.label_colors(pred))
    win.set_color_mode("errors")
    c = shown()
    wrong = cmp["errors"] == 1
    assert np.allclose(c[wrong], colors.ERROR_COLORS["wrong"]) and np.allclose(c[~wrong], colors.ERROR_COLORS["right"])
    legend = [name for name, _ in win.viewer._legend]
    assert any(name.startswith(f"wrong: {int(wrong.sum()):,}") for name in legend), legend
    win.set_color_mode("uncertainty")
    shown()
    assert win.viewer.colorbar_title.startswith("uncertainty")
    assert mp.mode_buttons["uncertainty"].isChecked()

    # export: both label columns
    import plyfile

    from crosspoint.io import read_point_cloud

    out = tmp_path / "both.ply"
    assert win.export_document(doc, str(out))
    np.testing.assert_array_equal(read_point_cloud(out).labels, gt)
    np.testing.assert_array_equal(np.asarray(plyfile.PlyData.read(str(out))["vertex"]["pred_label"]), pred)
    out = tmp_path / "both.npz"
    assert win.export_document(doc, str(out))
    with np.load(out) as z:
        np.testing.assert_array_equal(z["labels"], gt)
        np.testing.assert_array_equal(z["pred_labels"], pred)


# -- item 2: stale results -------------------------------------------------------------------------------
def test_results_follow_their_object_and_are_marked_stale_when_the_context_changes(qtbot, win, ckpts):
    _load(qtbot, win, ckpts["seg"])
    mp, st = win.model_panel, win.state
    _demo(qtbot, win, "chair")
    chair = st.current
    _segment(qtbot, win)
    note = mp.seg_note.text()
    assert "category" in note and note
    # another object: the chair's "category ... (inferred)" is not shown for it
    _demo(qtbot, win, "mug")
    assert mp.seg_note.text() == "" and mp.iou_label.text() == ""
    # back to the chair: its own result again, not stale
    st.set_current(st.documents.index(chair))
    qtbot.waitUntil(lambda: mp.seg_note.text() == note, timeout=5000)

    # heatmap, then another view: the bar, the similarity and the overlay say so
    views = win.views
    qtbot.waitUntil(lambda: not views.rendering and views.image_count() > 0, timeout=60_000)
    qtbot.mouseClick(mp.heat_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "heatmap" in chair.results and not mp.busy, timeout=120_000)
    assert views._overlay is not None and not win.viewer.colorbar_stale
    assert "STALE" not in mp.similarity.text() and "view 00" in mp.similarity.text()
    first = views.current_index
    views.thumbs.setCurrentRow((first + 1) % views.image_count())
    assert views._overlay is None, "the heatmap of view 0 is not drawn on view 1"
    assert win.viewer.colorbar_stale and "STALE" in win.viewer.colorbar_title
    assert mp.similarity.text().startswith("STALE")
    views.thumbs.setCurrentRow(first)  # its own view again: current again
    assert views._overlay is not None and not win.viewer.colorbar_stale
    assert not mp.similarity.text().startswith("STALE")

    # retrieval, then another view: the list is marked stale
    with qtbot.waitSignal(mp.retrievalReady, timeout=60_000):
        qtbot.mouseClick(mp.retrieve_button, Qt.MouseButton.LeftButton)
    assert mp.results.count() == 2 and not mp.results_note.text().startswith("STALE")
    views.thumbs.setCurrentRow((first + 2) % views.image_count())
    assert mp.results_note.text().startswith("STALE")

    # another checkpoint: the segmentation (of this checkpoint) is marked, not silently kept
    _load(qtbot, win, ckpts["full"])
    assert mp.seg_note.text().startswith("STALE") and "seg.pt" in mp.seg_note.text()
    assert st.is_stale(chair, "segmentation")


def test_an_old_embedding_error_goes_when_the_source_or_checkpoint_changes(qtbot, win, ckpts):
    _load(qtbot, win, ckpts["full"])
    ep = win.embedding_panel
    ep.source.setCurrentIndex(ep.source.findData("open"))  # fewer than two open files: an error
    ep.run()
    assert ep.status.text() == "Embed a dataset with the current checkpoint, then explore it in 2D."  # refused up front
    ep.set_source_folder(str(Path(win.settings.fileName()).parent / "no-such-folder"))
    qtbot.mouseClick(ep.embed_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not ep.busy and ep.status.text().startswith("failed"), timeout=120_000)
    ep.source.setCurrentIndex(ep.source.findData("demo"))
    assert not ep.status.text().startswith("failed")
    ep.source.setCurrentIndex(ep.source.count() - 1)  # back to the failed folder: its error is current again
    assert ep.status.text().startswith("failed")
    _load(qtbot, win, ckpts["seg"])
    assert not ep.status.text().startswith("failed")


def test_the_embedding_of_the_current_object_is_redone_for_a_new_checkpoint(qtbot, win, ckpts):
    _load(qtbot, win, ckpts["full"])
    _demo(qtbot, win, "lamp")
    mp, doc = win.model_panel, win.state.current
    qtbot.waitUntil(lambda: mp.embed_status.text().startswith("embedded"), timeout=30_000)
    first = doc.results["embedding"]
    _load(qtbot, win, ckpts["seg"])
    qtbot.waitUntil(lambda: doc.results["embedding"] is not first and mp.embed_status.text().startswith("embedded"),
                    timeout=30_000)
    assert doc.results["embedding"].provenance.checkpoint == mp.session.fingerprint


# -- item 5: small defects ----------------------------------------------------------------------------
def test_ctrl_1_on_an_object_without_colours_changes_nothing_and_says_why(qtbot, win):
    from PyQt6.QtTest import QTest

    _demo(qtbot, win, "mug")
    doc = win.state.current
    assert doc.cloud.colors is None
    before, combo = doc.color_mode, win.color_combo.currentData()
    win.viewer.setFocus()
    QTest.keyClick(win, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    win.set_color_mode("rgb")  # what Ctrl+1 does, however it is reached
    assert doc.color_mode == before and win.color_combo.currentData() == combo
    assert "no 'RGB' colours" in win.statusBar().currentMessage()
    assert not win.color_actions["rgb"].isEnabled() and win.color_actions[before].isChecked()
    assert win.settings.value("color_mode") in (None, "")


def test_the_2d_caption_never_overlaps_the_image(qtbot, tmp_path, monkeypatch):
    """At 1024x700 the 2D-views dock is short; a caption that wrapped to two lines was drawn over the image."""
    monkeypatch.setenv("CROSSPOINT_EXPLORER_CONFIG_DIR", str(tmp_path / "cfg"))
    from explorer.app import create_window

    w = create_window([], size=(1024, 700), load_model=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    views = w.views
    qtbot.waitUntil(lambda: views.image_count() > 0 and not views.rendering, timeout=60_000)
    views.set_overlay(np.random.default_rng(0).uniform(size=(7, 7)))  # the long caption of a heatmap
    for height in (700, 620):
        w.resize(1024, height)
        qtbot.wait(150)
        big, cap, thumbs = views.big.geometry(), views.caption.geometry(), views.thumbs.geometry()
        assert cap.top() > big.bottom() and cap.bottom() < thumbs.top(), (height, big, cap, thumbs)
        assert views.caption.fontMetrics().horizontalAdvance(views.caption.text()) <= cap.width()
        pix = views.big.pixmap()
        assert pix is not None and pix.height() <= big.height(), "the image fits in its own area"
    assert "heat: Grad-CAM" in views.caption.toolTip()  # the whole caption, however narrow the dock
    w.close()


def test_the_wheel_over_the_model_panel_scrolls_it_and_leaves_the_combos_alone(qtbot, win):
    win.resizeDocks([win.model_dock], [160], Qt.Orientation.Vertical)
    qtbot.wait(50)
    bar = win.model_dock.widget().verticalScrollBar()
    assert bar.maximum() > 0, "the panel must be taller than its dock for this test"
    bar.setValue(0)
    combo = win.model_panel.device
    index = combo.currentIndex()
    pos = QPointF(combo.rect().center())
    glob = QPointF(combo.mapToGlobal(combo.rect().center()))
    ev = QWheelEvent(pos, glob, QPoint(0, 0), QPoint(0, -120), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    from PyQt6.QtWidgets import QApplication

    QApplication.sendEvent(combo, ev)
    assert combo.currentIndex() == index, "an unfocused combo does not change on the wheel"
    assert bar.value() > 0, "the panel scrolled instead"


def test_window_size_and_colour_mode_are_restored(qtbot, tmp_path, monkeypatch, shared_data):
    monkeypatch.setenv("CROSSPOINT_EXPLORER_CONFIG_DIR", str(tmp_path / "cfg"))
    from explorer.app import create_window

    w = create_window([str(shared_data / "shapenetpart_cap" / "cap_test_0.npz")], size=(1111, 777),
                      load_model=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: not w.loading and w.state.current is not None, timeout=30_000)
    assert w.state.current.color_mode == "labels"
    w._on_color_combo(w.color_combo.findData("normal"))  # the user picks "Normal"
    w.close()
    w2 = create_window([str(shared_data / "shapenetpart_cap" / "cap_test_1.npz")], size=None, load_model=False)
    qtbot.addWidget(w2)
    w2.show()
    qtbot.waitUntil(lambda: not w2.loading and w2.state.current is not None, timeout=30_000)
    assert (w2.width(), w2.height()) == (1111, 777)
    assert w2.state.current.color_mode == "normal" and w2.color_combo.currentData() == "normal"
    w2.close()


def test_the_objects_list_follows_the_command_line_not_the_load_order(qtbot, win, shared_data, monkeypatch):
    import time

    from crosspoint import io

    real = io.read_point_cloud

    def slow_first(path, *a, **k):
        if str(path).endswith("airplane.ply"):
            time.sleep(1.5)  # the first file given finishes last
        return real(path, *a, **k)

    monkeypatch.setattr(io, "read_point_cloud", slow_first)
    files = [shared_data / "ply" / "airplane.ply", shared_data / "pcd" / "bunny.pcd", shared_data / "ply" / "ant.ply"]
    win.open_files([str(f) for f in files])
    qtbot.waitUntil(lambda: not win.loading, timeout=30_000)
    titles = [win.file_list.item(i).text() for i in range(win.file_list.count())]
    assert titles == ["airplane.ply", "bunny.pcd", "ant.ply"]
    assert [d.title for d in win.state.documents] == titles
    assert win.state.current.title == "airplane.ply"  # the first one given is shown


def test_at_1024x700_the_training_plots_are_readable_and_the_colour_bar_clears_the_object(qtbot, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.setenv("CROSSPOINT_EXPLORER_CONFIG_DIR", str(tmp_path / "cfg"))
    from explorer.app import create_window

    w = create_window([], size=(1024, 700), load_model=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.viewer.has_frame, timeout=30_000)
    qtbot.wait(200)
    w.training_dock.raise_()
    qtbot.wait(100)
    for p in (w.training.loss_plot, w.training.lr_plot, w.training.acc_plot):
        vb = p.getPlotItem().getViewBox()
        assert vb.height() >= 60, f"a plot's data area is a strip: {vb.height():.0f} px high"
    # the colour bar (height mode) stays clear of the object drawn in the middle
    w.set_color_mode("height")
    w.viewer.render_now()
    frame = w.viewer.frame_array()
    bg = frame[0, 0].astype(int)
    ys, xs = np.nonzero(np.abs(frame.astype(int) - bg).max(axis=2) > 30)
    r = w.viewer.colorbar_rect()
    dpr = w.viewer.devicePixelRatioF()
    inside = (xs / dpr >= r.left() - 4) & (xs / dpr <= r.right() + 4) & (ys / dpr >= r.top()) & (ys / dpr <= r.bottom())
    assert inside.sum() <= 0.01 * len(xs), f"the colour bar covers {inside.sum()} of {len(xs)} object pixels"
    w.close()


def test_a_constant_learning_rate_is_drawn_where_it_is(qtbot):
    from explorer.training import RunMonitor

    mon = RunMonitor()
    qtbot.addWidget(mon)
    steps = [{"event": "step", "time": 1.0 + s, "epoch": 0, "step": s, "loss": 3.0, "loss_intra": 1.0,
              "loss_cross": 2.0, "lr": 1e-3, "samples_per_s": 5.0, "eta_s": 100.0, "progress": s / 100}
             for s in range(1, 30)]
    mon._ingest(steps)
    lo, hi = mon.lr_plot.getPlotItem().getViewBox().viewRange()[1]
    assert lo == pytest.approx(0.0) and 1e-3 < hi < 2e-3, (lo, hi)
    assert mon.progress.format() == "epoch 1  step 29  29%"  # no live process here: no ETA


def test_the_eta_goes_when_the_run_stops(qtbot, tmp_path):
    from explorer.training import RunMonitor

    mon = RunMonitor()
    qtbot.addWidget(mon)
    mon.status = "running"
    mon.run_progress.set_status("running")
    mon._ingest([{"event": "step", "time": 1.0, "epoch": 0, "step": 5, "loss": 3.0, "lr": 1e-3,
                  "samples_per_s": 5.0, "eta_s": 353.0, "progress": 0.1}])
    assert "ETA 5:53" in mon.progress.format()
    mon._ingest([{"event": "stopped", "time": 2.0, "step": 5, "reason": "signal"}])
    assert "ETA" not in mon.progress.format() and "stopped" in mon.progress.format()


def test_a_small_svm_score_comes_with_a_warning():
    from explorer.embedding import svm_text, wilson_interval

    text, warning = svm_text((1.0, 0.0), np.repeat(np.arange(5), [4, 4, 4, 3, 3]))
    assert "18 objects" in text and "100.0 ± 0.0 %" in text
    lo, hi = wilson_interval(18, 18)
    assert 0.8 < lo < 0.85 and hi == 1.0
    assert "few objects" in warning and f"{100 * lo:.0f}-100 %" in warning and "about 3 per fold" in warning
    assert svm_text((0.9, 0.02), np.repeat(np.arange(10), 40))[1] == ""


def test_a_flat_folder_of_files_is_one_unlabelled_class(qtbot, win, ckpts, tmp_path, shared_data):
    from crosspoint.data.folder import UNLABELLED, scan_folder
    from crosspoint.data.layouts import detect_layout

    flat = tmp_path / "flat"
    flat.mkdir()
    for f in sorted((shared_data / "modelnet40_off").glob("*.off"))[:6]:
        shutil.copy(f, flat / f.name)
    info = detect_layout(flat, task="classification")
    assert info.name == "folder" and info.details.get("flat")
    index = scan_folder(flat)
    assert index.class_names == [UNLABELLED] and len(index.files) == 6 and not index.problems
    assert any("unlabelled" in w for w in index.warnings)

    _load(qtbot, win, ckpts["full"])
    ep = win.embedding_panel
    ep.in_process = True
    ep.set_source_folder(str(flat))
    qtbot.mouseClick(ep.embed_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ep.embedding is not None and not ep.busy, timeout=180_000)
    assert len(ep.embedding) == 6 and "6 objects, 1 class" in ep.status.text()
    assert [it.name() for it in ep.class_items] == [UNLABELLED]


# -- item 6: the training dialog ----------------------------------------------------------------------
@pytest.fixture
def dialog_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSPOINT_EXPLORER_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("CROSSPOINT_EXPLORER_DATA_DIR", str(tmp_path / "userdata"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_dialog_exposes_every_setting_and_shows_the_yaml_it_runs(qtbot, dialog_env):
    import dataclasses
    import typing

    from crosspoint.config import PretrainConfig, dump_config, load_config
    from explorer.training import TrainingDialog

    dlg = TrainingDialog()
    qtbot.addWidget(dlg)
    hints = typing.get_type_hints(PretrainConfig)
    every = {f"{sec}.{f.name}" for sec in ("data", "model", "optim", "loss", "run")
             for f in dataclasses.fields(hints[sec])}
    assert set(dlg.fields) == every
    assert [dlg.tabs.tabText(i) for i in range(dlg.tabs.count())] == ["Data", "Model", "Optimiser", "Loss", "Run"]
    for key in ("data.background", "optim.lr_step", "run.amp", "run.dtype", "run.selection"):
        assert dlg.fields[key].count() >= 2, key  # a choice among the values the config accepts
    assert "transparent" in dlg.fields["data.background"].toolTip()  # the config's own comment
    dlg.set_value("run.max_steps_per_epoch", 7)
    dlg.set_value("optim.lr", "2.5e-4")
    dlg.set_value("data.background", "black")
    dlg.set_value("run.amp", "off")
    cfg = dlg.config()
    assert (cfg.run.max_steps_per_epoch, cfg.optim.lr, cfg.data.background, cfg.run.amp) == (7, 2.5e-4, "black", "off")
    assert dlg.yaml_view.toPlainText() == dump_config(cfg)
    saved = dlg.save_yaml(dialog_env / "saved.yaml")
    assert dump_config(load_config(saved)) == dump_config(cfg)
    dlg.set_value("optim.lr", "fast")
    assert "optim.lr" in dlg.error.text() and "not a valid config" in dlg.yaml_view.toPlainText()


def test_the_output_folder_defaults_to_the_users_data_folder_then_the_project_chosen(qtbot, dialog_env):
    from explorer.training import TrainingDialog

    dlg = TrainingDialog()
    qtbot.addWidget(dlg)
    assert dlg.out_dir().parent == dialog_env / "userdata" / "runs"
    assert not str(dlg.out_dir()).startswith(str(dialog_env / "runs"))  # not <current directory>/runs
    project = dialog_env / "project"
    dlg.out.setText(str(project / "first"))
    dlg._accept()  # the demo dataset: nothing to check
    assert dlg.accepted_config() is not None
    dlg2 = TrainingDialog()
    qtbot.addWidget(dlg2)
    assert dlg2.out_dir().parent == project.resolve()


def test_a_dataset_with_problems_is_refused_before_anything_starts(qtbot, dialog_env, shared_data):
    from explorer.training import TrainingDialog

    dlg = TrainingDialog()
    qtbot.addWidget(dlg)
    dlg.base.setCurrentText("paper")  # data.root "data": not here
    out = dialog_env / "paper-run"
    dlg.out.setText(str(out))
    dlg._accept()
    qtbot.waitUntil(lambda: not dlg.checking, timeout=30_000)
    assert dlg.accepted_config() is None and dlg.problems
    assert "Not started" in dlg.error.text() and "data.root 'data'" in dlg.error.text()
    assert not out.exists(), "no run folder is left behind"

    # a class folder with an empty class: the check-data problem is listed
    bad = dialog_env / "objects"
    (bad / "chair").mkdir(parents=True)
    shutil.copy(shared_data / "modelnet40_off" / "chair_0001.off", bad / "chair")
    (bad / "empty").mkdir()
    dlg.set_value("data.root", str(bad))
    dlg._accept()
    qtbot.waitUntil(lambda: not dlg.checking, timeout=60_000)
    assert dlg.accepted_config() is None and any("empty class folder" in p for p in dlg.problems), dlg.problems
    assert "empty class folder" in dlg.error.text() and not out.exists()

    # fixed: accepted
    shutil.rmtree(bad / "empty")
    dlg._accept()
    qtbot.waitUntil(lambda: not dlg.checking, timeout=60_000)
    assert dlg.accepted_config() is not None, dlg.error.text()
    assert not out.exists()  # the monitor creates it when it starts the run

