"""The hard preset: 24 parametric shape families with labelled parts.

Each family is a function ``rng -> Builder`` that draws a *style* (leg arrangement, back type,
body profile, optional parts...) and then its proportions, and builds the object out of labelled
primitives (:mod:`.primitives`). Objects stand on +Y (up) and face +Z; vessels (mug, cup, bucket,
vase) are turned about +Y at random, so their handles point anywhere. The drawn style is kept on
the builder (``Builder.style``) and written into ``demo_meta.json``.

Some classes are chosen to be confusable in coarse shape, as real benchmarks are: chair /
armchair / sofa / bench / stool, table / desk, bookshelf / cabinet, mug / cup / bucket / bowl,
bottle / vase / jar / rocket, bed / sofa.

On top of its family's own proportions, every object is stretched by an independent factor in
[0.7, 1.3] per axis and turned about +Y to a random heading (:class:`~.catalogue.FamilySet`).

========== ========= ============================================ =============================
class      synset    parts                                        styles
========== ========= ============================================ =============================
chair      91000001  seat, back, leg                              4/3 legs, swivel star, sled,
                                                                  cantilever, bar stool; solid,
                                                                  curved, ladder, spindle back
armchair   91000002  seat, back, leg, arm                         wooden, office (swivel),
                                                                  lounge, wingback
sofa       91000003  seat, back, arm, leg                         2-4 seats, box/rolled/no arms,
                                                                  feet or plinth, chaise
bench      91000004  seat, back, leg                              park (slats), plank, panel,
                                                                  backless or with back
bed        91000005  frame, mattress, headboard, pillow           single/double, panel/slat/
                                                                  round headboard, footboard
table      91000006  top, leg, shelf                              dining/coffee/side; round, rect,
                                                                  oval; legs, pedestal, trestle
desk       91000007  top, leg, drawer                             4 legs, side panels, 1-2 drawer
                                                                  pedestals, drawer under top
bookshelf  91000008  frame, shelf, back, book                     tall, low, ladder; open/closed
                                                                  back; books
lamp       91000009  base, stem, shade                            floor, desk, table, arc, tripod
mug        91000010  body, handle                                 straight, tapered, barrel; C, D,
                                                                  square, ear handle
cup        91000011  body, handle, base                           teacup, espresso, tumbler, paper;
                                                                  saucer or foot
bucket     91000012  body, handle, rim                            pail, tub, bail up/down
bottle     91000013  body, neck, cap                              wine, milk, flask, square, jug
vase       91000014  body, neck, handle, foot                     bulb, cylinder, trumpet, gourd,
                                                                  amphora
car        91000015  body, cabin, wheel                           sedan, hatch, van, pickup,
                                                                  sports, SUV
boat       91000016  hull, deck, mast, sail                       sailboat, motorboat, rowboat,
                                                                  canoe
airplane   91000017  fuselage, wing, tail, engine                 airliner, fighter, glider, prop,
                                                                  bizjet
rocket     91000018  body, nose, fin, booster                     single/multi-stage, capsule,
                                                                  boosters 0/2/4
guitar     91000019  body, neck, headstock                        acoustic, electric, classical,
                                                                  bass, ukulele
knife      91000020  blade, handle, guard                         chef, bread, cleaver, dagger,
                                                                  utility
stool      91000021  seat, leg, footrest                          bar (ring or rungs), low,
                                                                  swivel, ottoman
cabinet    91000022  body, door, drawer, leg                      wardrobe, sideboard, chest of
                                                                  drawers, nightstand
bowl       91000023  body, foot                                   round, conical, shallow, footed
jar        91000024  body, lid, handle                            mason, cookie, apothecary,
                                                                  canister
========== ========= ============================================ =============================

Synsets start with ``91`` (the easy preset's with ``90``): fake ids that never collide with
ShapeNet's (all below 16,000,000).
"""

from __future__ import annotations

import math

import numpy as np

from .catalogue import Family, FamilySet
from .primitives import (
    FABRIC,
    GLASS,
    METAL,
    PAINT,
    WOOD,
    Builder,
    align_y,
    box,
    cylinder,
    ellipsoid,
    hexa,
    lathe,
    outline_ellipse,
    outline_rounded_rect,
    pick_color,
    rot,
    sheet,
    slab,
    tube,
    xf,
)

__all__ = ["HARD", "FAMILIES"]

_CERAMIC = [(0.92, 0.92, 0.88), (0.85, 0.80, 0.70), (0.30, 0.42, 0.60), (0.70, 0.30, 0.25), (0.25, 0.25, 0.27),
            (0.55, 0.65, 0.50)]
_DARK = [(0.25, 0.16, 0.10), (0.12, 0.10, 0.09), (0.50, 0.35, 0.20), (0.15, 0.15, 0.16)]


# =============================================================================================
# helpers
# =============================================================================================


def _choice(rng: np.random.Generator, options, p=None):
    """``rng.choice`` that returns a Python object (str/int) rather than a numpy scalar."""
    k = int(rng.choice(len(options), p=p))
    return options[k]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _tone(c, k: float) -> np.ndarray:
    """A colour made lighter (k > 1) or darker, kept in [0, 1]."""
    return np.clip(np.asarray(c, float) * k, 0.0, 1.0)


def _rect(w: float, d: float) -> np.ndarray:
    return np.array([[w / 2, d / 2], [-w / 2, d / 2], [-w / 2, -d / 2], [w / 2, -d / 2]])


def _dense(path, n: int) -> np.ndarray:
    """A polyline resampled to ``n`` points evenly spaced along its length."""
    p = np.asarray(path, float)
    seg = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    s = np.linspace(0.0, seg[-1], n)
    return np.stack([np.interp(s, seg, p[:, i]) for i in range(3)], 1)


def _turn(b: Builder, R: np.ndarray) -> None:
    """Rotate everything already added to ``b`` (normals follow)."""
    b.parts = [xf(g, R=R) for g in b.parts]


def _leg(foot, top, thick: float, taper: float, round_: bool) -> tuple:
    """One leg from ``foot`` to ``top``: a tapered cylinder or a tapered square post."""
    foot, top = np.asarray(foot, float), np.asarray(top, float)
    if round_:
        return cylinder(foot, top, thick * taper * 0.5, thick * 0.5, n_seg=12, caps=(True, False))
    dvec = top - foot
    R = align_y(dvec)
    L = float(np.linalg.norm(dvec))
    bt, tp = thick * taper / 2, thick / 2
    c = np.array([[-bt, 0, -bt], [bt, 0, -bt], [bt, 0, bt], [-bt, 0, bt],
                  [-tp, L, -tp], [tp, L, -tp], [tp, L, tp], [-tp, L, tp]])
    return hexa(c @ R.T + foot)


def _legs(b: Builder, rng, part: int, color, corners, h: float, *, thick=None, splay=None, round_=None,
          stretchers=None, y0: float = 0.0) -> dict:
    """Legs from height ``y0`` up to ``h`` under the ``(x, z)`` corners, optionally splayed outwards,
    optionally joined by stretchers. Returns the drawn style."""
    thick = _u(rng, 0.025, 0.05) if thick is None else thick
    splay = _u(rng, 0.0, 0.12) if splay is None else splay
    round_ = bool(rng.random() < 0.5) if round_ is None else round_
    taper = _u(rng, 0.55, 1.0)
    feet = []
    for x, z in corners:
        r = math.hypot(x, z)
        out = np.array([x / r, 0.0, z / r]) * splay * (h - y0) if r > 1e-9 else np.zeros(3)
        foot = np.array([x + out[0], y0, z + out[2]])
        b.add(_leg(foot, (x, h, z), thick, taper, round_), part, color)
        feet.append(foot)
    stretchers = bool(rng.random() < 0.3) if stretchers is None else stretchers
    if stretchers and len(corners) >= 3:
        ys = y0 + (h - y0) * _u(rng, 0.15, 0.35)
        for k in range(len(corners)):
            a, c = np.array([*corners[k]]), np.array([*corners[(k + 1) % len(corners)]])
            pa = np.array([a[0], ys, a[1]])
            pc = np.array([c[0], ys, c[1]])
            b.add(cylinder(pa, pc, thick * 0.3, n_seg=8), part, color)
    return {"legs": len(corners), "round_legs": round_, "stretchers": stretchers}


def _corners(w: float, d: float, inset: float, n: int = 4) -> list:
    if n == 4:
        return [(sx * (w / 2 - inset), sz * (d / 2 - inset)) for sx in (-1, 1) for sz in (-1, 1)]
    rr = min(w, d) / 2 - inset
    return [(rr * math.cos(a), rr * math.sin(a)) for a in np.radians(90 + np.arange(n) * 360 / n)]


def _star_base(b: Builder, rng, part: int, color, top_y: float, *, spokes=None, reach=None) -> dict:
    """A swivel base: a gas column from ``top_y`` down to a hub, 4-5 spokes with casters."""
    spokes = int(_choice(rng, [4, 5], p=[0.3, 0.7])) if spokes is None else spokes
    reach = _u(rng, 0.24, 0.33) if reach is None else reach
    col_r = _u(rng, 0.022, 0.04)
    hub_y = _u(rng, 0.06, 0.1)
    b.add(cylinder((0, hub_y, 0), (0, top_y, 0), col_r, n_seg=14), part, color)
    phase = _u(rng, 0, 2 * np.pi)
    for k in range(spokes):
        a = phase + 2 * np.pi * k / spokes
        end = np.array([reach * math.cos(a), 0.035, reach * math.sin(a)])
        b.add(cylinder((0, hub_y, 0), end, 0.02, 0.015, n_seg=8), part, color)
        b.add(ellipsoid(end - np.array([0, 0.012, 0]), (0.024, 0.022, 0.024), 8, 5), part, color)
    return {"base": f"swivel{spokes}"}


def _vessel(b: Builder, part: int, color, ys, rs, wall: float, *, n_seg: int = 32, bottom: bool = True) -> None:
    """An open-topped container: the profile ``rs(ys)`` outside, a rim, the same inside
    (``wall`` thinner), a floor ``wall * 1.5`` above the base."""
    ys, rs = np.asarray(ys, float), np.asarray(rs, float)
    outer = np.stack([rs, ys], 1)
    inner = np.stack([np.maximum(rs - wall, wall), ys], 1)[::-1].copy()
    floor = ys[0] + wall * 1.5
    inner = inner[inner[:, 1] >= floor - 1e-9]
    if inner.shape[0] < 2 or inner[-1, 1] > floor:
        inner = np.concatenate([inner, [[max(rs[0] - wall, wall), floor]]])
    rim = np.array([[rs[-1], ys[-1]], [rs[-1] - wall / 2, ys[-1] + wall * 0.3], [rs[-1] - wall, ys[-1]]])
    caps = [(rs[0], ys[0], False)] if bottom else []
    caps.append((inner[-1, 0], floor, True))
    b.add(lathe([outer, rim, inner], n_seg, caps=caps), part, color)


def _loop_handle(b: Builder, part: int, color, x_at, y0: float, y1: float, reach: float, kind: str,
                 radius: float) -> None:
    """A handle on the +X side of a body whose outer radius at height y is ``x_at(y)``."""
    if kind == "C":
        t = np.linspace(-np.pi / 2, np.pi / 2, 20)
        cy, ry = (y0 + y1) / 2, (y1 - y0) / 2
        path = np.stack([x_at(cy) + reach * np.cos(t), cy + ry * np.sin(t), np.zeros_like(t)], 1)
        path[:, 0] = np.maximum(path[:, 0], [x_at(y) for y in path[:, 1]])
    elif kind in ("D", "square"):
        k = 0.1 if kind == "D" else 0.0
        p = np.array([[x_at(y0), y0, 0], [x_at(y0) + reach, y0 + k * (y1 - y0), 0],
                      [x_at(y0) + reach, y1 - k * (y1 - y0), 0], [x_at(y1), y1, 0]])
        path = _dense(p, 24)
    else:  # ear: a small loop near the top
        t = np.linspace(-np.pi * 0.6, np.pi * 0.6, 18)
        cy = y1 - (y1 - y0) * 0.25
        rr = (y1 - y0) * 0.28
        path = np.stack([x_at(cy) + rr * 0.3 + rr * np.cos(t) * 0.9, cy + rr * np.sin(t), np.zeros_like(t)], 1)
        path[:, 0] = np.maximum(path[:, 0], [x_at(y) for y in path[:, 1]])
    b.add(tube(path, radius, n_seg=10), part, color)


def _profile(rng, ys, kind: str, r: float, h: float) -> np.ndarray:
    if kind == "straight":
        return np.full_like(ys, r)
    if kind == "tapered":
        k = _u(rng, -0.3, 0.3)
        return r * (1 - k / 2 + k * ys / h)
    if kind == "flared":
        return r * (0.55 + 0.45 * (ys / h) ** _u(rng, 0.5, 1.2))
    return r * (1 + _u(rng, 0.08, 0.2) * np.sin(np.pi * ys / h))  # barrel


