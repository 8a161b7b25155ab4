"""What the frozen per-point features of a checkpoint know: position, and which side of a mirror plane.

    python scripts/probe_point_features.py [--checkpoint assets/demo_checkpoint.pt] [--fit runs/demo-hard-seed0]
        [--test runs/demo-hard-seed1] [--json out.json]

Three measurements behind docs/RESULTS.md section 8 ("Why mirror twins stay confused"), on hard
demos (``crosspoint make-demo``; the fitting and the test demo must be different seeds):

1. position: ridge regression from the point encoder's pre-pool map (what the dense heads read) to
   the point's coordinates, fitted on one demo, its median error on the other's objects;
2. handedness: on the mirror-symmetric objects (``analysis.symmetry``: exactly one vertical mirror
   plane), which side of the plane a point lies on, the side named in the object's own frame (the
   demo's recorded heading, so "left" means the same for every object); logistic regression on the
   standardised map, accuracy on the test demo (chance 50 %); then a small MLP (what a dense head
   could learn) on the map alone, on the map plus the object's pooled map (max and mean over its
   points: the global context a point head could be given), and, as the upper bound that says the
   question is answerable, on the point's coordinates plus the object's heading;
3. the dense heads' view of the same: the cosine of a point's dense embedding with its mirror twin's
   (the nearest point to its reflection) against a point at the same distance drawn at random.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _mirror_normal(sym):
    """The unit normal of the object's single vertical mirror plane, or None."""
    idx = [i for i, n in enumerate(sym.names) if n.startswith("mirror")]
    if sym.kind != "mirror" or len(idx) != 1:
        return None
    w, v = np.linalg.eigh(sym.matrices[idx[0]])
    return v[:, int(np.argmin(w))]  # the eigenvalue -1 direction


