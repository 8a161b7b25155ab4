"""The training dialog and the live run monitor (subprocess + events.jsonl)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crosspoint.config import apply_overrides, load_config
from crosspoint.engine.events import read_events

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory) -> Path:
    from crosspoint.data.synthetic import generate_demo

    root = tmp_path_factory.mktemp("gdemo") / "demo"
    generate_demo(root, seed=0, per_class=3, n_views=2, size=32, workers=0)
    return root


def _tiny_cfg(root, **extra):
    sets = ["data.num_points=128", "data.image_size=32", "model.k=8", "model.image_encoder=resnet18",
            "optim.batch_size=4", "data.workers=0", "run.log_every=1", "data.val_fraction=0.25",
            "run.threads=1", f"data.root={root}", "optim.epochs=30"]
    sets += [f"{k}={v}" for k, v in extra.items()]
    return apply_overrides(load_config(REPO / "configs" / "cpu-demo.yaml"), sets)


def test_dialog_builds_a_valid_config_and_refuses_bad_input(qtbot, tmp_path):
    from explorer.training import TrainingDialog

    dlg = TrainingDialog(default_out=str(tmp_path / "run"))
    qtbot.addWidget(dlg)
    assert dlg.base.currentText() == "cpu-demo"
    dlg.set_value("optim.epochs", 7)
    dlg.set_value("optim.lr", "0.0005")
    dlg.set_value("model.image_encoder", "resnet50")
    cfg = dlg.config()
    assert cfg.optim.epochs == 7 and cfg.optim.lr == pytest.approx(5e-4) and cfg.model.image_encoder == "resnet50"
    assert cfg.data.root == "demo"
    dlg.set_value("data.root", str(tmp_path / "missing"))
    dlg._accept()
    qtbot.waitUntil(lambda: not dlg.checking, timeout=30_000)
    assert "no such folder" in dlg.error.text() and dlg.accepted_config() is None
    dlg.base.setCurrentText("paper")
    assert dlg.value("model.k") == 15 and dlg.value("model.image_encoder") == "resnet50"


def test_monitor_runs_stops_resumes_and_attaches(qtbot, tiny_demo, tmp_path):
    from explorer.training import RunMonitor

    mon = RunMonitor()
    qtbot.addWidget(mon)
    mon.show()
    out = tmp_path / "run"
    mon.start(_tiny_cfg(tiny_demo), out)
    qtbot.waitUntil(lambda: len(mon._steps["step"]) >= 2, timeout=120_000)
    assert mon.running and mon.stop_button.isEnabled()
    assert mon.curve_total.getData()[0] is not None and len(mon.curve_total.getData()[0]) >= 2
    with qtbot.waitSignal(mon.runFinished, timeout=120_000) as sig:
        mon.stop()
    assert sig.args[0] == "stopped"
    assert (out / "checkpoints" / "last.pt").is_file()
    assert mon.resume_button.isEnabled() and mon.open_button.isEnabled()
    n_steps = len(mon._steps["step"])

    mon.resume()
    qtbot.waitUntil(lambda: len(mon._steps["step"]) > n_steps + 1, timeout=120_000)
    with qtbot.waitSignal(mon.runFinished, timeout=120_000):
        mon.stop()
    kinds = [e["event"] for e in read_events(out)]
    assert kinds.count("start") == 2 and kinds.count("stopped") == 2

    with qtbot.waitSignal(mon.checkpointReady, timeout=2000) as sig:
        mon.open_button.click()
    assert Path(sig.args[0]).name in ("best.pt", "last.pt")

    other = RunMonitor()
    qtbot.addWidget(other)
    other.attach(out)
    assert len(other._steps["step"]) == len(mon._steps["step"])
    assert other.status == "stopped" and not other.running


def test_monitor_shows_why_a_run_failed(qtbot, tmp_path):
    from explorer.training import RunMonitor

    mon = RunMonitor()
    qtbot.addWidget(mon)
    cfg = _tiny_cfg(tmp_path / "no-such-dataset")
    with qtbot.waitSignal(mon.runFinished, timeout=120_000) as sig:
        mon.start(cfg, tmp_path / "run")
    assert sig.args[0] in ("error", "crashed")
    assert "no such folder" in mon.status_label.text() or "no such folder" in mon.last_error
    assert "FAILED" in mon.status_label.text()


def test_monitor_drops_superseded_steps_and_skips_events_outside_the_schema(qtbot):
    """After a resume the curves show the current history (the redone steps once), and an event that
    does not follow crosspoint.engine.events.EVENT_SCHEMA is skipped and said in the log."""
    from explorer.training import RunMonitor

    mon = RunMonitor()
    qtbot.addWidget(mon)

    def step(s, epoch=0):
        return {"event": "step", "time": 1.0, "epoch": epoch, "step": s, "loss": 10.0 - s, "loss_intra": 1.0,
                "loss_cross": 1.0, "lr": 1e-3, "samples_per_s": 5.0, "eta_s": 1.0, "progress": s / 10}

    start = {"event": "start", "time": 0.0, "name": "x", "config": {}, "epochs": 2, "steps_per_epoch": 5,
             "world_size": 1, "device": "cpu", "resumed_from": None, "start_epoch": 0, "start_step": 0}
    mon._ingest([start, *[step(s) for s in (1, 2, 3, 4)]])
    resumed = {**start, "resumed_from": "last.pt", "start_step": 2, "time": 2.0}
    mon._ingest([resumed, *[step(s) for s in (3, 4, 5)], {"event": "step", "time": 3.0, "step": "six"}])
    assert mon._steps["step"] == [1, 2, 3, 4, 5]
    assert mon._steps["loss"] == [9.0, 8.0, 7.0, 6.0, 5.0]
    assert mon.skipped_events == 1
    assert all(e.get("step") != "six" for e in mon.events)
