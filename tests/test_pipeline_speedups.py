"""The fast pretraining data path (issue 13 item 2) computes exactly what the old one did.

The old per-sample path is kept, as the baseline, in ``benchmarks/bench_pipeline.py``
(``legacy_item``); the fast image augmentation is also compared with the torchvision chain itself.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import crosspoint.data.transforms as T
from crosspoint.data.shapenet_render import ShapeNetRenderDataset

REPO = Path(__file__).resolve().parents[1]

needs_numba = pytest.mark.skipif(not T.FastPaperImageAugmentation.available(), reason="numba kernels unavailable")


def _bench():
    spec = importlib.util.spec_from_file_location("bench_pipeline", REPO / "benchmarks" / "bench_pipeline.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_pipeline", mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from crosspoint.data.synthetic import generate_demo

    return generate_demo(tmp_path_factory.mktemp("demo") / "d", seed=0, per_class=1, n_views=3, size=48, workers=0)


def _images(rng):
    """RGB test images: noise, flat (all 0 / all 255: the blends' extremes), a gradient."""
    yield Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), "RGB")
    yield Image.new("RGB", (40, 40), (255, 255, 255))
    yield Image.new("RGB", (40, 40), (0, 0, 0))
    g = np.linspace(0, 255, 40 * 40 * 3).astype(np.uint8).reshape(40, 40, 3)
    yield Image.fromarray(g, "RGB")


# ------------------------------------------------------------------------------ the image chain
@needs_numba
@pytest.mark.parametrize("size", [40, 24, 64])  # no resize, down, up
def test_fast_image_augmentation_is_the_torchvision_chain_bit_for_bit(size):
    rng = np.random.default_rng(0)
    fast = T.FastPaperImageAugmentation(size)
    ref = T.paper_image_augmentation(size)
    assert [type(t).__name__ for t in fast.reference().transforms] == [type(t).__name__ for t in ref.transforms]
    g = torch.Generator()
    n = 0
    for im in _images(rng):
        for seed in range(24):  # 24 seeds cover the 24 orders of the colour operations about once
            with T.seeded_torch(seed):
                want = ref(im)
            got = fast(im, g.manual_seed(seed))
            assert got.dtype == want.dtype and got.shape == want.shape == (3, size, size)
            assert torch.equal(got, want), (seed, (got - want).abs().max())
            n += 1
    # generator=None draws from torch's global generator, as torchvision does
    torch.manual_seed(11)
    want = ref(im)
    torch.manual_seed(11)
    assert torch.equal(fast(im), want)
    assert n == 96


@needs_numba
@pytest.mark.parametrize("strengths", [(0.0, 0.4, 0.4), (0.4, 0.0, 0.8), (0.2, 0.3, 0.0)])
def test_other_strengths_follow_their_torchvision_chain(strengths):
    rng = np.random.default_rng(5)
    im = Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8), "RGB")
    b, c, s = strengths
    fast = T.FastPaperImageAugmentation(16, brightness=b, contrast=c, saturation=s)
    ref = fast.reference()
    g = torch.Generator()
    for seed in range(12):
        with T.seeded_torch(seed):
            want = ref(im)
        assert torch.equal(fast(im, g.manual_seed(seed)), want), seed


@needs_numba
def test_fast_image_augmentation_on_real_renders(shared_data):
    fast = T.FastPaperImageAugmentation(224)
    ref = T.paper_image_augmentation(224)
    g = torch.Generator()
    for png in sorted((shared_data / "renders").rglob("*.png")):
        for bg in ("drop", "white", "black"):
            im = T.load_rgb(png, bg)
            view = T.decode_view(png, bg, 224)
            for seed in range(6):
                with T.seeded_torch(seed):
                    want = ref(im)
                assert torch.equal(fast.augment_array(view, g.manual_seed(seed)), want), (png.name, bg, seed)


