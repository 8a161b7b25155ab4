"""The shipped demo checkpoint against random weights of the same architecture, on demo objects it
never saw (the hard preset with another seed): what its model card claims, at test size. A trained
model that a random one matches is a defect (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from crosspoint import analysis as A

SEED = 7  # neither the training demo (0) nor the model card's held-out demo (1)
PER_CLASS = 6


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    from crosspoint.data.demo import generate_demo

    root = tmp_path_factory.mktemp("heldout") / "demo"
    return generate_demo(root, preset="hard", seed=SEED, per_class=PER_CLASS, n_points=1024, n_views=1, size=137,
                         workers=0, scans=False)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    path = A.default_checkpoint_path()
    if not path.is_file():
        pytest.skip("no assets/demo_checkpoint.pt")
    trained = A.ModelSession(path, device="cpu")
    if trained.meta.get("demo_preset") != "hard":
        pytest.skip("the shipped checkpoint predates the hard demo")
    rnd = A.random_weights_session(trained, folder=tmp_path_factory.mktemp("random"))
    return {"trained": trained, "random": rnd}


@pytest.fixture(scope="module")
def embeddings(sessions, held_out, tmp_path_factory):
    cache = tmp_path_factory.mktemp("emb")
    return {k: A.embed_dataset(s, held_out, n_points=1024, cache_dir=cache) for k, s in sessions.items()}


def _script(name: str):
    """The module ``scripts/<name>.py`` (the scripts are not a package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_random_weights_are_the_same_architecture_and_inputs(sessions):
    t, r = sessions["trained"], sessions["random"]
    assert r.point_encoder.arch in ("dgcnn", t.point_encoder.arch) and r.k == t.k
    assert r.image_encoder.arch == t.image_encoder.arch
    assert (r.n_points, r.image_size, r.background) == (t.n_points, t.image_size, t.background)
    assert r.segmenter is None and r.dense_heads is None


def test_pretrained_features_separate_unseen_classes_better_than_random(embeddings):
    """Linear SVM, 3-fold CV on 24 x 6 unseen objects, each fold standardised (so random weights' ~50x smaller
    features are not handicapped by the fixed C). Measured: 79.9 % against 54.9 % for random weights (on raw
    features 76.4 % against 40.3 %: most of that gap was the scale)."""
    acc = {k: A.svm_accuracy(e.features, e.labels, folds=3)[0] for k, e in embeddings.items()}
    assert acc["trained"] >= acc["random"] + 0.10, acc


def test_pretrained_map_separates_classes_better_than_random(embeddings):
    """The UMAP of the same objects: 5-NN accuracy in 2-D 52.8 % against 34.7 % (silhouette -0.04 against
    -0.19); asserted with room for UMAP's machine-dependent layout."""
    q = {}
    for k, e in embeddings.items():
        xy = A.umap_2d(e.features, use_cache=False)
        q[k] = A.map_quality(xy, e.labels)
    assert q["trained"]["knn_acc"] >= q["random"]["knn_acc"] + 0.05, q
    assert q["trained"]["silhouette"] > q["random"]["silhouette"], q


def test_cross_modal_retrieval_beats_chance_and_random(sessions, held_out):
    """Point cloud -> its own rendered view among all 144: top-1 far above chance for the checkpoint,
    near chance for random weights."""
    from crosspoint.data.shapenet_render import ShapeNetRenderClassification, ShapeNetRenderDataset

    pts = ShapeNetRenderClassification(held_out, None, 1024)
    views = ShapeNetRenderDataset(held_out, 1024, 128, split=None, check_sample=0)
    refs = pts.objects()
    assert [o.ref for o in refs] == [o.ref for o in views.objects()]
    clouds = [pts[i][0] for i in range(len(refs))]
    images = [str(sorted(views.view_paths(i), key=str)[0]) for i in range(len(refs))]
    top1 = {}
    for k, s in sessions.items():
        p = A.project_clouds(s, clouds, n_points=1024)
        q = A.embed_images(s, images)
        top1[k] = float(((p @ q.T).argmax(axis=1) == np.arange(len(refs))).mean())
    chance = 1.0 / len(refs)
    assert top1["trained"] >= 10 * chance, top1
    assert top1["trained"] >= top1["random"] + 5 * chance, top1


def test_orientation_check_finds_the_up_axis_of_turned_unseen_objects(sessions, embeddings):
    """One unseen object of every other class, turned so that another axis is up (a fixed random one of
    the 20 turns that do not keep +Y up); :func:`check_orientation` against the other unseen objects
    (leave-one-out: never the object itself) must bring the true up axis back up, far above chance
    (4 of 24 turns). Measured at full size (docs/RESULTS.md section 9): 90 % of 48 objects with the
    checkpoint; random weights 83 % (the upright references carry most of it, see the module), so the
    random encoder is not asserted against here."""
    from crosspoint.io import read_point_cloud

    rots = A.axis_rotations()
    not_up = [i for i, r in enumerate(rots) if A.up_direction(r) != "+Y"]
    rng = np.random.default_rng(0)
    e, s = embeddings["trained"], sessions["trained"]
    rows = [int(np.flatnonzero(e.labels == c)[0]) for c in range(0, int(e.labels.max()) + 1, 2)]
    right = 0
    for row, i in zip(rows, rng.integers(len(not_up), size=len(rows))):
        cloud = read_point_cloud(e.refs[row])
        assert cloud.up_axis == 1
        cloud.rotation = rots[not_up[i]]
        check = A.check_orientation(s, cloud, np.delete(e.features, row, axis=0), n_points=1024)
        # the cloud's new rotation brings the object's own +Y (it is stored upright) back up
        right += bool(np.array_equal(check.rotation[1], [0.0, 1.0, 0.0]))
    assert right >= int(0.6 * len(rows)), (right, len(rows))  # chance: 1 of 6 up directions


def test_the_model_card_is_what_its_generator_writes_from_the_shipped_results(tmp_path):
    """assets/MODEL_CARD.md cannot drift from assets/demo_results.json: regenerating it from the
    shipped results gives the shipped file, byte for byte (every figure in it is a measured one)."""
    import json
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    mc = _script("model_card")
    results = json.loads((repo / "assets" / "demo_results.json").read_text())
    out = tmp_path / "card.md"
    mc.write_model_card(results, out, repo / "assets" / "demo_checkpoint.pt")
    assert out.read_text() == (repo / "assets" / "MODEL_CARD.md").read_text()


def test_the_card_checks_the_dense_goal_on_the_larger_sample_too(tmp_path):
    """The hit-rate goal of issue 11 is checked on the card's 48 objects and, when the results hold it,
    on the larger held-out sample (`make_demo_checkpoint.py --dense-check-objects`): the row says what
    that sample measured and is "not met" when it falls short, whatever the 48 objects say."""
    import copy
    import json
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    mc = _script("model_card")
    results = json.loads((repo / "assets" / "demo_results.json").read_text())
    check = results["trained"]["correspondence_check"]
    assert check["objects"] == 192 and check["eval_size"] == 224
    assert sum(c["objects"] for c in check["by_class"].values()) == 192

    def goal_rows(res):
        out = tmp_path / "card.md"
        mc.write_model_card(res, out, repo / "assets" / "demo_checkpoint.pt")
        return [line for line in out.read_text().splitlines() if line.startswith("| ... on 192 held-out objects")]

    rows = goal_rows(results)
    assert len(rows) == 1 and rows[0].endswith("| met |")
    assert f"({100 * check['point_to_pixel_hit']:.1f}%;" in rows[0]
    short = copy.deepcopy(results)
    short["trained"]["correspondence_check"]["point_to_pixel_hit"] = 0.4999
    assert results["trained"]["correspondence"]["point_to_pixel_hit"] >= 0.5  # the 48 objects still meet it
    assert goal_rows(short)[0].endswith("| **not met** |")
    del short["trained"]["correspondence_check"]
    assert goal_rows(short) == []


def test_the_card_compares_the_dense_term_with_its_ablation_and_flags_a_worse_figure(tmp_path):
    """Issue 11's "global metrics no worse than without the dense term": the card's table is the shipped
    results' ablation (differences and their 95 % half-widths computed from them), and the goal row turns
    "not met" and names the figure as soon as one difference falls below minus its half-width."""
    import copy
    import json
    from pathlib import Path

    import numpy as np

    repo = Path(__file__).resolve().parents[1]
    mc = _script("model_card")
    results = json.loads((repo / "assets" / "demo_results.json").read_text())
    a = results["no_dense_ablation"]
    assert a["set"] == "loss.dense_weight=0" and len(a["with"]["fewshot_accs"]) == len(a["without"]["fewshot_accs"])
    rows = mc._ablation_rows(a)
    p, q, n = a["with"]["svm_whole"], a["without"]["svm_whole"], a["with"]["svm_whole_n"]
    assert rows[0][1:] == (p, q, 1.96 * np.sqrt((p * (1 - p) + q * (1 - q)) / n))
    d = np.subtract(a["with"]["fewshot_accs"], a["without"]["fewshot_accs"])
    assert np.isclose(rows[-1][3], 1.96 * d.std(ddof=1) / np.sqrt(d.size) / 100, rtol=1e-12)
    [(label, ok)] = mc._ablation_goal(a)
    assert ok and "worse:" not in label
    worse = copy.deepcopy(a)
    worse["without"]["svm_scans"] = a["with"]["svm_scans"] + rows[1][3] + 0.01
    [(label, ok)] = mc._ablation_goal(worse)
    assert not ok and "worse: linear SVM (C by CV, raw features), partial scans" in label
    out = tmp_path / "card.md"
    mc.write_model_card(results, out, repo / "assets" / "demo_checkpoint.pt")
    assert "| with the dense term (shipped) | without |" in out.read_text()


def test_the_budget_row_is_decided_by_the_recipes_rerun_when_there_is_one(tmp_path):
    """The 40-minute row: without a rerun it is the shipped run's time; with `--rerun-pretrain`'s record
    the rerun's time decides it, and the row and the card's text name both times and the rerun's encoder
    against the shipped one on the same SVM protocol."""
    import copy
    import json
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    mc = _script("model_card")
    results = json.loads((repo / "assets" / "demo_results.json").read_text())
    pre = results["pretrain"]
    svm = mc.figures(results["trained"])["svm"]
    bare = {k: v for k, v in results.items() if k != "pretrain_rerun"}
    label, ok = mc._pretrain_goal(pre, None, svm)
    assert ok == (pre["seconds"] <= 2400) and f"the shipped run {pre['seconds'] / 60:.1f} min" in label
    rerun = {"seconds": 2100.0, "machine": "x86_64, 2 cores, Some CPU", "svm": 0.9375, "svm_c": 0.1, "svm_n": 96,
             "epoch_seconds": [100.0, 104.0, 102.0], "validation_seconds": [18.0, 20.0], "loss_first": 11.2,
             "loss_last": 5.7, "code": "today's"}
    label, ok = mc._pretrain_goal(pre, rerun, svm)
    assert ok and "35.0 min on x86_64, 2 cores, Some CPU" in label and "its encoder 93.8 %" in label
    slow = dict(rerun, seconds=2401.0)
    assert not mc._pretrain_goal(pre, slow, svm)[1]
    out = tmp_path / "card.md"
    mc.write_model_card({**copy.deepcopy(bare), "pretrain_rerun": rerun}, out, repo / "assets" / "demo_checkpoint.pt")
    text = out.read_text()
    assert "took **35.0 min** alone on x86_64, 2 cores, Some CPU (epochs 100-104 s, median 102 s" in text
    assert "a validation 19 s; loss 11.20 -> 5.70" in text
    row = [line for line in text.splitlines() if line.startswith("| pretraining <= 40 min")]
    assert len(row) == 1 and row[0].endswith("| met |")


def test_the_validation_curve_plot_draws_the_held_out_points_with_their_intervals(tmp_path):
    """scripts/make_demo_checkpoint.py's curve: the run's validation points, the loss, and the
    held-out curve (a square and an interval per epoch, random weights as a line), as valid SVG."""
    import json
    import xml.etree.ElementTree as ET
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    mdc = _script("make_demo_checkpoint")
    results = json.loads((repo / "assets" / "demo_results.json").read_text())
    held = results["curve_heldout"]
    out = tmp_path / "curve.svg"
    mdc.curve_svg(results["pretrain"]["epochs"], out, held)
    root = ET.parse(out).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    squares = [r for r in root.iter(f"{ns}rect") if r.get("width") == "6"]
    assert len(squares) == len(held["points"]) >= 2
    lines = [ln for ln in root.iter(f"{ns}line") if ln.get("stroke") == "#2a8a3a"]
    assert len(lines) == len(held["points"]) + 1  # an interval per point and the random-weights line
    # the plotted heights follow the accuracies: a higher accuracy is drawn higher (smaller y)
    ys = [float(r.get("y")) for r in squares]
    accs = [p["acc"] for p in held["points"]]
    assert [a < b for a, b in zip(accs, accs[1:])] == [ya > yb for ya, yb in zip(ys, ys[1:])]
    # without a held-out curve: the run's curve alone, as before
    mdc.curve_svg(results["pretrain"]["epochs"], out)
    assert not [r for r in ET.parse(out).getroot().iter(f"{ns}rect") if r.get("width") == "6"]
    assert (repo / "docs" / "images" / "demo-val-curve.svg").read_text().count('width="6"') == len(held["points"])


def test_the_shipped_checkpoint_fits_the_size_budget_and_names_what_it_holds():
    """Issue 12: <= 50 MB. The bundle holds the pretrained encoders, the fine-tuned segmentation
    encoder and head, the dense heads with their own image branch, and the category probe."""
    import torch

    path = A.default_checkpoint_path()
    if not path.is_file():
        pytest.skip("no assets/demo_checkpoint.pt")
    assert path.stat().st_size <= 50 * 1024 * 1024, path.stat().st_size
    b = torch.load(path, weights_only=True)
    assert {"point_encoder", "image_encoder", "seg_head", "dense_heads"} <= set(b)
    branch = b["dense_heads"]["config"].get("image_branch", "none")
    refined = b["meta"]["dense_refined"]["settings"]
    assert branch == refined.get("image_branch", "none")  # the meta says how the shipped heads were fitted
    assert all(k.split(".")[1] in branch.split("+") for k in b["dense_heads"]["state_dict"] if k.startswith("branch."))


@pytest.fixture(scope="module")
def sensor_embeddings(sessions, tmp_path_factory):
    """The same unseen objects with their points sampled like a sensor's (``make-demo --sensor``)."""
    from crosspoint.data.demo import SENSOR, generate_demo

    root = generate_demo(tmp_path_factory.mktemp("sensor") / "demo", preset="hard", seed=SEED, per_class=PER_CLASS,
                         n_points=1024, n_views=1, size=32, workers=0, scans=False, nuisance=SENSOR)
    cache = tmp_path_factory.mktemp("emb-sensor")
    return {k: A.embed_dataset(s, root, n_points=1024, cache_dir=cache) for k, s in sessions.items()}


def test_on_sensor_like_points_pretrained_features_beat_random_ones_by_15_points(sensor_embeddings):
    """The checkpoint was pretrained on clean samples; on unseen objects sampled like a sensor (density falling
    off across the object, jitter) it still beats random weights by the model card's margin (its sensor
    section: +19.8 points on 96 test objects, +16.8 on 1200). Here 3-fold CV on 24 x 6 objects, standardised:
    measured 43.1 % against 20.1 % (+23.0; on the clean samples of the same objects 79.9 against 54.9, +25.0:
    with 4 training objects per class random weights are poor on either, and the sensor points' gap shows at
    the card's sizes, where random weights reach 89.6 % on clean points and 53.1 % on these)."""
    sensor = {k: A.svm_accuracy(e.features, e.labels, folds=3)[0] for k, e in sensor_embeddings.items()}
    assert sensor["trained"] >= sensor["random"] + 0.15, sensor


def test_the_card_checks_issue_12s_goals_on_the_sensor_like_points_too(tmp_path):
    """``results["sensor"]`` (``make_demo_checkpoint.py --sensor-only``) adds its section and its goal rows;
    each row's verdict is the one its figures give (a random baseline over 70 % fails the first, whatever the
    rest says), and without the measurement neither is there."""
    import copy
    import json
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    mc = _script("model_card")
    results = json.loads((repo / "assets" / "demo_results.json").read_text())
    s = results["sensor"]
    assert s["nuisance"] == {"density": 5.0, "jitter": 0.01, "pool": 8}
    t, z = (s[k]["svm"]["results"]["cv"]["overall_acc"] for k in ("trained", "random"))

    def card(res):
        out = tmp_path / "card.md"
        mc.write_model_card(res, out, repo / "assets" / "demo_checkpoint.pt")
        text = out.read_text()
        return text, [line for line in text.splitlines() if line.startswith("| sensor-like points")]

    text, rows = card(results)
    assert "## On sensor-like points" in text and len(rows) == 1
    assert rows[0].endswith("| met |" if z <= 0.70 else "| **not met** |") and f"({100 * z:.1f}%)" in rows[0]
    gap = [line for line in text.splitlines() if line.startswith(f"| ... pretrained >= random + 15 points ({100 * t:.1f}%")]
    assert len(gap) == 1 and gap[0].endswith("| met |" if t >= z + 0.15 else "| **not met** |")
    worse = copy.deepcopy(results)
    worse["sensor"]["random"]["svm"]["results"]["cv"]["overall_acc"] = 0.71
    assert card(worse)[1][0].endswith("| **not met** |")
    del worse["sensor"]
    text, rows = card(worse)
    assert rows == [] and "## On sensor-like points" not in text


def test_the_nuisance_frontier_figures_follow_their_measurements(tmp_path):
    """docs/nuisance_frontier.json (scripts/nuisance_frontier.py): each setting's goal verdicts are what its
    raw figures give, the plot shades exactly the settings that meet each goal, and what docs/NOTES.md says of
    it holds: no setting meets issue 12's random <= 70 % (+15) and silhouette (+0.15) goals together, and the
    plain demo meets the silhouette goal but not the SVM one."""
    import json
    import re
    from pathlib import Path

    frontier = _script("nuisance_frontier")
    data = json.loads((Path(__file__).resolve().parents[1] / "docs" / "nuisance_frontier.json").read_text())
    records = data["settings"]
    for rec in records:
        assert rec["summary"] == frontier.summary_row(rec), (rec["density"], rec["pool"], rec["jitter"])
        for name in ("trained", "random"):
            assert rec[name]["svm_val0.1"]["n_test"] == 96 and len(rec[name]["silhouette"]) == 3
    assert not any(r["summary"]["random_le_70"] and r["summary"]["gap_ge_15"] and r["summary"]["sil_gap_ge_015"]
                   for r in records)
    plain = next(r["summary"] for r in records if r["density"] == 0)
    assert plain["sil_gap_ge_015"] and not plain["random_le_70"]
    svg = tmp_path / "f.svg"
    frontier.frontier_svg(records, svg)
    drawn = [r for r in records if r["jitter"] == 0.01 or r["density"] == 0]
    passing = sum(r["summary"]["random_le_70"] and r["summary"]["gap_ge_15"] for r in drawn)
    passing += sum(r["summary"]["sil_gap_ge_015"] for r in drawn)
    assert len(re.findall(r'fill="#e3f3e5"', svg.read_text())) == passing > 0


def test_the_card_says_why_it_checks_two_held_out_demos_when_the_frontier_was_measured():
    import json
    from pathlib import Path

    card = _script("model_card")
    results = json.loads((Path(__file__).resolve().parents[1] / "assets" / "demo_results.json").read_text())
    assert card._frontier_text({k: v for k, v in results.items() if k != "frontier"}) == ""
    text = card._frontier_text(results)
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and "%" in ln and not ln.startswith("| points")]
    assert len(rows) == len(results["frontier"]["settings"]) and "No setting meets both" in text
    met = {**results["frontier"]["settings"][0], "random_le_70": True, "gap_ge_15": True}
    assert "one demo meets both goals" in card._frontier_text({"frontier": {**results["frontier"], "settings": [met]}})


