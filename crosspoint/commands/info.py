"""``crosspoint info FILE...``: a one-line summary of each point cloud or mesh file."""

from __future__ import annotations

import json
import sys

NAME = "info"
HELP = "print a one-line summary (format, points, faces, bounds, attributes) of each file"
DESCRIPTION = (
    "Read each FILE (any format crosspoint reads; 'file.h5#12' for row 12 of an HDF5 file) and print "
    "'FILE: <format>, <points>, <faces>, bounds [...] .. [...], normals, colours, labels' on stdout, "
    "followed by the reader's warnings. A file that cannot be read is reported as 'FILE: error: <why>' "
    "on stderr; every file is tried, and the exit status is 1 if any failed."
)


def add_arguments(p) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="point cloud or mesh files")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects instead of lines")


def _jsonable(v):
    import numpy as np

    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size <= 64 else f"array{tuple(v.shape)}"
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


def _record(arg: str, cloud) -> dict:
    import numpy as np

    lo, hi = cloud.bounds()
    return {
        "path": arg,
        "ok": True,
        "format": cloud.source_format,
        "points": cloud.n_points,
        "faces": cloud.mesh.n_faces if cloud.mesh is not None else None,
        "vertices": cloud.mesh.n_vertices if cloud.mesh is not None else None,
        "bounds": [[float(x) for x in lo], [float(x) for x in hi]],
        "normals": cloud.normals is not None,
        "colors": cloud.colors is not None,
        "labels": None if cloud.labels is None else sorted(int(x) for x in np.unique(cloud.labels)[:1000]),
        "class_label": cloud.class_label,
        "category": cloud.category,
        "warnings": list(cloud.warnings),
        "meta": _jsonable(cloud.meta),
    }


def run(args) -> int:
    from crosspoint.io import ReadError, read_point_cloud

    failed = 0
    records = []
    for arg in args.files:
        try:
            cloud = read_point_cloud(arg)
        except ReadError as e:
            failed += 1
            records.append({"path": arg, "ok": False, "error": e.reason})
            if not args.json:
                print(f"{arg}: error: {e.reason}", file=sys.stderr)
            continue
        except (OSError, ValueError) as e:  # pragma: no cover - read_point_cloud wraps these
            failed += 1
            records.append({"path": arg, "ok": False, "error": str(e)})
            if not args.json:
                print(f"{arg}: error: {e}", file=sys.stderr)
            continue
        if args.json:
            records.append(_record(arg, cloud))
        else:
            line = f"{arg}: {cloud.summary()}"
            if cloud.warnings:
                sep = ": " if line.endswith("warning(s)") else "; warnings: "
                line += sep + "; ".join(cloud.warnings)
            print(line)
    if args.json:
        print(json.dumps(records, indent=2))
        for r in records:
            if not r["ok"]:
                print(f"{r['path']}: error: {r['error']}", file=sys.stderr)
    sys.stdout.flush()
    return 1 if failed else 0
