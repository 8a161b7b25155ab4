"""Open3D's legacy ``Visualizer`` driven offscreen, one frame at a time.

Open3D cannot be embedded in Qt as a native widget, so the 3D view renders with one long-lived
hidden ``Visualizer`` owned by the GUI thread and shows the frames in a Qt widget
(:mod:`explorer.viewer3d`). This module holds no Qt code.

Backend: Open3D picks a hidden GLX window when an X display exists and EGL offscreen otherwise.
On this project's software-GL machines EGL reads frames back 2-3x faster than GLX under Xvfb
(100k points: ~18 ms vs ~50 ms), so by default the renderer hides ``DISPLAY`` while the window is
created, which makes Open3D take EGL; if EGL fails it retries with the display (GLX).
``CROSSPOINT_O3D_BACKEND=glx`` forces the display route, ``egl`` forces EGL.

Open3D's hidden window cannot be resized, so :meth:`OffscreenRenderer.resize` recreates it
(a few ms with EGL) and restores the camera.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from explorer.camera import OrbitCamera

log = logging.getLogger(__name__)

_CREATE_LOCK = threading.Lock()


def load_llvm_users_first() -> None:
    """Import Triton (when installed) before any OpenGL context exists.

    Triton ships its own LLVM; torch imports it lazily (``torch._dynamo``, reached by importing
    ``torchvision.ops`` when a checkpoint is loaded). Loading it *after* Mesa's llvmpipe has been
    initialised by an OpenGL context segfaults the process (measured: Open3D EGL frame, then
    ``import torchvision.models`` -> SIGSEGV in ``triton/knobs.py``); loaded first, both work.
    """
    try:
        import triton  # noqa: F401
    except Exception:  # not installed (CPU wheels) or broken: nothing to protect against
        pass


load_llvm_users_first()


@contextmanager
def _hidden_display():
    saved = {k: os.environ.pop(k) for k in ("DISPLAY", "WAYLAND_DISPLAY") if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _skip_plotly_import() -> None:
    """Open3D's ``visualization`` package imports ``draw_plotly``, which imports Dash and Plotly:
    1.3 of the 1.8 s that ``import open3d`` takes on 2 cores, before the first frame, for functions
    this app never calls. Register a stand-in that loads the real module only if one of them is
    called (``get_plotly_fig``, ``draw_plotly``, ``draw_plotly_server``). No effect once Open3D
    is imported."""
    import importlib.util
    import sys
    import types

    name = "open3d.visualization.draw_plotly"
    if "open3d" in sys.modules or name in sys.modules:
        return
    spec = importlib.util.find_spec("open3d")
    if spec is None or not spec.submodule_search_locations:
        return
    from pathlib import Path

    path = Path(list(spec.submodule_search_locations)[0]) / "visualization" / "draw_plotly.py"
    if not path.is_file():
        return
    stub = types.ModuleType(name)
    stub.__file__ = str(path)

    def real():
        mod_spec = importlib.util.spec_from_file_location(name + "_real", path)
        mod = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(mod)
        return mod

    def forward(attr):
        def call(*args, **kwargs):
            return getattr(real(), attr)(*args, **kwargs)

        call.__name__ = attr
        return call

    for attr in ("get_plotly_fig", "draw_plotly", "draw_plotly_server"):
        setattr(stub, attr, forward(attr))
    sys.modules[name] = stub


def import_open3d():
    """Import Open3D (without its Plotly part) on the calling thread and return it.

    Open3D's ``__init__`` walks ``sys.modules`` (``_insert_pybind_names``); a module imported by
    another thread during that walk raises "dictionary changed size during iteration" and the 3D
    view is lost for the session (seen in CI under load: the screenshot command's first frame
    imported Open3D while a worker thread read the file). The app therefore imports it in
    :func:`explorer.app.create_app`, before any worker thread exists."""
    _skip_plotly_import()
    import open3d

    return open3d


#: eye-dome lighting: the neighbours' distance in pixels and the strength of the shading (chosen by eye on
#: the demo's sparse splats: stronger turns whole surfaces black, radius 2 doubles the rims)
EDL_RADIUS = 1
EDL_STRENGTH = 80.0
_EDL_KERNEL = None


def _edl_kernel():
    """The numba kernel of :func:`eye_dome_lighting` (compiled once, cached on disk)."""
    global _EDL_KERNEL
    if _EDL_KERNEL is None:
        import numba

        @numba.njit(parallel=True, cache=True)
        def kernel(rgb, depth, radius, strength, out):
            h, w = depth.shape
            for y in numba.prange(h):
                for x in range(w):
                    z = depth[y, x]
                    if z <= 0.0:
                        for c in range(3):
                            out[y, x, c] = rgb[y, x, c]
                        continue
                    lz = np.log(z)
                    s = 0.0
                    for dy in (-radius, 0, radius):
                        for dx in (-radius, 0, radius):
                            if dy == 0 and dx == 0:
                                continue
                            yy = min(max(y + dy, 0), h - 1)
                            xx = min(max(x + dx, 0), w - 1)
                            zn = depth[yy, xx]
                            if zn > 0.0:
                                d = lz - np.log(zn)
                                if d > 0.0:
                                    s += d
                    f = np.exp(-strength * s / 8.0)
                    for c in range(3):
                        out[y, x, c] = np.uint8(rgb[y, x, c] * f + 0.5)
        _EDL_KERNEL = kernel
    return _EDL_KERNEL


def eye_dome_lighting(rgb: np.ndarray, depth: np.ndarray, *, radius: int = EDL_RADIUS,
                      strength: float = EDL_STRENGTH) -> np.ndarray:
    """Eye-dome lighting (Boucheny 2009, as CloudCompare and Potree shade point clouds): each pixel is
    darkened by ``exp(-strength * mean_n max(0, log z - log z_n))`` over its 8 neighbours ``radius``
    pixels away, so a surface behind a nearer one gets a dark rim and depth reads without normals.
    ``depth``: camera depth per pixel, 0 where nothing was drawn (left as it is). Pixels whose
    neighbours are all as far or farther keep their colour exactly."""
    out = np.empty_like(rgb)
    _edl_kernel()(np.ascontiguousarray(rgb), np.ascontiguousarray(depth, np.float32), int(radius), float(strength),
                  out)
    return out


class RendererUnavailable(RuntimeError):
    """Open3D could not create an offscreen OpenGL context (no EGL and no display)."""


@dataclass
class CameraState:
    """A snapshot of the current view's pinhole camera: ``K`` (3x3) and world-to-camera ``extrinsic``
    (4x4), as :class:`explorer.camera.OrbitCamera` produced them."""

    intrinsic: np.ndarray
    extrinsic: np.ndarray
    width: int
    height: int

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates ``(N, 2)`` (x right, y down) and camera depth ``(N,)`` of world points."""
        p = np.asarray(points, np.float64)
        cam = p @ self.extrinsic[:3, :3].T + self.extrinsic[:3, 3]
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = (cam[:, :2] / z[:, None]) * np.array([self.intrinsic[0, 0], self.intrinsic[1, 1]]) + np.array(
                [self.intrinsic[0, 2], self.intrinsic[1, 2]]
            )
        return uv, z


