"""Screenshots of the explorer for the README and the tests: ``crosspoint-explorer --screenshot``.

``take_and_exit`` shows the window, waits until pending loads are done and the 3D view has drawn
a frame, brings a panel to the front and runs what it shows (``--panel segmentation`` segments
the object, ``heatmap`` computes the 3D-2D heatmaps, ``embedding`` embeds the demo dataset and
maps it with UMAP), saves the window as a PNG and quits.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import NoReturn
from pathlib import Path

log = logging.getLogger(__name__)

#: Panels ``--panel`` accepts: name -> what it shows.
PANELS: dict[str, str] = {
    "main": "the 3D view, the object list, the 2D views and the model panel",
    "segmentation": "part segmentation of the object by the model, with its legend and the IoU against "
                    "the file's own labels",
    "heatmap": "3D-2D correspondence heatmaps on the points and on the selected view",
    "embedding": "the demo dataset's embeddings mapped to 2D with UMAP, with a selection",
    "compare-random": "the embedding map beside the same map made with random weights, with both separations",
    "compare-sensor": "the same comparison on the demo's held-out objects with sensor-like points (the "
                      "'demo-sensor' dataset), where pretraining shows",
    "training": "the training monitor (use --attach RUN_DIR to show a run)",
}

#: panels for checking the window by eye (not in docs/images): name -> what it shows
EXTRA_PANELS: dict[str, str] = {
    "labels": "the segmentation's panel, the points coloured by the file's own labels",
    "errors": "the segmentation's panel, the points coloured by right / wrong against the file's labels",
    "uncertainty": "the segmentation's panel, the points coloured by the prediction's uncertainty",
    "heatmap-stale": "a heatmap computed for view 0, then view 1 selected: marked stale, not overlaid",
    "training-dialog": "the New pretraining run dialog (the screenshot is of the dialog)",
    "segmentation-compare": "the segmentation beside part discovery with this checkpoint, with random weights "
                            "and k-means on xyz (mIoU against the file's labels, side by side from the view)",
    "pair-inspector": "the training-pair inspector on the demo run's config: object 5, epoch 3 (the dialog)",
    "colour-range": "the colour-range dialog: the height histogram with a range, points outside it grey "
                    "(the window; --panel colour-range-dialog: the dialog)",
    "colour-range-dialog": "the colour-range dialog itself",
    "edl": "eye-dome lighting on the demo chair, uniform colour (depth shading without normals)",
    "layers": "two demo objects: the chair shown, a second chair (seed 1) checked in the Objects list and "
              "drawn beside it, moved aside",
    "dense": "dense similarity on click: a visible point's similarity over the view, its peak (magenta) "
             "beside its true pixel (green), and this view's hit rate and AUC",
    "measure": "the bounding box with its size, two measurement marks (Ctrl+click) and their distance",
    "part-evidence": "evidence by occlusion per part (bar chart, 3D and 2D against a random blob) and its colours",
    "orientation": "the object laid on its side (+X up), the orientation check run and its turn applied, "
                   "drawn as the model sees it",
}


def _steps(win, panel: str | None):
    """(action, is_done) pairs run one after the other before the screenshot."""
    import numpy as np

    mp = win.model_panel

    def model_ready():
        return mp.session is not None and not mp.busy

    def views_ready():
        return not win.views.rendering and (win.views.image_count() > 0 or win.state.current is None)

    def frame_ready():  # no frame will come once the 3D view has failed: shoot at once (shoot() prints why)
        return not win.loading and (win.state.current is None or win.viewer.has_frame or bool(win.viewer.error))

    steps = [(None, frame_ready), (None, lambda: not mp._loading), (None, views_ready),
             (None, lambda: not mp._embedding_pending)]
    if panel in (None, "main"):
        return steps
    def show_in_panel(widget, views_share: float = 0.36):
        from PyQt6.QtCore import Qt, QTimer

        h = win.height()
        win.resizeDocks([win.embedding_dock], [int(h * 0.2)], Qt.Orientation.Vertical)
        win.resizeDocks([win.views_dock, win.model_dock], [int(h * views_share), int(h * (1 - views_share))],
                        Qt.Orientation.Vertical)
        area = win.model_dock.widget()
        QTimer.singleShot(0, lambda: (area.ensureWidgetVisible(widget, 10, 10),
                                      area.horizontalScrollBar().setValue(0)))

    def show_seg_group():
        show_in_panel(mp.iou_label)

    if panel in ("segmentation", "labels", "errors", "uncertainty"):
        mode = {"labels": "labels", "errors": "errors", "uncertainty": "uncertainty"}.get(panel)
        out = steps + [(None, model_ready), (mp.run_segmentation, lambda: not mp.busy), (None, frame_ready)]
        if mode:
            out.append((lambda: win.set_color_mode(mode), frame_ready))
        return out + [(show_seg_group, lambda: True)]
    if panel == "heatmap":
        return steps + [(None, model_ready), (mp.run_heatmap, lambda: not mp.busy), (None, frame_ready),
                        (lambda: show_in_panel(mp.readout_text, 0.3), lambda: True)]
    if panel == "heatmap-stale":
        def next_view():
            win.views.thumbs.setCurrentRow((win.views.current_index + 1) % max(win.views.image_count(), 1))
            show_in_panel(mp.similarity, 0.5)

        return steps + [(None, model_ready), (mp.run_heatmap, lambda: not mp.busy), (None, frame_ready),
                        (next_view, frame_ready)]
    if panel == "segmentation-compare":
        return steps + [(None, model_ready), (lambda: (mp.compare_seg.setChecked(True), mp.run_segmentation()),
                                              lambda: not mp.busy), (None, frame_ready),
                        (lambda: show_in_panel(mp.compare_image, 0.3), lambda: True)]
    if panel == "pair-inspector":
        state_ = {}

        def open_inspector():
            dlg = win.open_pair_inspector()
            dlg.index.setValue(5)
            dlg.epoch.setValue(3)
            dlg.run()
            win.screenshot_widget = dlg
            state_["dlg"] = dlg

        return steps + [(None, model_ready), (open_inspector, lambda: state_["dlg"].job is None)]
    if panel in ("colour-range", "colour-range-dialog"):
        def ranged():
            win.set_color_mode("height")
            dlg = win.open_range_dialog()
            if dlg.values is not None:
                dlg.lo.setValue(float(np.quantile(dlg.values, 0.3)))
                dlg.hi.setValue(float(np.quantile(dlg.values, 0.8)))
                dlg._from_spins()
            if panel == "colour-range-dialog":
                win.screenshot_widget = dlg

        return steps + [(ranged, frame_ready)]
    if panel == "edl":
        return steps + [(lambda: (win.set_color_mode("uniform"), win.edl_action.setChecked(True)), frame_ready)]
    if panel == "layers":
        def second():
            win.open_demo("chair", seed=3)

        def layer():
            doc = win.state.documents[-1]
            doc.cloud.points[:, 0] += 1.0  # beside the first one, not inside it
            win.state.set_current(0)
            win.set_layer(len(win.state.documents) - 1, True)
            win.viewer.reset_view()

        return steps + [(second, lambda: len(win.state.documents) > 1 and not win.loading), (layer, frame_ready)]
    if panel == "dense":
        def pick():
            _, ds, _f = mp._dense
            corr = win.view_correspondence()
            vis = np.flatnonzero(corr.visible[ds.prepared.index])
            win._on_point_picked(int(ds.prepared.index[vis[len(vis) // 3]]))
            show_in_panel(mp.dense_note, 0.42)

        return steps + [(None, model_ready), (lambda: mp.dense_links.setChecked(True),
                                              lambda: mp._dense is not None and not mp.busy),
                        (pick, frame_ready)]
    if panel == "measure":
        def measure():
            doc = win.state.current
            if doc is None:
                return
            win.bbox_action.setChecked(True)
            pts = win.viewer._points
            for j in (int(np.argmax(pts[:, 1])), int(np.argmin(pts[:, 1]))):  # the highest and lowest points
                win.viewer.add_mark(pts[j])

        return steps + [(measure, frame_ready)]
    if panel == "part-evidence":
        return steps + [(None, model_ready), (mp.run_part_evidence, lambda: not mp.busy), (None, frame_ready),
                        (lambda: show_in_panel(mp.evidence_note, 0.42), lambda: True)]
    if panel == "orientation":
        def lay_down():
            doc = win.state.current
            if doc is not None:  # its +Y axis sideways: what a file with another up convention gives the model
                win.set_rotation(np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))

        def turn():
            mp.apply_orientation()
            win.set_model_frame(True)
            show_in_panel(mp.orient_note, 0.4)

        return steps + [(None, model_ready), (lay_down, views_ready), (mp.run_orientation_check, lambda: not mp.busy),
                        (lambda: show_in_panel(mp.orient_note, 0.4), lambda: True),
                        (turn, frame_ready), (None, views_ready)]
    if panel == "training-dialog":
        def open_dialog():
            from explorer.training import TrainingDialog

            dlg = TrainingDialog(win, settings=win.settings)
            dlg.show()
            win.screenshot_widget = dlg

        return steps + [(open_dialog, lambda: True)]
    if panel in ("embedding", "compare-random", "compare-sensor"):
        ep = win.embedding_panel
        if panel in ("compare-random", "compare-sensor"):
            ep.compare.setChecked(True)
        if panel == "compare-sensor":
            ep.source.setCurrentIndex(ep.source.findData("demo-sensor"))

        def select():
            if ep.coords is not None and len(ep.coords):
                c = ep.coords
                centre = c[np.argmin(np.abs(c - np.median(c, axis=0)).sum(1))]
                ep.set_selection(np.flatnonzero(np.linalg.norm(c - centre, axis=1) < 0.15 * np.ptp(c[:, 0])))

        def start():
            win.embedding_dock.raise_()
            _tall_bottom(win, win.embedding_dock)
            ep.run()

        return steps + [(None, model_ready), (start, lambda: ep.job is None), (select, lambda: True)]
    if panel == "training":
        return steps + [(lambda: (win.training_dock.raise_(), _tall_bottom(win, win.training_dock)), lambda: True)]
    raise SystemExit(f"crosspoint-explorer: unknown panel {panel!r}; choose from "
                     f"{', '.join([*PANELS, *EXTRA_PANELS])}")


def _tall_bottom(win, dock) -> None:
    """Give the bottom dock (embedding map, training) 45% of the window for its screenshot."""
    from PyQt6.QtCore import Qt

    win.resizeDocks([dock], [int(win.height() * 0.45)], Qt.Orientation.Vertical)
    right = int(win.height() * 0.5)  # what is left beside the 3D view: the 2D views keep their image
    win.resizeDocks([win.views_dock, win.model_dock], [int(right * 0.62), int(right * 0.38)], Qt.Orientation.Vertical)


def take_and_exit(app, win, out: str, *, panel: str | None = None, timeout_s: float = 300.0) -> "NoReturn":
    from PyQt6.QtCore import QTimer

    win.save_layout_on_close = False  # the screenshot's size and docks are not the user's layout
    steps = _steps(win, panel)
    out_path = Path(out).expanduser().resolve()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result = {"code": 1}
    t0 = time.monotonic()
    state = {"i": 0, "started": False}

    def shoot():
        app.processEvents()
        other = getattr(win, "screenshot_widget", None)  # a dialog: the screenshot is of it
        ok = other.grab().save(str(out_path)) if other is not None else win.save_screenshot(str(out_path))
        errors = list(getattr(win, "load_errors", [])) + list(getattr(win, "action_errors", []))
        if not ok:
            print(f"crosspoint-explorer: could not write {out_path}", file=sys.stderr)
        else:
            for src, msg in errors:
                print(f"crosspoint-explorer: {msg if src in msg else f'{src}: {msg}'}", file=sys.stderr)
            if win.viewer.error:
                print(f"crosspoint-explorer: 3D view unavailable: {win.viewer.error}", file=sys.stderr)
            for e in slot_errors:
                print(f"crosspoint-explorer: unhandled error: {e}", file=sys.stderr)
            result["code"] = 1 if errors or slot_errors or timed_out["yes"] else 0
            log.info("screenshot after %.1f s: %s", time.monotonic() - t0, out_path)
        win.close()
        app.quit()

    timed_out = {"yes": False}
    # An exception in a slot does not stop Qt; in screenshot mode it must fail the command.
    slot_errors: list[str] = []
    previous_hook = sys.excepthook

    def hook(etype, value, tb):
        slot_errors.append(f"{etype.__name__}: {value}")
        previous_hook(etype, value, tb)

    sys.excepthook = hook

    def tick():
        if time.monotonic() - t0 > timeout_s:
            timed_out["yes"] = True
            print(f"crosspoint-explorer: gave up waiting after {timeout_s:.0f} s; saving the window as it is",
                  file=sys.stderr)
            QTimer.singleShot(0, shoot)
            return
        i = state["i"]
        if i >= len(steps):
            QTimer.singleShot(300, shoot)
            return
        action, done = steps[i]
        if not state["started"]:
            state["started"] = True
            if action is not None:
                action()
            QTimer.singleShot(50, tick)
            return
        if done():
            state["i"] += 1
            state["started"] = False
        QTimer.singleShot(100, tick)

    win.show()
    QTimer.singleShot(0, tick)
    app.exec()
    from explorer.workers import exit_after_drain

    exit_after_drain(result["code"])  # does not return: skips the interpreter's crash-prone teardown


def main(argv=None) -> int:
    """``python -m explorer.screenshots OUTDIR [--attach RUN_DIR]``: one PNG per panel (for the README)."""
    import argparse
    import os
    import subprocess
    import tempfile

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("out", nargs="?", default="docs/images")
    ap.add_argument("--attach", help="run folder for the training panel")
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    code = 0
    for name in PANELS:
        target = out_dir / f"explorer-{name}.png"
        cmd = [sys.executable, "-m", "explorer.app", "--screenshot", str(target), "--panel", name]
        if name == "training" and args.attach:
            cmd += ["--attach", args.attach]
        # each panel from the default layout: a fresh settings folder (no layout, colour mode or
        # checkpoint remembered from the user's sessions or from the panel before)
        with tempfile.TemporaryDirectory(prefix="crosspoint-explorer-shot-") as cfg:
            r = subprocess.run(cmd, env=dict(os.environ, CROSSPOINT_EXPLORER_CONFIG_DIR=cfg))
        print(f"{name}: {'ok' if r.returncode == 0 else 'failed'} -> {target}")
        code |= r.returncode
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
