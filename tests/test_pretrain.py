"""The pretraining engine end to end: a tiny run, clean stop, SIGKILL + resume, torchrun/DDP parity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from crosspoint.cli import main
from crosspoint.engine.events import read_events

REPO = Path(__file__).resolve().parents[1]

TINY = [
    "data.num_points=128", "data.image_size=32", "model.k=8", "model.image_encoder=resnet18",
    "optim.batch_size=4", "data.workers=0", "run.log_every=1", "data.val_fraction=0.25", "run.threads=1",
    "run.seed=3",
]


def _sets(extra=()):
    out = []
    for kv in [*TINY, *extra]:
        out += ["--set", kv]
    return out


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory) -> Path:
    from crosspoint.data.synthetic import generate_demo

    root = tmp_path_factory.mktemp("demo") / "demo"
    generate_demo(root, seed=0, per_class=3, n_views=2, size=32, workers=0)
    return root


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _state(path):
    ck = torch.load(path, weights_only=True)
    return ck


def test_tiny_run_writes_events_checkpoints_and_loads(tiny_demo, tmp_path):
    out = tmp_path / "run"
    code = main(["pretrain", "--out", str(out), "--no-progress",
                 *_sets(["optim.epochs=2", f"data.root={tiny_demo}", "run.save_every=1"])])
    assert code == 0
    ev = read_events(out)
    kinds = [e["event"] for e in ev]
    assert kinds[0] == "start" and kinds[-1] == "end"
    steps = [e for e in ev if e["event"] == "step"]
    assert len(steps) == 2 * ev[0]["steps_per_epoch"] and steps[-1]["progress"] == pytest.approx(1.0)
    for e in steps:
        assert e["loss"] == pytest.approx(e["loss_intra"] + e["loss_cross"], rel=1e-5)
        assert e["lr"] > 0 and e["samples_per_s"] > 0 and e["eta_s"] >= 0
    epochs = [e for e in ev if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [0, 1] and all(0 <= e["val_acc"] <= 1 for e in epochs)
    ckpts = {Path(e["path"]).name for e in ev if e["event"] == "checkpoint"}
    assert {"last.pt", "best.pt", "epoch_0001.pt", "epoch_0002.pt"} <= ckpts
    assert (out / "config.yaml").is_file() and (out / "log.txt").is_file()

    ck = _state(out / "checkpoints" / "last.pt")
    for key in ("optimizer", "scheduler", "scaler", "epoch", "step", "rng", "config", "point_encoder",
                "image_encoder"):
        assert key in ck
    assert ck["epoch"] == 2 and ck["config"]["model"]["k"] == 8
    # checkpoints open where users open them
    from crosspoint.models import load_image_encoder, load_point_encoder

    enc = load_point_encoder(out / "checkpoints" / "best.pt")
    assert enc.embed(torch.rand(2, 128, 3)).shape == (2, 2048)
    assert load_image_encoder(out / "checkpoints" / "last.pt", arch="resnet18") is not None
    # the learning rate followed the cosine schedule
    lrs = [e["lr"] for e in epochs]
    assert lrs[0] == pytest.approx(1e-3) and lrs[1] == pytest.approx(5e-4)

    # a second start into the same folder is refused, nothing touched
    before = (out / "events.jsonl").read_bytes()
    assert main(["pretrain", "--out", str(out), "--no-progress", *_sets([f"data.root={tiny_demo}"])]) == 1
    assert (out / "events.jsonl").read_bytes() == before


def test_bad_inputs_give_clear_errors(tiny_demo, tmp_path, capsys):
    assert main(["pretrain", "--out", str(tmp_path / "a"), "--set", "optim.lrr=1"]) == 2
    assert "optim.lrr" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(tmp_path / "b"), "--set", f"data.root={tmp_path / 'nope'}"]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(tmp_path / "c"), "--resume"]) == 1
    assert "nothing to resume" in capsys.readouterr().err


def test_tensorboard_without_the_package_is_a_clear_error(tiny_demo, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    code = main(["pretrain", "--out", str(tmp_path / "tb"), "--no-progress",
                 *_sets(["optim.epochs=1", f"data.root={tiny_demo}", "run.tensorboard=yes"])])
    assert code == 1
    assert "tensorboard package is not installed" in capsys.readouterr().err


def _run_cli(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "crosspoint", "pretrain", "--no-progress", *args],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _wait_for(path: Path, predicate, proc, timeout=180):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if path.exists() and predicate(read_events(path)):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def _weights(path):
    ck = torch.load(path, weights_only=True)
    return {**{f"p.{k}": v for k, v in ck["point_encoder"]["state_dict"].items()},
            **{f"i.{k}": v for k, v in ck["image_encoder"]["state_dict"].items()}}, ck


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_sigkill_resume_matches_an_uninterrupted_run(tiny_demo, tmp_path):
    common = _sets(["optim.epochs=3", f"data.root={tiny_demo}", "run.val_every=0"])
    # the reference: uninterrupted
    ref = tmp_path / "ref"
    p = _run_cli(["--out", str(ref), *common])
    assert p.wait(timeout=300) == 0, p.stdout.read()
    ref_w, ref_ck = _weights(ref / "checkpoints" / "last.pt")

    # 1) SIGTERM in the middle of epoch 0: finishes the step, writes last.pt (mid-epoch), exits 0
    run = tmp_path / "run"
    p = _run_cli(["--out", str(run), *common])
    assert _wait_for(run, lambda ev: any(e["event"] == "step" and e["step"] >= 1 for e in ev), p)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=120) == 0
    ev = read_events(run)
    assert ev[-1]["event"] == "stopped" and ev[-2]["event"] == "checkpoint"
    mid = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert mid["step"] >= 1

    # 2) resume, then SIGKILL right after the next checkpoint (no chance to clean up)
    p = _run_cli(["--out", str(run), "--resume"])
    n_ck = sum(e["event"] == "checkpoint" for e in ev)
    assert _wait_for(run, lambda e2: sum(e["event"] == "checkpoint" for e in e2) > n_ck, p)
    p.kill()
    p.wait(timeout=60)
    torch.load(run / "checkpoints" / "last.pt", weights_only=True)  # intact after SIGKILL

    # 3) resume again to the end
    p = _run_cli(["--out", str(run), "--resume"])
    out = p.communicate(timeout=300)[0]
    assert p.returncode == 0, out
    assert read_events(run)[-1]["event"] == "end"
    got_w, got_ck = _weights(run / "checkpoints" / "last.pt")
    assert got_ck["step"] == ref_ck["step"] and got_ck["epoch"] == ref_ck["epoch"] == 3
    for k, v in ref_w.items():
        if v.is_floating_point():
            torch.testing.assert_close(got_w[k], v, rtol=1e-4, atol=1e-5, msg=k)
    assert not list((run / "checkpoints").glob(".*.tmp"))


@pytest.mark.slow
def test_torchrun_two_gloo_processes_match_one_process(tiny_demo, tmp_path):
    # SGD, not Adam: Adam turns the ~1e-9 float noise on parameters whose true gradient is zero (the
    # bias of a Linear before BatchNorm) into full +-lr steps, which says nothing about DDP. A small lr:
    # at lr 0.01 the tiny ResNet (32 px, 1x1 maps in layer4, 4 images per rank) amplifies float-rounding
    # differences of step 1 into ~1e-3 relative differences of the step-2 update.
    common = _sets(["optim.epochs=1", f"data.root={tiny_demo}", "run.val_every=0", "run.max_steps_per_epoch=2",
                    "optim.batch_size=8", "optim.optimizer=sgd", "optim.lr=0.001"])
    one = tmp_path / "one"
    p = _run_cli(["--out", str(one), *common])
    assert p.wait(timeout=300) == 0, p.stdout.read()
    two = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "crosspoint", "pretrain", "--no-progress", "--out", str(two), *common]
    r = subprocess.run(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]
    s1 = [e for e in read_events(one) if e["event"] == "step"]
    s2 = [e for e in read_events(two) if e["event"] == "step"]
    assert read_events(two)[0]["world_size"] == 2
    assert len(s1) == len(s2) == 2
    for a, b in zip(s1, s2):
        assert b["loss"] == pytest.approx(a["loss"], rel=2e-4, abs=2e-4)
        assert b["loss_cross"] == pytest.approx(a["loss_cross"], rel=2e-4, abs=2e-4)
    w1, _ = _weights(one / "checkpoints" / "last.pt")
    w2, _ = _weights(two / "checkpoints" / "last.pt")
    for k, v in w1.items():
        if v.is_floating_point():
            torch.testing.assert_close(w2[k], v, rtol=1e-3, atol=1e-4, msg=k)
    json.dumps(s2)  # events are plain JSON
