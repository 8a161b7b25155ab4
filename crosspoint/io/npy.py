"""NumPy files: NPY arrays and NPZ archives (reader and writer).

NPY: an ``(N, C)`` array (C >= 3; columns as for text files, see :mod:`crosspoint.io.text`), a
``(B, N, C)`` batch (pick a row with ``index``), or a structured array with named fields
(``x y z nx ny nz red green blue label`` ...). Arrays of Python objects are refused: loading them
would run pickle.

NPZ keys (the first present wins):

- points: ``points``, ``xyz``, ``pos``, ``data``, ``point_cloud``, ``pc`` (``(N, C)``, extra columns as
  for NPY, or ``(B, N, C)`` with ``index``)
- normals: ``normals``, ``normal``, ``norm``
- colours: ``colors``, ``colours``, ``color``, ``colour``, ``rgb`` (0..1 floats or 0..255)
- per-point labels: ``labels``, ``label``, ``part``, ``seg``, ``pid``, ``segment``, ``part_label``
  (only when it has one value per point; a single value is the class instead)
- class: ``class_label``, ``category``, ``cls``, ``class`` (an integer, or a string -> ``category``),
  ``category_name`` / ``class_name`` (a string)

:func:`write_npz` writes ``points``, ``normals``, ``colors``, ``labels``, ``class_label`` and
``category`` (absent attributes are left out).
"""

from __future__ import annotations

import numpy as np

from .common import ReadError, Raw, as_labels, check_row, colors_to_unit, from_named_fields, is_integral
from .text import interpret_columns

_PTS_KEYS = ("points", "xyz", "pos", "data", "point_cloud", "pc", "coords", "vertices")
_NRM_KEYS = ("normals", "normal", "norm")
_COL_KEYS = ("colors", "colours", "color", "colour", "rgb")
_LAB_KEYS = ("labels", "label", "part", "seg", "pid", "segment", "part_label", "seg_label")
_CLS_KEYS = ("class_label", "category", "cls", "class", "category_name", "class_name")


_OBJECTS = "holds Python objects ({}); refused for safety: loading it would run pickle, which can execute code"


def _pick_row(path, arr: np.ndarray, index, what: str) -> tuple[np.ndarray, int | None]:
    if arr.ndim == 3:
        i = check_row(path, index, int(arr.shape[0]), what)
        return np.asarray(arr[i]), i
    if index not in (None, 0):
        raise ReadError(path, f"index {index} given but {what} holds a single cloud")
    return np.asarray(arr), None


def _npy_dtype(path) -> np.dtype | None:
    """The dtype an NPY header declares, or None when the header does not parse (np.load says why)."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as fh:
            major, _minor = fmt.read_magic(fh)
            read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            return read_header(fh)[2]
    except Exception:
        return None


def _load_np(path, fmt: str):
    if fmt == "npy":
        dtype = _npy_dtype(path)
        if dtype is not None and dtype.hasobject:
            raise ReadError(path, _OBJECTS.format(f"dtype {dtype}"))
    try:
        return np.load(str(path), allow_pickle=False, mmap_mode="r" if fmt == "npy" else None)
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise ReadError(path, _OBJECTS.format("pickled data")) from None
        raise ReadError(path, f"cannot read as {fmt.upper()}: {e}") from None
    except Exception as e:
        raise ReadError(path, f"cannot read as {fmt.upper()}: {type(e).__name__}: {e}") from None


def read_npy(path, fmt=None, index=None) -> Raw:
    """An NPY array (row ``index`` of a batch)."""
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


def read_npz(path, fmt=None, index=None) -> Raw:
    """An NPZ archive (row ``index`` of batched arrays); keys as in the module docstring."""
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
                if "pickle" in str(e).lower():
                    raise ReadError(path, f"NPZ array {key!r} " + _OBJECTS.format("dtype object")) from None
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


def write_npz(path, cloud) -> None:
    """``points``, ``normals``, ``colors`` (float32 0..1), ``labels`` (int64), ``class_label``, ``category``."""
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
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
