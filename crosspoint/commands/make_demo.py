"""``crosspoint make-demo OUT``: generate a procedural demo dataset (ShapeNetRender + ShapeNetPart
layouts, and for the hard preset ScanObjectNN-style partial scans)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

NAME = "make-demo"
HELP = "generate a procedural demo dataset (hard: 24 classes with partial scans; easy: the original 8 classes)"
DESCRIPTION = (
    "Generate an embedded demo dataset into OUT, locally (nothing is downloaded): procedurally built "
    "objects with labelled parts, written in the ShapeNetRender layout (ShapeNet/, ShapeNetRendering/) "
    "and the ShapeNetPart txt layout, plus the meshes and demo_meta.json.\n\n"
    "--preset hard (default): 24 shape families with real variety and confusable classes (chair, "
    "armchair, sofa, bench, bed, table, desk, bookshelf, lamp, mug, cup, bucket, bottle, vase, car, "
    "boat, airplane, rocket, guitar, knife, stool, cabinet, bowl, jar), objects at a random heading about +Y, and in OUT/scans a "
    "single-view partial scan of every object (ray-cast depth camera, self-occlusion, depth-dependent "
    "noise, background clutter, random rotation): `crosspoint eval svm --data OUT/scans` reads it.\n"
    "--preset easy: the original 8-class demo (chair, table, airplane, lamp, mug, car, guitar, bottle), "
    "byte for byte; the first demo checkpoint was trained on it (the shipped one on the hard preset).\n"
    "--sensor: the points sampled like a depth sensor's (density falling off across the object, jitter); "
    "only the sampled points change, not the meshes, views or scans. `make-demo OUT --seed 1 --sensor` is "
    "the held-out demo on which the demo checkpoint (pretrained on seed 0's clean points) shows what "
    "pretraining bought over random weights (assets/MODEL_CARD.md).\n\n"
    "Deterministic for a seed. OUT must be new, empty, or a previous demo."
)


def add_arguments(p) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--preset", choices=("hard", "easy"), default="hard", help="which demo (default hard)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--per-class", type=int, default=None, metavar="N", help="objects per class (default 36 hard, 60 easy)")
    p.add_argument("--views", type=int, default=None, metavar="V",
                   help="rendered views per object (default 6 hard, 24 easy as ShapeNetRendering)")
    p.add_argument("--size", type=int, default=None, metavar="S", help="view size in pixels (default 137)")
    p.add_argument("--points", type=int, default=2048, metavar="P", help="points per object (default 2048)")
    p.add_argument("--scans", action=argparse.BooleanOptionalAction, default=None,
                   help="also write a partial scan of every object into OUT/scans (default: on for hard, off for easy)")
    p.add_argument("--clutter", action=argparse.BooleanOptionalAction, default=None,
                   help="background clutter in the scans: floor patch, boxes, walls (default on; implies --scans)")
    p.add_argument("--rotate", action=argparse.BooleanOptionalAction, default=None,
                   help="turn every scan about +Y by a random angle (default on; implies --scans)")
    p.add_argument("--heading", choices=("aligned", "random"), default=None,
                   help="objects face +Z (aligned, ShapeNet's convention) or a random heading about +Y "
                        "(default: random for hard, aligned for easy)")
    p.add_argument("--sensor", action="store_true",
                   help="sensor-like points: the defaults of --density, --density-pool and --jitter become "
                        "5, 8 and 0.01 (default: clean samples)")
    p.add_argument("--density", type=float, default=None, metavar="S",
                   help="point density varying across each object: n of K*n surface samples (K: --density-pool) "
                        "drawn with weight exp(S x.d) along a random direction d (default 0: uniform, as before)")
    p.add_argument("--density-pool", type=int, default=None, metavar="K",
                   help="candidates per kept point for --density (default 2; 8 with --sensor); a larger K lets "
                        "a large S thin the far side out further")
    p.add_argument("--jitter", type=float, default=None, metavar="SIGMA",
                   help="Gaussian noise on every point coordinate, clipped to 2.5 SIGMA (default 0; 0.01 with "
                        "--sensor)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: min(2, cores))")
    p.add_argument("--force", action="store_true", help="regenerate even when OUT already holds this demo")


def run(args) -> int:
    from crosspoint.data.demo import DEFAULT_SIZE, PRESET_DEFAULTS, ScanSettings, generate_demo, get_preset

    from crosspoint.data.demo import SENSOR, PointNuisance

    base = SENSOR if args.sensor else PointNuisance()
    try:
        nuisance = PointNuisance(density=base.density if args.density is None else args.density,
                                 jitter=base.jitter if args.jitter is None else args.jitter,
                                 pool=base.pool if args.density_pool is None else args.density_pool)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    defaults = PRESET_DEFAULTS[args.preset]
    scans = defaults["scans"] if args.scans is None else args.scans
    if args.scans is None and (args.clutter is not None or args.rotate is not None):
        scans = True
    if not scans and (args.clutter or args.rotate):
        print("error: --clutter and --rotate shape the scans; they cannot be combined with --no-scans", file=sys.stderr)
        return 2
    scan = None
    if scans:
        scan = ScanSettings()
        scan = dataclasses.replace(scan, clutter=scan.clutter if args.clutter is None else args.clutter,
                                   rotate=scan.rotate if args.rotate is None else args.rotate)
    per_class = defaults["per_class"] if args.per_class is None else args.per_class
    n_views = defaults["n_views"] if args.views is None else args.views
    size = DEFAULT_SIZE if args.size is None else args.size
    n_classes = len(get_preset(args.preset).classes)
    total = per_class * n_classes
    t0 = time.perf_counter()
    bar = None
    try:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="obj", desc="make-demo", file=sys.stderr, disable=None)
    except ImportError:  # pragma: no cover
        pass

    def progress(done: int, _total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    try:
        out = generate_demo(args.out, preset=args.preset, seed=args.seed, per_class=per_class, n_points=args.points,
                            n_views=n_views, size=size, workers=args.workers, scans=scan or False,
                            heading=args.heading, nuisance=nuisance, force=args.force, progress=progress)
    except ValueError as e:
        if bar is not None:
            bar.close()
        print(f"error: {e}", file=sys.stderr)
        return 1
    if bar is not None:
        bar.close()
    dt = time.perf_counter() - t0
    extra = ""
    if scan is not None:
        what = [w for w, on in (("clutter", scan.clutter), ("rotated", scan.rotate)) if on]
        extra = f", partial scans{' (' + ', '.join(what) + ')' if what else ''} in {out / 'scans'}"
    if nuisance.active:
        extra += (f"; points with density {nuisance.density:g} (pool {nuisance.pool}), jitter {nuisance.jitter:g}")
    print(
        f"demo dataset ({args.preset}): {total} objects ({per_class} x {n_classes} classes), "
        f"{n_views} views of {size}px each{extra}, in {dt:.1f} s at {out}"
    )
    return 0
