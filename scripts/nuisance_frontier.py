"""How hard to make the demo's points: the linear SVM and the 2-D map against the sensor nuisance.

    python scripts/nuisance_frontier.py [--work runs/frontier] [--checkpoint assets/demo_checkpoint.pt]
        [--settings 0/0/0 1/4/0.01 ...] [--json docs/nuisance_frontier.json]
        [--svg docs/images/nuisance-frontier.svg]

Issue 12 asks two things of one held-out demo that pull against each other: random weights must score
<= 70 % with a linear SVM (so the nuisance must be strong enough to defeat an untrained DGCNN), and the
UMAP map of the pretrained encoder must keep the classes apart better than random weights' map by a
silhouette of 0.15 (so the nuisance must be weak enough for a map to show classes at all). Each
setting is ``density/pool/jitter`` of ``crosspoint make-demo --density S --density-pool K --jitter
SIGMA`` (``0/0/0``: the plain demo); for each, the held-out seed-1 demo (36 objects per class, 864 in
all; one view, no scans: only the points are read), the checkpoint's and random weights' global
features of all objects (1024 points), then

- the standardised linear SVM with C by 5-fold CV on the held-out split as ``crosspoint eval svm``
  makes it (``--val-fraction 0.1``: 768 train / 96 test, the card's protocol and the issue's check)
  and at ``--val-fraction 0.5`` (432 / 432: four times the test objects, so a steadier figure);
- the class silhouette and the 2-D 5-NN accuracy of the UMAP map of all 864 objects
  (``analysis.dataset.project_2d`` + ``map_quality``, as the model card and the explorer), for three
  UMAP seeds.

Features are cached in ``--work`` (``demo-S-K-SIGMA/features-{trained,random}.npy``), so a rerun only
recomputes the figures. Everything is written to ``--json``; ``--svg`` draws both figures against the
density.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
POINTS = 1024
DEFAULT_SETTINGS = ("0/0/0", "1/4/0.01", "1.5/4/0.01", "2/4/0.01", "2/4/0", "2.5/4/0.01", "3/4/0.01", "4/4/0.01",
                    "5/8/0.01")


def _setting(text: str) -> "tuple[float, int, float]":
    d, p, j = text.split("/")
    return float(d), int(float(p)), float(j)


def ensure_demo(work: Path, density: float, pool: int, jitter: float) -> Path:
    """The seed-1 hard demo with this nuisance (one view, no scans), made once."""
    root = work / f"demo-{density:g}-{pool}-{jitter:g}"
    if not (root / "demo_meta.json").is_file():
        cmd = [sys.executable, "-m", "crosspoint", "make-demo", str(root), "--seed", "1", "--views", "1",
               "--no-scans", "--force"]
        if density:
            cmd += ["--density", f"{density:g}", "--density-pool", str(pool)]
        if jitter:
            cmd += ["--jitter", f"{jitter:g}"]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    return root


def measure(root: Path, encoders: dict, umap_seeds=(0, 1, 2)) -> dict:
    from crosspoint.analysis.dataset import map_quality, project_2d
    from crosspoint.data.shapenet_render import ShapeNetRenderClassification
    from crosspoint.evaluation.features import extract_features
    from crosspoint.evaluation.svm import svm_protocol

    ds = ShapeNetRenderClassification(root, None, POINTS)
    refs = ds.objects()
    pos = {r: i for i, r in enumerate(refs)}
    y = np.asarray(ds.labels)
    splits = {}
    for frac in (0.1, 0.5):  # the held-out split exactly as `crosspoint eval svm --val-fraction frac`
        tr = [pos[q] for q in ShapeNetRenderClassification(root, "train", POINTS, frac, 1).objects()]
        te = [pos[q] for q in ShapeNetRenderClassification(root, "val", POINTS, frac, 1).objects()]
        splits[frac] = (np.asarray(tr), np.asarray(te))
    out = {"objects": len(refs)}
    for name, enc in encoders.items():
        t0 = time.perf_counter()
        cache = root / f"features-{name}.npy"
        if cache.is_file():
            x = np.load(cache)
        else:
            x = np.asarray(extract_features(enc, ds, num_points=POINTS), np.float32)
            np.save(cache, x)
        r = {}
        for frac, (tr, te) in splits.items():
            res = svm_protocol(x[tr], y[tr], x[te], y[te], fixed_c=(), cv_features="standardised")
            r[f"svm_val{frac:g}"] = {"acc": res["cv"]["overall_acc"], "C": res["cv"]["C"],
                                     "n_train": len(tr), "n_test": len(te)}
        maps = [map_quality(project_2d(x, seed=s, use_cache=False).coords, y) for s in umap_seeds]
        r["silhouette"] = [m["silhouette"] for m in maps]
        r["knn_2d"] = [m["knn_acc"] for m in maps]
        r["seconds"] = round(time.perf_counter() - t0, 1)
        out[name] = r
    return out


def summary_row(rec: dict) -> dict:
    """The figures of issue 12's goals for one setting."""
    t, r = rec["trained"], rec["random"]
    sil_t, sil_r = float(np.mean(t["silhouette"])), float(np.mean(r["silhouette"]))
    return {
        "svm_trained": t["svm_val0.1"]["acc"], "svm_random": r["svm_val0.1"]["acc"],
        "svm432_trained": t["svm_val0.5"]["acc"], "svm432_random": r["svm_val0.5"]["acc"],
        "sil_trained": sil_t, "sil_random": sil_r, "sil_gap": sil_t - sil_r,
        "knn_trained": float(np.mean(t["knn_2d"])), "knn_random": float(np.mean(r["knn_2d"])),
        "random_le_70": r["svm_val0.1"]["acc"] <= 0.70,
        "gap_ge_15": t["svm_val0.1"]["acc"] - r["svm_val0.1"]["acc"] >= 0.15,
        "sil_gap_ge_015": sil_t - sil_r >= 0.15,
    }


