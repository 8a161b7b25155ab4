"""The linear-SVM protocol on frozen features (the paper's "linear evaluation").

The reference (``eval_ssl.ipynb``) embeds the training and test splits of ModelNet40 / ScanObjectNN
(first 1024 points of each cloud, eval mode), fits ``sklearn.svm.SVC(C=c, kernel="linear")`` on
the raw training features and reports the test accuracy, with ``c`` set by hand (0.01 in the
notebook, 0.1 in the pretraining script's per-epoch check). :func:`svm_protocol` reports

* the test accuracy at the reference's fixed values ``C = 0.01`` and ``C = 0.1``, and
* the test accuracy at a ``C`` chosen by stratified k-fold cross-validation **on the training
  split only** (grid :data:`C_GRID`; ties go to the smaller ``C``), so that the headline number
  does not depend on a ``C`` picked by looking at the test set;

each as overall accuracy (the paper's number) and mean class accuracy.

Feature scale (``cv_features``). A linear SVM's ``C`` is only meaningful relative to the features'
scale, and encoders differ by orders of magnitude there: the demo checkpoint's features have a
median per-dimension standard deviation of ~0.24, a random-weight DGCNN's ~0.005. On raw features
the fixed grid then stops short of the ``C`` a random encoder needs (measured on the hard demo's
held-out split: the CV picks the grid's top, ``C = 10``, and scores 67.7 %; at ``C = 1000`` raw
features score 86.5 %, standardised ones 90.6 %). A random-weight baseline that loses because of
its scale is not a baseline that could win. So by default (``cv_features="both"``):

* ``"cv"`` is C by CV on **standardised** features (``StandardScaler`` fitted on the training
  rows only: on each fold's training rows inside the CV, on the whole training split for the
  final fit), the preprocessing of the reference's own few-shot protocol; it does not depend on
  the encoder's scale;
* ``"cv_raw"`` is C by CV on the raw features (what ``"cv"`` was before 2026-12-02), with
  ``"at_grid_edge"`` set to ``"top"``/``"bottom"`` when the chosen ``C`` is the grid's end and
  scores better than its neighbour, i.e. when the grid probably cut the search short.

Each CV result says which it is (``"features"``). ``cv_features="raw"`` or ``"standardised"``
computes only that one, under ``"cv"``. The fixed-``C`` results stay on raw features, as the
reference computed them.

Solver. ``solver="precomputed"`` (default) fits the *same* libsvm problem as
``SVC(kernel="linear")`` but on a precomputed Gram matrix ``X X^T`` (float64, one BLAS call,
reused by every ``C`` and every CV fold). libsvm then looks kernel values up instead of
recomputing 2048-wide dot products: on 8,000 x 2048 features it measured 6-10x faster than
``kernel="linear"`` with identical predictions (figures in docs/RESULTS.md). ``solver="linear"`` is the reference's literal call (no Gram matrix; use it above
~20,000 training objects, where the Gram matrix stops fitting comfortably in memory - the default
switches automatically). ``LinearSVC`` (liblinear: squared hinge, one-vs-rest) is *not* offered:
it solves a different problem, was slower on these features and scored lower.

Label efficiency (:func:`label_efficiency`, ``crosspoint eval svm --labels-per-class 1,2,4,...``):
the same classifier trained on only ``n`` labelled objects per class (drawn from the training split,
seeded, the same draws for any encoder of the same data, so two encoders' figures are paired),
standardised on those objects and fitted at a fixed ``C`` (no CV on one object per class), scored
on the whole test split; mean and standard deviation over ``repeats`` draws. What self-supervised
pretraining is for is doing well with few labels, and this says at which ``n`` it does.

Everything is deterministic (libsvm's one-vs-one SVC uses no randomness; the CV folds are seeded).
"""

from __future__ import annotations

import logging
import warnings
from typing import Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "C_FIXED",
    "C_GRID",
    "CV_FEATURES",
    "SOLVERS",
    "accuracy_scores",
    "linear_svm_accuracy",
    "linear_svm_scores",
    "cv_accuracy",
    "grid_edge",
    "label_efficiency",
    "select_c_by_cv",
    "standardise",
    "svm_protocol",
]

