"""The dense point-pixel term (crosspoint.models.dense): exact sampling, the loss against a hand
computation, padding, and the CrossPoint model with dense heads (float64 throughout)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import pytest
import torch

from crosspoint.models.dense import DenseHeads, dense_nce, sample_pixels


def test_sample_pixels_reads_cell_centres_exactly_and_interpolates_between_them():
    h, w, stride = 4, 6, 8  # a (1, 2, 4, 6) map for a 32 x 48 image
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    emb = torch.stack([xs, ys])[None]  # channel 0 = cell column, channel 1 = cell row
    centres = torch.tensor([[[stride * (c + 0.5), stride * (r + 0.5)] for r in range(h) for c in range(w)]],
                           dtype=torch.float64)
    got = sample_pixels(emb, centres, (h * stride, w * stride))[0]
    want = torch.tensor([[c, r] for r in range(h) for c in range(w)], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    mid = sample_pixels(emb, torch.tensor([[[stride * 1.0, stride * 2.0]]], dtype=torch.float64), (32, 48))[0, 0]
    # half-way between cell centres (float64: the pixel -> [-1, 1] -> cell mapping rounds at 1e-16)
    torch.testing.assert_close(mid, torch.tensor([0.5, 1.5], dtype=torch.float64), rtol=0, atol=1e-12)


def _hand_nce(q, k, t):
    q = q / q.norm(dim=1, keepdim=True)
    k = k / k.norm(dim=1, keepdim=True)
    s = (q @ k.T) / t
    m = s.shape[0]
    rows = sum(-s[i, i] + math.log(sum(math.exp(s[i, j]) for j in range(m))) for i in range(m)) / m
    cols = sum(-s[i, i] + math.log(sum(math.exp(s[j, i]) for j in range(m))) for i in range(m)) / m
    return float(0.5 * (rows + cols))


def test_dense_nce_matches_a_hand_computation_and_ignores_padding():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    k = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    valid = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    got = dense_nce(q, k, valid, temperature=0.2).item()
    # the mean over all valid rows of both samples (3 + 5 rows), each direction
    a = _hand_nce(q[0, :3], k[0, :3], 0.2) * 3
    b = _hand_nce(q[1], k[1], 0.2) * 5
    assert got == pytest.approx((a + b) / 8, rel=1e-12)
    # padding rows hold anything
    q2, k2 = q.clone(), k.clone()
    q2[0, 3:] = 1e6
    k2[0, 3:] = -7.0
    assert dense_nce(q2, k2, valid, temperature=0.2).item() == pytest.approx(got, rel=1e-12)
    # fewer than two valid rows: skipped; none at all: zero with a zero gradient
    only = torch.zeros(2, 5, dtype=torch.bool)
    only[1, 0] = True
    qq = q.clone().requires_grad_(True)
    z = dense_nce(qq, k, only)
    z.backward()
    assert z.item() == 0.0 and torch.count_nonzero(qq.grad) == 0


def _tiny_dense_model(emb_dims: int, point_context: str = "none"):
    """A float64 CrossPoint model with small dense heads, seeded: ``(model, pe, ie, heads)``."""
    from crosspoint.models import CrossPointModel, build_image_encoder, build_point_encoder

    torch.manual_seed(0)
    pe = build_point_encoder("dgcnn", k=4, emb_dims=emb_dims).double()
    ie = build_image_encoder("resnet18").double()
    heads = DenseHeads(pe.point_feature_dim, "resnet18", dim=8, hidden=16, point_context=point_context).double()
    return CrossPointModel(pe, ie, dense_heads=heads).train(), pe, ie, heads


def test_crosspoint_model_with_dense_heads_trains_the_heads_and_the_encoders():
    from crosspoint.models import CrossPointModel

    model, pe, ie, heads = _tiny_dense_model(32)
    g = torch.Generator().manual_seed(1)
    b, n, m = 4, 32, 6
    p1 = torch.rand(b, n, 3, generator=g, dtype=torch.float64)
    p2 = p1 + 0.01 * torch.randn(b, n, 3, generator=g, dtype=torch.float64)
    img = torch.rand(b, 3, 32, 32, generator=g, dtype=torch.float64)
    dense = {"idx": torch.randint(0, n, (b, m), generator=g), "uv": 32 * torch.rand(b, m, 2, generator=g,
                                                                                   dtype=torch.float64),
             "valid": torch.ones(b, m, dtype=torch.bool)}
    out = model(p1, p2, img, dense)
    assert set(out) >= {"loss", "intra_loss", "cross_loss", "dense_loss"}
    assert math.isfinite(out["dense_loss"].item()) and out["dense_loss"].item() > 0
    out["dense_loss"].backward()
    for name, mod in (("point head", heads.point), ("image head", heads.image), ("point encoder", pe.conv5),
                      ("image encoder", ie.resnet.layer2)):
        grads = [p.grad for p in mod.parameters() if p.grad is not None]
        assert grads and any(torch.count_nonzero(gr) for gr in grads), name
    # without the dense inputs the model is CrossPoint as before: the same losses
    model.zero_grad()
    plain = CrossPointModel(pe, ie).train()
    a = plain(p1, p2, img)
    c = model(p1, p2, img)
    assert "dense_loss" not in c
    torch.testing.assert_close(a["loss"], c["loss"], rtol=1e-12, atol=0)


@pytest.mark.parametrize("second", ["whole", "partial"])
@pytest.mark.parametrize("context", ["none", "pooled"])
def test_dense_loss_is_the_mean_of_the_two_views_terms(context, second):
    """CrossPointModel gathers both views' points from the map at once; the loss and every gradient
    are those of the two views' terms taken one by one (float64)."""
    model, pe, ie, heads = _tiny_dense_model(24, context)
    g = torch.Generator().manual_seed(2)
    b, n, m = 3, 24, 5
    p1 = torch.rand(b, n, 3, generator=g, dtype=torch.float64)
    p2 = p1 + 0.02 * torch.randn(b, n, 3, generator=g, dtype=torch.float64)
    img = torch.rand(b, 3, 32, 32, generator=g, dtype=torch.float64)
    idx = torch.randint(0, n, (b, m), generator=g)
    uv = 32 * torch.rand(b, m, 2, generator=g, dtype=torch.float64)
    valid = torch.tensor([[True] * m, [True] * m, [True, True, False, True, False]])
    valid2 = valid.clone()
    if second == "partial":  # the second copy lost some linked points (data.partial_view)
        valid2[0, 1] = valid2[2, 3] = False
    loss = model(p1, p2, img, {"idx": idx, "uv": uv, "valid": valid,
                               "valid2": valid2 if second == "partial" else None})["dense_loss"]
    loss.backward()
    got = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    model.zero_grad()
    pmap = pe(torch.cat([p1, p2]), with_point_features=True).point_features
    _, stages = ie.forward_stages(img)
    pix = sample_pixels(heads.image_embeddings(stages), uv, (32, 32))
    terms = []
    for half, ok in ((pmap[:b], valid), (pmap[b:], valid2)):
        pts = torch.gather(half, 1, idx.unsqueeze(-1).expand(-1, -1, half.shape[-1]))
        terms.append(dense_nce(heads.point_embeddings(pts, half), pix, ok))
    ref = 0.5 * (terms[0] + terms[1])
    ref.backward()
    assert torch.equal(loss.detach(), ref.detach())
    want = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    assert set(got) == set(want)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-12, atol=1e-15, msg=k)


