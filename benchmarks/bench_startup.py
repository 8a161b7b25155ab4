"""Start-up of the explorer on the embedded demo (issue 14 item 7): seconds from launching the process
to the first 3D frame on screen, and to "settled" (model loaded, 2D views rendered), with the memory
at each; against the eager baseline measured in the same run (torch and all of Open3D, with its
Plotly/Dash module, imported before the window is built, as the explorer did before).

    python benchmarks/bench_startup.py [--repeats 3]     # under a display: scripts/with-display.sh

Each launch is a fresh process (``python benchmarks/bench_startup.py --child fast|eager``) that
prints one JSON line and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(mode: str, t_launch: float) -> None:
    sys.path.insert(0, str(REPO))
    if mode == "eager":  # the old order: torch (the device combo asked CUDA) and Open3D with Plotly/Dash first
        import torch  # noqa: F401
        import open3d  # noqa: F401
    from explorer import app as A

    qapp = A.create_app(["crosspoint-explorer"])
    win = A.create_window([], size=(1000, 750))
    win.show()
    from PyQt6.QtCore import QTimer

    out: dict = {"mode": mode}

    def poll():
        now = time.time()
        if "first_frame_s" not in out and win.viewer.has_frame:
            out["first_frame_s"] = now - t_launch
            out["first_frame_rss_mb"] = _rss_mb()
        mp = win.model_panel
        if "first_frame_s" in out and mp.session is not None and not mp.busy and not win.views.rendering \
                and win.views.image_count() > 0:
            out["settled_s"] = now - t_launch
            out["settled_rss_mb"] = _rss_mb()
            out["modules"] = {m: m in sys.modules for m in ("torch", "open3d", "dash", "umap", "numba", "sklearn")}
            print(json.dumps(out), flush=True)
            os._exit(0)
        if now - t_launch > 120:
            print(json.dumps({**out, "error": "timeout"}), flush=True)
            os._exit(1)
        QTimer.singleShot(5, poll)

    QTimer.singleShot(0, poll)
    qapp.exec()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=("fast", "eager"))
    ap.add_argument("--t-launch", type=float, default=None)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.t_launch)
        return 0
    rows: dict = {"fast": [], "eager": []}
    for _ in range(args.repeats):
        for mode in ("eager", "fast"):
            t = time.time()
            r = subprocess.run([sys.executable, __file__, "--child", mode, "--t-launch", repr(t)],
                               capture_output=True, text=True, timeout=300)
            line = next((ln for ln in r.stdout.splitlines() if ln.startswith("{")), None)
            if line is None:
                print(f"{mode}: no result\n{r.stderr[-2000:]}")
                return 1
            rows[mode].append(json.loads(line))
    print(f"explorer start-up on the demo, 1000x750, {args.repeats} launches each (median; load {os.getloadavg()[0]:.1f})")
    med = {m: {k: statistics.median(x[k] for x in v) for k in ("first_frame_s", "settled_s", "first_frame_rss_mb",
                                                               "settled_rss_mb")} for m, v in rows.items()}
    for m in ("eager", "fast"):
        d = med[m]
        print(f"  {m:<6s} first frame {d['first_frame_s']:5.2f} s ({d['first_frame_rss_mb']:.0f} MB)   settled "
              f"{d['settled_s']:5.2f} s ({d['settled_rss_mb']:.0f} MB)")
    print(f"  first frame: x{med['eager']['first_frame_s'] / med['fast']['first_frame_s']:.1f} faster than eager "
          f"(goal <= 2 s: {'met' if med['fast']['first_frame_s'] <= 2 else 'NOT met'})")
    print(f"  modules at settle (fast): {rows['fast'][-1]['modules']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
