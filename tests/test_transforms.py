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
