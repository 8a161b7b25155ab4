"""Readers built on libraries: OBJ / STL / GLB / GLTF (trimesh), LAS / LAZ (laspy), NPY / NPZ, HDF5 (h5py).

NPY: an ``(N, C)`` array (C >= 3; columns as for text files, see :mod:`crosspoint._io.text`), a
``(B, N, C)`` batch (pick a row with ``index``), or a structured array with named fields
(``x y z nx ny nz red green blue label`` ...).

NPZ keys (the first present wins):

- points: ``points``, ``xyz``, ``pos``, ``data``, ``point_cloud``, ``pc`` (``(N, C)``, extra columns as
  for NPY, or ``(B, N, C)`` with ``index``)
- normals: ``normals``, ``normal``, ``norm``
- colours: ``colors``, ``colours``, ``color``, ``colour``, ``rgb`` (0..1 floats or 0..255)
- per-point labels: ``labels``, ``label``, ``part``, ``seg``, ``pid``, ``segment``, ``part_label``
  (only when it has one value per point; a single value is the class instead)
- class: ``class_label``, ``category``, ``cls``, ``class`` (an integer, or a string -> ``category``),
  ``category_name`` / ``class_name`` (a string)

HDF5 (the ModelNet40 ``ply_data_*.h5`` and ShapeNetPart ``*.h5`` layouts): ``data`` ``(B, N, 3+)``,
``label`` ``(B, 1)`` -> ``class_label``, ``pid`` ``(B, N)`` -> labels, optional ``normal``
``(B, N, 3)``. Only the requested row is read. Class names come from ``shape_names.txt`` (one name
per line, ModelNet40) or ``all_object_categories.txt`` (first column, ShapeNetPart) beside the file.
"""

from __future__ import annotations

import numpy as np

from .common import ReadError, Raw, as_labels, colors_to_unit, from_named_fields, is_integral
from .text import interpret_columns

# -- trimesh -----------------------------------------------------------------------------------


def read_trimesh(path, fmt: str) -> Raw:
    import trimesh

    file_type = {"obj": "obj", "stl": "stl", "glb": "glb", "gltf": "gltf"}[fmt]
    kwargs = {"process": False}
    if fmt == "obj":
        kwargs["skip_materials"] = True  # never touch .mtl / textures: geometry only
    try:
        with open(path, "rb") as fh:
            if fmt == "gltf":
                # external buffers resolve from the file's folder only (no network resolver)
                from trimesh.resolvers import FilePathResolver

                kwargs["resolver"] = FilePathResolver(str(path))
            loaded = trimesh.load(fh, file_type=file_type, **kwargs)
    except ReadError:
        raise
    except Exception as e:  # trimesh raises anything from ValueError to KeyError on bad input
        raise ReadError(path, f"cannot read as {fmt.upper()}: {type(e).__name__}: {e}") from None
    geoms = []
    if isinstance(loaded, trimesh.Scene):
        try:
            geoms = list(loaded.dump(concatenate=False)) if loaded.geometry else []
        except Exception as e:
            raise ReadError(path, f"cannot assemble the {fmt.upper()} scene: {type(e).__name__}: {e}") from None
    else:
        geoms = [loaded]
    meshes = [g for g in geoms if isinstance(g, trimesh.Trimesh) and len(g.vertices)]
    clouds = [g for g in geoms if isinstance(g, trimesh.PointCloud) and len(g.vertices)]
    raw = Raw(fmt=fmt)
    with_faces = [m for m in meshes if len(m.faces)]
    if with_faces:
        verts, faces, cols = [], [], []
        base = 0
        any_col = False
        for m in with_faces:
            v = np.asarray(m.vertices, np.float64)
            verts.append(v)
            faces.append(np.asarray(m.faces, np.int64) + base)
            base += v.shape[0]
            c = None
            try:
                if m.visual is not None and m.visual.kind in ("vertex", "face"):
                    c = np.asarray(m.visual.vertex_colors)[:, :3]
                    any_col = True
            except Exception:
                c = None
            cols.append(c)
        raw.points = np.concatenate(verts).astype(np.float32)
        raw.faces = np.concatenate(faces)
        if any_col:
            raw.colors = np.concatenate(
                [colors_to_unit(c) if c is not None else np.full((v.shape[0], 3), 0.7, np.float32)
                 for c, v in zip(cols, verts)]
            )
        if len(geoms) > 1:
            raw.meta["parts"] = len(with_faces)
    elif meshes or clouds:  # vertices only: a point cloud
        pts = [np.asarray(g.vertices, np.float64) for g in meshes + clouds]
        raw.points = np.concatenate(pts).astype(np.float32)
        cols = []
        for g in clouds:
            c = getattr(g, "colors", None)
            if c is not None and len(c) == len(g.vertices):
                cols.append(np.asarray(c)[:, :3])
        if cols and len(clouds) == len(meshes + clouds) and sum(len(c) for c in cols) == len(raw.points):
            raw.colors = colors_to_unit(np.concatenate(cols))
    else:
        raise ReadError(path, f"no vertices found in this {fmt.upper()} file")
    if raw.faces is not None:
        raw.faces = raw.faces.reshape(-1, 3)
    return raw


