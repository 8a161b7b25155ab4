"""The model panel: which checkpoint, which device, and the actions that run it on the current object
(part segmentation, 3D-2D correspondence heatmaps, cross-modal retrieval).

All model maths lives in :mod:`crosspoint.analysis`; this panel starts those calls in worker
threads (one at a time, cancellable) and hands each result to the :class:`~explorer.state.AppState`
with what it was computed for (captured when the job starts). What the panel shows of the results
(the segmentation's category and IoU, the similarity, the retrieval list, the embedding status)
comes from the state, marked stale when the object's view, the checkpoint or the settings changed.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.workers import freeze_heap, run_in_thread, run_job

log = logging.getLogger(__name__)


def heatmap_readouts(session, cloud, image, camera, method: str) -> dict:
    """``crosspoint.analysis.heat_readouts`` for the explorer's heatmap: the object in the frame its
    views are rendered in, the view's camera and mesh for the geometry, and as "another object's
    image" a view of a demo object of another category rendered with the same renderer and size."""
    from crosspoint import analysis as A

    model = cloud.in_model_frame()
    mesh = model.mesh if model.mesh is not None and model.mesh.n_faces > 0 else None
    other_cls = "airplane" if (getattr(cloud, "category", None) or "") != "airplane" else "chair"
    other_img = _other_view(other_cls, int(np.asarray(image).shape[0]))
    return A.heat_readouts(session, model, image, camera, mesh=mesh, other_image=other_img, method=method)


@functools.lru_cache(maxsize=4)
def _other_view(class_name: str, size: int) -> np.ndarray:
    """A view of a demo object of ``class_name``, ``size`` px (rendered once per class and size)."""
    from crosspoint.data.demo import SHIPPED_PRESET, demo_object
    from crosspoint.render import render_views

    return render_views(demo_object(class_name, seed=0, preset=SHIPPED_PRESET).mesh, 1, size=size, seed=0)[0][0]


def cuda_maybe() -> bool:
    """Could this machine have a CUDA device? Answered without importing torch (2 s on 2 cores, which
    would delay the first frame): the NVIDIA driver's device nodes (``/dev/dxg``: WSL). The model
    load, which imports torch in a worker anyway, confirms it (:func:`cuda_available`)."""
    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg"))


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover
        return False


STALE_STYLE = "color: #e0a040;"


