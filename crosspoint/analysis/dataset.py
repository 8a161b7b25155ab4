"""Whole-dataset views: embeddings (cached on disk), a 2-D UMAP of them, and a linear-SVM score.

:func:`embed_dataset` embeds every object of a dataset -- any layout
``open_dataset(root, task="classification")`` opens (the demo, ModelNet40 / ScanObjectNN HDF5,
ShapeNetRender, class folders), a dataset object with ``objects()``, or a plain list of files --
with the reference protocol: the points the dataset provides (its first ``n_points``, normalised
the dataset's way); files of a plain list (an HDF5 file stands for all its rows) are read with
:func:`crosspoint.io.read_point_cloud`,
cut to their first ``n_points`` (padded by repeats when shorter) and normalised into the unit
sphere. It returns the global features (for UMAP and the SVM) and the L2-normalised projections
(for cross-modal retrieval). Objects that cannot be read are skipped and listed in ``skipped``.

Cache: ``<cache_dir>/<key>.npz`` (default ``<user cache>/crosspoint-explorer/embeddings/``), key =
SHA-1 of the session fingerprint (checkpoint path, size, mtime, k), the listing (every object's
ref and label, the class names, and the size and mtime of every file the refs point into), the
split and ``n_points``. Large datasets are embedded in chunks (:data:`CHUNK_OBJECTS` objects), each
written as it finishes under ``<key>.parts/``: a cancelled or killed run resumes there, and the
final file is written atomically after the last chunk (the parts are then removed); a second call
with the same inputs loads the file (``from_cache=True``).

:func:`umap_2d`: standardise the features, PCA to at most 50 dimensions, umap-learn (seeded, so
single-threaded and deterministic); above :data:`UMAP_LARGE_OBJECTS` (20,000) objects in float32
and with 100 epochs (:data:`UMAP_LARGE_SETTINGS`, measured in docs/RESULTS.md "Scale"); cached by
a hash of the features and parameters (the large-map settings included) under
``<user cache>/crosspoint-explorer/umap/``. umap-learn's first fit in a process compiles numba
code (~8 s here). ``NUMBA_CACHE_DIR`` is pointed at ``<user cache>/crosspoint-explorer/numba`` when
unset, and -- since umap-learn does not ask numba to cache its functions -- their on-disk caching
is switched on before their first use (``Dispatcher.enable_caching``; set
``CROSSPOINT_UMAP_NUMBA_CACHE=0`` to leave umap-learn as it is): later processes then load the
compiled code (first fit ~2 s instead of ~8 s). :func:`warm_up_umap` compiles or loads it ahead of
time (for a GUI worker at start-up). Fewer than 10 objects: PCA to 2-D instead (:func:`project_2d`
says so in its ``note``).

:func:`svm_accuracy`: stratified k-fold cross-validated accuracy of a linear SVM
(``SVC(kernel="linear")`` on a precomputed Gram matrix, as the evaluation protocol) on the
labelled objects, each fold's features standardised by its training rows (so that a checkpoint
and random weights, whose features differ ~50x in scale, are scored alike at one ``C``; on raw
features at ``C = 0.1`` random weights scored 35.8 % on the demo, standardised ~89 %); classes
with a single object are left out and the number of folds is lowered to the smallest class size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from crosspoint.analysis._common import (
    CACHE_VERSION, AnalysisError, Cancel, Progress, atomic_savez, check_cancel, l2_normalize, report, user_cache_dir,
)

log = logging.getLogger(__name__)

__all__ = ["DatasetEmbedding", "embed_dataset", "umap_2d", "project_2d", "Projection2D", "svm_accuracy", "map_quality",
           "ensure_numba_cache_dir", "warm_up_umap", "UMAP_MIN_OBJECTS", "UMAP_LARGE_OBJECTS", "UMAP_LARGE_SETTINGS",
           "map_settings"]

UMAP_MIN_OBJECTS = 10
#: above this many objects :func:`project_2d` uses :data:`UMAP_LARGE_SETTINGS` (issue 13: a map of
#: 50,000 objects within a minute on 2 cores); smaller maps keep umap-learn's defaults exactly
UMAP_LARGE_OBJECTS = 20_000
#: the large-map settings: standardise and PCA in float32 (half the memory of float64) and 100
#: optimisation epochs instead of umap-learn's 200 for more than 10,000 points (the layout's
#: stochastic gradient descent was ~85 % of umap-learn's time at 50,000). Still seeded: deterministic, and
#: so single-threaded -- a second thread gained nothing on the 2 shared cores it was measured on.
UMAP_LARGE_SETTINGS = {"float32": True, "n_epochs": 100}


@dataclass
class DatasetEmbedding:
    features: np.ndarray  # (M, feature_dim) float32
    projections: np.ndarray  # (M, projection_dim) float32, L2-normalised
    labels: np.ndarray  # (M,) int64, -1 unknown
    class_names: list
    names: list
    refs: list  # what read_point_cloud opens
    fingerprint: str  # the cache key
    n_points: int = 1024
    source: str = ""
    from_cache: bool = False
    skipped: list = field(default_factory=list)  # [(ref, reason)]

    def __len__(self) -> int:
        return int(self.features.shape[0])


# ------------------------------------------------------------------------------ listings
class _Listing:
    """What to embed: names, refs, labels, class names and a point getter."""

    def __init__(self, names, refs, labels, class_names, get, kind: str, source: str, split=None):
        self.names = [str(n) for n in names]
        self.refs = [str(r) for r in refs]
        self.labels = None if labels is None else np.asarray(labels, np.int64).reshape(-1)
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.get = get
        self.kind = kind
        self.source = source
        self.split = split

    def __len__(self) -> int:
        return len(self.refs)


def _dataset_listing(ds, source: str, split) -> _Listing:
    objs = list(ds.objects())
    labels = getattr(ds, "labels", None)
    if labels is None:
        labels = [o.label for o in objs]

    def get(i):
        item = ds[i]
        return item[0] if isinstance(item, (tuple, list)) else item

    return _Listing([o.name for o in objs], [o.ref for o in objs], labels, getattr(ds, "class_names", None), get,
                    type(ds).__name__, source, split)


def _files_listing(files, n_points: int) -> _Listing:
    from crosspoint.data.base import fix_point_count
    from crosspoint.geometry import normalize_unit_sphere
    from crosspoint.io import read_point_cloud, split_index

    refs = []
    for f in files:
        f = os.fspath(f)
        if Path(f).suffix.lower() in (".h5", ".hdf5") and Path(f).is_file():
            try:  # a batch file: one object per row
                rows = int(read_point_cloud(f, index=0).meta.get("rows", 1))
            except (ValueError, OSError):
                rows = 1
            if rows > 1:
                refs.extend(f"{f}#{i}" for i in range(rows))
                continue
        refs.append(f)
    names = []
    for r in refs:
        p, idx = split_index(r)
        names.append(p.stem if idx is None else f"{p.stem}#{idx}")
    meta: dict = {}

    def get(i):
        cloud = read_point_cloud(refs[i])
        meta[i] = (cloud.category, cloud.class_label)
        pts = fix_point_count(cloud.model_points(), n_points, "first", np.random.default_rng([i]))  # +Y up
        return normalize_unit_sphere(pts)[0]

    listing = _Listing(names, refs, None, None, get, "files", "", None)
    listing.file_meta = meta
    return listing


def _open(root_or_dataset, n_points: int, split) -> _Listing:
    if isinstance(root_or_dataset, (str, os.PathLike)) and not Path(root_or_dataset).is_file():
        from crosspoint.data import open_dataset

        root = Path(root_or_dataset).expanduser()
        try:
            ds = open_dataset(root, task="classification", split=split, num_points=n_points)
        except (ValueError, OSError) as exc:  # DatasetError is a ValueError
            raise AnalysisError(str(exc)) from None
        return _dataset_listing(ds, str(root), split)
    if isinstance(root_or_dataset, (str, os.PathLike)):
        return _files_listing([root_or_dataset], n_points)
    if hasattr(root_or_dataset, "objects") and hasattr(root_or_dataset, "__getitem__"):
        source = getattr(root_or_dataset, "root", type(root_or_dataset).__name__)
        return _dataset_listing(root_or_dataset, str(source), split)
    try:
        files = list(root_or_dataset)
    except TypeError:
        raise AnalysisError(f"cannot embed a {type(root_or_dataset).__name__}: give a dataset folder, a dataset "
                            "or a list of files") from None
    if not all(isinstance(f, (str, os.PathLike)) for f in files):
        raise AnalysisError("a list to embed must hold file paths")
    return _files_listing(files, n_points)


def _listing_key(listing: _Listing, session_fp: str, n_points: int) -> str:
    from crosspoint.io import split_index

    stats = {}
    for r in listing.refs:
        p = split_index(r)[0]
        key = str(p)
        if key not in stats:
            try:
                st = p.stat()
                stats[key] = [int(st.st_size), int(st.st_mtime_ns)]
            except OSError:
                stats[key] = None
    material = {
        "version": CACHE_VERSION, "session": session_fp, "n_points": int(n_points), "kind": listing.kind,
        "split": listing.split, "refs": listing.refs,
        "labels": None if listing.labels is None else listing.labels.tolist(),
        "class_names": listing.class_names, "files": sorted(stats.items()),
    }
    return hashlib.sha1(json.dumps(material, sort_keys=True).encode()).hexdigest()[:24]


def _str_array(items) -> np.ndarray:
    return np.array([str(s) for s in items], dtype=str) if items else np.zeros(0, dtype="<U1")


def _load_cached(path: Path, key: str, source: str) -> "DatasetEmbedding | None":
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            skipped = list(zip(z["skipped_refs"].tolist(), z["skipped_reasons"].tolist()))
            return DatasetEmbedding(
                features=np.ascontiguousarray(z["features"], np.float32),
                projections=np.ascontiguousarray(z["projections"], np.float32),
                labels=z["labels"].astype(np.int64), class_names=z["class_names"].tolist(),
                names=z["names"].tolist(), refs=z["refs"].tolist(), fingerprint=key,
                n_points=int(z["n_points"]), source=source, from_cache=True, skipped=skipped)
    except (OSError, KeyError, ValueError, EOFError) as exc:
        log.warning("%s: unreadable embedding cache (%s); recomputing", path, exc)
        return None


def _labels_from_files(listing: _Listing, kept: list[int]) -> tuple[np.ndarray, list]:
    meta = getattr(listing, "file_meta", {})
    cats = [meta.get(i, (None, None))[0] for i in kept]
    if kept and all(isinstance(c, str) and c for c in cats):
        names = sorted(set(cats))
        return np.array([names.index(c) for c in cats], np.int64), names
    ids = [meta.get(i, (None, None))[1] for i in kept]
    if kept and all(isinstance(c, (int, np.integer)) and c >= 0 for c in ids):
        n = int(max(ids)) + 1
        return np.asarray(ids, np.int64), [str(i) for i in range(n)]
    return np.full(len(kept), -1, np.int64), []


#: objects per resumable chunk of :func:`embed_dataset`
CHUNK_OBJECTS = 512


def _chunk_path(parts: Path, c: int) -> Path:
    return parts / f"chunk_{c:06d}.npz"


def _load_chunk(path: Path, key: str):
    """``(features, projections, kept, skipped)`` of a finished chunk, or None if unusable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            return (np.ascontiguousarray(z["features"], np.float32), np.ascontiguousarray(z["projections"], np.float32),
                    z["kept"].astype(np.int64).tolist(),
                    list(zip(z["skipped_refs"].tolist(), z["skipped_reasons"].tolist())))
    except (OSError, KeyError, ValueError, EOFError):
        return None


