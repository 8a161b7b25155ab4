"""The easy preset: the original 8-class demo (one parametric builder per class, labelled parts).

This is the generator ``crosspoint.data.synthetic`` shipped before the package, moved here
unchanged: with it, ``generate_demo(..., preset="easy")`` writes the same bytes as before, and the
shipped demo checkpoint (``assets/demo_checkpoint.pt``) was trained on it. It is easy: a
random-weight encoder already separates its classes (98 % linear-SVM accuracy); the hard preset
(:mod:`.families`) is the benchmark.

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
"""

from __future__ import annotations

import math
from typing import Callable

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
    unit,
    xf,
)

__all__ = ["EASY"]


def _legs_four(b: Builder, rng, w, d, h, inset, part, color, *, round_legs=None, splay=0.0, n_legs=4):
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
        out = unit(np.array([x, 0.0, z])) * splay * h
        foot = np.array([x + out[0], 0.0, z + out[2]])
        if round_legs:
            g = cylinder(foot, top, thick * taper * 0.6, thick * 0.6, n_seg=14, caps=(True, False))
        else:
            dvec = top - foot
            R = align_y(dvec)
            L = float(np.linalg.norm(dvec))
            bt, tp = thick * taper / 2, thick / 2
            c = np.array([[-bt, 0, -bt], [bt, 0, -bt], [bt, 0, bt], [-bt, 0, bt],
                          [-tp, L, -tp], [tp, L, -tp], [tp, L, tp], [-tp, L, tp]])
            g = hexa(c @ R.T + foot)
        b.add(g, part, color)


def _chair(rng: np.random.Generator) -> Builder:
    b = Builder()
    wood = pick_color(rng, WOOD)
    frame = wood if rng.random() < 0.6 else pick_color(rng, METAL)
    fabric = pick_color(rng, FABRIC) if rng.random() < 0.6 else frame
    seat_round = rng.random() < 0.25
    w = rng.uniform(0.40, 0.60)
    d = w * rng.uniform(0.8, 1.1) if not seat_round else w
    h = rng.uniform(0.38, 0.52)
    t = rng.uniform(0.03, 0.08)
    if seat_round:
        outline = outline_ellipse(w, d, 36)
    elif rng.random() < 0.5:
        outline = outline_rounded_rect(w, d, rng.uniform(0.02, 0.12))
    else:
        outline = np.array([[w / 2, d / 2], [-w / 2, d / 2], [-w / 2, -d / 2], [w / 2, -d / 2]])
    b.add(slab(outline, h - t, h, smooth=len(outline) > 4), 0, fabric)

    # back (part 1), at -Z, leaning back by `tilt`
    bh = rng.uniform(0.30, 0.60)
    tilt = rng.uniform(0, 16)
    back_z = -d / 2 + 0.02 if not seat_round else -d / 2 * 0.85
    kind = rng.choice(["solid", "curved", "ladder"], p=[0.35, 0.35, 0.3])
    bw = w * (rng.uniform(0.85, 1.0) if not seat_round else rng.uniform(0.6, 0.85))
    bt = rng.uniform(0.025, 0.06)
    R = rot("x", -tilt)
    base = np.array([0.0, h, back_z])
    if kind == "solid":
        g = box((0, bh / 2, 0), (bw, bh, bt))
        b.add(xf(g, R=R, t=base), 1, fabric)
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
        b.add(sheet(grid, bt), 1, fabric)
    else:  # ladder: two posts and 2-4 slats
        post = rng.uniform(0.025, 0.04)
        n_sl = int(rng.integers(2, 5))
        for sx in (-1, 1):
            g = box((sx * (bw / 2 - post / 2), bh / 2, 0), (post, bh, post))
            b.add(xf(g, R=R, t=base), 1, frame)
        for i in range(n_sl):
            y = bh * (0.35 + 0.6 * (i + 1) / n_sl) - 0.03
            g = box((0, y, 0), (bw - 2 * post, rng.uniform(0.03, 0.07), bt * 0.6))
            b.add(xf(g, R=R, t=base), 1, frame)

    # legs (part 2)
    leg_kind = rng.choice(["four", "pedestal", "sled"], p=[0.7, 0.18, 0.12]) if not seat_round else rng.choice(["three", "four", "pedestal"])
    if leg_kind in ("four", "three"):
        _legs_four(b, rng, w, d, h - t, rng.uniform(0.02, 0.05), 2, frame,
                   splay=rng.uniform(0.0, 0.12), n_legs=4 if leg_kind == "four" else 3)
    elif leg_kind == "pedestal":
        metal = pick_color(rng, METAL)
        col_r = rng.uniform(0.025, 0.045)
        hub_y = rng.uniform(0.06, 0.1)
        b.add(cylinder((0, hub_y, 0), (0, h - t, 0), col_r, n_seg=16), 2, metal)
        n_spokes = int(rng.choice([4, 5]))
        sl = rng.uniform(0.25, 0.33)
        for k in range(n_spokes):
            a = 2 * np.pi * k / n_spokes + np.pi / n_spokes
            end = np.array([sl * math.cos(a), 0.035, sl * math.sin(a)])
            b.add(cylinder((0, hub_y, 0), end, 0.022, 0.016, n_seg=10), 2, metal)
            b.add(ellipsoid(end - np.array([0, 0.012, 0]), (0.025, 0.022, 0.025), 10, 6), 2, metal)
    else:  # sled: two bent tubes
        metal = pick_color(rng, METAL)
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
            b.add(tube(dense, r, n_seg=10), 2, metal)

    # arms (part 3), optional
    if not seat_round and rng.random() < 0.35:
        ah = rng.uniform(0.18, 0.26)
        aw = rng.uniform(0.04, 0.07)
        al = d * rng.uniform(0.7, 0.95)
        for sx in (-1, 1):
            x = sx * (w / 2 + aw / 2 - 0.01)
            b.add(box((x, h + ah, -d / 2 + al / 2), (aw, 0.03, al)), 3, frame)
            b.add(box((x, h + ah / 2, -d / 2 + al - 0.03), (0.03, ah, 0.03)), 3, frame)
    return b