#: the reference's hand-set values (notebook: 0.01; pretraining script: 0.1)
C_FIXED = (0.01, 0.1)
#: the cross-validation grid
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
SOLVERS = ("precomputed", "linear")
#: above this many training rows "auto" uses kernel="linear" (the Gram matrix would exceed ~3 GB)
_GRAM_MAX_ROWS = 20000
#: what the CV of :func:`svm_protocol` is run on (see the module docstring)
CV_FEATURES = ("both", "standardised", "raw")


def _check_xy(x, y, what: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    y = np.asarray(y).reshape(-1)
    if x.ndim != 2:
        raise ValueError(f"{what} features must be 2-D (objects, dims), got shape {x.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{what}: {x.shape[0]} feature rows but {y.shape[0]} labels")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: no objects")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} features contain NaN or inf")
    return x, y.astype(np.int64)


def _solver(solver: str, n_train: int) -> str:
    if solver == "auto":
        return "precomputed" if n_train <= _GRAM_MAX_ROWS else "linear"
    if solver not in SOLVERS:
        raise ValueError(f"solver must be 'auto', 'precomputed' or 'linear', got {solver!r}")
    return solver


def accuracy_scores(y_true, y_pred) -> dict:
    """``{"overall_acc", "mean_class_acc"}``: the fraction of correct predictions, and the mean
    over the classes present in ``y_true`` of their per-class accuracy (recall)."""
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    if y_true.size == 0:
        return {"overall_acc": float("nan"), "mean_class_acc": float("nan")}
    correct = y_true == y_pred
    classes = np.unique(y_true)
    per_class = [float(correct[y_true == c].mean()) for c in classes]
    return {"overall_acc": float(correct.mean()), "mean_class_acc": float(np.mean(per_class))}


def _gram(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64) @ np.asarray(b, dtype=np.float64).T


def standardise(train_x, *others) -> list:
    """``StandardScaler`` fitted on ``train_x`` (float64) applied to ``train_x`` and each of
    ``others``: ``[train, *others]``. A constant column is centred and left unscaled (sklearn's rule)."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(np.asarray(train_x, dtype=np.float64))
    return [scaler.transform(np.asarray(a, dtype=np.float64)) for a in (train_x, *others)]


def _fold_data(x, tr, va, solver: str, standardised: bool, gram=None):
    """The (train, validation) blocks one fold's fits need: Gram blocks with ``solver="precomputed"``
    (cut from ``gram`` when given and the features are raw), else feature rows. With ``standardised``
    the scaler is fitted on the fold's training rows only."""
    a, b = x[tr], x[va]
    if standardised:
        a, b = standardise(a, b)
    if solver != "precomputed":
        return a, b
    if gram is not None and not standardised:
        return gram[np.ix_(tr, tr)], gram[np.ix_(va, tr)]
    return _gram(a, a), _gram(b, a)


def _fit_predict(k_train, y_train, k_test, c: float, solver: str, x_train=None, x_test=None) -> np.ndarray:
    """Fit on the training part, predict the test part. With ``solver="precomputed"`` the
    arguments are Gram blocks (train x train, test x train); with "linear" the raw features."""
    from sklearn.svm import SVC

    classes = np.unique(y_train)
    if classes.size == 1:  # libsvm refuses one class; the answer is that class
        n = (k_test if solver == "precomputed" else x_test).shape[0]
        return np.full(n, classes[0], dtype=y_train.dtype)
    if solver == "precomputed":
        clf = SVC(C=float(c), kernel="precomputed")
        clf.fit(k_train, y_train)
        return clf.predict(k_test)
    clf = SVC(C=float(c), kernel="linear")
    clf.fit(x_train, y_train)
    return clf.predict(x_test)


