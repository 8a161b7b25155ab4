"""Software rendering of meshes and point clouds into 2D views (the images CrossPoint's image encoder sees).

Everything here is a CPU rasteriser (numba loops for the per-pixel work, numpy for the rest): no
OpenGL, no display, no GPU, so it runs headless in DataLoader worker processes on a cluster and
gives bit-identical images for identical inputs.

Conventions
-----------
World frame
    +Y is up (the ShapeNet convention; the training augmentation rotates about +Y). The camera
    always looks at the origin.
Camera placement (:class:`Camera`)
    ``azimuth`` and ``elevation`` in degrees, ``distance`` in world units (after the optional
    normalisation, see below). The eye sits at
    ``distance * (cos(el) cos(az), sin(el), cos(el) sin(az))`` -- the formula Pixel2Mesh and
    DISN use to read 3D-R2N2's ``rendering_metadata.txt`` -- so azimuth 0 looks from +X towards
    the origin and elevation 90 looks straight down. ``in_plane_rotation`` rolls the image
    about the viewing axis (0 in everything we write, as in 3D-R2N2).
Field of view
    ``fov`` is the full vertical (= horizontal; images are square) angle in degrees. The
    default is 25 degrees, the value 3D-R2N2's ShapeNetRendering records for every view.
Distance
    :func:`fit_distance` gives the distance at which a sphere of a given radius just fits in the
    frame: about 4.62 for the unit sphere at 25 degrees. :func:`render_views` uses it with a 5%
    margin by default (4.85), so a unit-sphere-normalised object never leaves the image.
Camera frame and pixels
    :meth:`Camera.view_matrix` maps world points to camera coordinates in the OpenCV (and
    Open3D extrinsic) convention: x right, y down, z forward, so depth is positive in front of
    the camera. :meth:`Camera.intrinsics` is the 3x3 pinhole matrix ``K`` for that frame.
    Pixel coordinates ``(u, v)``: u grows to the right, v grows downwards, and pixel ``(row i,
    column j)`` covers ``[j, j + 1) x [i, i + 1)``, so its centre is at ``(j + 0.5, i + 0.5)``
    and the principal point is ``(size / 2, size / 2)``. A point with projection ``(u, v)``
    lands in pixel ``image[int(v), int(u)]``.
Normalisation
    :func:`render_mesh` and :func:`render_points` draw the geometry exactly as given, mapped
    into the camera through the camera's object transform ``(p - center) / scale``
    (``Camera.center``, ``Camera.scale``; identity by default). :func:`render_views`
    normalises the object into the unit sphere (``crosspoint.geometry.normalize_unit_sphere``)
    by putting that transform into every camera it returns -- the geometry itself is not
    copied -- so ``camera.project(points)`` takes the caller's original coordinates and lands
    where the renderer drew them. Pass ``normalize=False`` for geometry that is already
    normalised (the demo dataset is).
Images
    ``(H, W, 4)`` uint8 RGBA, straight (not premultiplied) alpha; empty pixels are
    ``(0, 0, 0, 0)`` like ShapeNetRendering's PNGs. ``background=(r, g, b)`` composites onto
    an opaque colour instead. Anti-aliasing renders at 2x and averages 2x2 blocks.

Metadata on disk (:func:`write_views`, :func:`read_view_metadata`), as in 3D-R2N2's
ShapeNetRendering: a ``rendering/`` folder with ``00.png, 01.png, ...``, ``renderings.txt``
(one PNG name per line) and ``rendering_metadata.txt`` (one line per view:
``azimuth elevation in_plane_rotation distance fov``). Our ``distance`` is in the units of the
normalised object; 3D-R2N2's files hold a ratio of their maximum camera distance instead. When
the cameras carry an object transform, a third file ``normalization.txt`` (``cx cy cz scale``)
records it.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from crosspoint.pointcloud import Mesh, PointCloud

log = logging.getLogger(__name__)

DEFAULT_FOV = 25.0
"""Field of view in degrees (ShapeNetRendering records 25 for every view)."""
DEFAULT_ELEVATION_RANGE = (25.0, 30.0)
"""Elevation range of ShapeNetRendering's views, in degrees."""
NEAR = 1e-3
"""Geometry closer to the camera than this (in world units) is not drawn."""