def _table(rng: np.random.Generator) -> Builder:
    b = Builder()
    wood = pick_color(rng, WOOD)
    legc = wood if rng.random() < 0.6 else pick_color(rng, METAL)
    shape = rng.choice(["rect", "rounded", "round", "oval"], p=[0.35, 0.25, 0.25, 0.15])
    h = rng.uniform(0.45, 0.80)
    t = rng.uniform(0.025, 0.07)
    if shape == "round":
        w = d = rng.uniform(0.7, 1.2)
        outline = outline_ellipse(w, d, 48)
    else:
        w = rng.uniform(0.8, 1.8)
        d = w * rng.uniform(0.45, 0.9)
        if shape == "oval":
            outline = outline_ellipse(w, d, 48)
        elif shape == "rounded":
            outline = outline_rounded_rect(w, d, rng.uniform(0.03, 0.15))
        else:
            outline = np.array([[w / 2, d / 2], [-w / 2, d / 2], [-w / 2, -d / 2], [w / 2, -d / 2]])
    b.add(slab(outline, h - t, h, smooth=len(outline) > 4), 0, wood)
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
            b.add(lathe([[(base_r, 0.0), (base_r, 0.03), (col_r * 1.3, 0.07)]], 32, caps=[(base_r, 0.0, False)]), 1, legc)
            b.add(cylinder((0, 0.07, 0), (0, ly, 0), col_r, n_seg=24), 1, legc)
        else:  # cross feet
            b.add(cylinder((0, 0.0, 0), (0, ly, 0), col_r, n_seg=24), 1, legc)
            fl = rng.uniform(0.25, 0.4) * min(w, d) / 0.9
            for a in (0, 90):
                b.add(box((0, 0.025, 0), (2 * fl, 0.05, 0.06), R=rot("y", a + 45 * (shape == "rect"))), 1, legc)
        shelf_ok = False
        lw = ld = 0
    else:  # trestle: two panels at the ends (and a stretcher)
        pt = rng.uniform(0.04, 0.08)
        for sx in (-1, 1):
            b.add(box((sx * (w / 2 - 0.1), ly / 2, 0), (pt, ly, d * rng.uniform(0.6, 0.85))), 1, legc)
        b.add(box((0, ly * 0.3, 0), (w - 0.2, 0.05, 0.05)), 1, legc)
        shelf_ok = False
        lw = ld = 0
    if shelf_ok and rng.random() < 0.4 and lw > 0.2:
        sy = rng.uniform(0.12, 0.35) * h
        b.add(box((0, sy, 0), (lw * 0.98, 0.025, ld * 0.98)), 2, wood * 0.9)
    return b