def linear_svm_scores(train_x, train_y, test_x, test_y, C: float, *, solver: str = "auto") -> dict:
    """Fit a linear SVM with ``C`` on the training features, score the test features:
    ``{"C", "overall_acc", "mean_class_acc"}``."""
    train_x, train_y = _check_xy(train_x, train_y, "training")
    test_x, test_y = _check_xy(test_x, test_y, "test")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"training features are {train_x.shape[1]}-wide, test features {test_x.shape[1]}-wide")
    solver = _solver(solver, train_x.shape[0])
    if solver == "precomputed":
        pred = _fit_predict(_gram(train_x, train_x), train_y, _gram(test_x, train_x), C, solver)
    else:
        pred = _fit_predict(None, train_y, None, C, solver, train_x, test_x)
    return {"C": float(C), **accuracy_scores(test_y, pred)}


def linear_svm_accuracy(train_x, train_y, test_x, test_y, C: float, *, solver: str = "auto") -> float:
    """Overall test accuracy (0..1) of a linear SVM with ``C`` fitted on the training features
    (the number the reference prints)."""
    return linear_svm_scores(train_x, train_y, test_x, test_y, C, solver=solver)["overall_acc"]


def _folds(y: np.ndarray, n_folds: int, seed: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(np.unique(y, return_inverse=True)[1])
    k = int(min(n_folds, y.size))
    if counts.min() >= 2:
        k = int(min(k, counts.min()))
        splitter = StratifiedKFold(n_splits=max(k, 2), shuffle=True, random_state=seed)
    else:
        log.warning("a class has a single training object: cross-validation folds are not stratified")
        splitter = KFold(n_splits=max(k, 2), shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(y.size), y))


def _predict(a, y_train, b, c: float, solver: str) -> np.ndarray:
    """:func:`_fit_predict` on the blocks :func:`_fold_data` (or the protocol) made: Gram blocks with
    ``solver="precomputed"``, feature rows otherwise."""
    if solver == "precomputed":
        return _fit_predict(a, y_train, b, c, solver)
    return _fit_predict(None, y_train, None, c, solver, a, b)


def cv_accuracy(x, y, C: float, *, folds: int = 5, seed: int = 0, solver: str = "auto",
                standardised: bool = False) -> tuple[float, float]:
    """``(mean, std)`` accuracy (0..1) of a linear SVM with ``C`` over stratified ``folds``-fold
    cross-validation of one labelled set (the folds of :func:`select_c_by_cv`: at most as many as
    the smallest class has objects). ``standardised``: each fold's features are standardised with
    the statistics of its training rows."""
    x, y = _check_xy(x, y, "labelled")
    if x.shape[0] < 4:
        raise ValueError(f"cross-validation needs at least 4 objects, got {x.shape[0]}")
    solver = _solver(solver, x.shape[0])
    gram = _gram(x, x) if solver == "precomputed" and not standardised else None
    accs = []
    for tr, va in _folds(y, folds, seed):
        a, b = _fold_data(x, tr, va, solver, standardised, gram)
        pred = _predict(a, y[tr], b, C, solver)
        accs.append(float((pred == y[va]).mean()))
    return float(np.mean(accs)), float(np.std(accs))


def select_c_by_cv(
    train_x,
    train_y,
    *,
    grid: Sequence[float] = C_GRID,
    folds: int = 5,
    seed: int = 0,
    solver: str = "auto",
    gram: "np.ndarray | None" = None,
    standardised: bool = False,
    progress: "Callable[[int, int], None] | None" = None,
) -> tuple[float, dict]:
    """The ``C`` of ``grid`` with the best mean validation accuracy over stratified ``folds``-fold
    cross-validation of the *training* data (ties: the smaller ``C``), and ``{C: mean accuracy}``.
    Only ``train_x``/``train_y`` are used. ``gram``: ``train_x @ train_x.T`` if already computed
    (raw features only). ``standardised``: each fold standardised by its training rows' statistics."""
    train_x, train_y = _check_xy(train_x, train_y, "training")
    if not grid:
        raise ValueError("empty C grid")
    if train_x.shape[0] < 4:
        raise ValueError(f"cross-validation needs at least 4 training objects, got {train_x.shape[0]}")
    solver = _solver(solver, train_x.shape[0])
    if solver == "precomputed" and gram is None and not standardised:
        gram = _gram(train_x, train_x)
    splits = _folds(train_y, folds, seed)
    grid = sorted(float(c) for c in grid)
    scores = {c: [] for c in grid}
    total, done = len(grid) * len(splits), 0
    for tr, va in splits:
        a, b = _fold_data(train_x, tr, va, solver, standardised, gram)
        for c in grid:
            pred = _predict(a, train_y[tr], b, c, solver)
            scores[c].append(float((pred == train_y[va]).mean()))
            done += 1
            if progress is not None:
                progress(done, total)
    means = {c: float(np.mean(v)) for c, v in scores.items()}
    best = max(grid, key=lambda c: (means[c], -c))
    return best, means


