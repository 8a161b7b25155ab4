"""Fit a checkpoint's dense point-pixel heads on its frozen encoders, against exact correspondences.

The dense pretraining term (:mod:`crosspoint.models.dense`) trains the heads jointly with the
encoders, on augmented clouds, with visibility from a splat z-buffer (precision 0.96, recall 0.37)
and 64 points per view; on the CPU budget of the demo it left the dense figures far from their goal
(point -> pixel hit 11.7 %, pixel -> points AUC 0.82 on the held-out demo). This module is a second,
cheap stage, like a segmentation head on a frozen encoder: the encoders stay as they are (every
global figure is unchanged), their per-point and per-stage image features are computed once per
object and view, and only the heads are fitted, for many steps, on what the evaluation asks for:

* the ground truth is the one the evaluation uses: the renderer's camera and the mesh's depth
  buffer (:func:`crosspoint.analysis.correspondence.view_correspondence`), on the points the model
  sees (:func:`~crosspoint.analysis.points.prepare_points`, no augmentation);
* the loss (:func:`crosspoint.models.dense.dense_cell_loss`): each visible point against every cell
  of its view, and each point's pixel against many points of the object (those within the hit
  radius are positives);
* the heads may be finer than pretraining's (``stride=4``: the ResNet's layer1 joins) and see a
  neighbourhood (``context``: 3x3 layers);
* ``image_branch`` gives the heads their own copies of the ResNet's ``layer3`` (or ``layer2`` and
  ``layer3``), started from the encoder's and fitted with the heads (``branch_lr``); the image
  encoder itself is not touched. On the demo (600 objects, 2000 steps) the held-out hit rate is
  29.8 % without it and 31.9-32.4 % with it (docs/RESULTS.md section 8).

:func:`refine_dense_heads` returns the fitted heads and a record (settings, loss curve);
:func:`write_refined_checkpoint` writes a copy of the checkpoint with them. ``crosspoint
refine-dense`` is the command; ``crosspoint eval correspondence`` measures the result on held-out
objects (docs/RESULTS.md section 8).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from crosspoint.analysis._common import AnalysisError, Cancel, Progress, check_cancel, report

__all__ = ["RefineSettings", "demo_objects", "read_refinable", "refine_dense_heads", "write_refined_checkpoint"]


@dataclass
class RefineSettings:
    steps: int = 2000
    batch: int = 16  # views per step
    points_per_view: int = 64  # visible points per view per step
    candidates: int = 256  # other points of the object each pixel is compared with
    lr: float = 1e-3
    temperature: float = 0.1
    stride: int = 4
    context: int = 1
    hidden: int = 256
    dim: int = 64
    image_branch: str = "none"  # "layer3" | "layer2+layer3": the heads' own copies of those ResNet stages
    branch_lr: float = 5e-4  # Adam learning rate of the branch's stages
    point_context: str = "none"  # "pooled": the point MLP also sees the object's pooled map (DenseHeads)
    seed: int = 0


def demo_objects(root, split: str, n: int, view: "int | None" = 0) -> "list[dict]":
    """Up to ``n`` objects of a demo dataset (``crosspoint make-demo``), round-robin over its classes:
    ``points``, part ``labels`` and ``part_names``, ``mesh``, and the rendered view ``view`` as
    ``image`` and ``camera`` (with ``view=None``: every view, as ``images`` and ``cameras``); for
    one view, also ``other_image`` (another class's view, for the heatmaps' specificity)."""
    from PIL import Image

    from crosspoint.data.base import DatasetError
    from crosspoint.data.synthetic import META_NAME, PART_DIR
    from crosspoint.io import read_point_cloud
    from crosspoint.render import read_view_metadata

    root = Path(root)
    meta_path = root / META_NAME
    if not meta_path.is_file():
        raise DatasetError(f"{root}: not a demo dataset (no {META_NAME}); the correspondence needs the demo's meshes, "
                           "labelled parts and rendered views with their cameras (crosspoint make-demo OUT)")
    meta = json.loads(meta_path.read_text())
    part_names = {i: str(nm) for i, nm in enumerate(meta.get("part_names", []))}
    class_order = [x["name"] for x in meta.get("classes", [])]
    by_class: dict = {}
    for o in meta.get("objects", []):
        if split == "all" or o.get("split") == split:
            by_class.setdefault(o["class"], []).append(o)
    order = []
    k = 0
    while len(order) < n and any(k < len(v) for v in by_class.values()):
        for cls in sorted(by_class, key=lambda c: class_order.index(c) if c in class_order else 0):
            if k < len(by_class[cls]) and len(order) < n:
                order.append(by_class[cls][k])
        k += 1
    if len(order) < 2:
        raise DatasetError(f"{root}: {len(order)} object(s) in the {split} split; need 2 or more")

    def load(path):
        with Image.open(path) as im:
            return np.asarray(im.convert("RGBA"))

    objs = []
    for o in order:
        syn, oid = o["synset"], o["id"]
        txt = root / PART_DIR / syn / f"{oid}.txt"
        rend = root / "ShapeNetRendering" / syn / oid / "rendering"
        mesh_path = root / "meshes" / syn / f"{oid}.ply"
        for f in (txt, mesh_path):
            if not f.is_file():
                raise DatasetError(f"{f}: missing (an incomplete demo?)")
        rows = np.loadtxt(txt, dtype=np.float64, ndmin=2)
        cams = read_view_metadata(rend)
        names = [ln for ln in (rend / "renderings.txt").read_text().split() if ln]
        if not cams or not names:
            raise DatasetError(f"{rend}: no rendered views")
        obj = {"name": oid, "class": o["class"], "points": rows[:, :3].astype(np.float32),
               "labels": rows[:, 6].astype(np.int64), "part_names": part_names,
               "mesh": read_point_cloud(mesh_path).mesh}
        if view is None:
            n_views = min(len(cams), len(names))
            obj["images"] = [load(rend / names[v]) for v in range(n_views)]
            obj["cameras"] = list(cams[:n_views])
        else:
            vi = min(int(view), len(cams) - 1)
            obj["image"], obj["camera"] = load(rend / names[vi]), cams[vi]
        objs.append(obj)
    if view is not None:
        for i, o in enumerate(objs):
            for j in range(1, len(objs)):
                other = objs[(i + j) % len(objs)]
                if other["class"] != o["class"]:
                    o["other_image"] = other["image"]
                    break
    return objs


def _features(session, objects, *, seed: int, progress: Progress, cancel: Cancel) -> dict:
    """Frozen features and ground truth of every object and view (float16 maps, to fit in memory)."""
    import torch

    from crosspoint.analysis.correspondence import _resnet_stages, view_correspondence
    from crosspoint.analysis.embed import image_tensor
    from crosspoint.analysis.points import prepare_points

    n_pts, size = session.points_for(None), session.size_for(None)
    P, S1, S2, S3, UV, VIS, OWNER = [], [], [], [], [], [], []
    total = sum(len(o["cameras"]) for o in objects)
    done = 0
    for oi, obj in enumerate(objects):
        check_cancel(cancel, "dense refinement")
        prep = prepare_points(obj["points"], n_pts, seed)
        with session.inference(autocast=False):
            x = torch.from_numpy(np.ascontiguousarray(prep.points, np.float32)[None]).to(session.device)
            pmap = session.point_encoder(x, with_point_features=True).point_features
            if pmap is None:
                raise AnalysisError("the point encoder gives no per-point map")
            P.append(pmap[0].float().cpu().numpy().astype(np.float16))
        for image, camera in zip(obj["images"], obj["cameras"]):
            view = view_correspondence(obj["points"], camera, mesh=obj.get("mesh"))
            h, w = view.shape
            with session.inference(autocast=False):
                _, st = _resnet_stages(session.require_image_encoder(),
                                       image_tensor(image, size, session.background)[None].to(session.device))
            S1.append(st["layer1"][0].float().cpu().numpy().astype(np.float16))
            S2.append(st["layer2"][0].float().cpu().numpy().astype(np.float16))
            S3.append(st["layer3"][0].float().cpu().numpy().astype(np.float16))
            UV.append((view.uv[prep.index] * np.array([size / w, size / h], np.float32)).astype(np.float32))
            VIS.append(view.visible[prep.index].copy())
            OWNER.append(oi)
            done += 1
            report(progress, done, total, f"features: {done}/{total} views")
    return {"P": np.stack(P), "layer1": np.stack(S1), "layer2": np.stack(S2), "layer3": np.stack(S3),
            "uv": np.stack(UV), "visible": np.stack(VIS), "owner": np.asarray(OWNER, np.int64), "size": size}


def refine_dense_heads(session, objects, settings: "RefineSettings | None" = None, *, progress: Progress = None,
                       cancel: Cancel = None, log_every: int = 50):
    """Fit dense heads (:class:`~crosspoint.models.dense.DenseHeads` with ``settings``) on the frozen
    encoders of ``session`` and the views of ``objects`` (:func:`demo_objects` with ``view=None``).
    Starts from the checkpoint's own heads when they have the same shape, else from a seeded
    initialisation. Returns ``(heads (eval mode, CPU), record)``."""
    import torch

    from crosspoint.analysis.correspondence import EVAL_SIZE, HIT_RADIUS_PX
    from crosspoint.models.dense import DenseHeads, dense_cell_loss

    st = settings or RefineSettings()
    if st.steps < 1 or st.batch < 1 or st.points_per_view < 1 or st.candidates < 0:
        raise AnalysisError("steps, batch and points_per_view must be >= 1, candidates >= 0")
    from crosspoint.models.dense import IMAGE_BRANCHES, POINT_CONTEXTS

    if st.image_branch not in IMAGE_BRANCHES:
        raise AnalysisError(f"image_branch must be one of {', '.join(IMAGE_BRANCHES)}, got {st.image_branch!r}")
    if st.point_context not in POINT_CONTEXTS:
        raise AnalysisError(f"point_context must be one of {', '.join(POINT_CONTEXTS)}, got {st.point_context!r}")
    if not objects or any("cameras" not in o for o in objects):
        raise AnalysisError("refine_dense_heads needs objects with all their views (demo_objects(view=None))")
    t0 = time.perf_counter()
    ienc = session.require_image_encoder()
    feats = _features(session, objects, seed=st.seed, progress=progress, cancel=cancel)
    t_feat = time.perf_counter() - t0
    size = feats["size"]
    usable = np.flatnonzero(feats["visible"].sum(axis=1) >= 2)
    if usable.size == 0:
        raise AnalysisError("no view shows two or more of the model's points")
    arch = ienc.arch
    old = getattr(session, "dense_heads", None)
    cfg = dict(point_dim=int(feats["P"].shape[-1]), image_arch=str(arch), dim=st.dim, hidden=st.hidden,
               stride=st.stride, context=st.context, image_branch=st.image_branch, point_context=st.point_context)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(st.seed)
        heads = DenseHeads(**cfg)
    heads.init_branch(ienc)
    started_from = "a seeded initialisation" + (" and the image encoder's " + st.image_branch
                                                 if st.image_branch != "none" else "")
    if old is not None and old.config() == heads.config():
        heads.load_state_dict(old.state_dict())
        started_from = "the checkpoint's heads"
    elif old is not None and heads.widens(old):
        heads.load_state_dict(heads.widened_state(old))
        started_from = "the checkpoint's heads, widened (zero weights on the pooled map)"
    heads.train()
    branch = [p for p in heads.branch.parameters()]
    ids = {id(p) for p in branch}
    groups = [{"params": [p for p in heads.parameters() if id(p) not in ids], "lr": st.lr}]
    if branch:
        groups.append({"params": branch, "lr": st.branch_lr})
    opt = torch.optim.Adam(groups, weight_decay=1e-6)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, st.steps)
    rng = np.random.default_rng(st.seed + 1)
    radius = HIT_RADIUS_PX * size / EVAL_SIZE  # the evaluation's hit radius, at the model's image size
    n_pts = feats["P"].shape[1]
    m, c_extra = st.points_per_view, min(st.candidates, n_pts)
    curve, window = [], []
    for step in range(1, st.steps + 1):
        check_cancel(cancel, "dense refinement")
        views = rng.choice(usable, st.batch, replace=usable.size < st.batch)
        idx = np.zeros((st.batch, m), np.int64)
        valid = np.zeros((st.batch, m), bool)
        extra = np.zeros((st.batch, c_extra), np.int64)
        for b, v in enumerate(views):
            vis = np.flatnonzero(feats["visible"][v])
            take = rng.permutation(vis)[:m]
            idx[b, :take.size], valid[b, :take.size] = take, True
            extra[b] = rng.choice(n_pts, c_extra, replace=False)
        cand = np.concatenate([idx, extra], axis=1)
        uv_all = feats["uv"][views]  # (B, N, 2)
        vis_all = feats["visible"][views]
        uv = np.take_along_axis(uv_all, idx[..., None], axis=1)
        uv_c = np.take_along_axis(uv_all, cand[..., None], axis=1)
        vis_c = np.take_along_axis(vis_all, cand, axis=1)
        near = np.linalg.norm(uv[:, :, None] - uv_c[:, None], axis=-1) <= radius
        positives = (near & vis_c[:, None]) | (cand[:, None, :] == idx[:, :, None])
        P = torch.from_numpy(feats["P"][feats["owner"][views]].astype(np.float32))
        stages = {k: torch.from_numpy(feats[k][views].astype(np.float32)) for k in ("layer1", "layer2", "layer3")}
        pmap = heads.image_embeddings(stages)
        ci = torch.from_numpy(cand)
        emb_c = heads.point_embeddings(torch.gather(P, 1, ci[..., None].expand(-1, -1, P.shape[-1])), P)
        loss = dense_cell_loss(emb_c[:, :m], pmap, torch.from_numpy(uv), torch.from_numpy(valid), emb_c,
                               torch.from_numpy(positives), (size, size), st.temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        window.append(loss.item())
        if step % log_every == 0 or step == st.steps:
            curve.append({"step": step, "loss": float(np.mean(window))})
            window = []
        shown = window[-1] if window else curve[-1]["loss"]
        report(progress, step, st.steps, f"step {step}/{st.steps}, loss {shown:.3f}")
    heads.eval()
    record = {"settings": asdict(st), "heads": heads.config(), "started_from": started_from,
              "objects": len(objects), "views": int(feats["uv"].shape[0]), "views_used": int(usable.size),
              "points": int(n_pts), "image_size": int(size), "hit_radius_px": float(radius),
              "feature_seconds": t_feat, "seconds": time.perf_counter() - t0, "curve": curve}
    return heads, record


def read_refinable(checkpoint) -> dict:
    """The checkpoint's contents if :func:`write_refined_checkpoint` can write a copy of it (this
    project's format, both encoders); :class:`AnalysisError` otherwise (ask before fitting)."""
    from crosspoint.models.checkpoint import read_checkpoint

    src = read_checkpoint(checkpoint)
    if not isinstance(src, dict) or not isinstance(src.get("point_encoder"), dict) or \
            not isinstance(src.get("image_encoder"), dict):
        raise AnalysisError(f"{checkpoint}: not a checkpoint of this project with both encoders (an official "
                            "CrossPoint file: save it as a bundle first, or pretrain with this project)")
    return src


def write_refined_checkpoint(checkpoint, heads, record: dict, out) -> Path:
    """A copy of ``checkpoint`` (our format) with ``heads`` as its dense heads and ``record`` in its
    meta (``dense_refined``), written atomically to ``out``."""
    import torch

    from crosspoint.atomic import atomic_write_bytes_to

    obj = dict(read_refinable(checkpoint))
    obj["dense_heads"] = {"config": heads.config(),
                          "state_dict": {k: v.detach().cpu().clone() for k, v in heads.state_dict().items()}}
    meta = dict(obj.get("meta") or {})
    meta["dense_refined"] = {k: v for k, v in record.items() if k != "curve"} | {
        "loss_first": record["curve"][0]["loss"] if record.get("curve") else None,
        "loss_last": record["curve"][-1]["loss"] if record.get("curve") else None}
    obj["meta"] = meta
    out = Path(out)
    atomic_write_bytes_to(out, lambda fh: torch.save(obj, fh))
    torch.load(out, weights_only=True)  # what a loader will do: refuse nothing
    return out
