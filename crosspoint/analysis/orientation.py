"""Which way is up for the model: the orientation check over the 24 axis-aligned rotations.

CrossPoint is trained on ShapeNet's +Y-up objects with rotations about the up axis only, so an
object lying on its side is a different object to it (a ModelNet chair fed +Z up is inferred as a
mug). Files rarely say which way is up; the reader takes the format's convention
(:attr:`crosspoint.pointcloud.PointCloud.up_axis`), and that is wrong for many files.

:func:`check_orientation` turns the object (as the model now sees it) by each of the 24 proper
rotations that map axes to axes, embeds every turned copy with the point encoder and scores it by
**typicality**: the mean cosine similarity of its global feature to its ``k`` nearest neighbours
in a reference set of upright objects (by default the embedded demo dataset). An upright object
looks like the upright objects the encoder has learned; a lying one does not. The best rotation is
offered; :attr:`OrientationCheck.rotation` is what to set as the cloud's ``rotation``.

Measured on the held-out hard demo (seed 1, 2 objects per class, 48 objects, demo checkpoint,
reference: the seed-0 demo; docs/RESULTS.md section 9): the best turn puts the object's true up axis
up for 43 of 48 objects (90 %; chance 4 of 24 = 17 %). **Most of that is the reference set, not the
pretraining**: a random-weight encoder of the same architecture scores 40 of 48 (83 %) the same way,
so a DGCNN's features of an upright object resemble other upright objects' even untrained. What
pretraining adds shows in the other scores tried: the cross-modal similarity of each turned copy
with its own rendered view picks upright 71 % of the time with the checkpoint and 17 % (chance) with
random weights; a category probe's confidence 60 % and 44 %. Four of the five misses put the object
upside down (-Y). Cosine similarities are all near 0.98-0.99 and the margins small
(:data:`LOW_MARGIN`): under 0.001, 8 of 11 were right; above, 35 of 37. The rotation
*about* the up axis is not determined (the encoder is trained to ignore it), which is why the
figure counts the up axis only; :attr:`OrientationCheck.up_scores` gives the best score per up
direction, the thing a user should compare.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from crosspoint.analysis._common import AnalysisError, Cancel, Cancelled, Progress, check_cancel, report

#: measured on the held-out demo (see the module docstring): how often the best rotation is upright
MEASURED_UPRIGHT = {"trained": 43 / 48, "random_weights": 40 / 48, "chance": 4 / 24, "n_objects": 48}

#: a margin (best score minus the best with another axis up) under this is a weak answer: on the held-out
#: demo the best turn was upright for 35 of 37 objects with a larger margin, 8 of 11 below it
LOW_MARGIN = 0.001
MEASURED_BY_MARGIN = {"above": (35, 37), "below": (8, 11)}

#: the six up directions, named in the model's frame before the turn (which axis of the object as
#: the model now sees it is brought up)
_UP_NAMES = {(0, 1): "+X", (0, -1): "-X", (1, 1): "+Y", (1, -1): "-Y", (2, 1): "+Z", (2, -1): "-Z"}


def axis_rotations() -> np.ndarray:
    """The 24 proper rotations that map coordinate axes to coordinate axes, ``(24, 3, 3)`` float64,
    the identity first; each is a signed permutation matrix with determinant +1."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            r = np.zeros((3, 3))
            r[np.arange(3), perm] = signs
            if np.linalg.det(r) > 0:
                out.append(r)
    out.sort(key=lambda r: not np.array_equal(r, np.eye(3)))  # the identity first, order kept otherwise
    return np.stack(out)


def up_direction(r: np.ndarray) -> str:
    """Which axis of the object (as the model saw it before ``r``) ``r`` brings up (to +Y): e.g. "+Z"."""
    row = np.asarray(r)[1]
    axis = int(np.argmax(np.abs(row)))
    return _UP_NAMES[(axis, 1 if row[axis] > 0 else -1)]


@dataclass
class OrientationCheck:
    """What :func:`check_orientation` found."""

    rotations: np.ndarray  # (24, 3, 3): candidate turns applied on top of the current model frame
    scores: np.ndarray  # (24,) typicality of each turned copy (mean cosine to its k nearest references)
    best: int  # index of the best-scoring rotation (0: the current orientation)
    rotation: np.ndarray  # (3, 3): the cloud's new ``rotation`` for the best turn (its old one composed)
    up_scores: dict = field(default_factory=dict)  # up direction ("+Y", "-Z", ...) -> best score with it up
    margin: float = 0.0  # best score minus the best score with another axis up
    current_score: float = 0.0  # the score as the object is now
    k: int = 5
    n_reference: int = 0
    note: str = ""

    @property
    def weak(self) -> bool:
        """The margin is under :data:`LOW_MARGIN` (right 73 % of the time on the demo, 95 % above it)."""
        return self.margin < LOW_MARGIN

    @property
    def is_current_best(self) -> bool:
        """The object is already upright for the model (its up axis is the best one)."""
        return up_direction(self.rotations[self.best]) == "+Y"

    def summary(self) -> str:
        ranked = sorted(self.up_scores.items(), key=lambda kv: -kv[1])
        return (f"best: {up_direction(self.rotations[self.best])} up ({self.scores[self.best]:.3f}); now "
                f"{self.current_score:.3f}; " + ", ".join(f"{u} {s:.3f}" for u, s in ranked))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def typicality(features: np.ndarray, reference: np.ndarray, k: int = 5) -> np.ndarray:
    """``(M,)``: for each row of ``features``, the mean cosine similarity to its ``k`` most similar
    rows of ``reference`` (both ``(., F)`` global features)."""
    sims = _unit(features) @ _unit(reference).T
    kk = int(min(max(1, k), sims.shape[1]))
    return np.sort(sims, axis=1)[:, -kk:].mean(axis=1)