@pytest.fixture(scope="module")
def demo128(tmp_path_factory):
    from crosspoint.data.synthetic import generate_demo

    root = tmp_path_factory.mktemp("dense_demo") / "demo"
    generate_demo(root, seed=0, per_class=1, n_views=2, size=128, workers=0, classes=("chair", "mug", "table"))
    return root


def test_splat_visibility_agrees_with_the_renderers_depth_buffer(demo128):
    """The training-time correspondences (points + the view's camera + a splat z-buffer) against the
    renderer's own mesh depth buffer: projected visible points land on the object (within a pixel of
    its silhouette), and the points called visible are visible by the mesh depth."""
    from crosspoint.data.dense import project_visible
    from crosspoint.io import read_point_cloud
    from crosspoint.render import read_view_metadata
    from crosspoint.render.shading import render_mesh
    from scipy.ndimage import binary_dilation

    agree, on_object, n_vis = [], [], []
    for ply in sorted((demo128 / "ShapeNet").rglob("*.ply")):
        syn, name = ply.parent.name, ply.stem
        pts = read_point_cloud(ply).points
        mesh = read_point_cloud(demo128 / "meshes" / syn / f"{name}.ply").mesh
        cams = read_view_metadata(demo128 / "ShapeNetRendering" / syn / name / "rendering")
        for cam in cams:
            uv, vis = project_visible(pts, cam)
            rgba, buf = render_mesh(mesh, cam, return_buffers=True, antialias=False)
            depth = buf["depth"]
            _, z = cam.project(pts)
            u = np.clip(uv[:, 0].astype(int), 0, cam.size - 1)
            v = np.clip(uv[:, 1].astype(int), 0, cam.size - 1)
            span = float(z.max() - z.min())
            truth = z <= depth[v, u] + 0.03 * span  # nothing of the mesh in front of the point
            agree.append((float((vis & truth).sum() / max(vis.sum(), 1)), float((vis & truth).sum() / truth.sum())))
            # within one pixel of the object's silhouette (thin parts: the rasteriser covers a pixel by
            # its centre, a point near an edge may fall in the pixel next to it)
            mask = binary_dilation(rgba[..., 3] > 0, iterations=1)
            on_object.append(float(mask[v[vis], u[vis]].mean()))
            n_vis.append(float(vis.mean()))
    assert min(on_object) == 1.0, on_object
    precision, recall = np.mean(agree, axis=0)  # measured: 0.96, 0.37
    assert precision >= 0.9 and recall >= 0.25, agree
    assert 0.1 <= np.mean(n_vis) <= 0.8, n_vis  # some points hidden, many shown


