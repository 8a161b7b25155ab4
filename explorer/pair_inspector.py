"""Training > Inspect a Training Pair: what pretraining feeds the encoders for one object.

The dialog shows, for an object of a run's training split at an epoch, the two augmented point
clouds exactly as the point encoder gets them (drawn as splats from one fixed camera, so the two
augmentations can be compared), the rendered view after its augmentation as the image encoder gets
it, and, with the loaded model, the object's batch: the positive similarity and the hardest in-batch
negatives of the intra- and cross-modal NT-Xent terms (``crosspoint.engine.pairs``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QImage, QPixmap
from PyQt6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTextEdit,
    QVBoxLayout,
)

from explorer.workers import run_job

REPO = Path(__file__).resolve().parents[1]
#: the config the shipped demo checkpoint was trained with (the default run to inspect)
DEMO_CONFIG = REPO / "configs" / "cpu-demo-hard.yaml"
THUMB = 200


def _pixmap(rgb: np.ndarray) -> QPixmap:
    a = np.ascontiguousarray(np.asarray(rgb)[..., :3], np.uint8)
    h, w = a.shape[:2]
    return QPixmap.fromImage(QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())


#: the colour of the dense term's linked points and pixels
LINK_RGB = (1.0, 0.0, 0.85)


def mark_pixels(image: np.ndarray, uv: np.ndarray, rgb=LINK_RGB, half: int = 1) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 with a (2 ``half`` + 1)-pixel square of ``rgb`` at each pixel
    position ``uv`` (x, y)."""
    out = np.array(image[..., :3], np.uint8, copy=True)
    h, w = out.shape[:2]
    col = (np.asarray(rgb) * 255).round().astype(np.uint8)
    for x, y in np.floor(np.asarray(uv, np.float64)).astype(np.int64):
        out[max(0, y - half):min(h, y + half + 1), max(0, x - half):min(w, x + half + 1)] = col
    return out


