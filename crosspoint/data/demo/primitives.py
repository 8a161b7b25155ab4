"""Mesh primitives the shape families are built from, and the :class:`Builder` that labels them.

Every primitive returns ``(vertices (n, 3), faces (m, 3), vertex normals (n, 3))`` as float64 /
int64 arrays; :func:`xf` scales, rotates and moves one; :class:`Builder` collects primitives, each
with a local part index and a material colour, and :meth:`Builder.build` welds them into one
labelled mesh (faces wound outward, degenerate faces dropped).

================================ ==========================================================
primitive                        what
================================ ==========================================================
``box(center, size, R)``         an axis box (optionally rotated)
``hexa(corners8)``               any hexahedron with flat faces (wings, tapered legs)
``lathe(profiles, n_seg, caps)`` a surface of revolution about +Y (``n_seg <= 8``: facets)
``cylinder(p0, p1, r0, r1)``     a (tapered) cylinder between two points
``ellipsoid(center, radii)``     an ellipsoid
``tube(path, radius)``           a tube swept along a polyline (handles, frames, bails)
``slab(outline, y0, y1)``        a plate: a star-shaped XZ outline extruded along Y
``sheet(grid, thickness)``       a thick curved panel from a sampled parametric surface
``outline_rounded_rect``,        outlines for :func:`slab`
``outline_ellipse``
================================ ==========================================================

Helpers: :func:`rot` (rotation about an axis, degrees), :func:`align_y` (rotation taking +Y to a
direction), :func:`unit`, :func:`concat`; material palettes (``WOOD``, ``METAL``, ``PAINT``,
``FABRIC``, ``GLASS``) and :func:`pick_color`.

The code is the demo's original generator's (``crosspoint.data.synthetic`` before the package),
unchanged, so the easy preset still produces the same bytes.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = [
    "unit", "rot", "align_y", "xf", "quad_grid", "hexa", "box", "disc", "lathe", "cylinder", "ellipsoid", "tube",
    "outline_rounded_rect", "outline_ellipse", "slab", "sheet", "concat", "Builder",
    "WOOD", "METAL", "PAINT", "FABRIC", "GLASS", "pick_color",
]


def unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 0)


def rot(axis: str, deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], float)
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], float)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], float)


def align_y(d) -> np.ndarray:
    """Rotation taking +Y to the direction ``d``."""
    d = unit(np.asarray(d, float))
    y = np.array([0.0, 1.0, 0.0])
    v = np.cross(y, d)
    c = float(y @ d)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k * (1.0 / (1.0 + c))


def xf(g, R=None, t=None, s=None):
    """Scale (per axis), then rotate, then translate; normals follow (inverse transpose)."""
    v, f, n = g
    if s is not None:
        s = np.broadcast_to(np.asarray(s, float), (3,))
        v = v * s
        n = unit(n / s)
    if R is not None:
        v = v @ R.T
        n = n @ R.T
    if t is not None:
        v = v + np.asarray(t, float)
    return v, f, n


def quad_grid(nu: int, nv: int, wrap_u: bool = False) -> np.ndarray:
    """Faces of a (nu x nv) vertex grid (row-major, u slow)."""
    iu = np.arange(nu if wrap_u else nu - 1)
    iv = np.arange(nv - 1)
    a = (iu[:, None] * nv + iv[None, :]).ravel()
    b = (((iu + 1) % nu)[:, None] * nv + iv[None, :]).ravel()
    c, d = b + 1, a + 1
    return np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])


def hexa(c8) -> tuple:
    """A hexahedron from 8 corners (0-3 the bottom ring, 4-7 the top ring above them), flat faces."""
    c = np.asarray(c8, float)
    quads = [(0, 1, 2, 3), (4, 7, 6, 5), (3, 2, 6, 7), (0, 4, 5, 1), (0, 3, 7, 4), (1, 5, 6, 2)]
    centre = c.mean(0)
    vs, fs, ns = [], [], []
    for k, q in enumerate(quads):
        p = c[list(q)]
        n = unit(np.cross(p[2] - p[0], p[3] - p[1]))
        if n @ (p.mean(0) - centre) < 0:
            n = -n
        vs.append(p)
        ns.append(np.repeat(n[None], 4, 0))
        fs.append(np.array([[0, 1, 2], [0, 2, 3]]) + 4 * k)
    return np.concatenate(vs), np.concatenate(fs), np.concatenate(ns)


def box(center, size, R=None) -> tuple:
    sx, sy, sz = np.asarray(size, float) / 2
    c = np.array(
        [[-sx, -sy, -sz], [sx, -sy, -sz], [sx, -sy, sz], [-sx, -sy, sz],
         [-sx, sy, -sz], [sx, sy, -sz], [sx, sy, sz], [-sx, sy, sz]]
    )
    if R is not None:
        c = c @ R.T
    return hexa(c + np.asarray(center, float))


def disc(r: float, y: float, up: bool, n_seg: int, phase: float = 0.0) -> tuple:
    th = phase + 2 * np.pi * np.arange(n_seg) / n_seg
    v = np.concatenate([[[0.0, y, 0.0]], np.stack([r * np.cos(th), np.full(n_seg, y), r * np.sin(th)], 1)])
    j = np.arange(n_seg)
    f = np.stack([np.zeros(n_seg, int), 1 + j, 1 + (j + 1) % n_seg], 1)
    n = np.tile([0.0, 1.0 if up else -1.0, 0.0], (n_seg + 1, 1))
    return v, f, n


def lathe(segments: Sequence, n_seg: int = 28, caps: Sequence = (), phase: float = 0.0) -> tuple:
    """Surface of revolution about +Y.

    ``segments``: profiles ``[(r, y), ...]``, each smooth (hard edges between segments).
    ``caps``: ``(r, y, up)`` discs. ``n_seg <= 8`` gives flat facets (square bottles).
    """
    parts = []
    facet = n_seg <= 8
    for seg in segments:
        p = np.asarray(seg, float)
        k = p.shape[0]
        tang = np.gradient(p, axis=0) if k > 2 else np.repeat((p[1] - p[0])[None], k, 0)
        n2 = unit(np.stack([tang[:, 1], -tang[:, 0]], 1))  # (n_r, n_y)
        if facet:
            cols = []
            for j in range(n_seg):
                a0 = phase + 2 * np.pi * j / n_seg
                a1 = phase + 2 * np.pi * (j + 1) / n_seg
                am = 0.5 * (a0 + a1)
                rr = p[:, 0] / math.cos(np.pi / n_seg)  # circumscribe so facets sit on the radius
                v = np.concatenate([
                    np.stack([rr * math.cos(a0), p[:, 1], rr * math.sin(a0)], 1),
                    np.stack([rr * math.cos(a1), p[:, 1], rr * math.sin(a1)], 1),
                ])
                nn = np.stack([n2[:, 0] * math.cos(am), n2[:, 1], n2[:, 0] * math.sin(am)], 1)
                nn = np.concatenate([nn, nn])
                f = quad_grid(2, k)
                cols.append((v, f, nn))
            parts.append(concat(cols))
        else:
            th = phase + 2 * np.pi * np.arange(n_seg) / n_seg
            ct, st = np.cos(th)[:, None], np.sin(th)[:, None]
            v = np.stack([ct * p[None, :, 0], np.broadcast_to(p[None, :, 1], (n_seg, k)), st * p[None, :, 0]], -1)
            nn = np.stack([ct * n2[None, :, 0], np.broadcast_to(n2[None, :, 1], (n_seg, k)), st * n2[None, :, 0]], -1)
            parts.append((v.reshape(-1, 3), quad_grid(n_seg, k, wrap_u=True), nn.reshape(-1, 3)))
    for r, y, up in caps:
        if facet:
            parts.append(disc(r / math.cos(np.pi / n_seg), y, up, n_seg, phase))
        else:
            parts.append(disc(r, y, up, n_seg, phase))
    return concat(parts)


def cylinder(p0, p1, r0: float, r1: float | None = None, n_seg: int = 20, caps=(True, True)) -> tuple:
    """A (tapered) cylinder from ``p0`` to ``p1``."""
    r1 = r0 if r1 is None else r1
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    h = float(np.linalg.norm(p1 - p0))
    capl = []
    if caps[0]:
        capl.append((r0, 0.0, False))
    if caps[1]:
        capl.append((r1, h, True))
    g = lathe([[(r0, 0.0), (r1, h)]], n_seg=n_seg, caps=capl)
    return xf(g, R=align_y(p1 - p0), t=p0)


def ellipsoid(center, radii, n_seg: int = 24, n_ring: int = 14) -> tuple:
    a = np.linspace(-np.pi / 2, np.pi / 2, n_ring + 1)
    prof = np.stack([np.cos(a), np.sin(a)], 1)
    prof[0, 0] = prof[-1, 0] = 0.0
    return xf(lathe([prof], n_seg=n_seg), s=radii, t=center)


def tube(path, radius, n_seg: int = 12, caps=(True, True)) -> tuple:
    """A tube of circular section swept along a polyline (parallel-transport frames)."""
    p = np.asarray(path, float)
    k = p.shape[0]
    r = np.broadcast_to(np.asarray(radius, float), (k,))
    t = unit(np.gradient(p, axis=0))
    ref = np.array([0.0, 0.0, 1.0]) if abs(t[0, 2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    nrm = [unit(np.cross(t[0], ref))]
    for i in range(1, k):
        q = nrm[-1] - (nrm[-1] @ t[i]) * t[i]
        nrm.append(unit(q))
    nrm = np.array(nrm)
    bi = np.cross(t, nrm)
    th = 2 * np.pi * np.arange(n_seg) / n_seg
    dirs = np.cos(th)[None, :, None] * nrm[:, None] + np.sin(th)[None, :, None] * bi[:, None]  # (k, s, 3)
    v = p[:, None] + r[:, None, None] * dirs
    # grid with u = ring angle (wrapped), v = along the path
    v = v.transpose(1, 0, 2).reshape(-1, 3)
    n = dirs.transpose(1, 0, 2).reshape(-1, 3)
    parts = [(v, quad_grid(n_seg, k, wrap_u=True), n)]
    for end, on in ((0, caps[0]), (k - 1, caps[1])):
        if not on:
            continue
        ring = p[end] + r[end] * dirs[end]
        cv = np.concatenate([p[end][None], ring])
        j = np.arange(n_seg)
        cf = np.stack([np.zeros(n_seg, int), 1 + j, 1 + (j + 1) % n_seg], 1)
        sgn = -1.0 if end == 0 else 1.0
        parts.append((cv, cf, np.tile(sgn * t[end], (n_seg + 1, 1))))
    return concat(parts)


def outline_rounded_rect(w: float, d: float, radius: float, n_corner: int = 6) -> np.ndarray:
    radius = min(radius, 0.5 * min(w, d) - 1e-6)
    cs = [(w / 2 - radius, d / 2 - radius, 0), (-w / 2 + radius, d / 2 - radius, 90),
          (-w / 2 + radius, -d / 2 + radius, 180), (w / 2 - radius, -d / 2 + radius, 270)]
    pts = []
    for cx, cz, a0 in cs:
        a = np.radians(a0 + np.linspace(0, 90, n_corner))
        pts.append(np.stack([cx + radius * np.cos(a), cz + radius * np.sin(a)], 1))
    return np.concatenate(pts)


def outline_ellipse(w: float, d: float, n: int = 40) -> np.ndarray:
    a = 2 * np.pi * np.arange(n) / n
    return np.stack([w / 2 * np.cos(a), d / 2 * np.sin(a)], 1)


def slab(outline, y0: float, y1: float, smooth: bool = True) -> tuple:
    """A plate: a star-shaped outline ``(K, 2)`` in the XZ plane (x, z), between heights y0 and y1."""
    o = np.asarray(outline, float)
    k = o.shape[0]
    c = o.mean(0)
    parts = []
    for y, up in ((y1, True), (y0, False)):
        v = np.concatenate([[[c[0], y, c[1]]], np.stack([o[:, 0], np.full(k, y), o[:, 1]], 1)])
        j = np.arange(k)
        f = np.stack([np.zeros(k, int), 1 + j, 1 + (j + 1) % k], 1)
        parts.append((v, f, np.tile([0.0, 1.0 if up else -1.0, 0.0], (k + 1, 1))))
    nxt = np.roll(o, -1, 0)
    en = unit(np.stack([nxt[:, 1] - o[:, 1], -(nxt[:, 0] - o[:, 0])], 1))  # edge normals (either side)
    if np.mean(np.sum(en * (0.5 * (o + nxt) - c), 1)) < 0:
        en = -en
    if smooth:
        vn = unit(en + np.roll(en, 1, 0))
        v = np.concatenate([np.stack([o[:, 0], np.full(k, y0), o[:, 1]], 1), np.stack([o[:, 0], np.full(k, y1), o[:, 1]], 1)])
        n3 = np.stack([vn[:, 0], np.zeros(k), vn[:, 1]], 1)
        j = np.arange(k)
        a, b, cc, d = j, (j + 1) % k, (j + 1) % k + k, j + k
        f = np.concatenate([np.stack([a, b, cc], 1), np.stack([a, cc, d], 1)])
        parts.append((v, f, np.concatenate([n3, n3])))
    else:
        for j in range(k):
            p0, p1 = o[j], nxt[j]
            v = np.array([[p0[0], y0, p0[1]], [p1[0], y0, p1[1]], [p1[0], y1, p1[1]], [p0[0], y1, p0[1]]])
            parts.append((v, np.array([[0, 1, 2], [0, 2, 3]]), np.tile([en[j, 0], 0.0, en[j, 1]], (4, 1))))
    return concat(parts)


def sheet(grid: np.ndarray, thickness: float) -> tuple:
    """A thick curved panel from a parametric surface sampled on a ``(nu, nv, 3)`` grid."""
    g = np.asarray(grid, float)
    nu, nv, _ = g.shape
    du = np.gradient(g, axis=0)
    dv = np.gradient(g, axis=1)
    n = unit(np.cross(du, dv))
    h = thickness / 2
    front, back = g + h * n, g - h * n
    parts = [
        (front.reshape(-1, 3), quad_grid(nu, nv), n.reshape(-1, 3)),
        (back.reshape(-1, 3), quad_grid(nu, nv), -n.reshape(-1, 3)),
    ]
    # rims: along the four borders, a strip joining front and back
    for line_f, line_b, out in (
        (front[0], back[0], -unit(du[0])),
        (front[-1], back[-1], unit(du[-1])),
        (front[:, 0], back[:, 0], -unit(dv[:, 0])),
        (front[:, -1], back[:, -1], unit(dv[:, -1])),
    ):
        m = line_f.shape[0]
        v = np.concatenate([line_f, line_b])  # 2 x m grid, u = side
        parts.append((v, quad_grid(2, m), np.concatenate([out, out])))
    return concat(parts)


def concat(parts) -> tuple:
    vs, fs, ns, off = [], [], [], 0
    for v, f, n in parts:
        vs.append(v)
        fs.append(np.asarray(f, np.int64) + off)
        ns.append(n)
        off += v.shape[0]
    if not vs:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 3))
    return np.concatenate(vs), np.concatenate(fs), np.concatenate(ns)


class Builder:
    """Collects primitives with a local part index and a colour; ``style`` records what a family
    drew (its kind, counts, optional parts) for ``demo_meta.json``."""

    def __init__(self) -> None:
        self.style: dict = {}
        self.parts: list[tuple] = []
        self.labels: list[np.ndarray] = []
        self.colors: list[np.ndarray] = []

    def add(self, g, part: int, color) -> None:
        v, f, n = g
        self.parts.append(g)
        self.labels.append(np.full(f.shape[0], part, np.int64))
        self.colors.append(np.tile(np.asarray(color, float), (v.shape[0], 1)))

    def build(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        v, f, n = concat(self.parts)
        labels = np.concatenate(self.labels)
        colors = np.concatenate(self.colors)
        # wind every face so its geometric normal agrees with its vertex normals (outward)
        gn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        flip = np.einsum("ij,ij->i", gn, n[f].sum(1)) < 0
        f = f.copy()
        f[flip] = f[flip][:, [0, 2, 1]]
        # drop degenerate faces (collapsed poles, zero-length caps)
        area = np.linalg.norm(gn, axis=1)
        keep = area > 1e-14 * max(1.0, float(np.abs(v).max()) ** 2)
        return v, f[keep], unit(n), labels[keep], colors



# =============================================================================================
# materials
# =============================================================================================

WOOD = [(0.55, 0.36, 0.20), (0.70, 0.52, 0.32), (0.42, 0.27, 0.16), (0.80, 0.66, 0.46), (0.33, 0.22, 0.14)]
METAL = [(0.62, 0.63, 0.66), (0.30, 0.30, 0.33), (0.80, 0.80, 0.82), (0.72, 0.62, 0.38)]
PAINT = [(0.72, 0.18, 0.16), (0.18, 0.34, 0.62), (0.25, 0.50, 0.30), (0.88, 0.86, 0.80), (0.14, 0.14, 0.15),
          (0.90, 0.62, 0.15), (0.55, 0.25, 0.55), (0.35, 0.62, 0.72)]
FABRIC = [(0.62, 0.22, 0.20), (0.22, 0.30, 0.45), (0.50, 0.52, 0.40), (0.80, 0.78, 0.72), (0.30, 0.30, 0.32)]
GLASS = [(0.30, 0.55, 0.35), (0.45, 0.30, 0.15), (0.75, 0.85, 0.88), (0.20, 0.35, 0.55), (0.85, 0.85, 0.85)]


def pick_color(rng: np.random.Generator, palette) -> np.ndarray:
    c = np.asarray(palette[int(rng.integers(len(palette)))], float)
    return np.clip(c * rng.uniform(0.9, 1.1) + rng.normal(0, 0.02, 3), 0.0, 1.0)

