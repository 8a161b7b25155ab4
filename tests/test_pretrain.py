"""The pretraining engine end to end: a tiny run, clean stop, SIGKILL + resume, torchrun/DDP parity."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from crosspoint.cli import main
from crosspoint.engine.events import read_events

from pretrain_support import REPO, make_tiny_demo  # noqa: I001 - tests/pretrain_support.py
from pretrain_support import env as _env, sets as _sets, wait_for as _wait_for, weights as _weights





@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory) -> Path:
    return make_tiny_demo(tmp_path_factory.mktemp("demo") / "demo")



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
        assert e["lr"] >= 0 and e["samples_per_s"] > 0 and e["eta_s"] >= 0
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
    # the learning rate followed the reference's cosine schedule, stepped at the start of every epoch
    lrs = [e["lr"] for e in epochs]
    assert ck["config"]["optim"]["lr_step"] == "epoch_start"
    assert lrs[0] == pytest.approx(5e-4, rel=1e-12) and lrs[1] == pytest.approx(0.0, abs=1e-18)

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


def _rel_norm_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||a|| in float64 (0 when both are zero)."""
    a, b = a.double(), b.double()
    na = float(a.norm())
    d = float((a - b).norm())
    return d / na if na > 0 else d


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_torchrun_two_gloo_processes_match_one_process_exactly_in_float64(tiny_demo, tmp_path, optimizer):
    """Two gloo processes at half batch each == one process at the global batch, in float64.

    float64 makes the comparison independent of the CPU's rounding: the gradients of the two set-ups
    agree to ~1e-13 relative (tests/test_ddp.py), and everything after them is deterministic. Adam is
    the sensitive case, and not because of DDP: for a gradient entry near Adam's eps (1e-8) the step
    moves by lr / (4 eps) = 2.5e4 per unit of gradient, so a 1e-14 difference in such an entry becomes
    ~1e-10 in that weight. Measured after 4 steps (Intel Xeon, 2 threads), ||w2 - w1|| / ||w1|| over
    every tensor: worst 3.4e-11 with SGD, 3.0e-10 with Adam (BatchNorm biases: they start at zero, so
    their norm is the Adam steps themselves); losses agree to ~5e-12. Bounds: 1e-9 (SGD), 1e-8 (Adam).
    In float32 the same amplification gave 1e-3 differences, which is why this test is float64."""
    bound = 1e-8 if optimizer == "adam" else 1e-9
    common = _sets(["optim.epochs=2", "optim.scheduler=none", f"data.root={tiny_demo}", "run.val_every=0",
                    "run.max_steps_per_epoch=2",
                    "optim.batch_size=8", f"optim.optimizer={optimizer}", "run.dtype=float64"])
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
    assert len(s1) == len(s2) == 4
    for a, b in zip(s1, s2):
        for key in ("loss", "loss_intra", "loss_cross"):
            assert abs(b[key] - a[key]) <= 1e-9 * abs(a[key]), (key, a[key], b[key])
    w1, ck1 = _weights(one / "checkpoints" / "last.pt")
    w2, ck2 = _weights(two / "checkpoints" / "last.pt")
    assert ck1["config"]["run"]["dtype"] == "float64"
    assert set(w1) == set(w2)
    # every parameter and every BatchNorm buffer (running mean/var, and the step counters exactly)
    n_bn = 0
    for k, v in w1.items():
        assert w2[k].dtype == v.dtype, k
        if v.is_floating_point():
            assert v.dtype == torch.float64, k
            assert _rel_norm_diff(v, w2[k]) <= bound, (k, _rel_norm_diff(v, w2[k]))
            n_bn += k.endswith(("running_mean", "running_var"))
        else:
            assert torch.equal(v, w2[k]), k
    assert n_bn > 20  # the DGCNN's and the ResNet's BatchNorm statistics were compared
    json.dumps(s2)  # events are plain JSON


@pytest.mark.parametrize("epochs", [1, 2, 7, 100])
def test_lr_schedule_reproduces_the_reference_and_the_textbook_timing(epochs):
    """``epoch_start`` = torch's CosineAnnealingLR(T_max=epochs, eta_min=0) stepped before each epoch, as
    the reference's train_crosspoint.py; ``epoch_end`` = the same scheduler stepped after each epoch."""
    import warnings

    from crosspoint.config import load_config
    from crosspoint.engine.pretrain import lr_factor

    def reference(step_first: bool):
        opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=0)
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": the reference does
            for _ in range(epochs):
                if step_first:
                    sched.step()
                out.append(opt.param_groups[0]["lr"])
                if not step_first:
                    opt.step()
                    sched.step()
        return out

    for timing, step_first in (("epoch_start", True), ("epoch_end", False)):
        cfg = load_config(None, [f"optim.epochs={epochs}", f"optim.lr_step={timing}"])
        ours = [1e-3 * lr_factor(cfg, e) for e in range(epochs)]
        # torch's recursive form and our closed form differ only by float64 rounding
        assert ours == pytest.approx(reference(step_first), rel=1e-9, abs=1e-15), timing
    paper = load_config(REPO / "configs" / "paper.yaml")
    assert paper.optim.lr_step == "epoch_start" and paper.run.amp == "off" and paper.data.background == "drop"
    assert paper.run.dtype == "float32" and paper.model.k == 15


