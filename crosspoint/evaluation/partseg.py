"""Part-segmentation metrics (instance and class mIoU), model evaluation, and the segmenters.

IoU, exactly as the reference's ``calculate_shape_IoU``: for every shape, over the parts of the
shape's *category* (its contiguous range of global part ids), ``IoU(part) = |pred = part and gt =
part| / |pred = part or gt = part|``, and a part absent from both the prediction and the ground
truth counts as IoU 1; the shape's IoU is the mean over those parts.

* **instance mIoU** = the mean over shapes (the reference's "test iou", the paper's 85.5);
* **class mIoU** = the mean over categories of the mean shape IoU within the category (every
  category weighs the same, however many shapes it has; the reference does not compute it).

Predictions. The reference takes the arg-max over *all* part logits (50 on ShapeNetPart), so a
point can be given a part of another category, which then counts as wrong. Standard ShapeNetPart
practice (PointNet++, DGCNN's TensorFlow evaluation) restricts the arg-max to the logits of the
shape's category, whose label is an input of the model anyway. We report the restricted numbers
as the headline and the unrestricted ones next to them (``*_unrestricted``), which are the
reference's; after fine-tuning the two differ by a few tenths of a point at most.

Any part table works: the 16-category ShapeNetPart one (:meth:`PartTable.standard`) or the demo
dataset's (``demo_meta.json``), see :class:`crosspoint.data.partseg.PartTable`.

Segmenters. :class:`~crosspoint.models.PartSegmenter` is the reference's fine-tuned
``DGCNN_partseg``. :class:`ClsPartSegmenter` is the lighter variant the demo uses: the same
fine-tuning head (:class:`~crosspoint.models.PartSegHead`) on a *classification* DGCNN's per-point
features (the four EdgeConv outputs, 512 channels) and its global feature (max || mean, 2048),
with the encoder frozen or fine-tuned. :func:`load_segmenter` opens either kind of checkpoint.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

log = logging.getLogger(__name__)

__all__ = [
    "as_part_table",
    "is_cls_segmenter",
    "shape_ious",
    "restricted_argmax",
    "partseg_metrics",
    "predict_parts",
    "evaluate_segmenter",
    "ClsPartSegmenter",
    "load_segmenter",
    "checkpoint_part_table",
    "part_table_to_meta",
    "part_table_from_meta",
]


# ------------------------------------------------------------------------------ part tables
def as_part_table(table=None):
    """A :class:`~crosspoint.data.partseg.PartTable` from: None (the standard 16 categories), a
    PartTable, a dataset with a ``table``, a ``demo_meta.json`` dict, the dict of
    :func:`part_table_to_meta`, or ``(starts, counts)``."""
    from crosspoint.data.partseg import PartTable

    if table is None:
        return PartTable.standard()
    if isinstance(table, PartTable):
        return table
    inner = getattr(table, "table", None)
    if isinstance(inner, PartTable):
        return inner
    if isinstance(table, dict):
        if "classes" in table:
            return PartTable.from_demo_meta(table)
        if "part_start" in table:
            return part_table_from_meta(table)
    if isinstance(table, (tuple, list)) and len(table) == 2:
        starts = np.asarray(table[0], dtype=np.int64)
        counts = np.asarray(table[1], dtype=np.int64)
        stops = starts + counts
        return PartTable([f"category_{i}" for i in range(len(starts))], starts, stops, int(stops.max()))
    raise TypeError(f"cannot make a part table from a {type(table).__name__}")


def part_table_to_meta(table) -> dict:
    """The table (anything :func:`as_part_table` takes) as plain types: :meth:`PartTable.to_meta
    <crosspoint.data.partseg.PartTable.to_meta>`."""
    return as_part_table(table).to_meta()


def part_table_from_meta(meta: dict):
    """The :class:`~crosspoint.data.partseg.PartTable` of :func:`part_table_to_meta`'s dict."""
    from crosspoint.data.partseg import PartTable

    return PartTable.from_meta(meta)


# ------------------------------------------------------------------------------ metrics
def _rows(a) -> list[np.ndarray]:
    if isinstance(a, np.ndarray) and a.ndim == 2:
        return list(a)
    return [np.asarray(r).reshape(-1) for r in a]


