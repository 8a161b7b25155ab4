"""``crosspoint eval {svm,fewshot,partseg,retrieval,correspondence}``: the paper's downstream protocols
and the 3D-2D correspondence figures."""

from __future__ import annotations

import json
import sys

NAME = "eval"
HELP = "evaluate a checkpoint: linear SVM, few-shot, part segmentation, cross-modal retrieval, 3D-2D correspondence"
DESCRIPTION = """\
Evaluate a checkpoint with one of CrossPoint's downstream protocols (frozen encoder unless noted).

  crosspoint eval svm --checkpoint best_model.pth --data data/modelnet40_ply_hdf5_2048
  crosspoint eval svm --checkpoint best_model.pth --data data/ScanObjectNN --variant OBJ_BG
  crosspoint eval fewshot --checkpoint best_model.pth --data data/modelnet40_ply_hdf5_2048 \\
      --ways 5,10 --shots 10,20 --runs 10
  crosspoint eval fewshot --protocol reference --checkpoint best_model.pth --data data/modelnet40_ply_hdf5_2048
  crosspoint eval partseg --checkpoint runs/partseg/checkpoints/best.pt --data data/shapenet_part_seg_hdf5_data
  crosspoint eval retrieval --checkpoint runs/demo/checkpoints/best.pt --data demo
  crosspoint eval correspondence --checkpoint assets/demo_checkpoint.pt --data /tmp/d1 --json corr.json

--checkpoint takes an official CrossPoint file, one of our checkpoints, or "random" (a seeded,
randomly initialised encoder: the baseline). --json FILE writes the results as JSON. Run
`crosspoint eval COMMAND --help` for each protocol's options.
"""

_COMMON_HELP = {
    "checkpoint": 'checkpoint file (official CrossPoint file or ours), or "random"',
    "data": 'dataset folder (or its parent), or "demo" for the embedded demo dataset',
}


