"""``data.background``: one function (:func:`crosspoint.data.transforms.to_rgb`) turns RGBA views
into RGB for pretraining, evaluation and the explorer, with the reference's ``convert('RGB')`` as
"drop" and an exact integer composite for "white" / "black"."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from crosspoint.data import transforms as T


def _renders(shared_data) -> list[Path]:
    paths = sorted((shared_data / "renders").rglob("*.png"))
    assert len(paths) == 7
    return paths


def _exact_table(b: int) -> np.ndarray:
    """``table[c, a]`` = ``c a/255 + b (1 - a/255)`` rounded to the nearest integer, with fractions."""
    out = np.empty((256, 256), np.uint8)
    for c in range(256):
        for a in range(256):
            v = Fraction(c * a + b * (255 - a), 255)
            fl = v.numerator // v.denominator
            assert v - fl != Fraction(1, 2)  # never a tie
            out[c, a] = fl + (1 if v - fl > Fraction(1, 2) else 0)
    return out


@pytest.fixture(scope="module")
def exact():
    return {"white": _exact_table(255), "black": _exact_table(0)}


# ------------------------------------------------------------------------------ the real renders
def test_what_real_shapenet_renders_store_under_transparent_pixels(shared_data):
    """The facts the transforms docstring states, measured on the real 3D-R2N2 / DISN renders."""
    for p in _renders(shared_data):
        with Image.open(p) as im:
            assert im.mode == "RGBA" and im.size == (137, 137)
            a = np.asarray(im)
        alpha = a[..., 3]
        clear = alpha == 0
        assert 15_000 < clear.sum() < 18_000
        stored = a[..., :3][clear]
        not_black = (stored != 0).any(axis=1).sum()
        assert 1 <= not_black <= 8, (p.name, not_black)  # almost all (0, 0, 0), a few stray pixels
        edge = (alpha > 0) & (alpha < 255)
        assert 300 < edge.sum() < 1000
        # edge pixels keep the object's colour at full strength (straight alpha): dropping alpha
        # and compositing on black differ there
        drop = T.to_rgb(a, "drop")
        black = T.to_rgb(a, "black")
        assert (drop[edge] != black[edge]).any(axis=1).mean() > 0.5
        assert (drop[alpha == 255] == black[alpha == 255]).all()


def test_drop_is_pils_convert_rgb_byte_for_byte(shared_data):
    for p in _renders(shared_data):
        with Image.open(p) as im:
            ref = im.convert("RGB")  # what the reference's datasets/data.py does
            ours = T.to_rgb(im, "drop")
            arr = np.asarray(im)
        assert ours.mode == "RGB" and ours.tobytes() == ref.tobytes()
        assert T.load_rgb(p, "drop").tobytes() == ref.tobytes()
        np.testing.assert_array_equal(T.to_rgb(arr, "drop"), np.asarray(ref))


def test_white_and_black_composite_exactly(shared_data, exact):
    for p in _renders(shared_data):
        with Image.open(p) as im:
            arr = np.asarray(im)
            for bg in ("white", "black"):
                want = exact[bg][arr[..., :3], arr[..., 3:4]]
                np.testing.assert_array_equal(T.to_rgb(arr, bg), want)
                np.testing.assert_array_equal(np.asarray(T.to_rgb(im, bg)), want)
                np.testing.assert_array_equal(np.asarray(T.load_rgb(p, bg)), want)


def test_composite_formula_on_every_colour_and_alpha(exact):
    c, a = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    arr = np.stack([c, 255 - c, c // 2, a], axis=-1).astype(np.uint8)
    for bg, b in (("white", 255), ("black", 0)):
        out = T.to_rgb(arr, bg)
        np.testing.assert_array_equal(out[..., 0], exact[bg])
        np.testing.assert_array_equal(out[..., 1], exact[bg][255 - c, a])
        np.testing.assert_array_equal(out[..., 2], exact[bg][c // 2, a])
        np.testing.assert_array_equal(out[:, 255, 0], np.arange(256))  # opaque: the colour itself
        assert (out[:, 0] == b).all()  # fully transparent: the background
    # a colour tuple follows the same formula
    out = T.to_rgb(arr, (10, 20, 30))
    c3, a1 = arr[..., :3].astype(np.int64), arr[..., 3:4].astype(np.int64)
    want = (c3 * a1 + np.array([10, 20, 30]) * (255 - a1) + 127) // 255
    np.testing.assert_array_equal(out, want)


def test_to_rgb_inputs_and_errors():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for bg in ("drop", "white", "black"):
        np.testing.assert_array_equal(T.to_rgb(rgb, bg), rgb)  # no alpha: unchanged
    grey_alpha = np.array([[[100, 0], [100, 255]]], np.uint8)
    assert T.to_rgb(grey_alpha, "white").tolist() == [[[255] * 3, [100] * 3]]
    assert T.to_rgb(grey_alpha, "drop").tolist() == [[[100] * 3, [100] * 3]]
    la = Image.fromarray(grey_alpha, "LA")
    assert T.to_rgb(la, "drop").tobytes() == la.convert("RGB").tobytes()
    assert np.asarray(T.to_rgb(la, "white")).tolist() == [[[255] * 3, [100] * 3]]
    for bad in ("grey", "Drop", (1, 2), (0, 0, 256), (0.5, 0, 0)):
        with pytest.raises(ValueError):
            T.to_rgb(rgb, bad)
    with pytest.raises(TypeError):
        T.to_rgb(rgb.astype(np.float32), "white")
    with pytest.raises(TypeError):
        T.to_rgb(rgb)  # noqa  (no default background: every caller says which)


# ------------------------------------------------------------------------------ pretraining data
def _render_dataset(tmp_path, shared_data) -> Path:
    from crosspoint.data import testing as fake

    sn = fake.make_shapenet_render(tmp_path / "sn", synsets=("03001627",), per_class=2, n_views=1)
    real = sorted((shared_data / "renders" / "pixel2mesh").glob("*.png"))[:2]
    for k, png in enumerate(real):
        shutil.copy(png, sn / "ShapeNetRendering" / "03001627" / f"obj0{k:03d}" / "rendering" / "00.png")
    return sn


def test_pretraining_views_follow_the_background_setting(tmp_path, shared_data):
    from crosspoint.data.shapenet_render import ShapeNetRenderDataset

    sn = _render_dataset(tmp_path, shared_data)
    tf = T.eval_image_transform(137)
    png = sorted((shared_data / "renders" / "pixel2mesh").glob("*.png"))[0]
    with Image.open(png) as im:
        im.load()
        expected = {bg: tf(im.convert("RGB") if bg == "drop" else T.to_rgb(im, bg))
                    for bg in ("drop", "white", "black")}
    got = {}
    for bg in ("drop", "white", "black"):
        ds = ShapeNetRenderDataset(sn, num_points=48, image_size=137, image_transform=tf, background=bg)
        got[bg] = ds[0]["image"]
        assert torch.equal(got[bg], expected[bg]), bg
    assert not torch.equal(got["drop"], got["white"]) and not torch.equal(got["drop"], got["black"])
    legacy = ShapeNetRenderDataset(sn, num_points=48, image_size=137, image_transform=tf)
    assert legacy.background == "white" and torch.equal(legacy[0]["image"], expected["white"])
    with pytest.raises(ValueError, match="background"):
        ShapeNetRenderDataset(sn, num_points=48, background="grey")


def test_folder_dataset_takes_the_background(tmp_path):
    from crosspoint.data.folder import FolderPretrainDataset

    sig = FolderPretrainDataset.__init__.__kwdefaults__
    assert sig["background"] == "white"
    with pytest.raises(ValueError, match="background"):
        FolderPretrainDataset(tmp_path, background="transparent")


# ------------------------------------------------------------------------------ evaluation
def test_eval_image_features_use_to_rgb(shared_data):
    from crosspoint.evaluation.features import extract_image_features
    from crosspoint.models import build_image_encoder

    torch.manual_seed(0)
    enc = build_image_encoder("resnet18", projection_dim=8).eval()
    png = sorted((shared_data / "renders" / "pixel2mesh").glob("*.png"))[0]
    tf = T.eval_image_transform(64)
    for bg in ("drop", "black"):
        got = extract_image_features(enc, [png], image_size=64, background=bg, amp=False)
        with torch.no_grad():
            want = enc(tf(T.load_rgb(png, bg))[None]).projection.numpy()
        np.testing.assert_array_equal(got, want)


def test_checkpoint_background_resolution(tmp_path, reference_fixtures):
    from crosspoint.models import build_point_encoder, checkpoint_background, read_checkpoint, save_model_bundle

    pe = build_point_encoder("dgcnn", k=8, emb_dims=32, projection_dim=8)
    plain = save_model_bundle(tmp_path / "plain.pt", point_encoder=pe)
    assert checkpoint_background(plain) == ("white", "legacy default")
    cfg = {"data": {"num_points": 64, "image_size": 64}, "model": {"k": 8}}
    old = save_model_bundle(tmp_path / "old.pt", point_encoder=pe, extra={"config": cfg})
    assert checkpoint_background(old) == ("white", "legacy default")  # saved before data.background
    for bg in ("drop", "white", "black"):
        new = save_model_bundle(tmp_path / f"{bg}.pt", point_encoder=pe,
                                extra={"config": {**cfg, "data": {**cfg["data"], "background": bg}}})
        assert checkpoint_background(new) == (bg, "checkpoint")
        assert checkpoint_background(read_checkpoint(new)) == (bg, "checkpoint")
    meta = save_model_bundle(tmp_path / "meta.pt", point_encoder=pe, meta={"background": "black"})
    assert checkpoint_background(meta) == ("black", "checkpoint")
    assert checkpoint_background(reference_fixtures / "dgcnn_cls.pth") == ("drop", "official default")


def test_eval_retrieval_records_the_checkpoints_background(tmp_path, capsys):
    import json

    from crosspoint.cli import main
    from crosspoint.data.synthetic import generate_demo
    from crosspoint.models import build_image_encoder, build_point_encoder, save_model_bundle

    demo = generate_demo(tmp_path / "demo", per_class=2, n_points=64, n_views=1, size=32, workers=0)
    torch.manual_seed(0)
    pe = build_point_encoder("dgcnn", k=8, emb_dims=32, projection_dim=8)
    ie = build_image_encoder("resnet18", projection_dim=8)
    ck = save_model_bundle(tmp_path / "pair.pt", point_encoder=pe, image_encoder=ie,
                           extra={"config": {"data": {"background": "black"}}})
    base = ["eval", "retrieval", "--checkpoint", str(ck), "--data", str(demo), "--points", "64", "--split", "all",
            "--image-size", "32", "--no-progress", "--device", "cpu"]
    assert main(base + ["--json", str(tmp_path / "a.json")]) == 0
    a = json.loads((tmp_path / "a.json").read_text())
    assert (a["background"], a["background_source"]) == ("black", "checkpoint")
    assert main(base + ["--background", "drop", "--json", str(tmp_path / "b.json")]) == 0
    b = json.loads((tmp_path / "b.json").read_text())
    assert (b["background"], b["background_source"]) == ("drop", "argument")
    assert "background black (checkpoint)" in capsys.readouterr().out


# ------------------------------------------------------------------------------ analyses / explorer
@pytest.fixture(scope="module")
def pair_ckpts(tmp_path_factory) -> dict:
    from crosspoint.models import build_image_encoder, build_point_encoder, save_model_bundle

    d = tmp_path_factory.mktemp("bg_ckpt")
    torch.manual_seed(0)
    pe = build_point_encoder("dgcnn", k=8, emb_dims=32, projection_dim=8)
    ie = build_image_encoder("resnet18", projection_dim=8)
    out = {}
    for bg in ("drop", "black"):
        cfg = {"data": {"num_points": 64, "image_size": 64, "background": bg}, "model": {"k": 8}}
        out[bg] = save_model_bundle(d / f"{bg}.pt", point_encoder=pe, image_encoder=ie, extra={"config": cfg})
    return out


def test_demo_checkpoint_session_uses_white():
    from crosspoint.analysis import ModelSession
    from crosspoint.analysis.session import default_checkpoint_path

    if not default_checkpoint_path().is_file():
        pytest.skip("no bundled demo checkpoint")
    s = ModelSession(None, device="cpu")
    assert (s.background, s.background_source) == ("white", "checkpoint")  # recorded in its config
    info = s.info()
    assert info["background"] == "white" and info["k"] == 20 and info["k_source"] == "checkpoint"


def test_session_feeds_images_with_the_checkpoints_background(pair_ckpts, shared_data):
    from crosspoint import analysis as A

    png = sorted((shared_data / "renders" / "pixel2mesh").glob("*.png"))[1]
    with Image.open(png) as im:
        rgba = np.asarray(im)
    for bg, path in pair_ckpts.items():
        s = A.ModelSession(path, device="cpu")
        assert (s.background, s.background_source) == (bg, "checkpoint")
        assert s.image_size == 64
        x = A.image_tensor(rgba, 64, bg)
        assert torch.equal(x, T.eval_image_transform(64)(Image.fromarray(T.to_rgb(rgba, bg))))
        with torch.no_grad():
            p = s.image_encoder(x[None]).projection.numpy()
        want = p / np.linalg.norm(p, axis=1, keepdims=True)
        np.testing.assert_array_equal(A.embed_images(s, [rgba]), want.astype(np.float32))
    assert not torch.equal(A.image_tensor(rgba, 64, "drop"), A.image_tensor(rgba, 64, "black"))


def test_overlay_composites_with_to_rgb(shared_data):
    from crosspoint.analysis import overlay

    png = sorted((shared_data / "renders" / "pixel2mesh").glob("*.png"))[2]
    with Image.open(png) as im:
        rgba = np.asarray(im)
    heat = np.zeros(rgba.shape[:2], np.float32)
    for bg in ("drop", "white", "black"):
        out = overlay(rgba, heat, alpha=0.0, background=bg)
        np.testing.assert_array_equal(out[..., :3], T.to_rgb(rgba, bg))


def test_explorer_views_show_the_models_background(qtbot, pair_ckpts, shared_data):
    from explorer.model_panel import ModelPanel
    from explorer.state import AppState
    from explorer.views2d import ViewsPanel

    from crosspoint.analysis import ModelSession

    views = ViewsPanel()
    qtbot.addWidget(views)
    panel = ModelPanel(AppState(), views)
    qtbot.addWidget(panel)
    png = sorted((shared_data / "renders" / "pixel2mesh").glob("*.png"))[3]
    views.add_image_file(png)
    with Image.open(png) as im:
        rgba = np.asarray(im.convert("RGBA"))
    views.encoder_view.setChecked(True)
    np.testing.assert_array_equal(views.displayed_image(), T.to_rgb(rgba, "white"))  # no model yet
    for bg, path in pair_ckpts.items():
        panel.session, panel.checkpoint = ModelSession(path, device="cpu"), str(path)
        panel._show_info()
        assert views.model_background == bg and views.model_image_size == 64
        np.testing.assert_array_equal(views.displayed_image(), T.to_rgb(rgba, bg))
        assert f"image background: {bg} (checkpoint)" in panel.info.text()
        assert bg in views.encoder_view.toolTip() or "alpha dropped" in views.encoder_view.toolTip()
    views.encoder_view.setChecked(False)
    np.testing.assert_array_equal(views.displayed_image(), rgba)