def _board(b: Builder, part: int, color, x0, x1, y0, y1, z0, z1) -> None:
    b.add(box(((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2), (abs(x1 - x0), abs(y1 - y0), abs(z1 - z0))), part, color)


def _cushion(b: Builder, part: int, color, cx, y0, y1, cz, w, d, r) -> None:
    """A cushion: a plate with rounded corners (in plan), from y0 to y1."""
    b.add(xf(slab(outline_rounded_rect(w, d, r, 4), y0, y1), t=(cx, 0, cz)), part, color)


def _upright_cushion(b: Builder, part: int, color, cx, y0, y1, z, w, t, tilt: float = 0.0) -> None:
    """A back cushion: rounded in its own plane (x, y), ``t`` thick along z, leaning back by ``tilt``."""
    g = slab(outline_rounded_rect(w, y1 - y0, min(0.08, 0.3 * (y1 - y0)), 4), -t / 2, t / 2)
    # slab is (x, z) outline extruded along y: turn it so the outline lies in (x, y), thickness along z
    g = xf(g, R=rot("x", 90))
    g = xf(g, t=(0, (y1 - y0) / 2, 0))
    g = xf(g, R=rot("x", -tilt), t=(cx, y0, z))
    b.add(g, part, color)


# =============================================================================================
# seating
# =============================================================================================


def _chair_back(b: Builder, rng, part: int, fabric, frame, w: float, h_seat: float, back_z: float,
                kinds=("solid", "curved", "ladder", "spindle", "frame")) -> str:
    bh = _u(rng, 0.28, 0.6)
    tilt = _u(rng, 0, 18)
    kind = _choice(rng, list(kinds))
    bw = w * _u(rng, 0.75, 1.0)
    bt = _u(rng, 0.02, 0.06)
    R = rot("x", -tilt)
    base = np.array([0.0, h_seat, back_z])
    if kind == "solid":
        b.add(xf(box((0, bh / 2, 0), (bw, bh, bt)), R=R, t=base), part, fabric)
    elif kind == "curved":
        bend = _u(rng, 0.05, 0.18) * bw
        u = np.linspace(-bw / 2, bw / 2, 12)
        vv = np.linspace(0, bh, 6)
        U, V = np.meshgrid(u, vv, indexing="ij")
        Z = bend * (1 - (2 * U / bw) ** 2) - bend
        if rng.random() < 0.5:
            V = V * (1 - 0.25 * (2 * U / bw) ** 2)
        grid = np.stack([U, V, -Z], -1) @ R.T + base
        b.add(sheet(grid, bt), part, fabric)
    else:
        post = _u(rng, 0.022, 0.04)
        for sx in (-1, 1):
            b.add(xf(box((sx * (bw / 2 - post / 2), bh / 2, 0), (post, bh, post)), R=R, t=base), part, frame)
        if kind == "ladder":
            n = int(rng.integers(2, 5))
            for i in range(n):
                y = bh * (0.35 + 0.6 * (i + 1) / n) - 0.03
                b.add(xf(box((0, y, 0), (bw - 2 * post, _u(rng, 0.03, 0.07), bt * 0.6)), R=R, t=base), part, frame)
        elif kind == "spindle":
            n = int(rng.integers(3, 8))
            b.add(xf(box((0, bh - 0.03, 0), (bw, 0.06, bt)), R=R, t=base), part, frame)
            for i in range(n):
                x = -bw / 2 + post + (bw - 2 * post) * (i + 0.5) / n
                b.add(xf(cylinder((x, 0, 0), (x, bh - 0.05, 0), 0.008, n_seg=6), R=R, t=base), part, frame)
        else:  # frame: a top rail and a padded panel below it, with a gap over the seat
            b.add(xf(box((0, bh - 0.035, 0), (bw, 0.07, bt)), R=R, t=base), part, frame)
            ph = bh * _u(rng, 0.3, 0.55)
            b.add(xf(box((0, bh * 0.15 + ph / 2, 0), (bw - 2 * post, ph, bt * 0.8)), R=R, t=base), part, fabric)
    return kind


def _chair(rng: np.random.Generator) -> Builder:
    b = Builder()
    wood = pick_color(rng, WOOD)
    frame = wood if rng.random() < 0.55 else pick_color(rng, METAL)
    fabric = pick_color(rng, FABRIC) if rng.random() < 0.6 else frame
    base = _choice(rng, ["four", "three", "swivel", "sled", "cantilever", "bar"], p=[0.4, 0.08, 0.17, 0.1, 0.1, 0.15])
    round_seat = base in ("three", "bar") and rng.random() < 0.7 or rng.random() < 0.1
    w = _u(rng, 0.38, 0.55)
    d = w * (_u(rng, 0.8, 1.15) if not round_seat else 1.0)
    h = _u(rng, 0.65, 0.8) if base == "bar" else _u(rng, 0.40, 0.52)
    t = _u(rng, 0.02, 0.08)
    outline = outline_ellipse(w, d, 32) if round_seat else (
        outline_rounded_rect(w, d, _u(rng, 0.02, 0.1)) if rng.random() < 0.5 else _rect(w, d))
    b.add(slab(outline, h - t, h, smooth=len(outline) > 4), 0, fabric)
    back_z = -d / 2 + 0.02 if not round_seat else -d / 2 * 0.85
    kinds = ("solid", "curved", "ladder", "spindle", "frame")
    style = {"base": base, "seat": "round" if round_seat else "square"}
    if base == "bar" and rng.random() < 0.25:
        kinds = ("curved",)  # low curved back on a stool
    style["back"] = _chair_back(b, rng, 1, fabric, frame, w * (0.8 if round_seat else 1.0), h, back_z, kinds)
    if base in ("four", "three", "bar"):
        n = 3 if base == "three" else (4 if base == "four" or rng.random() < 0.7 else 3)
        corners = _corners(w, d, _u(rng, 0.02, 0.05), n)
        style.update(_legs(b, rng, 2, frame, corners, h - t, splay=_u(rng, 0.0, 0.14 if base == "bar" else 0.1),
                           stretchers=base == "bar" or None))
    elif base == "swivel":
        style.update(_star_base(b, rng, 2, pick_color(rng, METAL), h - t))
    elif base == "sled":
        r = _u(rng, 0.01, 0.016)
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.03)
            path = [[x, h - t, d / 2 - 0.05], [x, 0.02, d / 2 - 0.02], [x, 0.0, d / 2 - 0.08],
                    [x, 0.0, -d / 2 + 0.08], [x, 0.02, -d / 2 + 0.02], [x, h - t, -d / 2 + 0.05]]
            b.add(tube(_dense(path, 30), r, n_seg=8), 2, frame)
    else:  # cantilever: one bent tube per side, seat held from the back
        r = _u(rng, 0.01, 0.016)
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.03)
            path = [[x, h - t, -d / 2 + 0.04], [x, h - t, d / 2 - 0.06], [x, h * 0.5, d / 2 - 0.02],
                    [x, 0.0, d / 2 - 0.1], [x, 0.0, -d / 2 + 0.02]]
            b.add(tube(_dense(path, 30), r, n_seg=8), 2, frame)
        b.add(cylinder((-w / 2 + 0.03, 0.0, -d / 2 + 0.02), (w / 2 - 0.03, 0.0, -d / 2 + 0.02), r, n_seg=8), 2, frame)
    b.style = style
    return b


def _armchair(rng: np.random.Generator) -> Builder:
    b = Builder()
    kind = _choice(rng, ["wooden", "office", "lounge", "wingback"], p=[0.3, 0.25, 0.3, 0.15])
    wood = pick_color(rng, WOOD)
    fabric = pick_color(rng, FABRIC)
    frame = wood if kind != "office" else pick_color(rng, METAL)
    style = {"kind": kind}
    if kind in ("wooden", "office"):
        w = _u(rng, 0.45, 0.6)
        d = w * _u(rng, 0.85, 1.1)
        h = _u(rng, 0.40, 0.5)
        t = _u(rng, 0.04, 0.09)
        b.add(slab(outline_rounded_rect(w, d, _u(rng, 0.02, 0.1)), h - t, h), 0, fabric)
        style["back"] = _chair_back(b, rng, 1, fabric, frame, w, h, -d / 2 + 0.03,
                                    ("solid", "curved", "frame") if kind == "office" else ("solid", "ladder", "spindle"))
        if kind == "office":
            style.update(_star_base(b, rng, 2, pick_color(rng, METAL), h - t))
        else:
            style.update(_legs(b, rng, 2, frame, _corners(w, d, 0.03), h - t, splay=_u(rng, 0, 0.06)))
        ah = _u(rng, 0.17, 0.26)
        aw = _u(rng, 0.04, 0.08)
        al = d * _u(rng, 0.6, 0.95)
        arm_kind = _choice(rng, ["post", "loop", "panel"], p=[0.5, 0.3, 0.2])
        for sx in (-1, 1):
            x = sx * (w / 2 + aw / 2 - 0.01)
            b.add(box((x, h + ah, -d / 2 + al / 2), (aw, 0.03, al)), 3, frame if kind == "wooden" else fabric)
            if arm_kind == "post":
                b.add(box((x, h + ah / 2, -d / 2 + al - 0.03), (0.03, ah, 0.03)), 3, frame)
            elif arm_kind == "loop":
                path = [[x, h - t / 2, -d / 2 + al * 0.2], [x, h + ah, -d / 2 + al * 0.4],
                        [x, h + ah, -d / 2 + al * 0.9], [x, h - t / 2, -d / 2 + al]]
                b.add(tube(_dense(path, 16), 0.012, n_seg=8), 3, frame)
            else:
                b.add(box((x, h + ah / 2, -d / 2 + al / 2), (0.025, ah, al * 0.9)), 3, frame)
        style["arms"] = arm_kind
    else:  # upholstered: a seat block with a cushion, thick back and arms, on short feet or a plinth
        w = _u(rng, 0.7, 0.95)
        d = _u(rng, 0.7, 0.95)
        h = _u(rng, 0.38, 0.46)
        leg_h = _u(rng, 0.03, 0.18)
        aw = _u(rng, 0.1, 0.2)
        sw = w - 2 * aw
        _board(b, 0, fabric, -sw / 2, sw / 2, leg_h, h - 0.1, -d / 2 + 0.1, d / 2)
        _cushion(b, 0, _tone(fabric, 1.05), 0, h - 0.1, h, 0.05, sw * 0.98, d - 0.12, 0.05)
        bh = _u(rng, 0.35, 0.5) if kind == "lounge" else _u(rng, 0.6, 0.8)
        _board(b, 1, fabric, -w / 2, w / 2, leg_h, h + bh, -d / 2, -d / 2 + _u(rng, 0.12, 0.2))
        arm_h = h + _u(rng, 0.12, 0.25)
        rolled = rng.random() < 0.35
        for sx in (-1, 1):
            x0 = sx * (w / 2 - aw / 2)
            _board(b, 3, fabric, x0 - aw / 2, x0 + aw / 2, leg_h, arm_h, -d / 2 + 0.05, d / 2)
            if rolled:
                b.add(cylinder((x0, arm_h, -d / 2 + 0.05), (x0, arm_h, d / 2), aw * 0.6, n_seg=14), 3, fabric)
            if kind == "wingback":  # wings: side panels at the top of the back
                _board(b, 1, fabric, sx * (w / 2 - 0.03) - 0.03, sx * (w / 2 - 0.03) + 0.03, arm_h, h + bh * 0.95,
                       -d / 2, -d / 2 + 0.25)
        style["arms"] = "rolled" if rolled else "box"
        if leg_h > 0.06 or rng.random() < 0.5:
            style.update(_legs(b, rng, 2, wood, _corners(w, d, 0.05), leg_h, thick=_u(rng, 0.03, 0.05),
                               splay=_u(rng, 0, 0.2), stretchers=False))
        else:
            _board(b, 2, wood * 0.6, -w / 2 + 0.02, w / 2 - 0.02, 0, leg_h, -d / 2 + 0.02, d / 2 - 0.02)
            style["base"] = "plinth"
    b.style = style
    return b


