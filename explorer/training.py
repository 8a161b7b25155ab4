"""Pretraining from the explorer: a dialog built from the pretraining config, and a live monitor.

Training runs in a subprocess (``python -m crosspoint pretrain``, started with QProcess): the GIL,
CUDA's dislike of fork and a crash in training must not take the GUI down. The monitor reads the
run folder's ``events.jsonl`` (the same stream the CLI writes), so it can also attach to a run
started from a terminal or on a cluster.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QProcess, QProcessEnvironment, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from crosspoint.config import ConfigError, PretrainConfig, dump_config, load_config
from crosspoint.data.base import DEMO_DATA_KEYWORDS
from crosspoint.engine.events import EventReader, validate_event
from crosspoint.engine.runlock import describe_holder, lock_holder

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
BASE_CONFIGS = {"cpu-demo": REPO / "configs" / "cpu-demo.yaml", "paper": REPO / "configs" / "paper.yaml"}


def _browse_dir(parent, line: QLineEdit, title: str) -> None:
    d = QFileDialog.getExistingDirectory(parent, title, line.text() or str(Path.home()))
    if d:
        line.setText(d)


#: the config sections, in the dialog's order, with their tab titles
SECTIONS = (("data", "Data"), ("model", "Model"), ("optim", "Optimiser"), ("loss", "Loss"), ("run", "Run"))

#: free-text settings that name a folder (a "..." button browses)
FOLDER_KEYS = ("data.root", "run.selection_data")


def config_choices() -> dict[str, tuple[str, ...]]:
    """``"section.key" -> allowed values`` of the config's choice settings (as
    :func:`crosspoint.config.validate` checks them)."""
    from crosspoint import config as C

    return {f"{sec}.{key}": tuple(v) for (sec, key), v in C.CHOICES.items()}


def field_docs(cls) -> dict[str, str]:
    """Each dataclass field's comment in the source (``#: ...`` lines above it, or ``# ...`` after
    it): the dialog's tooltips say what the config file says."""
    import inspect

    try:
        src = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    docs, pending = {}, []
    for line in src:
        s = line.strip()
        if s.startswith("#:"):
            pending.append(s[2:].strip())
            continue
        if ":" in s and not s.startswith(("#", "@", "class ", '"')):
            name = s.split(":", 1)[0].strip()
            if name.isidentifier():
                trailing = s.split("#", 1)[1].strip() if "#" in s else ""
                text = " ".join(pending) or trailing
                if text:
                    docs[name] = text
        pending = []
    return docs


def check_dataset(cfg: PretrainConfig) -> list[str]:
    """What would stop ``crosspoint pretrain`` with ``cfg`` at its data, found before anything starts:
    the layout must be one pretraining reads (as ``detect_layout(task="pretrain")``) and pass
    ``crosspoint check-data --quick`` (:func:`crosspoint.data.validate.validate_layout`); with
    ``run.selection = test`` the selection dataset too. ``"demo"`` and ``"demo-sensor"`` need no check
    (they are generated)."""
    from crosspoint.data.base import DatasetError
    from crosspoint.data.layouts import detect_layout
    from crosspoint.data.validate import validate_layout

    problems: list[str] = []
    root = cfg.data.root
    if root not in DEMO_DATA_KEYWORDS:
        layout = None if cfg.data.layout == "auto" else cfg.data.layout
        try:
            info = detect_layout(Path(root).expanduser().absolute(), task="pretrain", layout=layout)
        except (DatasetError, ValueError) as exc:
            problems.append(f"data.root {root!r}: {exc}")
        else:
            report = validate_layout(info, quick=True)
            problems += [f"data.root ({info.name}): {p}" for p in report.problems]
    if cfg.run.selection == "test":
        sel = cfg.run.selection_data
        try:
            info = detect_layout(Path(sel).expanduser().absolute(), task="classification")
        except (DatasetError, ValueError) as exc:
            problems.append(f"run.selection_data {sel!r}: {exc}")
        else:
            report = validate_layout(info, quick=True)
            problems += [f"run.selection_data ({info.name}): {p}" for p in report.problems]
    return problems


def default_runs_dir(settings=None) -> Path:
    """Where new runs go: the project folder chosen for a run before (remembered), else ``runs/`` in
    the user's data folder (never the current directory, which may be anywhere)."""
    from explorer.settings import user_data_dir

    chosen = settings.value("training/project_dir") if settings is not None else None
    return Path(str(chosen)) if chosen else user_data_dir() / "runs"


