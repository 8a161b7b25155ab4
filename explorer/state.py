"""What is loaded and selected, and every result shown with what it was computed for.

The single source of truth of the explorer, and Qt-free: plain Python objects with psygnal
signals (as napari's components), so it is tested without a display (``tests/test_state.py``).
Widgets never hold their own copy of "the current object" or of a result: they listen to
:class:`AppState` and ask it.

Results and provenance
    Every model result (part segmentation, heatmaps on the points and on the view, retrieval, the
    current object's embedding or its error, the embedding map) is a :class:`Result` owned by the
    state: its ``value`` and the :class:`Provenance` it was computed for -- the object, the view
    (the image), the checkpoint and the settings of the panel that started it, captured when the
    job *started* (:meth:`AppState.provenance`), so that a view or a checkpoint changed while it
    ran is seen. Per-object results hang off their :class:`Document` (``doc.results``, read-only
    for widgets); results of no single object (retrieval, the embedding map) are kept by the state.

    The state also holds the context those results are compared with: the loaded checkpoint
    (:meth:`AppState.set_checkpoint`), the selected view of each object (:meth:`AppState.set_view`)
    and the settings the panels show now (:meth:`AppState.set_settings`). When any of them changes
    ``contextChanged`` fires, and :meth:`AppState.stale_reason` says, for any result, why it no
    longer matches what is on screen ("" when it does). Widgets then mark it stale or stop drawing
    it (a heatmap of view 0 is never overlaid on view 1). Changing back (view 0 selected again)
    makes it current again: staleness is a comparison, not a flag.

Which parts of the provenance a result depends on is :data:`DEPENDS`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
from psygnal import Signal

from crosspoint.pointcloud import PointCloud

#: result kind -> the parts of its provenance it depends on
DEPENDS: dict[str, tuple[str, ...]] = {
    "segmentation": ("checkpoint", "settings"),
    "heatmap": ("view", "checkpoint", "settings"),
    "image_heatmap": ("view", "checkpoint", "settings"),
    "embedding": ("checkpoint",),
    "orientation": ("checkpoint",),
    "part_evidence": ("view", "checkpoint"),
    "retrieval": ("view", "checkpoint", "settings"),
    "embedding_map": ("checkpoint", "settings"),
}

#: kinds kept by the state rather than by one document
GLOBAL_KINDS = ("retrieval", "embedding_map")

_keys = itertools.count(1)


def _frozen(settings: Mapping | None) -> tuple:
    return tuple(sorted((str(k), v) for k, v in (settings or {}).items()))


@dataclass(frozen=True)
class Provenance:
    """What a result was computed for. ``object`` is a :attr:`Document.key`, ``view`` a view key
    (see :meth:`AppState.set_view`), ``checkpoint`` the model session's fingerprint, ``settings``
    sorted ``(name, value)`` pairs. The ``*_label`` fields are what the user reads."""

    object: str | None = None
    view: str | None = None
    checkpoint: str | None = None
    settings: tuple = ()
    object_label: str = field(default="", compare=False)
    view_label: str = field(default="", compare=False)
    checkpoint_label: str = field(default="", compare=False)

    def setting(self, name: str, default=None):
        return dict(self.settings).get(name, default)


@dataclass(eq=False)
class Result:
    kind: str
    value: Any
    provenance: Provenance


@dataclass(eq=False)  # documents are compared by identity (their arrays have no truth value)
class Document:
    """One opened object: its cloud, where it came from, and the results computed on it."""

    cloud: PointCloud
    source: str  # the path (with ``#index`` for HDF5 rows) or a description such as "demo: chair"
    color_mode: str = "height"
    #: the axis that points up in the file: 1 (+Y, ShapeNet and most datasets) or 2 (+Z, ModelNet OFF, scans)
    up_axis: int = 1
    #: for clouds too large to draw interactively: the sorted indices of the points drawn (None: all)
    display_index: "np.ndarray | None" = field(default=None, repr=False)
    #: where it goes in the Objects list among the files opened together: (batch, position)
    order: tuple = ()
    #: drawn beside the current object when it is not the current one (the Objects list's checkbox)
    overlay: bool = False
    #: the colour limits chosen for scalar modes (View > Colour Range): mode -> (lo, hi); values outside grey
    scalar_range: dict = field(default_factory=dict)
    #: a key unique in this process (results name their object by it)
    key: str = field(default_factory=lambda: f"doc{next(_keys)}")
    _results: dict = field(default_factory=dict, repr=False)

    @property
    def results(self) -> Mapping[str, Result]:
        """The results computed on this object (read-only: :class:`AppState` owns them)."""
        return MappingProxyType(self._results)

    def value(self, kind: str):
        r = self._results.get(kind)
        return None if r is None else r.value

    def ensure_display_index(self, limit: int) -> "np.ndarray | None":
        """Indices of at most ``limit`` points to draw (a fixed random subset, computed once), or None
        when the whole cloud is drawn. Analyses always use the full cloud."""
        n = self.cloud.n_points
        if n <= limit:
            return None
        if self.display_index is None or len(self.display_index) != limit:
            rng = np.random.default_rng(0)
            self.display_index = np.sort(rng.choice(n, size=limit, replace=False))
        return self.display_index

    @property
    def title(self) -> str:
        return self.cloud.name if self.cloud.path is not None else self.source

    # -- what the colour modes draw ---------------------------------------------------------------
    def label_array(self) -> np.ndarray | None:
        """The file's own labels (never replaced by a prediction)."""
        return self.cloud.labels

    def label_names(self) -> dict[int, str]:
        names = self.cloud.meta.get("label_names") or self.cloud.meta.get("part_names") or {}
        return {int(k): str(v) for k, v in dict(names).items()}

    def prediction(self) -> np.ndarray | None:
        seg = self.value("segmentation")
        return None if seg is None else seg["labels"]

    def prediction_names(self) -> dict[int, str]:
        seg = self.value("segmentation")
        return {} if seg is None else dict(seg.get("names") or {})

    def errors(self) -> np.ndarray | None:
        """Per point: 1 wrong, 0 right, -1 no ground truth (None: nothing to compare)."""
        seg = self.value("segmentation")
        cmp = None if seg is None else seg.get("comparison")
        return None if cmp is None or cmp.get("errors") is None else cmp["errors"]

    def uncertainty(self) -> np.ndarray | None:
        seg = self.value("segmentation")
        return None if seg is None else seg.get("uncertainty")

    def heatmap(self) -> np.ndarray | None:
        hm = self.value("heatmap")
        return None if hm is None else hm["values"]


