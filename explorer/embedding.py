"""The embedding panel: embed a whole dataset, map it to 2D with UMAP, and explore it.

One scatter item per class (a brush per point is slow in pyqtgraph), hover shows the object,
a click opens it in the 3D view, rectangle or lasso selection highlights objects and lists them,
and the current object is marked. Embedding and UMAP run in worker threads with progress and
cancel; both are cached on disk by :mod:`crosspoint.analysis`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen, QPixmap
from PyQt6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGraphicsPathItem,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from explorer import colors
from explorer.density import DENSITY_MIN_VISIBLE, DensityLayer, PaddedPointsItem, count_in_view
from explorer.workers import run_job

try:  # what an unset per-point style holds (pyqtgraph internals; FastScatterPlotItem falls back without)
    from pyqtgraph.graphicsItems.ScatterPlotItem import _DEFAULT_STYLE
except ImportError:  # pragma: no cover
    _DEFAULT_STYLE = None

log = logging.getLogger(__name__)

INTRO = "Embed a dataset with the current checkpoint, then explore it in 2D."


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) of a proportion ``successes / n``: honest at
    0 % and 100 %, where the normal approximation collapses to a width of 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


#: below this many labelled objects the SVM accuracy comes with a small-sample warning
SMALL_SAMPLE = 200


def svm_text(acc: tuple[float, float], labels: np.ndarray, folds: int = 5) -> tuple[str, str]:
    """``(text, warning)`` for a cross-validated linear-SVM accuracy ``(mean, std over folds)`` on
    objects with ``labels`` (>= 0 labelled). On few objects each fold scores a handful of them: the
    warning gives the objects per fold and the 95 % Wilson interval of the accuracy over all of them."""
    lab = np.asarray(labels)
    n = int((lab >= 0).sum())
    text = (f"linear-SVM accuracy ({folds}-fold CV, standardised features, {n} objects): "
            f"{100 * acc[0]:.1f} ± {100 * acc[1]:.1f} %")
    if n >= SMALL_SAMPLE:
        return text, ""
    lo, hi = wilson_interval(acc[0] * n, n)
    per_fold = max(n // folds, 1)
    return text, (f"few objects: about {per_fold} per fold, so this is a rough figure; the 95 % interval "
                  f"of an accuracy measured on {n} objects is {100 * lo:.0f}-{100 * hi:.0f} %")


def map_text(svm, quality) -> str:
    """One line of a map's honesty figures: SVM accuracy (CV) and how well the 2-D map separates
    the classes (silhouette, leave-one-out 5-NN accuracy in 2-D)."""
    parts = []
    if svm is not None:
        parts.append(f"SVM {100 * svm[0]:.1f} %")
    if quality is not None:
        parts.append(f"silhouette {quality['silhouette']:.2f}, 2-D {quality['k']}-NN {100 * quality['knn_acc']:.0f} %")
    return "; ".join(parts) if parts else "no class labels to score the map"


class _FrameEmbedding:
    """The attached run's objects as the panel's ``embedding`` (labels, names, refs; no features)."""

    def __init__(self, tm):
        self.labels, self.class_names, self.names, self.refs = tm.labels, tm.class_names, tm.names, tm.refs

    def __len__(self) -> int:
        return len(self.labels)


#: below a comparison on the plain demo: where the difference is worth looking at instead
CLEAN_DEMO_HINT = ("clean mesh samples: random weights are a strong baseline on them; choose \"Demo, held-out "
                   "objects, sensor-like points\" to see what pretraining buys on points like a sensor's")


def labels_text(mine, theirs) -> str:
    """The few-labels line of a comparison: accuracy with n labelled objects per class, this checkpoint
    against random weights (:func:`crosspoint.analysis.background.labels_curve`), or "" without it."""
    if not mine or not theirs or [r["per_class"] for r in mine] != [r["per_class"] for r in theirs]:
        return ""
    ns = " / ".join(str(r["per_class"]) for r in mine)
    a = " / ".join(f"{100 * r['mean']:.0f}" for r in mine)
    b = " / ".join(f"{100 * r['mean']:.0f}" for r in theirs)
    return (f"with {ns} labelled objects per class (SVM on the rest, {mine[0]['repeats']} draws): this checkpoint "
            f"{a} %, random weights {b} %")


def overlay_text(ov, *, short: bool = False) -> str:
    """The overlay's figure: how a linear SVM fit on the main data does on it (domain shift)."""
    t = "no shared classes to score" if ov.transfer_acc is None else \
        f"SVM fit on the data scores {100 * ov.transfer_acc:.1f} % on them"
    if short:
        return f"overlay: {t}"
    return f"overlay: {len(ov.embedding)} objects (crosses) from {ov.source}; {t}"


def points_in_polygon(xy: np.ndarray, poly: np.ndarray, *, order: "np.ndarray | None" = None,
                      sorted_xy: "np.ndarray | None" = None) -> np.ndarray:
    """Even-odd rule, vectorised over points: ``xy`` (M, 2), ``poly`` (K, 2) -> bool (M,).

    The points are taken in order of y (``order``: ``np.argsort(xy[:, 1])`` computed before, as
    the map keeps it), so each edge only looks at the contiguous run of points in its band of y:
    a lasso of K edges costs about the points in the bands, not K passes over every point.
    ``sorted_xy``: ``xy[order].T`` computed before."""
    xy = np.asarray(xy)
    inside = np.zeros(len(xy), bool)
    poly = np.asarray(poly, np.float64)
    if len(poly) < 3 or not len(xy):
        return inside
    if order is None:
        order = np.argsort(xy[:, 1], kind="stable")
    xs, ys = sorted_xy if sorted_xy is not None else (xy[order, 0], xy[order, 1])
    flip = np.zeros(len(xy), bool)  # in y order
    px, py = poly[:, 0], poly[:, 1]
    qx, qy = np.roll(px, -1), np.roll(py, -1)
    for x0, y0, x1, y1 in zip(px, py, qx, qy):
        if not y0 != y1:  # horizontal (or NaN) edges cross no ray
            continue
        # the points with (y0 > y) != (y1 > y), i.e. min(y0, y1) <= y < max(y0, y1)
        a, b = np.searchsorted(ys, (min(y0, y1), max(y0, y1)), side="left")
        if a == b:
            continue
        xc = x0 + (ys[a:b] - y0) * (x1 - x0) / (y1 - y0)
        flip[a:b] ^= xs[a:b] < xc
    inside[order] = flip
    return inside


