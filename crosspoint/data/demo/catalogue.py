"""A preset's class table: :class:`Family` (one class: its parts and its builder) and
:class:`FamilySet` (the classes of a preset, their synsets and the global part numbering).

:func:`get_preset` returns the set of a preset by name: ``"easy"`` (:mod:`.easy`, the original
8-class demo) or ``"hard"`` (:mod:`.families`, the 24-class benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from crosspoint.pointcloud import Mesh

from .primitives import Builder, rot, unit

__all__ = ["Family", "FamilySet", "PRESETS", "DEFAULT_PRESET", "SHIPPED_PRESET", "get_preset"]

PRESETS = ("easy", "hard")
"""The preset names, in the order the CLI lists them."""
DEFAULT_PRESET = "hard"
"""The preset of ``crosspoint make-demo`` when none is given (``generate_demo`` defaults to
``"easy"``, which the older tests and byte-identity checks rely on)."""
SHIPPED_PRESET = "hard"
"""The preset the shipped demo checkpoint (``assets/demo_checkpoint.pt``) was trained on: the
explorer's demo dataset and objects, and ``--data demo`` (:func:`~.writer.ensure_demo`)."""


@dataclass(frozen=True)
class Family:
    """One class: ``name``, its ``parts`` (local part ``k`` is ``parts[k]``), the fake ``synset``,
    ``build(rng) -> Builder`` and a one-line ``styles`` summary (for the catalogue and the docs)."""

    name: str
    parts: tuple[str, ...]
    synset: str
    build: Callable[[np.random.Generator], Builder]
    styles: str = ""


