"""Reading: the path checks, format resolution, the reader call, and cleaning up what it found.

:func:`read_point_cloud` runs ``_read_raw`` (check the path, pick the :class:`~crosspoint.io.formats.Format`
from the extension and the content, run its reader, check the array shapes), then ``_finish``
(drop non-finite points, sample a mesh's surface, subsample to ``max_points``).
"""

from __future__ import annotations

import errno
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crosspoint.pointcloud import Mesh, PointCloud

from .common import Raw, ReadError
from .formats import FORMATS, SUPPORTED_EXTENSIONS, Format, format_by_key, formats_for_extension, sniff_format

log = logging.getLogger("crosspoint.io")

DEFAULT_MESH_SAMPLES = 10_000


# -- paths -----------------------------------------------------------------------------------------


def split_index(path) -> tuple[Path, int | None]:
    """``"file.h5#12"`` -> ``(Path("file.h5"), 12)``.

    A path without a ``#N`` suffix, or one that exists under its full name, gives ``(path, None)``.
    """
    s = os.fspath(path)
    m = re.fullmatch(r"(.+)#(-?\d+)", s)
    if m and not Path(s).exists():
        return Path(m.group(1)), int(m.group(2))
    return Path(s), None


def _split_row(path) -> tuple[Path, int | None]:
    """:func:`split_index`, and a ReadError for ``"file.h5#abc"`` when ``file.h5`` exists."""
    p, idx = split_index(path)
    if idx is None and "#" in p.name and not os.path.lexists(p):
        base, _, suffix = os.fspath(p).rpartition("#")
        if os.path.lexists(base):
            raise ReadError(base, f"the row after '#' must be a non-negative integer, got {suffix!r}")
    return p, idx


def _check_file(p: Path) -> None:
    """A ReadError unless ``p`` is a readable, non-empty regular file."""
    try:
        st = p.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ReadError(p, "symbolic link loop (following its links never reaches a file)") from None
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise ReadError(p, "no such file") from None
        if e.errno == errno.EACCES:
            raise ReadError(p, "permission denied") from None
        raise ReadError(p, f"cannot open: {e.strerror or e}") from None
    if p.is_dir():
        raise ReadError(p, "is a directory, not a file")
    if not p.is_file():
        raise ReadError(p, "is not a regular file")
    if st.st_size == 0:
        raise ReadError(p, "file is empty (0 bytes)")
    try:
        with open(p, "rb"):
            pass
    except PermissionError:
        raise ReadError(p, "permission denied") from None
    except OSError as e:
        raise ReadError(p, f"cannot open: {e.strerror or e}") from None


def _resolve_format(p: Path, warnings: list[str]) -> Format:
    """The format to read ``p`` as: its extension's, unless the content is clearly another one."""
    ext = p.suffix.lower()
    claimants = formats_for_extension(ext)
    key = sniff_format(p)
    sniffed = format_by_key(key) if key else None
    if not claimants:
        hint = f"; the content looks like {sniffed.name} (rename the file)" if sniffed else ""
        what = f"unknown file extension {ext!r}" if ext else "no file extension"
        raise ReadError(p, f"{what}{hint}; supported: {' '.join(SUPPORTED_EXTENSIONS)}")
    expected = claimants[0]
    if sniffed is None:
        if expected.binary:
            with open(p, "rb") as fh:
                head = fh.read(16)
            raise ReadError(p, f"not a valid {expected.name} file (it starts with {head!r})")
        return expected
    if sniffed.family_key == expected.family_key:
        return expected
    if sniffed in claimants:  # another format that uses this extension (an Expe .pts)
        return sniffed
    if sniffed.sniff_rank >= 3 and not expected.binary:
        # "lines of numbers" is weak evidence: a headerless OFF or a broken OBJ gets its own reader's error
        return expected
    warnings.append(
        f"the content is {sniffed.name}, not {expected.name} as the extension {ext!r} says; read as {sniffed.name}"
    )
    return sniffed


def _format_name(key: str) -> str:
    try:
        return format_by_key(key).name
    except KeyError:  # a text reader's variant (xyz, pts ...)
        return key


# -- the raw read ----------------------------------------------------------------------------------


def _read_raw(p: Path, index: int | None) -> Raw:
    """Check the path, pick the reader, and run it; every failure is a ReadError."""
    _check_file(p)
    warnings: list[str] = []
    fmt = _resolve_format(p, warnings)
    if index is not None and not fmt.rows:
        rows = " / ".join(f.name for f in FORMATS if f.rows)
        raise ReadError(p, f"an index (#{index}) only applies to {rows} files with rows, not {fmt.name}")
    try:
        raw = fmt.read(p, fmt, index)
    except ReadError:
        raise
    except MemoryError:
        raise ReadError(p, "not enough memory to read this file") from None
    except RecursionError:
        raise ReadError(p, f"cannot read as {fmt.name}: structure too deeply nested") from None
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as e:  # a library error we did not foresee (incl. Rust panics): still a ReadError
        log.debug("reading %s failed", p, exc_info=True)
        raise ReadError(p, f"cannot read as {fmt.name}: {type(e).__name__}: {e}") from None
    raw.warnings[:0] = warnings
    _check_lengths(p, raw)
    return raw