def _airplane(rng: np.random.Generator) -> Builder:
    b = Builder()
    body_c = pick_color(rng, [(0.88, 0.88, 0.9), (0.75, 0.76, 0.8), (0.45, 0.5, 0.55), (0.9, 0.9, 0.85)])
    accent = pick_color(rng, PAINT)
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
    g = lathe([prof], n_seg=20, caps=[(R * 0.25, -L / 2, False)])
    b.add(xf(g, R=rot("x", 90)), 0, body_c)  # +Y -> +Z
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
        b.add(hexa(c), 1, body_c)
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
        b.add(hexa(c), 2, body_c)
    fins = [0.0] if (kind != "fighter" or rng.random() < 0.5) else [-R * 0.6, R * 0.6]
    for fx in fins:
        fr = tr * rng.uniform(1.0, 1.5)
        ft = fr * 0.06
        za, zb = tz - fr / 2, tz + fr / 2  # root: rear, front
        zc, zd = tz - fr * 0.6, tz - fr * 0.1  # tip: rear, front (swept back)
        y0 = R * 0.5
        c = np.array([[fx - ft, y0, za], [fx + ft, y0, za], [fx + ft, y0, zb], [fx - ft, y0, zb],
                      [fx - ft / 2, fin_h, zc], [fx + ft / 2, fin_h, zc], [fx + ft / 2, fin_h, zd], [fx - ft / 2, fin_h, zd]])
        b.add(hexa(c), 2, accent if rng.random() < 0.5 else body_c)
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
                b.add(cylinder((x, yc, zc - el / 2), (x, yc, zc + el / 2), er * 0.8, er, n_seg=16), 3, accent if kind == "prop" else body_c * 0.85)
    return b


def _lamp(rng: np.random.Generator) -> Builder:
    b = Builder()
    metal = pick_color(rng, METAL)
    shade_c = pick_color(rng, FABRIC + PAINT)
    base_kind = rng.choice(["disc", "box", "dome"])
    br = rng.uniform(0.08, 0.16)
    bh = rng.uniform(0.02, 0.06)
    if base_kind == "disc":
        b.add(lathe([[(br, 0), (br, bh), (br * 0.85, bh * 1.2)]], 32, caps=[(br, 0, False), (br * 0.85, bh * 1.2, True)]), 0, metal)
        top = bh * 1.2
    elif base_kind == "box":
        b.add(box((0, bh / 2, 0), (2 * br, bh, 2 * br * rng.uniform(0.7, 1.0))), 0, metal)
        top = bh
    else:
        a = np.linspace(0, np.pi / 2, 8)
        dh = bh * 2.0
        b.add(lathe([np.stack([br * np.cos(a), dh * np.sin(a)], 1)], 32, caps=[(br, 0, False)]), 0, metal)
        top = dh
    stem_kind = rng.choice(["straight", "desk", "arc"], p=[0.5, 0.3, 0.2])
    sr = rng.uniform(0.008, 0.018)
    shade_kind = rng.choice(["cone", "drum", "globe", "dome"])
    sh = rng.uniform(0.12, 0.28)
    if stem_kind == "straight":
        H = rng.uniform(0.35, 0.9)
        b.add(cylinder((0, top, 0), (0, H, 0), sr, n_seg=12), 1, metal)
        anchor = np.array([0, H, 0.0])
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
        b.add(cylinder(p0, p1, sr, n_seg=10), 1, metal)
        b.add(cylinder(p1, p2, sr, n_seg=10), 1, metal)
        b.add(ellipsoid(p1, (sr * 1.8,) * 3, 10, 6), 1, metal)
        anchor = p2
        shade_center = p2 + np.array([0, -sh * 0.35, 0.04])
        down = True
    else:  # arc floor lamp
        H = rng.uniform(0.9, 1.4)
        reach = rng.uniform(0.35, 0.7)
        tt = np.linspace(0, np.pi / 2, 24)
        path = np.stack([np.zeros_like(tt), top + (H - top) * np.sin(tt), reach * (1 - np.cos(tt))], 1)
        path = np.concatenate([path, [[0, H - 0.04, reach + 0.06]]])
        b.add(tube(path, sr, n_seg=10), 1, metal)
        anchor = path[-1]
        shade_center = anchor + np.array([0, -sh * 0.4, 0.0])
        down = True
    # shade (part 2)
    r_top = rng.uniform(0.06, 0.14)
    r_bot = r_top * rng.uniform(1.1, 1.8)
    cy = shade_center[1]
    if shade_kind == "cone":
        if down:
            g = lathe([[(r_bot, -sh / 2), (r_top * 0.6, sh / 2)], [(r_top * 0.6 - 0.004, sh / 2), (r_bot - 0.004, -sh / 2)]], 32,
                       caps=[(r_top * 0.6, sh / 2, True)])
        else:
            g = lathe([[(r_bot, -sh / 2), (r_top, sh / 2)], [(r_top - 0.004, sh / 2), (r_bot - 0.004, -sh / 2)]], 32)
    elif shade_kind == "drum":
        g = lathe([[(r_top, -sh / 2), (r_top, sh / 2)], [(r_top - 0.004, sh / 2), (r_top - 0.004, -sh / 2)]], 32,
                   caps=[(r_top, sh / 2, True)] if down else [])
    elif shade_kind == "globe":
        rr = sh * 0.5
        g = ellipsoid((0, 0, 0), (rr, rr * rng.uniform(0.8, 1.1), rr), 24, 12)
    else:  # dome (hemisphere, opening downwards)
        rr = rng.uniform(0.1, 0.2)
        a = np.linspace(0, np.pi / 2, 10)
        outer = np.stack([rr * np.cos(a), -sh * 0.2 + rr * 0.8 * np.sin(a)], 1)
        inner = (outer * np.array([0.97, 1.0]) - np.array([0, 0.006]))[::-1]
        g = lathe([outer, inner], 32)
    b.add(xf(g, t=(shade_center[0], cy, shade_center[2])), 2, shade_c)
    return b


