"""The symmetries of an upright object, found from its geometry, and which of them a view cannot see past.

A point's pixel in a view is determined by the image only up to the object's rotational symmetries.
If a rotation ``g`` about the vertical axis maps the object onto itself, the camera ``C`` and the
camera ``g C`` (moved by the same rotation) see exactly the same picture, and in the second one
the point ``p`` sits where ``g^-1 p`` sits in the first: on a vase (a surface of revolution) every
point of a ring looks the same from every azimuth, on a two-fold table each leg's pixel may as well
be the opposite leg's. No dense similarity can tell such places apart from an untextured view, so
the point -> pixel hit rate of :mod:`crosspoint.analysis.correspondence` has a ceiling below 100 %
that depends on the objects, and its goal must be read against that ceiling.

Mirror symmetries are different: a mirrored camera is not a camera (it flips the image), so the view
of a mirror-symmetric chair does say which leg is the left one, to a model whose features are not
flip-invariant. Mirror twins are reported as a diagnostic (does a model confuse them?), never as an
excuse.

:func:`upright_symmetries` finds the motions that keep "up" and map the object onto itself:
rotations about the vertical line through the surface's centroid (a symmetry keeps the centroid,
so no other axis has to be searched) and reflections across vertical planes through it, tested on
an angular grid and refined near the grid's near-misses. :func:`equivalent_points` moves points by
them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Symmetries", "upright_symmetries", "equivalent_points"]



@dataclass
class Symmetries:
    """Rigid motions ``x -> matrices[g] @ (x - centre) + centre`` (``matrices[0]`` is the identity)."""

    centre: np.ndarray  # (3,) float64
    matrices: np.ndarray  # (G, 3, 3) float64
    names: "list[str]"  # "identity", "rotation 90", "mirror 132" (the plane's azimuth, degrees)
    continuous: bool = False  # every rotation (or every mirror plane) passed: a surface of revolution

    def __len__(self) -> int:
        return len(self.names)

    @property
    def rotations(self) -> np.ndarray:
        """Indices of the identity and the rotations (the motions a view cannot see past)."""
        return np.asarray([i for i, n in enumerate(self.names) if not n.startswith("mirror")], np.int64)

    @property
    def kind(self) -> str:
        """``"none"``, ``"mirror"``, ``"n-fold"`` (+ ``" + mirror"``; a finite group) or
        ``"revolution"`` (a continuous family: a surface of revolution, sampled at the detection's
        angular step)."""
        rot = sum(n.startswith("rotation") for n in self.names)
        mir = sum(n.startswith("mirror") for n in self.names)
        if self.continuous:
            return "revolution"
        if rot:
            return f"{rot + 1}-fold" + (" + mirror" if mir else "")
        return "mirror" if mir else "none"


def _rotation(theta: np.ndarray, up_axis: int) -> np.ndarray:
    """``(T, 3, 3)`` rotations by ``theta`` (radians) about coordinate axis ``up_axis``."""
    a, b = [i for i in range(3) if i != up_axis]
    c, s = np.cos(theta), np.sin(theta)
    R = np.zeros((theta.size, 3, 3))
    R[:, up_axis, up_axis] = 1.0
    R[:, a, a], R[:, a, b], R[:, b, a], R[:, b, b] = c, -s, s, c
    return R


def _mirror(phi: np.ndarray, up_axis: int) -> np.ndarray:
    """``(T, 3, 3)`` reflections across the planes that hold the up axis and the horizontal
    direction at angle ``phi`` (radians, from the first horizontal axis towards the second)."""
    a, b = [i for i in range(3) if i != up_axis]
    d = np.zeros((phi.size, 3))
    d[:, a], d[:, b] = np.cos(phi), np.sin(phi)
    n = np.zeros_like(d)  # the plane's normal: horizontal, perpendicular to d
    n[:, a], n[:, b] = -np.sin(phi), np.cos(phi)
    return np.eye(3)[None] - 2.0 * n[:, :, None] * n[:, None, :]


def _mesh_distance(mesh):
    """``(centre, radius, distance(points) -> (M,) float64)`` of a mesh (:class:`crosspoint.pointcloud.Mesh`
    or an object with ``vertices``/``faces``): the area-weighted centroid of its surface, the largest
    distance of a vertex from it, and the exact distance of points to the surface (open3d)."""
    import open3d as o3d

    V = np.asarray(mesh.vertices, np.float64)
    F = np.asarray(mesh.faces if hasattr(mesh, "faces") else mesh.triangles, np.int64)
    if V.ndim != 2 or V.shape[1] != 3 or F.ndim != 2 or F.shape[1] != 3 or F.shape[0] == 0:
        raise ValueError("upright_symmetries: the mesh has no triangles")
    tri = V[F]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if not area.sum() > 0:
        raise ValueError("upright_symmetries: the mesh has no area")
    centre = (area[:, None] * tri.mean(axis=1)).sum(axis=0) / area.sum()
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(V.astype(np.float32)), o3d.core.Tensor(F.astype(np.uint32)))

    def dist(P):
        return scene.compute_distance(o3d.core.Tensor(np.ascontiguousarray(P, np.float32))).numpy().astype(np.float64)

    return centre, float(np.linalg.norm(V - centre, axis=1).max()), dist


def upright_symmetries(points, *, mesh=None, up_axis: int = 1, step_deg: float = 0.5, tol: "float | None" = None,
                       n_probe: int = 512, seed: int = 0) -> Symmetries:
    """The symmetries of an upright object that keep its ``up_axis`` (see the module docstring).

    With ``mesh`` (the surface the cloud ``points`` ``(N, 3)`` was sampled from; preferred): the
    centre is the surface's area-weighted centroid and a motion ``g`` counts when ``n_probe`` of the
    points moved by it lie on the surface: the 95th percentile of their exact distance to it at most
    ``tol`` (default: 0.5 % of the object's radius, about half a pixel of a 224-px view of the
    demo's unit-sphere objects: a motion the render cannot show). Rotations and mirror planes are
    tested every ``step_deg`` degrees, and each local minimum within 4 ``tol`` is refined on a grid
    20 times finer (a mirror plane at 137.96 degrees is found although the grid holds 138).

    Without a mesh the cloud itself stands in for the surface: the centre is its mean, a motion
    counts when the median distance of the moved points to the cloud is at most ``tol`` (default
    1.5) times the cloud's median nearest-neighbour spacing and their 90th percentile at most twice
    that; rotations that move points by less than about the spacing pass as well, so the result is
    looser (fine for the equivalences, not for counting a group's order)."""
    from scipy.spatial import cKDTree

    P = np.asarray(points, np.float64)
    if P.ndim != 2 or P.shape[1] != 3:
        raise ValueError(f"upright_symmetries needs an (N, 3) cloud, got {P.shape}")
    P = P[np.isfinite(P).all(axis=1)]
    if P.shape[0] < 8:
        raise ValueError("upright_symmetries: fewer than 8 finite points")
    if not 0 < step_deg <= 90:
        raise ValueError(f"step_deg must be in (0, 90], got {step_deg!r}")
    if up_axis not in (0, 1, 2):
        raise ValueError(f"up_axis must be 0, 1 or 2, got {up_axis!r}")
    rng = np.random.default_rng(seed)
    probe = P if P.shape[0] <= n_probe else P[np.sort(rng.choice(P.shape[0], n_probe, replace=False))]
    if mesh is not None:
        centre, radius, dist = _mesh_distance(mesh)
        tol = 0.005 * radius if tol is None else float(tol)

        def score(G):
            moved = _move(G, centre, probe)
            return np.quantile(dist(moved.reshape(-1, 3)).reshape(len(G), -1), 0.95, axis=1)

        unit = tol
    else:
        centre = P.mean(axis=0)
        tree = cKDTree(P)
        spacing = float(np.median(tree.query(P, k=2)[0][:, 1]))
        unit = (1.5 if tol is None else float(tol)) * spacing

        def score(G):
            d = tree.query(_move(G, centre, probe).reshape(-1, 3))[0].reshape(len(G), -1)
            # both criteria in one number: the median against the unit, the 90th percentile against 2 units
            return np.maximum(np.median(d, axis=1), 0.5 * np.quantile(d, 0.9, axis=1))

    n = int(round(360.0 / step_deg))
    found: dict = {}
    continuous = False
    for kind, make, period in (("rotation", _rotation, 2 * np.pi), ("mirror", _mirror, np.pi)):
        m = n if kind == "rotation" else n // 2
        ang = np.arange(m) * (period / m)
        sc = score(make(ang, up_axis))
        ok = sc <= unit
        if kind == "rotation":
            sc[0], ok[0] = 0.0, True  # the identity: the run around it is "no motion"
        seeds = []  # grid angles to refine: one per run of accepted motions, and the grid's near-misses
        for run in _circular_runs(ok):
            if len(run) == m:  # every motion of this kind: a continuous family (a surface of revolution)
                continuous = True
                for i in run:
                    if not (kind == "rotation" and i == 0):
                        found[(kind, round(float(np.degrees(ang[i])), 3))] = make(ang[i:i + 1], up_axis)[0]
            elif not (kind == "rotation" and 0 in run):  # rotations too small to move the surface: the identity
                seeds.append(run[int(np.argmin(sc[run]))])  # one symmetry, and the motions too close to it
        prev, nxt = np.roll(sc, 1), np.roll(sc, -1)
        seeds += list(np.flatnonzero(~ok & (sc <= 4 * unit) & (sc <= prev) & (sc <= nxt)))
        if continuous and kind == "rotation":
            continue
        for i in seeds:  # refined on a grid 20 times finer, one step either side
            fine = ang[i] + np.linspace(-1, 1, 41) * (period / m)
            fs = score(make(fine, up_axis))
            j = int(np.argmin(fs))
            a = float(np.mod(fine[j], period))
            if fs[j] <= unit and min(a, period - a) * 180 / np.pi >= 2 * step_deg and not any(
                    k[0] == kind and abs(k[1] - np.degrees(a)) < step_deg for k in found):
                found[(kind, round(float(np.degrees(a)), 3))] = make(np.array([a]), up_axis)[0]
    keys = sorted(found)
    return Symmetries(centre=centre, matrices=np.concatenate([np.eye(3)[None]] + [found[k][None] for k in keys]),
                      names=["identity"] + [f"{k[0]} {k[1]:g}" for k in keys], continuous=continuous)


def _circular_runs(ok: np.ndarray) -> "list[list[int]]":
    """The runs of consecutive True entries of a circular boolean array (index lists)."""
    n = ok.size
    if ok.all():
        return [list(range(n))]
    start = int(np.flatnonzero(~ok)[0])  # begin the sweep at a False entry, so no run wraps
    runs, cur = [], []
    for k in range(1, n + 1):
        i = (start + k) % n
        if ok[i]:
            cur.append(i)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return runs


def equivalent_points(sym: Symmetries, points) -> np.ndarray:
    """``(G, N, 3)``: every point of ``points`` ``(N, 3)`` moved by every symmetry (``[0]`` the
    points themselves)."""
    return _move(sym.matrices, sym.centre, np.asarray(points, np.float64))


def _move(G: np.ndarray, centre: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``(G, N, 3)``: the points ``X`` moved by each ``x -> G[g] @ (x - centre) + centre``."""
    return np.einsum("gij,nj->gni", G, X - centre) + centre