def test_partial_view_agrees_with_the_renderers_depth_buffer(demo128):
    """The partial view of pretraining (``data.partial_view``: hidden point removal from the points
    alone) against the mesh depth buffer, from the cameras of the rendered views: most points it keeps
    are visible and it keeps most visible ones (measured on these three objects at 1,024 points:
    precision 0.89, recall 0.90, 44 % of the points kept at the default radius 100; radius 10:
    0.98 / 0.66; radius 1000: 0.60 / 0.99. On one object of each of 8 classes, 3 views: 0.93 / 0.88)."""
    from crosspoint.data.base import fix_point_count
    from crosspoint.data.transforms import PartialView
    from crosspoint.io import read_point_cloud
    from crosspoint.render import read_view_metadata
    from crosspoint.render.shading import render_mesh

    pv = PartialView()
    scores = []
    for ply in sorted((demo128 / "ShapeNet").rglob("*.ply")):
        syn, name = ply.parent.name, ply.stem
        pts = fix_point_count(read_point_cloud(ply).points, 1024, "random", np.random.default_rng(0))
        mesh = read_point_cloud(demo128 / "meshes" / syn / f"{name}.ply").mesh
        for cam in read_view_metadata(demo128 / "ShapeNetRendering" / syn / name / "rendering"):
            vis = pv.visible(pts, cam.position())
            _, buf = render_mesh(mesh, cam, return_buffers=True, antialias=False)
            uv, z = cam.project(pts)
            u = np.clip(uv[:, 0].astype(int), 0, cam.size - 1)
            v = np.clip(uv[:, 1].astype(int), 0, cam.size - 1)
            truth = z <= buf["depth"][v, u] + 0.03 * float(z.max() - z.min())
            scores.append(((vis & truth).sum() / max(vis.sum(), 1), (vis & truth).sum() / truth.sum(), vis.mean()))
    precision, recall, shown = np.mean(scores, axis=0)
    assert precision >= 0.85 and recall >= 0.75, scores
    assert 0.2 <= shown <= 0.7, scores  # a view, not the whole object


@pytest.mark.parametrize("flip", ["image", "both"])
def test_dense_items_with_a_partial_view_link_the_second_copy_only_to_points_it_holds(demo128, flip):
    """With ``data.partial_view`` the second copy's links (``dense_valid2``) are the first copy's
    minus the points that its partial view replaced; without the point augmentation, the points
    of the valid links are the same in both copies, and the others differ. The mirrored replay
    (``dense_flip: both``) keeps the same points."""
    from crosspoint.data.dense import DenseItems
    from crosspoint.data.shapenet_render import ShapeNetRenderDataset
    from crosspoint.data.transforms import PartialView

    ds = ShapeNetRenderDataset(demo128, num_points=256, image_size=64, split=None, val_fraction=0.0, seed=3)
    ds.point_transform = lambda p: np.array(p, dtype=np.float32, copy=True)
    items = DenseItems(ds, 32, flip)
    plain = items[1]
    assert torch.equal(plain["dense_valid2"], plain["dense_valid"])
    ds.partial_view = PartialView(p=1.0)
    narrower = 0
    for epoch in range(4):
        items.set_epoch(epoch)
        a = items[1]
        assert all(torch.equal(a[k], b) for k, b in items[1].items() if torch.is_tensor(b))
        v1, v2, idx = a["dense_valid"], a["dense_valid2"], a["dense_idx"]
        assert bool((v2 <= v1).all())
        assert torch.equal(a["points2"][idx[v2]], a["points1"][idx[v2]])
        lost = idx[v1 & ~v2]
        assert bool((a["points2"][lost] != a["points1"][lost]).any(dim=1).all())
        narrower += int((v1 & ~v2).sum())
    assert narrower > 0  # the cameras differ: some links are lost


def test_dense_sample_scales_flips_and_pads():
    from crosspoint.data.dense import dense_sample

    uv = np.array([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]], np.float32)
    vis = np.array([True, False, True])
    out = dense_sample(uv, vis, 4, np.random.default_rng(0), view_size=100, image_size=50, flipped=True)
    assert out["dense_valid"].tolist() == [True, True, False, False]
    chosen = out["dense_idx"][:2]
    assert sorted(chosen.tolist()) == [0, 2]
    for j, i in enumerate(chosen):
        assert out["dense_uv"][j].tolist() == [50 - uv[i, 0] / 2, uv[i, 1] / 2]


def test_dense_items_are_deterministic_and_point_inside_the_image(demo128):
    from crosspoint.data.dense import DenseItems
    from crosspoint.data.shapenet_render import ShapeNetRenderDataset

    ds = ShapeNetRenderDataset(demo128, num_points=256, image_size=64, split=None, val_fraction=0.0, seed=3)
    items = DenseItems(ds, 16)
    items.set_epoch(2)
    a, b = items[1], items[1]
    for key in ("points1", "points2", "image", "dense_idx", "dense_uv", "dense_valid"):
        assert torch.equal(a[key], b[key]), key
    assert a["image"].shape == (3, 64, 64) and a["dense_idx"].shape == (16,) and a["dense_uv"].shape == (16, 2)
    n_valid = int(a["dense_valid"].sum())
    assert n_valid >= 8
    uv = a["dense_uv"][a["dense_valid"]]
    assert bool(((uv >= 0) & (uv <= 64)).all())
    assert int(a["dense_idx"][a["dense_valid"]].max()) < 256
    items.set_epoch(3)
    assert not torch.equal(items[1]["dense_uv"], a["dense_uv"])  # another epoch, other draws


