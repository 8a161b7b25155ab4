"""The embedded demo datasets: procedurally generated objects with labelled parts, meshes, rendered
views and (hard preset) partial scans, written in the ShapeNetRender and ShapeNetPart layouts.
Generated locally in well under a minute; nothing is downloaded.

Two presets (``crosspoint make-demo OUT --preset hard|easy``):

``hard`` (the CLI's default and the explorer's demo, :data:`SHIPPED_PRESET`; :mod:`.families`)
    24 parametric shape families, chosen so that some are confusable in coarse shape
    (chair / armchair / sofa / bench / stool, table / desk, bookshelf / cabinet, mug / cup / bucket /
    bowl, bottle / vase / jar / rocket):
    chair, armchair, sofa, bench, bed, table, desk, bookshelf, lamp, mug, cup, bucket, bottle, vase,
    car, boat, airplane, rocket, guitar, knife, stool, cabinet, bowl, jar; 79 labelled parts. Each family draws a style
    (leg arrangement, back type, body profile, optional parts...) and its proportions; every object
    is then stretched per axis (+-30 %) and turned about +Y to a random heading. With
    ``scans``, every object also gets a ScanObjectNN-style partial scan (:mod:`.scanner`) in
    ``OUT/scans``. Default size: 24 x 36 objects, 6 views of 137 px each.
``easy`` (:mod:`.easy`; ``generate_demo``'s default)
    The original 8-class demo (chair, table, airplane, lamp, mug, car, guitar, bottle), byte for
    byte as ``crosspoint.data.synthetic`` wrote it before this package (the first demo checkpoint
    was trained on it). The shipped demo checkpoint (``assets/demo_checkpoint.pt``) is now trained
    on the hard preset, and the explorer's demo dataset (:func:`ensure_demo`) is the hard one.

Either preset's points can be sampled like a sensor's (:class:`PointNuisance`: density falling off
across the object, jitter): ``make-demo --sensor`` (:data:`SENSOR`) or ``--density/--jitter``. The
explorer's ``demo-sensor`` dataset is the hard demo's held-out seed with :data:`SENSOR`: the demo
checkpoint was pretrained on clean samples of seed 0, as the paper pretrains on ShapeNet's CAD models
and evaluates on ScanObjectNN's scans.

Modules, in reading order:

- :mod:`.primitives` - mesh primitives (boxes, lathes, tubes, slabs, sheets...) and the
  :class:`~.primitives.Builder` that labels them;
- :mod:`.catalogue` - :class:`Family`, :class:`FamilySet` (a preset's classes, synsets and global
  part ids), :func:`get_preset`;
- :mod:`.easy` and :mod:`.families` - the two presets' families;
- :mod:`.scanner` - the simulated depth camera (:func:`scan_object`, :class:`ScanSettings`);
- :mod:`.writer` - the layouts on disk, workers, :func:`generate_demo`, :func:`ensure_demo`.

``crosspoint.data.synthetic`` keeps the original module's names (the easy preset's tables and
functions) for existing callers.
"""

from __future__ import annotations

from .catalogue import DEFAULT_PRESET, PRESETS, SHIPPED_PRESET, Family, FamilySet, get_preset
from .scanner import Scan, ScanSettings, scan_object
from .writer import (
    DEFAULT_SIZE,
    DEFAULT_VIEWS,
    FORMAT_VERSION,
    PRESET_DEFAULTS,
    SCAN_DIR,
    DemoCancelled,
    DEMO_KEYWORDS,
    SENSOR,
    SENSOR_DEMO_SEED,
    PointNuisance,
    default_demo_dir,
    demo_is_complete,
    demo_object,
    demo_part_table_meta,
    demo_scan,
    ensure_demo,
    generate_demo,
    keyword_demo_dir,
    own_demo_meta,
    write_mesh_ply,
)

__all__ = [
    "PointNuisance",
    "SENSOR",
    "SENSOR_DEMO_SEED",
    "DEMO_KEYWORDS",
    "keyword_demo_dir",
    "PRESETS",
    "DEFAULT_PRESET",
    "PRESET_DEFAULTS",
    "Family",
    "FamilySet",
    "get_preset",
    "SHIPPED_PRESET",
    "Scan",
    "ScanSettings",
    "scan_object",
    "DEFAULT_SIZE",
    "DEFAULT_VIEWS",
    "FORMAT_VERSION",
    "SCAN_DIR",
    "DemoCancelled",
    "default_demo_dir",
    "demo_is_complete",
    "demo_object",
    "demo_part_table_meta",
    "demo_scan",
    "ensure_demo",
    "generate_demo",
    "own_demo_meta",
    "write_mesh_ply",
]
