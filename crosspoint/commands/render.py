"""``crosspoint render FILE``: render views of a mesh or point cloud into PNGs + 3D-R2N2 metadata."""

from __future__ import annotations

import sys
from pathlib import Path

NAME = "render"
HELP = "render views of a mesh (shaded) or point cloud (splats) to PNGs with camera metadata"
DESCRIPTION = (
    "Render V views of FILE (any format crosspoint reads) on a sphere of cameras around it, like "
    "ShapeNetRendering: a mesh is shaded, a point cloud is splatted (--points forces splats for a "
    "mesh). The object is normalised into the unit sphere. Writes 00.png, 01.png, ... (RGBA, "
    "transparent background), renderings.txt and rendering_metadata.txt (one line per view: "
    "azimuth elevation in_plane_rotation distance fov) and normalization.txt (the object "
    "transform: cx cy cz scale) into --out."
)


def add_arguments(p) -> None:
    p.add_argument("file", help="mesh or point cloud file (ply, obj, off, pcd, npz, txt, ...)")
    p.add_argument("--views", "-n", type=int, default=12, metavar="V", help="number of views (default 12)")
    p.add_argument("--size", "-s", type=int, default=224, metavar="S", help="image size in pixels (default 224)")
    p.add_argument("--out", "-o", default=None, metavar="DIR",
                   help="output folder (default: <FILE stem>_views beside the current folder)")
    p.add_argument("--seed", type=int, default=0, help="camera seed (default 0)")
    p.add_argument("--points", action="store_true", help="render the points as splats even when FILE is a mesh")
    p.add_argument("--elevation", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="elevation range in degrees (default 25 30, as ShapeNetRendering)")
    p.add_argument("--fov", type=float, default=None, help="field of view in degrees (default 25)")
    p.add_argument("--background", default=None, metavar="R,G,B",
                   help="opaque background colour, floats in [0,1] or 0-255 (default transparent)")


def _parse_color(text: str):
    vals = [float(x) for x in text.replace(" ", "").split(",")]
    if len(vals) != 3:
        raise ValueError(f"--background wants R,G,B, got {text!r}")
    if max(vals) > 1:
        vals = [v / 255.0 for v in vals]
    return tuple(vals)


def run(args) -> int:
    from crosspoint.io import read_point_cloud
    from crosspoint.render import DEFAULT_ELEVATION_RANGE, DEFAULT_FOV, render_views, write_views

    if args.views < 1 or args.size < 8:
        print("error: --views must be >= 1 and --size >= 8", file=sys.stderr)
        return 2
    try:
        background = _parse_color(args.background) if args.background else None
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    path = Path(args.file)
    try:
        cloud = read_point_cloud(path)
    except (ValueError, OSError) as e:  # crosspoint.io.ReadError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 1
    as_points = args.points or cloud.mesh is None
    if as_points and cloud.n_points == 0:
        print(f"error: {path}: no points to render", file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else Path(f"{path.stem}_views")
    views = render_views(
        cloud,
        args.views,
        size=args.size,
        seed=args.seed,
        elevation_range=tuple(args.elevation) if args.elevation else DEFAULT_ELEVATION_RANGE,
        fov=args.fov if args.fov else DEFAULT_FOV,
        as_points=as_points,
        background=background,
    )
    write_views(out, views)
    what = f"{cloud.n_points:,} points (splats)" if as_points else f"mesh of {cloud.mesh.n_faces:,} faces"
    print(f"rendered {len(views)} views of {path.name} ({what}) at {args.size}x{args.size} to {out}")
    return 0
