"""The ``crosspoint`` command line.

Each subcommand lives in a module of :mod:`crosspoint.commands` that defines

- ``NAME``: the subcommand's name (``"info"``),
- ``HELP``: a one-line description,
- ``add_arguments(parser)``: its arguments,
- ``run(args) -> int``: the work, returning the exit code.

Command modules keep their top-level imports light (no torch, no open3d) so that building the
parser stays fast; heavy imports happen inside ``run``. ``main(argv)`` returns the exit code, so
tests call it directly.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from typing import Sequence

from crosspoint import __version__


def _command_modules():
    import crosspoint.commands as pkg

    mods = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"crosspoint.commands.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crosspoint",
        description="CrossPoint: self-supervised cross-modal contrastive learning for 3D point clouds.",
    )
    parser.add_argument("--version", action="version", version=f"crosspoint {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