def shape_ious(pred, target, categories, table=None) -> np.ndarray:
    """``(S,)`` IoU of every shape (see the module docstring). ``pred``/``target``: ``(S, N)``
    global part ids (or lists of per-shape arrays); ``categories``: ``(S,)``."""
    t = as_part_table(table)
    preds, gts = _rows(pred), _rows(target)
    cats = np.asarray(categories).reshape(-1)
    if not (len(preds) == len(gts) == cats.size):
        raise ValueError(f"{len(preds)} predictions, {len(gts)} ground truths and {cats.size} categories")
    out = np.empty(len(preds), dtype=np.float64)
    for s, (p, g, c) in enumerate(zip(preds, gts, cats)):
        if p.shape != g.shape:
            raise ValueError(f"shape {s}: prediction has {p.size} points, ground truth {g.size}")
        a, b = int(t.part_start[c]), int(t.part_stop[c])
        ious = []
        for part in range(a, b):
            pp, gg = p == part, g == part
            union = np.count_nonzero(pp | gg)
            ious.append(1.0 if union == 0 else np.count_nonzero(pp & gg) / union)
        out[s] = float(np.mean(ious))
    return out


def restricted_argmax(logits, categories, table=None):
    """Arg-max over each shape's own category's part logits: ``logits`` ``(S, N, P)`` (NumPy or
    torch, any device) and ``categories`` ``(S,)`` -> global part ids ``(S, N)``."""
    t = as_part_table(table)
    is_torch = isinstance(logits, torch.Tensor)
    num_parts = logits.shape[-1]
    if num_parts < int(t.num_parts):
        raise ValueError(f"{num_parts} part logits but the part table has {t.num_parts} parts")
    allowed = np.zeros((t.num_categories, num_parts), dtype=bool)
    for c, (a, b) in enumerate(t.part_ranges):
        allowed[c, a:b] = True
    if is_torch:
        cats = torch.as_tensor(np.asarray(categories).reshape(-1), device=logits.device, dtype=torch.long)
        mask = torch.as_tensor(allowed, device=logits.device)[cats]  # (S, P)
        masked = logits.masked_fill(~mask[:, None, :], float("-inf"))
        return masked.argmax(dim=-1)
    cats = np.asarray(categories).reshape(-1)
    mask = allowed[cats]
    masked = np.where(mask[:, None, :], np.asarray(logits), -np.inf)
    return masked.argmax(axis=-1)


def partseg_metrics(pred, target, categories, table=None, *, pred_unrestricted=None) -> dict:
    """Instance and class mIoU (fractions, 0..1) and the per-category means::

        {"instance_miou", "class_miou", "point_acc", "shapes",
         "per_category": {name: {"miou", "shapes"}},       # categories present only
         ["instance_miou_unrestricted", "class_miou_unrestricted"]}   # when pred_unrestricted given
    """
    t = as_part_table(table)
    cats = np.asarray(categories).reshape(-1)

    def summary(p):
        ious = shape_ious(p, target, cats, t)
        per = {}
        for c in np.unique(cats):
            sel = ious[cats == c]
            per[str(t.category_names[int(c)])] = {"miou": float(sel.mean()), "shapes": int(sel.size)}
        return ious, per

    ious, per = summary(pred)
    preds, gts = _rows(pred), _rows(target)
    n_points = sum(g.size for g in gts)
    correct = sum(int(np.count_nonzero(p == g)) for p, g in zip(preds, gts))
    out = {
        "instance_miou": float(ious.mean()) if ious.size else float("nan"),
        "class_miou": float(np.mean([v["miou"] for v in per.values()])) if per else float("nan"),
        "point_acc": correct / n_points if n_points else float("nan"),
        "shapes": int(ious.size),
        "per_category": per,
    }
    if pred_unrestricted is not None:
        ious_u, per_u = summary(pred_unrestricted)
        out["instance_miou_unrestricted"] = float(ious_u.mean()) if ious_u.size else float("nan")
        out["class_miou_unrestricted"] = float(np.mean([v["miou"] for v in per_u.values()])) if per_u else float("nan")
    return out


# ------------------------------------------------------------------------------ running a model
def _dataset_items(data):
    """``(len, getter)`` of ``(points, category, part_labels)`` items."""
    pts, cats, labs = (getattr(data, a, None) for a in ("points", "categories", "part_labels"))
    if pts is not None and cats is not None and labs is not None and not hasattr(data, "set_epoch"):
        return len(cats), lambda i: (pts[i], int(cats[i]), labs[i])
    return len(data), lambda i: data[i]