def test_the_card_lists_what_did_not_close_the_scans_gap_from_its_figures():
    """The card's scans-lever table (make_demo_checkpoint.py --scans-levers): one row per measured encoder plus
    the shipped one and random weights, each gap its accuracy minus random's, and the verdict follows them."""
    import json
    import re
    from pathlib import Path

    card = _script("model_card")
    results = json.loads((Path(__file__).resolve().parents[1] / "assets" / "demo_results.json").read_text())
    assert card._levers_text({k: v for k, v in results.items() if k != "scans_levers"}) == ""
    lv = results["scans_levers"]
    text = card._levers_text(results)
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| encoder")]
    assert len(rows) == len(lv["rows"]) + 2
    for ln, acc in zip(rows[1:-1], [r["acc"] for r in lv["rows"]]):
        gap = float(re.findall(r"([+-]\d+\.\d) \|$", ln)[0])
        assert gap == round(100 * (acc - lv["random"]), 1), ln
    assert all(r["acc"] - lv["random"] < 0.15 for r in lv["rows"]) and "None reaches +15" in text
    better = {**lv, "rows": [*lv["rows"], {**lv["rows"][0], "acc": lv["random"] + 0.16}]}
    assert "At least one of them reaches +15" in card._levers_text({**results, "scans_levers": better})