def test_mirror_in_view_mirrors_the_projection_exactly(demo128):
    """The points mirrored across the camera's vertical plane project to the image's mirror: u -> size
    - u, the same v and depth (float64, to 1e-9 of a pixel: a geometric identity, not a rounding
    budget); an isometry with determinant -1 and its own inverse."""
    from crosspoint.data.dense import mirror_in_view
    from crosspoint.io import read_point_cloud
    from crosspoint.render import read_view_metadata

    ply = sorted((demo128 / "ShapeNet").rglob("*.ply"))[0]
    pts = read_point_cloud(ply).points.astype(np.float64)
    cams = read_view_metadata(demo128 / "ShapeNetRendering" / ply.parent.name / ply.stem / "rendering")
    assert len(cams) == 2
    for cam in cams:
        m = mirror_in_view(pts, cam)
        uv, z = cam._project64(pts)
        uvm, zm = cam._project64(m)
        assert np.abs(uvm[:, 0] - (cam.size - uv[:, 0])).max() < 1e-9
        assert np.abs(uvm[:, 1] - uv[:, 1]).max() < 1e-9 and np.abs(zm - z).max() < 1e-9
        assert np.abs(mirror_in_view(m, cam) - pts).max() < 1e-12
        d = np.linalg.norm(pts[:50, None] - pts[None, :50], axis=-1)
        dm = np.linalg.norm(m[:50, None] - m[None, :50], axis=-1)
        assert np.abs(d - dm).max() < 1e-12
        a, b, c = m[0] - m[3], m[1] - m[3], m[2] - m[3]
        a0, b0, c0 = pts[0] - pts[3], pts[1] - pts[3], pts[2] - pts[3]
        assert np.sign(np.dot(np.cross(a, b), c)) == -np.sign(np.dot(np.cross(a0, b0), c0))  # handedness flips


def test_dense_flip_both_mirrors_the_points_with_the_image_and_changes_nothing_else(demo128):
    """``loss.dense_flip: both``: an item whose view was flipped carries the points mirrored in that
    view (before the same augmentations, drawn identically); an item whose view was not flipped is the
    same as with ``image`` (the paper's flip); the image and the dense fields are always the same."""
    from crosspoint.data.dense import DenseItems, mirror_in_view
    from crosspoint.data.shapenet_render import ShapeNetRenderDataset
    from crosspoint.render import read_view_metadata

    def items(flip, transform=None):
        ds = ShapeNetRenderDataset(demo128, num_points=256, image_size=64, split=None, val_fraction=0.0, seed=3)
        if transform is not None:
            ds.point_transform = transform
        return ds, DenseItems(ds, 16, flip)

    with pytest.raises(ValueError, match="flip"):
        items("points")
    ds, img_only = items("image", lambda p: p)  # no augmentation: the points as sampled
    _, both = items("both", lambda p: p)
    _, aug_img = items("image")  # the paper's augmentations
    _, aug_both = items("both")
    seen = {"flipped": 0, "kept": 0, "aug_flipped": 0, "aug_kept": 0}
    for epoch in range(3):
        for it in (img_only, both, aug_img, aug_both):
            it.set_epoch(epoch)
        for i in range(len(ds)):
            for x, y, tag in ((img_only[i], both[i], ""), (aug_img[i], aug_both[i], "aug_")):
                for key in ("image", "dense_idx", "dense_uv", "dense_valid"):
                    assert torch.equal(x[key], y[key]), key
                if torch.equal(x["points1"], y["points1"]):
                    assert torch.equal(x["points2"], y["points2"])
                    seen[tag + "kept"] += 1
                    continue
                seen[tag + "flipped"] += 1
                if tag:  # augmented: the same draws on the mirror, so both copies differ from the paper's
                    assert not torch.equal(x["points2"], y["points2"])
                    continue
                cams = read_view_metadata(Path(ds._view_paths(i)[0]).parent)  # noqa: SLF001 - its views
                pts = x["points1"].numpy().astype(np.float64)
                # the mirror in one of the object's views (float32 storage: 1e-5 of a unit sphere)
                err = min(np.abs(mirror_in_view(pts, cam) - y["points1"].numpy()).max() for cam in cams)
                assert err < 1e-5, err
                assert torch.equal(y["points1"], y["points2"])  # no augmentation: both copies are the mirror
    assert min(seen.values()) >= 2, seen


