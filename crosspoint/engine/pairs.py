"""What pretraining actually shows the encoders: the training-pair inspector (here, beside the engine
whose batches it rebuilds; the explorer's Training > Inspect a Training Pair shows it).

For one object of a pretraining run, :func:`training_pair` rebuilds exactly what the engine feeds
the model at a given epoch: the two augmented point clouds (``points1``, ``points2``, the paper's
augmentations drawn from ``item_rng(seed, epoch, index)``; with ``data.partial_view`` the second may
be a partial view), the rendered view after the image augmentation (``image_tensor``, normalised;
``image``, the same de-normalised for the eye), and the
batch the object is in (the engine's :class:`~crosspoint.engine.pretrain.EpochSampler`: a
permutation fixed by ``(run.seed, epoch)``, cut into whole batches; an object in the dropped
remainder is not trained on that epoch). Nothing is approximated: the items are the ones the
engine's DataLoader reads after ``set_epoch`` (:func:`~crosspoint.engine.pretrain.training_items`; with
the dense term, :class:`~crosspoint.data.dense.DenseItems`), which ``tests/test_training_pairs.py``
checks against the batches a real run feeds its model.

With a model session it embeds the whole batch (projections of both point views and of the images;
in evaluation mode, BatchNorm with its running statistics, where the engine trains in training mode
with the batch's statistics) and reports, for the object, the positive similarity and the hardest
in-batch negatives of both NT-Xent terms with their similarities, and the object's own share of
each loss (:func:`row_losses`, the reference's NT-Xent row by row: their mean over the 2B rows is
:func:`crosspoint.losses.nt_xent`, which the tests check in float64).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from crosspoint.engine.pretrain import PretrainError

Progress = Optional[Callable[[int, int, str], None]]
Cancel = Optional[Callable[[], bool]]


class PairError(PretrainError):
    """A training pair that cannot be shown (an index out of range, a model without an image encoder)."""


def report(progress, done: int, total: int, text: str = "") -> None:
    if progress is not None:
        progress(int(done), int(total), text)


def check_cancel(cancel, what: str) -> None:
    if cancel is not None and cancel():
        raise PairError(f"{what} cancelled")

#: the ImageNet normalisation the image augmentation ends with (torchvision's Normalize)
_MEAN = np.array([0.485, 0.456, 0.406])
_STD = np.array([0.229, 0.224, 0.225])


@dataclass
class Negative:
    index: int  # dataset index of the other object
    name: str
    view: str  # which row of the 2B: "points 1" / "points 2" (intra), "points" / "image" (cross)
    similarity: float


@dataclass
class TrainingPair:
    index: int
    name: str
    epoch: int
    points1: np.ndarray  # (N, 3) float32: the first augmented copy, as the encoder gets it
    points2: np.ndarray  # (N, 3) float32: the second
    image_tensor: np.ndarray  # (3, S, S) float32: the augmented view, normalised, as the encoder gets it
    image: np.ndarray  # (S, S, 3) uint8: the same de-normalised
    batch: "int | None"  # the batch of the epoch the object is in (None: dropped this epoch)
    batch_indices: list  # dataset indices of that batch, in order
    batch_size: int
    temperature: float
    # with a session:
    intra_positive: "float | None" = None  # cosine of the two point views' projections
    cross_positive: "float | None" = None  # cosine of their mean and the image projection
    intra_negatives: list = field(default_factory=list)  # hardest first
    cross_negatives: list = field(default_factory=list)
    intra_loss: "float | None" = None  # the object's two rows of the intra NT-Xent, averaged
    cross_loss: "float | None" = None
    batch_intra_loss: "float | None" = None  # the whole batch's (the engine's loss value)
    batch_cross_loss: "float | None" = None
    intra_rank: "int | None" = None  # how many negatives beat the positive (0: the positive wins)
    cross_rank: "int | None" = None
    note: str = ""
    #: with the dense term: the item's point-pixel links, ``{"idx" (M,) point index, "uv" (M, 2) pixel
    #: in ``image`` (x, y), "valid" (M,) the links the loss uses for copy 1 (the rest is padding or
    #: dropped), "valid2" (M,) for copy 2, "alive"/"alive2" (M,) whether the linked point is still
    #: itself in copy 1 / 2 (not overwritten by the input dropout)}``; None without the dense term
    links: "dict | None" = None


def row_losses(z1: np.ndarray, z2: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """NT-Xent (the reference's SimCLR form, :func:`crosspoint.losses.nt_xent`) row by row, float64:
    ``(losses (2B,), similarities (2B, 2B))``. Row ``i < B`` is ``z1[i]`` choosing ``z2[i]`` among
    the other ``2B - 1`` rows, row ``B + i`` the reverse; the loss is their mean."""
    a = np.asarray(z1, np.float64)
    b = np.asarray(z2, np.float64)
    z = np.concatenate([a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)])
    n = a.shape[0]
    sims = z @ z.T
    logits = sims / float(temperature)
    np.fill_diagonal(logits, -np.inf)
    target = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    m = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(axis=1)) + m[:, 0]
    return lse - logits[np.arange(2 * n), target], sims


def _denormalise(t: np.ndarray) -> np.ndarray:
    x = np.asarray(t, np.float64).transpose(1, 2, 0) * _STD + _MEAN
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def _config(run_or_config, overrides=()):
    from crosspoint.config import PretrainConfig, load_config

    if isinstance(run_or_config, PretrainConfig):
        return run_or_config
    p = Path(run_or_config)
    if p.is_dir():
        p = p / "config.yaml"
    if not p.is_file():
        raise PairError(f"{run_or_config}: neither a run folder with config.yaml nor a config file")
    return load_config(p, overrides)


def open_training_data(run_or_config, *, root=None, overrides=()):
    """``(config, the engine's training items)`` of a run folder (its ``config.yaml``), a config
    file, or a :class:`~crosspoint.config.PretrainConfig`; ``root`` replaces ``data.root``. The items
    are what the engine's DataLoader reads (:func:`~crosspoint.engine.pretrain.training_items`): with
    the dense term, the dense items, whose image augmentation is drawn differently from the plain
    dataset's."""
    from crosspoint.engine.pretrain import build_datasets, resolve_data_root, training_items

    cfg = _config(run_or_config, overrides)
    data_root = resolve_data_root(str(root) if root is not None else cfg.data.root)
    train = training_items(cfg, build_datasets(cfg, data_root)[0])
    if cfg.loss.dense_weight > 0:
        train.dataset.dense_report_alive = True  # the inspector also shows which linked points survived
    return cfg, train


def batch_of(index: int, n: int, *, batch_size: int, seed: int, epoch: int, max_batches: int = 0) -> tuple:
    """``(batch number or None, dataset indices of that batch)``: the engine's EpochSampler on one
    process (``world_size`` 1)."""
    from crosspoint.engine.pretrain import EpochSampler

    s = EpochSampler(n, batch_per_rank=batch_size, world_size=1, rank=0, seed=seed, epoch=epoch,
                     max_batches=max_batches)
    order = list(iter(s))
    if index not in order:
        return None, []
    b = order.index(index) // batch_size
    return b, order[b * batch_size:(b + 1) * batch_size]


def training_pair(run_or_config, index: int, *, epoch: int = 0, session=None, root=None, dataset=None,
                  top_k: int = 5, overrides=(), progress: Progress = None, cancel: Cancel = None) -> TrainingPair:
    """The training pair of object ``index`` (of the run's training split) at ``epoch`` (see the
    module docstring); with ``session``, its batch embedded and its hardest negatives. ``dataset``:
    the engine's training dataset when already open (:func:`open_training_data`)."""
    import torch

    if dataset is None:
        cfg, ds = open_training_data(run_or_config, root=root, overrides=overrides)
    else:
        cfg, ds = _config(run_or_config, overrides), dataset
    n = len(ds)
    if not 0 <= int(index) < n:
        raise PairError(f"object {index} out of range: the training split has {n} objects")
    index = int(index)
    bs = int(cfg.optim.batch_size)
    b, members = batch_of(index, n, batch_size=bs, seed=cfg.run.seed, epoch=epoch,
                          max_batches=cfg.run.max_steps_per_epoch)
    ds.set_epoch(int(epoch))
    names = [o.name for o in ds.objects()]
    item = ds[index]
    pair = TrainingPair(
        index=index, name=names[index], epoch=int(epoch),
        points1=item["points1"].numpy().copy(), points2=item["points2"].numpy().copy(),
        image_tensor=item["image"].numpy().copy(), image=_denormalise(item["image"].numpy()),
        batch=b, batch_indices=list(members), batch_size=bs, temperature=float(cfg.loss.temperature))
    if "dense_idx" in item:
        valid = item["dense_valid"].numpy().astype(bool)
        pair.links = {"idx": item["dense_idx"].numpy().astype(np.int64), "uv": item["dense_uv"].numpy().copy(),
                      "valid": valid, **{k[6:]: item[k].numpy().astype(bool) for k in
                                         ("dense_valid2", "dense_alive", "dense_alive2")}}
    if b is None:
        pair.note = (f"not trained on in epoch {epoch}: the epoch's permutation puts it in the remainder that "
                     f"does not fill a batch of {bs} (drop_last)")
    if session is None or b is None:
        return pair
    if session.image_encoder is None:
        raise PairError(f"{session.path} has no image encoder: no cross-modal pairs to score")
    pe, ie = session.point_encoder, session.image_encoder
    items = []
    for k, j in enumerate(members):
        check_cancel(cancel, "training pair")
        items.append(item if j == index else ds[j])
        report(progress, k + 1, len(members) + 1, f"loading the batch ({k + 1}/{len(members)})")
    p1 = torch.stack([it["points1"] for it in items])
    p2 = torch.stack([it["points2"] for it in items])
    img = torch.stack([it["image"] for it in items])
    with session.inference():
        dev = session.device
        # float64 from here on: the loss rows and the mean of the two point views are exact
        z1 = pe.project_feature(pe.embed(p1.to(dev))).float().cpu().numpy().astype(np.float64)
        z2 = pe.project_feature(pe.embed(p2.to(dev))).float().cpu().numpy().astype(np.float64)
        zi = ie(img.to(dev)).projection.float().cpu().numpy().astype(np.float64)
    report(progress, len(members) + 1, len(members) + 1, "scored")
    me = members.index(index)
    bsz = len(members)
    for kind, (a, c), labels in (("intra", (z1, z2), ("points 1", "points 2")),
                                 ("cross", ((z1 + z2) / 2, zi), ("points", "image"))):
        losses, sims = row_losses(a, c, pair.temperature)
        rows = (me, bsz + me)
        pos = float(sims[me, bsz + me])
        cand = []
        for r in range(2 * bsz):
            if r in rows:
                continue
            cand.append((float(sims[me, r]), r))
        cand.sort(key=lambda t: -t[0])
        negs = [Negative(index=int(members[r % bsz]), name=names[members[r % bsz]], view=labels[r // bsz],
                         similarity=s) for s, r in cand[:max(0, int(top_k))]]
        setattr(pair, f"{kind}_positive", pos)
        setattr(pair, f"{kind}_negatives", negs)
        setattr(pair, f"{kind}_loss", float(losses[list(rows)].mean()))
        setattr(pair, f"batch_{kind}_loss", float(losses.mean()))
        setattr(pair, f"{kind}_rank", int(sum(s > pos for s, _ in cand)))
    return pair
