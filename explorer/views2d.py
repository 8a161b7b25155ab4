"""The 2D side: rendered views of the current object (and dropped image files), as the image
encoder sees them, with Grad-CAM overlays.

Views are rendered by :mod:`crosspoint.render` (the same software renderer that makes the
training images) in a worker thread; the selected view is the image that correspondence
heatmaps and retrieval use (:attr:`ViewsPanel.current_image`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QIcon, QImage, QPainter, QPen, QPixmap
from PyQt6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.workers import run_in_thread

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


#: point clouds larger than this are rendered from a random subset of this many points
RENDER_MAX_POINTS = 300_000


def rgba_to_qimage(rgba: np.ndarray) -> QImage:
    rgba = np.ascontiguousarray(rgba)
    h, w = rgba.shape[:2]
    if rgba.shape[2] == 3:
        return QImage(rgba.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


def as_model_input(rgba: np.ndarray, background) -> np.ndarray:
    """The RGB uint8 image the image encoder gets of ``rgba``: transparent pixels as the model saw
    them in training (``background`` of the loaded checkpoint: "drop", "white" or "black"; see
    :func:`crosspoint.data.transforms.to_rgb`, which pretraining and evaluation use too)."""
    from crosspoint.data.transforms import to_rgb

    return to_rgb(np.asarray(rgba, np.uint8), background)


def on_white(rgba: np.ndarray) -> np.ndarray:
    """:func:`as_model_input` on white (the project's background before ``data.background``)."""
    return as_model_input(rgba, "white")


#: added images are shrunk (aspect kept) to at most this many pixels on their long side: the image
#: encoder takes 128-224 px and the panel shows a few hundred, while a 50-megapixel photo as RGBA
#: would hold 200 MB for every image added
MAX_IMAGE_SIDE = 4096


def load_image_file(path: str | Path, max_side: int = MAX_IMAGE_SIDE) -> np.ndarray:
    """An image file as RGBA uint8, shrunk to ``max_side`` on its long side; ValueError with the file
    name when it cannot be read (damaged, not an image, or larger than PIL's decompression-bomb limit)."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            # PIL's warnings about odd metadata and big images: the size is dealt with here
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                if max(im.size) > max_side:
                    im.draft(None, (max_side, max_side))  # JPEG decodes at a reduced scale, its mode kept
                    im.thumbnail((max_side, max_side))
                return np.asarray(im.convert("RGBA"))
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{path}: not read: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises OSError, SyntaxError, struct.error, ... on damaged files
        raise ValueError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None


class ElidedLabel(QLabel):
    """One line of text, elided to the width it gets (the whole text in the tooltip): a caption that
    wraps needs height the layout may not have, and then overlaps the image above it."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setFullText(text)

    def setFullText(self, text: str) -> None:  # noqa: N802
        self._full = str(text)
        self.setToolTip(self._full)
        self._elide()

    def fullText(self) -> str:  # noqa: N802
        return self._full

    def resizeEvent(self, event):  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        w = max(self.width() - 2, 20)
        super().setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, w))

    def minimumSizeHint(self):  # noqa: N802
        return QSize(20, self.fontMetrics().height() + 2)


