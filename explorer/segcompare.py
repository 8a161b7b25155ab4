"""A predicted part segmentation next to the file's own labels: what the "prediction", "errors" and
"uncertainty" colour modes draw and what the model panel reports (per-part IoU, mIoU).

Qt-free. The IoU is the library's (:func:`crosspoint.evaluation.partseg.shape_ious`, the
reference's ``calculate_shape_IoU``: over the parts of the object's category, a part absent from
both the prediction and the ground truth counts as 1); unsupervised clusters have no part names,
so they are compared after matching clusters to parts (:func:`crosspoint.analysis.matched_miou`).
"""

from __future__ import annotations

import numpy as np


def segmentation_value(res, ground_truth: np.ndarray | None, gt_names: dict | None = None) -> dict:
    """The state's ``"segmentation"`` value for an :class:`~crosspoint.analysis.SegmentationResult`.

    ``labels`` are in the segmentation head's *global* part ids (``part_ids[local label]``), the
    numbering of ShapeNetPart files and of the demo's, so that a part has the same colour in the
    "labels (file)" and "prediction" modes; clusters keep their own numbers. ``uncertainty`` is
    per point in [0, 1]: the normalised entropy when the result carries per-point entropy, else
    ``1 - confidence`` (the head: 1 - the maximal probability; clusters: the nearest / second
    nearest centroid distance ratio); ``uncertainty_title`` says which.
    """
    local = np.asarray(res.labels, np.int64)
    part_ids = None if getattr(res, "part_ids", None) is None else np.asarray(res.part_ids, np.int64)
    if part_ids is not None and len(part_ids):
        labels = part_ids[np.clip(local, 0, len(part_ids) - 1)]
        names = {int(part_ids[int(k)]): str(v) for k, v in dict(res.names).items() if 0 <= int(k) < len(part_ids)}
    else:
        labels = local.copy()
        names = {int(k): str(v) for k, v in dict(res.names).items()}
    uncertainty, title = None, ""
    entropy = getattr(res, "entropy", None)
    if entropy is not None:
        k = max(len(names), 2)
        uncertainty = np.clip(np.asarray(entropy, np.float32) / np.log(k), 0.0, 1.0)
        title = "uncertainty (entropy / log K)"
    elif getattr(res, "confidence", None) is not None:
        uncertainty = np.clip(1.0 - np.asarray(res.confidence, np.float32), 0.0, 1.0)
        title = ("uncertainty (1 - max probability)" if res.source == "head"
                 else "uncertainty (centroid distance ratio)")
    value = {
        "labels": labels, "local_labels": local, "names": names, "source": res.source,
        "category": getattr(res, "category", None), "category_source": getattr(res, "category_source", None),
        "note": getattr(res, "note", "") or "", "part_ids": part_ids,
        "uncertainty": uncertainty, "uncertainty_title": title,
    }
    value["comparison"] = compare(value, ground_truth, gt_names)
    return value