@needs_numba
def test_luts_follow_pil_and_the_grey_level_is_pils():
    # PIL's grey level on a sample of colours (the formula is checked on all 2^24 in NOTES)
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    grey = np.asarray(Image.fromarray(rgb).convert("L")).astype(np.int64)
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    np.testing.assert_array_equal(grey, (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)
    k = T._image_kernels()
    assert k["luma_sum"](rgb, T._IDENTITY) == grey.sum()
    # the blend of an RGB image is the per-byte table (the tables are computed on "L" ramps)
    im = Image.fromarray(rgb)
    for f in (0.6, 0.93, 1.0, 1.37):
        lut = T._blend_lut(0, f)
        np.testing.assert_array_equal(np.asarray(Image.blend(Image.new("RGB", im.size, 0), im, f)), lut[rgb])
        sat = T._saturation_lut(f)
        deg = im.convert("L").convert("RGB")
        want = np.asarray(Image.blend(deg, im, f))
        np.testing.assert_array_equal(want, sat[grey[..., None] * 256 + rgb])


def test_composite_is_the_integer_formula_for_every_colour_and_alpha():
    c, a = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    rgba = np.stack([c, 255 - c, (c * 7) % 256, a], axis=-1).astype(np.uint8)  # all (colour, alpha) pairs
    for bg in [(255, 255, 255), (0, 0, 0), (13, 200, 77)]:
        cc = rgba[..., :3].astype(np.int64)
        aa = rgba[..., 3:4].astype(np.int64)
        want = ((cc * aa + np.array(bg) * (255 - aa) + 127) // 255).astype(np.uint8)
        np.testing.assert_array_equal(T.to_rgb(rgba, bg), want)
        np.testing.assert_array_equal(np.asarray(T.to_rgb(Image.fromarray(rgba, "RGBA"), bg)), want)


@pytest.mark.parametrize("bg", ["drop", "white", (10, 20, 30)])
def test_decode_view_is_load_rgb(tmp_path, bg):
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 256, (30, 30, 4), dtype=np.uint8)
    files = {"RGBA": Image.fromarray(rgba, "RGBA"), "RGB": Image.fromarray(rgba[..., :3], "RGB"),
             "LA": Image.fromarray(rgba[..., :2], "LA"), "P": Image.fromarray(rgba[..., :3], "RGB").convert("P")}
    for mode, im in files.items():
        p = tmp_path / f"{mode}.png"
        im.save(p)
        want = np.asarray(T.load_rgb(p, bg))
        np.testing.assert_array_equal(T.decode_view(p, bg)[..., :3], want, err_msg=mode)
        resized = np.asarray(T.load_rgb(p, bg).resize((45, 45), Image.BILINEAR))
        np.testing.assert_array_equal(T.decode_view(p, bg, 45)[..., :3], resized, err_msg=mode)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(Exception):
        T.decode_view(bad, bg, 30)


def test_seeded_torch_seeds_the_cpu_generator_as_manual_seed_and_restores_it():
    torch.manual_seed(5)
    want = torch.rand(4)
    before = torch.random.get_rng_state()
    with T.seeded_torch(5):
        got = torch.rand(4)
    assert torch.equal(got, want)
    assert torch.equal(torch.random.get_rng_state(), before)


# ------------------------------------------------------------------------------ points
def test_compose_repeat_and_in_place_chain_match_the_old_transforms():
    bench = _bench()
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(500, 3)).astype(np.float32) * 3 + 7
    aug = T.paper_point_augmentation()
    for seed in range(5):
        a = aug.repeat(pts, np.random.default_rng(seed), 3)
        r = np.random.default_rng(seed)
        b = [aug(pts, r) for _ in range(3)]
        r = np.random.default_rng(seed)
        c = [bench.legacy_point_augmentation(pts, r) for _ in range(3)]
        for x, y, z in zip(a, b, c):
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(x, z)
    # the input is never modified, normals turn with the points, p < 1 still draws
    keep = pts.copy()
    six = np.concatenate([pts, rng.normal(size=(500, 3)).astype(np.float32)], axis=1)
    chain = T.Compose([T.Normalize(), T.RandomRotateUp(p=0.5), T.Jitter(p=0.5), lambda p: p * 2])
    for seed in range(6):
        out = chain.repeat(six, np.random.default_rng(seed), 2)
        r = np.random.default_rng(seed)
        one = []
        for _ in range(2):  # what Compose did before: every transform called on the previous output
            x = six
            for t in chain.transforms:
                x = t(x, r) if isinstance(t, T.PointTransform) else np.asarray(t(x), dtype=np.float32)
            one.append(x)
        for x, y in zip(out, one):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(pts, keep)


# ------------------------------------------------------------------------------ the dataset
@pytest.mark.parametrize("bg", ["drop", "white"])
def test_dataset_items_are_the_old_paths_bit_for_bit(demo, bg):
    bench = _bench()
    for size in (48, 40):  # views at the output size, and resized
        ds = ShapeNetRenderDataset(demo, num_points=256, image_size=size, seed=4, background=bg, check_sample=0)
        assert bench.check_identical(ds, T.paper_image_augmentation(size), epochs=(0, 3)) == 2 * len(ds)


@needs_numba
def test_dataset_fallbacks_give_the_same_items(demo, monkeypatch):
    ds = ShapeNetRenderDataset(demo, num_points=256, image_size=48, seed=4, background="white", check_sample=0)
    assert ds._fast_image is not None
    fast = [ds[i] for i in range(len(ds))]
    # a replaced image_transform is used as it is (here the same chain, so the same items)
    ds.image_transform = T.paper_image_augmentation(48)
    slow = [ds[i] for i in range(len(ds))]
    # without numba the dataset runs the torchvision chain
    monkeypatch.setattr(T._IMG_KERNELS, "get", lambda: None)
    nonumba = ShapeNetRenderDataset(demo, num_points=256, image_size=48, seed=4, background="white", check_sample=0)
    assert nonumba._fast_image is None
    plain = [nonumba[i] for i in range(len(ds))]
    for a, b, c in zip(fast, slow, plain):
        for key in ("points1", "points2", "image"):
            assert torch.equal(a[key], b[key]) and torch.equal(a[key], c[key])


def test_dataloader_workers_give_the_items_of_the_main_process(demo):
    ds = ShapeNetRenderDataset(demo, num_points=128, image_size=48, seed=2, background="drop", check_sample=0)
    ds.set_epoch(1)
    main = [ds[i] for i in range(len(ds))]
    loader = torch.utils.data.DataLoader(ds, batch_size=len(ds), num_workers=2, worker_init_fn=T.worker_init_fn)
    batch = next(iter(loader))
    for key in ("points1", "points2", "image"):
        assert torch.equal(batch[key], torch.stack([m[key] for m in main]))
