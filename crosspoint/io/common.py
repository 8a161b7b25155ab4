"""Shared pieces of the readers: the error type, the raw read result, and attribute and row helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class ReadError(ValueError):
    """A file could not be read as a point cloud or mesh.

    The message names the file and what is wrong (``"<path>: <reason>"``); ``path`` and
    ``reason`` hold the two parts.
    """

    def __init__(self, path, reason: str):
        self.path = None if path is None else str(path)
        self.reason = str(reason)
        super().__init__(f"{self.path}: {self.reason}" if self.path is not None else self.reason)


@dataclass
class Raw:
    """What a format reader found, before cleaning (non-finite points), mesh sampling and subsampling.

    When ``faces`` is given (``(F, 3)`` int64 triangles), ``points`` are the mesh vertices and
    ``normals`` / ``colors`` / ``labels`` are per vertex.
    """

    fmt: str
    points: np.ndarray | None = None
    normals: np.ndarray | None = None
    colors: np.ndarray | None = None
    labels: np.ndarray | None = None
    faces: np.ndarray | None = None
    face_labels: np.ndarray | None = None
    class_label: int | None = None
    category: str | None = None
    meta: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def is_mesh(self) -> bool:
        return self.faces is not None and len(self.faces) > 0


# -- colours ---------------------------------------------------------------------------------


def colors_to_unit(c: np.ndarray) -> np.ndarray:
    """Colours as float32 in ``[0, 1]`` from uint8 / uint16 / other ints / floats (0..1 or 0..255)."""
    c = np.asarray(c)
    if c.dtype == np.uint8:
        return c.astype(np.float32) / 255.0
    if c.dtype == np.uint16:
        hi = int(c.max()) if c.size else 0
        return c.astype(np.float32) / (255.0 if hi <= 255 else 65535.0)
    if np.issubdtype(c.dtype, np.integer):
        hi = int(c.max()) if c.size else 0
        return np.clip(c.astype(np.float32) / (255.0 if hi <= 255 else 65535.0), 0.0, 1.0)
    c = c.astype(np.float32)
    finite = c[np.isfinite(c)]
    hi = float(finite.max()) if finite.size else 0.0
    if hi > 1.0:
        c = c / (255.0 if hi <= 255.0 else 65535.0)
    return np.clip(np.nan_to_num(c, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """PCL-style packed colour (a float32 or uint32 holding ``0x00RRGGBB``) to ``(N, 3)`` float32 in [0, 1]."""
    p = np.ascontiguousarray(packed)
    if p.dtype.itemsize == 4 and p.dtype.kind == "f":
        u = p.view(np.uint32)
    elif p.dtype.kind == "f":  # a float64 holding an integer value
        u = np.nan_to_num(p).astype(np.uint64).astype(np.uint32)
    else:
        u = p.astype(np.uint32)
    rgb = np.stack([(u >> 16) & 255, (u >> 8) & 255, u & 255], axis=-1).astype(np.float32)
    return rgb / 255.0


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """``(N, 3)`` colours in [0, 1] to PCL packed uint32 ``0x00RRGGBB``."""
    c = np.clip(np.rint(np.asarray(colors, np.float32) * 255.0), 0, 255).astype(np.uint32)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


# -- labels ----------------------------------------------------------------------------------


def is_integral(a: np.ndarray) -> bool:
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.integer):
        return True
    if a.size == 0 or not np.isfinite(a).all():
        return False
    return bool(np.all(a == np.rint(a))) and float(np.abs(a).max()) < 2**53


def as_labels(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64)
    return np.rint(np.nan_to_num(a, nan=-1)).astype(np.int64)


# Names of per-point label fields, in order of preference (PLY, PCD, structured NPY).
LABEL_NAMES = (
    "label", "labels", "scalar_label", "class", "scalar_class", "classification", "scalar_classification",
    "part", "part_label", "segment", "seg", "segment_id", "semantic", "instance", "instance_id",
)


def from_named_fields(names, get) -> dict:
    """Pick points / normals / colours / labels out of named per-point fields (PLY, PCD, structured arrays).

    ``names``: field names; ``get(name)`` returns the ``(N,)`` column. Returns a dict with the
    arrays found (``points`` is required by the caller) and ``used`` (the names consumed).
    """
    lower = {}
    for n in names:
        lower.setdefault(n.lower(), n)
    out: dict = {"used": set()}

    def triple(*cands):
        for a, b, c in cands:
            if a in lower and b in lower and c in lower:
                out["used"].update((lower[a], lower[b], lower[c]))
                return np.stack([get(lower[a]), get(lower[b]), get(lower[c])], axis=1)
        return None

    out["points"] = triple(("x", "y", "z"))
    out["normals"] = triple(("nx", "ny", "nz"), ("normal_x", "normal_y", "normal_z"),
                            ("normalx", "normaly", "normalz"), ("n_x", "n_y", "n_z"))
    rgb = triple(("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue"))
    if rgb is not None:
        # keep the integer type of the columns for the 0..255 / 0..65535 decision
        out["colors"] = colors_to_unit(rgb)
    else:
        for packed in ("rgb", "rgba"):
            if packed in lower:
                out["colors"] = unpack_rgb(get(lower[packed]))
                out["used"].add(lower[packed])
                break
    for name in LABEL_NAMES:
        if name in lower:
            col = np.asarray(get(lower[name]))
            if is_integral(col):
                out["labels"] = as_labels(col)
                out["used"].add(lower[name])
                out["label_field"] = lower[name]
                break
    return out


# -- polygons ----------------------------------------------------------------------------------


def fan_triangulate(flat: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate polygons by fans.

    ``flat``: the vertex indices of all polygons one after another; ``lengths``: ``(P,)`` the
    number of vertices of each. Returns ``(triangles (T, 3) int64, polygon_of_triangle (T,))``;
    polygons with fewer than 3 vertices produce no triangle.
    """
    lengths = np.asarray(lengths, np.int64)
    flat = np.asarray(flat)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if lengths.size else np.zeros(0, np.int64)
    ntri = np.maximum(lengths - 2, 0)
    T = int(ntri.sum())
    poly = np.repeat(np.arange(lengths.size, dtype=np.int64), ntri)
    if T == 0:
        return np.zeros((0, 3), np.int64), poly
    first = np.concatenate([[0], np.cumsum(ntri)[:-1]])
    local = np.arange(T, dtype=np.int64) - np.repeat(first, ntri)  # 0 .. n-3 inside a polygon
    s = starts[poly]
    tri = np.stack([flat[s], flat[s + 1 + local], flat[s + 2 + local]], axis=1).astype(np.int64)
    return tri, poly


