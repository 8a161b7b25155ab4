"""The embedding map's density layer: many class-coloured points drawn as one image.

Above :data:`DENSITY_MIN_VISIBLE` points in view, the map draws its points as a 2-D histogram at
screen resolution instead of one symbol per point (pyqtgraph's scatter items map and draw every
symbol on every zoom: ~110-125 ms at 500k points, see docs/RESULTS.md "Scale"). The image is made to
look like the symbols it replaces, so that switching between the two is not a change of picture:

* the screen is cut into bins of :data:`BIN_PX` pixels; each bin counts its points per class;
* a symbol of :data:`SYMBOL_PX` pixels covers the bins around its centre, so a bin's coverage is the
  count over its 3 x 3 neighbourhood, and its opacity is that of so many overlapping symbols of the
  scatter's opacity (``1 - (1 - a)^count``);
* its colour is the class the scatter would show on top there: one item per class, drawn in class
  order, so the highest class index in the neighbourhood (a mean of colours would invent hues no
  class has).

:func:`density_image` is plain numpy (tested against the scatter's own picture in
``tests/test_scale.py``); :func:`density_image_mapped` does the same from data coordinates and the
view's transform in one numba pass (the numpy path's numbers, tested); :class:`DensityLayer` is the graphics item that maps the points with the
painter's transform and draws the image.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF
from PyQt6.QtGui import QImage

from crosspoint.lazykernels import LazyKernels

#: points in view above which the map draws the density layer instead of the symbols
DENSITY_MIN_VISIBLE = 100_000
#: screen pixels per histogram bin (a side)
BIN_PX = 2
#: the scatter's symbol size the layer imitates, pixels
SYMBOL_PX = 7

__all__ = ["DENSITY_MIN_VISIBLE", "BIN_PX", "density_image", "density_image_mapped", "DensityLayer", "PaddedPointsItem", "count_in_view"]


def count_in_view(xy: np.ndarray, x_range, y_range) -> int:
    """Points of ``xy`` ``(N, 2)`` inside the view's x and y ranges."""
    if xy is None or not len(xy):
        return 0
    x, y = xy[:, 0], xy[:, 1]
    return int(np.count_nonzero((x >= x_range[0]) & (x <= x_range[1]) & (y >= y_range[0]) & (y <= y_range[1])))