def _sofa(rng: np.random.Generator) -> Builder:
    b = Builder()
    fabric = pick_color(rng, FABRIC)
    wood = pick_color(rng, WOOD + METAL)
    n = int(_choice(rng, [2, 3, 3, 4]))
    seat_w = _u(rng, 0.5, 0.7)
    arms = _choice(rng, ["box", "rolled", "thin", "none"], p=[0.4, 0.25, 0.2, 0.15])
    aw = {"box": _u(rng, 0.12, 0.25), "rolled": _u(rng, 0.12, 0.2), "thin": _u(rng, 0.04, 0.08), "none": 0.0}[arms]
    W = n * seat_w + 2 * aw
    D = _u(rng, 0.75, 1.0)
    leg_h = _u(rng, 0.04, 0.2)
    h = _u(rng, 0.38, 0.46)
    bd = _u(rng, 0.12, 0.22)
    _board(b, 0, fabric * 0.95, -W / 2 + aw, W / 2 - aw, leg_h, h - 0.1, -D / 2 + bd, D / 2)
    chaise = rng.random() < 0.2
    for i in range(n):
        cx = -W / 2 + aw + seat_w * (i + 0.5)
        ext = _u(rng, 0.5, 0.7) if chaise and i == n - 1 else 0.0
        if ext:
            _board(b, 0, fabric * 0.95, cx - seat_w / 2, cx + seat_w / 2, leg_h, h - 0.1, D / 2, D / 2 + ext)
        _cushion(b, 0, fabric, cx, h - 0.1, h, (bd + ext) / 2, seat_w * 0.97, D - bd + ext - 0.02, 0.06)
    bh = _u(rng, 0.3, 0.5)
    _board(b, 1, fabric * 0.9, -W / 2 + aw * 0.5, W / 2 - aw * 0.5, leg_h, h + bh * _u(rng, 0.5, 1.0), -D / 2, -D / 2 + bd)
    back_cushions = rng.random() < 0.6
    if back_cushions:
        tilt = _u(rng, 5, 15)
        for i in range(n):
            cx = -W / 2 + aw + seat_w * (i + 0.5)
            _upright_cushion(b, 1, fabric, cx, h, h + bh, -D / 2 + bd + 0.06, seat_w * 0.96, 0.12, tilt)
    arm_h = h + _u(rng, 0.1, 0.25)
    for sx in (-1, 1):
        if arms == "none":
            break
        x0 = sx * (W / 2 - aw / 2)
        top = arm_h if arms != "rolled" else arm_h - aw * 0.4
        _board(b, 2, fabric * 0.92, x0 - aw / 2, x0 + aw / 2, leg_h, top, -D / 2, D / 2)
        if arms == "rolled":
            b.add(cylinder((x0, top, -D / 2), (x0, top, D / 2), aw * 0.6, n_seg=14), 2, fabric * 0.92)
    feet = rng.random() < 0.7
    if feet:
        nl = 4 if W < 2.0 else 6
        xs = np.linspace(-W / 2 + 0.06, W / 2 - 0.06, nl // 2)
        corners = [(x, z) for x in xs for z in (-D / 2 + 0.06, D / 2 - 0.06)]
        _legs(b, rng, 3, wood, corners, leg_h, thick=_u(rng, 0.03, 0.06), splay=_u(rng, 0, 0.15), stretchers=False)
    else:
        _board(b, 3, wood * 0.7, -W / 2 + 0.03, W / 2 - 0.03, 0, leg_h, -D / 2 + 0.03, D / 2 - 0.03)
    b.style = {"seats": n, "arms": arms, "back_cushions": back_cushions, "chaise": chaise,
               "base": "feet" if feet else "plinth"}
    return b


def _bench(rng: np.random.Generator) -> Builder:
    b = Builder()
    kind = _choice(rng, ["park", "plank", "panel", "upholstered"], p=[0.35, 0.3, 0.2, 0.15])
    wood = pick_color(rng, WOOD)
    metal = pick_color(rng, METAL + _DARK)
    L = _u(rng, 1.0, 2.2)
    D = _u(rng, 0.3, 0.5)
    h = _u(rng, 0.4, 0.48)
    style = {"kind": kind}
    if kind == "park":
        n = int(rng.integers(3, 6))
        gap = _u(rng, 0.01, 0.03)
        sd = (D - gap * (n - 1)) / n
        for i in range(n):
            z = -D / 2 + sd / 2 + i * (sd + gap)
            _board(b, 0, wood, -L / 2, L / 2, h - 0.03, h, z - sd / 2, z + sd / 2)
        has_back = rng.random() < 0.75
        frames = 2 if L < 1.6 else 3
        bh = _u(rng, 0.3, 0.45)
        tilt = _u(rng, 5, 20)
        for x in np.linspace(-L / 2 + 0.1, L / 2 - 0.1, frames):
            for z in (-D / 2 + 0.03, D / 2 - 0.03):
                b.add(box((x, (h - 0.03) / 2, z), (0.05, h - 0.03, 0.05)), 2, metal)
            b.add(box((x, 0.03, 0), (0.05, 0.06, D + 0.06)), 2, metal)
            if has_back:
                b.add(xf(box((0, bh / 2, 0), (0.05, bh, 0.04)), R=rot("x", -tilt), t=(x, h, -D / 2)), 1, metal)
        if has_back:
            ns = int(rng.integers(2, 4))
            for i in range(ns):
                y = bh * (0.3 + 0.65 * (i + 0.5) / ns)
                b.add(xf(box((0, y, -0.03), (L, bh / (ns * 1.6), 0.025)), R=rot("x", -tilt), t=(0, h, -D / 2)), 1, wood)
        style["back"] = has_back
    else:
        t = _u(rng, 0.04, 0.09)
        col = wood if kind != "upholstered" else pick_color(rng, FABRIC)
        b.add(slab(outline_rounded_rect(L, D, _u(rng, 0.01, 0.08)), h - t, h), 0, col)
        has_back = kind != "panel" and rng.random() < 0.3
        if kind == "panel":
            for sx in (-1, 1):
                _board(b, 2, wood * 0.9, sx * (L / 2 - 0.08) - 0.03, sx * (L / 2 - 0.08) + 0.03, 0, h - t,
                       -D / 2 + 0.02, D / 2 - 0.02)
            if rng.random() < 0.5:
                _board(b, 2, wood * 0.9, -L / 2 + 0.1, L / 2 - 0.1, 0.08, 0.12, -0.02, 0.02)
        else:
            pairs = 2 if L < 1.5 else int(_choice(rng, [2, 3]))
            xs = np.linspace(-L / 2 + 0.1, L / 2 - 0.1, pairs)
            corners = [(x, z) for x in xs for z in (-D / 2 + 0.05, D / 2 - 0.05)]
            style.update(_legs(b, rng, 2, wood if kind == "plank" else metal, corners, h - t,
                               splay=_u(rng, 0, 0.15), stretchers=False))
        if has_back:
            bh = _u(rng, 0.25, 0.4)
            for x in (-L / 2 + 0.08, L / 2 - 0.08):
                b.add(box((x, h + bh / 2, -D / 2 + 0.03), (0.04, bh, 0.04)), 1, wood)
            b.add(box((0, h + bh * 0.8, -D / 2 + 0.03), (L - 0.1, bh * 0.35, 0.03)), 1, col)
        style["back"] = has_back
    b.style = style
    return b


def _bed(rng: np.random.Generator) -> Builder:
    b = Builder()
    wood = pick_color(rng, WOOD)
    sheet_c = pick_color(rng, FABRIC)
    W = _choice(rng, [_u(rng, 0.9, 1.1), _u(rng, 1.3, 1.9)])
    L = _u(rng, 1.95, 2.15)
    fh = _u(rng, 0.15, 0.4)  # frame top
    mh = _u(rng, 0.15, 0.3)  # mattress height
    base = _choice(rng, ["box", "legs"], p=[0.5, 0.5])
    if base == "box":
        _board(b, 0, wood, -W / 2, W / 2, 0.0, fh, -L / 2, L / 2)
    else:
        _board(b, 0, wood, -W / 2, W / 2, fh - 0.08, fh, -L / 2, L / 2)
        _legs(b, rng, 0, wood, _corners(W, L, 0.05), fh - 0.08, thick=0.06, splay=0.0, stretchers=False)
    _cushion(b, 1, sheet_c, 0, fh, fh + mh, 0, W - 0.04, L - 0.04, 0.06)
    hk = _choice(rng, ["panel", "slats", "round", "tall"])
    hh = {"panel": _u(rng, 0.4, 0.7), "slats": _u(rng, 0.35, 0.6), "round": _u(rng, 0.45, 0.8),
          "tall": _u(rng, 0.8, 1.2)}[hk]
    z = -L / 2 - 0.03
    top = fh + mh + hh
    if hk in ("panel", "tall"):
        _board(b, 2, wood, -W / 2 - 0.02, W / 2 + 0.02, 0, top, z - 0.03, z + 0.03)
    elif hk == "slats":
        for x in (-W / 2, W / 2):
            _board(b, 2, wood, x - 0.03, x + 0.03, 0, top, z - 0.03, z + 0.03)
        _board(b, 2, wood, -W / 2, W / 2, top - 0.08, top, z - 0.03, z + 0.03)
        ns = int(rng.integers(4, 10))
        for i in range(ns):
            x = -W / 2 + W * (i + 0.5) / ns
            _board(b, 2, wood, x - 0.015, x + 0.015, fh, top - 0.08, z - 0.015, z + 0.015)
    else:  # a panel with an arched top
        a = np.linspace(0, np.pi, 24)
        out = np.stack([W / 2 * np.cos(a), fh + mh + hh * 0.6 + hh * 0.4 * np.sin(a)], 1)
        out = np.concatenate([out, [[-W / 2, 0.0], [W / 2, 0.0]]])
        v, f, n = slab(out, z - 0.03, z + 0.03, smooth=False)
        b.add((v[:, [0, 2, 1]], f, n[:, [0, 2, 1]]), 2, wood)  # outline (x, y), thickness along z
    foot = rng.random() < 0.45
    if foot:
        fb = fh + mh * _u(rng, 0.3, 1.6)
        _board(b, 0, wood, -W / 2 - 0.02, W / 2 + 0.02, 0, fb, L / 2, L / 2 + 0.06)
    npil = 0 if rng.random() < 0.15 else (1 if W < 1.2 else int(_choice(rng, [1, 2])))
    for i in range(npil):
        pw = (W - 0.15) / npil - 0.05
        cx = -W / 2 + 0.075 + (W - 0.15) * (i + 0.5) / npil
        b.add(ellipsoid((cx, fh + mh + 0.05, -L / 2 + 0.25), (pw / 2, 0.07, 0.17), 14, 7), 3, _tone(sheet_c, 1.1))
    b.style = {"width": "double" if W > 1.2 else "single", "headboard": hk, "footboard": foot, "base": base,
               "pillows": npil}
    return b


# =============================================================================================
# tables and storage
# =============================================================================================


def _table(rng: np.random.Generator) -> Builder:
    b = Builder()
    wood = pick_color(rng, WOOD)
    legc = wood if rng.random() < 0.6 else pick_color(rng, METAL)
    use = _choice(rng, ["dining", "coffee", "side", "bar"], p=[0.45, 0.3, 0.15, 0.1])
    shape = _choice(rng, ["rect", "rounded", "round", "oval"], p=[0.35, 0.25, 0.25, 0.15])
    h = {"dining": _u(rng, 0.7, 0.78), "coffee": _u(rng, 0.35, 0.48), "side": _u(rng, 0.5, 0.65),
         "bar": _u(rng, 0.95, 1.1)}[use]
    size = {"dining": _u(rng, 0.9, 1.9), "coffee": _u(rng, 0.8, 1.3), "side": _u(rng, 0.4, 0.6),
            "bar": _u(rng, 0.6, 0.9)}[use]
    t = _u(rng, 0.025, 0.07)
    if shape == "round":
        w = d = size * (0.8 if use == "dining" else 1.0)
        outline = outline_ellipse(w, d, 40)
    else:
        w = size
        d = w * _u(rng, 0.45, 0.9)
        outline = (outline_ellipse(w, d, 40) if shape == "oval" else
                   outline_rounded_rect(w, d, _u(rng, 0.03, 0.15)) if shape == "rounded" else _rect(w, d))
    b.add(slab(outline, h - t, h, smooth=len(outline) > 4), 0, wood)
    ly = h - t
    round_top = shape in ("round", "oval")
    kind = _choice(rng, ["legs", "pedestal", "trestle", "x"], p=[0.55, 0.22, 0.12, 0.11])
    shelf_ok = False
    lw = ld = 0.0
    if kind == "legs":
        n = 3 if round_top and rng.random() < 0.3 else 4
        sc = 0.72 if round_top else 1.0
        inset = _u(rng, 0.04, 0.12) * min(w, d)
        _legs(b, rng, 1, legc, _corners(w * sc, d * sc, inset * (0.5 if round_top else 1.0), n), ly,
              splay=_u(rng, 0, 0.08))
        shelf_ok = n == 4
        lw, ld = w * sc - 2 * inset, d * sc - 2 * inset
    elif kind == "pedestal":
        col_r = _u(rng, 0.04, 0.09)
        if rng.random() < 0.5:
            base_r = _u(rng, 0.2, 0.35) * min(w, d) / 0.9 + 0.1
            b.add(lathe([[(base_r, 0.0), (base_r, 0.03), (col_r * 1.3, 0.07)]], 28, caps=[(base_r, 0.0, False)]), 1, legc)
            b.add(cylinder((0, 0.07, 0), (0, ly, 0), col_r, n_seg=20), 1, legc)
        else:
            b.add(cylinder((0, 0.0, 0), (0, ly, 0), col_r, n_seg=20), 1, legc)
            fl = _u(rng, 0.25, 0.4) * min(w, d) / 0.9 + 0.1
            for a in (0, 90):
                b.add(box((0, 0.025, 0), (2 * fl, 0.05, 0.06), R=rot("y", a + 45 * (shape == "rect"))), 1, legc)
    elif kind == "trestle":
        pt = _u(rng, 0.04, 0.08)
        for sx in (-1, 1):
            b.add(box((sx * (w / 2 - 0.1), ly / 2, 0), (pt, ly, d * _u(rng, 0.6, 0.85))), 1, legc)
        b.add(box((0, ly * 0.3, 0), (w - 0.2, 0.05, 0.05)), 1, legc)
    else:  # x legs at both ends
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.1)
            for s in (-1, 1):
                b.add(cylinder((x, 0, s * d * 0.4), (x, ly, -s * d * 0.4), 0.025, n_seg=8), 1, legc)
    shelf = shelf_ok and rng.random() < 0.35 and lw > 0.2
    if shelf:
        sy = _u(rng, 0.12, 0.35) * h
        b.add(box((0, sy, 0), (lw * 0.98, 0.025, ld * 0.98)), 2, wood * 0.9)
    b.style = {"use": use, "top": shape, "support": kind, "shelf": shelf}
    return b


def _desk(rng: np.random.Generator) -> Builder:
    b = Builder()
    wood = pick_color(rng, WOOD + [(0.9, 0.9, 0.88), (0.2, 0.2, 0.22)])
    legc = wood if rng.random() < 0.5 else pick_color(rng, METAL)
    W = _u(rng, 1.0, 1.7)
    D = _u(rng, 0.5, 0.8)
    h = _u(rng, 0.72, 0.78)
    t = _u(rng, 0.025, 0.05)
    b.add(slab(_rect(W, D), h - t, h, smooth=False), 0, wood)
    ly = h - t
    kind = _choice(rng, ["legs", "panels", "pedestal", "two_pedestals"], p=[0.25, 0.25, 0.3, 0.2])
    pw = _u(rng, 0.35, 0.5)
    if kind in ("pedestal", "two_pedestals"):
        sides = (1,) if kind == "pedestal" else (-1, 1)
        nd = int(rng.integers(2, 5))
        for sx in sides:
            x0 = sx * (W / 2 - pw / 2 - 0.01)
            _board(b, 2, wood, x0 - pw / 2, x0 + pw / 2, 0.02, ly, -D / 2 + 0.02, D / 2 - 0.04)
            for i in range(nd):  # drawer fronts and handles
                y = 0.04 + (ly - 0.06) * (i + 0.5) / nd
                hd = (ly - 0.06) / nd - 0.015
                _board(b, 2, wood * 0.92, x0 - pw / 2 + 0.015, x0 + pw / 2 - 0.015, y - hd / 2, y + hd / 2, D / 2 - 0.04,
                       D / 2 - 0.02)
                _board(b, 2, pick_color(rng, METAL), x0 - 0.05, x0 + 0.05, y - 0.008, y + 0.008, D / 2 - 0.02, D / 2)
        if kind == "pedestal":
            if rng.random() < 0.5:
                _board(b, 1, legc, -W / 2 + 0.01, -W / 2 + 0.05, 0, ly, -D / 2 + 0.02, D / 2 - 0.02)
            else:
                _legs(b, rng, 1, legc, [(-W / 2 + 0.05, -D / 2 + 0.05), (-W / 2 + 0.05, D / 2 - 0.05)], ly,
                      splay=0.0, stretchers=False)
    else:
        if kind == "legs":
            _legs(b, rng, 1, legc, _corners(W, D, 0.04), ly, splay=_u(rng, 0, 0.04), stretchers=False)
        else:
            for sx in (-1, 1):
                _board(b, 1, legc, sx * (W / 2 - 0.03) - 0.02, sx * (W / 2 - 0.03) + 0.02, 0, ly, -D / 2 + 0.01,
                       D / 2 - 0.01)
        # a drawer under the top (always: what makes it a desk)
        dw = W * _u(rng, 0.3, 0.6)
        dx = _u(rng, -0.2, 0.2) * (W - dw)
        _board(b, 2, wood * 0.92, dx - dw / 2, dx + dw / 2, ly - _u(rng, 0.08, 0.14), ly, -D / 2 + 0.05, D / 2 - 0.02)
    modesty = rng.random() < 0.4
    if modesty:
        _board(b, 1, legc, -W / 2 + 0.05, W / 2 - 0.05, ly * 0.35, ly, -D / 2 + 0.03, -D / 2 + 0.05)
    hutch = rng.random() < 0.2
    if hutch:
        hh = _u(rng, 0.25, 0.5)
        _board(b, 0, wood, -W / 2, W / 2, h + hh - 0.025, h + hh, -D / 2, -D / 2 + 0.3)
        for sx in (-1, 1):
            _board(b, 0, wood, sx * W / 2 - 0.02 * sx - 0.01, sx * W / 2 - 0.02 * sx + 0.01, h, h + hh, -D / 2, -D / 2 + 0.3)
    b.style = {"support": kind, "modesty_panel": modesty, "hutch": hutch}
    return b


