"""``crosspoint-explorer``: the Qt application's command line.

    crosspoint-explorer [FILE ...]                      open files (the embedded demo when none)
    crosspoint-explorer --screenshot OUT.png [FILE ...] render, save the window, exit (docs, tests)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Sequence

log = logging.getLogger("explorer")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crosspoint-explorer",
        description="Explore point clouds and meshes with CrossPoint models (Afham et al., CVPR 2022).",
    )
    p.add_argument("files", nargs="*", help="point-cloud or mesh files (HDF5 rows as FILE.h5#INDEX)")
    p.add_argument("--screenshot", metavar="OUT.png", help="render, save a screenshot of the window and exit")
    p.add_argument("--size", default=None,
                   help="window size WIDTHxHEIGHT (default: the size it had when last closed, else 1400x900; "
                        "with --screenshot 1400x900)")
    p.add_argument("--panel", default=None, help="with --screenshot: the panel to show (see --list-panels)")
    p.add_argument("--list-panels", action="store_true", help="list the panels --panel accepts and exit")
    p.add_argument("--timeout", type=float, default=300.0, help="with --screenshot: give up after this many seconds")
    p.add_argument("--checkpoint", help="model checkpoint to load (default: the last one used, else the demo one)")
    p.add_argument("--attach", metavar="RUN_DIR", help="watch a pretraining run folder in the Training panel")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        return max(w, 320), max(h, 240)
    except ValueError:
        raise SystemExit(f"crosspoint-explorer: --size must look like 1400x900, not {text!r}")


def _dark_palette(app) -> None:
    from PyQt6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    pal = QPalette()
    base, alt, text = QColor(37, 40, 46), QColor(45, 49, 56), QColor(222, 224, 228)
    pal.setColor(QPalette.ColorRole.Window, alt)
    pal.setColor(QPalette.ColorRole.WindowText, text)
    pal.setColor(QPalette.ColorRole.Base, base)
    pal.setColor(QPalette.ColorRole.AlternateBase, alt)
    pal.setColor(QPalette.ColorRole.ToolTipBase, base)
    pal.setColor(QPalette.ColorRole.ToolTipText, text)
    pal.setColor(QPalette.ColorRole.Text, text)
    pal.setColor(QPalette.ColorRole.Button, alt)
    pal.setColor(QPalette.ColorRole.ButtonText, text)
    pal.setColor(QPalette.ColorRole.Highlight, QColor(64, 120, 200))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor(255, 255, 255))
    pal.setColor(QPalette.ColorRole.PlaceholderText, QColor(140, 144, 150))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 124, 130))
    app.setPalette(pal)


def create_app(argv: Sequence[str] | None = None):
    """The QApplication, configured (name, style); reuses an existing instance (tests)."""
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance()
    if not os.environ.get("XDG_RUNTIME_DIR"):  # Qt and Mesa complain without one (containers, CI)
        import tempfile

        rt = Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}"
        rt.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(rt)
    if app is None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") \
                and not os.environ.get("QT_QPA_PLATFORM"):
            # No display: Qt's offscreen platform still runs every widget; the 3D view renders with EGL.
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from explorer.o3d_renderer import load_llvm_users_first

        load_llvm_users_first()  # before Qt or Open3D create any OpenGL context
        app = QApplication(list(argv or ["crosspoint-explorer"]))
    from explorer.o3d_renderer import import_open3d

    import_open3d()  # now, on this thread: before any worker thread imports a module (see there why)
    app.setApplicationName("CrossPoint Explorer")
    app.setOrganizationName("CrossPointExplorer")
    _dark_palette(app)
    return app


DEFAULT_SIZE = (1400, 900)


def create_window(files: Sequence[str] = (), *, size=DEFAULT_SIZE, checkpoint: str | None = None,
                  attach: str | None = None, load_model: bool = True):
    """A main window that opens ``files``, or the embedded demo when there are none, and loads a
    checkpoint (the given one, else the last one used, else the bundled demo checkpoint). ``size``
    None: the size the window had when it was last closed (else :data:`DEFAULT_SIZE`)."""
    from explorer.main_window import MainWindow

    win = MainWindow()
    if size is not None:
        win.resize(*size)
    elif not win.restored_geometry:
        win.resize(*DEFAULT_SIZE)
    if files:
        win.open_files(files)
    else:
        win.open_demo()
    if load_model:
        # The remembered checkpoint changes only when a load succeeds (MainWindow._remember_checkpoint):
        # a --checkpoint that fails is reported and the next launch still loads the remembered one.
        remembered = str(win.settings.value("checkpoint") or "") or None
        remember = True
        if checkpoint:
            ck = str(checkpoint)  # loaded even when missing: the failure says why
        elif remembered and Path(remembered).is_file():
            ck = remembered
        else:
            ck = None
            if remembered:  # gone (or on a drive not mounted now): the demo for now, the setting kept
                remember = False
                win.statusBar().showMessage(f"The last checkpoint used, {remembered}, is not there; using the "
                                            "demo checkpoint (the next launch tries it again)", 20000)
        dev = win.settings.value("device")
        if checkpoint is None and dev:
            i = win.model_panel.device.findData(dev)
            if i >= 0 and win.model_panel.device.model().item(i).isEnabled():
                win.model_panel.device.blockSignals(True)
                win.model_panel.device.setCurrentIndex(i)
                win.model_panel.device.blockSignals(False)
        from crosspoint.analysis.session import default_checkpoint_path

        if ck is None and not default_checkpoint_path().is_file():
            # A checkout without the bundled checkpoint still opens files; the model panel says how
            # to get a model instead of reporting an error.
            win.model_panel.show_no_checkpoint()
        else:
            win.load_checkpoint(ck, remember=remember)
    if attach:
        win.training.attach(attach)
        win.training_dock.raise_()
    from explorer.workers import freeze_heap

    freeze_heap()  # Qt, torch, Open3D and the window are here to stay (see freeze_heap)
    return win


def install_excepthook(win) -> None:
    """An exception that escapes a Qt slot or event handler makes PyQt6 abort the process, losing
    every open object, result and setting. With this hook it is logged with its traceback and shown
    in the window's error banner (as "Unexpected error", which is a bug to report), and the
    explorer keeps running."""
    previous = sys.excepthook

    def hook(etype, value, tb):
        if issubclass(etype, (KeyboardInterrupt, SystemExit)):
            return previous(etype, value, tb)
        log.error("unexpected error (please report it with this traceback)", exc_info=(etype, value, tb))
        try:
            win.show_error("Unexpected error", f"{etype.__name__}: {value} (a bug: the traceback is in the "
                           "terminal's log; the explorer keeps running)")
        except Exception:  # noqa: BLE001 - the window may be half torn down: the log has it
            pass

    sys.excepthook = hook


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(levelname)s %(name)s: %(message)s")
    from explorer import screenshots

    if args.list_panels:
        print("\n".join([*screenshots.PANELS, *screenshots.EXTRA_PANELS]))
        return 0
    size = _parse_size(args.size) if args.size else (DEFAULT_SIZE if args.screenshot else None)
    app = create_app(sys.argv[:1])
    win = create_window(args.files, size=size, checkpoint=args.checkpoint, attach=args.attach)
    signal.signal(signal.SIGINT, lambda *_: app.quit())  # Ctrl+C in the terminal closes the app

    if args.screenshot:
        return screenshots.take_and_exit(app, win, args.screenshot, panel=args.panel, timeout_s=args.timeout)
    install_excepthook(win)
    win.show()
    code = app.exec()
    from explorer.workers import exit_after_drain

    exit_after_drain(int(code))  # does not return (see there why)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
