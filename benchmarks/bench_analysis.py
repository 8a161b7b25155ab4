"""Speed of the explorer's analysis layer (``crosspoint.analysis``) on the CPU, with baselines from
the same run.

Interactive actions on one object (the GUI wants each to finish in about a second):

- ``segment``: k-means part discovery (no head) and the segmentation head (category given, and
  inferred over all categories: the backbone runs once, the head once per category);
- ``point_heatmap`` (Grad-CAM through the pooling) against the naive alternative, occlusion by
  finite differences (one forward pass per deleted point; timed on a batch and extrapolated to
  every point);
- ``image_heatmap`` (Grad-CAM on the last ResNet stage);
- a 100k-point cloud: FPS to 2048 + segment + propagation back to every point, with the
  propagation chunked (ours) against an unchunked tree query and a blocked brute-force search.

``--million`` (only this section): each analysis end to end on a 1,000,000-point cloud (segment
by k-means and by the head, the point and image heatmaps) with the stages timed alone (subsample,
model, propagate) and the export of the labels (``write_point_cloud`` .ply / .npz / .pcd).

Dataset views: ``embed_dataset`` throughput (objects/s) on a small generated demo (80 objects),
then the cached call; ``umap_2d`` for 500 and 2000 objects (first fit in the process, which
includes numba compiling umap-learn, a second fit, and the cached call).

Models: a random-weight DGCNN (k 20, 1024 dims) + ResNet-18 (``--image-arch`` for resnet50, the
paper's) and a segmentation head on the DGCNN with the demo's 8-category part table, unless
``--checkpoint`` names a bundle (then its models are used; the head part is skipped when it has
none). Speed does not depend on the weights.

Run: ``python benchmarks/bench_analysis.py [--repeats 3] [--checkpoint ckpt.pt] [--image-arch resnet18] [--million]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _best(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def _row(name: str, seconds: float, extra: str = "") -> None:
    print(f"  {name:<58s} {seconds * 1000:9.1f} ms  {extra}", flush=True)


def _models(tmp: Path, image_arch: str) -> tuple[Path, Path]:
    import torch

    from crosspoint.data.partseg import PartTable
    from crosspoint.data.synthetic import CLASS_PARTS, CLASSES, N_PARTS, SYNSETS, class_part_ids
    from crosspoint.evaluation.partseg import part_table_to_meta
    from crosspoint.models import DGCNN, ImageEncoder, PartSegHead, save_model_bundle

    torch.manual_seed(0)
    pe = DGCNN(k=20)
    ie = ImageEncoder(image_arch)
    head = PartSegHead(num_parts=N_PARTS, num_categories=len(CLASSES), emb_dims=2 * pe.emb_dims,
                       local_dims=pe.edge_feature_dim)
    meta = {"classes": [{"name": c, "synset": SYNSETS[c], "part_ids": class_part_ids(c)} for c in CLASSES],
            "n_parts": N_PARTS, "part_names": [f"{c}/{p}" for c in CLASSES for p in CLASS_PARTS[c]]}
    full = save_model_bundle(tmp / "full.pt", point_encoder=pe, image_encoder=ie)
    seg = save_model_bundle(tmp / "seg.pt", point_encoder=pe, seg_head=head,
                            meta={"part_table": part_table_to_meta(PartTable.from_demo_meta(meta))})
    return full, seg


def bench_object(session, seg_session, repeats: int) -> None:
    import torch

    from crosspoint import analysis as A
    from crosspoint.analysis.embed import encode_points
    from crosspoint.data.synthetic import demo_object
    from crosspoint.render import render_views

    obj = demo_object("chair", 0, n_points=2048)
    img = render_views(obj, 1, size=137, seed=0)[0][0]
    print("\none 2048-point object (demo chair), 137 px render")
    t, prep = _best(lambda: A.prepare_points(obj, 2048), repeats)
    _row("prepare_points (already 2048 points: no FPS, unit sphere)", t)
    t, _ = _best(lambda: A.embed_clouds(session, [obj]), repeats)
    _row("embed_clouds (1 cloud)", t)
    t, _ = _best(lambda: A.segment(session, obj, k_parts=4), repeats)
    _row("segment: k-means on edge features + xyz (k=4)", t)
    if seg_session is not None:
        t, _ = _best(lambda: A.segment(seg_session, obj, category="chair"), repeats)
        _row("segment: head, category given", t)
        t, r = _best(lambda: A.segment(seg_session, obj.points), repeats)
        _row(f"segment: head, category inferred ({len(r.category_scores)} categories)", t)
    if session.has_image_encoder:
        t, _ = _best(lambda: A.point_heatmap(session, obj, img), repeats)
        _row("point_heatmap gradcam (image embedded in the call)", t)
        q = A.embed_images(session, [img])[0]
        t_grad, res = _best(lambda: A.point_heatmap_result(session, obj, q), repeats)
        _row("point_heatmap gradcam (image projection given)", t_grad)
        t, _ = _best(lambda: A.point_heatmap(session, obj, q, method="grad_x_input"), repeats)
        _row("point_heatmap grad_x_input (image projection given)", t)
        # baseline: occlusion by finite differences, one forward pass per deleted point
        from scipy.spatial import cKDTree

        pts = res.prepared.points
        nn = cKDTree(pts).query(pts, k=2)[1][:, 1]
        batch = 16

        def occlude(start):
            clouds = np.repeat(pts[None], batch, 0)
            for j in range(batch):
                clouds[j, start + j] = pts[nn[start + j]]  # replace the point by its nearest neighbour
            with torch.no_grad():
                return encode_points(session, clouds)[1]

        t_batch, _ = _best(lambda: occlude(0), max(1, repeats - 1))
        t_occ = t_batch / batch * pts.shape[0]
        _row("baseline: occlusion heat, finite differences (extrapolated)", t_occ,
             f"x{t_occ / t_grad:.0f} the gradient heat")
        t, _ = _best(lambda: A.image_heatmap(session, obj, img), repeats)
        _row("image_heatmap gradcam (cloud embedded in the call)", t)
        pq = A.project_clouds(session, [obj])[0]
        t, _ = _best(lambda: A.image_heatmap(session, pq, img), repeats)
        _row("image_heatmap gradcam (cloud projection given)", t)
        cam = A.image_heatmap(session, pq, img)
        t, _ = _best(lambda: A.overlay(img, cam), repeats)
        _row("overlay (137 x 137)", t)
        gallery = np.random.default_rng(0).normal(size=(5000, q.shape[0])).astype(np.float32)
        t, _ = _best(lambda: A.retrieve(session, q, gallery), repeats)
        _row("retrieve: image projection vs 5000 projections", t)


def bench_large(session, repeats: int, n_large: int) -> None:
    import torch

    from crosspoint import analysis as A
    from crosspoint.data.synthetic import demo_object

    big = demo_object("airplane", 0, n_points=n_large).points
    print(f"\na {n_large:,}-point cloud (demo airplane)")
    n_model = session.points_for(None)  # the points segment() gives the model (the checkpoint's)
    t_prep, prep = _best(lambda: A.prepare_points(big, n_model), repeats)
    _row(f"prepare_points: FPS to {n_model} + unit sphere", t_prep)
    t_seg, seg = _best(lambda: A.segment(session, big, k_parts=4), repeats)
    _row("segment (clusters) incl. FPS and propagation to every point", t_seg)
    vals = seg.subset_labels
    t_chunk, out = _best(lambda: A.to_full(vals, prep, big), repeats)
    _row("to_full: chunked cKDTree (ours)", t_chunk)
    t_one, out1 = _best(lambda: A.to_full(vals, prep, big, chunk=10 ** 9), repeats)
    _row("baseline: one unchunked cKDTree query", t_one, f"x{t_one / t_chunk:.2f} ours")
    sub = torch.from_numpy(prep.original_points())
    full = torch.from_numpy(big)

    def brute():
        idx = torch.empty(full.shape[0], dtype=torch.long)
        for s in range(0, full.shape[0], 16384):
            idx[s:s + 16384] = torch.cdist(full[s:s + 16384], sub).argmin(1)
        return vals[idx.numpy()]

    t_brute, outb = _best(brute, max(1, repeats - 1))
    _row("baseline: blocked brute force (torch.cdist + argmin)", t_brute, f"x{t_brute / t_chunk:.1f} ours")
    assert np.array_equal(out, out1)
    print(f"  (brute force agrees on {np.mean(outb == out) * 100:.3f}% of points; ties differ)")
    huge = np.concatenate([big] * max(1, 1_000_000 // n_large))
    from crosspoint.analysis.points import Prepared

    p2 = Prepared(prep.points, prep.index, prep.center, prep.scale, huge.shape[0])
    t, _ = _best(lambda: A.to_full(vals, p2, huge), 1)
    _row(f"to_full to {huge.shape[0]:,} points (chunked)", t)


def bench_million(session, seg_session, tmp: Path, repeats: int, n: int = 1_000_000) -> None:
    """Issue 13 item 1: each analysis on a 1M-point cloud end to end (goal <= 5 s on the CPU), with
    its stages timed alone: subsample (FPS to the model's points + unit sphere), the model, the
    propagation to every point (one nearest-neighbour search), and the export of the result."""
    from crosspoint import analysis as A
    from crosspoint.analysis.points import propagation_index
    from crosspoint.data.synthetic import demo_object
    from crosspoint.io import write_point_cloud
    from crosspoint.pointcloud import PointCloud
    from crosspoint.render import render_views

    t = time.perf_counter()
    cloud = demo_object("chair", 0, n_points=n)
    img = render_views(demo_object("chair", 0, n_points=2048), 1, size=137, seed=0)[0][0]
    print(f"\na {n:,}-point cloud (demo chair, made in {time.perf_counter() - t:.1f} s); best of {repeats}; "
          "goal <= 5 s each end to end")
    pts = cloud.points
    t_sub, prep = _best(lambda: A.prepare_points(cloud, session.points_for(None)), repeats)
    t_prop, idx = _best(lambda: propagation_index(prep, pts), repeats)
    _row("  stage: subsample (FPS to 2048 + unit sphere)", t_sub)
    _row("  stage: propagate (nearest picked point of every point)", t_prop)
    labels = np.zeros(n, np.int64)

    def export(ext, values):
        return write_point_cloud(tmp / f"million{ext}", PointCloud(pts, labels=values))

    t_exp = {}
    for ext in (".ply", ".npz", ".pcd"):
        t_exp[ext], _ = _best(lambda: export(ext, labels), repeats)
        size = (tmp / f"million{ext}").stat().st_size / 2 ** 20
        _row(f"  stage: export write_point_cloud {ext} (points + labels, {size:.0f} MiB)", t_exp[ext])

    def timed(name, fn, model_fn, propagates=True):
        """``fn`` end to end on the cloud; ``model_fn`` the same on the prepared 2048 points alone
        (no FPS, no propagation): the model stage."""
        total, out = _best(fn, repeats)
        model, _ = _best(model_fn, repeats)
        tail = f"= subsample {t_sub:.2f} + model {model:.2f}" + (f" + propagate {t_prop:.2f}" if propagates else "")
        _row(name, total, f"{tail} s (stages alone); + export .ply {t_exp['.ply']:.2f} s -> "
                          f"{total + t_exp['.ply']:.2f} s")
        return out

    r = timed("segment: k-means parts (k=4, with the xyz baseline)", lambda: A.segment(session, cloud, k_parts=4),
              lambda: A.segment(session, prep, k_parts=4))
    assert r.labels.shape == (n,)
    timed("segment: k-means parts (k=4, no baseline)", lambda: A.segment(session, cloud, k_parts=4, baseline=False),
          lambda: A.segment(session, prep, k_parts=4, baseline=False))
    if seg_session is not None:
        timed("segment: head, category given", lambda: A.segment(seg_session, cloud, category="chair"),
              lambda: A.segment(seg_session, prep, category="chair"))
        r = timed("segment: head, category inferred (from the bare points)", lambda: A.segment(seg_session, pts),
                  lambda: A.segment(seg_session, prep))
        print(f"    (inferred over {len(r.category_scores)} categories: {r.category})")
    if session.has_image_encoder:
        q = A.embed_images(session, [img])[0]
        h = timed("point_heatmap gradcam (image projection given)", lambda: A.point_heatmap(session, cloud, q),
                  lambda: A.point_heatmap(session, prep, q))
        assert h.shape == (n,)
        timed("point_heatmap gradcam (image embedded in the call)", lambda: A.point_heatmap(session, cloud, img),
              lambda: A.point_heatmap(session, prep, img))
        timed("image_heatmap gradcam (no propagation: the heat is on the image)",
              lambda: A.image_heatmap(session, cloud, img), lambda: A.image_heatmap(session, prep, img),
              propagates=False)


def bench_dataset(session, tmp: Path, repeats: int) -> None:
    from crosspoint import analysis as A
    from crosspoint.data.synthetic import generate_demo

    root = tmp / "demo"
    t = time.perf_counter()
    generate_demo(root, per_class=10, n_views=2, size=64)
    print(f"\ndataset: generated demo, 80 objects ({time.perf_counter() - t:.1f} s)")
    cache = tmp / "emb"
    t = time.perf_counter()
    emb = A.embed_dataset(session, root, n_points=1024, cache_dir=cache)
    t1 = time.perf_counter() - t
    _row(f"embed_dataset, first call ({len(emb)} objects, 1024 points)", t1, f"{len(emb) / t1:.1f} objects/s")
    t2, again = _best(lambda: A.embed_dataset(session, root, n_points=1024, cache_dir=cache), repeats)
    _row("embed_dataset, cached", t2, f"x{t1 / t2:.0f} faster (from_cache={again.from_cache})")
    mean, std = A.svm_accuracy(emb.features, emb.labels)
    t, _ = _best(lambda: A.svm_accuracy(emb.features, emb.labels), repeats)
    _row("svm_accuracy (5-fold, 80 objects)", t, f"acc {mean:.3f} +- {std:.3f}")

    rng = np.random.default_rng(0)
    for m in (500, 2000):
        centers = rng.normal(size=(8, 2048)) * 2
        x = (centers[rng.integers(0, 8, m)] + rng.normal(size=(m, 2048))).astype(np.float32)
        ucache = tmp / f"umap{m}"
        t = time.perf_counter()
        A.umap_2d(x, cache_dir=ucache)
        t_first = time.perf_counter() - t
        _row(f"umap_2d {m} x 2048: fit{' (first in process: numba compile or cache load)' if m == 500 else ''}",
             t_first)
        if m == 500:
            t = time.perf_counter()
            A.umap_2d(x + 0.01, cache_dir=ucache)
            _row(f"umap_2d {m} x 2048: second fit (compiled)", time.perf_counter() - t)
        t, _ = _best(lambda: A.umap_2d(x, cache_dir=ucache), repeats)
        _row(f"umap_2d {m} x 2048: cached", t, f"x{t_first / t:.0f} faster")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--checkpoint", default=None, help="a bundle to use instead of random weights")
    ap.add_argument("--image-arch", default="resnet18")
    ap.add_argument("--large", type=int, default=100_000, help="points of the large cloud")
    ap.add_argument("--skip-dataset", action="store_true")
    ap.add_argument("--million", action="store_true",
                    help="only the 1M-point section (issue 13: segment, heatmaps, export on 1,000,000 points)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    from crosspoint import analysis as A

    with tempfile.TemporaryDirectory(prefix="bench_analysis_") as d:
        tmp = Path(d)
        if args.checkpoint:
            session = A.ModelSession(args.checkpoint, device="cpu")
            seg_session = session if session.has_seg_head else None
        else:
            full, seg = _models(tmp, args.image_arch)
            session = A.ModelSession(full, device="cpu")
            seg_session = A.ModelSession(seg, device="cpu")
        info = session.info()
        print(f"models: {info['point_arch']} k={info['k']} + {info['image_arch']}; torch threads "
              f"{torch.get_num_threads()}; device {info['device']}; OMP_WAIT_POLICY "
              f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}; load {os.getloadavg()[0]:.2f}")
        A.segment(session, np.random.default_rng(0).normal(size=(600, 3)).astype(np.float32), n_points=256)  # warm-up
        if args.million:
            bench_million(session, seg_session, tmp, args.repeats)
            return 0
        bench_object(session, seg_session, args.repeats)
        bench_large(session, args.repeats, args.large)
        if not args.skip_dataset:
            bench_dataset(session, tmp, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