@pytest.mark.slow
@pytest.mark.parametrize("partial", [0.0, 0.5])
def test_pretraining_with_the_dense_term_runs_logs_and_resumes(demo128, tmp_path, partial):
    from crosspoint.cli import main
    from crosspoint.engine.events import read_events

    common = ["--no-progress", "--set", f"data.partial_view={partial}"]
    for kv in ("data.num_points=256", "data.image_size=64", "model.k=8", "model.image_encoder=resnet18",
               "optim.batch_size=2", "data.workers=0", "run.log_every=1", "data.val_fraction=0", "run.threads=1",
               f"data.root={demo128}", "optim.epochs=2", "loss.dense_weight=1.0", "loss.dense_points=16",
               "model.dense_dim=16"):
        common += ["--set", kv]
    out = tmp_path / "run"
    assert main(["pretrain", "--out", str(out), *common]) == 0
    steps = [e for e in read_events(out) if e["event"] == "step"]
    assert steps and all(e["loss_dense"] > 0 for e in steps)
    for e in steps:
        assert e["loss"] == pytest.approx(e["loss_intra"] + e["loss_cross"] + e["loss_dense"], rel=1e-6)
    ck = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert ck["dense_heads"]["config"]["dim"] == 16 and ck["config"]["loss"]["dense_weight"] == 1.0
    assert ck["config"]["data"]["partial_view"] == partial
    if partial:
        return  # the rest does not depend on the partial view
    # the explorer's session opens the heads; their embeddings are unit vectors on a stride-8 map
    from crosspoint.analysis.session import ModelSession
    from crosspoint.models.dense import dense_maps

    s = ModelSession(out / "checkpoints" / "last.pt")
    assert s.dense_heads is not None and not s.dense_heads.training
    with s.inference(autocast=False):
        q, k = dense_maps(s.point_encoder, s.image_encoder, s.dense_heads, torch.rand(1, 256, 3),
                          torch.rand(1, 3, 64, 64))
    assert q.shape == (1, 256, 16) and k.shape == (1, 16, 8, 8)
    torch.testing.assert_close(q.norm(dim=-1), torch.ones(1, 256), rtol=0, atol=1e-5)
    # it needs a project-rendered dataset
    from crosspoint.data.testing import make_shapenet_render

    other = make_shapenet_render(tmp_path / "snr")
    assert main(["pretrain", "--out", str(tmp_path / "bad"), *[a if not a.startswith("data.root=") else
                                                                f"data.root={other}" for a in common]]) == 1


# ------------------------------------------------------------------ the refinement stage (issue 11 item 3)
def test_dense_heads_options_and_the_pretraining_layout():
    """stride 4 (layer1 joins) and 3x3 context layers; without them the parameters are the ones
    pretraining saved, so older checkpoints (a config without stride/context) load unchanged."""
    old = DenseHeads(point_dim=32, image_arch="resnet18", dim=8, hidden=16)
    assert sorted(old.state_dict()) == ["image.0.bias", "image.0.weight", "image.2.bias", "image.2.weight",
                                        "point.0.bias", "point.0.weight", "point.2.bias", "point.2.weight"]
    assert DenseHeads(**{k: v for k, v in old.config().items() if k not in ("stride", "context")}).config() == \
        old.config()
    stages = {"layer1": torch.zeros(2, 64, 16, 16), "layer2": torch.zeros(2, 128, 8, 8),
              "layer3": torch.zeros(2, 256, 4, 4)}
    assert old.image_embeddings(stages).shape == (2, 8, 8, 8)
    fine = DenseHeads(point_dim=32, image_arch="resnet18", dim=8, hidden=16, stride=4, context=2)
    assert fine.image_embeddings(stages).shape == (2, 8, 16, 16)
    assert [m.kernel_size for m in fine.image if isinstance(m, torch.nn.Conv2d)] == [(1, 1), (3, 3), (3, 3), (1, 1)]
    assert fine.config()["stride"] == 4 and fine.config()["context"] == 2
    for bad in ({"stride": 2}, {"context": -1}, {"image_branch": "layer4"}):
        with pytest.raises(ValueError):
            DenseHeads(point_dim=32, image_arch="resnet18", **bad)


def test_an_image_branch_started_from_the_encoder_gives_the_encoders_embeddings_exactly():
    """The branch's stages are copies of the image encoder's: until they are fitted, the heads with a
    branch and the same heads without one embed a view identically (float64, bit for bit); the
    config names the branch only when there is one (older checkpoints keep theirs)."""
    from crosspoint.analysis.correspondence import _resnet_stages
    from crosspoint.models import ImageEncoder

    torch.manual_seed(0)
    enc = ImageEncoder("resnet18", projection_dim=32).double().eval()
    plain = DenseHeads(point_dim=32, image_arch="resnet18", dim=8, hidden=16, stride=4, context=1).double()
    assert "image_branch" not in plain.config()
    for branch in ("layer3", "layer2+layer3"):
        b = DenseHeads(**plain.config(), image_branch=branch).double()
        assert b.config()["image_branch"] == branch and set(b.branch) == set(branch.split("+"))
        b.load_state_dict({**b.state_dict(), **plain.state_dict()})
        b.init_branch(enc)
        b.train()
        assert b.image[0].training and not any(m.training for m in b.branch.modules())
        b.eval()
        x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
        with torch.no_grad():
            _, st = _resnet_stages(enc, x)
            assert torch.equal(b.image_embeddings(st), plain.eval().image_embeddings(st))
            # a branch that differs from the encoder changes the embedding (it is really used)
            next(iter(b.branch[branch.split("+")[-1]].parameters())).add_(0.1)
            assert not torch.equal(b.image_embeddings(st), plain.image_embeddings(st))