# -- LAS / LAZ ---------------------------------------------------------------------------------


def _check_las_header(path, fmt: str) -> None:
    """Sanity-check the LAS public header before laspy sees it.

    laspy trusts the counts in the header: a corrupt VLR count makes it loop for billions of
    iterations, a corrupt point count makes it allocate gigabytes. Both are checked against
    the file size here.
    """
    import struct

    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(375)
    if len(head) < 227 or head[:4] != b"LASF":
        raise ReadError(path, f"not a valid {fmt.upper()} file (header too short or no 'LASF' signature)")
    major, minor = head[24], head[25]
    header_size, point_offset, n_vlrs = struct.unpack_from("<HII", head, 94)
    point_format = head[104] & 0x3F
    compressed = bool(head[104] & 0xC0)
    record_len = struct.unpack_from("<H", head, 105)[0]
    count = struct.unpack_from("<I", head, 107)[0]
    if major != 1 or minor > 4:
        raise ReadError(path, f"unsupported LAS version {major}.{minor}")
    if header_size < 227 or header_size > size or point_offset > size or point_offset < header_size:
        raise ReadError(path, "LAS header sizes/offsets are inconsistent with the file (corrupt or truncated)")
    if n_vlrs * 54 > point_offset - header_size:
        raise ReadError(path, f"LAS header says {n_vlrs:,} VLRs, more than fit before the point data (corrupt)")
    if minor >= 4 and len(head) >= 255:
        first_evlr, n_evlrs, count14 = struct.unpack_from("<QIQ", head, 235)
        if n_evlrs and (first_evlr > size or n_evlrs * 60 > size - first_evlr):
            raise ReadError(path, f"LAS header says {n_evlrs:,} extended VLRs that do not fit in the file (corrupt)")
        count = max(count, count14)
    if point_format > 10 or record_len == 0:
        raise ReadError(path, f"LAS point format {point_format} / record length {record_len} is invalid (corrupt)")
    need = count * record_len
    if not compressed and point_offset + need > size:
        raise ReadError(
            path, f"LAS header says {count:,} points ({need:,} bytes) but only {size - point_offset:,} bytes "
            f"of point data follow (truncated)"
        )
    if compressed and need > 200 * size:
        raise ReadError(path, f"LAZ header says {count:,} points, far more than a {size:,}-byte file can hold; corrupt")
    if compressed:
        # the LAZ chunk table: lazrs allocates 'number of chunks' entries up front (a Rust abort when huge)
        with open(path, "rb") as fh:
            fh.seek(point_offset)
            raw_off = fh.read(8)
            if len(raw_off) < 8:
                raise ReadError(path, "LAZ file ends before its point data (truncated)")
            table = struct.unpack("<q", raw_off)[0]
            if table == -1 and size >= 8:  # written at the end of the file instead
                fh.seek(size - 8)
                table = struct.unpack("<q", fh.read(8))[0]
            if table != -1:
                if table < point_offset + 8 or table + 8 > size:
                    raise ReadError(path, "LAZ chunk table offset points outside the file (corrupt or truncated)")
                fh.seek(table)
                _version, n_chunks = struct.unpack("<II", fh.read(8))
                if n_chunks > max(size - point_offset, 1) or n_chunks > count + 1:
                    raise ReadError(path, f"LAZ chunk table claims {n_chunks:,} chunks (corrupt)")


