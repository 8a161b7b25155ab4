"""Folder datasets: ``root/<class_name>/<files>`` in any format :mod:`crosspoint.io` reads.

Classes are the sub-folders (sorted by name; label = position), objects the supported files
directly inside them (sorted by name). Hidden entries and ``.crosspoint_cache`` are skipped; files
with other extensions, nested folders and files directly in ``root`` are ignored with a warning.
A flat folder -- supported files directly in ``root`` and no class sub-folder -- is one class,
:data:`UNLABELLED` (label 0), with a warning saying so.

Points
    Each file is read once with :func:`crosspoint.io.read_point_cloud` (meshes are sampled on
    their surface; huge clouds are first subsampled to 100k points) and reduced to exactly
    ``num_points`` points by farthest point sampling (``sampling="fps"``, deterministic) or a
    seeded random subset (``"random"``); a file with fewer points is padded by resampling. The
    result is cached (see below), so later runs do not re-read the files. Classification items
    are normalised to the unit sphere; pretraining items go through the paper's augmentation
    (which normalises first).
Unreadable files
    Construction reads (or finds cached) every object; files that cannot be read, have no or
    non-finite points are *excluded up front* and listed in ``dataset.excluded`` (``(path,
    reason)``) and in a logged warning, so training never meets them mid-epoch. An empty folder,
    or no readable object at all, is a :class:`~crosspoint.data.base.DatasetError`.
Views (pretraining)
    Rendered on first use with :func:`crosspoint.render.render_views` (``n_views`` views,
    137x137 RGBA like ShapeNetRendering, cameras seeded per object) and written with
    :func:`crosspoint.render.write_views`. :meth:`FolderPretrainDataset.prepare` renders them all
    up front (recommended before starting DataLoader workers).
Cache
    ``root/.crosspoint_cache/`` when ``root`` is writable, else
    ``<user cache>/crosspoint-explorer/folders/<hash of root>/`` (``cache_dir=`` overrides):
    ``views/<class>/<stem>/`` (PNGs + ``renderings.txt`` + ``rendering_metadata.txt`` +
    ``source.json``) and ``points/<class>/<stem>.<sampling><N>.npz``. Entries are keyed by the
    source file's size and modification time and are recomputed when the file changes. Writes
    are atomic (temporary name, then rename), so concurrent workers are safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crosspoint.data.base import ClassificationDataset, DatasetError, ObjectRef, fix_point_count
from crosspoint.data.layouts import CACHE_DIR_NAME
from crosspoint.data.pretrain import PretrainDataset, read_points_file, select_split

log = logging.getLogger(__name__)

__all__ = ["FolderIndex", "scan_folder", "FolderPretrainDataset", "FolderClassification", "cache_root_for", "MAX_READ_POINTS"]

MAX_READ_POINTS = 100_000
#: the one class of a flat folder (files directly in ``root``, no class sub-folders)
UNLABELLED = "unlabelled"
DEFAULT_N_VIEWS = 12
VIEW_SIZE = 137


def _exts() -> set[str]:
    from crosspoint.io import SUPPORTED_EXTENSIONS

    return {e.lower() if e.startswith(".") else "." + e.lower() for e in SUPPORTED_EXTENSIONS}


@dataclass
class FolderIndex:
    root: Path
    class_names: list[str]
    files: list[Path]
    labels: np.ndarray
    keys: list[str]  # "<class>/<stem>" (or "<class>/<file name>" when two files share a stem)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def scan_folder(root) -> FolderIndex:
    """List classes and files (no file is read)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    exts = _exts()
    problems: list[str] = []
    warnings: list[str] = []
    classes, files, labels, keys = [], [], [], []
    ignored, nested, loose = [], [], []
    try:
        entries = sorted(root.iterdir(), key=lambda p: p.name)
    except OSError as e:
        raise DatasetError(f"{root}: cannot list folder ({e})") from None
    for entry in entries:
        if entry.name.startswith(".") or entry.name == CACHE_DIR_NAME:
            continue
        if not entry.is_dir():
            loose.append(entry.name)
            continue
        label = len(classes)
        classes.append(entry.name)
        try:
            members = sorted(entry.iterdir(), key=lambda p: p.name)
        except OSError as e:
            problems.append(f"{entry}: cannot list class folder ({e})")
            continue
        good = []
        for f in members:
            if f.name.startswith("."):
                continue
            if f.is_dir():
                nested.append(f"{entry.name}/{f.name}/")
            elif f.suffix.lower() in exts:
                good.append(f)
            else:
                ignored.append(f"{entry.name}/{f.name}")
        if not good:
            problems.append(f"{entry}: empty class folder (no readable point-cloud or mesh files)")
        stems = [f.stem for f in good]
        for f in good:
            key = f"{entry.name}/{f.stem}" if stems.count(f.stem) == 1 else f"{entry.name}/{f.name}"
            files.append(f)
            labels.append(label)
            keys.append(key)
    flat = [root / name for name in loose if Path(name).suffix.lower() in exts and not name.startswith(".")]
    if not classes and flat:
        stems = [f.stem for f in flat]
        for f in flat:
            files.append(f)
            labels.append(0)
            keys.append(f"{UNLABELLED}/{f.stem}" if stems.count(f.stem) == 1 else f"{UNLABELLED}/{f.name}")
        classes.append(UNLABELLED)
        warnings.append(f"{root}: no class sub-folders; its {len(flat)} file(s) are one unlabelled class")
        loose = [name for name in loose if root / name not in flat]
    if not classes:
        problems.append(f"{root}: no class sub-folders (expected root/<class_name>/<files>)")
    if ignored:
        warnings.append(f"{len(ignored)} file(s) with unsupported extensions ignored, e.g. {ignored[0]}")
    if nested:
        warnings.append(f"{len(nested)} nested folder(s) ignored (classes are one level deep), e.g. {nested[0]}")
    if loose:
        warnings.append(f"{len(loose)} file(s) directly in {root} ignored (put them in a class folder), e.g. {loose[0]}")
    return FolderIndex(root, classes, files, np.array(labels, dtype=np.int64), keys, problems, warnings)


