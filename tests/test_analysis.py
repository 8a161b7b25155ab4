"""The explorer's analysis layer (crosspoint.analysis) on small random-weight models: loading,
preparing and propagating points, embeddings, part segmentation (head and clusters), heatmaps
(incl. a hand-made gradient check), retrieval, dataset embeddings and their cache, UMAP, SVM."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from crosspoint import analysis as A
from crosspoint.data.synthetic import CLASSES, N_PARTS, class_part_ids, demo_part_table_meta, demo_object
from crosspoint.models import DGCNN, ImageEncoder, PartSegHead, save_model_bundle

torch.set_num_threads(2)

N = 256  # points per cloud in these tests
IMG = 64  # model input size in these tests


def _randomise_bn(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_mean.copy_(0.05 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("analysis_ckpt")
    torch.manual_seed(0)
    pe = _randomise_bn(DGCNN(k=8, emb_dims=64, projection_dim=32), 1)
    ie = _randomise_bn(ImageEncoder("resnet18", projection_dim=32), 2)
    head = _randomise_bn(PartSegHead(num_parts=N_PARTS, num_categories=len(CLASSES), emb_dims=128, local_dims=512), 3)
    out = {
        "full": save_model_bundle(d / "full.pt", point_encoder=pe, image_encoder=ie),
        "seg": save_model_bundle(d / "seg.pt", point_encoder=pe, seg_head=head,
                                 meta={"part_table": demo_part_table_meta()}),
        "other": save_model_bundle(d / "other.pt", image_encoder=ie,
                                   point_encoder=_randomise_bn(DGCNN(k=8, emb_dims=64, projection_dim=32), 4)),
    }
    return out


@pytest.fixture(scope="module")
def session(ckpts) -> A.ModelSession:
    return A.ModelSession(ckpts["full"], device="cpu")


@pytest.fixture(scope="module")
def seg_session(ckpts) -> A.ModelSession:
    return A.ModelSession(ckpts["seg"], device="cpu")


@pytest.fixture(scope="module")
def objects() -> list:
    return [demo_object(c, 0, n_points=600) for c in ("chair", "mug", "airplane", "table")]


@pytest.fixture(scope="module")
def image(objects) -> np.ndarray:
    from crosspoint.render import render_views

    return render_views(objects[0], 1, size=48, seed=0)[0][0]  # (48, 48, 4) uint8


# ------------------------------------------------------------------------------ session
def test_session_info_and_fingerprint(ckpts, session, tmp_path):
    info = session.info()
    assert info["point_arch"] == "dgcnn" and info["k"] == 8 and info["feature_dim"] == 128
    assert info["projection_dim"] == 32 and info["image_arch"] == "resnet18" and info["seg_head"] is None
    assert info["device"] == "cpu" and info["format"] == "bundle"
    assert info["parameters"]["point_encoder"] > 0 and info["parameters"]["image_encoder"] > 0
    assert not any(p.requires_grad for p in session.point_encoder.parameters())
    assert not session.point_encoder.training and not session.image_encoder.training
    again = A.ModelSession(ckpts["full"], device="cpu")
    assert again.fingerprint == session.fingerprint
    assert A.ModelSession(ckpts["full"], device="cpu", k=5).fingerprint != session.fingerprint
    assert A.ModelSession(ckpts["other"], device="cpu").fingerprint != session.fingerprint


def test_seg_session_info(seg_session):
    seg = seg_session.info()["seg_head"]
    assert seg["categories"] == list(CLASSES)
    assert seg["parts"]["chair"] == ["seat", "back", "leg", "arm"]
    assert seg_session.info()["image_arch"] is None


def test_missing_demo_checkpoint(monkeypatch, tmp_path):
    import crosspoint.analysis.session as S

    monkeypatch.setattr(S, "default_checkpoint_path", lambda: tmp_path / "nope.pt")
    with pytest.raises(A.AnalysisError, match="no bundled demo checkpoint"):
        A.ModelSession(None)
    assert A.default_checkpoint_path().name == "demo_checkpoint.pt"


def test_bad_checkpoint_is_analysis_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(A.AnalysisError, match="bad.pt"):
        A.ModelSession(bad, device="cpu")


def test_official_point_file_has_no_image_side(reference_fixtures, objects, image):
    s = A.ModelSession(reference_fixtures / "dgcnn_cls.pth", device="cpu", k=8)
    assert s.info()["image_arch"] is None and s.format == "official"
    assert A.embed_clouds(s, objects[:1], n_points=N).shape == (1, 2048)
    for call in (lambda: A.embed_images(s, [image]), lambda: A.point_heatmap(s, objects[0], image, n_points=N),
                 lambda: A.image_heatmap(s, objects[0], image), lambda: A.retrieve(s, image, objects, n_points=N),
                 lambda: A.retrieve_images(s, objects[0], [image], n_points=N)):
        with pytest.raises(A.AnalysisError, match="no image encoder"):
            call()


def test_official_point_file_with_image_checkpoint(reference_fixtures, ckpts, objects, image, tmp_path):
    from crosspoint.models import save_official

    img_file = save_official(ImageEncoder("resnet18"), tmp_path / "img_model_best.pth")  # projection 256
    s = A.ModelSession(reference_fixtures / "dgcnn_cls.pth", device="cpu", k=8, image_checkpoint=img_file,
                       image_arch="resnet18")
    assert s.has_image_encoder and s.info()["image_source"] == str(img_file)
    assert A.point_heatmap(s, objects[0], image, n_points=N, size=IMG).shape == (600,)
    with pytest.raises(A.AnalysisError, match="not a CrossPoint pair"):  # 256-d points, 32-d images
        A.ModelSession(reference_fixtures / "dgcnn_cls.pth", device="cpu", image_checkpoint=ckpts["full"])


# ------------------------------------------------------------------------------ points
def test_prepare_points(objects):
    cloud = objects[0]
    p = A.prepare_points(cloud, N, seed=3)
    assert p.points.shape == (N, 3) and p.points.dtype == np.float32 and p.index.shape == (N,)
    assert len(np.unique(p.index)) == N and p.n_original == 600
    assert np.isclose(np.linalg.norm(p.points, axis=1).max(), 1.0, atol=1e-5)
    np.testing.assert_allclose(p.original_points(), cloud.points[p.index], atol=1e-5)
    q = A.prepare_points(cloud, N, seed=3)
    np.testing.assert_array_equal(p.index, q.index)
    small = A.prepare_points(cloud.points[:100], N)
    assert small.points.shape == (N, 3) and set(small.index.tolist()) == set(range(100))


def test_to_full_nearest_neighbour():
    rng = np.random.default_rng(0)
    full = rng.normal(size=(3000, 3)).astype(np.float32)
    p = A.prepare_points(full, 200)
    vals = np.arange(200, dtype=np.int64)
    out = A.to_full(vals, p, full)
    assert out.shape == (3000,)
    np.testing.assert_array_equal(out[p.index], vals)  # picked points keep their own values
    sub = full[p.index]
    d = ((full[:, None, :] - sub[None, :, :]) ** 2).sum(-1)
    nearest = d.argmin(1)
    np.testing.assert_array_equal(out, vals[nearest])
    np.testing.assert_array_equal(A.to_full(vals, p, full, chunk=7), out)
    two = A.to_full(np.stack([vals, -vals], 1), p, full, chunk=100)
    np.testing.assert_array_equal(two[:, 0], out)
    # fewer points than asked: scatter back, no original points needed
    q = A.prepare_points(full[:50], 64)
    back = A.to_full(np.asarray(q.index, np.float32), q)
    np.testing.assert_array_equal(back, np.arange(50))
    with pytest.raises(A.AnalysisError):
        A.to_full(vals, p)
    with pytest.raises(A.AnalysisError):
        A.to_full(vals[:10], p, full)
    with pytest.raises(A.Cancelled):
        A.to_full(vals, p, full, chunk=100, cancel=lambda: True)


# ------------------------------------------------------------------------------ embeddings
def test_embeddings_shapes_determinism(session, objects, image, tmp_path):
    f = A.embed_clouds(session, objects, n_points=N, batch_size=3)
    assert f.shape == (4, 128) and f.dtype == np.float32
    np.testing.assert_allclose(A.embed_clouds(session, objects, n_points=N, batch_size=1), f, rtol=1e-4, atol=1e-5)
    p = A.project_clouds(session, objects, n_points=N)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)
    calls = []
    A.embed_clouds(session, [o.points for o in objects], n_points=N, batch_size=2,
                   progress=lambda d, t, s: calls.append((d, t)))
    assert calls == [(2, 4), (4, 4)]
    im = A.embed_images(session, [image, image[:, :, :3]], size=IMG)
    assert im.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(im, axis=1), 1.0, atol=1e-5)
    from PIL import Image

    path = tmp_path / "view.png"
    Image.fromarray(image, "RGBA").save(path)
    np.testing.assert_allclose(A.embed_images(session, [path], size=IMG)[0], im[0], atol=1e-5)


def test_embedding_cancel(session, objects):
    n = []

    def cancel():
        n.append(1)
        return len(n) > 1

    with pytest.raises(A.Cancelled):
        A.embed_clouds(session, objects, n_points=N, batch_size=2, cancel=cancel)
    assert len(n) == 2


# ------------------------------------------------------------------------------ segmentation
def test_segment_clusters(session, objects):
    cloud = objects[0]
    r = A.segment(session, cloud, n_points=N, k_parts=3)
    assert r.source == "clusters" and r.labels.shape == (600,) and r.confidence.shape == (600,)
    assert set(np.unique(r.labels)) == {0, 1, 2} and r.names == {0: "part 1", 1: "part 2", 2: "part 3"}
    assert 0.0 <= r.confidence.min() and r.confidence.max() <= 1.0
    heights = [cloud.points[r.labels == i, 1].mean() for i in range(3)]
    assert heights == sorted(heights)  # stable colours: ordered bottom to top
    r2 = A.segment(session, cloud, n_points=N, k_parts=3)
    np.testing.assert_array_equal(r.labels, r2.labels)
    assert 0.0 <= A.matched_miou(r.labels, cloud.labels) <= 1.0
    assert A.segment(session, cloud, n_points=N).labels.max() == 3  # default 4 parts
    with pytest.raises(A.AnalysisError, match="no part-segmentation head"):
        A.segment(session, cloud, method="head")


def test_matched_miou():
    gt = np.array([0, 0, 1, 1, 2, 2])
    assert A.matched_miou(np.array([5, 5, 3, 3, 1, 1]), gt) == 1.0
    assert np.isclose(A.matched_miou(np.array([0, 0, 0, 0, 1, 1]), gt), (0.5 + 0 + 1) / 3)


def test_segment_with_head(seg_session, objects):
    chair = objects[0]
    r = A.segment(seg_session, chair, n_points=N)  # the cloud says "chair"
    assert r.source == "head" and r.category == "chair" and r.category_source == "cloud"
    assert r.labels.shape == (600,) and r.labels.min() >= 0 and r.labels.max() < 4
    assert r.part_ids.tolist() == [0, 1, 2, 3] and r.names[0] == "seat"
    assert 0.0 <= r.confidence.min() and r.confidence.max() <= 1.0
    g = A.segment(seg_session, chair.points, n_points=N, category="mug")
    assert g.category_source == "given" and g.labels.max() < 2 and g.part_ids.tolist() == [14, 15]
    assert A.segment(seg_session, chair.points, n_points=N, category=4).category == "mug"
    inf = A.segment(seg_session, chair.points, n_points=N)
    assert inf.category_source == "inferred" and set(inf.category_scores) == set(CLASSES)
    assert inf.category == max(inf.category_scores, key=inf.category_scores.get)
    assert "inferred" in inf.note
    np.testing.assert_array_equal(A.segment(seg_session, chair.points, n_points=N).labels, inf.labels)
    with pytest.raises(A.AnalysisError, match="unknown category"):
        A.segment(seg_session, chair, n_points=N, category="spaceship")
    # the head restricted to the category equals the plain model's restricted arg-max
    prep = inf.prepared
    c = CLASSES.index(inf.category)
    with torch.no_grad():
        logits = seg_session.segmenter(torch.from_numpy(prep.points[None]), torch.tensor([c]))[0]
    a, b = class_part_ids(inf.category)[0], class_part_ids(inf.category)[-1] + 1
    np.testing.assert_array_equal(inf.subset_labels, logits[:, a:b].argmax(1).numpy())
    clusters = A.segment(seg_session, chair, n_points=N, method="clusters", k_parts=2)
    assert clusters.source == "clusters"


def test_segment_official_finetuned(reference_fixtures):
    s = A.ModelSession(reference_fixtures / "dgcnn_partseg_finetuned.pth", device="cpu", k=8)
    assert s.has_seg_head and s.info()["seg_head"]["categories"][0] == "airplane"
    pts = demo_object("airplane", 0, n_points=400).points
    r = A.segment(s, pts, n_points=N, category="airplane")
    assert r.part_ids.tolist() == [0, 1, 2, 3] and r.labels.max() < 4 and r.labels.shape == (400,)


# ------------------------------------------------------------------------------ heatmaps
def test_point_heatmap_range_and_determinism(session, objects, image):
    for method in A.HEAT_METHODS:
        h = A.point_heatmap(session, objects[0], image, method=method, n_points=N, size=IMG)
        assert h.shape == (600,) and h.dtype == np.float32
        # Grad-CAM may be all zero (no point raises the similarity; the ReLU keeps nothing)
        assert h.min() >= 0.0 and (np.isclose(h.max(), 1.0) or (method == "gradcam" and h.max() == 0.0))
        again = A.point_heatmap(session, objects[0], image, method=method, n_points=N, size=IMG)
        np.testing.assert_array_equal(h, again)
    r = A.point_heatmap_result(session, objects[0], image, n_points=N, size=IMG)
    assert r.subset_heat.shape == (N,) and (r.note != "") == (r.heat.max() == 0.0)
    with pytest.raises(A.AnalysisError):
        A.point_heatmap(session, objects[0], image, method="nope", n_points=N, size=IMG)


def test_point_heatmap_matches_a_hand_made_gradient(session, objects, image):
    """Recompute s from the pre-pool map by hand (max || mean pooling + projection head) and
    differentiate it: the heatmaps must agree, so the analysis really goes through the pooling."""
    import torch.nn.functional as F

    res = A.point_heatmap_result(session, objects[1], image, n_points=N, size=IMG, method="grad_x_input")
    target = torch.from_numpy(A.embed_images(session, [image], size=IMG)[0])
    enc = session.point_encoder
    with torch.no_grad():
        fmap = enc.point_features(torch.from_numpy(res.prepared.points[None]))
    fmap.requires_grad_(True)
    feat = torch.cat([fmap.amax(dim=1), fmap.mean(dim=1)], dim=1)
    s = F.cosine_similarity(enc.project_feature(feat), target[None], dim=1)[0]
    (g,) = torch.autograd.grad(s, fmap)
    s = s.detach()
    assert np.isclose(s.item(), res.similarity, atol=1e-5)
    gx = (g * fmap.detach()).abs().sum(-1)[0].numpy()
    np.testing.assert_allclose(res.subset_heat, gx / gx.max(), atol=1e-4)
    cam = torch.relu(fmap.detach()[0] @ g[0].mean(0)).numpy()
    res2 = A.point_heatmap_result(session, objects[1], image, n_points=N, size=IMG)
    np.testing.assert_allclose(res2.subset_heat, cam / max(cam.max(), 1e-30), atol=1e-4)


def test_image_heatmap_and_overlay(session, objects, image):
    cam = A.image_heatmap(session, objects[0], image, n_points=N, size=IMG)
    assert cam.shape == image.shape[:2] and cam.dtype == np.float32
    assert cam.min() >= 0.0 and cam.max() <= 1.0
    np.testing.assert_array_equal(cam, A.image_heatmap(session, objects[0], image, n_points=N, size=IMG))
    ov = A.overlay(image, cam, alpha=0.5)
    assert ov.shape == image.shape[:2] + (4,) and ov.dtype == np.uint8 and (ov[..., 3] == 255).all()
    plain = A.overlay(image, cam, alpha=0.0)
    a = image[..., 3:4] / 255.0
    expect = np.rint(image[..., :3] * a + 255 * (1 - a))
    assert np.abs(plain[..., :3].astype(int) - expect).max() <= 1
    assert A.overlay(image, np.zeros((7, 7)), alpha=1.0)[0, 0, :3].tolist() == [0, 0, 4]  # inferno(0)
    np.testing.assert_array_equal(A.colormap(np.array([0.0, 1.0]))[:, :3], [[0, 0, 4], [252, 255, 164]])


def test_deletion_test_runs_and_is_deterministic(session, objects, image):
    r = A.deletion_test(session, objects[2], image, n_points=N, size=IMG, n_random=2)
    assert set(r) == {"similarity", "top", "bottom", "random", "random_all"}
    assert all(np.isfinite(v) for v in (r["similarity"], r["top"], r["bottom"], r["random"]))
    assert r == A.deletion_test(session, objects[2], image, n_points=N, size=IMG, n_random=2)
    d = A.deletion_test(session, objects[2], image, n_points=N, size=IMG, n_random=1, mode="drop")
    assert np.isfinite(d["top"])


def test_faithfulness_with_trained_checkpoint():
    """Deleting the hottest 20% of points lowers the similarity more than deleting a random or
    the coldest 20%, on average over demo objects -- only meaningful for trained weights: the
    bundled demo checkpoint, or ``CROSSPOINT_TRAINED_CHECKPOINT``. (Measured with a 12-epoch
    cpu-demo pretraining: top-20% deletion lowered s by 0.034 on average over 16 demo objects,
    random 20% by -0.002, bottom 20% by -0.009; top > random on every object.)"""
    path = Path(os.environ.get("CROSSPOINT_TRAINED_CHECKPOINT") or A.default_checkpoint_path())
    if not path.is_file():
        pytest.skip("no trained checkpoint (assets/demo_checkpoint.pt or $CROSSPOINT_TRAINED_CHECKPOINT); "
                    "faithfulness is not expected of random weights")
    s = A.ModelSession(path, device="cpu")
    if not s.has_image_encoder:
        pytest.skip("the demo checkpoint has no image encoder")
    from crosspoint.render import render_views

    from crosspoint.data.demo import SHIPPED_PRESET
    from crosspoint.data.demo import demo_object as shipped_object

    drops = {"top": [], "random": [], "bottom": []}
    for c in ("chair", "airplane", "lamp", "guitar"):
        obj = shipped_object(c, 1, n_points=2048, preset=SHIPPED_PRESET)  # unseen objects of the checkpoint's demo
        img = render_views(obj, 1, size=137, seed=3)[0][0]
        r = A.deletion_test(s, obj, img, n_random=3)
        for key in drops:
            drops[key].append(r["similarity"] - r[key])
    assert np.mean(drops["top"]) > np.mean(drops["random"])
    assert np.mean(drops["top"]) > np.mean(drops["bottom"])


# ------------------------------------------------------------------------------ retrieval
def test_retrieval_planted_match(session, objects, image):
    clouds = [o.points for o in objects]
    gallery = A.project_clouds(session, clouds, n_points=N)
    q = A.embed_images(session, [image], size=IMG)[0]
    planted = np.concatenate([gallery, q[None]], 0)
    hits = A.retrieve(session, image, planted, top_k=3, size=IMG)
    assert hits[0][0] == 4 and np.isclose(hits[0][1], 1.0, atol=1e-5) and len(hits) == 3
    sims = [h[1] for h in hits]
    assert sims == sorted(sims, reverse=True)
    direct = A.retrieve(session, image, clouds, top_k=10, n_points=N, size=IMG)
    assert len(direct) == 4
    np.testing.assert_allclose([h[1] for h in direct], np.sort(gallery @ q)[::-1], atol=1e-5)
    # reverse: a cloud against images, with the cloud's own projection planted among them
    imgs = A.embed_images(session, [image, image[::-1].copy()], size=IMG)
    rev = A.retrieve_images(session, objects[1], np.concatenate([imgs, gallery[1:2]]), n_points=N, top_k=1)
    assert rev[0][0] == 2 and np.isclose(rev[0][1], 1.0, atol=1e-5)
    with pytest.raises(A.AnalysisError, match="projections"):
        A.retrieve(session, image, np.zeros((3, 128), np.float32))


# ------------------------------------------------------------------------------ datasets
@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    from crosspoint.data.synthetic import generate_demo

    root = tmp_path_factory.mktemp("analysis_demo") / "demo"
    generate_demo(root, per_class=3, n_points=300, n_views=1, size=32, workers=0, classes=("chair", "mug"))
    return root


def test_embed_dataset_cache_hit_and_miss(session, ckpts, demo_root, tmp_path):
    cache = tmp_path / "cache"
    first = A.embed_dataset(session, demo_root, n_points=N, cache_dir=cache)
    assert not first.from_cache and first.features.shape == (6, 128) and first.projections.shape == (6, 32)
    assert sorted(first.labels.tolist()) == [0, 0, 0, 1, 1, 1] and len(first.class_names) == 2
    assert len(first.names) == len(first.refs) == 6 and all(Path(r).is_file() for r in first.refs)
    assert len(list(cache.glob("*.npz"))) == 1
    again = A.embed_dataset(session, demo_root, n_points=N, cache_dir=cache)
    assert again.from_cache and again.fingerprint == first.fingerprint
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.labels, first.labels)
    assert again.names == first.names and again.refs == first.refs and again.class_names == first.class_names
    # another checkpoint, another point count, a touched file: misses
    other = A.ModelSession(ckpts["other"], device="cpu")
    assert not A.embed_dataset(other, demo_root, n_points=N, cache_dir=cache).from_cache
    assert not A.embed_dataset(session, demo_root, n_points=128, cache_dir=cache).from_cache
    ref = Path(first.refs[0])
    st = ref.stat()
    os.utime(ref, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))
    assert not A.embed_dataset(session, demo_root, n_points=N, cache_dir=cache).from_cache
    # retrieval straight against a dataset embedding
    assert len(A.retrieve(session, np.full((40, 40, 3), 200, np.uint8), first, top_k=2, size=IMG)) == 2


def test_embed_dataset_cancel_leaves_no_cache(session, demo_root, tmp_path):
    cache = tmp_path / "cache"
    seen = []
    with pytest.raises(A.Cancelled):
        A.embed_dataset(session, demo_root, n_points=N, batch_size=2, cache_dir=cache,
                        progress=lambda d, t, s: seen.append(d), cancel=lambda: len(seen) >= 2)
    assert not list(cache.glob("*.npz"))  # no final file from a cancelled run


def test_embed_dataset_resumes_chunk_by_chunk_to_the_same_result(session, demo_root, tmp_path):
    """Cancelled (or killed) after some chunks, the next call computes only the rest, and the result
    equals an uninterrupted run's exactly."""
    kw = {"n_points": N, "batch_size": 1, "chunk_size": 2}
    whole = A.embed_dataset(session, demo_root, cache_dir=tmp_path / "a", **kw)
    cache = tmp_path / "b"
    seen = []
    with pytest.raises(A.Cancelled):
        A.embed_dataset(session, demo_root, cache_dir=cache, progress=lambda d, t, s: seen.append(d),
                        cancel=lambda: len(seen) >= 3, **kw)
    chunks = list(cache.glob("*.parts/chunk_*.npz"))
    assert len(chunks) == 1 and not list(cache.glob("*.npz"))
    msgs = []
    again = A.embed_dataset(session, demo_root, cache_dir=cache, progress=lambda d, t, s: msgs.append((d, s)), **kw)
    assert "from an earlier run" in msgs[0][1] and msgs[0][0] == 2
    assert np.array_equal(again.features, whole.features) and np.array_equal(again.projections, whole.projections)
    assert again.refs == whole.refs and np.array_equal(again.labels, whole.labels)
    assert not list(cache.glob("*.parts")) and len(list(cache.glob("*.npz"))) == 1