def embed_dataset(session, root_or_dataset, *, n_points: int = 1024, split: "str | None" = None,
                  batch_size: int = 16, cache_dir=None, use_cache: bool = True, cache_only: bool = False,
                  chunk_size: int = CHUNK_OBJECTS, progress: Progress = None,
                  cancel: Cancel = None) -> "DatasetEmbedding | None":
    """Embed every object of a dataset (see the module docstring); cached on disk.

    The work is done in chunks of ``chunk_size`` objects, each saved as it finishes
    (``<cache>/<key>.parts/``), so a run that is cancelled, killed or crashes continues where it
    stopped the next time (the result is the same, bit for bit: the chunks and their batches do not
    depend on where a run started). ``cache_only``: return the cached embedding, or None when there is
    none (computes nothing)."""
    from crosspoint.analysis.embed import encode_points
    from crosspoint.models.ops import reuse_buffers

    listing = _open(root_or_dataset, int(n_points), split)
    key = _listing_key(listing, session.fingerprint, n_points)
    folder = Path(cache_dir) if cache_dir is not None else user_cache_dir("embeddings")
    path = folder / f"{key}.npz"
    parts = folder / f"{key}.parts"
    if (use_cache or cache_only) and path.is_file():
        hit = _load_cached(path, key, listing.source)
        if hit is not None:
            report(progress, len(hit), len(hit), "loaded cached embeddings")
            return hit
    if cache_only:
        return None
    total = len(listing)
    enc = session.point_encoder
    chunk = max(1, int(chunk_size))
    n_chunks = (total + chunk - 1) // chunk
    bs = max(1, int(batch_size))
    results: dict[int, tuple] = {}
    if use_cache and parts.is_dir():
        for c in range(n_chunks):
            got = _load_chunk(_chunk_path(parts, c), key) if _chunk_path(parts, c).is_file() else None
            if got is not None:
                results[c] = got
        if results:
            n_done = sum(min(chunk, total - c * chunk) for c in results)
            log.info("resuming the embedding of %s: %d of %d objects were done", listing.source, n_done, total)
    done = sum(min(chunk, total - c * chunk) for c in results)
    report(progress, done, total, f"embedding {total} objects" + (f" ({done} from an earlier run)" if done else ""))
    # one set of scratch buffers for every batch (the kNN's distance block is 128 MB at batch 32):
    # a fresh one per forward pass costs a page fault per 4 KiB, 3-8 % of the embedding time
    with reuse_buffers():
        for c in range(n_chunks):
            if c in results:
                continue
            feats, projs, kept, skipped = [], [], [], []
            i, end = c * chunk, min(total, (c + 1) * chunk)
            while i < end:
                check_cancel(cancel, "dataset embedding")
                batch, idx = [], []
                while i < end and len(batch) < bs:
                    try:
                        pts = np.asarray(listing.get(i), np.float32)[:, :3]
                        if pts.shape[0] == 0 or not np.isfinite(pts).all():
                            raise ValueError("no points or non-finite points")
                        if batch and pts.shape[0] != batch[0].shape[0]:
                            break  # a different size: the next batch
                        batch.append(pts)
                        idx.append(i)
                    except (ValueError, OSError, IndexError) as exc:
                        why = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                        skipped.append((listing.refs[i], why))
                        log.warning("skipping %s: %s", listing.refs[i], exc)
                    i += 1
                if batch:
                    f, p = encode_points(session, np.stack(batch))
                    feats.append(f)
                    projs.append(p)
                    kept.extend(idx)
                report(progress, done + (i - c * chunk), total, f"embedded {done + (i - c * chunk)}/{total} objects")
            f = np.concatenate(feats) if feats else np.zeros((0, enc.feature_dim), np.float32)
            p = np.concatenate(projs) if projs else np.zeros((0, enc.projection_dim), np.float32)
            results[c] = (np.ascontiguousarray(f, np.float32), np.ascontiguousarray(p, np.float32), kept, skipped)
            done += end - c * chunk
            if use_cache and n_chunks > 1:
                try:
                    atomic_savez(_chunk_path(parts, c), key=np.array(key), features=results[c][0],
                                 projections=results[c][1], kept=np.asarray(kept, np.int64),
                                 skipped_refs=_str_array([s[0] for s in skipped]),
                                 skipped_reasons=_str_array([s[1] for s in skipped]))
                except OSError as exc:
                    log.warning("could not write an embedding chunk under %s: %s", parts, exc)
    ordered = [results[c] for c in range(n_chunks)]
    kept = [j for r in ordered for j in r[2]]
    skipped = [s for r in ordered for s in r[3]]
    if kept:
        features = np.ascontiguousarray(np.concatenate([r[0] for r in ordered]), np.float32)
        projections = l2_normalize(np.concatenate([r[1] for r in ordered]))
    else:
        features = np.zeros((0, enc.feature_dim), np.float32)
        projections = np.zeros((0, enc.projection_dim), np.float32)
    if listing.kind == "files":
        labels, class_names = _labels_from_files(listing, kept)
    else:
        labels = listing.labels[kept] if listing.labels is not None else np.full(len(kept), -1, np.int64)
        class_names = list(listing.class_names or [])
    out = DatasetEmbedding(features=features, projections=projections, labels=np.asarray(labels, np.int64),
                           class_names=class_names, names=[listing.names[j] for j in kept],
                           refs=[listing.refs[j] for j in kept], fingerprint=key, n_points=int(n_points),
                           source=listing.source, from_cache=False, skipped=skipped)
    if use_cache:
        try:
            atomic_savez(path, key=np.array(key), features=out.features, projections=out.projections,
                         labels=out.labels, class_names=_str_array(out.class_names), names=_str_array(out.names),
                         refs=_str_array(out.refs), n_points=np.array(int(n_points)),
                         skipped_refs=_str_array([s[0] for s in skipped]),
                         skipped_reasons=_str_array([s[1] for s in skipped]))
            if parts.is_dir():
                import shutil

                shutil.rmtree(parts, ignore_errors=True)
        except OSError as exc:
            log.warning("could not write the embedding cache %s: %s", path, exc)
    return out