def _writable(d: Path) -> bool:
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=d, prefix=".probe-"):
            pass
        return True
    except OSError:
        return False


def cache_root_for(root, cache_dir=None) -> Path:
    """Where a folder dataset's cache lives (see the module docstring)."""
    if cache_dir is not None:
        return Path(cache_dir)
    root = Path(root).resolve()
    local = root / CACHE_DIR_NAME
    if local.is_dir() and os.access(local, os.W_OK) or os.access(root, os.W_OK) and _writable(local):
        return local
    import platformdirs

    base = os.environ.get("CROSSPOINT_CACHE_DIR") or platformdirs.user_cache_dir("crosspoint-explorer")
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:16]
    return Path(base) / "folders" / digest


def _file_key(path: Path) -> dict:
    st = path.stat()
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def _atomic_save_npz(path: Path, **arrays) -> None:
    from crosspoint.atomic import atomic_write_bytes_to

    atomic_write_bytes_to(path, lambda fh: np.savez(fh, **arrays), durable=False)  # a cache: speed over durability


def _object_seed(key: str) -> int:
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:4], "little")


class _FolderBase:
    """Index, cache and points of a folder dataset (shared by pretraining and classification)."""

    def _init_folder(self, root, num_points, sampling, split, val_fraction, seed, cache_dir, progress) -> None:
        if sampling not in ("fps", "random"):
            raise ValueError(f"sampling must be 'fps' or 'random', got {sampling!r}")
        index = scan_folder(root)
        if index.problems and not index.files:
            raise DatasetError("\n".join([f"{index.root}: not a usable folder dataset:"] + [f"  - {p}" for p in index.problems]), index.problems)
        for w in index.warnings + index.problems:
            log.warning("%s", w)
        self.root = index.root
        self.index = index
        self.num_points = int(num_points)
        self.sampling = sampling
        self.cache_root = cache_root_for(index.root, cache_dir)
        self._cache_ok = True
        self._mem: dict[int, np.ndarray] = {}
        # read (or find cached) every object; exclude the broken ones
        self.excluded: list[tuple[str, str]] = []
        ok = []
        it = range(len(index.files))
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc=f"reading {index.root.name}", unit="file")
        for i in it:
            try:
                self._mem[i] = self._prepare_points(i)
                ok.append(i)
            except DatasetError as e:
                self.excluded.append((str(index.files[i]), str(e)))
        if self.excluded:
            log.warning(
                "%s: %d unreadable file(s) excluded: %s", index.root, len(self.excluded),
                "; ".join(r for _, r in self.excluded[:5]) + (" ..." if len(self.excluded) > 5 else ""),
            )
        ok = np.array(ok, dtype=np.int64)
        if ok.size == 0:
            raise DatasetError(f"{index.root}: no readable objects ({len(self.excluded)} file(s) failed, e.g. {self.excluded[0][1] if self.excluded else 'none'})")
        sel = ok[select_split(index.labels[ok], split, val_fraction, seed)]
        self._sel = sel
        self.class_names = list(index.class_names)
        empty = [c for k, c in enumerate(self.class_names) if not np.any(index.labels[ok] == k)]
        self.warnings = list(index.warnings) + [f"class {c} has no readable objects" for c in empty]

    # -- points -------------------------------------------------------------------------------
    def _points_cache_path(self, i: int) -> Path:
        return self.cache_root / "points" / f"{self.index.keys[i]}.{self.sampling}{self.num_points}.npz"

    def _prepare_points(self, i: int) -> np.ndarray:
        path = self.index.files[i]
        key = _file_key(path)
        cpath = self._points_cache_path(i)
        if cpath.is_file():
            try:
                with np.load(cpath) as z:
                    if int(z["size"]) == key["size"] and int(z["mtime_ns"]) == key["mtime_ns"]:
                        if "error" in z.files:
                            raise DatasetError(str(z["error"]))
                        return np.asarray(z["points"], dtype=np.float32)
            except DatasetError:
                raise
            except Exception:  # a broken cache entry: recompute
                pass
        try:
            pts = read_points_file(path, max_points=MAX_READ_POINTS)
            rng = np.random.default_rng(_object_seed(self.index.keys[i]))
            pts = np.ascontiguousarray(fix_point_count(pts, self.num_points, self.sampling, rng), dtype=np.float32)
            error = None
        except DatasetError as e:
            pts, error = None, str(e)
        if self._cache_ok:
            try:
                extra = {"points": pts} if error is None else {"error": np.array(error)}
                _atomic_save_npz(cpath, size=np.int64(key["size"]), mtime_ns=np.int64(key["mtime_ns"]), **extra)
            except OSError as e:
                log.warning("cannot write the cache at %s (%s); keeping points in memory", self.cache_root, e)
                self._cache_ok = False
        if error is not None:
            raise DatasetError(error)
        return pts

    def _raw_points(self, j: int) -> np.ndarray:
        return self._mem[int(self._sel[j])]

    def objects(self) -> list[ObjectRef]:
        return [
            ObjectRef(self.index.keys[i], str(self.index.files[i]), int(self.index.labels[i])) for i in self._sel
        ]