def test_embed_file_list(session, tmp_path, objects):
    from crosspoint.io import write_point_cloud
    from crosspoint.pointcloud import PointCloud

    files = []
    for i, o in enumerate(objects[:3]):
        files.append(write_point_cloud(tmp_path / f"o{i}.npz", PointCloud(o.points, category=o.category)))
    broken = tmp_path / "broken.ply"
    broken.write_text("this is no ply")
    emb = A.embed_dataset(session, files + [broken], n_points=N, cache_dir=tmp_path / "c")
    assert len(emb) == 3 and emb.names == ["o0", "o1", "o2"]
    assert emb.class_names == sorted({"chair", "mug", "airplane"})
    assert [emb.class_names[i] for i in emb.labels] == ["chair", "mug", "airplane"]
    assert len(emb.skipped) == 1 and emb.skipped[0][0] == str(broken)
    with pytest.raises(A.AnalysisError):
        A.embed_dataset(session, tmp_path / "missing_folder", n_points=N, cache_dir=tmp_path / "c")
    # an HDF5 file stands for all its rows
    import h5py

    with h5py.File(tmp_path / "batch.h5", "w") as f:
        f["data"] = np.stack([o.points[:500] for o in objects])
        f["label"] = np.array([[0], [1], [2], [1]])
    rows = A.embed_dataset(session, [tmp_path / "batch.h5"], n_points=N, cache_dir=tmp_path / "c")
    assert len(rows) == 4 and rows.refs[2].endswith("batch.h5#2") and rows.labels.tolist() == [0, 1, 2, 1]


