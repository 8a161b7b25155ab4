"""The interactive 3D view: frames rendered by Open3D offscreen, shown in a plain QWidget.

Mouse: left-drag orbits, middle-drag or shift+left-drag pans, the wheel zooms, ``R`` resets the
view, a click without dragging picks the nearest point (``pointPicked``), Ctrl+click puts a
measurement mark on it (consecutive marks are joined, their distances shown). An axis triad (lower
left) and, optionally, the bounding box with its size are drawn over the frame. Frames are rendered on
demand and coalesced: many mouse events between two frames cost one render.

Level of detail: a cloud of more than :data:`LOD_MIN_POINTS` points is drawn, *while the camera
moves*, from a fixed random subset of :data:`LOD_POINTS` points at half the resolution (a second,
smaller offscreen renderer with the same camera), and in full :data:`LOD_SETTLE_MS` after the last
movement, as ParaView and CloudCompare do. On this 2-core software-GL machine a 1M-point frame at
1000x750 takes ~290 ms; the moving frame ~18 ms (``benchmarks/bench_viewer.py``).
"""

from __future__ import annotations

import logging
import time

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from explorer.o3d_renderer import OffscreenRenderer, RendererUnavailable

log = logging.getLogger(__name__)

#: clouds larger than this get a level of detail while the camera moves
LOD_MIN_POINTS = 250_000
#: points drawn while moving (a fixed random subset), at 1 / LOD_SCALE of the resolution
LOD_POINTS = 100_000
LOD_SCALE = 2
#: the full cloud is drawn this long after the last movement
LOD_SETTLE_MS = 200


