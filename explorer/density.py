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
``tests/test_scale.py``); :class:`DensityLayer` is the graphics item that maps the points with the
painter's transform and draws the image.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF
from PyQt6.QtGui import QImage

#: points in view above which the map draws the density layer instead of the symbols
DENSITY_MIN_VISIBLE = 100_000
#: screen pixels per histogram bin (a side)
BIN_PX = 2
#: the scatter's symbol size the layer imitates, pixels
SYMBOL_PX = 7

__all__ = ["DENSITY_MIN_VISIBLE", "BIN_PX", "density_image", "DensityLayer", "PaddedPointsItem", "count_in_view"]


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
    out = np.zeros((gh, gw, 4), np.uint8)
    if gw <= 0 or gh <= 0:
        return out
    dx = np.asarray(dx)
    dy = np.asarray(dy)
    keep = (dx >= 0) & (dy >= 0) & (dx < gw * bin_px) & (dy < gh * bin_px)
    if not keep.any():
        return out
    inv = 1.0 / bin_px
    flat = (dy[keep] * inv).astype(np.int32) * np.int32(gw) + (dx[keep] * inv).astype(np.int32)
    top = np.full(gw * gh, -1, np.int32)
    np.maximum.at(top, flat, np.asarray(classes, np.int32)[keep])
    cnt = np.bincount(flat, minlength=gw * gh).astype(np.int32).reshape(gh, gw)
    top = top.reshape(gh, gw)
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
        self._set_bounds(self.xy[:, 0], self.xy[:, 1])
        self.informViewBoundsChanged()
        self.update()

    def pad_px(self) -> float:
        return float(SYMBOL_PX)

    def paint(self, p, option, widget=None):
        if not len(self.xy):
            return
        tr = p.transform()
        x, y, cls = self.xy[:, 0], self.xy[:, 1], self.classes
        hidden = [c for it, c in zip(self.items, self.item_classes) if not it.isVisible()]
        if hidden:
            keep = ~np.isin(cls, hidden)
            x, y, cls = x[keep], y[keep], cls[keep]
        dx = tr.m11() * x + tr.m21() * y + tr.dx()
        dy = tr.m12() * x + tr.m22() * y + tr.dy()
        dev = p.device()
        w, h = int(dev.width()), int(dev.height())
        img = density_image(dx, dy, cls, self.palette, w, h, alpha=self.alpha)
        self.last_paint = (int(np.count_nonzero((dx >= 0) & (dy >= 0) & (dx < w) & (dy < h))), img.shape)
        gh, gw = img.shape[:2]
        self._qimage = QImage(img.data, gw, gh, gw * 4, QImage.Format.Format_RGBA8888)
        p.resetTransform()
        p.setRenderHint(p.RenderHint.SmoothPixmapTransform, True)  # bins of 2 px, drawn without steps
        p.drawImage(QRectF(0, 0, gw * BIN_PX, gh * BIN_PX), self._qimage)
