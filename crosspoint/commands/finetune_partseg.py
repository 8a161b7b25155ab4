"""``crosspoint finetune-partseg``: fine-tune a pretrained encoder for part segmentation."""

from __future__ import annotations

import logging
import sys

NAME = "finetune-partseg"
HELP = "fine-tune a pretrained encoder for ShapeNetPart-style part segmentation"
DESCRIPTION = """\
Fine-tune for part segmentation as the reference does (DGCNN_partseg, k=40, 2048 points, SGD lr 0.1
momentum 0.9 wd 1e-4, cosine to 1e-3, label-smoothed cross-entropy eps 0.2, batch 8, 300 epochs),
but select the best epoch on the validation split and evaluate the test split once, at the end.

  crosspoint finetune-partseg --data data/shapenet_part_seg_hdf5_data \\
      --init dgcnn_partseg_best.pth --out runs/partseg
  crosspoint finetune-partseg --data demo --init runs/demo/checkpoints/best.pt \\
      --backbone frozen --epochs 20 --out runs/demo-seg        # head on a frozen DGCNN

The run folder gets config.yaml, events.jsonl, checkpoints/{last,best}.pt and results.json.
--init takes an official CrossPoint file (dgcnn_seg pretraining, or a fine-tuned model.t7), one of
our checkpoints, or "random" (no pretraining). A classification DGCNN (dgcnn) checkpoint gives the
light variant: the same head on the encoder's per-point features. Other settings: --set KEY=VALUE
with the sections of crosspoint.engine.finetune.FinetuneConfig, as `crosspoint pretrain` takes them
(e.g. --set data.augment=scale_shift --set optim.lr=0.05 --set run.save_every=50); the flat keys of
earlier versions (--set augment=scale_shift) still work.
"""


def add_arguments(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--data", required=True, help='dataset folder (ShapeNetPart HDF5 or txt, or a demo) or "demo"')
    p.add_argument("--init", required=True, help='pretrained checkpoint, or "random"')
    p.add_argument("--out", required=True, help="run folder (new)")
    p.add_argument("--backbone", choices=("finetune", "frozen"), default=None,
                   help="train the encoder too (default, the reference) or only the head")
    p.add_argument("--arch", choices=("auto", "dgcnn_partseg", "dgcnn"), default=None,
                   help="model (default: from --init; dgcnn_partseg for random)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 300)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default 8)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 0.1, SGD)")
    p.add_argument("--k", type=int, default=None, help="kNN size (default 40 for dgcnn_partseg, the checkpoint's for dgcnn)")
    p.add_argument("--points", type=int, default=None, help="points per shape (default 2048)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=None, help="seed (default 1)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader worker processes (default 0)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="any other setting of FinetuneConfig (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--print-config", action="store_true", help="print the resolved settings and exit")


def run(args) -> int:
    from crosspoint.config import ConfigError, apply_overrides, dump_config
    from crosspoint.engine.finetune import (
        FinetuneConfig,
        FinetuneError,
        finetune_partseg,
        nest_overrides,
        validate_config,
    )

    log = logging.getLogger("crosspoint")
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        cfg = FinetuneConfig()
        cfg.data.root, cfg.model.init = args.data, args.init
        flags = {"model.backbone": args.backbone, "model.arch": args.arch, "optim.epochs": args.epochs,
                 "optim.batch_size": args.batch_size, "optim.lr": args.lr, "model.k": args.k,
                 "data.num_points": args.points, "run.device": args.device, "run.seed": args.seed,
                 "data.workers": args.workers}
        for key, value in flags.items():
            if value is not None:
                sec, name = key.split(".")
                setattr(getattr(cfg, sec), name, value)
        if args.overrides:
            cfg = apply_overrides(cfg, nest_overrides(args.overrides))
        validate_config(cfg)
    except (ConfigError, FinetuneError) as exc:
        print(f"crosspoint finetune-partseg: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0

    from crosspoint.data.base import DatasetError
    from crosspoint.models import CheckpointError

    try:
        results = finetune_partseg(cfg, args.out, progress_bar=not args.no_progress)
    except (FinetuneError, DatasetError, CheckpointError, FloatingPointError) as exc:
        print(f"crosspoint finetune-partseg: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # device problems, out of memory
        print(f"crosspoint finetune-partseg: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    test = results.get("test")
    print(f"best epoch {results['best_epoch'] + 1} (selected on {cfg.data.val_split} by {cfg.run.select})")
    if test:
        print(f"test: instance mIoU {100 * test['instance_miou']:.2f}  class mIoU {100 * test['class_miou']:.2f}  "
              f"(all-part arg-max as the reference: {100 * test['instance_miou_unrestricted']:.2f} / "
              f"{100 * test['class_miou_unrestricted']:.2f})")
    print(f"run folder: {args.out}")
    return 0