def read_las(path, fmt: str) -> Raw:
    try:
        import laspy
    except ImportError:  # pragma: no cover
        raise ReadError(path, "reading LAS/LAZ needs the 'laspy' package") from None
    _check_las_header(path, fmt)
    try:
        las = laspy.read(str(path))
        xyz = np.stack([np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)], axis=1)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # lazrs reports corrupt data as a Rust panic (a BaseException)
        msg = str(e)
        if "lazrs" in msg.lower() or "laszip" in msg.lower() or "backend" in msg.lower():
            msg = f"LAZ decompression is not available ({msg}); install laspy[lazrs]"
        raise ReadError(path, f"cannot read as {fmt.upper()}: {type(e).__name__}: {msg}") from None
    compressed = bool(getattr(las.header, "are_points_compressed", False))
    raw = Raw(fmt="laz" if compressed else "las")
    n = xyz.shape[0]
    if n == 0:
        raise ReadError(path, "LAS file has 0 points")
    raw.meta["point_format"] = int(las.header.point_format.id)
    raw.meta["version"] = str(las.header.version)
    finite = xyz[np.isfinite(xyz).all(axis=1)]
    if finite.size:
        lo = finite.min(axis=0)
        span = float(np.abs(finite).max())
        scale = float(min(las.header.scales)) if len(las.header.scales) else 0.001
        # float32 keeps ~24 bits: shift far-away (georeferenced) clouds so no precision is lost
        if span * 2.0**-23 > scale / 2.0:
            origin = np.floor(lo)
            xyz = xyz - origin
            raw.meta["origin"] = [float(o) for o in origin]
            raw.warnings.append(
                "coordinates shifted by (" + ", ".join(f"{o:.0f}" for o in origin) + ") to keep float32 precision"
            )
    raw.points = xyz.astype(np.float32)
    dims = set(las.point_format.dimension_names)
    if {"red", "green", "blue"} <= dims:
        rgb = np.stack([np.asarray(las.red), np.asarray(las.green), np.asarray(las.blue)], axis=1)
        if rgb.any():
            raw.colors = colors_to_unit(rgb.astype(np.uint16))
    if "classification" in dims:
        raw.labels = np.asarray(las.classification).astype(np.int64)
    return raw


# -- NPY / NPZ ---------------------------------------------------------------------------------

_PTS_KEYS = ("points", "xyz", "pos", "data", "point_cloud", "pc", "coords", "vertices")
_NRM_KEYS = ("normals", "normal", "norm")
_COL_KEYS = ("colors", "colours", "color", "colour", "rgb")
_LAB_KEYS = ("labels", "label", "part", "seg", "pid", "segment", "part_label", "seg_label")
_CLS_KEYS = ("class_label", "category", "cls", "class", "category_name", "class_name")


def _pick_row(path, arr: np.ndarray, index, what: str) -> tuple[np.ndarray, int | None]:
    if arr.ndim == 3:
        b = arr.shape[0]
        i = 0 if index is None else int(index)
        if i < 0:
            i += b
        if not 0 <= i < b:
            raise ReadError(path, f"index {index} is out of range: {what} has {b} rows (0..{b - 1})")
        return np.asarray(arr[i]), i
    if index not in (None, 0):
        raise ReadError(path, f"index {index} given but {what} holds a single cloud")
    return np.asarray(arr), None


def _load_np(path, fmt: str):
    try:
        return np.load(str(path), allow_pickle=False, mmap_mode="r" if fmt == "npy" else None)
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise ReadError(path, "contains Python objects (pickled); only plain numeric arrays are read") from None
        raise ReadError(path, f"cannot read as {fmt.upper()}: {e}") from None
    except Exception as e:
        raise ReadError(path, f"cannot read as {fmt.upper()}: {type(e).__name__}: {e}") from None


