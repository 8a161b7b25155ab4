"""Part-segmentation fine-tuning (``crosspoint finetune-partseg``) end to end on a tiny demo dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from crosspoint.cli import main
from crosspoint.engine.events import read_events
from crosspoint.engine.finetune import smoothed_cross_entropy

FAST = ["--points", "128", "--batch-size", "4", "--epochs", "1", "--device", "cpu", "--no-progress",
        "--set", "max_steps_per_epoch=2", "--set", "max_eval_objects=4", "--set", "eval_batch_size=4"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from crosspoint.data.synthetic import generate_demo

    out = tmp_path_factory.mktemp("partdemo") / "demo"
    generate_demo(out, per_class=3, n_points=128, n_views=1, size=32, workers=0)
    return out


def test_smoothed_cross_entropy_is_the_reference_formula():
    torch.manual_seed(0)
    logits = torch.randn(7, 5)
    gold = torch.tensor([0, 1, 2, 3, 4, 0, 1])
    eps = 0.2
    one_hot = torch.zeros_like(logits).scatter(1, gold.view(-1, 1), 1)
    one_hot = one_hot * (1 - eps) + (1 - one_hot) * eps / (5 - 1)
    expected = -(one_hot * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    assert torch.allclose(smoothed_cross_entropy(logits, gold, eps), expected, atol=1e-6)
    assert torch.allclose(smoothed_cross_entropy(logits, gold, 0.0), F.cross_entropy(logits, gold))


def test_finetune_partseg_end_to_end(demo, tmp_path, capsys):
    from crosspoint.models import PartSegmenter, load_part_segmenter, read_checkpoint

    out = tmp_path / "run"
    rc = main(["finetune-partseg", "--data", str(demo), "--init", "random", "--out", str(out), "--k", "8", *FAST])
    assert rc == 0, capsys.readouterr().err
    assert "test: instance mIoU" in capsys.readouterr().out
    kinds = [e["event"] for e in read_events(out)]
    assert kinds[0] == "start" and kinds[-1] == "end"
    for k in ("step", "epoch", "validation", "checkpoint"):
        assert k in kinds
    start = read_events(out)[0]
    assert start["steps_per_epoch"] == 2 and start["arch"] == "dgcnn_partseg" and start["k"] == 8
    best = out / "checkpoints" / "best.pt"
    assert best.is_file() and (out / "checkpoints" / "last.pt").is_file()
    model = load_part_segmenter(best)
    assert isinstance(model, PartSegmenter) and model.head.num_parts == 25 and model.head.num_categories == 8
    meta = read_checkpoint(best)["meta"]
    assert meta["part_table"]["category_names"][0] == "chair" and "test" in meta and "val" in meta
    res = json.loads((out / "results.json").read_text())
    assert res["best_epoch"] == 0 and 0.0 <= res["test"]["instance_miou"] <= 1.0
    # the fine-tuned checkpoint through `crosspoint eval partseg`
    rc = main(["eval", "partseg", "--checkpoint", str(best), "--data", str(demo), "--points", "128",
               "--device", "cpu", "--json", str(tmp_path / "ps.json"), "--no-progress"])
    assert rc == 0
    ps = json.loads((tmp_path / "ps.json").read_text())["results"]
    assert {"instance_miou", "class_miou", "instance_miou_unrestricted", "per_category"} <= set(ps)
    # a second run into the same folder is refused
    assert main(["finetune-partseg", "--data", str(demo), "--init", "random", "--out", str(out), *FAST]) == 1
    assert "already holds a run" in capsys.readouterr().err


def test_frozen_head_on_a_pretrained_classification_encoder(demo, tmp_path):
    from crosspoint.evaluation.partseg import ClsPartSegmenter, load_segmenter
    from crosspoint.models import build_image_encoder, build_point_encoder, load_image_encoder, save_model_bundle

    torch.manual_seed(0)
    enc = build_point_encoder("dgcnn", k=8)
    init = tmp_path / "pretrained.pt"
    save_model_bundle(init, point_encoder=enc, image_encoder=build_image_encoder("resnet18"))
    out = tmp_path / "frozen"
    rc = main(["finetune-partseg", "--data", str(demo), "--init", str(init), "--out", str(out),
               "--backbone", "frozen", *FAST])
    assert rc == 0
    best = out / "checkpoints" / "best.pt"
    seg = load_segmenter(best)
    assert isinstance(seg, ClsPartSegmenter) and seg.k == 8
    before = enc.state_dict()
    for name, t in seg.backbone.state_dict().items():  # weights and BatchNorm statistics untouched
        assert torch.equal(t, before[name]), name
    assert load_image_encoder(best).arch == "resnet18"  # the image encoder travels with it
    logits = seg(np.zeros((1, 64, 3), np.float32), torch.tensor([2]))
    assert logits.shape == (1, 64, 25)
    start = read_events(out)[0]
    assert start["loaded"] and any("seg head" in n for n in start["new"])


def test_finetune_errors(demo, tmp_path, capsys):
    from crosspoint.models import build_point_encoder, save_model_bundle

    args = ["finetune-partseg", "--data", str(demo), "--init", "random", "--out", str(tmp_path / "x")]
    assert main([*args, "--set", "nonsense=1"]) == 2
    assert "nonsense" in capsys.readouterr().err
    assert main([*args, "--set", "val_split=test"]) == 2
    assert "never the test split" in capsys.readouterr().err
    pn = tmp_path / "pointnet.pt"
    save_model_bundle(pn, point_encoder=build_point_encoder("pointnet"))
    assert main(["finetune-partseg", "--data", str(demo), "--init", str(pn), "--out", str(tmp_path / "y"), *FAST]) == 1
    assert "PointNet" in capsys.readouterr().err
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00garbage")
    assert main(["finetune-partseg", "--data", str(demo), "--init", str(junk), "--out", str(tmp_path / "z"), *FAST]) == 1
    assert "junk.pth" in capsys.readouterr().err
    assert main(["finetune-partseg", "--data", str(tmp_path / "missing"), "--init", "random",
                 "--out", str(tmp_path / "w"), *FAST]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert not (tmp_path / "y").exists() and not (tmp_path / "z").exists()  # nothing left behind


def test_official_reference_checkpoints(demo, tmp_path, capsys, reference_fixtures):
    """Official layouts: a dgcnn_seg pretraining file initialises fine-tuning (strictly); a
    fine-tuned model.t7 (16 ShapeNetPart categories) is refused on the 8-category demo."""
    out = tmp_path / "official"
    rc = main(["finetune-partseg", "--data", str(demo), "--init", str(reference_fixtures / "dgcnn_partseg_pretrain.pth"),
               "--out", str(out), "--k", "8", *FAST])
    assert rc == 0, capsys.readouterr().err
    start = read_events(out)[0]
    assert start["arch"] == "dgcnn_partseg" and "strict" in start["loaded"][0]
    rc = main(["eval", "partseg", "--checkpoint", str(reference_fixtures / "dgcnn_partseg_finetuned.pth"),
               "--data", str(demo), "--points", "128", "--no-progress"])
    assert rc == 1
    assert "16 categories" in capsys.readouterr().err
    rc = main(["eval", "svm", "--checkpoint", str(reference_fixtures / "dgcnn_cls.pth"), "--data", str(demo),
               "--points", "128", "--device", "cpu", "--no-cv", "--val-fraction", "0.4", "--no-progress"])
    assert rc == 0
    assert "2048-d features" in capsys.readouterr().out


def test_one_config_shape_for_both_commands(capsys):
    """finetune-partseg takes pretrain's sections (data/model/optim/run, the run section being
    pretraining's RunConfig); the flat keys of earlier versions still land in the same place."""
    import yaml

    from crosspoint.config import RunConfig
    from crosspoint.engine.finetune import FinetuneConfig

    assert isinstance(FinetuneConfig().run, RunConfig)
    outs = []
    for sets in (["optim.epochs=3", "data.augment=none", "run.seed=5"], ["epochs=3", "augment=none", "seed=5"]):
        args = ["finetune-partseg", "--data", "demo", "--init", "random", "--out", "unused", "--print-config"]
        for kv in sets:
            args += ["--set", kv]
        assert main(args) == 0
        outs.append(yaml.safe_load(capsys.readouterr().out))
    assert outs[0] == outs[1]
    assert outs[0]["optim"]["epochs"] == 3 and outs[0]["data"]["augment"] == "none" and outs[0]["run"]["seed"] == 5
    assert set(outs[0]) == {"data", "model", "optim", "run", "name"}
    assert main(["finetune-partseg", "--data", "demo", "--init", "random", "--out", "x", "--set", "optim.nope=1"]) == 2
    assert "optim.nope" in capsys.readouterr().err


