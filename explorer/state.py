"""What is loaded and selected, as Qt signals: the single source of truth of the explorer.

Widgets never hold their own copy of "the current object"; they listen to :class:`AppState` and
ask it. Model results (segmentation labels, heatmaps) hang off the :class:`Document` they belong
to, so switching objects switches everything shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from crosspoint.pointcloud import PointCloud


@dataclass(eq=False)  # documents are compared by identity (their arrays have no truth value)
class Document:
    """One opened object: its cloud, where it came from, and results computed on it."""

    cloud: PointCloud
    source: str  # the path (with ``#index`` for HDF5 rows) or a description such as "demo: chair"
    color_mode: str = "height"
    results: dict = field(default_factory=dict)  # "segmentation", "heatmap", ... -> arrays / dicts
    #: the axis that points up in the file: 1 (+Y, ShapeNet and most datasets) or 2 (+Z, ModelNet OFF, scans)
    up_axis: int = 1
    #: for clouds too large to draw interactively: the sorted indices of the points drawn (None: all)
    display_index: "np.ndarray | None" = field(default=None, repr=False)

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

    def label_array(self) -> np.ndarray | None:
        seg = self.results.get("segmentation")
        if seg is not None:
            return seg["labels"]
        return self.cloud.labels

    def label_names(self) -> dict[int, str]:
        seg = self.results.get("segmentation")
        if seg is not None and seg.get("names"):
            return dict(seg["names"])
        names = self.cloud.meta.get("label_names") or self.cloud.meta.get("part_names") or {}
        return {int(k): str(v) for k, v in dict(names).items()}

    def heatmap(self) -> np.ndarray | None:
        hm = self.results.get("heatmap")
        return None if hm is None else hm["values"]


class AppState(QObject):
    documentsChanged = pyqtSignal()
    currentChanged = pyqtSignal(object)  # Document | None
    documentUpdated = pyqtSignal(object)  # a Document whose results or colour mode changed
    colorModeChanged = pyqtSignal(str)
    message = pyqtSignal(str)  # a short status message
    error = pyqtSignal(str, str)  # (source, message): something failed, nothing else changed

    def __init__(self, parent=None):
        super().__init__(parent)
        self.documents: list[Document] = []
        self._current: int = -1

    # -- documents ------------------------------------------------------------------------------
    @property
    def current(self) -> Document | None:
        return self.documents[self._current] if 0 <= self._current < len(self.documents) else None

    @property
    def current_index(self) -> int:
        return self._current

    def add(self, doc: Document, *, make_current: bool = True) -> int:
        for i, d in enumerate(self.documents):  # reopening replaces the old copy
            if d.source == doc.source and d.cloud.path is not None:
                self.documents[i] = doc
                self.documentsChanged.emit()
                if make_current:
                    self._current = -1
                    self.set_current(i)
                return i
        self.documents.append(doc)
        self.documentsChanged.emit()
        if make_current:
            self.set_current(len(self.documents) - 1)
        return len(self.documents) - 1

    def set_current(self, index: int) -> None:
        if index == self._current or not (0 <= index < len(self.documents)):
            return
        self._current = index
        self.currentChanged.emit(self.documents[index])

    def remove(self, index: int) -> None:
        if not (0 <= index < len(self.documents)):
            return
        del self.documents[index]
        self.documentsChanged.emit()
        if not self.documents:
            self._current = -1
            self.currentChanged.emit(None)
        else:
            new = min(index, len(self.documents) - 1)
            self._current = -1
            self.set_current(new)

    def set_color_mode(self, mode: str) -> None:
        doc = self.current
        if doc is None or doc.color_mode == mode:
            return
        doc.color_mode = mode
        self.colorModeChanged.emit(mode)
        self.documentUpdated.emit(doc)

    def set_result(self, doc: Document, key: str, value, *, color_mode: str | None = None) -> None:
        """Attach a result (``None`` removes it) and optionally switch the colour mode to show it."""
        if value is None:
            doc.results.pop(key, None)
        else:
            doc.results[key] = value
        if color_mode is not None:
            doc.color_mode = color_mode
            if doc is self.current:
                self.colorModeChanged.emit(color_mode)
        self.documentUpdated.emit(doc)
