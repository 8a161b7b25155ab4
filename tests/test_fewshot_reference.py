"""``crosspoint eval fewshot --protocol reference``: the reference script's settings (k 5, 50 runs, 20
queries from the training split, StandardScaler + linear SVC at C = 1, float32); explicit flags
override them; the JSON says which protocol and which k."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from crosspoint.evaluation import fewshot

REPO = Path(__file__).resolve().parents[1]


def test_presets():
    ref = fewshot.protocol_settings("reference")
    assert ref == {"protocol": "reference", "k": 5, "runs": 50, "n_query": 20, "query_split": "train", "C": 1.0,
                   "amp": False, "overridden": []}
    d = fewshot.protocol_settings("default")
    assert (d["k"], d["runs"], d["n_query"], d["query_split"], d["C"], d["amp"]) == (None, 10, 20, "train", 1.0, True)
    o = fewshot.protocol_settings("reference", k=None, runs=3, n_query=None, query_split="test", C=None, amp=None)
    assert (o["k"], o["runs"], o["query_split"], o["overridden"]) == (5, 3, "test", ["query_split", "runs"])
    with pytest.raises(ValueError, match="protocol"):
        fewshot.protocol_settings("paper")
    with pytest.raises(TypeError, match="ways"):
        fewshot.protocol_settings("reference", ways=5)


def test_episode_classifier_is_the_references():
    """StandardScaler fitted on the support set, then ``SVC(kernel='linear')`` at sklearn's default C."""
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    assert SVC().C == fewshot.PROTOCOLS["reference"]["C"] == 1.0
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    y = np.repeat(np.arange(3), 20)
    x[:, 0] += y
    ep = fewshot.sample_episode(fewshot.class_index(y), 3, 5, 10, random.Random(0))
    scaler = StandardScaler().fit(x[ep.support_idx])
    clf = SVC(kernel="linear").fit(scaler.transform(x[ep.support_idx]), ep.support_y)
    want = clf.score(scaler.transform(x[ep.query_idx]), ep.query_y)
    assert fewshot.episode_accuracy(x[ep.support_idx], ep.support_y, x[ep.query_idx], ep.query_y) == want


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from crosspoint.data.synthetic import generate_demo

    return generate_demo(tmp_path_factory.mktemp("fsl") / "demo", per_class=6, n_points=64, n_views=1, size=16,
                         workers=0)


def _fewshot(demo, tmp_path, name, *extra) -> dict:
    from crosspoint.cli import main

    out = tmp_path / f"{name}.json"
    rc = main(["eval", "fewshot", "--data", str(demo), "--points", "64", "--device", "cpu", "--ways", "2",
               "--shots", "1", "--val-fraction", "0.2", "--no-progress", "--json", str(out), *extra])
    assert rc == 0
    return json.loads(out.read_text())


def test_cli_reference_protocol(demo, tmp_path, reference_fixtures, capsys):
    official = str(reference_fixtures / "dgcnn_cls.pth")
    ref = _fewshot(demo, tmp_path, "ref", "--checkpoint", official, "--protocol", "reference", "--queries", "2")
    assert ref["protocol"] == "fewshot" and ref["fewshot_protocol"] == "reference"
    assert (ref["k"], ref["k_source"]) == (5, "reference protocol")
    assert ref["settings"] == {"runs": 50, "n_query": 2, "query_split": "train", "C": 1.0, "amp": False,
                               "overridden": ["n_query"]}
    (r,) = ref["results"]
    assert (r["runs"], r["n_query"], r["query_split"], r["C"], len(r["accs"])) == (50, 2, "train", 1.0, 50)
    assert "(reference protocol, k = 5): 50 runs, 2 queries per class" in capsys.readouterr().out
    # the default protocol: the k the checkpoint was trained with (official: 15), 10 runs
    d = _fewshot(demo, tmp_path, "default", "--checkpoint", official, "--queries", "2")
    assert d["fewshot_protocol"] == "default" and (d["k"], d["k_source"]) == (15, "official default")
    assert d["settings"]["runs"] == 10 and len(d["results"][0]["accs"]) == 10
    # explicit flags override the preset
    o = _fewshot(demo, tmp_path, "over", "--checkpoint", official, "--protocol", "reference", "--k", "8",
                 "--runs", "3", "--queries", "2", "--C", "0.5")
    assert (o["k"], o["k_source"]) == (8, "argument")
    assert (o["settings"]["runs"], o["settings"]["C"]) == (3, 0.5)
    assert o["settings"]["overridden"] == ["C", "k", "n_query", "runs"]
    # a random encoder takes the preset's k too
    rnd = _fewshot(demo, tmp_path, "rnd", "--checkpoint", "random", "--protocol", "reference", "--queries", "2",
                   "--runs", "2")
    assert (rnd["k"], rnd["k_source"]) == (5, "reference protocol")


def test_split_options_defined_once():
    """Issue 15 item 4: ``--val-fraction`` / ``--split-seed`` come from one helper in commands/eval.py."""
    import argparse

    from crosspoint.commands import eval as ev

    src = (REPO / "crosspoint" / "commands" / "eval.py").read_text(encoding="utf-8")
    assert src.count('"--val-fraction"') == 1 and src.count('"--split-seed"') == 1
    p = argparse.ArgumentParser()
    ev.add_arguments(p)
    for proto in ("svm", "fewshot", "retrieval"):
        a = p.parse_args([proto, "--checkpoint", "x", "--data", "y", "--val-fraction", "0.3", "--split-seed", "4"])
        assert (a.val_fraction, a.split_seed) == (0.3, 4)
        d = p.parse_args([proto, "--checkpoint", "x", "--data", "y"])
        assert (d.val_fraction, d.split_seed) == (0.1, 1)
