"""The pinhole camera on a sphere around the object, its conventions, and :func:`fit_distance`.

See :mod:`crosspoint.render` for the conventions (world frame, camera placement, pixels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_FOV = 25.0
"""Field of view in degrees (ShapeNetRendering records 25 for every view)."""
DEFAULT_ELEVATION_RANGE = (25.0, 30.0)
"""Elevation range of ShapeNetRendering's views, in degrees."""
NEAR = 1e-3
"""Geometry closer to the camera than this (in world units) is not drawn."""


def fit_distance(radius: float = 1.0, fov: float = DEFAULT_FOV, margin: float = 1.0) -> float:
    """Camera distance at which a sphere of ``radius`` at the origin just fits in the frame.

    ``margin > 1`` leaves room around it. For the unit sphere at 25 degrees this is about 4.62.
    """
    return float(margin * radius / math.sin(math.radians(fov) / 2.0))


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
