"""The official CrossPoint checkpoint layouts (fixtures made with the reference's model code) load
strictly and reproduce the reference outputs."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
import torch

from crosspoint.models import (
    DGCNN, CheckpointError, DGCNNPartSeg, PartSegmenter, load_image_encoder, load_part_segmenter,
    load_point_encoder, to_official_state_dict,
)

torch.set_num_threads(2)
# The fixtures hold the reference's float32 outputs, made once. Ours are computed in float64 (exact to
# ~1e-12), so the difference is the fixture's own float32 rounding: the same number on every CPU
# (measured: at most 6.3e-7 absolute on outputs of order 0.01-1). 1e-4 leaves room for a near-tie kNN neighbour in float32
# inputs; it is not a tolerance for this machine's rounding.
TOL = 1e-4

POINT_FIXTURES = {
    "dgcnn_cls": (DGCNN, "feat"),
    "dgcnn_partseg_pretrain": (DGCNNPartSeg, "global_feat"),
    "dgcnn_partseg_finetuned": (DGCNNPartSeg, None),
}


def _io(folder, name):
    return np.load(folder / f"{name}_io.npz")


def _points(io) -> torch.Tensor:
    return torch.from_numpy(io["x"]).transpose(1, 2).contiguous()  # (B, 3, N) -> (B, N, 3)


def _state(folder, name) -> "OrderedDict[str, torch.Tensor]":
    return torch.load(folder / f"{name}.pth", weights_only=True)


def _with_prefix(sd, prefix="module."):
    return OrderedDict((prefix + k, v) for k, v in sd.items())


@pytest.mark.parametrize("name", ["dgcnn_cls", "dgcnn_partseg_pretrain"])
@pytest.mark.parametrize("prefixed", [False, True])
def test_point_encoders_reproduce_reference(reference_fixtures, tmp_path, name, prefixed):
    cls, feat_key = POINT_FIXTURES[name]
    io = _io(reference_fixtures, name)
    path = reference_fixtures / f"{name}.pth"
    if prefixed:  # as saved through nn.DataParallel
        path = tmp_path / "prefixed.pth"
        torch.save(_with_prefix(_state(reference_fixtures, name)), path)
    enc = load_point_encoder(path, k=int(io["k"]))
    assert isinstance(enc, cls) and not enc.training
    with torch.no_grad():
        out = enc.double()(_points(io).double())
    np.testing.assert_allclose(out.feature.numpy(), io[feat_key], atol=TOL, rtol=TOL)
    np.testing.assert_allclose(out.projection.numpy(), io["inv_feat"], atol=TOL, rtol=TOL)
    assert out.feature.shape[1] == enc.feature_dim


@pytest.mark.parametrize("prefixed", [False, True])
def test_part_segmenter_reproduces_reference(reference_fixtures, tmp_path, prefixed):
    name = "dgcnn_partseg_finetuned"
    io = _io(reference_fixtures, name)
    path = reference_fixtures / f"{name}.pth"
    if prefixed:
        path = tmp_path / "prefixed.pth"
        torch.save(_with_prefix(_state(reference_fixtures, name)), path)
    seg = load_part_segmenter(path, k=int(io["k"]))
    assert isinstance(seg, PartSegmenter) and not seg.training
    category = torch.from_numpy(io["category_onehot"]).argmax(1)
    with torch.no_grad():
        logits = seg.double()(_points(io).double(), category).float()
        seg.float()
    ref = np.transpose(io["logits"], (0, 2, 1))  # (B, 50, N) -> (B, N, 50)
    assert logits.shape == ref.shape
    np.testing.assert_allclose(logits.numpy(), ref, atol=TOL, rtol=TOL)
    # the same file gives its backbone as a point encoder
    enc = load_point_encoder(path, k=int(io["k"]))
    assert isinstance(enc, DGCNNPartSeg)
    with torch.no_grad():
        torch.testing.assert_close(enc.embed(_points(io)), seg.backbone.embed(_points(io)))


def test_default_k(reference_fixtures):
    # the reference pretrained with --k 15 (scripts/script.sh); the fixtures above were made with k = 20
    # and pass it explicitly (tests/test_official_k.py)
    assert load_point_encoder(reference_fixtures / "dgcnn_cls.pth").k == 15
    assert load_part_segmenter(reference_fixtures / "dgcnn_partseg_finetuned.pth").k == 40


def test_pretrain_file_is_not_a_segmenter(reference_fixtures):
    with pytest.raises(CheckpointError, match="no part-segmentation head"):
        load_part_segmenter(reference_fixtures / "dgcnn_partseg_pretrain.pth")


@pytest.mark.parametrize("name", list(POINT_FIXTURES))
def test_missing_key_is_reported(reference_fixtures, tmp_path, name):
    sd = _state(reference_fixtures, name)
    for key in ("inv_head.0.weight", "transform_net.bn1.weight", "conv2.1.weight"):
        sd.pop(key, None)  # conv2.1.weight still has its bn2.weight twin, so it is not missing
    path = tmp_path / "broken.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        load_point_encoder(path)
    msg = str(err.value)
    assert "broken.pth" in msg and "missing keys" in msg and "inv_head.0.weight" in msg
    assert "conv2.1.weight" not in msg


def test_unexpected_key_is_reported(reference_fixtures, tmp_path):
    sd = _state(reference_fixtures, "dgcnn_cls")
    sd["linear9.weight"] = torch.zeros(3)
    torch.save(sd, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1: linear9.weight\)"):
        load_point_encoder(tmp_path / "extra.pth")


def test_duplicate_batchnorm_keys(reference_fixtures, tmp_path):
    sd = _state(reference_fixtures, "dgcnn_cls")
    # only one of the two names is enough
    only_bn = OrderedDict((k, v) for k, v in sd.items() if not k.startswith("conv1.1."))
    torch.save(only_bn, tmp_path / "only_bn.pth")
    enc = load_point_encoder(tmp_path / "only_bn.pth")
    torch.testing.assert_close(enc.conv1[1].running_var, sd["bn1.running_var"])
    # disagreeing twins are an error
    sd["bn3.weight"] = sd["bn3.weight"] + 1
    torch.save(sd, tmp_path / "differ.pth")
    with pytest.raises(CheckpointError, match="bn3.weight and conv3.1.weight"):
        load_point_encoder(tmp_path / "differ.pth")


@pytest.mark.parametrize("name", list(POINT_FIXTURES))
def test_export_to_official_layout(reference_fixtures, name):
    sd = _state(reference_fixtures, name)
    if name == "dgcnn_partseg_finetuned":
        model = load_part_segmenter(reference_fixtures / f"{name}.pth")
    else:
        model = load_point_encoder(reference_fixtures / f"{name}.pth")
    out = to_official_state_dict(model)
    assert set(out) == set(sd)
    for key, value in sd.items():
        if name == "dgcnn_partseg_pretrain" and key.split(".")[0] in ("bn7", "bn8", "bn9", "bn10"):
            assert out[key].shape == value.shape  # unused by the reference: defaults are written
            continue
        torch.testing.assert_close(out[key], value, msg=key)


def test_official_image_encoder_loads_strictly(reference_fixtures, tmp_path):
    shapes = json.loads((reference_fixtures / "img_model_resnet50_keys.json").read_text())
    g = torch.Generator().manual_seed(0)
    sd = OrderedDict((k, torch.randn(v, generator=g) if v else torch.tensor(7)) for k, v in shapes.items())
    for key in sd:
        if key.endswith("running_var"):
            sd[key] = sd[key].abs() + 0.5
    torch.save(sd, tmp_path / "img_model_best.pth")
    enc = load_image_encoder(tmp_path / "img_model_best.pth")
    assert enc.arch == "resnet50" and enc.feature_dim == 2048 and not enc.training
    torch.testing.assert_close(enc.state_dict()["inv_head.0.weight"], sd["inv_head.0.weight"])
    assert set(enc.state_dict()) == set(sd)
    assert set(to_official_state_dict(enc)) == set(sd)

    torch.save(_with_prefix(sd), tmp_path / "prefixed.pth")
    load_image_encoder(tmp_path / "prefixed.pth")

    sd.pop("resnet.layer2.0.conv1.weight")
    torch.save(sd, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match="missing keys.*resnet.layer2.0.conv1.weight"):
        load_image_encoder(tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match="resnet50"):
        load_image_encoder(tmp_path / "prefixed.pth", arch="resnet18")
    with pytest.raises(CheckpointError, match="load_image_encoder"):
        load_point_encoder(tmp_path / "prefixed.pth")
