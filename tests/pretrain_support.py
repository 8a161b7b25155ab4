"""Shared pieces of the pretraining tests: the tiny settings, a tiny demo, the subprocess environment."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from crosspoint.engine.events import read_events

REPO = Path(__file__).resolve().parents[1]

#: a pretraining small enough for a test: 128 points, 32 px views, ResNet-18, batch 4, one thread
TINY = [
    "data.num_points=128", "data.image_size=32", "model.k=8", "model.image_encoder=resnet18",
    "optim.batch_size=4", "data.workers=0", "run.log_every=1", "data.val_fraction=0.25", "run.threads=1",
    "run.seed=3",
]


def sets(extra=()) -> list[str]:
    """``--set`` arguments for :data:`TINY` plus ``extra`` (later values win)."""
    out = []
    for kv in [*TINY, *extra]:
        out += ["--set", kv]
    return out


def make_tiny_demo(root: Path) -> Path:
    from crosspoint.data.synthetic import generate_demo

    generate_demo(root, seed=0, per_class=3, n_views=2, size=32, workers=0)
    return root


def env() -> dict:
    """The environment of a ``python -m crosspoint`` child: this checkout first, one OpenMP thread."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e["OMP_NUM_THREADS"] = "1"
    return e


def wait_for(path: Path, predicate, proc, timeout=180) -> bool:
    """Poll the run's events until ``predicate(events)`` holds; False if ``proc`` ended first."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if (Path(path) / "events.jsonl").exists() and predicate(read_events(path)):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def weights(path):
    """``({"p.<name>"/"i.<name>": tensor}, checkpoint)`` of a training checkpoint."""
    ck = torch.load(path, weights_only=True)
    return {**{f"p.{k}": v for k, v in ck["point_encoder"]["state_dict"].items()},
            **{f"i.{k}": v for k, v in ck["image_encoder"]["state_dict"].items()}}, ck
