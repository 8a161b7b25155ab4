"""Long analyses in a child process, so that the caller's interpreter stays responsive.

Embedding a dataset and fitting UMAP run Python-level and numba code that holds the GIL for
hundreds of milliseconds at a time (measured on the demo: 190 ms gaps while embedding, 340 ms
while UMAP compiles and fits). In a GUI that is a visible freeze even though the work runs in a
thread. :func:`call_in_subprocess` runs a module-level function in a fresh ``spawn`` process
instead: progress comes back through a queue, ``cancel()`` terminates the child, and the child's
exceptions come back as :class:`AnalysisError` (or :class:`Cancelled`).

:func:`embed_and_map` is the explorer's "Embed + UMAP": cached results are returned in-process at
once; anything to compute goes to a child process (one second or two of start-up).
"""

from __future__ import annotations

import logging
import queue
from dataclasses import dataclass

from crosspoint.analysis._common import AnalysisError, Cancel, Cancelled, Progress, check_cancel, report
from crosspoint.data.base import DEMO_DATA_KEYWORDS

log = logging.getLogger(__name__)

__all__ = ["call_in_subprocess", "embed_and_map", "EmbeddingMap"]


def _child(q, func, args, kwargs) -> None:  # pragma: no cover - runs in the child process
    def progress(done, total, text=""):
        q.put(("progress", (int(done), int(total), str(text))))

    try:
        q.put(("result", func(*args, progress=progress, **kwargs)))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent as text
        q.put(("error", (type(exc).__name__, str(exc), isinstance(exc, Cancelled))))