def _check_lengths(p: Path, raw: Raw) -> None:
    """Every per-point / per-vertex attribute has one row per point; faces are (F, 3) in range."""
    if raw.points is None:
        raise ReadError(p, "contains no points")
    pts = np.asarray(raw.points)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ReadError(p, f"points have shape {pts.shape}, expected (N, 3)")
    n = pts.shape[0]
    for name, width in (("normals", 3), ("colors", 3), ("labels", None)):
        a = getattr(raw, name)
        if a is None:
            continue
        a = np.asarray(a)
        ok = a.shape == ((n, width) if width else (n,))
        if not ok:
            raw.warnings.append(f"{name} have shape {a.shape} for {n:,} points; ignored")
            setattr(raw, name, None)
    if raw.faces is not None:
        f = np.asarray(raw.faces)
        if f.ndim != 2 or f.shape[1] != 3:
            raise ReadError(p, f"faces have shape {f.shape}, expected (F, 3)")
        if f.size and (int(f.min()) < 0 or int(f.max()) >= n):
            raise ReadError(p, f"a face refers to a vertex outside 0..{n - 1}")
        if raw.face_labels is not None and np.asarray(raw.face_labels).shape != (f.shape[0],):
            raw.warnings.append("face labels do not match the faces; ignored")
            raw.face_labels = None


# -- cleaning up -----------------------------------------------------------------------------------


@dataclass
class _Points:
    """The per-point arrays of the result, kept together through filtering and subsampling."""

    points: np.ndarray
    normals: np.ndarray | None = None
    colors: np.ndarray | None = None
    labels: np.ndarray | None = None

    @classmethod
    def of(cls, raw: Raw) -> _Points:
        return cls(raw.points, raw.normals, raw.colors, raw.labels)

    def take(self, idx) -> _Points:
        def pick(a):
            return None if a is None else np.asarray(a)[idx]

        return _Points(self.points[idx], pick(self.normals), pick(self.colors), pick(self.labels))


def _fix_nonfinite_attrs(raw: Raw) -> None:
    for name, fill in (("normals", 0.0), ("colors", 0.0)):
        a = getattr(raw, name)
        if a is not None:
            a = np.asarray(a, np.float32)
            bad = ~np.isfinite(a).all(axis=1)
            if bad.any():
                a = np.where(np.isfinite(a), a, fill).astype(np.float32)
                raw.warnings.append(f"replaced {int(bad.sum()):,} non-finite {name} with zeros")
            setattr(raw, name, a)


def _compact_mesh(p: Path, raw: Raw) -> None:
    """Drop non-finite vertices (and the faces that use them) from a mesh."""
    v = np.asarray(raw.points)
    good = np.isfinite(v).all(axis=1)
    if good.all():
        return
    if not good.any():
        raise ReadError(p, f"all {len(v):,} vertices have non-finite (NaN/inf) coordinates")
    keep_face = good[raw.faces].all(axis=1)
    remap = np.cumsum(good) - 1
    raw.faces = remap[raw.faces[keep_face]]
    if raw.face_labels is not None:
        raw.face_labels = raw.face_labels[keep_face]
    raw.points = v[good]
    for name in ("normals", "colors", "labels"):
        a = getattr(raw, name)
        if a is not None:
            setattr(raw, name, np.asarray(a)[good])
    raw.warnings.append(
        f"dropped {int((~good).sum()):,} non-finite vertices and {int((~keep_face).sum()):,} faces using them"
    )


def _to_mesh(raw: Raw) -> Mesh:
    return Mesh(raw.points, raw.faces, vertex_colors=raw.colors, vertex_normals=raw.normals)


def _sample_surface(raw: Raw, mesh: Mesh, n: int, seed, meta: dict) -> _Points | None:
    """``n`` area-weighted samples of the mesh with interpolated colours and labels; None (and a
    warning) when the mesh has no area to sample."""
    from crosspoint.geometry import sample_mesh_barycentric

    try:
        points, normals, fi, bary = sample_mesh_barycentric(mesh.vertices, mesh.faces, n, seed=seed)
    except ValueError as e:
        raw.warnings.append(f"{e}; using the {mesh.n_vertices:,} vertices as points")
        return None
    tri = mesh.faces[fi]
    colors = labels = None
    if raw.colors is not None:
        colors = np.einsum("nk,nkc->nc", bary, np.asarray(raw.colors, np.float32)[tri])
    if raw.face_labels is not None:
        labels = raw.face_labels[fi]
    elif raw.labels is not None:  # the label of the nearest corner
        labels = np.asarray(raw.labels)[tri[np.arange(len(fi)), bary.argmax(axis=1)]]
    meta["mesh_samples"] = n
    meta["sampling_seed"] = seed if isinstance(seed, int) else None
    return _Points(points, normals, colors, labels)