def test_an_init_with_a_seg_backbone_continues_it_or_keeps_the_frozen_encoder_apart(demo, tmp_path):
    """A bundle whose head was fine-tuned with its own encoder (``seg_backbone``): fine-tuning from it
    goes on with that encoder and head; a frozen run keeps the pretrained ``point_encoder`` and does
    not take a head trained for another encoder."""
    from crosspoint.engine.finetune import build_segmenter, config_from_dict, open_partseg_dataset
    from crosspoint.models import build_point_encoder, read_checkpoint, save_model_bundle
    from crosspoint.models.partseg import PartSegHead

    torch.manual_seed(0)
    pretrained, tuned = build_point_encoder("dgcnn", k=8), build_point_encoder("dgcnn", k=8)
    table = open_partseg_dataset(demo, "train", 128).table
    head = PartSegHead(num_parts=int(table.num_parts), num_categories=int(table.num_categories),
                       emb_dims=pretrained.feature_dim, local_dims=pretrained.edge_feature_dim)
    init = save_model_bundle(tmp_path / "tuned.pt", point_encoder=pretrained, seg_head=head, seg_backbone=tuned)
    for mode, encoder in (("finetune", tuned), ("frozen", pretrained)):
        cfg = config_from_dict({"data": {"root": str(demo), "num_points": 128},
                                "model": {"init": str(init), "backbone": mode}})
        model, report = build_segmenter(cfg, table)
        for name, t in model.backbone.state_dict().items():
            assert torch.equal(t, encoder.state_dict()[name]), (mode, name)
        took_head = all(torch.equal(t, head.state_dict()[n]) for n, t in model.head.state_dict().items())
        assert took_head == (mode == "finetune")
        assert any("seg_backbone" in n for n in report["loaded" if mode == "finetune" else "new"])
    assert "seg_backbone" in read_checkpoint(init)


@pytest.mark.parametrize("section, bad, words", [
    ("optim", {"lr": float("inf")}, ["optim.lr", "not a finite number"]),
    ("optim", {"weight_decay": -1e-4}, ["optim.weight_decay"]),
    ("optim", {"momentum": 1.5}, ["optim.momentum"]),
    ("optim", {"lr": 1e-4}, ["optim.eta_min", "0.001", "set optim.eta_min too"]),
    ("model", {"dropout": 1.0}, ["model.dropout"]),
])
def test_bad_finetune_values_say_what_is_wrong(section, bad, words):
    from crosspoint.engine.finetune import FinetuneError, config_from_dict

    with pytest.raises(FinetuneError) as err:
        config_from_dict({section: bad})
    for w in words:
        assert w in str(err.value), str(err.value)
    config_from_dict({"optim": {"lr": 1e-4, "eta_min": 1e-5}})  # fine once the floor is below the lr