class MapIndex:
    """Look-ups on a map's points without a pass over every point: the point(s) under the cursor
    (a :class:`scipy.spatial.cKDTree` on the coordinates scaled to the map's extent) and the
    order by y that :func:`points_in_polygon` slices."""

    def __init__(self, coords):
        from scipy.spatial import cKDTree

        self.xy = np.asarray(coords, np.float64).reshape(-1, 2)
        self.order = np.argsort(self.xy[:, 1], kind="stable")
        self.sorted_xy = np.ascontiguousarray(self.xy[self.order].T)  # (2, M): x and y in order of y
        if len(self.xy):
            lo, hi = self.xy.min(axis=0), self.xy.max(axis=0)
            self.scale = np.where(hi - lo > 0, hi - lo, 1.0)
        else:
            self.scale = np.ones(2)
        self.tree = cKDTree(self.xy / self.scale) if len(self.xy) else None

    def __len__(self) -> int:
        return int(self.xy.shape[0])

    def near(self, x: float, y: float, rx: float, ry: float) -> tuple[np.ndarray, np.ndarray]:
        """Rows with ``|dx| <= rx`` and ``|dy| <= ry`` (a symbol's box around the cursor, in data
        units), nearest first, and their distances in units of the box."""
        if self.tree is None or not (rx > 0 and ry > 0):
            return np.zeros(0, np.int64), np.zeros(0)
        r = max(rx / self.scale[0], ry / self.scale[1])
        cand = np.asarray(self.tree.query_ball_point((x / self.scale[0], y / self.scale[1]), r, p=np.inf),
                          np.int64)
        if not cand.size:
            return cand, np.zeros(0)
        d = np.abs(self.xy[cand] - (x, y)) / (rx, ry)
        keep = (d <= 1).all(axis=1)
        cand, dist = cand[keep], np.hypot(d[keep, 0], d[keep, 1])
        o = np.lexsort((cand, dist))
        return cand[o], dist[o]

    def in_polygon(self, poly: np.ndarray) -> np.ndarray:
        return points_in_polygon(self.xy, poly, order=self.order, sorted_xy=self.sorted_xy)


class FastScatterPlotItem(pg.ScatterPlotItem):
    """pyqtgraph's scatter item for points that all share the item's style: the symbol atlas is
    asked once for the whole item instead of once per point (pyqtgraph's per-point Python loop
    took ~5 s for 500,000 points)."""

    #: False: clicks go through to the view box (the map finds the point with its MapIndex)
    clickable = True
    #: True while the map's density layer draws these points (the item stays visible, so that the
    #: legend still shows and toggles its class, but paints nothing)
    suppressed = False

    def paint(self, p, option, widget=None):
        if self.suppressed:
            return
        super().paint(p, option, widget)

    def mouseClickEvent(self, ev):  # noqa: N802
        if not self.clickable:
            ev.ignore()
            return
        super().mouseClickEvent(ev)

    def updateSpots(self, dataSet=None):  # noqa: N802
        if dataSet is None:
            dataSet = self.data
        if (_DEFAULT_STYLE is None or not (self.opts["pxMode"] and self.opts["useCache"]) or self.opts["hoverable"]
                or not hasattr(self, "_maybeRebuildAtlas")):
            return super().updateSpots(dataSet)
        idx = np.flatnonzero(dataSet["sourceRect"]["w"] == 0)
        if idx.size < 64 or not all(np.equal(dataSet[o][idx], _DEFAULT_STYLE[o]).all()
                                    for o in ("symbol", "size", "pen", "brush")):
            return super().updateSpots(dataSet)
        style = (self.opts["symbol"], self.opts["size"], self.opts["pen"], self.opts["brush"])
        rect = np.array([tuple(self.fragmentAtlas[[style]][0])], dtype=dataSet["sourceRect"].dtype)
        dataSet["sourceRect"][idx] = rect[0]
        self._maybeRebuildAtlas()
        self._updateMaxSpotSizes(data=dataSet)
        self.invalidate()


class SelectViewBox(pg.ViewBox):
    """A ViewBox whose left-drag draws a selection rectangle or lasso when a mode is active."""

    selected = pyqtSignal(object)  # polygon (K, 2) in data coordinates
    clicked = pyqtSignal(object)  # QPointF in data coordinates (a left click; the map finds the point)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mode = "pan"  # "pan", "rect" or "lasso"
        self._path: list[QPointF] = []
        self._item = QGraphicsPathItem()
        self._item.setPen(QPen(QColor(255, 255, 255), 0, Qt.PenStyle.DashLine))
        self._item.setBrush(QBrush(QColor(255, 255, 255, 30)))
        self._item.setZValue(1000)
        self.addItem(self._item, ignoreBounds=True)
        self._item.hide()

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802
        if self.mode == "pan" or ev.button() != Qt.MouseButton.LeftButton:
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        p = self.mapToView(ev.pos())
        if ev.isStart():
            self._path = [self.mapToView(ev.buttonDownPos())]
        self._path.append(p)
        self._draw()
        if ev.isFinish():
            poly = self.polygon()
            self._item.hide()
            self._path = []
            self.selected.emit(poly)

    def mouseClickEvent(self, ev):  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.clicked.emit(self.mapSceneToView(ev.scenePos()))
            return
        super().mouseClickEvent(ev)

    def polygon(self) -> np.ndarray:
        if not self._path:
            return np.zeros((0, 2))
        if self.mode == "rect":
            a, b = self._path[0], self._path[-1]
            return np.array([[a.x(), a.y()], [b.x(), a.y()], [b.x(), b.y()], [a.x(), b.y()]])
        return np.array([[p.x(), p.y()] for p in self._path])

    def _draw(self) -> None:
        poly = self.polygon()
        path = QPainterPath()
        if len(poly):
            path.moveTo(*poly[0])
            for q in poly[1:]:
                path.lineTo(*q)
            path.closeSubpath()
        self._item.setPath(path)
        self._item.show()