def collect(session, root: Path, split: str, n: int, *, stride: int = 4, twins: bool = False) -> dict:
    import torch

    from crosspoint.analysis.correspondence import dense_similarity
    from crosspoint.analysis.dense_refine import demo_objects
    from crosspoint.analysis.points import prepare_points
    from crosspoint.analysis.symmetry import upright_symmetries

    meta = {o["id"]: o for o in json.loads((root / "demo_meta.json").read_text())["objects"]}
    out = {"feat": [], "xyz": [], "side_feat": [], "side_glob": [], "side_oracle": [], "side": [], "twin_cos": [],
           "ctrl_cos": [], "aligned": []}
    for o in demo_objects(root, split, n, view=0):
        prep = prepare_points(o["points"], session.points_for(None), 0)
        with session.inference(autocast=False):
            x = torch.from_numpy(np.ascontiguousarray(prep.points, np.float32)[None])
            f = session.point_encoder(x, with_point_features=True).point_features[0].float().numpy()
        out["feat"].append(f[::stride])
        out["xyz"].append(prep.points[::stride])
        sym = upright_symmetries(o["points"], mesh=o["mesh"])
        normal = _mirror_normal(sym)
        if normal is None:
            continue
        if twins:
            ds = dense_similarity(session, o["points"], o["image"], o["camera"])
            X = ds.world_points.astype(np.float64)
            M = sym.matrices[[i for i, nm in enumerate(sym.names) if nm.startswith("mirror")][0]]
            from scipy.spatial import cKDTree

            d, j = cKDTree(X).query((X - sym.centre) @ M.T + sym.centre)
            sep = np.linalg.norm(X - X[j], axis=1)
            far = np.flatnonzero((sep > 0.3) & (d < 0.03))
            if far.size >= 10:
                pe = ds.point_embeddings
                D = np.linalg.norm(X[far, None] - X[None], axis=-1)
                rng = np.random.default_rng(0)
                ctrl = []
                for r, i in enumerate(far):
                    c = np.flatnonzero(np.abs(D[r] - sep[i]) < 0.02)
                    if c.size:
                        ctrl.append(float(pe[i] @ pe[rng.choice(c)]))
                out["twin_cos"].append(float((pe[far] * pe[j[far]]).sum(1).mean()))
                out["ctrl_cos"].append(float(np.mean(ctrl)))
        # the object's own x axis (the demo turns the +Z-facing object by its heading about +Y)
        h = np.deg2rad(meta[o["name"]]["style"]["heading"])
        dot = float(normal @ np.array([np.cos(h), 0.0, -np.sin(h)]))
        out["aligned"].append(abs(dot))
        if abs(dot) < 0.9:  # the plane is not the left-right one (a front-back mirror): skip
            continue
        w = (prep.original_points() - sym.centre) @ (normal * np.sign(dot))
        keep = np.abs(w) > 0.1
        out["side_feat"].append(f[keep])
        out["side_glob"].append(np.broadcast_to(np.concatenate([f.max(0), f.mean(0)]), (int(keep.sum()), 2 * f.shape[1])))
        xyz = prep.points[keep]  # what the model sees, with the heading it cannot see
        out["side_oracle"].append(np.column_stack([xyz, np.broadcast_to([np.cos(h), np.sin(h)], (xyz.shape[0], 2))]))
        out["side"].append(w[keep] > 0)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="assets/demo_checkpoint.pt")
    ap.add_argument("--fit", default="runs/demo-hard-seed0", help="demo the probes are fitted on (train split)")
    ap.add_argument("--test", default="runs/demo-hard-seed1", help="demo they are measured on (test split)")
    ap.add_argument("--fit-objects", type=int, default=150)
    ap.add_argument("--test-objects", type=int, default=48)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler

    from crosspoint.analysis import ModelSession

    session = ModelSession(args.checkpoint, device="cpu")
    fit = collect(session, Path(args.fit), "train", args.fit_objects)
    test = collect(session, Path(args.test), "test", args.test_objects, twins=session.dense_heads is not None)
    res = {"checkpoint": args.checkpoint, "fit": args.fit, "test": args.test}
    Xf, Yf = np.concatenate(fit["feat"]), np.concatenate(fit["xyz"])
    Xt, Yt = np.concatenate(test["feat"]), np.concatenate(test["xyz"])
    err = np.linalg.norm(Ridge(alpha=1.0).fit(Xf, Yf).predict(Xt) - Yt, axis=1)
    res["position_median_error"] = float(np.median(err))
    res["position_p90_error"] = float(np.percentile(err, 90))
    res["median_radius"] = float(np.median(np.linalg.norm(Yt, axis=1)))
    Sf, sf = np.concatenate(fit["side_feat"]), np.concatenate(fit["side"])
    St, st = np.concatenate(test["side_feat"]), np.concatenate(test["side"])
    sc = StandardScaler().fit(Sf)
    res["side_points"] = {"fit": int(sf.size), "test": int(st.size), "fit_objects": len(fit["side"]),
                          "test_objects": len(test["side"])}
    res["side_test_positive_share"] = float(st.mean())
    res["side_probe"] = []
    for c in (0.01, 0.1, 1.0):
        lr = LogisticRegression(C=c, max_iter=300).fit(sc.transform(Sf[::3]), sf[::3])
        res["side_probe"].append({"C": c, "fit_acc": float(lr.score(sc.transform(Sf[::3]), sf[::3])),
                                  "test_acc": float(lr.score(sc.transform(St), st))})
    from sklearn.neural_network import MLPClassifier

    res["side_mlp"] = {}
    for name, key in (("map", None), ("map + pooled map", "side_glob"), ("xyz + heading (upper bound)", "side_oracle")):
        if key == "side_oracle":
            A, B = np.concatenate(fit[key]), np.concatenate(test[key])
        else:
            A, B = Sf, St
            if key:
                A, B = np.hstack([A, np.concatenate(fit[key])]), np.hstack([B, np.concatenate(test[key])])
        s2 = StandardScaler().fit(A)
        mlp = MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-3, max_iter=200, early_stopping=True,
                            random_state=0).fit(s2.transform(A[::3]), sf[::3])
        res["side_mlp"][name] = {"fit_acc": float(mlp.score(s2.transform(A[::3]), sf[::3])),
                                 "test_acc": float(mlp.score(s2.transform(B), st))}
        print(name, res["side_mlp"][name], flush=True)
    if test["twin_cos"]:
        res["twin_cos"], res["ctrl_cos"] = float(np.mean(test["twin_cos"])), float(np.mean(test["ctrl_cos"]))
        res["twin_objects"] = len(test["twin_cos"])
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
