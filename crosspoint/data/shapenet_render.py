"""ShapeNetRender: the reference's pretraining data (and the demo dataset's).

Layout (``root`` is the folder holding both, the reference's ``data/``)::

    root/ShapeNet/<synset>/<id>.ply                      # 2048 points per object in the release
    root/ShapeNetRendering/<synset>/<id>/rendering/*.png # 24 views, 137x137 RGBA (3D-R2N2)
    root/demo_meta.json                                  # demo dataset only: class names

Objects are sorted by ``(synset, id)``; the label of an object is the index of its synset in the
sorted synset list, and class names come from ``demo_meta.json`` when present, else the ShapeNet
synset names (the synset id for an unknown synset).

- :class:`ShapeNetRenderDataset` - pretraining pairs (see :mod:`crosspoint.data.pretrain`): both
  point augmentations from the same file (fed as it is when it has ``num_points`` points, a
  random subset when more, padded by resampling when fewer), one random view per item per step.
- :class:`ShapeNetRenderClassification` - the same objects as ``(points, label)`` for the linear
  SVM on the held-out validation split: points normalised to the unit sphere, ``num_points``
  chosen once per object (first points; deterministic), no augmentation.
- :func:`holdout_split` - the ``(train, val)`` objects for a seed, the split both use.

Missing pieces are reported at construction (:class:`~crosspoint.data.base.DatasetError` naming
the folder): no ``ShapeNet/`` or ``ShapeNetRendering/``, empty synset folders, objects whose
``rendering/`` folder is missing or holds no PNG (``on_missing_views="skip"`` drops those objects
with a warning instead). A few objects, chosen at random, are also read at construction so that
unreadable files show up before training starts; ``crosspoint check-data`` reads them all.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crosspoint.data.base import ClassificationDataset, DatasetError, LazyPoints, ObjectRef, fix_point_count, format_problems
from crosspoint.data.layouts import SHAPENET_SYNSET_NAMES, read_demo_meta
from crosspoint.data.pretrain import PretrainDataset, read_points_file, select_split

log = logging.getLogger(__name__)

__all__ = ["ShapeNetRenderIndex", "scan_shapenet_render", "ShapeNetRenderDataset", "ShapeNetRenderClassification", "holdout_split"]

IMAGE_EXTS = (".png", ".jpg", ".jpeg")


def _point_exts() -> set[str]:
    from crosspoint.io import SUPPORTED_EXTENSIONS

    return {e.lower() if e.startswith(".") else "." + e.lower() for e in SUPPORTED_EXTENSIONS}


def _scandir(path: Path):
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return None


def demo_class_names(meta: dict, synsets: list[str]) -> dict[str, str]:
    """synset -> class name from a ``demo_meta.json`` (several spellings accepted)."""
    names: dict[str, str] = {}
    for key in ("synset_to_class", "synsets", "classes", "class_names", "categories"):
        val = meta.get(key)
        if isinstance(val, dict):
            for k, v in val.items():
                if isinstance(v, str):
                    names.setdefault(str(k), v)
                elif isinstance(v, dict) and "name" in v:
                    names.setdefault(str(k), str(v["name"]))
        elif isinstance(val, list):
            for i, v in enumerate(val):
                if isinstance(v, dict):
                    syn = v.get("synset") or v.get("id") or v.get("synset_id")
                    nm = v.get("name") or v.get("class") or v.get("category")
                    if syn is not None and nm is not None:
                        names.setdefault(str(syn), str(nm))
                elif isinstance(v, str) and len(val) == len(synsets):
                    names.setdefault(synsets[i], v)
    return names


@dataclass
class ShapeNetRenderIndex:
    """What is on disk: every object with a point file, its views, and what is wrong."""

    root: Path
    synsets: list[str]
    class_names: list[str]
    refs: list[ObjectRef]  # (name "<synset>/<id>", point file, label)
    views: list[list[str]]  # paths as strings: 10^4-10^5 Path objects cost a noticeable fraction of a second
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    objects_without_views: list[int] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.refs], dtype=np.int64)

    def counts(self) -> dict:
        return {
            "objects": len(self.refs),
            "classes": len(self.synsets),
            "views": int(sum(len(v) for v in self.views)),
            "objects_without_views": len(self.objects_without_views),
        }


def scan_shapenet_render(root) -> ShapeNetRenderIndex:
    """Index ``root/ShapeNet`` and ``root/ShapeNetRendering`` (cheap: directory listings only)."""
    root = Path(root)
    pc_dir, img_dir = root / "ShapeNet", root / "ShapeNetRendering"
    problems: list[str] = []
    warnings: list[str] = []
    if not pc_dir.is_dir():
        problems.append(f"{pc_dir}: missing (the point clouds, ShapeNet/<synset>/<id>.ply)")
    if not img_dir.is_dir():
        problems.append(f"{img_dir}: missing (the rendered views, ShapeNetRendering/<synset>/<id>/rendering/*.png)")
    exts = _point_exts()
    synsets = [e.name for e in (_scandir(pc_dir) or []) if e.is_dir() and not e.name.startswith(".")]
    meta_names = {}
    if (root / ".crosspoint-demo").is_file() and not (root / "demo_meta.json").is_file():
        problems.append(
            f"{root}: incomplete demo dataset (demo_meta.json missing: generation was interrupted); generate it again"
        )
    if (root / "demo_meta.json").is_file():
        meta_names = demo_class_names(read_demo_meta(root / "demo_meta.json"), synsets)
    class_names = [meta_names.get(s, SHAPENET_SYNSET_NAMES.get(s, s)) for s in synsets]
    refs: list[ObjectRef] = []
    views: list[list[str]] = []
    without: list[int] = []
    ignored: list[str] = []
    seen_ids: dict[str, set] = {}
    for label, syn in enumerate(synsets):
        entries = _scandir(pc_dir / syn) or []
        files = [e for e in entries if e.is_file() and not e.name.startswith(".")]
        pts_files = [e for e in files if os.path.splitext(e.name)[1].lower() in exts]
        ignored += [f"ShapeNet/{syn}/{e.name}" for e in files if e not in pts_files]
        if not pts_files:
            problems.append(f"{pc_dir / syn}: empty class folder (no point files)")
        seen_ids[syn] = set()
        for e in pts_files:
            obj_id = os.path.splitext(e.name)[0]
            seen_ids[syn].add(obj_id)
            vdir = img_dir / syn / obj_id / "rendering"
            ventries = _scandir(vdir)
            vlist = [v.path for v in (ventries or []) if os.path.splitext(v.name)[1].lower() in IMAGE_EXTS]
            if img_dir.is_dir() and not vlist:
                without.append(len(refs))
                why = "folder missing" if ventries is None else "no PNG in it"
                problems.append(f"ShapeNet/{syn}/{e.name}: object without views ({vdir}: {why})")
            refs.append(ObjectRef(f"{syn}/{obj_id}", e.path, label))
            views.append(vlist)
    if ignored:
        warnings.append(f"{len(ignored)} file(s) in ShapeNet/ are not point files and are ignored, e.g. {ignored[0]}")
    if img_dir.is_dir():
        orphans = []
        for syn_e in _scandir(img_dir) or []:
            if not syn_e.is_dir() or syn_e.name.startswith("."):
                continue
            ids = seen_ids.get(syn_e.name)
            for obj_e in _scandir(Path(syn_e.path)) or []:
                if obj_e.is_dir() and (ids is None or obj_e.name not in ids):
                    orphans.append(f"ShapeNetRendering/{syn_e.name}/{obj_e.name}")
        if orphans:
            warnings.append(f"{len(orphans)} rendered object(s) have no point file and are ignored, e.g. {orphans[0]}")
    return ShapeNetRenderIndex(root, synsets, class_names, refs, views, problems, warnings, without)


def _resolve_root(root) -> Path:
    root = Path(root).expanduser()
    if root.name in ("ShapeNet", "ShapeNetRendering") and (root.parent / "ShapeNet").is_dir():
        return root.parent
    if root.is_dir() and not (root / "ShapeNet").is_dir() and not (root / "ShapeNetRendering").is_dir():
        from crosspoint.data.layouts import detect_layouts

        found = [i for i in detect_layouts(root) if i.name in ("crosspoint_demo", "shapenet_render")]
        if found:
            return found[0].root
    return root


def _checked_index(root, on_missing_views: str) -> tuple[ShapeNetRenderIndex, np.ndarray]:
    if on_missing_views not in ("error", "skip"):
        raise ValueError("on_missing_views must be 'error' or 'skip'")
    root = _resolve_root(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    index = scan_shapenet_render(root)
    keep = np.ones(len(index.refs), dtype=bool)
    problems = list(index.problems)
    if on_missing_views == "skip" and index.objects_without_views:
        keep[index.objects_without_views] = False
        problems = [p for p in problems if "object without views" not in p]
        log.warning(
            "%s: skipping %d object(s) without views, e.g. %s",
            root, len(index.objects_without_views), index.refs[index.objects_without_views[0]].ref,
        )
    if not index.refs and not problems:
        problems.append(f"{root / 'ShapeNet'}: no objects")
    if problems:
        raise DatasetError(format_problems(f"{root}: broken ShapeNetRender dataset:", problems), problems)
    return index, np.flatnonzero(keep)


def _spot_check(paths_points, paths_views, rng: np.random.Generator, k: int) -> None:
    """Read ``k`` random point files and views; raise DatasetError on the first broken one."""
    from crosspoint.data.transforms import load_rgb

    if k <= 0 or not paths_points:
        return
    for i in rng.choice(len(paths_points), size=min(k, len(paths_points)), replace=False):
        read_points_file(paths_points[i])
        views = paths_views[i]
        if views:
            v = views[int(rng.integers(len(views)))]
            try:
                load_rgb(v)
            except Exception as e:
                raise DatasetError(f"{v}: unreadable view ({e})") from None


def holdout_split(root, val_fraction: float = 0.1, seed: int = 0, *, on_missing_views: str = "error"):
    """The ``(train, val)`` lists of :class:`ObjectRef` of a ShapeNetRender dataset for ``seed``
    (stratified by synset; the split :class:`ShapeNetRenderDataset` and
    :class:`ShapeNetRenderClassification` use)."""
    index, keep = _checked_index(root, on_missing_views)
    labels = index.labels[keep]
    tr = keep[select_split(labels, "train", val_fraction, seed)]
    va = keep[select_split(labels, "val", val_fraction, seed)]
    return [index.refs[i] for i in tr], [index.refs[i] for i in va]


class ShapeNetRenderDataset(PretrainDataset):
    """Pretraining pairs from ShapeNetRender (see the module docstring and
    :mod:`crosspoint.data.pretrain` for the item format and seeding).

    ``split``: None (all objects), "train" or "val" (``val_fraction`` of each synset, held out
    deterministically for ``seed``). ``check_sample`` objects are read at construction.
    ``background``: "drop" (the reference: ``convert("RGB")``, nearly black behind the real
    renders), "white" (the default, the project's behaviour before ``data.background``) or
    "black"; see :func:`crosspoint.data.transforms.to_rgb`.
    """

    def __init__(
        self,
        root,
        num_points: int = 2048,
        image_size: int = 224,
        split: str | None = None,
        val_fraction: float = 0.1,
        seed: int | None = 0,
        *,
        point_transform=None,
        image_transform=None,
        background="white",
        on_missing_views: str = "error",
        check_sample: int = 4,
        cache_points: bool = False,
    ) -> None:
        super().__init__(
            num_points, image_size, seed=seed, point_transform=point_transform,
            image_transform=image_transform, background=background,
        )
        index, keep = _checked_index(root, on_missing_views)
        self.root = index.root
        self.index = index
        self.split = split
        self.val_fraction = val_fraction
        sel = keep[select_split(index.labels[keep], split, val_fraction, seed)]
        self.indices = sel  # into index.refs
        self._refs = [index.refs[i] for i in sel]
        self._views = [index.views[i] for i in sel]
        self._labels = index.labels[sel]
        self.class_names = list(index.class_names)
        self.synsets = list(index.synsets)
        self._cache: dict[int, np.ndarray] | None = {} if cache_points else None
        _spot_check([r.ref for r in self._refs], self._views, np.random.default_rng(seed or 0), check_sample)

    def _load_points(self, i: int) -> np.ndarray:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        pts = read_points_file(self._refs[i].ref)
        if self._cache is not None:
            self._cache[i] = pts
        return pts

    def _view_paths(self, i: int) -> list:
        return self._views[i]

    def view_paths(self, i: int) -> list[Path]:
        """The rendered views of item ``i``."""
        return [Path(v) for v in self._views[i]]


class ShapeNetRenderClassification(ClassificationDataset):
    """ShapeNetRender objects as ``(points (N, 3) float32, label int)`` (label = synset index).

    For the linear-SVM model selection on the held-out split: ``split`` None/"train"/"val" with
    the same ``val_fraction``/``seed`` as the pretraining dataset. Points are the file's first
    ``num_points`` (padded by resampling when fewer), normalised to the unit sphere when
    ``normalize``. ``points`` is lazy (:class:`~crosspoint.data.base.LazyPoints`;
    ``np.asarray(ds.points)`` loads all); ``cache=True`` keeps loaded objects in memory.
    """

    def __init__(
        self,
        root,
        split: str | None = None,
        num_points: int = 1024,
        val_fraction: float = 0.1,
        seed: int = 0,
        *,
        normalize: bool = True,
        on_missing_views: str = "error",
        cache: bool = True,
        check_sample: int = 4,
    ) -> None:
        index, keep = _checked_index(root, on_missing_views)
        self.root = index.root
        self.split = split
        self.num_points = int(num_points)
        self.normalize = normalize
        sel = keep[select_split(index.labels[keep], split, val_fraction, seed)]
        self._refs = [index.refs[i] for i in sel]
        self.labels = index.labels[sel]
        self.class_names = list(index.class_names)
        self.synsets = list(index.synsets)
        self._cache: dict[int, np.ndarray] | None = {} if cache else None
        self.points = LazyPoints(self._get_points, len(self._refs), self.num_points)
        _spot_check([r.ref for r in self._refs], [[] for _ in self._refs], np.random.default_rng(seed), check_sample)

    def _get_points(self, i: int) -> np.ndarray:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        pts = read_points_file(self._refs[i].ref)
        pts = fix_point_count(pts, self.num_points, "first", np.random.default_rng([i]))
        if self.normalize:
            from crosspoint.data.transforms import Normalize

            pts = Normalize()(pts)
        pts = np.ascontiguousarray(pts, dtype=np.float32)
        if self._cache is not None:
            self._cache[i] = pts
        return pts

    def __len__(self) -> int:
        return len(self._refs)

    def objects(self) -> list[ObjectRef]:
        return list(self._refs)
