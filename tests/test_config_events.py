"""Typed configs, the JSON-lines event stream and atomic checkpoint writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from crosspoint.config import ConfigError, PretrainConfig, apply_overrides, dump_config, load_config
from crosspoint.engine.checkpoint import atomic_torch_save, capture_rng_state, restore_rng_state
from crosspoint.engine.events import EventReader, EventWriter, read_events

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["paper.yaml", "cpu-demo.yaml"])
def test_shipped_configs_load_and_round_trip(name, tmp_path):
    cfg = load_config(REPO / "configs" / name)
    assert isinstance(cfg, PretrainConfig)
    (tmp_path / "resolved.yaml").write_text(dump_config(cfg))
    assert load_config(tmp_path / "resolved.yaml") == cfg


def test_paper_config_matches_the_reference_setup():
    cfg = load_config(REPO / "configs" / "paper.yaml")
    assert cfg.model.point_encoder == "dgcnn" and cfg.model.k == 15 and cfg.model.emb_dims == 1024
    assert cfg.model.image_encoder == "resnet50"
    assert cfg.optim.batch_size == 20 and cfg.optim.lr == 1e-3 and cfg.optim.weight_decay == 1e-6
    assert cfg.optim.epochs == 100 and cfg.optim.scheduler == "cosine" and cfg.optim.optimizer == "adam"
    assert cfg.data.num_points == 2048 and cfg.loss.temperature == 0.1
    assert cfg.data.partial_view == 0.0  # both point copies whole, as the paper


def test_overrides_are_typed():
    cfg = apply_overrides(PretrainConfig(), ["optim.lr=5e-4", "optim.epochs=3", "run.tensorboard=yes",
                                             "data.root=/tmp/x", "optim.batch_size=1e1"])
    assert cfg.optim.lr == 5e-4 and isinstance(cfg.optim.epochs, int) and cfg.optim.epochs == 3
    assert cfg.run.tensorboard is True and cfg.data.root == "/tmp/x" and cfg.optim.batch_size == 10


@pytest.mark.parametrize("bad, words", [
    (["optim.lrr=1"], ["optim.lrr", "lr"]),
    (["optimizer.lr=1"], ["optimizer"]),
    (["optim.epochs=2.5"], ["optim.epochs"]),
    (["optim.lr"], ["key=value"]),
    (["model.point_encoder=pointnet++"], ["point_encoder", "dgcnn"]),
    (["optim.batch_size=1"], ["batch_size"]),
    (["run.tensorboard=maybe"], ["run.tensorboard"]),
    (["data.partial_view=1.5"], ["data.partial_view", "probability"]),
    (["optim.lr=.inf"], ["optim.lr", "not a finite number"]),
    (["loss.temperature=1e400"], ["loss.temperature", "not a finite number"]),
    (["optim.weight_decay=-0.1"], ["optim.weight_decay", ">= 0"]),
    (["optim.momentum=1"], ["optim.momentum"]),
    (["optim.eta_min=0.5"], ["optim.eta_min", "optim.lr"]),
    (["optim.epochs=5", "optim.warmup_epochs=5"], ["optim.warmup_epochs"]),
    (["optim.grad_clip=-1"], ["optim.grad_clip"]),
    (["loss.cross_weight=-1"], ["loss.cross_weight"]),
    (["run.svm_c=0"], ["run.svm_c"]),
])
def test_bad_overrides_say_what_is_wrong(bad, words):
    with pytest.raises(ConfigError) as e:
        apply_overrides(PretrainConfig(), bad)
    for w in words:
        assert w in str(e.value)


def test_bad_config_files(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("optim:\n  lr: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    p.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        load_config(p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_events_round_trip_and_partial_lines(tmp_path):
    w = EventWriter(tmp_path)
    w.emit("start", epochs=2, config={"a": 1})
    w.emit("step", step=1, loss=float("nan"), lr=torch.tensor(0.1))
    w.close()
    reader = EventReader(tmp_path)
    ev = reader.poll()
    assert [e["event"] for e in ev] == ["start", "step"]
    assert ev[1]["loss"] is None and abs(ev[1]["lr"] - 0.1) < 1e-7
    with open(tmp_path / "events.jsonl", "a") as fh:  # a writer caught mid-line
        fh.write('{"event": "epoch", "epo')
    assert reader.poll() == []
    with open(tmp_path / "events.jsonl", "a") as fh:
        fh.write('ch": 0}\nnot json\n')
    ev = reader.poll()
    assert [e["event"] for e in ev] == ["epoch"] and reader.bad_lines == 1
    assert len(read_events(tmp_path)) == 3
    for line in (tmp_path / "events.jsonl").read_text().splitlines()[:2]:
        json.loads(line)


def test_atomic_save_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "last.pt"
    atomic_torch_save({"a": torch.ones(2)}, target)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom while pickling")

    with pytest.raises(RuntimeError):
        atomic_torch_save({"a": Boom()}, target)
    assert torch.load(target, weights_only=True)["a"].sum() == 2
    assert not list(tmp_path.glob(".*.tmp")), "the temp file is cleaned up"


def test_rng_state_round_trip_is_weights_only_loadable(tmp_path):
    import random

    import numpy as np

    state = capture_rng_state()
    atomic_torch_save({"rng": state}, tmp_path / "r.pt")
    a = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(torch.load(tmp_path / "r.pt", weights_only=True)["rng"])
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