def _add_common(p, *, points: int, batch: int) -> None:
    p.add_argument("--checkpoint", required=True, help=_COMMON_HELP["checkpoint"])
    p.add_argument("--data", required=True, help=_COMMON_HELP["data"])
    p.add_argument("--points", type=int, default=points, help=f"points per object: the first N of each cloud (default {points})")
    p.add_argument("--k", type=int, default=None,
                   help="kNN size of the DGCNN (default: the k the checkpoint was trained with, 15 for official "
                        "files; 20 for random)")
    p.add_argument("--arch", default="dgcnn", choices=("dgcnn", "dgcnn_partseg", "pointnet"),
                   help="encoder of --checkpoint random (default dgcnn)")
    p.add_argument("--seed", type=int, default=0, help="seed: random encoder, CV folds, episodes (default 0)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, default=batch, help=f"batch size for the encoder (default {batch})")
    p.add_argument("--no-amp", action="store_true", help="float32 on CUDA too (default: bf16 autocast on CUDA)")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_classification(p) -> None:
    p.add_argument("--dataset", default="auto", choices=("auto", "modelnet40", "scanobjectnn", "shapenet_render"),
                   help="which dataset layout to use under --data (default: detect)")
    p.add_argument("--variant", default="OBJ_BG", choices=("OBJ_BG", "OBJ_ONLY", "PB_T50_RS"),
                   help="ScanObjectNN variant (default OBJ_BG, the reference's main_split)")
    _add_heldout_split(p, "shapenet_render/demo only: held-out fraction used as the test split")


def _add_heldout_split(p, what: str) -> None:
    """``--val-fraction`` / ``--split-seed``: the held-out split of a ShapeNetRender/demo dataset."""
    p.add_argument("--val-fraction", type=float, default=0.1, help=f"{what} (default 0.1, as pretraining)")
    p.add_argument("--split-seed", type=int, default=1, help="seed of the held-out split (default 1, as pretraining)")


def add_arguments(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = p.add_subparsers(dest="eval_command", metavar="PROTOCOL")
    raw = argparse.RawDescriptionHelpFormatter

    s = sub.add_parser("svm", help="linear SVM on frozen features (fixed C and C by cross-validation)",
                       formatter_class=raw, description=(
                           "Fit a linear SVM on the training split's frozen features and report test accuracy at the\n"
                           "reference's fixed C (0.01, 0.1) and at C chosen by k-fold cross-validation on the\n"
                           "training split only. Overall and mean class accuracy.\n\n"
                           "The fixed C values use raw features, as the reference. C by CV is reported on standardised\n"
                           "features (StandardScaler fitted on training rows only), which does not depend on the\n"
                           "encoder's feature scale, and on raw features (--cv-features both, the default): a\n"
                           "random-weight encoder's features are ~50x smaller than a trained one's, and on raw\n"
                           "features the grid stops short of the C they need (the raw result says so: at_grid_edge)."))
    _add_common(s, points=1024, batch=64)
    _add_classification(s)
    s.add_argument("--c-grid", default="0.001,0.003,0.01,0.03,0.1,0.3,1,3,10", help="CV grid of C (comma-separated)")
    s.add_argument("--fixed-c", default="0.01,0.1", help="fixed C values to report (default 0.01,0.1)")
    s.add_argument("--cv-folds", type=int, default=5, help="cross-validation folds (default 5)")
    s.add_argument("--no-cv", action="store_true", help="only the fixed C values")
    s.add_argument("--labels-per-class", default=None, metavar="N,N,...",
                   help="also fit on only N labelled training objects per class (standardised, --label-c, "
                        "--label-repeats seeded draws) and score the test split: label efficiency, e.g. 1,2,4,8,16")
    s.add_argument("--label-repeats", type=int, default=10, help="draws per N of --labels-per-class (default 10)")
    s.add_argument("--label-c", type=float, default=1.0, help="C of the --labels-per-class fits (default 1)")
    s.add_argument("--cv-features", default="both", choices=("both", "standardised", "raw"),
                   help="features the CV runs on: both (default; 'cv' = standardised, 'cv_raw' = raw), or one of them")
    s.add_argument("--solver", default="auto", choices=("auto", "precomputed", "linear"),
                   help="libsvm on a precomputed Gram matrix (fast, same result) or kernel='linear' (default auto)")
    s.set_defaults(_eval=_run_svm)

    f = sub.add_parser("fewshot", help="N-way K-shot episodes: standardised features + linear SVM",
                       formatter_class=raw, description=(
                           "N-way K-shot classification as the reference: support and queries drawn from the training\n"
                           "split (disjoint), StandardScaler on the support set, linear SVC; mean +- std over --runs.\n"
                           "Seeded. --query-split test draws the queries from the test split instead.\n\n"
                           "--protocol reference is the reference script (eval_fewshot.py via scripts/fsl_script.sh):\n"
                           "DGCNN k = 5 (its argparse default, whatever k the checkpoint was trained with), 50 runs,\n"
                           "20 queries per class from the training split, C = 1, float32. Flags given explicitly\n"
                           "(--k, --runs, --queries, --query-split, --C, --no-amp) override the preset."))
    _add_common(f, points=2048, batch=64)
    _add_classification(f)
    f.add_argument("--ways", default="5,10", help="comma-separated N (default 5,10)")
    f.add_argument("--shots", default="10,20", help="comma-separated K (default 10,20)")
    f.add_argument("--protocol", default="default", choices=("default", "reference"),
                   help="preset: default (the checkpoint's k, 10 runs) or reference (k 5, 50 runs, float32)")
    f.add_argument("--queries", type=int, default=None, help="queries per class (default 20, both presets)")
    f.add_argument("--runs", type=int, default=None, help="episodes per setting (default 10; reference 50)")
    f.add_argument("--query-split", default=None, choices=("train", "test"),
                   help="where queries come from (default train, the reference's protocol)")
    f.add_argument("--C", dest="svm_c", type=float, default=None,
                   help="SVM C (default 1.0, sklearn's default as the reference)")
    f.set_defaults(_eval=_run_fewshot)

    g = sub.add_parser("partseg", help="instance and class mIoU of a fine-tuned part segmenter",
                       formatter_class=raw, description=(
                           "Run a part segmenter (a fine-tuned official model.t7 or a checkpoint of\n"
                           "`crosspoint finetune-partseg`) over a split and report instance and class mIoU, with the\n"
                           "arg-max restricted to each shape's category (and over all parts, as the reference)."))
    _add_common(g, points=2048, batch=16)
    g.add_argument("--split", default="test", choices=("test", "val", "train"), help="split to evaluate (default test)")
    g.set_defaults(_eval=_run_partseg)

    r = sub.add_parser("retrieval", help="cross-modal top-1/top-5: point cloud -> its rendered view and back",
                       formatter_class=raw, description=(
                           "Embed each object's points and one fixed rendered view (projection heads, L2-normalised)\n"
                           "and report top-1/top-5 retrieval both ways, with chance level. Needs a dataset with views\n"
                           "(ShapeNetRender layout or the demo) and a checkpoint with an image encoder."))
    _add_common(r, points=2048, batch=32)
    r.add_argument("--image-checkpoint", help="image encoder file when it is separate (official img_model_best.pth)")
    r.add_argument("--image-arch", default="resnet50", choices=("resnet18", "resnet34", "resnet50", "resnet101"),
                   help="ResNet of an official image file or of --checkpoint random (default resnet50)")
    r.add_argument("--split", default="val", choices=("val", "train", "all"),
                   help="objects to use (default val: the split pretraining held out)")
    _add_heldout_split(r, "held-out fraction")
    r.add_argument("--view", type=int, default=0, help="index of the view used per object (default 0)")
    r.add_argument("--image-size", type=int, default=224, help="image size (default 224)")
    r.add_argument("--background", default=None, choices=("drop", "white", "black"),
                   help="what the views' transparent pixels become (default: as the image encoder was trained: "
                        "the checkpoint's data.background, white for checkpoints saved before that setting, "
                        "drop for official files and random encoders)")
    r.set_defaults(_eval=_run_retrieval)

    c = sub.add_parser("correspondence", help="3D-2D correspondence: point <-> pixel, part occlusion, Grad-CAM readouts",
                       formatter_class=raw, description=(
                           "Measure what a checkpoint says about point <-> pixel correspondence on the objects of a\n"
                           "demo dataset (`crosspoint make-demo`: meshes, labelled parts, rendered views with their\n"
                           "cameras), against the exact geometry (the renderer's camera and depth buffer):\n"
                           "  point -> pixel hit rate: for each visible point, the arg-max over the object's pixels of\n"
                           "    its dense similarity map lands within 8 px (at 224 px) of its true projection (chance:\n"
                           "    an arg-max drawn uniformly from the object's pixels);\n"
                           "  pixel -> points AUC: for object pixels, the dense similarity ranks the visible points\n"
                           "    projecting within 8 px (at 224) above the others;\n"
                           "  part importance: the similarity drop when each labelled part is removed from the cloud\n"
                           "    and when its pixels are masked in the view, the agreement of the most important part\n"
                           "    between the two sides, and the same-size random-set / random-blob baselines;\n"
                           "  Grad-CAM readouts: deletion against a random contiguous blob, specificity against\n"
                           "    another object's image, Spearman of point heat vs image heat at the visible points.\n"
                           "The dense similarity is analysis.dense_similarity: the checkpoint's dense heads when it\n"
                           "has them, else the projection heads per point and per feature-map cell.\n"
                           "--checkpoint random: a seeded random DGCNN + --image-arch, the baseline."))
    c.add_argument("--checkpoint", required=True, help='a CrossPoint Explorer bundle with an image encoder, or "random"')
    c.add_argument("--data", required=True, help='a demo dataset folder (crosspoint make-demo), or "demo"')
    c.add_argument("--objects", type=int, default=24, help="objects to measure, taken round-robin over the classes "
                                                          "(default 24)")
    c.add_argument("--split", default="all", choices=("all", "train", "val", "test"),
                   help="the demo split the objects come from (default all: use a demo of another seed than the "
                        "checkpoint's)")
    c.add_argument("--view", type=int, default=0, help="index of the rendered view per object (default 0)")
    c.add_argument("--points", type=int, default=None, help="points the model sees (default: the checkpoint's)")
    c.add_argument("--occlusion-mode", default="repool", choices=("repool", "replace", "drop"),
                   help="how a part is removed from the cloud: repool (default; the per-point map pooled without it),"
                        " replace (re-encoded, its points replaced by their nearest kept point) or drop")
    c.add_argument("--random-draws", type=int, default=2, help="draws of each random baseline (default 2)")
    c.add_argument("--pixels", type=int, default=48, help="object pixels per view for the AUC (default 48)")
    c.add_argument("--no-heat", action="store_true", help="skip the Grad-CAM readouts (faster)")
    c.add_argument("--no-symmetry", action="store_true",
                   help="skip the objects' symmetries (the hit rate up to them and its ceiling)")
    c.add_argument("--image-arch", default="resnet18", choices=("resnet18", "resnet34", "resnet50"),
                   help="image encoder of --checkpoint random (default resnet18, the demo checkpoint's)")
    c.add_argument("--image-size", type=int, default=None, help="image size of --checkpoint random (default 128)")
    c.add_argument("--k", type=int, default=None, help="kNN size of the DGCNN (default: the checkpoint's; 20 for random)")
    c.add_argument("--seed", type=int, default=0, help="seed: random baselines, random weights (default 0)")
    c.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    c.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    c.set_defaults(_eval=_run_correspondence, batch_size=1)


# ------------------------------------------------------------------------------ helpers
class UsageError(ValueError):
    pass


def _floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if not vals or any(v <= 0 for v in vals):
        raise UsageError(f"{what}: expected positive numbers, got {text!r}")
    return vals


def _ints(text: str, what: str) -> list[int]:
    vals = _floats(text, what)
    if any(v != int(v) for v in vals):
        raise UsageError(f"{what}: expected whole numbers, got {text!r}")
    return [int(v) for v in vals]


def _progress(args, desc: str):
    """A ``progress(done, total)`` callback drawing a tqdm bar on stderr (or None)."""
    if args.no_progress:
        return None, lambda: None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None, lambda: None
    state = {"bar": None}

    def cb(done, total):
        if state["bar"] is None:
            state["bar"] = tqdm(total=total, desc=desc, unit="obj", file=sys.stderr, disable=None, leave=False)
        state["bar"].update(done - state["bar"].n)

    def close():
        if state["bar"] is not None:
            state["bar"].close()

    return cb, close


def _resolve_data(path: str):
    from crosspoint.data.base import resolve_root

    return resolve_root(path, "--data")


def _encoder(args):
    from crosspoint.evaluation.features import build_eval_encoder

    return build_eval_encoder(args.checkpoint, arch=args.arch, k=args.k, seed=args.seed, device=args.device)


def _background(args) -> "tuple[str, str]":
    """``(background, where it came from)`` for the views of ``eval retrieval``: ``--background``,
    else the one the image encoder was trained with (:func:`crosspoint.models.checkpoint_background`),
    "drop" (the reference's and the config's default) for a random encoder."""
    from crosspoint.models import checkpoint_background

    if args.background is not None:
        return args.background, "argument"
    if args.checkpoint == "random" and not args.image_checkpoint:
        return "drop", "default"
    return checkpoint_background(args.image_checkpoint or args.checkpoint)


def _classification_data(args):
    """``(train dataset, test dataset, info)`` for the SVM / few-shot protocols."""
    from crosspoint.data.base import DatasetError
    from crosspoint.data.layouts import detect_layout

    root = _resolve_data(args.data)
    wanted = {"modelnet40": "modelnet40_h5", "scanobjectnn": "scanobjectnn_h5"}.get(args.dataset)
    if args.dataset == "shapenet_render":
        try:
            layout = detect_layout(root, layout="crosspoint_demo")
        except DatasetError:
            layout = detect_layout(root, layout="shapenet_render")
    else:
        layout = detect_layout(root, task="classification", layout=wanted)
    info = {"layout": layout.name, "root": str(layout.root), "points": args.points}
    if layout.name == "modelnet40_h5":
        from crosspoint.data.h5data import ModelNet40H5

        tr = ModelNet40H5(layout.root, "train", args.points)
        te = ModelNet40H5(layout.root, "test", args.points)
        info.update(dataset="modelnet40", train_split="train", test_split="test")
    elif layout.name == "scanobjectnn_h5":
        from crosspoint.data.h5data import ScanObjectNNH5

        tr = ScanObjectNNH5(layout.root, args.variant, "train", args.points)
        te = ScanObjectNNH5(layout.root, args.variant, "test", args.points)
        info.update(dataset="scanobjectnn", variant=args.variant, train_split="train", test_split="test")
    elif layout.name in ("crosspoint_demo", "shapenet_render"):
        from crosspoint.data.shapenet_render import ShapeNetRenderClassification

        tr = ShapeNetRenderClassification(layout.root, "train", args.points, args.val_fraction, args.split_seed)
        te = ShapeNetRenderClassification(layout.root, "val", args.points, args.val_fraction, args.split_seed)
        if len(te) == 0:
            raise DatasetError(f"{layout.root}: the held-out split is empty (raise --val-fraction)")
        info.update(dataset=layout.name, train_split="train (held-out split)", test_split="val (held-out split)",
                    val_fraction=args.val_fraction, split_seed=args.split_seed,
                    note="not a paper protocol: ShapeNetRender objects with a held-out split")
    else:
        raise DatasetError(f"{root}: {layout.name} has no train/test split for this protocol "
                           "(use ModelNet40 or ScanObjectNN HDF5, or a ShapeNetRender/demo dataset)")
    return tr, te, info


def _features(args, encoder, ds, desc: str):
    import numpy as np

    from crosspoint.evaluation.features import dataset_labels, extract_features

    cb, close = _progress(args, desc)
    try:
        x = extract_features(encoder, ds, batch_size=args.batch_size, num_points=args.points, amp=not args.no_amp,
                             progress=cb)
    finally:
        close()
    return x, np.asarray(dataset_labels(ds))


def _header(args, info: dict, encoder=None) -> dict:
    out = {"checkpoint": args.checkpoint, "data": args.data, **info}
    if encoder is not None:
        out.update(encoder=getattr(encoder, "arch", type(encoder).__name__), k=getattr(encoder, "k", None),
                   k_source=getattr(encoder, "k_source", None))
    return out


def _write_json(args, payload: dict) -> None:
    if not args.json:
        return
    from pathlib import Path

    p = Path(args.json)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(payload, indent=1, default=_jsonable) + "\n", encoding="utf-8")
    print(f"results written to {p}")


def _jsonable(v):
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def _pct(v) -> str:
    return "   n/a" if v is None or v != v else f"{100 * v:6.2f}"


# ------------------------------------------------------------------------------ protocols
def _run_svm(args) -> int:
    import time

    from crosspoint.evaluation.svm import svm_protocol

    fixed = _floats(args.fixed_c, "--fixed-c")
    grid = _floats(args.c_grid, "--c-grid")
    if args.cv_folds < 2:
        raise UsageError("--cv-folds must be >= 2")
    sizes = _ints(args.labels_per_class, "--labels-per-class") if args.labels_per_class else []
    if sizes and (min(sizes) < 1 or args.label_repeats < 1):
        raise UsageError("--labels-per-class values and --label-repeats must be >= 1")
    tr, te, info = _classification_data(args)
    if sizes:  # an impossible N fails now, not after a minute of features
        import numpy as np

        from crosspoint.evaluation.features import dataset_labels

        labels, counts = np.unique(np.asarray(dataset_labels(tr)), return_counts=True)
        if max(sizes) > counts.min():
            raise UsageError(f"--labels-per-class {max(sizes)}: class {labels[counts.argmin()]} has only "
                             f"{counts.min()} training objects")
    enc = _encoder(args)
    t0 = time.perf_counter()
    xtr, ytr = _features(args, enc, tr, "train features")
    xte, yte = _features(args, enc, te, "test features")
    t_feat = time.perf_counter() - t0
    cb, close = _progress(args, "SVM")
    try:
        res = svm_protocol(xtr, ytr, xte, yte, fixed_c=fixed, cv=not args.no_cv, cv_grid=grid, cv_folds=args.cv_folds,
                           cv_features=args.cv_features, seed=args.seed, solver=args.solver,
                           progress=(lambda stage, d, t: cb(d, t)) if cb is not None else None)
    finally:
        close()
    if sizes:
        from crosspoint.evaluation.svm import label_efficiency

        cb, close = _progress(args, "label efficiency")
        try:
            res["label_efficiency"] = label_efficiency(xtr, ytr, xte, yte, per_class=sizes, repeats=args.label_repeats,
                                                       C=args.label_c, seed=args.seed, progress=cb)
        except ValueError as exc:
            raise UsageError(f"--labels-per-class: {exc}") from None
        finally:
            close()
    res["seconds"] = {"features": t_feat, "svm": time.perf_counter() - t0 - t_feat}
    head = _header(args, info, enc)
    print(f"linear SVM on {info['dataset']}{' ' + info['variant'] if 'variant' in info else ''}: "
          f"train {res['n_train']} / test {res['n_test']} objects, {info['points']} points, "
          f"{res['feature_dim']}-d features, {res['num_classes']} classes")
    print(f"  {'C':<28}{'overall acc':>12}{'mean class acc':>16}")
    for r in res["fixed"]:
        print(f"  {r['C']:<10g} (fixed, raw){'':6}{_pct(r['overall_acc']):>12}{_pct(r['mean_class_acc']):>16}")
    for key in ("cv", "cv_raw"):
        r = res.get(key)
        if r is None:
            continue
        label = f"{r['C']:g} ({r['folds']}-fold CV, {'std.' if r['features'] == 'standardised' else 'raw'})"
        edge = f"  <- the grid's {r['at_grid_edge']}: widen --c-grid" if r["at_grid_edge"] else ""
        print(f"  {label:<28}{_pct(r['overall_acc']):>12}{_pct(r['mean_class_acc']):>16}{edge}")
    for r in res.get("label_efficiency", []):
        label = f"{r['per_class']} per class (std., C = {r['C']:g})"
        print(f"  {label:<28}{_pct(r['mean']):>12} ± {100 * r['std']:.1f} over {r['repeats']} draws")
    _write_json(args, {"protocol": "svm", **head, "results": res})
    return 0


def _run_fewshot(args) -> int:
    from crosspoint.evaluation.fewshot import check_settings, fewshot_grid, protocol_settings

    ways = _ints(args.ways, "--ways")
    shots = _ints(args.shots, "--shots")
    st = protocol_settings(args.protocol, k=args.k, runs=args.runs, n_query=args.queries,
                           query_split=args.query_split, C=args.svm_c, amp=False if args.no_amp else None)
    if st["runs"] < 1 or st["n_query"] < 1:
        raise UsageError("--runs and --queries must be >= 1")
    explicit_k = args.k is not None
    args.k = st["k"]  # the encoder is built with the preset's k (None: the one the checkpoint was trained with)
    args.no_amp = not st["amp"]
    tr, te, info = _classification_data(args)
    enc = _encoder(args)
    # an impossible setting fails now, not after a minute of features
    check_settings(tr.labels, ways=ways, shots=shots, n_query=st["n_query"], query_split=st["query_split"],
                   test_y=te.labels if st["query_split"] == "test" else None)
    if st["k"] is not None and not explicit_k and getattr(enc, "k", None) is not None:
        enc.k_source = f"{args.protocol} protocol"
    xtr, ytr = _features(args, enc, tr, "train features")
    xte = yte = None
    if st["query_split"] == "test":
        xte, yte = _features(args, enc, te, "test features")
    cb, close = _progress(args, "episodes")
    try:
        res = fewshot_grid(xtr, ytr, ways=ways, shots=shots, n_query=st["n_query"], runs=st["runs"], seed=args.seed,
                           test_x=xte, test_y=yte, query_split=st["query_split"], C=st["C"], progress=cb)
    finally:
        close()
    k_text = f", k = {enc.k}" if getattr(enc, "k", None) is not None else ""
    print(f"few-shot on {info['dataset']}{' ' + info['variant'] if 'variant' in info else ''} ({args.protocol} "
          f"protocol{k_text}): {st['runs']} runs, {st['n_query']} queries per class from the {st['query_split']} "
          f"split, seed {args.seed}, {info['points']} points")
    print(f"  {'setting':<18}{'accuracy (%)':>16}")
    for r in res:
        print(f"  {str(r['n_way']) + '-way ' + str(r['k_shot']) + '-shot':<18}{r['mean']:>9.1f} ± {r['std']:.1f}")
    settings = {key: st[key] for key in ("runs", "n_query", "query_split", "C", "amp", "overridden")}
    _write_json(args, {"protocol": "fewshot", "fewshot_protocol": args.protocol, "settings": settings,
                       **_header(args, info, enc), "results": res})
    return 0


def _run_partseg(args) -> int:
    from crosspoint.data.base import DatasetError
    from crosspoint.engine.finetune import open_partseg_dataset
    from crosspoint.evaluation.partseg import checkpoint_part_table, evaluate_segmenter, load_segmenter
    from crosspoint.models import CheckpointError

    if args.checkpoint == "random":
        raise UsageError("eval partseg needs a fine-tuned segmenter (crosspoint finetune-partseg writes one); "
                         "a random segmenter is not a meaningful baseline here")
    root = _resolve_data(args.data)
    ds = open_partseg_dataset(root, args.split, args.points, seed=args.seed)
    table = ds.table
    model = load_segmenter(args.checkpoint, k=args.k, device=args.device)
    head = model.head
    if head.num_parts < table.num_parts or head.num_categories != table.num_categories:
        raise CheckpointError(f"{args.checkpoint}: segments {head.num_categories} categories into {head.num_parts} "
                              f"parts, the dataset has {table.num_categories} categories and {table.num_parts} parts")
    saved = checkpoint_part_table(args.checkpoint)
    if saved is not None and list(saved.category_names) != list(table.category_names):
        raise DatasetError(f"{args.checkpoint} was trained on categories {', '.join(saved.category_names)}; "
                           f"{root} has {', '.join(table.category_names)}")
    cb, close = _progress(args, f"{args.split} shapes")
    try:
        m = evaluate_segmenter(model, ds, table, batch_size=args.batch_size, amp=not args.no_amp, progress=cb)
    finally:
        close()
    print(f"part segmentation on {root} ({args.split}: {m['shapes']} shapes, {table.num_categories} categories, "
          f"{args.points} points, k={model.k})")
    print(f"  instance mIoU {_pct(m['instance_miou']).strip()}   class mIoU {_pct(m['class_miou']).strip()}   "
          f"point accuracy {_pct(m['point_acc']).strip()}")
    print(f"  arg-max over all parts (the reference's): instance {_pct(m['instance_miou_unrestricted']).strip()}   "
          f"class {_pct(m['class_miou_unrestricted']).strip()}")
    width = max(len(n) for n in m["per_category"])
    for name, v in m["per_category"].items():
        print(f"    {name:<{width}}  {_pct(v['miou'])}  ({v['shapes']} shapes)")
    info = {"split": args.split, "points": args.points, "k": model.k, "layout_root": str(getattr(ds, "root", root))}
    _write_json(args, {"protocol": "partseg", "checkpoint": args.checkpoint, "data": args.data, **info, "results": m})
    return 0


def _run_retrieval(args) -> int:
    from crosspoint.data.base import DatasetError
    from crosspoint.data.layouts import detect_layout
    from crosspoint.data.shapenet_render import ShapeNetRenderClassification, ShapeNetRenderDataset
    from crosspoint.evaluation.features import extract_features, extract_image_features
    from crosspoint.evaluation.retrieval import retrieval_scores
    from crosspoint.models import build_image_encoder, load_image_encoder

    if args.view < 0:
        raise UsageError("--view must be >= 0")
    root = _resolve_data(args.data)
    try:
        layout = detect_layout(root, layout="crosspoint_demo")
    except DatasetError:
        layout = detect_layout(root, layout="shapenet_render")
    split = None if args.split == "all" else args.split
    pts_ds = ShapeNetRenderClassification(layout.root, split, args.points, args.val_fraction, args.split_seed)
    view_ds = ShapeNetRenderDataset(layout.root, args.points, args.image_size, split=split,
                                    val_fraction=args.val_fraction, seed=args.split_seed, check_sample=0)
    if [o.ref for o in pts_ds.objects()] != [o.ref for o in view_ds.objects()]:  # pragma: no cover - same index
        raise DatasetError(f"{layout.root}: point and view listings disagree")
    views = []
    for i in range(len(view_ds)):
        paths = sorted(view_ds.view_paths(i), key=lambda p: str(p))
        if not paths:
            raise DatasetError(f"{pts_ds.objects()[i].ref}: no rendered views")
        views.append(paths[min(args.view, len(paths) - 1)])
    if len(views) < 2:
        raise DatasetError(f"{layout.root}: {len(views)} object(s) in the {args.split} split; retrieval needs 2 or more")
    enc = _encoder(args)
    if args.checkpoint == "random":
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed + 1)
            img = build_image_encoder(args.image_arch)
        img.eval()
    else:
        img = load_image_encoder(args.image_checkpoint or args.checkpoint, arch=args.image_arch)
    background, background_source = _background(args)
    from crosspoint.device import resolve_device

    img.to(resolve_device(args.device))
    cb, close = _progress(args, "points")
    try:
        p = extract_features(enc, pts_ds, kind="projection", batch_size=args.batch_size, num_points=args.points,
                             normalize=True, amp=not args.no_amp, progress=cb)
    finally:
        close()
    cb, close = _progress(args, "views")
    try:
        q = extract_image_features(img, views, batch_size=args.batch_size, image_size=args.image_size,
                                   background=background, normalize=True, amp=not args.no_amp, progress=cb)
    finally:
        close()
    res = retrieval_scores(p, q, ks=(1, 5))
    print(f"cross-modal retrieval on {layout.root} ({args.split}: {res['n']} objects, view {args.view}, "
          f"{args.points} points, background {background} ({background_source}))")
    print(f"  {'':<16}{'top-1':>8}{'top-5':>8}{'median rank':>13}")
    for key, label in (("point_to_image", "point -> image"), ("image_to_point", "image -> point")):
        r = res[key]
        print(f"  {label:<16}{_pct(r['top1']):>8}{_pct(r['top5']):>8}{r['median_rank']:>13.1f}")
    print(f"  {'chance':<16}{_pct(res['chance']['top1']):>8}{_pct(res['chance']['top5']):>8}{(res['n'] + 1) / 2:>13.1f}")
    info = {"layout": layout.name, "root": str(layout.root), "split": args.split, "view": args.view,
            "points": args.points, "background": background, "background_source": background_source,
            "objects": [o.name for o in pts_ds.objects()]}
    _write_json(args, {"protocol": "retrieval", **_header(args, info, enc), "results": res})
    return 0


