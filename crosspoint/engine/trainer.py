"""One training loop for every engine: :class:`Trainer` runs epochs of optimiser steps, hooks do the rest.

An engine (pretraining, part-segmentation fine-tuning, the next one) supplies what is its own:

* ``step(batch) -> StepOutput``: the forward pass and the loss (inside the runtime's autocast);
* ``batches(epoch, skip)``: the epoch's batches, starting after ``skip`` batches (resume);
* hooks for what happens around the steps. The common ones live here:

  ==========================  ==================================================================
  :class:`StepEventsHook`     ``step`` events (window means of the step's logs, lr, samples/s,
                              ETA, progress) and the ``epoch`` event
  :class:`ProgressBarHook`    a tqdm bar
  :class:`TensorBoardHook`    scalars for TensorBoard
  :class:`ValidationHook`     the selection metric every ``every`` epochs (and after the last)
  :class:`CheckpointHook`     ``best`` (ties to the later epoch, or the earlier), ``last`` after
                              every epoch and when stopped, ``epoch_NNNN`` every ``save_every``
  ==========================  ==================================================================

The trainer owns the loop itself: AMP with a GradScaler for fp16, gradient clipping, the finite-loss
check, the :class:`TrainState` (epochs completed, steps, steps into the unfinished epoch, best
metric, per-epoch history), the scheduler step after every epoch, and stopping: a SIGINT/SIGTERM
(:class:`~crosspoint.engine.runtime.StopFlag`) ends the current step, all ranks agree on it under
DDP, and the hooks' ``after_train(stopped=True)`` write ``last`` and the ``stopped`` event.

Hook methods are called in the order the hooks were given; every method is optional.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch

log = logging.getLogger(__name__)

__all__ = ["TrainState", "StepOutput", "Hook", "Trainer", "StepEventsHook", "ProgressBarHook", "TensorBoardHook",
           "ValidationHook", "CheckpointHook"]


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps so far
    step_in_epoch: int = 0  # steps done in the unfinished epoch
    best_acc: float = -1.0
    history: list = field(default_factory=list)


@dataclass
class StepOutput:
    """What one step computed: ``loss`` is back-propagated; ``logs`` (scalars or 0-d tensors, ``"loss"``
    among them) are averaged over the logging window and the epoch; ``samples`` the step's global batch."""

    loss: torch.Tensor
    logs: dict
    samples: int


class Hook:
    """Called around the loop; override what you need."""

    def before_train(self, trainer: "Trainer") -> None:
        pass

    def before_epoch(self, trainer: "Trainer", epoch: int) -> None:
        pass

    def after_step(self, trainer: "Trainer", logs: dict) -> None:
        pass

    def after_epoch(self, trainer: "Trainer", summary: dict) -> None:
        pass

    def after_train(self, trainer: "Trainer", stopped: bool) -> None:
        pass


class Trainer:
    def __init__(self, *, model: torch.nn.Module, optimizer, scheduler, step: Callable[[object], StepOutput],
                 batches: Callable[[int, int], Iterable], state: TrainState, epochs: int, steps_per_epoch: int,
                 runtime, stop, hooks: Sequence[Hook] = (), grad_clip: float = 0.0, scaler=None,
                 clip_params: Iterable | None = None):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.step_fn, self.batches = step, batches
        self.state, self.epochs, self.steps_per_epoch = state, int(epochs), int(steps_per_epoch)
        self.rt, self.stop, self.hooks = runtime, stop, list(hooks)
        self.grad_clip = float(grad_clip)
        self.scaler = scaler if scaler is not None else torch.amp.GradScaler(
            runtime.device.type, enabled=runtime.amp_dtype == torch.float16)
        self.clip_params = list(clip_params) if clip_params is not None else list(model.parameters())
        self.total_steps = self.steps_per_epoch * self.epochs
        self.epoch = state.epoch  # the epoch being trained (0-based)
        self.stopped_mid_epoch = False

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _call(self, name: str, *args) -> None:
        for h in self.hooks:
            getattr(h, name)(self, *args)

    def should_stop(self) -> bool:
        """A signal arrived (here or, under DDP, on any rank: all ranks stop at the same step)."""
        flag = self.stop.requested
        if self.rt.distributed:
            t = torch.tensor([1.0 if flag else 0.0], device=self.rt.device)
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
            flag = bool(t.item() > 0)
            if flag and not self.stop.requested:
                self.stop.requested, self.stop.signal_name = True, "peer"
        return flag

    def _optimise(self, loss: torch.Tensor) -> None:
        opt, scaler = self.optimizer, self.scaler
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if self.grad_clip > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(self.clip_params, self.grad_clip)
        scaler.step(opt)
        scaler.update()

    def run(self) -> bool:
        """Train from ``state`` to ``epochs``; True when a signal stopped the run."""
        st = self.state
        self._call("before_train")
        stopped = False
        for epoch in range(st.epoch, self.epochs):
            self.epoch = epoch
            self._call("before_epoch", epoch)
            self.model.train()
            sums: dict[str, float] = {}
            n = 0
            t_epoch = time.time()
            for batch in self.batches(epoch, st.step_in_epoch):
                if st.step_in_epoch >= self.steps_per_epoch:
                    break
                with self.rt.autocast():
                    out = self.step_fn(batch)
                self._optimise(out.loss)
                st.step += 1
                st.step_in_epoch += 1
                logs = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in out.logs.items()}
                if not all(math.isfinite(v) for v in logs.values()):
                    raise FloatingPointError(f"non-finite loss at step {st.step} (epoch {epoch}): {logs}; "
                                             "lower the learning rate or check the data")
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
                n += 1
                self._call("after_step", {**logs, "_samples": out.samples})
                if self.should_stop():
                    stopped = True
                    break
            if stopped:
                self.stopped_mid_epoch = True
                break
            summary = {"epoch": epoch, **{k: v / max(n, 1) for k, v in sums.items()}, "lr": self.lr,
                       "seconds": time.time() - t_epoch}
            self.scheduler.step()
            st.epoch = epoch + 1
            st.step_in_epoch = 0
            st.history.append(summary)  # the hooks complete it (val_acc) before anything is saved
            self._call("after_epoch", summary)
            if self.should_stop():
                stopped = True
                break
        self._call("after_train", stopped)
        return stopped


