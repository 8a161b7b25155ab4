"""N-way K-shot few-shot classification on frozen features, as the reference's ``eval_fewshot.py``.

One episode (:func:`sample_episode`), as the reference draws it:

1. ``n_way`` classes with ``random.sample`` (without replacement);
2. for each class, ``k_shot`` support objects with ``random.sample`` from that class's objects,
   then ``n_query`` query objects from the *remaining* objects of the class (so support and
   queries are disjoint), both from the **training split**;
3. the support features are standardised (``StandardScaler`` fitted on the support set only), a
   ``SVC(kernel="linear")`` with sklearn's default ``C = 1`` is fitted on them, and the episode's
   accuracy is its accuracy on the standardised queries;

and the protocol reports the mean and standard deviation (NumPy's, ``ddof=0``, as the reference)
of the accuracy over ``runs`` episodes, in percent.

Differences from the reference, on purpose:

* **seeded**: every episode draws from one ``random.Random(seed)``, so a run is reproducible
  (the reference used the unseeded global ``random``);
* classes are drawn among those that have enough objects for the episode (the reference drew from
  all classes and crashed when it drew a class that was too small; when every class is large
  enough the two draw alike);
* features are extracted once per object and indexed per episode (the reference re-embedded
  every support and query object of every episode, one at a time);
* ``query_split="test"`` draws the queries from the test split instead (support from train):
  queries are then objects the encoder's downstream user never labels, which is the stricter
  reading of few-shot evaluation. The default ``"train"`` is the reference's (and the paper's)
  protocol; the two give different numbers, so always say which one a figure used.

Presets (:func:`protocol_settings`, ``crosspoint eval fewshot --protocol``):

* ``"default"``: the encoder with the k it was trained with (an official file: 15), 10 runs, 20
  queries per class from the training split, ``C = 1``, bf16 autocast on CUDA;
* ``"reference"``: what the reference's ``eval_fewshot.py`` run by ``scripts/fsl_script.sh`` did:
  the DGCNN built with ``k = 5`` (the script's argparse default; ``fsl_script.sh`` passes no
  ``--k``, so a checkpoint pretrained with k = 15 is evaluated with k = 5), ``--n_runs 50``,
  ``n_query`` 20 from the training split, ``StandardScaler`` + ``SVC(kernel='linear')`` at
  sklearn's default ``C = 1``, float32 (no autocast). Its episodes are still seeded here.

Settings given explicitly (not None) override either preset.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["Episode", "class_index", "sample_episode", "episode_accuracy", "run_fewshot", "fewshot_grid",
           "PROTOCOLS", "protocol_settings"]

#: the few-shot presets (see the module docstring); ``k`` None = the checkpoint's own k
PROTOCOLS = {
    "default": {"k": None, "runs": 10, "n_query": 20, "query_split": "train", "C": 1.0, "amp": True},
    "reference": {"k": 5, "runs": 50, "n_query": 20, "query_split": "train", "C": 1.0, "amp": False},
}


def protocol_settings(protocol: str = "default", **explicit) -> dict:
    """The settings of a few-shot run: the preset ``protocol`` ("default" or "reference") with every
    ``explicit`` setting that is not None (``k``, ``runs``, ``n_query``, ``query_split``, ``C``,
    ``amp``) overriding it. Returns ``{"protocol", **settings, "overridden": [names]}``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown few-shot protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    out = dict(PROTOCOLS[protocol])
    unknown = set(explicit) - set(out)
    if unknown:
        raise TypeError(f"unknown few-shot setting(s): {', '.join(sorted(unknown))}")
    overridden = []
    for key, value in explicit.items():
        if value is not None:
            if value != out[key]:
                overridden.append(key)
            out[key] = value
    return {"protocol": protocol, **out, "overridden": sorted(overridden)}


@dataclass(frozen=True)
class Episode:
    """One episode: the sampled ``classes`` (original labels, in episode order) and the object
    indices of the support and query sets with their episode labels ``0..n_way-1``.
    ``support_idx`` indexes the support split, ``query_idx`` the query split (the same array
    when queries come from train)."""

    classes: tuple
    support_idx: np.ndarray
    support_y: np.ndarray
    query_idx: np.ndarray
    query_y: np.ndarray


def class_index(labels) -> dict[int, list[int]]:
    """``{label: [object indices]}`` (indices ascending)."""
    labels = np.asarray(labels).reshape(-1)
    out: dict[int, list[int]] = {}
    for i, c in enumerate(labels.tolist()):
        out.setdefault(int(c), []).append(i)
    return out


def sample_episode(
    support_index: dict[int, list[int]],
    n_way: int,
    k_shot: int,
    n_query: int,
    rng: random.Random,
    query_index: "dict[int, list[int]] | None" = None,
) -> Episode:
    """Draw one episode (see the module docstring). ``support_index`` / ``query_index`` map a
    class to its object indices (:func:`class_index`); ``query_index=None`` draws the queries
    from the support split, disjoint from the support objects."""
    if n_way < 1 or k_shot < 1 or n_query < 1:
        raise ValueError("n_way, k_shot and n_query must be >= 1")
    same = query_index is None
    if same:
        eligible = [c for c in sorted(support_index) if len(support_index[c]) >= k_shot + n_query]
    else:
        eligible = [c for c in sorted(support_index)
                    if len(support_index[c]) >= k_shot and len(query_index.get(c, ())) >= n_query]
    if len(eligible) < n_way:
        need = f"{k_shot + n_query} training objects" if same else f"{k_shot} training and {n_query} test objects"
        raise ValueError(f"{n_way}-way {k_shot}-shot with {n_query} queries per class needs {n_way} classes with "
                         f"at least {need} each; only {len(eligible)} have that many")
    classes = rng.sample(eligible, n_way)
    s_idx, s_y, q_idx, q_y = [], [], [], []
    for i, c in enumerate(classes):
        pool = support_index[c]
        sup = rng.sample(pool, k_shot)
        if same:
            chosen = set(sup)
            rest = [j for j in pool if j not in chosen]
        else:
            rest = list(query_index[c])
        qry = rng.sample(rest, n_query)
        s_idx += sup
        q_idx += qry
        s_y += [i] * k_shot
        q_y += [i] * n_query
    return Episode(tuple(int(c) for c in classes), np.asarray(s_idx, np.int64), np.asarray(s_y, np.int64),
                   np.asarray(q_idx, np.int64), np.asarray(q_y, np.int64))


