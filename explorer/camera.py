"""The 3D view's camera as a plain model: numpy only, no Qt, no OpenGL, testable anywhere.

:class:`OrbitCamera` holds the whole camera state (target, distance, orientation, field of view,
viewport) and implements the interaction (orbit about the world up axis and the camera's right
axis, pan in the image plane, dolly zoom, reset to a framing of the object), the projection of
world points to pixels and point picking. The Open3D renderer (:mod:`explorer.o3d_renderer`) only
draws with the model's ``intrinsic()`` and ``extrinsic()``; it decides nothing about the camera.

Conventions: world-to-camera ``extrinsic`` (4x4) in the OpenCV/Open3D camera frame (x right, y
down, z forward); ``intrinsic`` the pinhole matrix of a ``width`` x ``height`` viewport with the
principal point at the centre (``(w - 1) / 2``, as Open3D requires); pixel coordinates x right, y
down, origin at the top-left pixel's centre.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["OrbitCamera", "rotation_about"]


def rotation_about(axis, angle: float) -> np.ndarray:
    """The 3x3 rotation by ``angle`` radians about ``axis`` (right-handed, Rodrigues)."""
    a = np.asarray(axis, np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def _look_rotation(forward, world_up) -> np.ndarray:
    """World-to-camera rotation (rows: right, down, forward) looking along ``forward``."""
    f = np.asarray(forward, np.float64)
    f = f / np.linalg.norm(f)
    right = np.cross(f, world_up)
    if np.linalg.norm(right) < 1e-9:  # looking straight along the up axis: any right will do
        right = np.cross(f, np.roll(world_up, 1))
    right /= np.linalg.norm(right)
    down = np.cross(f, right)
    return np.stack([right, down, f])


@dataclass
class OrbitCamera:
    """A camera orbiting ``target`` at ``distance`` (see the module docstring)."""

    width: int = 800
    height: int = 600
    fov_deg: float = 60.0  # vertical field of view (Open3D's default; look_from changes it, reset restores it)
    target: np.ndarray = field(default_factory=lambda: np.zeros(3))
    distance: float = 3.0
    rotation: np.ndarray = field(default_factory=lambda: np.diag([1.0, -1.0, -1.0]))  # world-to-camera
    up_axis: int = 1  # 1: +Y up (ShapeNet), 2: +Z up
    #: orthographic (parallel) projection, as Open3D's pinhole camera can draw it: the view through a field
    #: of view of ORTHO_FOV_DEG from as far as keeps the target's plane the same size (~132 times the
    #: distance from 60 degrees): a point at depth dz from the target is scaled by 1 / (1 + dz / that),
    #: under 1 % for an object that fills the view (tests/test_camera.py)
    ortho: bool = False
    ORTHO_FOV_DEG = 0.5
    DEFAULT_FOV = 60.0
    #: degrees of orbit per pixel dragged
    ORBIT_DEG_PER_PX = 0.3
    #: the closest the camera may look along the up axis (cosine), so the orbit never flips over the pole
    MAX_POLE_COS = 0.995
    #: a three-quarter view from the front right and slightly above (object -> camera, +Y up)
    DEFAULT_FRONT = (0.55, 0.45, 1.0)
    #: the framed object's bounding sphere fills this fraction of the shorter field of view
    FILL = 0.9

    # -- state --------------------------------------------------------------------------------
    @property
    def world_up(self) -> np.ndarray:
        return np.array([0.0, 0.0, 1.0]) if self.up_axis == 2 else np.array([0.0, 1.0, 0.0])

    @property
    def forward(self) -> np.ndarray:
        return self.rotation[2].copy()

    def effective_fov(self) -> float:
        """The vertical field of view drawn with (:attr:`ORTHO_FOV_DEG` in orthographic mode)."""
        return self.ORTHO_FOV_DEG if self.ortho else self.fov_deg

    def effective_distance(self) -> float:
        """How far the drawing camera is from the target: in orthographic mode, as far as keeps the
        target's plane at the size the perspective view has."""
        if not self.ortho:
            return self.distance
        return self.distance * np.tan(np.radians(self.fov_deg) / 2.0) / np.tan(np.radians(self.ORTHO_FOV_DEG) / 2.0)

    @property
    def center(self) -> np.ndarray:
        """The camera's position in world coordinates."""
        return self.target - self.effective_distance() * self.rotation[2]

    def focal(self) -> float:
        return (self.height / 2.0) / np.tan(np.radians(self.effective_fov()) / 2.0)

    def intrinsic(self) -> np.ndarray:
        f = self.focal()
        return np.array([[f, 0.0, (self.width - 1) / 2.0], [0.0, f, (self.height - 1) / 2.0], [0.0, 0.0, 1.0]])

    def extrinsic(self) -> np.ndarray:
        e = np.eye(4)
        e[:3, :3] = self.rotation
        e[:3, 3] = -self.rotation @ self.center
        return e

    def set_extrinsic(self, extrinsic) -> None:
        """Take a world-to-camera pose (keeping the orbit distance: the target moves in front of it)."""
        e = np.asarray(extrinsic, np.float64)
        r = e[:3, :3]
        u, _, vt = np.linalg.svd(r)  # the nearest rotation (poses read back from GL drift a little)
        r = u @ vt
        center = -r.T @ e[:3, 3]
        self.rotation = r
        self.target = center + self.effective_distance() * r[2]

    def resize(self, width: int, height: int) -> None:
        self.width, self.height = max(1, int(width)), max(1, int(height))

    def state(self) -> dict:
        """Plain values (JSON-able) that :meth:`restore` takes back."""
        return {"target": self.target.tolist(), "distance": float(self.distance),
                "rotation": self.rotation.tolist(), "fov_deg": float(self.fov_deg), "up_axis": int(self.up_axis),
                "ortho": bool(self.ortho)}

    def restore(self, state: dict) -> None:
        self.target = np.asarray(state["target"], np.float64)
        self.distance = float(state["distance"])
        self.rotation = np.asarray(state["rotation"], np.float64)
        self.fov_deg = float(state.get("fov_deg", self.fov_deg))
        self.up_axis = int(state.get("up_axis", self.up_axis))
        self.ortho = bool(state.get("ortho", self.ortho))

    # -- interaction --------------------------------------------------------------------------
    def reset(self, points=None, *, center=None, radius: float | None = None) -> None:
        """Frame ``points`` (or the sphere ``center``/``radius``) from :attr:`DEFAULT_FRONT`, the up axis up."""
        if points is not None and len(points):
            p = np.asarray(points, np.float64).reshape(-1, 3)
            p = p[np.isfinite(p).all(axis=1)]
            if len(p):
                lo, hi = p.min(0), p.max(0)
                center = (lo + hi) / 2.0
                radius = float(np.linalg.norm(hi - lo)) / 2.0
        center = np.zeros(3) if center is None else np.asarray(center, np.float64)
        radius = 1.0 if not radius or not np.isfinite(radius) else float(radius)
        front = np.asarray(self.DEFAULT_FRONT, np.float64)
        if self.up_axis == 2:  # the same view of a Z-up object: (x, y, z) -> (x, -z, y)
            front = np.array([front[0], -front[2], front[1]])
        self.rotation = _look_rotation(-front, self.world_up)
        self.fov_deg = self.DEFAULT_FOV
        self.target = center
        half_v = np.radians(self.fov_deg) / 2.0
        half_h = np.arctan(np.tan(half_v) * self.width / max(1, self.height))
        self.distance = radius / (self.FILL * np.sin(min(half_v, half_h)))

    #: standard views: the direction from the object to the camera in a +Y-up frame (ShapeNet: the
    #: object's front faces +Z); for a +Z-up object the same views of it (x, y, z) -> (x, -z, y)
    STANDARD_VIEWS = {"front": (0.0, 0.0, 1.0), "back": (0.0, 0.0, -1.0), "right": (1.0, 0.0, 0.0),
                      "left": (-1.0, 0.0, 0.0), "top": (0.0, 1.0, 0.0), "bottom": (0.0, -1.0, 0.0)}

    def standard_view(self, name: str) -> None:
        """Look at the target from one of :attr:`STANDARD_VIEWS` (keeping the distance); "top" and
        "bottom" look along the up axis with the object's front at the bottom / top of the image."""
        if name not in self.STANDARD_VIEWS:
            raise ValueError(f"unknown view {name!r}; choose one of {', '.join(self.STANDARD_VIEWS)}")
        front = np.asarray(self.STANDARD_VIEWS[name], np.float64)
        up_ref = np.array([0.0, 0.0, -1.0]) if name == "top" else (
            np.array([0.0, 0.0, 1.0]) if name == "bottom" else np.array([0.0, 1.0, 0.0]))
        if self.up_axis == 2:
            front = np.array([front[0], -front[2], front[1]])
            up_ref = np.array([up_ref[0], -up_ref[2], up_ref[1]])
        self.rotation = _look_rotation(-front, up_ref)

    def look_from(self, extrinsic, image_fov_deg: float, *, image_aspect: float = 1.0, focus=None) -> None:
        """Take another camera's pose (world-to-camera ``extrinsic``, OpenCV frame, possibly times a
        uniform scale) and field of view
        (vertical ``image_fov_deg`` of an image ``image_aspect`` = width / height), widened as needed
        so that its whole image fits this viewport: "look from this 2D view". The orbit target becomes
        the point on the view axis nearest ``focus`` (default: the current target)."""
        e = np.asarray(extrinsic, np.float64)
        u, sv, vt = np.linalg.svd(e[:3, :3])
        r = u @ vt
        # a uniform scale in the pose (the renderer normalises the object into its unit sphere) changes
        # no pixel: [sR | t] and [R | t/s] project alike, so the camera centre is -R^T t / s
        center = -r.T @ e[:3, 3] / float(sv.mean())
        half_v = np.radians(float(image_fov_deg)) / 2.0
        half_h = np.arctan(np.tan(half_v) * float(image_aspect))
        vp = self.width / max(1, self.height)
        # the vertical half-angle that shows the image's full height and full width in this viewport
        need = max(np.tan(half_v), np.tan(half_h) / vp)
        self.fov_deg = float(np.degrees(2.0 * np.arctan(need)))
        focus = self.target if focus is None else np.asarray(focus, np.float64)
        self.rotation = r
        self.ortho = False  # a rendered view is a perspective one
        self.distance = float(max((focus - center) @ r[2], 1e-6))
        self.target = center + self.distance * r[2]

    def orbit(self, dx: float, dy: float) -> None:
        """Drag by ``(dx, dy)`` pixels: turn about the world up axis (dx) and tilt about the camera's
        right axis (dy), about the target; never over the pole."""
        rate = np.radians(self.ORBIT_DEG_PER_PX)
        q = rotation_about(self.world_up, -float(dx) * rate)
        r = self.rotation @ q.T
        tilt = r @ rotation_about(r[0], float(dy) * rate).T
        if abs(tilt[2] @ self.world_up) <= self.MAX_POLE_COS:
            r = tilt
        self.rotation = r

    def pan(self, dx: float, dy: float) -> None:
        """Drag by ``(dx, dy)`` pixels: the point under the cursor follows it (at the target's depth)."""
        s = self.effective_distance() / self.focal()
        self.target = self.target - s * (float(dx) * self.rotation[0] + float(dy) * self.rotation[1])

    def zoom(self, steps: float) -> None:
        """Positive steps move closer (10 % of the distance per step)."""
        self.distance = float(np.clip(self.distance * 0.9 ** float(steps), 1e-6, 1e9))

    # -- geometry -----------------------------------------------------------------------------
    def project(self, points) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates ``(N, 2)`` and camera depth ``(N,)`` of world points."""
        p = np.asarray(points, np.float64).reshape(-1, 3)
        cam = p @ self.rotation.T + (self.extrinsic()[:3, 3])
        z = cam[:, 2]
        k = self.intrinsic()
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = cam[:, :2] / z[:, None] * np.array([k[0, 0], k[1, 1]]) + np.array([k[0, 2], k[1, 2]])
        return uv, z

    def pick(self, x: float, y: float, points, *, radius: float = 12.0) -> int | None:
        """Index of the point drawn nearest to pixel ``(x, y)`` within ``radius`` pixels (the nearest
        to the camera among candidates within 2 px of the best); None when there is none."""
        if points is None or len(points) == 0:
            return None
        uv, z = self.project(points)
        d2 = (uv[:, 0] - x) ** 2 + (uv[:, 1] - y) ** 2
        ok = (z > 0) & (d2 <= radius * radius)
        if not ok.any():
            return None
        cand = np.flatnonzero(ok)
        best = d2[cand].min()
        close = cand[d2[cand] <= best + 4.0]
        return int(close[np.argmin(z[close])])