# ------------------------------------------------------------------------------------------------ hooks
class StepEventsHook(Hook):
    """``step`` events every ``log_every`` steps, at the first step and at the end of each epoch (the
    means of the step logs since the last event), and the ``epoch`` event with the epoch means (and
    whatever the hooks before it added, e.g. ``val_acc``)."""

    def __init__(self, events, log_every: int):
        self.events, self.log_every = events, max(int(log_every), 1)

    def before_train(self, trainer):
        self.t_run = time.time()
        self.first_step = trainer.state.step
        self._reset()

    def _reset(self):
        self.win: dict[str, float] = {}
        self.n, self.samples, self.t = 0, 0, time.time()

    def after_step(self, trainer, logs):
        st = trainer.state
        for k, v in logs.items():
            if k != "_samples":
                self.win[k] = self.win.get(k, 0.0) + v
        self.n += 1
        self.samples += logs.get("_samples", 0)
        if st.step % self.log_every == 0 or st.step_in_epoch == trainer.steps_per_epoch or st.step == 1:
            now = time.time()
            done = st.step - self.first_step
            eta = (now - self.t_run) / max(done, 1) * (trainer.total_steps - st.step)
            self.events.emit("step", epoch=trainer.epoch, step=st.step,
                             **{k: v / self.n for k, v in self.win.items()}, lr=trainer.lr,
                             samples_per_s=self.samples / max(now - self.t, 1e-9), eta_s=eta,
                             progress=st.step / max(trainer.total_steps, 1))
            self._reset()

    def after_epoch(self, trainer, summary):
        self.events.emit("epoch", step=trainer.state.step, **summary)


class ProgressBarHook(Hook):
    def __init__(self, desc: str):
        self.desc, self.bar = desc, None

    def before_train(self, trainer):
        from tqdm import tqdm

        self.bar = tqdm(total=trainer.total_steps, initial=trainer.state.step, unit="step", dynamic_ncols=True,
                        desc=self.desc)

    def after_step(self, trainer, logs):
        self.bar.update(1)
        self.bar.set_postfix(epoch=trainer.epoch, loss=f"{logs.get('loss', float('nan')):.3f}")

    def after_train(self, trainer, stopped):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TensorBoardHook(Hook):
    """Scalars under ``loss/<name>`` (the step logs), ``lr`` and ``val/acc`` into ``folder``."""

    def __init__(self, folder):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise RuntimeError("run.tensorboard is on but the tensorboard package is not installed "
                               "(pip install 'crosspoint-explorer[tensorboard]')") from None
        self.writer = SummaryWriter(str(folder))

    def after_step(self, trainer, logs):
        step = trainer.state.step
        for k, v in logs.items():
            if k.startswith("loss"):
                self.writer.add_scalar("loss/" + (k[5:] or "total"), v, step)
        self.writer.add_scalar("lr", trainer.lr, step)

    def after_epoch(self, trainer, summary):
        if summary.get("val_acc") is not None:
            self.writer.add_scalar("val/acc", summary["val_acc"], trainer.state.epoch)

    def after_train(self, trainer, stopped):
        self.writer.close()


class ValidationHook(Hook):
    """``validate(epochs_done) -> (score or None, extra summary fields)`` every ``every`` epochs and
    after the last; the score goes into the epoch summary as ``val_acc``."""

    def __init__(self, validate: Callable[[int], tuple], every: int):
        self.validate, self.every = validate, int(every)

    def after_epoch(self, trainer, summary):
        done = trainer.state.epoch
        if self.every <= 0 or not (done % self.every == 0 or done == trainer.epochs):
            return
        score, extra = self.validate(done)
        summary.update(extra or {})
        if score is not None:
            summary["val_acc"] = score


class CheckpointHook(Hook):
    """``save(kind)`` writes one checkpoint (the engine's format). After every epoch: ``best`` when the
    epoch's ``val_acc`` improves on ``state.best_acc`` (``ties="later"``: an equal score also counts,
    the later checkpoint having trained longer; ``"earlier"``: strictly better only, as the reference),
    then ``last``, then ``epoch_NNNN`` every ``save_every`` epochs. When stopped in the middle of an
    epoch: ``last`` (resume continues inside the epoch)."""

    def __init__(self, save: Callable[[str], None], *, save_every: int = 0, ties: str = "later"):
        if ties not in ("later", "earlier"):
            raise ValueError(f"ties must be 'later' or 'earlier', got {ties!r}")
        self.save, self.save_every, self.ties = save, int(save_every), ties

    def after_epoch(self, trainer, summary):
        st = trainer.state
        acc = summary.get("val_acc")
        if acc is not None and math.isfinite(acc) and (
                acc > st.best_acc or (acc == st.best_acc and self.ties == "later")):
            st.best_acc = acc
            self.save("best")
        self.save("last")
        if self.save_every > 0 and st.epoch % self.save_every == 0:
            self.save(f"epoch_{st.epoch:04d}")

    def after_train(self, trainer, stopped):
        if stopped and trainer.stopped_mid_epoch:
            self.save("last")
