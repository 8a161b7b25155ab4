"""Point and image augmentations of crosspoint.data.transforms, and the seeding helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crosspoint.data import transforms as T

torch.set_num_threads(2)


def _cloud(n=512, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 3)) * [1.0, 2.0, 0.5] + [3.0, -1.0, 2.0]).astype(np.float32)


def test_normalize_unit_sphere_matches_reference_formula():
    pts = _cloud()
    out = T.Normalize()(pts)
    assert out.dtype == np.float32 and out.shape == pts.shape
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    assert np.linalg.norm(out, axis=1).max() == pytest.approx(1.0, abs=1e-6)
    # the reference's pc_normalize: centroid = mean, divide by the max norm
    c = pts - pts.mean(axis=0)
    np.testing.assert_allclose(out, c / np.linalg.norm(c, axis=1).max(), atol=1e-5)
    # degenerate input does not blow up
    same = np.ones((5, 3), np.float32)
    assert np.isfinite(T.Normalize()(same)).all()


def test_transforms_do_not_modify_input_and_keep_dtype():
    pts = _cloud()
    before = pts.copy()
    out = T.paper_point_augmentation()(pts, np.random.default_rng(1))
    np.testing.assert_array_equal(pts, before)
    assert out.dtype == np.float32 and out.shape == pts.shape


def test_random_scale_range_and_isotropy():
    pts = T.Normalize()(_cloud())
    rng = np.random.default_rng(0)
    t = T.RandomScale(0.5, 2.0)
    factors = []
    for _ in range(400):
        out = t(pts, rng)
        f = out / np.where(pts == 0, 1, pts)
        ratio = np.median(f)
        np.testing.assert_allclose(out, pts * ratio, rtol=1e-5, atol=1e-6)  # one factor for all axes
        factors.append(ratio)
    factors = np.array(factors)
    assert factors.min() >= 0.5 - 1e-6 and factors.max() <= 2.0 + 1e-6
    assert factors.min() < 0.55 and factors.max() > 1.95  # the whole range is used
    assert np.mean(factors) == pytest.approx(1.25, abs=0.08)


def test_rotation_about_y_preserves_norms_and_height():
    pts = _cloud()
    rng = np.random.default_rng(0)
    t = T.RandomRotateUp("y")
    angles = []
    for _ in range(200):
        out = t(pts, rng)
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(pts, axis=1), rtol=1e-5)
        np.testing.assert_allclose(out[:, 1], pts[:, 1], atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(out[:, [0, 2]], axis=1), np.linalg.norm(pts[:, [0, 2]], axis=1), rtol=1e-4)
        a0 = math.atan2(pts[0, 0], pts[0, 2])
        a1 = math.atan2(out[0, 0], out[0, 2])
        angles.append((a1 - a0) % (2 * math.pi))
    hist, _ = np.histogram(angles, bins=4, range=(0, 2 * math.pi))
    assert hist.min() > 25  # spread over the full circle


def test_rotation_matrix_is_the_reference_rodrigues_about_y():
    th = 0.7
    c, s = math.cos(th), math.sin(th)
    np.testing.assert_allclose(T.rotation_matrix(th, "y"), [[c, 0, s], [0, 1, 0], [-s, 0, c]], atol=1e-12)
    # normals (columns 3-5) turn with the points
    pts = np.hstack([_cloud(50), np.tile([1.0, 0.0, 0.0], (50, 1))]).astype(np.float32)
    out = T.RandomRotateUp("y")(pts, np.random.default_rng(3))
    np.testing.assert_allclose(np.linalg.norm(out[:, 3:6], axis=1), 1.0, atol=1e-5)
    assert not np.allclose(out[:, 3:6], pts[:, 3:6])


def test_translate_is_a_rigid_shift_within_half_extent():
    pts = _cloud()
    extent = pts.max(0) - pts.min(0)
    rng = np.random.default_rng(0)
    shifts = []
    for _ in range(300):
        out = T.RandomTranslate(0.5)(pts, rng)
        d = out - pts
        np.testing.assert_allclose(d, np.broadcast_to(d[0], d.shape), atol=1e-4)
        shifts.append(d[0] / extent)
    shifts = np.array(shifts)
    assert np.all(np.abs(shifts) <= 0.5 + 1e-4)
    assert np.all(shifts.max(0) > 0.4) and np.all(shifts.min(0) < -0.4)


def test_jitter_std_and_clip():
    pts = np.zeros((20000, 3), np.float32)
    out = T.Jitter(0.01, 0.05)(pts, np.random.default_rng(0))
    assert np.abs(out).max() <= 0.05 + 1e-7
    assert out.std() == pytest.approx(0.01, rel=0.05)
    wide = T.Jitter(1.0, 0.05)(pts, np.random.default_rng(0))
    assert np.abs(wide).max() == pytest.approx(0.05)


def test_input_dropout_keeps_n_and_replaces_by_first_point():
    pts = _cloud(1000)
    rng = np.random.default_rng(0)
    t = T.RandomInputDropout(0.875)
    ratios = []
    for _ in range(300):
        out = t(pts, rng)
        assert out.shape == pts.shape
        changed = np.any(out != pts, axis=1)
        np.testing.assert_array_equal(out[changed], np.broadcast_to(pts[0], (changed.sum(), 3)))
        np.testing.assert_array_equal(out[0], pts[0])
        ratios.append(changed.mean())
    ratios = np.array(ratios)
    assert ratios.max() <= 0.875 + 0.05
    assert ratios.mean() == pytest.approx(0.875 / 2, abs=0.05)
    with pytest.raises(ValueError):
        T.RandomInputDropout(1.0)


def test_probability_zero_is_identity():
    pts = _cloud()
    for t in (T.RandomScale(p=0.0), T.RandomRotateUp(p=0.0), T.Jitter(p=0.0), T.RandomInputDropout(p=0.0)):
        np.testing.assert_array_equal(t(pts, np.random.default_rng(0)), pts)


def test_paper_chain_order_parameters_and_determinism():
    aug = T.paper_point_augmentation()
    kinds = [type(t).__name__ for t in aug.transforms]
    assert kinds == ["Normalize", "RandomScale", "RandomRotateUp", "RandomTranslate", "Jitter", "RandomInputDropout"]
    assert (aug.transforms[1].lo, aug.transforms[1].hi) == (0.5, 2.0)
    assert aug.transforms[2].axis == "y"
    assert aug.transforms[3].translate_range == 0.5
    assert (aug.transforms[4].std, aug.transforms[4].clip) == (0.01, 0.05)
    assert aug.transforms[5].max_dropout_ratio == 0.875
    pts = _cloud()
    a = aug(pts, np.random.default_rng(5))
    b = aug(pts, np.random.default_rng(5))
    c = aug(pts, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # a seed given to the constructor
    s1 = T.paper_point_augmentation(rng=3)(pts)
    s2 = T.paper_point_augmentation(rng=3)(pts)
    np.testing.assert_array_equal(s1, s2)
    # plain callables compose too
    out = T.Compose([T.Normalize(), lambda p: p * 2])(pts)
    assert np.linalg.norm(out, axis=1).max() == pytest.approx(2.0, abs=1e-5)


def test_composite_background_modes():
    from PIL import Image

    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., :3] = 77  # colour stored under transparent pixels
    arr[0, 0] = (255, 0, 0, 255)
    im = Image.fromarray(arr, "RGBA")
    white = np.asarray(T.composite_background(im, "white"))
    black = np.asarray(T.composite_background(im, "black"))
    drop = np.asarray(T.composite_background(im, "drop"))  # the reference's .convert('RGB')
    assert tuple(white[0, 0]) == (255, 0, 0) and tuple(white[1, 1]) == (255, 255, 255)
    assert tuple(black[1, 1]) == (0, 0, 0)
    assert tuple(drop[1, 1]) == (77, 77, 77)
    rgb = Image.new("RGB", (4, 4), (1, 2, 3))
    assert tuple(np.asarray(T.composite_background(rgb))[0, 0]) == (1, 2, 3)


def test_image_transforms_shapes_and_seeding():
    from PIL import Image

    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8), "RGB")
    aug = T.paper_image_augmentation(32)
    names = [type(t).__name__ for t in aug.transforms]
    assert names == ["Resize", "ColorJitter", "RandomHorizontalFlip", "ToTensor", "Normalize"]
    with T.seeded_torch(7):
        a = aug(im)
    state = torch.random.get_rng_state()
    with T.seeded_torch(7):
        b = aug(im)
    assert torch.equal(torch.random.get_rng_state(), state)  # restored
    assert a.shape == (3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b)
    ev = T.eval_image_transform(16)
    e1, e2 = ev(im), ev(im)
    assert e1.shape == (3, 16, 16) and torch.equal(e1, e2)
    # ImageNet normalisation: white maps to (1 - mean) / std
    w = ev(Image.new("RGB", (8, 8), (255, 255, 255)))
    np.testing.assert_allclose(w[:, 0, 0].numpy(), (1 - np.array(T.IMAGENET_MEAN)) / np.array(T.IMAGENET_STD), rtol=1e-5)


def test_epoch_sampler_and_item_rng():
    s = T.SeededEpochSampler(50, seed=3)
    e0 = list(s)
    assert sorted(e0) == list(range(50))
    assert list(s) == e0
    s.set_epoch(1)
    assert list(s) != e0
    assert list(T.SeededEpochSampler(50, seed=3)) == e0
    assert T.item_rng(0, 0, 1).random() == T.item_rng(0, 0, 1).random()
    assert T.item_rng(0, 0, 1).random() != T.item_rng(0, 1, 1).random()
    assert T.item_rng(0, 0, 1).random() != T.item_rng(1, 0, 1).random()


class _RandomDraws(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        import random

        return torch.tensor([np.random.random(), random.random(), T.process_rng().random(), torch.rand(()).item()])


def _draws(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    dl = torch.utils.data.DataLoader(
        _RandomDraws(), batch_size=4, num_workers=2, worker_init_fn=T.worker_init_fn, generator=g,
        multiprocessing_context="fork",
    )
    return torch.cat(list(dl))


def test_worker_init_fn_reproducible_and_workers_differ():
    a, b, c = _draws(0), _draws(0), _draws(1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # batch 0 comes from worker 0, batch 1 from worker 1: every source of randomness differs
    for col in range(4):
        assert not torch.equal(a[:4, col], a[4:, col])


# ------------------------------------------------------------------ the partial view (data.partial_view)
def _sphere(n: int, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    v = g.normal(size=(n, 3))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_partial_view_sees_the_near_cap_of_a_sphere():
    """Of a sphere seen from outside, the points inside the tangent cone from the camera can be seen:
    hidden point removal keeps all of them and reaches at most a few degrees past the rim, and the
    camera lies at the drawn distance within the drawn elevation range."""
    pts = _sphere(3000)
    pv = T.PartialView(elevation=(20.0, 40.0), distance=(3.0, 3.0))
    for seed in range(5):
        cam = pv.camera(pts, np.random.default_rng(seed))
        c = np.asarray(pts, np.float64).mean(0)
        d = cam - c
        assert np.linalg.norm(d) == pytest.approx(3.0 * np.sqrt(((pts - c) ** 2).sum(1).max()), rel=1e-12)
        assert 20.0 - 1e-9 <= math.degrees(math.asin(d[1] / np.linalg.norm(d))) <= 40.0 + 1e-9
        vis = pv.visible(pts, cam)
        # a point p of the unit sphere is seen from the camera e when p . e > 1, i.e. when its angle
        # from e is below the rim's, acos(1 / |e|); the flip radius lets the set reach past the rim
        # (measured: ~4 degrees at radius 100), never short of it
        ang = np.degrees(np.arccos(np.clip(np.asarray(pts, np.float64) @ (cam / np.linalg.norm(cam)), -1, 1)))
        rim = math.degrees(math.acos(1.0 / np.linalg.norm(cam)))
        assert vis[ang < rim - 1.0].all() and not vis[ang > rim + 8.0].any()
        assert 0.9 < vis.mean() / (ang < rim).mean() < 1.3


def test_partial_view_keeps_n_and_the_order_of_the_points_it_keeps():
    pts = _sphere(500, 1)
    pv = T.PartialView()
    g = np.random.default_rng(3)
    keep = pv.keep(pts, g)
    assert 0.2 < keep.mean() < 0.6
    out = pv.fill(pts.copy(), keep, g)
    assert out.shape == pts.shape and out.dtype == pts.dtype
    assert np.array_equal(out[keep], pts[keep])
    seen = {r.tobytes() for r in pts[keep]}
    assert all(r.tobytes() in seen for r in out[~keep])  # every hidden point is now a seen one
    # as a transform in a chain: the same draws and the same result, the input untouched
    before = pts.copy()
    a = pv(pts, np.random.default_rng(7))
    b = pv.apply(pts.copy(), np.random.default_rng(7))
    assert np.array_equal(a, b) and np.array_equal(pts, before)
    # a cloud too small or flat for a hull, or one the camera would barely see, comes back whole
    flat = np.zeros((50, 3), np.float32)
    flat[:, :2] = np.random.default_rng(0).random((50, 2))
    assert pv.keep(flat, np.random.default_rng(0)).all()
    assert pv.keep(pts[:3], np.random.default_rng(0)).all()
    with pytest.raises(ValueError, match="distance"):
        T.PartialView(distance=(0.5, 2.0))
    with pytest.raises(ValueError, match="elevation"):
        T.PartialView(elevation=(50.0, 10.0))


def test_two_point_copies_with_a_partial_view():
    """Copy 1 is the pair's first copy as without a partial view; copy 2 is the transform of the
    partial view; ``keep`` says which points copy 2 holds at their own index; a replay with ``keep``
    imposed draws the same numbers."""
    from crosspoint.data.pretrain import two_point_copies

    pts = _sphere(400, 2) * np.float32(0.7) + np.float32(0.1)
    chain = T.paper_point_augmentation()
    a1, a2, keep = two_point_copies(chain, T.PartialView(p=1.0), pts, np.random.default_rng(5))
    b1, b2 = chain.repeat(pts, np.random.default_rng(5), 2)
    assert np.array_equal(a1, b1) and not np.array_equal(a2, b2)
    assert 0 < keep.sum() < len(keep)

    ident = lambda p: np.array(p, dtype=np.float32, copy=True)  # noqa: E731 - a plain callable, no draws
    a1, a2, keep = two_point_copies(ident, T.PartialView(p=1.0), pts, np.random.default_rng(5))
    assert np.array_equal(a1, pts) and np.array_equal(a2[keep], pts[keep]) and not np.array_equal(a2, pts)
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    x = two_point_copies(ident, T.PartialView(p=1.0), pts, g1)
    y = two_point_copies(ident, T.PartialView(p=1.0), pts[::-1].copy(), g2, keep=x[2])
    assert np.array_equal(y[2], x[2]) and g1.bit_generator.state == g2.bit_generator.state
    # p = 0: copy 2 is the whole object again, keep all True, and one draw more than without it
    _, a2, keep = two_point_copies(ident, T.PartialView(p=0.0), pts, np.random.default_rng(5))
    assert keep.all() and np.array_equal(a2, pts)


def test_surviving_rows_finds_the_points_that_dropout_replaced():
    """The replay of a chain with a row-number column says which output rows are still their own point:
    with the paper's chain, exactly the rows that RandomInputDropout did not overwrite with row 0; the
    generator it replays from is not advanced."""
    from crosspoint.data.pretrain import surviving_rows

    pts = _sphere(600, 4)
    chain = T.paper_point_augmentation()
    for seed in range(5):
        g = np.random.default_rng(seed)
        state = g.bit_generator.state
        out = chain(pts, g)
        alive = surviving_rows(chain, pts, state)
        replaced = (out == out[0]).all(axis=1)
        replaced[0] = False
        assert np.array_equal(alive, ~replaced) and alive[0]
        assert 0 < alive.sum() <= len(pts)
    g = np.random.default_rng(0)
    state = g.bit_generator.state
    assert surviving_rows(T.Compose([T.Normalize(), T.Jitter()]), pts, state).all()  # nothing replaced
    assert g.bit_generator.state == state
    assert surviving_rows(lambda p: p, pts, state).all()  # not ours: cannot be replayed
