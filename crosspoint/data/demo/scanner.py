"""ScanObjectNN-style partial scans of the demo objects: a simulated depth camera.

:func:`scan_object` places a depth camera at a random azimuth, elevation and distance around an
object (unit sphere, +Y up), optionally surrounds the object with clutter (a floor patch, boxes,
sometimes a wall), and ray-casts the scene with the project's rasteriser
(:func:`crosspoint.render.render_mesh` with ``return_buffers``: the nearest surface per pixel, so
self-occlusion and occlusion by clutter are exact). Every covered pixel becomes a point
(back-projected from its depth), then the sensor model is applied:

- depth noise along the viewing ray, ``sigma = noise * (z / 3)^2`` (grows with the square of the
  depth, as structured-light and time-of-flight sensors do), plus lateral noise ``noise / 3``;
- drop-out at grazing angles (pixels whose surface is seen nearly edge-on are lost with a
  probability that rises as ``|cos|`` falls below ``grazing``);
- a few flying pixels (``outliers``, a fraction of the points): points pushed back along their
  ray by up to a fifth of the object's size, as depth sensors produce at silhouette edges.

As in ScanObjectNN's OBJ_BG the points kept are those inside the object's bounding box grown by a
random margin: the background that falls in it (floor, nearby boxes) stays. ``n_points`` are drawn
from them (with repeats when fewer), optionally turned about +Y by a random angle (``rotate``, as
real scans have no canonical heading), and normalised into the unit sphere. Each point keeps the
global part id of the surface it hit, or -1 for the background.

The returned camera is the scanner's, expressed in the coordinates of the returned points (the
heading folded into its azimuth, the normalisation into its object transform), so
``scan.camera.project(scan.points)`` lands on the scanner's image.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from crosspoint.pointcloud import Mesh

from .primitives import box, concat, rot

__all__ = ["ScanSettings", "Scan", "scan_object", "clutter_meshes"]

_CLUTTER_COLORS = [(0.55, 0.55, 0.52), (0.45, 0.40, 0.35), (0.70, 0.68, 0.62), (0.35, 0.38, 0.42), (0.60, 0.50, 0.40)]


@dataclass(frozen=True)
class ScanSettings:
    """The simulated sensor and scene. Distances are in units of the object's bounding sphere."""

    resolution: int = 128
    """Depth image width and height in pixels (also the size of the scan's colour view)."""
    fov: float = 40.0
    """Field of view in degrees."""
    distance: tuple[float, float] = (2.5, 3.6)
    """Camera distance range from the object's centre (the unit sphere fills the frame at ~2.9)."""
    elevation: tuple[float, float] = (5.0, 55.0)
    """Camera elevation range in degrees (azimuth is uniform)."""
    noise: float = 0.012
    """Depth noise sigma at distance 3 (grows with depth squared)."""
    grazing: float = 0.25
    """Pixels whose ``|cos(angle to the surface normal)|`` is below this drop out progressively."""
    outliers: float = 0.002
    """Fraction of flying pixels (labelled background)."""
    clutter: bool = True
    """Floor patch, 0-3 boxes and sometimes a wall around the object (kept inside the crop box)."""
    rotate: bool = True
    """Turn each scan about +Y by a random angle."""
    margin: tuple[float, float] = (0.02, 0.15)
    """Crop box margin around the object's bounding box, as a fraction of its largest extent."""

    def to_meta(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclass
class Scan:
    """A partial scan: ``points`` ``(n, 3)`` float32 in the unit sphere, ``labels`` ``(n,)`` int64
    (global part id, -1 for background), the scanner's ``image`` (RGBA) and ``camera`` (in the
    points' coordinates), and how it was made (``info``)."""

    points: np.ndarray
    labels: np.ndarray
    image: np.ndarray
    camera: object
    info: dict = field(default_factory=dict)


def clutter_meshes(mesh: Mesh, rng: np.random.Generator, eye: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Background geometry around ``mesh``: ``(vertices, faces, normals, colors)``.

    Often a floor patch under the object (about its footprint), 0-2 boxes standing beside it, and
    with probability 0.3 a wall behind it (on the far side from the camera at ``eye``).
    """
    v = np.asarray(mesh.vertices, np.float64)
    lo, hi = v.min(0), v.max(0)
    ctr = (lo + hi) / 2
    ext = float((hi - lo).max())
    parts, colors = [], []

    def add(g, c):
        parts.append(g)
        colors.append(np.tile(np.asarray(c, float), (g[0].shape[0], 1)))

    if rng.random() < 0.6:  # the floor (or a table top) under the object, about its footprint
        floor_c = np.asarray(_CLUTTER_COLORS[int(rng.integers(len(_CLUTTER_COLORS)))]) * rng.uniform(0.85, 1.1)
        fs = (hi - lo)[[0, 2]] * rng.uniform(0.5, 1.2, 2) + 0.05 * ext
        add(box((ctr[0], lo[1] - 0.01, ctr[2]), (fs[0], 0.02, fs[1])), np.clip(floor_c, 0, 1))
    half = max(hi[0] - lo[0], hi[2] - lo[2]) / 2
    e2, c2 = np.asarray(eye, float)[[0, 2]], ctr[[0, 2]]
    for _ in range(int(rng.integers(0, 3))):
        s = rng.uniform(0.15, 0.5, 3) * ext
        a = rng.uniform(0, 2 * np.pi)
        r = half + s[[0, 2]].max() / 2 + rng.uniform(0.0, 0.25) * ext
        c = (ctr[0] + r * math.cos(a), lo[1] + s[1] / 2, ctr[2] + r * math.sin(a))
        yaw = rng.uniform(0, 90)
        col = _CLUTTER_COLORS[int(rng.integers(len(_CLUTTER_COLORS)))]
        # never in the line of sight from the camera to the object's centre (seen from above)
        t = np.clip(np.dot(np.array([c[0], c[2]]) - e2, c2 - e2) / max(np.dot(c2 - e2, c2 - e2), 1e-12), 0, 1)
        if np.linalg.norm(e2 + t * (c2 - e2) - np.array([c[0], c[2]])) > 0.5 * np.hypot(s[0], s[2]) + 0.05 * ext:
            add(box(c, s, R=rot("y", yaw)), col)
    if rng.random() < 0.3:
        away = ctr - np.asarray(eye, float)
        away[1] = 0.0
        away /= max(np.linalg.norm(away), 1e-9)
        d = half + rng.uniform(0.05, 0.4) * ext
        yaw = math.degrees(math.atan2(away[0], away[2]))
        add(box((ctr[0] + d * away[0], lo[1] + 0.75, ctr[2] + d * away[2]), (3.0, 1.5, 0.02), R=rot("y", yaw)),
            _CLUTTER_COLORS[int(rng.integers(len(_CLUTTER_COLORS)))])
    if not parts:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 3)), np.zeros((0, 3))
    cv, cf, cn = concat(parts)
    return cv, cf, cn, np.concatenate(colors)


def scan_object(mesh: Mesh, face_labels: np.ndarray, n_points: int, rng: np.random.Generator | int,
                settings: ScanSettings = ScanSettings()) -> Scan:
    """A single-view partial scan of ``mesh`` (see the module doc). Deterministic for ``rng``."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    for _ in range(8):  # a view that sees almost nothing of the object is drawn again
        scan = _scan_once(mesh, face_labels, n_points, rng, settings)
        if scan.info["object_pixels"] >= 64:
            break
    return scan


def _scan_once(mesh: Mesh, face_labels: np.ndarray, n_points: int, rng: np.random.Generator,
               settings: ScanSettings) -> Scan:
    from crosspoint.render import Camera, render_mesh
    from crosspoint.render.shading import unit_face_normals

    st = settings
    az = float(rng.uniform(0.0, 360.0))
    el = float(rng.uniform(*st.elevation))
    dist = float(rng.uniform(*st.distance))
    cam = Camera(azimuth=az, elevation=el, distance=dist, fov=st.fov, size=st.resolution)
    eye = cam.position()

    v = np.asarray(mesh.vertices, np.float64)
    f = np.asarray(mesh.faces, np.int64)
    n = np.asarray(mesh.vertex_normals, np.float64) if mesh.vertex_normals is not None else np.zeros_like(v)
    col = np.asarray(mesh.vertex_colors, np.float64) if mesh.vertex_colors is not None else np.full_like(v, 0.7)
    flab = np.asarray(face_labels, np.int64)
    if st.clutter:
        cv, cf, cn, cc = clutter_meshes(mesh, rng, eye)
        f = np.concatenate([f, cf + v.shape[0]])
        v = np.concatenate([v, cv])
        n = np.concatenate([n, cn])
        col = np.concatenate([col, cc])
        flab = np.concatenate([flab, np.full(cf.shape[0], -1, np.int64)])
    scene = Mesh(v.astype(np.float32), f, vertex_colors=col.astype(np.float32), vertex_normals=n.astype(np.float32))
    image, buf = render_mesh(scene, cam, return_buffers=True, antialias=False)  # one ray per pixel
    depth, fidx = buf["depth"], buf["face_index"]
    ii, jj = np.nonzero(np.isfinite(depth) & (fidx >= 0))
    z = depth[ii, jj].astype(np.float64)
    fi = fidx[ii, jj].astype(np.int64)
    focal, c0 = cam.focal_px(), 0.5 * cam.size
    # the sensor: grazing-angle drop-out, then depth and lateral noise growing with depth
    V = cam.view_matrix()
    Rv, tv = V[:3, :3], V[:3, 3]
    pc = np.stack([(jj + 0.5 - c0) * z / focal, (ii + 0.5 - c0) * z / focal, z], 1)
    world = (pc - tv) @ Rv  # camera -> world (Rv is a rotation: its inverse is its transpose)
    ray = world - eye
    ray /= np.linalg.norm(ray, axis=1, keepdims=True)
    fn = unit_face_normals(scene.vertices.astype(np.float64), scene.faces)[fi]
    cosang = np.abs(np.sum(fn * ray, axis=1))
    keep = rng.random(z.shape[0]) < np.clip(cosang / max(st.grazing, 1e-6), 0.0, 1.0)
    pc, fi, z = pc[keep], fi[keep], z[keep]
    sigma = st.noise * (z / 3.0) ** 2
    zn = z + rng.normal(0.0, 1.0, z.shape[0]) * sigma
    pc = pc * (zn / z)[:, None]
    pc[:, :2] += rng.normal(0.0, 1.0, (z.shape[0], 2)) * (st.noise / 3.0) * (z / 3.0)[:, None]
    pts = (pc - tv) @ Rv
    lab = flab[fi]

    # crop to the object's bounding box grown by a margin (what ScanObjectNN keeps)
    ov = np.asarray(mesh.vertices, np.float64)
    lo, hi = ov.min(0), ov.max(0)
    m = float(rng.uniform(*st.margin)) * float((hi - lo).max())
    lo_c, hi_c = lo - m, hi + m
    inside = np.all((pts >= lo_c) & (pts <= hi_c), axis=1)
    pts, lab = pts[inside], lab[inside]
    n_obj_pixels = int(np.sum(lab >= 0))
    if st.outliers > 0 and pts.shape[0]:  # flying pixels: points pushed back along their ray
        k = int(round(st.outliers * n_points))
        src = pts[rng.integers(0, pts.shape[0], k)]
        away = src - eye
        away /= np.linalg.norm(away, axis=1, keepdims=True)
        fly = np.clip(src + away * rng.uniform(0.02, 0.2, (k, 1)) * float((hi - lo).max()), lo_c, hi_c)
        pts = np.concatenate([pts, fly])
        lab = np.concatenate([lab, np.full(k, -1, np.int64)])
    if pts.shape[0] == 0:  # nothing at all in the crop box: the caller draws another view
        pts, lab = ((lo + hi) / 2)[None], np.full(1, -1, np.int64)
    if pts.shape[0] >= n_points:
        sel = rng.choice(pts.shape[0], n_points, replace=False)
    else:
        sel = np.concatenate([rng.permutation(pts.shape[0]), rng.choice(pts.shape[0], n_points - pts.shape[0])])
        sel = sel[rng.permutation(n_points)]
    pts, lab = pts[sel], lab[sel]

    yaw = float(rng.uniform(0.0, 360.0)) if st.rotate else 0.0
    if yaw:
        pts = pts @ rot("y", yaw).T
    center = pts.mean(0)
    scale = float(np.sqrt(((pts - center) ** 2).sum(1).max()))
    scale = scale if scale > 0 else 1.0
    out = ((pts - center) / scale).astype(np.float32)
    # the scanner's camera in the coordinates of `out`: the heading turns the azimuth (a turn of the
    # scene by +yaw about +Y is a turn of the camera by -yaw), the normalisation is its object transform
    file_cam = Camera(azimuth=(az - yaw) % 360.0, elevation=el, distance=dist, fov=st.fov, size=st.resolution,
                      center=tuple(float(x) for x in -center / scale), scale=1.0 / scale)
    info = {"azimuth": az, "elevation": el, "distance": dist, "yaw": yaw, "margin": m,
            "object_pixels": n_obj_pixels, "background_fraction": float(np.mean(lab < 0)),
            "center": [float(x) for x in center], "scale": scale}
    return Scan(out, lab.astype(np.int64), image, file_cam, info)