@pytest.mark.slow  # umap-learn compiles its numba code on the first fit in a process (~10-20 s here)
def test_umap_2d(tmp_path):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(15, 20)), rng.normal(size=(15, 20)) + 6]).astype(np.float32)
    r = A.project_2d(x, cache_dir=tmp_path, n_neighbors=5)
    assert r.method == "umap" and r.coords.shape == (30, 2) and r.coords.dtype == np.float32 and not r.from_cache
    assert np.isfinite(r.coords).all()
    c = A.project_2d(x, cache_dir=tmp_path, n_neighbors=5)
    assert c.from_cache
    np.testing.assert_array_equal(c.coords, r.coords)
    np.testing.assert_array_equal(A.umap_2d(x, cache_dir=tmp_path / "fresh", n_neighbors=5), r.coords)
    tiny = A.project_2d(x[:4], cache_dir=tmp_path)
    assert tiny.method == "pca" and tiny.coords.shape == (4, 2) and "PCA" in tiny.note
    assert A.umap_2d(x[:1], use_cache=False).shape == (1, 2)


def test_svm_accuracy():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 10)
    x = rng.normal(size=(30, 8)) + 5 * np.eye(8)[y]
    mean, std = A.svm_accuracy(x, y, folds=5)
    assert mean > 0.9 and 0.0 <= std <= 0.5
    y2 = np.concatenate([y, [3, -1]])  # a single-object class and an unlabelled object are left out
    x2 = np.concatenate([x, rng.normal(size=(2, 8))])
    assert A.svm_accuracy(x2, y2, folds=5)[0] > 0.9
    assert A.svm_accuracy(x[:12], np.array([0] * 9 + [1] * 3), folds=5)[0] >= 0.0  # 3 folds at most
    with pytest.raises(A.AnalysisError):
        A.svm_accuracy(x, np.zeros(30, int))