def _bookshelf(rng: np.random.Generator) -> Builder:
    b = Builder()
    wood = pick_color(rng, WOOD + [(0.9, 0.9, 0.88), (0.15, 0.15, 0.16)])
    kind = _choice(rng, ["tall", "low", "ladder", "cube"], p=[0.4, 0.25, 0.15, 0.2])
    if kind == "tall":
        H, W = _u(rng, 1.2, 2.0), _u(rng, 0.5, 1.0)
    elif kind == "low":
        H, W = _u(rng, 0.6, 1.0), _u(rng, 1.0, 1.6)
    elif kind == "ladder":
        H, W = _u(rng, 1.4, 1.9), _u(rng, 0.5, 0.8)
    else:
        H = _u(rng, 0.7, 1.5)
        W = H * _u(rng, 0.7, 1.4)
    D = _u(rng, 0.25, 0.4)
    th = _u(rng, 0.018, 0.035)
    ns = max(2, int(round(H / _u(rng, 0.3, 0.42))))
    shelf_y = [th + (H - 2 * th) * i / ns for i in range(1, ns)]
    has_back = rng.random() < 0.65 and kind != "ladder"
    if kind == "ladder":  # two leaning rails, shelves getting shallower towards the top
        lean = _u(rng, 0.25, 0.45)
        for sx in (-1, 1):
            b.add(cylinder((sx * W / 2, 0, D / 2), (sx * W / 2, H, D / 2 - lean), 0.02, n_seg=8), 0, wood)
        for i, y in enumerate([0.05] + shelf_y + [H - 0.1]):
            z1 = D / 2 - lean * y / H
            z0 = z1 - D * (1 - 0.6 * y / H)
            _board(b, 1, wood, -W / 2 + 0.02, W / 2 - 0.02, y, y + th, z0, z1)
    else:
        for sx in (-1, 1):
            _board(b, 0, wood, sx * W / 2 - th / 2, sx * W / 2 + th / 2, 0, H, -D / 2, D / 2)
        _board(b, 0, wood, -W / 2, W / 2, H - th, H, -D / 2, D / 2)
        _board(b, 0, wood, -W / 2, W / 2, 0, _u(rng, th, 0.08), -D / 2, D / 2)
        for y in shelf_y:
            _board(b, 1, wood, -W / 2 + th / 2, W / 2 - th / 2, y, y + th, -D / 2 + 0.01, D / 2 - 0.01)
        if kind == "cube":  # vertical dividers
            nv = max(1, int(round(W / (H / ns))) - 1)
            for i in range(1, nv + 1):
                x = -W / 2 + W * i / (nv + 1)
                _board(b, 1, wood, x - th / 2, x + th / 2, 0.05, H - th, -D / 2 + 0.01, D / 2 - 0.01)
    if has_back:
        _board(b, 2, wood * 0.85, -W / 2, W / 2, 0, H, -D / 2 - 0.01, -D / 2 + 0.005)
    fill = _u(rng, 0.0, 0.8) if rng.random() < 0.8 else 0.0
    nbooks = 0
    levels = [th + 0.05] + [y + th for y in shelf_y] if kind != "ladder" else [y + th for y in shelf_y]
    gaps = [(levels[i + 1] - th - levels[i]) if i + 1 < len(levels) else (H - th - levels[i]) for i in range(len(levels))]
    for y, gap in zip(levels, gaps):
        x = -W / 2 + th + 0.01
        while x < W / 2 - 0.06 and kind != "ladder":
            if rng.random() > fill:
                x += _u(rng, 0.05, 0.2)
                continue
            bw = _u(rng, 0.02, 0.05)
            bh = gap * _u(rng, 0.6, 0.92)
            _board(b, 3, pick_color(rng, PAINT + FABRIC), x, x + bw, y, y + bh, -D / 2 + 0.04, -D / 2 + 0.04 + D * 0.75)
            x += bw + 0.003
            nbooks += 1
    b.style = {"kind": kind, "shelves": ns - 1, "back": has_back, "books": nbooks}
    return b


# =============================================================================================
# lamps and vessels
# =============================================================================================


def _lamp(rng: np.random.Generator) -> Builder:
    b = Builder()
    metal = pick_color(rng, METAL + _DARK)
    shade_c = pick_color(rng, FABRIC + PAINT)
    kind = _choice(rng, ["floor", "desk", "table", "arc", "tripod"], p=[0.25, 0.2, 0.3, 0.12, 0.13])
    style = {"kind": kind}
    # base (part 0)
    if kind == "table":  # a bulbous ceramic base
        bh = _u(rng, 0.18, 0.35)
        br = bh * _u(rng, 0.3, 0.55)
        prof = _choice(rng, ["ball", "column", "gourd"])
        ys = np.linspace(0, bh, 14)
        s = ys / bh
        if prof == "ball":
            rs = br * (0.35 + 0.65 * np.sin(np.pi * np.clip(s * 1.05, 0, 1)))
        elif prof == "column":
            rs = br * (0.6 + 0.1 * np.cos(6 * s))
        else:
            rs = br * (0.35 + 0.45 * np.sin(np.pi * s) + 0.25 * np.sin(3 * np.pi * s) ** 2)
        rs[-1] = br * 0.2
        b.add(lathe([np.stack([rs, ys], 1)], 24, caps=[(rs[0], 0.0, False), (rs[-1], bh, True)]),
              0, pick_color(rng, _CERAMIC))
        top = bh
    elif kind == "tripod":
        H = _u(rng, 0.9, 1.5)
        top = H * 0.55
        spread = _u(rng, 0.25, 0.4)
        for k in range(3):
            a = 2 * np.pi * k / 3 + 0.3
            b.add(cylinder((spread * math.cos(a), 0, spread * math.sin(a)), (0, top, 0), 0.012, n_seg=8), 0,
                  pick_color(rng, WOOD))
    else:
        br = _u(rng, 0.08, 0.18)
        bh = _u(rng, 0.02, 0.06)
        if rng.random() < 0.6:
            b.add(lathe([[(br, 0), (br, bh), (br * 0.85, bh * 1.2)]], 28, caps=[(br, 0, False), (br * 0.85, bh * 1.2, True)]),
                  0, metal)
            top = bh * 1.2
        else:
            b.add(box((0, bh / 2, 0), (2 * br, bh, 2 * br * _u(rng, 0.7, 1.0))), 0, metal)
            top = bh
    # stem (part 1) and where the shade hangs
    sr = _u(rng, 0.008, 0.018)
    sh = _u(rng, 0.12, 0.3)
    down = False
    if kind in ("floor", "table", "tripod"):
        H = {"floor": _u(rng, 1.1, 1.7), "table": top + _u(rng, 0.1, 0.25), "tripod": top + _u(rng, 0.3, 0.6)}[kind]
        b.add(cylinder((0, top, 0), (0, H, 0), sr, n_seg=10), 1, metal)
        centre = np.array([0, H + sh * 0.2, 0.0])
    elif kind == "desk":
        a1, a2 = _u(rng, 0.25, 0.45), _u(rng, 0.2, 0.4)
        g1, g2 = math.radians(_u(rng, 5, 40)), math.radians(_u(rng, 30, 85))
        p0 = np.array([0, top, 0.0])
        p1 = p0 + a1 * np.array([0, math.cos(g1), -math.sin(g1)])
        p2 = p1 + a2 * np.array([0, math.sin(g2) * 0.3, math.cos(g2)])
        b.add(cylinder(p0, p1, sr, n_seg=8), 1, metal)
        b.add(cylinder(p1, p2, sr, n_seg=8), 1, metal)
        b.add(ellipsoid(p1, (sr * 1.8,) * 3, 8, 5), 1, metal)
        centre = p2 + np.array([0, -sh * 0.35, 0.04])
        down = True
    else:  # arc
        H = _u(rng, 1.2, 1.8)
        reach = _u(rng, 0.5, 0.9)
        tt = np.linspace(0, np.pi / 2, 20)
        path = np.stack([np.zeros_like(tt), top + (H - top) * np.sin(tt), reach * (1 - np.cos(tt))], 1)
        path = np.concatenate([path, [[0, H - 0.04, reach + 0.06]]])
        b.add(tube(path, sr, n_seg=8), 1, metal)
        centre = path[-1] + np.array([0, -sh * 0.4, 0.0])
        down = True
    # shade (part 2)
    sk = _choice(rng, ["cone", "drum", "globe", "dome"])
    r_top = _u(rng, 0.06, 0.16) * (1.4 if kind in ("floor", "tripod") else 1.0)
    r_bot = r_top * _u(rng, 1.1, 1.8)
    if sk == "cone":
        rt = r_top * (0.6 if down else 1.0)
        g = lathe([[(r_bot, -sh / 2), (rt, sh / 2)], [(rt - 0.004, sh / 2), (r_bot - 0.004, -sh / 2)]], 28,
                  caps=[(rt, sh / 2, True)] if down else [])
    elif sk == "drum":
        g = lathe([[(r_top, -sh / 2), (r_top, sh / 2)], [(r_top - 0.004, sh / 2), (r_top - 0.004, -sh / 2)]], 28,
                  caps=[(r_top, sh / 2, True)] if down else [])
    elif sk == "globe":
        rr = sh * 0.5
        g = ellipsoid((0, 0, 0), (rr, rr * _u(rng, 0.8, 1.1), rr), 20, 10)
    else:
        rr = _u(rng, 0.1, 0.22)
        a = np.linspace(0, np.pi / 2, 9)
        outer = np.stack([rr * np.cos(a), -sh * 0.2 + rr * 0.8 * np.sin(a)], 1)
        inner = (outer * np.array([0.97, 1.0]) - np.array([0, 0.006]))[::-1]
        g = lathe([outer, inner], 28)
    b.add(xf(g, t=centre), 2, shade_c)
    style["shade"] = sk
    b.style = style
    return b


def _mug(rng: np.random.Generator) -> Builder:
    b = Builder()
    c = pick_color(rng, PAINT + _CERAMIC)
    r = _u(rng, 0.035, 0.055)
    h = r * _u(rng, 1.5, 2.8)
    wall = _u(rng, 0.003, 0.007)
    shape = _choice(rng, ["straight", "tapered", "barrel", "flared"], p=[0.35, 0.3, 0.2, 0.15])
    ys = np.linspace(0, h, 10)
    rs = _profile(rng, ys, shape, r, h)
    _vessel(b, 0, c, ys, rs, wall)
    hk = _choice(rng, ["C", "D", "square", "ear"], p=[0.4, 0.3, 0.15, 0.15])

    def x_at(y):
        return float(np.interp(y, ys, rs)) - wall * 0.5

    y0, y1 = h * _u(rng, 0.12, 0.3), h * _u(rng, 0.68, 0.9)
    _loop_handle(b, 1, c if rng.random() < 0.7 else pick_color(rng, PAINT), x_at, y0, y1, r * _u(rng, 0.45, 0.9),
                 hk, _u(rng, 0.004, 0.009))
    _turn(b, rot("y", _u(rng, 0, 360)))
    b.style = {"body": shape, "handle": hk}
    return b


def _cup(rng: np.random.Generator) -> Builder:
    b = Builder()
    c = pick_color(rng, _CERAMIC + PAINT)
    kind = _choice(rng, ["teacup", "espresso", "tumbler", "paper"], p=[0.4, 0.2, 0.2, 0.2])
    wall = _u(rng, 0.002, 0.005)
    if kind in ("teacup", "espresso"):
        r = _u(rng, 0.04, 0.055) if kind == "teacup" else _u(rng, 0.028, 0.035)
        h = r * (_u(rng, 0.8, 1.3) if kind == "teacup" else _u(rng, 1.2, 1.7))
        foot = r * _u(rng, 0.4, 0.6)
        ys = np.linspace(0, h, 10)
        k = _u(rng, 0.4, 1.0)
        rs = foot + (r - foot) * np.sin(np.pi / 2 * (ys / h) ** k)
        rs[0] = foot
    else:
        r = _u(rng, 0.03, 0.045)
        h = r * (_u(rng, 2.0, 3.0) if kind == "paper" else _u(rng, 1.5, 2.4))
        ys = np.linspace(0, h, 8)
        k = _u(rng, 0.6, 0.8)
        rs = r * (k + (1 - k) * ys / h) if kind == "paper" else np.full_like(ys, r)
    y_saucer = 0.0
    saucer = kind in ("teacup", "espresso") and rng.random() < 0.55
    if saucer:
        sr = r * _u(rng, 1.5, 2.0)
        st = _u(rng, 0.006, 0.01)
        prof = [[(sr * 0.5, 0.0), (sr * 0.96, st * 0.8), (sr, st * 1.8)], [(sr * 0.95, st * 2.0), (sr * 0.5, st)]]
        b.add(lathe(prof, 32, caps=[(sr * 0.5, 0.0, False), (sr * 0.5, st, True)]), 2, c * 0.97)
        y_saucer = st
    else:  # no saucer: a foot ring (teacups) or a thick base (tumblers, paper cups) is the base part
        fh = _u(rng, 0.004, 0.01)
        fr = rs[0] * _u(rng, 0.85, 1.05)
        b.add(lathe([[(fr, 0.0), (fr, fh)]], 28, caps=[(fr, 0.0, False), (fr, fh, True)]), 2, c * 0.95)
        y_saucer = fh
    _vessel(b, 0, c, ys + y_saucer, rs, wall)
    handle = kind in ("teacup", "espresso") or (kind == "tumbler" and rng.random() < 0.2)
    if handle:
        def x_at(y):
            return float(np.interp(y - y_saucer, ys, rs)) - wall * 0.5

        y0, y1 = y_saucer + h * _u(rng, 0.2, 0.35), y_saucer + h * _u(rng, 0.7, 0.9)
        _loop_handle(b, 1, c, x_at, y0, y1, r * _u(rng, 0.3, 0.55), _choice(rng, ["C", "ear"]), _u(rng, 0.003, 0.006))
    if kind == "paper" and rng.random() < 0.5:  # a lid (counts as the body)
        b.add(lathe([[(rs[-1] * 1.03, h), (rs[-1] * 0.8, h + 0.012)]], 28, caps=[(rs[-1] * 0.8, h + 0.012, True)]), 0,
              c * 0.9)
    _turn(b, rot("y", _u(rng, 0, 360)))
    b.style = {"kind": kind, "saucer": saucer, "handle": handle}
    return b