def reference_features(session, reference=None, *, n_points: int = 1024, progress: Progress = None,
                       cancel: Cancel = None) -> np.ndarray:
    """``(M, F)`` global features of upright reference objects: ``reference`` as given (an array or
    anything with ``.features``, e.g. a :class:`~crosspoint.analysis.dataset.DatasetEmbedding`), a
    dataset folder to embed, or (None) the embedded demo dataset (embedded once per checkpoint and
    cached, like the embedding map's)."""
    if reference is None:
        from crosspoint.data.demo import DemoCancelled, ensure_demo

        try:  # the first time, the demo is generated (about a minute): with progress, and cancellable
            reference = ensure_demo(lambda done, total: report(progress, done, total, "generating the demo dataset "
                                                               "(once: the upright reference objects)"),
                                    cancel if cancel is not None else (lambda: False))
        except DemoCancelled:
            raise Cancelled("orientation check cancelled") from None
    if isinstance(reference, (str,)) or hasattr(reference, "__fspath__"):
        from crosspoint.analysis.dataset import embed_dataset

        reference = embed_dataset(session, reference, n_points=n_points, progress=progress, cancel=cancel)
    feats = np.asarray(getattr(reference, "features", reference), np.float64)
    if feats.ndim != 2 or feats.shape[0] < 1:
        raise AnalysisError(f"the orientation check needs reference features (M, F), got shape {feats.shape}")
    width = int(session.point_encoder.feature_dim)
    if feats.shape[1] != width:
        raise AnalysisError(f"the reference features are {feats.shape[1]}-d; this encoder's are {width}-d "
                            "(embed the reference with the same checkpoint)")
    return feats


def check_orientation(session, cloud, reference=None, *, n_points: int = 1024, k: int = 5, seed: int = 0,
                      progress: Progress = None, cancel: Cancel = None) -> OrientationCheck:
    """Score the 24 axis-aligned turns of ``cloud`` as the model sees it (its up axis and rotation
    applied) by typicality against ``reference`` (see :func:`reference_features`) and offer the best.
    Every turned copy is sampled the same way (``n_points``, ``seed``)."""
    from crosspoint.analysis.embed import embed_clouds
    from crosspoint.pointcloud import PointCloud

    ref = reference_features(session, reference, n_points=n_points, progress=progress, cancel=cancel)
    check_cancel(cancel, "orientation check")
    base = cloud.model_points() if hasattr(cloud, "model_points") else np.asarray(cloud, np.float32)[:, :3]
    if base.shape[0] == 0:
        raise AnalysisError("the point cloud is empty")
    rots = axis_rotations()
    report(progress, 0, 2, "embedding 24 turned copies")
    turned = [PointCloud(base.astype(np.float64) @ r.T) for r in rots]
    feats = embed_clouds(session, turned, n_points=n_points, seed=seed, cancel=cancel)
    check_cancel(cancel, "orientation check")
    scores = typicality(feats, ref, k)
    report(progress, 2, 2, "scored")
    best = int(np.argmax(scores))
    ups = [up_direction(r) for r in rots]
    up_scores = {u: float(max(s for s, v in zip(scores, ups) if v == u)) for u in _UP_NAMES.values()}
    other = max(s for u, s in up_scores.items() if u != ups[best])
    old = getattr(cloud, "rotation", None)
    new = rots[best] if old is None else rots[best] @ np.asarray(old, np.float64)
    note = (f"typicality: mean cosine similarity to the {min(k, len(ref))} nearest of {len(ref)} upright "
            f"reference objects; the best turn is upright for {MEASURED_UPRIGHT['trained']:.0%} of held-out demo "
            f"objects (random weights {MEASURED_UPRIGHT['random_weights']:.0%}, chance "
            f"{MEASURED_UPRIGHT['chance']:.0%})")
    return OrientationCheck(rotations=rots, scores=scores, best=best, rotation=new, up_scores=up_scores,
                            margin=float(scores[best] - other), current_score=float(scores[0]), k=int(k),
                            n_reference=int(len(ref)), note=note)
