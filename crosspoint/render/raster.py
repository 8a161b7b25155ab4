"""The rasteriser: numba kernels that fill sample buffers, and their reduction to output pixels.

Triangles are z-buffered with perspective-correct depth (:func:`kernels` ``[0]``), points are
splatted as discs (``[1]``), and ``ss x ss`` blocks of samples are averaged into RGBA pixels
(``[2]``, through :func:`resolve`). The kernels compile on first use and are cached on disk.
"""

from __future__ import annotations

import functools
import math

import numpy as np


@functools.lru_cache(maxsize=None)
def kernels():
    import numba

    @numba.njit(cache=True, nogil=True)
    def raster_triangles(uv, z, faces, zbuf, fbuf, b1buf, b2buf):
        # uv: (V,2) float64 in (supersampled) pixel units; z: (V,) camera depth.
        # For each pixel centre inside a triangle, keep the nearest (perspective-correct depth).
        h, w = zbuf.shape
        nf = faces.shape[0]
        for f in range(nf):
            i0 = faces[f, 0]
            i1 = faces[f, 1]
            i2 = faces[f, 2]
            z0 = z[i0]
            z1 = z[i1]
            z2 = z[i2]
            if z0 <= 1e-3 or z1 <= 1e-3 or z2 <= 1e-3:
                continue
            x0 = uv[i0, 0]
            y0 = uv[i0, 1]
            x1 = uv[i1, 0]
            y1 = uv[i1, 1]
            x2 = uv[i2, 0]
            y2 = uv[i2, 1]
            area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
            if area == 0.0 or not np.isfinite(area):
                continue
            inv_area = 1.0 / area
            xmin = min(x0, min(x1, x2))
            xmax = max(x0, max(x1, x2))
            ymin = min(y0, min(y1, y2))
            ymax = max(y0, max(y1, y2))
            # pixel j has its centre at j + 0.5
            jx0 = max(int(math.floor(xmin - 0.5)), 0)
            jx1 = min(int(math.ceil(xmax - 0.5)), w - 1)
            jy0 = max(int(math.floor(ymin - 0.5)), 0)
            jy1 = min(int(math.ceil(ymax - 0.5)), h - 1)
            if jx0 > jx1 or jy0 > jy1:
                continue
            iz0 = 1.0 / z0
            iz1 = 1.0 / z1
            iz2 = 1.0 / z2
            for py in range(jy0, jy1 + 1):
                cy = py + 0.5
                for px in range(jx0, jx1 + 1):
                    cx = px + 0.5
                    w0 = ((x1 - cx) * (y2 - cy) - (x2 - cx) * (y1 - cy)) * inv_area
                    w1 = ((x2 - cx) * (y0 - cy) - (x0 - cx) * (y2 - cy)) * inv_area
                    w2 = 1.0 - w0 - w1
                    if w0 < 0.0 or w1 < 0.0 or w2 < 0.0:
                        continue
                    iz = w0 * iz0 + w1 * iz1 + w2 * iz2
                    depth = 1.0 / iz
                    if depth < zbuf[py, px]:
                        zbuf[py, px] = depth
                        fbuf[py, px] = f
                        b1buf[py, px] = w1 * iz1 * depth
                        b2buf[py, px] = w2 * iz2 * depth

    @numba.njit(cache=True, nogil=True)
    def splat_points(uv, z, radius, zbuf, ibuf, rbuf):
        # Discs of `radius` pixels (supersampled units) centred on each projected point; the
        # pixel containing the centre is always covered. rbuf: squared distance / radius^2.
        h, w = zbuf.shape
        n = uv.shape[0]
        r2 = radius * radius
        for i in range(n):
            d = z[i]
            if not (d > 1e-3):
                continue
            u = uv[i, 0]
            v = uv[i, 1]
            if not (np.isfinite(u) and np.isfinite(v)):
                continue
            jx0 = max(int(math.floor(u - radius - 0.5)), 0)
            jx1 = min(int(math.ceil(u + radius - 0.5)), w - 1)
            jy0 = max(int(math.floor(v - radius - 0.5)), 0)
            jy1 = min(int(math.ceil(v + radius - 0.5)), h - 1)
            cu = int(math.floor(u))
            cv = int(math.floor(v))
            for py in range(jy0, jy1 + 1):
                dy = py + 0.5 - v
                for px in range(jx0, jx1 + 1):
                    dx = px + 0.5 - u
                    q = dx * dx + dy * dy
                    if q > r2 and not (px == cu and py == cv):
                        continue
                    if d < zbuf[py, px]:
                        zbuf[py, px] = d
                        ibuf[py, px] = i
                        rbuf[py, px] = min(q / r2, 1.0)

    @numba.njit(cache=True, nogil=True)
    def resolve(rgb, covered, ss, bg, has_bg, out):
        # Average ss x ss blocks: alpha = coverage, RGB = mean colour of the covered samples
        # (straight alpha), or composited over bg when has_bg.
        h = out.shape[0]
        w = out.shape[1]
        inv = 1.0 / (ss * ss)
        for i in range(h):
            for j in range(w):
                cnt = 0
                r = 0.0
                g = 0.0
                b = 0.0
                for a in range(ss):
                    for c in range(ss):
                        y = i * ss + a
                        x = j * ss + c
                        if covered[y, x]:
                            cnt += 1
                            r += rgb[y, x, 0]
                            g += rgb[y, x, 1]
                            b += rgb[y, x, 2]
                alpha = cnt * inv
                if cnt > 0:
                    r /= cnt
                    g /= cnt
                    b /= cnt
                if has_bg:
                    r = r * alpha + bg[0] * (1.0 - alpha)
                    g = g * alpha + bg[1] * (1.0 - alpha)
                    b = b * alpha + bg[2] * (1.0 - alpha)
                    alpha = 1.0
                out[i, j, 0] = np.uint8(math.floor(min(max(r, 0.0), 1.0) * 255.0 + 0.5))
                out[i, j, 1] = np.uint8(math.floor(min(max(g, 0.0), 1.0) * 255.0 + 0.5))
                out[i, j, 2] = np.uint8(math.floor(min(max(b, 0.0), 1.0) * 255.0 + 0.5))
                out[i, j, 3] = np.uint8(math.floor(alpha * 255.0 + 0.5))

    return raster_triangles, splat_points, resolve


