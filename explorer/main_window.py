"""The explorer's main window: the 3D view, the list of open objects, menus, toolbar, status bar."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QEvent, QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from crosspoint.pointcloud import PointCloud
from explorer import colors
from explorer.settings import app_settings
from explorer.state import AppState, Document
from explorer.viewer3d import Viewer3D
from explorer.workers import run_in_thread

log = logging.getLogger(__name__)

MAX_RECENT = 10
#: Clouds larger than this are subsampled for display (the full cloud is kept for analysis).
DISPLAY_MAX_POINTS = 1_000_000  # ~170 ms a frame here (bench_viewer.py); more is not interactive


def default_up_axis(cloud: PointCloud) -> int:
    """The up axis the reader recorded for the file (``crosspoint.io``'s format registry: +Z for
    ModelNet's OFF meshes and LAS scans, +Y otherwise)."""
    return int(getattr(cloud, "up_axis", 1) or 1)


def single_location_note(cloud: PointCloud) -> str:
    """``"1 point at (x, y, z); "`` or ``"N identical points at (x, y, z); "`` for a cloud that is one
    location (the 3D view marks it and frames a minimum extent around it), else ``""``."""
    from explorer.o3d_renderer import OffscreenRenderer

    center = OffscreenRenderer.degenerate_center(cloud.points)
    if center is None:
        return ""
    what = Viewer3D.describe_single(cloud.n_points)
    return f"{what} at ({center[0]:.4g}, {center[1]:.4g}, {center[2]:.4g}), marked in the view; "


#: bump when the docks change: saved window layouts of other versions are then ignored
LAYOUT_VERSION = 2

#: colour modes remembered for the next objects and launches (the others show one object's results)
REMEMBERED_MODES = ("rgb", "normal", "height", "labels", "uniform")


class WheelToScroll(QObject):
    """Event filter for combo and spin boxes inside a scrolling panel: the mouse wheel changes a box
    only once it has focus (a click or Tab); otherwise the wheel scrolls the panel, as a user
    scrolling past the box expects (otherwise the Device combo changed, and reloaded the model)."""

    def eventFilter(self, obj, event):  # noqa: N802
        if event.type() != QEvent.Type.Wheel or obj.hasFocus():
            return False
        from PyQt6.QtWidgets import QAbstractScrollArea, QApplication

        area = obj.parent()
        while area is not None and not isinstance(area, QAbstractScrollArea):
            area = area.parent()
        if area is not None:
            QApplication.sendEvent(area.viewport(), event)  # the panel scrolls
        return True  # the box does not change

    def install(self, root: QWidget) -> None:
        from PyQt6.QtWidgets import QAbstractSpinBox

        for w in root.findChildren(QComboBox) + root.findChildren(QAbstractSpinBox):
            w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # not WheelFocus: the wheel does not focus them
            w.installEventFilter(self)


class ErrorBanner(QWidget):
    """A dismissable red banner above the 3D view that says what went wrong.

    It lists every error since it was last dismissed (or since the last batch of files was opened):
    one error reads as a sentence; several read as a list, each file with its reason. A long list
    shows its first few entries and "and N more"; the full list is in the tooltip and behind
    "Details...".
    """

    #: at most this many entries are listed in full; a longer list shows ``MAX_SHOWN - 1`` and "and N more"
    MAX_SHOWN = 4
    #: a listed reason longer than this is cut (the tooltip and the details have it whole)
    MAX_REASON = 220

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet("#errorBanner { background: #7a2630; border-radius: 4px; } QLabel { color: white; }"
                           " QPushButton { color: white; }")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_button = QPushButton("Details...")
        self.details_button.setFlat(True)
        self.details_button.setToolTip("Every error with its full message")
        self.details_button.clicked.connect(self.show_details)
        close = QPushButton("Dismiss")
        close.setFlat(True)
        close.clicked.connect(self.clear)
        buttons = QVBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(close)
        buttons.addWidget(self.details_button)
        buttons.addStretch(1)
        lay.addWidget(self.label, 1)
        lay.addLayout(buttons)
        self.dismiss_button = close
        self.details_box: QMessageBox | None = None
        #: (kind, name, reason, where): kind "open" (a file that could not be opened; ``where`` is its
        #: full path) or "action" (``name`` says what failed)
        self._entries: list[tuple[str, str, str, str]] = []
        self._keys: list[tuple[int, int]] = []  # sort keys of the entries (see add_error)
        self.hide()

    # -- entries ----------------------------------------------------------------------------------
    def add_error(self, name: str, reason: str, *, kind: str = "open", where: str | None = None,
                  order: int | None = None) -> None:
        """Add one error (``kind`` "open": ``name`` is the file, ``where`` its full path; "action":
        ``name`` says what failed). ``order``: its place among the files opened together (files load in
        parallel and fail in any order; the list follows the order they were given in)."""
        entry = (kind, str(name), str(reason).strip(), str(where or name))
        key = (0, order) if order is not None else (1, len(self._entries))
        at = len(self._entries)
        if order is not None:  # before the first entry with a later place (or no place)
            at = next((i for i, k in enumerate(self._keys) if k > key), len(self._entries))
        self._entries.insert(at, entry)
        self._keys.insert(at, key)
        self._refresh()
        self.show()

    def show_message(self, text: str) -> None:
        """Replace the list with one free-form message."""
        self._entries = [("message", "", str(text), "")]
        self._keys = [(1, 0)]
        self._refresh()
        self.show()

    def clear(self) -> None:
        """Forget the errors and hide (the Dismiss button)."""
        self._entries = []
        self._keys = []
        self.label.setText("")
        self.label.setToolTip("")
        self.hide()

    @property
    def entries(self) -> list[tuple[str, str, str, str]]:
        return list(self._entries)

    def text(self) -> str:
        """What the banner shows now ("" when hidden)."""
        return self.label.text() if self.isVisible() else ""

    def full_text(self) -> str:
        """Every error with its whole message (the tooltip and the details)."""
        return "\n".join(self._line(e, cut=False) for e in self._entries)

    # -- presentation -----------------------------------------------------------------------------
    @staticmethod
    def _sentence(kind: str, name: str, reason: str, where: str) -> str:
        if kind == "open":
            return f"Could not open {name}. {where}: {reason}"
        if kind == "action":
            return f"{name[:1].upper() + name[1:]} failed: {reason}"
        return reason

    def _line(self, entry: tuple[str, str, str, str], *, cut: bool) -> str:
        kind, name, reason, where = entry
        if cut:
            reason = " ".join(reason.split())  # one line per entry
            if len(reason) > self.MAX_REASON:
                reason = reason[: self.MAX_REASON - 3].rstrip() + "..."
        if kind == "open":
            return f"{name if cut else where}: {reason}"
        if kind == "action":
            return f"{name[:1].upper() + name[1:]} failed: {reason}"
        return reason

    def heading(self) -> str:
        n = len(self._entries)
        kinds = {e[0] for e in self._entries}
        if kinds == {"open"}:
            return f"Could not open {n} files:"
        if kinds == {"action"}:
            return f"{n} actions failed:"
        return f"{n} errors:"

    def _refresh(self) -> None:
        entries = self._entries
        if not entries:
            self.label.setText("")
            self.label.setToolTip("")
            self.details_button.hide()
            return
        if len(entries) == 1:
            kind, name, reason, where = entries[0]
            text = self._sentence(kind, name, reason, where)
            cut = len(text) > 4 * self.MAX_REASON
            if cut:
                text = text[: 4 * self.MAX_REASON - 3].rstrip() + "..."
            self.label.setText(text)
            self.label.setToolTip(self.full_text())
            self.details_button.setVisible(cut)
            return
        shown = entries if len(entries) <= self.MAX_SHOWN else entries[: self.MAX_SHOWN - 1]
        lines = [self.heading()] + ["\u2022 " + self._line(e, cut=True) for e in shown]
        if len(shown) < len(entries):
            lines.append(f"... and {len(entries) - len(shown)} more (Details... lists them all)")
        self.label.setText("\n".join(lines))
        self.label.setToolTip(self.heading() + "\n" + self.full_text())
        self.details_button.show()

    def show_details(self) -> None:
        """Every error with its full message, in a dialog (not modal: the window stays usable)."""
        if not self._entries:
            return
        if self.details_box is not None:
            self.details_box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, "Errors",
                          self.heading() if len(self._entries) > 1 else "1 error:",
                          QMessageBox.StandardButton.Close, self.window())
        box.setInformativeText("\n\n".join(self._line(e, cut=False) for e in self._entries[:12])
                               + (f"\n\n... and {len(self._entries) - 12} more: see the details"
                                  if len(self._entries) > 12 else ""))
        box.setDetailedText(self.full_text())
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.destroyed.connect(lambda *_: setattr(self, "details_box", None))
        self.details_box = box
        box.open()


