"""The symmetries of upright objects (crosspoint.analysis.symmetry) and what they do to the point ->
pixel hit rate (its ceiling, hits up to the rotations, mirror twins)."""

from __future__ import annotations

import numpy as np
import pytest

from crosspoint.analysis.correspondence import EVAL_SIZE, HIT_RADIUS_PX, _symmetry_figures, view_correspondence
from crosspoint.analysis.symmetry import equivalent_points, upright_symmetries
from crosspoint.data.demo.primitives import box, concat, lathe
from crosspoint.pointcloud import Mesh
from crosspoint.render import Camera


def _mesh(parts, heading_deg: float = 0.0, shift=(0.0, 0.0, 0.0)) -> Mesh:
    v, f, _ = concat(parts)
    a = np.radians(heading_deg)
    R = np.array([[np.cos(a), 0.0, -np.sin(a)], [0.0, 1.0, 0.0], [np.sin(a), 0.0, np.cos(a)]])
    return Mesh(v @ R.T + np.asarray(shift), f)


def _sample(mesh: Mesh, n: int, seed: int = 0) -> np.ndarray:
    """Points uniformly on the surface (area-weighted), float64."""
    rng = np.random.default_rng(seed)
    tri = mesh.vertices.astype(np.float64)[mesh.faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    t = rng.choice(len(tri), n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    return tri[t, 0] + u[:, None] * (tri[t, 1] - tri[t, 0]) + v[:, None] * (tri[t, 2] - tri[t, 0])


def _table(heading: float = 0.0, shift=(0.0, 0.0, 0.0)) -> Mesh:
    """A rectangular table (1.0 x 0.6 top, four legs): two-fold, two mirror planes."""
    parts = [box((0, 0.55, 0), (1.0, 0.06, 0.6))]
    parts += [box((sx * 0.42, 0.26, sz * 0.22), (0.06, 0.52, 0.06)) for sx in (-1, 1) for sz in (-1, 1)]
    return _mesh(parts, heading, shift)


def _yrot(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), 0.0, -np.sin(a)], [0.0, 1.0, 0.0], [np.sin(a), 0.0, np.cos(a)]])


def test_a_rectangular_table_is_two_fold_with_two_mirror_planes_at_any_heading():
    heading = 37.3  # not on the 0.5-degree grid: the planes are found by the refinement
    mesh = _table(heading, shift=(0.2, -0.1, 0.35))
    pts = _sample(mesh, 2048)
    sym = upright_symmetries(pts, mesh=mesh)
    assert sym.kind == "2-fold + mirror" and len(sym) == 4, sym.names
    assert sym.names[0] == "identity" and "rotation 180" in sym.names
    np.testing.assert_array_equal(sym.matrices[0], np.eye(3))
    # the expected group, built independently: the half turn and the table's two planes of symmetry
    R = _yrot(heading)
    expected = [np.diag([-1.0, 1.0, -1.0]), R @ np.diag([-1.0, 1.0, 1.0]) @ R.T, R @ np.diag([1.0, 1.0, -1.0]) @ R.T]
    for E in expected:
        err = min(np.abs(M - E).max() for M in sym.matrices[1:])
        assert err < 2e-3, (E, err)  # the refined angle is within 0.05 degrees (1e-3 rad)
    # the centre is the surface's area-weighted centroid: on the axis of the legs
    np.testing.assert_allclose(sym.centre[[0, 2]], [0.2, 0.35], atol=1e-6)
    assert list(sym.rotations) == [0, sym.names.index("rotation 180")]
    # every motion maps the surface onto itself: the moved points lie on the mesh
    from crosspoint.analysis.symmetry import _mesh_distance

    _, radius, dist = _mesh_distance(mesh)
    for moved in equivalent_points(sym, pts[:300]):
        assert np.quantile(dist(moved), 0.95) <= 0.005 * radius
    # equivalent_points is the exact motion: a half turn twice is the identity (float64)
    twice = equivalent_points(sym, equivalent_points(sym, pts[:50])[sym.names.index("rotation 180")])
    np.testing.assert_allclose(twice[sym.names.index("rotation 180")], pts[:50], rtol=0, atol=1e-12)


def test_a_fine_lathe_is_a_surface_of_revolution_and_an_asymmetric_object_has_none():
    prof = [(0.10, 0.0), (0.30, 0.2), (0.22, 0.6), (0.08, 0.8)]
    vase = _mesh([lathe([prof], n_seg=96, caps=[(0.10, 0.0, False)])], heading_deg=11.0)
    sym = upright_symmetries(_sample(vase, 2048), mesh=vase)
    assert sym.kind == "revolution" and sym.continuous
    assert sym.rotations.size == 720  # the identity and every 0.5-degree step
    odd = _mesh([box((0, 0.5, 0), (1.0, 0.06, 0.6)), box((0.31, 0.7, 0.12), (0.2, 0.3, 0.1))], heading_deg=20.0)
    none = upright_symmetries(_sample(odd, 2048), mesh=odd)
    assert none.kind == "none" and len(none) == 1 and none.names == ["identity"]
    # bad input says what is wrong
    with pytest.raises(ValueError, match="cloud"):
        upright_symmetries(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="finite"):
        upright_symmetries(np.full((20, 3), np.nan))