def _mug(rng: np.random.Generator) -> Builder:
    b = Builder()
    c = pick_color(rng, PAINT)
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
    g = lathe([outer, rim, inner], 36, caps=[(rs[0], 0.0, False), (rs[0] - wall, wall * 1.5, True)])
    b.add(g, 0, c)
    # handle (part 1): C, D or ring shape in the XY plane at +X
    hk = rng.choice(["C", "D", "ear"])
    hr = rng.uniform(0.004, 0.008)
    y0, y1 = h * rng.uniform(0.15, 0.3), h * rng.uniform(0.7, 0.88)

    def x_at(y):
        return float(np.interp(y, ys, rs)) - wall * 0.5

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
    b.add(tube(path, hr, n_seg=10), 1, c if rng.random() < 0.7 else pick_color(rng, PAINT))
    return b


def _car(rng: np.random.Generator) -> Builder:
    b = Builder()
    paint = pick_color(rng, PAINT)
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
    # slab extrudes an XZ outline along Y: build in (z, x)->(x, z) then rotate so "y" becomes X
    g = slab(prof[:, [0, 1]], -W / 2, W / 2, smooth=False)  # outline coords are (z, y), thickness along "y"
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
    v, f, n = slab(cprof, -cw / 2, cw / 2, smooth=False)
    b.add((v[:, [1, 2, 0]], f, n[:, [1, 2, 0]]), 1, glass if rng.random() < 0.5 else paint * 0.8)
    # wheels (part 2)
    tw = rng.uniform(0.18, 0.28)
    axles = [L / 2 - rng.uniform(0.55, 0.8), -L / 2 + rng.uniform(0.55, 0.8)]
    if kind == "pickup" and rng.random() < 0.3:
        axles.append(axles[-1] + 2.2 * wr)
    for z in axles:
        for sx in (-1, 1):
            x0 = sx * (W / 2 - tw * 0.4)
            g = cylinder((x0 - sx * tw / 2, wr, z), (x0 + sx * tw / 2, wr, z), wr, n_seg=22)
            b.add(g, 2, tyre)
    return b