class FamilySet:
    """The classes of one preset.

    Global part ids number the parts class after class (each class owns a contiguous range, as
    ShapeNetPart's 50 parts). ``stretch`` > 0 scales every finished object by an independent random
    factor in ``[1 - stretch, 1 + stretch]`` per axis (drawn from the object's shape stream after the
    builder), on top of the family's own proportions. ``heading`` "random" then turns it about +Y by a
    random angle (kept in the style as ``heading``, degrees): objects stand upright but face anywhere,
    as real objects in a room do (and as the pretraining augmentation assumes); "aligned" keeps the
    ShapeNet convention (facing +Z). ``seed_salt`` is appended to the seed entropy of
    every object so two presets never share random streams (empty for the easy preset, whose streams
    are the original generator's). ``drop_degenerate`` removes faces whose float32 area is zero
    (off for the easy preset, whose meshes must stay as they were). ``generator`` is written into
    ``demo_meta.json``.
    """

    def __init__(self, name: str, families: Sequence[Family], *, generator: str, stretch: float = 0.0,
                 heading: str = "aligned", seed_salt: tuple[int, ...] = (), drop_degenerate: bool = False,
                 description: str = "") -> None:
        self.name = name
        self.families = {f.name: f for f in families}
        if len(self.families) != len(families):
            raise ValueError(f"preset {name}: duplicate class names")
        self.generator = generator
        self.stretch = float(stretch)
        if heading not in ("aligned", "random"):
            raise ValueError(f"heading must be 'aligned' or 'random', got {heading!r}")
        self.heading = heading
        self.seed_salt = tuple(int(s) for s in seed_salt)
        self.drop_degenerate = bool(drop_degenerate)
        self.description = description
        self.classes: tuple[str, ...] = tuple(self.families)
        self.class_parts: dict[str, tuple[str, ...]] = {f.name: tuple(f.parts) for f in families}
        self.synsets: dict[str, str] = {f.name: f.synset for f in families}
        if len(set(self.synsets.values())) != len(families):
            raise ValueError(f"preset {name}: duplicate synsets")
        self.part_offsets: dict[str, int] = {}
        off = 0
        for f in families:
            self.part_offsets[f.name] = off
            off += len(f.parts)
        self.n_parts = off

    def with_heading(self, heading: str) -> "FamilySet":
        """The same families (same objects for a seed) with another ``heading``."""
        if heading == self.heading:
            return self
        return FamilySet(self.name, list(self.families.values()), generator=self.generator, stretch=self.stretch,
                         heading=heading, seed_salt=self.seed_salt, drop_degenerate=self.drop_degenerate,
                         description=self.description)

    def __repr__(self) -> str:
        return f"FamilySet({self.name!r}, {len(self.classes)} classes, {self.n_parts} parts)"

    def check_class(self, name: str) -> str:
        if name not in self.families:
            raise ValueError(f"unknown demo class {name!r}: use one of {', '.join(self.classes)}")
        return name

    def class_part_ids(self, class_name: str) -> list[int]:
        """The global part ids of a class (a contiguous range)."""
        off = self.part_offsets[self.check_class(class_name)]
        return list(range(off, off + len(self.class_parts[class_name])))

    def part_names(self) -> list[str]:
        """``"<class>/<part>"`` for every global part id."""
        return [f"{c}/{p}" for c in self.classes for p in self.class_parts[c]]

    def part_of(self, class_name: str, global_id: int) -> str:
        return self.class_parts[class_name][int(global_id) - self.part_offsets[class_name]]

    def classes_meta(self, classes: Sequence[str] | None = None) -> list[dict]:
        """The ``classes`` entries of ``demo_meta.json``."""
        return [{"name": c, "synset": self.synsets[c], "parts": list(self.class_parts[c]),
                 "part_ids": self.class_part_ids(c)} for c in (self.classes if classes is None else classes)]

    def make_object(self, class_name: str, rng: np.random.Generator | int) -> tuple[Mesh, np.ndarray]:
        """One object: ``(mesh, face_labels)``, the mesh in the unit sphere with +Y up, vertex
        normals and per-vertex colours; ``face_labels`` ``(F,)`` int64 global part ids."""
        mesh, labels, _ = self.build_object(class_name, rng)
        return mesh, labels

    def build_object(self, class_name: str, rng: np.random.Generator | int) -> tuple[Mesh, np.ndarray, dict]:
        """:meth:`make_object` and the style its family drew (``{}`` for the easy preset)."""
        from crosspoint.geometry import normalize_unit_sphere

        self.check_class(class_name)
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        b = self.families[class_name].build(rng)
        v, f, n, local, colors = b.build()
        style = dict(b.style)
        if self.stretch > 0:
            s = rng.uniform(1.0 - self.stretch, 1.0 + self.stretch, 3)
            v = v * s
            n = unit(n / s)
        if self.heading == "random":
            deg = float(rng.uniform(0.0, 360.0))
            R = rot("y", deg)
            v, n = v @ R.T, n @ R.T
            style["heading"] = round(deg, 3)
        vn, _, _ = normalize_unit_sphere(v.astype(np.float32))
        if self.drop_degenerate:  # faces that collapse in float32 (tiny triangles at lathe poles)
            vv = np.asarray(vn, np.float32)
            area = np.linalg.norm(np.cross(vv[f[:, 1]] - vv[f[:, 0]], vv[f[:, 2]] - vv[f[:, 0]]), axis=1)
            keep = area > 0
            f, local = f[keep], local[keep]
        mesh = Mesh(np.asarray(vn, np.float32), f, vertex_colors=colors.astype(np.float32),
                    vertex_normals=n.astype(np.float32))
        return mesh, (local + self.part_offsets[class_name]).astype(np.int64), style

    def catalogue(self) -> str:
        """A plain-text table of the classes, their parts (global ids) and styles."""
        rows = []
        for c in self.classes:
            ids = self.class_part_ids(c)
            parts = ", ".join(f"{p} {i}" for p, i in zip(self.class_parts[c], ids))
            rows.append(f"{c:<10} {self.synsets[c]}  {parts}\n{'':<20}{self.families[c].styles}")
        return "\n".join(rows)


_CACHE: dict[str, FamilySet] = {}


def get_preset(preset: "str | FamilySet") -> FamilySet:
    """The :class:`FamilySet` of ``preset`` (``"easy"`` or ``"hard"``; a FamilySet passes through)."""
    if isinstance(preset, FamilySet):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown demo preset {preset!r}: use one of {', '.join(PRESETS)}")
    if preset not in _CACHE:
        if preset == "easy":
            from .easy import EASY

            _CACHE[preset] = EASY
        else:
            from .families import HARD

            _CACHE[preset] = HARD
    return _CACHE[preset]

