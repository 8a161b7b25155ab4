"""HDF5 point-cloud batches: the ModelNet40 ``ply_data_*.h5`` and ShapeNetPart ``*.h5`` layouts.

``data`` ``(B, N, 3+)`` (columns as for text files), ``label`` ``(B, 1)`` -> ``class_label``,
``pid`` ``(B, N)`` -> per-point labels, optional ``normal`` ``(B, N, 3)``. One row is read per
call (``index``, row 0 by default). Class names come from ``shape_names.txt`` (one name per line,
ModelNet40) or ``all_object_categories.txt`` (first column, ShapeNetPart) beside the file.
"""

from __future__ import annotations

import numpy as np

from .common import ReadError, Raw, as_labels, check_row, is_integral
from .text import interpret_columns


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


def read_h5(path, fmt=None, index=None) -> Raw:
    """Row ``index`` (default 0) of an HDF5 file's ``data`` with its labels and normals."""
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
        i = check_row(path, index, rows, "the file")
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