def _no_nan(v):
    """``v`` with every NaN float replaced by None (strict JSON), recursively."""
    import numpy as np

    if isinstance(v, dict):
        return {k: _no_nan(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_no_nan(x) for x in v]
    if isinstance(v, np.ndarray):
        return _no_nan(v.tolist())
    if isinstance(v, (float, np.floating)):
        return None if v != v else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _random_session(args, tmp):
    """A :class:`~crosspoint.analysis.ModelSession` on a seeded random DGCNN + image encoder."""
    import torch

    from crosspoint.analysis import ModelSession
    from crosspoint.models import build_image_encoder, build_point_encoder
    from crosspoint.models.checkpoint import save_model_bundle

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        pe = build_point_encoder("dgcnn", k=20 if args.k is None else args.k)
        torch.manual_seed(args.seed + 1)
        ie = build_image_encoder(args.image_arch)
    path = tmp / "random.pt"
    save_model_bundle(path, point_encoder=pe, image_encoder=ie,
                      meta={"num_points": args.points or 1024, "image_size": args.image_size or 128,
                            "run": f"random weights (seed {args.seed})"})
    return ModelSession(path, device=args.device, k=args.k)


def _run_correspondence(args) -> int:
    import tempfile
    from pathlib import Path

    from crosspoint.analysis import AnalysisError, ModelSession
    from crosspoint.analysis.correspondence import EVAL_SIZE, HIT_RADIUS_PX, evaluate_views
    from crosspoint.analysis.dense_refine import demo_objects

    if args.objects < 2:
        raise UsageError("--objects must be >= 2")
    if args.view < 0 or args.random_draws < 0 or args.pixels < 1:
        raise UsageError("--view and --random-draws must be >= 0, --pixels >= 1")
    root = _resolve_data(args.data)
    objs = demo_objects(Path(root), args.split, args.objects, args.view)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            session = (_random_session(args, Path(tmp)) if args.checkpoint == "random"
                       else ModelSession(args.checkpoint, device=args.device, k=args.k))
            session.require_image_encoder()
        except AnalysisError as exc:
            raise UsageError(str(exc)) from None
        cb, close = _progress(args, "objects")
        try:
            res = evaluate_views(session, objs, n_pixels=args.pixels, n_random=args.random_draws,
                                 occlusion_mode=args.occlusion_mode, heat=not args.no_heat, n_points=args.points,
                                 symmetry=not args.no_symmetry,
                                 seed=args.seed,
                                 progress=(lambda d, t, _txt="": cb(d, t)) if cb is not None else None)
        finally:
            close()
        info = session.info()
    sm = res["summary"]
    dense = "dense heads" if getattr(session, "dense_heads", None) is not None else \
        "projection heads per point and per feature-map cell (a model trained on global embeddings only)"
    print(f"3D-2D correspondence on {root} ({sm['objects']} objects, view {args.view}, {info['n_points']} points, "
          f"{info['image_arch']} at {info['image_size']} px); dense similarity: {dense}")
    print(f"  point -> pixel hit (arg-max within {HIT_RADIUS_PX:g} px at {EVAL_SIZE}, {sm['points_tested']} visible "
          f"points)  {_pct(sm['point_to_pixel_hit'])}   chance {_pct(sm['point_to_pixel_hit_chance']).strip()}")
    print(f"  {'... within ' + format(2 * HIT_RADIUS_PX, 'g') + ' px':<51}{_pct(sm['point_to_pixel_hit_2r'])}   "
          f"chance {_pct(sm['point_to_pixel_hit_2r_chance']).strip()}")
    if sm.get("misses_on_own_part") == sm.get("misses_on_own_part"):  # not NaN: the objects have part labels
        print(f"  {'misses on the own part (a symmetric twin)':<51}{_pct(sm['misses_on_own_part'])}   "
              f"chance {_pct(sm['misses_on_own_part_chance']).strip()}")
    if sm.get("point_to_pixel_hit_sym") == sm.get("point_to_pixel_hit_sym"):  # not NaN: the objects have meshes
        print(f"  {'... up to the object' + chr(39) + 's rotational symmetries':<51}{_pct(sm['point_to_pixel_hit_sym'])}   "
              f"({_pct(sm['rotation_symmetric_objects']).strip()} % of the objects have one)")
        print(f"  {'ceiling: the same view from a rotated camera':<51}{_pct(sm['point_to_pixel_hit_ceiling'])}")
        print(f"  {'... counting mirror twins as hits (diagnostic)':<51}{_pct(sm['point_to_pixel_hit_twin'])}")
    print(f"  true cell ranks first{'':30}{_pct(sm['cell_top1'])}   chance {_pct(sm['cell_top1_chance']).strip()}")
    print(f"  pixel -> points AUC ({sm['pixels_tested']} pixels){'':25}{sm['pixel_to_point_auc']:7.3f}   chance 0.500")
    print(f"  most important part, 3D = 2D ({sm['part_agreement_objects']} objects){'':11}"
          f"{_pct(sm['part_agreement'])}   chance {_pct(sm['part_agreement_chance']).strip()}")
    print(f"  similarity drop per part ({args.occlusion_mode}):   part   random set   random blob   part > blob")
    for side, label in (("3d", "removed from the cloud"), ("2d", "masked in the view")):
        print(f"    {label:<28}{sm[f'part_drop_{side}']:7.3f}{sm[f'part_random_{side}']:13.3f}"
              f"{sm[f'part_blob_{side}']:14.3f}{_pct(sm[f'part_beats_blob_{side}']):>13}")
    if "heat_top_drop" in sm:
        print("  Grad-CAM (what drives the object-view similarity), deletion of 20 % of the points:")
        print(f"    hottest {sm['heat_top_drop']:.3f}   random blob {sm['heat_blob_drop']:.3f}   scattered random "
              f"{sm['heat_random_drop']:.3f}   hottest for another object's image {sm.get('heat_other_top_drop', float('nan')):.3f}")
        print(f"    heat vs another object's heat: correlation {sm.get('heat_other_heat_corr', float('nan')):.2f};  "
              f"Spearman point heat vs image heat at the visible points {sm.get('heat_spearman_point_image', float('nan')):.2f}")
        print(f"    mean heat visible {sm.get('heat_visible_heat', float('nan')):.2f} / occluded "
              f"{sm.get('heat_hidden_heat', float('nan')):.2f};  image heat on the object "
              f"{_pct(sm.get('heat_image_heat_on_object')).strip()} % (object area {_pct(sm.get('heat_object_area')).strip()} %)")
    head = {"checkpoint": args.checkpoint, "data": args.data, "root": str(root), "view": args.view,
            "split": args.split, "occlusion_mode": args.occlusion_mode, "random_draws": args.random_draws,
            "n_points": info["n_points"], "image_size": info["image_size"], "image_arch": info["image_arch"],
            "dense_similarity": dense, "hit_radius_px": HIT_RADIUS_PX, "eval_size": EVAL_SIZE}
    _write_json(args, _no_nan({"protocol": "correspondence", **head, **sm, "summary": sm, "objects": res["objects"]}))
    return 0


# ------------------------------------------------------------------------------ entry point
def run(args) -> int:
    fn = getattr(args, "_eval", None)
    if fn is None:
        print("crosspoint eval: choose a protocol: svm, fewshot, partseg, retrieval or correspondence (see --help)",
              file=sys.stderr)
        return 2
    name = f"crosspoint eval {args.eval_command}"
    if args.batch_size < 1:
        print(f"{name}: --batch-size must be >= 1", file=sys.stderr)
        return 2
    if args.points is not None and args.points < 16:
        print(f"{name}: --points must be >= 16", file=sys.stderr)
        return 2
    from crosspoint.data.base import DatasetError
    from crosspoint.evaluation.features import EvaluationCancelled
    from crosspoint.models import CheckpointError

    try:
        return int(fn(args) or 0)
    except UsageError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except (DatasetError, CheckpointError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except EvaluationCancelled as exc:  # pragma: no cover - GUI use
        print(f"{name}: {exc}", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError) as exc:  # device problems, too few objects for a setting, ...
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