class OffscreenRenderer:
    """Renders point clouds (and optionally a mesh) with Open3D into numpy frames."""

    def __init__(self, width: int = 800, height: int = 600, *, background=(0.11, 0.12, 0.14),
                 point_size: float = 3.0, backend: str | None = None):
        o3d = import_open3d()

        self._o3d = o3d
        self.width, self.height = max(16, int(width)), max(16, int(height))
        self.background = np.asarray(background, np.float64)
        self.point_size = float(point_size)
        self.backend = (backend or os.environ.get("CROSSPOINT_O3D_BACKEND", "auto")).lower()
        self._vis = None
        self._pcd = None
        self._mesh = None
        self._marker = None
        self._layers: list = []  # other objects drawn with this one (the Objects list's checkboxes)
        self._show_mesh = False
        self._has_view = False
        self.edl = False  # eye-dome lighting (see eye_dome_lighting)
        self.used_backend = None
        self.cam = OrbitCamera(self.width, self.height)  # the camera model: every pose comes from it
        self._create()

    # -- lifetime -------------------------------------------------------------------------------
    def _create(self) -> None:
        o3d = self._o3d
        o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
        with _CREATE_LOCK:
            attempts = ["egl", "display"] if self.backend == "auto" else (
                ["egl"] if self.backend == "egl" else ["display"])
            for how in attempts:
                vis = o3d.visualization.Visualizer()
                if how == "egl":
                    with _hidden_display():
                        ok = vis.create_window(window_name="crosspoint", width=self.width, height=self.height,
                                               visible=False)
                else:
                    ok = vis.create_window(window_name="crosspoint", width=self.width, height=self.height,
                                           visible=False)
                if ok:
                    self._vis = vis
                    self.used_backend = how
                    break
                log.info("Open3D could not create a %s window", how)
            else:
                raise RendererUnavailable(
                    "Open3D could not create an offscreen OpenGL context (tried "
                    + ", ".join(attempts) + "). Install the Mesa EGL/GL libraries "
                    "(scripts/install-system-deps.sh) or run under a display.")
        opt = self._vis.get_render_option()
        opt.background_color = self.background
        opt.point_size = self.point_size
        opt.light_on = True
        opt.mesh_show_back_face = True

    def close(self) -> None:
        if self._vis is not None:
            try:
                self._vis.clear_geometries()
                self._vis.destroy_window()
            finally:
                self._vis = None

    def __del__(self):  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:
            pass

    @property
    def alive(self) -> bool:
        return self._vis is not None

    # -- scene ----------------------------------------------------------------------------------
    def set_points(self, points: np.ndarray, colors: np.ndarray, *, mesh=None, reset_view: bool = True) -> None:
        """Replace the scene with ``points`` ``(N, 3)`` coloured by ``colors`` ``(N, 3)`` in [0, 1]."""
        o3d = self._o3d
        pts = np.ascontiguousarray(points, np.float64)
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
        pcd.colors = o3d.utility.Vector3dVector(np.ascontiguousarray(colors, np.float64))
        self._vis.clear_geometries()
        self._pcd = pcd
        self._mesh = None
        self._marker = self._degenerate_marker(pts)
        if mesh is not None and mesh.n_faces > 0:
            m = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(mesh.vertices.astype(np.float64)),
                                          o3d.utility.Vector3iVector(mesh.faces.astype(np.int32)))
            m.compute_vertex_normals()
            if mesh.vertex_colors is not None:
                m.vertex_colors = o3d.utility.Vector3dVector(mesh.vertex_colors.astype(np.float64))
            else:
                m.paint_uniform_color([0.72, 0.74, 0.78])
            self._mesh = m
        keep = not reset_view and self._has_view
        self._vis.add_geometry(pcd, reset_bounding_box=True)
        if self._marker is not None:
            self._vis.add_geometry(self._marker, reset_bounding_box=True)  # widens the frame
        if self._show_mesh and self._mesh is not None:
            self._vis.add_geometry(self._mesh, reset_bounding_box=False)
        for g in self._layers:
            self._vis.add_geometry(g, reset_bounding_box=False)
        if keep:
            self._apply_camera()  # adding geometry resets Open3D's own camera; the model's pose stands
        else:
            self.reset_view()
        self._has_view = True

    #: A cloud whose bounding box is smaller than this fraction of its distance from the origin (at least
    #: 1 unit) is one location: 1 point, or N identical points.
    DEGENERATE_REL_EXTENT = 1e-6
    #: The frame drawn around such a location spans this many units (scaled up far from the origin, where
    #: float32 coordinates are coarse): Open3D fits its camera to the scene's bounding box, and a box of
    #: size 0 gives a camera at the point itself, which draws nothing.
    MIN_EXTENT = 1.0

    @classmethod
    def degenerate_center(cls, points: np.ndarray) -> np.ndarray | None:
        """The single location of ``points`` when they are all (numerically) at one place, else None."""
        pts = np.asarray(points, np.float64)
        if pts.ndim != 2 or len(pts) == 0:
            return None
        finite = pts[np.isfinite(pts).all(axis=1)]
        if len(finite) == 0:
            return None
        lo, hi = finite.min(axis=0), finite.max(axis=0)
        center = 0.5 * (lo + hi)
        scale = max(1.0, float(np.abs(center).max()))
        return center if float((hi - lo).max()) <= cls.DEGENERATE_REL_EXTENT * scale else None

    def _degenerate_marker(self, points: np.ndarray):
        """For a cloud at one location: a small 3D cross through it (x red, y green, z blue) inside an
        undrawn box of ``MIN_EXTENT``, so the camera has a usable frame and the point a visible mark."""
        center = self.degenerate_center(points)
        if center is None:
            return None
        o3d = self._o3d
        extent = self.MIN_EXTENT * max(1.0, 1e-3 * float(np.abs(center).max()))
        half, arm = 0.5 * extent, 0.05 * extent
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64) * half
        # arms along +x +y +z -x -y -z, each from a small gap (the point itself stays visible) to ``arm``
        dirs = np.concatenate([np.eye(3), -np.eye(3)])
        verts = center + np.concatenate([corners, dirs * 0.3 * arm, dirs * arm])
        # only the cross is drawn: the corners have no lines and only widen the bounding box
        lines = np.array([[8 + i, 14 + i] for i in range(6)], np.int32)
        ls = o3d.geometry.LineSet(o3d.utility.Vector3dVector(verts), o3d.utility.Vector2iVector(lines))
        axis_rgb = np.array([[0.85, 0.35, 0.35], [0.40, 0.80, 0.40], [0.40, 0.55, 0.95]], np.float64)
        ls.colors = o3d.utility.Vector3dVector(np.concatenate([axis_rgb, axis_rgb]))
        return ls

    @property
    def has_marker(self) -> bool:
        """Whether the scene is one location drawn with a marker (see ``_degenerate_marker``)."""
        return self._marker is not None

    def set_layers(self, layers) -> None:
        """Other clouds drawn with the current one: ``[(points (N, 3), colours (N, 3))]`` (replaces the
        previous ones; the camera and the framing stay the current object's)."""
        o3d = self._o3d
        for g in self._layers:
            self._vis.remove_geometry(g, reset_bounding_box=False)
        self._layers = []
        for pts, cols in layers:
            g = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.ascontiguousarray(pts, np.float64)))
            g.colors = o3d.utility.Vector3dVector(np.ascontiguousarray(cols, np.float64))
            self._vis.add_geometry(g, reset_bounding_box=False)
            self._layers.append(g)
        if self._has_view:
            self._apply_camera()  # adding geometry resets Open3D's own camera; the model's pose stands

    def set_colors(self, colors: np.ndarray) -> None:
        if self._pcd is None:
            return
        self._pcd.colors = self._o3d.utility.Vector3dVector(np.ascontiguousarray(colors, np.float64))
        self._vis.update_geometry(self._pcd)

    def set_show_mesh(self, show: bool) -> None:
        show = bool(show)
        if show == self._show_mesh:
            return
        self._show_mesh = show
        if self._mesh is None:
            return
        if show:
            self._vis.add_geometry(self._mesh, reset_bounding_box=False)
        else:
            self._vis.remove_geometry(self._mesh, reset_bounding_box=False)

    @property
    def has_mesh(self) -> bool:
        return self._mesh is not None

    def set_point_size(self, size: float) -> None:
        self.point_size = float(np.clip(size, 1.0, 25.0))
        self._vis.get_render_option().point_size = self.point_size

    def set_background(self, rgb) -> None:
        self.background = np.asarray(rgb, np.float64)
        self._vis.get_render_option().background_color = self.background

    # -- camera ---------------------------------------------------------------------------------
    # The pose lives in ``self.cam`` (:class:`explorer.camera.OrbitCamera`, a plain model); these
    # methods change the model and hand its pinhole parameters to Open3D, which only draws.
    @property
    def up_axis(self) -> int:
        return self.cam.up_axis

    @up_axis.setter
    def up_axis(self, axis: int) -> None:
        self.cam.up_axis = int(axis)

    def _apply_camera(self) -> None:
        vc = self._vis.get_view_control()
        p = vc.convert_to_pinhole_camera_parameters()
        k = self.cam.intrinsic()
        p.intrinsic.set_intrinsics(self.width, self.height, k[0, 0], k[1, 1], k[0, 2], k[1, 2])
        p.extrinsic = self.cam.extrinsic()
        vc.convert_from_pinhole_camera_parameters(p, allow_arbitrary=True)

    def rotate(self, dx: float, dy: float) -> None:
        self.cam.orbit(dx, dy)
        self._apply_camera()

    def pan(self, dx: float, dy: float) -> None:
        self.cam.pan(dx, dy)
        self._apply_camera()

    def zoom(self, steps: float) -> None:
        """Positive steps zoom in."""
        self.cam.zoom(steps)
        self._apply_camera()

    def _framed_points(self) -> np.ndarray | None:
        parts = [np.asarray(g.points) for g in (self._pcd, self._marker)
                 if g is not None and hasattr(g, "points") and len(g.points)]
        if self._marker is not None and not hasattr(self._marker, "points"):
            box = self._marker.get_axis_aligned_bounding_box()
            parts.append(np.stack([box.get_min_bound(), box.get_max_bound()]))
        return np.concatenate(parts) if parts else None

    def reset_view(self, *, with_layers: bool = False) -> None:
        """Frame the current object (``with_layers``: and the other objects drawn beside it)."""
        self.cam.resize(self.width, self.height)
        pts = self._framed_points()
        if with_layers and self._layers:
            parts = [np.asarray(g.points) for g in self._layers if len(g.points)]
            pts = np.concatenate(([pts] if pts is not None else []) + parts) if parts else pts
        self.cam.reset(pts)
        if self._vis is not None:
            self._apply_camera()

    def standard_view(self, name: str) -> None:
        self.cam.standard_view(name)
        self._apply_camera()

    def look_from(self, extrinsic, image_fov_deg: float, *, image_aspect: float = 1.0) -> None:
        """Put the 3D camera where another camera is (a rendered 2D view's), see :meth:`OrbitCamera.look_from`."""
        pts = self._framed_points()
        focus = None
        if pts is not None and len(pts):
            focus = (pts.min(axis=0) + pts.max(axis=0)) / 2.0
        self.cam.look_from(extrinsic, image_fov_deg, image_aspect=image_aspect, focus=focus)
        self._apply_camera()

    def camera(self) -> CameraState:
        return CameraState(self.cam.intrinsic(), self.cam.extrinsic(), self.width, self.height)

    def set_camera_extrinsic(self, extrinsic: np.ndarray) -> None:
        self.cam.set_extrinsic(extrinsic)
        self._apply_camera()

    def resize(self, width: int, height: int) -> None:
        """Recreate the hidden window at a new size, keeping the scene and the camera pose."""
        width, height = max(16, int(width)), max(16, int(height))
        if (width, height) == (self.width, self.height):
            return
        self.close()
        self.width, self.height = width, height
        self.cam.resize(width, height)
        self._create()
        if self._pcd is not None:
            self._vis.add_geometry(self._pcd, reset_bounding_box=True)
            if self._marker is not None:
                self._vis.add_geometry(self._marker, reset_bounding_box=True)  # widens the frame
            if self._show_mesh and self._mesh is not None:
                self._vis.add_geometry(self._mesh, reset_bounding_box=False)
            for g in self._layers:
                self._vis.add_geometry(g, reset_bounding_box=False)
            self._apply_camera()

    # -- frames ---------------------------------------------------------------------------------
    def render(self) -> np.ndarray:
        """Render and read back one frame as ``(H, W, 3)`` uint8."""
        vis = self._vis
        vis.poll_events()
        vis.update_renderer()
        buf = np.asarray(vis.capture_screen_float_buffer(do_render=False))
        frame = np.empty(buf.shape, np.uint8)
        np.multiply(buf, 255.0, out=buf, casting="unsafe")
        np.clip(buf, 0, 255, out=buf)
        frame[...] = buf
        if self.edl:
            depth = np.asarray(vis.capture_depth_float_buffer(do_render=False))
            frame = eye_dome_lighting(frame, depth)
        return frame

    def pick(self, x: float, y: float, points: np.ndarray, *, radius: float = 12.0) -> int | None:
        """Index of the point drawn nearest to pixel ``(x, y)`` (:meth:`OrbitCamera.pick`)."""
        return self.cam.pick(x, y, points, radius=radius)