class ImageView(QLabel):
    """A label that keeps its image scaled to fit, aspect preserved; draws pixel markers over it and
    reports clicks in the coordinates of a reference image size (``set_source_size``: the view as
    rendered, whatever size it is shown at)."""

    pixelClicked = pyqtSignal(float, float)  # (u, v) in source-image pixels

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # tall enough that a heatmap on the image stays readable when the model panel below takes the room
        self.setMinimumSize(120, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet("background: #ffffff; border: 1px solid #444;")
        self._pix: QPixmap | None = None
        self._source_size: tuple[int, int] | None = None  # (w, h) of the coordinates markers and clicks use
        self.markers: list[tuple[float, float, str]] = []  # (u, v, "visible" | "occluded" | "probe")

    def set_image(self, rgba: np.ndarray | None) -> None:
        self._pix = None if rgba is None else QPixmap.fromImage(rgba_to_qimage(rgba))
        self._rescale()

    def set_source_size(self, w: int, h: int) -> None:
        self._source_size = (int(w), int(h))

    def set_markers(self, markers) -> None:
        self.markers = [(float(u), float(v), str(kind)) for u, v, kind in markers]
        self.update()

    def image_rect(self) -> QRectF | None:
        """Where the (scaled) image lies in the widget."""
        pm = self.pixmap()
        if self._pix is None or pm is None or pm.isNull():
            return None
        w, h = pm.width() / pm.devicePixelRatioF(), pm.height() / pm.devicePixelRatioF()
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def to_widget(self, u: float, v: float) -> QPointF | None:
        r = self.image_rect()
        if r is None or self._source_size is None:
            return None
        sw, sh = self._source_size
        return QPointF(r.x() + (u + 0.5) * r.width() / sw, r.y() + (v + 0.5) * r.height() / sh)

    def to_source(self, x: float, y: float) -> tuple[float, float] | None:
        r = self.image_rect()
        if r is None or self._source_size is None or not r.contains(QPointF(x, y)):
            return None
        sw, sh = self._source_size
        return (x - r.x()) * sw / r.width() - 0.5, (y - r.y()) * sh / r.height() - 0.5

    def mouseReleaseEvent(self, event):  # noqa: N802
        uv = self.to_source(event.position().x(), event.position().y())
        if uv is not None and event.button() == Qt.MouseButton.LeftButton:
            self.pixelClicked.emit(*uv)
        super().mouseReleaseEvent(event)

    def paintEvent(self, event):  # noqa: N802
        super().paintEvent(event)
        if not self.markers:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for u, v, kind in self.markers:
            c = self.to_widget(u, v)
            if c is None:
                continue
            if kind == "visible":
                pen = QPen(QColor(0, 200, 83), 2.5)
            elif kind == "occluded":
                pen = QPen(QColor(255, 145, 0), 2.0, Qt.PenStyle.DashLine)
            elif kind == "dense":  # where the dense similarity of the picked point peaks
                pen = QPen(QColor(230, 60, 230), 2.5)
                p.setPen(pen)
                p.drawRect(QRectF(c.x() - 6, c.y() - 6, 12, 12))
                continue
            else:
                pen = QPen(QColor(33, 150, 243), 2.0)
            p.setPen(pen)
            p.drawEllipse(c, 7, 7)
            p.drawLine(QPointF(c.x() - 11, c.y()), QPointF(c.x() - 4, c.y()))
            p.drawLine(QPointF(c.x() + 4, c.y()), QPointF(c.x() + 11, c.y()))
        p.end()

    def resizeEvent(self, event):  # noqa: N802
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pix is None:
            self.clear()
            return
        self.setPixmap(self._pix.scaled(self.size() - QSize(4, 4), Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.SmoothTransformation))

    def sizeHint(self):  # noqa: N802
        return QSize(224, 224)

    def minimumSizeHint(self):  # noqa: N802
        return self.minimumSize()  # not the pixmap's size: the image shrinks to the room there is


class ViewsPanel(QWidget):
    """Thumbnails of the current object's rendered views (+ dropped images) and the selected one."""

    imageChanged = pyqtSignal()  # the selected image changed (heatmaps computed for the old one are stale)
    imagesChanged = pyqtSignal()  # the list of images changed (rendering started or finished, an image added)
    viewsReady = pyqtSignal(int)
    error = pyqtSignal(str, str)
    pixelClicked = pyqtSignal(int, float, float)  # (view index, u, v) in the view's pixels as rendered
    lookFromRequested = pyqtSignal(object)  # the selected view's camera: align the 3D camera with it

    def __init__(self, parent=None, *, n_views: int = 6, size: int = 224):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.size_px = size
        self._views: list[dict] = []  # {"rgba", "camera" or None, "name", "key", "label"}
        self._added = 0  # images added so far (their keys)
        self._overlay: np.ndarray | None = None
        self._generation = 0
        self._doc_key = None
        self.rendering = False

        self.big = ImageView()
        self.big.pixelClicked.connect(lambda u, v: self.pixelClicked.emit(self.current_index, u, v))
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListWidget.ViewMode.IconMode)
        self.thumbs.setFlow(QListWidget.Flow.LeftToRight)
        self.thumbs.setWrapping(False)
        self.thumbs.setIconSize(QSize(60, 60))
        self.thumbs.setFixedHeight(86)
        self.thumbs.setMovement(QListWidget.Movement.Static)
        self.thumbs.currentRowChanged.connect(self._on_select)
        self.n_views = QSpinBox(minimum=1, maximum=24, value=n_views)
        self.n_views.setToolTip("Number of rendered views")
        self.n_views.valueChanged.connect(lambda _: self.rerender())
        self.encoder_view = QCheckBox("As the encoder sees it")
        self.encoder_view.setChecked(True)
        self.encoder_view.toggled.connect(self._show_current)
        self.show_overlay = QCheckBox("Heatmap")
        self.show_overlay.setChecked(True)
        self.show_overlay.setEnabled(False)
        self.show_overlay.toggled.connect(self._show_current)
        add = QPushButton("Add image...")
        add.clicked.connect(self._add_dialog)
        self.look_button = QPushButton("Look from here")
        self.look_button.setToolTip("put the 3D camera where this view's camera is (same pose, an angle of view "
                                    "that shows the whole image), so the 3D view and the image can be compared")
        self.look_button.clicked.connect(self._look_from)
        self.caption = ElidedLabel("")

        row = QHBoxLayout()
        row.addWidget(QLabel("Views:"))
        row.addWidget(self.n_views)
        row.addWidget(self.encoder_view)
        row.addWidget(self.show_overlay)
        row.addStretch(1)
        row.addWidget(self.look_button)
        row.addWidget(add)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(row)
        lay.addWidget(self.big, 1)
        lay.addWidget(self.caption)
        lay.addWidget(self.thumbs)
        self._cloud = None
        self.model_image_size = size
        #: what the loaded model saw behind transparent pixels (set_model_input; white until a model is loaded)
        self.model_background = "white"
        self._update_encoder_tooltip()

    # -- public ---------------------------------------------------------------------------------
    def set_model_input(self, image_size: int, background) -> None:
        """Show images as the loaded model's image encoder gets them: ``image_size`` px, transparent
        pixels per ``background`` (the checkpoint's ``data.background``)."""
        self.model_image_size = int(image_size)
        self.model_background = background
        self._update_encoder_tooltip()
        self._refresh_thumbs()

    def set_object(self, cloud, key) -> None:
        """Render the views of ``cloud`` (a PointCloud; its mesh when it has one); ``key`` names the
        object in the views' keys (:meth:`current_view`)."""
        if key == self._doc_key and self._views:
            return
        self._doc_key = key
        self._cloud = cloud
        self.rerender()

    def rerender(self) -> None:
        self._generation += 1
        gen = self._generation
        cloud = self._cloud
        user = [v for v in self._views if v.get("camera") is None]
        self._views = user
        self._overlay = None
        self.rendering = cloud is not None  # before the list empties: the panels that follow it read it
        self._refresh_thumbs()
        if cloud is None:
            return
        n, size = self.n_views.value(), self.size_px
        self.caption.setFullText("rendering views ...")
        obj_key = self._doc_key

        def work():
            from crosspoint.render import render_views

            # the model's frame (+Y up): the views are what the image encoder gets, the object upright
            model = cloud.in_model_frame()
            obj = model.mesh if model.mesh is not None and model.mesh.n_faces > 0 else model
            if obj is model and model.n_points > RENDER_MAX_POINTS:
                # at a few hundred pixels a random subset splats the same picture (1M points: 0.9 s)
                keep = np.random.default_rng(0).choice(model.n_points, RENDER_MAX_POINTS, replace=False)
                obj = model.select(np.sort(keep))
            return render_views(obj, n, size=size, seed=0)

        def done(views):
            if gen != self._generation:
                return
            self._views = [{"rgba": img, "camera": cam, "name": f"view {i:02d} (az {cam.azimuth:.0f}°, "
                                                            f"el {cam.elevation:.0f}°)",
                            "key": f"{obj_key}/render {n}/{i}", "label": f"az {cam.azimuth:.0f}°"}
                           for i, (img, cam) in enumerate(views)] + user
            self.rendering = False
            self._refresh_thumbs()
            self.viewsReady.emit(len(self._views))

        def failed(exc):
            if gen == self._generation:
                self.rendering = False
                self.caption.setFullText(f"could not render views: {exc}")
                self.error.emit("render", str(exc))

        run_in_thread(work, on_result=done, on_error=failed, owner=self)

    def add_image(self, rgba: np.ndarray, name: str) -> None:
        self._added += 1
        self._views.append({"rgba": np.asarray(rgba, np.uint8), "camera": None, "name": name,
                            "key": f"image {self._added}: {name}", "label": f"image {self._added}"})
        self._refresh_thumbs(select=len(self._views) - 1)

    def add_image_file(self, path: str | Path) -> None:
        try:
            rgba = load_image_file(path)
        except ValueError as exc:
            self.error.emit(str(path), str(exc))
            return
        self.add_image(rgba, Path(path).name)

    @property
    def current_index(self) -> int:
        return self.thumbs.currentRow()

    def current_image(self) -> np.ndarray | None:
        i = self.current_index
        return self._views[i]["rgba"] if 0 <= i < len(self._views) else None

    def current_view(self) -> tuple[str | None, str]:
        """``(key, name)`` of the selected view: the key identifies the image (an object's rendered
        view i of n, or an added image), so results computed for it can be told apart."""
        i = self.current_index
        if not 0 <= i < len(self._views):
            return None, ""
        v = self._views[i]
        return v.get("key"), v["name"]

    def current_camera(self):
        i = self.current_index
        return self._views[i]["camera"] if 0 <= i < len(self._views) else None

    def image_count(self) -> int:
        return len(self._views)

    def set_overlay(self, heat: np.ndarray | None, label: str = "Grad-CAM on the last ResNet stage") -> None:
        """A heat map ``(H, W)`` in [0, 1] for the current image (None removes it); ``label`` says what
        it is in the caption."""
        self._overlay = heat
        self._overlay_label = label
        self.show_overlay.setEnabled(heat is not None)
        self._show_current()

    def displayed_image(self) -> np.ndarray | None:
        """What the large view shows now (RGBA or RGB uint8)."""
        rgba = self.current_image()
        if rgba is None:
            return None
        model_rgb = as_model_input(rgba, self.model_background)
        img = model_rgb if self.encoder_view.isChecked() else rgba
        if self._overlay is not None and self.show_overlay.isChecked():
            from crosspoint.analysis import overlay

            img = overlay(model_rgb, self._overlay)
        return img

    # -- internals ------------------------------------------------------------------------------
    def _update_encoder_tooltip(self) -> None:
        how = {"drop": "alpha dropped (the colour stored under transparent pixels shows, as the reference's "
                       "convert('RGB'))",
               "white": "composited on white", "black": "composited on black"}.get(self.model_background,
                                                                                   str(self.model_background))
        self.encoder_view.setToolTip(f"As the model's image encoder gets it: {how}, at {self.model_image_size} px "
                                     "(the loaded checkpoint's data.background and image size)")

    def _refresh_thumbs(self, select: int | None = None) -> None:
        keep = self.thumbs.currentRow() if select is None else select
        self.thumbs.blockSignals(True)
        self.thumbs.clear()
        for v in self._views:
            it = QListWidgetItem(QIcon(QPixmap.fromImage(rgba_to_qimage(as_model_input(v["rgba"],
                                                                                  self.model_background)))),
                                 v["label"])  # under the icon: which view it is
            it.setToolTip(v["name"])
            self.thumbs.addItem(it)
        self.thumbs.blockSignals(False)
        if self._views:
            self.thumbs.setCurrentRow(min(max(keep, 0), len(self._views) - 1))
            self._on_select(self.thumbs.currentRow())
        else:
            self.big.set_image(None)
            self.caption.setFullText("no views")
        self.imagesChanged.emit()

    def _look_from(self) -> None:
        cam = self.current_camera()
        if cam is not None:
            self.lookFromRequested.emit(cam)

    def set_marks(self, markers) -> None:
        """Markers ``[(u, v, kind)]`` on the current view (kind "visible", "occluded", "probe" or "dense":
        a magenta square where a point's dense similarity peaks)."""
        self.big.set_markers(markers)

    def _on_select(self, row: int) -> None:
        self.big.set_markers([])
        self.look_button.setEnabled(self.current_camera() is not None)
        self._overlay = None
        self.show_overlay.setEnabled(False)
        self._show_current()
        self.imageChanged.emit()

    def _show_current(self) -> None:
        i = self.current_index
        if not (0 <= i < len(self._views)):
            return
        v = self._views[i]
        img = self.displayed_image()
        if self.encoder_view.isChecked():
            from PIL import Image

            s = self.model_image_size
            img = np.asarray(Image.fromarray(img).resize((s, s), Image.BILINEAR))
        self.big.set_image(img)
        h, w = v["rgba"].shape[:2]
        self.big.set_source_size(w, h)
        self.caption.setFullText(f"{v['name']} - {w}x{h}" + (f" - heat: {getattr(self, '_overlay_label', '')}"
                                                              if self._overlay is not None
                                                              and self.show_overlay.isChecked() else ""))

    def _add_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add images", str(Path.home()),
                                                "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp)")
        for f in files:
            self.add_image_file(f)

    def dragEnterEvent(self, event):  # noqa: N802
        if event.mimeData().hasUrls() and any(Path(u.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES
                                              for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event):  # noqa: N802
        for u in event.mimeData().urls():
            p = u.toLocalFile()
            if Path(p).suffix.lower() in IMAGE_SUFFIXES:
                self.add_image_file(p)
        event.acceptProposedAction()
