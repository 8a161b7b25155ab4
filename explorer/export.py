"""Export's second label column: a prediction written beside the file's own labels.

:func:`crosspoint.io.write_point_cloud` writes one label column. Until it takes extra columns, the
export writes the cloud with it (the file's labels as ``label``) and then adds the prediction to
the file it wrote: NPZ gets ``pred_labels`` (and ``pred_uncertainty``) arrays; PLY (the binary
little-endian, vertex-only file that writer produces) gets ``pred_label`` (and
``pred_uncertainty``) vertex properties. The file is replaced atomically. Qt-free.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "<i2", "int16": "<i2",
              "ushort": "<u2", "uint16": "<u2", "int": "<i4", "int32": "<i4", "uint": "<u4", "uint32": "<u4",
              "float": "<f4", "float32": "<f4", "double": "<f8", "float64": "<f8"}


def _replace(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _add_npz(path: Path, columns: dict) -> None:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(columns)

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    _replace(path, write)


def _add_ply(path: Path, columns: dict) -> None:
    data = path.read_bytes()
    end = data.find(b"end_header\n")
    if end < 0:
        raise ValueError(f"{path}: no PLY header end")
    header = data[:end].decode("ascii").splitlines()
    body = data[end + len(b"end_header\n"):]
    if "format binary_little_endian 1.0" not in header:
        raise ValueError(f"{path}: not a binary little-endian PLY")
    elements = [ln for ln in header if ln.startswith("element ")]
    if len(elements) != 1 or not elements[0].startswith("element vertex "):
        raise ValueError(f"{path}: a PLY with other elements than its vertices")
    n = int(elements[0].split()[2])
    fields = []
    for ln in header:
        if ln.startswith("property "):
            parts = ln.split()
            if parts[1] == "list" or parts[1] not in _PLY_TYPES:
                raise ValueError(f"{path}: unexpected PLY property {ln!r}")
            fields.append((parts[2], _PLY_TYPES[parts[1]]))
    old = np.frombuffer(body, np.dtype(fields), count=n)
    new_fields = fields + [(name, "<i4" if np.issubdtype(v.dtype, np.integer) else "<f4") for name, v in columns.items()]
    arr = np.empty(n, np.dtype(new_fields))
    for name, _ in fields:
        arr[name] = old[name]
    for name, v in columns.items():
        arr[name] = v
    kinds = {"<i4": "int", "<f4": "float"}
    header = header + [f"property {kinds[t]} {name}" for name, t in new_fields[len(fields):]] + ["end_header"]

    def write(tmp):
        with open(tmp, "wb") as fh:
            fh.write(("\n".join(header) + "\n").encode("ascii"))
            fh.write(arr.tobytes())

    _replace(path, write)


def add_columns(path, prediction: np.ndarray, uncertainty: np.ndarray | None = None) -> str:
    """Add the prediction (and its per-point uncertainty) to the point file ``path`` just written with
    the file's labels. Returns a note for the user ("" when both columns are in the file)."""
    path = Path(path)
    ext = path.suffix.lower()
    pred = np.asarray(prediction).reshape(-1).astype(np.int64)
    if ext == ".npz":
        cols = {"pred_labels": pred}
        if uncertainty is not None:
            cols["pred_uncertainty"] = np.asarray(uncertainty, np.float32).reshape(-1)
        _add_npz(path, cols)
        return "labels: the file's; pred_labels: the prediction"
    if ext == ".ply":
        cols = {"pred_label": pred.astype(np.int32)}
        if uncertainty is not None:
            cols["pred_uncertainty"] = np.asarray(uncertainty, np.float32).reshape(-1)
        _add_ply(path, cols)
        return "label: the file's; pred_label: the prediction"
    return (f"{ext.lstrip('.').upper()} holds one label column: the file's labels were written; "
            "export PLY or NPZ to keep the prediction too")