def _per_part_ious(pred: np.ndarray, gt: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """IoU of every part in ``parts`` with the library's :func:`shape_ious`: each part as a category
    of one part (so absent-from-both parts count as 1, as there)."""
    from crosspoint.evaluation.partseg import shape_ious

    k = len(parts)
    return shape_ious(np.broadcast_to(pred, (k, pred.size)), np.broadcast_to(gt, (k, gt.size)),
                      np.arange(k), table=(parts, np.ones(k, np.int64)))


def compare(seg: dict, ground_truth: np.ndarray | None, gt_names: dict | None = None) -> dict | None:
    """Prediction vs the file's labels (None when the file has none).

    Returns ``{"errors": (N,) int8 1 wrong / 0 right / -1 no ground truth, or None, "parts": [(part id,
    name, IoU, in the file, predicted)], "miou", "accuracy", "n_compared", "note"}``. The file's labels
    are read as the category's global part ids, or as its local ones (0 .. K-1) when they fit those
    instead; labels of another category are not compared (the note says so)."""
    if ground_truth is None:
        return None
    gt = np.asarray(ground_truth).reshape(-1).astype(np.int64)
    pred = np.asarray(seg["labels"]).reshape(-1)
    if gt.shape != pred.shape:
        return {"errors": None, "parts": [], "miou": None, "accuracy": None, "n_compared": 0,
                "note": f"the file has {gt.size} labels for {pred.size} points: not compared"}
    valid = gt >= 0
    present = np.unique(gt[valid])
    names = dict(seg.get("names") or {})
    if seg.get("part_ids") is None:  # clusters: no part identities, only a matched score
        from crosspoint.analysis import matched_miou

        if not valid.any():
            return None
        m = matched_miou(pred[valid], gt[valid])
        return {"errors": None, "parts": [], "miou": m, "accuracy": None, "n_compared": int(valid.sum()),
                "note": f"clusters matched one-to-one to the file's {present.size} parts (Hungarian): "
                        f"mIoU {m:.3f}; no per-point errors for unnamed clusters"}
    parts = np.asarray(seg["part_ids"], np.int64)
    a, b = int(parts.min()), int(parts.max()) + 1
    note = ""
    if present.size and present.min() >= a and present.max() < b:
        g = gt
    elif present.size and present.min() >= 0 and present.max() < len(parts):
        g = np.where(valid, gt + a, gt)
        note = f"the file numbers the parts 0..{len(parts) - 1}: read as {seg.get('category')}'s parts {a}..{b - 1}"
    else:
        shown = ", ".join(str(int(v)) for v in present[:8]) + (" ..." if present.size > 8 else "")
        return {"errors": None, "parts": [], "miou": None, "accuracy": None, "n_compared": 0,
                "note": f"the file's labels ({shown or 'none'}) are not parts of {seg.get('category')} "
                        f"(ids {a}..{b - 1}): not compared; choose the file's category under Category"}
    errors = np.full(pred.size, -1, np.int8)
    errors[valid] = (pred[valid] != g[valid]).astype(np.int8)
    p, t = pred[valid], g[valid]
    ious = _per_part_ious(p, t, parts)
    gt_names = {int(k): str(v) for k, v in dict(gt_names or {}).items()}
    rows = []
    for pid, iou in zip(parts.tolist(), ious.tolist()):
        name = names.get(pid) or gt_names.get(pid, f"part {pid}").split("/", 1)[-1]
        rows.append((pid, name, float(iou), bool((t == pid).any()), bool((p == pid).any())))
    from crosspoint.evaluation.partseg import shape_ious

    miou = float(shape_ious(p[None], t[None], [0], table=([a], [b - a]))[0])
    return {"errors": errors, "parts": rows, "miou": miou, "accuracy": float((p == t).mean()),
            "n_compared": int(valid.sum()), "note": note}


def describe(cmp: dict | None) -> str:
    """The model panel's text for a :func:`compare` result (HTML-free, one line per part)."""
    if cmp is None:
        return ""
    lines = []
    if cmp.get("miou") is not None and cmp.get("parts"):
        lines.append(f"vs the file's labels: mIoU {cmp['miou']:.3f}, point accuracy {100 * cmp['accuracy']:.1f} % "
                     f"({cmp['n_compared']:,} points)")
        for pid, name, iou, in_gt, in_pred in cmp["parts"]:
            extra = "" if in_gt or in_pred else " (in neither: counts 1)"
            if in_pred and not in_gt:
                extra = " (predicted, not in the file)"
            elif in_gt and not in_pred:
                extra = " (in the file, never predicted)"
            lines.append(f"  {name}: IoU {iou:.3f}{extra}")
    if cmp.get("note"):
        lines.append(cmp["note"])
    return "\n".join(lines)


def compare_parts(session, cloud, ground_truth: np.ndarray | None, k: int, *, camera=None, size: int = 150,
                  cancel=None) -> dict:
    """The segmentation beside the baselines that could match it (the model panel's "compare with
    random weights"): unsupervised part discovery with this checkpoint's point features, with a
    random-weight encoder of the same architecture (``crosspoint.analysis.random_weights_session``),
    and k-means on the position alone. ``k``: the file's number of parts when it has labels, else
    ``k``. With ``camera`` (the selected view's, model frame) each labelling is also rendered as
    splats from it, ``size`` px, for a side-by-side picture.

    Returns ``{"k", "rows": [{"name", "labels" (N,), "miou" or None}], "images": [(name, RGBA)]}``;
    ``miou`` is the Hungarian-matched mIoU against the file's labels (None without them)."""
    from crosspoint import analysis as A
    from explorer.colors import label_colors

    gt = None if ground_truth is None else np.asarray(ground_truth).reshape(-1)
    valid = None if gt is None else gt >= 0
    kk = int(np.unique(gt[valid]).size) if gt is not None and valid.any() else int(k)
    kk = max(kk, 2)
    rnd = A.random_weights_session(session)
    rows = []
    mine = A.segment(session, cloud, method="clusters", k_parts=kk, cancel=cancel)
    other = A.segment(rnd, cloud, method="clusters", k_parts=kk, cancel=cancel)
    for name, labels in (("part discovery, this checkpoint", mine.labels),
                         ("part discovery, random weights", other.labels),
                         ("k-means on xyz alone", mine.baseline_labels)):
        miou = None
        if gt is not None and valid.any() and labels is not None and labels.shape == gt.shape:
            miou = float(A.matched_miou(labels[valid], gt[valid]))
        rows.append({"name": name, "labels": labels, "miou": miou})
    images = []
    if camera is not None:
        from crosspoint.render.splats import render_points
        from PIL import Image

        pts = cloud.model_points() if hasattr(cloud, "model_points") else np.asarray(cloud)[:, :3]
        for r in rows:
            if r["labels"] is None:
                continue
            img = render_points(pts, camera, colors=label_colors(r["labels"]), background=(1.0, 1.0, 1.0))
            images.append((r["name"], np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))))
    return {"k": kk, "rows": rows, "images": images}


def describe_parts(cmp: dict | None) -> str:
    """One line per labelling of :func:`compare_parts`."""
    if not cmp:
        return ""
    lines = [f"{cmp['k']} parts each; matched mIoU against the file's labels:"]
    for r in cmp["rows"]:
        lines.append(f"  {r['name']}: " + ("no file labels" if r["miou"] is None else f"{r['miou']:.3f}"))
    return "\n".join(lines)
