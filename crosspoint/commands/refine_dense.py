"""``crosspoint refine-dense``: fit a checkpoint's dense point-pixel heads on its frozen encoders."""

from __future__ import annotations

import sys

NAME = "refine-dense"
HELP = "fit the dense point-pixel heads on frozen encoders against the renderer's exact correspondences"
DESCRIPTION = """\
Fit the dense point-pixel heads of a checkpoint (the per-point and per-pixel embeddings behind "click a
point -> similarity over the image" and "click a pixel -> similarity over the points") on its frozen
encoders, against the exact correspondences of a demo's rendered views (the renderer's camera and the
mesh's depth buffer): crosspoint.analysis.dense_refine. The encoders are not changed, so every global
figure (SVM, retrieval, few-shot) stays what it was. Writes a copy of the checkpoint with the new heads.
--image-branch layer2+layer3 gives the heads their own copies of those ResNet stages, started from the
image encoder's and fitted with them (the shipped demo checkpoint's heads; +2.6M parameters).
--point-context pooled also gives the point head the object's pooled map (max and mean over its points)
beside each point's feature: a point's feature says where it is, not which way the object faces, so
mirror twins (a chair's left and right legs) look alike to it. Started from heads without it, the new
inputs get zero weights: the fit starts from exactly what the checkpoint's heads do.

  crosspoint refine-dense --checkpoint runs/demo/checkpoints/last.pt --data runs/demo-seed0 \\
      --out runs/demo-dense.pt
  crosspoint eval correspondence --checkpoint runs/demo-dense.pt --data runs/demo-seed1 --no-heat

Measure on objects the refinement did not see (another make-demo seed), as the second line does.
"""


def add_arguments(p) -> None:
    import argparse

    from crosspoint.analysis.dense_refine import RefineSettings
    from crosspoint.models.dense import IMAGE_BRANCHES, POINT_CONTEXTS

    d = RefineSettings()
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--checkpoint", required=True, help="a checkpoint of this project with both encoders")
    p.add_argument("--data", required=True, help="a demo dataset (crosspoint make-demo): meshes, views, cameras")
    p.add_argument("--out", required=True, help="the checkpoint to write (a copy with the new heads)")
    p.add_argument("--split", default="train", help="split of the demo to fit on (default train)")
    p.add_argument("--objects", type=int, default=360, help="objects (round-robin over classes; default 360)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps (default {d.steps})")
    p.add_argument("--batch", type=int, default=d.batch, help=f"views per step (default {d.batch})")
    p.add_argument("--points-per-view", type=int, default=d.points_per_view,
                   help=f"visible points per view and step (default {d.points_per_view})")
    p.add_argument("--candidates", type=int, default=d.candidates,
                   help=f"other points each pixel is compared with (default {d.candidates})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate, cosine decay (default {d.lr:g})")
    p.add_argument("--temperature", type=float, default=d.temperature, help=f"(default {d.temperature:g})")
    p.add_argument("--stride", type=int, choices=(4, 8), default=d.stride,
                   help=f"stride of the pixel embedding map (default {d.stride}; pretraining's heads: 8)")
    p.add_argument("--context", type=int, default=d.context,
                   help=f"3x3 layers in the image head (default {d.context}; pretraining's heads: 0)")
    p.add_argument("--hidden", type=int, default=d.hidden, help=f"(default {d.hidden})")
    p.add_argument("--dim", type=int, default=d.dim, help=f"embedding size (default {d.dim})")
    p.add_argument("--image-branch", choices=IMAGE_BRANCHES, default=d.image_branch,
                   help="give the heads their own copies of these ResNet stages, fitted with them (the image "
                        f"encoder is not touched; default {d.image_branch})")
    p.add_argument("--branch-lr", type=float, default=d.branch_lr,
                   help=f"Adam learning rate of the branch's stages (default {d.branch_lr:g})")
    p.add_argument("--point-context", choices=POINT_CONTEXTS, default=d.point_context,
                   help=f"what the point head sees beside a point's feature (default {d.point_context})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"(default {d.seed})")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N (feature extraction)")
    p.add_argument("--json", default=None, help="also write the record (settings, loss curve) here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from pathlib import Path

    from crosspoint.analysis import AnalysisError, ModelSession
    from crosspoint.analysis.dense_refine import (
        RefineSettings,
        demo_objects,
        read_refinable,
        refine_dense_heads,
        write_refined_checkpoint,
    )
    from crosspoint.atomic import atomic_write_text
    from crosspoint.data.base import DatasetError, resolve_root
    from crosspoint.models import CheckpointError

    st = RefineSettings(steps=args.steps, batch=args.batch, points_per_view=args.points_per_view,
                        candidates=args.candidates, lr=args.lr, temperature=args.temperature, stride=args.stride,
                        context=args.context, hidden=args.hidden, dim=args.dim, image_branch=args.image_branch,
                        branch_lr=args.branch_lr, point_context=args.point_context, seed=args.seed)
    if args.objects < 2:
        print("crosspoint refine-dense: --objects must be >= 2", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.resolve() == Path(args.checkpoint).resolve():
        print("crosspoint refine-dense: --out must not be the checkpoint itself (it writes a copy)", file=sys.stderr)
        return 2
    bar = {"b": None}

    def progress(done, total, text=""):
        if args.no_progress:
            return
        from tqdm import tqdm

        if bar["b"] is None or bar["b"].total != total:
            if bar["b"] is not None:
                bar["b"].close()
            bar["b"] = tqdm(total=total, file=sys.stderr, leave=False, disable=None)
        bar["b"].set_description(text.split(":")[0] if ":" in text else "fitting")
        bar["b"].update(done - bar["b"].n)

    try:
        read_refinable(args.checkpoint)  # before minutes of fitting, not after
        session = ModelSession(args.checkpoint, device=args.device)
        session.require_image_encoder()
        objs = demo_objects(resolve_root(args.data, "--data"), args.split, args.objects, view=None)
        heads, record = refine_dense_heads(session, objs, st, progress=progress)
        record.update(checkpoint=str(args.checkpoint), data=str(args.data), split=args.split)
        write_refined_checkpoint(args.checkpoint, heads, record, out)
    except (AnalysisError, CheckpointError, DatasetError) as exc:
        print(f"crosspoint refine-dense: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar["b"] is not None:
            bar["b"].close()
    c = record["curve"]
    print(f"dense heads fitted on {record['objects']} objects ({record['views_used']} views) of {args.data}, "
          f"started from {record['started_from']}: loss {c[0]['loss']:.3f} (first {c[0]['step']} steps) -> "
          f"{c[-1]['loss']:.3f}; {record['seconds']:.0f} s ({record['feature_seconds']:.0f} s features)")
    print(f"wrote {out}")
    if args.json:
        import json

        atomic_write_text(args.json, json.dumps(record, indent=1) + "\n")
    return 0
