"""The embedded demo dataset's original names: the easy preset of :mod:`crosspoint.data.demo`.

The generator now lives in the :mod:`crosspoint.data.demo` package (shape families, the scanner,
the layouts writer). This module keeps the names callers used before the package existed, all of
them for the **easy** preset, the original 8-class demo, which the package reproduces byte for
byte: ``generate_demo(...)`` without a ``preset`` still writes exactly the same files (the first
demo checkpoint was trained on them). ``ensure_demo()`` and ``default_demo_dir()`` are the
package's: they follow the shipped checkpoint, which is trained on the harder 24-class preset
(``crosspoint.data.demo.generate_demo(..., preset="hard")``, ``crosspoint make-demo OUT``).

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

See :mod:`crosspoint.data.demo.writer` for the layout on disk.
"""

from __future__ import annotations

import numpy as np

from crosspoint.data.demo import writer as _writer
from crosspoint.data.demo.easy import EASY
from crosspoint.data.demo.writer import (
    DEFAULT_SIZE,
    DEFAULT_VIEWS,
    FORMAT_NAME,
    FORMAT_VERSION,
    MARKER_NAME,
    META_NAME,
    PART_DIR,
    DemoCancelled,
    default_demo_dir,
    demo_is_complete,
    ensure_demo,
    generate_demo,
    own_demo_meta,
    write_mesh_ply,
)
from crosspoint.pointcloud import Mesh, PointCloud

__all__ = [
    "CLASSES",
    "CLASS_PARTS",
    "SYNSETS",
    "N_PARTS",
    "FORMAT_VERSION",
    "FORMAT_NAME",
    "META_NAME",
    "MARKER_NAME",
    "PART_DIR",
    "DEFAULT_VIEWS",
    "DEFAULT_SIZE",
    "DemoCancelled",
    "class_part_ids",
    "make_object",
    "demo_object",
    "demo_part_table_meta",
    "generate_demo",
    "demo_is_complete",
    "default_demo_dir",
    "ensure_demo",
    "own_demo_meta",
    "write_mesh_ply",
]

CLASS_PARTS: dict[str, tuple[str, ...]] = dict(EASY.class_parts)
CLASSES: tuple[str, ...] = EASY.classes
SYNSETS: dict[str, str] = dict(EASY.synsets)
N_PARTS: int = EASY.n_parts


def class_part_ids(class_name: str) -> list[int]:
    """The global part ids of an easy-preset class (a contiguous range)."""
    return EASY.class_part_ids(class_name)


def make_object(class_name: str, rng: np.random.Generator | int) -> tuple[Mesh, np.ndarray]:
    """One easy-preset object: ``(mesh, face_labels)`` (see :meth:`FamilySet.make_object`)."""
    return EASY.make_object(class_name, rng)


def demo_object(class_name: str | None = None, seed: int = 0, *, index: int = 0, n_points: int = 2048) -> PointCloud:
    """The easy demo's ``<class>_<index>`` for ``seed``, instantly (see
    :func:`crosspoint.data.demo.demo_object`)."""
    return _writer.demo_object(class_name, seed, index=index, n_points=n_points, preset="easy")


def demo_part_table_meta() -> dict:
    """The easy demo's part table (all classes) in the form model bundles store as ``meta["part_table"]``."""
    return _writer.demo_part_table_meta("easy")


def _object_seeds(seed: int, class_index: int, index: int) -> tuple[np.random.Generator, int, int]:
    """(shape rng, sampling seed, view seed) of object ``index`` of an easy-preset class."""
    rng, sample, view, _ = _writer._object_seeds(EASY, seed, class_index, index)
    return rng, sample, view