def resolve(ss_rgb: np.ndarray, covered: np.ndarray, ss: int, background: np.ndarray | None) -> np.ndarray:
    """Average ss x ss blocks: alpha = coverage, RGB = mean colour of covered samples; composited
    onto ``background`` (an RGB in [0, 1]) when given."""
    h2, w2 = covered.shape
    out = np.empty((h2 // ss, w2 // ss, 4), np.uint8)
    if background is None:
        bg, has_bg = np.zeros(3), False
    else:
        bg, has_bg = np.asarray(background, np.float64).reshape(3), True
    kernels()[2](ss_rgb, covered, int(ss), bg, has_bg, out)
    return out


def min_buffers(zbuf: np.ndarray, idx: np.ndarray, ss: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel, the nearest of its ss x ss samples: depth (inf = empty) and index (-1)."""
    h2, w2 = zbuf.shape
    h, w = h2 // ss, w2 // ss
    zb = zbuf.reshape(h, ss, w, ss).transpose(0, 2, 1, 3).reshape(h, w, ss * ss)
    ib = idx.reshape(h, ss, w, ss).transpose(0, 2, 1, 3).reshape(h, w, ss * ss)
    k = np.argmin(zb, axis=2)[..., None]
    depth = np.take_along_axis(zb, k, axis=2)[..., 0].astype(np.float32)
    index = np.take_along_axis(ib, k, axis=2)[..., 0].astype(np.int32)
    return depth, index