def predict_parts(
    model,
    data,
    table=None,
    *,
    batch_size: int = 16,
    device=None,
    amp: bool = True,
    progress: "Callable[[int, int], None] | None" = None,
    cancel: "Callable[[], bool] | None" = None,
) -> dict:
    """Run a segmenter (``model(points (B, N, 3), categories (B,)) -> logits (B, N, P)``) over a
    part-segmentation dataset (items ``(points, category, part_labels)``) in eval mode. Returns
    ``{"pred", "pred_unrestricted", "target", "categories"}`` (lists of per-shape arrays, global ids)."""
    from crosspoint.device import autocast, resolve_device
    from crosspoint.evaluation.features import EvaluationCancelled

    t = as_part_table(table if table is not None else getattr(data, "table", None))
    if device is None:
        params = list(model.parameters())
        dev = params[0].device if params else torch.device("cpu")
    else:
        dev = resolve_device(device)
        model.to(dev)
    n, get = _dataset_items(data)
    was_training = model.training
    model.eval()
    pred, pred_u, target, categories = [], [], [], []
    try:
        with torch.no_grad():
            start = 0
            while start < n:
                if cancel is not None and cancel():
                    raise EvaluationCancelled("part-segmentation evaluation cancelled")
                items = [get(i) for i in range(start, min(start + batch_size, n))]
                # clouds of one batch must share a size: split where it changes
                groups, cur = [], [items[0]]
                for it in items[1:]:
                    if np.asarray(it[0]).shape[0] == np.asarray(cur[0][0]).shape[0]:
                        cur.append(it)
                    else:
                        groups.append(cur)
                        cur = [it]
                groups.append(cur)
                for grp in groups:
                    pts = torch.from_numpy(np.stack([np.asarray(it[0], np.float32)[:, :3] for it in grp])).to(dev)
                    cat = np.asarray([int(it[1]) for it in grp], dtype=np.int64)
                    with autocast(dev, enabled=amp):
                        logits = model(pts, torch.from_numpy(cat).to(dev))
                    logits = logits.float()
                    pr = restricted_argmax(logits, cat, t).cpu().numpy()
                    pu = logits.argmax(dim=-1).cpu().numpy()
                    for j, it in enumerate(grp):
                        pred.append(pr[j])
                        pred_u.append(pu[j])
                        target.append(np.asarray(it[2], dtype=np.int64).reshape(-1))
                        categories.append(int(it[1]))
                start += len(items)
                if progress is not None:
                    progress(start, n)
    finally:
        model.train(was_training)
    return {"pred": pred, "pred_unrestricted": pred_u, "target": target, "categories": np.asarray(categories, np.int64)}


def evaluate_segmenter(model, data, table=None, *, batch_size: int = 16, device=None, amp: bool = True,
                       progress=None, cancel=None) -> dict:
    """:func:`predict_parts` + :func:`partseg_metrics` (restricted and unrestricted arg-max)."""
    t = as_part_table(table if table is not None else getattr(data, "table", None))
    out = predict_parts(model, data, t, batch_size=batch_size, device=device, amp=amp, progress=progress,
                        cancel=cancel)
    return partseg_metrics(out["pred"], out["target"], out["categories"], t, pred_unrestricted=out["pred_unrestricted"])


# ------------------------------------------------------------------------------ segmenters
class ClsPartSegmenter(nn.Module):
    """``ClsPartSegmenter(backbone: DGCNN, head: PartSegHead, frozen=False)``:
    ``(points (B, N, 3), category (B,) or (B, C) one-hot) -> logits (B, N, parts)``.

    The head reads the classification DGCNN's global feature (``2 * emb_dims`` = 2048: max and
    mean pooling) and its per-point EdgeConv outputs (512 channels), so it is built as
    ``PartSegHead(num_parts, num_categories, emb_dims=2048, local_dims=512)``. ``frozen``: the
    backbone runs without gradients and stays in eval mode (running BatchNorm statistics) under
    ``train()``. ``backbone``/``head`` are the names :func:`~crosspoint.models.model_bundle`
    expects of a ``part_segmenter``.
    """

    def __init__(self, backbone, head, frozen: bool = False):
        super().__init__()
        if getattr(backbone, "arch", None) != "dgcnn":
            raise TypeError(f"ClsPartSegmenter needs a classification DGCNN backbone, got "
                            f"{getattr(backbone, 'arch', type(backbone).__name__)}")
        if head.emb_dims != backbone.feature_dim or head.local_dims != backbone.edge_feature_dim:
            raise ValueError(f"the head expects global {head.emb_dims} / per-point {head.local_dims} channels, the "
                             f"backbone gives {backbone.feature_dim} / {backbone.edge_feature_dim}")
        self.backbone = backbone
        self.head = head
        self.frozen = bool(frozen)
        #: the backbone is a bundle's ``seg_backbone`` (fine-tuned with the head), not its ``point_encoder``
        self.own_backbone = False

    @property
    def k(self) -> int:
        return self.backbone.k

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def features(self, pts: torch.Tensor):
        """``(global (B, 2048), per-point rows (B*N, 512))`` in one backbone pass."""
        from crosspoint.models.layers import pointwise_pool

        bb = self.backbone
        rows = bb._edge_rows(pts)
        mx, mean, _ = pointwise_pool(rows, pts.shape[0], bb.conv5, keep_map=False, mean=True)
        return torch.cat([mx, mean], dim=1), rows

    def forward(self, points, category) -> torch.Tensor:
        from crosspoint.models.base import as_points

        pts = as_points(points, self.backbone._param())
        nc = self.head.num_categories
        category = torch.as_tensor(category, device=pts.device)
        if category.dim() == 1:
            if category.shape[0] != pts.shape[0]:
                raise ValueError(f"category: {category.shape[0]} labels for {pts.shape[0]} clouds")
            if category.dtype.is_floating_point or category.min() < 0 or category.max() >= nc:
                raise ValueError(f"category labels must be integers in [0, {nc})")
            onehot = F.one_hot(category.long(), nc).to(pts.dtype)
        elif category.dim() == 2 and category.shape == (pts.shape[0], nc):
            onehot = category.to(pts.dtype)
        else:
            raise ValueError(f"category must be (B,) labels or (B, {nc}) one-hot, got {tuple(category.shape)}")
        if self.frozen:
            with torch.no_grad():
                g, rows = self.features(pts)
        else:
            g, rows = self.features(pts)
        return self.head(g, rows, onehot)