class AppState:
    """The documents, the current one, the context (checkpoint, views, settings) and every result."""

    documentsChanged = Signal()
    currentChanged = Signal(object)  # Document | None
    documentUpdated = Signal(object)  # a Document whose colours (colour mode, results, up axis) changed
    colorModeChanged = Signal(str)
    resultChanged = Signal(object, str)  # (Document, or None for GLOBAL_KINDS; kind): set or removed
    contextChanged = Signal()  # the checkpoint, a view or a setting changed: staleness may differ
    message = Signal(str)  # a short status message
    error = Signal(str, str)  # (source, message): something failed, nothing else changed

    def __init__(self):
        self.documents: list[Document] = []
        self._current: int = -1
        self.checkpoint: str | None = None
        self.checkpoint_label: str = ""
        self._views: dict[str, tuple[str | None, str]] = {}  # document key -> (view key, label)
        self._settings: dict[str, tuple] = {}
        self._global: dict[str, Result] = {}

    # -- documents ------------------------------------------------------------------------------
    @property
    def current(self) -> Document | None:
        return self.documents[self._current] if 0 <= self._current < len(self.documents) else None

    @property
    def current_index(self) -> int:
        return self._current

    def add(self, doc: Document, *, make_current: bool = True) -> int:
        """Add ``doc`` (reopening a file replaces its old copy). Documents with an ``order`` are kept
        in that order among themselves (files opened together load in parallel and finish in any
        order; the list follows the order they were given in)."""
        for i, d in enumerate(self.documents):
            if d.source == doc.source and d.cloud.path is not None:
                self.documents[i] = doc
                self._views.pop(d.key, None)
                self._sync_open_objects()
                self.documentsChanged.emit()
                if make_current:
                    self._current = -1
                    self.set_current(i)
                return i
        at = len(self.documents)
        if doc.order:
            later = [i for i, d in enumerate(self.documents) if d.order and d.order > doc.order]
            if later:
                at = later[0]
        current = self.current
        self.documents.insert(at, doc)
        if current is not None:
            self._current = self.documents.index(current)
        self._sync_open_objects()
        self.documentsChanged.emit()
        if make_current:
            self.set_current(at)
        return at

    def set_current(self, index: int) -> None:
        if index == self._current or not (0 <= index < len(self.documents)):
            return
        self._current = index
        self.currentChanged.emit(self.documents[index])

    def remove(self, index: int) -> None:
        if not (0 <= index < len(self.documents)):
            return
        gone = self.documents.pop(index)
        self._views.pop(gone.key, None)
        self._sync_open_objects()
        self.documentsChanged.emit()
        if not self.documents:
            self._current = -1
            self.currentChanged.emit(None)
        else:
            new = min(index, len(self.documents) - 1)
            self._current = -1
            self.set_current(new)

    def _sync_open_objects(self) -> None:
        # retrieval ranks the open objects: another set of objects makes its list stale
        self._settings["retrieval"] = _frozen({"objects": tuple(d.key for d in self.documents)})
        self.contextChanged.emit()

    # -- colour modes ---------------------------------------------------------------------------
    def available_modes(self, doc: Document | None = None) -> list[str]:
        from explorer import colors

        doc = doc or self.current
        if doc is None:
            return []
        return colors.available_modes(doc.cloud, labels=doc.label_array(), prediction=doc.prediction(),
                                      errors=doc.errors(), uncertainty=doc.uncertainty(), heatmap=doc.heatmap())

    def set_color_mode(self, mode: str) -> bool:
        """Colour the current object by ``mode``; refused (False, with a message) when the object has
        nothing to show in that mode (RGB on an object without colours)."""
        from explorer import colors

        doc = self.current
        if doc is None:
            return False
        if mode not in self.available_modes(doc):
            what = colors.COLOR_MODES.get(mode, mode)
            self.message.emit(f"{doc.title}: no '{what}' colours ({colors.MISSING.get(mode, 'not available')})")
            return False
        if doc.color_mode != mode:
            doc.color_mode = mode
            self.colorModeChanged.emit(mode)
            self.documentUpdated.emit(doc)
        return True

    def set_up_axis(self, doc: Document, axis: int) -> None:
        """Which axis of ``doc`` points up: one property of the object that the drawing, the height
        colours, the camera and the model (``cloud.up_axis``: analyses turn the cloud +Y up by it)
        all use. Results computed in the other orientation are removed."""
        if doc.up_axis != int(axis) or doc.cloud.up_axis != int(axis):
            doc.up_axis = int(axis)
            doc.cloud.up_axis = int(axis)
            for kind in list(doc.results):
                self.set_result(doc, kind, None)
            self.documentUpdated.emit(doc)

    def set_rotation(self, doc: Document, rotation) -> None:
        """Turn ``doc`` for the model (``cloud.rotation``, after its up axis; None: no turn), e.g. the
        orientation check's best turn. Like the up axis, one property of the object that the model,
        the 2D views and the "as the model sees it" drawing use; results made before are removed."""
        from crosspoint.pointcloud import check_rotation

        r = check_rotation(rotation)
        old = doc.cloud.rotation
        if (r is None) != (old is None) or (r is not None and not np.array_equal(r, old)):
            doc.cloud.rotation = r
            for kind in list(doc.results):
                self.set_result(doc, kind, None)
            self.documentUpdated.emit(doc)

    # -- context --------------------------------------------------------------------------------
    def set_checkpoint(self, fingerprint: str | None, label: str = "") -> None:
        """The model now loaded (its session fingerprint); results of another one become stale."""
        if fingerprint == self.checkpoint and label == self.checkpoint_label:
            return
        self.checkpoint = fingerprint
        self.checkpoint_label = label
        self.contextChanged.emit()

    def set_view(self, doc: Document | None, key: str | None, label: str = "") -> None:
        """The view (image) selected for ``doc`` now; ``None`` while there is none."""
        if doc is None:
            return
        if self._views.get(doc.key) == (key, label):
            return
        self._views[doc.key] = (key, label)
        self.contextChanged.emit()

    def view_of(self, doc: Document | None) -> tuple[str | None, str]:
        if doc is None:
            return None, ""
        return self._views.get(doc.key, (None, ""))

    def set_settings(self, kind: str, **settings) -> None:
        """What the controls of ``kind`` say now (e.g. the heatmap method)."""
        frozen = _frozen(settings)
        if self._settings.get(kind) == frozen:
            return
        self._settings[kind] = frozen
        self.contextChanged.emit()

    def settings(self, kind: str) -> dict:
        return dict(self._settings.get(kind, ()))

    def provenance(self, kind: str, doc: Document | None = None, **settings) -> Provenance:
        """The provenance of a ``kind`` job started now on ``doc`` (the current object when None):
        the object, its selected view, the loaded checkpoint and ``settings`` (default: the current
        settings of ``kind``). Capture it when the job starts, pass it to :meth:`set_result`."""
        doc = doc if doc is not None else self.current
        view, view_label = self.view_of(doc)
        frozen = _frozen(settings) if settings else self._settings.get(kind, ())
        return Provenance(object=None if doc is None else doc.key, view=view, checkpoint=self.checkpoint,
                          settings=frozen, object_label="" if doc is None else doc.title, view_label=view_label,
                          checkpoint_label=self.checkpoint_label)

    # -- results --------------------------------------------------------------------------------
    def set_result(self, doc: Document | None, kind: str, value, provenance: Provenance | None = None, *,
                   color_mode: str | None = None) -> None:
        """Attach a result (``value`` None removes it) with what it was computed for (default: the
        context now), and optionally colour the object by it. Results of :data:`GLOBAL_KINDS` take
        ``doc`` None (the object they were computed from is in the provenance)."""
        if kind in GLOBAL_KINDS:
            store = self._global
        elif doc is None:
            raise ValueError(f"a {kind} result belongs to a document")
        else:
            store = doc._results
        if value is None:
            if store.pop(kind, None) is None:
                return
        else:
            store[kind] = Result(kind, value, provenance or self.provenance(kind, doc))
        if doc is not None:
            if color_mode is not None and color_mode in self.available_modes(doc):
                doc.color_mode = color_mode
                if doc is self.current:
                    self.colorModeChanged.emit(color_mode)
            elif doc.color_mode not in self.available_modes(doc):
                from explorer import colors

                doc.color_mode = colors.default_mode(doc.cloud)
                if doc is self.current:
                    self.colorModeChanged.emit(doc.color_mode)
        self.resultChanged.emit(doc, kind)
        if doc is not None:
            self.documentUpdated.emit(doc)

    def clear_result(self, doc: Document | None, kind: str) -> None:
        self.set_result(doc, kind, None)

    def result(self, doc: Document | None, kind: str) -> Result | None:
        if kind in GLOBAL_KINDS:
            return self._global.get(kind)
        return None if doc is None else doc._results.get(kind)

    def stale_reason(self, doc: Document | None, kind: str, result: Result | None = None) -> str:
        """Why the ``kind`` result of ``doc`` no longer matches the context ("" when it does, or when
        there is no result). For :data:`GLOBAL_KINDS` the view compared is the current object's."""
        r = result if result is not None else self.result(doc, kind)
        if r is None:
            return ""
        p = r.provenance
        deps = DEPENDS.get(kind, ("view", "checkpoint", "settings"))
        reasons = []
        if "view" in deps:
            target = self.current if kind in GLOBAL_KINDS else doc
            now, now_label = self.view_of(target)
            if kind in GLOBAL_KINDS and target is not None and target.key != p.object:
                reasons.append(f"computed for a view of {p.object_label or 'another object'}")
            elif now is not None and now != p.view:
                reasons.append(f"computed for {p.view_label or 'another view'}; {now_label or 'another view'} "
                               "is selected now")
        if "checkpoint" in deps and p.checkpoint != self.checkpoint:
            reasons.append(f"computed with {p.checkpoint_label or 'another checkpoint'}; "
                           f"{self.checkpoint_label or 'no checkpoint'} is loaded now")
        if "settings" in deps:
            now = dict(self._settings.get(kind, ()))
            then = dict(p.settings)
            changed = [k for k in then if k in now and now[k] != then[k]]
            if kind == "retrieval" and "objects" in changed:
                reasons.append("the open objects changed since")
                changed.remove("objects")
            if changed:
                reasons.append("computed with " + ", ".join(f"{k} {_show(then[k])}" for k in changed)
                               + "; now " + ", ".join(f"{_show(now[k])}" for k in changed))
        return "; ".join(reasons)

    def is_stale(self, doc: Document | None, kind: str) -> bool:
        return bool(self.stale_reason(doc, kind))

    def fresh(self, doc: Document | None, kind: str) -> Result | None:
        """The result when it matches the context now, else None."""
        r = self.result(doc, kind)
        return None if r is None or self.stale_reason(doc, kind, r) else r