def call_in_subprocess(func, *args, progress: Progress = None, cancel: Cancel = None, poll_s: float = 0.05,
                       **kwargs):
    """``func(*args, progress=..., **kwargs)`` in a spawned child process; its return value (which
    must pickle) comes back. ``cancel()`` is polled every ``poll_s`` and kills the child."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_child, args=(q, func, args, kwargs), daemon=True, name="crosspoint-analysis")
    proc.start()
    try:
        while True:
            if cancel is not None and cancel():
                proc.terminate()
                raise Cancelled(getattr(func, "__name__", "analysis"))
            try:
                kind, payload = q.get(timeout=poll_s)
            except queue.Empty:
                if not proc.is_alive() and q.empty():
                    raise AnalysisError(f"the analysis process ended without a result (exit code {proc.exitcode})")
                continue
            if kind == "progress":
                report(progress, *payload)
            elif kind == "result":
                return payload
            else:
                name, message, cancelled = payload
                if cancelled:
                    raise Cancelled(message)
                raise AnalysisError(message if name in ("AnalysisError", "ReadError", "ValueError")
                                    else f"{name}: {message}")
    finally:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
        q.close()


@dataclass
class EmbeddingMap:
    """What "Embed + UMAP" shows: the embedding, its 2-D map, the linear-SVM CV accuracy and how
    well the map keeps the classes apart (:func:`~crosspoint.analysis.dataset.map_quality`); with
    ``compare_random``, ``baseline`` is the same for random weights of the same architecture."""

    root: "str | None"  # the dataset folder (None for a list of files)
    embedding: "object"  # DatasetEmbedding
    projection: "object"  # Projection2D
    svm: "tuple[float, float] | None"
    quality: "dict | None" = None  # {"silhouette", "knn_acc", "k", "n"}
    baseline: "EmbeddingMap | None" = None
    overlay: "Overlay | None" = None
    #: with ``compare_random``: :func:`labels_curve` of this map's embedding (the baseline has its own, on
    #: the same draws), the figure that says where pretraining matters: with few labels
    labels_curve: "list | None" = None


#: labelled objects per class, draws and test cap of :func:`labels_curve`
LABELS_PER_CLASS = (1, 2, 4, 8)
LABELS_REPEATS = 5
LABELS_MAX_TEST = 4000


def labels_curve(emb) -> "list | None":
    """Label efficiency on a map's own objects: the standardised linear SVM (C = 1) fitted on n labelled
    objects per class (n of :data:`LABELS_PER_CLASS` below the smallest class's size, classes of two or
    more objects), scored on the objects not drawn (at most :data:`LABELS_MAX_TEST`),
    :data:`LABELS_REPEATS` seeded draws (:func:`crosspoint.evaluation.svm.label_efficiency`; the draws
    depend on the labels only, so two encoders' curves are paired). None without two such classes."""
    import numpy as np

    from crosspoint.evaluation.svm import label_efficiency

    y = np.asarray(emb.labels).reshape(-1)
    classes, counts = np.unique(y[y >= 0], return_counts=True)
    keep = np.isin(y, classes[counts >= 2])
    if classes[counts >= 2].size < 2:
        return None
    sizes = [n for n in LABELS_PER_CLASS if n < counts[counts >= 2].min()]
    if not sizes:
        return None
    x = np.asarray(emb.features)
    if not keep.all():  # (a copy; a map of only labelled objects is used as it is)
        x, y = x[keep], y[keep]
    return label_efficiency(x, y, per_class=sizes, repeats=LABELS_REPEATS, C=1.0, seed=0, max_test=LABELS_MAX_TEST)


@dataclass
class Overlay:
    """A second dataset mapped onto the same 2-D map (domain shift made visible: a dataset's partial
    scans over its whole objects, a folder of your meshes over a benchmark). ``embedding.labels`` are
    in the main map's classes (by class name; -1 where the main data has no such class);
    ``transfer_acc`` is the accuracy on the overlay (shared classes) of a linear SVM (C = 0.1) fit
    on the main data's features (standardised by the main data's statistics, as :func:`svm_accuracy`), the figure that says how far the domains are apart for a
    classifier; None without shared labelled classes."""

    source: str
    embedding: "object"  # DatasetEmbedding
    coords: "object"  # (M2, 2) float32
    transfer_acc: "float | None"
    n_shared: int = 0


def _quality(emb, proj) -> "dict | None":
    from crosspoint.analysis.dataset import map_quality

    if (emb.labels >= 0).sum() < 10:
        return None
    q = map_quality(proj.coords, emb.labels)
    return q if q["silhouette"] == q["silhouette"] else None


def _svm(emb) -> "tuple[float, float] | None":
    from crosspoint.analysis.dataset import svm_accuracy

    if (emb.labels >= 0).sum() < 10:
        return None
    try:
        return svm_accuracy(emb.features, emb.labels)
    except AnalysisError:
        return None


def _compute(spec: dict, source, *, progress: Progress = None, n_points: int = 1024) -> EmbeddingMap:
    """Child-process side of :func:`embed_and_map` (also usable in-process)."""
    from crosspoint.analysis.dataset import embed_dataset, ensure_numba_cache_dir, project_2d
    from crosspoint.analysis.session import ModelSession

    root = source
    if source in DEMO_DATA_KEYWORDS:
        from crosspoint.data.base import resolve_root

        report(progress, 0, 0, "preparing the demo dataset (first time only)")
        root = str(resolve_root(source, progress=lambda d, t: report(progress, d, t, "generating the demo dataset")))
    report(progress, 0, 0, "loading the checkpoint")
    session = ModelSession(spec["checkpoint"], device=spec.get("device", "auto"), k=spec.get("k"),
                           image_checkpoint=spec.get("image_checkpoint"),
                           image_arch=spec.get("image_arch", "resnet50"))
    emb = embed_dataset(session, root, n_points=n_points, progress=progress)
    ensure_numba_cache_dir()
    proj = project_2d(emb.features, progress=progress)
    return EmbeddingMap(root if isinstance(root, str) else None, emb, proj, _svm(emb), _quality(emb, proj))


def _compute_overlay(spec: dict, main_features, main_labels, class_names, overlay_source, *,
                     progress: Progress = None, n_points: int = 1024):
    """Child-process side of the overlay: embed ``overlay_source``, map both datasets together,
    score the transfer SVM. Returns ``(main coords, Projection2D fields, Overlay)``."""
    import numpy as np

    from crosspoint.analysis.dataset import embed_dataset, ensure_numba_cache_dir, project_2d
    from crosspoint.analysis.session import ModelSession

    report(progress, 0, 0, "overlay: loading the checkpoint")
    session = ModelSession(spec["checkpoint"], device=spec.get("device", "auto"), k=spec.get("k"),
                           image_checkpoint=spec.get("image_checkpoint"),
                           image_arch=spec.get("image_arch", "resnet50"))
    emb2 = embed_dataset(session, overlay_source, n_points=n_points,
                         progress=lambda d, t, txt="": report(progress, d, t, f"overlay: {txt}"))
    index = {str(name): i for i, name in enumerate(class_names)}
    lab2 = np.array([index.get(str(emb2.class_names[k]), -1) if 0 <= k < len(emb2.class_names) else -1
                     for k in np.asarray(emb2.labels)], np.int64)
    emb2.labels = lab2
    emb2.class_names = list(class_names)
    x1 = np.asarray(main_features, np.float32)
    ensure_numba_cache_dir()
    proj = project_2d(np.concatenate([x1, np.asarray(emb2.features, np.float32)]), progress=progress)
    y1 = np.asarray(main_labels, np.int64)
    shared = np.intersect1d(np.unique(y1[y1 >= 0]), np.unique(lab2[lab2 >= 0]))
    transfer = None
    if shared.size >= 2 and np.unique(y1[y1 >= 0]).size >= 2:
        from crosspoint.evaluation.svm import standardise, svm_protocol

        keep1, keep2 = y1 >= 0, np.isin(lab2, shared)
        a, b = standardise(x1[keep1], np.asarray(emb2.features)[keep2])
        res = svm_protocol(a, y1[keep1], b, lab2[keep2], fixed_c=(0.1,), cv=False)
        transfer = float(res["fixed"][0]["overall_acc"])
    coords = np.asarray(proj.coords, np.float32)
    ov = Overlay(str(overlay_source), emb2, coords[len(x1):], transfer, int(shared.size))
    return coords[:len(x1)], (proj.method, proj.note, proj.from_cache), ov


def _add_overlay(m: EmbeddingMap, session, overlay_source, *, n_points: int, progress: Progress, cancel: Cancel,
                 in_process: bool) -> None:
    from crosspoint.analysis.dataset import Projection2D

    args = (session.spec, m.embedding.features, m.embedding.labels, list(m.embedding.class_names), overlay_source)
    if in_process:
        main_xy, (method, note, cached), ov = _compute_overlay(*args, progress=progress, n_points=n_points)
    else:
        main_xy, (method, note, cached), ov = call_in_subprocess(_compute_overlay, *args, progress=progress,
                                                                 cancel=cancel, n_points=n_points)
    m.projection = Projection2D(main_xy, method, f"{note}; mapped together with the overlay".lstrip("; "), cached)
    m.quality = _quality(m.embedding, m.projection)
    m.overlay = ov


def embed_and_map(session, source, *, n_points: int = 1024, progress: Progress = None, cancel: Cancel = None,
                  in_process: bool = False, compare_random: bool = False, overlay=None) -> EmbeddingMap:
    """Embed ``source`` (a dataset folder, a list of files, or ``"demo"``) with ``session``'s point
    encoder, map it to 2-D with UMAP, and score a linear SVM and the map's class separation. Cached
    results come back at once; the rest is computed in a child process (``in_process=True`` computes
    here). ``compare_random``: the same for a seeded random-weight encoder of the same architecture
    (:func:`~crosspoint.analysis.session.random_weights_session`), in ``.baseline``: the picture
    that shows what pretraining changed, and the figure a clustered-looking map must beat.
    ``overlay`` (a dataset folder, a list of files, or ``"scans"``: the partial scans beside the
    data): embedded too and mapped with ``source`` in one UMAP (:class:`Overlay`, in ``.overlay``;
    the baseline gets its own)."""
    m = _embed_and_map(session, source, n_points=n_points, progress=progress, cancel=cancel, in_process=in_process)
    if overlay == "scans":  # the partial scans that `crosspoint make-demo` writes beside the objects
        from pathlib import Path

        scans = Path(str(m.root)) / "scans" if m.root is not None else None
        if scans is None or not scans.is_dir():
            raise AnalysisError(f"{m.root or 'these objects'}: no partial scans beside them (a 'scans' folder, as "
                                "`crosspoint make-demo` writes)")
        overlay = str(scans)
    if overlay is not None:
        check_cancel(cancel, "dataset embedding")
        _add_overlay(m, session, overlay, n_points=n_points, progress=progress, cancel=cancel, in_process=in_process)
    if compare_random:
        from crosspoint.analysis.session import random_weights_session

        check_cancel(cancel, "dataset embedding")
        report(progress, 0, 0, "random weights: preparing the baseline encoder")
        rnd = random_weights_session(session)

        def rprogress(done, total, text=""):
            report(progress, done, total, f"random weights: {text}")

        m.baseline = _embed_and_map(rnd, source, n_points=n_points, progress=rprogress, cancel=cancel,
                                    in_process=in_process)
        report(progress, 0, 0, "scoring both encoders with few labels")
        m.labels_curve, m.baseline.labels_curve = labels_curve(m.embedding), labels_curve(m.baseline.embedding)
        if overlay is not None:
            _add_overlay(m.baseline, rnd, overlay, n_points=n_points, progress=rprogress, cancel=cancel,
                         in_process=in_process)
    return m


def _embed_and_map(session, source, *, n_points: int, progress: Progress, cancel: Cancel,
                   in_process: bool) -> EmbeddingMap:
    from crosspoint.analysis.dataset import embed_dataset, project_2d

    root = source
    if source in DEMO_DATA_KEYWORDS:
        from crosspoint.data.demo import keyword_demo_dir

        d = keyword_demo_dir(source)
        root = str(d) if (d / "demo_meta.json").is_file() else None
    if root is not None:
        emb = embed_dataset(session, root, n_points=n_points, cache_only=True, progress=progress)
        if emb is not None:
            proj = project_2d(emb.features, cache_only=True, progress=progress)
            if proj is not None:
                return EmbeddingMap(root if isinstance(root, str) else None, emb, proj, _svm(emb), _quality(emb, proj))
    check_cancel(cancel, "dataset embedding")
    if in_process:
        return _compute(session.spec, source, progress=progress, n_points=n_points)
    return call_in_subprocess(_compute, session.spec, source, progress=progress, cancel=cancel, n_points=n_points)