# ------------------------------------------------------------------------------ 2-D map
class Projection2D(NamedTuple):
    coords: np.ndarray  # (M, 2) float32
    method: str  # "umap" | "pca" | "none"
    note: str
    from_cache: bool


def ensure_numba_cache_dir() -> None:
    """Point numba's cache at ``<user cache>/crosspoint-explorer/numba`` unless ``NUMBA_CACHE_DIR``
    is set (re-reading numba's configuration when numba is already imported)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    target = user_cache_dir("numba")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    os.environ["NUMBA_CACHE_DIR"] = str(target)
    import sys

    if "numba" in sys.modules:
        try:
            from numba.core import config

            config.reload_config()
        except Exception:  # pragma: no cover - best effort
            pass


_UMAP_LOCK = threading.Lock()
_UMAP_STATE = {"ready": False, "cached_functions": 0}


def _enable_numba_caching(prefixes=("umap", "pynndescent")) -> int:
    """Turn on numba's on-disk cache for the jitted functions of umap-learn (and pynndescent) that
    do not ask for it, so the ~8 s of compilation is paid once per machine, not once per process.
    Returns how many functions were switched."""
    import sys

    try:
        from numba.core.caching import NullCache
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover
        return 0
    n = 0
    for modname, mod in list(sys.modules.items()):
        if mod is None or not modname.split(".")[0] in prefixes:
            continue
        for obj in list(vars(mod).values()):
            if (isinstance(obj, Dispatcher) and isinstance(getattr(obj, "_cache", None), NullCache)
                    and getattr(obj.py_func, "__module__", None) == modname and not obj.signatures):
                try:
                    obj.enable_caching()
                    n += 1
                except Exception:  # no writable cache location, unsupported function: keep it uncached
                    pass
    return n


def _import_umap():
    """``import umap`` with numba's cache directory set and (unless ``CROSSPOINT_UMAP_NUMBA_CACHE=0``)
    its jitted functions cached on disk (:func:`_enable_numba_caching`)."""
    with _UMAP_LOCK:
        ensure_numba_cache_dir()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import umap
        if not _UMAP_STATE["ready"]:
            if os.environ.get("CROSSPOINT_UMAP_NUMBA_CACHE", "1") != "0":
                _UMAP_STATE["cached_functions"] = _enable_numba_caching()
            _UMAP_STATE["ready"] = True
    return umap


def warm_up_umap() -> float:
    """Fit a tiny UMAP so that umap-learn's numba code is compiled (or loaded from the cache)
    before the user asks for a map; for a GUI worker at start-up. Returns the seconds it took."""
    import time

    t = time.perf_counter()
    x = np.random.default_rng(0).normal(size=(40, 8))
    _compute_2d(x, 0, 5, 0.1, None)
    return time.perf_counter() - t


def _umap_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("umap-learn")
    except PackageNotFoundError:  # pragma: no cover
        return "?"


def _pca(x: np.ndarray, d: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    d = int(max(0, min(d, x.shape[0], x.shape[1])))
    if d == 0:
        return np.zeros((x.shape[0], 0))
    return PCA(n_components=d, random_state=int(seed)).fit_transform(x)


def map_settings(m: int, large: "bool | None" = None) -> dict:
    """The settings :func:`project_2d` uses for ``m`` objects: ``{}`` (umap-learn's defaults) up to
    :data:`UMAP_LARGE_OBJECTS`, :data:`UMAP_LARGE_SETTINGS` above (``large`` True / False forces)."""
    if large is None:
        large = int(m) > UMAP_LARGE_OBJECTS
    return dict(UMAP_LARGE_SETTINGS) if large else {}


def _compute_2d(x: np.ndarray, seed: int, n_neighbors: int, min_dist: float, progress,
                settings: "dict | None" = None) -> tuple[np.ndarray, str, str]:
    settings = settings or {}
    m = x.shape[0]
    if m == 0:
        return np.zeros((0, 2), np.float32), "none", "no objects"
    if settings.get("float32"):
        x = np.array(x, np.float32)  # a copy, standardised in place
        mean, std = x.mean(axis=0, dtype=np.float64), x.std(axis=0, dtype=np.float64)
        x -= mean.astype(np.float32)
        x /= np.where(std > 0, std, 1.0).astype(np.float32)
    else:
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    if m < UMAP_MIN_OBJECTS:
        y = _pca(x, 2, seed) if m > 1 else np.zeros((m, 0))
        if y.shape[1] < 2:
            y = np.concatenate([y, np.zeros((m, 2 - y.shape[1]))], axis=1)
        return y.astype(np.float32), "pca", f"{m} objects: too few for UMAP, PCA to 2-D instead"
    report(progress, 1, 3, "PCA")
    z = _pca(x, 50, seed)
    del x
    report(progress, 2, 3, "UMAP")
    umap = _import_umap()
    nn = int(max(2, min(int(n_neighbors), m - 1)))
    extra = {"n_epochs": int(settings["n_epochs"])} if settings.get("n_epochs") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reducer = umap.UMAP(n_neighbors=nn, min_dist=float(min_dist), n_components=2, random_state=int(seed),
                            transform_seed=int(seed), **extra)
        y = reducer.fit_transform(z)
    note = f"UMAP of {m} objects (standardised, PCA to {z.shape[1]} dims, {nn} neighbours, min_dist {min_dist:g}"
    if settings:
        note += (f"; large-map settings: {'float32, ' if settings.get('float32') else ''}"
                 f"{settings.get('n_epochs', 'default')} epochs")
    note += ")"
    return np.ascontiguousarray(y, np.float32), "umap", note


def project_2d(features, *, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1, cache_dir=None,
               use_cache: bool = True, cache_only: bool = False, progress: Progress = None,
               large: "bool | None" = None) -> "Projection2D | None":
    """:func:`umap_2d` with how it was made (method, note) and whether it came from the cache.
    ``cache_only``: return the cached map, or None when there is none (computes nothing).
    ``large``: the large-map settings (:func:`map_settings`; default: above
    :data:`UMAP_LARGE_OBJECTS` objects); they are part of the cache key."""
    shape = np.shape(features)
    settings = map_settings(shape[0] if len(shape) else 0, large)
    # the large-map settings work in float32 (no float64 copy of 50,000 x 2048 features: 0.8 GB)
    x = np.asarray(features, np.float32 if settings.get("float32") else np.float64)
    if x.ndim != 2:
        raise AnalysisError(f"features must be (M, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise AnalysisError("features contain NaN or inf")
    report(progress, 0, 3, "2-D map")
    h = hashlib.sha1()
    head = {"v": CACHE_VERSION, "shape": list(x.shape), "seed": int(seed), "nn": int(n_neighbors),
            "md": float(min_dist), "umap": _umap_version()}
    if settings:  # only then: the keys of maps made with the defaults stay as they were
        head["settings"] = settings
    h.update(json.dumps(head).encode())
    h.update(memoryview(np.ascontiguousarray(x)).cast("B"))  # no copy of the features
    key = h.hexdigest()[:24]
    folder = Path(cache_dir) if cache_dir is not None else user_cache_dir("umap")
    path = folder / f"{key}.npz"
    if (use_cache or cache_only) and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                coords = np.ascontiguousarray(z["coords"], np.float32)
                res = Projection2D(coords, str(z["method"]), str(z["note"]), True)
            report(progress, 3, 3, "2-D map (cached)")
            return res
        except (OSError, KeyError, ValueError, EOFError) as exc:
            log.warning("%s: unreadable 2-D map cache (%s); recomputing", path, exc)
    if cache_only:
        return None
    y, method, note = _compute_2d(x, int(seed), n_neighbors, min_dist, progress, settings)
    if use_cache:
        try:
            atomic_savez(path, coords=y, method=np.array(method), note=np.array(note))
        except OSError as exc:
            log.warning("could not write the 2-D map cache %s: %s", path, exc)
    report(progress, 3, 3, "2-D map")
    return Projection2D(y, method, note, False)


def umap_2d(features, *, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1, cache_dir=None,
            use_cache: bool = True, progress: Progress = None, large: "bool | None" = None) -> np.ndarray:
    """``(M, 2)`` float32 UMAP coordinates of ``features`` (see the module docstring)."""
    return project_2d(features, seed=seed, n_neighbors=n_neighbors, min_dist=min_dist, cache_dir=cache_dir,
                      use_cache=use_cache, progress=progress, large=large).coords


def map_quality(coords, labels, *, k: int = 5) -> dict:
    """How well a 2-D map keeps the classes apart, on the labelled rows (label >= 0): the
    ``silhouette`` of the classes in the 2-D coordinates (-1..1, sklearn's euclidean silhouette)
    and ``knn_acc``, the leave-one-out accuracy of a ``k``-nearest-neighbour vote in 2-D. Compare
    with the same map of a random-weight encoder (the explorer's "compare with random weights"):
    a map that looks clustered is evidence only when it beats that. NaN when fewer than two
    classes have two or more labelled rows."""
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import NearestNeighbors

    xy = np.asarray(coords, np.float64)
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    if xy.ndim != 2 or xy.shape[0] != y.shape[0]:
        raise AnalysisError(f"{xy.shape[0] if xy.ndim else 0} map rows for {y.shape[0]} labels")
    keep = y >= 0
    classes, counts = np.unique(y[keep], return_counts=True)
    keep &= np.isin(y, classes[counts >= 2])
    xy, y = xy[keep], y[keep]
    n_cls = np.unique(y).size
    if n_cls < 2 or n_cls >= y.size:
        return {"silhouette": float("nan"), "knn_acc": float("nan"), "k": int(k), "n": int(y.size)}
    sil = float(silhouette_score(xy, y, metric="euclidean"))
    kk = int(min(k, y.size - 1))
    idx = NearestNeighbors(n_neighbors=kk + 1).fit(xy).kneighbors(xy, return_distance=False)
    votes = y[idx[:, 1:]]  # drop each row itself (first neighbour: distance 0)
    pred = np.array([np.bincount(v).argmax() for v in votes])
    return {"silhouette": sil, "knn_acc": float((pred == y).mean()), "k": kk, "n": int(y.size)}


# ------------------------------------------------------------------------------ SVM
def svm_accuracy(features, labels, folds: int = 5, C: float = 0.1, *, seed: int = 0,
                 standardised: bool = True) -> tuple[float, float]:
    """``(mean, std)`` accuracy (0..1) of a linear SVM over stratified ``folds``-fold
    cross-validation on the labelled rows (label >= 0), by :func:`crosspoint.evaluation.svm.cv_accuracy`;
    ``standardised`` (default): each fold's features standardised by its training rows' statistics.
    Raises :class:`AnalysisError` when fewer than two classes have at least two objects."""
    from crosspoint.evaluation.svm import cv_accuracy

    x = np.asarray(features, np.float64)
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise AnalysisError(f"{x.shape[0] if x.ndim else 0} feature rows for {y.shape[0]} labels")
    keep = y >= 0
    classes, counts = np.unique(y[keep], return_counts=True)
    ok = classes[counts >= 2]
    keep &= np.isin(y, ok)
    if ok.size < 2:
        raise AnalysisError("the SVM score needs at least two classes with two or more labelled objects each")
    try:
        return cv_accuracy(x[keep], y[keep], C, folds=folds, seed=seed, standardised=standardised)
    except ValueError as exc:
        raise AnalysisError(f"the SVM score: {exc}") from None