class PointMarks(PaddedPointsItem):
    """One symbol of a fixed size in pixels at each of many points (the selection marks), drawn
    from one pre-rendered image with ``QPainter.drawPixmapFragments``. Unlike pyqtgraph's scatter
    item it keeps no record per point, so ``setData`` of 100,000 points costs a copy, not ~50 ms.
    ``data``: the points, a record array with fields ``x`` and ``y`` (as the scatter item's)."""

    def __init__(self, size: float = 11, pen=None, brush=None, symbol: str = "o"):
        super().__init__()
        from pyqtgraph.graphicsItems.ScatterPlotItem import renderSymbol

        self._size = float(size)
        self._image = renderSymbol(symbol, self._size, pg.mkPen(pen), pg.mkBrush(brush))
        self._pixmap = None
        self._frags = pg.Qt.internals.PrimitiveArray(QPainter.PixmapFragment, 10)
        self.data = np.zeros(0, dtype=[("x", np.float64), ("y", np.float64)])

    #: above this many marks in view, marks closer than :attr:`MERGE_PX` are drawn once (at the
    #: centre of their bin): ringing 438k selected points took ~200 ms, and a ring drawn again one
    #: pixel away changes nothing one can see
    MERGE_ABOVE = 20_000
    MERGE_PX = 2
    last_drawn = 0

    def _merged(self, dx: np.ndarray, dy: np.ndarray, margin: float) -> "tuple[np.ndarray, np.ndarray]":
        """One mark per occupied ``MERGE_PX`` bin of the device (no sort: an occupancy grid)."""
        b = self.MERGE_PX
        ix = ((dx + margin) // b).astype(np.int64)
        iy = ((dy + margin) // b).astype(np.int64)
        w = int(ix.max()) + 1
        occupied = np.zeros((int(iy.max()) + 1) * w, bool)
        occupied[iy * w + ix] = True
        cells = np.flatnonzero(occupied)
        return (cells % w) * b + b / 2 - margin, (cells // w) * b + b / 2 - margin

    def setData(self, x, y) -> None:  # noqa: N802
        x = np.asarray(x, np.float64).reshape(-1)
        y = np.asarray(y, np.float64).reshape(-1)
        self.prepareGeometryChange()
        data = np.empty(x.size, dtype=self.data.dtype)
        data["x"], data["y"] = x, y
        self.data = data
        self._set_bounds(x, y)
        self.informViewBoundsChanged()
        self.update()

    def pixelPadding(self) -> float:  # noqa: N802
        return self._size / 2 + 1

    def pad_px(self) -> float:
        return self.pixelPadding()

    def paint(self, p, option, widget=None):
        n = self.data.size
        if not n:
            return
        if self._pixmap is None:
            self._pixmap = QPixmap.fromImage(self._image)
        tr = p.transform()
        x, y = self.data["x"], self.data["y"]
        dx = tr.m11() * x + tr.m21() * y + tr.dx()
        dy = tr.m12() * x + tr.m22() * y + tr.dy()
        dev = p.device()
        m = self._size
        vis = (dx > -m) & (dy > -m) & (dx < dev.width() + m) & (dy < dev.height() + m)
        dx, dy = dx[vis], dy[vis]
        if dx.size > self.MERGE_ABOVE:
            dx, dy = self._merged(dx, dy, m)
        self.last_drawn = int(dx.size)
        if not dx.size:
            return
        p.resetTransform()
        self._frags.resize(dx.size)
        f = self._frags.ndarray()
        f[:, 0], f[:, 1] = dx, dy
        f[:, 2:6] = (0.0, 0.0, self._pixmap.width(), self._pixmap.height())
        f[:, 6:10] = (1.0, 1.0, 0.0, 1.0)
        p.drawPixmapFragments(*self._frags.drawargs(), self._pixmap)


#: hover thumbnails in the map, pixels
THUMB_PX = 96
_THUMBS: dict = {}


def thumbnail_path(ref: str):
    """A rendered view of a dataset object to show on hover, from the files the dataset already has
    (ShapeNetRendering's ``<root>/ShapeNetRendering/<synset>/<id>/rendering/*.png`` beside
    ``<root>/ShapeNet/<synset>/<id>.<ext>``: the demo and ShapeNet), looked up once; None when there is
    none (folders of meshes get their views only when a pretraining renders them)."""
    if ref in _THUMBS:
        return _THUMBS[ref]
    out = None
    try:
        p = Path(str(ref).split("#", 1)[0])
        if p.parent.parent.name == "ShapeNet":
            d = p.parent.parent.parent / "ShapeNetRendering" / p.parent.name / p.stem / "rendering"
            pngs = sorted(d.glob("*.png")) if d.is_dir() else []
            out = pngs[0] if pngs else None
    except OSError:
        out = None
    if len(_THUMBS) > 100_000:
        _THUMBS.clear()
    _THUMBS[ref] = out
    return out


class EmbeddingPanel(QWidget):
    openRequested = pyqtSignal(str, object)  # (ref to open, extra metadata dict)
    error = pyqtSignal(str, str)
    selectionChanged = pyqtSignal(object)  # indices (np.ndarray)

    def __init__(self, model_panel, parent=None):
        super().__init__(parent)
        self.model_panel = model_panel
        self.embedding = None  # analysis.DatasetEmbedding
        self.coords: np.ndarray | None = None
        self.selection = np.zeros(0, np.int64)
        self.current_ref: str | None = None
        self.job = None
        self.source_root: str | None = None
        #: compute embeddings in this process instead of a child process (tests, debugging)
        self.in_process = False
        self._label_names: dict = {}

        self.source = QComboBox()
        self.source.addItem("Demo dataset", "demo")
        self.source.addItem("Demo, held-out objects, sensor-like points", "demo-sensor")
        self.source.setItemData(self.source.count() - 1, "the demo's held-out seed (objects the demo checkpoint never saw) with points "
                                   "sampled like a depth sensor's: density falling off across the object, jitter "
                                   "(crosspoint make-demo --seed 1 --sensor). Pretraining shows here: compare with "
                                   "random weights", Qt.ItemDataRole.ToolTipRole)
        self.source.addItem("Folder or dataset...", "folder")
        self.source.addItem("Open objects", "open")
        self.source.activated.connect(self._source_chosen)
        self.overlay_source = QComboBox()
        self.overlay_source.addItem("No overlay", None)
        self.overlay_source.addItem("Overlay: its partial scans", "scans")
        self.overlay_source.addItem("Overlay: folder or dataset...", "folder")
        self.overlay_source.setToolTip("map a second dataset onto the same UMAP (drawn as crosses in the class "
                                       "colours): domain shift, e.g. partial scans against whole objects")
        self.overlay_source.activated.connect(self._overlay_chosen)
        self.overlay = None  # analysis.background.Overlay of the map shown
        self.overlay_items: list[pg.ScatterPlotItem] = []
        self.base_overlay_items: list[pg.ScatterPlotItem] = []
        self.training_button = QPushButton("Over training...")
        self.training_button.setToolTip("attach a run folder: embed the data with each of its checkpoints (and the "
                                        "random initialisation) and step through the maps, aligned across epochs "
                                        "(AlignedUMAP), with the SVM accuracy per epoch")
        self.training_button.clicked.connect(self._training_dialog)
        self.training_maps = None  # analysis.training_maps.TrainingMaps
        self.epoch_slider = QSlider(Qt.Orientation.Horizontal)
        self.epoch_slider.setMinimum(0)
        self.epoch_slider.valueChanged.connect(self.show_epoch)
        self.epoch_label = QLabel("")
        self.compare = QCheckBox("Compare with random weights")
        self.compare.setToolTip("also embed the data with a randomly initialised encoder of the same architecture and "
                                "show its map beside this one: what pretraining changed, and the figures a "
                                "clustered-looking map has to beat")
        self.embed_button = QPushButton("Embed + UMAP")
        self.embed_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.progress = QProgressBar()
        self.progress.hide()
        self.status = QLabel(INTRO)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.mode_buttons = QButtonGroup(self)
        mode_row = QHBoxLayout()
        for i, (mode, label, tip) in enumerate((("pan", "Pan/zoom", "drag to pan, wheel to zoom"),
                                                ("rect", "Rectangle", "drag a rectangle to select"),
                                                ("lasso", "Lasso", "draw around objects to select"))):
            b = QPushButton(label)
            b.setCheckable(True)
            b.setToolTip(tip)
            b.setChecked(mode == "pan")
            b.clicked.connect(lambda _=False, m=mode: self.set_mode(m))
            self.mode_buttons.addButton(b, i)
            mode_row.addWidget(b)
        clear = QPushButton("Clear selection")
        clear.clicked.connect(lambda: self.set_selection(np.zeros(0, np.int64)))
        mode_row.addWidget(clear)
        mode_row.addStretch(1)

        self.vb = SelectViewBox()
        self.vb.selected.connect(self._on_polygon)
        self.plot = pg.PlotWidget(viewBox=self.vb)
        self.plot.setBackground("#1e2126")
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setAspectLocked(False)
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextSize="8pt")
        self.class_items: list[pg.ScatterPlotItem] = []
        self.sel_item = PointMarks(size=11, pen=pg.mkPen("w", width=1.5), brush=pg.mkBrush(0, 0, 0, 0))
        self.cur_item = FastScatterPlotItem(size=22, symbol="star", pen=pg.mkPen("#ff5252", width=2),
                                            brush=pg.mkBrush(255, 82, 82, 120))
        self.hover_item = FastScatterPlotItem(size=10, pen=pg.mkPen("w", width=1.5), brush=pg.mkBrush(0, 0, 0, 0))
        for it, z in ((self.sel_item, 10), (self.cur_item, 11), (self.hover_item, 12)):
            self.plot.addItem(it)
            it.setZValue(z)
        # many points in view: one class-coloured image instead of a symbol per point (explorer.density)
        self.density = DensityLayer()
        self.plot.addItem(self.density)
        self.density.setVisible(False)
        self.vb.sigRangeChanged.connect(lambda *_: self._update_density("main"))
        # hover and click look-ups (MapIndex) of the map, its overlay, the baseline map and its overlay
        self._index: dict = {}
        self._ref_rows: "dict | None" = None  # str(ref) and displayed ref -> rows (mark_current)
        self.vb.clicked.connect(lambda pos: self._on_view_clicked("main", pos))
        self.plot.scene().sigMouseMoved.connect(lambda pos: self._hover("main", pos))
        # the random-weight baseline's map (same objects, same row order), shown beside the map
        self.baseline = None  # analysis.DatasetEmbedding of the random encoder
        self.base_coords: np.ndarray | None = None
        self.base_vb = SelectViewBox()  # always "pan": the selection is drawn on the main map
        self.base_plot = pg.PlotWidget(viewBox=self.base_vb)
        self.base_plot.setBackground("#1e2126")
        self.base_plot.hideAxis("left")
        self.base_plot.hideAxis("bottom")
        self.base_items: list[pg.ScatterPlotItem] = []
        self.base_sel_item = PointMarks(size=11, pen=pg.mkPen("w", width=1.5), brush=pg.mkBrush(0, 0, 0, 0))
        self.base_cur_item = FastScatterPlotItem(size=22, symbol="star", pen=pg.mkPen("#ff5252", width=2),
                                                 brush=pg.mkBrush(255, 82, 82, 120))
        self.base_hover_item = FastScatterPlotItem(size=10, pen=pg.mkPen("w", width=1.5),
                                                   brush=pg.mkBrush(0, 0, 0, 0))
        for it, z in ((self.base_sel_item, 10), (self.base_cur_item, 11), (self.base_hover_item, 12)):
            self.base_plot.addItem(it)
            it.setZValue(z)
        self.base_density = DensityLayer()
        self.base_plot.addItem(self.base_density)
        self.base_density.setVisible(False)
        self.base_vb.sigRangeChanged.connect(lambda *_: self._update_density("base"))
        self.base_vb.clicked.connect(lambda pos: self._on_view_clicked("base", pos))
        self.base_plot.scene().sigMouseMoved.connect(lambda pos: self._hover("base", pos))
        self.map_title = QLabel("")
        self.base_title = QLabel("")
        for t in (self.map_title, self.base_title):
            t.setWordWrap(True)
            t.setStyleSheet("font-weight: bold;")
        self.sel_list = QListWidget()
        self.sel_list.itemActivated.connect(self._open_item)
        self.sel_list.itemDoubleClicked.connect(self._open_item)
        self.sel_label = QLabel("Selection: none")

        top = QHBoxLayout()
        top.addWidget(QLabel("Data:"))
        top.addWidget(self.source, 1)
        top.addWidget(self.overlay_source)
        top.addWidget(self.compare)
        top.addWidget(self.embed_button)
        top.addWidget(self.training_button)
        top.addWidget(self.cancel_button)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.sel_label)
        rl.addWidget(self.sel_list, 1)
        split = QSplitter()
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addLayout(mode_row)
        self.epoch_row = QWidget()
        er = QHBoxLayout(self.epoch_row)
        er.setContentsMargins(0, 0, 0, 0)
        er.addWidget(QLabel("Epoch:"))
        er.addWidget(self.epoch_slider, 1)
        er.addWidget(self.epoch_label, 2)
        self.epoch_row.hide()
        ll.addWidget(self.epoch_row)
        maps = QHBoxLayout()
        main_col, base_col = QVBoxLayout(), QVBoxLayout()
        main_col.addWidget(self.map_title)
        main_col.addWidget(self.plot, 1)
        self.base_box = QWidget()
        base_col.setContentsMargins(0, 0, 0, 0)
        base_col.addWidget(self.base_title)
        base_col.addWidget(self.base_plot, 1)
        self.base_box.setLayout(base_col)
        self.base_box.hide()
        self.map_title.hide()
        maps.addLayout(main_col, 1)
        maps.addWidget(self.base_box, 1)
        ll.addLayout(maps, 1)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([700, 220])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(split, 1)
        state = self.model_panel.state
        self.source.currentIndexChanged.connect(lambda _: self._source_to_state())
        self.overlay_source.currentIndexChanged.connect(lambda _: self._source_to_state())
        self.compare.toggled.connect(lambda _: self._source_to_state())
        state.contextChanged.connect(self.show_status)
        state.resultChanged.connect(lambda doc, kind: self.show_status() if kind == "embedding_map" else None)
        self._source_to_state()

    # -- the map's result and its provenance ------------------------------------------------------
    def _source_to_state(self) -> None:
        """The map's settings (data source, overlay, random-weight comparison) as the controls say."""
        self.model_panel.state.set_settings("embedding_map", source=str(self.source.currentData()),
                                            compare_random=self.compare.isChecked(),
                                            overlay=self.overlay_source.currentData())

    def show_status(self) -> None:
        """The status line from the state: the map's summary, marked stale when the checkpoint or the
        data source changed since; an error of another source or checkpoint is not shown."""
        if self.job is not None:
            return  # progress texts while it runs
        st = self.model_panel.state
        r = st.result(None, "embedding_map")
        stale = st.stale_reason(None, "embedding_map")
        if r is None or ("error" in r.value and stale):
            self.status.setText(INTRO)
            self.status.setStyleSheet("")
            return
        if "error" in r.value:
            self.status.setText(f"failed: {r.value['error']}")
            self.status.setStyleSheet("color: #ff8a80;")
            return
        text = r.value["message"] + (f"\n{r.value['warning']}" if r.value.get("warning") else "")
        if stale:
            text = f"STALE ({stale}; Embed again to update):\n{text}"
        self.status.setText(text)
        self.status.setStyleSheet("color: #e0a040;" if stale else "")

    # -- data source ----------------------------------------------------------------------------
    def _source_chosen(self, index: int) -> None:
        if self.source.itemData(index) == "folder":
            d = QFileDialog.getExistingDirectory(self, "Dataset or folder of objects", str(Path.home()))
            if d:
                self.set_source_folder(d)
            else:
                self.source.setCurrentIndex(0)

    def set_source_folder(self, path: str) -> None:
        label = f"Folder: {path}"
        i = self.source.findData(path)
        if i < 0:
            self.source.addItem(label, path)
            i = self.source.count() - 1
        self.source.setCurrentIndex(i)

    # -- the embedding space over training ---------------------------------------------------------
    def _training_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Run folder (with checkpoints/)", str(Path.home()))
        if d:
            self.run_training_maps(d)

    def run_training_maps(self, run_dir: str) -> None:
        """Embed the chosen data with every checkpoint of ``run_dir`` (and the random initialisation)
        in a child process, then step through the aligned maps with the slider."""
        if self.job is not None:
            return
        try:
            source = self._resolve_source()
        except ValueError as exc:
            self.error.emit("embedding", str(exc))
            return
        if not isinstance(source, str):
            self.error.emit("embedding", "the maps over training need a dataset folder or the demo as the data")
            return
        from crosspoint.analysis.background import call_in_subprocess

        in_process = self.in_process
        device = str(self.model_panel.session.device) if self.model_panel.session is not None else "auto"

        def func(progress, cancel):
            from crosspoint.analysis.training_maps import compute_training_maps

            if in_process:
                return compute_training_maps(run_dir, source, device=device, progress=progress)
            return call_in_subprocess(compute_training_maps, run_dir, source, device=device, progress=progress,
                                      cancel=cancel)

        def progress(done, total, text):
            if total > 0:
                self.progress.setRange(0, total)
                self.progress.setValue(done)
            else:
                self.progress.setRange(0, 0)
            self.status.setText(text)

        def done(tm):
            self.training_maps = tm
            self.epoch_slider.blockSignals(True)
            self.epoch_slider.setMaximum(len(tm.epochs) - 1)
            self.epoch_slider.setValue(len(tm.epochs) - 1)
            self.epoch_slider.blockSignals(False)
            self.epoch_row.show()
            self.show_epoch(len(tm.epochs) - 1)
            curve = ", ".join(f"{e}: {'-' if a is None else f'{100 * a[0]:.0f}%'}" for e, a in zip(tm.epochs, tm.svm))
            self.status.setText(f"{run_dir}: {len(tm.epochs)} maps ({tm.method}), {len(tm.labels)} objects; "
                                f"SVM accuracy by epoch: {curve}")
            self.status.setStyleSheet("")

        def failed(exc):
            self.status.setText(f"failed: {exc}")
            self.status.setStyleSheet("color: #ff8a80;")
            self.error.emit("embedding", str(exc))

        def finished():
            self.job = None
            self.progress.hide()
            self.cancel_button.hide()
            self.embed_button.setEnabled(True)
            self.training_button.setEnabled(True)

        self.progress.show()
        self.progress.setRange(0, 0)
        self.cancel_button.show()
        self.embed_button.setEnabled(False)
        self.training_button.setEnabled(False)
        self.job = run_job(func, name="training maps", on_result=done, on_error=failed, on_progress=progress,
                           on_finished=finished, owner=self)

    def show_epoch(self, k: int) -> None:
        """Show the aligned map of the ``k``-th checkpoint of the attached run."""
        tm = self.training_maps
        if tm is None or not 0 <= k < len(tm.epochs):
            return
        self.embedding = _FrameEmbedding(tm)
        self.coords = np.asarray(tm.coords[k], np.float32)
        self.class_items = self._draw_classes(self.plot, self.class_items, self.embedding, self.coords,
                                              legend=self.legend)
        self._index = {"main": MapIndex(self.coords)}
        self._ref_rows = None
        self.set_selection(self.selection if len(self.selection) else np.zeros(0, np.int64))
        self.mark_current(self.current_ref)
        lo = np.min([c.min(axis=0) for c in tm.coords], axis=0)
        hi = np.max([c.max(axis=0) for c in tm.coords], axis=0)
        self._fit(self.vb, np.stack([lo, hi]), legend_room=True)  # one frame for every epoch: movement shows
        ep = tm.epochs[k]
        name = "random initialisation" if ep == 0 and tm.checkpoints[k] == "random" else f"epoch {ep}"
        self.epoch_label.setText(f"{name}: {map_text(tm.svm[k], tm.quality[k])}")

    def _overlay_chosen(self, index: int) -> None:
        if self.overlay_source.itemData(index) == "folder":
            d = QFileDialog.getExistingDirectory(self, "Dataset or folder to overlay", str(Path.home()))
            if d:
                self.set_overlay_folder(d)
            else:
                self.overlay_source.setCurrentIndex(0)

    def set_overlay_folder(self, path: str) -> None:
        i = self.overlay_source.findData(path)
        if i < 0:
            self.overlay_source.addItem(f"Overlay: {path}", path)
            i = self.overlay_source.count() - 1
        self.overlay_source.setCurrentIndex(i)

    def _resolve_source(self):
        data = self.source.currentData()
        if data == "open":
            docs = self.model_panel.state.documents
            files = [d.source for d in docs if d.cloud.path is not None]
            if len(files) < 2:
                raise ValueError("open at least two files to embed the open objects")
            return files
        return data

    # -- running ----------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        self.vb.mode = mode
        for b in self.mode_buttons.buttons():
            b.setChecked(b.text().lower().startswith({"pan": "pan", "rect": "rect", "lasso": "lasso"}[mode]))

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.setText("cancelling ...")

    def run(self) -> None:
        from crosspoint import analysis as A

        session = self.model_panel.session
        if session is None:
            self.error.emit("embedding", "load a checkpoint first (Model panel)")
            return
        if self.job is not None:
            return
        try:
            source = self._resolve_source()
        except ValueError as exc:
            self.error.emit("embedding", str(exc))
            return
        state = self.model_panel.state
        compare = self.compare.isChecked()
        overlay = self.overlay_source.currentData()
        self._source_to_state()
        prov = state.provenance("embedding_map", None)

        def func(progress, cancel):
            # cached results come back at once; computing runs in a child process, so that its
            # GIL-holding Python/numba code cannot freeze the GUI (crosspoint.analysis.background)
            from crosspoint.analysis.background import embed_and_map

            m = embed_and_map(session, source, progress=progress, cancel=cancel, in_process=self.in_process,
                              compare_random=compare, overlay=overlay)
            return m

        def progress(done, total, text):
            if total > 0:
                self.progress.setRange(0, total)
                self.progress.setValue(done)
            else:
                self.progress.setRange(0, 0)
            self.status.setText(text)

        def done(m):
            root, emb, proj, acc = m.root, m.embedding, m.projection, m.svm
            self.source_root = root if isinstance(root, str) else None
            self._label_names = self._demo_label_names(root) if isinstance(root, str) else {}
            self.set_embedding(emb, proj.coords, baseline=m.baseline, quality=m.quality, svm=acc, overlay=m.overlay)
            n_cls = len(emb.class_names)
            msg = f"{len(emb)} objects, {n_cls} {'class' if n_cls == 1 else 'classes'}; 2D map: {proj.method}"
            if proj.note:
                msg += f" ({proj.note})"
            if emb.from_cache:
                msg += "; embeddings from the cache"
            warning = ""
            if acc is not None:
                text, warning = svm_text(acc, emb.labels)
                msg += f"; {text}"
            if m.quality is not None:
                msg += f"; map: silhouette {m.quality['silhouette']:.2f}"
            if m.overlay is not None:
                msg += f"\n{overlay_text(m.overlay)}"
            if m.baseline is not None:
                msg += f"\nrandom weights: {map_text(m.baseline.svm, m.baseline.quality)}"
                if m.baseline.overlay is not None:
                    msg += f"; {overlay_text(m.baseline.overlay, short=True)}"
                few = labels_text(m.labels_curve, m.baseline.labels_curve)
                if few:
                    msg += f"\n{few}"
                if source == "demo":
                    msg += f"\n{CLEAN_DEMO_HINT}"
            if emb.skipped:
                msg += f"; {len(emb.skipped)} unreadable objects skipped"
            value = {"message": msg, "warning": warning, "n": len(emb), "svm": acc, "quality": m.quality}
            if m.overlay is not None:
                value["overlay"] = {"n": len(m.overlay.embedding), "transfer_acc": m.overlay.transfer_acc,
                                    "source": m.overlay.source}
            if m.baseline is not None:
                value["baseline"] = {"svm": m.baseline.svm, "quality": m.baseline.quality,
                                     "labels_curve": m.baseline.labels_curve}
                value["labels_curve"] = m.labels_curve
                if m.baseline.overlay is not None:
                    value["baseline"]["overlay_transfer_acc"] = m.baseline.overlay.transfer_acc
            state.set_result(None, "embedding_map", value, prov)

        def failed(exc):
            if isinstance(exc, A.Cancelled):
                self.status.setText("cancelled")
                self.cancelled = True
            else:
                state.set_result(None, "embedding_map", {"error": str(exc)}, prov)
                self.error.emit("embedding", str(exc))

        def finished():
            self.job = None
            self.progress.hide()
            self.cancel_button.hide()
            self.embed_button.setEnabled(True)
            if not self.cancelled:
                self.show_status()

        self.cancelled = False
        self.status.setStyleSheet("")
        self.progress.show()
        self.progress.setRange(0, 0)
        self.cancel_button.show()
        self.embed_button.setEnabled(False)
        self.job = run_job(func, name="embedding", on_result=done, on_error=failed, on_progress=progress,
                           on_finished=finished, owner=self)

    @property
    def busy(self) -> bool:
        return self.job is not None

    @staticmethod
    def _demo_label_names(root: str) -> dict:
        meta = Path(root) / "demo_meta.json"
        if not meta.is_file():
            return {}
        import json

        try:
            m = json.loads(meta.read_text())
        except (OSError, ValueError):
            return {}
        names = {}
        for c in m.get("classes", []):
            for pid, pname in zip(c.get("part_ids", []), c.get("parts", [])):
                names[int(pid)] = f"{c.get('name')}/{pname}"
        return names

    # -- drawing ----------------------------------------------------------------------------------
    def set_embedding(self, emb, coords: np.ndarray, *, baseline=None, quality=None, svm=None, overlay=None) -> None:
        """Show ``emb`` at ``coords``; ``baseline`` (an :class:`~crosspoint.analysis.background.EmbeddingMap`
        of random weights on the same objects) beside it, with both maps' figures as titles."""
        self.embedding = emb
        self.coords = np.asarray(coords, np.float32)
        self._ref_rows = None
        self.class_items = self._draw_classes(self.plot, self.class_items, emb, self.coords, legend=self.legend)
        same = (baseline is not None and len(baseline.embedding) == len(emb)
                and [str(r) for r in baseline.embedding.refs] == [str(r) for r in emb.refs])
        if baseline is not None and not same:
            log.warning("the random-weight baseline embedded other objects; not shown")
        self.baseline = baseline.embedding if same else None
        self.base_coords = np.asarray(baseline.projection.coords, np.float32) if same else None
        self.base_items = self._draw_classes(self.base_plot, self.base_items, emb,
                                             self.base_coords if same else None)
        self.overlay = overlay
        self.overlay_items = self._draw_classes(self.plot, self.overlay_items, overlay.embedding if overlay else None,
                                                overlay.coords if overlay else None, symbol="x", overlay=True)
        bov = baseline.overlay if same and baseline is not None else None
        self.base_overlay_items = self._draw_classes(self.base_plot, self.base_overlay_items,
                                                     bov.embedding if bov else None, bov.coords if bov else None,
                                                     symbol="x", overlay=True)
        if same:
            self.map_title.setText(f"this checkpoint: {map_text(svm, quality)}")
            self.base_title.setText(f"random weights: {map_text(baseline.svm, baseline.quality)}")
            self._fit(self.base_plot.getViewBox(), self.base_coords, legend_room=False)
        self.base_box.setVisible(same)
        self.map_title.setVisible(same)
        self._index = {"main": MapIndex(self.coords)}
        if overlay is not None:
            self._index["overlay"] = MapIndex(overlay.coords)
        if same:
            self._index["base"] = MapIndex(self.base_coords)
            if bov is not None:
                self._index["base_overlay"] = MapIndex(bov.coords)
        for it in (self.hover_item, self.base_hover_item):
            it.setData([], [])
        self.set_selection(np.zeros(0, np.int64))
        self.mark_current(self.current_ref)
        self._fit_view()

    def _draw_classes(self, plot, old_items, emb, coords, legend=None, *, symbol: str = "o",
                      overlay: bool = False) -> list:
        """One scatter item per class of ``emb`` at ``coords`` in ``plot`` (replacing ``old_items``);
        a class keeps its colour (its label's place among the main map's classes) in every item."""
        for it in old_items:
            plot.removeItem(it)
        if legend is not None:
            legend.clear()
        layer = None if overlay else (self.density if plot is self.plot else self.base_density)
        if coords is None or emb is None:
            if layer is not None:
                layer.setData(np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros((1, 3)))
                layer.items = []
                layer.setVisible(False)
            return []
        items = []
        labels = np.asarray(emb.labels)
        uniq = sorted(set(labels.tolist()))
        main = self.embedding
        main_uniq = sorted(set(np.asarray(main.labels).tolist())) if main is not None else uniq
        pal = colors.categorical_colors(max(len(main_uniq), 1))
        for lab in uniq:
            idx = np.flatnonzero(labels == lab)
            name = emb.class_names[lab] if 0 <= lab < len(emb.class_names) else "unlabelled"
            ci = main_uniq.index(lab) if lab in main_uniq else None
            r, g, b = (pal[ci] * 255).astype(int) if ci is not None else (200, 200, 200)
            brush = pg.mkBrush(int(r), int(g), int(b), 230 if overlay else 210)
            # hover and click go through the panel's MapIndex (_hover, _on_view_clicked), not
            # pyqtgraph's per-item look-ups (a pass over every point, per item, per mouse move)
            item = FastScatterPlotItem(
                x=coords[idx, 0], y=coords[idx, 1], data=idx, size=9 if overlay else 7, symbol=symbol,
                pen=pg.mkPen(int(r), int(g), int(b), 230) if overlay else None, brush=brush, hoverable=False,
                tip=None, name=name if legend is not None else None)
            item.clickable = False
            # repaints of the marks above it (hover, selection, current object) reuse the drawn
            # points instead of drawing every point again (Qt drops the cache on zoom)
            item.setCacheMode(item.CacheMode.DeviceCoordinateCache)
            plot.addItem(item)
            items.append(item)
        if layer is not None:
            # the same colours, per point: the class's place among the main map's classes (grey if none)
            pal255 = np.vstack([np.asarray(pal, np.float64)[:, :3] * 255, [[200.0, 200.0, 200.0]]])
            lut = {lab: (main_uniq.index(lab) if lab in main_uniq else len(pal255) - 1) for lab in uniq}
            cls = np.fromiter((lut[v] for v in labels.tolist()), np.int64, len(labels)) if len(uniq) > 1 else \
                np.full(len(labels), lut[uniq[0]] if uniq else 0, np.int64)
            layer.setData(coords, cls, pal255)
            layer.items = items
            layer.item_classes = [lut[lab] for lab in uniq]
            for it in items:
                it.visibleChanged.connect(layer.update)  # a class hidden from the legend leaves the layer too
            self._update_density("main" if plot is self.plot else "base")
        return items

    def _update_density(self, which: str) -> None:
        """Draw the map's points as the density layer when more than
        :data:`~explorer.density.DENSITY_MIN_VISIBLE` are in view, as symbols otherwise."""
        layer, vb = (self.density, self.vb) if which == "main" else (self.base_density, self.base_vb)
        items = getattr(layer, "items", [])
        (x0, x1), (y0, y1) = vb.viewRange()
        dense = bool(items) and count_in_view(layer.xy, (x0, x1), (y0, y1)) > DENSITY_MIN_VISIBLE
        if dense == layer.isVisible() and all(it.suppressed == dense for it in items):
            return
        layer.setVisible(dense)
        for it in items:
            it.suppressed = dense
            it.update()

    def density_active(self, which: str = "main") -> bool:
        """Whether the map (or the baseline map) draws its points as the density layer now."""
        return (self.density if which == "main" else self.base_density).isVisible()

    #: half the clickable box of a point, in pixels (symbols of 7 px, overlay crosses of 9 px)
    HIT_RADIUS = {"main": 4.0, "overlay": 5.0}

    def points_at(self, pos, which: str = "main") -> list:
        """``[(kind, row), ...]`` under ``pos`` (data coordinates, a QPointF or (x, y)) in the map
        (``which`` "main") or the random-weight map ("base"), nearest first; ``kind`` is "main" (a
        row of the embedding) or "overlay" (a row of the overlay's embedding)."""
        vb = self.vb if which == "main" else self.base_vb
        x, y = (pos.x(), pos.y()) if hasattr(pos, "x") else (float(pos[0]), float(pos[1]))
        px, py = vb.viewPixelSize()
        hits = []
        for kind, key in (("main", which), ("overlay", "overlay" if which == "main" else "base_overlay")):
            index = self._index.get(key)
            if index is None:
                continue
            r = self.HIT_RADIUS[kind]
            rows, dist = index.near(x, y, r * px, r * py)
            hits += [(float(d), kind, int(i)) for i, d in zip(rows[:4], dist[:4])]
        hits.sort(key=lambda t: t[0])
        return [(kind, i) for _, kind, i in hits]

    def point_at(self, pos, which: str = "main") -> "int | None":
        """The row of the embedding under ``pos`` (data coordinates) in the map, or None."""
        rows = [i for kind, i in self.points_at(pos, which) if kind == "main"]
        return rows[0] if rows else None

    def _hover(self, which: str, scene_pos) -> None:
        """The mouse moved over a map: mark the point under it and show its tooltip (up to three)."""
        from PyQt6.QtWidgets import QApplication

        vb, marker = (self.vb, self.hover_item) if which == "main" else (self.base_vb, self.base_hover_item)
        hits = []
        if (self.embedding is not None and QApplication.mouseButtons() == Qt.MouseButton.NoButton
                and vb.sceneBoundingRect().contains(scene_pos)):
            hits = self.points_at(vb.mapSceneToView(scene_pos), which)
        if hits:
            tips = [self._overlay_tip(i) if kind == "overlay" else self._tip(i) for kind, i in hits[:3]]
            if len(hits) > 3:
                tips.append(f"({len(hits) - 3} others...)")
            vb.setToolTip("\n\n".join(tips))
            kind, i = hits[0]
            key = ("overlay" if which == "main" else "base_overlay") if kind == "overlay" else which
            x, y = self._index[key].xy[i]
            marker.setData([x], [y])
        elif marker.data.size or vb.toolTip():
            vb.setToolTip("")
            marker.setData([], [])

    def _on_view_clicked(self, which: str, pos) -> None:
        """A left click on a map: open the object under it (pan mode only)."""
        if self.vb.mode != "pan" or self.embedding is None:
            return
        hits = self.points_at(pos, which)
        if not hits:
            return
        kind, i = hits[0]
        if kind == "overlay":
            self._open_overlay(i)
        else:
            self.open_index(i)

    def _overlay_tip(self, i: int) -> str:
        ov = self.overlay.embedding
        lab = int(ov.labels[i])
        cls = ov.class_names[lab] if 0 <= lab < len(ov.class_names) else "?"
        return f"overlay: {ov.names[i]}\nclass: {cls}\n{ov.refs[i]}"

    def _on_overlay_clicked(self, item, points, ev=None) -> None:
        if self.vb.mode != "pan" or not len(points) or self.overlay is None:
            return
        self._open_overlay(int(points[0].data()))

    def _open_overlay(self, i: int) -> None:
        if self.overlay is None:
            return
        ov = self.overlay.embedding
        extra = {}
        lab = int(ov.labels[i])
        if 0 <= lab < len(ov.class_names):
            extra["category"] = ov.class_names[lab]
        self.openRequested.emit(str(ov.refs[i]), extra)

    def _fit_view(self) -> None:
        """All points in view, with room on the right for the class legend (drawn top right)."""
        self._fit(self.vb, self.coords, legend_room=True)

    @staticmethod
    def _fit(vb, coords, *, legend_room: bool) -> None:
        if coords is None or not len(coords):
            return
        # column by column (min(axis=0) of 500k x 2 float32, or of a float64 copy, took 30 ms: 2 ms),
        # then float64: float32 limits overflow in pyqtgraph's range checks
        cols = (coords[:, 0], coords[:, 1])
        lo = np.array([float(c.min()) for c in cols])
        hi = np.array([float(c.max()) for c in cols])
        span = np.maximum(hi - lo, 1e-6)
        right = 0.28 if legend_room else 0.04
        vb.setRange(xRange=(float(lo[0] - 0.04 * span[0]), float(hi[0] + right * span[0])),
                    yRange=(float(lo[1] - 0.06 * span[1]), float(hi[1] + 0.06 * span[1])), padding=0)

    def _tip(self, i: int) -> str:
        emb = self.embedding
        lab = int(emb.labels[i])
        cls = emb.class_names[lab] if 0 <= lab < len(emb.class_names) else "?"
        thumb = thumbnail_path(emb.refs[i])
        text = f"{emb.names[i]}\nclass: {cls}\n{emb.refs[i]}"
        if thumb is None:
            return text
        import html

        return (f'<img src="{html.escape(str(thumb))}" width="{THUMB_PX}" height="{THUMB_PX}"><br>'
                + "<br>".join(html.escape(line) for line in text.split("\n")))

    def _on_clicked(self, item, points, ev=None) -> None:
        if self.vb.mode != "pan" or not len(points):
            return
        self.open_index(int(points[0].data()))

    def open_index(self, i: int) -> None:
        emb = self.embedding
        if emb is None or not (0 <= i < len(emb)):
            return
        ref = str(emb.refs[i])
        extra = {"label_names": self._label_names} if self._label_names else {}
        lab = int(emb.labels[i])
        if 0 <= lab < len(emb.class_names):
            extra["category"] = emb.class_names[lab]
        self.openRequested.emit(self._display_ref(ref), extra)

    def _display_ref(self, ref: str) -> str:
        """For the demo, open the labelled ShapeNetPart txt of an object rather than its bare PLY."""
        p = Path(ref)
        if p.suffix == ".ply" and p.parent.parent.name == "ShapeNet":
            txt = p.parents[2] / "shapenetcore_partanno_segmentation_benchmark_v0_normal" / p.parent.name / (p.stem + ".txt")
            if txt.is_file():
                return str(txt)
        return ref

    def _on_polygon(self, poly: np.ndarray) -> None:
        if self.coords is None or len(poly) < 3:
            return
        index = self._index.get("main")
        inside = index.in_polygon(poly) if index is not None else points_in_polygon(self.coords, poly)
        self.set_selection(np.flatnonzero(inside))

    def set_selection(self, indices) -> None:
        self.selection = np.asarray(indices, np.int64)
        emb = self.embedding
        if emb is None or self.coords is None:
            self.sel_item.setData([], [])
            return
        sel = self.selection
        self.sel_item.setData(self.coords[sel, 0], self.coords[sel, 1])
        if self.base_coords is not None:  # the same objects in the random-weight map
            self.base_sel_item.setData(self.base_coords[sel, 0], self.base_coords[sel, 1])
        else:
            self.base_sel_item.setData([], [])
        self.sel_list.setUpdatesEnabled(False)
        self.sel_list.clear()
        for i in sel[:2000].tolist():
            it = QListWidgetItem(str(emb.names[i]))
            it.setData(Qt.ItemDataRole.UserRole, i)
            it.setToolTip(self._tip(i))
            self.sel_list.addItem(it)
        self.sel_list.setUpdatesEnabled(True)
        if len(sel):
            counts = np.bincount(np.asarray(emb.labels)[sel].clip(min=0))
            top = [(emb.class_names[c] if c < len(emb.class_names) else "?", n) for c, n in
                   sorted(enumerate(counts), key=lambda t: -t[1]) if n][:3]
            self.sel_label.setText(f"Selection: {len(sel)} objects (" + ", ".join(f"{n} {c}" for c, n in top) + ")")
        else:
            self.sel_label.setText("Selection: none")
        self.selectionChanged.emit(sel)

    def _rows_of_ref(self, ref: str) -> list:
        """Rows whose ref, or displayed ref (:meth:`_display_ref`), is ``ref``; a dictionary built
        once per map (a pass over every ref per current object took seconds at 500,000)."""
        if self._ref_rows is None:
            rows: dict = {}
            for i, r in enumerate(self.embedding.refs):
                r = str(r)
                rows.setdefault(r, []).append(i)
                if r.endswith(".ply") and "ShapeNet" in r:  # only these have another displayed ref
                    d = self._display_ref(r)
                    if d != r:
                        rows.setdefault(d, []).append(i)
            self._ref_rows = rows
        return sorted(set(self._ref_rows.get(str(ref), [])))

    def _open_item(self, item) -> None:
        self.open_index(int(item.data(Qt.ItemDataRole.UserRole)))

    def mark_current(self, ref: str | None) -> None:
        """Mark the object whose ref (or displayed ref) is ``ref`` with a star."""
        self.current_ref = ref
        emb = self.embedding
        if emb is None or ref is None or self.coords is None:
            self.cur_item.setData([], [])
            return
        hits = self._rows_of_ref(ref)
        if hits:
            self.cur_item.setData(self.coords[hits, 0], self.coords[hits, 1])
        else:
            self.cur_item.setData([], [])
        if hits and self.base_coords is not None:
            self.base_cur_item.setData(self.base_coords[hits, 0], self.base_coords[hits, 1])
        else:
            self.base_cur_item.setData([], [])
