"""``crosspoint eval correspondence``: runs on a small demo, prints the figures with their chance
levels and baselines, writes them to JSON under the documented keys (fractions in [0, 1])."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from crosspoint.cli import main

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from crosspoint.data.synthetic import generate_demo

    out = tmp_path_factory.mktemp("corr_demo") / "demo"
    return generate_demo(out, seed=3, per_class=1, n_points=400, n_views=2, size=64, workers=0,
                         classes=("chair", "table", "lamp", "mug"))


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory):
    from crosspoint.models import DGCNN, ImageEncoder, save_model_bundle

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("corr_eval_ckpt")
    return save_model_bundle(d / "small.pt", point_encoder=DGCNN(k=8, emb_dims=64, projection_dim=32),
                             image_encoder=ImageEncoder("resnet18", projection_dim=32),
                             meta={"num_points": 256, "image_size": 64})


def _fraction(v) -> bool:
    return v is not None and 0.0 <= v <= 1.0


def test_eval_correspondence_json_keys_and_ranges(demo, small_ckpt, tmp_path, capsys):
    out = tmp_path / "corr.json"
    rc = main(["eval", "correspondence", "--checkpoint", str(small_ckpt), "--data", str(demo), "--objects", "4",
               "--json", str(out), "--no-progress", "--pixels", "8", "--random-draws", "1"])
    assert rc == 0
    text = capsys.readouterr().out
    for phrase in ("point -> pixel hit", "chance", "pixel -> points AUC", "most important part",
                   "random blob", "Grad-CAM (what drives the object-view similarity)"):
        assert phrase in text
    res = json.loads(out.read_text())  # strict JSON: NaN written as null
    assert res["protocol"] == "correspondence" and res["objects"] and len(res["objects"]) == 4
    for key in ("point_to_pixel_hit", "pixel_to_point_auc", "point_to_pixel_hit_chance", "cell_top1",
                "cell_top1_chance", "part_agreement", "part_agreement_chance"):
        assert _fraction(res[key]), (key, res[key])
    assert res["points_tested"] > 0 and res["pixels_tested"] > 0
    # the baselines are computed next to each part, both sides
    for key in ("part_drop_3d", "part_random_3d", "part_blob_3d", "part_drop_2d", "part_random_2d", "part_blob_2d"):
        assert res[key] is not None and math.isfinite(res[key]) and abs(res[key]) <= 2
    parts = [p for o in res["objects"] for p in o["parts"]]
    assert parts and all(p["random_3d"] is not None and p["blob_3d"] is not None for p in parts)
    assert all(p["name"].split("/")[0] in ("chair", "table", "lamp", "mug") for p in parts)
    # the Grad-CAM honesty figures
    for key in ("heat_top_drop", "heat_blob_drop", "heat_random_drop", "heat_other_top_drop", "heat_top_minus_blob"):
        assert res[key] is not None and abs(res[key]) <= 2
    for key in ("heat_other_heat_corr", "heat_spearman_point_image"):
        assert res[key] is None or -1.0 <= res[key] <= 1.0
    assert _fraction(res["heat_image_heat_on_object"]) and _fraction(res["heat_object_area"])
    curve = res["heat_deletion_curve"]
    assert curve["fractions"] == [0.1, 0.2, 0.3] and len(curve["blob"]) == 3
    assert res["hit_radius_px"] == 8 and res["eval_size"] == 224
    assert res["summary"]["point_to_pixel_hit"] == res["point_to_pixel_hit"]
    # where the arg-max lands: within twice the radius (a superset of the hits), and the misses' parts
    assert res["point_to_pixel_hit"] <= res["point_to_pixel_hit_2r"] <= 1
    assert res["point_to_pixel_hit_chance"] <= res["point_to_pixel_hit_2r_chance"] <= 1
    assert _fraction(res["misses_on_own_part"]) and _fraction(res["misses_on_own_part_chance"])
    assert "symmetric twin" in text
    # the objects' symmetries (the demo's meshes): hits up to the rotations, the ceiling, mirror twins
    assert res["point_to_pixel_hit"] <= res["point_to_pixel_hit_sym"] <= res["point_to_pixel_hit_twin"] <= 1
    assert _fraction(res["point_to_pixel_hit_ceiling"]) and res["point_to_pixel_hit_ceiling"] > 0
    assert _fraction(res["rotation_symmetric_objects"]) and "rotational symmetries" in text
    assert set(res["by_class"]) == {o["class"] for o in res["objects"]} <= {"chair", "table", "lamp", "mug"}
    for o in res["objects"]:
        assert o["hits"] <= o["hits_sym"] <= o["hits_twin"] <= o["tested"] and o["hit_ceiling"] <= o["tested"]
    for o in res["objects"]:
        assert o["hits"] + o["misses"] == o["tested"] and 0 <= o["miss_same_part"] <= o["misses"]


def test_eval_correspondence_random_weights_and_errors(demo, tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["eval", "correspondence", "--checkpoint", "random", "--data", str(demo), "--objects", "2",
               "--points", "128", "--image-size", "64", "--no-heat", "--json", str(out), "--no-progress",
               "--pixels", "4", "--random-draws", "1", "--occlusion-mode", "replace", "--no-symmetry"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert _fraction(res["point_to_pixel_hit"]) and _fraction(res["pixel_to_point_auc"])
    # --no-symmetry: no symmetry figures (null in strict JSON), and no line for them
    assert res["point_to_pixel_hit_sym"] is None and res["point_to_pixel_hit_ceiling"] is None
    assert all("hits_sym" not in o for o in res["objects"])
    assert res["n_points"] == 128 and res["occlusion_mode"] == "replace"
    assert "heat_top_drop" not in res
    # not a demo folder; too few objects
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", "correspondence", "--checkpoint", "random", "--data", str(empty), "--no-progress"]) != 0
    assert main(["eval", "correspondence", "--checkpoint", "random", "--data", str(demo), "--objects", "1",
                 "--no-progress"]) == 2
    capsys.readouterr()


def test_demo_objects_round_robin(demo):
    from pathlib import Path

    from crosspoint.analysis.dense_refine import demo_objects

    objs = demo_objects(Path(demo), "all", 3, view=1)
    assert [o["class"] for o in objs] == ["chair", "table", "lamp"]
    o = objs[0]
    assert o["points"].shape == (400, 3) and o["labels"].shape == (400,) and o["image"].shape == (64, 64, 4)
    assert o["camera"].size == 64 and o["mesh"] is not None and o["other_image"] is not None
    # the stored view is what the renderer draws from the stored mesh and camera
    from crosspoint.render import render_mesh

    img = render_mesh(o["mesh"], o["camera"])
    assert np.abs(img.astype(int) - o["image"].astype(int)).max() <= 1


def test_demo_checkpoint_part_evidence_vs_random_weights(tmp_path):
    """Removing the most important part of unseen hard-demo chairs and tables (seed 1) changes the demo
    checkpoint's object-view similarity by far more than a random network's. Measured: 1.35 (chair) and
    0.98 (table) in 3D for the checkpoint; below 0.013 in 3D and 2D for random weights."""
    from crosspoint import analysis as A
    from crosspoint.data.demo import SHIPPED_PRESET, demo_object, get_preset
    from crosspoint.data.demo.writer import _object_seeds
    from crosspoint.render import render_views

    path = A.default_checkpoint_path()
    if not path.is_file():
        pytest.skip("no demo checkpoint")
    demo = A.ModelSession(path, device="cpu")
    if demo.meta.get("demo_preset") != SHIPPED_PRESET:
        pytest.skip("the shipped checkpoint predates the hard demo")
    sessions = {"demo": demo, "random": A.random_weights_session(demo, folder=tmp_path)}
    fs = get_preset(SHIPPED_PRESET)
    for cls in ("chair", "table"):
        obj = demo_object(cls, 1, index=0, n_points=2048, preset=SHIPPED_PRESET)  # the seed-1 demo's <cls>_0000
        _, _, v_seed, _ = _object_seeds(fs, 1, fs.classes.index(cls), 0)
        img, cam = render_views(obj.mesh, 6, size=137, seed=v_seed, normalize=False)[0]  # its view 00.png
        drops = {}
        for name, s in sessions.items():
            ev = A.part_occlusion(s, obj.points, img, cam, obj.labels, mesh=obj.mesh, n_random=0)
            drops[name] = (np.nanmax(ev.drop_3d), np.nanmax(np.abs(ev.drop_3d)), np.nanmax(np.abs(ev.drop_2d)))
        assert drops["demo"][0] > 0.5, (cls, drops)
        assert drops["random"][1] < 0.05 and drops["random"][2] < 0.05, (cls, drops)
