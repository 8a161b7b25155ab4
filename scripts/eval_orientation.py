"""The orientation check's figures (docs/RESULTS.md section 9): how often the best of the 24 axis-aligned
turns is upright, for three scores of a turned copy, with the demo checkpoint or random weights.

    python scripts/eval_orientation.py --data runs/demo-hard-seed1 --reference runs/demo-hard-seed0 [--random]

``--data``: a demo folder (its ``meshes/<synset>/*.ply``, stored +Y up, are the objects); the first
``--per-class`` meshes of each class are scored. ``--reference``: a demo folder of upright objects
(embedded once, cached). Scores: typicality (what :func:`crosspoint.analysis.check_orientation` uses),
cross-modal (cosine of the copy's projection and its own rendered view's, one view per turn), and the
confidence of a category probe fitted on the references. Prints one line per score; ``--json`` writes
the per-object scores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from crosspoint import analysis as A
    from crosspoint.analysis.orientation import typicality
    from crosspoint.analysis.segment import fit_category_probe
    from crosspoint.io import read_point_cloud
    from crosspoint.pointcloud import Mesh, PointCloud
    from crosspoint.render.views import render_views

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--checkpoint", default=None, help="default: the shipped demo checkpoint")
    ap.add_argument("--random", action="store_true", help="random weights of the checkpoint's architecture")
    ap.add_argument("--per-class", type=int, default=2)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    session = A.ModelSession(args.checkpoint, device="cpu")
    if args.random:
        session = A.random_weights_session(session, seed=0)
    rots = A.axis_rotations()
    upright = np.array([A.up_direction(r) == "+Y" for r in rots])
    files = []
    for d in sorted((Path(args.data) / "meshes").iterdir()):
        files += sorted(d.glob("*.ply"))[:args.per_class]
    ref = A.embed_dataset(session, args.reference, n_points=1024)
    probe = fit_category_probe(ref.features, ref.labels, list(range(int(ref.labels.max()) + 1)))
    scores = {"typicality": [], "cross-modal": [], "probe": []}
    t = time.time()
    for f in files:
        cloud = read_point_cloud(f)
        copies = [PointCloud(cloud.points.astype(np.float64) @ r.T) for r in rots]
        feats, projs = A.encode_clouds(session, copies, n_points=1024)
        scores["typicality"].append(typicality(feats, ref.features, args.k))
        z = feats.astype(np.float64) @ probe["weight"].T.astype(np.float64) + probe["bias"]
        p = np.exp(z - z.max(1, keepdims=True))
        scores["probe"].append((p / p.sum(1, keepdims=True)).max(1))
        images = [render_views(Mesh(cloud.mesh.vertices.astype(np.float64) @ r.T, cloud.mesh.faces), 1, size=137,
                               seed=0)[0][0] for r in rots]
        im = A.embed_images(session, images)
        im = im / np.linalg.norm(im, axis=1, keepdims=True)
        scores["cross-modal"].append((projs * im).sum(1))
    print(f"{len(files)} objects, {'random weights' if args.random else session.path}, {time.time() - t:.0f} s")
    for name, v in scores.items():
        best = np.asarray(v).argmax(1)
        print(f"  {name:<12s} upright {int(upright[best].sum())}/{len(files)} ({upright[best].mean():.0%}); "
              f"chance {upright.mean():.0%}")
    if args.json:
        Path(args.json).write_text(json.dumps({"files": [str(f) for f in files],
                                               "scores": {k: np.asarray(v).tolist() for k, v in scores.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