def test_svm_accuracy_scores_any_feature_scale_alike():
    """The map's SVM figure compares a checkpoint with random weights, whose features are ~50x smaller.
    Standardised per fold, the score does not depend on scale (a power of two: exactly the same bits);
    on raw features at C = 0.1 the small features lose, which is what the figure used to show."""
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(4), 15)
    signal = rng.normal(size=(60, 32)) + 1.5 * np.eye(32)[y]
    nuisance = 20.0 * rng.normal(size=(60, 32))  # large class-independent variance, as random features have
    x = np.concatenate([signal, nuisance], axis=1)
    small = x * 2.0 ** -8
    assert A.svm_accuracy(small, y) == A.svm_accuracy(x, y)
    assert A.svm_accuracy(small, y, standardised=False)[0] < A.svm_accuracy(x, y)[0]


# ------------------------------------------------------------------------------ child process
def _count_slowly(n, *, progress=None):
    import time as _t

    for i in range(n):
        progress(i + 1, n, f"item {i + 1}")
        _t.sleep(0.05)
    return {"n": n, "pid": __import__("os").getpid()}


def _refuse(*, progress=None):
    raise ValueError("this dataset has no labels")


def _crash(*, progress=None):
    import os as _os

    _os._exit(3)


def test_call_in_subprocess_result_progress_errors_and_cancel():
    import os
    import time

    from crosspoint.analysis.background import call_in_subprocess

    seen = []
    out = call_in_subprocess(_count_slowly, 4, progress=lambda d, t, s: seen.append((d, t, s)))
    assert out["n"] == 4 and out["pid"] != os.getpid()
    assert [d for d, _, _ in seen] == [1, 2, 3, 4] and seen[-1][2] == "item 4"

    with pytest.raises(A.AnalysisError, match="no labels"):
        call_in_subprocess(_refuse)
    with pytest.raises(A.AnalysisError, match="exit code 3"):
        call_in_subprocess(_crash)

    t0 = time.monotonic()
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 20  # about one second in

    with pytest.raises(A.Cancelled):
        call_in_subprocess(_count_slowly, 10_000, cancel=cancel)
    assert time.monotonic() - t0 < 30


