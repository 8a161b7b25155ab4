"""Screenshots of the explorer for the README and the tests: ``crosspoint-explorer --screenshot``.

``take_and_exit`` shows the window, waits until pending loads are done and the 3D view has drawn
a frame, optionally brings a panel to the front, saves the window as a PNG and quits.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: Panels ``--panel`` accepts: name -> what it shows.
PANELS: dict[str, str] = {
    "main": "the 3D view with the list of open objects",
}


def _prepare_panel(win, panel: str | None) -> None:
    if panel in (None, "main"):
        return
    raise SystemExit(f"crosspoint-explorer: unknown panel {panel!r}; choose from {', '.join(PANELS)}")


def take_and_exit(app, win, out: str, *, panel: str | None = None, timeout_s: float = 120.0) -> int:
    from PyQt6.QtCore import QTimer

    _prepare_panel(win, panel)
    out_path = Path(out).expanduser().resolve()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result = {"code": 1}
    t0 = time.monotonic()

    def shoot():
        app.processEvents()
        ok = win.save_screenshot(str(out_path))
        if not ok:
            print(f"crosspoint-explorer: could not write {out_path}", file=sys.stderr)
            result["code"] = 1
        else:
            errors = list(getattr(win, "load_errors", []))
            for src, msg in errors:
                print(f"crosspoint-explorer: {msg if src in msg else f'{src}: {msg}'}", file=sys.stderr)
            if win.viewer.error:
                print(f"crosspoint-explorer: 3D view unavailable: {win.viewer.error}", file=sys.stderr)
            result["code"] = 1 if errors else 0
            log.info("screenshot after %.1f s: %s", time.monotonic() - t0, out_path)
        win.close()
        app.quit()

    win.show()
    win.wait_idle_then(lambda: QTimer.singleShot(100, shoot), timeout_ms=int(timeout_s * 1000))
    app.exec()
    return result["code"]


def main(argv=None) -> int:
    """``python -m explorer.screenshots OUTDIR``: one PNG per panel (for the README)."""
    import subprocess

    out_dir = Path((argv or sys.argv[1:] or ["docs/images"])[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    code = 0
    for name in PANELS:
        target = out_dir / f"explorer-{name}.png"
        r = subprocess.run([sys.executable, "-m", "explorer.app", "--screenshot", str(target), "--panel", name])
        print(f"{name}: {'ok' if r.returncode == 0 else 'failed'} -> {target}")
        code |= r.returncode
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