def _show(v) -> str:
    return "auto" if v is None else str(v)


class RunProgress:
    """What the training panel's progress line says, from the run's events: epoch, step, progress
    and ETA while a process runs it; the ETA is dropped once it does not (stopped, finished, failed,
    or a folder watched whose process is gone), so no countdown stays on screen."""

    changed = Signal()

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.status = "idle"  # idle | running | stopped | end | error | crashed | watching
        self.epoch: int | None = None
        self.step: int | None = None
        self.fraction = 0.0
        self.eta_s: float | None = None

    def set_step(self, epoch: int, step: int, fraction: float, eta_s) -> None:
        self.epoch, self.step = int(epoch), int(step)
        self.fraction = float(min(max(fraction or 0.0, 0.0), 1.0))
        self.eta_s = None if eta_s is None else float(eta_s)
        self.changed.emit()

    def set_status(self, status: str) -> None:
        self.status = status
        if status == "end":
            self.fraction = 1.0
        self.changed.emit()

    @property
    def live(self) -> bool:
        return self.status == "running"

    def text(self) -> str:
        if self.step is None:
            return {"running": "starting ...", "idle": ""}.get(self.status, "")
        where = f"epoch {self.epoch + 1}  step {self.step}  {100 * self.fraction:.0f}%"
        if self.status == "running":
            return f"{where}  ETA {_fmt_eta(self.eta_s)}"
        done = {"end": "finished", "stopped": "stopped", "error": "failed", "crashed": "failed",
                "watching": "not running"}.get(self.status)
        return f"{where}  ({done})" if done else where


def _fmt_eta(seconds) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