def is_cls_segmenter(model) -> bool:
    return isinstance(model, ClsPartSegmenter)


def load_segmenter(path, *, k: "int | None" = None, device=None):
    """A segmenter (eval mode) from a checkpoint: an official fine-tuned ``model.t7`` or a project
    checkpoint with a ``dgcnn_partseg`` backbone (-> :class:`~crosspoint.models.PartSegmenter`, via
    :func:`~crosspoint.models.load_part_segmenter`), or a project checkpoint with a ``dgcnn``
    backbone and a seg head (-> :class:`ClsPartSegmenter`; its backbone is the bundle's
    ``seg_backbone`` when it has one, the encoder fine-tuned with the head, else its
    ``point_encoder``). Raises ``CheckpointError``."""
    from crosspoint.models import (
        SEG_BACKBONE_KEY, CheckpointError, build_seg_head, load_part_segmenter, load_point_encoder, read_checkpoint,
    )

    obj = read_checkpoint(path)
    entry = obj.get("point_encoder") if isinstance(obj, dict) and obj.get("format") == "crosspoint-explorer" else None
    if isinstance(entry, dict) and entry.get("arch") == "dgcnn":
        head_entry = obj.get("seg_head")
        if not isinstance(head_entry, dict) or not isinstance(head_entry.get("state_dict"), dict):
            raise CheckpointError(f"{path}: no part-segmentation head in this checkpoint (a pretraining checkpoint? "
                                  "fine-tune it first with `crosspoint finetune-partseg`)")
        # the encoder the head was fine-tuned with, when the bundle carries one beside its pretrained encoder
        own = isinstance(obj.get(SEG_BACKBONE_KEY), dict)
        backbone = load_point_encoder(path, k=k, entry=SEG_BACKBONE_KEY if own else "point_encoder")
        try:
            head = build_seg_head(head_entry.get("arch", "dgcnn_partseg_head"), **dict(head_entry.get("config", {})))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: bad seg_head entry: {exc}") from None
        state = {kk[len("module."):] if kk.startswith("module.") else kk: v for kk, v in head_entry["state_dict"].items()}
        missing, unexpected = set(head.state_dict()) - set(state), set(state) - set(head.state_dict())
        if missing or unexpected:
            raise CheckpointError(f"{path}: seg head does not match: missing {sorted(missing)[:8]}, "
                                  f"unexpected {sorted(unexpected)[:8]}")
        try:
            head.load_state_dict(state, strict=True)
            model = ClsPartSegmenter(backbone, head)
            model.own_backbone = own
        except (RuntimeError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: seg head does not fit: {' '.join(str(exc).split())[:400]}") from None
        model.eval()
        if device is not None:
            from crosspoint.device import resolve_device

            model.to(resolve_device(device))
        return model
    return load_part_segmenter(path, k=k, device=device)


def checkpoint_part_table(path):
    """The part table a segmentation checkpoint was trained with (its ``meta["part_table"]``), or
    None (official files; the standard 16-category table then applies)."""
    from crosspoint.models import read_checkpoint

    obj = read_checkpoint(path)
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if isinstance(meta, dict) and isinstance(meta.get("part_table"), dict):
        try:
            return part_table_from_meta(meta["part_table"])
        except (KeyError, TypeError, ValueError):
            log.warning("%s: unreadable part table in meta; ignoring it", path)
    return None