def episode_accuracy(support_x, support_y, query_x, query_y, *, C: float = 1.0) -> float:
    """Accuracy (0..1) of the reference's episode classifier: ``StandardScaler`` fitted on the
    support features, then ``SVC(kernel="linear", C=C)``."""
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    scaler = StandardScaler()
    xs = scaler.fit_transform(np.asarray(support_x, dtype=np.float64))
    xq = scaler.transform(np.asarray(query_x, dtype=np.float64))
    clf = SVC(C=float(C), kernel="linear")
    clf.fit(xs, support_y)
    return float(clf.score(xq, query_y))


def run_fewshot(
    train_x,
    train_y,
    *,
    n_way: int,
    k_shot: int,
    n_query: int = 20,
    runs: int = 10,
    seed: int = 0,
    test_x=None,
    test_y=None,
    query_split: str = "train",
    C: float = 1.0,
    progress: "Callable[[int, int], None] | None" = None,
    cancel: "Callable[[], bool] | None" = None,
) -> dict:
    """``runs`` episodes of ``n_way``-way ``k_shot``-shot classification. Returns
    ``{"n_way", "k_shot", "n_query", "runs", "seed", "query_split", "mean", "std", "accs"}`` with
    accuracies in percent (``std``: population standard deviation, as the reference)."""
    train_x = np.asarray(train_x)
    train_y = np.asarray(train_y).reshape(-1)
    if train_x.ndim != 2 or train_x.shape[0] != train_y.shape[0]:
        raise ValueError(f"training features {train_x.shape} do not match {train_y.shape[0]} labels")
    if runs < 1:
        raise ValueError("runs must be >= 1")
    if query_split not in ("train", "test"):
        raise ValueError(f"query_split must be 'train' or 'test', got {query_split!r}")
    s_index = class_index(train_y)
    if query_split == "test":
        if test_x is None or test_y is None:
            raise ValueError("query_split='test' needs test_x and test_y")
        q_x = np.asarray(test_x)
        q_index = class_index(test_y)
    else:
        q_x, q_index = train_x, None
    rng = random.Random(int(seed))
    accs = []
    for r in range(runs):
        if cancel is not None and cancel():
            from crosspoint.evaluation.features import EvaluationCancelled

            raise EvaluationCancelled("few-shot evaluation cancelled")
        ep = sample_episode(s_index, n_way, k_shot, n_query, rng, q_index)
        accs.append(100.0 * episode_accuracy(train_x[ep.support_idx], ep.support_y, q_x[ep.query_idx], ep.query_y, C=C))
        if progress is not None:
            progress(r + 1, runs)
    accs_a = np.asarray(accs)
    return {"n_way": int(n_way), "k_shot": int(k_shot), "n_query": int(n_query), "runs": int(runs),
            "seed": int(seed), "query_split": query_split, "C": float(C),
            "mean": float(accs_a.mean()), "std": float(accs_a.std()), "accs": [float(a) for a in accs]}


def check_settings(train_y, *, ways: Sequence[int], shots: Sequence[int], n_query: int, test_y=None,
                   query_split: str = "train") -> None:
    """Raise the ``ValueError`` of :func:`sample_episode` when some ``(way, shot)`` pair cannot be
    drawn from these labels, before any feature is computed (labels only)."""
    support = class_index(np.asarray(train_y))
    query = class_index(np.asarray(test_y)) if query_split == "test" and test_y is not None else None
    for w in ways:
        for s in shots:
            sample_episode(support, int(w), int(s), int(n_query), random.Random(0), query_index=query)


def fewshot_grid(
    train_x,
    train_y,
    *,
    ways: Sequence[int] = (5, 10),
    shots: Sequence[int] = (10, 20),
    n_query: int = 20,
    runs: int = 10,
    seed: int = 0,
    test_x=None,
    test_y=None,
    query_split: str = "train",
    C: float = 1.0,
    progress: "Callable[[int, int], None] | None" = None,
    cancel: "Callable[[], bool] | None" = None,
) -> list[dict]:
    """:func:`run_fewshot` for every ``(way, shot)`` pair (the paper's 5/10-way x 10/20-shot
    table). Each setting draws its episodes from its own ``random.Random(seed)``, so a setting's
    result does not depend on which other settings ran."""
    results = []
    total = len(ways) * len(shots) * runs
    done = 0
    for w in ways:
        for s in shots:
            def cb(d, _t, base=done):
                if progress is not None:
                    progress(base + d, total)

            results.append(run_fewshot(train_x, train_y, n_way=w, k_shot=s, n_query=n_query, runs=runs, seed=seed,
                                       test_x=test_x, test_y=test_y, query_split=query_split, C=C,
                                       progress=cb, cancel=cancel))
            done += runs
    return results