def test_embed_and_map_child_process_matches_in_process(session, tmp_path, monkeypatch, shared_data):
    """The explorer's "Embed + UMAP": computed in a child process, then served from the cache in-process."""
    import shutil

    from crosspoint.analysis.background import embed_and_map

    monkeypatch.setenv("CROSSPOINT_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "objs"
    for f in sorted((shared_data / "modelnet40_off").glob("*.off"))[:12]:
        (root / f.stem.split("_")[0]).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, root / f.stem.split("_")[0] / f.name)
    first = embed_and_map(session, str(root), n_points=256)
    assert not first.embedding.from_cache and first.projection.coords.shape == (len(first.embedding), 2)
    again = embed_and_map(session, str(root), n_points=256)
    assert again.embedding.from_cache and again.projection.from_cache
    np.testing.assert_allclose(again.embedding.features, first.embedding.features, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(again.projection.coords, first.projection.coords)
    monkeypatch.setenv("CROSSPOINT_CACHE_DIR", str(tmp_path / "cache2"))
    here = embed_and_map(session, str(root), n_points=256, in_process=True)
    assert not here.embedding.from_cache
    np.testing.assert_allclose(here.embedding.features, first.embedding.features, rtol=1e-5, atol=1e-5)


def test_session_inference_is_the_one_way_in(tmp_path):
    """session.inference() holds the lock (other threads wait), turns gradients off (on for grad=True)."""
    import threading

    import torch

    from crosspoint.analysis.session import ModelSession

    s = ModelSession(None)
    with s.inference():
        assert not torch.is_grad_enabled()
        got = []
        t = threading.Thread(target=lambda: got.append(s.lock.acquire(timeout=0.2)))
        t.start()
        t.join()
        assert got == [False]  # another thread cannot enter while this one computes
    with s.inference(grad=True, autocast=False):
        assert torch.is_grad_enabled()
    assert s.lock.acquire(timeout=1)
    s.lock.release()


def test_embedding_map_overlay_of_partial_scans(session, tmp_path):
    """A second dataset (the demo's partial scans) is embedded and mapped with the first in one UMAP;
    its labels are the first's classes by name, and its transfer figure is the SVM fit on the first."""
    from crosspoint.analysis.background import embed_and_map
    from crosspoint.data.demo import generate_demo
    from crosspoint.evaluation.svm import standardise, svm_protocol

    root = generate_demo(tmp_path / "d", preset="hard", per_class=4, n_points=256, n_views=1, size=32, workers=0,
                         classes=("chair", "mug", "car"), scans=True)
    m = embed_and_map(session, str(root), n_points=N, in_process=True, overlay=str(root / "scans"))
    ov = m.overlay
    n1, n2 = len(m.embedding), len(ov.embedding)
    assert n1 == n2 == 12
    assert m.projection.coords.shape == (n1, 2) and ov.coords.shape == (n2, 2)
    assert np.isfinite(ov.coords).all() and "overlay" in m.projection.note
    names = [m.embedding.class_names[k] for k in m.embedding.labels]
    assert sorted(names) == sorted(ov.embedding.class_names[k] for k in ov.embedding.labels)
    assert ov.n_shared == 3
    # standardised by the first dataset's statistics, as the map's own SVM figure
    a, b = standardise(m.embedding.features, ov.embedding.features)
    res = svm_protocol(a, m.embedding.labels, b, ov.embedding.labels, fixed_c=(0.1,), cv=False)
    assert ov.transfer_acc == res["fixed"][0]["overall_acc"]
    assert m.quality == A.map_quality(m.projection.coords, m.embedding.labels)


def test_training_maps_align_the_checkpoints_of_a_run(session, ckpts, tmp_path):
    """A run folder's checkpoints (epoch_NNNN.pt, last.pt at its recorded epoch) plus the random
    initialisation, embedded and laid out with AlignedUMAP; the per-epoch figures are the measured ones."""
    import json
    import shutil

    from crosspoint.analysis.training_maps import run_checkpoints, training_maps
    from crosspoint.data.demo import generate_demo

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(ckpts["full"], run / "checkpoints" / "epoch_0002.pt")
    torch.manual_seed(5)
    save_model_bundle(run / "checkpoints" / "last.pt", point_encoder=DGCNN(k=8, emb_dims=64, projection_dim=32),
                      image_encoder=ImageEncoder("resnet18", projection_dim=32), meta={"num_points": N, "image_size": IMG})
    (run / "events.jsonl").write_text("\n".join(json.dumps(e) for e in (
        {"event": "checkpoint", "kind": "last", "epoch": 2}, {"event": "checkpoint", "kind": "last", "epoch": 4})) + "\n")
    assert [e for e, _ in run_checkpoints(run)] == [2, 4]
    root = generate_demo(tmp_path / "d", preset="hard", per_class=5, n_points=256, n_views=1, size=32, workers=0,
                         classes=("chair", "mug", "car"), scans=False)
    tm = training_maps(run, str(root), n_points=N, device="cpu", cache_dir=tmp_path / "cache")
    assert tm.epochs == [0, 2, 4] and tm.checkpoints[0] == "random" and tm.method == "aligned-umap"
    assert len(tm.coords) == 3 and all(c.shape == (15, 2) and np.isfinite(c).all() for c in tm.coords)
    for c, q in zip(tm.coords, tm.quality):
        assert q == A.map_quality(c, tm.labels)
    assert all(s is not None for s in tm.svm)
    with pytest.raises(A.AnalysisError, match="not a run folder"):
        run_checkpoints(tmp_path)


def test_a_head_fine_tuned_with_its_own_encoder_keeps_the_pretrained_encoder_for_everything_else(ckpts, tmp_path,
                                                                                              objects):
    """A bundle with ``seg_backbone`` (the encoder the segmentation head was fine-tuned with):
    segmentation runs that encoder, embeddings the pretrained ``point_encoder``; without it both are
    one encoder. Checked against the models run by hand."""
    from crosspoint.models import SEG_BACKBONE_KEY, read_checkpoint

    plain = A.ModelSession(ckpts["seg"], device="cpu")
    pe = plain.point_encoder
    tuned = _randomise_bn(DGCNN(k=8, emb_dims=64, projection_dim=32), 9)
    path = save_model_bundle(tmp_path / "tuned.pt", point_encoder=pe, seg_head=plain.segmenter.head,
                             seg_backbone=tuned, meta={"part_table": demo_part_table_meta()})
    assert SEG_BACKBONE_KEY in read_checkpoint(path)
    s = A.ModelSession(path, device="cpu")
    assert s.seg_backbone_own and not plain.seg_backbone_own and plain.segmenter.backbone is plain.point_encoder
    assert s.segmenter.backbone is not s.point_encoder
    for a, b in zip(s.point_encoder.state_dict().values(), pe.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(s.segmenter.backbone.state_dict().values(), tuned.state_dict().values()):
        assert torch.equal(a, b)
    info = s.info()
    assert info["parameters"]["seg_backbone"] > 0 and plain.info()["parameters"]["seg_backbone"] == 0
    assert info["seg_head"]["encoder"] == "fine-tuned with the head"
    from crosspoint.evaluation.partseg import ClsPartSegmenter

    chair = objects[0]
    mine = A.embed_clouds(s, [chair], n_points=N)
    theirs = A.embed_clouds(plain, [chair], n_points=N)
    for u, v in zip(mine, theirs):
        np.testing.assert_array_equal(u, v)
    r = A.segment(s, chair, n_points=N, category="chair")
    by_hand = ClsPartSegmenter(tuned.eval(), plain.segmenter.head).eval()
    x = torch.from_numpy(r.prepared.points[None])
    with torch.no_grad():
        logits = by_hand(x, torch.tensor([0]))[0]
        plain_logits = plain.segmenter(x, torch.tensor([0]))[0]
    a, b = class_part_ids("chair")[0], class_part_ids("chair")[-1] + 1
    np.testing.assert_array_equal(r.subset_labels, logits[:, a:b].argmax(1).numpy())
    assert not torch.equal(logits, plain_logits)  # the other encoder did run


def test_a_session_reads_its_checkpoint_once_and_a_changed_file_is_read_again(ckpts, tmp_path, monkeypatch):
    """Loading a bundle with every entry (point and image encoders, seg head with its own encoder,
    category probe) reads the file once (the loaders share the read inside ``shared_reads``), gives
    the same models as a load without sharing, and a file changed inside the block is read again."""
    from crosspoint.analysis.segment import PROBE_KEY, category_probe
    from crosspoint.models import read_checkpoint
    from crosspoint.models.checkpoint import shared_reads

    base = A.ModelSession(ckpts["seg"], device="cpu")
    ie = A.ModelSession(ckpts["full"], device="cpu").image_encoder
    probe = {"weight": torch.zeros(len(CLASSES), base.point_encoder.feature_dim), "bias": torch.zeros(len(CLASSES)),
             "categories": list(CLASSES), "accuracy": 0.5}
    path = save_model_bundle(tmp_path / "all.pt", point_encoder=base.point_encoder, image_encoder=ie,
                             seg_head=base.segmenter.head, seg_backbone=_randomise_bn(DGCNN(k=8, emb_dims=64,
                                                                                              projection_dim=32), 5),
                             meta={"part_table": demo_part_table_meta()}, extra={PROBE_KEY: probe})
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    s = A.ModelSession(path, device="cpu")
    assert category_probe(s) is not None and s.seg_backbone_own and s.image_encoder is not None
    assert len(calls) == 1, calls
    # the same weights as each loader reading the file on its own
    monkeypatch.setattr(torch, "load", real)
    for m, ref in ((s.point_encoder, base.point_encoder), (s.image_encoder, ie)):
        for a, b in zip(m.state_dict().values(), ref.state_dict().values()):
            assert torch.equal(a, b.to(a.dtype))
    with shared_reads():
        a = read_checkpoint(path)
        assert read_checkpoint(path) is a
        with shared_reads():  # nested: the outer block's reads
            assert read_checkpoint(path) is a
        save_model_bundle(path, point_encoder=base.point_encoder)  # the file changes
        b = read_checkpoint(path)
        assert b is not a and "image_encoder" not in b
    assert read_checkpoint(path) is not read_checkpoint(path)  # outside the block: a read per call
