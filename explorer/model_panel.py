"""The model panel: which checkpoint, which device, and the actions that run it on the current object
(part segmentation, 3D-2D correspondence heatmaps, cross-modal retrieval).

All model maths lives in :mod:`crosspoint.analysis`; this panel starts those calls in worker
threads (one at a time, cancellable) and hands the results to the window to draw.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
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


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover
        return False


class ModelPanel(QWidget):
    """Checkpoint + device + actions. Emits results; the main window attaches them to documents."""

    sessionChanged = pyqtSignal(object)  # ModelSession | None
    segmentationReady = pyqtSignal(object, object)  # (Document, SegmentationResult)
    heatmapReady = pyqtSignal(object, object, object)  # (Document, point heat (N,), image heat (H, W) | None)
    retrievalReady = pyqtSignal(object)  # [(document index, similarity)]
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
        if not cuda_available():
            self.device.model().item(2).setEnabled(False)
            self.device.setItemData(2, "no CUDA device on this machine", Qt.ItemDataRole.ToolTipRole)
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
        sg = QGroupBox("Part segmentation")
        sf = QFormLayout(sg)
        sf.addRow("Parts (clustering)", self.k_parts)
        sf.addRow("Category (head)", self.category)
        sf.addRow(self.seg_button)
        sf.addRow(self.seg_note)

        # -- correspondence group
        self.heat_button = QPushButton("3D-2D heatmap")
        self.heat_button.setToolTip("How strongly each point (and each image region) drives the similarity "
                                    "between the point-cloud and the selected view's embeddings")
        self.heat_button.clicked.connect(self.run_heatmap)
        self.method = QComboBox()
        self.method.addItem("Grad-CAM", "gradcam")
        self.method.addItem("gradient x input", "grad_x_input")
        self.retrieve_button = QPushButton("Retrieve objects for this view")
        self.retrieve_button.clicked.connect(self.run_retrieval)
        self.similarity = QLabel("")
        self.results = QListWidget()
        self.results.setMaximumHeight(120)
        self.results.itemActivated.connect(self._open_result)
        self.results.itemClicked.connect(self._open_result)
        cg = QGroupBox("3D-2D correspondence")
        cf = QFormLayout(cg)
        cf.addRow("Method", self.method)
        cf.addRow(self.heat_button)
        cf.addRow(self.similarity)
        cf.addRow(self.retrieve_button)
        cf.addRow(self.results)

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
        prow = QHBoxLayout()
        prow.addWidget(self.progress, 1)
        prow.addWidget(self.cancel_button)
        lay.addLayout(prow)
        lay.addWidget(self.status)
        lay.addStretch(1)
        self._update_enabled()
        self.state.currentChanged.connect(lambda _: self._update_current())

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
            self.session = session
            self.checkpoint = checkpoint
            self._show_info()
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
        lines.append("segmentation head: " + (f"{len(seg['categories'])} categories, {seg['num_parts']} parts"
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
        if doc is None:
            self.embed_status.setText("no object")
        elif "embedding" in doc.results and doc.results["embedding"].get("fingerprint") == getattr(
                self.session, "fingerprint", None):
            e = doc.results["embedding"]["feature"]
            self.embed_status.setText(f"embedded: {e.shape[-1]}-d feature, norm {np.linalg.norm(e):.1f}")
            self.embed_status.setToolTip(f"{doc.results['embedding']['projection'].shape[-1]}-d unit projection "
                                         "kept for similarity and retrieval")
        elif self.session is None:
            self.embed_status.setText(f"{doc.cloud.n_points:,} points, no model")
        else:
            self.embed_status.setText(f"{doc.cloud.n_points:,} points, embedding ...")
            self._embed_current(doc)
        self._update_enabled()

    def _embed_current(self, doc) -> None:
        """Embed the current object with the current model in the background (tens of ms); its
        feature and projection are kept on the document (``results["embedding"]``)."""
        from crosspoint import analysis as A

        s = self.session
        key = (id(doc), s.fingerprint)
        if key in self._embedding_pending:
            return
        self._embedding_pending.add(key)

        def work():
            feats, projs = A.encode_clouds(s, [doc.cloud])
            return feats[0], projs[0]

        def done(res):
            doc.results["embedding"] = {"fingerprint": s.fingerprint, "feature": res[0], "projection": res[1]}
            if doc is self.state.current:
                self._update_current()

        def failed(exc):
            if doc is self.state.current:
                self.embed_status.setText(f"{doc.cloud.n_points:,} points; could not embed: {exc}")
            log.warning("embedding %s failed: %s", doc.title, exc)

        run_in_thread(work, on_result=done, on_error=failed,
                      on_finished=lambda: self._embedding_pending.discard(key), owner=self)

    def _update_enabled(self) -> None:
        s = self.session
        busy = self.job is not None or self._loading
        has_doc = self.state.current is not None
        self.seg_button.setEnabled(bool(s) and has_doc and not busy)
        img_ok = bool(s) and s.image_encoder is not None
        self.heat_button.setEnabled(img_ok and has_doc and not busy)
        self.retrieve_button.setEnabled(img_ok and not busy and len(self.state.documents) > 0)
        self.category.setEnabled(bool(s) and s.segmenter is not None)
        self.k_parts.setEnabled(bool(s) and s.segmenter is None)
        if s is not None and s.image_encoder is None:
            self.heat_button.setToolTip(s.image_unavailable_reason or "no image encoder")

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

        def func(progress, cancel):
            return A.segment(s, doc.cloud, category=cat, k_parts=k, progress=progress, cancel=cancel)

        def done(res):
            note = res.note or ""
            if res.source == "head":
                src = f"segmentation head, category {res.category} ({res.category_source})"
            else:
                src = f"unsupervised part discovery: {len(res.names)} clusters of per-point features"
            self.seg_note.setText(src + (f". {note}" if note else ""))
            self.segmentationReady.emit(doc, res)

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

        def func(progress, cancel):
            progress(0, 3, "points")
            pt = A.point_heatmap_result(s, doc.cloud, image, method=method)
            if cancel():
                raise A.Cancelled("heatmap")
            progress(1, 3, "image")
            img = A.image_heatmap(s, doc.cloud, image)
            progress(2, 3, "similarity")
            sim = A.similarity(s, doc.cloud, image)
            return pt, img, sim

        def done(res):
            pt, img, sim = res
            self.similarity.setText(f"cosine similarity of the object and this view: {sim:+.3f}")
            self.heatmapReady.emit(doc, pt.heat, img)

        self._start("heatmap", func, done)

    def run_retrieval(self) -> None:
        from crosspoint import analysis as A

        image = self.views.current_image()
        docs = list(self.state.documents)
        if image is None or not docs or self.session is None:
            return
        s = self.session

        def func(progress, cancel):
            return A.retrieve(s, image, [d.cloud for d in docs], top_k=min(10, len(docs)))

        def done(hits):
            self.results.clear()
            for idx, sim in hits:
                it = QListWidgetItem(f"{sim:+.3f}  {docs[idx].title}")
                it.setData(Qt.ItemDataRole.UserRole, docs[idx])
                self.results.addItem(it)
            self.retrievalReady.emit([(self.state.documents.index(docs[i]) if docs[i] in self.state.documents
                                       else -1, sim) for i, sim in hits])

        self._start("retrieval", func, done)

    def _open_result(self, item) -> None:
        doc = item.data(Qt.ItemDataRole.UserRole)
        if doc in self.state.documents:
            self.state.set_current(self.state.documents.index(doc))