def grid_edge(c: float, means: dict) -> "str | None":
    """``"top"``/``"bottom"`` when ``c`` is the largest/smallest ``C`` of the CV scores ``means``
    ({C: mean accuracy}, more than one value) and scores strictly better than its neighbour in the
    grid: the accuracy was still rising at the grid's end, so the best ``C`` may lie beyond it.
    Else None (an interior optimum, or a tie at the end)."""
    g = sorted(float(v) for v in means)
    m = {float(k): float(v) for k, v in means.items()}
    if len(g) < 2:
        return None
    if float(c) == g[-1] and m[g[-1]] > m[g[-2]]:
        return "top"
    if float(c) == g[0] and m[g[0]] > m[g[1]]:
        return "bottom"
    return None


def label_efficiency(
    train_x,
    train_y,
    test_x=None,
    test_y=None,
    *,
    per_class: Sequence[int] = (1, 2, 4, 8, 16),
    repeats: int = 10,
    C: float = 1.0,
    seed: int = 0,
    max_test: "int | None" = None,
    progress: "Callable[[int, int], None] | None" = None,
) -> list:
    """Test accuracy of a linear SVM trained on ``n`` labelled objects per class, for each ``n`` of
    ``per_class`` (see the module docstring). Returns ``[{"per_class", "repeats", "C", "mean", "std",
    "accs"}, ...]`` (accuracies 0..1; ``std`` with ``ddof=0``). Draw ``r`` of ``n`` uses
    ``numpy.random.default_rng([seed, n, r])``: one shuffled permutation of each class's training rows,
    its first ``n``; so the draws depend only on the labels, and the same rows serve any encoder.

    Without ``test_x``/``test_y`` (one labelled set, as the explorer's map has), each draw is scored on
    the rows it did not draw; ``max_test`` caps them by a seeded subsample (from the same generator,
    so still the same rows for any encoder). Raises ``ValueError`` when some class has fewer than
    ``n`` training objects (no more than ``n`` without a test split: it must keep one to score)."""
    train_x, train_y = _check_xy(train_x, train_y, "training")
    held_out = test_x is None
    if held_out != (test_y is None):
        raise ValueError("give both test_x and test_y, or neither")
    if not held_out:
        test_x, test_y = _check_xy(test_x, test_y, "test")
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    classes, counts = np.unique(train_y, return_counts=True)
    if classes.size < 2:
        raise ValueError("label efficiency needs at least two classes")
    sizes = [int(n) for n in per_class]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"labels per class must be >= 1, got {list(per_class)}")
    if max(sizes) + int(held_out) > counts.min():
        raise ValueError(f"{max(sizes)} labelled objects per class asked, but class {classes[counts.argmin()]} has "
                         f"{counts.min()} training objects" + (" (one must be left to score)" if held_out else ""))
    rows = [np.flatnonzero(train_y == c) for c in classes]
    out, done, total = [], 0, len(sizes) * repeats
    for n in sizes:
        accs = []
        for r in range(repeats):
            rng = np.random.default_rng([int(seed), n, r])
            pick = np.concatenate([rng.permutation(ix)[:n] for ix in rows])
            if held_out:
                rest = np.setdiff1d(np.arange(train_y.size), pick)
                if max_test is not None and rest.size > max_test:
                    rest = np.sort(rng.choice(rest, size=int(max_test), replace=False))
                tx, ty = train_x[rest], train_y[rest]
            else:
                tx, ty = test_x, test_y
            a, b = standardise(train_x[pick], tx)
            with warnings.catch_warnings():  # n = 1: as many classes as samples is the point, not a regression target
                warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
                pred = _fit_predict(_gram(a, a), train_y[pick], _gram(b, a), C, "precomputed")
            accs.append(float((pred == ty).mean()))
            done += 1
            if progress is not None:
                progress(done, total)
        out.append({"per_class": n, "repeats": int(repeats), "C": float(C), "mean": float(np.mean(accs)),
                    "std": float(np.std(accs)), "accs": accs})
    return out