class MainWindow(QMainWindow):
    loadingFinished = pyqtSignal()  # emitted when no file loads are pending any more

    def __init__(self, state: AppState | None = None, parent=None):
        super().__init__(parent)
        self.model_frame = False  # View > As the Model Sees It
        self.setWindowTitle("CrossPoint Explorer")
        self.setAcceptDrops(True)
        self.state = state or AppState()
        self.settings = app_settings()
        self._pending_loads = 0
        self._open_order: dict[str, int] = {}  # path -> its place in the batch being opened
        self._batch = 0  # counts the batches of files opened (the Objects list follows their order)
        self.load_errors: list[tuple[str, str]] = []
        self.action_errors: list[tuple[str, str]] = []

        # central: error banner over the 3D view
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)
        self.banner = ErrorBanner()
        self.viewer = Viewer3D()
        lay.addWidget(self.banner)
        lay.addWidget(self.viewer, 1)
        self.setCentralWidget(central)

        self._build_files_dock()
        self._build_toolbar()
        self._build_menus()
        self._build_status_bar()
        self._build_analysis_docks()

        self.state.currentChanged.connect(self._on_current_changed)
        self.state.documentUpdated.connect(self._on_document_updated)
        self.state.documentsChanged.connect(self._refresh_file_list)
        self.state.contextChanged.connect(self._on_context_changed)
        self.state.error.connect(self._on_error)
        self.state.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.viewer.frameRendered.connect(self._on_frame)
        self.viewer.pointPicked.connect(self._on_point_picked)
        self.viewer.measurementChanged.connect(self._on_measurement)

        self._restore_settings()

    # -- construction ---------------------------------------------------------------------------
    def _build_files_dock(self) -> None:
        self.file_list = QListWidget()
        self.file_list.currentRowChanged.connect(self.state.set_current)
        self.file_list.itemChanged.connect(self._on_layer_toggled)
        self.file_list.setToolTip("Click: show the object. Checkbox: also draw it beside the one shown (layers)")
        dock = QDockWidget("Objects", self)
        dock.setObjectName("dock_objects")
        dock.setWidget(self.file_list)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.files_dock = dock

    def _build_toolbar(self) -> None:
        tb = QToolBar("View")
        tb.setObjectName("toolbar_view")
        tb.setMovable(False)
        self.addToolBar(tb)
        self.open_button = QPushButton("Open...")
        self.open_button.clicked.connect(self.open_dialog)
        tb.addWidget(self.open_button)
        tb.addSeparator()
        tb.addWidget(QLabel(" Colour: "))
        self.color_combo = QComboBox()
        self.color_combo.setMinimumWidth(110)
        self.color_combo.activated.connect(self._on_color_combo)
        tb.addWidget(self.color_combo)
        tb.addWidget(QLabel("  Point size: "))
        self.point_size = QSpinBox()
        self.point_size.setRange(1, 20)
        self.point_size.setValue(3)
        self.point_size.valueChanged.connect(self.viewer.set_point_size)
        tb.addWidget(self.point_size)
        self.show_mesh = QCheckBox("Mesh")
        self.show_mesh.setToolTip("Show the source mesh (for mesh files)")
        self.show_mesh.toggled.connect(self.viewer.set_show_mesh)
        tb.addWidget(self.show_mesh)
        reset = QPushButton("Reset view")
        reset.setToolTip("Reset the camera (R)")
        reset.clicked.connect(self.viewer.reset_view)
        tb.addWidget(reset)
        self.toolbar = tb

    def _build_menus(self) -> None:
        mb = self.menuBar()
        fm = mb.addMenu("&File")
        act = QAction("&Open...", self, shortcut=QKeySequence.StandardKey.Open, triggered=self.open_dialog)
        fm.addAction(act)
        self.recent_menu = fm.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        fm.addAction(QAction("Open &Demo Object", self, triggered=lambda: self.open_demo()))
        fm.addSeparator()
        self.export_action = QAction("&Export Current as...", self, shortcut="Ctrl+E", triggered=self.export_current)
        fm.addAction(self.export_action)
        fm.addAction(QAction("&Close Current", self, shortcut=QKeySequence.StandardKey.Close,
                             triggered=lambda: self.state.remove(self.state.current_index)))
        fm.addAction(QAction("&Save Screenshot...", self, triggered=self.save_screenshot_dialog))
        fm.addSeparator()
        fm.addAction(QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close))
        self.file_menu = fm

        vm = mb.addMenu("&View")
        vm.addAction(QAction("&Reset View", self, shortcut="R", triggered=self.viewer.reset_view))
        vm.addAction(QAction("&Frame All Objects Drawn", self, shortcut="Shift+R",
                             triggered=lambda: self.viewer.reset_view(with_layers=True)))
        sv = vm.addMenu("&Standard Views")
        for key, names in ((1, ("front", "back")), (3, ("right", "left")), (7, ("top", "bottom"))):
            for name, mod in zip(names, ("", "Alt+")):
                sv.addAction(QAction(name.capitalize(), self, shortcut=f"{mod}{key}",
                                     triggered=lambda _=False, n=name: self.viewer.standard_view(n)))
        self.model_frame_action = QAction("As the &Model Sees It", self, shortcut="M", checkable=True,
                                          toggled=self.set_model_frame)
        self.model_frame_action.setToolTip("Draw the object turned as the model gets it (+Y up, the up axis and "
                                           "any turn from the orientation check applied)")
        vm.addAction(self.model_frame_action)
        self.axes_action = QAction("Axis &Triad", self, checkable=True, checked=True,
                                   toggled=lambda on: self.viewer.set_show_axes(on))
        self.bbox_action = QAction("&Bounding Box", self, shortcut="B", checkable=True,
                                   toggled=lambda on: self.viewer.set_show_bbox(on))
        vm.addAction(QAction("Colour &Range...", self, shortcut="Ctrl+R", triggered=self.open_range_dialog))
        self.edl_action = QAction("&Eye-Dome Lighting", self, shortcut="E", checkable=True,
                                  toggled=lambda on: self.viewer.set_edl(on))
        self.edl_action.setToolTip("Shade by depth (a dark rim where a surface lies behind a nearer one), as "
                                   "CloudCompare does: points have no normals to light")
        vm.addAction(self.edl_action)
        self.ortho_action = QAction("&Orthographic", self, shortcut="5", checkable=True,
                                    toggled=lambda on: self.viewer.set_ortho(on))
        self.ortho_action.setToolTip("Parallel projection (5, as in Blender); 'Look from here' goes back to "
                                     "perspective, as the rendered views are")
        vm.addAction(self.ortho_action)
        vm.addAction(self.axes_action)
        vm.addAction(self.bbox_action)
        vm.addAction(QAction("Clear &Measurement", self, triggered=lambda: self.viewer.clear_marks()))
        vm.addAction(QAction("&Look from the Selected 2D View", self, shortcut="L",
                             triggered=lambda: self.views._look_from()))
        self.color_menu = vm.addMenu("&Colour by")
        self.color_actions: dict[str, QAction] = {}
        for i, (mode, label) in enumerate(colors.COLOR_MODES.items(), start=1):
            vm_act = QAction(label, self, shortcut=f"Ctrl+{i}", checkable=True,
                             triggered=lambda _=False, m=mode: self.set_color_mode(m, remember=True))
            self.color_menu.addAction(vm_act)
            self.color_actions[mode] = vm_act
        vm.addAction(QAction("Bigger Points", self, shortcut="+",
                             triggered=lambda: self.point_size.setValue(self.point_size.value() + 1)))
        vm.addAction(QAction("Smaller Points", self, shortcut="-",
                             triggered=lambda: self.point_size.setValue(self.point_size.value() - 1)))
        up = vm.addMenu("&Up Axis")
        self.up_actions = {}
        for axis, label in ((1, "+Y (ShapeNet, ModelNet40 HDF5)"), (2, "+Z (ModelNet OFF, scans, LAS)")):
            a = QAction(label, self, checkable=True, triggered=lambda _=False, ax=axis: self.set_up_axis(ax))
            up.addAction(a)
            self.up_actions[axis] = a
        vm.addSeparator()
        self.view_menu = vm
        self.view_menu.addAction(self.files_dock.toggleViewAction())
        self.help_menu = mb.addMenu("&Help")
        self.help_menu.addAction(QAction("&About CrossPoint Explorer", self, triggered=self.show_about))

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.summary_label = QLabel("")
        self.frame_label = QLabel("")
        sb.addWidget(self.summary_label, 1)
        sb.addPermanentWidget(self.frame_label)

    # -- opening files --------------------------------------------------------------------------
    def open_dialog(self) -> None:
        from crosspoint import io

        start = self.settings.value("last_dir", str(Path.home()))
        files, _ = QFileDialog.getOpenFileNames(self, "Open point clouds or meshes", start, io.FILE_DIALOG_FILTER)
        if files:
            self.settings.setValue("last_dir", str(Path(files[0]).parent))
            self.open_files(files)

    def open_files(self, paths) -> None:
        """Open ``paths`` together: they load in parallel, are listed in the order given, and the first
        of them that loaded is shown."""
        self.banner.clear()  # the banner lists the errors of this batch of files, in the order given
        paths = [str(p) for p in paths]
        self._open_order = {p: i for i, p in reversed(list(enumerate(paths)))}
        self._batch += 1
        batch = self._batch
        for p in paths:
            self.open_file(str(p), _order=(batch, self._open_order[p]))

    def open_file(self, path: str, extra_meta: dict | None = None, *, _order: tuple | None = None) -> None:
        """Read ``path`` in a worker thread; on success it becomes the current object. ``extra_meta``
        (label names, category) is merged into the cloud's metadata."""
        from crosspoint import io

        if _order is None:
            self._batch += 1
            _order = (self._batch, 0)
        self._pending_loads += 1
        self.statusBar().showMessage(f"Opening {path} ...")

        def work():
            return io.read_point_cloud(path)

        def done(cloud: PointCloud):
            for key, value in (extra_meta or {}).items():
                if key == "category" and cloud.category is None:
                    cloud.category = value
                elif key != "category":
                    cloud.meta.setdefault(key, value)
            self._add_cloud(cloud, path, order=_order)
            self._add_recent(path)

        def failed(exc: BaseException):
            msg = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            self.state.error.emit(path, msg)

        self._start(work, done, failed)

    def open_demo(self, class_name: str | None = None, seed: int = 0) -> None:
        """Show one procedurally generated demo object (instant; no files needed), of the demo the
        shipped checkpoint was trained on."""
        from crosspoint.data.demo import SHIPPED_PRESET, demo_object

        try:
            cloud = demo_object(class_name, seed=seed, preset=SHIPPED_PRESET)
        except Exception as exc:  # the demo must never take the window down
            self.state.error.emit("demo", f"{type(exc).__name__}: {exc}")
            return
        label = cloud.category or class_name or "object"
        self._batch += 1
        self.state.add(Document(cloud, f"demo: {label} (seed {seed})", color_mode=self._initial_mode(cloud),
                                order=(self._batch, 0)))

    def _start(self, work, done, failed) -> None:
        def finished():
            self._pending_loads -= 1
            if self._pending_loads == 0:
                if self.statusBar().currentMessage().startswith("Opening "):
                    self.statusBar().clearMessage()
                self.loadingFinished.emit()

        run_in_thread(work, on_result=done, on_error=failed, on_finished=finished, owner=self)

    @property
    def loading(self) -> bool:
        return self._pending_loads > 0

    def _initial_mode(self, cloud: PointCloud) -> str:
        """The colour mode a new object opens in: the one last chosen (remembered between launches)
        when the object has data for it, else the object's natural one."""
        mode = str(self.settings.value("color_mode") or "")
        if mode in REMEMBERED_MODES and mode in colors.available_modes(cloud):
            return mode
        return colors.default_mode(cloud)

    def _add_cloud(self, cloud: PointCloud, source: str, order: tuple = ()) -> None:
        up = default_up_axis(cloud)
        doc = Document(cloud, source, color_mode=self._initial_mode(cloud), up_axis=up, order=order)
        cur = self.state.current
        # of files opened together, the first one given that has loaded is shown (not the last to load)
        show = not (order and cur is not None and cur.order and cur.order[0] == order[0] and cur.order < order)
        self.state.add(doc, make_current=show)
        for w in cloud.warnings:
            self.statusBar().showMessage(f"{Path(source).name}: {w}", 10000)

    def show_error(self, what: str, message: str) -> None:
        """An error of an action (not of opening a file): banner + status bar; nothing else changes."""
        self.action_errors.append((what, message))
        self.banner.add_error(what, message, kind="action")
        self.statusBar().showMessage(f"Error: {message}", 15000)
        log.warning("%s: %s", what, message)

    def _on_error(self, source: str, message: str) -> None:
        self.load_errors.append((source, message))
        text = message if source in message else f"{source}: {message}"
        if source == "demo":
            self.banner.add_error("The demo object", message, kind="action")
        else:
            # the file's name says which; its folder is in the message when the message names the path
            reason = message[len(source) + 2:] if message.startswith(f"{source}: ") else message
            name = Path(source.split("#")[0]).name + (f"#{source.split('#', 1)[1]}" if "#" in source else "")
            self.banner.add_error(name, reason, where=source, order=self._open_order.get(source))
        n = len(self.banner.entries)
        self.statusBar().showMessage(f"Error: {message}" if n <= 1 else
                                     f"{self.banner.heading().rstrip(':')}: listed above the 3D view", 15000)
        log.warning("%s", text)

    # -- showing the current object -------------------------------------------------------------
    def _refresh_file_list(self) -> None:
        self.file_list.blockSignals(True)
        self.file_list.clear()
        for d in self.state.documents:
            item = QListWidgetItem(d.title)
            item.setToolTip(d.source + "\n(checkbox: also draw it beside the object shown)")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if d.overlay else Qt.CheckState.Unchecked)
            self.file_list.addItem(item)
        self.file_list.setCurrentRow(self.state.current_index)
        self.file_list.blockSignals(False)
        self._refresh_layers()

    def _on_layer_toggled(self, item) -> None:
        row = self.file_list.row(item)
        if 0 <= row < len(self.state.documents):
            self.state.documents[row].overlay = item.checkState() == Qt.CheckState.Checked
            self._refresh_layers()

    def set_layer(self, index: int, on: bool) -> None:
        """Draw object ``index`` beside the current one (the Objects list's checkbox)."""
        item = self.file_list.item(index)
        if item is not None:
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _refresh_layers(self) -> None:
        """The checked objects other than the current one, each in its own colour mode and in the frame
        the current one is drawn in (the file's, or the model's)."""
        cur = self.state.current
        layers = []
        for d in self.state.documents:
            if d is cur or not d.overlay or d.cloud.n_points == 0:
                continue
            cloud = self._display_cloud(d)
            idx = d.ensure_display_index(DISPLAY_MAX_POINTS)
            pts = cloud.points if idx is None else cloud.points[idx]
            layers.append((pts, self._shown_colors(d)))
        self.viewer.set_layers(layers)

    def _on_current_changed(self, doc: Document | None) -> None:
        self.file_list.blockSignals(True)
        self.file_list.setCurrentRow(self.state.current_index)
        self.file_list.blockSignals(False)
        if doc is None:
            self.viewer.clear()
            self.viewer.set_legend([])
            self.viewer.set_colorbar(None)
            self.summary_label.setText("")
            self.setWindowTitle("CrossPoint Explorer")
            return
        cloud = doc.cloud
        shown = doc.ensure_display_index(DISPLAY_MAX_POINTS)
        self._draw_cloud(doc, reset_view=True)
        self._refresh_layers()
        self._sync_up_axis_menu(doc)
        self.show_mesh.setEnabled(cloud.mesh is not None)
        self._update_color_combo(doc)
        self._update_legend(doc)
        summary = cloud.summary()
        if cloud.n_points == 1:
            summary = summary.replace(", 1 points,", ", 1 point,", 1)
        self.summary_label.setText(f"{doc.title}: {single_location_note(cloud)}{summary}" + (
            "" if shown is None else f"; drawing a random {len(shown):,} of them (analyses use all)"))
        self.setWindowTitle(f"{doc.title} - CrossPoint Explorer")

    def _display_cloud(self, doc: Document) -> PointCloud:
        """The cloud as the 3D view draws it: the file's own frame, or (View > As the Model Sees It)
        turned as the model gets it (up axis and rotation applied). Same points in the same order."""
        return doc.cloud.in_model_frame() if self.model_frame else doc.cloud

    def _draw_cloud(self, doc: Document, *, reset_view: bool) -> None:
        cloud = self._display_cloud(doc)
        shown = doc.ensure_display_index(DISPLAY_MAX_POINTS)
        pts = cloud.points if shown is None else cloud.points[shown]
        self.viewer.set_up_axis(1 if self.model_frame else doc.up_axis)
        self.viewer.set_cloud(pts, self._shown_colors(doc), mesh=cloud.mesh, reset_view=reset_view,
                              n_total=cloud.n_points)

    def set_model_frame(self, on: bool) -> None:
        """Draw the object as the model sees it (True) or as the file has it (False)."""
        on = bool(on)
        self.model_frame_action.setChecked(on)
        if on == self.model_frame:
            return
        self.model_frame = on
        doc = self.state.current
        if doc is not None:
            self._draw_cloud(doc, reset_view=True)
            self._mark_picked()
        self._refresh_layers()
        self.statusBar().showMessage("3D view: as the model sees it (+Y up, turned)" if on
                                     else "3D view: as the file has it", 5000)

    def set_rotation(self, rotation) -> None:
        """Turn the current object for the model (the orientation check's offer; None: no turn): the
        model, the 2D views and the model-frame drawing follow; earlier results are removed."""
        doc = self.state.current
        if doc is None:
            return
        self.state.set_rotation(doc, rotation)
        self._forget_correspondence()
        if self.model_frame:
            self._draw_cloud(doc, reset_view=True)
        self._update_legend(doc)
        self._views_for(doc)
        self._view_to_state()

    def _on_document_updated(self, doc: Document) -> None:
        if doc is not self.state.current:
            if doc.overlay:
                self._refresh_layers()
            return
        self.viewer.set_colors(self._shown_colors(doc))
        self._update_color_combo(doc)
        self._update_legend(doc)

    def _on_context_changed(self) -> None:
        """The checkpoint, a view or a setting changed: stale marks and the view's overlay follow."""
        doc = self.state.current
        if doc is not None:
            self._update_legend(doc)
        self._sync_overlay()

    def _sync_overlay(self) -> None:
        """The selected 2D view shows the image heatmap computed for it, and no other."""
        if not hasattr(self, "views"):
            return
        doc = self.state.current
        r = self.state.fresh(doc, "image_heatmap") if doc is not None else None
        self.views.set_overlay(None if r is None else r.value["values"],
                               r.value.get("label", "Grad-CAM on the last ResNet stage") if r is not None else "")

    def _shown_colors(self, doc: Document):
        """The colours of the points drawn (all, or the display subset of a huge cloud)."""
        c = self._colors_for(doc)
        idx = doc.ensure_display_index(DISPLAY_MAX_POINTS)
        return c if idx is None else c[idx]

    def _colors_for(self, doc: Document, mode: str | None = None):
        return colors.point_colors(doc.cloud, mode or doc.color_mode, labels=doc.label_array(),
                                   prediction=doc.prediction(), errors=doc.errors(), uncertainty=doc.uncertainty(),
                                   heatmap=doc.heatmap(), up_axis=doc.up_axis,
                                   value_range=doc.scalar_range.get(mode or doc.color_mode))

    def _update_color_combo(self, doc: Document) -> None:
        modes = self.state.available_modes(doc)
        self.color_combo.blockSignals(True)
        self.color_combo.clear()
        for m in modes:
            self.color_combo.addItem(colors.COLOR_MODES[m], m)
        idx = self.color_combo.findData(doc.color_mode)
        self.color_combo.setCurrentIndex(max(idx, 0))
        self.color_combo.blockSignals(False)
        for m, act in self.color_actions.items():
            act.setEnabled(m in modes)
            act.setChecked(m == doc.color_mode)
            act.setToolTip("" if m in modes else colors.MISSING.get(m, ""))

    def _stale_suffix(self, doc: Document, kind: str) -> str:
        return " (stale)" if self.state.is_stale(doc, kind) else ""

    def _update_legend(self, doc: Document) -> None:
        mode = doc.color_mode
        legend, bar = [], None
        if mode in ("labels", "prediction"):
            labels = doc.label_array() if mode == "labels" else doc.prediction()
            if labels is not None and len(labels):
                names = doc.label_names() if mode == "labels" else doc.prediction_names()
                present = np.unique(labels)
                pal = colors.categorical_colors(int(max(present.max(), 0)) + 1)
                legend = [(names.get(int(v), f"label {int(v)}"), tuple(pal[v])) for v in present if v >= 0]
                if mode == "prediction":
                    seg = doc.value("segmentation")
                    head = "predicted" + (f" ({seg['category']})" if seg.get("category") else "")
                    legend.insert(0, (head + self._stale_suffix(doc, "segmentation"), None))
                elif doc.prediction() is not None:
                    legend.insert(0, ("the file's labels", None))
        elif mode == "errors" and doc.errors() is not None:
            e = doc.errors()
            n = max(int((e >= 0).sum()), 1)
            wrong, right = int((e == 1).sum()), int((e == 0).sum())
            legend = [("prediction vs the file" + self._stale_suffix(doc, "segmentation"), None),
                      (f"wrong: {wrong:,} ({100 * wrong / n:.1f} %)", colors.ERROR_COLORS["wrong"]),
                      (f"right: {right:,} ({100 * right / n:.1f} %)", colors.ERROR_COLORS["right"])]
            if (e < 0).any():
                legend.append((f"no label in the file: {int((e < 0).sum()):,}", colors.ERROR_COLORS["unknown"]))
        if mode == "heatmap" and doc.heatmap() is not None:
            r = self.state.result(doc, "heatmap")
            v = doc.heatmap()
            title = r.value.get("title", "heat")
            stale = self.state.stale_reason(doc, "heatmap")
            if stale:
                title += f" - STALE: {r.provenance.view_label or 'another view'}"
            bar = (title, colors.colormap_lut("inferno"), float(np.nanmin(v)), float(np.nanmax(v)), stale)
        elif mode == "uncertainty" and doc.uncertainty() is not None:
            seg = doc.value("segmentation")
            bar = (seg.get("uncertainty_title") or "uncertainty", colors.colormap_lut(colors.UNCERTAINTY_CMAP), 0.0, 1.0,
                   self.state.stale_reason(doc, "segmentation"))
        elif mode == "height":
            turned = doc.cloud.rotation is not None
            y = (doc.cloud.model_points()[:, 1] if turned else doc.cloud.points[:, doc.up_axis]) \
                if doc.cloud.n_points else np.zeros(1)
            if float(y.max()) > float(y.min()):  # one height for all (a single point): no bar from v to v
                bar = ("height (turned upright)" if turned else f"height ({'xyz'[doc.up_axis]})",
                       colors.colormap_lut("viridis"), float(y.min()),
                       float(y.max()), "")
        chosen = doc.scalar_range.get(mode) if bar is not None else None
        if chosen is not None:  # the colour range chosen in View > Colour Range (outside: grey)
            bar = (f"{bar[0]} [range {chosen[0]:.3g}..{chosen[1]:.3g}]", bar[1], float(chosen[0]), float(chosen[1]),
                   bar[4])
        self.viewer.set_legend(legend)
        if bar is None:
            self.viewer.set_colorbar(None)
        else:
            title, lut, lo, hi, stale = bar
            self.viewer.set_colorbar(title, lut, lo, hi, stale=stale)

    def set_color_mode(self, mode: str, *, remember: bool = False) -> bool:
        """Colour the current object by ``mode`` (refused, with a message, when it has nothing to show
        in that mode). ``remember``: a choice of the user's, kept for the next objects and launches."""
        ok = self.state.set_color_mode(mode)
        if ok and remember and mode in REMEMBERED_MODES:
            self.settings.setValue("color_mode", mode)
        doc = self.state.current
        if doc is not None:
            self._update_color_combo(doc)  # a refused choice leaves the combo and menu as they were
        return ok

    def set_up_axis(self, axis: int) -> None:
        """Which axis of the current object points up (display, height colours and camera)."""
        doc = self.state.current
        if doc is None:
            return
        self.state.set_up_axis(doc, axis)
        self._draw_cloud(doc, reset_view=True)
        self._sync_up_axis_menu(doc)
        self._forget_correspondence()
        self._views_for(doc)  # the views show the object as the model gets it, upright by this axis
        self._view_to_state()

    def _sync_up_axis_menu(self, doc: Document) -> None:
        for axis, act in self.up_actions.items():
            act.setChecked(axis == doc.up_axis)

    def _on_color_combo(self, index: int) -> None:
        mode = self.color_combo.itemData(index)
        if mode:
            self.set_color_mode(mode, remember=True)

    def _on_frame(self, ms: float) -> None:
        doc = self.state.current
        n = doc.cloud.n_points if doc else 0
        self.frame_label.setText(f"{n:,} {'pt' if n == 1 else 'pts'}  {ms:.0f} ms/frame")

    def scalar_values(self, doc: Document | None = None, mode: str | None = None):
        """The scalar the current colour mode maps (height, heat, uncertainty), or None."""
        doc = doc if doc is not None else self.state.current
        if doc is None:
            return None
        return colors.scalar_values(doc.cloud, mode or doc.color_mode, uncertainty=doc.uncertainty(),
                                    heatmap=doc.heatmap(), up_axis=doc.up_axis)

    def set_scalar_range(self, lo: "float | None", hi: "float | None" = None) -> None:
        """Colour limits of the current scalar mode; points outside them grey. ``lo`` None: the data's."""
        doc = self.state.current
        if doc is None or doc.color_mode not in colors.SCALAR_MODES:
            return
        if lo is None:
            doc.scalar_range.pop(doc.color_mode, None)
        else:
            doc.scalar_range[doc.color_mode] = (float(min(lo, hi)), float(max(lo, hi)))
        self.viewer.set_colors(self._shown_colors(doc))
        self._update_legend(doc)

    def open_range_dialog(self):
        from explorer.scalar_range import ScalarRangeDialog

        dlg = ScalarRangeDialog(self)
        dlg.show()
        self._range_dialog = dlg
        return dlg

    def open_pair_inspector(self):
        """Training > Inspect a Training Pair (explorer/pair_inspector.py): the attached run's config
        when a run is attached, else the demo checkpoint's."""
        from explorer.pair_inspector import PairInspector

        run = self.training.run_dir
        dlg = PairInspector(self.model_panel, self, config=str(run) if run is not None else None)
        dlg.show()
        self._pair_inspector = dlg
        return dlg

    def _on_measurement(self, marks) -> None:
        """Ctrl+click marks in the 3D view: the distances between consecutive ones, and the path's length."""
        if not marks:
            return
        p = np.asarray(marks, np.float64)
        d = np.linalg.norm(np.diff(p, axis=0), axis=1)
        text = (f"mark {len(p)} at ({p[-1][0]:.4g}, {p[-1][1]:.4g}, {p[-1][2]:.4g})" if len(p) == 1 else
                f"{len(p)} marks: " + ", ".join(f"{k + 1}-{k + 2} {v:.4g}" for k, v in enumerate(d))
                + (f"; path {d.sum():.4g}" if len(d) > 1 else "") + " (in the file's units)")
        self.statusBar().showMessage(text + "; View > Clear Measurement removes them", 15000)

    def _on_point_picked(self, index: int) -> None:
        doc = self.state.current
        if doc is None or index < 0:
            return
        shown = doc.ensure_display_index(DISPLAY_MAX_POINTS)
        if shown is not None:
            index = int(shown[index])  # the viewer numbers the drawn subset
        p = doc.cloud.points[index]
        parts = [f"point {index}: ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f})"]
        lab = doc.label_array()
        if lab is not None:
            names = doc.label_names()
            parts.append(f"label {names.get(int(lab[index]), int(lab[index]))}")
        pred = doc.prediction()
        if pred is not None:
            names = doc.prediction_names()
            unc = doc.uncertainty()
            parts.append(f"predicted {names.get(int(pred[index]), int(pred[index]))}"
                         + ("" if unc is None else f" (uncertainty {unc[index]:.2f})"))
        hm = doc.heatmap()
        if hm is not None:
            parts.append(f"heat {hm[index]:.3f}")
        self._picked_full = int(index)
        where = self._mark_picked()
        if where:
            parts.append(where)
        self.statusBar().showMessage(", ".join(parts), 10000)
        if self.model_panel.dense_links.isChecked():
            i = int(index)
            self.model_panel.ensure_dense(lambda ds, f: self._show_dense_point(i, ds, f))

    def _show_dense_pixel(self, view_index: int, u: float, v: float, ds, figures) -> None:
        """A clicked pixel's dense similarity over the points (to every point from the model's input
        points), with this pixel's own AUC: visible points within 8 px (at 224) against the others."""
        from crosspoint import analysis as A
        from crosspoint.analysis.correspondence import EVAL_SIZE, HIT_RADIUS_PX, _auc

        doc = self.state.current
        corr = self.view_correspondence(view_index)
        if doc is None or corr is None:
            return
        prep = ds.prepared
        sc = ds.pixel_scores(u, v)
        full = A.to_full(sc, prep, doc.cloud.model_points())
        H, W = corr.shape
        uv = corr.uv[prep.index]
        d = np.hypot((uv[:, 0] - u) * EVAL_SIZE / W, (uv[:, 1] - v) * EVAL_SIZE / H)
        pos = corr.visible[prep.index] & (d <= HIT_RADIUS_PX)
        auc = _auc(sc[pos], sc[~pos]) if pos.any() and (~pos).any() else float("nan")
        prov = self.state.provenance("heatmap", doc)
        self.state.set_result(doc, "heatmap", {"values": full.astype(np.float32),
                                               "title": f"dense similarity to pixel ({u:.0f}, {v:.0f})"}, prov,
                              color_mode="heatmap")
        self.statusBar().showMessage(
            f"dense: pixel ({u:.0f}, {v:.0f})'s similarity over the points; AUC {auc:.2f} for the {int(pos.sum())} "
            f"visible points within 8 px against the rest (chance 0.5; this view's mean "
            f"{figures['pixel_to_point_auc']:.2f})", 15000)

    def _show_dense_point(self, index: int, ds, figures) -> None:
        """The picked point's dense similarity over the selected view, its peak (magenta) beside its
        true pixel, and how far apart they are (at 224 px, as eval correspondence measures)."""
        from crosspoint.analysis.correspondence import EVAL_SIZE, HIT_RADIUS_PX, symmetric_twin_at

        doc = self.state.current
        corr = self.view_correspondence()
        if doc is None or corr is None or self._picked_full != index:
            return
        prep = ds.prepared
        hit = np.flatnonzero(prep.index == index)
        if hit.size:
            j = int(hit[0])
        else:  # not among the model's input points: its nearest one
            p = doc.cloud.model_points()[index].astype(np.float64)
            j = int(np.argmin(np.linalg.norm(ds.world_points - p, axis=1)))
        heat = ds.point_maps([j])[0]
        masked = np.where(corr.object_mask, heat, -np.inf)
        v, u = np.unravel_index(int(np.argmax(masked)), masked.shape)
        lo, hi = float(heat.min()), float(heat.max())
        self.views.set_overlay((heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat),
                               f"dense similarity of point {index} ({ds.method})")
        marks = [(u + 0.5, v + 0.5, "dense")]
        if corr.in_frame[index]:
            marks.append((*corr.uv[index], "visible" if corr.visible[index] else "occluded"))
        self.views.set_marks(marks)
        H, W = corr.shape
        if corr.in_frame[index]:
            d = float(np.hypot((u + 0.5 - corr.uv[index][0]) * EVAL_SIZE / W, (v + 0.5 - corr.uv[index][1]) * EVAL_SIZE / H))
            verdict = "a hit" if d <= HIT_RADIUS_PX and corr.visible[index] else "a miss"
            twin = None if verdict == "a hit" else symmetric_twin_at(
                ds.symmetries, doc.cloud.model_points()[index], corr, (u + 0.5, v + 0.5))
            if twin is not None:
                verdict += (f" by the 8 px rule, but on its twin under the object's {twin}"
                            + (" (the same picture from a turned camera: no model can tell)"
                               if twin.startswith("rotation") else " (the view's handedness tells them apart)"))
            else:
                verdict += " by the 8 px rule"
            text = (f"dense: point {index}'s similarity peaks {d:.0f} px (at {EVAL_SIZE}) from its true pixel "
                    f"({'visible' if corr.visible[index] else 'occluded'}): {verdict}; this view: "
                    f"{100 * figures['point_to_pixel_hit']:.0f} % hits (chance "
                    f"{100 * figures['point_to_pixel_hit_chance']:.1f} %)")
        else:
            text = f"dense: point {index} is out of this view's frame"
        self.statusBar().showMessage(text, 15000)

    # -- geometric correspondence: a point <-> its pixel in the rendered views ----------------------
    #: a pixel of a view "sees" the visible points projecting within this many pixels of it
    PIXEL_PROBE_RADIUS = 3.0

    def _forget_correspondence(self, *_args) -> None:
        self._picked_full = None
        self.viewer.set_highlight(None)
        self.views.set_marks([])

    def view_correspondence(self, view_index: "int | None" = None):
        """The :class:`~crosspoint.analysis.correspondence.ViewCorrespondence` of the current object and
        a rendered view (default: the selected one); None for an added image without a camera."""
        doc = self.state.current
        views = self.views._views
        i = self.views.current_index if view_index is None else int(view_index)
        if doc is None or not 0 <= i < len(views) or views[i].get("camera") is None:
            return None
        key = (id(doc.cloud), views[i].get("key"))
        if key not in self._corr_cache:
            from crosspoint.analysis.correspondence import view_correspondence

            cloud = doc.cloud.in_model_frame()  # the frame the views were rendered in
            mesh = cloud.mesh if cloud.mesh is not None and cloud.mesh.n_faces > 0 else None
            if len(self._corr_cache) > 64:
                self._corr_cache.clear()
            # the views render the mesh when there is one (its depth decides visibility), else the points
            self._corr_cache[key] = view_correspondence(cloud.points, views[i]["camera"], mesh=mesh)
        return self._corr_cache[key]

    def _mark_picked(self) -> str:
        """Mark the picked point's pixel in the selected view (green ring: visible, dashed orange:
        occluded); returns a description of where it is in every rendered view."""
        i = self._picked_full
        corr = self.view_correspondence() if i is not None else None
        if corr is None or i >= corr.n:
            self.views.set_marks([])
            return ""
        marks = [(*corr.uv[i], "visible" if corr.visible[i] else "occluded")] if corr.in_frame[i] else []
        self.views.set_marks(marks)
        n_views = sum(1 for v in self.views._views if v.get("camera") is not None)
        seen = [k for k in range(n_views) if (c := self.view_correspondence(k)) is not None and c.visible[i]]
        state = "visible" if corr.visible[i] else ("occluded" if corr.in_frame[i] else "out of frame")
        return (f"{state} in this view at pixel ({corr.uv[i][0]:.0f}, {corr.uv[i][1]:.0f})" if corr.in_frame[i]
                else state + " in this view") + f"; visible in {len(seen)} of {n_views} views"

    def _look_from_view(self, camera) -> None:
        """Align the 3D camera with a rendered view's (rendered in the model's +Y-up frame; the 3D view
        draws the file's own frame, so the pose is composed with the turn between them)."""
        from crosspoint.analysis.correspondence import PinholeCamera, as_pinhole

        doc = self.state.current
        pin = as_pinhole(camera)
        t = np.eye(4)
        if doc is not None and not self.model_frame:
            t[:3, :3] = doc.cloud.model_matrix()
        self.ortho_action.setChecked(False)  # the view's camera is a perspective one
        self.viewer.look_from(PinholeCamera(pin.K, pin.extrinsic @ t, pin.width, pin.height))

    def _on_pixel_clicked(self, view_index: int, u: float, v: float) -> None:
        """The points a pixel of the selected view sees light up in 3D (visible points projecting
        within PIXEL_PROBE_RADIUS pixels); those behind them are counted."""
        doc = self.state.current
        corr = self.view_correspondence(view_index)
        if doc is None or corr is None:
            self.statusBar().showMessage("this image has no camera: points <-> pixels needs a rendered view", 8000)
            return
        near = corr.in_frame & (np.hypot(corr.uv[:, 0] - u, corr.uv[:, 1] - v) <= self.PIXEL_PROBE_RADIUS)
        seen = np.flatnonzero(near & corr.visible)
        hidden = int((near & ~corr.visible).sum())
        self.pixel_points = seen  # full-cloud indices (tests, export)
        shown = doc.ensure_display_index(DISPLAY_MAX_POINTS)
        drawn = seen if shown is None else np.flatnonzero(np.isin(shown, seen))
        self.viewer.set_highlight(drawn)
        self.views.set_marks([(u, v, "probe")])
        self.statusBar().showMessage(
            f"pixel ({u:.0f}, {v:.0f}) of {self.views.current_view()[1]}: {len(seen)} visible "
            f"{'point' if len(seen) == 1 else 'points'} within {self.PIXEL_PROBE_RADIUS:g} px (ringed in 3D)"
            f", {hidden} more behind them (occluded)", 10000)
        if self.model_panel.dense_links.isChecked():
            self.model_panel.ensure_dense(lambda ds, f: self._show_dense_pixel(view_index, u, v, ds, f))

    # -- export, screenshots --------------------------------------------------------------------
    def export_current(self) -> None:
        doc = self.state.current
        if doc is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export point cloud", str(Path.home() / "export.ply"),
                                              "PLY (*.ply);;NumPy (*.npz);;PCD (*.pcd)")
        if path:
            self.export_document(doc, path)

    def export_document(self, doc: Document, path: str) -> bool:
        """Write the document with the colours shown and both label columns: the file's own labels as
        ``label`` and a segmentation's prediction beside them (PLY: a ``pred_label`` vertex property;
        NPZ: ``pred_labels``, with ``pred_uncertainty``). An object without labels of its own gets the
        prediction as ``label``. PCD holds one label column: the file's labels (the status bar says so)."""
        from dataclasses import replace

        from crosspoint import io
        from explorer.export import add_columns

        gt, pred = doc.label_array(), doc.prediction()
        main = gt if gt is not None else pred
        cloud = replace(doc.cloud, labels=main, colors=self._colors_for(doc))
        note = ""
        try:
            io.write_point_cloud(path, cloud)
            if gt is not None and pred is not None:
                seg = doc.value("segmentation")
                note = add_columns(path, pred, seg.get("uncertainty"))
        except (OSError, ValueError) as exc:
            self.state.error.emit(path, str(exc))
            return False
        self.statusBar().showMessage(f"Wrote {path}" + (f" ({note})" if note else ""), 8000)
        return True

    def save_screenshot(self, path: str) -> bool:
        self.viewer.render_now()
        return self.grab().save(str(path))

    def save_screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", str(Path.home() / "crosspoint.png"),
                                              "PNG (*.png)")
        if path:
            self.save_screenshot(path)

    def show_about(self) -> None:
        from crosspoint import __version__

        QMessageBox.about(
            self,
            "About CrossPoint Explorer",
            f"<h3>CrossPoint Explorer {__version__}</h3>"
            "<p>Self-supervised cross-modal contrastive learning for 3D point clouds, after "
            "<i>CrossPoint: Self-Supervised Cross-Modal Contrastive Learning for 3D Point Cloud "
            "Understanding</i>, M. Afham, I. Dissanayake, D. Dissanayake, A. Dharmasiri, "
            "K. Thilakarathna and R. Rodrigo, CVPR 2022 (arXiv:2203.00680).</p>"
            "<p>3D view rendered with Open3D; plots with pyqtgraph.</p>",
        )

    # -- recent files, settings, drag and drop --------------------------------------------------
    def recent_files(self) -> list[str]:
        val = self.settings.value("recent_files", [])
        if isinstance(val, str):
            val = [val]
        return [v for v in (val or []) if v]

    def _add_recent(self, path: str) -> None:
        path = str(Path(path.split("#")[0]).resolve()) + (("#" + path.split("#", 1)[1]) if "#" in path else "")
        rec = [p for p in self.recent_files() if p != path]
        rec.insert(0, path)
        self.settings.setValue("recent_files", rec[:MAX_RECENT])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        rec = self.recent_files()
        if not rec:
            a = self.recent_menu.addAction("(none)")
            a.setEnabled(False)
            return
        for p in rec:
            self.recent_menu.addAction(p, lambda p=p: self.open_file(p))
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear", lambda: self.settings.setValue("recent_files", []))

    def _restore_settings(self) -> None:
        geo = self.settings.value("geometry")
        #: True when the window took the size and place it had when last closed
        self.restored_geometry = bool(geo is not None and self.restoreGeometry(geo))
        st = self.settings.value("window_state")
        # a layout saved by a version with other docks is dropped (restoreState refuses it)
        if st is not None and not self.restoreState(st, LAYOUT_VERSION):
            self.settings.remove("window_state")
        ps = self.settings.value("point_size")
        if ps is not None:
            try:
                self.point_size.setValue(int(ps))
            except (TypeError, ValueError):
                pass

    def showEvent(self, event):  # noqa: N802
        super().showEvent(event)
        # QStatusBar hides its normal widgets for a temporary message only if they were visible when
        # the message came: re-issue a message posted before the window was shown, or both overlap.
        msg = self.statusBar().currentMessage()
        if msg:
            self.statusBar().showMessage(msg, 8000)
        if getattr(self, "_default_dock_sizes", False) and self.settings.value("window_state") is None:
            self._default_dock_sizes = False
            QTimer.singleShot(0, self._apply_default_dock_sizes)

    def _apply_default_dock_sizes(self) -> None:
        """The first launch (no saved layout): a sensible split of the window."""
        h = self.height()
        self.resizeDocks([self.embedding_dock], [max(220, int(h * 0.3))], Qt.Orientation.Vertical)
        self.resizeDocks([self.views_dock, self.model_dock], [int(h * 0.62), int(h * 0.38)],
                         Qt.Orientation.Vertical)
        self.resizeDocks([self.views_dock], [400], Qt.Orientation.Horizontal)
        self.resizeDocks([self.files_dock], [200], Qt.Orientation.Horizontal)

    #: False for a window made for a screenshot: its size and docks are not the user's, so closing it
    #: must not replace the layout the user's next launch restores
    save_layout_on_close = True

    def closeEvent(self, event):  # noqa: N802
        if self.save_layout_on_close:
            self.settings.setValue("geometry", self.saveGeometry())
            self.settings.setValue("window_state", self.saveState(LAYOUT_VERSION))
            self.settings.setValue("point_size", self.point_size.value())
            # "checkpoint" is written when a load succeeds (_remember_checkpoint), never here: a load
            # that failed must not replace the one remembered
            self.settings.setValue("device", self.model_panel.device.currentData())
        self.settings.sync()
        for job in (self.model_panel.job, self.embedding_panel.job):
            if job is not None:
                job.cancel()
        self.training.shutdown()
        self.viewer.shutdown()
        super().closeEvent(event)

    def dragEnterEvent(self, event):  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_files(paths)
            event.acceptProposedAction()

    # -- the remembered checkpoint --------------------------------------------------------------
    def load_checkpoint(self, checkpoint: str | None, *, remember: bool = True) -> None:
        """Load a checkpoint (None: the bundled demo one). It becomes the one the next launch loads only
        when it loads, and only with ``remember`` (a fallback the user did not choose is not remembered)."""
        if not remember:
            self._not_remembered.append(None if checkpoint is None else str(checkpoint))
        self.model_panel.load(None if checkpoint is None else str(checkpoint))

    def _remember_checkpoint(self, _session=None) -> None:
        """A checkpoint loaded: remember it for the next launch ("" = the demo checkpoint)."""
        ck = self.model_panel.checkpoint
        ck = None if ck is None else str(ck)
        if ck in self._not_remembered:
            self._not_remembered.remove(ck)
            return
        value = "" if ck is None else str(Path(ck).expanduser().resolve())
        self.settings.setValue("checkpoint", value)
        self.settings.sync()

    def _on_model_error(self, what: str, message: str) -> None:
        if self.model_panel._loading:  # the checkpoint being loaded failed: the panel names it in `what`
            name = "the demo checkpoint" if what == "demo checkpoint" else Path(what).name
            what = f"loading {name}"
            if self.settings.value("checkpoint"):
                message += f" (the next launch still loads {self.settings.value('checkpoint')})"
        self.show_error(what, message)

    def wait_idle_then(self, callback, timeout_ms: int = 60000) -> None:
        """Call ``callback`` once no loads are pending and a frame of the current object exists."""
        deadline = [timeout_ms]

        def poll():
            if (not self.loading and (self.state.current is None or self.viewer.has_frame)) or deadline[0] <= 0:
                callback()
                return
            deadline[0] -= 50
            QTimer.singleShot(50, poll)

        QTimer.singleShot(0, poll)

    # -- the analysis docks ---------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area, name: str) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(name)
        d.setWidget(widget)
        self.addDockWidget(area, d)
        return d

    def _build_analysis_docks(self) -> None:
        """The 2D views, the model panel, the embedding map and the training monitor. The panels start
        jobs and hand their results to the state; what is drawn follows the state's signals."""
        from explorer.embedding import EmbeddingPanel
        from explorer.model_panel import ModelPanel
        from explorer.training import RunMonitor
        from explorer.views2d import ViewsPanel
        from explorer.workers import StallMeter

        right = Qt.DockWidgetArea.RightDockWidgetArea
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        self.views = ViewsPanel()
        self.model_panel = ModelPanel(self.state, self.views)
        self.embedding_panel = EmbeddingPanel(self.model_panel)
        self.training = RunMonitor(settings=self.settings)
        self.views_dock = self._dock("2D views", self.views, right, "dock_views")
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.model_panel)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the panel wraps its text
        self.model_scroll = scroll
        self.wheel_filter = WheelToScroll(self)
        self.wheel_filter.install(self.model_panel)
        self.model_dock = self._dock("Model", scroll, right, "dock_model")
        self.embedding_dock = self._dock("Embedding map", self.embedding_panel, bottom, "dock_embedding")
        self.training_dock = self._dock("Training", self.training, bottom, "dock_training")
        self.tabifyDockWidget(self.embedding_dock, self.training_dock)
        self.embedding_dock.raise_()
        self._default_dock_sizes = True
        # The bottom docks (embedding map / training) span the whole width, so the window's minimum
        # width is the larger of (objects + 3D view + right column) and the bottom panel, not their sum.
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.setCorner(Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.BottomDockWidgetArea)
        for d in (self.views_dock, self.model_dock, self.embedding_dock, self.training_dock):
            self.view_menu.addAction(d.toggleViewAction())

        # state -> panels
        self.state.currentChanged.connect(self._current_to_panels)
        self.state.resultChanged.connect(lambda doc, kind: self._sync_overlay() if kind == "image_heatmap" else None)
        # panels -> state: the selected view is part of the context results are compared with
        self.views.imageChanged.connect(self._view_to_state)
        # geometric 3D <-> 2D correspondence (the renderer's camera and depth buffer; no model needed)
        self._corr_cache: dict = {}
        self._picked_full: int | None = None
        self.views.imageChanged.connect(self._mark_picked)
        self.views.viewsReady.connect(lambda _n: self._mark_picked())
        self.views.pixelClicked.connect(self._on_pixel_clicked)
        self.views.lookFromRequested.connect(self._look_from_view)
        self.state.currentChanged.connect(self._forget_correspondence)
        self.model_panel.segmentationReady.connect(self._seg_message)
        self.model_panel.rotationRequested.connect(self.set_rotation)
        self._not_remembered: list[str | None] = []
        self.model_panel.sessionChanged.connect(self._remember_checkpoint)
        self.model_panel.error.connect(self._on_model_error)
        for w in (self.embedding_panel, self.views):
            w.error.connect(self.show_error)
        self.embedding_panel.openRequested.connect(self.open_file)
        self.training.checkpointReady.connect(self.model_panel.load)

        # menus
        mm = self.menuBar().addMenu("&Model")
        mm.addAction(QAction("&Open Checkpoint...", self, triggered=self.model_panel.open_dialog))
        mm.addAction(QAction("Use the &Demo Checkpoint", self, triggered=lambda: self.model_panel.load(None)))
        mm.addSeparator()
        mm.addAction(QAction("&Segment Parts", self, shortcut="Ctrl+G", triggered=self.model_panel.run_segmentation))
        mm.addAction(QAction("3D-2D &Heatmap", self, shortcut="Ctrl+H", triggered=self.model_panel.run_heatmap))
        mm.addAction(QAction("&Retrieve Objects for the View", self, triggered=self.model_panel.run_retrieval))
        mm.addAction(QAction("Part &Evidence (Occlusion)", self, triggered=self.model_panel.run_part_evidence))
        mm.addAction(QAction("Check &Orientation", self, triggered=self.model_panel.run_orientation_check))
        mm.addAction(QAction("&Embed Dataset + UMAP", self, triggered=self.embedding_panel.run))
        mm.addAction(QAction("&Cancel", self, shortcut="Esc", triggered=lambda: (self.model_panel.cancel(),
                                                                                     self.embedding_panel.cancel())))
        tm = self.menuBar().addMenu("&Training")
        tm.addAction(QAction("&New Pretraining Run...", self, triggered=lambda: (self.training_dock.raise_(),
                                                                                  self.training.new_run_dialog())))
        tm.addAction(QAction("&Attach to Run Folder...", self, triggered=lambda: (self.training_dock.raise_(),
                                                                                   self.training.attach_dialog())))
        tm.addAction(QAction("&Stop Run", self, triggered=self.training.stop))
        tm.addSeparator()
        tm.addAction(QAction("&Inspect a Training Pair...", self, triggered=self.open_pair_inspector))
        self.menuBar().addMenu(self.help_menu)  # keep Help last
        self.stall_meter = StallMeter(self)

    def _views_for(self, doc) -> None:
        """The 2D views of ``doc``, rendered in the model's frame: a new up axis renders them anew (the
        up axis is part of the views' key, so results computed on the old views are stale)."""
        key = doc.key if doc.up_axis == 1 else f"{doc.key}|up={'xyz'[doc.up_axis]}"
        if doc.cloud.rotation is not None:
            key += "|rot=" + ",".join(f"{v:g}" for v in doc.cloud.rotation.reshape(-1))
        self.views.set_object(doc.cloud, key)

    def _current_to_panels(self, doc) -> None:
        if doc is None:
            return
        self._views_for(doc)
        self.embedding_panel.mark_current(doc.source)
        self._view_to_state()

    def _view_to_state(self) -> None:
        """The view selected in the 2D panel now belongs to the current object's context."""
        doc = self.state.current
        if doc is None:
            return
        key, label = self.views.current_view()
        self.state.set_view(doc, key, label)
        self._sync_overlay()

    def _seg_message(self, doc, value) -> None:
        present = len(np.unique(value["labels"]))
        src = "segmentation head" if value["source"] == "head" else value["source"]
        cmp = value.get("comparison")
        extra = f"; mIoU vs the file's labels {cmp['miou']:.3f}" if cmp and cmp.get("miou") is not None else ""
        self.statusBar().showMessage(f"{doc.title}: {present} of {len(value['names'])} parts predicted ({src}){extra}",
                                     8000)
