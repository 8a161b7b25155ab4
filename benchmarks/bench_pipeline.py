"""The pretraining data pipeline: milliseconds per sample per core, today's path against the old one.

    python benchmarks/bench_pipeline.py [--samples 400] [--data DIR] [--renders DIR] [--workers 0]

One sample is ``PretrainDataset.__getitem__`` at the paper's settings: 2048 points read from the
object's file, two independent point augmentations (:func:`paper_point_augmentation`), one random
view decoded from its PNG and put through the image augmentation (:func:`paper_image_augmentation`:
resize to 224, colour jitter 0.4, flip, tensor, ImageNet normalisation).

The baseline, measured in the same run on the same objects, is a faithful copy of the per-sample
path as it was before issue 13 (``legacy_item`` below: the transform classes copying the cloud at
every step, ``max(axis=0)`` reductions, a fresh normalisation per augmentation, ``torch.manual_seed``
for every item, the uint32 alpha composite, the torchvision chain on PIL images). Before timing,
every item of both paths is compared: they must be identical, bit for bit (the augmentations are
functions of (seed, epoch, object), and resuming a run relies on that).

Datasets (each with both backgrounds, "drop" = the paper config's, "white" = the datasets' default):

* ``demo-224``: a small procedural demo with 224 px views (no resize), generated into a temporary
  folder unless ``--data`` names one;
* ``renders-137``: the same objects with the real 137 px ShapeNetRendering PNGs of ``--renders``
  (default ``shared/data/renders`` when present) as their views (resized to 224 as in the paper).

Timing: one thread, one process (``torch.set_num_threads(1)``): the per-core cost a DataLoader
worker pays, as CPU time of the process per sample (other processes on a shared machine disturb it
far less than the wall clock, which is printed too). Old and new run in alternating passes; each
figure is the best of ``--repeats`` passes (a shared machine only ever adds time). ``--workers N`` also runs a ``DataLoader`` with N workers (batch 20, pinned memory when
CUDA is there) and prints samples/s.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# ----------------------------------------------------------------------------- the old path (baseline)
def _legacy_check(points) -> np.ndarray:
    pts = np.array(points, dtype=np.float32, copy=True)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"expected points of shape (N, C>=3), got {pts.shape}")
    return pts


def legacy_point_augmentation(points, rng: np.random.Generator) -> np.ndarray:
    """The old ``paper_point_augmentation()(points, rng)``: Compose copied the cloud, and so did every
    transform's ``__call__`` before its step."""
    from crosspoint.data.transforms import rotation_matrix
    from crosspoint.geometry import normalize_unit_sphere

    pts = _legacy_check(points)
    # Normalize
    pts = _legacy_check(pts)
    if pts.shape[0]:
        xyz, _, _ = normalize_unit_sphere(pts[:, :3])
        pts[:, :3] = xyz * np.float32(1.0)
    # RandomScale(0.5, 2.0)
    pts = _legacy_check(pts)
    pts[:, :3] *= np.float32(rng.uniform(0.5, 2.0))
    # RandomRotateUp("y")
    pts = _legacy_check(pts)
    r = rotation_matrix(rng.uniform() * 2.0 * math.pi, "y").astype(np.float32)
    pts[:, :3] = pts[:, :3] @ r.T
    if pts.shape[1] >= 6:
        pts[:, 3:6] = pts[:, 3:6] @ r.T
    # RandomTranslate(0.5)
    pts = _legacy_check(pts)
    if pts.shape[0]:
        extent = pts[:, :3].max(axis=0) - pts[:, :3].min(axis=0)
        shift = rng.uniform(-0.5, 0.5, size=3) * extent
        pts[:, :3] += shift.astype(np.float32)
    # Jitter(0.01, 0.05)
    pts = _legacy_check(pts)
    noise = np.clip(rng.normal(0.0, 0.01, size=(pts.shape[0], 3)), -0.05, 0.05)
    pts[:, :3] += noise.astype(np.float32)
    # RandomInputDropout(0.875)
    pts = _legacy_check(pts)
    if pts.shape[0]:
        ratio = rng.uniform() * 0.875
        drop = rng.uniform(size=pts.shape[0]) <= ratio
        if drop.any():
            pts[drop] = pts[0]
    return pts


