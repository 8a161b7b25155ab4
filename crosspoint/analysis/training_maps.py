"""The embedding space over training: one 2-D map per checkpoint of a run, aligned across epochs.

:func:`run_checkpoints` lists a run folder's checkpoints by epoch (``epoch_NNNN.pt`` every
``run.save_every`` epochs, ``last.pt`` at its recorded epoch; ``best.pt`` is a copy of one of them);
:func:`training_maps` embeds one dataset with each (cached like any embedding), optionally with the
seeded random initialisation of the same architecture as epoch 0, and lays the maps out with
umap-learn's :class:`~umap.AlignedUMAP` (each object is the same object in every map, so
neighbouring epochs are drawn alike and movement means the embedding moved), with the linear-SVM
accuracy (cross-validated) and the map's class separation per epoch: how the space organised itself
as the model learned, and whether it still was at the end.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crosspoint.analysis._common import AnalysisError, Cancel, Progress, check_cancel, report

__all__ = ["TrainingMaps", "run_checkpoints", "training_maps", "aligned_maps", "compute_training_maps"]


@dataclass
class TrainingMaps:
    epochs: list  # epoch of each map (0: random initialisation)
    checkpoints: list  # the checkpoint file of each ("random" for epoch 0)
    coords: list  # (M, 2) float32 per epoch, aligned
    svm: list  # (mean, std) cross-validated linear-SVM accuracy per epoch, or None
    quality: list  # map_quality per epoch, or None
    labels: np.ndarray
    class_names: list
    names: list
    refs: list
    method: str  # "aligned-umap" | "umap" (a single map) | "pca" (fallback)


def run_checkpoints(run_dir) -> "list[tuple[int, Path]]":
    """``[(epoch, path)]`` of a run folder's checkpoints, by epoch (``best.pt`` left out: it is a copy)."""
    run = Path(run_dir).expanduser()
    ck = run / "checkpoints"
    if not ck.is_dir():
        raise AnalysisError(f"{run}: not a run folder (no checkpoints/ in it)")
    out = {}
    for p in ck.glob("epoch_*.pt"):
        m = re.fullmatch(r"epoch_(\d+)\.pt", p.name)
        if m:
            out[int(m.group(1))] = p
    last = ck / "last.pt"
    if last.is_file():
        epoch = None
        events = run / "events.jsonl"
        if events.is_file():
            for line in events.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("event") == "checkpoint" and e.get("kind") == "last" and isinstance(e.get("epoch"), int):
                    epoch = e["epoch"]
        if epoch is not None and epoch not in out:
            out[epoch] = last
        elif epoch is None and not out:
            out[1] = last
    if not out:
        raise AnalysisError(f"{ck}: no checkpoints (epoch_NNNN.pt or last.pt)")
    return sorted(out.items())


def aligned_maps(features: list, *, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> "tuple[list, str]":
    """2-D maps of several embeddings of the same objects (row ``i`` is object ``i`` in each), aligned
    with AlignedUMAP; one embedding gets a plain UMAP. Returns ``(coords list, method)``."""
    import warnings

    from crosspoint.analysis.dataset import _import_umap, _pca, ensure_numba_cache_dir

    def prep(f):  # as the single maps (dataset._compute_2d): standardised, PCA to 50 dims
        x = np.asarray(f, np.float64)
        sd = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        return _pca(x, 50, seed)

    xs = [prep(f) for f in features]
    n = xs[0].shape[0]
    if any(x.shape[0] != n for x in xs):
        raise AnalysisError("aligned maps need the same objects in every embedding")
    if n < 4:
        raise AnalysisError(f"{n} objects: too few for a map")
    ensure_numba_cache_dir()
    umap = _import_umap()
    nn = int(min(n_neighbors, n - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(xs) == 1:
            y = umap.UMAP(n_neighbors=nn, min_dist=min_dist, random_state=seed).fit_transform(xs[0])
            return [np.asarray(y, np.float32)], "umap"
        ident = {i: i for i in range(n)}
        model = umap.AlignedUMAP(n_neighbors=nn, min_dist=min_dist, random_state=seed)
        model.fit(xs, relations=[ident] * (len(xs) - 1))
    return [np.asarray(e, np.float32) for e in model.embeddings_], "aligned-umap"


def training_maps(run_dir, data, *, n_points: int = 1024, include_random: bool = True, device: str = "auto",
                  seed: int = 0, cache_dir=None, progress: Progress = None, cancel: Cancel = None) -> TrainingMaps:
    """Embed ``data`` (a dataset folder) with every checkpoint of ``run_dir`` (and, with
    ``include_random``, the random initialisation as epoch 0), and map them aligned (module docstring)."""
    from crosspoint.analysis.background import _quality, _svm
    from crosspoint.analysis.dataset import Projection2D, embed_dataset
    from crosspoint.analysis.session import ModelSession, random_weights_session

    cks = run_checkpoints(run_dir)
    plan = [(e, str(p)) for e, p in cks]
    embs = []
    first = None
    total = len(plan) + (1 if include_random else 0)
    for k, (epoch, path) in enumerate(plan):
        check_cancel(cancel, "embedding over training")
        report(progress, k, total + 1, f"embedding with epoch {epoch} ({Path(path).name})")
        s = ModelSession(path, device=device)
        if first is None:
            first = s
        embs.append(embed_dataset(s, data, n_points=n_points, cache_dir=cache_dir))
        del s
    if include_random:
        check_cancel(cancel, "embedding over training")
        report(progress, len(plan), total + 1, "embedding with the random initialisation")
        rnd = random_weights_session(first, seed=seed)
        embs.insert(0, embed_dataset(rnd, data, n_points=n_points, cache_dir=cache_dir))
        plan.insert(0, (0, "random"))
    refs0 = [str(r) for r in embs[0].refs]
    if any([str(r) for r in e.refs] != refs0 for e in embs):  # pragma: no cover - same data, same listing
        raise AnalysisError("the checkpoints embedded different objects")
    report(progress, total, total + 1, "aligning the maps (AlignedUMAP)")
    coords, method = aligned_maps([e.features for e in embs], seed=seed)
    svm = [_svm(e) for e in embs]
    quality = [_quality(e, Projection2D(c, method, "", False)) for e, c in zip(embs, coords)]
    report(progress, total + 1, total + 1, "done")
    e0 = embs[-1]
    return TrainingMaps([e for e, _ in plan], [p for _, p in plan], coords, svm, quality,
                        np.asarray(e0.labels), list(e0.class_names), list(e0.names), list(e0.refs), method)


def compute_training_maps(run_dir, source, *, device: str = "auto", n_points: int = 1024,
                          progress: Progress = None) -> TrainingMaps:
    """:func:`training_maps` for ``source`` ("demo" or a dataset folder): the explorer's entry point,
    run in a child process (``crosspoint.analysis.background.call_in_subprocess``)."""
    from crosspoint.data.base import resolve_root

    root = str(resolve_root(source, progress=lambda d, t: report(progress, d, t, "generating the demo dataset")))
    return training_maps(run_dir, root, n_points=n_points, device=device, progress=progress)
