"""View > Colour Range: the histogram of the current scalar colour mode (height, heat, uncertainty)
with a draggable min/max range; the points outside it are drawn grey and the colour map spans it.

The range belongs to the object and the mode (``Document.scalar_range``); "Reset" gives the data's
own limits back. The histogram is of every point's value (64 bins), not only of the drawn subset.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QDialog, QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from explorer import colors

BINS = 64


class ScalarRangeDialog(QDialog):
    def __init__(self, window):
        super().__init__(window)
        self.setWindowTitle("Colour range")
        self.win = window
        self.plot = pg.PlotWidget(background="#1f2126")
        self.plot.setMinimumHeight(160)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.getPlotItem().setLabel("left", "points")
        self.region = pg.LinearRegionItem(brush=(80, 140, 220, 50))
        self.region.sigRegionChangeFinished.connect(self._from_region)
        self.lo = QDoubleSpinBox(decimals=6, minimum=-1e12, maximum=1e12)
        self.hi = QDoubleSpinBox(decimals=6, minimum=-1e12, maximum=1e12)
        for sb in (self.lo, self.hi):
            sb.editingFinished.connect(self._from_spins)
        reset = QPushButton("Reset")
        reset.clicked.connect(self.reset)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(QLabel("min"))
        row.addWidget(self.lo)
        row.addWidget(QLabel("max"))
        row.addWidget(self.hi)
        row.addWidget(reset)
        lay = QVBoxLayout(self)
        lay.addWidget(self.plot)
        lay.addLayout(row)
        lay.addWidget(self.note)
        self.resize(460, 300)
        window.state.currentChanged.connect(lambda _=None: self.refresh())
        window.state.colorModeChanged.connect(lambda _=None: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        """The histogram of the current object's scalar in its current mode."""
        doc = self.win.state.current
        values = self.win.scalar_values(doc) if doc is not None else None
        pi = self.plot.getPlotItem()
        pi.clear()
        self.values = None
        if values is None or not np.isfinite(values).any():
            mode = doc.color_mode if doc is not None else "-"
            self.note.setText(f"the colour mode ({colors.COLOR_MODES.get(mode, mode)}) maps no scalar: choose "
                              "Height, Heatmap or Uncertainty")
            for w in (self.lo, self.hi):
                w.setEnabled(False)
            return
        v = values[np.isfinite(values)]
        self.values = v
        lo, hi = float(v.min()), float(v.max())
        if hi <= lo:
            hi = lo + 1e-9
        counts, edges = np.histogram(v, bins=BINS, range=(lo, hi))
        pi.addItem(pg.PlotCurveItem(edges, counts, stepMode="center", fillLevel=0, brush=(150, 160, 175, 160),
                                    pen=pg.mkPen("#c8cdd6")))
        chosen = doc.scalar_range.get(doc.color_mode)
        a, b = chosen if chosen is not None else (lo, hi)
        self.region.blockSignals(True)
        self.region.setRegion((a, b))
        self.region.blockSignals(False)
        pi.addItem(self.region)
        for w, x in ((self.lo, a), (self.hi, b)):
            w.setEnabled(True)
            w.blockSignals(True)
            w.setValue(x)
            w.blockSignals(False)
        self._describe(a, b)

    def _describe(self, a: float, b: float) -> None:
        v = self.values
        inside = int(np.count_nonzero((v >= a) & (v <= b))) if v is not None else 0
        doc = self.win.state.current
        self.note.setText(f"{colors.COLOR_MODES.get(doc.color_mode, doc.color_mode)}: {inside:,} of {len(v):,} points "
                          f"in [{a:.4g}, {b:.4g}] coloured; the others grey")

    def _apply(self, a: float, b: float) -> None:
        self.win.set_scalar_range(a, b)
        self._describe(min(a, b), max(a, b))

    def _from_region(self) -> None:
        a, b = self.region.getRegion()
        for w, x in ((self.lo, a), (self.hi, b)):
            w.blockSignals(True)
            w.setValue(x)
            w.blockSignals(False)
        self._apply(a, b)

    def _from_spins(self) -> None:
        a, b = self.lo.value(), self.hi.value()
        self.region.blockSignals(True)
        self.region.setRegion((a, b))
        self.region.blockSignals(False)
        self._apply(a, b)

    def reset(self) -> None:
        self.win.set_scalar_range(None)
        self.refresh()