class ModelPanel(QWidget):
    """Checkpoint + device + actions. Results go to the state; the panel shows the current object's."""

    sessionChanged = pyqtSignal(object)  # ModelSession | None
    segmentationReady = pyqtSignal(object, object)  # (Document, the state's "segmentation" value)
    heatmapReady = pyqtSignal(object, object, object)  # (Document, point heat (N,), image heat (H, W) | None)
    retrievalReady = pyqtSignal(object)  # [(document index, similarity)]
    rotationRequested = pyqtSignal(object)  # a 3x3 turn for the current object (None: no turn)
    error = pyqtSignal(str, str)
    busyChanged = pyqtSignal(bool)

    def __init__(self, state, views, parent=None):
        super().__init__(parent)
        self.state = state
        self.views = views
        self.session = None
        self.checkpoint: str | None = None  # None = the bundled demo checkpoint
        self.job = None
        self._loading = False
        self._embedding_pending: set = set()

        # -- model group
        self.ckpt_label = QLabel("(none)")
        self.ckpt_label.setWordWrap(True)
        self.ckpt_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        load = QPushButton("Open checkpoint...")
        load.clicked.connect(self.open_dialog)
        demo = QPushButton("Demo")
        demo.setToolTip("The checkpoint bundled with the app (trained on the embedded demo dataset)")
        demo.clicked.connect(lambda: self.load(None))
        self.device = QComboBox()
        self.device.addItem("auto", "auto")
        self.device.addItem("CPU", "cpu")
        self.device.addItem("CUDA", "cuda")
        if not cuda_maybe():
            self._no_cuda()
        self.device.currentIndexChanged.connect(lambda _: self.load(self.checkpoint) if self.session else None)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.embed_status = QLabel("")
        self.embed_status.setWordWrap(True)
        mg = QGroupBox("Checkpoint")
        mf = QFormLayout(mg)
        row = QHBoxLayout()
        row.addWidget(load)
        row.addWidget(demo)
        mf.addRow("File", self.ckpt_label)
        mf.addRow("", self._wrap(row))
        mf.addRow("Device", self.device)
        mf.addRow(self.info)
        mf.addRow("Current object", self.embed_status)

        # -- segmentation group
        self.seg_button = QPushButton("Segment parts")
        self.seg_button.clicked.connect(self.run_segmentation)
        self.k_parts = QSpinBox(minimum=2, maximum=12, value=4)
        self.k_parts.setToolTip("Number of parts for unsupervised part discovery (used when the checkpoint "
                                "has no segmentation head)")
        self.category = QComboBox()
        self.category.setToolTip("The object category the segmentation head should assume")
        self.seg_note = QLabel("")
        self.seg_note.setWordWrap(True)
        self.seg_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.iou_label = QLabel("")
        self.iou_label.setWordWrap(True)
        self.iou_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.iou_label.setToolTip("Per-part IoU of the prediction against the file's own labels, as "
                                  "crosspoint.evaluation.partseg computes it (a part in neither counts 1)")
        from PyQt6.QtWidgets import QGridLayout

        self.seg_modes = QWidget()
        mgrid = QGridLayout(self.seg_modes)  # two by two: the panel stays narrow
        mgrid.setContentsMargins(0, 0, 0, 0)
        mgrid.setSpacing(4)
        self.seg_modes.setStyleSheet("QPushButton:checked { background: #3d6fb4; color: white; }")
        self.mode_buttons: dict[str, QPushButton] = {}
        for k, (mode, text, tip) in enumerate((
                ("labels", "File labels", "the file's own labels (ground truth)"),
                ("prediction", "Prediction", "the predicted parts"),
                ("errors", "Errors", "red where the prediction differs from the file's labels"),
                ("uncertainty", "Uncertainty", "how unsure the prediction is, per point"))):
            b = QPushButton(text)
            b.setCheckable(True)
            b.setToolTip(f"Colour the points by {tip}")
            b.clicked.connect(lambda _=False, m=mode: self.state.set_color_mode(m))
            mgrid.addWidget(b, k // 2, k % 2)
            self.mode_buttons[mode] = b
        self.compare_seg = QCheckBox("Compare with random weights")
        self.compare_seg.setToolTip("Also discover parts (k-means on point features) with this checkpoint and with a "
                                    "random-weight encoder of the same architecture, and k-means on xyz alone: "
                                    "the baselines a segmentation must beat, side by side from the selected view")
        self.compare_text = QLabel("")
        self.compare_text.setWordWrap(True)
        self.compare_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.compare_image = QLabel("")
        self.compare_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        sg = QGroupBox("Part segmentation")
        sf = QFormLayout(sg)
        self.seg_form = sf
        sf.addRow("Parts (clustering)", self.k_parts)
        sf.addRow("Category (head)", self.category)
        sf.addRow(self.seg_button)
        sf.addRow(self.compare_seg)
        sf.addRow(self.seg_note)
        sf.addRow("Show", self.seg_modes)
        sf.addRow(self.iou_label)
        sf.addRow(self.compare_text)
        sf.addRow(self.compare_image)

        # -- correspondence group
        self.heat_button = QPushButton("3D-2D heatmap")
        self.heat_button.setToolTip("How strongly each point (and each image region) drives the similarity "
                                    "between the point-cloud and the selected view's embeddings")
        self.heat_button.clicked.connect(self.run_heatmap)
        self.method = QComboBox()
        self.method.addItem("Grad-CAM", "gradcam")
        self.method.addItem("gradient x input", "grad_x_input")
        self.readouts = QCheckBox("Honesty readouts (a few seconds more)")
        self.readouts.setChecked(True)
        self.readouts.setToolTip("With the heatmap: its deletion curve against a random contiguous blob of points, "
                                 "its specificity (the heat for another object's image) and its agreement with "
                                 "the geometry (point heat vs image heat at each visible point's pixel)")
        self.readout_plot = self._small_plot("% of the points deleted")
        self.readout_text = QLabel("")
        self.readout_text.setWordWrap(True)
        self.readout_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.dense_links = QCheckBox("Dense similarity on click")
        self.dense_links.setToolTip(
            "Click a point: its similarity over the selected view (magenta square: the peak; the status bar says how "
            "far it is from the point's true pixel). Click a pixel: its similarity over the points. With the "
            "hit rate and AUC of this very view, measured against the renderer's geometry")
        self.dense_links.toggled.connect(lambda on: self.ensure_dense() if on else None)
        self.dense_note = QLabel("")
        self.dense_note.setWordWrap(True)
        self.dense_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._dense = None  # (key, DenseSimilarity, figures) of the current object and view
        self._symmetries = None  # (object and mesh key, Symmetries) of the last object with a mesh
        self.evidence_button = QPushButton("Part evidence")
        self.evidence_button.setToolTip(
            "For each part (the segmentation's, else the file's labels): how much the object-view similarity drops "
            "when the part is removed from the points (3D) and when its pixels are masked in the view (2D), beside "
            "a random contiguous blob of the same size on each side")
        self.evidence_button.clicked.connect(self.run_part_evidence)
        self.evidence_plot = self._small_plot(height=(170, 210))
        self.evidence_note = QLabel("")
        self.evidence_note.setWordWrap(True)
        self.evidence_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retrieve_button = QPushButton("Retrieve objects for this view")
        self.retrieve_button.clicked.connect(self.run_retrieval)
        self.similarity = QLabel("")
        self.similarity.setWordWrap(True)
        self.results_note = QLabel("")
        self.results_note.setWordWrap(True)
        self.results = QListWidget()
        self.results.setMaximumHeight(120)
        self.results.itemActivated.connect(self._open_result)
        self.results.itemClicked.connect(self._open_result)
        cg = QGroupBox("3D-2D correspondence")
        cf = QFormLayout(cg)
        cf.addRow("Method", self.method)
        cf.addRow(self.heat_button)
        cf.addRow(self.readouts)
        cf.addRow(self.similarity)
        cf.addRow(self.readout_plot)
        cf.addRow(self.readout_text)
        cf.addRow(self.dense_links)
        cf.addRow(self.dense_note)
        cf.addRow(self.evidence_button)
        cf.addRow(self.evidence_plot)
        cf.addRow(self.evidence_note)
        cf.addRow(self.retrieve_button)
        cf.addRow(self.results_note)
        cf.addRow(self.results)

        # -- orientation group
        self.orient_button = QPushButton("Check orientation")
        self.orient_button.setToolTip("Score the object's 24 axis-aligned turns by how typical each looks to the "
                                      "encoder (similarity to its nearest upright demo objects) and offer the best")
        self.orient_button.clicked.connect(self.run_orientation_check)
        self.orient_apply = QPushButton("Turn upright")
        self.orient_apply.setToolTip("Give the model (and the 2D views) the object turned by the best rotation")
        self.orient_apply.clicked.connect(self.apply_orientation)
        self.orient_reset = QPushButton("Undo turn")
        self.orient_reset.setToolTip("Back to the file's up axis with no turn")
        self.orient_reset.clicked.connect(lambda: self.rotationRequested.emit(None))
        self.orient_note = QLabel("")
        self.orient_note.setWordWrap(True)
        self.orient_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        og = QGroupBox("Orientation")
        of = QFormLayout(og)
        orow = QHBoxLayout()
        orow.addWidget(self.orient_button)
        orow.addWidget(self.orient_apply)
        orow.addWidget(self.orient_reset)
        of.addRow(self._wrap(orow))
        of.addRow(self.orient_note)

        # -- progress
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(mg)
        lay.addWidget(sg)
        lay.addWidget(cg)
        lay.addWidget(og)
        prow = QHBoxLayout()
        prow.addWidget(self.progress, 1)
        prow.addWidget(self.cancel_button)
        lay.addLayout(prow)
        lay.addWidget(self.status)
        lay.addStretch(1)
        self._tips = {b: b.toolTip() for b in (self.heat_button, self.evidence_button, self.retrieve_button)}
        self._update_enabled()
        # the image buttons need an image (part evidence also its camera): they follow the views panel
        self.views.imagesChanged.connect(self._update_enabled)
        self.views.imageChanged.connect(self._update_enabled)
        self.state.currentChanged.connect(lambda _: self._update_current())
        self.state.resultChanged.connect(lambda doc, kind: (self.show_results(), self._update_enabled()))
        self.state.contextChanged.connect(self.show_results)
        self.state.documentUpdated.connect(lambda doc: self._sync_mode_buttons() if doc is self.state.current else None)
        self.method.currentIndexChanged.connect(lambda _: self._settings_to_state())
        self.category.currentIndexChanged.connect(lambda _: self._settings_to_state())
        self.k_parts.valueChanged.connect(lambda _: self._settings_to_state())
        self._settings_to_state()
        self.show_results()

    @staticmethod
    def _wrap(layout) -> QWidget:
        w = QWidget()
        layout.setContentsMargins(0, 0, 0, 0)
        w.setLayout(layout)
        return w

    # -- session ----------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a checkpoint", str(Path.home()),
            "Checkpoints (*.pt *.pth *.t7 *.ckpt);;All files (*)")
        if path:
            self.load(path)

    def _no_cuda(self) -> None:
        self.device.model().item(2).setEnabled(False)
        self.device.setItemData(2, "no CUDA device on this machine", Qt.ItemDataRole.ToolTipRole)

    def show_no_checkpoint(self) -> None:
        """No model loaded and no bundled demo checkpoint: say how to get one."""
        self.ckpt_label.setText("(none): open a checkpoint")
        self.ckpt_label.setToolTip("No bundled demo checkpoint in assets/. Open a CrossPoint Explorer bundle, "
                                   "an official CrossPoint .pth/.t7, or a run's checkpoint.")

    def load(self, checkpoint: str | None) -> None:
        """Load a checkpoint (None = the bundled demo checkpoint) in a worker thread."""
        from crosspoint.analysis import ModelSession

        device = self.device.currentData() or "auto"
        self._loading = True
        self._set_busy(True, "loading checkpoint ...")
        self.ckpt_label.setText(("demo checkpoint" if checkpoint is None else str(checkpoint)) + " (loading)")

        def work():
            return ModelSession(checkpoint, device=device)

        def done(session):
            if self.device.model().item(2).isEnabled() and not cuda_available():  # torch is imported now
                self._no_cuda()
            self.session = session
            self.checkpoint = checkpoint
            name = "demo checkpoint" if checkpoint is None else Path(str(session.path)).name
            self.state.set_checkpoint(session.fingerprint, name)
            self._show_info()
            self._settings_to_state()
            self.sessionChanged.emit(session)
            freeze_heap()  # the model's objects live as long as the session: keep them out of GC passes

        def failed(exc):
            self.ckpt_label.setText("(none)" if self.session is None else str(self.session.path))
            self.error.emit(str(checkpoint or "demo checkpoint"), str(exc))

        def finished():
            self._loading = False
            self._set_busy(False, "")

        run_in_thread(work, on_result=done, on_error=failed, on_finished=finished, owner=self)

    def _show_info(self) -> None:
        s = self.session
        info = s.info()
        name = "demo checkpoint" if self.checkpoint is None else Path(str(s.path)).name
        self.ckpt_label.setText(name)
        self.ckpt_label.setToolTip(str(s.path))
        lines = []
        params = info.get("parameters", {})
        k_text = ""
        if info.get("k"):
            k_text = f", k = {info['k']}" + (f" ({info['k_source']})" if info.get("k_source") else "")
        lines.append(f"point encoder: {info['point_arch']}{k_text}"
                     + f", feature {info['feature_dim']}-d, {params.get('point_encoder', 0) / 1e6:.1f}M params")
        lines.append(f"image encoder: {info['image_arch']}, {params.get('image_encoder', 0) / 1e6:.1f}M params"
                     if info.get("image_arch") else "image encoder: none (heatmaps and retrieval need one)")
        seg = info.get("seg_head")
        own = " (encoder fine-tuned with it)" if seg and params.get("seg_backbone") else ""
        lines.append("segmentation head: " + (f"{len(seg['categories'])} categories, {seg['num_parts']} parts{own}"
                                              if seg else "none (parts by clustering)"))
        lines.append(f"device: {info.get('device', s.device)}; trained on {s.n_points} points, "
                     f"{s.image_size} px images")
        if info.get("image_arch"):
            lines.append(f"image background: {info['background']} ({info['background_source']})")
        self.info.setText("\n".join(lines))
        self.category.clear()
        self.category.addItem("auto", None)
        if s.part_table is not None:
            for name in s.part_table.category_names:
                self.category.addItem(name, name)
        self.views.set_model_input(s.image_size, s.background)
        self._update_enabled()
        self._update_current()

    def _update_current(self) -> None:
        doc = self.state.current
        if doc is not None and self.session is not None and self.state.fresh(doc, "embedding") is None:
            self._embed_current(doc)
        self.show_results()
        self._update_enabled()

    def _embed_current(self, doc) -> None:
        """Embed the current object with the current model in the background (tens of ms); its
        feature and projection (or why it failed) become the document's ``"embedding"`` result."""
        from crosspoint import analysis as A

        s = self.session
        key = (doc.key, s.fingerprint)
        if key in self._embedding_pending:
            return
        self._embedding_pending.add(key)
        prov = self.state.provenance("embedding", doc)

        def work():
            feats, projs = A.encode_clouds(s, [doc.cloud])
            return feats[0], projs[0]

        def done(res):
            self.state.set_result(doc, "embedding", {"feature": res[0], "projection": res[1]}, prov)

        def failed(exc):
            log.warning("embedding %s failed: %s", doc.title, exc)
            self.state.set_result(doc, "embedding", {"error": str(exc)}, prov)

        run_in_thread(work, on_result=done, on_error=failed,
                      on_finished=lambda: self._embedding_pending.discard(key), owner=self)

    # -- what the panel shows of the current object's results -----------------------------------
    def _settings_to_state(self) -> None:
        """What the controls say now: a result computed with other settings is then marked stale."""
        s = self.session
        if s is not None and s.segmenter is not None:
            self.state.set_settings("segmentation", category=self.category.currentData() or "auto")
        else:
            self.state.set_settings("segmentation", k=self.k_parts.value())
        method = self.method.currentData()
        self.state.set_settings("heatmap", method=method)
        self.state.set_settings("image_heatmap", method=method)

    def _seg_settings(self) -> dict:
        s = self.session
        if s is not None and s.segmenter is not None:
            return {"category": self.category.currentData() or "auto"}
        return {"k": self.k_parts.value()}

    @staticmethod
    def _mark(label: QLabel, text: str, stale: str) -> None:
        label.setText(f"STALE ({stale}):\n{text}" if stale and text else text)
        label.setStyleSheet(STALE_STYLE if stale and text else "")

    def show_results(self) -> None:
        """The current object's results, from the state (stale ones marked, others' not shown)."""
        st, doc = self.state, self.state.current
        # the embedding of the current object
        emb = st.result(doc, "embedding") if doc is not None else None
        if doc is None:
            self.embed_status.setText("no object")
        elif self.session is None:
            self.embed_status.setText(f"{doc.cloud.n_points:,} points, no model")
        elif emb is None or st.stale_reason(doc, "embedding"):
            self.embed_status.setText(f"{doc.cloud.n_points:,} points, embedding ...")
            self.embed_status.setToolTip("")
        elif "error" in emb.value:
            self.embed_status.setText(f"{doc.cloud.n_points:,} points; could not embed: {emb.value['error']}")
        else:
            e = emb.value["feature"]
            self.embed_status.setText(f"embedded: {e.shape[-1]}-d feature, norm {np.linalg.norm(e):.1f}")
            self.embed_status.setToolTip(f"{emb.value['projection'].shape[-1]}-d unit projection "
                                         "kept for similarity and retrieval")
        # segmentation: how it was made, and how it compares with the file's labels
        seg = st.result(doc, "segmentation") if doc is not None else None
        if seg is None:
            self.seg_note.setText("")
            self.seg_note.setStyleSheet("")
            self.iou_label.setText("")
        else:
            from explorer.segcompare import describe

            v = seg.value
            note = v.get("note") or ""
            if v["source"] == "head":
                text = "segmentation head: " + (note or f"category {v['category']} ({v['category_source']})")
            else:
                text = f"unsupervised part discovery, {len(v['names'])} clusters" + (f": {note}" if note else "")
            self._mark(self.seg_note, text, st.stale_reason(doc, "segmentation"))
            text = describe(v.get("comparison"))
            self.iou_label.setText(text or ("the file has no labels to compare with" if doc.label_array() is None
                                            else ""))
        self._show_baselines(seg.value.get("baselines") if seg is not None else None,
                             st.stale_reason(doc, "segmentation") if seg is not None else "")
        self._sync_mode_buttons()
        self.seg_modes.setVisible(seg is not None)
        self.seg_form.labelForField(self.seg_modes).setVisible(seg is not None)
        # the heatmap's similarity
        hm = st.result(doc, "heatmap") if doc is not None else None
        if hm is None or hm.value.get("similarity") is None:
            self.similarity.setText("")
            self.similarity.setStyleSheet("")
        else:
            self._mark(self.similarity, f"cosine similarity of the object and {hm.provenance.view_label or 'the view'}"
                       f": {hm.value['similarity']:+.3f}", st.stale_reason(doc, "heatmap"))
        self._show_orientation(doc)
        self._show_evidence(doc)
        self._show_readouts(doc)
        # retrieval (of no single object: ranks the open objects for one view)
        r = st.result(None, "retrieval")
        self.results.clear()
        if r is None:
            self.results_note.setText("")
            self.results_note.setStyleSheet("")
            return
        stale = st.stale_reason(None, "retrieval")
        by_key = {d.key: d for d in st.documents}
        for key, title, sim in r.value["hits"]:
            d = by_key.get(key)
            it = QListWidgetItem(f"{sim:+.3f}  {title}" + ("" if d is not None else "  (closed)"))
            it.setData(Qt.ItemDataRole.UserRole, key)
            if d is None or stale:
                it.setForeground(Qt.GlobalColor.gray)
            self.results.addItem(it)
        own = r.value.get("own_rank")
        n = r.value.get("n", len(r.value["hits"]))
        rank = (f"; the view's own object ranks {own} of {n} (a random ranking puts it at {(n + 1) / 2:.1f} on "
                f"average)" if own is not None else "")
        self._mark(self.results_note, f"for {r.provenance.view_label or 'a view'} of {r.provenance.object_label}"
                   + rank, stale)

    def _sync_mode_buttons(self) -> None:
        doc = self.state.current
        modes = self.state.available_modes(doc) if doc is not None else []
        for mode, b in self.mode_buttons.items():
            b.setEnabled(mode in modes)
            b.setChecked(doc is not None and doc.color_mode == mode)

    def _update_enabled(self) -> None:
        s = self.session
        busy = self.job is not None or self._loading
        doc = self.state.current
        has_doc = doc is not None
        self.seg_button.setEnabled(bool(s) and has_doc and not busy)
        self.orient_button.setEnabled(bool(s) and has_doc and not busy)
        self.category.setEnabled(bool(s) and s.segmenter is not None)
        self.k_parts.setEnabled(bool(s) and s.segmenter is None)
        # the image analyses need the selected view; part evidence also its camera and the object's parts.
        # A disabled button says why (a tooltip shows on a disabled button too).
        has_image = self.views.current_image() is not None
        has_camera = self.views.current_camera() is not None
        has_parts = has_doc and (doc.prediction() is not None or doc.label_array() is not None)
        if s is None or s.image_encoder is None:
            why_image = "load a checkpoint first" if s is None else s.image_unavailable_reason or "no image encoder"
        elif not has_image:
            why_image = ("wait for the rendered views (or add an image)" if self.views.rendering
                         else "no image: open an object to render its views, or add an image")
        else:
            why_image = None
        why_evidence = why_image or (
            "needs a rendered view of the object: an added image has no camera" if not has_camera else
            "no parts: segment the object first (or open a file with part labels)" if has_doc and not has_parts
            else None)
        for button, why, ok in ((self.heat_button, why_image, has_doc),
                                (self.evidence_button, why_evidence, has_parts),
                                (self.retrieve_button, why_image, len(self.state.documents) > 0)):
            button.setEnabled(why is None and ok and not busy)
            tip = self._tips[button]
            button.setToolTip(tip if why is None else f"{tip}\n\nUnavailable: {why}".lstrip())

    # -- jobs -------------------------------------------------------------------------------------
    def _set_busy(self, busy: bool, text: str = "") -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy and self.job is not None)
        if busy:
            self.progress.setRange(0, 0)
        self.status.setText(text)
        self._update_enabled()
        self.busyChanged.emit(busy)

    @property
    def busy(self) -> bool:
        return self.job is not None or self._loading

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.setText("cancelling ...")

    def _start(self, name: str, func, on_result) -> None:
        if self.session is None or self.job is not None:
            return

        def progress(done, total, text):
            if total > 0:
                self.progress.setRange(0, total)
                self.progress.setValue(done)
            self.status.setText(f"{name}: {text}" if text else name)

        def failed(exc):
            from crosspoint.analysis import Cancelled

            if isinstance(exc, Cancelled):
                self.status.setText(f"{name} cancelled")
            else:
                self.error.emit(name, str(exc))

        def finished():
            self.job = None
            self._set_busy(False, self.status.text() if "cancel" in self.status.text() else "")

        self.job = run_job(func, name=name, on_result=on_result, on_error=failed, on_progress=progress,
                           on_finished=finished, owner=self)
        self._set_busy(True, f"{name} ...")

    def run_segmentation(self) -> None:
        from crosspoint import analysis as A

        doc = self.state.current
        if doc is None or self.session is None:
            return
        s, k, cat = self.session, self.k_parts.value(), self.category.currentData()
        prov = self.state.provenance("segmentation", doc, **self._seg_settings())
        gt, gt_names = doc.label_array(), doc.label_names()
        with_baselines, camera = self.compare_seg.isChecked(), self.views.current_camera()

        def func(progress, cancel):
            from explorer.segcompare import compare_parts, segmentation_value

            res = A.segment(s, doc.cloud, category=cat, k_parts=k, progress=progress, cancel=cancel)
            value = segmentation_value(res, gt, gt_names)  # the comparison runs here, off the GUI thread
            if with_baselines:
                progress(0, 0, "baselines: part discovery with this checkpoint, random weights, xyz")
                value["baselines"] = compare_parts(s, doc.cloud, gt, k, camera=camera, cancel=cancel)
            return value

        def done(value):
            self.state.set_result(doc, "segmentation", value, prov, color_mode="prediction")
            self.segmentationReady.emit(doc, value)

        self._start("segmentation", func, done)

    def run_heatmap(self) -> None:
        from crosspoint import analysis as A

        doc = self.state.current
        image = self.views.current_image()
        if doc is None or self.session is None:
            return
        if image is None:
            self.error.emit("heatmap", "no image: wait for the rendered views, or add an image")
            return
        s, method = self.session, self.method.currentData()
        prov = self.state.provenance("heatmap", doc, method=method)

        camera = self.views.current_camera()
        readouts = self.readouts.isChecked()

        def func(progress, cancel):
            progress(0, 4, "points")
            pt = A.point_heatmap_result(s, doc.cloud, image, method=method)
            if cancel():
                raise A.Cancelled("heatmap")
            progress(1, 4, "image")
            img = A.image_heatmap(s, doc.cloud, image)
            progress(2, 4, "similarity")
            sim = A.similarity(s, doc.cloud, image)
            ro = None
            if readouts:
                if cancel():
                    raise A.Cancelled("heatmap")
                progress(3, 4, "honesty readouts (deletion against a random blob, specificity, geometry)")
                ro = heatmap_readouts(s, doc.cloud, image, camera, method)
            return pt, img, sim, ro

        def done(res):
            pt, img, sim, ro = res
            self.state.set_result(doc, "image_heatmap", None if img is None else {"values": img}, prov)
            self.state.set_result(doc, "heatmap", {"values": pt.heat, "title": "3D-2D heat", "similarity": float(sim),
                                                   "readouts": ro},
                                  prov, color_mode="heatmap")
            self.heatmapReady.emit(doc, pt.heat, img)

        self._start("heatmap", func, done)

    def run_retrieval(self) -> None:
        from crosspoint import analysis as A

        image = self.views.current_image()
        docs = list(self.state.documents)
        if image is None or not docs or self.session is None:
            return
        s = self.session
        prov = self.state.provenance("retrieval", self.state.current)

        own = self.state.current

        def func(progress, cancel):
            return A.retrieve(s, image, [d.cloud for d in docs], top_k=len(docs))

        def done(ranked):
            hits = ranked[:10]
            # the honesty figure: where the view's own object lands among all open ones (chance: the middle)
            own_rank = next((r + 1 for r, (i, _) in enumerate(ranked) if docs[i] is own), None)
            self.state.set_result(None, "retrieval", {"hits": [(docs[i].key, docs[i].title, float(sim))
                                                               for i, sim in hits],
                                                      "own_rank": own_rank, "n": len(docs)}, prov)
            self.retrievalReady.emit([(self.state.documents.index(docs[i]) if docs[i] in self.state.documents
                                       else -1, sim) for i, sim in hits])

        self._start("retrieval", func, done)

    def _show_baselines(self, cmp, stale: str) -> None:
        """The segmentation's baselines (:func:`explorer.segcompare.compare_parts`): a line each and the
        labellings side by side as seen from the view they were rendered from."""
        from PyQt6.QtGui import QImage, QPixmap

        from explorer.segcompare import describe_parts

        if not cmp:
            self.compare_text.setText("")
            self.compare_image.clear()
            self.compare_image.hide()
            return
        images = cmp.get("images") or []
        text = describe_parts(cmp) + ("\npictures, left to right, in that order (from the view selected then)"
                                      if images else "")
        self._mark(self.compare_text, text, stale)
        if not images:
            self.compare_image.hide()
            return
        strip = np.concatenate([np.asarray(img[..., :3], np.uint8) for _, img in images], axis=1)
        strip = np.ascontiguousarray(strip)
        h, w = strip.shape[:2]
        qimg = QImage(strip.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.compare_image.setPixmap(QPixmap.fromImage(qimg))
        self.compare_image.setToolTip("left to right: " + "; ".join(name for name, _ in images))
        self.compare_image.show()

    @staticmethod
    def _small_plot(bottom: "str | None" = None, height: tuple = (150, 190)):
        """A compact, static pyqtgraph plot for a readout (similarity drop on the left axis), hidden
        until it has something to show."""
        import pyqtgraph as pg

        w = pg.PlotWidget(background="#1f2126")
        w.setMinimumHeight(height[0])
        w.setMaximumHeight(height[1])
        w.setMouseEnabled(False, False)
        w.hideButtons()
        w.setMenuEnabled(False)
        pi = w.getPlotItem()
        pi.setLabel("left", "similarity drop")
        axes = ["left"]
        if bottom:
            pi.setLabel("bottom", bottom)
            axes.append("bottom")
        for ax in axes:
            pi.getAxis(ax).enableAutoSIPrefix(False)
        legend = pi.addLegend(offset=(5, 2), labelTextSize="8pt", brush=(31, 33, 38, 200))
        legend.setLabelTextColor("#dddddd")
        w.hide()
        return w

    def _show_readouts(self, doc) -> None:
        """The heatmap's honesty figures (``crosspoint.analysis.heat_readouts``) beside it."""
        import pyqtgraph as pg

        hm = self.state.result(doc, "heatmap") if doc is not None else None
        ro = None if hm is None else hm.value.get("readouts")
        plot = self.readout_plot.getPlotItem()
        plot.clear()
        if not ro:
            self.readout_plot.hide()
            self.readout_text.setText("")
            self.readout_text.setStyleSheet("")
            return
        c = ro["deletion_curve"]
        x = 100.0 * np.asarray(c["fractions"], float)
        for key, name, colour in (("top", "hottest points", "#ff9a3c"), ("blob", "random contiguous blob", "#9ad0ff"),
                                  ("random", "scattered random points", "#888888"),
                                  ("other_top", "hottest for another object's image", "#c77dff")):
            if key in c:
                plot.plot(x, np.asarray(c[key], float), pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5,
                          symbolBrush=colour, name=name)
        self.readout_plot.show()
        f = int(round(100 * ro["fraction"]))
        verdict = ("beats" if ro["top_minus_blob"] > 0.01 else "does NOT beat")
        lines = [f"{ro['label']}.",
                 f"Deleting the hottest {f} % of points drops the similarity {ro['top_drop']:+.3f}; a random "
                 f"contiguous blob of the same size {ro['blob_drop']:+.3f}: the heat {verdict} a blob "
                 f"(difference {ro['top_minus_blob']:+.3f})."]
        if "other_heat_corr" in ro:
            lines.append(f"Specificity: the heat computed for another object's image correlates "
                         f"{ro['other_heat_corr']:+.2f} with this one (1: the same heat whatever the image); its hottest "
                         f"points drop {ro['other_top_drop']:+.3f}.")
        if "spearman_point_image" in ro:
            lines.append(f"Geometry: point heat vs image heat at each visible point's pixel, Spearman "
                         f"{ro['spearman_point_image']:+.2f}; visible points {ro['visible_heat']:.2f} vs hidden "
                         f"{ro['hidden_heat']:.2f} mean heat; {100 * ro['image_heat_on_object']:.0f} % of the image "
                         f"heat on the object, which covers {100 * ro['object_area']:.0f} % of the image.")
        self._mark(self.readout_text, "\n".join(lines), self.state.stale_reason(doc, "heatmap"))

    def _dense_key(self):
        doc = self.state.current
        view = self.views.current_view()[0]
        return None if doc is None or view is None else (doc.key, view, self.state.checkpoint)

    def ensure_dense(self, then=None) -> None:
        """The dense similarity of the current object and view (``crosspoint.analysis.dense_readouts``,
        with its hit rate and AUC on this view), computed once per object, view and checkpoint;
        ``then(ds, figures)`` runs when it is there."""
        from crosspoint import analysis as A

        doc, s = self.state.current, self.session
        image, camera = self.views.current_image(), self.views.current_camera()
        if doc is None or s is None or s.image_encoder is None:
            return
        if camera is None:
            self.dense_note.setText("dense similarity needs a rendered view (an added image has no camera)")
            return
        key = self._dense_key()
        if self._dense is not None and self._dense[0] == key:
            if then is not None:
                then(self._dense[1], self._dense[2])
            return
        model = doc.cloud.in_model_frame()  # the frame the views were rendered in
        mesh = model.mesh if model.mesh is not None and model.mesh.n_faces > 0 else None
        # the object's symmetries do not depend on the view: found once per object (and frame)
        sym_key = None if mesh is None else (doc.key, hashlib.blake2b(mesh.vertices.tobytes(), digest_size=16).digest())
        known = self._symmetries[1] if self._symmetries is not None and self._symmetries[0] == sym_key else None

        def func(progress, cancel):
            progress(0, 0, "dense similarity of the object and the view")
            return A.dense_readouts(s, model.points, image, camera, mesh=mesh, labels=model.labels, symmetries=known)

        def done(res):
            ds, f = res
            if sym_key is not None and ds.symmetries is not None:
                self._symmetries = (sym_key, ds.symmetries)
            self._dense = (key, ds, f)
            self._show_dense_note(f)
            if then is not None and self._dense_key() == key:
                then(ds, f)

        self._start("dense similarity", func, done)

    def _show_dense_note(self, f: dict) -> None:
        trained = f["method"] == "dense heads"
        self.dense_note.setText(
            f"{'dense heads (trained for it)' if trained else 'projection heads per point (not trained for it)'}; "
            f"on this view: a visible point's peak lands within 8 px (at 224) of its true pixel for "
            f"{100 * f['point_to_pixel_hit']:.0f} % of {f['tested']} points (chance "
            f"{100 * f['point_to_pixel_hit_chance']:.1f} %), within 16 px for "
            f"{100 * f['point_to_pixel_hit_2r']:.0f} % (chance {100 * f['point_to_pixel_hit_2r_chance']:.1f} %)"
            + (f"; the misses land on the point's own part (the file's labels) for "
               f"{100 * f['misses_on_own_part']:.0f} % (chance {100 * f['misses_on_own_part_chance']:.0f} %)"
               if f.get("misses_on_own_part") == f.get("misses_on_own_part") else "")
            + (f"; the object has a rotational symmetry ({f['symmetry']}: a turned camera sees the same "
               f"picture): {100 * f['point_to_pixel_hit_sym']:.0f} % up to it, ceiling "
               f"{100 * f['point_to_pixel_hit_ceiling']:.0f} %" if f.get("symmetry_rotations") else "")
            + f"; pixel -> points AUC {f['pixel_to_point_auc']:.2f} (chance 0.5)")

    def run_part_evidence(self) -> None:
        """Evidence by occlusion for the current object and view (``crosspoint.analysis.part_occlusion``):
        per part, the similarity drop when it is removed (3D) and masked in the view (2D), against a
        random contiguous blob of the same size. The parts: the segmentation's, else the file's labels."""
        from crosspoint import analysis as A

        doc = self.state.current
        if doc is None or self.session is None:
            return
        image, camera = self.views.current_image(), self.views.current_camera()
        if image is None or camera is None:
            self.error.emit("part evidence", "no image: wait for the rendered views" if image is None else
                            "needs a rendered view of the object (an added image has no camera)")
            return
        pred = doc.prediction()
        labels, source = (pred, "the segmentation") if pred is not None else (doc.label_array(), "the file's labels")
        if labels is None:
            self.error.emit("part evidence", "no parts: segment the object first (or open a file with part labels)")
            return
        names = doc.prediction_names() if pred is not None else doc.label_names()
        s = self.session
        prov = self.state.provenance("part_evidence", doc)
        model = doc.cloud.in_model_frame()  # the frame the views were rendered in

        def func(progress, cancel):
            progress(0, 2, "view geometry")
            mesh = model.mesh if model.mesh is not None and model.mesh.n_faces > 0 else None
            view = A.view_correspondence(model.points, camera, mesh=mesh)
            check_cancel = cancel
            if check_cancel():
                raise A.Cancelled("part evidence")
            progress(1, 2, "occluding parts")
            ev = A.part_occlusion(s, model.points, image, camera, labels, names=names, mesh=mesh, view=view)
            # the drops as colours: each point / pixel gets its part's drop (0 where no part was scored)
            lab = np.asarray(labels)
            d3 = np.zeros(lab.shape[0], np.float32)
            d2 = np.zeros(view.shape, np.float32)
            for k, p in enumerate(ev.labels):
                d3[lab == p] = max(float(ev.drop_3d[k]), 0.0)
                if np.isfinite(ev.drop_2d[k]):
                    d2[view.pixel_mask(lab == p)] = max(float(ev.drop_2d[k]), 0.0)
            return ev, d3, d2

        def done(res):
            ev, d3, d2 = res
            top = max(float(d3.max()), float(d2.max()), 1e-12)  # one scale for both sides
            self.state.set_result(doc, "part_evidence", {"evidence": ev, "source": source}, prov)
            self.state.set_result(doc, "image_heatmap", {"values": d2 / top, "label": "similarity drop when the "
                                                          "part's pixels are masked (part evidence)"}, prov)
            self.state.set_result(doc, "heatmap", {"values": d3, "title": "similarity drop when the part is removed",
                                                   "similarity": float(ev.similarity)}, prov, color_mode="heatmap")

        self._start("part evidence", func, done)

    def _show_evidence(self, doc) -> None:
        import pyqtgraph as pg

        r = self.state.result(doc, "part_evidence") if doc is not None else None
        plot = self.evidence_plot.getPlotItem()
        plot.clear()
        if r is None:
            self.evidence_plot.hide()
            self.evidence_note.setText("")
            self.evidence_note.setStyleSheet("")
            return
        ev = r.value["evidence"]
        n = len(ev.labels)
        x = np.arange(n, dtype=float)
        finite = lambda a: np.nan_to_num(np.asarray(a, float), nan=0.0)  # noqa: E731
        plot.addItem(pg.BarGraphItem(x=x - 0.2, height=finite(ev.drop_3d), width=0.36, brush="#4c8bd6",
                                     name="3D: part removed"))
        plot.addItem(pg.BarGraphItem(x=x + 0.2, height=finite(ev.drop_2d), width=0.36, brush="#e08a3c",
                                     name="2D: part masked"))
        plot.addItem(pg.ScatterPlotItem(x=np.concatenate([x - 0.2, x + 0.2]),
                                        y=np.concatenate([finite(ev.blob_3d), finite(ev.blob_2d)]),
                                        symbol="_", size=22, pen=pg.mkPen("w", width=2), brush=None,
                                        name="random blob, same size"))
        plot.getAxis("bottom").setTicks([[(float(i), str(ev.names[i])[:12]) for i in range(n)]])
        plot.addLine(y=0, pen=pg.mkPen("#888"))
        self.evidence_plot.show()
        a3, a2 = ev.top_part("3d"), ev.top_part("2d")
        name = {int(lab): str(nm) for lab, nm in zip(ev.labels, ev.names)}
        beat3 = int(np.sum(finite(ev.drop_3d) > finite(ev.blob_3d)))
        beat2 = int(np.sum(np.isfinite(ev.drop_2d) & (finite(ev.drop_2d) > finite(ev.blob_2d))))
        text = (f"parts from {r.value['source']}; similarity {ev.similarity:+.3f}. Most important part: 3D "
                f"{name.get(a3, '-')}, 2D {name.get(a2, '-')}"
                + ("" if ev.agree is None else (" (agree)" if ev.agree else " (differ)"))
                + f". Parts whose drop beats a random blob of their size: {beat3} of {n} in 3D, {beat2} of "
                f"{int(np.isfinite(ev.drop_2d).sum())} visible in 2D.")
        self._mark(self.evidence_note, text, self.state.stale_reason(doc, "part_evidence"))

    def run_orientation_check(self) -> None:
        """Score the current object's 24 axis-aligned turns (``crosspoint.analysis.check_orientation``,
        against the demo dataset embedded with this checkpoint: cached after the first time)."""
        from crosspoint import analysis as A

        doc = self.state.current
        if doc is None or self.session is None:
            return
        s = self.session
        prov = self.state.provenance("orientation", doc)

        def func(progress, cancel):
            return A.check_orientation(s, doc.cloud, progress=progress, cancel=cancel)

        def done(res):
            self.state.set_result(doc, "orientation", {"check": res, "applied": False}, prov)

        self._start("orientation check", func, done)

    def apply_orientation(self) -> None:
        """Turn the current object by the orientation check's best rotation."""
        doc = self.state.current
        r = self.state.result(doc, "orientation") if doc is not None else None
        if r is None or r.value.get("applied"):
            return
        check = r.value["check"]
        prov = r.provenance
        self.rotationRequested.emit(check.rotation)  # removes the object's results, this one too
        self.state.set_result(doc, "orientation", {"check": check, "applied": True}, prov)

    def _show_orientation(self, doc) -> None:
        from crosspoint.analysis.orientation import up_direction

        r = self.state.result(doc, "orientation") if doc is not None else None
        turned = doc is not None and doc.cloud.rotation is not None
        self.orient_reset.setEnabled(turned)
        if r is None:
            self.orient_note.setText("turned by the orientation check" if turned else "")
            self.orient_note.setStyleSheet("")
            self.orient_apply.setEnabled(False)
            return
        c, applied = r.value["check"], r.value["applied"]
        ranked = sorted(c.up_scores.items(), key=lambda kv: -kv[1])
        best_up = up_direction(c.rotations[c.best])
        scores = ", ".join(f"{u} {v:.3f}" for u, v in ranked)
        if applied:
            head = f"turned: its {best_up} axis is up now (typicality {c.scores[c.best]:.3f}, was {c.current_score:.3f})"
        elif c.is_current_best:
            head = f"upright as it is: +Y up scores best ({c.scores[c.best]:.3f}; margin {c.margin:.3f})"
        else:
            head = (f"looks upright with its {best_up} axis up: typicality {c.scores[c.best]:.3f} vs "
                    f"{c.current_score:.3f} as it is (margin {c.margin:.3f} over the next up axis)")
        from crosspoint.analysis.orientation import MEASURED_BY_MARGIN

        ok, n = MEASURED_BY_MARGIN["below" if c.weak else "above"]
        from crosspoint.analysis.orientation import MEASURED_UPRIGHT as M

        trust = (f"{'a weak' if c.weak else 'a clear'} margin: right for {ok} of {n} held-out demo objects with "
                 f"{'such' if c.weak else 'a'} margin ({M['trained']:.0%} overall; random weights "
                 f"{M['random_weights']:.0%}, chance {M['chance']:.0%})")
        axes = "Best per up axis (before the turn)" if applied else "Best per up axis"
        self._mark(self.orient_note, f"{head}; {trust}. {axes}: {scores}.", self.state.stale_reason(doc, "orientation"))
        self.orient_note.setToolTip(c.note)
        self.orient_apply.setEnabled(not applied and not c.is_current_best and self.session is not None)

    def _open_result(self, item) -> None:
        key = item.data(Qt.ItemDataRole.UserRole)
        for i, d in enumerate(self.state.documents):
            if d.key == key:
                self.state.set_current(i)
                return