def fixed_fan(polys: np.ndarray) -> np.ndarray:
    """Fan triangulation of ``(P, L)`` polygons that all have ``L >= 3`` vertices."""
    polys = np.asarray(polys, np.int64)
    L = polys.shape[1]
    if L == 3:
        return polys
    parts = [np.stack([polys[:, 0], polys[:, i], polys[:, i + 1]], axis=1) for i in range(1, L - 1)]
    return np.stack(parts, axis=1).reshape(-1, 3)


def check_faces(path, faces: np.ndarray, n_vertices: int) -> None:
    if faces.size and (int(faces.min()) < 0 or int(faces.max()) >= n_vertices):
        bad = int(faces.max()) if int(faces.max()) >= n_vertices else int(faces.min())
        raise ReadError(path, f"a face refers to vertex {bad}, but there are only {n_vertices} vertices")


def check_row(path, index, rows: int, what: str) -> int:
    """The row to read of ``rows`` (``index`` None means row 0); a negative or too large index is a ReadError."""
    i = 0 if index is None else int(index)
    span = f"0..{rows - 1}" if rows else "none"
    if i < 0:
        raise ReadError(path, f"row {i} is negative: rows are numbered from 0 ({what} has {rows} rows: {span})")
    if i >= rows:
        raise ReadError(path, f"index {index} is out of range: {what} has {rows} rows ({span})")
    return i