def legacy_load_rgb(path, background):
    """The old ``load_rgb``: PIL decode, then ``convert("RGB")`` ("drop") or the uint32 composite."""
    from PIL import Image

    from crosspoint.data.transforms import _ALPHA_MODES, _background_rgb

    rgb = _background_rgb(background)
    with Image.open(path) as im:
        im.load()
        has_alpha = im.mode in _ALPHA_MODES or (im.mode == "P" and "transparency" in im.info)
        if rgb is None or not has_alpha:
            return im.convert("RGB")
        arr = np.asarray(im.convert("RGBA"))
        c = arr[..., :3].astype(np.uint32)
        a = arr[..., 3:4].astype(np.uint32)
        b = np.asarray(rgb, dtype=np.uint32)
        return Image.fromarray(((c * a + b * (255 - a) + 127) // 255).astype(np.uint8), "RGB")


@contextlib.contextmanager
def legacy_seeded_torch(seed):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def legacy_item(ds, index: int, image_transform) -> dict:
    """The old ``PretrainDataset.__getitem__`` (integer seed) on dataset ``ds``."""
    import torch

    from crosspoint.data.base import fix_point_count
    from crosspoint.data.transforms import item_rng

    rng = item_rng(ds.seed, ds.epoch, index)
    raw = ds._load_points(index)
    pts = fix_point_count(raw, ds.num_points, ds.sampling, rng)
    a1 = legacy_point_augmentation(pts, rng)
    a2 = legacy_point_augmentation(pts, rng)
    paths = ds._view_paths(index)
    order = rng.permutation(len(paths))
    image = legacy_load_rgb(paths[int(order[0])], ds.background)
    torch_seed = int(rng.integers(2**62))
    with legacy_seeded_torch(torch_seed):
        img = image_transform(image)
    return {
        "points1": torch.from_numpy(np.ascontiguousarray(a1[:, :3], dtype=np.float32)),
        "points2": torch.from_numpy(np.ascontiguousarray(a2[:, :3], dtype=np.float32)),
        "image": img,
        "index": int(index),
        "label": int(ds.labels[index]),
    }


# ----------------------------------------------------------------------------- datasets
def make_demo(out: Path, size: int = 224, per_class: int = 3, views: int = 4) -> Path:
    from crosspoint.data.synthetic import generate_demo

    return generate_demo(out, per_class=per_class, n_views=views, size=size, workers=1)


def with_real_renders(demo: Path, renders: Path, out: Path) -> Path:
    """A copy of ``demo`` whose views are the real PNGs of ``renders`` (cycled over the objects)."""
    pngs = sorted(p for p in renders.rglob("*.png"))
    if not pngs:
        raise FileNotFoundError(f"{renders}: no PNG")
    shutil.copytree(demo / "ShapeNet", out / "ShapeNet")
    if (demo / "demo_meta.json").is_file():
        shutil.copy(demo / "demo_meta.json", out / "demo_meta.json")
    k = 0
    for ply in sorted((out / "ShapeNet").glob("*/*.ply")):
        d = out / "ShapeNetRendering" / ply.parent.name / ply.stem / "rendering"
        d.mkdir(parents=True)
        for v in range(4):
            shutil.copy(pngs[k % len(pngs)], d / f"{v:02d}.png")
            k += 1
    return out


def open_dataset(root: Path, background: str, image_size: int = 224, num_points: int = 2048):
    from crosspoint.data.shapenet_render import ShapeNetRenderDataset

    return ShapeNetRenderDataset(root, num_points, image_size, seed=1, background=background, check_sample=0)


# ----------------------------------------------------------------------------- measuring
def per_sample_ms(fn, n_items: int, samples: int, repeats: int, set_epoch, clock=time.process_time) -> float:
    """Best over ``repeats`` passes of the mean ms per call of ``fn(i)`` over ``samples`` items, by
    ``clock`` (default: this process's CPU time, i.e. the cost on one core, which other processes on
    a shared machine disturb far less than the wall clock)."""
    best = math.inf
    for r in range(repeats):
        set_epoch(r)
        t0 = clock()
        for s in range(samples):
            fn(s % n_items)
        best = min(best, (clock() - t0) / samples * 1e3)
    return best


def compare(old_fn, new_fn, n_items: int, samples: int, repeats: int, set_epoch) -> dict:
    """Old and new paths in alternating passes (the same conditions for both): best CPU ms and best
    wall ms per sample of each."""
    out = {"old_cpu": math.inf, "new_cpu": math.inf, "old_wall": math.inf, "new_wall": math.inf}
    for r in range(repeats):
        for name, fn in (("old", old_fn), ("new", new_fn)):
            for clock in ("cpu", "wall"):
                ms = per_sample_ms(fn, n_items, samples, 1, lambda _e: set_epoch(r),
                                   time.process_time if clock == "cpu" else time.perf_counter)
                out[f"{name}_{clock}"] = min(out[f"{name}_{clock}"], ms)
    return out


def check_identical(ds, image_transform, epochs=(0, 1)) -> int:
    """Compare every item of both paths for ``epochs``; returns the number compared (raises if any differs)."""
    import torch

    n = 0
    for e in epochs:
        ds.set_epoch(e)
        for i in range(len(ds)):
            a, b = ds[i], legacy_item(ds, i, image_transform)
            for key in ("points1", "points2", "image"):
                if not torch.equal(a[key], b[key]):
                    diff = (a[key].double() - b[key].double()).abs().max().item()
                    raise AssertionError(f"item {i} epoch {e}: {key} differs from the old path (max |diff| {diff:g})")
            n += 1
    return n


def bench_dataset(name: str, root: Path, args) -> list[tuple]:
    from crosspoint.data.transforms import paper_image_augmentation

    rows = []
    for bg in ("drop", "white"):
        ds = open_dataset(root, bg)
        tv = paper_image_augmentation(ds.image_size)
        n = check_identical(ds, tv)
        # warm both paths (numba cache, file cache) before timing
        for i in range(len(ds)):
            ds[i]
            legacy_item(ds, i, tv)
        m = compare(lambda i: legacy_item(ds, i, tv), ds.__getitem__, len(ds), args.samples, args.repeats,
                    ds.set_epoch)
        old, new = m["old_cpu"], m["new_cpu"]
        rows.append((name, bg, old, new, n))
        print(f"  {name:12s} {bg:6s} old {old:6.2f} ms  new {new:6.2f} ms  -> {old / new:4.1f}x  "
              f"({1e3 / new:5.0f} samples/s/core; wall clock {m['old_wall']:.2f} -> {m['new_wall']:.2f} ms; "
              f"{n} items identical)", flush=True)
    return rows


def loader_rate(root: Path, workers: int, batches: int = 30, batch_size: int = 20, background: str = "drop") -> float:
    """Samples/s of a DataLoader with ``workers`` workers over the dataset at ``root`` (paper settings)."""
    import torch

    from crosspoint.data.transforms import worker_init_fn

    ds = open_dataset(root, background)
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=batches * batch_size * 4)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers,
                                         pin_memory=torch.cuda.is_available(), drop_last=True,
                                         persistent_workers=workers > 0, worker_init_fn=worker_init_fn,
                                         prefetch_factor=4 if workers > 0 else None)
    it = iter(loader)
    for _ in range(max(2, workers)):  # start the workers, fill the queues
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    rate = batches * batch_size / (time.perf_counter() - t0)
    del it
    return rate


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=300, help="items per timed pass")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes (the best is kept)")
    ap.add_argument("--data", default=None, help="a ShapeNetRender-layout dataset (default: a small 224 px demo)")
    default_renders = REPO.parent / "shared" / "data" / "renders"
    ap.add_argument("--renders", default=str(default_renders) if default_renders.is_dir() else None,
                    help="folder of real 137 px renders (PNG) used as views of a second dataset")
    ap.add_argument("--workers", type=int, default=0, help="also measure a DataLoader with this many workers")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        demo = Path(args.data) if args.data else make_demo(tmp / "demo")
        print(f"per sample, one core (2048 points, both point augmentations, one 224 px augmented view); "
              f"data ready in {time.perf_counter() - t0:.1f} s", flush=True)
        rows += bench_dataset("demo-224" if not args.data else Path(args.data).name, demo, args)
        if args.renders:
            real = with_real_renders(demo, Path(args.renders), tmp / "real")
            rows += bench_dataset("renders-137", real, args)
        if args.workers:
            rate = loader_rate(demo, args.workers)
            print(f"  DataLoader, {args.workers} workers, batch 20: {rate:.0f} samples/s", flush=True)
    old = [r[2] for r in rows]
    new = [r[3] for r in rows]
    print(f"summary: old {min(old):.2f}-{max(old):.2f} ms, new {min(new):.2f}-{max(new):.2f} ms per sample per core; "
          f"ratio {min(o / n for o, n in zip(old, new)):.1f}-{max(o / n for o, n in zip(old, new)):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