RENDERINGS_TXT = "renderings.txt"
METADATA_TXT = "rendering_metadata.txt"
NORMALIZATION_TXT = "normalization.txt"

DEFAULT_MESH_COLOR = (0.78, 0.78, 0.80)
DEFAULT_POINT_COLOR = (0.55, 0.72, 0.95)

__all__ = [
    "Camera",
    "fit_distance",
    "render_mesh",
    "render_points",
    "render_views",
    "write_views",
    "read_view_metadata",
    "view_cameras",
    "DEFAULT_FOV",
    "DEFAULT_ELEVATION_RANGE",
]


def fit_distance(radius: float = 1.0, fov: float = DEFAULT_FOV, margin: float = 1.0) -> float:
    """Camera distance at which a sphere of ``radius`` at the origin just fits in the frame.

    ``margin > 1`` leaves room around it. For the unit sphere at 25 degrees this is about 4.62.
    """
    return float(margin * radius / math.sin(math.radians(fov) / 2.0))


# --------------------------------------------------------------------------------------------
# Camera
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Camera:
    """A pinhole camera on a sphere around the origin, looking at it, +Y up. See the module doc.

    ``center`` and ``scale`` are the object transform applied before viewing: world points map
    to ``(p - center) / scale``. :func:`render_views` fills them when it normalises an object
    into the unit sphere; they are the identity otherwise.
    """

    azimuth: float = 0.0
    elevation: float = 0.0
    distance: float = 4.62
    fov: float = DEFAULT_FOV
    size: int = 224
    in_plane_rotation: float = 0.0
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "center", tuple(float(c) for c in self.center))
        if self.size < 1:
            raise ValueError(f"camera image size must be >= 1, got {self.size}")
        if not (0.0 < self.fov < 180.0):
            raise ValueError(f"camera fov must be in (0, 180) degrees, got {self.fov}")
        if not self.distance > 0:
            raise ValueError(f"camera distance must be > 0, got {self.distance}")
        if not self.scale > 0:
            raise ValueError(f"camera object scale must be > 0, got {self.scale}")

    # -- geometry ---------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return self.size

    @property
    def height(self) -> int:
        return self.size

    def position(self) -> np.ndarray:
        """The eye in the normalised object frame, ``(3,)`` float64."""
        az, el = math.radians(self.azimuth), math.radians(self.elevation)
        return np.array(
            [math.cos(el) * math.cos(az), math.sin(el), math.cos(el) * math.sin(az)], np.float64
        ) * float(self.distance)

    def model_matrix(self) -> np.ndarray:
        """4x4 float64: world -> normalised object frame, ``(p - center) / scale``."""
        m = np.eye(4)
        s = 1.0 / float(self.scale)
        m[:3, :3] *= s
        m[:3, 3] = -np.asarray(self.center, np.float64) * s
        return m

    def _rotation(self) -> np.ndarray:
        eye = self.position()
        forward = -eye / np.linalg.norm(eye)  # camera +z, towards the origin
        up = np.array([0.0, 1.0, 0.0])
        right = np.cross(forward, up)
        if np.linalg.norm(right) < 1e-9:  # looking straight down or up: image "up" is -Z
            right = np.cross(forward, np.array([0.0, 0.0, -1.0]))
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)  # camera +y (image down)
        r = np.stack([right, down, forward])
        if self.in_plane_rotation:
            a = math.radians(self.in_plane_rotation)
            c, s = math.cos(a), math.sin(a)
            r = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]) @ r
        return r

    def view_matrix(self) -> np.ndarray:
        """4x4 float64 world -> camera (OpenCV: x right, y down, z forward), object transform included."""
        r = self._rotation()
        v = np.eye(4)
        v[:3, :3] = r
        v[:3, 3] = -r @ self.position()
        return v @ self.model_matrix()

    def focal_px(self) -> float:
        return 0.5 * self.size / math.tan(math.radians(self.fov) / 2.0)

    def intrinsics(self) -> np.ndarray:
        """3x3 float64 ``K``: ``(u, v, 1) ~ K @ p_cam`` with pixel centres at ``+0.5``."""
        f = self.focal_px()
        c = 0.5 * self.size
        return np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]])

    def _project64(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.asarray(points, np.float64).reshape(-1, 3)
        v = self.view_matrix()
        cam = p @ v[:3, :3].T + v[:3, 3]
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            f = self.focal_px()
            c = 0.5 * self.size
            uv = np.stack([c + f * cam[:, 0] / z, c + f * cam[:, 1] / z], axis=1)
        return uv, z

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points ``(N, 3)`` -> pixel coordinates ``uv (N, 2)`` and depth ``(N,)``, float32.

        Depth is the camera-frame z (positive in front; it is in normalised units when the
        camera carries an object transform). Points at or behind the camera get non-finite or
        meaningless ``uv``: check ``depth > 0``. ``image[int(v), int(u)]`` is the pixel a point
        falls in (see the module doc for the pixel convention).
        """
        uv, z = self._project64(points)
        return uv.astype(np.float32), z.astype(np.float32)

    # -- metadata ---------------------------------------------------------------------------
    def metadata_line(self) -> str:
        """``azimuth elevation in_plane_rotation distance fov``, 3D-R2N2 style, exact round trip."""
        vals = (self.azimuth, self.elevation, self.in_plane_rotation, self.distance, self.fov)
        return " ".join(repr(float(x)) for x in vals)

    @classmethod
    def from_metadata_line(cls, line: str, size: int, **kw) -> "Camera":
        parts = line.split()
        if len(parts) < 5:
            raise ValueError(f"expected 'azimuth elevation in_plane_rotation distance fov', got {line!r}")
        az, el, roll, dist, fov = (float(x) for x in parts[:5])
        return cls(azimuth=az, elevation=el, in_plane_rotation=roll, distance=dist, fov=fov, size=size, **kw)


# --------------------------------------------------------------------------------------------
# numba kernels (compiled on first use, cached on disk)
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _kernels():
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


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _as_rgb(colors, n: int, what: str) -> np.ndarray:
    c = np.asarray(colors)
    if c.ndim == 1:
        c = np.broadcast_to(c.reshape(1, -1), (n, c.shape[0]))
    if c.ndim != 2 or c.shape[0] != n or c.shape[1] not in (3, 4):
        raise ValueError(f"{what} must be (3,) or ({n}, 3) RGB, got shape {np.shape(colors)}")
    c = c[:, :3]
    if c.dtype == np.uint8 or (np.issubdtype(c.dtype, np.integer) and c.size and c.max() > 1):
        return c.astype(np.float64) / 255.0  # 0-255 colours
    return np.clip(c.astype(np.float64), 0.0, 1.0)


def _light_dir_camera(camera: Camera, light) -> np.ndarray:
    """Unit vector from the surface towards the light, in camera coordinates."""
    if light is None or (isinstance(light, str) and light == "headlight"):
        l = np.array([-0.35, -0.45, -1.0])  # from the camera, a little above and to the left
    else:
        l = np.asarray(light, np.float64).reshape(3)  # world direction towards the light
        l = camera._rotation() @ l
    n = np.linalg.norm(l)
    if not n > 0:
        raise ValueError(f"light direction must be non-zero, got {light!r}")
    return l / n


def _resolve(ss_rgb: np.ndarray, covered: np.ndarray, ss: int, background) -> np.ndarray:
    """Average ss x ss blocks: alpha = coverage, RGB = mean colour of covered samples."""
    h2, w2 = covered.shape
    out = np.empty((h2 // ss, w2 // ss, 4), np.uint8)
    if background is None:
        bg, has_bg = np.zeros(3), False
    else:
        bg, has_bg = _as_rgb(background, 1, "background")[0], True
    _kernels()[2](ss_rgb, covered, int(ss), bg, has_bg, out)
    return out


def _min_buffers(zbuf: np.ndarray, idx: np.ndarray, ss: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel, the nearest of its ss x ss samples: depth (inf = empty) and index (-1)."""
    h2, w2 = zbuf.shape
    h, w = h2 // ss, w2 // ss
    zb = zbuf.reshape(h, ss, w, ss).transpose(0, 2, 1, 3).reshape(h, w, ss * ss)
    ib = idx.reshape(h, ss, w, ss).transpose(0, 2, 1, 3).reshape(h, w, ss * ss)
    k = np.argmin(zb, axis=2)[..., None]
    depth = np.take_along_axis(zb, k, axis=2)[..., 0].astype(np.float32)
    index = np.take_along_axis(ib, k, axis=2)[..., 0].astype(np.int32)
    return depth, index


def _face_normals(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    n = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    ln = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, ln, out=np.zeros_like(n), where=ln > 0)


# --------------------------------------------------------------------------------------------
# mesh
# --------------------------------------------------------------------------------------------


def render_mesh(
    mesh: "Mesh",
    camera: Camera,
    *,
    colors: np.ndarray | Sequence[float] | None = None,
    face_colors: np.ndarray | None = None,
    background: Sequence[float] | None = None,
    light: str | Sequence[float] = "headlight",
    ambient: float = 0.35,
    shading: str = "auto",
    antialias: bool = True,
    return_buffers: bool = False,
):
    """Shade a triangle mesh as seen by ``camera``: ``(H, W, 4)`` uint8 RGBA.

    Z-buffered rasterisation of every triangle (no back-face culling: open meshes and
    inconsistent windings render correctly), Lambert + ambient shading, two-sided.

    - ``colors``: one RGB for the whole mesh, or per vertex ``(V, 3)`` (interpolated), or per
      face ``(F, 3)``; floats in ``[0, 1]``, or 0-255 integers (uint8 always reads as 0-255).
      When ``V == F`` a ``(V, 3)`` array is taken per vertex: pass ``face_colors`` to say per
      face (part colours). Default: the mesh's ``vertex_colors`` if any, else light grey.
    - ``light``: ``"headlight"`` (from the camera, slightly above-left; the default) or a world
      direction towards a fixed key light, e.g. ``(1, 2, 1)``.
    - ``shading``: ``"flat"`` (face normals), ``"smooth"`` (interpolated vertex normals; the
      mesh's ``vertex_normals``, else area-weighted face normals), ``"auto"`` (smooth when the
      mesh carries vertex normals, flat otherwise).
    - ``antialias``: render at 2x and average (alpha holds coverage at the edges).
    - ``background``: ``None`` for transparent, or an RGB to composite onto.
    - ``return_buffers``: also return ``{"depth": (H, W) float32 camera depth (inf where
      empty), "face_index": (H, W) int32 (-1 where empty)}``; per output pixel, the nearest of
      its samples.

    Geometry is drawn as given, through the camera's object transform (see module doc).
    """
    raster = _kernels()[0]
    vertices = np.asarray(mesh.vertices, np.float64).reshape(-1, 3)
    faces = np.ascontiguousarray(np.asarray(mesh.faces, np.int64).reshape(-1, 3))
    nv, nf = vertices.shape[0], faces.shape[0]
    if nf and (faces.min() < 0 or faces.max() >= nv):
        raise ValueError(f"mesh faces index vertices outside 0..{nv - 1}")
    ss = 2 if antialias else 1
    size = camera.size * ss

    uv, z = camera._project64(vertices)
    uv = np.ascontiguousarray(uv * ss)
    zbuf = np.full((size, size), np.inf)
    fbuf = np.full((size, size), -1, np.int32)
    b1 = np.zeros((size, size), np.float32)
    b2 = np.zeros((size, size), np.float32)
    if nf:
        raster(uv, np.ascontiguousarray(z), faces, zbuf, fbuf, b1, b2)

    covered = fbuf >= 0
    rgb = np.zeros((size, size, 3), np.float32)
    if covered.any():
        fi = fbuf[covered].astype(np.int64)
        w1 = b1[covered][:, None].astype(np.float64)
        w2 = b2[covered][:, None].astype(np.float64)
        w0 = 1.0 - w1 - w2
        tri = faces[fi]
        # normals in camera coordinates
        rot = camera.view_matrix()[:3, :3]  # similarity: rotation / scale; normalised below
        mode = shading
        if mode == "auto":
            mode = "smooth" if getattr(mesh, "vertex_normals", None) is not None else "flat"
        if mode == "smooth":
            vn = getattr(mesh, "vertex_normals", None)
            if vn is None:
                fn_world = np.cross(
                    vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]]
                )
                vn = np.zeros_like(vertices)
                for k in range(3):
                    np.add.at(vn, faces[:, k], fn_world)
            vn = np.asarray(vn, np.float64).reshape(-1, 3)
            n = w0 * vn[tri[:, 0]] + w1 * vn[tri[:, 1]] + w2 * vn[tri[:, 2]]
        elif mode == "flat":
            n = _face_normals(vertices, faces)[fi]
        else:
            raise ValueError(f"shading must be 'auto', 'flat' or 'smooth', got {shading!r}")
        n = n @ rot.T
        ln = np.linalg.norm(n, axis=1, keepdims=True)
        n = np.divide(n, ln, out=np.zeros_like(n), where=ln > 0)
        l = _light_dir_camera(camera, light)
        lam = np.abs(n @ l)
        intensity = ambient + (1.0 - ambient) * lam

        if face_colors is not None:
            base = _as_rgb(face_colors, nf, "face_colors")[fi]
        else:
            if colors is None:
                colors = getattr(mesh, "vertex_colors", None)
            if colors is None:
                base = np.broadcast_to(np.asarray(DEFAULT_MESH_COLOR), (fi.shape[0], 3))
            else:
                c = np.asarray(colors)
                if c.ndim == 1:
                    base = np.broadcast_to(_as_rgb(c, 1, "colors")[0], (fi.shape[0], 3))
                elif c.shape[0] == nv:
                    vc = _as_rgb(c, nv, "colors")
                    base = w0 * vc[tri[:, 0]] + w1 * vc[tri[:, 1]] + w2 * vc[tri[:, 2]]
                elif c.shape[0] == nf:
                    base = _as_rgb(c, nf, "colors")[fi]
                else:
                    raise ValueError(
                        f"colors must be (3,), ({nv}, 3) per vertex or ({nf}, 3) per face, got {c.shape}"
                    )
        rgb[covered] = np.clip(base * intensity[:, None], 0.0, 1.0)

    image = _resolve(rgb, covered, ss, background)
    if not return_buffers:
        return image
    depth, face_index = _min_buffers(zbuf, fbuf, ss)
    return image, {"depth": depth, "face_index": face_index}


