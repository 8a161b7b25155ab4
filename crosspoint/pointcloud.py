"""The in-memory point cloud that every part of the project passes around.

Conventions (every public boundary): points are ``(N, 3)`` float32; normals ``(N, 3)`` float32;
colours ``(N, 3)`` float32 in ``[0, 1]``; per-point labels ``(N,)`` int64. A mesh, when the
source was one, is kept alongside the sampled points for rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np


@dataclass(eq=False)  # identity: array fields make field-wise == ambiguous
class Mesh:
    """A triangle mesh: vertices ``(V, 3)`` float32, faces ``(F, 3)`` int64 (0-based)."""

    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray | None = None  # (V, 3) float32 in [0, 1]
    vertex_normals: np.ndarray | None = None  # (V, 3) float32

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32).reshape(-1, 3)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int64).reshape(-1, 3)
        if self.vertex_colors is not None:
            self.vertex_colors = np.ascontiguousarray(self.vertex_colors, dtype=np.float32).reshape(-1, 3)
        if self.vertex_normals is not None:
            self.vertex_normals = np.ascontiguousarray(self.vertex_normals, dtype=np.float32).reshape(-1, 3)

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])


def to_y_up(points: np.ndarray, up_axis: int) -> np.ndarray:
    """``(N, 3)`` points whose up axis is ``up_axis`` (1: +Y, 2: +Z), turned +Y up: for +Z up, a
    rotation of -90 degrees about X, ``(x, y, z) -> (x, z, -y)`` (a proper rotation: handedness and
    distances kept). +Y up is returned as it is (the same array)."""
    if int(up_axis) == 1:
        return points
    if int(up_axis) != 2:
        raise ValueError(f"up_axis must be 1 (+Y) or 2 (+Z), got {up_axis!r}")
    p = np.asarray(points)
    return np.ascontiguousarray(np.stack([p[:, 0], p[:, 2], -p[:, 1]], axis=1), dtype=p.dtype)


def y_up_matrix(up_axis: int) -> np.ndarray:
    """The 3x3 rotation :func:`to_y_up` applies (``p_model = M @ p``)."""
    return to_y_up(np.eye(3), up_axis).T.astype(np.float64)


def _rotated(x: np.ndarray | None, r: np.ndarray | None) -> np.ndarray | None:
    """``x @ r.T`` in ``x``'s dtype; for an axis-aligned ``r`` (entries 0 and +-1) a signed copy of
    columns, exact. ``None`` passes through; ``r`` None is the identity (``x`` itself)."""
    if x is None or r is None:
        return x
    r = np.asarray(r, np.float64)
    if np.array_equal(r, np.eye(3)):
        return x
    if np.all(np.isin(r, (-1.0, 0.0, 1.0))):
        cols = [np.argmax(np.abs(r[i])) for i in range(3)]
        return np.ascontiguousarray(np.stack([x[:, c] * (1 if r[i, c] > 0 else -1) for i, c in enumerate(cols)], 1),
                                    dtype=x.dtype)
    return np.ascontiguousarray(x.astype(np.float64) @ r.T, dtype=x.dtype)


def check_rotation(r) -> np.ndarray | None:
    """``r`` as a 3x3 float64 proper rotation (orthonormal, determinant +1), or None for None.
    Raises ValueError for anything else (a reflection would mirror the object for the model)."""
    if r is None:
        return None
    r = np.asarray(r, np.float64)
    if r.shape != (3, 3) or not np.all(np.isfinite(r)) or not np.allclose(r @ r.T, np.eye(3), atol=1e-6) \
            or np.linalg.det(r) < 0:
        raise ValueError(f"a rotation must be a 3x3 orthonormal matrix with determinant +1, got {r.tolist()}")
    return r


def from_y_up(points: np.ndarray, up_axis: int) -> np.ndarray:
    """The inverse of :func:`to_y_up`: points in the model's +Y-up frame back to the cloud's own."""
    if int(up_axis) == 1:
        return points
    if int(up_axis) != 2:
        raise ValueError(f"up_axis must be 1 (+Y) or 2 (+Z), got {up_axis!r}")
    p = np.asarray(points)
    return np.ascontiguousarray(np.stack([p[:, 0], -p[:, 2], p[:, 1]], axis=1), dtype=p.dtype)


@dataclass(eq=False)  # identity: array fields make field-wise == ambiguous
class PointCloud:
    """Points with optional per-point attributes, the source mesh, and where they came from.

    ``warnings`` carries what a reader fixed silently (dropped non-finite points, subsampling),
    so that the CLI and the GUI can show it. ``class_label`` is the object's class when the
    source file says (the ``label`` of a ModelNet40/ShapeNetPart HDF5 row); ``category`` is its
    name where known.
    """

    points: np.ndarray
    normals: np.ndarray | None = None
    colors: np.ndarray | None = None
    labels: np.ndarray | None = None
    mesh: Mesh | None = None
    source_format: str = "memory"
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    class_label: int | None = None
    category: str | None = None
    meta: dict = field(default_factory=dict)
    #: the axis pointing up in ``points``: 1 (+Y, ShapeNet's and the model's convention) or 2 (+Z,
    #: ModelNet's OFF files, LAS scans). :meth:`model_points` turns the cloud +Y up for the model.
    up_axis: int = 1
    #: a rotation applied after the up axis (``p_model = rotation @ to_y_up(p)``), for an object that
    #: is not upright in any axis-aligned convention: what :func:`crosspoint.analysis.check_orientation`
    #: offers. None: no further turn. ``points`` stay as the file has them.
    rotation: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.rotation = check_rotation(self.rotation)
        self.points = np.ascontiguousarray(self.points, dtype=np.float32).reshape(-1, 3)
        n = self.points.shape[0]
        if self.normals is not None:
            self.normals = np.ascontiguousarray(self.normals, dtype=np.float32).reshape(-1, 3)
            if self.normals.shape[0] != n:
                raise ValueError(f"normals have {self.normals.shape[0]} rows, points have {n}")
        if self.colors is not None:
            self.colors = np.ascontiguousarray(self.colors, dtype=np.float32).reshape(-1, 3)
            if self.colors.shape[0] != n:
                raise ValueError(f"colours have {self.colors.shape[0]} rows, points have {n}")
        if self.labels is not None:
            self.labels = np.ascontiguousarray(self.labels, dtype=np.int64).reshape(-1)
            if self.labels.shape[0] != n:
                raise ValueError(f"labels have {self.labels.shape[0]} rows, points have {n}")
        if self.path is not None:
            self.path = Path(self.path)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

    @property
    def name(self) -> str:
        if self.path is None:
            return self.meta.get("name", "(memory)")
        idx = self.meta.get("index")
        return f"{self.path.name}#{idx}" if idx is not None else self.path.name

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n_points == 0:
            z = np.zeros(3, np.float32)
            return z, z
        return self.points.min(axis=0), self.points.max(axis=0)

    def model_matrix(self) -> np.ndarray:
        """The 3x3 rotation from the cloud's own frame to the model's (``p_model = M @ p``): the up
        axis turned +Y, then :attr:`rotation`."""
        m = y_up_matrix(self.up_axis)
        return m if self.rotation is None else self.rotation @ m

    def _to_model(self, x: np.ndarray | None) -> np.ndarray | None:
        return None if x is None else _rotated(to_y_up(x, self.up_axis), self.rotation)

    def model_points(self) -> np.ndarray:
        """``points`` turned +Y up (:func:`to_y_up`, then :attr:`rotation`), the orientation
        CrossPoint was trained in (ShapeNet's): what the analyses give the model."""
        return self._to_model(self.points)

    def in_model_frame(self) -> "PointCloud":
        """This cloud turned as the model sees it as a whole (points, normals, mesh): what the model
        and the 2D views see; ``self`` when it already is. Point order and attributes are kept."""
        if int(self.up_axis) == 1 and (self.rotation is None or np.array_equal(self.rotation, np.eye(3))):
            return self
        mesh = self.mesh
        if mesh is not None:
            mesh = replace(mesh, vertices=self._to_model(mesh.vertices),
                           vertex_normals=self._to_model(mesh.vertex_normals))
        return replace(self, points=self.model_points(), normals=self._to_model(self.normals), mesh=mesh,
                       up_axis=1, rotation=None)

    def select(self, index: np.ndarray) -> "PointCloud":
        """A new cloud with the points (and their attributes) at ``index``; mesh and metadata kept."""
        index = np.asarray(index)
        return replace(
            self,
            points=self.points[index],
            normals=None if self.normals is None else self.normals[index],
            colors=None if self.colors is None else self.colors[index],
            labels=None if self.labels is None else self.labels[index],
            warnings=list(self.warnings),
            meta=dict(self.meta),
        )

    def summary(self) -> str:
        """One line: format, points, faces, bounds, and which attributes are present."""
        lo, hi = self.bounds()
        parts = [
            f"{self.source_format}",
            f"{self.n_points:,} point{'' if self.n_points == 1 else 's'}",
        ]
        if self.mesh is not None:
            parts.append(f"{self.mesh.n_faces:,} faces")
        parts.append(
            "bounds [" + ", ".join(f"{a:.3g}" for a in lo) + "] .. [" + ", ".join(f"{b:.3g}" for b in hi) + "]"
        )
        parts.append("normals" if self.normals is not None else "no normals")
        parts.append("colours" if self.colors is not None else "no colours")
        if self.labels is not None:
            n_lab = int(np.unique(self.labels).size)
            parts.append(f"labels ({n_lab} distinct)")
        else:
            parts.append("no labels")
        if self.class_label is not None:
            parts.append(f"class {self.category or self.class_label}")
        if self.meta.get("rows") is not None and self.meta.get("index") is not None:
            parts.append(f"row {self.meta['index']} of {self.meta['rows']:,}")
        if self.warnings:
            parts.append(f"{len(self.warnings)} warning(s)")
        return ", ".join(parts)
