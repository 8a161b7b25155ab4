"""The training-pair inspector (issue 14): what the engine feeds the encoders for one object, its
batch, and its hardest in-batch negatives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crosspoint import analysis as A
from crosspoint.engine.pairs import batch_of, open_training_data, row_losses, training_pair
from crosspoint.config import PretrainConfig, apply_overrides
from crosspoint.losses import nt_xent
from tests.pretrain_support import TINY, make_tiny_demo


def test_row_losses_average_to_the_reference_nt_xent():
    rng = np.random.default_rng(0)
    for b in (2, 5, 16):
        z1, z2 = rng.standard_normal((b, 8)), rng.standard_normal((b, 8))
        rows, sims = row_losses(z1, z2, 0.1)
        want = float(nt_xent(torch.from_numpy(z1), torch.from_numpy(z2), 0.1, gather=False))
        assert rows.shape == (2 * b,) and abs(rows.mean() - want) <= 1e-12 * abs(want)
        assert np.allclose(np.diag(sims), 1.0, rtol=0, atol=1e-15)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = make_tiny_demo(tmp_path_factory.mktemp("tp") / "demo")
    cfg = apply_overrides(PretrainConfig(), [*TINY, f"data.root={root}"])
    return cfg, open_training_data(cfg)[1]


def test_the_pair_is_the_engines_item_and_batch(run):
    cfg, ds = run
    from crosspoint.engine.pretrain import EpochSampler

    n, bs = len(ds), cfg.optim.batch_size
    order = list(EpochSampler(n, batch_per_rank=bs, world_size=1, rank=0, seed=cfg.run.seed, epoch=2))
    kept = order[:len(order) - len(order) % bs] if len(order) % bs else order
    i = kept[bs + 1]  # second batch, second place
    p = training_pair(cfg, i, epoch=2, dataset=ds)
    assert p.batch == 1 and p.batch_indices == kept[bs:2 * bs]
    ds.set_epoch(2)
    item = ds[i]
    assert np.array_equal(p.points1, item["points1"].numpy()) and np.array_equal(p.points2, item["points2"].numpy())
    assert np.array_equal(p.image_tensor, item["image"].numpy())
    assert not np.array_equal(p.points1, p.points2)  # two independent augmentations
    assert p.image.dtype == np.uint8 and p.image.shape == (cfg.data.image_size, cfg.data.image_size, 3)
    # another epoch, other augmentations
    assert not np.array_equal(training_pair(cfg, i, epoch=3, dataset=ds).points1, p.points1)
    # an object the permutation leaves out of every full batch is said to be untrained that epoch
    for e in range(20):
        b, members = batch_of(0, n, batch_size=bs, seed=cfg.run.seed, epoch=e)
        if b is None:
            q = training_pair(cfg, 0, epoch=e, dataset=ds)
            assert q.batch is None and "not trained on" in q.note
            break


def test_negatives_and_losses_with_a_model(run, tmp_path):
    from crosspoint.models import DGCNN, ImageEncoder
    from crosspoint.models.checkpoint import save_model_bundle

    cfg, ds = run
    torch.manual_seed(0)
    s = A.ModelSession(save_model_bundle(tmp_path / "m.pt", point_encoder=DGCNN(k=8, emb_dims=64, projection_dim=32),
                                         image_encoder=ImageEncoder("resnet18", projection_dim=32),
                                         meta={"n_points": 128, "image_size": 32}), device="cpu")
    i = next(j for j in range(len(ds)) if batch_of(j, len(ds), batch_size=cfg.optim.batch_size,
                                                    seed=cfg.run.seed, epoch=0)[0] is not None)
    p = training_pair(cfg, i, epoch=0, session=s, dataset=ds, top_k=3)
    members = p.batch_indices
    # the same projections computed here: the batch's NT-Xent and the object's rows
    ds.set_epoch(0)
    items = [ds[j] for j in members]
    with s.inference():
        pe, ie = s.point_encoder, s.image_encoder
        z1 = pe.project_feature(pe.embed(torch.stack([it["points1"] for it in items]))).double()
        z2 = pe.project_feature(pe.embed(torch.stack([it["points2"] for it in items]))).double()
        zi = ie(torch.stack([it["image"] for it in items])).projection.double()
    # the same float32 projections (same calls, same thread), the losses in float64 on both sides
    assert abs(p.batch_intra_loss - float(nt_xent(z1, z2, p.temperature, gather=False))) < 1e-12
    assert abs(p.batch_cross_loss - float(nt_xent((z1 + z2) / 2, zi, p.temperature, gather=False))) < 1e-12
    me = members.index(i)
    u1, u2 = torch.nn.functional.normalize(z1, dim=1), torch.nn.functional.normalize(z2, dim=1)
    assert abs(p.intra_positive - float(u1[me] @ u2[me])) < 1e-12
    assert len(p.intra_negatives) == 3 and len(p.cross_negatives) == 3
    sims = [n.similarity for n in p.intra_negatives]
    assert sims == sorted(sims, reverse=True) and all(n.index != i for n in p.intra_negatives)
    assert all(n.index in members for n in p.cross_negatives)
    # the rank: how many of the 2B - 2 negatives beat the positive
    assert 0 <= p.intra_rank <= 2 * len(members) - 2
    assert (p.intra_rank == 0) == (p.intra_positive > sims[0])


def test_inspector_dialog_shows_the_pair_and_its_negatives(qtbot, window, run, tmp_path):
    from crosspoint.config import dump_config

    cfg, _ = run
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(cfg))
    window.model_panel.load(None)  # the demo checkpoint: an image encoder to score the batch
    qtbot.waitUntil(lambda: not window.model_panel.busy, timeout=60_000)
    dlg = window.open_pair_inspector()
    dlg.config.setText(str(path))
    dlg.index.setValue(1)
    dlg.run()
    qtbot.waitUntil(lambda: dlg.job is None, timeout=120_000)
    assert dlg.pair is not None, dlg.status.text()
    text = dlg.report.toPlainText()
    if dlg.pair.batch is not None:
        assert "Intra-modal" in text and "Cross-modal" in text and "in-batch negatives" in text
    for pic in dlg.pics:
        assert pic.pixmap() is not None and not pic.pixmap().isNull()
    dlg.close()


@pytest.mark.parametrize("extra", [
    [],
    ["loss.dense_weight=1.0", "loss.dense_points=8", "model.dense_dim=8"],
    ["loss.dense_weight=1.0", "loss.dense_points=8", "model.dense_dim=8", "loss.dense_flip=both",
     "data.partial_view=1.0"],
], ids=["plain", "dense", "dense-flip-partial"])
def test_the_pair_is_what_a_real_run_fed_its_model(tmp_path, monkeypatch, extra):
    """A real pretraining run, its model's inputs recorded: the inspector's pair of every object of
    each trained batch is that batch's row, bit for bit (with the dense term the engine reads
    DenseItems, whose image augmentation is drawn differently from the dataset's own items)."""
    from crosspoint.cli import main
    from crosspoint.engine.pretrain import EpochSampler
    from crosspoint.models.crosspoint import CrossPointModel
    from tests.pretrain_support import sets

    root = make_tiny_demo(tmp_path / "demo")
    fed = []
    forward = CrossPointModel.forward

    def recording(self, points1, points2, images, dense=None):
        fed.append((points1.detach().clone(), points2.detach().clone(), images.detach().clone(),
                    None if dense is None else {k: v.detach().clone() for k, v in dense.items() if v is not None}))
        return forward(self, points1, points2, images, dense)

    monkeypatch.setattr(CrossPointModel, "forward", recording)
    out = tmp_path / "run"
    assert main(["pretrain", "--out", str(out), "--no-progress",
                 *sets([f"data.root={root}", "data.val_fraction=0", "optim.epochs=2", "run.max_steps_per_epoch=1",
                        *extra])]) == 0
    assert len(fed) == 2
    cfg, ds = open_training_data(out)
    for epoch, (p1, p2, img, dense) in enumerate(fed):
        first = list(EpochSampler(len(ds), batch_per_rank=cfg.optim.batch_size, world_size=1, rank=0,
                                  seed=cfg.run.seed, epoch=epoch))[0]
        b, members = batch_of(first, len(ds), batch_size=cfg.optim.batch_size, seed=cfg.run.seed, epoch=epoch)
        assert b == 0 and len(members) == p1.shape[0]
        for k, j in enumerate(members):
            p = training_pair(out, j, epoch=epoch, dataset=ds)
            assert np.array_equal(p.points1, p1[k].numpy()) and np.array_equal(p.points2, p2[k].numpy())
            assert np.array_equal(p.image_tensor, img[k].numpy())
            if dense is None:
                assert p.links is None
                continue
            for key in ("idx", "uv", "valid", "valid2"):  # the dense term's links, as the model got them
                assert np.array_equal(p.links[key], dense[key][k].numpy()), key


