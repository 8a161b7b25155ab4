"""``crosspoint make-demo OUT``: generate the procedural demo dataset (ShapeNetRender + ShapeNetPart layouts)."""

from __future__ import annotations

import sys
import time

NAME = "make-demo"
HELP = "generate the procedural demo dataset (8 classes with parts, points, meshes and rendered views)"
DESCRIPTION = (
    "Generate the embedded demo dataset into OUT: procedurally built objects of 8 classes "
    "(chair, table, airplane, lamp, mug, car, guitar, bottle) with labelled parts, written in the "
    "ShapeNetRender layout (ShapeNet/, ShapeNetRendering/) and the ShapeNetPart txt layout, plus "
    "the meshes and demo_meta.json. Deterministic for a seed. OUT must be new, empty, or a "
    "previous demo."
)


def add_arguments(p) -> None:
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--per-class", type=int, default=60, metavar="N", help="objects per class (default 60)")
    p.add_argument("--views", type=int, default=None, metavar="V", help="rendered views per object (default 24, as ShapeNetRendering)")
    p.add_argument("--size", type=int, default=None, metavar="S", help="view size in pixels (default 137)")
    p.add_argument("--points", type=int, default=2048, metavar="P", help="points per object (default 2048)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: min(2, cores))")
    p.add_argument("--force", action="store_true", help="regenerate even when OUT already holds this demo")


def run(args) -> int:
    from crosspoint.data import synthetic

    kw = dict(
        seed=args.seed,
        per_class=args.per_class,
        n_points=args.points,
        n_views=synthetic.DEFAULT_VIEWS if args.views is None else args.views,
        size=synthetic.DEFAULT_SIZE if args.size is None else args.size,
        workers=args.workers,
        force=args.force,
    )
    total = args.per_class * len(synthetic.CLASSES)
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
        out = synthetic.generate_demo(args.out, progress=progress, **kw)
    except ValueError as e:
        if bar is not None:
            bar.close()
        print(f"error: {e}", file=sys.stderr)
        return 1
    if bar is not None:
        bar.close()
    dt = time.perf_counter() - t0
    print(
        f"demo dataset: {total} objects ({args.per_class} x {len(synthetic.CLASSES)} classes), "
        f"{kw['n_views']} views of {kw['size']}px each, in {dt:.1f} s at {out}"
    )
    return 0
