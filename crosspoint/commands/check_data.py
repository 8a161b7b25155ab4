"""``crosspoint check-data DIR``: recognise a dataset layout and report everything wrong with it."""

from __future__ import annotations

import json
import sys

NAME = "check-data"
HELP = "recognise the dataset layout in DIR, report counts and every problem (exit 1 on problems)"
DESCRIPTION = (
    "Detect which dataset layout DIR holds (shapenet_render, modelnet40_h5, scanobjectnn_h5, "
    "shapenetpart_h5, shapenetpart_txt, folder, crosspoint_demo; DIR may be the dataset folder or "
    "its parent, and a parent holding several datasets is checked for each), print counts "
    "(objects, classes, views, splits), then every problem (missing folders or files, objects "
    "without views, unreadable files, wrong shapes, NaNs, labels out of range, split entries naming "
    "missing objects, empty classes) and warning. The full check reads every file; --quick reads a "
    "sample. Exit status 0 when clean, 1 when there is any problem or no layout is recognised."
)


def add_arguments(p) -> None:
    p.add_argument("directory", metavar="DIR", help="dataset folder (or its parent)")
    p.add_argument("--quick", action="store_true", help="structural checks only; read a sample of the files")
    p.add_argument("--json", action="store_true", help="print a JSON object (or list, for several layouts)")
    p.add_argument(
        "--layout",
        choices=(
            "crosspoint_demo", "shapenet_render", "modelnet40_h5", "scanobjectnn_h5",
            "shapenetpart_h5", "shapenetpart_txt", "folder",
        ),
        help="check only this layout",
    )
    p.add_argument("--sample", type=int, default=32, help="objects read per layout with --quick (default 32)")


def run(args) -> int:
    from crosspoint.data.validate import validate_all, validate_dataset

    progress = not args.json and sys.stderr.isatty()
    if args.layout:
        reports = [validate_dataset(args.directory, layout=args.layout, quick=args.quick, sample=args.sample, progress=progress)]
    else:
        reports = validate_all(args.directory, quick=args.quick, sample=args.sample, progress=progress)
    if args.json:
        payload = [r.to_dict() for r in reports]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=1, default=str))
    else:
        for k, r in enumerate(reports):
            if k:
                print()
            print(r.format())
        bad = sum(len(r.problems) for r in reports)
        print()
        print("OK: no problems found" if not bad else f"FAILED: {bad} problem(s)")
    return 0 if all(r.ok for r in reports) else 1
