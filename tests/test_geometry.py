"""crosspoint.geometry: surface sampling, normalisation, FPS, random subsampling, kNN, normals."""

from __future__ import annotations

import numpy as np
import pytest

from crosspoint.geometry import (
    estimate_normals,
    farthest_point_sample,
    knn,
    normalize_unit_sphere,
    random_subsample,
    sample_mesh_surface,
)

SQUARE_V = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
SQUARE_F = np.array([[0, 1, 2], [0, 2, 3]])


def test_sample_mesh_surface_on_a_square():
    pts, nrm, fi = sample_mesh_surface(SQUARE_V, SQUARE_F, 2000, seed=3)
    assert pts.shape == (2000, 3) and pts.dtype == np.float32
    assert nrm.shape == (2000, 3) and fi.shape == (2000,) and fi.dtype == np.int64
    assert np.allclose(pts[:, 2], 0) and (pts[:, :2] >= 0).all() and (pts[:, :2] <= 1).all()
    assert np.allclose(nrm, [0, 0, 1])
    # samples of face 0 lie below the diagonal (x >= y)
    assert (pts[fi == 0, 0] >= pts[fi == 0, 1] - 1e-6).all()
    again, _, _ = sample_mesh_surface(SQUARE_V, SQUARE_F, 2000, seed=3)
    assert np.array_equal(pts, again)


def test_sampling_is_area_weighted_and_skips_degenerate_faces():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 5], [3, 0, 5], [0, 1, 5], [7, 7, 7]], np.float32)
    f = np.array([[0, 1, 2], [3, 4, 5], [6, 6, 6], [0, 1, 1]])  # areas 0.5, 1.5, 0, 0
    _, _, fi = sample_mesh_surface(v, f, 40_000, seed=0)
    counts = np.bincount(fi, minlength=4)
    assert counts[2] == 0 and counts[3] == 0
    assert abs(counts[1] / counts[0] - 3.0) < 0.15


def test_sampling_errors():
    with pytest.raises(ValueError, match="zero surface area"):
        sample_mesh_surface(SQUARE_V, np.array([[0, 0, 1], [2, 2, 2]]), 10)
    with pytest.raises(ValueError, match="no faces"):
        sample_mesh_surface(SQUARE_V, np.zeros((0, 3), int), 10)
    with pytest.raises(ValueError, match="out of range"):
        sample_mesh_surface(SQUARE_V, np.array([[0, 1, 9]]), 10)


def test_normalize_unit_sphere():
    pts = np.random.default_rng(0).normal(size=(500, 3)) * 7 + 3
    out, center, scale = normalize_unit_sphere(pts)
    assert out.dtype == np.float32 and np.allclose(out.mean(0), 0, atol=1e-5)
    assert np.isclose(np.linalg.norm(out, axis=1).max(), 1, atol=1e-6)
    assert np.allclose(out * scale + center, pts, atol=1e-4)
    single, c, s = normalize_unit_sphere(np.ones((1, 3)))
    assert s == 1.0 and np.allclose(single, 0)


def test_random_subsample():
    idx = random_subsample(np.zeros((100, 3)), 10, seed=1)
    assert idx.shape == (10,) and np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, random_subsample(np.zeros((100, 3)), 10, seed=1))
    assert np.array_equal(random_subsample(np.zeros((5, 3)), 10), np.arange(5))


@pytest.mark.parametrize("n_points", [500, 30_000])
def test_farthest_point_sample(n_points):
    pts = np.random.default_rng(1).random((n_points, 3)).astype(np.float32)
    idx = farthest_point_sample(pts, 64, seed=2)
    assert idx.shape == (64,) and idx.dtype == np.int64 and np.unique(idx).size == 64
    assert np.array_equal(idx, farthest_point_sample(pts, 64, seed=2))
    # FPS covers the cloud better than random picks: smaller largest distance to the sample
    def cover(sel):
        return knn(pts[sel], 1, queries=pts)[0].max()

    assert cover(idx) < cover(random_subsample(pts, 64, seed=2))


def test_farthest_point_sample_edge_cases():
    pts = np.random.default_rng(2).random((10, 3))
    full = farthest_point_sample(pts, 14, seed=0)
    assert full.shape == (14,) and np.array_equal(full[:10], np.arange(10))
    dup = np.zeros((50, 3))
    dup[:3] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    idx = farthest_point_sample(dup, 20, seed=0)
    assert np.unique(idx).size == 20
    assert farthest_point_sample(pts, 0).shape == (0,)


def test_knn():
    pts = np.array([[0, 0, 0], [1, 0, 0], [3, 0, 0]], np.float32)
    d, i = knn(pts, 2)
    assert np.array_equal(i[:, 0], [0, 1, 2]) and np.array_equal(i[:, 1], [1, 0, 1])
    assert np.allclose(d[:, 1], [1, 1, 2])
    d, i = knn(pts, 1, queries=np.array([[2.9, 0, 0]]))
    assert i.shape == (1, 1) and i[0, 0] == 2
    with pytest.raises(ValueError):
        knn(pts, 4)


def test_estimate_normals():
    rng = np.random.default_rng(3)
    plane = np.column_stack([rng.random(300), rng.random(300), np.zeros(300)])
    n = estimate_normals(plane, k=10, orient=np.array([0, 0, 5.0]))
    assert np.allclose(n, [0, 0, 1], atol=1e-5)
    sphere = rng.normal(size=(800, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    n = estimate_normals(sphere, k=12)
    assert (np.sum(n * sphere, axis=1) > 0.95).mean() > 0.98