def test_without_a_mesh_the_cloud_stands_in_for_the_surface():
    mesh = _table(64.0)
    sym = upright_symmetries(_sample(mesh, 4096, seed=3))
    exact = upright_symmetries(_sample(mesh, 4096, seed=3), mesh=mesh)
    assert sym.kind == exact.kind == "2-fold + mirror"
    # the same motions as with the mesh, to within a degree (the cloud's own sampling blurs the optimum)
    for a, b in zip(sorted(sym.names[1:]), sorted(exact.names[1:])):
        assert a.split()[0] == b.split()[0] and abs(float(a.split()[1]) - float(b.split()[1])) < 1.0, (a, b)


def test_symmetry_figures_count_the_rotated_twin_as_a_hit_and_halve_the_ceiling_where_it_is_visible():
    """On a two-fold table, an arg-max placed on each point's half-turned twin is a miss for the
    strict hit rate, a hit up to the rotations, and the ceiling is exactly T - 1/2 per point whose
    twin is visible and farther than the hit radius (an oracle guesses one of two places)."""
    mesh = _table(25.0)
    cam = Camera(azimuth=35.0, elevation=30.0, distance=3.0, size=128)
    pts = _sample(mesh, 3000, seed=1)
    view = view_correspondence(pts, cam, mesh=mesh)
    vis = np.flatnonzero(view.visible)
    sym = upright_symmetries(pts, mesh=mesh)
    half = sym.names.index("rotation 180")
    twin = equivalent_points(sym, pts[vis])[half]
    tv = view_correspondence(twin, cam, mesh=mesh)
    s = EVAL_SIZE / 128
    uv_true = view.uv[vis].astype(np.float64) * s
    uv_twin = tv.uv.astype(np.float64) * s
    far = np.linalg.norm(uv_twin - uv_true, axis=1) > HIT_RADIUS_PX
    seen = tv.visible
    assert (seen & far).sum() > 50 and (~seen).sum() > 50  # both cases occur in this view
    # the arg-max on the twin where the twin is visible, on the point itself elsewhere
    am = np.where(seen[:, None], uv_twin, uv_true)
    out = _symmetry_figures((sym, cam, mesh), pts[vis], uv_true, am, (128, 128))
    assert out["symmetry"] == "2-fold + mirror" and out["symmetry_rotations"] == 1
    assert out["hits_sym"] == vis.size  # every arg-max is the point or its visible twin
    strict = int(np.count_nonzero(np.linalg.norm(am - uv_true, axis=1) <= HIT_RADIUS_PX))
    assert strict == vis.size - int((seen & far).sum())
    assert out["hits_twin"] >= out["hits_sym"]
    # the ceiling: 1 per point, 1/2 where the twin is visible and far (the mirror planes do not count)
    # (a twin closer than the radius counts as a second correct place: 2/2)
    assert out["hit_ceiling"] == pytest.approx(vis.size - 0.5 * int((seen & far).sum()), abs=1e-9)


def test_symmetric_twin_at_names_the_rotation_whose_visible_twin_sits_at_a_pixel():
    from crosspoint.analysis.correspondence import symmetric_twin_at

    mesh = _table(25.0)
    cam = Camera(azimuth=35.0, elevation=30.0, distance=3.0, size=128)
    pts = _sample(mesh, 3000, seed=1)
    view = view_correspondence(pts, cam, mesh=mesh)
    sym = upright_symmetries(pts, mesh=mesh)
    moved = {n: equivalent_points(sym, pts)[i] for i, n in enumerate(sym.names)}
    tv = {n: view_correspondence(moved[n], cam, mesh=mesh) for n in sym.names[1:]}
    s = EVAL_SIZE / 128

    def far(n):
        return np.linalg.norm((tv[n].uv - view.uv).astype(np.float64) * s, axis=1) > 3 * HIT_RADIUS_PX

    mirrors = [n for n in sym.names if n.startswith("mirror")]
    # a visible point whose half-turn twin is visible and far from it: the twin's pixel names the rotation
    i = int(np.flatnonzero(view.visible & tv["rotation 180"].visible & far("rotation 180"))[0])
    assert symmetric_twin_at(sym, pts[i], view, tv["rotation 180"].uv[i]) == "rotation 180"
    # a pixel far from every twin: none
    others = np.stack([tv[n].uv[i] for n in sym.names[1:]] + [view.uv[i]]).astype(np.float64)
    corner = np.array([2.0, 2.0])
    assert np.linalg.norm((others - corner) * s, axis=1).min() > HIT_RADIUS_PX
    assert symmetric_twin_at(sym, pts[i], view, corner) is None
    # a point whose only visible far twin is a mirror image: the mirror plane is named
    m = mirrors[0]
    only = view.visible & tv[m].visible & far(m) & ~tv["rotation 180"].visible & ~tv[mirrors[1]].visible
    j = int(np.flatnonzero(only)[0])
    assert symmetric_twin_at(sym, pts[j], view, tv[m].uv[j]) == m
    assert symmetric_twin_at(None, pts[j], view, tv[m].uv[j]) is None
