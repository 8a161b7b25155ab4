"""The embedded demo dataset: procedurally generated objects with labelled parts and rendered views.

Eight classes, each built from 2-4 labelled parts out of primitives (boxes, slabs with rounded
outlines, surfaces of revolution, swept tubes, curved sheets) with real variation: proportions,
part shapes (round/square legs and tops, straight/curved/ladder backs, wide/narrow/delta wings,
acoustic/electric bodies, ...), part counts (3/4 legs, pedestals, 2/4 engines) and optional parts
(armrests, shelves, engines, caps).

====== ============ =============================== ================
class  synset (fake) parts (global ids)              optional
====== ============ =============================== ================
chair  90000001     seat 0, back 1, leg 2, arm 3     arm
table  90000002     top 4, leg 5, shelf 6            shelf
airplane 90000003   fuselage 7, wing 8, tail 9, engine 10  engine
lamp   90000004     base 11, stem 12, shade 13
mug    90000005     body 14, handle 15
car    90000006     body 16, cabin 17, wheel 18
guitar 90000007     body 19, neck 20, headstock 21
bottle 90000008     body 22, neck 23, cap 24            cap
====== ============ =============================== ================

Synset ids: real ShapeNet synsets are 8-digit WordNet 3.0 noun offsets, all below 16,000,000
(they start with ``0`` or ``1``); ours start with ``9`` so they can never collide. Part ids are a
global numbering in which each class owns a contiguous range, like ShapeNetPart's 50 parts.

Objects stand on +Y (up), face +Z (cars, chairs, guitars; airplanes fly towards +Z), are roughly
centred, and are normalised into the unit sphere (:func:`crosspoint.geometry.normalize_unit_sphere`)
before anything is sampled or rendered, so points, meshes and views share one frame.

Layout written by :func:`generate_demo` (``OUT`` = the output folder)::

    OUT/demo_meta.json                          # written last: its presence marks a complete run
    OUT/.crosspoint-demo                        # written first: marks the folder as ours
    OUT/ShapeNet/<synset>/<id>.ply              # n_points xyz (ShapeNetRender, as the reference)
    OUT/ShapeNetRendering/<synset>/<id>/rendering/{00..}.png + renderings.txt
                                                #   + rendering_metadata.txt (3D-R2N2 style)
    OUT/shapenetcore_partanno_segmentation_benchmark_v0_normal/
        synsetoffset2category.txt               # "Chair<TAB>90000001"
        <synset>/<id>.txt                       # "x y z nx ny nz part" (global part id)
        train_test_split/shuffled_{train,val,test}_file_list.json  # "shape_data/<synset>/<id>"
    OUT/meshes/<synset>/<id>.ply                # the mesh: vertex normals + colours, face "label"

Object ids are ``<class>_<index>`` (``chair_0007``). Object ``i`` of class ``c`` depends only on
``(seed, c, i)``, so ``demo_object("chair", seed)`` is the dataset's ``chair_0000`` and a dataset
with more objects per class extends a smaller one. Splits are 70/10/20 per class, chosen by the
seed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from crosspoint.pointcloud import Mesh, PointCloud

log = logging.getLogger(__name__)

__all__ = [
    "CLASSES",
    "CLASS_PARTS",
    "SYNSETS",
    "FORMAT_VERSION",
    "DemoCancelled",
    "class_part_ids",
    "make_object",
    "demo_object",
    "generate_demo",
    "demo_is_complete",
    "default_demo_dir",
    "ensure_demo",
    "read_demo_meta",
    "write_mesh_ply",
]

FORMAT_VERSION = 1
FORMAT_NAME = "crosspoint-demo"
META_NAME = "demo_meta.json"
MARKER_NAME = ".crosspoint-demo"
PART_DIR = "shapenetcore_partanno_segmentation_benchmark_v0_normal"
DEFAULT_VIEWS = 24  # as ShapeNetRendering; the default demo takes ~25 s with 2 workers here
DEFAULT_SIZE = 137

CLASS_PARTS: dict[str, tuple[str, ...]] = {
    "chair": ("seat", "back", "leg", "arm"),
    "table": ("top", "leg", "shelf"),
    "airplane": ("fuselage", "wing", "tail", "engine"),
    "lamp": ("base", "stem", "shade"),
    "mug": ("body", "handle"),
    "car": ("body", "cabin", "wheel"),
    "guitar": ("body", "neck", "headstock"),
    "bottle": ("body", "neck", "cap"),
}
CLASSES: tuple[str, ...] = tuple(CLASS_PARTS)
SYNSETS: dict[str, str] = {c: f"9000000{i + 1}" for i, c in enumerate(CLASSES)}
_PART_OFFSETS: dict[str, int] = {}
_o = 0
for _c in CLASSES:
    _PART_OFFSETS[_c] = _o
    _o += len(CLASS_PARTS[_c])
N_PARTS = _o
del _o, _c

# the folders generate_demo owns inside OUT (and may delete when regenerating)
_OWNED = ("ShapeNet", "ShapeNetRendering", PART_DIR, "meshes", META_NAME, MARKER_NAME)


class DemoCancelled(Exception):
    """Raised by :func:`generate_demo` / :func:`ensure_demo` when ``cancel()`` returned true."""


def class_part_ids(class_name: str) -> list[int]:
    """The global part ids of a class (a contiguous range)."""
    off = _PART_OFFSETS[_check_class(class_name)]
    return list(range(off, off + len(CLASS_PARTS[class_name])))


def _check_class(name: str) -> str:
    if name not in CLASS_PARTS:
        raise ValueError(f"unknown demo class {name!r}: use one of {', '.join(CLASSES)}")
    return name


# =============================================================================================
# primitives: each returns (vertices (n,3), faces (m,3), vertex normals (n,3)), float64/int64
# =============================================================================================


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 0)


def _rot(axis: str, deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], float)
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], float)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], float)


def _align_y(d) -> np.ndarray:
    """Rotation taking +Y to the direction ``d``."""
    d = _unit(np.asarray(d, float))
    y = np.array([0.0, 1.0, 0.0])
    v = np.cross(y, d)
    c = float(y @ d)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k * (1.0 / (1.0 + c))


def _xf(g, R=None, t=None, s=None):
    """Scale (per axis), then rotate, then translate; normals follow (inverse transpose)."""
    v, f, n = g
    if s is not None:
        s = np.broadcast_to(np.asarray(s, float), (3,))
        v = v * s
        n = _unit(n / s)
    if R is not None:
        v = v @ R.T
        n = n @ R.T
    if t is not None:
        v = v + np.asarray(t, float)
    return v, f, n


def _quad_grid(nu: int, nv: int, wrap_u: bool = False) -> np.ndarray:
    """Faces of a (nu x nv) vertex grid (row-major, u slow)."""
    iu = np.arange(nu if wrap_u else nu - 1)
    iv = np.arange(nv - 1)
    a = (iu[:, None] * nv + iv[None, :]).ravel()
    b = (((iu + 1) % nu)[:, None] * nv + iv[None, :]).ravel()
    c, d = b + 1, a + 1
    return np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])


def _hexa(c8) -> tuple:
    """A hexahedron from 8 corners (0-3 the bottom ring, 4-7 the top ring above them), flat faces."""
    c = np.asarray(c8, float)
    quads = [(0, 1, 2, 3), (4, 7, 6, 5), (3, 2, 6, 7), (0, 4, 5, 1), (0, 3, 7, 4), (1, 5, 6, 2)]
    centre = c.mean(0)
    vs, fs, ns = [], [], []
    for k, q in enumerate(quads):
        p = c[list(q)]
        n = _unit(np.cross(p[2] - p[0], p[3] - p[1]))
        if n @ (p.mean(0) - centre) < 0:
            n = -n
        vs.append(p)
        ns.append(np.repeat(n[None], 4, 0))
        fs.append(np.array([[0, 1, 2], [0, 2, 3]]) + 4 * k)
    return np.concatenate(vs), np.concatenate(fs), np.concatenate(ns)


def _box(center, size, R=None) -> tuple:
    sx, sy, sz = np.asarray(size, float) / 2
    c = np.array(
        [[-sx, -sy, -sz], [sx, -sy, -sz], [sx, -sy, sz], [-sx, -sy, sz],
         [-sx, sy, -sz], [sx, sy, -sz], [sx, sy, sz], [-sx, sy, sz]]
    )
    if R is not None:
        c = c @ R.T
    return _hexa(c + np.asarray(center, float))


def _disc(r: float, y: float, up: bool, n_seg: int, phase: float = 0.0) -> tuple:
    th = phase + 2 * np.pi * np.arange(n_seg) / n_seg
    v = np.concatenate([[[0.0, y, 0.0]], np.stack([r * np.cos(th), np.full(n_seg, y), r * np.sin(th)], 1)])
    j = np.arange(n_seg)
    f = np.stack([np.zeros(n_seg, int), 1 + j, 1 + (j + 1) % n_seg], 1)
    n = np.tile([0.0, 1.0 if up else -1.0, 0.0], (n_seg + 1, 1))
    return v, f, n


def _lathe(segments: Sequence, n_seg: int = 28, caps: Sequence = (), phase: float = 0.0) -> tuple:
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
        n2 = _unit(np.stack([tang[:, 1], -tang[:, 0]], 1))  # (n_r, n_y)
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
                f = _quad_grid(2, k)
                cols.append((v, f, nn))
            parts.append(_concat(cols))
        else:
            th = phase + 2 * np.pi * np.arange(n_seg) / n_seg
            ct, st = np.cos(th)[:, None], np.sin(th)[:, None]
            v = np.stack([ct * p[None, :, 0], np.broadcast_to(p[None, :, 1], (n_seg, k)), st * p[None, :, 0]], -1)
            nn = np.stack([ct * n2[None, :, 0], np.broadcast_to(n2[None, :, 1], (n_seg, k)), st * n2[None, :, 0]], -1)
            parts.append((v.reshape(-1, 3), _quad_grid(n_seg, k, wrap_u=True), nn.reshape(-1, 3)))
    for r, y, up in caps:
        if facet:
            parts.append(_disc(r / math.cos(np.pi / n_seg), y, up, n_seg, phase))
        else:
            parts.append(_disc(r, y, up, n_seg, phase))
    return _concat(parts)


def _cylinder(p0, p1, r0: float, r1: float | None = None, n_seg: int = 20, caps=(True, True)) -> tuple:
    """A (tapered) cylinder from ``p0`` to ``p1``."""
    r1 = r0 if r1 is None else r1
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    h = float(np.linalg.norm(p1 - p0))
    capl = []
    if caps[0]:
        capl.append((r0, 0.0, False))
    if caps[1]:
        capl.append((r1, h, True))
    g = _lathe([[(r0, 0.0), (r1, h)]], n_seg=n_seg, caps=capl)
    return _xf(g, R=_align_y(p1 - p0), t=p0)


def _ellipsoid(center, radii, n_seg: int = 24, n_ring: int = 14) -> tuple:
    a = np.linspace(-np.pi / 2, np.pi / 2, n_ring + 1)
    prof = np.stack([np.cos(a), np.sin(a)], 1)
    prof[0, 0] = prof[-1, 0] = 0.0
    return _xf(_lathe([prof], n_seg=n_seg), s=radii, t=center)


def _tube(path, radius, n_seg: int = 12, caps=(True, True)) -> tuple:
    """A tube of circular section swept along a polyline (parallel-transport frames)."""
    p = np.asarray(path, float)
    k = p.shape[0]
    r = np.broadcast_to(np.asarray(radius, float), (k,))
    t = _unit(np.gradient(p, axis=0))
    ref = np.array([0.0, 0.0, 1.0]) if abs(t[0, 2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    nrm = [_unit(np.cross(t[0], ref))]
    for i in range(1, k):
        q = nrm[-1] - (nrm[-1] @ t[i]) * t[i]
        nrm.append(_unit(q))
    nrm = np.array(nrm)
    bi = np.cross(t, nrm)
    th = 2 * np.pi * np.arange(n_seg) / n_seg
    dirs = np.cos(th)[None, :, None] * nrm[:, None] + np.sin(th)[None, :, None] * bi[:, None]  # (k, s, 3)
    v = p[:, None] + r[:, None, None] * dirs
    # grid with u = ring angle (wrapped), v = along the path
    v = v.transpose(1, 0, 2).reshape(-1, 3)
    n = dirs.transpose(1, 0, 2).reshape(-1, 3)
    parts = [(v, _quad_grid(n_seg, k, wrap_u=True), n)]
    for end, on in ((0, caps[0]), (k - 1, caps[1])):
        if not on:
            continue
        ring = p[end] + r[end] * dirs[end]
        cv = np.concatenate([p[end][None], ring])
        j = np.arange(n_seg)
        cf = np.stack([np.zeros(n_seg, int), 1 + j, 1 + (j + 1) % n_seg], 1)
        sgn = -1.0 if end == 0 else 1.0
        parts.append((cv, cf, np.tile(sgn * t[end], (n_seg + 1, 1))))
    return _concat(parts)


def _outline_rounded_rect(w: float, d: float, radius: float, n_corner: int = 6) -> np.ndarray:
    radius = min(radius, 0.5 * min(w, d) - 1e-6)
    cs = [(w / 2 - radius, d / 2 - radius, 0), (-w / 2 + radius, d / 2 - radius, 90),
          (-w / 2 + radius, -d / 2 + radius, 180), (w / 2 - radius, -d / 2 + radius, 270)]
    pts = []
    for cx, cz, a0 in cs:
        a = np.radians(a0 + np.linspace(0, 90, n_corner))
        pts.append(np.stack([cx + radius * np.cos(a), cz + radius * np.sin(a)], 1))
    return np.concatenate(pts)


def _outline_ellipse(w: float, d: float, n: int = 40) -> np.ndarray:
    a = 2 * np.pi * np.arange(n) / n
    return np.stack([w / 2 * np.cos(a), d / 2 * np.sin(a)], 1)


def _slab(outline, y0: float, y1: float, smooth: bool = True) -> tuple:
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
    en = _unit(np.stack([nxt[:, 1] - o[:, 1], -(nxt[:, 0] - o[:, 0])], 1))  # edge normals (either side)
    if np.mean(np.sum(en * (0.5 * (o + nxt) - c), 1)) < 0:
        en = -en
    if smooth:
        vn = _unit(en + np.roll(en, 1, 0))
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
    return _concat(parts)


def _sheet(grid: np.ndarray, thickness: float) -> tuple:
    """A thick curved panel from a parametric surface sampled on a ``(nu, nv, 3)`` grid."""
    g = np.asarray(grid, float)
    nu, nv, _ = g.shape
    du = np.gradient(g, axis=0)
    dv = np.gradient(g, axis=1)
    n = _unit(np.cross(du, dv))
    h = thickness / 2
    front, back = g + h * n, g - h * n
    parts = [
        (front.reshape(-1, 3), _quad_grid(nu, nv), n.reshape(-1, 3)),
        (back.reshape(-1, 3), _quad_grid(nu, nv), -n.reshape(-1, 3)),
    ]
    # rims: along the four borders, a strip joining front and back
    for line_f, line_b, out in (
        (front[0], back[0], -_unit(du[0])),
        (front[-1], back[-1], _unit(du[-1])),
        (front[:, 0], back[:, 0], -_unit(dv[:, 0])),
        (front[:, -1], back[:, -1], _unit(dv[:, -1])),
    ):
        m = line_f.shape[0]
        v = np.concatenate([line_f, line_b])  # 2 x m grid, u = side
        parts.append((v, _quad_grid(2, m), np.concatenate([out, out])))
    return _concat(parts)


def _concat(parts) -> tuple:
    vs, fs, ns, off = [], [], [], 0
    for v, f, n in parts:
        vs.append(v)
        fs.append(np.asarray(f, np.int64) + off)
        ns.append(n)
        off += v.shape[0]
    if not vs:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 3))
    return np.concatenate(vs), np.concatenate(fs), np.concatenate(ns)


class _Builder:
    """Collects primitives with a local part index and a colour."""

    def __init__(self) -> None:
        self.parts: list[tuple] = []
        self.labels: list[np.ndarray] = []
        self.colors: list[np.ndarray] = []

    def add(self, g, part: int, color) -> None:
        v, f, n = g
        self.parts.append(g)
        self.labels.append(np.full(f.shape[0], part, np.int64))
        self.colors.append(np.tile(np.asarray(color, float), (v.shape[0], 1)))

    def build(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        v, f, n = _concat(self.parts)
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
        return v, f[keep], _unit(n), labels[keep], colors


# =============================================================================================
# materials
# =============================================================================================

_WOOD = [(0.55, 0.36, 0.20), (0.70, 0.52, 0.32), (0.42, 0.27, 0.16), (0.80, 0.66, 0.46), (0.33, 0.22, 0.14)]
_METAL = [(0.62, 0.63, 0.66), (0.30, 0.30, 0.33), (0.80, 0.80, 0.82), (0.72, 0.62, 0.38)]
_PAINT = [(0.72, 0.18, 0.16), (0.18, 0.34, 0.62), (0.25, 0.50, 0.30), (0.88, 0.86, 0.80), (0.14, 0.14, 0.15),
          (0.90, 0.62, 0.15), (0.55, 0.25, 0.55), (0.35, 0.62, 0.72)]
_FABRIC = [(0.62, 0.22, 0.20), (0.22, 0.30, 0.45), (0.50, 0.52, 0.40), (0.80, 0.78, 0.72), (0.30, 0.30, 0.32)]
_GLASS = [(0.30, 0.55, 0.35), (0.45, 0.30, 0.15), (0.75, 0.85, 0.88), (0.20, 0.35, 0.55), (0.85, 0.85, 0.85)]


def _color(rng: np.random.Generator, palette) -> np.ndarray:
    c = np.asarray(palette[int(rng.integers(len(palette)))], float)
    return np.clip(c * rng.uniform(0.9, 1.1) + rng.normal(0, 0.02, 3), 0.0, 1.0)


# =============================================================================================
# classes (units are roughly metres; everything is normalised afterwards)
# =============================================================================================


def _legs_four(b: _Builder, rng, w, d, h, inset, part, color, *, round_legs=None, splay=0.0, n_legs=4):
    """Legs from the floor up to height ``h`` at the corners of a w x d rectangle (or a circle for 3)."""
    round_legs = bool(rng.random() < 0.5) if round_legs is None else round_legs
    thick = rng.uniform(0.025, 0.05)
    taper = rng.uniform(0.55, 1.0)
    if n_legs == 4:
        corners = [(sx * (w / 2 - inset), sz * (d / 2 - inset)) for sx in (-1, 1) for sz in (-1, 1)]
    else:
        rr = min(w, d) / 2 - inset
        corners = [(rr * math.cos(a), rr * math.sin(a)) for a in np.radians([90, 210, 330])]
    for x, z in corners:
        top = np.array([x, h, z])
        out = _unit(np.array([x, 0.0, z])) * splay * h
        foot = np.array([x + out[0], 0.0, z + out[2]])
        if round_legs:
            g = _cylinder(foot, top, thick * taper * 0.6, thick * 0.6, n_seg=14, caps=(True, False))
        else:
            dvec = top - foot
            R = _align_y(dvec)
            L = float(np.linalg.norm(dvec))
            bt, tp = thick * taper / 2, thick / 2
            c = np.array([[-bt, 0, -bt], [bt, 0, -bt], [bt, 0, bt], [-bt, 0, bt],
                          [-tp, L, -tp], [tp, L, -tp], [tp, L, tp], [-tp, L, tp]])
            g = _hexa(c @ R.T + foot)
        b.add(g, part, color)


def _chair(rng: np.random.Generator) -> _Builder:
    b = _Builder()
    wood = _color(rng, _WOOD)
    frame = wood if rng.random() < 0.6 else _color(rng, _METAL)
    fabric = _color(rng, _FABRIC) if rng.random() < 0.6 else frame
    seat_round = rng.random() < 0.25
    w = rng.uniform(0.40, 0.60)
    d = w * rng.uniform(0.8, 1.1) if not seat_round else w
    h = rng.uniform(0.38, 0.52)
    t = rng.uniform(0.03, 0.08)
    if seat_round:
        outline = _outline_ellipse(w, d, 36)
    elif rng.random() < 0.5:
        outline = _outline_rounded_rect(w, d, rng.uniform(0.02, 0.12))
    else:
        outline = np.array([[w / 2, d / 2], [-w / 2, d / 2], [-w / 2, -d / 2], [w / 2, -d / 2]])
    b.add(_slab(outline, h - t, h, smooth=len(outline) > 4), 0, fabric)

    # back (part 1), at -Z, leaning back by `tilt`
    bh = rng.uniform(0.30, 0.60)
    tilt = rng.uniform(0, 16)
    back_z = -d / 2 + 0.02 if not seat_round else -d / 2 * 0.85
    kind = rng.choice(["solid", "curved", "ladder"], p=[0.35, 0.35, 0.3])
    bw = w * (rng.uniform(0.85, 1.0) if not seat_round else rng.uniform(0.6, 0.85))
    bt = rng.uniform(0.025, 0.06)
    R = _rot("x", -tilt)
    base = np.array([0.0, h, back_z])
    if kind == "solid":
        g = _box((0, bh / 2, 0), (bw, bh, bt))
        b.add(_xf(g, R=R, t=base), 1, fabric)
    elif kind == "curved":
        bend = rng.uniform(0.05, 0.18) * bw
        u = np.linspace(-bw / 2, bw / 2, 14)
        vv = np.linspace(0, bh, 8)
        U, V = np.meshgrid(u, vv, indexing="ij")
        Z = bend * (1 - (2 * U / bw) ** 2) - bend  # concave towards the sitter
        top_round = rng.random() < 0.5
        if top_round:
            V = V * (1 - 0.25 * (2 * U / bw) ** 2)
        grid = np.stack([U, V, -Z], -1)  # the middle bulges backwards (-Z)
        grid = grid @ R.T + base
        b.add(_sheet(grid, bt), 1, fabric)
    else:  # ladder: two posts and 2-4 slats
        post = rng.uniform(0.025, 0.04)
        n_sl = int(rng.integers(2, 5))
        for sx in (-1, 1):
            g = _box((sx * (bw / 2 - post / 2), bh / 2, 0), (post, bh, post))
            b.add(_xf(g, R=R, t=base), 1, frame)
        for i in range(n_sl):
            y = bh * (0.35 + 0.6 * (i + 1) / n_sl) - 0.03
            g = _box((0, y, 0), (bw - 2 * post, rng.uniform(0.03, 0.07), bt * 0.6))
            b.add(_xf(g, R=R, t=base), 1, frame)

    # legs (part 2)
    leg_kind = rng.choice(["four", "pedestal", "sled"], p=[0.7, 0.18, 0.12]) if not seat_round else rng.choice(["three", "four", "pedestal"])
    if leg_kind in ("four", "three"):
        _legs_four(b, rng, w, d, h - t, rng.uniform(0.02, 0.05), 2, frame,
                   splay=rng.uniform(0.0, 0.12), n_legs=4 if leg_kind == "four" else 3)
    elif leg_kind == "pedestal":
        metal = _color(rng, _METAL)
        col_r = rng.uniform(0.025, 0.045)
        hub_y = rng.uniform(0.06, 0.1)
        b.add(_cylinder((0, hub_y, 0), (0, h - t, 0), col_r, n_seg=16), 2, metal)
        n_spokes = int(rng.choice([4, 5]))
        sl = rng.uniform(0.25, 0.33)
        for k in range(n_spokes):
            a = 2 * np.pi * k / n_spokes + np.pi / n_spokes
            end = np.array([sl * math.cos(a), 0.035, sl * math.sin(a)])
            b.add(_cylinder((0, hub_y, 0), end, 0.022, 0.016, n_seg=10), 2, metal)
            b.add(_ellipsoid(end - np.array([0, 0.012, 0]), (0.025, 0.022, 0.025), 10, 6), 2, metal)
    else:  # sled: two bent tubes
        metal = _color(rng, _METAL)
        r = rng.uniform(0.01, 0.016)
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.03)
            path = np.array([[x, h - t, d / 2 - 0.05], [x, 0.02, d / 2 - 0.02], [x, 0.0, d / 2 - 0.08],
                             [x, 0.0, -d / 2 + 0.08], [x, 0.02, -d / 2 + 0.02], [x, h - t, -d / 2 + 0.05]])
            # densify the polyline
            s = np.linspace(0, 1, 40)
            seg = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
            seg /= seg[-1]
            dense = np.stack([np.interp(s, seg, path[:, i]) for i in range(3)], 1)
            b.add(_tube(dense, r, n_seg=10), 2, metal)

    # arms (part 3), optional
    if not seat_round and rng.random() < 0.35:
        ah = rng.uniform(0.18, 0.26)
        aw = rng.uniform(0.04, 0.07)
        al = d * rng.uniform(0.7, 0.95)
        for sx in (-1, 1):
            x = sx * (w / 2 + aw / 2 - 0.01)
            b.add(_box((x, h + ah, -d / 2 + al / 2), (aw, 0.03, al)), 3, frame)
            b.add(_box((x, h + ah / 2, -d / 2 + al - 0.03), (0.03, ah, 0.03)), 3, frame)
    return b


def _table(rng: np.random.Generator) -> _Builder:
    b = _Builder()
    wood = _color(rng, _WOOD)
    legc = wood if rng.random() < 0.6 else _color(rng, _METAL)
    shape = rng.choice(["rect", "rounded", "round", "oval"], p=[0.35, 0.25, 0.25, 0.15])
    h = rng.uniform(0.45, 0.80)
    t = rng.uniform(0.025, 0.07)
    if shape == "round":
        w = d = rng.uniform(0.7, 1.2)
        outline = _outline_ellipse(w, d, 48)
    else:
        w = rng.uniform(0.8, 1.8)
        d = w * rng.uniform(0.45, 0.9)
        if shape == "oval":
            outline = _outline_ellipse(w, d, 48)
        elif shape == "rounded":
            outline = _outline_rounded_rect(w, d, rng.uniform(0.03, 0.15))
        else:
            outline = np.array([[w / 2, d / 2], [-w / 2, d / 2], [-w / 2, -d / 2], [w / 2, -d / 2]])
    b.add(_slab(outline, h - t, h, smooth=len(outline) > 4), 0, wood)
    ly = h - t
    round_top = shape in ("round", "oval")
    kinds = ["four", "pedestal", "trestle"] if not round_top else ["four", "pedestal", "three"]
    kind = rng.choice(kinds, p=[0.55, 0.3, 0.15])
    shelf_ok = True
    if kind in ("four", "three"):
        inset = rng.uniform(0.04, 0.12) * min(w, d)
        if round_top:
            # legs inside the ellipse
            _legs_four(b, rng, w * 0.72, d * 0.72, ly, inset * 0.5, 1, legc, n_legs=4 if kind == "four" else 3,
                       splay=rng.uniform(0, 0.08))
        else:
            _legs_four(b, rng, w, d, ly, inset, 1, legc, splay=rng.uniform(0, 0.05))
        lw, ld = (w * 0.72, d * 0.72) if round_top else (w - 2 * inset, d - 2 * inset)
    elif kind == "pedestal":
        col_r = rng.uniform(0.04, 0.09)
        if rng.random() < 0.5:
            base_r = rng.uniform(0.2, 0.35) * min(w, d) / 0.9
            b.add(_lathe([[(base_r, 0.0), (base_r, 0.03), (col_r * 1.3, 0.07)]], 32, caps=[(base_r, 0.0, False)]), 1, legc)
            b.add(_cylinder((0, 0.07, 0), (0, ly, 0), col_r, n_seg=24), 1, legc)
        else:  # cross feet
            b.add(_cylinder((0, 0.0, 0), (0, ly, 0), col_r, n_seg=24), 1, legc)
            fl = rng.uniform(0.25, 0.4) * min(w, d) / 0.9
            for a in (0, 90):
                b.add(_box((0, 0.025, 0), (2 * fl, 0.05, 0.06), R=_rot("y", a + 45 * (shape == "rect"))), 1, legc)
        shelf_ok = False
        lw = ld = 0
    else:  # trestle: two panels at the ends (and a stretcher)
        pt = rng.uniform(0.04, 0.08)
        for sx in (-1, 1):
            b.add(_box((sx * (w / 2 - 0.1), ly / 2, 0), (pt, ly, d * rng.uniform(0.6, 0.85))), 1, legc)
        b.add(_box((0, ly * 0.3, 0), (w - 0.2, 0.05, 0.05)), 1, legc)
        shelf_ok = False
        lw = ld = 0
    if shelf_ok and rng.random() < 0.4 and lw > 0.2:
        sy = rng.uniform(0.12, 0.35) * h
        b.add(_box((0, sy, 0), (lw * 0.98, 0.025, ld * 0.98)), 2, wood * 0.9)
    return b


def _airplane(rng: np.random.Generator) -> _Builder:
    b = _Builder()
    body_c = _color(rng, [(0.88, 0.88, 0.9), (0.75, 0.76, 0.8), (0.45, 0.5, 0.55), (0.9, 0.9, 0.85)])
    accent = _color(rng, _PAINT)
    kind = rng.choice(["airliner", "fighter", "glider", "prop"], p=[0.4, 0.25, 0.15, 0.2])
    L = rng.uniform(2.5, 4.0)
    R = L * {"airliner": rng.uniform(0.05, 0.07), "fighter": rng.uniform(0.04, 0.06),
             "glider": rng.uniform(0.03, 0.045), "prop": rng.uniform(0.05, 0.07)}[kind]
    nose = rng.uniform(0.08, 0.22) * L
    tail = rng.uniform(0.2, 0.35) * L
    # fuselage along +Z (nose at +Z): a lathe about Y (tail at y = -L/2, nose at +L/2), then turned
    st = np.linspace(0, 1, 8)
    tail_p = np.stack([R * (0.25 + 0.75 * np.sin(st * np.pi / 2)), -L / 2 + tail * st], 1)
    sn = np.linspace(0, 1, 9)[1:]
    nose_r = R * (np.sqrt(1 - sn ** 2) if kind != "fighter" else (1 - sn))
    nose_p = np.stack([nose_r, L / 2 - nose + nose * sn], 1)
    prof = np.concatenate([tail_p, [[R, L / 2 - nose]], nose_p])
    g = _lathe([prof], n_seg=20, caps=[(R * 0.25, -L / 2, False)])
    b.add(_xf(g, R=_rot("x", 90)), 0, body_c)  # +Y -> +Z
    # wings (part 1)
    wing_y = {"airliner": -0.5, "fighter": 0.0, "glider": 0.6, "prop": rng.choice([-0.6, 0.7])}[kind] * R
    if kind == "fighter":
        span = rng.uniform(0.7, 1.0) * L
        root = rng.uniform(0.35, 0.5) * L
        tip = rng.uniform(0.03, 0.12) * L
        sweep = root - tip * rng.uniform(0.5, 1.0)
        wz = rng.uniform(-0.2, -0.05) * L
    elif kind == "glider":
        span = rng.uniform(2.0, 2.8) * L
        root = rng.uniform(0.07, 0.1) * L
        tip = root * rng.uniform(0.4, 0.7)
        sweep = rng.uniform(0, 0.03) * L
        wz = rng.uniform(0.0, 0.12) * L
    else:
        span = rng.uniform(0.8, 1.15) * L
        root = rng.uniform(0.14, 0.24) * L
        tip = root * rng.uniform(0.3, 0.6)
        sweep = rng.uniform(0.05, 0.35) * L * (kind == "airliner") + rng.uniform(0, 0.03) * L
        wz = rng.uniform(-0.05, 0.1) * L
    dihedral = rng.uniform(0, 0.08) * span / 2 * (kind != "fighter")
    wt = root * rng.uniform(0.06, 0.12)
    for sx in (-1, 1):
        x0, x1 = sx * R * 0.5, sx * span / 2
        zr0, zr1 = wz + root / 2, wz - root / 2
        zt0, zt1 = wz + root / 2 - sweep, wz + root / 2 - sweep - tip
        y0, y1 = wing_y, wing_y + dihedral
        tw = wt * 0.4
        c = np.array([[x0, y0 - wt / 2, zr1], [x1, y1 - tw / 2, zt1], [x1, y1 - tw / 2, zt0], [x0, y0 - wt / 2, zr0],
                      [x0, y0 + wt / 2, zr1], [x1, y1 + tw / 2, zt1], [x1, y1 + tw / 2, zt0], [x0, y0 + wt / 2, zr0]])
        b.add(_hexa(c), 1, body_c)
    # tail (part 2): stabilisers + fin(s)
    ts = span * rng.uniform(0.25, 0.4) if kind != "glider" else span * 0.15
    tr = rng.uniform(0.08, 0.14) * L
    tz = -L / 2 + tr * 0.6
    t_tail = rng.random() < 0.3 and kind != "fighter"
    fin_h = rng.uniform(0.12, 0.22) * L
    stab_y = fin_h * 0.95 if t_tail else R * 0.1
    for sx in (-1, 1):
        x0, x1 = sx * R * 0.3, sx * ts / 2
        th = tr * 0.08
        c = np.array([[x0, stab_y - th, tz - tr / 2], [x1, stab_y - th / 2, tz - tr / 2 - 0.3 * tr], [x1, stab_y - th / 2, tz - 0.3 * tr + 0.2 * tr], [x0, stab_y - th, tz + tr / 2],
                      [x0, stab_y + th, tz - tr / 2], [x1, stab_y + th / 2, tz - tr / 2 - 0.3 * tr], [x1, stab_y + th / 2, tz - 0.3 * tr + 0.2 * tr], [x0, stab_y + th, tz + tr / 2]])
        b.add(_hexa(c), 2, body_c)
    fins = [0.0] if (kind != "fighter" or rng.random() < 0.5) else [-R * 0.6, R * 0.6]
    for fx in fins:
        fr = tr * rng.uniform(1.0, 1.5)
        ft = fr * 0.06
        za, zb = tz - fr / 2, tz + fr / 2  # root: rear, front
        zc, zd = tz - fr * 0.6, tz - fr * 0.1  # tip: rear, front (swept back)
        y0 = R * 0.5
        c = np.array([[fx - ft, y0, za], [fx + ft, y0, za], [fx + ft, y0, zb], [fx - ft, y0, zb],
                      [fx - ft / 2, fin_h, zc], [fx + ft / 2, fin_h, zc], [fx + ft / 2, fin_h, zd], [fx - ft / 2, fin_h, zd]])
        b.add(_hexa(c), 2, accent if rng.random() < 0.5 else body_c)
    # engines (part 3), optional
    if kind in ("airliner", "prop") and rng.random() < 0.75:
        n_eng = 2 if (kind == "prop" or rng.random() < 0.65) else 4
        er = R * rng.uniform(0.35, 0.6)
        el = root * rng.uniform(0.6, 0.9)
        offs = [0.3] if n_eng == 2 else [0.22, 0.42]
        for o in offs:
            for sx in (-1, 1):
                x = sx * o * span
                frac = abs(x) / (span / 2)
                zc = wz + root / 2 - sweep * frac - (root - (root - tip) * frac) * 0.2
                yc = wing_y + dihedral * frac + (-er - wt * 0.5 if kind == "airliner" else 0.0)
                b.add(_cylinder((x, yc, zc - el / 2), (x, yc, zc + el / 2), er * 0.8, er, n_seg=16), 3, accent if kind == "prop" else body_c * 0.85)
    return b


def _lamp(rng: np.random.Generator) -> _Builder:
    b = _Builder()
    metal = _color(rng, _METAL)
    shade_c = _color(rng, _FABRIC + _PAINT)
    base_kind = rng.choice(["disc", "box", "dome"])
    br = rng.uniform(0.08, 0.16)
    bh = rng.uniform(0.02, 0.06)
    if base_kind == "disc":
        b.add(_lathe([[(br, 0), (br, bh), (br * 0.85, bh * 1.2)]], 32, caps=[(br, 0, False), (br * 0.85, bh * 1.2, True)]), 0, metal)
        top = bh * 1.2
    elif base_kind == "box":
        b.add(_box((0, bh / 2, 0), (2 * br, bh, 2 * br * rng.uniform(0.7, 1.0))), 0, metal)
        top = bh
    else:
        a = np.linspace(0, np.pi / 2, 8)
        dh = bh * 2.0
        b.add(_lathe([np.stack([br * np.cos(a), dh * np.sin(a)], 1)], 32, caps=[(br, 0, False)]), 0, metal)
        top = dh
    stem_kind = rng.choice(["straight", "desk", "arc"], p=[0.5, 0.3, 0.2])
    sr = rng.uniform(0.008, 0.018)
    shade_kind = rng.choice(["cone", "drum", "globe", "dome"])
    sh = rng.uniform(0.12, 0.28)
    if stem_kind == "straight":
        H = rng.uniform(0.35, 0.9)
        b.add(_cylinder((0, top, 0), (0, H, 0), sr, n_seg=12), 1, metal)
        anchor, axis = np.array([0, H, 0.0]), np.array([0, 1.0, 0])
        shade_center = anchor + np.array([0, sh * 0.3, 0]) if shade_kind != "globe" else anchor + np.array([0, sh * 0.45, 0])
        down = False
    elif stem_kind == "desk":
        a1 = rng.uniform(0.25, 0.4)
        a2 = rng.uniform(0.2, 0.35)
        ang1 = math.radians(rng.uniform(10, 35))
        ang2 = math.radians(rng.uniform(40, 80))
        p0 = np.array([0, top, 0.0])
        p1 = p0 + a1 * np.array([0, math.cos(ang1), -math.sin(ang1)])
        p2 = p1 + a2 * np.array([0, math.sin(ang2) * 0.3, math.cos(ang2)])
        b.add(_cylinder(p0, p1, sr, n_seg=10), 1, metal)
        b.add(_cylinder(p1, p2, sr, n_seg=10), 1, metal)
        b.add(_ellipsoid(p1, (sr * 1.8,) * 3, 10, 6), 1, metal)
        anchor = p2
        shade_center = p2 + np.array([0, -sh * 0.35, 0.04])
        down = True
    else:  # arc floor lamp
        H = rng.uniform(0.9, 1.4)
        reach = rng.uniform(0.35, 0.7)
        tt = np.linspace(0, np.pi / 2, 24)
        path = np.stack([np.zeros_like(tt), top + (H - top) * np.sin(tt), reach * (1 - np.cos(tt))], 1)
        path = np.concatenate([path, [[0, H - 0.04, reach + 0.06]]])
        b.add(_tube(path, sr, n_seg=10), 1, metal)
        anchor = path[-1]
        shade_center = anchor + np.array([0, -sh * 0.4, 0.0])
        down = True
    # shade (part 2)
    r_top = rng.uniform(0.06, 0.14)
    r_bot = r_top * rng.uniform(1.1, 1.8)
    cy = shade_center[1]
    if shade_kind == "cone":
        if down:
            g = _lathe([[(r_bot, -sh / 2), (r_top * 0.6, sh / 2)], [(r_top * 0.6 - 0.004, sh / 2), (r_bot - 0.004, -sh / 2)]], 32,
                       caps=[(r_top * 0.6, sh / 2, True)])
        else:
            g = _lathe([[(r_bot, -sh / 2), (r_top, sh / 2)], [(r_top - 0.004, sh / 2), (r_bot - 0.004, -sh / 2)]], 32)
    elif shade_kind == "drum":
        g = _lathe([[(r_top, -sh / 2), (r_top, sh / 2)], [(r_top - 0.004, sh / 2), (r_top - 0.004, -sh / 2)]], 32,
                   caps=[(r_top, sh / 2, True)] if down else [])
    elif shade_kind == "globe":
        rr = sh * 0.5
        g = _ellipsoid((0, 0, 0), (rr, rr * rng.uniform(0.8, 1.1), rr), 24, 12)
    else:  # dome (hemisphere, opening downwards)
        rr = rng.uniform(0.1, 0.2)
        a = np.linspace(0, np.pi / 2, 10)
        outer = np.stack([rr * np.cos(a), -sh * 0.2 + rr * 0.8 * np.sin(a)], 1)
        inner = (outer * np.array([0.97, 1.0]) - np.array([0, 0.006]))[::-1]
        g = _lathe([outer, inner], 32)
    b.add(_xf(g, t=(shade_center[0], cy, shade_center[2])), 2, shade_c)
    return b


def _mug(rng: np.random.Generator) -> _Builder:
    b = _Builder()
    c = _color(rng, _PAINT)
    r = rng.uniform(0.035, 0.055)
    h = r * rng.uniform(1.4, 2.6)
    wall = rng.uniform(0.003, 0.007)
    shape = rng.choice(["straight", "tapered", "barrel"])
    ys = np.linspace(0, h, 10)
    if shape == "straight":
        rs = np.full_like(ys, r)
    elif shape == "tapered":
        k = rng.uniform(-0.25, 0.25)
        rs = r * (1 - k / 2 + k * ys / h)
    else:
        rs = r * (1 + rng.uniform(0.08, 0.18) * np.sin(np.pi * ys / h))
    outer = np.stack([rs, ys], 1)
    inner = np.stack([rs - wall, ys], 1)[::-1]
    inner[-1, 1] = wall * 1.5
    rim = np.array([[rs[-1], h], [rs[-1] - wall / 2, h + wall * 0.3], [rs[-1] - wall, h]])
    g = _lathe([outer, rim, inner], 36, caps=[(rs[0], 0.0, False), (rs[0] - wall, wall * 1.5, True)])
    b.add(g, 0, c)
    # handle (part 1): C, D or ring shape in the XY plane at +X
    hk = rng.choice(["C", "D", "ear"])
    hr = rng.uniform(0.004, 0.008)
    y0, y1 = h * rng.uniform(0.15, 0.3), h * rng.uniform(0.7, 0.88)
    x_at = lambda y: float(np.interp(y, ys, rs)) - wall * 0.5
    reach = r * rng.uniform(0.5, 0.9)
    if hk == "C":
        t = np.linspace(-np.pi / 2, np.pi / 2, 24)
        cyy, ry = (y0 + y1) / 2, (y1 - y0) / 2
        path = np.stack([x_at(cyy) + reach * np.cos(t) * 1.0, cyy + ry * np.sin(t), np.zeros_like(t)], 1)
        path[:, 0] = np.maximum(path[:, 0], [x_at(y) for y in path[:, 1]])
    elif hk == "D":
        p = np.array([[x_at(y0), y0], [x_at(y0) + reach, y0 + 0.1 * (y1 - y0)], [x_at(y0) + reach, y1 - 0.1 * (y1 - y0)], [x_at(y1), y1]])
        s = np.linspace(0, 1, 28)
        seg = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
        seg /= seg[-1]
        path = np.stack([np.interp(s, seg, p[:, 0]), np.interp(s, seg, p[:, 1]), np.zeros_like(s)], 1)
    else:  # small ear loop
        t = np.linspace(-np.pi * 0.6, np.pi * 0.6, 20)
        cyy = (y0 + y1) / 2 + h * 0.1
        rr = (y1 - y0) * 0.3
        path = np.stack([x_at(cyy) + rr * 0.8 + rr * np.cos(t) * 0.9 - rr * 0.5, cyy + rr * np.sin(t), np.zeros_like(t)], 1)
        path[:, 0] = np.maximum(path[:, 0], [x_at(y) for y in path[:, 1]])
    b.add(_tube(path, hr, n_seg=10), 1, c if rng.random() < 0.7 else _color(rng, _PAINT))
    return b


def _car(rng: np.random.Generator) -> _Builder:
    b = _Builder()
    paint = _color(rng, _PAINT)
    glass = np.array([0.25, 0.3, 0.35]) * rng.uniform(0.8, 1.2)
    tyre = np.array([0.1, 0.1, 0.11])
    kind = rng.choice(["sedan", "hatch", "van", "pickup", "sports"])
    L = rng.uniform(3.8, 5.0)
    W = L * rng.uniform(0.38, 0.45)
    wr = rng.uniform(0.28, 0.38)
    clear = wr * rng.uniform(0.35, 0.6)
    bh = {"sports": 0.45, "van": 0.8}.get(kind, 0.6) * rng.uniform(0.85, 1.15)
    fchamf = rng.uniform(0.1, 0.35)
    rchamf = rng.uniform(0.05, 0.25)
    y0, y1 = clear, clear + bh
    # body side profile (z, y), chamfered front/back; extruded along X
    prof = np.array([[L / 2 - fchamf, y0], [L / 2, y0 + bh * 0.35], [L / 2 - fchamf * 0.6, y1],
                     [-L / 2 + rchamf * 0.6, y1], [-L / 2, y0 + bh * 0.5], [-L / 2 + rchamf, y0]])
    # _slab extrudes an XZ outline along Y: build in (z, x)->(x, z) then rotate so "y" becomes X
    g = _slab(prof[:, [0, 1]], -W / 2, W / 2, smooth=False)  # outline coords are (z, y), thickness along "y"
    # map (a, t, b) = (z, x, y) -> (x, y, z) = (t, b, a)
    v, f, n = g
    b.add((v[:, [1, 2, 0]], f, n[:, [1, 2, 0]]), 0, paint)
    # cabin (part 1)
    if kind == "van":
        cl, cz = L * rng.uniform(0.7, 0.8), -L * 0.08
    elif kind == "pickup":
        cl, cz = L * rng.uniform(0.28, 0.35), L * 0.08
    elif kind == "hatch":
        cl, cz = L * rng.uniform(0.5, 0.6), -L * 0.12
    elif kind == "sports":
        cl, cz = L * rng.uniform(0.3, 0.4), -L * 0.05
    else:
        cl, cz = L * rng.uniform(0.42, 0.52), -L * 0.03
    ch = {"van": 0.75, "sports": 0.35}.get(kind, 0.5) * rng.uniform(0.85, 1.15)
    cw = W * rng.uniform(0.82, 0.92)
    ws = cl * rng.uniform(0.15, 0.35)  # windscreen slant
    rs_ = cl * (rng.uniform(0.0, 0.1) if kind in ("hatch", "van") else rng.uniform(0.1, 0.3))
    cprof = np.array([[cz + cl / 2, y1], [cz + cl / 2 - ws, y1 + ch], [cz - cl / 2 + rs_, y1 + ch], [cz - cl / 2, y1]])
    v, f, n = _slab(cprof, -cw / 2, cw / 2, smooth=False)
    b.add((v[:, [1, 2, 0]], f, n[:, [1, 2, 0]]), 1, glass if rng.random() < 0.5 else paint * 0.8)
    # wheels (part 2)
    tw = rng.uniform(0.18, 0.28)
    axles = [L / 2 - rng.uniform(0.55, 0.8), -L / 2 + rng.uniform(0.55, 0.8)]
    if kind == "pickup" and rng.random() < 0.3:
        axles.append(axles[-1] + 2.2 * wr)
    for z in axles:
        for sx in (-1, 1):
            x0 = sx * (W / 2 - tw * 0.4)
            g = _cylinder((x0 - sx * tw / 2, wr, z), (x0 + sx * tw / 2, wr, z), wr, n_seg=22)
            b.add(g, 2, tyre)
    return b


def _guitar(rng: np.random.Generator) -> _Builder:
    b = _Builder()
    wood = _color(rng, _WOOD)
    finish = _color(rng, _PAINT) if rng.random() < 0.5 else wood
    dark = _color(rng, [(0.25, 0.16, 0.1), (0.12, 0.1, 0.09), (0.5, 0.35, 0.2)])
    kind = rng.choice(["acoustic", "electric", "classical"], p=[0.4, 0.4, 0.2])
    lower = rng.uniform(0.17, 0.21) if kind != "electric" else rng.uniform(0.15, 0.18)
    upper = lower * rng.uniform(0.7, 0.85)
    depth = rng.uniform(0.08, 0.12) if kind != "electric" else rng.uniform(0.035, 0.05)
    # outline (x, y): a smooth union of circles (lower bout, upper bout, and for electrics two
    # horns), traced along rays from a point of the waist (the union is star-shaped from there)
    circles = [(0.0, 0.0, lower), (0.0, (lower + upper) * rng.uniform(0.62, 0.75), upper)]
    if kind == "electric":
        hr = upper * rng.uniform(0.34, 0.42)
        up_y = circles[1][1]
        left_long = rng.uniform(0.1, 0.4) * upper
        circles.append((-upper * 0.45, up_y + upper * 0.45 + left_long, hr))
        circles.append((upper * 0.45, up_y + upper * 0.45, hr))
    oy = 0.5 * ((0.0 + lower) + (circles[1][1] - upper))  # middle of the waist, inside both bouts
    n = 96
    a = 2 * np.pi * np.arange(n) / n
    d = np.stack([np.cos(a), np.sin(a)], 1)
    ts = []
    for cx, cy, rho in circles:
        cvec = np.array([cx, cy - oy])
        dc = d @ cvec
        disc = dc ** 2 - (cvec @ cvec - rho ** 2)
        ts.append(np.where(disc > 0, dc + np.sqrt(np.maximum(disc, 0)), 0.0))
    k = 5.0
    t_all = np.power(np.sum(np.power(np.maximum(np.stack(ts), 0.0), k), 0), 1.0 / k)
    out = np.stack([t_all * d[:, 0], oy + t_all * d[:, 1]], 1)
    body_len = float(out[:, 1].max() - out[:, 1].min())
    v, f, nn = _slab(out, -depth / 2, depth / 2)
    # outline is (x, y); thickness along "y" of the slab -> z. map (a, t, b)=(x, z, y) -> (x, y, z)
    b.add((v[:, [0, 2, 1]], f, nn[:, [0, 2, 1]]), 0, finish)
    top_y = float(out[:, 1].max())
    # neck (part 1)
    nl = rng.uniform(0.42, 0.5)
    nw0, nw1 = rng.uniform(0.045, 0.06), rng.uniform(0.05, 0.065)
    nt = 0.022
    zf = depth / 2 - nt / 2
    y0 = top_y - 0.06
    c = np.array([[-nw1 / 2, y0, zf - nt / 2], [nw1 / 2, y0, zf - nt / 2], [nw1 / 2, y0, zf + nt / 2], [-nw1 / 2, y0, zf + nt / 2],
                  [-nw0 / 2, y0 + nl, zf - nt / 2], [nw0 / 2, y0 + nl, zf - nt / 2], [nw0 / 2, y0 + nl, zf + nt / 2], [-nw0 / 2, y0 + nl, zf + nt / 2]])
    b.add(_hexa(c), 1, dark)
    # headstock (part 2): tilted back (acoustic/classical) or straight (electric), 3+3 or inline
    hl = rng.uniform(0.15, 0.2)
    hw = rng.uniform(0.06, 0.09)
    tilt = rng.uniform(8, 15) if kind != "electric" else 0.0
    base = np.array([0, y0 + nl, zf])
    inline = kind == "electric" and rng.random() < 0.6
    if inline:
        hc = np.array([[-nw0 / 2, 0, -nt / 2], [nw0 / 2, 0, -nt / 2], [nw0 / 2, 0, nt / 2], [-nw0 / 2, 0, nt / 2],
                       [-nw0 / 2, hl, -nt / 2], [nw0 / 2 + hw * 0.5, hl, -nt / 2], [nw0 / 2 + hw * 0.5, hl, nt / 2], [-nw0 / 2, hl, nt / 2]])
    else:
        hc = np.array([[-nw0 / 2, 0, -nt / 2], [nw0 / 2, 0, -nt / 2], [nw0 / 2, 0, nt / 2], [-nw0 / 2, 0, nt / 2],
                       [-hw / 2, hl, -nt / 2], [hw / 2, hl, -nt / 2], [hw / 2, hl, nt / 2], [-hw / 2, hl, nt / 2]])
    R = _rot("x", -tilt)
    b.add(_hexa(hc @ R.T + base), 2, dark)
    for i in range(3):
        y = hl * (0.3 + 0.22 * i)
        pr = 0.008
        if inline:
            p = np.array([nw0 / 2 + hw * 0.3 * (y / hl), y, 0]) @ R.T + base
            b.add(_cylinder(p, p + np.array([0.03, 0, 0]), pr, n_seg=8), 2, np.array([0.75, 0.75, 0.78]))
        else:
            wx = nw0 / 2 + (hw - nw0) / 2 * (y / hl)
            for sx in (-1, 1):
                p = np.array([sx * wx, y, 0]) @ R.T + base
                b.add(_cylinder(p, p + np.array([sx * 0.03, 0, 0]), pr, n_seg=8), 2, np.array([0.75, 0.75, 0.78]))
    return b


def _bottle(rng: np.random.Generator) -> _Builder:
    b = _Builder()
    glass = _color(rng, _GLASS)
    capc = _color(rng, _PAINT + _METAL)
    kind = rng.choice(["wine", "milk", "flask", "square"], p=[0.35, 0.25, 0.2, 0.2])
    r = rng.uniform(0.03, 0.05)
    h = r * rng.uniform(3.0, 6.0) if kind != "flask" else r * rng.uniform(1.8, 2.6)
    nr = r * rng.uniform(0.25, 0.45)
    nh = rng.uniform(0.04, 0.1)
    n_seg = {"square": int(rng.choice([4, 6])), "milk": 28}.get(kind, 32)
    if kind == "flask":
        a = np.linspace(-np.pi / 2, np.pi / 2 - 0.35, 14)
        prof = np.stack([r * np.cos(a), h / 2 + h / 2 * np.sin(a)], 1)
        prof[0, 0] = 0.0
        shoulder_top = float(prof[-1, 1])
        body = [prof, [(prof[-1, 0], shoulder_top), (nr, shoulder_top)]]
        caps = []
    else:
        sh = h * rng.uniform(0.55, 0.8)  # where the shoulder starts
        t = np.linspace(0, 1, 8)
        round_sh = kind == "wine" or rng.random() < 0.5
        sy = sh + (h - sh) * t
        sr = r - (r - nr) * (np.sin(t * np.pi / 2) if round_sh else t)
        if kind == "milk":
            sr = r - (r - nr) * t ** 0.6
        body = [[(r * 0.97, 0.0), (r, r * 0.05), (r, sh)], np.stack([sr, sy], 1)]
        caps = [(r * 0.97, 0.0, False)]
        shoulder_top = h
    g = _lathe(body, n_seg=n_seg, caps=caps, phase=np.pi / 4 if n_seg == 4 else 0.0)
    b.add(g, 0, glass)
    # neck (part 1) with a lip
    ny0 = shoulder_top
    ny1 = ny0 + nh
    lip = rng.random() < 0.6
    segs = [[(nr, ny0), (nr * rng.uniform(0.85, 1.0), ny1 - (0.008 if lip else 0))]]
    if lip:
        segs.append([(nr * 1.15, ny1 - 0.008), (nr * 1.15, ny1)])
    g = _lathe(segs, 24, caps=[] if rng.random() < 0.5 else [(nr * (1.15 if lip else 1.0), ny1, True)])
    b.add(g, 1, glass)
    # cap (part 2), optional
    if rng.random() < 0.75:
        ck = rng.choice(["screw", "cork", "tall"])
        cr = nr * (1.25 if ck != "cork" else 0.95)
        ch = {"screw": 0.02, "cork": 0.025, "tall": 0.045}[ck] * rng.uniform(0.8, 1.3)
        y0 = ny1 - (ch * 0.4 if ck != "cork" else -0.0)
        if ck == "cork":
            g = _lathe([[(cr * 0.9, y0), (cr, y0 + ch)]], 20, caps=[(cr, y0 + ch, True)])
        else:
            g = _lathe([[(cr, y0), (cr, y0 + ch)]], 24, caps=[(cr, y0 + ch, True), (cr, y0, False)])
        b.add(g, 2, capc if ck != "cork" else np.array([0.72, 0.58, 0.4]))
    return b


_BUILDERS: dict[str, Callable[[np.random.Generator], _Builder]] = {
    "chair": _chair,
    "table": _table,
    "airplane": _airplane,
    "lamp": _lamp,
    "mug": _mug,
    "car": _car,
    "guitar": _guitar,
    "bottle": _bottle,
}


def make_object(class_name: str, rng: np.random.Generator | int) -> tuple[Mesh, np.ndarray]:
    """One procedurally generated object: ``(mesh, face_labels)``.

    The mesh is normalised into the unit sphere, +Y up, and carries vertex normals and
    per-vertex colours (one material colour per part, for renders). ``face_labels`` ``(F,)``
    int64 are global part ids (:func:`class_part_ids`).
    """
    from crosspoint.geometry import normalize_unit_sphere

    _check_class(class_name)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    b = _BUILDERS[class_name](rng)
    v, f, n, local, colors = b.build()
    vn, _, _ = normalize_unit_sphere(v.astype(np.float32))
    mesh = Mesh(np.asarray(vn, np.float32), f, vertex_colors=colors.astype(np.float32), vertex_normals=n.astype(np.float32))
    return mesh, (local + _PART_OFFSETS[class_name]).astype(np.int64)


# =============================================================================================
# objects and the dataset
# =============================================================================================


def _object_seeds(seed: int, class_index: int, index: int) -> tuple[np.random.Generator, int, int]:
    """(shape rng, sampling seed, view seed) of object ``index`` of a class; independent streams."""
    ss = np.random.SeedSequence([int(seed), int(class_index), int(index)])
    shape, sample, view = ss.spawn(3)
    return (
        np.random.default_rng(shape),
        int(sample.generate_state(1)[0] & 0x7FFFFFFF),
        int(view.generate_state(1)[0] & 0x7FFFFFFF),
    )


def _sample(mesh: Mesh, face_labels: np.ndarray, n_points: int, seed: int):
    from crosspoint.geometry import sample_mesh_surface

    pts, nrm, fi = sample_mesh_surface(mesh.vertices, mesh.faces, n_points, seed=seed)
    pts = np.asarray(pts, np.float32)
    nrm = np.asarray(nrm, np.float32)
    return pts, nrm, face_labels[np.asarray(fi, np.int64)]


def _object_id(class_name: str, index: int) -> str:
    return f"{class_name}_{index:04d}"


def demo_object(class_name: str | None = None, seed: int = 0, *, index: int = 0, n_points: int = 2048) -> PointCloud:
    """One demo object, instantly: the dataset's ``<class>_<index>`` for ``seed``.

    A :class:`PointCloud` of ``n_points`` surface points with normals, global part ``labels``,
    the ``mesh``, ``class_label`` (index in :data:`CLASSES`) and ``category``. ``class_name``
    ``None`` picks ``CLASSES[seed % 8]``. ``meta`` holds ``part_names`` (global id -> name).
    """
    if class_name is None:
        class_name = CLASSES[int(seed) % len(CLASSES)]
    ci = CLASSES.index(_check_class(class_name))
    rng, s_seed, _ = _object_seeds(seed, ci, index)
    mesh, fl = make_object(class_name, rng)
    pts, nrm, lab = _sample(mesh, fl, n_points, s_seed)
    return PointCloud(
        pts,
        normals=nrm,
        labels=lab,
        mesh=mesh,
        source_format="demo",
        class_label=ci,
        category=class_name,
        meta={
            "name": f"demo {_object_id(class_name, index)} (seed {seed})",
            "object_id": _object_id(class_name, index),
            "synset": SYNSETS[class_name],
            "face_labels": fl,
            "part_names": {i: f"{class_name}/{p}" for i, p in zip(class_part_ids(class_name), CLASS_PARTS[class_name])},
            "seed": int(seed),
        },
    )


def write_mesh_ply(path: str | Path, mesh: Mesh, face_labels: np.ndarray | None = None) -> None:
    """Binary little-endian PLY: vertices with normals and uchar colours (when present), faces
    with an int ``label`` property (when given). Readable by plyfile, trimesh and Open3D."""
    v = np.asarray(mesh.vertices, np.float32)
    f = np.asarray(mesh.faces, np.int32)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if mesh.vertex_normals is not None:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if mesh.vertex_colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    va = np.empty(v.shape[0], dtype=fields)
    va["x"], va["y"], va["z"] = v.T
    if mesh.vertex_normals is not None:
        va["nx"], va["ny"], va["nz"] = np.asarray(mesh.vertex_normals, np.float32).T
    if mesh.vertex_colors is not None:
        c = np.floor(np.clip(mesh.vertex_colors, 0, 1) * 255 + 0.5).astype(np.uint8)
        va["red"], va["green"], va["blue"] = c.T
    ffields = [("n", "u1"), ("i", "<i4", (3,))]
    if face_labels is not None:
        ffields.append(("label", "<i4"))
    fa = np.empty(f.shape[0], dtype=ffields)
    fa["n"] = 3
    fa["i"] = f
    if face_labels is not None:
        fa["label"] = np.asarray(face_labels, np.int32)
    head = ["ply", "format binary_little_endian 1.0", "comment crosspoint demo mesh; face label = global part id",
            f"element vertex {v.shape[0]}"]
    type_names = {"<f4": "float", "u1": "uchar"}
    head += [f"property {type_names[t]} {name}" for name, t in fields]
    head += [f"element face {f.shape[0]}", "property list uchar int vertex_indices"]
    if face_labels is not None:
        head.append("property int label")
    head.append("end_header")
    with open(path, "wb") as fh:
        fh.write(("\n".join(head) + "\n").encode("ascii"))
        fh.write(va.tobytes())
        fh.write(fa.tobytes())


def _write_part_txt(path: Path, pts: np.ndarray, nrm: np.ndarray, lab: np.ndarray) -> None:
    rows = np.concatenate([pts.astype(np.float64), nrm.astype(np.float64)], 1)
    lines = [
        "%.6f %.6f %.6f %.6f %.6f %.6f %d" % (*r, l) for r, l in zip(rows.tolist(), lab.tolist())
    ]
    path.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class _Job:
    out: str
    seed: int
    class_index: int
    indices: tuple[int, ...]
    n_points: int
    n_views: int
    size: int


def _run_job(job: _Job) -> list[tuple[str, int, list[str]]]:
    """Build, sample, render and write some objects of one class. Returns (id, index, parts)."""
    from crosspoint.io import write_point_cloud
    from crosspoint.render import render_views, write_views

    out = Path(job.out)
    name = CLASSES[job.class_index]
    syn = SYNSETS[name]
    done = []
    for i in job.indices:
        oid = _object_id(name, i)
        rng, s_seed, v_seed = _object_seeds(job.seed, job.class_index, i)
        mesh, fl = make_object(name, rng)
        pts, nrm, lab = _sample(mesh, fl, job.n_points, s_seed)
        write_point_cloud(out / "ShapeNet" / syn / f"{oid}.ply", PointCloud(pts))
        _write_part_txt(out / PART_DIR / syn / f"{oid}.txt", pts, nrm, lab)
        write_mesh_ply(out / "meshes" / syn / f"{oid}.ply", mesh, fl)
        if job.n_views > 0:
            views = render_views(mesh, job.n_views, size=job.size, seed=v_seed, normalize=False)
            write_views(out / "ShapeNetRendering" / syn / oid / "rendering", views)
        parts = sorted({CLASS_PARTS[name][int(x) - _PART_OFFSETS[name]] for x in np.unique(lab)},
                       key=CLASS_PARTS[name].index)
        done.append((oid, i, parts))
    return done


def _splits(seed: int, class_index: int, n: int) -> list[str]:
    """70/10/20 train/val/test per class (at least one test object from 2, one val from 3)."""
    n_test = int(round(0.2 * n))
    n_val = int(round(0.1 * n))
    if n >= 2 and n_test == 0:
        n_test = 1
    if n >= 3 and n_val == 0:
        n_val = 1
    perm = np.random.default_rng([int(seed), int(class_index), 7]).permutation(n)
    split = ["train"] * n
    for k in perm[:n_test]:
        split[k] = "test"
    for k in perm[n_test:n_test + n_val]:
        split[k] = "val"
    return split


def _is_previous_demo(d: Path) -> bool:
    return (d / MARKER_NAME).is_file() or (d / META_NAME).is_file()


def _clear_owned(d: Path) -> None:
    for name in _OWNED:
        p = d / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def demo_part_table_meta() -> dict:
    """The demo's part table (all classes) in the form model bundles store as ``meta["part_table"]``."""
    from crosspoint.data.partseg import PartTable

    meta = {
        "classes": [{"name": c, "synset": SYNSETS[c], "parts": list(CLASS_PARTS[c]), "part_ids": class_part_ids(c)}
                    for c in CLASSES],
        "n_parts": N_PARTS,
        "part_names": [f"{c}/{p}" for c in CLASSES for p in CLASS_PARTS[c]],
    }
    return PartTable.from_demo_meta(meta).to_meta()