def test_pooled_point_context_widened_from_plain_heads_starts_as_them_and_pools_the_whole_object():
    """``point_context="pooled"``: the point MLP also reads the object's max- and mean-pooled map.
    Widened from heads without it (zero weights on the new inputs) the heads embed every point as
    the plain heads do (float64; the extra terms are exact zeros); a subset of the points embedded
    with the object's whole map as context gives the whole object's rows (to float64 rounding); once the new
    weights move, the embedding depends on the rest of the object (the context is really used)."""
    torch.manual_seed(0)
    plain = DenseHeads(point_dim=12, image_arch="resnet18", dim=8, hidden=16, stride=4, context=1).double().eval()
    wide = DenseHeads(**plain.config(), point_context="pooled").double().eval()
    assert "point_context" not in plain.config() and wide.config()["point_context"] == "pooled"
    assert wide.point[0].in_features == 36
    wide.load_state_dict(wide.widened_state(plain))
    pmap = torch.randn(2, 50, 12, dtype=torch.float64)
    with torch.no_grad():
        full = wide.point_embeddings(pmap)
        assert torch.allclose(full, plain.point_embeddings(pmap), rtol=1e-13, atol=1e-13)
        idx = torch.tensor([3, 17, 40])
        # a 3-row and a 50-row GEMM may block differently on another CPU: equal to float64 rounding
        assert torch.allclose(wide.point_embeddings(pmap[:, idx], pmap), full[:, idx], rtol=1e-13, atol=1e-13)
        wide.point[0].weight[:, 12:].normal_(0, 0.1)
        other = pmap.clone()
        other[:, 20:] += 1.0  # the same three points, the rest of the object changed
        assert not torch.allclose(wide.point_embeddings(pmap[:, idx], pmap), wide.point_embeddings(other[:, idx], other))
    with pytest.raises(ValueError):
        plain.widened_state(plain)  # only pooled heads widen
    with pytest.raises(ValueError):
        wide.widened_state(DenseHeads(point_dim=12, image_arch="resnet18", dim=8, hidden=32).double())
    with pytest.raises(ValueError):
        DenseHeads(point_dim=12, image_arch="resnet18", point_context="global")