def frontier_svg(records: list, path: Path) -> None:
    """Two panels against the density strength S (the plain demo at 0, then the settings with jitter 0.01):
    the SVM accuracy of both encoders (768 / 96 and 432 / 432) with the 70 % line, and both maps'
    silhouettes with the gap's goal; shaded where a goal holds (``records[i]["summary"]``)."""
    rows = sorted((r for r in records if r["jitter"] == 0.01 or (r["density"] == 0 and r["jitter"] == 0)),
                  key=lambda r: r["density"])
    w, h, left, right, top, bottom, gap = 640, 300, 50, 20, 34, 44, 60
    pw = (w - left - right - gap) / 2
    smax = max(r["density"] for r in rows) or 1.0

    def x(s, panel):
        return left + panel * (pw + gap) + s / smax * pw

    def ya(a, lo, hi):
        return top + (1 - (a - lo) / (hi - lo)) * (h - top - bottom)

    blue, grey, green = "#1f5fbf", "#888", "#2a8a3a"
    p = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">'
         f'<rect width="{w}" height="{h}" fill="white"/>']
    panels = ((0, 0.3, 1.0, "linear SVM, C by CV, standardised", lambda v: f"{100 * v:.0f}%", 0.1),
              (1, -0.25, 0.15, "UMAP class silhouette (mean of 3 seeds)", lambda v: f"{v:+.2f}", 0.05))
    for panel, lo, hi, title, fmt, step in panels:
        x0 = left + panel * (pw + gap)
        p.append(f'<text x="{x0}" y="{top - 14}" font-weight="bold">{title}</text>')
        for t in range(int(round((hi - lo) / step)) + 1):
            v = lo + step * t
            p.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{ya(v, lo, hi):.1f}" y2="{ya(v, lo, hi):.1f}" stroke="#e4e4e4"/>'
                     f'<text x="{x0 - 5}" y="{ya(v, lo, hi) + 4:.1f}" text-anchor="end">{fmt(v)}</text>')
        for r in rows:
            p.append(f'<text x="{x(r["density"], panel):.1f}" y="{h - bottom + 15}" text-anchor="middle">'
                     f'{r["density"]:g}</text>')
        p.append(f'<text x="{x0 + pw / 2}" y="{h - 8}" text-anchor="middle">density fall-off S '
                 f'(0 = plain demo; jitter 0.01)</text>')
    # shaded: the settings at which the panel's goal holds (from halfway to the previous setting to halfway
    # to the next)
    xs = [r["density"] for r in rows]
    for panel, ok in ((0, [r["summary"]["random_le_70"] and r["summary"]["gap_ge_15"] for r in rows]),
                      (1, [r["summary"]["sil_gap_ge_015"] for r in rows])):
        for i, good in enumerate(ok):
            if good:
                a = xs[i] if i == 0 else (xs[i - 1] + xs[i]) / 2
                b = xs[i] if i == len(xs) - 1 else (xs[i] + xs[i + 1]) / 2
                p.append(f'<rect x="{x(a, panel):.1f}" y="{top}" width="{x(b, panel) - x(a, panel):.1f}" '
                         f'height="{h - top - bottom}" fill="#e3f3e5"/>')
    # SVM panel: the 70 % line, both encoders at 768/96 (solid) and 432/432 (dotted)
    p.append(f'<line x1="{left}" x2="{left + pw}" y1="{ya(0.7, 0.3, 1.0):.1f}" y2="{ya(0.7, 0.3, 1.0):.1f}" '
             f'stroke="#c03030" stroke-dasharray="5 3"/><text x="{left + 6}" y="{ya(0.7, 0.3, 1.0) + 14:.1f}" '
             f'fill="#c03030">random weights must be below</text>')
    for key, colour in (("trained", blue), ("random", grey)):
        for frac, dash in (("0.1", ""), ("0.5", ' stroke-dasharray="3 3"')):
            pts = " ".join(f'{x(r["density"], 0):.1f},{ya(r[key]["svm_val" + frac]["acc"], 0.3, 1.0):.1f}' for r in rows)
            p.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        p += [f'<circle cx="{x(r["density"], 0):.1f}" cy="{ya(r[key]["svm_val0.1"]["acc"], 0.3, 1.0):.1f}" r="3" '
              f'fill="{colour}"/>' for r in rows]
    # silhouette panel: both encoders, and the gap's goal as a band above random
    for key, colour in (("trained", blue), ("random", grey)):
        pts = " ".join(f'{x(r["density"], 1):.1f},{ya(r["summary"]["sil_" + key], -0.25, 0.15):.1f}'
                       for r in rows)
        p.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
    goal = " ".join(f'{x(r["density"], 1):.1f},{ya(r["summary"]["sil_random"] + 0.15, -0.25, 0.15):.1f}'
                    for r in rows)
    p.append(f'<polyline points="{goal}" fill="none" stroke="#c03030" stroke-dasharray="5 3"/>')
    for r in rows:
        s = r["summary"]
        mark = green if s["random_le_70"] and s["gap_ge_15"] and s["sil_gap_ge_015"] else blue  # all three
        p.append(f'<circle cx="{x(r["density"], 1):.1f}" cy="{ya(s["sil_trained"], -0.25, 0.15):.1f}" r="3" fill="{mark}"/>')
    ly = top + 8
    p.append(f'<text x="{left + 6}" y="{h - bottom - 58}" fill="#2a8a3a">shaded: random &lt;= 70 %, checkpoint +15</text>'
             f'<text x="{left + 6}" y="{h - bottom - 44}" fill="{blue}">demo checkpoint</text>'
             f'<text x="{left + 6}" y="{h - bottom - 30}" fill="{grey}">random weights</text>'
             f'<text x="{left + 6}" y="{h - bottom - 16}">solid: 768 train / 96 test; dotted: 432 / 432</text>'
             f'<text x="{left + pw + gap + 6}" y="{ly}" fill="#c03030">the checkpoint must reach random + 0.15</text>'
             f'<text x="{left + pw + gap + 6}" y="{ly + 14}" fill="#2a8a3a">shaded: where it does</text>')
    p.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(p) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="runs/frontier", help="demos and feature caches")
    ap.add_argument("--checkpoint", default=str(REPO / "assets" / "demo_checkpoint.pt"))
    ap.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS), help="density/pool/jitter")
    ap.add_argument("--json", default=str(REPO / "docs" / "nuisance_frontier.json"))
    ap.add_argument("--svg", default=str(REPO / "docs" / "images" / "nuisance-frontier.svg"))
    ap.add_argument("--results", help="also write the summary into this demo_results.json (results['frontier']) "
                                      "and regenerate the model card beside it")
    args = ap.parse_args(argv)
    from crosspoint.evaluation.features import build_eval_encoder

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    encoders = {"trained": build_eval_encoder(args.checkpoint, seed=0), "random": build_eval_encoder("random", seed=0)}
    records = []
    for text in args.settings:
        d, k, j = _setting(text)
        rec = {"density": d, "pool": k, "jitter": j, **measure(ensure_demo(work, d, k, j), encoders)}
        rec["summary"] = summary_row(rec)
        records.append(rec)
        s = rec["summary"]
        print(f"{text:>11}: SVM {100 * s['svm_trained']:.1f} vs {100 * s['svm_random']:.1f} "
              f"(432: {100 * s['svm432_trained']:.1f} vs {100 * s['svm432_random']:.1f}); silhouette "
              f"{s['sil_trained']:+.3f} vs {s['sil_random']:+.3f} (gap {s['sil_gap']:+.3f}); 2-D 5-NN "
              f"{100 * s['knn_trained']:.1f} vs {100 * s['knn_random']:.1f}", flush=True)
    meta = {"checkpoint": Path(args.checkpoint).name, "demo": "make-demo --seed 1 --views 1 --no-scans, 36 per class",
            "points": POINTS, "command": "python scripts/nuisance_frontier.py" + (
                "" if tuple(args.settings) == DEFAULT_SETTINGS else " --settings " + " ".join(args.settings))}
    Path(args.json).write_text(json.dumps({"meta": meta, "settings": records}, indent=1) + "\n")
    frontier_svg(records, Path(args.svg))
    if args.results:
        write_results(Path(args.results), meta, records)
    return 0


def write_results(path: Path, meta: dict, records: list) -> None:
    """``results["frontier"]`` of the model card's results file: each setting's summary; the card regenerated."""
    results = json.loads(path.read_text())
    results["frontier"] = {"command": meta["command"],
                           "demo": meta["demo"],
                           "settings": [{"density": r["density"], "pool": r["pool"], "jitter": r["jitter"],
                                         **r["summary"]} for r in records]}
    path.write_text(json.dumps(results, indent=1, default=float) + "\n")
    sys.path.insert(0, str(REPO / "scripts"))
    from model_card import write_model_card

    write_model_card(results, path.parent / "MODEL_CARD.md", path.parent / "demo_checkpoint.pt")


if __name__ == "__main__":
    sys.exit(main())
