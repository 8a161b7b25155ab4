"""crosspoint.engine.runtime and crosspoint.engine.trainer on their own: device and AMP resolution,
the stop flag, and the trainer's loop with hooks (no dataset, no subprocess)."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from crosspoint.engine.runtime import Runtime, StopFlag, resolve_amp, resolve_device, setup_runtime
from crosspoint.engine.trainer import CheckpointHook, Hook, StepOutput, Trainer, TrainState, ValidationHook


def test_device_and_amp_resolution_on_the_cpu(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(RuntimeError):
        resolve_device("nonsense")
    cpu = torch.device("cpu")
    for amp in ("auto", "bf16", "fp16", "off"):
        assert resolve_amp(amp, cpu) is None  # autocast is a CUDA matter here
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    rt = setup_runtime("cpu", "auto", threads=0)
    assert rt.is_main and not rt.distributed and rt.world_size == 1 and rt.amp_dtype is None
    with rt.autocast():
        assert not torch.is_autocast_enabled()
    rt.barrier()  # a no-op without a process group


def test_stop_flag_takes_one_signal_and_gives_the_second_back():
    flag = StopFlag().install()
    old = signal.getsignal(signal.SIGTERM)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert flag.requested and flag.signal_name == "SIGTERM"
        assert signal.getsignal(signal.SIGTERM) is not old  # the next SIGTERM gets the previous handler
    finally:
        flag.restore()
    assert signal.getsignal(signal.SIGTERM) is not flag._handle


class _Record(Hook):
    def __init__(self):
        self.calls = []

    def before_train(self, t):
        self.calls.append("before_train")

    def before_epoch(self, t, epoch):
        self.calls.append(f"before_epoch {epoch}")

    def after_step(self, t, logs):
        self.calls.append(f"step {t.state.step}")

    def after_epoch(self, t, summary):
        self.calls.append(f"epoch {summary['epoch']} val {summary.get('val_acc')}")

    def after_train(self, t, stopped):
        self.calls.append(f"after_train {stopped}")


def _trainer(hooks, *, epochs=3, steps=2, stop_after=None, scores=(0.5, 0.7, 0.7)):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 / (e + 1))
    flag = StopFlag()
    state = TrainState()
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)

    def step(batch):
        if stop_after is not None and state.step + 1 >= stop_after:
            flag.requested, flag.signal_name = True, "SIGTERM"
        loss = model(x).square().mean()
        return StepOutput(loss, {"loss": loss}, 2)

    saved = []
    val = ValidationHook(lambda done: (scores[done - 1], {}), every=1)
    ck = CheckpointHook(lambda kind: saved.append((kind, state.epoch, state.step)), save_every=2)
    t = Trainer(model=model, optimizer=opt, scheduler=sched, step=step, batches=lambda e, skip: range(10),
                state=state, epochs=epochs, steps_per_epoch=steps, runtime=Runtime(device=torch.device("cpu")),
                stop=flag, hooks=[val, ck, *hooks])
    return t, saved


def test_the_trainer_runs_hooks_in_order_and_checkpoints_as_told():
    rec = _Record()
    t, saved = _trainer([rec])
    assert t.run() is False
    assert rec.calls == ["before_train", "before_epoch 0", "step 1", "step 2", "epoch 0 val 0.5",
                         "before_epoch 1", "step 3", "step 4", "epoch 1 val 0.7",
                         "before_epoch 2", "step 5", "step 6", "epoch 2 val 0.7", "after_train False"]
    # best on improvement and on the tie (later epoch), last every epoch, epoch_0002 every 2 epochs
    assert saved == [("best", 1, 2), ("last", 1, 2), ("best", 2, 4), ("last", 2, 4), ("epoch_0002", 2, 4),
                     ("best", 3, 6), ("last", 3, 6)]
    assert t.state.best_acc == 0.7 and len(t.state.history) == 3
    assert [h["lr"] for h in t.state.history] == [0.1, 0.05, 0.1 / 3]  # the schedule stepped after each epoch


def test_a_stop_mid_epoch_writes_last_there():
    rec = _Record()
    t, saved = _trainer([rec], stop_after=3)
    assert t.run() is True
    assert rec.calls[-2:] == ["step 3", "after_train True"]
    assert saved[-1] == ("last", 1, 3) and t.state.step_in_epoch == 1  # resume continues inside epoch 1


def test_a_non_finite_loss_stops_with_a_message():
    t, _ = _trainer([])
    t.step_fn = lambda batch: StepOutput(torch.tensor(float("nan"), requires_grad=True), {"loss": float("nan")}, 1)
    with pytest.raises(FloatingPointError, match="non-finite loss at step 1"):
        t.run()