def read_npy(path, index=None) -> Raw:
    arr = _load_np(path, "npy")
    raw = Raw(fmt="npy")
    try:
        if arr.dtype.names:
            a, i = _pick_row(path, arr, index, "the array")
            found = from_named_fields(list(a.dtype.names), lambda n: np.asarray(a[n]).reshape(-1))
            if found["points"] is None:
                raise ReadError(path, f"structured array has no x y z fields ({', '.join(a.dtype.names)})")
            raw.points = found["points"]
            raw.normals, raw.colors, raw.labels = found.get("normals"), found.get("colors"), found.get("labels")
        else:
            if arr.dtype.kind not in "fiu" or arr.ndim not in (2, 3):
                raise ReadError(path, f"expected an (N, 3+) or (B, N, 3+) numeric array, got {arr.dtype} {arr.shape}")
            if arr.ndim == 3:
                raw.meta["rows"] = int(arr.shape[0])
            a, i = _pick_row(path, arr, index, "the array")
            interpret_columns(path, np.asarray(a, np.float32), ".npy", raw)
    finally:
        del arr
    if i is not None:
        raw.meta["index"] = i
    return raw


def _first(npz, keys):
    for k in keys:
        if k in npz.files:
            return k
    lower = {f.lower(): f for f in npz.files}
    for k in keys:
        if k in lower:
            return lower[k]
    return None


def read_npz(path, index=None) -> Raw:
    npz = _load_np(path, "npz")
    raw = Raw(fmt="npz")
    try:
        files = list(npz.files)
        pk = _first(npz, _PTS_KEYS)
        if pk is None:
            raise ReadError(
                path, f"NPZ has no points array (looked for {', '.join(_PTS_KEYS)}; keys: {', '.join(files) or 'none'})"
            )

        def get(key):
            try:
                return npz[key]
            except ValueError as e:
                raise ReadError(path, f"NPZ array {key!r} cannot be loaded: {e}") from None

        pts = get(pk)
        if pts.dtype.kind not in "fiu" or pts.ndim not in (2, 3) or pts.shape[-1] < 3:
            raise ReadError(path, f"NPZ array {pk!r} should be (N, 3+) numbers, got {pts.dtype} {pts.shape}")
        if pts.ndim == 3:
            raw.meta["rows"] = int(pts.shape[0])
        a, i = _pick_row(path, pts, index, f"NPZ array {pk!r}")
        if i is not None:
            raw.meta["index"] = i
        interpret_columns(path, np.asarray(a, np.float32), ".npz", raw)
        n = raw.points.shape[0]

        def per_point(key, ndim):
            v = np.asarray(get(key))
            if pts.ndim == 3 and v.ndim == ndim + 1 and v.shape[0] == pts.shape[0]:
                v = v[i]
            return v

        k = _first(npz, _NRM_KEYS)
        if k is not None:
            v = per_point(k, 2)
            if v.ndim == 2 and v.shape == (n, 3):
                raw.normals = v.astype(np.float32)
            else:
                raw.warnings.append(f"NPZ array {k!r} has shape {v.shape}, not ({n}, 3); ignored")
        k = _first(npz, _COL_KEYS)
        if k is not None:
            v = per_point(k, 2)
            if v.ndim == 2 and v.shape[0] == n and v.shape[1] in (3, 4):
                raw.colors = colors_to_unit(v[:, :3])
            else:
                raw.warnings.append(f"NPZ array {k!r} has shape {v.shape}, not ({n}, 3); ignored")
        k = _first(npz, _LAB_KEYS)
        if k is not None:
            v = per_point(k, 1)
            if v.size == n and v.size > 1 and is_integral(v):
                raw.labels = as_labels(v.reshape(-1))
            elif v.size == 1 and is_integral(v):
                raw.class_label = int(as_labels(v.reshape(-1))[0])
            elif pts.ndim == 3 and v.shape[:1] == pts.shape[:1] and v.size == pts.shape[0]:
                raw.class_label = int(as_labels(v.reshape(-1))[i])
            else:
                raw.warnings.append(f"NPZ array {k!r} has shape {v.shape}; not per-point labels; ignored")
        for k in _CLS_KEYS:
            kk = _first(npz, (k,))
            if kk is None:
                continue
            v = np.asarray(get(kk))
            if v.dtype.kind in "US":
                raw.category = str(v.reshape(-1)[0]) if v.size else None
            elif v.size == 1 and is_integral(v):
                raw.class_label = int(as_labels(v.reshape(-1))[0])
            elif pts.ndim == 3 and v.size == pts.shape[0] and is_integral(v):
                raw.class_label = int(as_labels(v.reshape(-1))[i])
        raw.meta["keys"] = files
    finally:
        npz.close()
    return raw


