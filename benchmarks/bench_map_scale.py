"""The explorer's 2-D embedding map (``explorer.embedding.EmbeddingPanel``) at 50k and 500k points
(issue 13 item 1: the map stays interactive; goal <= 30 ms for hover, click, rectangle and lasso).

For each size: a synthetic embedding (40 Gaussian blobs, one class each) is shown with
``set_embedding`` in a 1000 x 700 panel, then timed (best of ``--repeats``, from a warm panel):

- ``set_embedding`` (scatter items, index) and the first paint (``QWidget.grab`` of the plot);
- hover: a mouse move onto a point through Qt (a ``QMouseEvent`` sent to the plot + ``processEvents``,
  which repaints what changed): the object under the cursor, its mark and its tooltip; and the
  look-up alone (``point_at``);
- click: a left click on a point through Qt, until ``openRequested`` is emitted;
- rectangle selection (a quarter of the map) and lasso selection (a 200-vertex ring around a
  blob, and one around most of the map) through ``_on_polygon`` -- point-in-polygon, selection
  marks, list and summary -- and the same followed by the repaint (``processEvents``);
- pan/zoom: ``setRange`` to a zoomed-in view, then a paint (``grab``), back to the whole map, and
  pans by 10 % (each timed step changes the view); above ``DENSITY_MIN_VISIBLE`` points in view the
  map draws the density layer (``explorer.density``), and the same steps are timed again with it off
  (every point a symbol: the baseline), and the zooms with the layer's numpy path instead of its
  numba pass (``explorer.density.density_image_mapped``).

Baselines from the same run: pyqtgraph's own look-up (``ScatterPlotItem.pointsAt`` over every
class item, what hover and click used before) and the per-edge even-odd point-in-polygon over
every point (what the lasso used before).

Run: ``bash scripts/with-display.sh .venv/bin/python benchmarks/bench_map_scale.py [--sizes 50000 500000]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_analysis import _best  # noqa: E402  (min of repeats, the same helper)


def _row(name: str, seconds: float, extra: str = "") -> None:
    print(f"  {name:<60s} {seconds * 1000:9.1f} ms  {extra}", flush=True)


def synthetic(n: int, k: int = 40, seed: int = 0):
    from crosspoint.analysis.dataset import DatasetEmbedding

    rng = np.random.default_rng(seed)
    centers = rng.uniform(-20, 20, (k, 2))
    labels = rng.integers(0, k, n)
    coords = (centers[labels] + rng.normal(size=(n, 2)) * rng.uniform(0.5, 2.0, k)[labels, None]).astype(np.float32)
    emb = DatasetEmbedding(features=np.zeros((n, 1), np.float32), projections=np.zeros((n, 1), np.float32),
                           labels=labels.astype(np.int64), class_names=[f"class{c:02d}" for c in range(k)],
                           names=[f"object_{i:06d}" for i in range(n)],
                           refs=[f"/data/class{labels[i]:02d}/object_{i:06d}.ply" for i in range(n)],
                           fingerprint="synthetic", source="synthetic")
    return emb, coords, centers


def edges_polygon(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """The baseline: even-odd rule, one vectorised pass over every point per edge."""
    x, y = xy[:, 0], xy[:, 1]
    inside = np.zeros(len(xy), bool)
    px, py = poly[:, 0], poly[:, 1]
    qx, qy = np.roll(px, -1), np.roll(py, -1)
    for x0, y0, x1, y1 in zip(px, py, qx, qy):
        cond = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= cond & (x < xc)
    return inside


class _ModelPanel:
    def __init__(self):
        from explorer.state import AppState

        self.state = AppState()


def bench_size(app, n: int, repeats: int) -> None:
    from PyQt6.QtCore import QEvent, QPoint, QPointF, Qt
    from PyQt6.QtGui import QMouseEvent
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    import explorer.embedding as E

    emb, coords, centers = synthetic(n)
    panel = E.EmbeddingPanel(_ModelPanel())
    panel.resize(1000, 700)
    panel.show()
    app.processEvents()
    print(f"\n{n:,} points, 40 classes; plot {panel.plot.width()} x {panel.plot.height()} px", flush=True)

    t0 = time.perf_counter()
    panel.set_embedding(emb, coords)
    t_set = time.perf_counter() - t0
    t0 = time.perf_counter()
    panel.plot.grab()
    t_paint = time.perf_counter() - t0
    _row("set_embedding (items, index)", t_set)
    _row("first paint (grab)", t_paint)
    app.processEvents()
    t, _ = _best(lambda: panel.plot.grab(), repeats)
    _row("repaint, view unchanged (grab)", t)

    vb = panel.vb
    view = panel.plot.viewport()

    def to_widget(x, y) -> QPoint:
        p = panel.plot.mapFromScene(vb.mapViewToScene(QPointF(float(x), float(y))))
        return QPoint(int(p.x()), int(p.y()))

    rng = np.random.default_rng(1)
    targets = rng.choice(n, 8, replace=False)

    # hover through Qt: move onto a point, then off it
    def hover(i):
        w = QPointF(to_widget(*coords[i]))
        ev = QMouseEvent(QEvent.Type.MouseMove, w, view.mapToGlobal(w), Qt.MouseButton.NoButton,
                         Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(view, ev)
        app.processEvents()

    def settle():  # pyqtgraph drops mouse moves closer than 1/60 s apart; not timed
        time.sleep(0.03)
        app.processEvents()

    hover(targets[0])  # the first hover (pyqtgraph builds per-point objects on first use)
    times, found = [], 0
    for i in targets[1:1 + repeats + 2]:
        settle()
        t0 = time.perf_counter()
        hover(i)
        times.append(time.perf_counter() - t0)
        found += bool(vb.toolTip())
    _row("hover: mouse move onto a point (event + tooltip)", min(times),
         f"median {np.median(times) * 1000:.1f} ms; tooltip on {found}/{len(times)}")
    if hasattr(panel, "point_at"):
        pos = QPointF(*map(float, coords[targets[2]]))
        t, hit = _best(lambda: panel.point_at(pos), repeats)
        _row("hover/click look-up alone (point_at)", t, f"hit {hit} (target {targets[2]})")

    # baseline: pyqtgraph's look-up over every class item (what hover and click did before)
    items = [it for it in panel.class_items if hasattr(it, "pointsAt")]
    if items and len(items) > 1:
        pos = QPointF(*map(float, coords[targets[2]]))
        for it in items:
            it.points()  # build the per-point objects once (the first hover paid for them before)
        t, _ = _best(lambda: [it.pointsAt(it.mapFromView(pos)) for it in items], repeats)
        _row("baseline: ScatterPlotItem.pointsAt over every class item", t)

    # click through Qt, until openRequested
    opened = []
    panel.openRequested.connect(lambda ref, extra: opened.append(ref))
    times = []
    for i in targets[2:2 + repeats]:
        w = to_widget(*coords[i])
        settle()
        t0 = time.perf_counter()
        QTest.mouseClick(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, w)
        app.processEvents()
        times.append(time.perf_counter() - t0)
    _row("click: on a point until openRequested", min(times), f"opened {len(opened)}/{len(times)}")

    # rectangle and lasso selection through _on_polygon
    lo, hi = coords.min(0), coords.max(0)
    mid = (lo + hi) / 2
    rect = np.array([[lo[0], lo[1]], [mid[0], lo[1]], [mid[0], mid[1]], [lo[0], mid[1]]], float)
    t, _ = _best(lambda: panel._on_polygon(rect), repeats)
    _row("rectangle selection (a quarter of the map)", t, f"{len(panel.selection):,} selected")

    def with_repaint(poly):
        panel.set_selection(np.zeros(0, np.int64))
        app.processEvents()
        t0 = time.perf_counter()
        panel._on_polygon(poly)
        app.processEvents()
        return time.perf_counter() - t0

    t = min(with_repaint(rect) for _ in range(repeats))
    _row("rectangle selection + repaint of the marks (processEvents)", t)
    c = centers[0]
    ang = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    ring = np.c_[c[0] + 4 * np.cos(ang) * (1 + 0.2 * np.sin(5 * ang)), c[1] + 4 * np.sin(ang)]
    t, _ = _best(lambda: panel._on_polygon(ring), repeats)
    _row("lasso selection (200 vertices around a blob)", t, f"{len(panel.selection):,} selected")
    ref = np.flatnonzero(edges_polygon(coords, ring))
    assert np.array_equal(np.sort(panel.selection), ref), "lasso differs from the even-odd baseline"
    t, _ = _best(lambda: edges_polygon(coords, ring), repeats)
    _row("baseline: per-edge even-odd over every point (lasso)", t)
    big = np.c_[mid[0] + 0.45 * (hi[0] - lo[0]) * np.cos(ang), mid[1] + 0.45 * (hi[1] - lo[1]) * np.sin(ang)]
    t, _ = _best(lambda: panel._on_polygon(big), repeats)
    _row("lasso selection (200 vertices, most of the map)", t, f"{len(panel.selection):,} selected")
    t = min(with_repaint(big) for _ in range(repeats))
    _row("lasso (most of the map) + repaint of the marks", t)
    t, _ = _best(lambda: panel.set_selection(np.zeros(0, np.int64)), repeats)
    _row("clear selection", t)
    t, _ = _best(lambda: panel.mark_current(emb.refs[5]), repeats)
    _row("mark_current (star the current object)", t)

    # pan/zoom repaint: every timed step changes the view
    def zoom(k):
        span = (hi - lo) / (2 + k)
        vb.setRange(xRange=(c[0] - span[0], c[0] + span[0]), yRange=(c[1] - span[1], c[1] + span[1]), padding=0)
        panel.plot.grab()

    def timed(step, before):
        times = []
        for k in range(repeats):
            before(k)
            t0 = time.perf_counter()
            step(k)
            times.append(time.perf_counter() - t0)
        return min(times), float(np.median(times))

    def fit(_k=0):
        panel._fit_view()
        panel.plot.grab()

    def pan(k):
        (x0, x1), (y0, y1) = vb.viewRange()
        dx = (x1 - x0) * 0.1 * (1 if k % 2 == 0 else -1)
        vb.setRange(xRange=(x0 + dx, x1 + dx), yRange=(y0, y1), padding=0)
        panel.plot.grab()

    steps = (("zoom in on a blob + repaint", zoom, fit), ("zoom out to the whole map + repaint", fit, zoom),
             ("pan by 10 % (zoomed in) + repaint", pan, lambda k: None),
             ("pan by 10 % (whole map) + repaint", pan, lambda k: fit() if k == 0 else None))
    threshold = E.DENSITY_MIN_VISIBLE
    from explorer import density

    kernels_get = density._KERNELS.get
    for variant in ("", "baseline, density numpy path: ", "baseline, symbols only: "):
        density._KERNELS.get = (lambda: None) if "numpy" in variant else kernels_get
        if variant and threshold >= n:
            break  # never on at this size: nothing to compare
        if "symbols" in variant:  # the same steps with the density layer off (every point a symbol, as before)
            E.DENSITY_MIN_VISIBLE = 10 ** 12
            panel._update_density("main")
        for name, step, before in steps:
            if "numpy" in variant and "pan" in name:
                continue
            t, med = timed(step, before)
            mode = "density layer" if panel.density_active() else "symbols"
            _row(variant + name, t, f"median {med * 1000:.1f} ms; drawn as {mode}")
    E.DENSITY_MIN_VISIBLE = threshold
    density._KERNELS.get = kernels_get
    panel.close()
    panel.deleteLater()
    app.processEvents()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 500_000])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    print(f"Qt platform {app.platformName()}; load {os.getloadavg()[0]:.2f}")
    for n in args.sizes:
        bench_size(app, n, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