def test_selection_on_a_test_set_as_the_reference(tiny_demo, tmp_path, caplog):
    """run.selection=test: all of the pretraining set (val_fraction 0), best chosen by the linear SVM on
    ModelNet40's test split, with a warning; ties go to the earlier epoch as the reference's ``>``."""
    from crosspoint.data.testing import make_modelnet40_h5

    mn = make_modelnet40_h5(tmp_path / "mn", n_train=12, n_test=8, n_points=128, n_classes=3)
    out = tmp_path / "run"
    with caplog.at_level("WARNING"):
        code = main(["pretrain", "--out", str(out), "--no-progress",
                     *_sets(["optim.epochs=2", f"data.root={tiny_demo}", "data.val_fraction=0",
                             "run.selection=test", f"run.selection_data={mn}", "run.max_steps_per_epoch=1"])])
    assert code == 0
    assert "TEST split" in caplog.text
    ev = read_events(out)
    start = ev[0]
    assert start["val_objects"] == 8
    vals = [e["val_acc"] for e in ev if e["event"] == "validation"]
    assert len(vals) == 2
    best_events = [e for e in ev if e["event"] == "checkpoint" and e["kind"] == "best"]
    best_epochs = [e["epoch"] for e in best_events]
    expected = [1] + ([2] if vals[1] > vals[0] else [])
    assert best_epochs == expected
    # a missing selection dataset is a clear error, not a traceback
    assert main(["pretrain", "--out", str(tmp_path / "bad"), "--no-progress",
                 *_sets([f"data.root={tiny_demo}", "run.selection=test"])]) == 2


def test_resume_of_a_run_saved_before_the_reference_settings_keeps_its_behaviour(tiny_demo, tmp_path):
    """A checkpoint whose config predates data.background / optim.lr_step / run.dtype resumes as it was
    trained (white background, schedule stepped after each epoch), not with today's defaults."""
    out = tmp_path / "run"
    assert main(["pretrain", "--out", str(out), "--no-progress",
                 *_sets(["optim.epochs=2", f"data.root={tiny_demo}", "run.val_every=0",
                         "optim.lr_step=epoch_end", "data.background=white", "run.save_every=1"])]) == 0
    last = out / "checkpoints" / "last.pt"
    ck = torch.load(out / "checkpoints" / "epoch_0001.pt", weights_only=True)  # as if stopped after epoch 1
    for sec, key in (("data", "background"), ("optim", "lr_step"), ("run", "dtype"), ("run", "selection"),
                     ("run", "selection_data")):
        del ck["config"][sec][key]
    assert ck["epoch"] == 1
    torch.save(ck, last)
    assert main(["pretrain", "--out", str(out), "--no-progress", "--resume"]) == 0
    ev = read_events(out)
    epochs = [e for e in ev if e["event"] == "epoch"]
    assert epochs[-1]["epoch"] == 1 and epochs[-1]["lr"] == pytest.approx(5e-4, rel=1e-12)
    resumed = torch.load(last, weights_only=True)
    assert resumed["config"]["data"]["background"] == "white"
    assert resumed["config"]["optim"]["lr_step"] == "epoch_end"


def test_validation_svm_can_standardise_so_the_features_scale_does_not_matter():
    """``run.svm_standardise``: the validation accuracy of an encoder and of the same encoder with its
    features 2^-10 the size (a power of two: exact) are the same bits. Off by default (the reference
    fits raw features at C = 0.1)."""
    import numpy as np

    from crosspoint.config import RunConfig
    from crosspoint.engine.pretrain import validation_accuracy
    from crosspoint.models import DGCNN

    class Shapes:  # two classes of 64-point clouds, flat and tall boxes, under heavy noise
        def __init__(self, n, seed):
            rng = np.random.default_rng(seed)
            self.labels = np.arange(n) % 2
            scale = np.where(self.labels[:, None, None] == 0, [1.0, 0.6, 1.0], [0.8, 1.0, 0.8])
            self.points = (rng.uniform(-1, 1, (n, 64, 3)) * scale + rng.normal(0, 0.5, (n, 64, 3))).astype(np.float32)

        def __getitem__(self, i):
            return self.points[i], int(self.labels[i])

    class Smaller(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def embed(self, x):
            return self.inner.embed(x) * 2.0 ** -10

    torch.manual_seed(0)
    enc = DGCNN(k=4, emb_dims=32).eval()
    tr, va = Shapes(24, 1), Shapes(40, 2)
    kw = dict(device="cpu", c=0.1, max_train=100)
    std = validation_accuracy(enc, tr, va, standardise=True, **kw)
    assert 0.0 < std < 1.0
    assert validation_accuracy(Smaller(enc), tr, va, standardise=True, **kw) == std
    assert RunConfig().svm_standardise is False