def test_the_inspector_marks_the_dense_links_on_both_copies_and_the_view(qtbot, tmp_path):
    """With the dense term, the dialog paints the linked points (copy 2: only those it holds) and their
    pixels in LINK_RGB, and says how many there are; the pixel marks land exactly on the links' pixels."""
    from PyQt6.QtWidgets import QWidget

    from crosspoint.config import dump_config
    from explorer.pair_inspector import LINK_RGB, PairInspector, mark_pixels, splat_pair

    img = np.zeros((32, 32, 3), np.uint8)
    marked = mark_pixels(img, np.array([[3.7, 5.2], [31.9, 0.0]]), half=0)
    col = (np.asarray(LINK_RGB) * 255).round().astype(np.uint8)
    assert {tuple(map(int, yx)) for yx in np.argwhere((marked == col).all(-1))} == {(5, 3), (0, 31)}

    root = make_tiny_demo(tmp_path / "demo")
    cfg = apply_overrides(PretrainConfig(), [*TINY, f"data.root={root}", "loss.dense_weight=1.0",
                                             "loss.dense_points=16", "model.dense_dim=8", "data.partial_view=1.0"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(cfg))
    _, ds = open_training_data(cfg)
    for index, epoch in ((i, e) for e in range(4) for i in range(len(ds))):  # one with links in both copies
        p = training_pair(cfg, index, epoch=epoch, dataset=ds)
        if p.links["valid"].sum() >= 3 and p.links["valid2"].sum() >= 1:
            break
    assert p.links["valid"].sum() >= 3
    a, b = splat_pair(p.points1, p.points2, links=p.links)
    a0, b0 = splat_pair(p.points1, p.points2)
    magenta = lambda im: int((np.abs(im[..., :3].astype(int) - col).max(-1) <= 40).sum())  # noqa: E731
    assert magenta(a) > 0 and magenta(b) > 0 and magenta(a0) == 0 and magenta(b0) == 0

    class Panel:  # the dialog reads only the session of the model panel
        session = None

    parent = QWidget()
    qtbot.addWidget(parent)
    dlg = PairInspector(Panel(), parent, config=str(path))
    dlg.index.setValue(index)
    dlg.epoch.setValue(epoch)
    dlg.run()
    qtbot.waitUntil(lambda: dlg.job is None, timeout=60_000)
    text = dlg.report.toPlainText()
    assert (f"the loss links {int(p.links['valid'].sum())} points of points 1 and {int(p.links['valid2'].sum())} "
            "of points 2") in text, text
    assert "replaced by the copy's first point" not in text  # new configs drop such links (dense_survivors)
    view = dlg.pics[2].pixmap().toImage()
    assert not view.isNull()
    # the shipped recipe's setting (dense_survivors false): the links to replaced points are kept and said
    old = apply_overrides(cfg, ["loss.dense_survivors=false"])
    q = training_pair(old, index, epoch=epoch)
    dead = int((q.links["valid"] & ~q.links["alive"]).sum()), int((q.links["valid2"] & ~q.links["alive2"]).sum())
    assert np.array_equal(q.links["valid"] & q.links["alive"], p.links["valid"])
    dlg.show_pair(q, splat_pair(q.points1, q.points2, links=q.links))
    text = dlg.report.toPlainText()
    assert sum(dead) > 0  # the dropout's ratio is U[0, 0.875)
    assert f"Of these, {dead[0]} in points 1 and {dead[1]} in points 2 are points that the input dropout" in text
    dlg.close()