# -- HDF5 --------------------------------------------------------------------------------------


def _class_names(path) -> list[str] | None:
    d = path.parent
    f = d / "shape_names.txt"
    try:
        if f.is_file():
            return [ln.strip() for ln in f.read_text(errors="replace").splitlines() if ln.strip()]
        f = d / "all_object_categories.txt"
        if f.is_file():
            return [ln.split()[0] for ln in f.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return None
    return None


def read_h5(path, index=None) -> Raw:
    try:
        import h5py
    except ImportError:  # pragma: no cover
        raise ReadError(path, "reading HDF5 needs the 'h5py' package") from None
    try:
        fh = h5py.File(str(path), "r")
    except Exception as e:
        raise ReadError(path, f"cannot open as HDF5: {e}") from None
    raw = Raw(fmt="hdf5")
    try:
        keys = list(fh.keys())
        if "data" not in fh or not isinstance(fh["data"], h5py.Dataset):
            raise ReadError(path, f"HDF5 file has no 'data' dataset (keys: {', '.join(keys) or 'none'})")
        ds = fh["data"]
        if ds.dtype.kind not in "fiu" or ds.ndim not in (2, 3) or ds.shape[-1] < 3:
            raise ReadError(path, f"HDF5 'data' should be (B, N, 3+) numbers, got {ds.dtype} {ds.shape}")
        rows = int(ds.shape[0]) if ds.ndim == 3 else 1
        i = 0 if index is None else int(index)
        if i < 0:
            i += rows
        if not 0 <= i < rows:
            raise ReadError(path, f"index {index} is out of range: the file has {rows} rows (0..{rows - 1})")
        try:
            pts = ds[i] if ds.ndim == 3 else ds[()]
        except Exception as e:
            raise ReadError(path, f"cannot read row {i} of 'data': {e}") from None
        interpret_columns(path, np.asarray(pts, np.float32), ".h5", raw)
        n = raw.points.shape[0]
        raw.meta["rows"] = rows
        raw.meta["index"] = i
        raw.meta["keys"] = keys

        def row_of(name):
            d = fh[name]
            if not isinstance(d, h5py.Dataset):
                return None
            if ds.ndim == 3:
                if d.shape[:1] != (rows,):
                    return None
                return np.asarray(d[i])
            return np.asarray(d[()])

        if "normal" in fh or "normals" in fh:
            v = row_of("normal" if "normal" in fh else "normals")
            if v is not None and v.shape == (n, 3):
                raw.normals = v.astype(np.float32)
        for name in ("pid", "seg", "part"):
            if name in fh:
                v = row_of(name)
                if v is not None and v.size == n and is_integral(v):
                    raw.labels = as_labels(v.reshape(-1))
                    break
        if "label" in fh:
            v = row_of("label")
            if v is not None and v.size == 1 and is_integral(v):
                raw.class_label = int(as_labels(v.reshape(-1))[0])
            elif v is not None and v.size == n and raw.labels is None and is_integral(v):
                raw.labels = as_labels(v.reshape(-1))
        if raw.class_label is not None:
            names = _class_names(path)
            if names and 0 <= raw.class_label < len(names):
                raw.category = names[raw.class_label]
    except ReadError:
        raise
    except Exception as e:
        raise ReadError(path, f"cannot read HDF5 contents: {type(e).__name__}: {e}") from None
    finally:
        fh.close()
    return raw