def test_dense_cell_loss_matches_a_hand_computation():
    from crosspoint.models.dense import dense_cell_loss

    g = torch.Generator().manual_seed(0)
    b, m, c, d, h, w = 2, 3, 5, 4, 2, 3
    q = torch.randn(b, m, d, generator=g, dtype=torch.float64)
    cand = torch.cat([q, torch.randn(b, c - m, d, generator=g, dtype=torch.float64)], dim=1)
    pmap = torch.randn(b, d, h, w, generator=g, dtype=torch.float64)
    uv = torch.tensor([[[0.5, 0.5], [5.9, 3.9], [3.0, 1.0]], [[1.0, 3.0], [4.5, 0.2], [2.2, 2.2]]], dtype=torch.float64)
    valid = torch.tensor([[True, True, False], [True, True, True]])
    pos = torch.zeros(b, m, c, dtype=torch.bool)
    pos[:, torch.arange(m), torch.arange(m)] = True
    pos[0, 0, 4] = pos[1, 2, 3] = True
    got = dense_cell_loss(q, pmap, uv, valid, cand, pos, (4, 6), temperature=0.5)
    # by hand: image 4 x 6 px, cells 2 x 3 (2 px each); the pixel embedding by bilinear sampling
    qn = q / q.norm(dim=-1, keepdim=True)
    kn = pmap / pmap.norm(dim=1, keepdim=True)
    cn = cand / cand.norm(dim=-1, keepdim=True)
    cells, pix = [], []
    for bi in range(b):
        for mi in range(m):
            if not valid[bi, mi]:
                continue
            u, v = uv[bi, mi].tolist()
            target = int(v // 2) * w + int(u // 2)
            logits = (kn[bi].reshape(d, -1).T @ qn[bi, mi]) / 0.5
            cells.append(-(logits[target] - torch.logsumexp(logits, 0)))
            e = sample_pixels(pmap[bi:bi + 1], uv[bi:bi + 1, mi:mi + 1], (4, 6))[0, 0]
            e = e / e.norm()
            lg = (cn[bi] @ e) / 0.5
            pix.append(torch.logsumexp(lg, 0) - torch.logsumexp(lg[pos[bi, mi]], 0))
    want = 0.5 * (torch.stack(cells).mean() + torch.stack(pix).mean())
    assert abs(float(got) - float(want)) < 1e-12


def test_refine_dense_heads_fits_on_frozen_encoders_and_writes_a_loadable_copy(demo128, tmp_path):
    """The refinement leaves the encoders bit-identical, lowers its loss on the views it fits, and
    writes a checkpoint whose finer heads the analyses use."""
    from crosspoint.analysis import ModelSession
    from crosspoint.analysis.correspondence import dense_similarity
    from crosspoint.analysis.dense_refine import RefineSettings, demo_objects, refine_dense_heads, \
        write_refined_checkpoint
    from crosspoint.models import DGCNN, ImageEncoder, read_checkpoint, save_model_bundle

    torch.manual_seed(0)
    ck = save_model_bundle(tmp_path / "enc.pt", point_encoder=DGCNN(k=8, emb_dims=64, projection_dim=32),
                           image_encoder=ImageEncoder("resnet18", projection_dim=32),
                           meta={"num_points": 256, "image_size": 64})
    session = ModelSession(ck, device="cpu")
    objs = demo_objects(demo128, "all", 3, view=None)
    assert all(len(o["images"]) == len(o["cameras"]) == 2 for o in objs)
    st = RefineSettings(steps=40, batch=4, points_per_view=16, candidates=32, hidden=32, dim=16, lr=3e-3)
    heads, rec = refine_dense_heads(session, objs, st, log_every=10)
    assert rec["views"] == 6 and rec["started_from"] == "a seeded initialisation"
    print([round(c["loss"], 3) for c in rec["curve"]])
    assert rec["curve"][-1]["loss"] < rec["curve"][0]["loss"] - 0.1, rec["curve"]
    out = write_refined_checkpoint(ck, heads, rec, tmp_path / "refined.pt")
    a, b = read_checkpoint(ck), read_checkpoint(out)
    for enc in ("point_encoder", "image_encoder"):
        assert all(torch.equal(a[enc]["state_dict"][k], b[enc]["state_dict"][k]) for k in a[enc]["state_dict"])
    assert b["dense_heads"]["config"]["stride"] == 4 and b["meta"]["dense_refined"]["objects"] == 3
    s2 = ModelSession(out, device="cpu")
    ds = dense_similarity(s2, objs[0]["points"], objs[0]["images"][0], objs[0]["cameras"][0])
    assert ds.method == "dense heads" and ds.grid == (16, 16)  # 64 px input, stride 4
    # a second refinement of the refined checkpoint starts from its heads
    _, rec2 = refine_dense_heads(s2, objs, RefineSettings(steps=2, batch=2, points_per_view=8, candidates=8,
                                                          hidden=32, dim=16))
    assert rec2["started_from"] == "the checkpoint's heads"
    # asked for the pooled context, it widens those heads: before the fit they embed as they did
    _, rec_w = refine_dense_heads(s2, objs, RefineSettings(steps=2, batch=2, points_per_view=8, candidates=8,
                                                           hidden=32, dim=16, point_context="pooled"))
    assert rec_w["started_from"] == "the checkpoint's heads, widened (zero weights on the pooled map)"
    assert rec_w["heads"]["point_context"] == "pooled"
    # with the heads' own layer2 + layer3: fitted from the encoder's copies, the encoder untouched
    ienc = session.require_image_encoder()
    before = {k: v.clone() for k, v in ienc.state_dict().items()}
    st_b = RefineSettings(steps=20, batch=4, points_per_view=16, candidates=32, hidden=32, dim=16, lr=3e-3,
                          image_branch="layer2+layer3")
    hb, rec_b = refine_dense_heads(session, objs, st_b, log_every=10)
    assert rec_b["started_from"] == "a seeded initialisation and the image encoder's layer2+layer3"
    assert all(torch.equal(v, ienc.state_dict()[k]) for k, v in before.items())
    moved = [not torch.equal(hb.branch[n].state_dict()[k], ienc.resnet.get_submodule(n).state_dict()[k])
             for n in ("layer2", "layer3") for k in hb.branch[n].state_dict() if "weight" in k]
    assert any(moved)
    assert all(not m.training for m in hb.branch.modules())  # BatchNorm kept the encoder's statistics
    out_b = write_refined_checkpoint(ck, hb, rec_b, tmp_path / "branch.pt")
    s3 = ModelSession(out_b, device="cpu")
    assert s3.dense_heads.config()["image_branch"] == "layer2+layer3"
    for k, v in hb.state_dict().items():
        assert torch.equal(s3.dense_heads.state_dict()[k], v.float() if v.is_floating_point() else v), k
    ds3 = dense_similarity(s3, objs[0]["points"], objs[0]["images"][0], objs[0]["cameras"][0])
    assert ds3.method == "dense heads" and ds3.grid == (16, 16)


def test_refine_dense_command_refuses_what_it_cannot_use(tmp_path, capsys):
    from crosspoint.cli import main

    assert main(["refine-dense", "--checkpoint", "x.pt", "--data", str(tmp_path), "--out", "x.pt"]) == 2
    assert "must not be the checkpoint itself" in capsys.readouterr().err
    assert main(["refine-dense", "--checkpoint", str(tmp_path / "none.pt"), "--data", str(tmp_path),
                 "--out", str(tmp_path / "o.pt"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "crosspoint refine-dense:" in err and not (tmp_path / "o.pt").exists()


def test_refine_dense_refuses_a_checkpoint_it_could_not_write_before_fitting(tmp_path, capsys):
    from crosspoint.cli import main
    from crosspoint.models import DGCNN, save_model_bundle

    only_points = save_model_bundle(tmp_path / "p.pt", point_encoder=DGCNN(k=8, emb_dims=64, projection_dim=32))
    assert main(["refine-dense", "--checkpoint", str(only_points), "--data", str(tmp_path), "--out",
                 str(tmp_path / "o.pt"), "--no-progress"]) == 2
    assert "not a checkpoint of this project with both encoders" in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()


@pytest.mark.slow
def test_shipped_dense_heads_find_pixels_on_unseen_objects_far_above_untrained_heads(tmp_path):
    """The honesty figure of the shipped dense heads (refit with refine-dense): on hard-demo objects
    of another seed, the point -> pixel hit rate and pixel -> points AUC of `crosspoint eval
    correspondence`, against the same encoders with untrained heads of the same shape and against
    chance. Measured (48 objects, model card): hit 26.2 % (chance 2.5 %), AUC 0.93."""
    from crosspoint import analysis as A
    from crosspoint.analysis.correspondence import evaluate_views
    from crosspoint.analysis.dense_refine import demo_objects
    from crosspoint.data.demo import SHIPPED_PRESET
    from crosspoint.data.synthetic import generate_demo

    path = A.default_checkpoint_path()
    if not path.is_file():
        pytest.skip("no demo checkpoint")
    s = A.ModelSession(path, device="cpu")
    if s.dense_heads is None or "dense_refined" not in s.meta:
        pytest.skip("the shipped checkpoint has no refitted dense heads")
    root = generate_demo(tmp_path / "held", preset=SHIPPED_PRESET, seed=1, per_class=1, n_views=1, workers=0,
                         classes=("chair", "table", "lamp", "mug", "airplane", "guitar"))
    objs = demo_objects(root, "all", 6, view=0)
    shipped = evaluate_views(s, objs, heat=False, occlusion=False)["summary"]  # the dense figures only
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        s.dense_heads = DenseHeads(**s.dense_heads.config()).eval()
    untrained = evaluate_views(s, objs, heat=False, occlusion=False)["summary"]
    print({k: (shipped[k], untrained[k]) for k in ("point_to_pixel_hit", "point_to_pixel_hit_chance",
                                                   "pixel_to_point_auc", "misses_on_own_part",
                                                   "misses_on_own_part_chance")})
    # the misses are mostly near misses and symmetric twins: they land on the point's own part far
    # more often than a pixel drawn from the object would (measured on 24 objects: 86.8 vs 59.5 %)
    assert shipped["misses_on_own_part"] > shipped["misses_on_own_part_chance"] + 0.1
    assert "part_agreement_objects" in shipped and shipped["part_agreement_objects"] == 0
    assert shipped["point_to_pixel_hit"] > 4 * shipped["point_to_pixel_hit_chance"]
    assert shipped["point_to_pixel_hit"] > 3 * untrained["point_to_pixel_hit"]
    assert shipped["pixel_to_point_auc"] > 0.85 and untrained["pixel_to_point_auc"] < 0.7


def test_dense_survivors_drop_only_the_links_to_points_the_augmentation_replaced(demo128):
    """``loss.dense_survivors``: the same item (points, image, picks) with each copy's links to points
    that RandomInputDropout overwrote removed, and no other; configs written before the setting read
    as without it (the shipped checkpoint was trained so), new ones with it."""
    from crosspoint.config import PretrainConfig, load_config, upgrade_legacy
    from crosspoint.data.dense import DenseItems
    from crosspoint.data.shapenet_render import ShapeNetRenderDataset

    ds = ShapeNetRenderDataset(demo128, num_points=256, image_size=64, split=None, val_fraction=0.0, seed=3)
    lost = 0
    for epoch in range(3):
        ds.set_epoch(epoch)
        a = DenseItems(ds, 32, "image", survivors=False)[1]
        b = DenseItems(ds, 32, "image", survivors=True)[1]
        for k in ("points1", "points2", "image", "dense_idx", "dense_uv"):
            assert torch.equal(a[k], b[k]), k
        idx = a["dense_idx"].numpy()
        for pk, vk in (("points1", "dense_valid"), ("points2", "dense_valid2")):
            pts = a[pk].numpy()
            replaced = (pts[idx] == pts[0]).all(axis=1) & (idx != 0)
            assert np.array_equal(b[vk].numpy(), a[vk].numpy() & ~replaced), (epoch, pk)
            lost += int((a[vk].numpy() & replaced).sum())
    assert lost > 0  # the dropout's ratio is U[0, 0.875): some links always go
    assert PretrainConfig().loss.dense_survivors is True
    assert upgrade_legacy({"loss": {"dense_weight": 1.0}})["loss"]["dense_survivors"] is False
    shipped = Path(__file__).resolve().parents[1] / "configs" / "cpu-demo-hard.yaml"
    assert load_config(shipped).loss.dense_survivors is False  # the shipped checkpoint's recipe, as it ran