def splat_pair(p1: np.ndarray, p2: np.ndarray, size: int = THUMB, links: "dict | None" = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Both augmented clouds drawn from one camera (framing both), coloured by height; with ``links``
    (:attr:`~crosspoint.engine.pairs.TrainingPair.links`) the points of each copy that the dense term
    links to pixels and that are still themselves in it, in :data:`LINK_RGB`."""
    from crosspoint.render.splats import render_points
    from crosspoint.render.views import view_cameras
    from explorer.colors import scalar_colors

    both = np.concatenate([p1, p2]).astype(np.float64)
    centre = (both.min(0) + both.max(0)) / 2
    radius = float(np.linalg.norm(both - centre, axis=1).max()) or 1.0
    cam = view_cameras(1, size=size, seed=0, center=tuple(centre), scale=radius)[0]
    lo, hi = float(both[:, 1].min()), float(both[:, 1].max())
    out = []
    for p, key, alive in ((p1, "valid", "alive"), (p2, "valid2", "alive2")):
        c = scalar_colors(np.asarray(p[:, 1], np.float64), vmin=lo, vmax=hi)
        if links is not None:
            c = np.array(c, copy=True)
            c[links["idx"][links[key] & links[alive]], :3] = LINK_RGB
        out.append(render_points(np.asarray(p, np.float64), cam, colors=c, background=(1.0, 1.0, 1.0)))
    return out[0], out[1]


class PairInspector(QDialog):
    def __init__(self, model_panel, parent=None, *, config: "str | None" = None):
        super().__init__(parent)
        self.setWindowTitle("Training pair inspector")
        self.model_panel = model_panel
        self.job = None
        self.pair = None
        self._data = None  # (config path, root, (cfg, dataset)) of the last open
        self.config = QLineEdit(str(config or (DEMO_CONFIG if DEMO_CONFIG.is_file() else "")))
        self.config.setToolTip("A run folder (its config.yaml) or a pretraining config file")
        browse = QPushButton("...")
        browse.clicked.connect(self._browse)
        self.root = QLineEdit("")
        self.root.setPlaceholderText("the config's data.root")
        self.index = QSpinBox(minimum=0, maximum=10 ** 7)
        self.epoch = QSpinBox(minimum=0, maximum=10 ** 5)
        self.go = QPushButton("Show")
        self.go.clicked.connect(self.run)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.pics = [QLabel() for _ in range(3)]
        self.captions = [QLabel(t) for t in ("points 1 (as the encoder gets them)", "points 2",
                                             "the view, augmented (as the image encoder gets it)")]
        self.report = QTextEdit()
        self.report.setReadOnly(True)
        self.report.setMinimumHeight(180)
        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.config, 1)
        row.addWidget(browse)
        form.addRow("Run or config", row)
        form.addRow("Data folder", self.root)
        form.addRow("Object (training split)", self.index)
        form.addRow("Epoch", self.epoch)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.go)
        lay.addWidget(self.status)
        pics = QHBoxLayout()
        for pic, cap in zip(self.pics, self.captions):
            col = QVBoxLayout()
            pic.setFixedSize(THUMB, THUMB)
            pic.setAlignment(Qt.AlignmentFlag.AlignCenter)
            pic.setStyleSheet("background: white;")
            cap.setWordWrap(True)
            cap.setMaximumWidth(THUMB)
            col.addWidget(pic)
            col.addWidget(cap)
            pics.addLayout(col)
        lay.addLayout(pics)
        lay.addWidget(self.report, 1)
        self.resize(700, 720)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "A pretraining run folder", str(Path.home()))
        if path:
            self.config.setText(path)

    def run(self) -> None:
        from crosspoint.engine.pairs import open_training_data, training_pair

        if self.job is not None:
            return
        session = self.model_panel.session
        cfg_path, root = self.config.text().strip(), self.root.text().strip() or None
        index, epoch = self.index.value(), self.epoch.value()
        cached = self._data if self._data is not None and self._data[:2] == (cfg_path, root) else None

        def func(progress, cancel):
            progress(0, 0, "opening the run's training data")
            cfg, ds = cached[2] if cached else open_training_data(cfg_path, root=root)
            pair = training_pair(cfg, min(index, len(ds) - 1), epoch=epoch, session=session, dataset=ds,
                                 progress=progress, cancel=cancel)
            return (cfg_path, root, (cfg, ds)), pair, splat_pair(pair.points1, pair.points2, links=pair.links)

        def done(res):
            self._data, self.pair, pics = res
            self.index.setMaximum(len(self._data[2][1]) - 1)
            self.show_pair(self.pair, pics)

        def failed(exc):
            self.status.setText(f"could not inspect: {exc}")

        def progress(done_, total, text):
            self.status.setText(text)

        def finished():
            self.job = None
            self.go.setEnabled(True)

        self.go.setEnabled(False)
        self.job = run_job(func, name="training pair", on_result=done, on_error=failed, on_progress=progress,
                           on_finished=finished, owner=self)

    def show_pair(self, p, pics) -> None:
        view = p.image if p.links is None else mark_pixels(p.image, p.links["uv"][p.links["valid"]])
        for lab, img in zip(self.pics, (*pics, view)):
            lab.setPixmap(_pixmap(img).scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation))
        head = (f"{p.name} (object {p.index} of the training split), epoch {p.epoch}: "
                + (f"in batch {p.batch} ({p.batch_size} objects)" if p.batch is not None else p.note))
        self.status.setText(head)
        lines = [head, ""]
        if p.links is not None:
            lk = p.links
            n1, n2 = int(lk["valid"].sum()), int(lk["valid2"].sum())
            dead1, dead2 = int((lk["valid"] & ~lk["alive"]).sum()), int((lk["valid2"] & ~lk["alive2"]).sum())
            lines += [f"Dense term: the loss links {n1} points of points 1 and {n2} of points 2 to their pixels "
                      "(magenta, where the point is still itself). A link is a point that the view's splat "
                      "z-buffer calls visible (96 % of them are visible in the mesh's depth buffer: "
                      "tests/test_dense.py)."]
            if dead1 or dead2:
                lines.append(f"Of these, {dead1} in points 1 and {dead2} in points 2 are points that the input "
                             "dropout replaced by the copy's first point: their pixels are asked to match the "
                             "first point's feature (loss.dense_survivors=true drops such links).")
            lines.append("")
        if p.intra_positive is None:
            if p.batch is not None:
                lines.append("Load a model with an image encoder to score the batch.")
        else:
            lines.append("(projections in evaluation mode: BatchNorm with its running statistics)")
            for kind, title in (("intra", "Intra-modal (points 1 vs points 2)"),
                                ("cross", "Cross-modal (mean of the point views vs the image)")):
                pos, rank = getattr(p, f"{kind}_positive"), getattr(p, f"{kind}_rank")
                lines.append(f"{title}: positive {pos:+.3f}; {rank} of {2 * len(p.batch_indices) - 2} in-batch "
                             f"negatives score higher; this object's loss {getattr(p, f'{kind}_loss'):.3f} "
                             f"(batch {getattr(p, f'batch_{kind}_loss'):.3f}, temperature {p.temperature:g})")
                same = p.name.split("/")[0]
                for n in getattr(p, f"{kind}_negatives"):
                    flag = "  <- same class" if n.name.split("/")[0] == same else ""
                    lines.append(f"    {n.similarity:+.3f}  {n.name} ({n.view}){flag}")
                lines.append("")
        self.report.setPlainText("\n".join(lines))