def _guitar(rng: np.random.Generator) -> Builder:
    b = Builder()
    wood = pick_color(rng, WOOD)
    finish = pick_color(rng, PAINT) if rng.random() < 0.5 else wood
    dark = pick_color(rng, [(0.25, 0.16, 0.1), (0.12, 0.1, 0.09), (0.5, 0.35, 0.2)])
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
    v, f, nn = slab(out, -depth / 2, depth / 2)
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
    b.add(hexa(c), 1, dark)
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
    R = rot("x", -tilt)
    b.add(hexa(hc @ R.T + base), 2, dark)
    for i in range(3):
        y = hl * (0.3 + 0.22 * i)
        pr = 0.008
        if inline:
            p = np.array([nw0 / 2 + hw * 0.3 * (y / hl), y, 0]) @ R.T + base
            b.add(cylinder(p, p + np.array([0.03, 0, 0]), pr, n_seg=8), 2, np.array([0.75, 0.75, 0.78]))
        else:
            wx = nw0 / 2 + (hw - nw0) / 2 * (y / hl)
            for sx in (-1, 1):
                p = np.array([sx * wx, y, 0]) @ R.T + base
                b.add(cylinder(p, p + np.array([sx * 0.03, 0, 0]), pr, n_seg=8), 2, np.array([0.75, 0.75, 0.78]))
    return b


def _bottle(rng: np.random.Generator) -> Builder:
    b = Builder()
    glass = pick_color(rng, GLASS)
    capc = pick_color(rng, PAINT + METAL)
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
    g = lathe(body, n_seg=n_seg, caps=caps, phase=np.pi / 4 if n_seg == 4 else 0.0)
    b.add(g, 0, glass)
    # neck (part 1) with a lip
    ny0 = shoulder_top
    ny1 = ny0 + nh
    lip = rng.random() < 0.6
    segs = [[(nr, ny0), (nr * rng.uniform(0.85, 1.0), ny1 - (0.008 if lip else 0))]]
    if lip:
        segs.append([(nr * 1.15, ny1 - 0.008), (nr * 1.15, ny1)])
    g = lathe(segs, 24, caps=[] if rng.random() < 0.5 else [(nr * (1.15 if lip else 1.0), ny1, True)])
    b.add(g, 1, glass)
    # cap (part 2), optional
    if rng.random() < 0.75:
        ck = rng.choice(["screw", "cork", "tall"])
        cr = nr * (1.25 if ck != "cork" else 0.95)
        ch = {"screw": 0.02, "cork": 0.025, "tall": 0.045}[ck] * rng.uniform(0.8, 1.3)
        y0 = ny1 - (ch * 0.4 if ck != "cork" else -0.0)
        if ck == "cork":
            g = lathe([[(cr * 0.9, y0), (cr, y0 + ch)]], 20, caps=[(cr, y0 + ch, True)])
        else:
            g = lathe([[(cr, y0), (cr, y0 + ch)]], 24, caps=[(cr, y0 + ch, True), (cr, y0, False)])
        b.add(g, 2, capc if ck != "cork" else np.array([0.72, 0.58, 0.4]))
    return b


_BUILDERS: dict[str, Callable[[np.random.Generator], Builder]] = {
    "chair": _chair,
    "table": _table,
    "airplane": _airplane,
    "lamp": _lamp,
    "mug": _mug,
    "car": _car,
    "guitar": _guitar,
    "bottle": _bottle,
}

_PARTS = {
    "chair": ("seat", "back", "leg", "arm"),
    "table": ("top", "leg", "shelf"),
    "airplane": ("fuselage", "wing", "tail", "engine"),
    "lamp": ("base", "stem", "shade"),
    "mug": ("body", "handle"),
    "car": ("body", "cabin", "wheel"),
    "guitar": ("body", "neck", "headstock"),
    "bottle": ("body", "neck", "cap"),
}
_STYLES = {
    "chair": "solid/curved/ladder back; four/three legs, pedestal or sled; optional arms",
    "table": "rectangular/rounded/round/oval top; four/three legs, pedestal or trestle; optional shelf",
    "airplane": "airliner, fighter, glider, propeller plane; optional 2/4 engines",
    "lamp": "disc/box/dome base; straight, desk or arc stem; cone/drum/globe/dome shade",
    "mug": "straight/tapered/barrel body; C, D or ear handle",
    "car": "sedan, hatchback, van, pickup, sports car",
    "guitar": "acoustic, electric, classical",
    "bottle": "wine, milk, flask, square; optional cap",
}

EASY = FamilySet(
    "easy",
    [Family(c, _PARTS[c], f"9000000{i + 1}", _BUILDERS[c], _STYLES[c]) for i, c in enumerate(_PARTS)],
    generator="crosspoint.data.synthetic",
    description="the original 8-class demo (easy: random encoder weights reach ~98 % linear-SVM accuracy)",
)
