"""Shading: colours, the light, and :func:`render_mesh` (z-buffered, Lambert + ambient, two-sided)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from .camera import Camera
from .raster import kernels, min_buffers, resolve

if TYPE_CHECKING:  # pragma: no cover
    from crosspoint.pointcloud import Mesh

DEFAULT_MESH_COLOR = (0.78, 0.78, 0.80)


def as_rgb(colors, n: int, what: str) -> np.ndarray:
    """``(n, 3)`` float64 RGB in [0, 1] from one colour or ``n`` colours (floats 0..1, or 0-255 integers)."""
    c = np.asarray(colors)
    if c.ndim == 1:
        c = np.broadcast_to(c.reshape(1, -1), (n, c.shape[0]))
    if c.ndim != 2 or c.shape[0] != n or c.shape[1] not in (3, 4):
        raise ValueError(f"{what} must be (3,) or ({n}, 3) RGB, got shape {np.shape(colors)}")
    c = c[:, :3]
    if c.dtype == np.uint8 or (np.issubdtype(c.dtype, np.integer) and c.size and c.max() > 1):
        return c.astype(np.float64) / 255.0  # 0-255 colours
    return np.clip(c.astype(np.float64), 0.0, 1.0)


def light_dir_camera(camera: Camera, light) -> np.ndarray:
    """Unit vector from the surface towards the light, in camera coordinates."""
    if light is None or (isinstance(light, str) and light == "headlight"):
        to_light = np.array([-0.35, -0.45, -1.0])  # from the camera, a little above and to the left
    else:
        to_light = np.asarray(light, np.float64).reshape(3)  # world direction towards the light
        to_light = camera._rotation() @ to_light
    n = np.linalg.norm(to_light)
    if not n > 0:
        raise ValueError(f"light direction must be non-zero, got {light!r}")
    return to_light / n


def unit_face_normals(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(F, 3)`` unit normals of triangles (zero for degenerate ones)."""
    n = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    ln = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, ln, out=np.zeros_like(n), where=ln > 0)


def compose(ss_rgb: np.ndarray, covered: np.ndarray, ss: int, background) -> np.ndarray:
    """The output RGBA image of shaded samples: :func:`~crosspoint.render.raster.resolve` with
    ``background`` (None for transparent, or an RGB) parsed."""
    bg = None if background is None else as_rgb(background, 1, "background")[0]
    return resolve(ss_rgb, covered, ss, bg)


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
    raster = kernels()[0]
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
            n = unit_face_normals(vertices, faces)[fi]
        else:
            raise ValueError(f"shading must be 'auto', 'flat' or 'smooth', got {shading!r}")
        n = n @ rot.T
        ln = np.linalg.norm(n, axis=1, keepdims=True)
        n = np.divide(n, ln, out=np.zeros_like(n), where=ln > 0)
        lam = np.abs(n @ light_dir_camera(camera, light))
        intensity = ambient + (1.0 - ambient) * lam

        if face_colors is not None:
            base = as_rgb(face_colors, nf, "face_colors")[fi]
        else:
            if colors is None:
                colors = getattr(mesh, "vertex_colors", None)
            if colors is None:
                base = np.broadcast_to(np.asarray(DEFAULT_MESH_COLOR), (fi.shape[0], 3))
            else:
                c = np.asarray(colors)
                if c.ndim == 1:
                    base = np.broadcast_to(as_rgb(c, 1, "colors")[0], (fi.shape[0], 3))
                elif c.shape[0] == nv:
                    vc = as_rgb(c, nv, "colors")
                    base = w0 * vc[tri[:, 0]] + w1 * vc[tri[:, 1]] + w2 * vc[tri[:, 2]]
                elif c.shape[0] == nf:
                    base = as_rgb(c, nf, "colors")[fi]
                else:
                    raise ValueError(
                        f"colors must be (3,), ({nv}, 3) per vertex or ({nf}, 3) per face, got {c.shape}"
                    )
        rgb[covered] = np.clip(base * intensity[:, None], 0.0, 1.0)

    image = compose(rgb, covered, ss, background)
    if not return_buffers:
        return image
    depth, face_index = min_buffers(zbuf, fbuf, ss)
    return image, {"depth": depth, "face_index": face_index}