def colorbar_ticks(vmin: float, vmax: float, target: int = 5) -> list[tuple[float, float]]:
    """``(value, fraction of the bar)`` for a colour bar from ``vmin`` to ``vmax``: both ends and up to
    ``target`` round values (1, 2 or 5 times a power of ten) between them, none crowding an end."""
    lo, hi = float(vmin), float(vmax)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return [(lo, 0.0)]
    raw = (hi - lo) / max(target, 1)
    mag = 10.0 ** np.floor(np.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    ticks = [(lo, 0.0)]
    v = np.ceil(lo / step) * step
    while v < hi:
        frac = (v - lo) / (hi - lo)
        if 0.08 < frac < 0.92:
            ticks.append((float(round(v / step) * step), float(frac)))
        v += step
    ticks.append((hi, 1.0))
    return ticks


def _wrap_text(text: str, fm, limit: float) -> list[str]:
    """``text`` broken at spaces into lines no wider than ``limit`` pixels (a word wider than that
    stays whole on its own line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and fm.horizontalAdvance(f"{lines[-1]} {word}") <= limit:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [text]


class Viewer3D(QWidget):
    """Shows one point cloud (optionally its mesh) with Open3D; owns the renderer (GUI thread only)."""

    frameRendered = pyqtSignal(float)  # milliseconds for render + read back
    pointPicked = pyqtSignal(int)  # index into the current points, -1 when nothing was hit
    viewChanged = pyqtSignal()
    measurementChanged = pyqtSignal(object)  # [(x, y, z)] of the measurement marks (Ctrl+click), in order

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.setMouseTracking(False)
        self._renderer: OffscreenRenderer | None = None
        self._error: str | None = None
        self._frame: QImage | None = None
        self._frame_array: np.ndarray | None = None
        self._points: np.ndarray | None = None
        self._colors: np.ndarray | None = None
        self._mesh = None
        self._pending_scene = False
        self._pending_reset = True
        self._render_pending = False
        self._last_pos = None
        self._press_pos = None
        self._overlay_text = ""
        self._legend: list[tuple[str, tuple[float, float, float] | None]] = []
        self._colorbar: tuple[str, np.ndarray, float, float] | None = None
        self._colorbar_stale = ""
        self._picked: int | None = None
        self._highlight: np.ndarray | None = None  # indices into the drawn points, ringed (pixel -> points)
        self._single: tuple[np.ndarray, int] | None = None  # (location, count) of a cloud at one place
        self.show_axes = True  # the axis triad in the lower left corner
        self.show_bbox = False  # the axis-aligned bounding box with its size
        self.edl = False  # eye-dome lighting
        self._layers: list = []  # other objects drawn with this one: [(points, colours)]
        self._layers_pending = False
        self.ortho = False  # orthographic projection
        self._bounds: tuple[np.ndarray, np.ndarray] | None = None
        self._marks: list[np.ndarray] = []  # measurement marks (Ctrl+click), positions in the drawn frame
        self.last_frame_ms = 0.0
        self.frames_rendered = 0
        self._point_size = 3.0
        self._show_mesh = False
        self._up_axis = 1
        self._resize_timer = QTimer(self, singleShot=True, interval=120)
        self._resize_timer.timeout.connect(self._apply_resize)
        # level of detail while moving (see the module docstring)
        self.lod_enabled = True
        self._lod: OffscreenRenderer | None = None
        self._lod_index: np.ndarray | None = None
        self._lod_scene_pending = False
        self._moving = False
        self.last_frame_lod = False  # whether the frame on screen is the level of detail
        self._settle_timer = QTimer(self, singleShot=True, interval=LOD_SETTLE_MS)
        self._settle_timer.timeout.connect(self._settle)

    # -- public API -----------------------------------------------------------------------------
    def set_cloud(self, points: np.ndarray, colors: np.ndarray, *, mesh=None, reset_view: bool = True,
                  n_total: int | None = None) -> None:
        """Show ``points`` (``n_total``: the size of the whole cloud when ``points`` is a subset of it)."""
        self._points = np.asarray(points, np.float32)
        self._colors = np.asarray(colors, np.float32)
        self._mesh = mesh
        self._picked = None
        center = OffscreenRenderer.degenerate_center(self._points)
        self._single = None if center is None else (center, int(n_total or len(self._points)))
        self._pending_scene = True
        self._pending_reset = reset_view or self._pending_reset
        n = len(self._points)
        finite = self._points[np.isfinite(self._points).all(axis=1)] if n else self._points
        self._bounds = (finite.min(axis=0).astype(np.float64), finite.max(axis=0).astype(np.float64)) \
            if len(finite) else None
        if self._marks:
            self._marks = []
            self.measurementChanged.emit([])
        self._lod_index = (np.sort(np.random.default_rng(0).choice(n, LOD_POINTS, replace=False))
                           if n > LOD_MIN_POINTS else None)
        self._lod_scene_pending = self._lod_index is not None
        self.request_render()

    def set_colors(self, colors: np.ndarray) -> None:
        self._colors = np.asarray(colors, np.float32)
        if self._renderer is not None and not self._pending_scene:
            self._renderer.set_colors(self._colors)
        if self._lod is not None and self._lod_index is not None and not self._lod_scene_pending:
            self._lod.set_colors(self._colors[self._lod_index])
        self.request_render()

    def clear(self) -> None:
        self._lod_index = None
        self._points = None
        self._colors = None
        self._mesh = None
        self._single = None
        self._pending_scene = True
        self.request_render()

    def set_up_axis(self, axis: int) -> None:
        self._up_axis = int(axis)
        if self._renderer is not None:
            self._renderer.up_axis = self._up_axis

    def set_point_size(self, size: float) -> None:
        self._point_size = float(size)
        if self._renderer is not None:
            self._renderer.set_point_size(size)
        if self._lod is not None:
            self._lod.set_point_size(self._lod_point_size())
        self.request_render()

    def point_size(self) -> float:
        return self._point_size

    def set_show_mesh(self, show: bool) -> None:
        self._show_mesh = bool(show)
        if self._renderer is not None:
            self._renderer.set_show_mesh(show)
        self.request_render()

    def set_legend(self, entries: list[tuple[str, tuple[float, float, float] | None]]) -> None:
        """Categorical legend drawn over the view: ``[(name, (r, g, b)), ...]``; empty hides it. An
        entry without a colour is a heading (bold, no swatch)."""
        self._legend = list(entries)
        self.update()

    def set_colorbar(self, title: str | None, lut: np.ndarray | None = None, vmin: float = 0.0,
                     vmax: float = 1.0, *, stale: str = "") -> None:
        """A colour bar in the lower right corner (``title`` None hides it); ``stale``: why the values
        no longer match what is selected (the bar is then drawn marked, with the reason in its tooltip)."""
        self._colorbar = None if title is None else (title, np.asarray(lut), float(vmin), float(vmax))
        self._colorbar_stale = stale if title is not None else ""
        self.setToolTip(f"Stale: {stale}" if self._colorbar_stale else "")
        self.update()

    @property
    def colorbar_title(self) -> str | None:
        return None if self._colorbar is None else self._colorbar[0]

    @property
    def colorbar_stale(self) -> str:
        return self._colorbar_stale

    def colorbar_rect(self) -> QRectF | None:
        """Where the colour bar is drawn (widget coordinates), None when there is none."""
        if self._colorbar is None:
            return None
        h = float(min(200, max(60, int(self.height() * 0.3))))
        return QRectF(self.width() - 26, self.height() - h - 16, 12, h)

    def set_overlay_text(self, text: str) -> None:
        self._overlay_text = text
        self.update()

    def reset_view(self, *, with_layers: bool = False) -> None:
        if self._renderer is not None:
            if self._layers_pending:  # the layers reach the renderer with the next frame: now, to frame them
                self._layers_pending = False
                self._renderer.set_layers(self._layers)
            self._renderer.reset_view(with_layers=with_layers)
        self.request_render()
        self.viewChanged.emit()

    @property
    def single_location(self) -> tuple[np.ndarray, int] | None:
        """``(location, number of points)`` when every point drawn is at one place (1 point, or N
        identical points): the view then marks that place and frames a minimum extent around it."""
        return self._single

    @staticmethod
    def describe_single(count: int) -> str:
        return "1 point" if count == 1 else f"{count:,} identical points"

    def renderer(self) -> OffscreenRenderer | None:
        return self._renderer

    def frame_array(self) -> np.ndarray | None:
        """The last rendered frame as ``(H, W, 3)`` uint8 (for tests and screenshots)."""
        return self._frame_array

    @property
    def has_frame(self) -> bool:
        return self._frame is not None and not self._pending_scene and not self._render_pending

    @property
    def error(self) -> str | None:
        return self._error

    def shutdown(self) -> None:
        """Destroy the Open3D window; call before the application exits."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if self._lod is not None:
            self._lod.close()
            self._lod = None

    # -- level of detail ------------------------------------------------------------------------
    def moving(self) -> None:
        """The camera is moving (a drag, the wheel): frames come from the level of detail until
        :data:`LOD_SETTLE_MS` after the last call."""
        self._moving = True
        self._settle_timer.start()

    def _lod_point_size(self) -> float:
        """Splats of the subset: the full size at its resolution, one pixel more (10x fewer points would
        otherwise show the background and the far side through the surface)."""
        return max(1.0, self._point_size / LOD_SCALE) + 1.0

    def _settle(self) -> None:
        self._moving = False
        if self.last_frame_lod:
            self.request_render()

    def _lod_renderer(self) -> "OffscreenRenderer | None":
        """The small renderer of the subset, in step with the main one's camera (None: not used now)."""
        if not (self.lod_enabled and self._moving and self._lod_index is not None and self._points is not None
                and self._renderer is not None and not self._show_mesh):
            return None
        w, h = max(16, self._renderer.width // LOD_SCALE), max(16, self._renderer.height // LOD_SCALE)
        try:
            if self._lod is None:
                self._lod = OffscreenRenderer(w, h, point_size=self._lod_point_size())
                self._lod.edl = self.edl
            elif (self._lod.width, self._lod.height) != (w, h):
                self._lod.resize(w, h)
        except (RendererUnavailable, RuntimeError) as exc:  # no second context: full frames only
            log.info("level of detail unavailable: %s", exc)
            self.lod_enabled = False
            return None
        lod = self._lod
        if self._lod_scene_pending:
            self._lod_scene_pending = False
            i = self._lod_index
            lod.set_points(self._points[i], self._colors[i], reset_view=False)
        lod.set_background(self._renderer.background)
        lod.cam.restore(self._renderer.cam.state())
        lod.cam.resize(w, h)
        lod._apply_camera()
        return lod

    # -- rendering ------------------------------------------------------------------------------
    def request_render(self) -> None:
        if not self._render_pending:
            self._render_pending = True
            QTimer.singleShot(0, self._render_now)

    def render_now(self) -> None:
        """Render synchronously (used by screenshots and benchmarks)."""
        self._render_pending = True
        self._render_now()

    def _ensure_renderer(self) -> bool:
        if self._renderer is not None:
            return True
        if self._error is not None:
            return False
        w, h = self._pixel_size()
        try:
            self._renderer = OffscreenRenderer(w, h, point_size=self._point_size)
            self._renderer.up_axis = self._up_axis
            self._renderer.set_show_mesh(self._show_mesh)
            self._renderer.edl = self.edl
            self._renderer.cam.ortho = self.ortho
        except (RendererUnavailable, RuntimeError) as exc:
            self._error = str(exc)
            log.error("3D view unavailable: %s", exc, exc_info=not isinstance(exc, RendererUnavailable))
            self.update()
            return False
        return True

    def _pixel_size(self) -> tuple[int, int]:
        dpr = self.devicePixelRatioF()
        return max(16, int(self.width() * dpr)), max(16, int(self.height() * dpr))

    def _render_now(self) -> None:
        if not self._render_pending:
            return
        self._render_pending = False
        if not self._ensure_renderer():
            return
        r = self._renderer
        if self._pending_scene:
            self._pending_scene = False
            if self._points is None:
                r.set_points(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32))
            else:
                r.set_points(self._points, self._colors, mesh=self._mesh, reset_view=self._pending_reset)
            self._pending_reset = False
        if self._layers_pending:
            self._layers_pending = False
            r.set_layers(self._layers)
        t0 = time.perf_counter()
        lod = self._lod_renderer()
        frame = (lod if lod is not None else r).render()
        self.last_frame_lod = lod is not None
        h, w, _ = frame.shape
        self._frame_array = frame
        img = QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        # the painter scales the frame to the widget (a level-of-detail frame is smaller)
        img.setDevicePixelRatio(self.devicePixelRatioF() / (LOD_SCALE if lod is not None else 1))
        self._frame = img.copy()
        self.last_frame_ms = (time.perf_counter() - t0) * 1000.0
        self.frames_rendered += 1
        self.update()
        self.frameRendered.emit(self.last_frame_ms)

    def _apply_resize(self) -> None:
        if self._renderer is None:
            return
        w, h = self._pixel_size()
        self._renderer.resize(w, h)
        self.request_render()

    # -- Qt events ------------------------------------------------------------------------------
    def resizeEvent(self, event):  # noqa: N802
        super().resizeEvent(event)
        if self._renderer is not None:
            self._resize_timer.start()

    def showEvent(self, event):  # noqa: N802
        super().showEvent(event)
        self.request_render()

    def paintEvent(self, event):  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(28, 31, 36))
        if self._frame is not None:
            # scale the frame to the widget while a resize is pending
            p.drawImage(QRectF(0, 0, self.width(), self.height()), self._frame)
        if self._error is not None:
            p.setPen(QColor(255, 140, 120))
            p.drawText(self.rect().adjusted(20, 20, -20, -20), Qt.TextFlag.TextWordWrap,
                       "The 3D view is unavailable:\n" + self._error)
        if self._overlay_text:
            p.setPen(QColor(230, 230, 230))
            p.drawText(QPointF(12, self.height() - 12), self._overlay_text)
        if self._single is not None and self._renderer is not None and self._frame is not None:
            self._draw_single_marker(p)
        if self._picked is not None and self._points is not None and self._renderer is not None:
            self._draw_pick_marker(p)
        if self._highlight is not None and self._points is not None and self._renderer is not None:
            self._draw_highlight(p)
        if self.show_bbox and self._bounds is not None and self._renderer is not None:
            self._draw_bbox(p)
        if self._marks and self._renderer is not None:
            self._draw_marks(p)
        if self.show_axes and self._renderer is not None and self._frame is not None:
            self._draw_axes(p)
        if self._legend:
            self._draw_legend(p)
        if self._colorbar is not None:
            self._draw_colorbar(p)
        p.end()

    # -- viewer conventions: axis triad, bounding box, measurement -------------------------------------
    def set_show_axes(self, on: bool) -> None:
        self.show_axes = bool(on)
        self.update()

    def set_edl(self, on: bool) -> None:
        """Eye-dome lighting: depth shading without normals (:func:`explorer.o3d_renderer.eye_dome_lighting`)."""
        self.edl = bool(on)
        for r in (self._renderer, self._lod):
            if r is not None:
                r.edl = self.edl
        self.request_render()

    def set_layers(self, layers) -> None:
        """Other clouds drawn beside the current one (``[(points, colours)]``): the Objects list's
        checked objects. Picking, the framing and the level of detail are the current object's."""
        self._layers = [(np.asarray(p, np.float32), np.asarray(c, np.float32)) for p, c in layers]
        self._layers_pending = True
        self.request_render()

    @property
    def layer_count(self) -> int:
        return len(self._layers)

    def set_ortho(self, on: bool) -> None:
        """Orthographic (parallel) projection on or off (:attr:`explorer.camera.OrbitCamera.ortho`),
        keeping the view's size at the target."""
        self.ortho = bool(on)
        if self._renderer is not None:
            self._renderer.cam.ortho = self.ortho
            self._renderer._apply_camera()
        self.request_render()
        self.viewChanged.emit()

    def set_show_bbox(self, on: bool) -> None:
        self.show_bbox = bool(on)
        self.update()

    def _to_widget(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        uv, z = self._renderer.camera().project(np.asarray(pts, np.float64).reshape(-1, 3))
        return uv / self.devicePixelRatioF(), z

    def _draw_axes(self, p: QPainter) -> None:
        """x (red), y (green), z (blue) as the camera sees them, in the lower left corner; an axis that
        points away from the viewer is drawn thinner."""
        r = self._renderer.camera().extrinsic[:3, :3]
        origin = QPointF(34, self.height() - 34)
        rows = []
        for i, (name, col) in enumerate((("x", QColor(230, 90, 90)), ("y", QColor(110, 210, 110)),
                                         ("z", QColor(110, 150, 250)))):
            d = r[:, i]  # the world axis in camera coordinates (x right, y down, z forward)
            rows.append((float(d[2]), name, col, QPointF(origin.x() + 24 * d[0], origin.y() + 24 * d[1])))
        for depth, name, col, end in sorted(rows, key=lambda t: -t[0]):  # far ones first
            p.setPen(QPen(col, 1.5 if depth > 0 else 2.5))
            p.drawLine(origin, end)
            p.drawText(QPointF(end.x() + (3 if end.x() >= origin.x() else -10), end.y() + 4), name)

    def _draw_bbox(self, p: QPainter) -> None:
        lo, hi = self._bounds
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        uv, z = self._to_widget(corners)
        p.setPen(QPen(QColor(200, 200, 120, 200), 1, Qt.PenStyle.DashLine))
        for a in range(8):
            for b in range(a + 1, 8):
                if bin(a ^ b).count("1") == 1 and z[a] > 0 and z[b] > 0:  # an edge: one coordinate differs
                    p.drawLine(QPointF(*uv[a]), QPointF(*uv[b]))
        size = hi - lo
        p.setPen(QColor(220, 220, 150))
        for axis, name in enumerate("xyz"):  # the size on the edge from the lowest corner along each axis
            b = 1 << (2 - axis)
            if z[0] > 0 and z[b] > 0:
                mid = (uv[0] + uv[b]) / 2
                p.drawText(QPointF(*mid), f"{name} {size[axis]:.3g}")

    def add_mark(self, position) -> None:
        """A measurement mark at ``position`` (the drawn frame); consecutive marks are joined and their
        distances shown."""
        self._marks.append(np.asarray(position, np.float64).reshape(3))
        self.measurementChanged.emit([tuple(m) for m in self._marks])
        self.update()

    def clear_marks(self) -> None:
        if self._marks:
            self._marks = []
            self.measurementChanged.emit([])
            self.update()

    @property
    def marks(self) -> list:
        return [tuple(m) for m in self._marks]

    def _draw_marks(self, p: QPainter) -> None:
        pts = np.stack(self._marks)
        uv, z = self._to_widget(pts)
        p.setPen(QPen(QColor(255, 210, 80), 2))
        for k in range(1, len(pts)):
            if z[k - 1] > 0 and z[k] > 0:
                p.drawLine(QPointF(*uv[k - 1]), QPointF(*uv[k]))
                d = float(np.linalg.norm(pts[k] - pts[k - 1]))
                mid = (uv[k - 1] + uv[k]) / 2
                p.drawText(QPointF(mid[0] + 6, mid[1] - 6), f"{d:.4g}")
        for k in range(len(pts)):
            if z[k] <= 0:
                continue
            p.setPen(QPen(QColor(255, 210, 80), 2))
            p.drawEllipse(QPointF(*uv[k]), 5, 5)
            p.setPen(QColor(255, 235, 170))
            x, y, zz = pts[k]
            p.drawText(QPointF(uv[k][0] + 8, uv[k][1] + 14), f"{k + 1}: ({x:.3g}, {y:.3g}, {zz:.3g})")

    def _draw_legend(self, p: QPainter) -> None:
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, font.pointSizeF() * 0.95))
        p.setFont(font)
        fm = p.fontMetrics()
        rows = self._legend[:30]
        bold = QFont(font)
        bold.setBold(True)
        width = max(fm.horizontalAdvance(name) + (8 if rgb is None else 28) for name, rgb in rows) + 14
        height = len(rows) * (fm.height() + 2) + 12
        x0, y0 = self.width() - width - 12, 12
        p.fillRect(QRectF(x0, y0, width, height), QColor(20, 22, 26, 200))
        y = y0 + 6
        for name, rgb in rows:
            if rgb is None:  # a heading
                p.setFont(bold)
                p.setPen(QColor(255, 196, 110) if "stale" in name else QColor(200, 204, 210))
                p.drawText(QPointF(x0 + 8, y + fm.ascent()), name)
                p.setFont(font)
                y += fm.height() + 2
                continue
            c = QColor.fromRgbF(*[float(v) for v in rgb])
            p.fillRect(QRectF(x0 + 8, y + 2, 14, fm.height() - 4), c)
            p.setPen(QColor(235, 235, 235))
            p.drawText(QPointF(x0 + 28, y + fm.ascent()), name)
            y += fm.height() + 2
        if len(self._legend) > len(rows):
            p.drawText(QPointF(x0 + 8, y + fm.ascent()), f"... {len(self._legend) - len(rows)} more")

    def _draw_colorbar(self, p: QPainter) -> None:
        """A slim bar in the lower right corner (30 % of the view's height, at most 200 px), so that it
        stays clear of an object framed in the middle; marked when its values are stale."""
        title, lut, vmin, vmax = self._colorbar
        fm = p.fontMetrics()
        r = self.colorbar_rect()
        x0, y0, bw, h = r.x(), r.y(), r.width(), int(r.height())
        n = len(lut)
        for i in range(h):
            c = lut[int((h - 1 - i) / max(h - 1, 1) * (n - 1))]
            p.fillRect(QRectF(x0, y0 + i, bw, 1.5), QColor.fromRgbF(*[float(v) for v in c[:3]]))
        stale = bool(self._colorbar_stale)
        p.setPen(QPen(QColor(255, 170, 60) if stale else QColor(220, 220, 220), 2 if stale else 1))
        p.drawRect(QRectF(x0, y0, bw, h))
        p.setPen(QColor(220, 220, 220))
        for value, frac in colorbar_ticks(vmin, vmax):  # ticks at round values, the ends labelled
            y = y0 + (1.0 - frac) * h
            p.drawLine(QPointF(x0 - 3, y), QPointF(x0, y))
            text = f"{value:.3g}"
            p.drawText(QPointF(x0 - fm.horizontalAdvance(text) - 5, min(max(y + fm.ascent() / 2 - 1, y0 + fm.ascent()),
                                                                      y0 + h)), text)
        parts = [title] if not stale or " - STALE" not in title else title.split(" - ", 1)
        # a long title is wrapped to a quarter of the view (at least 120 px) and drawn on a dark
        # backing, so that it stays readable where it runs over the points
        limit = max(120, self.width() // 4)
        lines = [(k, line) for k, part in enumerate(parts) for line in _wrap_text(part, fm, limit)]
        width = max(fm.horizontalAdvance(line) for _, line in lines)
        y = y0 - 6 - (len(lines) - 1) * fm.height()
        if width > bw + 40 or len(lines) > 1:
            p.fillRect(QRectF(x0 + bw - width - 4, y - fm.ascent() - 2, width + 8, len(lines) * fm.height() + 4),
                       QColor(20, 22, 26, 190))
        for k, line in lines:
            p.setPen(QColor(255, 190, 90) if k or (stale and len(parts) == 1) else QColor(220, 220, 220))
            p.drawText(QPointF(x0 + bw - fm.horizontalAdvance(line), y), line)
            y += fm.height()

    def _draw_single_marker(self, p: QPainter) -> None:
        """A ring and a caption around a cloud that is one location: a few pixels would be easy to miss."""
        center, count = self._single
        uv, z = self._renderer.camera().project(center[None])
        if not (z[0] > 0 and np.isfinite(uv).all()):
            return
        dpr = self.devicePixelRatioF()
        x, y = float(uv[0, 0] / dpr), float(uv[0, 1] / dpr)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(QPen(QColor(255, 200, 90), 2.0))
        p.drawEllipse(QPointF(x, y), 16, 16)
        text = self.describe_single(count)
        where = f"at ({center[0]:.4g}, {center[1]:.4g}, {center[2]:.4g})"
        fm = p.fontMetrics()
        width = max(fm.horizontalAdvance(text), fm.horizontalAdvance(where))
        tx, ty = x + 30, y - 22  # above right, clear of the ring and of the 3D cross through it
        if tx + width > self.width() - 8:
            tx = x - 30 - width
        p.setPen(QColor(255, 214, 130))
        p.drawText(QPointF(tx, ty), text)
        p.setPen(QColor(200, 200, 200))
        p.drawText(QPointF(tx, ty + fm.height()), where)

    def set_highlight(self, indices) -> None:
        """Ring these points (indices into the drawn points; None or empty: none), e.g. the points a
        pixel of a 2D view sees."""
        self._highlight = None if indices is None or len(indices) == 0 else np.asarray(indices, np.int64)
        self.update()

    @property
    def highlight(self) -> np.ndarray | None:
        return self._highlight

    def _draw_highlight(self, p: QPainter) -> None:
        idx = self._highlight[(self._highlight >= 0) & (self._highlight < len(self._points))]
        uv, z = self._renderer.camera().project(self._points[idx])
        ok = (z > 0) & np.isfinite(uv).all(axis=1)
        dpr = self.devicePixelRatioF()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(QPen(QColor(255, 235, 59), 2))
        for x, y in uv[ok][:500] / dpr:
            p.drawEllipse(QPointF(float(x), float(y)), 5, 5)

    def _draw_pick_marker(self, p: QPainter) -> None:
        uv, z = self._renderer.camera().project(self._points[self._picked:self._picked + 1])
        if z[0] <= 0:
            return
        dpr = self.devicePixelRatioF()
        x, y = uv[0] / dpr
        p.setPen(QPen(QColor(255, 255, 255), 2))
        p.drawEllipse(QPointF(x, y), 7, 7)

    def mousePressEvent(self, event):  # noqa: N802
        self._last_pos = event.position()
        self._press_pos = event.position()
        self.setFocus()

    def mouseMoveEvent(self, event):  # noqa: N802
        if self._last_pos is None or self._renderer is None:
            return
        pos = event.position()
        dx, dy = pos.x() - self._last_pos.x(), pos.y() - self._last_pos.y()
        self._last_pos = pos
        buttons = event.buttons()
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        dpr = self.devicePixelRatioF()
        if buttons & Qt.MouseButton.MiddleButton or (buttons & Qt.MouseButton.LeftButton and shift):
            self._renderer.pan(dx * dpr, dy * dpr)
        elif buttons & Qt.MouseButton.LeftButton:
            self._renderer.rotate(dx * dpr, dy * dpr)
        elif buttons & Qt.MouseButton.RightButton:
            self._renderer.zoom(-dy / 20.0)
        else:
            return
        self.moving()
        self.request_render()
        self.viewChanged.emit()

    def mouseReleaseEvent(self, event):  # noqa: N802
        if self._press_pos is not None and event.button() == Qt.MouseButton.LeftButton:
            moved = (event.position() - self._press_pos).manhattanLength()
            if moved < 3 and self._renderer is not None and self._points is not None:
                dpr = self.devicePixelRatioF()
                idx = self._renderer.pick(event.position().x() * dpr, event.position().y() * dpr, self._points)
                if event.modifiers() & Qt.KeyboardModifier.ControlModifier:  # a measurement mark
                    if idx is not None:
                        self.add_mark(self._points[idx])
                    self._last_pos = None
                    self._press_pos = None
                    return
                self._picked = idx
                self.pointPicked.emit(-1 if idx is None else idx)
                self.update()
        self._last_pos = None
        self._press_pos = None

    def wheelEvent(self, event):  # noqa: N802
        if self._renderer is None:
            return
        steps = event.angleDelta().y() / 120.0
        self._renderer.zoom(steps)
        self.moving()
        self.request_render()
        self.viewChanged.emit()

    def standard_view(self, name: str) -> None:
        if self._renderer is not None:
            self._renderer.standard_view(name)
        self.request_render()
        self.viewChanged.emit()

    def look_from(self, camera) -> None:
        """Align the 3D camera with a rendered 2D view's camera (``crosspoint.render.Camera`` or
        anything ``crosspoint.analysis.correspondence.as_pinhole`` takes): the same pose and an angle
        of view that shows the whole image, so 3D and 2D can be compared."""
        if self._renderer is None:
            return
        from crosspoint.analysis.correspondence import as_pinhole

        pin = as_pinhole(camera)
        fov = float(np.degrees(2.0 * np.arctan((pin.height / 2.0) / pin.K[1, 1])))
        self._renderer.look_from(pin.extrinsic, fov, image_aspect=(pin.width / pin.K[0, 0]) / (pin.height / pin.K[1, 1]))
        self.request_render()
        self.viewChanged.emit()

    def keyPressEvent(self, event):  # noqa: N802
        if event.key() == Qt.Key.Key_R:
            self.reset_view()
        else:
            super().keyPressEvent(event)