class FolderClassification(_FolderBase, ClassificationDataset):
    """A folder dataset as ``(points (N, 3) float32, label int)``, normalised to the unit sphere.

    ``split`` None (all), "train" or "val" (stratified hold-out of ``val_fraction`` for ``seed``).
    ``points`` is an ``(M, N, 3)`` array (everything is read at construction anyway).
    """

    def __init__(
        self,
        root,
        split: str | None = None,
        num_points: int = 1024,
        val_fraction: float = 0.1,
        seed: int = 0,
        *,
        sampling: str = "fps",
        normalize: bool = True,
        cache_dir=None,
        progress: bool = False,
    ) -> None:
        self._init_folder(root, num_points, sampling, split, val_fraction, seed, cache_dir, progress)
        self.split = split
        from crosspoint.geometry import normalize_unit_sphere

        pts = [self._raw_points(j) for j in range(len(self._sel))]
        if normalize:
            pts = [normalize_unit_sphere(p)[0] for p in pts]
        self.points = np.stack(pts).astype(np.float32) if pts else np.zeros((0, self.num_points, 3), np.float32)
        self.labels = self.index.labels[self._sel]


class FolderPretrainDataset(_FolderBase, PretrainDataset):
    """Pretraining pairs from a folder dataset; views rendered on first use and cached.

    Item format and seeding: :mod:`crosspoint.data.pretrain`. The ``num_points`` points of each
    object are fixed (cached FPS); the two copies differ only by augmentation, as in the paper.
    ``background`` as :class:`~crosspoint.data.shapenet_render.ShapeNetRenderDataset`'s (the views
    rendered here store ``(0, 0, 0, 0)`` in empty pixels, so "drop" is black behind them).
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
        n_views: int = DEFAULT_N_VIEWS,
        sampling: str = "fps",
        point_transform=None,
        image_transform=None,
        background="white",
        cache_dir=None,
        progress: bool = False,
    ) -> None:
        PretrainDataset.__init__(
            self, num_points, image_size, seed=seed, point_transform=point_transform,
            image_transform=image_transform, background=background, sampling="first",
        )
        self._init_folder(root, num_points, sampling, split, val_fraction, seed, cache_dir, progress)
        self.split = split
        self.n_views = int(n_views)
        if self.n_views < 1:
            raise ValueError("n_views must be >= 1")
        self._refs = self.objects()
        self._labels = self.index.labels[self._sel]
        self._view_mem: dict[int, list[Path]] = {}

    # -- views --------------------------------------------------------------------------------
    def _views_dir(self, i: int) -> Path:
        return self.cache_root / "views" / self.index.keys[i]

    def _cached_views(self, i: int) -> list[Path] | None:
        d = self._views_dir(i)
        src = d / "source.json"
        try:
            info = json.loads(src.read_text())
        except (OSError, ValueError):
            return None
        key = _file_key(self.index.files[i])
        if info.get("size") != key["size"] or info.get("mtime_ns") != key["mtime_ns"] or info.get("n_views") != self.n_views:
            return None
        views = [d / n for n in info.get("views", [])]
        return views if views and all(v.is_file() for v in views) else None

    def _render(self, i: int) -> list[Path]:
        from crosspoint.io import read_point_cloud
        from crosspoint.render import render_views, write_views

        path = self.index.files[i]
        try:
            pc = read_point_cloud(path, max_points=MAX_READ_POINTS)
        except (ValueError, OSError) as e:
            raise DatasetError(f"{path}: unreadable point file ({e})") from None
        views = render_views(pc, self.n_views, size=VIEW_SIZE, seed=_object_seed(self.index.keys[i]))
        target = self._views_dir(i)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
            paths = write_views(tmp, views)
            info = {**_file_key(path), "file": path.name, "n_views": self.n_views, "views": [p.name for p in paths]}
            (tmp / "source.json").write_text(json.dumps(info))
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.replace(tmp, target)
            except OSError:  # another worker got there first
                shutil.rmtree(tmp, ignore_errors=True)
                cached = self._cached_views(i)
                if cached is None:
                    raise
                return cached
            return [target / p.name for p in paths]
        except OSError as e:
            # cache not writable: keep the views in a process-local temporary folder
            log.warning("cannot cache views at %s (%s); using a temporary folder", target, e)
            tmpdir = Path(tempfile.mkdtemp(prefix="crosspoint-views-"))
            return write_views(tmpdir, views)

    def _view_paths(self, j: int) -> list[Path]:
        i = int(self._sel[j])
        if i in self._view_mem:
            return self._view_mem[i]
        views = self._cached_views(i)
        if views is None:
            views = self._render(i)
        self._view_mem[i] = views
        return views

    def _load_points(self, j: int) -> np.ndarray:
        return self._raw_points(j)

    def prepare(self, progress: bool = False) -> int:
        """Render every missing view now; returns how many objects were rendered."""
        it = range(len(self))
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc="rendering views", unit="obj")
        n = 0
        for j in it:
            i = int(self._sel[j])
            if self._cached_views(i) is None:
                n += 1
            self._view_paths(j)
        return n

    def view_paths(self, j: int) -> list[Path]:
        """The views of item ``j`` (rendered now if needed)."""
        return list(self._view_paths(j))

