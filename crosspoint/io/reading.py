"""Reading and writing point clouds and meshes.

``read_point_cloud(path)`` returns a :class:`~crosspoint.pointcloud.PointCloud`: points ``(N, 3)``
float32 and, when the file has them, normals, colours (float32 in [0, 1]), per-point labels, the
object's class, and the mesh (vertices / faces) when the file is a mesh. Meshes are sampled
area-weighted to ``DEFAULT_MESH_SAMPLES`` (10,000) points -- fewer when ``max_points`` is smaller
-- with a fixed seed, so the same file always gives the same points; sample normals are the face
normals and the mesh is kept on ``cloud.mesh`` for rendering.

Formats (by extension; see :func:`sniff_format` for files whose extension lies):

==========================  ==============================================================
``.ply``                    ascii / binary little & big endian; points or meshes (polygons
                            fan-triangulated); ``nx ny nz``, ``red green blue``, ``label``-like
                            vertex properties (:mod:`crosspoint._io.ply`)
``.pcd``                    PCL v0.5-v0.7 ascii / binary / binary_compressed (LZF); ``rgb``/``rgba``
                            packed colours, ``normal_*``, ``label``; organised clouds
``.xyz .xyzn .xyzrgb .pts   whitespace- or comma-separated numbers, header lines skipped; 3-10
.txt .csv``                 columns (ModelNet40 ``normal_resampled``, ShapeNetPart part txt,
                            Leica PTS): the column rules are in :mod:`crosspoint._io.text`
``.off``                    Geomview OFF incl. ModelNet's ``OFF3514 3546 0`` first lines
``.obj .stl .glb .gltf``    via trimesh (geometry only: materials and textures are not read;
                            scenes are flattened with their transforms)
``.npy .npz``               see :mod:`crosspoint._io.others` for the recognised NPZ keys
``.h5 .hdf5``               ModelNet40 (``data``, ``label``) / ShapeNetPart (``data``, ``label``,
                            ``pid``) files; one row per read: ``index=12`` or ``"file.h5#12"``
``.las .laz``               via laspy (lazrs): scaled x y z, 16-bit colours, ``classification``
                            as labels; far-away (georeferenced) coordinates are shifted to keep
                            float32 precision, the shift is ``meta["origin"]``
==========================  ==============================================================

Every problem with the input -- a missing file, an unknown extension, empty, truncated or garbage
content, zero points, counts that disagree with the data, an index out of range -- raises
:class:`ReadError` (a ``ValueError``) whose message starts with the path. Points with NaN / inf
coordinates are dropped and the result's ``warnings`` says how many (all non-finite is an error).
Clouds with more than ``max_points`` points are subsampled at random with ``seed`` (with a warning).

**Lying extensions**: the content is checked against the extension with :func:`sniff_format`
(magic bytes). When the content is clearly another supported format, the file is read as that
format and a warning is added to the result; when it matches no known signature and the extension
names a binary format (PLY, PCD, NPY, NPZ, HDF5, LAS, GLB), it is a ReadError. An unknown
extension is always a ReadError (the message says what the content looks like).

``write_point_cloud(path, cloud)`` writes ``.ply`` (binary little endian), ``.pcd`` (binary) or
``.npz`` (keys ``points``, ``normals``, ``colors``, ``labels``, ``class_label``, ``category``;
absent attributes are left out), including normals, colours and labels.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from crosspoint._io.common import ReadError, Raw
from crosspoint.pointcloud import Mesh, PointCloud

__all__ = [
    "PointCloud",
    "Mesh",
    "ReadError",
    "read_point_cloud",
    "read_mesh",
    "write_point_cloud",
    "sniff_format",
    "format_for_path",
    "split_index",
    "SUPPORTED_EXTENSIONS",
    "WRITE_EXTENSIONS",
    "FILE_DIALOG_FILTER",
    "DEFAULT_MESH_SAMPLES",
]

log = logging.getLogger(__name__)

DEFAULT_MESH_SAMPLES = 10_000

# extension -> reader format
_EXT_FORMAT = {
    ".ply": "ply",
    ".pcd": "pcd",
    ".xyz": "text", ".xyzn": "text", ".xyzrgb": "text", ".pts": "text", ".txt": "text", ".csv": "text",
    ".off": "off",
    ".obj": "obj",
    ".stl": "stl",
    ".glb": "glb",
    ".gltf": "gltf",
    ".npy": "npy",
    ".npz": "npz",
    ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5",
    ".las": "las",
    ".laz": "laz",
}
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_EXT_FORMAT)
WRITE_EXTENSIONS: tuple[str, ...] = (".ply", ".pcd", ".npz")

_FILTER_GROUPS = [
    ("PLY", (".ply",)),
    ("PCD", (".pcd",)),
    ("Text points", (".xyz", ".xyzn", ".xyzrgb", ".pts", ".txt", ".csv")),
    ("OFF", (".off",)),
    ("OBJ", (".obj",)),
    ("STL", (".stl",)),
    ("glTF", (".glb", ".gltf")),
    ("NumPy", (".npy", ".npz")),
    ("HDF5", (".h5", ".hdf5", ".hdf")),
    ("LAS / LAZ", (".las", ".laz")),
]
FILE_DIALOG_FILTER = ";;".join(
    ["Point clouds and meshes (" + " ".join("*" + e for e in SUPPORTED_EXTENSIONS) + ")"]
    + [f"{name} (" + " ".join("*" + e for e in exts) + ")" for name, exts in _FILTER_GROUPS]
    + ["All files (*)"]
)

_BINARY_FORMATS = {"ply", "pcd", "npy", "npz", "hdf5", "las", "laz", "glb"}
_INDEXED_FORMATS = {"hdf5", "npy", "npz"}
_NAMES = {
    "ply": "PLY", "pcd": "PCD", "text": "a text point list", "off": "OFF", "obj": "OBJ", "stl": "STL",
    "glb": "GLB", "gltf": "glTF", "npy": "NPY", "npz": "NPZ", "hdf5": "HDF5", "las": "LAS", "laz": "LAZ",
}
_OFF_RE = re.compile(rb"^(ST)?C?N?4?n?OFF(\s|\d|$)")


# -- format detection --------------------------------------------------------------------------


def format_for_path(path) -> str | None:
    """The reader format an extension names (``"ply"``, ``"text"``, ``"hdf5"`` ...), or None."""
    return _EXT_FORMAT.get(Path(path).suffix.lower())


def sniff_format(path) -> str | None:
    """The format of a file from its content, or None when no signature matches.

    Binary signatures: ``ply`` -> ``"ply"``, ``\\x93NUMPY`` -> ``"npy"``, ``PK\\x03\\x04`` (zip) ->
    ``"npz"``, ``\\x89HDF`` -> ``"hdf5"``, ``LASF`` -> ``"las"`` / ``"laz"`` (compressed point
    format), ``glTF`` -> ``"glb"``, an 84-byte header + 50 bytes per triangle -> ``"stl"``.
    Text: ``# .PCD`` / ``VERSION`` / ``FIELDS`` -> ``"pcd"``, ``OFF`` (also ``OFF3514 3546 0``,
    ``COFF``, ``NOFF``) -> ``"off"``, ``solid ... facet`` -> ``"stl"``, a JSON object with
    ``"asset"`` -> ``"gltf"``, ``v`` / ``f`` / ``mtllib`` lines -> ``"obj"``, lines of numbers ->
    ``"text"``. An empty or unreadable file gives None.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if not head:
        return None
    if head[:3] == b"ply" and head[3:4] in (b"\n", b"\r", b" "):
        return "ply"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "npz"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head.startswith(b"LASF"):
        if len(head) > 104 and head[104] & 0xC0:  # bit 7 (or 6): compressed point data
            return "laz"
        return "las"
    if head.startswith(b"glTF"):
        return "glb"
    if size >= 84 and len(head) >= 84:
        n_tri = int.from_bytes(head[80:84], "little")
        if size == 84 + 50 * n_tri and (n_tri > 0 or not head[:5].lower() == b"solid"):
            return "stl"
    text = head.lstrip(b"\xef\xbb\xbf")
    stripped = text.lstrip()
    # a PCD header is text even when binary data follows it
    if stripped.startswith(b"# .PCD") or re.match(rb"^(#[^\n]*\n\s*)*(VERSION|FIELDS)\s", stripped):
        return "pcd"
    if b"\x00" in head:
        return None
    lines = [ln.strip() for ln in text.splitlines()]
    content = [ln for ln in lines if ln and not ln.startswith(b"#")]
    if content and _OFF_RE.match(content[0]):
        return "off"
    if stripped[:5].lower() == b"solid" and b"facet" in text:
        return "stl"
    if stripped.startswith(b"{") and b'"asset"' in text:
        return "gltf"
    obj_keys = (b"v ", b"vn ", b"vt ", b"f ", b"o ", b"g ", b"mtllib", b"usemtl", b"s ", b"l ", b"v\t", b"f\t")
    first = content[:20]
    if first and sum(ln.startswith(obj_keys) for ln in first) >= max(1, len(first) // 2):
        return "obj"
    for ln in content[:50]:
        toks = ln.replace(b",", b" ").replace(b";", b" ").split()
        if len(toks) >= 3:
            try:
                [float(t) for t in toks]
            except ValueError:
                continue
            return "text"
    return None


def split_index(path) -> tuple[Path, int | None]:
    """``"file.h5#12"`` -> ``(Path("file.h5"), 12)``.

    A path without a ``#N`` suffix, or one that exists under its full name, gives ``(path, None)``.
    """
    s = os.fspath(path)
    m = re.fullmatch(r"(.+)#(-?\d+)", s)
    if m and not Path(s).exists():
        return Path(m.group(1)), int(m.group(2))
    return Path(s), None


def _resolve_format(p: Path, warnings: list[str]) -> str:
    ext = p.suffix.lower()
    expected = _EXT_FORMAT.get(ext)
    sniffed = sniff_format(p)
    if expected is None:
        hint = f"; the content looks like {_NAMES[sniffed]} (rename the file)" if sniffed else ""
        what = f"unknown file extension {ext!r}" if ext else "no file extension"
        raise ReadError(p, f"{what}{hint}; supported: {' '.join(SUPPORTED_EXTENSIONS)}")
    if sniffed is None:
        if expected in _BINARY_FORMATS:
            with open(p, "rb") as fh:
                head = fh.read(16)
            raise ReadError(p, f"not a valid {_NAMES[expected]} file (it starts with {head!r})")
        return expected
    if sniffed == expected or {sniffed, expected} == {"las", "laz"}:
        return expected
    if sniffed == "text" and expected in ("off", "obj", "stl", "gltf"):
        # "lines of numbers" is weak evidence: a headerless OFF or a broken OBJ gets its own reader's error
        return expected
    warnings.append(
        f"the content is {_NAMES[sniffed]}, not {_NAMES[expected]} as the extension {ext!r} says; "
        f"read as {_NAMES[sniffed]}"
    )
    return sniffed


# -- reading -----------------------------------------------------------------------------------


def _read_raw(p: Path, index: int | None) -> Raw:
    """Check the path, pick the reader, and run it; every failure is a ReadError."""
    if not p.exists():
        raise ReadError(p, "no such file")
    if p.is_dir():
        raise ReadError(p, "is a directory, not a file")
    if not p.is_file():
        raise ReadError(p, "is not a regular file")
    try:
        size = p.stat().st_size
        if size == 0:
            raise ReadError(p, "file is empty (0 bytes)")
        with open(p, "rb"):
            pass
    except PermissionError:
        raise ReadError(p, "permission denied") from None
    except OSError as e:
        raise ReadError(p, f"cannot open: {e.strerror or e}") from None
    warnings: list[str] = []
    fmt = _resolve_format(p, warnings)
    if index is not None and fmt not in _INDEXED_FORMATS:
        raise ReadError(p, f"an index (#{index}) only applies to HDF5 / NPY / NPZ files with rows, not {_NAMES[fmt]}")
    try:
        raw = _dispatch(p, fmt, index)
    except ReadError:
        raise
    except MemoryError:
        raise ReadError(p, "not enough memory to read this file") from None
    except RecursionError:
        raise ReadError(p, f"cannot read as {_NAMES[fmt]}: structure too deeply nested") from None
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as e:  # a library error we did not foresee (incl. Rust panics): still a ReadError
        log.debug("reading %s failed", p, exc_info=True)
        raise ReadError(p, f"cannot read as {_NAMES[fmt]}: {type(e).__name__}: {e}") from None
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


def _dispatch(p: Path, fmt: str, index: int | None) -> Raw:
    if fmt == "ply":
        from crosspoint._io.ply import read_ply

        return read_ply(p)
    if fmt == "pcd":
        from crosspoint._io.pcd import read_pcd

        return read_pcd(p)
    if fmt == "text":
        from crosspoint._io.text import read_text

        ext = p.suffix.lower()
        raw = read_text(p, ext if ext in (".xyz", ".xyzn", ".xyzrgb", ".pts", ".csv") else ".txt")
        return raw
    if fmt == "off":
        from crosspoint._io.off import read_off

        return read_off(p)
    if fmt in ("obj", "stl", "glb", "gltf"):
        from crosspoint._io.others import read_trimesh

        return read_trimesh(p, fmt)
    if fmt in ("las", "laz"):
        from crosspoint._io.others import read_las

        return read_las(p, fmt)
    if fmt == "npy":
        from crosspoint._io.others import read_npy

        return read_npy(p, index)
    if fmt == "npz":
        from crosspoint._io.others import read_npz

        return read_npz(p, index)
    if fmt == "hdf5":
        from crosspoint._io.others import read_h5

        return read_h5(p, index)
    raise ReadError(p, f"no reader for format {fmt!r}")  # pragma: no cover


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


def _finish(p: Path, raw: Raw, max_points: int | None, mesh_samples: int | None, seed) -> PointCloud:
    if raw.points is None or len(raw.points) == 0:
        raise ReadError(p, "contains no points")
    raw.points = np.asarray(raw.points, np.float32).reshape(-1, 3)
    _fix_nonfinite_attrs(raw)
    meta = dict(raw.meta)
    mesh = None
    points, normals, colors, labels = raw.points, raw.normals, raw.colors, raw.labels
    if raw.is_mesh:
        _compact_mesh(p, raw)
        mesh = _to_mesh(raw)
        n = DEFAULT_MESH_SAMPLES if mesh_samples is None else int(mesh_samples)
        if max_points is not None:
            n = min(n, int(max_points))
        from crosspoint.geometry import _sample_mesh_surface

        try:
            points, normals, fi, bary = _sample_mesh_surface(mesh.vertices, mesh.faces, n, seed)
        except ValueError as e:
            raw.warnings.append(f"{e}; using the {mesh.n_vertices:,} vertices as points")
            points, normals, colors, labels = raw.points, raw.normals, raw.colors, raw.labels
            if mesh.n_faces == 0:  # every face used a non-finite vertex
                mesh = None
        else:
            tri = mesh.faces[fi]
            colors = None
            if raw.colors is not None:
                colors = np.einsum("nk,nkc->nc", bary, np.asarray(raw.colors, np.float32)[tri])
            labels = None
            if raw.face_labels is not None:
                labels = raw.face_labels[fi]
            elif raw.labels is not None:  # the label of the nearest corner
                labels = np.asarray(raw.labels)[tri[np.arange(len(fi)), bary.argmax(axis=1)]]
            meta["mesh_samples"] = n
            meta["sampling_seed"] = seed if isinstance(seed, int) else None
    else:
        good = np.isfinite(points).all(axis=1)
        if not good.all():
            n_bad = int((~good).sum())
            if n_bad == len(points):
                raise ReadError(p, f"all {n_bad:,} points have non-finite (NaN/inf) coordinates")
            points = points[good]
            normals = None if normals is None else normals[good]
            colors = None if colors is None else colors[good]
            labels = None if labels is None else np.asarray(labels)[good]
            raw.warnings.append(f"dropped {n_bad:,} non-finite points")
    if mesh is not None:
        meta["mesh_vertices"], meta["mesh_faces"] = mesh.n_vertices, mesh.n_faces
    else:
        meta["points_in_file"] = int(len(raw.points))
    if max_points is not None and len(points) > int(max_points):
        from crosspoint.geometry import random_subsample

        m = int(max_points)
        idx = random_subsample(points, m, seed)
        raw.warnings.append(f"subsampled {len(points):,} points to {m:,} (random, seed {seed})")
        points = points[idx]
        normals = None if normals is None else normals[idx]
        colors = None if colors is None else colors[idx]
        labels = None if labels is None else np.asarray(labels)[idx]
    try:
        return PointCloud(
            points=points,
            normals=normals,
            colors=colors,
            labels=labels,
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


def read_point_cloud(
    path,
    *,
    max_points: int | None = None,
    index: int | None = None,
    mesh_samples: int | None = None,
    seed: int = 0,
) -> PointCloud:
    """Read any supported file as a :class:`PointCloud` (see the module docstring).

    ``path``: a file, or ``"file.h5#12"`` for row 12 of an HDF5 (or batched NPY/NPZ) file.
    ``index``: the row, the same as the ``#N`` suffix (row 0 when neither is given; ``meta["rows"]``
    says how many there are, ``meta["index"]`` which was read). ``max_points``: at most this many
    points (random subsample with ``seed``; for a mesh, the number of surface samples).
    ``mesh_samples``: surface samples for a mesh (default ``DEFAULT_MESH_SAMPLES``). ``seed``: for
    mesh sampling and subsampling.

    Raises :class:`ReadError` for every problem with the file.
    """
    p, idx = split_index(path)
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
    p, idx = split_index(path)
    raw = _read_raw(p, idx)
    if not raw.is_mesh:
        raise ReadError(p, f"has no faces: it is a point cloud ({_NAMES.get(raw.fmt, raw.fmt)}), not a mesh")
    raw.points = np.asarray(raw.points, np.float32).reshape(-1, 3)
    _fix_nonfinite_attrs(raw)
    _compact_mesh(p, raw)
    return _to_mesh(raw)


# -- writing -----------------------------------------------------------------------------------


def write_point_cloud(path, cloud: PointCloud) -> Path:
    """Write ``cloud``'s points with normals, colours and labels to ``.ply``, ``.pcd`` or ``.npz``.

    PLY: binary little endian, ``x y z`` float, ``nx ny nz`` float, ``red green blue`` uchar,
    ``label`` int. PCD: v0.7 binary, ``x y z``, ``normal_x normal_y normal_z``, ``rgb`` (packed
    into a float, PCL style), ``label`` (uint32, int32 if negative). NPZ: ``points``, ``normals``,
    ``colors`` (float32 0..1), ``labels`` (int64), ``class_label`` and ``category`` when set.
    The file is written to a temporary name and renamed, so a failure never leaves half a file.
    Raises ``ValueError`` for an unsupported extension, ``OSError`` when the file cannot be written.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in WRITE_EXTENSIONS:
        what = repr(ext) if ext else "files without an extension"
        raise ValueError(f"{p}: cannot write {what}; use one of {', '.join(WRITE_EXTENSIONS)}")
    if not isinstance(cloud, PointCloud):
        cloud = PointCloud(np.asarray(cloud))
    from crosspoint.atomic import atomic_write

    def write(tmp: str) -> None:
        if ext == ".ply":
            from crosspoint._io.ply import write_ply

            write_ply(tmp, cloud)
        elif ext == ".pcd":
            from crosspoint._io.pcd import write_pcd

            write_pcd(tmp, cloud)
        else:
            arrays = {"points": cloud.points}
            if cloud.normals is not None:
                arrays["normals"] = cloud.normals
            if cloud.colors is not None:
                arrays["colors"] = cloud.colors
            if cloud.labels is not None:
                arrays["labels"] = cloud.labels
            if cloud.class_label is not None:
                arrays["class_label"] = np.array(int(cloud.class_label), np.int64)
            if cloud.category is not None:
                arrays["category"] = np.array(str(cloud.category))
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    atomic_write(p, write)
    return p
