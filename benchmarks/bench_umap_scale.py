"""The 2-D map (``crosspoint.analysis.project_2d``: standardise, PCA to 50 dims, seeded UMAP) of
many objects (issue 13 item 1: 50,000 x 2048 features in <= 60 s on 2 cores, <= 4 GB).

Synthetic features: ``--clusters`` Gaussian clusters in 2048-d, float32 (centres drawn with a
standard deviation of ``--spread``, unit noise: neighbouring clusters overlap, so the map's
quality is not trivially perfect). Each configuration runs in its own process (numba's code loaded
or compiled by a tiny warm-up fit first, not timed) and reports:

- seconds of ``project_2d`` (no cache), split into standardise + PCA and UMAP (from its progress
  reports);
- peak memory of the process (``ru_maxrss``) and of the features alone before the call;
- the map's quality on the cluster labels (``map_quality``: 2-D silhouette and 5-NN accuracy,
  on the first 10,000 rows).

Configurations: the defaults (``large=False``: what every map used before) against the large-map
settings (``large=True``, ``UMAP_LARGE_SETTINGS``, chosen automatically above
``UMAP_LARGE_OBJECTS``), at 10,000 (where both are cheap: the quality comparison) and at 50,000
(the goal).

Run: ``python benchmarks/bench_umap_scale.py [--sizes 10000 50000] [--repeats 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def features(n: int, d: int = 2048, k: int = 40, spread: float = 0.035, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d), dtype=np.float32) * np.float32(spread * 5)
    labels = rng.integers(0, k, n)
    x = np.empty((n, d), np.float32)
    for s in range(0, n, 5000):
        e = min(n, s + 5000)
        x[s:e] = centers[labels[s:e]] + rng.standard_normal((e - s, d), dtype=np.float32)
    return x, labels


def child(n: int, large: bool, spread: float) -> dict:
    x, labels = features(n, spread=spread)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from crosspoint.analysis import dataset as D

    D.warm_up_umap()
    marks = {}

    def progress(done, total, text):
        marks.setdefault(text, time.perf_counter())

    t0 = time.perf_counter()
    res = D.project_2d(x, use_cache=False, large=large, progress=progress)
    total = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    q = D.map_quality(res.coords[:10000], labels[:10000])
    pre = marks.get("UMAP", t0) - t0
    return {"n": n, "large": large, "total": total, "pre": pre, "umap": total - pre, "peak_gb": rss / 2 ** 20,
            "data_gb": rss_data / 2 ** 20, "silhouette": q["silhouette"], "knn_acc": q["knn_acc"],
            "note": res.note}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    ap.add_argument("--spread", type=float, default=0.035)
    ap.add_argument("--repeats", type=int, default=1, help="runs per configuration (the best is shown)")
    ap.add_argument("--child", nargs=2, metavar=("N", "LARGE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1] == "1", args.spread)), flush=True)
        return 0
    from crosspoint.analysis.dataset import UMAP_LARGE_OBJECTS, UMAP_LARGE_SETTINGS

    print(f"project_2d of N x 2048 float32 features (40 clusters, spread {args.spread}); large-map settings "
          f"{UMAP_LARGE_SETTINGS} (automatic above {UMAP_LARGE_OBJECTS:,}); cores {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.2f}; goal at 50,000: <= 60 s, <= 4 GB")
    print(f"  {'N':>7s} {'settings':<9s} {'total s':>8s} {'std+PCA':>8s} {'UMAP':>7s} {'peak GB':>8s} "
          f"{'(data)':>7s} {'silhouette':>10s} {'5-NN acc':>8s}  load")
    for n in args.sizes:
        for large in (False, True):
            runs = []
            for _ in range(args.repeats):
                out = subprocess.run([sys.executable, __file__, "--spread", str(args.spread), "--child", str(n),
                                      "1" if large else "0"], capture_output=True, text=True, cwd=ROOT)
                if out.returncode != 0:
                    print(f"  {n:>7,d} {'large' if large else 'default'}: failed\n{out.stderr[-2000:]}")
                    break
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            if not runs:
                continue
            r = min(runs, key=lambda r: r["total"])
            print(f"  {n:>7,d} {'large' if large else 'default':<9s} {r['total']:8.1f} {r['pre']:8.1f} "
                  f"{r['umap']:7.1f} {r['peak_gb']:8.2f} {r['data_gb']:7.2f} {r['silhouette']:10.3f} "
                  f"{r['knn_acc']:8.3f}  {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