def svm_protocol(
    train_x,
    train_y,
    test_x,
    test_y,
    *,
    fixed_c: Sequence[float] = C_FIXED,
    cv: bool = True,
    cv_grid: Sequence[float] = C_GRID,
    cv_folds: int = 5,
    cv_features: str = "both",
    seed: int = 0,
    solver: str = "auto",
    progress: "Callable[[str, int, int], None] | None" = None,
) -> dict:
    """The full protocol (see the module docstring). Returns::

        {"fixed": [{"C", "overall_acc", "mean_class_acc"}, ...],       # one per fixed_c, raw features
         "cv": {"C", "overall_acc", "mean_class_acc", "features", "folds", "grid", "at_grid_edge",
                "cv_mean_acc": {C: acc}} or None when cv=False,
         "cv_raw": the same on raw features (cv_features="both" only),
         "n_train", "n_test", "num_classes", "feature_dim", "solver", "seed"}

    Accuracies are fractions (0..1). ``progress(stage, done, total)`` with stage "cv" or "fit".
    """
    train_x, train_y = _check_xy(train_x, train_y, "training")
    test_x, test_y = _check_xy(test_x, test_y, "test")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"training features are {train_x.shape[1]}-wide, test features {test_x.shape[1]}-wide")
    if cv_features not in CV_FEATURES:
        raise ValueError(f"cv_features must be one of {CV_FEATURES}, got {cv_features!r}")
    solver = _solver(solver, train_x.shape[0])
    raw_blocks = None

    def blocks(standardised: bool):
        nonlocal raw_blocks
        if not standardised and raw_blocks is not None:
            return raw_blocks
        a, b = standardise(train_x, test_x) if standardised else (train_x, test_x)
        out = (_gram(a, a), _gram(b, a)) if solver == "precomputed" else (a, b)
        if not standardised:
            raw_blocks = out
        return out

    def score(c: float, standardised: bool = False) -> dict:
        a, b = blocks(standardised)
        return {"C": float(c), **accuracy_scores(test_y, _predict(a, train_y, b, c, solver))}

    kinds = {"both": (("cv", True), ("cv_raw", False)), "standardised": (("cv", True),),
             "raw": (("cv", False),)}[cv_features] if cv else ()
    n_folds = len(_folds(train_y, cv_folds, seed))
    per_kind = len(cv_grid) * n_folds
    results = {"cv": None}
    for i, (key, standardised) in enumerate(kinds):
        cb = ((lambda d, t, o=i * per_kind: progress("cv", o + d, len(kinds) * per_kind))
              if progress is not None else None)
        gram = blocks(False)[0] if solver == "precomputed" and not standardised else None
        best, means = select_c_by_cv(train_x, train_y, grid=cv_grid, folds=cv_folds, seed=seed, solver=solver,
                                     gram=gram, standardised=standardised, progress=cb)
        edge = grid_edge(best, means)
        if edge is not None:
            log.warning("C by CV on %s features chose the grid's %s (C = %g): the best C may lie outside the grid",
                        "standardised" if standardised else "raw", edge, best)
        results[key] = {**score(best, standardised), "features": "standardised" if standardised else "raw",
                        "folds": n_folds, "grid": [float(c) for c in sorted(cv_grid)],
                        "at_grid_edge": edge, "cv_mean_acc": {str(c): a for c, a in means.items()}}
    fixed = []
    for i, c in enumerate(fixed_c):
        fixed.append(score(c))
        if progress is not None:
            progress("fit", i + 1, len(fixed_c))
    return {
        "fixed": fixed,
        **results,
        "n_train": int(train_x.shape[0]),
        "n_test": int(test_x.shape[0]),
        "num_classes": int(np.unique(np.concatenate([train_y, test_y])).size),
        "feature_dim": int(train_x.shape[1]),
        "solver": solver,
        "seed": int(seed),
    }
