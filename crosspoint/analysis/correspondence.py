"""3D-2D correspondence: exact geometry first, then what the models say about it.

Three layers, each usable on its own (plain NumPy in and out; the geometric calls take
milliseconds and need no model):

**1. Geometry, exact** (:func:`view_correspondence`, :class:`ViewCorrespondence`,
:func:`object_views`, :func:`point_in_views`). For an object's points and one view: every
point's pixel ``(u, v)``, whether it is inside the frame, and whether it is *visible* (not
occluded), read from the depth buffer of the project's renderer (:mod:`crosspoint.render`);
and back, the points a set of pixels (a brush) sees. The camera is the renderer's
:class:`~crosspoint.render.Camera` (what :func:`~crosspoint.render.render_views` returns and
:func:`~crosspoint.render.read_view_metadata` reads from a ``rendering/`` folder) or, for a
dropped-in image, a :class:`PinholeCamera` built from intrinsics ``K`` and extrinsics
(world -> camera); both follow the renderer's conventions (OpenCV camera frame: x right, y down,
z forward; pixel ``(row i, col j)`` covers ``[j, j+1) x [i, i+1)``, so a point with projection
``(u, v)`` lands in ``image[int(v), int(u)]``).

Depth buffer. With the renderer's camera the buffer is the renderer's own
(``render_mesh(..., return_buffers=True)`` for a mesh, ``render_points(...)`` for splats), so a
view rendered by the project is reproduced exactly. With a :class:`PinholeCamera` the same
rasteriser kernels fill the buffer through that camera (any size, any ``K``). A buffer may also
be given (``depth=``).

Visibility tolerance. A point is visible when it lies in the frame, in front of the camera, and
``z <= S(u, v) + tol`` where ``S`` is the renderer's *sample* buffer (with anti-aliasing the
renderer rasterises ``2 x 2`` samples per output pixel and keeps the nearest per pixel; ``S`` is
the sample containing the point's projection). ``S`` holds the depth of the surface at the
sample's centre, not at the point: at most ``reach = sqrt(0.5) / ss`` output pixels away (0.35 px
with anti-aliasing, 0.71 without), and a splat of radius ``r`` px covers samples up to ``r`` px
from its centre. Over that screen distance the visible surface's depth changes by at most
``slope`` times its world extent, so

    ``tol = slope * (r + reach) * z / f``            (``z / f``: world size of one pixel at depth z)

with ``r = 0`` for a mesh buffer (the surface itself) and the splat radius for a point buffer,
``f`` the focal length in pixels and ``slope = VISIBILITY_SLOPE = 3`` (surfaces turned up to
72 degrees from the camera count as seen; grazing ones beyond are ambiguous anyway). At the
demo's 137 px views (f = 309 px, z ~ 4.85) that is 0.017 world units for a mesh buffer and
0.07 for 2048-point splats, in a unit-sphere object: an occluder thinner than that along the ray
does not hide what is behind it. A given buffer (``depth=``) has no samples: the sample may be
anywhere in the point's pixel (``reach`` 1.06 px with anti-aliasing). ``tolerance=`` overrides
it (world units, scalar). Measured against exact ray casting on the demo's meshes (docs/RESULTS.md,
"3D-2D correspondence"): 94.5 % of points classified right at 137 px, 98.0 % at 512 px; the rest
are points on parts thinner than the tolerance and points within a sample of a silhouette.

Pixels -> points, two readings: :meth:`ViewCorrespondence.points_in_pixels` is the exact
inverse of the projection (the visible points whose ``(u, v)`` falls in the brush, optionally
within ``radius_px`` of it); :meth:`ViewCorrespondence.seen_points` is what the pixels *show*:
each object pixel belongs to one visible point (:attr:`ViewCorrespondence.owner`: with a splat
buffer the splat drawn there, else the visible point nearest in 3D to the surface point the
pixel shows), so a click on the object always returns a point. A part's pixels (for masking)
are the pixels its visible points own (:meth:`ViewCorrespondence.pixel_mask`).

**2. Dense similarity** (:func:`dense_similarity`, :class:`DenseSimilarity`): a point x pixel
similarity from the models. For a checkpoint trained with dense heads
(:class:`crosspoint.models.dense.DenseHeads`, found as ``session.dense_heads``) it is their
per-point and per-pixel embeddings; otherwise it is what the models have today: each point's
pre-pool feature pushed through the point projection head as if it were the whole cloud
(``[F_n, F_n]`` for DGCNN's max || mean pooling) against each cell of the image encoder's last
feature map pushed through the image projection head, both L2-normalised. A model trained only
on global embeddings has no reason to make this meaningful (the issue measured 22.7 % vs
17.3 % chance for the true cell), and :func:`evaluate_views` says so with figures.

**3. Evidence by occlusion** (:func:`part_occlusion`, :class:`PartEvidence`): for each part
(per-point labels from the segmentation head, part discovery or a brush), the drop of
``s = cos(proj(cloud), proj(image))`` when the part is removed from the cloud and when its
pixels are masked in the view, side by side, next to the same drops for a random set of the
same size and a random contiguous blob of the same size (a kNN ball around a random point in
3D; the nearest object pixels around a random object pixel in 2D).

:func:`evaluate_views` measures all of it on objects with rendered views (``crosspoint eval
correspondence``).

For the explorer (plain NumPy in and out; set a view up once, then every hover is ~1 ms)::

    v = view_correspondence(points, camera, mesh=mesh)   # 20-80 ms: buffer + every point classified
    v.uv[i], v.visible[i], v.in_frame[i]                 # hover a point: its pixel, seen or occluded
    point_in_views(views, i)                             # ... in every view at once
    v.seen_points([(u, v)])                              # hover a pixel: the point it shows
    v.points_in_pixels(brush_mask, radius_px=2)          # brush pixels: the visible points under it
    v.pixel_mask(point_indices)                          # brushed points -> the pixels they show
    part_occlusion(session, points, image, camera, labels, view=v)   # ~0.1-0.3 s CPU per call
    dense_similarity(session, points, image, camera).point_maps([i]) # "click a point -> heat over the image"

Cameras for a dropped-in image: ``PinholeCamera(K, world_to_camera, width, height)`` or
``PinholeCamera.from_opencv(K, R, t, width, height)``; a view of another size than its camera:
``camera.scaled(width, height)`` or ``v.uv_at(width, height)``.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from crosspoint.analysis._common import (
    AnalysisError, Cancel, Progress, check_cancel, image_array_uint8, l2_normalize, report,
)

__all__ = [
    "VISIBILITY_SLOPE", "HIT_RADIUS_PX", "EVAL_SIZE", "dense_readouts", "PinholeCamera", "as_pinhole", "ViewCorrespondence",
    "view_correspondence", "object_views", "point_in_views", "depth_buffer", "DepthBuffers",
    "DenseSimilarity", "dense_similarity", "PartEvidence", "part_occlusion", "mask_image", "random_blob",
    "evaluate_views", "summarize_evaluation",
]

#: max depth slope (dz per unit of screen-parallel distance) a surface may have and still count as seen
VISIBILITY_SLOPE = 3.0
#: point -> pixel hit radius of the evaluation, in pixels at :data:`EVAL_SIZE`
HIT_RADIUS_PX = 8.0
#: the image size the hit radius refers to
EVAL_SIZE = 224
#: greatest distance from a point to the supersample that wins its output pixel (2 x 2 supersampling)
_REACH_AA = 0.75 * math.sqrt(2.0)
_REACH_1X = 0.5 * math.sqrt(2.0)
_NEAR = 1e-3


# ============================================================================== cameras
class PinholeCamera:
    """A pinhole camera for any image: ``K`` (3x3 intrinsics), ``extrinsic`` (4x4 or 3x4, world ->
    camera in the OpenCV frame: x right, y down, z forward) and the image ``width`` x ``height``.

    ``K`` follows the renderer's pixel convention: ``(u, v, 1) ~ K @ p_cam`` with pixel ``(row i,
    col j)`` covering ``[j, j+1) x [i, i+1)`` (pixel centres at ``+0.5``). Intrinsics written with
    OpenCV's integer pixel centres go through :meth:`from_opencv`, which adds the half pixel.
    """

    def __init__(self, K, extrinsic, width: int, height: int):
        K = np.asarray(K, np.float64)
        E = np.asarray(extrinsic, np.float64)
        if K.shape != (3, 3):
            raise AnalysisError(f"intrinsics K must be 3x3, got shape {K.shape}")
        if E.shape == (3, 4):
            E = np.vstack([E, [0.0, 0.0, 0.0, 1.0]])
        if E.shape != (4, 4):
            raise AnalysisError(f"extrinsics must be 3x4 or 4x4 (world -> camera), got shape {E.shape}")
        if not (np.isfinite(K).all() and np.isfinite(E).all()):
            raise AnalysisError("camera matrices must be finite")
        if int(width) < 1 or int(height) < 1:
            raise AnalysisError(f"image size must be >= 1, got {width} x {height}")
        if not (K[0, 0] > 0 and K[1, 1] > 0):
            raise AnalysisError("intrinsics K must have positive focal lengths")
        self.K, self.extrinsic = K, E
        self.width, self.height = int(width), int(height)

    @classmethod
    def from_camera(cls, camera) -> "PinholeCamera":
        """The renderer's :class:`~crosspoint.render.Camera` (its object transform included)."""
        return cls(camera.intrinsics(), camera.view_matrix(), camera.size, camera.size)

    @classmethod
    def from_opencv(cls, K, R, t, width: int, height: int) -> "PinholeCamera":
        """From OpenCV's ``K`` (integer pixel centres), rotation ``R`` and translation ``t``
        (``p_cam = R @ p_world + t``)."""
        K = np.array(K, np.float64)
        K[0, 2] += 0.5
        K[1, 2] += 0.5
        E = np.eye(4)
        E[:3, :3] = np.asarray(R, np.float64)
        E[:3, 3] = np.asarray(t, np.float64).reshape(3)
        return cls(K, E, width, height)

    @property
    def size(self) -> "tuple[int, int]":
        return self.height, self.width

    def focal_px(self) -> float:
        """The mean focal length in pixels."""
        return 0.5 * float(self.K[0, 0] + self.K[1, 1])

    def to_camera(self, points) -> np.ndarray:
        p = np.asarray(points, np.float64).reshape(-1, 3)
        return p @ self.extrinsic[:3, :3].T + self.extrinsic[:3, 3]

    def project(self, points) -> "tuple[np.ndarray, np.ndarray]":
        """World points ``(N, 3)`` -> ``uv (N, 2)`` pixel coordinates and depth ``(N,)`` (float64;
        ``uv`` is meaningless where ``depth <= 0``)."""
        cam = self.to_camera(points)
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            x, y = cam[:, 0] / z, cam[:, 1] / z
        K = self.K
        uv = np.stack([K[0, 0] * x + K[0, 1] * y + K[0, 2], K[1, 1] * y + K[1, 2]], axis=1)
        return uv, z

    def unproject(self, uv, depth) -> np.ndarray:
        """Pixel coordinates ``(N, 2)`` at camera depth ``(N,)`` -> world points ``(N, 3)``."""
        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        z = np.asarray(depth, np.float64).reshape(-1)
        K = self.K
        y = (uv[:, 1] - K[1, 2]) / K[1, 1]
        x = (uv[:, 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
        cam = np.stack([x * z, y * z, z], axis=1)
        inv = np.linalg.inv(self.extrinsic)
        return cam @ inv[:3, :3].T + inv[:3, 3]

    def scaled(self, width: int, height: "int | None" = None) -> "PinholeCamera":
        """The same camera for the image resized to ``width`` x ``height`` (pixel coordinates scale
        linearly: a plain resize, as the models' input transform)."""
        height = width if height is None else height
        s = np.diag([width / self.width, height / self.height, 1.0])
        return PinholeCamera(s @ self.K, self.extrinsic, width, height)

    def __repr__(self) -> str:
        return f"PinholeCamera({self.width}x{self.height}, f={self.focal_px():.1f})"


def as_pinhole(camera) -> PinholeCamera:
    """A :class:`PinholeCamera` from the renderer's :class:`~crosspoint.render.Camera`, a
    :class:`PinholeCamera`, or a dict ``{"K", "extrinsic", "width", "height"}`` (or ``"R"``/``"t"``
    instead of ``"extrinsic"``)."""
    if isinstance(camera, PinholeCamera):
        return camera
    if hasattr(camera, "view_matrix") and hasattr(camera, "intrinsics"):
        return PinholeCamera.from_camera(camera)
    if isinstance(camera, dict):
        try:
            if "extrinsic" in camera:
                E = camera["extrinsic"]
            else:
                E = np.eye(4)
                E[:3, :3] = np.asarray(camera["R"], np.float64)
                E[:3, 3] = np.asarray(camera["t"], np.float64).reshape(3)
            return PinholeCamera(camera["K"], E, camera["width"], camera["height"])
        except KeyError as exc:
            raise AnalysisError(f"a camera dict needs K, extrinsic (or R and t), width and height; missing {exc}") \
                from None
    raise AnalysisError(f"not a camera: {type(camera).__name__} (give a crosspoint.render.Camera, a PinholeCamera "
                        "or a dict with K, extrinsic, width, height)")


def _is_render_camera(camera) -> bool:
    return hasattr(camera, "view_matrix") and hasattr(camera, "size") and hasattr(camera, "_project64")


def _render_kernels():
    from crosspoint.render.raster import kernels

    return kernels()


def _reduce_min(zbuf: np.ndarray, ibuf: np.ndarray, ss: int) -> "tuple[np.ndarray, np.ndarray]":
    """Per output pixel, the nearest of its ``ss x ss`` samples (the renderer's reduction): depth
    float32 (inf = empty) and index int32 (-1)."""
    h2, w2 = zbuf.shape
    h, w = h2 // ss, w2 // ss
    zb = zbuf.reshape(h, ss, w, ss).transpose(0, 2, 1, 3).reshape(h, w, ss * ss)
    ib = ibuf.reshape(h, ss, w, ss).transpose(0, 2, 1, 3).reshape(h, w, ss * ss)
    k = np.argmin(zb, axis=2)[..., None]
    return (np.take_along_axis(zb, k, axis=2)[..., 0].astype(np.float32),
            np.take_along_axis(ib, k, axis=2)[..., 0].astype(np.int32))


@dataclass
class DepthBuffers:
    """What the renderer's rasteriser computes for a view: ``depth`` ``(H, W)`` float32 per output
    pixel (the nearest of its samples; inf where empty -- what ``return_buffers=True`` gives),
    ``samples`` ``(ss*H, ss*W)`` the supersample depths it was reduced from, ``index`` ``(H, W)``
    int32 the splat drawn per pixel (point buffers; None for a mesh), ``radius_px`` the splat
    radius (0 for a mesh) and ``ss`` the supersampling (2 with anti-aliasing)."""

    depth: np.ndarray
    samples: np.ndarray
    index: "np.ndarray | None"
    radius_px: float
    ss: int


def depth_buffer(camera, *, points=None, mesh=None, point_radius_px: "float | None" = None,
                 antialias: bool = True) -> DepthBuffers:
    """The renderer's depth buffer of ``mesh`` (preferred) or of ``points`` splatted as discs, as
    seen by ``camera`` (:class:`DepthBuffers`). With the renderer's
    :class:`~crosspoint.render.Camera` the samples come from ``render_mesh`` / ``render_points``
    themselves (at twice the size without anti-aliasing, which is exactly the anti-aliased render's
    sample grid), so ``depth`` equals what they return with ``return_buffers=True``; with a
    :class:`PinholeCamera` the same rasteriser kernels run through that camera."""
    import dataclasses

    from crosspoint.render import default_point_radius, render_mesh, render_points

    if mesh is None and points is None:
        raise AnalysisError("a depth buffer needs points or a mesh")
    ss = 2 if antialias else 1
    pts = None if points is None else np.asarray(points, np.float64).reshape(-1, 3)
    if _is_render_camera(camera):
        big = dataclasses.replace(camera, size=camera.size * ss) if ss > 1 else camera
        if mesh is not None:
            _, buf = render_mesh(mesh, big, antialias=False, return_buffers=True)
            zs, ib = buf["depth"].astype(np.float64), buf["face_index"]
            r = 0.0
        else:
            r = default_point_radius(pts.shape[0], camera.size) if point_radius_px is None else float(point_radius_px)
            _, buf = render_points(pts, big, point_radius_px=r * ss, antialias=False, return_buffers=True)
            zs, ib = buf["depth"].astype(np.float64), buf["point_index"]
    else:
        cam = as_pinhole(camera)
        raster, splat, _ = _render_kernels()
        h, w = cam.height * ss, cam.width * ss
        zs = np.full((h, w), np.inf)
        ib = np.full((h, w), -1, np.int32)
        if mesh is not None:
            v = np.asarray(mesh.vertices, np.float64).reshape(-1, 3)
            faces = np.ascontiguousarray(np.asarray(mesh.faces, np.int64).reshape(-1, 3))
            uv, z = cam.project(v)
            b1 = np.zeros((h, w), np.float32)
            b2 = np.zeros((h, w), np.float32)
            if faces.shape[0]:
                raster(np.ascontiguousarray(uv * ss), np.ascontiguousarray(z), faces, zs, ib, b1, b2)
            r = 0.0
        else:
            r = default_point_radius(pts.shape[0], max(cam.width, cam.height)) if point_radius_px is None \
                else float(point_radius_px)
            uv, z = cam.project(pts)
            rbuf = np.zeros((h, w), np.float64)
            if pts.shape[0]:
                splat(np.ascontiguousarray(uv * ss), np.ascontiguousarray(z), r * ss, zs, ib, rbuf)
    depth, index = _reduce_min(zs, ib, ss)
    return DepthBuffers(depth, zs.astype(np.float32), None if mesh is not None else index, float(r), ss)


# ============================================================================== one view
def _brush_mask(brush, shape: "tuple[int, int]") -> np.ndarray:
    """A boolean ``(H, W)`` mask from a mask or a list of ``(u, v)`` pixel coordinates."""
    h, w = shape
    b = np.asarray(brush)
    if b.dtype == bool and b.shape == (h, w):
        return b
    if b.ndim == 2 and b.shape == (h, w) and b.dtype.kind in "iu" and b.max(initial=0) <= 1:
        return b.astype(bool)
    if b.size == 0:
        b = np.zeros((0, 2))
    elif b.shape == (2,):
        b = b.reshape(1, 2)
    if b.ndim != 2 or b.shape[1] != 2:
        raise AnalysisError(f"a brush is a ({h}, {w}) boolean mask or a list of (u, v) pixels, got shape {b.shape}")
    m = np.zeros((h, w), bool)
    col = np.floor(b[:, 0]).astype(np.int64)
    row = np.floor(b[:, 1]).astype(np.int64)
    ok = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    m[row[ok], col[ok]] = True
    return m


@dataclass
class ViewCorrespondence:
    """Points <-> pixels in one view (see the module docstring). Arrays are per point, in the
    order of the points given; pixel coordinates are in this view's image (``shape``)."""

    camera: PinholeCamera
    points: np.ndarray  # (N, 3) float64, world frame
    uv: np.ndarray  # (N, 2) float32 pixel coordinates (u right, v down)
    depth: np.ndarray  # (N,) float32 camera depth
    in_frame: np.ndarray  # (N,) bool: in front of the camera and inside the image
    visible: np.ndarray  # (N,) bool: in frame and not occluded
    depth_buffer: np.ndarray  # (H, W) float32, inf where empty
    tolerance: np.ndarray  # (N,) float32 depth tolerance used (world units along z)
    buffer_source: str  # "mesh" | "points" | "given"
    splat_radius_px: float = 0.0
    index_buffer: "np.ndarray | None" = None  # (H, W) int32 splat drawn per pixel (point buffers)
    _owner: "np.ndarray | None" = field(default=None, repr=False)

    @property
    def shape(self) -> "tuple[int, int]":
        return self.depth_buffer.shape

    @property
    def n(self) -> int:
        return int(self.points.shape[0])

    @property
    def object_mask(self) -> np.ndarray:
        """``(H, W)`` bool: pixels where the buffer holds geometry."""
        return np.isfinite(self.depth_buffer)

    @property
    def pixel(self) -> np.ndarray:
        """``(N, 2)`` int64 ``(row, col)`` of each point's pixel, ``-1`` outside the frame."""
        rc = np.full((self.n, 2), -1, np.int64)
        ok = self.in_frame
        rc[ok, 0] = np.floor(self.uv[ok, 1]).astype(np.int64)
        rc[ok, 1] = np.floor(self.uv[ok, 0]).astype(np.int64)
        return rc

    def uv_at(self, width: int, height: "int | None" = None) -> np.ndarray:
        """``uv`` for the image resized to ``width`` x ``height``."""
        height = width if height is None else height
        h, w = self.shape
        return (self.uv * np.array([width / w, height / h], np.float32)).astype(np.float32)

    # -- pixels -> points ---------------------------------------------------------------
    def points_in_pixels(self, brush, *, radius_px: float = 0.0, include_occluded: bool = False) -> np.ndarray:
        """Indices of the visible points (all in-frame points with ``include_occluded``) whose
        projection falls in the brush (a ``(H, W)`` mask or ``(u, v)`` pixels), or within
        ``radius_px`` of a brushed pixel's centre. The exact inverse of the projection."""
        mask = _brush_mask(brush, self.shape)
        sel = self.in_frame if include_occluded else self.visible
        idx = np.nonzero(sel)[0]
        if idx.size == 0 or not mask.any():
            return np.zeros(0, np.int64)
        rc = self.pixel[idx]
        hit = mask[rc[:, 0], rc[:, 1]]
        if radius_px > 0:
            from scipy.spatial import cKDTree

            rows, cols = np.nonzero(mask)
            centres = np.stack([cols + 0.5, rows + 0.5], axis=1)
            d, _ = cKDTree(centres).query(self.uv[idx].astype(np.float64), k=1)
            hit |= d <= float(radius_px)
        return idx[hit].astype(np.int64)

    @property
    def owner(self) -> np.ndarray:
        """``(H, W)`` int64: for each object pixel, the visible point it shows (the splat drawn
        there with a point buffer; else the visible point nearest in 3D to the pixel's surface
        point, within 5 median point spacings), ``-1`` elsewhere. Computed once (a few ms)."""
        if self._owner is None:
            self._owner = self._compute_owner()
        return self._owner

    def _compute_owner(self) -> np.ndarray:
        from scipy.spatial import cKDTree

        h, w = self.shape
        own = np.full((h, w), -1, np.int64)
        vis = np.nonzero(self.visible)[0]
        obj = self.object_mask
        if vis.size == 0 or not obj.any():
            return own
        if self.index_buffer is not None:
            ib = self.index_buffer.astype(np.int64)
            ok = (ib >= 0) & (ib < self.n)
            ok[ok] = self.visible[ib[ok]]
            own[ok] = ib[ok]
            todo = obj & ~ok
        else:
            todo = obj
        rows, cols = np.nonzero(todo)
        if rows.size:
            uv = np.stack([cols + 0.5, rows + 0.5], axis=1)
            surf = self.camera.unproject(uv, self.depth_buffer[rows, cols])
            tree = cKDTree(self.points[vis])
            d, nn = tree.query(surf, k=1)
            cap = np.inf
            if vis.size > 1:
                sd, _ = tree.query(self.points[vis], k=2)
                cap = 5.0 * float(np.median(sd[:, 1]))
            keep = d <= max(cap, 1e-12)
            own[rows[keep], cols[keep]] = vis[nn[keep]]
        return own

    def seen_points(self, brush) -> np.ndarray:
        """Indices of the visible points the brushed pixels show (:attr:`owner`), sorted, unique."""
        mask = _brush_mask(brush, self.shape)
        o = self.owner[mask]
        return np.unique(o[o >= 0]).astype(np.int64)

    # -- points -> pixels ---------------------------------------------------------------
    def pixel_mask(self, indices) -> np.ndarray:
        """``(H, W)`` bool: the pixels the given points show (owned by them; see :attr:`owner`).
        ``indices``: point indices or an ``(N,)`` boolean mask."""
        sel = np.zeros(self.n, bool)
        ind = np.asarray(indices)
        if ind.dtype == bool:
            if ind.shape != (self.n,):
                raise AnalysisError(f"a point mask must be ({self.n},), got {ind.shape}")
            sel = ind.copy()
        elif ind.size:
            sel[ind.astype(np.int64).reshape(-1)] = True
        own = self.owner
        out = np.zeros(self.shape, bool)
        m = own >= 0
        out[m] = sel[own[m]]
        return out


def _as_points(points) -> np.ndarray:
    from crosspoint.analysis.points import cloud_points

    if isinstance(points, np.ndarray) and points.ndim == 2 and points.shape[1] == 3:
        if not np.isfinite(points).all():
            raise AnalysisError("the point cloud has NaN or infinite coordinates")
        return np.asarray(points, np.float64)
    return cloud_points(points).astype(np.float64)


def view_correspondence(points, camera, *, mesh=None, depth: "np.ndarray | None" = None,
                        index: "np.ndarray | None" = None, point_radius_px: "float | None" = None,
                        antialias: bool = True, tolerance: "float | None" = None,
                        slope: float = VISIBILITY_SLOPE) -> ViewCorrespondence:
    """Points <-> pixels for one view (see the module docstring).

    ``points``: ``(N, 3)`` in the world frame of ``camera`` (a ``PointCloud``, an array or a file).
    ``camera``: the renderer's :class:`~crosspoint.render.Camera`, a :class:`PinholeCamera` or a
    dict (:func:`as_pinhole`). The depth buffer: ``depth`` when given (``(H, W)``, inf where empty;
    ``index`` its per-pixel point index when it is a splat buffer of these points), else rendered
    from ``mesh`` when given (the view was a mesh render, e.g. the demo's), else from the points
    splatted with ``point_radius_px`` (default: the renderer's). ``tolerance`` (world units)
    overrides the depth tolerance derived from the splat size and pixel footprint."""
    pts = _as_points(points)
    cam = as_pinhole(camera)
    ss = 1
    if depth is not None:
        buf = np.asarray(depth, np.float32)
        if buf.shape != (cam.height, cam.width):
            raise AnalysisError(f"the depth buffer is {buf.shape[1]}x{buf.shape[0]}, the camera's image "
                                f"{cam.width}x{cam.height}")
        samples = buf
        source = "given"
        r = float(point_radius_px or 0.0)
        reach = _REACH_AA if antialias else _REACH_1X  # a sample anywhere in the output pixel
        if index is not None:
            index = np.asarray(index, np.int32)
            source = "points"
            if point_radius_px is None:
                from crosspoint.render import default_point_radius

                r = default_point_radius(pts.shape[0], max(cam.width, cam.height))
    else:
        db = depth_buffer(camera, points=pts if mesh is None else None, mesh=mesh,
                          point_radius_px=point_radius_px, antialias=antialias)
        buf, samples, index, r, ss = db.depth, db.samples, db.index, db.radius_px, db.ss
        source = "mesh" if mesh is not None else "points"
        reach = _REACH_1X / ss  # the sample holding the point's projection: within half a sample diagonal
    uv, z = cam.project(pts)
    h, w = buf.shape
    with np.errstate(invalid="ignore"):
        in_frame = (np.isfinite(uv).all(axis=1) & (z > _NEAR) & (uv[:, 0] >= 0) & (uv[:, 0] < w)
                    & (uv[:, 1] >= 0) & (uv[:, 1] < h))
    if tolerance is not None:
        tol = np.full(pts.shape[0], float(tolerance))
    else:
        tol = float(slope) * (r + reach) * np.maximum(z, 0.0) / cam.focal_px()
    visible = np.zeros(pts.shape[0], bool)
    ii = np.nonzero(in_frame)[0]
    if ii.size:
        sh, sw = samples.shape
        rows = np.minimum(np.floor(uv[ii, 1] * (sh / h)).astype(np.int64), sh - 1)
        cols = np.minimum(np.floor(uv[ii, 0] * (sw / w)).astype(np.int64), sw - 1)
        visible[ii] = z[ii] <= samples[rows, cols].astype(np.float64) + tol[ii]
    uv32 = np.where(np.isfinite(uv), uv, np.nan).astype(np.float32)
    return ViewCorrespondence(cam, pts, uv32, z.astype(np.float32), in_frame, visible, buf,
                              tol.astype(np.float32), source, float(r), index)


def object_views(points, cameras: Sequence, *, mesh=None, **kw) -> "list[ViewCorrespondence]":
    """:func:`view_correspondence` for every camera (e.g. the ``read_view_metadata`` of a
    ``rendering/`` folder, or the cameras :func:`~crosspoint.render.render_views` returned)."""
    pts = _as_points(points)
    return [view_correspondence(pts, c, mesh=mesh, **kw) for c in cameras]


def point_in_views(views: "Sequence[ViewCorrespondence]", index: int) -> dict:
    """Where point ``index`` is in every view: ``{"uv" (V, 2) float32 (NaN outside the frame),
    "in_frame" (V,) bool, "visible" (V,) bool}`` (hover a point: mark its pixel everywhere)."""
    i = int(index)
    uv = np.full((len(views), 2), np.nan, np.float32)
    inf = np.zeros(len(views), bool)
    vis = np.zeros(len(views), bool)
    for k, v in enumerate(views):
        if not 0 <= i < v.n:
            raise AnalysisError(f"point {i} out of range (0..{v.n - 1})")
        inf[k], vis[k] = v.in_frame[i], v.visible[i]
        if inf[k]:
            uv[k] = v.uv[i]
    return {"uv": uv, "in_frame": inf, "visible": vis}


# ============================================================================== models: helpers
def _image_array(image) -> np.ndarray:
    """A uint8 ``(H, W, 3|4)`` array of an image (array, PIL image or file)."""
    from pathlib import Path

    if isinstance(image, (str, Path)):
        from PIL import Image

        try:
            with Image.open(image) as im:
                im.load()
                return np.asarray(im.convert("RGBA") if im.mode in ("RGBA", "LA", "P") else im.convert("RGB"))
        except OSError as exc:
            raise AnalysisError(f"{image}: cannot read the image ({exc})") from None
    if hasattr(image, "mode") and hasattr(image, "size") and not isinstance(image, np.ndarray):
        return np.asarray(image.convert("RGBA") if image.mode in ("RGBA", "LA", "P") else image.convert("RGB"))
    arr = image_array_uint8(image)
    return arr


def mask_image(image, mask: np.ndarray) -> np.ndarray:
    """``image`` with the ``(H, W)`` ``mask`` pixels made empty: RGBA ``(0, 0, 0, 0)`` (what the
    renderer leaves where there is no geometry, so the model sees them as it sees the background
    whatever ``session.background`` is), or, for an RGB image, the median colour of its border."""
    arr = _image_array(image).copy()
    m = np.asarray(mask, bool)
    if m.shape != arr.shape[:2]:
        raise AnalysisError(f"mask is {m.shape}, image is {arr.shape[:2]}")
    if arr.shape[2] == 4:
        arr[m] = 0
    else:
        border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
        arr[m] = np.median(border, axis=0).astype(np.uint8)
    return arr


def _resnet_stages(enc, x):
    """``(projection, {"layer1", "layer2", "layer3", "layer4"})`` of the image encoder in one pass."""
    r = enc.resnet
    p = enc.inv_head[0].weight
    x = x.to(device=p.device, dtype=p.dtype)
    x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
    l1 = r.layer1(x)
    l2 = r.layer2(l1)
    l3 = r.layer3(l2)
    l4 = r.layer4(l3)
    import torch

    from crosspoint.models.layers import project_head

    feat = torch.flatten(r.avgpool(l4), 1)
    return project_head(feat, enc.inv_head), {"layer1": l1, "layer2": l2, "layer3": l3, "layer4": l4}


def _pool_global(enc, pmap):
    """The encoder's global feature from its per-point map ``(B, n, C)`` (max || mean or max)."""
    import torch

    c = pmap.shape[-1]
    if enc.feature_dim == 2 * c:
        return torch.cat([pmap.amax(dim=1), pmap.mean(dim=1)], dim=1)
    if enc.feature_dim == c:
        return pmap.amax(dim=1)
    raise AnalysisError(f"cannot pool the {getattr(enc, 'arch', '?')} encoder's {c}-channel per-point map into its "
                        f"{enc.feature_dim}-d feature")


def _per_point_as_global(enc, pmap):
    """Each point's pre-pool feature laid out as a whole cloud's global feature (``[F, F]`` for
    max || mean), ``(n, feature_dim)``."""
    import torch

    c = pmap.shape[-1]
    if enc.feature_dim == 2 * c:
        return torch.cat([pmap, pmap], dim=-1)
    if enc.feature_dim == c:
        return pmap
    raise AnalysisError(f"the {getattr(enc, 'arch', '?')} encoder's per-point map ({c} channels) does not match its "
                        f"{enc.feature_dim}-d feature; no dense similarity from the projection head")


# ============================================================================== dense similarity
@dataclass
class DenseSimilarity:
    """Point x pixel similarity of one cloud and one image (see the module docstring).

    ``point_embeddings`` ``(n, D)`` on ``prepared.points`` (L2-normalised), ``cell_embeddings``
    ``(h, w, D)`` over the model's input image (L2-normalised), ``world_points`` ``(n, 3)`` the
    prepared points in the caller's frame, ``uv`` ``(n, 2)`` their projections in the image given
    (``image_shape``; NaN without a camera)."""

    point_embeddings: np.ndarray
    cell_embeddings: np.ndarray
    prepared: object
    world_points: np.ndarray
    uv: np.ndarray
    image_shape: "tuple[int, int]"
    method: str  # "projection heads" | "dense heads"
    similarity: float = float("nan")  # the global cos(proj(cloud), proj(image))
    #: the object's symmetries (:mod:`crosspoint.analysis.symmetry`) when :func:`dense_readouts` had a mesh
    symmetries: object = None

    @property
    def grid(self) -> "tuple[int, int]":
        return self.cell_embeddings.shape[:2]

    def cell_scores(self, indices=None) -> np.ndarray:
        """``(k, h, w)`` cosine of the points ``indices`` (all by default) with every cell."""
        pe = self.point_embeddings if indices is None else self.point_embeddings[np.asarray(indices)]
        h, w, d = self.cell_embeddings.shape
        return (pe @ self.cell_embeddings.reshape(h * w, d).T).reshape(-1, h, w)

    def point_maps(self, indices=None, size: "tuple[int, int] | None" = None) -> np.ndarray:
        """``(k, H, W)`` float32: the cell scores upsampled bilinearly (``align_corners=False``) to
        ``size`` (default the image's): "click a point -> similarity over the image"."""
        import torch
        import torch.nn.functional as F

        size = self.image_shape if size is None else tuple(size)
        cs = torch.from_numpy(np.ascontiguousarray(self.cell_scores(indices), np.float32))[:, None]
        return F.interpolate(cs, size=size, mode="bilinear", align_corners=False)[:, 0].numpy()

    def pixel_scores(self, u: float, v: float) -> np.ndarray:
        """``(n,)`` cosine of every point with the image embedding at pixel ``(u, v)`` of the image
        (bilinear between cell centres): "click a pixel -> similarity over the points"."""
        h, w, d = self.cell_embeddings.shape
        H, W = self.image_shape
        x = float(u) / W * w - 0.5
        y = float(v) / H * h - 0.5
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        emb = np.zeros(d, np.float64)
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                yy = min(max(y0 + dy, 0), h - 1)
                xx = min(max(x0 + dx, 0), w - 1)
                emb += wy * wx * self.cell_embeddings[yy, xx]
        return (self.point_embeddings @ emb).astype(np.float32)

    def argmax_pixels(self, indices, size: "tuple[int, int] | None" = None, mask: "np.ndarray | None" = None,
                      chunk: int = 64) -> np.ndarray:
        """``(k, 2)`` float32 pixel centres ``(u, v)`` (at ``size``, default the image's) where each
        point's map peaks, over the pixels of ``mask`` (``(H, W)`` at ``size``) when given."""
        size = self.image_shape if size is None else tuple(size)
        idx = np.asarray(indices, np.int64).reshape(-1)
        out = np.zeros((idx.size, 2), np.float32)
        flat_mask = None if mask is None else np.asarray(mask, bool).reshape(-1)
        for s in range(0, idx.size, chunk):
            maps = self.point_maps(idx[s:s + chunk], size).reshape(min(chunk, idx.size - s), -1)
            if flat_mask is not None and flat_mask.any():
                maps[:, ~flat_mask] = -np.inf
            a = np.argmax(maps, axis=1)
            out[s:s + chunk, 0] = a % size[1] + 0.5
            out[s:s + chunk, 1] = a // size[1] + 0.5
        return out


def dense_similarity(session, cloud, image, camera=None, *, n_points: "int | None" = None, seed: int = 0,
                     size: "int | None" = None) -> DenseSimilarity:
    """The models' point x pixel similarity of ``cloud`` and ``image`` (see the module docstring):
    the checkpoint's dense heads when it has them (``session.dense_heads``), else the projection
    heads applied per point and per feature-map cell. ``camera`` (optional; the renderer's or a
    :class:`PinholeCamera` for ``image``) fills ``uv`` with the prepared points' projections.
    The one definition every readout and ``crosspoint eval correspondence`` use, so a dense-trained
    checkpoint plugs in unchanged."""
    import torch

    from crosspoint.analysis.embed import image_size, image_tensor
    from crosspoint.analysis.points import Prepared, prepare_points

    penc = session.point_encoder
    ienc = session.require_image_encoder()
    prep = prepare_points(cloud, session.points_for(n_points), seed)
    heads = getattr(session, "dense_heads", None)
    arr = _image_array(image)
    H, W = image_size(arr)
    x_img = image_tensor(arr, session.size_for(size), session.background)[None]
    with session.inference(autocast=False):
        xp = torch.from_numpy(np.ascontiguousarray(prep.points, np.float32)[None]).to(session.device)
        out = penc(xp, with_point_features=True)
        pmap = out.point_features
        if pmap is None:
            raise AnalysisError(f"the {getattr(penc, 'arch', '?')} encoder gives no per-point map")
        proj, stages = _resnet_stages(ienc, x_img.to(session.device))
        s_glob = float(torch.nn.functional.cosine_similarity(out.projection.float(), proj.float(), dim=1)[0])
        if heads is not None:
            pe = heads.point_embeddings(pmap)[0]
            cm = heads.image_embeddings(stages)[0]  # (D, h, w)
            method = "dense heads"
        else:
            pe = penc.project_feature(_per_point_as_global(penc, pmap[0]))
            fm = stages["layer4"][0]  # (C, h, w)
            c, h, w = fm.shape
            from crosspoint.models.layers import project_head

            cells = fm.reshape(c, h * w).T
            cm = project_head(cells, ienc.inv_head).T.reshape(-1, h, w)
            method = "projection heads"
        pe = pe.float().cpu().numpy()
        cm = cm.float().cpu().numpy().transpose(1, 2, 0)
    pe = l2_normalize(pe)
    h, w, d = cm.shape
    cm = l2_normalize(cm.reshape(h * w, d)).reshape(h, w, d)
    world = prep.original_points() if not isinstance(cloud, Prepared) else prep.points
    uv = np.full((prep.n, 2), np.nan, np.float32)
    if camera is not None:
        cam = as_pinhole(camera)
        if (cam.height, cam.width) != (H, W):
            cam = cam.scaled(W, H)
        puv, z = cam.project(world)
        uv = np.where(z[:, None] > _NEAR, puv, np.nan).astype(np.float32)
    return DenseSimilarity(pe, cm, prep, np.asarray(world, np.float32), uv, (H, W), method, s_glob)


# ============================================================================== occlusion evidence
def random_blob(points: np.ndarray, m: int, rng: np.random.Generator, candidates: "np.ndarray | None" = None
                ) -> np.ndarray:
    """A random contiguous blob of ``m`` points: the ``m`` nearest neighbours (among
    ``candidates``, default all) of a random seed point among them. Indices into ``points``."""
    from scipy.spatial import cKDTree

    cand = np.arange(points.shape[0]) if candidates is None else np.asarray(candidates, np.int64)
    m = int(min(max(m, 1), cand.size))
    seed = cand[rng.integers(cand.size)]
    _, nn = cKDTree(points[cand]).query(points[seed], k=m)
    return cand[np.atleast_1d(nn)]


def _pixel_blob(mask: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """The ``m`` object pixels nearest a random object pixel: a ``(H, W)`` bool mask."""
    rows, cols = np.nonzero(mask)
    out = np.zeros(mask.shape, bool)
    if rows.size == 0 or m <= 0:
        return out
    k = rng.integers(rows.size)
    d = (rows - rows[k]) ** 2 + (cols - cols[k]) ** 2
    pick = np.argsort(d, kind="stable")[: min(m, rows.size)]
    out[rows[pick], cols[pick]] = True
    return out


def _pixel_random(mask: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    out = np.zeros(mask.shape, bool)
    if rows.size == 0 or m <= 0:
        return out
    pick = rng.choice(rows.size, min(m, rows.size), replace=False)
    out[rows[pick], cols[pick]] = True
    return out


@dataclass
class PartEvidence:
    """Similarity drops per part, 3D (part removed from the cloud) and 2D (its pixels masked in the
    view), with the same-size baselines (means over ``n_random`` draws). Arrays are ``(P,)`` in the
    order of ``labels``; a drop is ``similarity - similarity after occlusion`` (positive: the part
    supported the match). 2D entries are NaN for parts with no visible pixel."""

    labels: np.ndarray
    names: "list[str]"
    similarity: float
    drop_3d: np.ndarray
    drop_2d: np.ndarray
    random_3d: np.ndarray
    blob_3d: np.ndarray
    random_2d: np.ndarray
    blob_2d: np.ndarray
    points_3d: np.ndarray  # points of the part among the model's input points
    pixels_2d: np.ndarray  # pixels of the part in the view
    mode: str
    seconds: float = 0.0
    note: str = ""

    def top_part(self, side: str) -> "int | None":
        """Label of the part with the largest drop on ``side`` ("3d" or "2d"; among the parts
        visible in the view, so both sides compete over the same parts), or None."""
        d = self.drop_3d if side == "3d" else self.drop_2d
        ok = np.isfinite(self.drop_2d) & np.isfinite(d)
        if not ok.any():
            return None
        cand = np.nonzero(ok)[0]
        return int(self.labels[cand[np.argmax(d[cand])]])

    @property
    def agree(self) -> "bool | None":
        a, b = self.top_part("3d"), self.top_part("2d")
        return None if a is None or b is None else a == b

    def rows(self) -> "list[dict]":
        """One plain dict per part (for a table or JSON)."""
        out = []
        for k, lab in enumerate(self.labels):
            out.append({"label": int(lab), "name": self.names[k], "points": int(self.points_3d[k]),
                        "pixels": int(self.pixels_2d[k]),
                        "drop_3d": float(self.drop_3d[k]), "random_3d": float(self.random_3d[k]),
                        "blob_3d": float(self.blob_3d[k]), "drop_2d": float(self.drop_2d[k]),
                        "random_2d": float(self.random_2d[k]), "blob_2d": float(self.blob_2d[k])})
        return out


OCCLUSION_MODES = ("repool", "replace", "drop")
#: the last few encoded clouds and images (repeated calls on one object, e.g. a user brushing parts)
_ENCODED: OrderedDict = OrderedDict()
_CACHE_SIZE = 8


def _cache_key(session, kind: str, arr: np.ndarray, extra=None) -> tuple:
    import hashlib

    a = np.ascontiguousarray(arr)
    return (kind, getattr(session, "fingerprint", id(session)), id(session), a.shape, str(a.dtype),
            hashlib.sha1(a.tobytes()).hexdigest(), extra)


def _remember(key, value):
    _ENCODED[key] = value
    while len(_ENCODED) > _CACHE_SIZE:
        _ENCODED.popitem(last=False)
    return value


def _encoded_cloud(session, points: np.ndarray):
    """``(unit projection (D,), per-point map (1, n, C) tensor or None)`` of prepared points, cached."""
    import torch

    key = _cache_key(session, "cloud", np.asarray(points, np.float32))
    if key in _ENCODED:
        _ENCODED.move_to_end(key)
        return _ENCODED[key]
    with session.inference(autocast=False):
        x = torch.from_numpy(np.ascontiguousarray(points, np.float32)[None]).to(session.device)
        out = session.point_encoder(x, with_point_features=True)
        proj = l2_normalize(out.projection.float().cpu().numpy())[0]
    return _remember(key, (proj, out.point_features))


def _cloud_sims(session, prep_points: np.ndarray, removals: "list[np.ndarray]", target: np.ndarray, mode: str,
                pmap_cache=None) -> np.ndarray:
    """``cos(proj(cloud without removal k), target)`` for every removal (boolean masks over the
    prepared points)."""
    import torch

    penc = session.point_encoder
    t = torch.as_tensor(np.asarray(target, np.float32))
    if mode == "repool":
        pmap = pmap_cache
        out = []
        with session.inference(autocast=False):
            for rm in removals:
                keep = torch.from_numpy(~rm)
                if not bool(keep.any()):
                    out.append(float("nan"))
                    continue
                g = _pool_global(penc, pmap[:, keep.to(pmap.device)])
                p = penc.project_feature(g).float().cpu()[0]
                out.append(float(torch.nn.functional.cosine_similarity(p, t, dim=0)))
        return np.asarray(out, np.float64)
    from crosspoint.analysis.embed import encode_points
    from crosspoint.analysis.heatmap import _delete

    clouds = [_delete(prep_points, rm, mode) if rm.any() and not rm.all() else prep_points for rm in removals]
    out = []
    if mode == "drop":
        for c in clouds:
            _, p = encode_points(session, c[None])
            out.append(float(l2_normalize(p)[0] @ target))
    else:
        bs = 8
        for s in range(0, len(clouds), bs):
            _, p = encode_points(session, np.stack(clouds[s:s + bs]))
            out.extend((l2_normalize(p) @ target).tolist())
    return np.asarray(out, np.float64)


def part_occlusion(session, cloud, image, camera, part_labels, *, names: "dict | None" = None, mesh=None,
                   view: "ViewCorrespondence | None" = None, n_random: int = 2, mode: str = "repool",
                   min_points: int = 8, n_points: "int | None" = None, seed: int = 0,
                   size: "int | None" = None) -> PartEvidence:
    """Evidence by occlusion, both sides, for each part of ``cloud`` (see the module docstring).

    ``part_labels``: ``(N,)`` ints, one per point of ``cloud`` (segmentation labels, discovered
    parts, or a user's brush as 0/1; negative labels are ignored). ``camera``: the view's camera
    (the renderer's or a :class:`PinholeCamera`); ``mesh``: the mesh the view was rendered from,
    when it was (the demo's views), else the points' own splats make the depth buffer; ``view``:
    a :func:`view_correspondence` computed before (skips that step).

    ``mode`` of the 3D removal: ``"repool"`` (default, ~1 ms per set: the per-point map of the
    whole cloud, pooled without the part's points -- the kNN context of the remaining points is
    kept), ``"replace"`` (re-encode the cloud with the part's points replaced by their nearest
    kept point, as :func:`~crosspoint.analysis.heatmap.deletion_test`) or ``"drop"`` (re-encode
    without them). 2D: the part's pixels (the pixels its visible points show,
    :meth:`ViewCorrespondence.pixel_mask`) made empty (:func:`mask_image`), all variants in one
    batch. Baselines per part: ``n_random`` random sets of the same size and random contiguous
    blobs of the same size, on each side. Parts with fewer than ``min_points`` of the model's
    input points are skipped."""

    from crosspoint.analysis.points import prepare_points

    t0 = time.perf_counter()
    if mode not in OCCLUSION_MODES:
        raise AnalysisError(f"mode must be one of {', '.join(OCCLUSION_MODES)}, got {mode!r}")
    pts = _as_points(cloud)
    labels = np.asarray(part_labels).reshape(-1)
    if labels.shape[0] != pts.shape[0]:
        raise AnalysisError(f"{labels.shape[0]} part labels for {pts.shape[0]} points")
    labels = labels.astype(np.int64)
    arr = _image_array(image)
    H, W = arr.shape[:2]
    if view is None:
        cam = as_pinhole(camera)
        if (cam.height, cam.width) != (H, W):
            cam = cam.scaled(W, H)
            camera = cam
        view = view_correspondence(pts, camera, mesh=mesh)
    elif view.shape != (H, W):
        raise AnalysisError(f"the view correspondence is {view.shape}, the image {H}x{W}")
    prep = prepare_points(pts.astype(np.float32), session.points_for(n_points), seed)
    sub_lab = labels[prep.index]
    cloud_proj, pmap = _encoded_cloud(session, prep.points)
    if mode != "repool":
        pmap = None
    elif pmap is None:
        raise AnalysisError("mode 'repool' needs the encoder's per-point map; use mode='replace'")
    parts = [int(p) for p in np.unique(sub_lab) if p >= 0 and np.count_nonzero(sub_lab == p) >= int(min_points)]
    rng = np.random.default_rng(seed)
    n = prep.n
    obj_mask = view.object_mask
    removals, images, kinds = [], [], []
    px_counts = []
    for p in parts:
        rm = sub_lab == p
        m = int(rm.sum())
        removals.append(rm)
        kinds.append((p, "3d"))
        for _ in range(int(n_random)):
            r = np.zeros(n, bool)
            r[rng.choice(n, m, replace=False)] = True
            removals.append(r)
            kinds.append((p, "random_3d"))
            b = np.zeros(n, bool)
            b[random_blob(prep.points, m, rng)] = True
            removals.append(b)
            kinds.append((p, "blob_3d"))
        pm = view.pixel_mask(labels == p)
        npx = int(pm.sum())
        px_counts.append(npx)
        if npx:
            images.append((p, "2d", mask_image(arr, pm)))
            for _ in range(int(n_random)):
                images.append((p, "random_2d", mask_image(arr, _pixel_random(obj_mask, npx, rng))))
                images.append((p, "blob_2d", mask_image(arr, _pixel_blob(obj_mask, npx, rng))))
    # the masked variants in batches, against the cloud's own projection; the image itself on its own
    # (cached), so that the batches, and with them the float32 results, do not depend on whether the
    # image was seen before (a different batch size may take another GEMM blocking: ~1e-7 apart)
    from crosspoint.analysis.embed import embed_images

    key = _cache_key(session, "image", arr, size)
    masked = [im for *_, im in images]
    if key in _ENCODED:
        _ENCODED.move_to_end(key)
        img_target = _ENCODED[key]
    else:
        img_target = _remember(key, embed_images(session, [arr], size=size, batch_size=1)[0])
    img_proj = embed_images(session, masked, size=size, batch_size=16) if masked else np.zeros((0, 1))
    s0 = float(cloud_proj @ img_target)
    sims2 = (img_proj @ cloud_proj).astype(np.float64) if masked else np.zeros(0)
    sims3 = _cloud_sims(session, prep.points, removals, img_target, mode, pmap) if removals else np.zeros(0)
    P = len(parts)
    res = {k: np.full(P, np.nan) for k in ("3d", "random_3d", "blob_3d", "2d", "random_2d", "blob_2d")}
    acc = {k: [[] for _ in range(P)] for k in res}
    pos = {p: i for i, p in enumerate(parts)}
    for (p, k), s in zip(kinds, sims3):
        acc[k][pos[p]].append(s0 - s)
    for (p, k, _), s in zip(images, sims2):
        acc[k][pos[p]].append(s0 - s)
    for k in res:
        for i in range(P):
            if acc[k][i]:
                res[k][i] = float(np.mean(acc[k][i]))
    nm = names or {}
    return PartEvidence(
        labels=np.asarray(parts, np.int64), names=[str(nm.get(p, f"part {p}")) for p in parts], similarity=s0,
        drop_3d=res["3d"], drop_2d=res["2d"], random_3d=res["random_3d"], blob_3d=res["blob_3d"],
        random_2d=res["random_2d"], blob_2d=res["blob_2d"],
        points_3d=np.asarray([int((sub_lab == p).sum()) for p in parts], np.int64),
        pixels_2d=np.asarray(px_counts, np.int64), mode=mode, seconds=time.perf_counter() - t0,
        note=f"3D: parts removed from the {n} input points ({mode}); 2D: their pixels masked in the view")


# ============================================================================== evaluation
def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC of scores (ties count one half)."""
    pos = np.asarray(pos, np.float64)
    neg = np.asarray(neg, np.float64)
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    from scipy.stats import rankdata

    r = rankdata(allv)
    return float((r[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0) / (pos.size * neg.size))


def _disc_chance(mask: np.ndarray, uv: np.ndarray, radius: float) -> float:
    """Mean over ``uv`` of the share of ``mask``'s pixels within ``radius`` of it (the hit rate of
    an arg-max drawn uniformly from the mask)."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0 or uv.shape[0] == 0:
        return float("nan")
    from scipy.spatial import cKDTree

    tree = cKDTree(np.stack([cols + 0.5, rows + 0.5], axis=1))
    counts = np.asarray([len(x) for x in tree.query_ball_point(uv.astype(np.float64), r=radius)])
    return float(np.mean(counts / rows.size))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def dense_readouts(session, cloud, image, camera, *, view: "ViewCorrespondence | None" = None, mesh=None,
                   labels=None, n_pixels: int = 64, max_points: int = 256, symmetry: bool = True,
                   symmetries=None, seed: int = 0) -> "tuple[DenseSimilarity, dict]":
    """The dense similarity of ``cloud`` and a rendered ``image`` (its ``camera``) with what it is worth
    on this very view, measured as ``crosspoint eval correspondence`` measures a checkpoint:
    ``point_to_pixel_hit`` (visible points whose map peaks within :data:`HIT_RADIUS_PX` at
    :data:`EVAL_SIZE` px of their true pixel) with its ``_chance``, and ``pixel_to_point_auc`` (mean
    over object pixels); ``point_to_pixel_hit_2r`` (within twice the radius) with its chance; with
    per-point part ``labels``, ``misses_on_own_part`` and its chance (see :func:`_miss_parts`); with
    a ``mesh`` (and ``symmetry``), the object's symmetries (``symmetry``: their kind, +Y up) and
    ``point_to_pixel_hit_sym``, ``point_to_pixel_hit_ceiling``, ``point_to_pixel_hit_twin`` (see
    :func:`_symmetry_figures`; ``symmetries``: the object's, when the caller has them from another
    view, else found here). ``cloud``: points in the frame of ``camera`` (an array, or a cloud whose
    model frame it is)."""
    pts = _as_points(cloud)
    if view is None:
        view = view_correspondence(pts, camera, mesh=mesh)
    rng = np.random.default_rng(seed)
    ds = dense_similarity(session, pts.astype(np.float32), image, camera, seed=seed)
    if labels is not None and np.asarray(labels).shape[0] != pts.shape[0]:
        raise AnalysisError(f"{np.asarray(labels).shape[0]} labels for {pts.shape[0]} points")
    sym = None
    if symmetry and mesh is not None:
        from crosspoint.analysis.symmetry import upright_symmetries

        sym = (symmetries if symmetries is not None else upright_symmetries(pts, mesh=mesh), camera, mesh)
        ds.symmetries = sym[0]
    f = _dense_figures(session, pts, labels, image, camera, view, rng=rng, n_pixels=n_pixels, max_points=max_points,
                       n_points=None, seed=seed, ds=ds, symmetry=sym)
    sm = summarize_evaluation([f])  # the eval's own figures, for this one view
    out = {"method": ds.method, "visible_points": f.get("visible_points", 0), "tested": f.get("tested", 0),
           "pixels": len(f.get("pixel_aucs", [])), "symmetry": f.get("symmetry")}
    out.update({k: sm[k] for k in ("point_to_pixel_hit", "point_to_pixel_hit_chance", "point_to_pixel_hit_2r",
                                   "point_to_pixel_hit_2r_chance", "misses_on_own_part", "misses_on_own_part_chance",
                                   "pixel_to_point_auc", "point_to_pixel_hit_sym", "point_to_pixel_hit_ceiling",
                                   "point_to_pixel_hit_twin")})
    out["symmetry_rotations"] = f.get("symmetry_rotations", 0)
    return ds, out


def _dense_figures(session, cloud_pts, labels, image, camera, view: ViewCorrespondence, *, rng, n_pixels: int,
                   max_points: int, n_points: "int | None", seed: int, ds: "DenseSimilarity | None" = None,
                   symmetry: "tuple | None" = None) -> dict:
    """Point -> pixel hit rate (with chance), true-cell top-1 (with chance) and pixel -> points AUC
    for one object view (``ds``: the dense similarity when already computed with these settings).
    ``symmetry``: ``(Symmetries, camera, mesh)`` of the object (:mod:`crosspoint.analysis.symmetry`;
    the camera and mesh as given to :func:`view_correspondence` for ``view``): also the hits up to the
    object's symmetries and the hit rate's ceiling (:func:`_symmetry_figures`)."""
    if ds is None:
        ds = dense_similarity(session, cloud_pts.astype(np.float32), image, camera, n_points=n_points, seed=seed)
    prep = ds.prepared
    # visibility of the model's input points, from the full cloud's view
    vis = view.visible[prep.index]
    S = EVAL_SIZE
    H, W = view.shape
    uv_s = view.uv[prep.index] * np.array([S / W, S / H], np.float32)
    obj_s = _resize_mask(view.object_mask, S)
    vis_idx = np.nonzero(vis)[0]
    out = {"visible_points": int(vis_idx.size)}
    if vis_idx.size == 0:
        return out
    if vis_idx.size > max_points:
        vis_idx = np.sort(rng.choice(vis_idx, max_points, replace=False))
    am = ds.argmax_pixels(vis_idx, size=(S, S), mask=obj_s)
    dist = np.linalg.norm(am - uv_s[vis_idx], axis=1)
    out["hits"] = int(np.count_nonzero(dist <= HIT_RADIUS_PX))
    out["hits_2r"] = int(np.count_nonzero(dist <= 2 * HIT_RADIUS_PX))
    out["tested"] = int(vis_idx.size)
    out["hit_chance"] = _disc_chance(obj_s, uv_s[vis_idx], HIT_RADIUS_PX)
    out["hit_chance_2r"] = _disc_chance(obj_s, uv_s[vis_idx], 2 * HIT_RADIUS_PX)
    if labels is not None:  # where the misses land: on the point's own part, or elsewhere?
        out.update(_miss_parts(np.asarray(labels)[prep.index], vis, uv_s, vis_idx, am, dist))
    if symmetry is not None:
        out.update(_symmetry_figures(symmetry, np.asarray(cloud_pts, np.float64)[prep.index[vis_idx]],
                                     uv_s[vis_idx], am, (H, W)))
    # true cell top-1 (the measure), with chance = 1 / cells under the object
    h, w = ds.grid
    cs = ds.cell_scores(vis_idx).reshape(vis_idx.size, -1)
    cell = (np.clip(np.floor(uv_s[vis_idx, 1] / S * h), 0, h - 1).astype(int) * w
            + np.clip(np.floor(uv_s[vis_idx, 0] / S * w), 0, w - 1).astype(int))
    obj_cells = _resize_mask(view.object_mask, h, w, any_=True).reshape(-1)
    cs_obj = np.where(obj_cells[None], cs, -np.inf)
    out["cell_top1"] = int(np.count_nonzero(np.argmax(cs_obj, axis=1) == cell))
    out["cell_chance"] = float(1.0 / max(1, obj_cells.sum()))
    # pixel -> points AUC: object pixels; positives = visible input points projecting within the
    # hit radius of the pixel, negatives = every other input point
    rows, cols = np.nonzero(view.object_mask)
    aucs = []
    if rows.size:
        pick = rng.choice(rows.size, min(n_pixels, rows.size), replace=False)
        uv_all = view.uv[prep.index]
        r_img = HIT_RADIUS_PX * W / S
        for k in pick:
            u, v = cols[k] + 0.5, rows[k] + 0.5
            d = np.hypot(uv_all[:, 0] - u, uv_all[:, 1] - v)
            pos = vis & (d <= r_img)
            if not pos.any() or pos.all():
                continue
            sc = ds.pixel_scores(u, v)
            aucs.append(_auc(sc[pos], sc[~pos]))
    out["pixel_aucs"] = aucs
    return out


def _symmetry_figures(symmetry: tuple, pts: np.ndarray, uv_true: np.ndarray, am: np.ndarray,
                      shape: "tuple[int, int]") -> dict:
    """What the hit rate means on an object with symmetries (:mod:`crosspoint.analysis.symmetry`).

    ``pts`` ``(T, 3)``: the tested (visible) points, ``uv_true`` their pixels and ``am`` the arg-max
    pixels (both at :data:`EVAL_SIZE`). A rotation ``g`` of the object onto itself moves a point to a
    place that the same view shows identically (the camera moved by ``g`` takes the same picture);
    where ``g(p)`` is visible too (the view's mesh depth buffer), the image cannot say which of the
    places is ``p``. Returns

    * ``hits_sym``: arg-max within the hit radius of ``p``'s pixel or of a visible rotated place's
      (a hit up to the object's rotational symmetries);
    * ``hit_ceiling``: the sum over the points of the hit rate of an oracle that knows every point up
      to those rotations and picks one of its visible places (uniformly over the detected rotations):
      the share of them within the hit radius of ``p``'s own pixel. The strict hit rate cannot be
      expected above it;
    * ``hits_twin``: hits counting mirror images too (a diagnostic: mirror twins are told apart by
      the image's handedness, so these are errors of a flip-invariant model, not ambiguities).
    """
    from crosspoint.analysis.symmetry import equivalent_points

    sym, cam, mesh = symmetry
    t = pts.shape[0]
    out = {"symmetry": sym.kind, "symmetry_motions": len(sym) - 1,
           "symmetry_rotations": int(sym.rotations.size - 1), "hits_sym": 0, "hits_twin": 0, "hit_ceiling": 0.0}
    if t == 0:
        return out
    own_hit = np.linalg.norm(am - uv_true, axis=1) <= HIT_RADIUS_PX
    if len(sym) == 1:
        out["hits_sym"] = out["hits_twin"] = int(np.count_nonzero(own_hit))
        out["hit_ceiling"] = float(t)
        return out
    eq = equivalent_points(sym, pts)[1:]  # (G - 1, T, 3)
    ev = view_correspondence(eq.reshape(-1, 3), cam, mesh=mesh)
    H, W = shape
    uv_e = ev.uv.astype(np.float64).reshape(eq.shape[0], t, 2) * np.array([EVAL_SIZE / W, EVAL_SIZE / H])
    vis_e = ev.visible.reshape(eq.shape[0], t) & np.isfinite(uv_e).all(axis=-1)
    rot = np.isin(np.arange(1, len(sym)), sym.rotations)
    near_am = vis_e & (np.linalg.norm(uv_e - am[None], axis=-1) <= HIT_RADIUS_PX)
    out["hits_sym"] = int(np.count_nonzero(own_hit | near_am[rot].any(axis=0)))
    out["hits_twin"] = int(np.count_nonzero(own_hit | near_am.any(axis=0)))
    near_true = (vis_e & (np.linalg.norm(uv_e - uv_true[None], axis=-1) <= HIT_RADIUS_PX))[rot]
    # the point itself (visible, at distance 0) is one of the places
    out["hit_ceiling"] = float(np.sum((1.0 + near_true.sum(axis=0)) / (1.0 + vis_e[rot].sum(axis=0))))
    return out


def symmetric_twin_at(symmetries, point, view: ViewCorrespondence, pixel,
                      radius_px: float = HIT_RADIUS_PX) -> "str | None":
    """Which symmetry of the object (:func:`crosspoint.analysis.symmetry.upright_symmetries`) moves
    ``point`` ``(3,)`` to a place that ``view`` shows (visible, by its depth buffer) within
    ``radius_px`` (at :data:`EVAL_SIZE`) of ``pixel`` (u, v in the view's pixels): its name
    (rotations before mirror planes), or None. "The peak missed the point but landed on its twin"."""
    from crosspoint.analysis.symmetry import equivalent_points

    if symmetries is None or len(symmetries) < 2:
        return None
    eq = equivalent_points(symmetries, np.asarray(point, np.float64).reshape(1, 3))[1:, 0]
    tv = view_correspondence(eq, view.camera, depth=view.depth_buffer)
    H, W = view.shape
    d = np.hypot((tv.uv[:, 0].astype(np.float64) - pixel[0]) * EVAL_SIZE / W,
                 (tv.uv[:, 1].astype(np.float64) - pixel[1]) * EVAL_SIZE / H)
    ok = np.flatnonzero(tv.visible & (d <= radius_px))
    if ok.size == 0:
        return None
    names = [symmetries.names[1 + i] for i in ok]
    rot = [n for n in names if n.startswith("rotation")]
    return (rot or names)[0]


def _miss_parts(lab: np.ndarray, vis: np.ndarray, uv_s: np.ndarray, vis_idx: np.ndarray, am: np.ndarray,
                dist: np.ndarray) -> dict:
    """For the tested points whose arg-max missed (farther than the hit radius): how many landed on
    the point's own part (``miss_same_part``; the part of a pixel is that of the visible input point
    projecting nearest to it) and the chance of that for a pixel drawn uniformly from the visible
    points (``miss_same_part_chance``, summed over the misses: the share of visible points with the
    missed point's label). A far miss on the own part is a symmetric twin (another leg, the other
    wing), a miss elsewhere a wrong part."""
    from scipy.spatial import cKDTree

    allvis = np.nonzero(vis)[0]
    miss = dist > HIT_RADIUS_PX
    out = {"misses": int(np.count_nonzero(miss)), "miss_same_part": 0, "miss_same_part_chance": 0.0}
    if not miss.any() or allvis.size == 0:
        return out
    _, j = cKDTree(uv_s[allvis].astype(np.float64)).query(am[miss].astype(np.float64))
    own = lab[vis_idx[miss]]
    out["miss_same_part"] = int(np.count_nonzero(lab[allvis[j]] == own))
    share = {int(v): float(np.mean(lab[allvis] == v)) for v in np.unique(own)}
    out["miss_same_part_chance"] = float(sum(share[int(v)] for v in own))
    return out


def _resize_mask(mask: np.ndarray, h: int, w: "int | None" = None, any_: bool = False) -> np.ndarray:
    """A boolean mask resized to ``h`` x ``w`` (nearest; ``any_``: a cell is set when any of its
    pixels is)."""
    w = h if w is None else w
    H, W = mask.shape
    if any_:
        rows = np.minimum((np.arange(H) * h) // H, h - 1)
        cols = np.minimum((np.arange(W) * w) // W, w - 1)
        out = np.zeros((h, w), bool)
        rr, cc = np.nonzero(mask)
        out[rows[rr], cols[cc]] = True
        return out
    ri = np.minimum(((np.arange(h) + 0.5) * H / h).astype(int), H - 1)
    ci = np.minimum(((np.arange(w) + 0.5) * W / w).astype(int), W - 1)
    return mask[np.ix_(ri, ci)]


def evaluate_views(session, objects, *, n_pixels: int = 48, max_points: int = 256, n_random: int = 2,
                   occlusion_mode: str = "repool", heat: bool = True, occlusion: bool = True,
                   symmetry: bool = True, n_points: "int | None" = None, seed: int = 0, progress: Progress = None,
                   cancel: Cancel = None) -> dict:
    """The correspondence figures of ``session`` on ``objects``: each a dict ``{"points" (N, 3),
    "labels" (N,) part labels, "image", "camera", "mesh" (optional), "name", "other_image"
    (optional: another object's view, for specificity)}``. Returns per-object records and their
    summary (:func:`summarize_evaluation`). ``heat``: also the Grad-CAM readouts
    (:func:`crosspoint.analysis.heatmap.heat_readouts`); ``occlusion``: also the part occlusion
    evidence (objects with labels; without it the labels only say where the dense misses land)."""
    from crosspoint.analysis.heatmap import heat_readouts

    rng = np.random.default_rng(seed)
    records = []
    total = len(objects)
    for i, obj in enumerate(objects):
        check_cancel(cancel, "correspondence evaluation")
        t0 = time.perf_counter()
        pts = _as_points(obj["points"])
        arr = _image_array(obj["image"])
        cam = as_pinhole(obj["camera"])
        if (cam.height, cam.width) != arr.shape[:2]:
            cam = cam.scaled(arr.shape[1], arr.shape[0])
        view_cam = obj["camera"] if cam.width == getattr(obj["camera"], "size", -1) else cam
        view = view_correspondence(pts, view_cam, mesh=obj.get("mesh"))
        rec = {"name": obj.get("name", f"object {i}"), "visible_fraction": float(view.visible.mean())}
        if obj.get("class") is not None:
            rec["class"] = str(obj["class"])
        sym = None
        if symmetry and obj.get("mesh") is not None:
            from crosspoint.analysis.symmetry import upright_symmetries

            sym = (upright_symmetries(pts, mesh=obj["mesh"]), view_cam, obj["mesh"])
        rec.update(_dense_figures(session, pts, obj.get("labels"), arr, cam, view, rng=rng, n_pixels=n_pixels,
                                  max_points=max_points, n_points=n_points, seed=seed, symmetry=sym))
        if occlusion and obj.get("labels") is not None:
            ev = part_occlusion(session, pts, arr, cam, obj["labels"], names=obj.get("part_names"), view=view,
                                n_random=n_random, mode=occlusion_mode, n_points=n_points, seed=seed)
            rec["parts"] = ev.rows()
            rec["similarity"] = ev.similarity
            rec["top_3d"], rec["top_2d"], rec["agree"] = ev.top_part("3d"), ev.top_part("2d"), ev.agree
            rec["n_parts_compared"] = int(np.count_nonzero(np.isfinite(ev.drop_2d)))
            rec["occlusion_seconds"] = ev.seconds
        if heat:
            rec["heat"] = heat_readouts(session, pts, arr, cam, view=view, other_image=obj.get("other_image"),
                                        n_random=n_random, n_points=n_points, seed=seed)
        rec["seconds"] = time.perf_counter() - t0
        records.append(rec)
        report(progress, i + 1, total, f"{i + 1}/{total} objects")
    return {"objects": records, "summary": summarize_evaluation(records)}


def _nanmean(xs) -> float:
    a = np.asarray([x for x in xs if x is not None], np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def summarize_evaluation(records: "list[dict]") -> dict:
    """The headline figures over objects: ``point_to_pixel_hit`` (and ``_chance``), ``cell_top1``
    (and ``_chance``), ``pixel_to_point_auc``, the part-importance agreement (and its chance, the
    mean of 1 / parts compared), the mean drops per side with their baselines, and the Grad-CAM
    readouts' means."""
    hits = sum(r.get("hits", 0) for r in records)
    tested = sum(r.get("tested", 0) for r in records)
    cell = sum(r.get("cell_top1", 0) for r in records)
    aucs = [a for r in records for a in r.get("pixel_aucs", [])]
    out = {
        "objects": len(records),
        "point_to_pixel_hit": hits / tested if tested else float("nan"),
        "point_to_pixel_hit_chance": _nanmean(r.get("hit_chance") for r in records),
        "point_to_pixel_hit_2r": sum(r.get("hits_2r", 0) for r in records) / tested if tested else float("nan"),
        "point_to_pixel_hit_2r_chance": _nanmean(r.get("hit_chance_2r") for r in records),
        "points_tested": tested,
        "cell_top1": cell / tested if tested else float("nan"),
        "cell_top1_chance": _nanmean(r.get("cell_chance") for r in records),
        "pixel_to_point_auc": _nanmean(aucs),
        "pixels_tested": len(aucs),
        "visible_fraction": _nanmean(r.get("visible_fraction") for r in records),
    }
    sym = [r for r in records if "hits_sym" in r]
    t_sym = sum(r.get("tested", 0) for r in sym)
    out["point_to_pixel_hit_sym"] = sum(r["hits_sym"] for r in sym) / t_sym if t_sym else float("nan")
    out["point_to_pixel_hit_ceiling"] = sum(r["hit_ceiling"] for r in sym) / t_sym if t_sym else float("nan")
    out["point_to_pixel_hit_twin"] = sum(r["hits_twin"] for r in sym) / t_sym if t_sym else float("nan")
    out["rotation_symmetric_objects"] = (float(np.mean([r.get("symmetry_rotations", 0) > 0 for r in sym]))
                                         if sym else float("nan"))
    by_class: dict = {}
    for r in records:
        if r.get("class") is not None and r.get("tested"):
            c = by_class.setdefault(r["class"], {"objects": 0, "tested": 0, "hits": 0, "hits_sym": 0,
                                                 "hits_twin": 0, "hit_ceiling": 0.0, "symmetry": []})
            c["objects"] += 1
            c["tested"] += r["tested"]
            c["hits"] += r.get("hits", 0)
            if "hits_sym" in r:
                c["hits_sym"] += r["hits_sym"]
                c["hits_twin"] += r["hits_twin"]
                c["hit_ceiling"] += r["hit_ceiling"]
                c["symmetry"].append(r["symmetry"])
    out["by_class"] = {k: {"objects": v["objects"], "tested": v["tested"],
                           "point_to_pixel_hit": v["hits"] / v["tested"],
                           **({"point_to_pixel_hit_sym": v["hits_sym"] / v["tested"],
                               "point_to_pixel_hit_ceiling": v["hit_ceiling"] / v["tested"],
                               "point_to_pixel_hit_twin": v["hits_twin"] / v["tested"],
                               "symmetry": v["symmetry"]} if v["symmetry"] else {})}
                       for k, v in sorted(by_class.items())}
    misses = sum(r.get("misses", 0) for r in records if "miss_same_part" in r)
    out["misses_on_own_part"] = (sum(r["miss_same_part"] for r in records if "miss_same_part" in r) / misses
                                 if misses else float("nan"))
    out["misses_on_own_part_chance"] = (sum(r["miss_same_part_chance"] for r in records if "miss_same_part" in r)
                                        / misses if misses else float("nan"))
    ag = [r for r in records if r.get("agree") is not None and r.get("n_parts_compared", 0) >= 2]
    out["part_agreement"] = float(np.mean([r["agree"] for r in ag])) if ag else float("nan")
    out["part_agreement_chance"] = float(np.mean([1.0 / r["n_parts_compared"] for r in ag])) if ag else float("nan")
    out["part_agreement_objects"] = len(ag)
    parts = [p for r in records for p in r.get("parts", [])]
    for key in ("drop_3d", "random_3d", "blob_3d", "drop_2d", "random_2d", "blob_2d"):
        out[f"part_{key}"] = _nanmean(p[key] for p in parts)
    # share of parts whose drop beats the blob baseline of the same size
    for side in ("3d", "2d"):
        ok = [p for p in parts if np.isfinite(p[f"drop_{side}"]) and np.isfinite(p[f"blob_{side}"])]
        out[f"part_beats_blob_{side}"] = (float(np.mean([p[f"drop_{side}"] > p[f"blob_{side}"] for p in ok]))
                                          if ok else float("nan"))
    heats = [r["heat"] for r in records if r.get("heat")]
    if heats:
        for key in heats[0]:
            if isinstance(heats[0][key], (int, float)):
                out[f"heat_{key}"] = _nanmean(h.get(key) for h in heats)
        curves = [h["deletion_curve"] for h in heats if "deletion_curve" in h]
        if curves:
            out["heat_deletion_curve"] = {
                "fractions": curves[0]["fractions"],
                **{k: np.nanmean(np.asarray([c[k] for c in curves], np.float64), axis=0).tolist()
                   for k in ("top", "blob", "random")}}
    return out
