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

Solver. ``solver="precomputed"`` (default) fits the *same* libsvm problem as
``SVC(kernel="linear")`` but on a precomputed Gram matrix ``X X^T`` (float64, one BLAS call,
reused by every ``C`` and every CV fold). libsvm then looks kernel values up instead of
recomputing 2048-wide dot products: on 8,000 x 2048 features it measured 6-10x faster than
``kernel="linear"`` with identical predictions (figures in docs/RESULTS.md). ``solver="linear"`` is the reference's literal call (no Gram matrix; use it above
~20,000 training objects, where the Gram matrix stops fitting comfortably in memory - the default
switches automatically). ``LinearSVC`` (liblinear: squared hinge, one-vs-rest) is *not* offered:
it solves a different problem, was slower on these features and scored lower.

Everything is deterministic (libsvm's one-vs-one SVC uses no randomness; the CV folds are seeded).
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "C_FIXED",
    "C_GRID",
    "SOLVERS",
    "accuracy_scores",
    "linear_svm_accuracy",
    "linear_svm_scores",
    "cv_accuracy",
    "select_c_by_cv",
    "svm_protocol",
]

#: the reference's hand-set values (notebook: 0.01; pretraining script: 0.1)
C_FIXED = (0.01, 0.1)
#: the cross-validation grid
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
SOLVERS = ("precomputed", "linear")
#: above this many training rows "auto" uses kernel="linear" (the Gram matrix would exceed ~3 GB)
_GRAM_MAX_ROWS = 20000


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


def cv_accuracy(x, y, C: float, *, folds: int = 5, seed: int = 0, solver: str = "auto") -> tuple[float, float]:
    """``(mean, std)`` accuracy (0..1) of a linear SVM with ``C`` over stratified ``folds``-fold
    cross-validation of one labelled set (the folds of :func:`select_c_by_cv`: at most as many as
    the smallest class has objects)."""
    x, y = _check_xy(x, y, "labelled")
    if x.shape[0] < 4:
        raise ValueError(f"cross-validation needs at least 4 objects, got {x.shape[0]}")
    solver = _solver(solver, x.shape[0])
    gram = _gram(x, x) if solver == "precomputed" else None
    accs = []
    for tr, va in _folds(y, folds, seed):
        if solver == "precomputed":
            pred = _fit_predict(gram[np.ix_(tr, tr)], y[tr], gram[np.ix_(va, tr)], C, solver)
        else:
            pred = _fit_predict(None, y[tr], None, C, solver, x[tr], x[va])
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
    progress: "Callable[[int, int], None] | None" = None,
) -> tuple[float, dict]:
    """The ``C`` of ``grid`` with the best mean validation accuracy over stratified ``folds``-fold
    cross-validation of the *training* data (ties: the smaller ``C``), and ``{C: mean accuracy}``.
    Only ``train_x``/``train_y`` are used. ``gram``: ``train_x @ train_x.T`` if already computed."""
    train_x, train_y = _check_xy(train_x, train_y, "training")
    if not grid:
        raise ValueError("empty C grid")
    if train_x.shape[0] < 4:
        raise ValueError(f"cross-validation needs at least 4 training objects, got {train_x.shape[0]}")
    solver = _solver(solver, train_x.shape[0])
    if solver == "precomputed" and gram is None:
        gram = _gram(train_x, train_x)
    splits = _folds(train_y, folds, seed)
    grid = sorted(float(c) for c in grid)
    scores = {c: [] for c in grid}
    total, done = len(grid) * len(splits), 0
    for tr, va in splits:
        if solver == "precomputed":
            k_tr, k_va = gram[np.ix_(tr, tr)], gram[np.ix_(va, tr)]
        for c in grid:
            if solver == "precomputed":
                pred = _fit_predict(k_tr, train_y[tr], k_va, c, solver)
            else:
                pred = _fit_predict(None, train_y[tr], None, c, solver, train_x[tr], train_x[va])
            scores[c].append(float((pred == train_y[va]).mean()))
            done += 1
            if progress is not None:
                progress(done, total)
    means = {c: float(np.mean(v)) for c, v in scores.items()}
    best = max(grid, key=lambda c: (means[c], -c))
    return best, means


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
    seed: int = 0,
    solver: str = "auto",
    progress: "Callable[[str, int, int], None] | None" = None,
) -> dict:
    """The full protocol (see the module docstring). Returns::

        {"fixed": [{"C", "overall_acc", "mean_class_acc"}, ...],       # one per fixed_c
         "cv": {"C", "overall_acc", "mean_class_acc", "folds", "grid", "cv_mean_acc": {C: acc}}
               or None when cv=False,
         "n_train", "n_test", "num_classes", "feature_dim", "solver", "seed"}

    Accuracies are fractions (0..1). ``progress(stage, done, total)`` with stage "cv" or "fit".
    """
    train_x, train_y = _check_xy(train_x, train_y, "training")
    test_x, test_y = _check_xy(test_x, test_y, "test")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"training features are {train_x.shape[1]}-wide, test features {test_x.shape[1]}-wide")
    solver = _solver(solver, train_x.shape[0])
    gram_tr = gram_te = None
    if solver == "precomputed":
        gram_tr = _gram(train_x, train_x)
        gram_te = _gram(test_x, train_x)

    def score(c: float) -> dict:
        if solver == "precomputed":
            pred = _fit_predict(gram_tr, train_y, gram_te, c, solver)
        else:
            pred = _fit_predict(None, train_y, None, c, solver, train_x, test_x)
        return {"C": float(c), **accuracy_scores(test_y, pred)}

    cv_result = None
    if cv:
        cb = (lambda d, t: progress("cv", d, t)) if progress is not None else None
        best, means = select_c_by_cv(train_x, train_y, grid=cv_grid, folds=cv_folds, seed=seed, solver=solver,
                                     gram=gram_tr, progress=cb)
        cv_result = {**score(best), "folds": len(_folds(train_y, cv_folds, seed)),
                     "grid": [float(c) for c in sorted(cv_grid)],
                     "cv_mean_acc": {str(c): a for c, a in means.items()}}
    fixed = []
    for i, c in enumerate(fixed_c):
        fixed.append(score(c))
        if progress is not None:
            progress("fit", i + 1, len(fixed_c))
    return {
        "fixed": fixed,
        "cv": cv_result,
        "n_train": int(train_x.shape[0]),
        "n_test": int(test_x.shape[0]),
        "num_classes": int(np.unique(np.concatenate([train_y, test_y])).size),
        "feature_dim": int(train_x.shape[1]),
        "solver": solver,
        "seed": int(seed),
    }
