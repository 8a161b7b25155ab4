"""Numpy-only geometry helpers: surface sampling, normalisation, subsampling, neighbours, normals.

Everything here takes and returns numpy arrays (no torch), ``(N, 3)`` float32 points, and is
deterministic for a given ``seed`` (an ``int`` or a :class:`numpy.random.Generator`).

- :func:`sample_mesh_surface` -- area-weighted uniform samples on a triangle mesh.
- :func:`normalize_unit_sphere` -- centre on the centroid, scale into the unit sphere.
- :func:`farthest_point_sample` -- FPS indices (``fpsample``'s bucket/QuickFPS for large clouds).
- :func:`random_subsample` -- sorted random indices without replacement.
- :func:`knn` -- k nearest neighbours with :class:`scipy.spatial.cKDTree`.
- :func:`estimate_normals` -- PCA normals from the k nearest neighbours.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "sample_mesh_surface",
    "sample_mesh_barycentric",
    "face_normals",
    "normalize_unit_sphere",
    "farthest_point_sample",
    "random_subsample",
    "knn",
    "estimate_normals",
]


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _as_points(points, name: str = "points") -> np.ndarray:
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"{name} must be (N, 3), got shape {pts.shape}")
    return pts[:, :3]


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals ``(F, 3)`` float32 and areas ``(F,)`` float64 of triangles (zero normal if degenerate)."""
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    norm = np.linalg.norm(cross, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.where(norm[:, None] > 0, cross / np.where(norm > 0, norm, 1.0)[:, None], 0.0)
    return n.astype(np.float32), 0.5 * norm


def sample_mesh_barycentric(vertices, faces, n: int, *, seed=0):
    """:func:`sample_mesh_surface` plus where each sample lies in its triangle.

    Returns ``(points (n, 3) float32, normals (n, 3) float32, face_index (n,) int64,
    barycentric (n, 3) float32)``: sample ``i`` is ``barycentric[i] @ vertices[faces[face_index[i]]]``,
    so per-vertex attributes interpolate with the same weights.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must be (V, 3), got shape {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3) triangles, got shape {f.shape}")
    n = int(n)
    if n < 0:
        raise ValueError(f"number of samples must be >= 0, got {n}")
    if f.shape[0] == 0:
        raise ValueError("the mesh has no faces to sample")
    f = f.astype(np.int64, copy=False)
    if f.min() < 0 or f.max() >= v.shape[0]:
        raise ValueError(f"face indices out of range for {v.shape[0]} vertices")
    nrm, area = face_normals(v, f)
    area = np.where(np.isfinite(area), area, 0.0)
    total = float(area.sum())
    if not total > 0 or not np.isfinite(total):
        raise ValueError("the mesh has zero surface area (every face is degenerate)")
    rng = _rng(seed)
    cdf = np.cumsum(area)
    cdf /= cdf[-1]
    fi = np.searchsorted(cdf, rng.random(n), side="right")
    np.minimum(fi, f.shape[0] - 1, out=fi)
    # a zero-area face can only be hit when its cdf step is empty -- searchsorted(side=right) skips them
    uv = rng.random((n, 2))
    flip = uv.sum(axis=1) > 1.0
    uv[flip] = 1.0 - uv[flip]
    bary = np.empty((n, 3), np.float64)
    bary[:, 1:] = uv
    bary[:, 0] = 1.0 - uv.sum(axis=1)
    tri = v[f[fi]]  # (n, 3, 3)
    pts = np.einsum("nk,nkd->nd", bary, tri)
    return pts.astype(np.float32), nrm[fi], fi.astype(np.int64), bary.astype(np.float32)


def sample_mesh_surface(vertices, faces, n: int, *, seed=0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` points uniformly on the surface of a triangle mesh (area-weighted).

    Returns ``(points (n, 3) float32, normals (n, 3) float32, face_index (n,) int64)``; the normal
    of a sample is its face's unit normal. Degenerate (zero-area) faces are never picked; a mesh
    whose total area is zero, or that has no faces, raises :class:`ValueError`. Deterministic
    for a given ``seed``.
    """
    pts, nrm, fi, _ = sample_mesh_barycentric(vertices, faces, n, seed=seed)
    return pts, nrm, fi


def normalize_unit_sphere(points) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre on the centroid and scale so the farthest point is at distance 1 (PointNet style).

    Returns ``(normalized (N, 3) float32, center (3,) float32, scale float)`` with
    ``normalized = (points - center) / scale``. A single point (or all points equal) gets
    ``scale = 1``; an empty array comes back unchanged with centre 0 and scale 1.
    """
    pts = _as_points(points).astype(np.float64)
    if pts.shape[0] == 0:
        return pts.astype(np.float32), np.zeros(3, np.float32), 1.0
    center = pts.mean(axis=0)
    d = pts - center
    scale = float(np.sqrt((d * d).sum(axis=1).max()))
    if not scale > 0 or not np.isfinite(scale):
        scale = 1.0
    return (d / scale).astype(np.float32), center.astype(np.float32), scale


def random_subsample(points, n: int, seed=0) -> np.ndarray:
    """Indices ``(min(n, N),)`` int64 of ``n`` distinct random points, sorted (the original order kept).

    ``n >= N`` gives every index. Deterministic for a given ``seed``.
    """
    N = int(np.asarray(points).shape[0]) if not isinstance(points, (int, np.integer)) else int(points)
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n >= N:
        return np.arange(N, dtype=np.int64)
    idx = _rng(seed).choice(N, size=n, replace=False)
    idx.sort()
    return idx.astype(np.int64)


def farthest_point_sample(points, n: int, *, seed=0) -> np.ndarray:
    """Indices ``(n,)`` int64 of ``n`` points picked by farthest point sampling.

    The start point is drawn from ``seed``. Uses ``fpsample``: plain FPS for small clouds and
    the bucket kd-tree variant (QuickFPS) for large ones. When the cloud has many duplicate
    points FPS runs out of distinct points; the remaining picks are then filled with not yet
    chosen indices in seeded random order, so the result always has distinct indices while
    ``n <= N``. For ``n >= N`` the result is every index ``0..N-1`` followed by ``n - N``
    seeded random repeats (so callers always get ``n`` rows).
    """
    pts = np.ascontiguousarray(_as_points(points), dtype=np.float32)
    N = pts.shape[0]
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if N == 0:
        if n == 0:
            return np.zeros(0, np.int64)
        raise ValueError("cannot sample from an empty point cloud")
    rng = _rng(seed)
    if n >= N:
        pad = rng.integers(0, N, size=n - N)
        return np.concatenate([np.arange(N, dtype=np.int64), pad.astype(np.int64)])
    if n == 0:
        return np.zeros(0, np.int64)
    if not np.isfinite(pts).all():
        raise ValueError("points contain NaN or inf; drop them before farthest point sampling")
    import fpsample

    start = int(rng.integers(N))
    if N < 4096:
        idx = fpsample.fps_sampling(pts, n, start_idx=start)
    else:
        h = 3 if N < 20_000 else 5 if N < 200_000 else 7
        idx = fpsample.bucket_fps_kdline_sampling(pts, n, h, start_idx=start)
    idx = np.asarray(idx, dtype=np.int64)
    uniq, first = np.unique(idx, return_index=True)
    if uniq.size < n:  # duplicates in the cloud: FPS repeated a point; fill with unused indices
        keep = idx[np.sort(first)]
        used = np.zeros(N, bool)
        used[keep] = True
        rest = rng.permutation(np.flatnonzero(~used))[: n - keep.size]
        idx = np.concatenate([keep, rest])
    return idx


def knn(points, k: int, queries=None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours among ``points`` of each query (default: of each point).

    Returns ``(distances (Q, k) float32, indices (Q, k) int64)``, nearest first. With
    ``queries=None`` every point is its own first neighbour (distance 0). ``k`` larger than
    the number of points raises :class:`ValueError`.
    """
    from scipy.spatial import cKDTree

    pts = _as_points(points).astype(np.float64)
    k = int(k)
    if k < 1 or k > pts.shape[0]:
        raise ValueError(f"k must be in 1..{pts.shape[0]}, got {k}")
    q = pts if queries is None else _as_points(queries, "queries").astype(np.float64)
    tree = cKDTree(pts)
    d, i = tree.query(q, k=k)
    d = np.asarray(d, np.float32).reshape(q.shape[0], k)
    i = np.asarray(i, np.int64).reshape(q.shape[0], k)
    return d, i


def estimate_normals(points, k: int = 16, *, orient: str | np.ndarray | None = "outward") -> np.ndarray:
    """Unit normals ``(N, 3)`` float32 by PCA over each point's ``k`` nearest neighbours.

    ``orient``: ``"outward"`` flips normals to point away from the centroid (a fair guess for
    closed objects), a ``(3,)`` viewpoint flips them towards it, ``None`` leaves the sign as
    PCA gives it.
    """
    pts = _as_points(points).astype(np.float64)
    N = pts.shape[0]
    if N < 3:
        raise ValueError(f"need at least 3 points to estimate normals, got {N}")
    k = max(3, min(int(k), N))
    _, idx = knn(pts, k)
    out = np.empty((N, 3), np.float64)
    step = 65536
    for s in range(0, N, step):
        nb = pts[idx[s : s + step]]  # (b, k, 3)
        nb = nb - nb.mean(axis=1, keepdims=True)
        cov = np.einsum("bki,bkj->bij", nb, nb)
        _, vec = np.linalg.eigh(cov)
        out[s : s + step] = vec[:, :, 0]  # eigenvector of the smallest eigenvalue
    if orient is not None:
        if isinstance(orient, str):
            if orient != "outward":
                raise ValueError(f"orient must be 'outward', a viewpoint or None, got {orient!r}")
            ref = pts - pts.mean(axis=0)
        else:
            ref = np.asarray(orient, np.float64).reshape(1, 3) - pts
        flip = (out * ref).sum(axis=1) < 0
        out[flip] *= -1
    return out.astype(np.float32)