# --------------------------------------------------------------------------------------------
# points
# --------------------------------------------------------------------------------------------


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
    splat = _kernels()[1]
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
            lam = np.abs(nc @ _light_dir_camera(camera, light))
            bright = bright * (0.45 + 0.55 * lam)
        if colors is None:
            base = np.broadcast_to(np.asarray(DEFAULT_POINT_COLOR), (idx.shape[0], 3))
        else:
            c = np.asarray(colors)
            if c.ndim == 1:
                base = np.broadcast_to(_as_rgb(c, 1, "colors")[0], (idx.shape[0], 3))
            else:
                base = _as_rgb(c, n, "colors")[idx]
        rgb[covered] = np.clip(base * bright[:, None], 0.0, 1.0)

    image = _resolve(rgb, covered, ss, background)
    if not return_buffers:
        return image
    depth, index = _min_buffers(zbuf, ibuf, ss)
    return image, {"depth": depth, "point_index": index}


# --------------------------------------------------------------------------------------------
# views
# --------------------------------------------------------------------------------------------

Renderable = Union["Mesh", "PointCloud", np.ndarray]


def view_cameras(
    n_views: int,
    *,
    size: int = 137,
    seed: int | np.random.Generator = 0,
    elevation_range: tuple[float, float] = DEFAULT_ELEVATION_RANGE,
    distance: float | None = None,
    fov: float = DEFAULT_FOV,
    center: Sequence[float] = (0.0, 0.0, 0.0),
    scale: float = 1.0,
) -> list[Camera]:
    """``n_views`` cameras around the origin, deterministic for ``seed``.

    Azimuths are stratified: a random start, then equal steps of ``360 / n_views`` each
    jittered by up to a quarter step, so every side is seen. Elevations are uniform in
    ``elevation_range``. Angles are rounded to 1e-3 degrees so the metadata text round-trips
    exactly. ``distance`` defaults to :func:`fit_distance` for the unit sphere with a 5% margin.
    """
    if n_views < 1:
        raise ValueError(f"n_views must be >= 1, got {n_views}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    lo, hi = (float(elevation_range[0]), float(elevation_range[1]))
    if lo > hi:
        lo, hi = hi, lo
    if distance is None:
        distance = round(fit_distance(1.0, fov, margin=1.05), 4)
    step = 360.0 / n_views
    start = rng.uniform(0.0, 360.0)
    jitter = rng.uniform(-0.25, 0.25, size=n_views) * step
    elev = rng.uniform(lo, hi, size=n_views)
    cams = []
    for i in range(n_views):
        az = round(float((start + i * step + jitter[i]) % 360.0), 3)
        cams.append(
            Camera(
                azimuth=az,
                elevation=round(float(elev[i]), 3),
                distance=float(distance),
                fov=float(fov),
                size=int(size),
                center=tuple(float(c) for c in center),
                scale=float(scale),
            )
        )
    return cams


def _unit_sphere_transform(points: np.ndarray) -> tuple[tuple[float, float, float], float]:
    from crosspoint.geometry import normalize_unit_sphere

    pts = np.asarray(points, np.float32).reshape(-1, 3)
    if pts.shape[0] == 0:
        return (0.0, 0.0, 0.0), 1.0
    _, center, scale = normalize_unit_sphere(pts)
    center = tuple(float(c) for c in np.asarray(center, np.float64).reshape(3))
    scale = float(np.asarray(scale, np.float64).reshape(()))
    if not (scale > 0 and math.isfinite(scale)):
        scale = 1.0
    return center, scale


def render_views(
    obj: Renderable,
    n_views: int,
    *,
    size: int = 137,
    seed: int | np.random.Generator = 0,
    elevation_range: tuple[float, float] = DEFAULT_ELEVATION_RANGE,
    distance: float | None = None,
    fov: float = DEFAULT_FOV,
    normalize: bool = True,
    as_points: bool = False,
    colors=None,
    face_colors=None,
    point_radius_px: float | None = None,
    background=None,
    antialias: bool = True,
) -> list[tuple[np.ndarray, Camera]]:
    """Render ``n_views`` views of a mesh or point cloud: a list of ``(image, camera)``.

    ``obj``: a :class:`~crosspoint.pointcloud.Mesh` (shaded), a
    :class:`~crosspoint.pointcloud.PointCloud` (its mesh when it has one and ``as_points`` is
    false, else splats of its points with its colours and normals), or an ``(N, 3)`` array
    (splats). Cameras come from :func:`view_cameras` (deterministic for ``seed``; ShapeNet-
    Rendering-like elevations of 25-30 degrees and fov 25 by default). With ``normalize`` the
    object is fitted into the unit sphere through the cameras' object transform, so the
    returned cameras project the caller's coordinates (see module doc).
    """
    from crosspoint.pointcloud import Mesh, PointCloud

    mesh = None
    pts = None
    pt_colors = colors
    pt_normals = None
    if isinstance(obj, Mesh):
        mesh = obj
    elif isinstance(obj, PointCloud):
        if obj.mesh is not None and not as_points:
            mesh = obj.mesh
        else:
            pts = obj.points
            if pt_colors is None:
                pt_colors = obj.colors
            pt_normals = obj.normals
    else:
        pts = np.asarray(obj, np.float32).reshape(-1, 3)
    if mesh is not None and as_points:
        pts = mesh.vertices
        mesh = None

    geom = mesh.vertices if mesh is not None else pts
    center, scale = _unit_sphere_transform(geom) if normalize else ((0.0, 0.0, 0.0), 1.0)
    cams = view_cameras(
        n_views,
        size=size,
        seed=seed,
        elevation_range=elevation_range,
        distance=distance,
        fov=fov,
        center=center,
        scale=scale,
    )
    out = []
    for cam in cams:
        if mesh is not None:
            img = render_mesh(mesh, cam, colors=colors, face_colors=face_colors, background=background, antialias=antialias)
        else:
            img = render_points(
                pts,
                cam,
                colors=pt_colors,
                normals=pt_normals,
                point_radius_px=point_radius_px,
                background=background,
                antialias=antialias,
            )
        out.append((img, cam))
    return out


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


def _png_bytes(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    mode = "RGBA" if image.shape[-1] == 4 else "RGB"
    # PIL writes no timestamps into PNGs: identical pixels give identical bytes.
    Image.fromarray(np.ascontiguousarray(image), mode).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def write_views(directory: str | Path, views: Sequence[tuple[np.ndarray, Camera]]) -> list[Path]:
    """Write views as 3D-R2N2 does: ``00.png, 01.png, ...``, ``renderings.txt``, ``rendering_metadata.txt``.

    ``directory`` is the ``rendering/`` folder itself (created if missing). When the cameras
    carry an object transform (non-identity ``center``/``scale``), ``normalization.txt``
    (``cx cy cz scale``) records it. Returns the PNG paths.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    width = max(2, len(str(len(views) - 1)))
    names, lines, paths = [], [], []
    for i, (img, cam) in enumerate(views):
        name = f"{i:0{width}d}.png"
        (d / name).write_bytes(_png_bytes(np.asarray(img)))
        names.append(name)
        lines.append(cam.metadata_line())
        paths.append(d / name)
    (d / RENDERINGS_TXT).write_text("".join(n + "\n" for n in names))
    (d / METADATA_TXT).write_text("".join(ln + "\n" for ln in lines))
    norm = d / NORMALIZATION_TXT
    if views:
        cam0 = views[0][1]
        if any(c.center != cam0.center or c.scale != cam0.scale for _, c in views):
            raise ValueError("views of one rendering folder must share one object transform")
        if cam0.center != (0.0, 0.0, 0.0) or cam0.scale != 1.0:
            norm.write_text(" ".join(repr(float(x)) for x in (*cam0.center, cam0.scale)) + "\n")
        elif norm.exists():
            norm.unlink()
    return paths


def read_view_metadata(directory: str | Path, size: int | None = None) -> list[Camera]:
    """The cameras of an existing ``rendering/`` folder (ours or 3D-R2N2's ShapeNetRendering).

    ``size`` defaults to the size of the first PNG listed in ``renderings.txt`` (137 when there
    is none). Raises ``ValueError`` naming the file when the metadata is missing or malformed.
    """
    d = Path(directory)
    meta = d / METADATA_TXT
    if not meta.is_file():
        raise ValueError(f"{meta}: no such file (not a rendering folder?)")
    if size is None:
        size = 137
        names_file = d / RENDERINGS_TXT
        names = names_file.read_text().split() if names_file.is_file() else sorted(p.name for p in d.glob("*.png"))
        if names and (d / names[0]).is_file():
            from PIL import Image

            with Image.open(d / names[0]) as im:
                size = int(im.size[0])
    kw = {}
    norm = d / NORMALIZATION_TXT
    if norm.is_file():
        try:
            cx, cy, cz, s = (float(x) for x in norm.read_text().split()[:4])
        except ValueError as e:
            raise ValueError(f"{norm}: expected 'cx cy cz scale' ({e})") from None
        kw = {"center": (cx, cy, cz), "scale": s}
    cams = []
    for k, line in enumerate(meta.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            cams.append(Camera.from_metadata_line(line, size, **kw))
        except ValueError as e:
            raise ValueError(f"{meta}, line {k}: {e}") from None
    return cams
