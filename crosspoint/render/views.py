"""View cameras around an object and :func:`render_views`, which renders an object from them."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence, Union

import numpy as np

from .camera import DEFAULT_ELEVATION_RANGE, DEFAULT_FOV, Camera, fit_distance
from .shading import render_mesh
from .splats import render_points

if TYPE_CHECKING:  # pragma: no cover
    from crosspoint.pointcloud import Mesh, PointCloud

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