def _bucket(rng: np.random.Generator) -> Builder:
    b = Builder()
    c = pick_color(rng, METAL + PAINT)
    kind = _choice(rng, ["pail", "tub"], p=[0.7, 0.3])
    r = _u(rng, 0.1, 0.16)
    h = r * (_u(rng, 1.1, 1.7) if kind == "pail" else _u(rng, 0.6, 0.9))
    taper = _u(rng, 0.7, 0.92)
    ys = np.linspace(0, h, 6)
    rs = r * (taper + (1 - taper) * ys / h)
    wall = _u(rng, 0.003, 0.008)
    _vessel(b, 0, c, ys, rs, wall, n_seg=28)
    rim = rng.random() < 0.7
    if rim:  # a rolled rim and optional ribs
        a = np.linspace(-np.pi / 2, np.pi / 2, 6)
        b.add(lathe([np.stack([r + 0.006 * np.cos(a), h - 0.006 + 0.006 * np.sin(a)], 1)], 28), 2, c * 0.9)
        for y in ys[1:-1][:int(rng.integers(0, 3))]:
            rr = float(np.interp(y, ys, rs))
            b.add(lathe([[(rr, y - 0.004), (rr + 0.004, y), (rr, y + 0.004)]], 28), 2, c * 0.9)
    if kind == "pail":  # a bail: lugs and a wire arc, up, tilted or folded down
        lug_y = h * _u(rng, 0.8, 0.95)
        lug_r = float(np.interp(lug_y, ys, rs))
        for sx in (-1, 1):
            b.add(ellipsoid((sx * (lug_r + 0.006), lug_y, 0), (0.008, 0.018, 0.018), 8, 5), 1, c * 0.8)
        pose = _choice(rng, ["up", "tilted", "down"], p=[0.45, 0.35, 0.2])
        tilt = {"up": 0.0, "tilted": _u(rng, 25, 60), "down": _u(rng, 80, 95)}[pose]
        a = np.linspace(0, np.pi, 22)
        rise = r * _u(rng, 0.7, 1.2)
        arc = np.stack([-(lug_r + 0.012) * np.cos(a), rise * np.sin(a), np.zeros_like(a)], 1)
        arc = arc @ rot("x", tilt).T + np.array([0, lug_y, 0])
        b.add(tube(arc, _u(rng, 0.003, 0.006), n_seg=8), 1, pick_color(rng, METAL))
        if rng.random() < 0.5:  # a grip on the bail
            m = arc[len(arc) // 2]
            d = arc[len(arc) // 2 + 2] - arc[len(arc) // 2 - 2]
            b.add(cylinder(m - d, m + d, 0.012, n_seg=10), 1, pick_color(rng, _DARK))
    else:  # a tub: two side grips
        pose = "grips"
        for sx in (-1, 1):
            y = h * 0.85
            x = float(np.interp(y, ys, rs))
            path = [[sx * x, y - 0.03, -0.04], [sx * (x + 0.03), y - 0.01, -0.03], [sx * (x + 0.03), y - 0.01, 0.03],
                    [sx * x, y - 0.03, 0.04]]
            b.add(tube(_dense(path, 12), 0.006, n_seg=8), 1, c * 0.85)
    _turn(b, rot("y", _u(rng, 0, 360)))
    b.style = {"kind": kind, "handle": pose, "rim": rim}
    return b


def _bottle(rng: np.random.Generator) -> Builder:
    b = Builder()
    glass = pick_color(rng, GLASS)
    capc = pick_color(rng, PAINT + METAL)
    kind = _choice(rng, ["wine", "milk", "flask", "square", "jug", "sports"], p=[0.25, 0.15, 0.15, 0.15, 0.15, 0.15])
    r = _u(rng, 0.03, 0.05) * (1.6 if kind == "jug" else 1.0)
    h = r * {"flask": _u(rng, 1.8, 2.6), "jug": _u(rng, 1.6, 2.4), "sports": _u(rng, 2.5, 3.5)}.get(kind, _u(rng, 3.0, 6.0))
    nr = r * (_u(rng, 0.25, 0.45) if kind != "sports" else _u(rng, 0.6, 0.8))
    nh = _u(rng, 0.04, 0.1) if kind not in ("sports", "jug") else _u(rng, 0.015, 0.03)
    n_seg = {"square": int(_choice(rng, [4, 6])), "milk": 24}.get(kind, 28)
    if kind == "flask":
        a = np.linspace(-np.pi / 2, np.pi / 2 - 0.35, 12)
        prof = np.stack([r * np.cos(a), h / 2 + h / 2 * np.sin(a)], 1)
        prof[0, 0] = 0.0
        top = float(prof[-1, 1])
        body = [prof, [(prof[-1, 0], top), (nr, top)]]
        caps = []
    else:
        sh = h * _u(rng, 0.55, 0.85)
        t = np.linspace(0, 1, 8)
        sy = sh + (h - sh) * t
        sr = r - (r - nr) * (np.sin(t * np.pi / 2) if kind == "wine" or rng.random() < 0.5 else t)
        if kind in ("milk", "jug"):
            sr = r - (r - nr) * t ** 0.6
        waist = kind == "sports" and rng.random() < 0.6
        low = [(r * 0.97, 0.0), (r, r * 0.05)]
        if waist:
            low += [(r * 0.82, sh * 0.5)]
        body = [low + [(r, sh)], np.stack([sr, sy], 1)]
        caps = [(r * 0.97, 0.0, False)]
        top = h
    b.add(lathe(body, n_seg, caps=caps, phase=np.pi / 4 if n_seg == 4 else 0.0), 0, glass)
    lip = rng.random() < 0.6
    segs = [[(nr, top), (nr * _u(rng, 0.85, 1.0), top + nh - (0.008 if lip else 0))]]
    if lip:
        segs.append([(nr * 1.15, top + nh - 0.008), (nr * 1.15, top + nh)])
    b.add(lathe(segs, 20, caps=[] if rng.random() < 0.5 else [(nr * (1.15 if lip else 1.0), top + nh, True)]), 1, glass)
    if kind == "jug":  # a loop handle from the shoulder to the body
        def x_at(y):
            return r if y < h * 0.6 else float(np.interp(y, [h * 0.6, h], [r, nr]))

        _loop_handle(b, 0, glass, x_at, h * 0.35, h * 0.85, r * 0.45, "D", 0.008)
    cap = rng.random() < 0.8
    if cap:
        ck = _choice(rng, ["screw", "cork", "tall", "sport"] if kind == "sports" else ["screw", "cork", "tall"])
        cr = nr * (1.25 if ck != "cork" else 0.95)
        ch = {"screw": 0.02, "cork": 0.025, "tall": 0.045, "sport": 0.04}[ck] * _u(rng, 0.8, 1.3)
        y0 = top + nh - (ch * 0.4 if ck != "cork" else 0.0)
        if ck == "cork":
            g = lathe([[(cr * 0.9, y0), (cr, y0 + ch)]], 16, caps=[(cr, y0 + ch, True)])
        elif ck == "sport":
            g = lathe([[(cr, y0), (cr, y0 + ch * 0.5), (cr * 0.4, y0 + ch * 0.7), (cr * 0.35, y0 + ch)]], 20,
                      caps=[(cr * 0.35, y0 + ch, True), (cr, y0, False)])
        else:
            g = lathe([[(cr, y0), (cr, y0 + ch)]], 20, caps=[(cr, y0 + ch, True), (cr, y0, False)])
        b.add(g, 2, capc if ck != "cork" else np.array([0.72, 0.58, 0.4]))
    _turn(b, rot("y", _u(rng, 0, 360)))
    b.style = {"kind": kind, "cap": cap}
    return b


def _vase(rng: np.random.Generator) -> Builder:
    b = Builder()
    c = pick_color(rng, _CERAMIC + GLASS)
    kind = _choice(rng, ["bulb", "cylinder", "trumpet", "gourd", "amphora"], p=[0.25, 0.2, 0.2, 0.15, 0.2])
    r = _u(rng, 0.06, 0.12)
    h = r * {"cylinder": _u(rng, 2.5, 4.5), "trumpet": _u(rng, 2.5, 4.0)}.get(kind, _u(rng, 1.8, 3.2))
    wall = _u(rng, 0.003, 0.006)
    ys = np.linspace(0, h, 16)
    s = ys / h
    if kind == "bulb":
        neck = _u(rng, 0.25, 0.5)
        rs = r * np.where(s < 0.7, 0.45 + 0.55 * np.sin(np.pi * np.clip(s / 0.7, 0, 1) * 0.85 + 0.25),
                          neck + (1 - neck) * 0.0)
        rs[-3:] = r * neck * np.array([1.0, 1.1, 1.3])
    elif kind == "cylinder":
        rs = r * (1 + _u(rng, -0.2, 0.2) * s)
    elif kind == "trumpet":
        rs = r * (0.35 + 0.65 * s ** _u(rng, 1.5, 3.0))
        rs[0] = r * 0.6
    elif kind == "gourd":
        rs = r * (0.45 + 0.55 * np.abs(np.sin(np.pi * (s * 1.6 + 0.15))) * (1.0 - 0.4 * s))
        rs[-2:] = rs[-3] * np.array([1.1, 1.25])
    else:  # amphora: a wide shoulder, narrow neck, flared lip
        rs = r * (0.35 + 0.65 * np.sin(np.pi * np.clip(s / 0.75, 0, 1)) ** 0.8)
        rs = np.where(s > 0.75, r * 0.35, rs)
        rs[-2:] = r * np.array([0.38, 0.5])
    rs = np.maximum(rs, r * 0.2)
    top_part = ys >= h * 0.8  # the neck and lip (part 1) from 80 % of the height up
    k = int(np.argmax(top_part))
    body = np.stack([rs[:k + 1], ys[:k + 1]], 1)
    b.add(lathe([body], 28, caps=[(rs[0], 0.0, False)]), 0, c)
    outer = np.stack([rs[k:], ys[k:]], 1)
    inner = np.stack([rs[k:] - wall, ys[k:]], 1)[::-1]
    rim = np.array([[rs[-1], h], [rs[-1] - wall / 2, h + wall * 0.3], [rs[-1] - wall, h]])
    b.add(lathe([outer, rim, inner], 28), 1, c)
    handles = kind == "amphora" or (kind in ("bulb", "gourd") and rng.random() < 0.2)
    if handles:
        for sx in (-1, 1):
            y0, y1 = h * 0.55, h * 0.88
            x0, x1 = float(np.interp(y0, ys, rs)), float(np.interp(y1, ys, rs))
            path = [[sx * x0, y0, 0], [sx * (x0 + r * 0.35), y0 + (y1 - y0) * 0.3, 0],
                    [sx * (x1 + r * 0.45), y1, 0], [sx * x1, y1 - 0.01, 0]]
            b.add(tube(_dense(path, 16), r * 0.06, n_seg=8), 2, c)
    foot = rng.random() < 0.35
    if foot:
        fr = rs[0] * _u(rng, 0.9, 1.3)
        fh = _u(rng, 0.01, 0.03)
        b.add(lathe([[(fr, -fh), (fr, 0.0)]], 28, caps=[(fr, -fh, False), (fr, 0.0, True)]), 3, c * 0.9)
    _turn(b, rot("y", _u(rng, 0, 360)))
    b.style = {"kind": kind, "handles": handles, "foot": foot}
    return b


# =============================================================================================
# vehicles
# =============================================================================================


def _extrude_side(prof_zy, half_w: float) -> tuple:
    """A side profile ``(z, y)`` extruded across x in ``[-half_w, half_w]``."""
    v, f, n = slab(np.asarray(prof_zy, float), -half_w, half_w, smooth=False)
    return v[:, [1, 2, 0]], f, n[:, [1, 2, 0]]


def _car(rng: np.random.Generator) -> Builder:
    b = Builder()
    paint = pick_color(rng, PAINT)
    glass = np.array([0.25, 0.3, 0.35]) * _u(rng, 0.8, 1.2)
    tyre = np.array([0.1, 0.1, 0.11])
    kind = _choice(rng, ["sedan", "hatch", "van", "pickup", "sports", "suv"])
    L = _u(rng, 3.6, 5.2)
    W = L * _u(rng, 0.37, 0.46)
    wr = _u(rng, 0.28, 0.4) * (1.15 if kind in ("suv", "pickup") else 1.0)
    clear = wr * _u(rng, 0.35, 0.7)
    bh = {"sports": 0.45, "van": 0.8, "suv": 0.75}.get(kind, 0.6) * _u(rng, 0.85, 1.15)
    fch, rch = _u(rng, 0.1, 0.4), _u(rng, 0.05, 0.3)
    y0, y1 = clear, clear + bh
    prof = [[L / 2 - fch, y0], [L / 2, y0 + bh * 0.35], [L / 2 - fch * 0.6, y1], [-L / 2 + rch * 0.6, y1],
            [-L / 2, y0 + bh * 0.5], [-L / 2 + rch, y0]]
    b.add(_extrude_side(prof, W / 2), 0, paint)
    cl, cz = {"van": (L * _u(rng, 0.7, 0.8), -L * 0.08), "pickup": (L * _u(rng, 0.28, 0.35), L * 0.08),
              "hatch": (L * _u(rng, 0.5, 0.6), -L * 0.12), "sports": (L * _u(rng, 0.3, 0.4), -L * 0.05),
              "suv": (L * _u(rng, 0.6, 0.7), -L * 0.1)}.get(kind, (L * _u(rng, 0.42, 0.52), -L * 0.03))
    ch = {"van": 0.75, "sports": 0.35, "suv": 0.6}.get(kind, 0.5) * _u(rng, 0.85, 1.15)
    cw = W * _u(rng, 0.8, 0.92)
    ws = cl * _u(rng, 0.12, 0.35)
    rs_ = cl * (_u(rng, 0.0, 0.1) if kind in ("hatch", "van", "suv") else _u(rng, 0.1, 0.3))
    cprof = [[cz + cl / 2, y1], [cz + cl / 2 - ws, y1 + ch], [cz - cl / 2 + rs_, y1 + ch], [cz - cl / 2, y1]]
    b.add(_extrude_side(cprof, cw / 2), 1, glass if rng.random() < 0.5 else paint * 0.8)
    tw = _u(rng, 0.18, 0.3)
    axles = [L / 2 - _u(rng, 0.55, 0.85), -L / 2 + _u(rng, 0.55, 0.85)]
    if kind == "pickup" and rng.random() < 0.3:
        axles.append(axles[-1] + 2.2 * wr)
    for z in axles:
        for sx in (-1, 1):
            x0 = sx * (W / 2 - tw * 0.4)
            b.add(cylinder((x0 - sx * tw / 2, wr, z), (x0 + sx * tw / 2, wr, z), wr, n_seg=18), 2, tyre)
    spoiler = kind in ("sports", "hatch") and rng.random() < 0.4
    if spoiler:
        _board(b, 0, paint, -W * 0.4, W * 0.4, y1 + 0.12, y1 + 0.15, -L / 2 + 0.05, -L / 2 + 0.3)
        for sx in (-1, 1):
            _board(b, 0, paint, sx * W * 0.3 - 0.02, sx * W * 0.3 + 0.02, y1, y1 + 0.12, -L / 2 + 0.15, -L / 2 + 0.2)
    b.style = {"kind": kind, "axles": len(axles), "spoiler": spoiler}
    return b


def _hull_grid(L: float, B: float, depth: float, sheer: float, nu: int = 18, nv: int = 9, flat: float = 0.3,
               stern: float = 0.6) -> np.ndarray:
    """A boat hull surface: u along the length (stern at -Z, bow at +Z), v around the section from
    the port gunwale over the keel to the starboard gunwale."""
    u = np.linspace(-1, 1, nu)
    half = B / 2 * np.where(u < 0, stern + (1 - stern) * np.sqrt(np.clip(1 - u ** 2, 0, 1)) ** 0.3,
                            np.sqrt(np.clip(1 - u ** 2, 0, 1)))
    half = np.maximum(half, B * 0.01)
    top = depth + sheer * u ** 2
    v = np.linspace(-1, 1, nv)
    X = half[:, None] * np.sign(v)[None, :] * np.abs(v)[None, :] ** flat
    Y = top[:, None] - depth * (1 - v[None, :] ** 2) ** 0.7 * (1 - 0.3 * u[:, None] ** 4)
    Z = np.broadcast_to((u * L / 2)[:, None], X.shape)
    return np.stack([X, Y, Z], -1)


def _boat(rng: np.random.Generator) -> Builder:
    b = Builder()
    kind = _choice(rng, ["sailboat", "motorboat", "rowboat", "canoe"], p=[0.35, 0.3, 0.2, 0.15])
    hull_c = pick_color(rng, PAINT + WOOD)
    deck_c = pick_color(rng, WOOD + [(0.9, 0.9, 0.88)])
    L = {"canoe": _u(rng, 3.5, 5.0), "rowboat": _u(rng, 2.5, 3.5)}.get(kind, _u(rng, 5.0, 9.0))
    B = L * {"canoe": _u(rng, 0.16, 0.22), "rowboat": _u(rng, 0.35, 0.45)}.get(kind, _u(rng, 0.28, 0.38))
    depth = B * _u(rng, 0.35, 0.6)
    sheer = depth * (_u(rng, 0.3, 0.6) if kind == "canoe" else _u(rng, 0.05, 0.25))
    stern = 0.0 if kind == "canoe" else _u(rng, 0.5, 0.85)
    grid = _hull_grid(L, B, depth, sheer, flat=_u(rng, 0.2, 0.6), stern=stern)
    b.add(sheet(grid, L * 0.008), 0, hull_c)
    style = {"kind": kind}
    if kind in ("sailboat", "motorboat"):  # a deck over the hull
        u = np.linspace(-1, 1, 18)
        half = np.abs(grid[:, 0, 0])
        out = np.concatenate([np.stack([half, u * L / 2], 1), np.stack([-half, u * L / 2], 1)[::-1]])
        dy = depth + sheer * 0.05
        b.add(slab(out[::2], dy - 0.04, dy), 1, deck_c)
        if kind == "motorboat" or rng.random() < 0.5:  # a cabin
            cl = L * _u(rng, 0.25, 0.45)
            cz = _u(rng, -0.15, 0.1) * L
            ch = depth * _u(rng, 0.5, 1.0)
            cw = B * _u(rng, 0.5, 0.7)
            prof = [[cz + cl / 2, dy], [cz + cl / 2 - cl * _u(rng, 0.1, 0.4), dy + ch], [cz - cl / 2, dy + ch],
                    [cz - cl / 2, dy]]
            b.add(_extrude_side(prof, cw / 2), 1, deck_c * 0.95)
            style["cabin"] = True
        if kind == "sailboat":
            mz = _u(rng, 0.05, 0.25) * L
            mh = L * _u(rng, 0.9, 1.4)
            b.add(cylinder((0, dy, mz), (0, dy + mh, mz), L * 0.008, n_seg=8), 2, pick_color(rng, METAL))
            boom = L * _u(rng, 0.3, 0.45)
            b.add(cylinder((0, dy + mh * 0.1, mz), (0, dy + mh * 0.1, mz - boom), L * 0.006, n_seg=6), 2,
                  pick_color(rng, METAL))
            # mainsail and optional jib: thin triangular sheets
            n = 6
            s = np.linspace(0, 1, n)
            t = np.linspace(0, 1, n)
            S, T = np.meshgrid(s, t, indexing="ij")
            main = np.stack([np.zeros_like(S), dy + mh * 0.1 + (mh * 0.85) * S, mz - boom * (1 - 0.95 * S) * T], -1)
            main[..., 0] = L * 0.01 * np.sin(np.pi * T) * (1 - S) * _u(rng, -1, 1)
            b.add(sheet(main, L * 0.004), 3, np.array([0.95, 0.95, 0.93]))
            if rng.random() < 0.6:
                bow = L / 2 * 0.9
                jib = np.stack([np.zeros_like(S), dy + 0.05 + mh * 0.75 * S, mz + (bow - mz) * (1 - 0.95 * S) * T], -1)
                b.add(sheet(jib, L * 0.004), 3, np.array([0.95, 0.95, 0.93]))
                style["jib"] = True
        else:  # motorboat: an outboard engine at the stern (counts as the mast/superstructure)
            if rng.random() < 0.7:
                z = -L / 2 * (1 - 0.02)
                _board(b, 2, np.array([0.15, 0.15, 0.16]), -B * 0.08, B * 0.08, -depth * 0.3, depth + 0.25 * B,
                       z - B * 0.2, z)
                style["outboard"] = True
    else:  # open boats: thwarts (benches) across the hull; a rowboat's oars
        nt = int(rng.integers(1, 4))
        for i in range(nt):
            z = L * (-0.3 + 0.6 * (i + 0.5) / nt)
            w = float(np.interp(z, grid[:, 0, 2], np.abs(grid[:, 0, 0])))
            y = depth * 0.75 + sheer * (2 * z / L) ** 2
            _board(b, 1, deck_c, -w * 0.95, w * 0.95, y - 0.02, y + 0.02, z - 0.1, z + 0.1)
        if kind == "rowboat" and rng.random() < 0.6:
            for sx in (-1, 1):
                b.add(cylinder((sx * B * 0.45, depth, 0.2), (sx * B * 1.2, depth * 0.3, -L * 0.4), 0.025, n_seg=6), 2,
                      deck_c)
            style["oars"] = True
    b.style = style
    return b


def _airplane(rng: np.random.Generator) -> Builder:
    b = Builder()
    body_c = pick_color(rng, [(0.88, 0.88, 0.9), (0.75, 0.76, 0.8), (0.45, 0.5, 0.55), (0.9, 0.9, 0.85)])
    accent = pick_color(rng, PAINT)
    kind = _choice(rng, ["airliner", "fighter", "glider", "prop", "bizjet"], p=[0.3, 0.2, 0.15, 0.2, 0.15])
    L = _u(rng, 2.5, 4.0)
    R = L * {"airliner": _u(rng, 0.05, 0.075), "fighter": _u(rng, 0.04, 0.06), "glider": _u(rng, 0.03, 0.045),
             "prop": _u(rng, 0.05, 0.07), "bizjet": _u(rng, 0.045, 0.06)}[kind]
    nose = _u(rng, 0.08, 0.22) * L
    tail = _u(rng, 0.2, 0.35) * L
    st = np.linspace(0, 1, 7)
    tail_p = np.stack([R * (0.25 + 0.75 * np.sin(st * np.pi / 2)), -L / 2 + tail * st], 1)
    sn = np.linspace(0, 1, 8)[1:]
    nose_r = R * (np.sqrt(1 - sn ** 2) if kind != "fighter" else (1 - sn))
    nose_p = np.stack([nose_r, L / 2 - nose + nose * sn], 1)
    prof = np.concatenate([tail_p, [[R, L / 2 - nose]], nose_p])
    b.add(xf(lathe([prof], n_seg=18, caps=[(R * 0.25, -L / 2, False)]), R=rot("x", 90)), 0, body_c)
    wing_y = {"airliner": -0.5, "fighter": 0.0, "glider": 0.6, "bizjet": -0.4, "prop": _choice(rng, [-0.6, 0.7])}[kind] * R
    if kind == "fighter":
        span, root = _u(rng, 0.7, 1.0) * L, _u(rng, 0.35, 0.5) * L
        tip = _u(rng, 0.03, 0.12) * L
        sweep = root - tip * _u(rng, 0.5, 1.0)
        wz = _u(rng, -0.2, -0.05) * L
    elif kind == "glider":
        span, root = _u(rng, 2.0, 2.8) * L, _u(rng, 0.07, 0.1) * L
        tip = root * _u(rng, 0.4, 0.7)
        sweep = _u(rng, 0, 0.03) * L
        wz = _u(rng, 0.0, 0.12) * L
    else:
        span, root = _u(rng, 0.8, 1.15) * L, _u(rng, 0.14, 0.24) * L
        tip = root * _u(rng, 0.3, 0.6)
        sweep = _u(rng, 0.05, 0.35) * L * (kind in ("airliner", "bizjet")) + _u(rng, 0, 0.03) * L
        wz = _u(rng, -0.05, 0.1) * L
    dihedral = _u(rng, 0, 0.08) * span / 2 * (kind != "fighter")
    wt = root * _u(rng, 0.06, 0.12)
    for sx in (-1, 1):
        x0, x1 = sx * R * 0.5, sx * span / 2
        zr0, zr1 = wz + root / 2, wz - root / 2
        zt0, zt1 = wz + root / 2 - sweep, wz + root / 2 - sweep - tip
        y0, y1 = wing_y, wing_y + dihedral
        tw = wt * 0.4
        c = np.array([[x0, y0 - wt / 2, zr1], [x1, y1 - tw / 2, zt1], [x1, y1 - tw / 2, zt0], [x0, y0 - wt / 2, zr0],
                      [x0, y0 + wt / 2, zr1], [x1, y1 + tw / 2, zt1], [x1, y1 + tw / 2, zt0], [x0, y0 + wt / 2, zr0]])
        b.add(hexa(c), 1, body_c)
    ts = span * _u(rng, 0.25, 0.4) if kind != "glider" else span * 0.15
    tr = _u(rng, 0.08, 0.14) * L
    tz = -L / 2 + tr * 0.6
    t_tail = (rng.random() < 0.3 and kind != "fighter") or kind == "bizjet"
    fin_h = _u(rng, 0.12, 0.22) * L
    stab_y = fin_h * 0.95 if t_tail else R * 0.1
    for sx in (-1, 1):
        x0, x1 = sx * R * 0.3, sx * ts / 2
        th = tr * 0.08
        c = np.array([[x0, stab_y - th, tz - tr / 2], [x1, stab_y - th / 2, tz - 0.8 * tr], [x1, stab_y - th / 2, tz - 0.1 * tr],
                      [x0, stab_y - th, tz + tr / 2], [x0, stab_y + th, tz - tr / 2], [x1, stab_y + th / 2, tz - 0.8 * tr],
                      [x1, stab_y + th / 2, tz - 0.1 * tr], [x0, stab_y + th, tz + tr / 2]])
        b.add(hexa(c), 2, body_c)
    fins = [0.0] if (kind != "fighter" or rng.random() < 0.5) else [-R * 0.6, R * 0.6]
    for fx in fins:
        fr = tr * _u(rng, 1.0, 1.5)
        ft = fr * 0.06
        za, zb = tz - fr / 2, tz + fr / 2
        zc, zd = tz - fr * 0.6, tz - fr * 0.1
        y0 = R * 0.5
        c = np.array([[fx - ft, y0, za], [fx + ft, y0, za], [fx + ft, y0, zb], [fx - ft, y0, zb],
                      [fx - ft / 2, fin_h, zc], [fx + ft / 2, fin_h, zc], [fx + ft / 2, fin_h, zd], [fx - ft / 2, fin_h, zd]])
        b.add(hexa(c), 2, accent if rng.random() < 0.5 else body_c)
    n_eng = 0
    if kind in ("airliner", "prop") and rng.random() < 0.8:
        n_eng = 2 if (kind == "prop" or rng.random() < 0.65) else 4
        er = R * _u(rng, 0.35, 0.6)
        el = root * _u(rng, 0.6, 0.9)
        for o in ([0.3] if n_eng == 2 else [0.22, 0.42]):
            for sx in (-1, 1):
                x = sx * o * span
                frac = abs(x) / (span / 2)
                zc = wz + root / 2 - sweep * frac - (root - (root - tip) * frac) * 0.2
                yc = wing_y + dihedral * frac + (-er - wt * 0.5 if kind == "airliner" else 0.0)
                b.add(cylinder((x, yc, zc - el / 2), (x, yc, zc + el / 2), er * 0.8, er, n_seg=14), 3,
                      accent if kind == "prop" else body_c * 0.85)
                if kind == "prop":  # a two-blade propeller
                    a = _u(rng, 0, 180)
                    b.add(box((x, yc, zc + el / 2 + 0.01), (er * 4.5, er * 0.4, 0.01), R=rot("z", a)), 3,
                          np.array([0.15, 0.15, 0.15]))
    elif kind == "bizjet":  # two engines on the rear fuselage
        n_eng = 2
        er = R * _u(rng, 0.4, 0.55)
        for sx in (-1, 1):
            zc = -L / 2 + tail * _u(rng, 0.9, 1.3)
            b.add(cylinder((sx * R * 1.5, R * 0.3, zc - L * 0.08), (sx * R * 1.5, R * 0.3, zc + L * 0.08), er * 0.8, er,
                           n_seg=14), 3, body_c * 0.85)
    b.style = {"kind": kind, "engines": n_eng, "t_tail": bool(t_tail)}
    return b


def _rocket(rng: np.random.Generator) -> Builder:
    b = Builder()
    white = pick_color(rng, [(0.92, 0.92, 0.9), (0.8, 0.8, 0.82), (0.85, 0.6, 0.3), (0.3, 0.3, 0.32)])
    accent = pick_color(rng, PAINT)
    R = _u(rng, 0.1, 0.2)
    stages = int(_choice(rng, [1, 2, 3], p=[0.4, 0.4, 0.2]))
    y = 0.0
    r = R
    engine_h = R * _u(rng, 0.2, 0.5)
    b.add(lathe([[(r * 0.5, 0.0), (r * 0.8, engine_h)]], 20, caps=[(r * 0.5, 0.0, False)]), 0, np.array([0.3, 0.3, 0.3]))
    y = engine_h
    for s in range(stages):
        hs = R * _u(rng, 2.5, 6.0) / (1 + 0.5 * s)
        b.add(lathe([[(r, y), (r, y + hs)]], 24, caps=[(r, y, False), (r, y + hs, True)]), 0, white if s % 2 == 0 else accent)
        y += hs
        if s < stages - 1:
            r2 = r * _u(rng, 0.6, 0.9)
            b.add(lathe([[(r, y), (r2, y + R * 0.4)]], 24), 0, white)
            y += R * 0.4
            r = r2
    nose_kind = _choice(rng, ["cone", "ogive", "capsule", "blunt"])
    nh = r * {"cone": _u(rng, 2.0, 4.0), "ogive": _u(rng, 2.0, 3.5), "capsule": _u(rng, 1.0, 1.6),
              "blunt": _u(rng, 0.8, 1.3)}[nose_kind]
    t = np.linspace(0, 1, 10)
    if nose_kind == "cone":
        rs = r * (1 - t)
    elif nose_kind == "ogive":
        rs = r * np.sqrt(np.clip(1 - t ** 2, 0, 1)) ** 0.8 * (1 - t) ** 0.2
    elif nose_kind == "capsule":
        rs = r * (1 - 0.6 * t)
        rs[-1] = r * 0.2
    else:
        rs = r * np.cos(t * np.pi / 2) ** 0.5
    prof = np.stack([np.maximum(rs, 0.0), y + nh * t], 1)
    b.add(lathe([prof], 24, caps=[(rs[-1], y + nh, True)] if rs[-1] > 1e-6 else []), 1, accent if rng.random() < 0.5 else white)
    if nose_kind == "capsule" and rng.random() < 0.7:  # escape tower
        b.add(cylinder((0, y + nh, 0), (0, y + nh + r * 1.5, 0), r * 0.06, n_seg=6), 1, white)
    nf = int(_choice(rng, [0, 3, 4], p=[0.2, 0.4, 0.4]))
    fl = R * _u(rng, 1.2, 3.0)
    fs = R * _u(rng, 0.6, 1.5)
    ft = R * 0.05
    phase = _u(rng, 0, 90)
    for k in range(nf):
        a = phase + 360 * k / nf
        c = np.array([[R * 0.9, engine_h, -ft], [R * 0.9, engine_h + fl, -ft], [R + fs, engine_h + fl * 0.3, -ft],
                      [R + fs, engine_h - fl * 0.2, -ft], [R * 0.9, engine_h, ft], [R * 0.9, engine_h + fl, ft],
                      [R + fs, engine_h + fl * 0.3, ft], [R + fs, engine_h - fl * 0.2, ft]])
        b.add(xf(hexa(c), R=rot("y", a)), 2, accent)
    nb = int(_choice(rng, [0, 2, 4], p=[0.5, 0.3, 0.2]))
    bh = y * _u(rng, 0.35, 0.6)
    br = R * _u(rng, 0.3, 0.5)
    for k in range(nb):
        a = math.radians(45 + 360 * k / nb)
        cx, cz = (R + br) * math.cos(a), (R + br) * math.sin(a)
        g = lathe([[(br * 0.7, 0.0), (br, engine_h)], [(br, engine_h), (br, engine_h + bh)],
                   [(br, engine_h + bh), (0.0, engine_h + bh + br * 2.0)]], 16, caps=[(br * 0.7, 0.0, False)])
        b.add(xf(g, t=(cx, 0, cz)), 3, white)
    b.style = {"stages": stages, "nose": nose_kind, "fins": nf, "boosters": nb}
    return b


# =============================================================================================
# long things
# =============================================================================================


def _guitar_outline(rng, kind: str) -> tuple[np.ndarray, float]:
    """A guitar body outline (x, y) traced from the waist, and its top y."""
    lower = {"electric": _u(rng, 0.15, 0.18), "bass": _u(rng, 0.16, 0.2), "ukulele": _u(rng, 0.08, 0.1)}.get(
        kind, _u(rng, 0.17, 0.21))
    upper = lower * _u(rng, 0.68, 0.85)
    circles = [(0.0, 0.0, lower), (0.0, (lower + upper) * _u(rng, 0.62, 0.75), upper)]
    if kind in ("electric", "bass"):
        hr = upper * _u(rng, 0.34, 0.42)
        up_y = circles[1][1]
        circles.append((-upper * 0.45, up_y + upper * 0.45 + _u(rng, 0.1, 0.4) * upper, hr))
        circles.append((upper * 0.45, up_y + upper * 0.45, hr))
    oy = 0.5 * (lower + (circles[1][1] - upper))
    n = 72
    a = 2 * np.pi * np.arange(n) / n
    d = np.stack([np.cos(a), np.sin(a)], 1)
    ts = []
    for cx, cy, rho in circles:
        cvec = np.array([cx, cy - oy])
        dc = d @ cvec
        disc = dc ** 2 - (cvec @ cvec - rho ** 2)
        ts.append(np.where(disc > 0, dc + np.sqrt(np.maximum(disc, 0)), 0.0))
    t_all = np.power(np.sum(np.power(np.maximum(np.stack(ts), 0.0), 5.0), 0), 1.0 / 5.0)
    out = np.stack([t_all * d[:, 0], oy + t_all * d[:, 1]], 1)
    return out, float(out[:, 1].max())


def _guitar(rng: np.random.Generator) -> Builder:
    b = Builder()
    wood = pick_color(rng, WOOD)
    finish = pick_color(rng, PAINT) if rng.random() < 0.5 else wood
    dark = pick_color(rng, _DARK)
    kind = _choice(rng, ["acoustic", "electric", "classical", "bass", "ukulele"], p=[0.25, 0.25, 0.15, 0.15, 0.2])
    depth = {"electric": _u(rng, 0.035, 0.05), "bass": _u(rng, 0.035, 0.05), "ukulele": _u(rng, 0.05, 0.07)}.get(
        kind, _u(rng, 0.08, 0.12))
    out, top_y = _guitar_outline(rng, kind)
    v, f, nn = slab(out, -depth / 2, depth / 2)
    b.add((v[:, [0, 2, 1]], f, nn[:, [0, 2, 1]]), 0, finish)
    if kind in ("acoustic", "classical", "ukulele"):  # a sound hole ring
        hy = top_y - (top_y - out[:, 1].min()) * 0.35
        b.add(xf(lathe([[(0.04 if kind != "ukulele" else 0.02, 0), (0.045 if kind != "ukulele" else 0.025, 0.003)]], 20),
                 R=rot("x", 90), t=(0, hy, depth / 2)), 0, dark)
    nl = {"bass": _u(rng, 0.6, 0.75), "ukulele": _u(rng, 0.18, 0.25)}.get(kind, _u(rng, 0.42, 0.5))
    nw0, nw1 = _u(rng, 0.04, 0.06), _u(rng, 0.05, 0.065)
    nt = 0.022
    zf = depth / 2 - nt / 2
    y0 = top_y - 0.06
    c = np.array([[-nw1 / 2, y0, zf - nt / 2], [nw1 / 2, y0, zf - nt / 2], [nw1 / 2, y0, zf + nt / 2], [-nw1 / 2, y0, zf + nt / 2],
                  [-nw0 / 2, y0 + nl, zf - nt / 2], [nw0 / 2, y0 + nl, zf - nt / 2], [nw0 / 2, y0 + nl, zf + nt / 2],
                  [-nw0 / 2, y0 + nl, zf + nt / 2]])
    b.add(hexa(c), 1, dark)
    hl = _u(rng, 0.12, 0.2) * (0.6 if kind == "ukulele" else 1.0)
    hw = _u(rng, 0.06, 0.09)
    tilt = _u(rng, 8, 15) if kind in ("acoustic", "classical", "ukulele") else 0.0
    base = np.array([0, y0 + nl, zf])
    inline = kind in ("electric", "bass") and rng.random() < 0.6
    if inline:
        hc = np.array([[-nw0 / 2, 0, -nt / 2], [nw0 / 2, 0, -nt / 2], [nw0 / 2, 0, nt / 2], [-nw0 / 2, 0, nt / 2],
                       [-nw0 / 2, hl, -nt / 2], [nw0 / 2 + hw * 0.5, hl, -nt / 2], [nw0 / 2 + hw * 0.5, hl, nt / 2],
                       [-nw0 / 2, hl, nt / 2]])
    else:
        hc = np.array([[-nw0 / 2, 0, -nt / 2], [nw0 / 2, 0, -nt / 2], [nw0 / 2, 0, nt / 2], [-nw0 / 2, 0, nt / 2],
                       [-hw / 2, hl, -nt / 2], [hw / 2, hl, -nt / 2], [hw / 2, hl, nt / 2], [-hw / 2, hl, nt / 2]])
    R = rot("x", -tilt)
    b.add(hexa(hc @ R.T + base), 2, dark)
    pegs = 2 if kind in ("bass", "ukulele") else 3
    for i in range(pegs):
        y = hl * (0.3 + 0.6 * i / pegs)
        if inline:
            p = np.array([nw0 / 2 + hw * 0.3 * (y / hl), y, 0]) @ R.T + base
            b.add(cylinder(p, p + np.array([0.03, 0, 0]), 0.008, n_seg=6), 2, np.array([0.75, 0.75, 0.78]))
        else:
            wx = nw0 / 2 + (hw - nw0) / 2 * (y / hl)
            for sx in (-1, 1):
                p = np.array([sx * wx, y, 0]) @ R.T + base
                b.add(cylinder(p, p + np.array([sx * 0.03, 0, 0]), 0.008, n_seg=6), 2, np.array([0.75, 0.75, 0.78]))
    b.style = {"kind": kind, "inline_pegs": inline}
    return b


def _knife(rng: np.random.Generator) -> Builder:
    """A knife lying along +Z (tip at +Z), blade in the YZ plane, edge down."""
    b = Builder()
    steel = pick_color(rng, METAL[:3])
    grip = pick_color(rng, _DARK + WOOD + PAINT)
    kind = _choice(rng, ["chef", "bread", "cleaver", "dagger", "utility"])
    bl = {"chef": _u(rng, 0.18, 0.26), "bread": _u(rng, 0.2, 0.28), "cleaver": _u(rng, 0.16, 0.22),
          "dagger": _u(rng, 0.15, 0.25), "utility": _u(rng, 0.08, 0.13)}[kind]
    bw = bl * {"chef": _u(rng, 0.18, 0.25), "bread": _u(rng, 0.1, 0.14), "cleaver": _u(rng, 0.4, 0.55),
               "dagger": _u(rng, 0.12, 0.18), "utility": _u(rng, 0.15, 0.25)}[kind]
    th = _u(rng, 0.002, 0.004) * (2.0 if kind == "cleaver" else 1.0)
    s = np.linspace(0, 1, 10)
    if kind == "chef":
        spine = np.full_like(s, bw * 0.35) - bw * 0.35 * np.clip((s - 0.6) / 0.4, 0, 1) ** 2
        edge = -bw * 0.65 * (1 - np.clip((s - 0.3) / 0.7, 0, 1) ** 1.6)
    elif kind == "bread":
        spine = np.full_like(s, bw * 0.5)
        edge = -bw * 0.5 * np.ones_like(s)
        edge[-2:] = [-bw * 0.3, bw * 0.2]
    elif kind == "cleaver":
        spine = np.full_like(s, bw * 0.45)
        edge = -bw * 0.55 * np.ones_like(s) + bw * 0.08 * s
    elif kind == "dagger":
        spine = bw / 2 * (1 - s ** 1.5)
        edge = -spine
    else:
        spine = bw * 0.45 * (1 - np.clip((s - 0.5) / 0.5, 0, 1))
        edge = -bw * 0.55 * (1 - s * 0.7)
    spine = np.maximum(spine, edge + 1e-3)
    z = s * bl
    out = np.concatenate([np.stack([spine, z], 1), np.stack([edge, z], 1)[::-1]])
    v, f, n = slab(out, -th / 2, th / 2, smooth=False)  # outline (y, z), thickness along "y" -> x
    b.add((v[:, [1, 0, 2]], f, n[:, [1, 0, 2]]), 0, steel)
    hl = bl * _u(rng, 0.45, 0.8) if kind != "utility" else bl * _u(rng, 1.0, 1.4)
    hw = max(bw * 0.5, 0.018) * _u(rng, 0.8, 1.2) if kind != "cleaver" else bw * 0.3
    ht = hw * _u(rng, 0.5, 0.8)
    hy = (spine[0] + edge[0]) / 2 * 0.5
    shape = _choice(rng, ["box", "round", "tapered"])
    if shape == "round":
        b.add(cylinder((0, hy, -hl), (0, hy, 0), hw * 0.45, hw * 0.4, n_seg=12), 1, grip)
    elif shape == "tapered":
        c = np.array([[-ht / 2, hy - hw * 0.4, -hl], [ht / 2, hy - hw * 0.4, -hl], [ht / 2, hy + hw * 0.4, -hl],
                      [-ht / 2, hy + hw * 0.4, -hl], [-ht / 2, hy - hw / 2, 0], [ht / 2, hy - hw / 2, 0],
                      [ht / 2, hy + hw / 2, 0], [-ht / 2, hy + hw / 2, 0]])
        b.add(hexa(c), 1, grip)
    else:
        b.add(box((0, hy, -hl / 2), (ht, hw, hl)), 1, grip)
    guard = kind == "dagger" or (kind in ("chef", "utility") and rng.random() < 0.35)
    if guard:
        gw = bw * (1.8 if kind == "dagger" else 1.2) + hw
        b.add(box((0, hy, -0.006), (ht * 1.3, gw, 0.012)), 2, steel * 0.9)
        if kind == "dagger":
            b.add(ellipsoid((0, hy, -hl - 0.01), (ht * 0.7, hw * 0.7, 0.015), 10, 6), 2, steel * 0.9)
    b.style = {"kind": kind, "handle": shape, "guard": guard}
    return b


# =============================================================================================
# more furniture and vessels: stools, cabinets, bowls, jars
# =============================================================================================


def _stool(rng: np.random.Generator) -> Builder:
    b = Builder()
    wood = pick_color(rng, WOOD)
    frame = wood if rng.random() < 0.5 else pick_color(rng, METAL + _DARK)
    kind = _choice(rng, ["bar", "low", "swivel", "ottoman"], p=[0.35, 0.3, 0.15, 0.2])
    style = {"kind": kind}
    if kind == "ottoman":  # an upholstered block or drum on short feet
        fabric = pick_color(rng, FABRIC)
        w = _u(rng, 0.4, 0.8)
        d = w * _u(rng, 0.6, 1.0)
        h = _u(rng, 0.3, 0.45)
        leg_h = _u(rng, 0.02, 0.1)
        if rng.random() < 0.5:
            _cushion(b, 0, fabric, 0, leg_h, h, 0, w, d, _u(rng, 0.03, 0.1))
            corners = _corners(w, d, 0.05)
        else:
            b.add(lathe([[(w / 2, leg_h), (w / 2, h)]], 28, caps=[(w / 2, leg_h, False), (w / 2, h, True)]), 0, fabric)
            corners = _corners(w, w, 0.08, 4)
        style.update(_legs(b, rng, 1, wood, corners, leg_h, thick=0.04, splay=0.0, stretchers=False))
        b.style = style
        return b
    round_seat = kind != "low" or rng.random() < 0.4
    w = _u(rng, 0.3, 0.42)
    h = {"bar": _u(rng, 0.65, 0.8), "low": _u(rng, 0.25, 0.5), "swivel": _u(rng, 0.5, 0.75)}[kind]
    t = _u(rng, 0.03, 0.06)
    outline = outline_ellipse(w, w, 28) if round_seat else outline_rounded_rect(w, w * _u(rng, 0.7, 1.0), 0.02)
    b.add(slab(outline, h - t, h), 0, wood if rng.random() < 0.6 else pick_color(rng, FABRIC))
    if kind == "swivel":
        style.update(_star_base(b, rng, 1, pick_color(rng, METAL), h - t, reach=_u(rng, 0.2, 0.28)))
    else:
        n = int(_choice(rng, [3, 4]))
        corners = _corners(w, w, _u(rng, 0.02, 0.05), n)
        style.update(_legs(b, rng, 1, frame, corners, h - t, splay=_u(rng, 0.03, 0.15), stretchers=False))
        if kind == "bar" or rng.random() < 0.3:  # a footrest: a ring or rungs between the legs
            fy = (h - t) * _u(rng, 0.25, 0.4)
            rr = min(w, w) / 2 * _u(rng, 0.9, 1.2)
            if rng.random() < 0.5:
                a = np.linspace(0, 2 * np.pi, 25)
                b.add(tube(np.stack([rr * np.cos(a), np.full_like(a, fy), rr * np.sin(a)], 1), 0.01, n_seg=8), 2, frame)
            else:
                for k in range(n):
                    p0 = np.array([corners[k][0], fy, corners[k][1]])
                    p1 = np.array([corners[(k + 1) % n][0], fy, corners[(k + 1) % n][1]])
                    b.add(cylinder(p0 * 1.1, p1 * 1.1, 0.012, n_seg=8), 2, frame)
            style["footrest"] = True
    b.style = style
    return b


def _cabinet(rng: np.random.Generator) -> Builder:
    b = Builder()
    wood = pick_color(rng, WOOD + [(0.9, 0.9, 0.88), (0.2, 0.2, 0.22), (0.55, 0.65, 0.6)])
    metal = pick_color(rng, METAL)
    kind = _choice(rng, ["wardrobe", "sideboard", "chest", "nightstand"], p=[0.25, 0.3, 0.25, 0.2])
    W, H, D = {"wardrobe": (_u(rng, 0.8, 1.6), _u(rng, 1.6, 2.1), _u(rng, 0.5, 0.65)),
               "sideboard": (_u(rng, 1.2, 2.0), _u(rng, 0.7, 0.95), _u(rng, 0.4, 0.5)),
               "chest": (_u(rng, 0.7, 1.2), _u(rng, 0.8, 1.3), _u(rng, 0.4, 0.55)),
               "nightstand": (_u(rng, 0.4, 0.6), _u(rng, 0.45, 0.65), _u(rng, 0.35, 0.45))}[kind]
    leg_h = _u(rng, 0.05, 0.2) if rng.random() < 0.6 else 0.0
    _board(b, 0, wood, -W / 2, W / 2, leg_h, H, -D / 2, D / 2)
    if leg_h:
        _legs(b, rng, 3, wood if rng.random() < 0.6 else metal, _corners(W, D, 0.04), leg_h, thick=_u(rng, 0.03, 0.05),
              splay=_u(rng, 0, 0.2), stretchers=False)
    z = D / 2
    fronts = []
    if kind == "wardrobe":
        nd = int(_choice(rng, [2, 3]))
        fronts += [("door", -W / 2 + W * i / nd, -W / 2 + W * (i + 1) / nd, leg_h, H) for i in range(nd)]
    elif kind == "sideboard":
        nd = int(_choice(rng, [2, 3, 4]))
        dh = (H - leg_h) * _u(rng, 0.2, 0.3)
        fronts += [("drawer", -W / 2 + W * i / nd, -W / 2 + W * (i + 1) / nd, H - dh, H) for i in range(nd)]
        fronts += [("door", -W / 2 + W * i / nd, -W / 2 + W * (i + 1) / nd, leg_h, H - dh) for i in range(nd)]
    else:
        nr = int(rng.integers(3, 7)) if kind == "chest" else int(rng.integers(1, 3))
        fronts += [("drawer", -W / 2, W / 2, leg_h + (H - leg_h) * i / nr, leg_h + (H - leg_h) * (i + 1) / nr)
                   for i in range(nr)]
        if kind == "nightstand" and rng.random() < 0.5:  # an open shelf under the drawers
            fronts = [(k, x0, x1, y0 + (H - leg_h) * 0.4 * (1 - (y0 - leg_h) / (H - leg_h)), y1) for k, x0, x1, y0, y1 in fronts]
    for k, x0, x1, y0, y1 in fronts:
        part = 1 if k == "door" else 2
        _board(b, part, wood * 0.93, x0 + 0.01, x1 - 0.01, y0 + 0.01, y1 - 0.01, z, z + 0.02)
        if k == "door":
            hx = x1 - 0.05 if (x0 + x1) / 2 < 0 else x0 + 0.05
            _board(b, part, metal, hx - 0.01, hx + 0.01, (y0 + y1) / 2 - 0.08, (y0 + y1) / 2 + 0.08, z + 0.02, z + 0.04)
        else:
            xc, yc = (x0 + x1) / 2, (y0 + y1) / 2
            _board(b, part, metal, xc - 0.06, xc + 0.06, yc - 0.01, yc + 0.01, z + 0.02, z + 0.04)
    b.style = {"kind": kind, "legs": bool(leg_h), "fronts": len(fronts)}
    return b


def _bowl(rng: np.random.Generator) -> Builder:
    b = Builder()
    c = pick_color(rng, _CERAMIC + PAINT + WOOD)
    kind = _choice(rng, ["round", "conical", "shallow", "footed"], p=[0.35, 0.25, 0.2, 0.2])
    r = _u(rng, 0.07, 0.16)
    h = r * {"round": _u(rng, 0.45, 0.7), "conical": _u(rng, 0.4, 0.6), "shallow": _u(rng, 0.15, 0.3),
             "footed": _u(rng, 0.35, 0.55)}[kind]
    base = r * _u(rng, 0.3, 0.5)
    ys = np.linspace(0, h, 10)
    s = ys / h
    rs = base + (r - base) * (np.sin(np.pi / 2 * s) ** _u(rng, 0.6, 1.0) if kind != "conical" else s)
    wall = _u(rng, 0.003, 0.008)
    fh = _u(rng, 0.005, 0.012) if kind != "footed" else r * _u(rng, 0.3, 0.6)
    if kind == "footed":  # a stem and a disc foot
        fr = base * _u(rng, 0.9, 1.4)
        b.add(lathe([[(fr, 0.0), (fr * 0.9, 0.008), (base * 0.3, fh * 0.5), (base * 0.5, fh)]], 24,
                    caps=[(fr, 0.0, False)]), 1, c * 0.95)
    else:  # a foot ring
        b.add(lathe([[(base * 0.9, 0.0), (base, fh)]], 28, caps=[(base * 0.9, 0.0, False)]), 1, c * 0.95)
    _vessel(b, 0, c, ys + fh, rs, wall)
    b.style = {"kind": kind}
    return b


def _jar(rng: np.random.Generator) -> Builder:
    b = Builder()
    glass = pick_color(rng, GLASS + _CERAMIC)
    kind = _choice(rng, ["mason", "cookie", "apothecary", "canister"], p=[0.3, 0.25, 0.2, 0.25])
    r = _u(rng, 0.04, 0.09)
    h = r * {"mason": _u(rng, 1.6, 2.4), "cookie": _u(rng, 1.1, 1.6), "apothecary": _u(rng, 2.0, 3.0),
             "canister": _u(rng, 1.2, 2.2)}[kind]
    neck = r * ({"mason": _u(rng, 0.75, 0.9), "cookie": _u(rng, 0.8, 0.95), "apothecary": _u(rng, 0.5, 0.7)}.get(kind, 1.0))
    ys = np.linspace(0, h, 10)
    s = ys / h
    if kind == "canister":
        rs = np.full_like(ys, r)
    else:
        sh = _u(rng, 0.7, 0.85)
        rs = np.where(s < sh, r * (1 - 0.08 * (1 - np.sin(np.pi * np.clip(s / sh, 0, 1)))),
                      r - (r - neck) * np.clip((s - sh) / (1 - sh), 0, 1))
    b.add(lathe([np.stack([rs, ys], 1)], 28, caps=[(rs[0], 0.0, False)]), 0, glass)
    lid_c = pick_color(rng, METAL + PAINT + WOOD)
    lr = neck * _u(rng, 1.02, 1.12)
    if kind == "mason" or kind == "canister":  # a flat screw lid
        lh = _u(rng, 0.012, 0.03)
        b.add(lathe([[(lr, h - lh * 0.4), (lr, h + lh * 0.6)]], 28, caps=[(lr, h + lh * 0.6, True), (lr, h - lh * 0.4, False)]),
              1, lid_c)
    else:  # a domed lid with a knob, or a stopper
        dh = r * _u(rng, 0.2, 0.5)
        a = np.linspace(0, np.pi / 2, 7)
        b.add(lathe([np.stack([lr * np.cos(a), h + dh * np.sin(a)], 1)], 28, caps=[(lr, h, False)]), 1, lid_c)
        kr = lr * _u(rng, 0.15, 0.3)
        b.add(ellipsoid((0, h + dh + kr * 0.7, 0), (kr, kr * 0.8, kr), 12, 6), 1, lid_c)
    handles = kind == "cookie" and rng.random() < 0.4
    if handles:
        def x_at(y):
            return float(np.interp(y, ys, rs))

        for sx in (0.0, 180.0):
            hb = Builder()
            _loop_handle(hb, 0, glass, x_at, h * 0.45, h * 0.75, r * 0.3, "ear", r * 0.05)
            for g in hb.parts:
                b.add(xf(g, R=rot("y", sx)), 2, glass)
    b.style = {"kind": kind, "handles": handles}
    return b


# =============================================================================================
# the catalogue
# =============================================================================================

_TABLE = [
    ("chair", ("seat", "back", "leg"), _chair,
     "4/3 legs, swivel star, sled, cantilever, bar stool; solid, curved, ladder, spindle or frame back; no arms"),
    ("armchair", ("seat", "back", "leg", "arm"), _armchair, "wooden, office (swivel), lounge, wingback"),
    ("sofa", ("seat", "back", "arm", "leg"), _sofa, "2-4 seats; box, rolled, thin or no arms; feet or plinth; chaise"),
    ("bench", ("seat", "back", "leg"), _bench, "park (slats), plank, panel, upholstered; with or without back"),
    ("bed", ("frame", "mattress", "headboard", "pillow"), _bed,
     "single/double; panel, slat, arched or tall headboard; footboard; box or legs"),
    ("table", ("top", "leg", "shelf"), _table,
     "dining, coffee, side, bar; rect, rounded, round, oval; legs, pedestal, trestle, X legs; shelf"),
    ("desk", ("top", "leg", "drawer"), _desk, "4 legs, side panels, 1-2 drawer pedestals; modesty panel; hutch"),
    ("bookshelf", ("frame", "shelf", "back", "book"), _bookshelf, "tall, low, ladder, cube; open or closed back; books"),
    ("lamp", ("base", "stem", "shade"), _lamp, "floor, desk, table (ceramic base), arc, tripod; 4 shades"),
    ("mug", ("body", "handle"), _mug, "straight, tapered, barrel, flared; C, D, square, ear handle"),
    ("cup", ("body", "handle", "base"), _cup, "teacup, espresso, tumbler, paper (lid); saucer or foot (base)"),
    ("bucket", ("body", "handle", "rim"), _bucket, "pail (bail up, tilted, down; grip), tub (side grips); rim, ribs"),
    ("bottle", ("body", "neck", "cap"), _bottle, "wine, milk, flask, square, jug, sports; screw, cork, tall, sport cap"),
    ("vase", ("body", "neck", "handle", "foot"), _vase, "bulb, cylinder, trumpet, gourd, amphora; foot"),
    ("car", ("body", "cabin", "wheel"), _car, "sedan, hatch, van, pickup, sports, SUV; spoiler"),
    ("boat", ("hull", "deck", "mast", "sail"), _boat, "sailboat (jib), motorboat (cabin, outboard), rowboat, canoe"),
    ("airplane", ("fuselage", "wing", "tail", "engine"), _airplane, "airliner, fighter, glider, prop, bizjet"),
    ("rocket", ("body", "nose", "fin", "booster"), _rocket,
     "1-3 stages; cone, ogive, capsule, blunt nose; 0/3/4 fins; 0/2/4 boosters"),
    ("guitar", ("body", "neck", "headstock"), _guitar, "acoustic, electric, classical, bass, ukulele"),
    ("knife", ("blade", "handle", "guard"), _knife, "chef, bread, cleaver, dagger, utility; guard"),
    ("stool", ("seat", "leg", "footrest"), _stool, "bar (footrest ring or rungs), low, swivel, ottoman"),
    ("cabinet", ("body", "door", "drawer", "leg"), _cabinet, "wardrobe, sideboard, chest of drawers, nightstand; legs"),
    ("bowl", ("body", "foot"), _bowl, "round, conical, shallow, footed"),
    ("jar", ("body", "lid", "handle"), _jar, "mason, cookie (ear handles), apothecary, canister"),
]

FAMILIES: tuple[Family, ...] = tuple(
    Family(name, parts, f"910000{i + 1:02d}", build, styles) for i, (name, parts, build, styles) in enumerate(_TABLE)
)

HARD = FamilySet(
    "hard",
    FAMILIES,
    generator="crosspoint.data.demo",
    stretch=0.3,
    heading="random",
    seed_salt=(2,),
    drop_degenerate=True,
    description="24 parametric shape families with confusable classes (chair/armchair/sofa/bench/stool, "
                "table/desk, bookshelf/cabinet, mug/cup/bucket/bowl, bottle/vase/jar/rocket)",
)