class TrainingDialog(QDialog):
    """Every setting of a :class:`PretrainConfig`, grouped by section, from a base config; the YAML
    it will run, shown as it changes and savable; the dataset checked before anything starts."""

    def __init__(self, parent=None, *, default_out: str | None = None, settings=None):
        super().__init__(parent)
        from explorer.settings import app_settings

        self.settings = settings if settings is not None else app_settings()
        self.setWindowTitle("New pretraining run")
        self.resize(980, 640)
        self.fields: dict[str, QWidget] = {}
        self._types: dict[str, type] = {}
        self._base_cfg = PretrainConfig()
        self._cfg: PretrainConfig | None = None
        self.problems: list[str] = []
        self.checking = False

        top = QFormLayout()
        self.base = QComboBox()
        for name, path in BASE_CONFIGS.items():
            if path.is_file():
                self.base.addItem(name, str(path))
        self.base.addItem("defaults", "")
        self.base.currentIndexChanged.connect(self._load_base)
        top.addRow("Start from", self.base)
        self.name = QLineEdit()
        self.name.setToolTip("A free-form name shown in the GUI and the event log (name)")
        self.name.textChanged.connect(self._changed)
        top.addRow("Name", self.name)
        self._runs_dir = default_runs_dir(self.settings)
        self.out = QLineEdit(default_out or str(self._runs_dir / time.strftime("run-%Y%m%d-%H%M%S")))
        self.out.setToolTip("The run folder: config, events.jsonl, log and checkpoints/")
        browse_out = QPushButton("...")
        browse_out.clicked.connect(lambda: _browse_dir(self, self.out, "Output folder"))
        top.addRow("Output folder", self._row(self.out, browse_out))

        from PyQt6.QtWidgets import QCheckBox, QScrollArea, QTabWidget

        import dataclasses
        import typing

        self.tabs = QTabWidget()
        choices = config_choices()
        hints = typing.get_type_hints(PretrainConfig)
        for sec, title in SECTIONS:
            cls = hints[sec]
            docs = field_docs(cls)
            page = QWidget()
            form = QFormLayout(page)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            types = typing.get_type_hints(cls)
            for f in dataclasses.fields(cls):
                key = f"{sec}.{f.name}"
                typ = types[f.name]
                self._types[key] = typ
                if key in choices:
                    w = QComboBox()
                    w.addItems(list(choices[key]))
                    w.currentIndexChanged.connect(self._changed)
                elif key == "data.layout":
                    from crosspoint.data.layouts import TASK_LAYOUTS

                    w = QComboBox()
                    w.addItems(["auto", *TASK_LAYOUTS["pretrain"]])
                    w.currentIndexChanged.connect(self._changed)
                elif key == "run.device":
                    w = QComboBox()
                    w.setEditable(True)
                    w.addItems(["auto", "cpu", "cuda", "cuda:0"])
                    w.currentTextChanged.connect(self._changed)
                elif typ is bool:
                    w = QCheckBox()
                    w.toggled.connect(self._changed)
                elif typ is int:
                    w = QSpinBox(minimum=-1, maximum=10_000_000)
                    w.valueChanged.connect(self._changed)
                else:  # float and str: typed as text, checked by the config itself
                    w = QLineEdit()
                    w.textChanged.connect(self._changed)
                tip = docs.get(f.name, "")
                w.setToolTip(f"{key}: {tip}" if tip else key)
                self.fields[key] = w
                label = QLabel(f.name)
                label.setToolTip(w.toolTip())
                if key in FOLDER_KEYS:
                    b = QPushButton("...")
                    b.clicked.connect(lambda _=False, line=w, k=key: _browse_dir(self, line, k))
                    form.addRow(label, self._row(w, b))
                else:
                    form.addRow(label, w)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            scroll.setWidget(page)
            self.tabs.addTab(scroll, title)

        self.yaml_view = QPlainTextEdit()
        self.yaml_view.setReadOnly(True)
        self.yaml_view.setFont(QFont("DejaVu Sans Mono", 9))
        self.yaml_view.setToolTip("The config the run will use (written to the run folder as requested_config.yaml)")
        self.save_yaml_button = QPushButton("Save YAML...")
        self.save_yaml_button.clicked.connect(self._save_yaml_dialog)
        ybox = QGroupBox("The config it will run")
        yl = QVBoxLayout(ybox)
        yl.setContentsMargins(4, 4, 4, 4)
        yl.addWidget(self.yaml_view, 1)
        yl.addWidget(self.save_yaml_button, 0, Qt.AlignmentFlag.AlignRight)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tabs)
        split.addWidget(ybox)
        split.setSizes([560, 400])

        self.error = QLabel("")
        self.error.setStyleSheet("color: #ff8a80;")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.start_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.start_button.setText("Start")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)
        self._loading = False
        self._load_base()

    @staticmethod
    def _row(*widgets) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        for x in widgets:
            if isinstance(x, QPushButton):
                x.setFixedWidth(max(32, x.fontMetrics().horizontalAdvance(x.text()) + 16))
            h.addWidget(x, 0 if isinstance(x, QPushButton) else 1)
        return w

    # -- fields <-> config ------------------------------------------------------------------------
    def _load_base(self) -> None:
        path = self.base.currentData()
        try:
            cfg = load_config(path) if path else PretrainConfig()
        except ConfigError as exc:
            self.error.setText(str(exc))
            cfg = PretrainConfig()
        self.set_config(cfg)

    def set_config(self, cfg: PretrainConfig) -> None:
        """Show ``cfg`` in the fields."""
        from PyQt6.QtWidgets import QCheckBox

        self._base_cfg = cfg
        self._loading = True
        try:
            self.name.setText(cfg.name)
            for key, w in self.fields.items():
                sec, name = key.split(".")
                v = getattr(getattr(cfg, sec), name)
                if isinstance(w, QComboBox):
                    i = w.findText(str(v))
                    if i < 0 and w.isEditable():
                        w.setEditText(str(v))
                    else:
                        w.setCurrentIndex(max(i, 0))
                elif isinstance(w, QCheckBox):
                    w.setChecked(bool(v))
                elif isinstance(w, QSpinBox):
                    w.setValue(int(v))
                else:
                    w.setText(repr(v) if isinstance(v, float) else str(v))
        finally:
            self._loading = False
        self._changed()

    def value(self, key: str):
        """The field's value, as text for floats (the config converts and checks it)."""
        from PyQt6.QtWidgets import QCheckBox

        w = self.fields[key]
        if isinstance(w, QComboBox):
            return w.currentText().strip()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QSpinBox):
            return w.value()
        return w.text().strip()

    def set_value(self, key: str, value) -> None:
        from PyQt6.QtWidgets import QCheckBox

        w = self.fields[key]
        if isinstance(w, QComboBox):
            i = w.findText(str(value))
            if i < 0 and w.isEditable():
                w.setEditText(str(value))
            else:
                w.setCurrentIndex(i)
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QSpinBox):
            w.setValue(int(value))
        else:
            w.setText(str(value))

    def config(self) -> PretrainConfig:
        """The config the fields describe (raises ConfigError with what is wrong)."""
        from crosspoint.config import from_dict, to_dict

        data = to_dict(self._base_cfg)
        data["name"] = self.name.text().strip() or self._base_cfg.name
        for key in self.fields:
            sec, name = key.split(".")
            v = self.value(key)
            if key == "data.root" and not v:
                v = "demo"
            data[sec][name] = v
        return from_dict(data, PretrainConfig)

    def yaml_text(self) -> str:
        return dump_config(self.config())

    def _changed(self, *_) -> None:
        if self._loading:
            return
        try:
            text = self.yaml_text()
        except ConfigError as exc:
            self.error.setText(str(exc))
            self.yaml_view.setPlainText(f"# not a valid config: {exc}")
            self.save_yaml_button.setEnabled(False)
            return
        self.error.setText("")
        self.problems = []
        bar = self.yaml_view.verticalScrollBar().value()
        self.yaml_view.setPlainText(text)
        self.yaml_view.verticalScrollBar().setValue(bar)
        self.save_yaml_button.setEnabled(True)

    def save_yaml(self, path) -> Path:
        """Write the config as YAML (``crosspoint pretrain --config`` reads it)."""
        from crosspoint.atomic import atomic_write_text

        path = Path(path)
        atomic_write_text(path, self.yaml_text())
        return path

    def _save_yaml_dialog(self) -> None:
        start = str(Path(self.out.text().strip() or str(self._runs_dir)).parent / "pretrain.yaml")
        path, _ = QFileDialog.getSaveFileName(self, "Save the config", start, "YAML (*.yaml *.yml)")
        if path:
            try:
                self.save_yaml(path)
            except (OSError, ConfigError) as exc:
                self.error.setText(f"could not save {path}: {exc}")

    # -- starting ---------------------------------------------------------------------------------
    def out_dir(self) -> Path:
        return Path(self.out.text().strip()).expanduser()

    def _accept(self) -> None:
        """Start: refused, with every problem listed, when the config, the output folder or the
        dataset is not usable (nothing is created then); the dataset check runs in a thread."""
        if self.checking:
            return
        try:
            cfg = self.config()
        except ConfigError as exc:
            self.error.setText(str(exc))
            return
        out = self.out_dir()
        if not self.out.text().strip():
            self.error.setText("choose an output folder")
            return
        holder = lock_holder(out)
        if holder is not None:
            self.error.setText(f"{out} is in use by {describe_holder(holder)}: choose another folder, or wait "
                               "for that run to end")
            return
        # a folder whose run stopped before its first checkpoint may be started again (pretrain keeps
        # its old events and log beside the new ones); one with checkpoints is resumed, not restarted
        if (out / "checkpoints").is_dir() and any((out / "checkpoints").glob("*.pt")):
            self.error.setText(f"{out} already holds a run: choose another folder, or attach to it and resume")
            return
        if cfg.data.root in DEMO_DATA_KEYWORDS and cfg.run.selection != "test":
            self._finish(cfg, [])
            return
        from explorer.workers import run_in_thread

        self.checking = True
        self.start_button.setEnabled(False)
        self.error.setStyleSheet("")
        self.error.setText("checking the dataset (crosspoint check-data --quick) ...")
        run_in_thread(check_dataset, cfg, on_result=lambda problems: self._finish(cfg, problems),
                      on_error=lambda exc: self._finish(cfg, [f"the dataset check failed: {exc}"]),
                      owner=self)

    def _finish(self, cfg: PretrainConfig, problems: list[str]) -> None:
        self.checking = False
        self.start_button.setEnabled(True)
        self.error.setStyleSheet("color: #ff8a80;")
        self.problems = list(problems)
        if problems:
            shown = problems[:8]
            more = f"\n... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
            self.error.setText(f"Not started: the dataset has {len(problems)} problem(s) "
                               "(crosspoint check-data lists them too):\n" + "\n".join(f"\u2022 {p}" for p in shown)
                               + more)
            self.error.setToolTip("\n".join(problems))
            return
        out = self.out_dir()
        if out.parent.resolve() != self._runs_dir.resolve():  # a project folder of the user's: next time too
            self.settings.setValue("training/project_dir", str(out.parent.resolve()))
        self._cfg = cfg
        self.accept()

    def accepted_config(self) -> PretrainConfig | None:
        return self._cfg