def density_image(dx: np.ndarray, dy: np.ndarray, classes: np.ndarray, palette: np.ndarray, width: int, height: int,
                  *, alpha: float = 210 / 255, bin_px: int = BIN_PX) -> np.ndarray:
    """``(ceil(height / bin_px), ceil(width / bin_px), 4)`` uint8 RGBA (row 0 at the top of the
    screen) of points at device pixels ``(dx, dy)`` with class indices ``classes`` into
    ``palette`` ``(K, 3)`` (0-255). A class with a higher index is drawn over a lower one, as the
    map's scatter items are (one per class, in class order)."""
    gw, gh = -(-int(width) // bin_px), -(-int(height) // bin_px)
    if gw <= 0 or gh <= 0:
        return np.zeros((max(gh, 0), max(gw, 0), 4), np.uint8)
    dx = np.asarray(dx)
    dy = np.asarray(dy)
    top = np.full(gw * gh, -1, np.int32)
    cnt = np.zeros(gw * gh, np.int32)
    keep = (dx >= 0) & (dy >= 0) & (dx < gw * bin_px) & (dy < gh * bin_px)
    if keep.any():
        inv = 1.0 / bin_px
        flat = (dy[keep] * inv).astype(np.int32) * np.int32(gw) + (dx[keep] * inv).astype(np.int32)
        np.maximum.at(top, flat, np.asarray(classes, np.int32)[keep])
        cnt = np.bincount(flat, minlength=gw * gh).astype(np.int32)
    return _image_from_bins(top.reshape(gh, gw), cnt.reshape(gh, gw), palette, alpha, bin_px)


def density_image_mapped(x: np.ndarray, y: np.ndarray, classes: np.ndarray, shown: np.ndarray, palette: np.ndarray,
                         transform: "tuple[float, float, float, float, float, float]", width: int, height: int,
                         *, alpha: float = 210 / 255, bin_px: int = BIN_PX) -> "tuple[np.ndarray, int]":
    """:func:`density_image` of data points ``(x, y)`` mapped to the screen by the affine
    ``transform`` ``(m11, m12, m21, m22, dx, dy)`` (``Qt``'s ``QTransform`` terms: screen x =
    m11 x + m21 y + dx, screen y = m12 x + m22 y + dy), keeping the points whose class is ``shown``
    (a boolean per class); and the number of those points inside ``width`` x ``height``. One numba
    pass over the points when the kernels are available (the same numbers as the numpy path: the
    same float64 operations in the same order; tested), else numpy."""
    m11, m12, m21, m22, tx, ty = (float(v) for v in transform)
    cls = np.asarray(classes)
    gw, gh = -(-int(width) // bin_px), -(-int(height) // bin_px)
    kern = _KERNELS.get()
    if kern is None or gw <= 0 or gh <= 0:
        keep = np.asarray(shown, bool)[cls]
        x, y, cls = np.asarray(x)[keep], np.asarray(y)[keep], cls[keep]
        dx = m11 * x + m21 * y + tx
        dy = m12 * x + m22 * y + ty
        n = int(np.count_nonzero((dx >= 0) & (dy >= 0) & (dx < width) & (dy < height)))
        return density_image(dx, dy, cls, palette, width, height, alpha=alpha, bin_px=bin_px), n
    top = np.full(gw * gh, -1, np.int32)
    cnt = np.zeros(gw * gh, np.int32)
    n = kern(np.ascontiguousarray(x, np.float64), np.ascontiguousarray(y, np.float64),
             np.ascontiguousarray(cls, np.int64), np.ascontiguousarray(shown, np.bool_), m11, m12, m21, m22, tx, ty,
             int(width), int(height), gw, gh, float(bin_px), top, cnt)
    return _image_from_bins(top.reshape(gh, gw), cnt.reshape(gh, gw), palette, alpha, bin_px), int(n)


def _build_kernel():
    import numba

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def bin_mapped(x, y, cls, shown, m11, m12, m21, m22, tx, ty, w, h, gw, gh, bin_px, top, cnt):
        inv = 1.0 / bin_px
        wb = gw * bin_px
        hb = gh * bin_px
        n = 0
        for i in range(x.shape[0]):
            c = cls[i]
            if not shown[c]:
                continue
            dx = m11 * x[i] + m21 * y[i] + tx
            dy = m12 * x[i] + m22 * y[i] + ty
            if dx >= 0 and dy >= 0:
                if dx < w and dy < h:
                    n += 1
                if dx < wb and dy < hb:
                    j = np.int32(dy * inv) * gw + np.int32(dx * inv)
                    cnt[j] += 1
                    if c > top[j]:
                        top[j] = c
        return n

    return bin_mapped


_KERNELS = LazyKernels(_build_kernel, "density-layer kernel")


def _image_from_bins(top: np.ndarray, cnt: np.ndarray, palette: np.ndarray, alpha: float, bin_px: int) -> np.ndarray:
    """The RGBA image of per-bin top classes ``top`` (-1: empty) and counts ``cnt`` ``(gh, gw)``."""
    gh, gw = cnt.shape
    out = np.zeros((gh, gw, 4), np.uint8)
    # a symbol covers the bins around its own: the neighbourhood's count and its top class
    r = max(1, int(round((SYMBOL_PX / 2) / bin_px)) - 1)
    pc = np.pad(cnt, r)
    pt = np.pad(top, r, constant_values=-1)
    total = np.zeros_like(cnt)
    colour = np.full_like(top, -1)
    for oy in range(2 * r + 1):
        for ox in range(2 * r + 1):
            total += pc[oy:oy + gh, ox:ox + gw]
            np.maximum(colour, pt[oy:oy + gh, ox:ox + gw], out=colour)
    covered = colour >= 0
    pal = np.clip(np.rint(np.asarray(palette, np.float64).reshape(-1, 3)), 0, 255).astype(np.uint8)
    out[..., :3] = np.where(covered[..., None], pal[np.maximum(colour, 0)], 0)
    # the opacity of `total` overlapping symbols of opacity `alpha`
    lut = np.rint((1.0 - (1.0 - float(alpha)) ** np.arange(65)) * 255).astype(np.uint8)
    out[..., 3] = lut[np.minimum(total, 64)]
    return out


class PaddedPointsItem(pg.GraphicsObject):
    """A graphics item over points drawn at a size in pixels: its data bounds are the points', its
    bounding rect those bounds padded by :meth:`pad_px` pixels (so it changes with the zoom)."""

    _bounds = None

    def pad_px(self) -> float:
        return 0.0

    def _set_bounds(self, x: np.ndarray, y: np.ndarray) -> None:
        self._bounds = (x.min(), x.max(), y.min(), y.max()) if x.size else None

    def dataBounds(self, ax, frac=1.0, orthoRange=None):  # noqa: N802
        if self._bounds is None:
            return [None, None]
        return list(self._bounds[2 * ax:2 * ax + 2])

    def viewTransformChanged(self) -> None:  # noqa: N802
        self.prepareGeometryChange()  # the margin in data units changed

    def boundingRect(self):  # noqa: N802
        if self._bounds is None:
            return QRectF()
        x0, x1, y0, y1 = self._bounds
        px, py = self.pixelVectors()
        pad = self.pad_px()
        pad_x = abs(px.x()) * pad if px is not None else 0.0
        pad_y = abs(py.y()) * pad if py is not None else 0.0
        return QRectF(x0 - pad_x, y0 - pad_y, x1 - x0 + 2 * pad_x, y1 - y0 + 2 * pad_y)


class DensityLayer(PaddedPointsItem):
    """The map's points as one image per paint (see the module docstring). ``setData(xy, classes,
    palette)``; the panel shows it instead of the class items when many points are in view."""

    def __init__(self, alpha: float = 210 / 255):
        super().__init__()
        self.alpha = float(alpha)
        self.xy = np.zeros((0, 2), np.float64)
        self._x = self._y = np.zeros(0, np.float64)
        self.classes = np.zeros(0, np.int64)
        self.palette = np.zeros((1, 3), np.uint8)
        self._qimage = None  # kept alive while Qt paints it
        self.last_paint = None  # (visible points, image shape), for tests and benchmarks
        self.items = []  # the class items it stands for: a class hidden from the legend is left out
        self.item_classes = []  # their palette indices
        # a hover mark or a selection repaints over the cached image, not the histogram
        self.setCacheMode(self.CacheMode.DeviceCoordinateCache)

    def setData(self, xy, classes, palette) -> None:  # noqa: N802
        self.prepareGeometryChange()
        self.xy = np.asarray(xy, np.float64).reshape(-1, 2)
        self.classes = np.asarray(classes, np.int64).reshape(-1)
        self.palette = np.asarray(palette, np.float64).reshape(-1, 3)
        self._x, self._y = np.ascontiguousarray(self.xy[:, 0]), np.ascontiguousarray(self.xy[:, 1])
        self._set_bounds(self._x, self._y)
        self.informViewBoundsChanged()
        self.update()

    def pad_px(self) -> float:
        return float(SYMBOL_PX)

    def paint(self, p, option, widget=None):
        if not len(self.xy):
            return
        tr = p.transform()
        shown = np.ones(max(int(self.classes.max()) + 1, len(self.palette)), bool)
        for it, c in zip(self.items, self.item_classes):
            if not it.isVisible():
                shown[c] = False
        dev = p.device()
        w, h = int(dev.width()), int(dev.height())
        img, n = density_image_mapped(self._x, self._y, self.classes, shown, self.palette,
                                      (tr.m11(), tr.m12(), tr.m21(), tr.m22(), tr.dx(), tr.dy()), w, h, alpha=self.alpha)
        self.last_paint = (n, img.shape)
        gh, gw = img.shape[:2]
        self._qimage = QImage(img.data, gw, gh, gw * 4, QImage.Format.Format_RGBA8888)
        p.resetTransform()
        p.setRenderHint(p.RenderHint.SmoothPixmapTransform, True)  # bins of 2 px, drawn without steps
        p.drawImage(QRectF(0, 0, gw * BIN_PX, gh * BIN_PX), self._qimage)
