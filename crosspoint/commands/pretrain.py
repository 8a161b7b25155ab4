"""``crosspoint pretrain``: CrossPoint pretraining on one CPU, one GPU, or many with torchrun."""

from __future__ import annotations

import logging
import sys

NAME = "pretrain"
HELP = "pretrain a CrossPoint point + image encoder pair"
DESCRIPTION = """\
Pretrain CrossPoint (intra-modal + cross-modal NT-Xent) from a YAML config.

  crosspoint pretrain --config configs/cpu-demo.yaml --out runs/demo
  crosspoint pretrain --config configs/paper.yaml --set data.root=/data --out runs/paper
  torchrun --nproc_per_node=4 -m crosspoint pretrain --config configs/paper.yaml --out runs/paper
  crosspoint pretrain --out runs/demo --resume            # continue where last.pt left off

The run folder gets config.yaml, events.jsonl (read by the explorer's training monitor), log.txt
and checkpoints/{last,best,epoch_NNNN}.pt. SIGINT/SIGTERM finish the current step, write last.pt
and exit 0.
"""


def add_arguments(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--config", help="YAML config (configs/paper.yaml, configs/cpu-demo.yaml); optional with --resume")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=5e-4 (repeatable)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    p.add_argument("--init", help="start from pretrained weights (an official CrossPoint file or a checkpoint)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args) -> int:
    from crosspoint.config import ConfigError, dump_config, load_config

    log = logging.getLogger("crosspoint")
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        cfg = load_config(args.config) if args.config or not args.resume else None
        overrides = list(args.overrides)
        if cfg is not None and not args.resume:  # check overrides now (exit 2), not inside the run
            cfg = load_config(args.config, overrides) if args.config else load_config(None, overrides)
            overrides = []
        if args.print_config:
            if cfg is None:
                print("crosspoint pretrain: --print-config needs --config", file=sys.stderr)
                return 2
            print(dump_config(cfg), end="")
            return 0
    except ConfigError as exc:
        print(f"crosspoint pretrain: {exc}", file=sys.stderr)
        return 2

    from crosspoint.data.base import DatasetError
    from crosspoint.engine.checkpoint import CheckpointWriteError
    from crosspoint.engine.pretrain import PretrainError, pretrain
    from crosspoint.engine.runlock import RunLocked
    from crosspoint.models import CheckpointError

    try:
        return pretrain(cfg, args.out, resume=args.resume, init=args.init, progress_bar=not args.no_progress,
                        overrides=overrides)
    except (ConfigError, PretrainError, DatasetError, CheckpointError, FloatingPointError, RunLocked,
            CheckpointWriteError) as exc:
        print(f"crosspoint pretrain: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # device problems, out of memory
        print(f"crosspoint pretrain: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