class RunMonitor(QWidget):
    """Live view of one run folder: loss curves, lr, validation accuracy, progress, log tail.

    ``start(cfg, out)`` launches ``crosspoint pretrain`` as a subprocess; ``attach(out)`` only watches
    the folder's event stream (a run started elsewhere). ``stop()`` asks the run to stop cleanly
    (SIGTERM: it finishes the step and writes ``last.pt``); ``resume()`` continues it.
    """

    checkpointReady = pyqtSignal(str)  # the user asked to open a checkpoint in the explorer
    runFinished = pyqtSignal(str)  # "end", "stopped", "error" or "crashed"
    eventsRead = pyqtSignal(int)

    POLL_MS = 300

    def __init__(self, parent=None, *, settings=None):
        super().__init__(parent)
        from explorer.state import RunProgress

        self.settings = settings
        #: the progress line's model: the ETA is shown only while a live process runs the watched run
        self.run_progress = RunProgress()
        self.run_progress.changed.connect(self._show_progress)
        self.run_dir: Path | None = None
        self.process: QProcess | None = None
        self.reader: EventReader | None = None
        self.events: list[dict] = []
        self.skipped_events = 0
        self.status = "idle"
        self.last_error = ""
        self._steps: dict[str, list] = {"step": [], "loss": [], "intra": [], "cross": [], "lr": []}
        self._val: dict[str, list] = {"epoch": [], "acc": []}
        #: who holds the watched run folder's lock (``lock_holder``): None when no live process does
        self.holder: dict | None = None
        self._lock_checked = 0.0
        self._attached_check = False
        self._build()
        self.timer = QTimer(self, interval=self.POLL_MS)
        self.timer.timeout.connect(self.poll)

    # -- widgets ----------------------------------------------------------------------------------
    def _build(self) -> None:
        pg.setConfigOptions(antialias=True)
        top = QHBoxLayout()
        self.title = QLabel("No run")
        f = QFont(self.title.font())
        f.setBold(True)
        self.title.setFont(f)
        self.live_label = QLabel("")
        self.live_label.setToolTip("Whether a live process holds the run folder (its lock)")
        self.new_button = QPushButton("New run...")
        self.attach_button = QPushButton("Attach to folder...")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.open_button = QPushButton("Open checkpoint")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.resume)
        self.open_button.clicked.connect(self._open_checkpoint)
        self.attach_button.clicked.connect(self.attach_dialog)
        self.new_button.clicked.connect(self.new_run_dialog)
        top.addWidget(self.title, 1)
        top.addWidget(self.live_label)
        for b in (self.new_button, self.attach_button, self.stop_button, self.resume_button, self.open_button):
            top.addWidget(b)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("")
        self.progress.setTextVisible(True)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)

        self.loss_plot = pg.PlotWidget(title="loss")
        self.loss_plot.addLegend(offset=(-10, 10))
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.showGrid(x=True, y=True, alpha=0.2)
        self.curve_total = self.loss_plot.plot(pen=pg.mkPen("#e0e0e0", width=2), name="total")
        self.curve_intra = self.loss_plot.plot(pen=pg.mkPen("#4fc3f7", width=1.5), name="intra-modal")
        self.curve_cross = self.loss_plot.plot(pen=pg.mkPen("#ffb74d", width=1.5), name="cross-modal")
        self.lr_plot = pg.PlotWidget(title="learning rate")
        self.lr_plot.setLabel("bottom", "step")
        self.lr_plot.showGrid(x=True, y=True, alpha=0.2)
        self.curve_lr = self.lr_plot.plot(pen=pg.mkPen("#aed581", width=1.5))
        # the y range is set from the data (_refresh_plots): a constant lr must not be drawn at 0 on a
        # +-0.4 axis (the auto range of a flat line), so the axis runs from 0 to above the largest lr
        self.lr_plot.enableAutoRange(axis="y", enable=False)
        self.acc_plot = pg.PlotWidget(title="validation SVM accuracy")
        self.acc_plot.setLabel("bottom", "epoch")
        self.acc_plot.showGrid(x=True, y=True, alpha=0.2)
        # accuracies live in [0, 1]: a fixed range keeps a flat curve flat instead of zooming on noise
        self.acc_plot.setYRange(0.0, 1.0, padding=0.02)
        self.acc_plot.getViewBox().setLimits(yMin=-0.05, yMax=1.05)
        self.acc_plot.enableAutoRange(axis="y", enable=False)
        self.curve_acc = self.acc_plot.plot(pen=pg.mkPen("#ce93d8", width=2), symbol="o", symbolSize=6,
                                            symbolBrush="#ce93d8")
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() * 0.85))
        for p in (self.loss_plot, self.lr_plot, self.acc_plot):
            p.setBackground("#1e2126")
            p.setMinimumHeight(110)
            p.setMinimumWidth(150)
            item = p.getPlotItem()
            item.titleLabel.setMaximumHeight(18)  # the title takes one short line, not a fifth of the plot
            item.layout.setRowFixedHeight(0, 18)
            for ax in ("left", "bottom"):
                item.getAxis(ax).setStyle(tickFont=small)
                item.getAxis(ax).label.setFont(small)
            item.getAxis("bottom").setHeight(32)
        self.lr_plot.getAxis("left").enableAutoSIPrefix(True)

        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        self.log_view.setMinimumHeight(40)
        self.log_view.setFont(QFont("DejaVu Sans Mono", 8))

        plots = QWidget()
        g = QGridLayout(plots)
        g.setContentsMargins(0, 0, 0, 0)
        # one row of plots beside the log: the panel lives in the (short, wide) bottom dock area
        g.addWidget(self.loss_plot, 0, 0)
        g.addWidget(self.lr_plot, 0, 1)
        g.addWidget(self.acc_plot, 0, 2)
        g.setColumnStretch(0, 3)
        g.setColumnStretch(1, 2)
        g.setColumnStretch(2, 2)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(plots)
        box = QGroupBox("Log")
        bl = QVBoxLayout(box)
        bl.setContentsMargins(4, 4, 4, 4)
        bl.addWidget(self.log_view)
        split.addWidget(box)
        split.setSizes([900, 300])

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)
        lay.addLayout(top)
        prow = QHBoxLayout()  # progress and status share a row: the plots get the height
        prow.addWidget(self.progress, 2)
        prow.addWidget(self.status_label, 3)
        lay.addLayout(prow)
        lay.addWidget(split, 1)
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning
        self.stop_button.setEnabled(running)
        held = self.holder is not None and not running
        self.resume_button.setEnabled(not running and not held and self.run_dir is not None
                                      and (self.run_dir / "checkpoints" / "last.pt").is_file()
                                      and self.status != "end")
        self.resume_button.setToolTip(
            f"In use by {describe_holder(self.holder)}: Resume is possible once that run ends" if held
            else "Continue the run from its last checkpoint")
        self.open_button.setEnabled(self.best_checkpoint() is not None)
        self.new_button.setEnabled(not running)
        self.attach_button.setEnabled(not running)

    # -- the run folder's lock ------------------------------------------------------------------
    LOCK_CHECK_S = 1.5  # how often the watched folder's lock is probed

    def check_lock(self) -> dict | None:
        """Probe who holds the watched run folder now; update the live indicator and the buttons.

        Not probed while this window's own child runs (it is live; a probe at the moment the child takes
        the lock could make the child think the folder is in use)."""
        from crosspoint.engine.runlock import LOCK_NAME

        self._lock_checked = time.monotonic()
        was = self.holder
        if self.running:
            self.holder = None
            self.live_label.setText(f"\u25cf live: pid {self.process.processId()} (started here)")
            self.live_label.setStyleSheet("color: #81c784;")
            self.live_label.setToolTip(f"This window's run owns {self.run_dir}")
            self._update_buttons()
            return None
        self.holder = None if self.run_dir is None else lock_holder(self.run_dir)
        if self.run_dir is None:
            self.live_label.setText("")
            self.live_label.setToolTip("")
        elif self.holder is not None:
            self.live_label.setText(f"\u25cf live: pid {self.holder.get('pid', '?')} on {self.holder.get('host', '?')}")
            self.live_label.setStyleSheet("color: #81c784;")
            self.live_label.setToolTip(f"{self.run_dir} is in use by {describe_holder(self.holder)}")
        elif not (self.run_dir / LOCK_NAME).is_file():
            # a run from before run folders were locked: whether it is live cannot be told
            self.live_label.setText("? not locked")
            self.live_label.setStyleSheet("color: #9e9e9e;")
            self.live_label.setToolTip(f"{self.run_dir} has no lock file (a run from an older version): "
                                       "whether a process is writing to it cannot be told")
        else:
            self.live_label.setText("\u25cb not running")
            self.live_label.setStyleSheet("color: #9e9e9e;")
            self.live_label.setToolTip(f"No live process holds {self.run_dir}")
            if self.status == "running" and (was is not None or self._attached_check) and self.reader is not None:
                # a run writes its last event before it lets go of the folder: read what came meanwhile
                new = self.reader.poll()
                if new:
                    self._ingest(new)
                    self.eventsRead.emit(len(new))
            if self.status == "running" and (was is not None or self._attached_check):
                # its events end without "end"/"stopped"/"error", and nothing holds the folder: it died
                self.status = "stopped"
                self.run_progress.set_status("watching")
                self._set_status("not running: the run's process is gone (it ended without a final event); "
                                 "Resume continues from the last checkpoint", error=True)
        self._attached_check = False
        self._update_buttons()
        return self.holder

    def _refuse_held(self, what: str, folder: Path, holder: dict) -> None:
        msg = (f"Cannot {what}: {folder} is in use by {describe_holder(holder)}; wait for that run to end or "
               "stop it (Ctrl+C / SIGTERM writes its last checkpoint)")
        self.last_error = msg
        self._set_status(msg, error=True)
        self.append_log(msg)
        log.warning("%s", msg)

    # -- run control ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def new_run_dialog(self) -> None:
        """The training dialog; a run starts when it is accepted (its dataset checked)."""
        dlg = TrainingDialog(self, settings=self.settings)
        if dlg.exec() == QDialog.DialogCode.Accepted and dlg.accepted_config() is not None:
            self.start(dlg.accepted_config(), dlg.out_dir())

    def attach_dialog(self) -> None:
        start = self.run_dir.parent if self.run_dir is not None else default_runs_dir(self.settings)
        d = QFileDialog.getExistingDirectory(self, "Attach to a run folder", str(start if start.is_dir() else Path.home()))
        if d:
            self.attach(d)

    def start(self, cfg: PretrainConfig, out: str | Path) -> bool:
        """Start a run into ``out``; refused (False, with the reason shown) while a live process holds it."""
        out = Path(out)
        if self.running:
            return False
        holder = lock_holder(out)
        if holder is not None:
            self._refuse_held("start a run", out, holder)
            return False
        out.mkdir(parents=True, exist_ok=True)
        cfg_path = out / "requested_config.yaml"
        cfg_path.write_text(dump_config(cfg))
        self._watch(out, reset=True)
        self._launch(["--config", str(cfg_path), "--out", str(out)])
        return True

    def resume(self) -> bool:
        """Continue the watched run; refused (False, with the reason shown) while a live process holds it."""
        if self.run_dir is None or self.running:
            return False
        if self.check_lock() is not None:
            self._refuse_held("resume", self.run_dir, self.holder)
            return False
        self._launch(["--out", str(self.run_dir), "--resume"])
        return True

    def _launch(self, args: list[str]) -> None:
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        pp = env.value("PYTHONPATH", "")
        env.insert("PYTHONPATH", str(REPO) + (os.pathsep + pp if pp else ""))
        proc.setProcessEnvironment(env)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.readyReadStandardOutput.connect(self._read_output)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_process_error)
        proc.started.connect(self.check_lock)
        full = ["-m", "crosspoint", "pretrain", "--no-progress", *args]
        self.append_log(f"$ {Path(sys.executable).name} {' '.join(full)}")
        self.process = proc
        self.status = "running"
        self.last_error = ""
        proc.start(sys.executable, full)
        self.timer.start()
        self.run_progress.set_status("running")
        self._set_status("starting ...")
        self._update_buttons()

    def stop(self) -> None:
        """Ask the run to stop: SIGTERM; it finishes its step, writes last.pt and exits 0."""
        if self.running:
            self._set_status("stopping: finishing the current step and writing the last checkpoint ...")
            self.process.terminate()

    def attach(self, run_dir: str | Path) -> None:
        """Watch a run folder (a run started elsewhere, or a finished one)."""
        run_dir = Path(run_dir)
        if not (run_dir / "events.jsonl").is_file():
            QMessageBox.warning(self, "Not a run folder", f"{run_dir} has no events.jsonl")
            return
        self._watch(run_dir, reset=True)
        self.timer.start()
        self.poll()
        self._attached_check = True
        self.check_lock()
        if self.holder is not None and self.status in ("stopped", "end", "error"):
            # a new process holds the folder but has not written its "start" yet
            self._set_status(f"in use by {describe_holder(self.holder)}: another process is running it now "
                             "(its events will appear here); Resume is possible once it ends")

    def _watch(self, run_dir: Path, reset: bool) -> None:
        self.run_dir = Path(run_dir)
        self.reader = EventReader(self.run_dir)
        if reset:
            self.events.clear()
            for v in (*self._steps.values(), *self._val.values()):
                v.clear()
            self.log_view.clear()
            self.status = "watching"
            self.run_progress.reset()
            self.progress.setValue(0)
            self.run_progress.set_status("watching")
        self.title.setText(str(self.run_dir))
        self._refresh_plots()
        self._update_buttons()

    # -- reading ----------------------------------------------------------------------------------
    def append_log(self, text: str) -> None:
        for line in text.splitlines():
            self.log_view.appendPlainText(line)

    def _read_output(self) -> None:
        if self.process is None:
            return
        data = bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
        if data:
            self.append_log(data.rstrip("\n"))

    def poll(self) -> None:
        if self.reader is None:
            return
        new = self.reader.poll()
        if new:
            self._ingest(new)
            self.eventsRead.emit(len(new))
        if time.monotonic() - self._lock_checked >= self.LOCK_CHECK_S:
            self.check_lock()

    def _ingest(self, new: list[dict]) -> None:
        for e in new:
            problems = validate_event(e)
            if problems:  # a newer or foreign writer: show what is skipped instead of plotting garbage
                self.skipped_events += 1
                self.append_log(f"skipped an event that does not follow the schema: {'; '.join(problems)}")
                continue
            self.events.append(e)
            kind = e.get("event")
            if kind == "start":
                self._start_event = e
                if e.get("resumed_from"):
                    self._drop_superseded(int(e.get("start_step") or 0), int(e.get("start_epoch") or 0))
                if not self.running and self.status == "watching":
                    self.status = "running"
                    self.run_progress.set_status("running")
            elif kind == "step":
                self._steps["step"].append(e.get("step", 0))
                self._steps["loss"].append(e.get("loss"))
                self._steps["intra"].append(e.get("loss_intra"))
                self._steps["cross"].append(e.get("loss_cross"))
                self._steps["lr"].append(e.get("lr"))
                self.progress.setValue(int(1000 * min(max(e.get("progress") or 0.0, 0.0), 1.0)))
                self.run_progress.set_step(e.get("epoch", 0), e.get("step", 0), e.get("progress") or 0.0,
                                           e.get("eta_s"))
                self._set_status(f"loss {e.get('loss', float('nan')):.4f} (intra {e.get('loss_intra', 0):.3f}, "
                                 f"cross {e.get('loss_cross', 0):.3f})  lr {e.get('lr', 0):.2e}  "
                                 f"{e.get('samples_per_s', 0):.1f} samples/s")
            elif kind == "epoch" and e.get("val_acc") is not None:
                self._val["epoch"].append(e["epoch"] + 1)
                self._val["acc"].append(e["val_acc"])
            elif kind == "checkpoint":
                self.append_log(f"checkpoint written: {e.get('path')}")
            elif kind in ("end", "stopped", "error"):
                self.status = kind
                self.run_progress.set_status(kind)
                if kind == "error":
                    self.last_error = e.get("message", "")
                    tb = (e.get("traceback") or "").strip().splitlines()[-6:]
                    self._set_status("FAILED: " + self.last_error, error=True)
                    self.append_log("\n".join(tb))
                elif kind == "end":
                    self.progress.setValue(1000)
                    best = e.get("best_acc")
                    self._set_status("finished" + (f"; best validation accuracy {best:.3f}" if best is not None else ""))
                else:
                    self._set_status(f"stopped at step {e.get('step')}; Resume continues from the last checkpoint")
                if not self.running:
                    self.runFinished.emit(kind)
        self._refresh_plots()
        self._update_buttons()

    def _drop_superseded(self, start_step: int, start_epoch: int) -> None:
        """A resumed run redoes the steps after its checkpoint: drop them from the curves (as
        :func:`crosspoint.engine.events.drop_superseded` does for the event list)."""
        keep = [i for i, st in enumerate(self._steps["step"]) if st <= start_step]
        for key, values in self._steps.items():
            self._steps[key] = [values[i] for i in keep]
        keep = [i for i, ep in enumerate(self._val["epoch"]) if ep <= start_epoch]
        for key, values in self._val.items():
            self._val[key] = [values[i] for i in keep]

    def _refresh_plots(self) -> None:
        s = self._steps
        x = np.asarray(s["step"], float)

        def arr(v):
            return np.asarray([np.nan if a is None else a for a in v], float)

        self.curve_total.setData(x, arr(s["loss"]), connect="finite")
        self.curve_intra.setData(x, arr(s["intra"]), connect="finite")
        self.curve_cross.setData(x, arr(s["cross"]), connect="finite")
        lr = arr(s["lr"])
        self.curve_lr.setData(x, lr, connect="finite")
        finite = lr[np.isfinite(lr)]
        top = float(finite.max()) if finite.size else 0.0
        self.lr_plot.setYRange(0.0, top * 1.15 if top > 0 else 1.0, padding=0)
        self.curve_acc.setData(np.asarray(self._val["epoch"], float), arr(self._val["acc"]))

    def _show_progress(self) -> None:
        self.progress.setFormat(self.run_progress.text())
        if self.run_progress.status == "end":
            self.progress.setValue(1000)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #ff8a80;" if error else "")

    def _on_finished(self, code: int, status) -> None:
        self._read_output()
        self.poll()
        crashed = status == QProcess.ExitStatus.CrashExit
        if code != 0 or crashed:
            if self.status not in ("error",):
                tail = self.log_view.toPlainText().strip().splitlines()[-8:]
                self.last_error = "\n".join(tail) or f"exit code {code}"
                self._set_status(f"FAILED (exit code {code}): " + (tail[-1] if tail else ""), error=True)
            self.status = "error" if self.status == "error" else "crashed"
            self.run_progress.set_status(self.status)
            self.runFinished.emit(self.status)
        elif self.status not in ("end", "stopped"):
            self.status = "stopped"
            self.run_progress.set_status("stopped")
            self.runFinished.emit("stopped")
        else:
            self.run_progress.set_status(self.status)
            self.runFinished.emit(self.status)
        self.process = None
        self.timer.stop()
        self.check_lock()

    def _on_process_error(self, err) -> None:
        if err == QProcess.ProcessError.FailedToStart:
            self.last_error = f"could not start {sys.executable}"
            self._set_status("FAILED: " + self.last_error, error=True)
            self.status = "crashed"
            self.run_progress.set_status("crashed")
            self.process = None
            self._update_buttons()

    # -- checkpoints ----------------------------------------------------------------------------
    def best_checkpoint(self) -> Path | None:
        if self.run_dir is None:
            return None
        for name in ("best.pt", "last.pt"):
            p = self.run_dir / "checkpoints" / name
            if p.is_file():
                return p
        return None

    def _open_checkpoint(self) -> None:
        p = self.best_checkpoint()
        if p is not None:
            self.checkpointReady.emit(str(p))

    def shutdown(self, timeout_ms: int = 15000) -> None:
        """Stop a running child cleanly (used when the window closes)."""
        if self.running:
            self.process.terminate()
            if not self.process.waitForFinished(timeout_ms):
                self.process.kill()
                self.process.waitForFinished(2000)
        self.timer.stop()

