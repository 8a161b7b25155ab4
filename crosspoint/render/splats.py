"""Point splatting: :func:`render_points` draws each point as a shaded disc."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .camera import NEAR, Camera
from .raster import kernels, min_buffers
from .shading import as_rgb, compose, light_dir_camera

DEFAULT_POINT_COLOR = (0.55, 0.72, 0.95)


def default_point_radius(n_points: int, size: int) -> float:
    """A splat radius in output pixels that closes the gaps of ``n_points`` on a ``size`` image.

    Assumes the object covers about a fifth of the image and half its points face the camera.
    """
    n = max(int(n_points), 1)
    spacing = math.sqrt(0.2 * size * size / max(n / 2.0, 1.0))
    return float(min(max(0.6 * spacing, 0.6), max(size / 40.0, 0.6)))


def render_points(
    points: np.ndarray,
    camera: Camera,
    *,
    colors: np.ndarray | Sequence[float] | None = None,
    normals: np.ndarray | None = None,
    point_radius_px: float | None = None,
    background: Sequence[float] | None = None,
    depth_shading: float = 0.55,
    light: str | Sequence[float] = "headlight",
    antialias: bool = True,
    return_buffers: bool = False,
):
    """Splat a bare point cloud: ``(H, W, 4)`` uint8 RGBA.

    Each point is a disc of ``point_radius_px`` output pixels (default
    :func:`default_point_radius`), z-buffered, shaded by depth (the nearest point of the cloud
    at full brightness, the farthest at ``1 - depth_shading``) with a little sphere shading
    inside each disc so the splats read as beads. ``normals`` ``(N, 3)``, when given, add
    two-sided Lambert shading from ``light``. ``colors``: one RGB or ``(N, 3)``; default a
    light blue. The pixel holding a point's projection is always drawn, however small the
    radius. ``return_buffers`` adds ``{"depth", "point_index"}`` as in :func:`render_mesh`.
    """
    splat = kernels()[1]
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    n = pts.shape[0]
    ss = 2 if antialias else 1
    size = camera.size * ss
    if point_radius_px is None:
        point_radius_px = default_point_radius(n, camera.size)
    if not point_radius_px > 0:
        raise ValueError(f"point_radius_px must be > 0, got {point_radius_px}")

    uv, z = camera._project64(pts)
    zbuf = np.full((size, size), np.inf)
    ibuf = np.full((size, size), -1, np.int32)
    rbuf = np.zeros((size, size), np.float64)
    if n:
        splat(np.ascontiguousarray(uv * ss), np.ascontiguousarray(z), float(point_radius_px) * ss, zbuf, ibuf, rbuf)

    covered = ibuf >= 0
    rgb = np.zeros((size, size, 3), np.float32)
    if covered.any():
        idx = ibuf[covered].astype(np.int64)
        front = z[np.isfinite(z) & (z > NEAR)]
        zmin, zmax = float(front.min()), float(front.max())
        t = (z[idx] - zmin) / (zmax - zmin) if zmax > zmin else np.zeros(idx.shape[0])
        bright = 1.0 - depth_shading * t
        bright = bright * (0.72 + 0.28 * np.sqrt(1.0 - rbuf[covered]))
        if normals is not None:
            nrm = np.asarray(normals, np.float64).reshape(-1, 3)
            if nrm.shape[0] != n:
                raise ValueError(f"normals have {nrm.shape[0]} rows, points have {n}")
            nc = nrm[idx] @ camera.view_matrix()[:3, :3].T
            ln = np.linalg.norm(nc, axis=1, keepdims=True)
            nc = np.divide(nc, ln, out=np.zeros_like(nc), where=ln > 0)
            lam = np.abs(nc @ light_dir_camera(camera, light))
            bright = bright * (0.45 + 0.55 * lam)
        if colors is None:
            base = np.broadcast_to(np.asarray(DEFAULT_POINT_COLOR), (idx.shape[0], 3))
        else:
            c = np.asarray(colors)
            if c.ndim == 1:
                base = np.broadcast_to(as_rgb(c, 1, "colors")[0], (idx.shape[0], 3))
            else:
                base = as_rgb(c, n, "colors")[idx]
        rgb[covered] = np.clip(base * bright[:, None], 0.0, 1.0)

    image = compose(rgb, covered, ss, background)
    if not return_buffers:
        return image
    depth, index = min_buffers(zbuf, ibuf, ss)
    return image, {"depth": depth, "point_index": index}