def _drop_nonfinite(p: Path, pts: _Points, warnings: list[str]) -> _Points:
    good = np.isfinite(pts.points).all(axis=1)
    if good.all():
        return pts
    n_bad = int((~good).sum())
    if n_bad == len(good):
        raise ReadError(p, f"all {n_bad:,} points have non-finite (NaN/inf) coordinates")
    warnings.append(f"dropped {n_bad:,} non-finite points")
    return pts.take(good)


def _subsample(pts: _Points, max_points: int | None, seed, warnings: list[str]) -> _Points:
    if max_points is None or len(pts.points) <= int(max_points):
        return pts
    from crosspoint.geometry import random_subsample

    m = int(max_points)
    idx = random_subsample(pts.points, m, seed)
    warnings.append(f"subsampled {len(pts.points):,} points to {m:,} (random, seed {seed})")
    return pts.take(idx)


def _finish(p: Path, raw: Raw, max_points: int | None, mesh_samples: int | None, seed) -> PointCloud:
    """The :class:`PointCloud` of a raw read: cleaned, a mesh sampled, subsampled to ``max_points``."""
    if raw.points is None or len(raw.points) == 0:
        raise ReadError(p, "contains no points")
    raw.points = np.asarray(raw.points, np.float32).reshape(-1, 3)
    _fix_nonfinite_attrs(raw)
    meta = dict(raw.meta)
    mesh = None
    pts = None
    if raw.is_mesh:
        _compact_mesh(p, raw)
        mesh = _to_mesh(raw)
        n = DEFAULT_MESH_SAMPLES if mesh_samples is None else int(mesh_samples)
        if max_points is not None:
            n = min(n, int(max_points))
        pts = _sample_surface(raw, mesh, n, seed, meta)
        if pts is None:  # no area: the vertices are the points
            pts = _Points.of(raw)
            if mesh.n_faces == 0:  # every face used a non-finite vertex
                mesh = None
    else:
        pts = _drop_nonfinite(p, _Points.of(raw), raw.warnings)
    if mesh is not None:
        meta["mesh_vertices"], meta["mesh_faces"] = mesh.n_vertices, mesh.n_faces
    else:
        meta["points_in_file"] = int(len(raw.points))
    pts = _subsample(pts, max_points, seed, raw.warnings)
    try:
        from crosspoint.io.formats import format_by_key

        up = format_by_key(raw.fmt).up_axis
    except (KeyError, ValueError):
        up = 1
    meta["up_axis_source"] = f"{raw.fmt} convention"
    try:
        return PointCloud(
            up_axis=up,
            points=pts.points,
            normals=pts.normals,
            colors=pts.colors,
            labels=pts.labels,
            mesh=mesh,
            source_format=raw.fmt,
            path=p,
            warnings=list(raw.warnings),
            class_label=raw.class_label,
            category=raw.category,
            meta=meta,
        )
    except ValueError as e:
        raise ReadError(p, f"inconsistent attributes: {e}") from None


# -- the public readers ----------------------------------------------------------------------------


def read_point_cloud(
    path,
    *,
    max_points: int | None = None,
    index: int | None = None,
    mesh_samples: int | None = None,
    seed: int = 0,
) -> PointCloud:
    """Read any supported file as a :class:`PointCloud` (see :mod:`crosspoint.io`).

    ``path``: a file, or ``"file.h5#12"`` for row 12 of an HDF5 (or batched NPY/NPZ) file.
    ``index``: the row, the same as the ``#N`` suffix (row 0 when neither is given; rows are
    numbered from 0 and a negative row is refused; ``meta["rows"]`` says how many there are,
    ``meta["index"]`` which was read). ``max_points``: at most this many points (random
    subsample with ``seed``; for a mesh, the number of surface samples). ``mesh_samples``:
    surface samples for a mesh (default ``DEFAULT_MESH_SAMPLES``). ``seed``: for mesh sampling
    and subsampling.

    Raises :class:`ReadError` for every problem with the file.
    """
    p, idx = _split_row(path)
    if idx is not None:
        if index is not None and int(index) != idx:
            raise ReadError(p, f"two different indices given: #{idx} in the path and index={index}")
        index = idx
    if max_points is not None and int(max_points) < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    if mesh_samples is not None and int(mesh_samples) < 1:
        raise ValueError(f"mesh_samples must be >= 1, got {mesh_samples}")
    raw = _read_raw(p, index)
    cloud = _finish(p, raw, max_points, mesh_samples, seed)
    for w in cloud.warnings:
        log.info("%s: %s", p, w)
    return cloud


def read_mesh(path) -> Mesh:
    """Read a mesh file (PLY with faces, OFF, OBJ, STL, GLB/GLTF) as a :class:`Mesh`.

    Raises :class:`ReadError` for a file without faces (a point cloud) and every other problem.
    Vertices with non-finite coordinates are removed with the faces that use them.
    """
    p, idx = _split_row(path)
    raw = _read_raw(p, idx)
    if not raw.is_mesh:
        raise ReadError(p, f"has no faces: it is a point cloud ({_format_name(raw.fmt)}), not a mesh")
    raw.points = np.asarray(raw.points, np.float32).reshape(-1, 3)
    _fix_nonfinite_attrs(raw)
    _compact_mesh(p, raw)
    return _to_mesh(raw)
