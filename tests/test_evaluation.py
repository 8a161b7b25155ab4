"""The downstream protocols on small synthetic features: linear SVM, few-shot, part-seg IoU,
cross-modal retrieval, feature extraction, and the ``crosspoint eval`` CLI."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from crosspoint.evaluation import fewshot, partseg, retrieval, svm


def _clusters(n_per_class, n_classes, dim=16, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, dim)) * 3.0
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centers[y] + spread * rng.normal(size=(y.size, dim))
    return x.astype(np.float32), y


# ---------------------------------------------------------------------------------------- SVM
def test_svm_protocol_separable_features_score_high():
    x, y = _clusters(30, 4, seed=1)
    xt, yt = _clusters(10, 4, seed=1)  # same centers (same seed), new noise below
    xt = xt + np.random.default_rng(9).normal(scale=0.3, size=xt.shape).astype(np.float32)
    res = svm.svm_protocol(x, y, xt, yt, cv_folds=3)
    assert [r["C"] for r in res["fixed"]] == [0.01, 0.1]
    for r in res["fixed"]:
        assert r["overall_acc"] > 0.95 and r["mean_class_acc"] > 0.95
    assert res["cv"]["C"] in svm.C_GRID
    assert res["cv"]["overall_acc"] > 0.95
    assert res["n_train"] == 120 and res["n_test"] == 40 and res["num_classes"] == 4
    assert set(res["cv"]["cv_mean_acc"]) == {str(float(c)) for c in svm.C_GRID}


def test_svm_random_labels_are_near_chance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 32)).astype(np.float32)
    y = rng.integers(0, 5, 300)
    xt = rng.normal(size=(300, 32)).astype(np.float32)
    yt = rng.integers(0, 5, 300)
    acc = svm.linear_svm_accuracy(x, y, xt, yt, C=0.1)
    assert 0.08 < acc < 0.35  # chance is 0.2


def test_precomputed_gram_solver_matches_kernel_linear():
    x, y = _clusters(20, 3, dim=8, spread=2.0, seed=3)  # overlapping classes: not all correct
    xt, yt = _clusters(15, 3, dim=8, spread=2.0, seed=4)
    a = svm.linear_svm_scores(x, y, xt, yt, 0.1, solver="precomputed")
    b = svm.linear_svm_scores(x, y, xt, yt, 0.1, solver="linear")
    assert a == b


@pytest.mark.parametrize("features", ["raw", "standardised"])
def test_cross_validation_sees_only_training_data(monkeypatch, features):
    x, y = _clusters(12, 3, seed=5)
    xt, yt = _clusters(6, 3, seed=6)
    xt = xt + 100.0  # test rows are recognisable
    seen, scaled = [], []
    real_cv, real_fit, real_std = svm.select_c_by_cv, svm._fit_predict, svm.standardise
    in_cv = {"on": False}

    def spy_cv(train_x, train_y, **kw):
        assert train_x is x and train_y is y or (np.array_equal(train_x, x) and np.array_equal(train_y, y))
        in_cv["on"] = True
        try:
            return real_cv(train_x, train_y, **kw)
        finally:
            in_cv["on"] = False

    def spy_fit(k_train, y_train, k_test, c, solver, x_train=None, x_test=None):
        if in_cv["on"]:
            seen.append((x_train, x_test))
        return real_fit(k_train, y_train, k_test, c, solver, x_train, x_test)

    def spy_std(train_x, *others):
        scaled.append((in_cv["on"], train_x, others))
        return real_std(train_x, *others)

    monkeypatch.setattr(svm, "select_c_by_cv", spy_cv)
    monkeypatch.setattr(svm, "_fit_predict", spy_fit)
    monkeypatch.setattr(svm, "standardise", spy_std)
    res = svm.svm_protocol(x, y, xt, yt, cv_folds=3, cv_grid=(0.01, 1.0), solver="linear", cv_features=features)
    assert len(seen) == 3 * 2  # folds x grid
    train_rows = {r.tobytes() for r in x}
    if features == "raw":
        assert not scaled
        for a, b in seen:
            assert all(r.tobytes() in train_rows for r in a)
            assert all(r.tobytes() in train_rows for r in b)
            assert np.all(np.abs(a) < 50) and np.all(np.abs(b) < 50)  # never a test row
    else:
        # inside the CV: one scaler per fold, fitted on that fold's training rows, applied to its validation rows
        in_cv_calls = [(a, o) for on, a, o in scaled if on]
        assert len(in_cv_calls) == 3
        for a, (b,) in in_cv_calls:
            assert all(r.tobytes() in train_rows for r in a) and all(r.tobytes() in train_rows for r in b)
            assert len(a) + len(b) == len(x)
        # the final fit: fitted on the whole training split, applied to the test split
        final = [(a, o) for on, a, o in scaled if not on]
        assert len(final) == 1 and final[0][0] is x and final[0][1][0] is xt
    assert res["cv"]["C"] in (0.01, 1.0) and res["cv"]["features"] == features


def test_standardised_cv_does_not_depend_on_the_features_scale():
    """A random-weight encoder's features are ~50x smaller than a trained one's: the headline CV
    result must not change with scale. Scaling by a power of two is exact in floating point, so the
    standardised features, and everything after them, are the same bits."""
    xa, ya = _clusters(30, 4, dim=64, spread=6.0, seed=11)
    x, y, xt, yt = xa[::2], ya[::2], xa[1::2], ya[1::2]
    a = svm.svm_protocol(x, y, xt, yt, cv_folds=3)
    b = svm.svm_protocol(x * 2.0 ** -10, y, xt * 2.0 ** -10, yt, cv_folds=3)
    assert a["cv"] == b["cv"] and a["cv"]["features"] == "standardised"
    assert a["cv_raw"]["features"] == "raw" and a["cv_raw"] != b["cv_raw"]  # raw features do depend on it
    only = svm.svm_protocol(x, y, xt, yt, cv_folds=3, cv_features="raw")
    assert only["cv"] == a["cv_raw"] and "cv_raw" not in only
    with pytest.raises(ValueError, match="cv_features"):
        svm.svm_protocol(x, y, xt, yt, cv_features="whitened")


def test_grid_edge_flags_a_search_cut_short():
    means = {0.01: 0.5, 0.1: 0.6, 1.0: 0.7}
    assert svm.grid_edge(1.0, means) == "top" and svm.grid_edge(0.1, means) is None
    assert svm.grid_edge(0.01, {0.01: 0.7, 0.1: 0.6, 1.0: 0.5}) == "bottom"
    assert svm.grid_edge(0.01, {0.01: 1.0, 0.1: 1.0, 1.0: 1.0}) is None  # a tie at the end is not a cut
    assert svm.grid_edge(1.0, {1.0: 0.9}) is None
    # what the flag is for: features 2^-8 the scale of these clusters need a C above the grid
    xa, ya = _clusters(40, 4, dim=64, spread=6.0, seed=11)
    x, y, xt, yt = xa[::2], ya[::2], xa[1::2], ya[1::2]
    res = svm.svm_protocol(x * 2.0 ** -8, y, xt * 2.0 ** -8, yt, cv_folds=3)
    assert res["cv_raw"]["at_grid_edge"] == "top" and res["cv"]["at_grid_edge"] is None


def test_label_efficiency_draws_n_per_class_and_scores_the_test_split():
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    xa, ya = _clusters(40, 4, dim=32, spread=5.0, seed=21)  # overlapping: few labels are not enough
    x, y, xt, yt = xa[::2], ya[::2], xa[1::2], ya[1::2]
    res = svm.label_efficiency(x, y, xt, yt, per_class=(1, 4, 16), repeats=5, seed=3)
    assert [r["per_class"] for r in res] == [1, 4, 16] and all(len(r["accs"]) == 5 for r in res)
    assert res[0]["mean"] < res[-1]["mean"]
    # one draw by hand: the documented generator, sklearn's scaler and the literal linear-kernel SVC
    rng = np.random.default_rng([3, 4, 2])
    pick = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:4] for c in range(4)])
    sc = StandardScaler().fit(x[pick].astype(np.float64))
    clf = SVC(C=1.0, kernel="linear").fit(sc.transform(x[pick].astype(np.float64)), y[pick])
    assert res[1]["accs"][2] == float((clf.predict(sc.transform(xt.astype(np.float64))) == yt).mean())
    # the draws depend on the labels only, and standardising makes the scale irrelevant (2^-10: exact)
    assert svm.label_efficiency(x * 2.0 ** -10, y, xt * 2.0 ** -10, yt, per_class=(1, 4, 16), repeats=5,
                                seed=3) == res
    with pytest.raises(ValueError, match="has 20 training objects"):
        svm.label_efficiency(x, y, xt, yt, per_class=(21,))
    # one labelled set (the explorer's map): each draw scored on the rows it did not draw, capped by a seeded subsample
    one = svm.label_efficiency(x, y, per_class=(2,), repeats=3, seed=1, max_test=30)
    rng = np.random.default_rng([1, 2, 0])
    pick = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:2] for c in range(4)])
    rest = np.sort(rng.choice(np.setdiff1d(np.arange(y.size), pick), size=30, replace=False))
    sc = StandardScaler().fit(x[pick].astype(np.float64))
    clf = SVC(C=1.0, kernel="linear").fit(sc.transform(x[pick].astype(np.float64)), y[pick])
    assert one[0]["accs"][0] == float((clf.predict(sc.transform(x[rest].astype(np.float64))) == y[rest]).mean())
    with pytest.raises(ValueError, match="one must be left to score"):
        svm.label_efficiency(x, y, per_class=(20,))


def test_cv_prefers_smaller_c_on_ties():
    x, y = _clusters(10, 2, seed=7)  # trivially separable: every C scores 1.0
    best, means = svm.select_c_by_cv(x, y, grid=(1.0, 0.01, 0.1), folds=2)
    assert best == 0.01 and all(v == 1.0 for v in means.values())


def test_accuracy_scores_mean_class_accuracy():
    y_true = np.array([0, 0, 0, 0, 1, 1])
    y_pred = np.array([0, 0, 0, 0, 0, 1])
    s = svm.accuracy_scores(y_true, y_pred)
    assert s["overall_acc"] == pytest.approx(5 / 6)
    assert s["mean_class_acc"] == pytest.approx((1.0 + 0.5) / 2)


def test_svm_input_errors():
    with pytest.raises(ValueError, match="labels"):
        svm.linear_svm_accuracy(np.zeros((3, 2)), [0, 1], np.zeros((1, 2)), [0], 1.0)
    with pytest.raises(ValueError, match="wide"):
        svm.linear_svm_accuracy(np.zeros((2, 2)), [0, 1], np.zeros((1, 3)), [0], 1.0)
    with pytest.raises(ValueError, match="NaN"):
        svm.linear_svm_accuracy(np.full((2, 2), np.nan), [0, 1], np.zeros((1, 2)), [0], 1.0)


# ---------------------------------------------------------------------------------- few-shot
def test_episode_sampling_counts_disjoint_and_seeded():
    labels = np.repeat(np.arange(12), 40)
    index = fewshot.class_index(labels)
    ep = fewshot.sample_episode(index, 5, 10, 20, random.Random(3))
    assert len(set(ep.classes)) == 5
    assert ep.support_idx.size == 50 and ep.query_idx.size == 100
    assert not set(ep.support_idx.tolist()) & set(ep.query_idx.tolist())
    assert len(set(ep.support_idx.tolist())) == 50 and len(set(ep.query_idx.tolist())) == 100
    for i, c in enumerate(ep.classes):  # episode labels 0..4 follow the class order
        assert np.all(labels[ep.support_idx[ep.support_y == i]] == c)
        assert np.all(labels[ep.query_idx[ep.query_y == i]] == c)
    assert np.bincount(ep.support_y).tolist() == [10] * 5 and np.bincount(ep.query_y).tolist() == [20] * 5
    again = fewshot.sample_episode(index, 5, 10, 20, random.Random(3))
    assert again.classes == ep.classes and np.array_equal(again.support_idx, ep.support_idx)
    assert np.array_equal(again.query_idx, ep.query_idx)
    other = fewshot.sample_episode(index, 5, 10, 20, random.Random(4))
    assert other.classes != ep.classes or not np.array_equal(other.support_idx, ep.support_idx)


def test_episode_queries_from_test_split_and_too_few_objects():
    tr = fewshot.class_index(np.repeat(np.arange(6), 5))
    te = fewshot.class_index(np.repeat(np.arange(6), 8))
    ep = fewshot.sample_episode(tr, 3, 5, 8, random.Random(0), te)
    assert ep.query_idx.size == 24 and ep.query_idx.max() < 48
    with pytest.raises(ValueError, match="needs 3 classes"):
        fewshot.sample_episode(tr, 3, 5, 1, random.Random(0))  # 5 objects cannot give 5 + 1


def test_run_fewshot_clustered_and_random_features():
    x, y = _clusters(30, 10, seed=11)
    res = fewshot.run_fewshot(x, y, n_way=5, k_shot=5, n_query=10, runs=4, seed=2)
    assert res["mean"] > 95.0 and len(res["accs"]) == 4
    assert res["std"] == pytest.approx(float(np.std(res["accs"])))  # population std, as the reference
    assert fewshot.run_fewshot(x, y, n_way=5, k_shot=5, n_query=10, runs=4, seed=2) == res  # seeded
    rng = np.random.default_rng(0)
    noise = rng.normal(size=x.shape)
    low = fewshot.run_fewshot(noise, y, n_way=5, k_shot=5, n_query=10, runs=4, seed=2)
    assert low["mean"] < 50.0  # chance is 20
    grid = fewshot.fewshot_grid(x, y, ways=(2, 3), shots=(3,), n_query=5, runs=2, seed=1)
    assert [(g["n_way"], g["k_shot"]) for g in grid] == [(2, 3), (3, 3)]
    xt, yt = _clusters(12, 10, seed=11)
    t = fewshot.run_fewshot(x, y, n_way=5, k_shot=5, n_query=10, runs=2, test_x=xt, test_y=yt, query_split="test")
    assert t["query_split"] == "test" and t["mean"] > 90.0


# --------------------------------------------------------------------------------- part seg
TABLE = ([0, 2], [2, 3])  # category 0: parts 0, 1; category 1: parts 2, 3, 4


def test_shape_iou_hand_computed():
    pred = [np.array([0, 1, 1, 1]), np.array([2, 2, 2, 3]), np.array([0, 0, 3, 3])]
    gt = [np.array([0, 0, 1, 1]), np.array([2, 2, 2, 3]), np.array([2, 2, 3, 3])]
    cats = [0, 1, 1]
    ious = partseg.shape_ious(pred, gt, cats, TABLE)
    # shape 0: part 0 I=1 U=2, part 1 I=2 U=3; shape 1: perfect, part 4 absent from both -> 1;
    # shape 2: part 2 predicted as another category's part -> 0, part 3 -> 1, part 4 absent -> 1
    assert ious == pytest.approx([(0.5 + 2 / 3) / 2, 1.0, 2 / 3])
    m = partseg.partseg_metrics(pred, gt, cats, TABLE)
    assert m["instance_miou"] == pytest.approx(np.mean(ious))
    # class mIoU weighs the categories equally: (shape 0) and (mean of shapes 1, 2)
    assert m["class_miou"] == pytest.approx(((0.5 + 2 / 3) / 2 + (1.0 + 2 / 3) / 2) / 2)
    assert m["per_category"]["category_1"]["shapes"] == 2
    assert m["point_acc"] == pytest.approx(9 / 12)


def test_absent_parts_count_one_and_all_wrong_is_zero():
    assert partseg.shape_ious([np.array([0, 0])], [np.array([0, 0])], [0], TABLE)[0] == 1.0
    assert partseg.shape_ious([np.array([1, 1])], [np.array([0, 0])], [0], TABLE)[0] == 0.0


def test_restricted_argmax_stays_in_the_category():
    import torch

    logits = np.zeros((2, 3, 5), np.float32)
    logits[:, :, 4] = 10.0  # the global arg-max is part 4 (category 1) everywhere
    logits[0, :, 1] = 1.0
    cats = np.array([0, 1])
    r = partseg.restricted_argmax(logits, cats, TABLE)
    assert r[0].tolist() == [1, 1, 1] and r[1].tolist() == [4, 4, 4]
    rt = partseg.restricted_argmax(torch.from_numpy(logits), cats, TABLE)
    assert rt.tolist() == r.tolist()


def test_part_tables_standard_and_demo():
    std = partseg.as_part_table(None)
    assert std.num_parts == 50 and std.num_categories == 16 and std.part_ranges[-1] == (47, 50)
    meta = {"classes": [{"name": "mug", "synset": "9", "part_ids": [14, 15]},
                        {"name": "car", "synset": "8", "part_ids": [16, 17, 18]}], "n_parts": 25}
    t = partseg.as_part_table(meta)
    assert t.part_ranges == [(14, 16), (16, 19)] and t.num_parts == 25
    back = partseg.part_table_from_meta(partseg.part_table_to_meta(t))
    assert back.part_ranges == t.part_ranges and back.category_names == ["mug", "car"]
    ious = partseg.shape_ious([np.array([16, 17])], [np.array([16, 18])], [1], t)
    assert ious[0] == pytest.approx((1.0 + 0.0 + 0.0) / 3)


# -------------------------------------------------------------------------------- retrieval
def test_retrieval_planted_random_and_collapsed():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(200, 32))
    res = retrieval.retrieval_scores(p, p + 0.01 * rng.normal(size=p.shape))
    assert res["point_to_image"]["top1"] == 1.0 and res["image_to_point"]["top1"] == 1.0
    assert res["point_to_image"]["median_rank"] == 1.0
    rnd = retrieval.retrieval_scores(p, rng.normal(size=(200, 32)))
    assert rnd["chance"] == {"top1": 1 / 200, "top5": 5 / 200}
    assert rnd["point_to_image"]["top1"] <= 0.04 and rnd["point_to_image"]["top5"] <= 0.1
    flat = retrieval.retrieval_scores(np.ones((10, 4)), np.ones((10, 4)))
    assert flat["point_to_image"]["top1"] == 0.0  # ties count against the query
    with pytest.raises(ValueError, match="wide"):
        retrieval.retrieval_scores(np.ones((3, 4)), np.ones((3, 5)))


# --------------------------------------------------------------------------------- features
@pytest.fixture(scope="module")
def tiny_encoder():
    import torch

    from crosspoint.models import build_point_encoder

    torch.manual_seed(0)
    return build_point_encoder("dgcnn", k=4, emb_dims=32, projection_dim=8)


def test_extract_features_protocol(tiny_encoder):
    from crosspoint.evaluation.features import extract_features

    rng = np.random.default_rng(0)
    clouds = rng.normal(size=(5, 48, 3)).astype(np.float32)
    tiny_encoder.train()
    f = extract_features(tiny_encoder, clouds, batch_size=2)
    assert tiny_encoder.training  # mode restored
    assert f.dtype == np.float32 and f.shape == (5, 64)
    np.testing.assert_allclose(extract_features(tiny_encoder, clouds, batch_size=5), f, rtol=1e-4, atol=1e-5)
    # the first num_points points of each cloud, as the reference's data[i][:num_points]
    cut = extract_features(tiny_encoder, clouds, num_points=32)
    np.testing.assert_allclose(cut, extract_features(tiny_encoder, clouds[:, :32]), rtol=1e-5, atol=1e-6)
    # datasets: (points, label) items and a list of clouds give the same rows
    items = [(c, 0) for c in clouds]
    np.testing.assert_allclose(extract_features(tiny_encoder, items, batch_size=3), f, rtol=1e-4, atol=1e-5)
    feats, proj = extract_features(tiny_encoder, clouds, kind="both", normalize=True)
    assert proj.shape == (5, 8) and np.allclose(np.linalg.norm(proj, axis=1), 1.0, atol=1e-5)
    progress = []
    extract_features(tiny_encoder, clouds, batch_size=2, progress=lambda d, t: progress.append((d, t)))
    assert progress[-1] == (5, 5)


def test_extract_features_cancel(tiny_encoder):
    from crosspoint.evaluation.features import EvaluationCancelled, extract_features

    with pytest.raises(EvaluationCancelled):
        extract_features(tiny_encoder, np.zeros((3, 16, 3), np.float32), cancel=lambda: True)


# ------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from crosspoint.data.synthetic import generate_demo

    out = tmp_path_factory.mktemp("demo") / "demo"
    generate_demo(out, per_class=5, n_points=128, n_views=1, size=32, workers=0)
    return out


def _main(argv):
    from crosspoint.cli import main

    return main(argv)


def test_cli_eval_svm_and_fewshot_on_demo(demo, tmp_path, capsys):
    out = tmp_path / "svm.json"
    rc = _main(["eval", "svm", "--checkpoint", "random", "--data", str(demo), "--points", "128", "--k", "8",
                "--device", "cpu", "--val-fraction", "0.4", "--cv-folds", "2", "--c-grid", "0.01,1",
                "--labels-per-class", "1,2", "--label-repeats", "3", "--json", str(out), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "linear SVM on crosspoint_demo" in text and "(fixed, raw)" in text and "CV, std.)" in text
    assert "2 per class (std., C = 1)" in text
    res = json.loads(out.read_text())
    assert res["protocol"] == "svm" and res["checkpoint"] == "random"
    assert res["results"]["feature_dim"] == 2048 and res["results"]["cv"]["C"] in (0.01, 1.0)
    assert res["results"]["cv"]["features"] == "standardised" and res["results"]["cv_raw"]["features"] == "raw"
    assert [r["per_class"] for r in res["results"]["label_efficiency"]] == [1, 2]
    rc = _main(["eval", "svm", "--checkpoint", "random", "--data", str(demo), "--points", "128", "--k", "8",
                "--val-fraction", "0.4", "--labels-per-class", "50", "--no-progress"])
    assert rc == 2 and "training objects" in capsys.readouterr().err  # before any feature is computed
    rc = _main(["eval", "fewshot", "--checkpoint", "random", "--data", str(demo), "--points", "128", "--k", "8",
                "--ways", "2", "--shots", "1", "--queries", "1", "--runs", "2", "--val-fraction", "0.4",
                "--no-progress"])
    assert rc == 0
    assert "2-way 1-shot" in capsys.readouterr().out


def test_cli_eval_retrieval_on_demo(demo, tmp_path, capsys):
    from crosspoint.models import build_image_encoder, build_point_encoder, save_model_bundle

    ck = tmp_path / "pair.pt"
    save_model_bundle(ck, point_encoder=build_point_encoder("dgcnn", k=8), image_encoder=build_image_encoder("resnet18"))
    rc = _main(["eval", "retrieval", "--checkpoint", str(ck), "--data", str(demo), "--points", "128",
                "--split", "all", "--image-size", "32", "--json", str(tmp_path / "r.json"), "--no-progress"])
    assert rc == 0
    assert "point -> image" in capsys.readouterr().out
    res = json.loads((tmp_path / "r.json").read_text())["results"]
    assert res["n"] == 40 and res["chance"]["top1"] == pytest.approx(1 / 40)


def test_cli_eval_errors(demo, tmp_path, capsys):
    import torch

    from crosspoint.models import build_point_encoder, save_model_bundle

    missing = tmp_path / "nowhere"
    assert _main(["eval", "svm", "--checkpoint", "random", "--data", str(missing), "--no-progress"]) == 1
    assert "no such folder" in capsys.readouterr().err
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": {"a": torch.zeros(2)}, "epoch": 3}, foreign)
    assert _main(["eval", "svm", "--checkpoint", str(foreign), "--data", str(demo), "--no-progress"]) == 1
    assert "foreign.pt" in capsys.readouterr().err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert _main(["eval", "fewshot", "--checkpoint", str(junk), "--data", str(demo), "--no-progress"]) == 1
    assert "junk.pt" in capsys.readouterr().err
    assert _main(["eval", "fewshot", "--checkpoint", "random", "--data", str(demo), "--ways", "two"]) == 2
    assert "--ways" in capsys.readouterr().err
    # a setting the split cannot hold is refused before a feature is computed
    import crosspoint.commands.eval as E

    def no_features(*a, **k):
        raise AssertionError("features computed for an impossible few-shot setting")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(E, "_features", no_features)
        assert _main(["eval", "fewshot", "--checkpoint", "random", "--data", str(demo), "--ways", "5",
                      "--shots", "500", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "5-way 500-shot" in err and "only" in err and "have that many" in err
    assert _main(["eval", "partseg", "--checkpoint", "random", "--data", str(demo)]) == 2
    only_points = tmp_path / "points_only.pt"
    save_model_bundle(only_points, point_encoder=build_point_encoder("dgcnn", k=8))
    assert _main(["eval", "retrieval", "--checkpoint", str(only_points), "--data", str(demo), "--points", "128",
                  "--no-progress"]) == 1
    assert "image encoder" in capsys.readouterr().err
    assert _main(["eval", "partseg", "--checkpoint", str(only_points), "--data", str(demo), "--no-progress"]) == 1
    assert "head" in capsys.readouterr().err
    assert _main(["eval"]) == 2