def read_demo_meta(directory: str | Path) -> dict | None:
    """The parsed ``demo_meta.json`` of a demo folder, or None when missing/unreadable/not ours."""
    p = Path(directory) / META_NAME
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        return None
    return meta


def demo_is_complete(directory: str | Path, *, check_files: bool = True) -> bool:
    """True when ``directory`` holds a finished demo of this format version.

    ``demo_meta.json`` is written last, so a killed run has none (or an old one is removed
    first). With ``check_files`` every object's point file is also checked to exist.
    """
    d = Path(directory)
    meta = read_demo_meta(d)
    if meta is None or meta.get("format_version") != FORMAT_VERSION:
        return False
    if check_files:
        syn = {c["name"]: c["synset"] for c in meta.get("classes", [])}
        for o in meta.get("objects", []):
            if not (d / "ShapeNet" / syn.get(o["class"], "?") / f"{o['id']}.ply").is_file():
                return False
    return True


def _same_params(meta: dict, **params) -> bool:
    return all(meta.get(k) == v for k, v in params.items())


def generate_demo(
    out_dir: str | Path,
    *,
    seed: int = 0,
    per_class: int = 60,
    n_points: int = 2048,
    n_views: int = DEFAULT_VIEWS,
    size: int = DEFAULT_SIZE,
    workers: int | None = None,
    classes: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    force: bool = False,
) -> Path:
    """Generate the demo dataset into ``out_dir`` (see the module doc for the layout).

    Refuses (``ValueError``) a non-empty folder that is not a previous demo. A complete previous
    demo with the same parameters is kept as it is unless ``force``; anything else of ours in
    the folder is deleted first. ``progress(done, total)`` is called after each batch of
    objects; ``cancel()`` returning true stops at the next batch with :class:`DemoCancelled`
    (the folder is then left incomplete, without ``demo_meta.json``). ``workers``: processes
    (default ``min(2, cpu count)``; 0 or 1 runs in this process). The output does not depend on
    ``workers``.
    """
    out = Path(out_dir).expanduser()
    classes = tuple(CLASSES if classes is None else classes)
    for c in classes:
        _check_class(c)
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    if n_points < 1 or n_views < 0 or size < 8:
        raise ValueError("n_points must be >= 1, n_views >= 0 and size >= 8")
    params = dict(seed=int(seed), per_class=int(per_class), n_points=int(n_points), n_views=int(n_views),
                  size=int(size), class_names=list(classes))
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not _is_previous_demo(out):
            raise ValueError(
                f"{out}: folder is not empty and does not hold a previous demo dataset; "
                "choose an empty or new folder"
            )
        meta = read_demo_meta(out)
        if not force and meta is not None and demo_is_complete(out) and _same_params(meta, **params):
            log.info("%s: demo dataset already complete", out)
            if progress is not None:
                total = per_class * len(classes)
                progress(total, total)
            return out
        _clear_owned(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER_NAME).write_text(json.dumps({"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **params}) + "\n")
    for c in classes:
        syn = SYNSETS[c]
        for sub in ("ShapeNet", PART_DIR, "meshes"):
            (out / sub / syn).mkdir(parents=True, exist_ok=True)
        if n_views:
            (out / "ShapeNetRendering" / syn).mkdir(parents=True, exist_ok=True)

    # work split into small batches (one class each) so progress and cancellation are prompt
    batch = 4
    jobs = []
    for c in classes:
        ci = CLASSES.index(c)
        for s in range(0, per_class, batch):
            jobs.append(_Job(str(out), int(seed), ci, tuple(range(s, min(per_class, s + batch))), n_points, n_views, size))
    total = per_class * len(classes)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    t0 = time.perf_counter()
    results: dict[tuple[int, int], list[str]] = {}
    done = 0

    def _collect(res, ci):
        nonlocal done
        for oid, i, parts in res:
            results[(ci, i)] = parts
        done += len(res)
        if progress is not None:
            progress(done, total)

    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            if cancel is not None and cancel():
                raise DemoCancelled(f"{out}: demo generation cancelled")
            _collect(_run_job(job), job.class_index)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # safe from GUI threads; workers load numba kernels from cache
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            pending: dict[Future, _Job] = {}
            it = iter(jobs)
            try:
                for job in it:
                    pending[ex.submit(_run_job, job)] = job
                    if len(pending) >= 2 * workers:
                        break
                while pending:
                    fin, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    if cancel is not None and cancel():
                        raise DemoCancelled(f"{out}: demo generation cancelled")
                    for fut in fin:
                        job = pending.pop(fut)
                        _collect(fut.result(), job.class_index)
                        nxt = next(it, None)
                        if nxt is not None:
                            pending[ex.submit(_run_job, nxt)] = nxt
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise

    # split files and metadata (written last)
    split_lists = {"train": [], "val": [], "test": []}
    objects = []
    for c in classes:
        ci = CLASSES.index(c)
        sp = _splits(seed, ci, per_class)
        for i in range(per_class):
            oid = _object_id(c, i)
            split_lists[sp[i]].append(f"shape_data/{SYNSETS[c]}/{oid}")
            objects.append({"id": oid, "class": c, "synset": SYNSETS[c], "split": sp[i], "parts": results[(ci, i)]})
    rng = np.random.default_rng([int(seed), 99])
    tts = out / PART_DIR / "train_test_split"
    tts.mkdir(parents=True, exist_ok=True)
    for name, lst in split_lists.items():
        lst = [lst[k] for k in rng.permutation(len(lst))] if lst else []
        (tts / f"shuffled_{name}_file_list.json").write_text(json.dumps(lst))
    (out / PART_DIR / "synsetoffset2category.txt").write_text(
        "".join(f"{c.capitalize()}\t{SYNSETS[c]}\n" for c in classes)
    )
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "generator": "crosspoint.data.synthetic",
        **params,
        "classes": [
            {"name": c, "synset": SYNSETS[c], "parts": list(CLASS_PARTS[c]), "part_ids": class_part_ids(c)}
            for c in classes
        ],
        "n_parts": N_PARTS,
        "part_names": [f"{c}/{p}" for c in CLASSES for p in CLASS_PARTS[c]],
        "synset_note": "fake synset ids (9xxxxxxx), never real ShapeNet/WordNet synsets",
        "frame": "+Y up, unit sphere; cameras in rendering_metadata.txt: azimuth elevation in_plane_rotation distance fov",
        "splits": {k: len(v) for k, v in split_lists.items()},
        "objects": objects,
    }
    tmp = out / (META_NAME + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, out / META_NAME)
    log.info("demo dataset: %d objects in %.1f s at %s", total, time.perf_counter() - t0, out)
    return out


def default_demo_dir(seed: int = 0) -> Path:
    """Where the app keeps its demo: ``<user cache>/crosspoint-explorer/demo-v<version>-seed<seed>``.

    ``CROSSPOINT_CACHE_DIR`` overrides the cache folder.
    """
    base = os.environ.get("CROSSPOINT_CACHE_DIR")
    if not base:
        import platformdirs

        base = platformdirs.user_cache_dir("crosspoint-explorer")
    return Path(base) / f"demo-v{FORMAT_VERSION}-seed{int(seed)}"


def ensure_demo(
    progress_callback: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] = lambda: False,
    *,
    directory: str | Path | None = None,
    seed: int = 0,
    **kwargs,
) -> Path:
    """The demo dataset's folder, generating it first when it is missing or incomplete.

    Generates into a temporary sibling folder and renames it into place, so other processes
    never see a half-written demo. Meant for a GUI worker thread: by default it runs in this
    process (``workers=0``; about 40 s for the default size on this 2-core machine) because
    spawning worker processes re-imports the launching script, which a GUI entry point may not
    guard. ``cancel()`` returning true raises :class:`DemoCancelled` and removes the
    temporary folder. ``kwargs`` go to :func:`generate_demo` (``per_class``, ``workers``...).
    """
    kwargs.setdefault("workers", 0)
    final = Path(directory) if directory is not None else default_demo_dir(seed)
    if demo_is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        generate_demo(tmp, seed=seed, progress=progress_callback, cancel=cancel, **kwargs)
        if final.exists():
            if demo_is_complete(final):  # another process finished first
                shutil.rmtree(tmp)
                return final
            if _is_previous_demo(final) or not any(final.iterdir()):
                shutil.rmtree(final)
            else:
                raise ValueError(f"{final}: exists and is not a demo dataset; remove it or pass another directory")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
