"""Issue 13 (scale): the large-map settings of the 2-D map and the embedding map's look-ups.

No timings here: the speed goals live in benchmarks/bench_umap_scale.py and bench_map_scale.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from crosspoint.analysis import dataset as D


def _features(m=40, d=12, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(m) % 2
    return (rng.normal(size=(m, d)) + 6 * y[:, None]).astype(np.float32)


def test_map_settings_switch_at_the_threshold():
    assert D.map_settings(D.UMAP_LARGE_OBJECTS) == {}
    assert D.map_settings(D.UMAP_LARGE_OBJECTS + 1) == D.UMAP_LARGE_SETTINGS
    assert D.map_settings(10, large=True) == D.UMAP_LARGE_SETTINGS
    assert D.map_settings(10 ** 6, large=False) == {}


@pytest.mark.slow  # umap-learn's first fit in a process loads or compiles its numba code
def test_large_map_settings_are_used_above_the_threshold_and_keyed_apart(tmp_path, monkeypatch):
    x = _features()
    small = D.project_2d(x, cache_dir=tmp_path, n_neighbors=5)
    assert "large-map" not in small.note and len(list(tmp_path.glob("*.npz"))) == 1
    seen = []
    real = D._compute_2d
    monkeypatch.setattr(D, "_compute_2d", lambda *a, **k: seen.append(a[-1]) or real(*a, **k))
    monkeypatch.setattr(D, "UMAP_LARGE_OBJECTS", 30)  # 40 objects are now "large"
    large = D.project_2d(x, cache_dir=tmp_path, n_neighbors=5)
    assert seen == [D.UMAP_LARGE_SETTINGS] and not large.from_cache
    assert "large-map settings: float32, 100 epochs" in large.note
    assert len(list(tmp_path.glob("*.npz"))) == 2  # its own cache entry, not the default map's
    assert D.project_2d(x, cache_dir=tmp_path, n_neighbors=5).from_cache
    forced = D.project_2d(x, cache_dir=tmp_path, n_neighbors=5, large=False)
    assert forced.from_cache and np.array_equal(forced.coords, small.coords)
    assert large.coords.shape == (40, 2) and np.isfinite(large.coords).all()
    # the two classes stay apart with the large-map settings too
    q = D.map_quality(large.coords, np.arange(40) % 2)
    assert q["knn_acc"] == 1.0


def _edges_polygon(xy, poly):
    """The even-odd rule as it was: one pass over every point per edge."""
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


def test_banded_points_in_polygon_matches_the_per_edge_rule():
    from explorer.embedding import MapIndex, points_in_polygon

    rng = np.random.default_rng(0)
    xy = rng.normal(size=(20000, 2)).astype(np.float32)
    xy[:50] = np.round(xy[:50])  # points exactly on vertices and edges
    index = MapIndex(xy)
    for k in (3, 4, 13, 200):
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        r = rng.uniform(0.3, 2.0, k)
        poly = np.c_[r * np.cos(ang), r * np.sin(ang)]
        if k == 4:
            poly = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)  # a rectangle on the grid points
        expect = _edges_polygon(xy, poly)
        assert np.array_equal(points_in_polygon(xy, poly), expect)
        assert np.array_equal(index.in_polygon(poly), expect)
        assert np.array_equal(index.in_polygon(poly[::-1]), expect)


def test_map_index_finds_the_points_in_a_symbols_box():
    from explorer.embedding import MapIndex

    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (5000, 2)) * (1, 0.01)  # very different scales on the two axes
    index = MapIndex(xy)
    for x, y, rx, ry in ((50, 0.5, 2, 0.02), (10, 0.9, 0.5, 0.1), (0, 0, 5, 0.05)):
        rows, dist = index.near(x, y, rx, ry)
        truth = np.flatnonzero((np.abs(xy[:, 0] - x) <= rx) & (np.abs(xy[:, 1] - y) <= ry))
        assert sorted(rows.tolist()) == truth.tolist()
        assert np.all(np.diff(dist) >= 0)
    assert MapIndex(np.zeros((0, 2))).near(0, 0, 1, 1)[0].size == 0


def test_fast_scatter_item_gets_the_same_symbols_as_pyqtgraph(qtbot):
    import pyqtgraph as pg

    from explorer.embedding import FastScatterPlotItem

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 500))
    kw = dict(size=7, pen=None, brush=pg.mkBrush(10, 200, 30, 210))
    ours, theirs = FastScatterPlotItem(x=x, y=y, **kw), pg.ScatterPlotItem(x=x, y=y, **kw)
    assert (ours.data["sourceRect"]["w"] > 0).all()
    assert np.array_equal(ours.data["sourceRect"], theirs.data["sourceRect"])  # the one symbol, same atlas place
    assert ours.fragmentAtlas.pixmap.toImage() == theirs.fragmentAtlas.pixmap.toImage()


def test_embedding_panel_hover_click_and_selection_use_the_index(qtbot):
    from PyQt6.QtCore import QPointF

    from explorer.embedding import EmbeddingPanel
    from explorer.state import AppState

    class _MP:
        state = AppState()

    n = 3000
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n)
    coords = (np.array([[0, 0], [10, 0], [0, 10]])[labels] + rng.normal(size=(n, 2))).astype(np.float32)
    emb = D.DatasetEmbedding(np.zeros((n, 1), np.float32), np.zeros((n, 1), np.float32), labels,
                             ["a", "b", "c"], [f"o{i}" for i in range(n)], [f"/d/o{i}.ply" for i in range(n)], "fp")
    p = EmbeddingPanel(_MP())
    qtbot.addWidget(p)
    p.resize(900, 600)
    p.show()
    p.set_embedding(emb, coords)
    # a far-away point is found under its own position, with its tooltip
    far = int(np.argmax(np.hypot(*(coords - coords.mean(0)).T)))
    pos = QPointF(*map(float, coords[far]))
    assert p.point_at(pos) == far
    p._hover("main", p.vb.mapViewToScene(pos))
    assert "o%d\n" % far in p.vb.toolTip() + "\n" and len(p.hover_item.data) == 1
    p._hover("main", p.vb.mapViewToScene(QPointF(1e6, 1e6)))
    assert p.vb.toolTip() == "" and len(p.hover_item.data) == 0
    with qtbot.waitSignal(p.openRequested, timeout=2000) as sig:
        p._on_view_clicked("main", pos)
    assert sig.args[0] == f"/d/o{far}.ply"
    p.set_mode("rect")  # clicks open nothing while selecting
    with qtbot.assertNotEmitted(p.openRequested):
        p._on_view_clicked("main", pos)
    rect = np.array([[5, -5], [15, -5], [15, 5], [5, 5]], float)
    p._on_polygon(rect)
    assert np.array_equal(p.selection, np.flatnonzero(_edges_polygon(coords, rect)))
    assert len(p.sel_item.data) == len(p.selection) and p.sel_list.count() == min(len(p.selection), 2000)
    np.testing.assert_array_equal(np.c_[p.sel_item.data["x"], p.sel_item.data["y"]], coords[p.selection])
    p.mark_current(f"/d/o{far}.ply")
    assert len(p.cur_item.data) == 1
    p.grab()  # paints the marks


def test_the_random_weight_map_beside_it_hovers_and_opens_its_own_points(qtbot):
    from types import SimpleNamespace as NS

    from PyQt6.QtCore import QPointF

    from explorer.embedding import EmbeddingPanel
    from explorer.state import AppState

    class _MP:
        state = AppState()

    n = 500
    rng = np.random.default_rng(2)
    coords = rng.normal(size=(n, 2)).astype(np.float32)
    base = (rng.normal(size=(n, 2)) * 5 + 50).astype(np.float32)  # elsewhere: its own index
    emb = D.DatasetEmbedding(np.zeros((n, 1), np.float32), np.zeros((n, 1), np.float32), np.zeros(n, np.int64),
                             ["a"], [f"o{i}" for i in range(n)], [f"/d/o{i}.ply" for i in range(n)], "fp")
    baseline = NS(embedding=emb, projection=NS(coords=base), svm=None, quality=None, overlay=None)
    p = EmbeddingPanel(_MP())
    qtbot.addWidget(p)
    p.resize(1200, 600)
    p.show()
    p.set_embedding(emb, coords, baseline=baseline)
    assert p.base_box.isVisible()
    i = int(np.argmax(base[:, 0]))
    pos = QPointF(*map(float, base[i]))
    assert p.point_at(pos, "base") == i and p.point_at(pos) in (None,) + tuple(range(n))
    p._hover("base", p.base_vb.mapViewToScene(pos))
    assert f"o{i}\n" in p.base_vb.toolTip() and len(p.base_hover_item.data) == 1
    with qtbot.waitSignal(p.openRequested, timeout=2000) as sig:
        p._on_view_clicked("base", pos)
    assert sig.args[0] == f"/d/o{i}.ply"
    p._on_polygon(np.array([[-9, -9], [9, -9], [9, 9], [-9, 9]], float))  # all of the main map
    assert len(p.selection) == n and len(p.base_sel_item.data) == n


def test_hover_thumbnails_come_from_the_datasets_own_renders(tmp_path):
    """The map's hover tooltip shows the object's first rendered view when the dataset has one
    (ShapeNetRendering beside ShapeNet: the demo, ShapeNet), and text only otherwise."""
    from explorer.embedding import thumbnail_path

    pts = tmp_path / "ShapeNet" / "02691156" / "abc.ply"
    pts.parent.mkdir(parents=True)
    pts.write_text("")
    views = tmp_path / "ShapeNetRendering" / "02691156" / "abc" / "rendering"
    views.mkdir(parents=True)
    for name in ("01.png", "00.png"):
        (views / name).write_bytes(b"")
    assert thumbnail_path(str(pts)) == views / "00.png"
    other = tmp_path / "flat" / "x.ply"
    assert thumbnail_path(str(other)) is None


def test_density_image_counts_colours_and_covers_like_the_symbols():
    from explorer.density import density_image

    pal = np.array([[255, 0, 0], [0, 0, 255]], float)
    # one red point at (10.5, 4.5) px; three red and one blue at (30.5, 20.5)
    dx = np.array([10.5, 30.5, 30.5, 30.5, 30.5])
    dy = np.array([4.5, 20.5, 20.5, 20.5, 20.5])
    cls = np.array([0, 0, 1, 0, 0])
    img = density_image(dx, dy, cls, pal, 40, 30, alpha=0.5, bin_px=2)
    assert img.shape == (15, 20, 4)
    # the red point's bin and its 8 neighbours (a 7-px symbol covers about 3 x 3 bins of 2 px)
    covered = img[..., 3] > 0
    assert covered[1:4, 4:7].all() and covered[0:6, 0:9].sum() == 9
    assert (img[2, 5, :3] == (255, 0, 0)).all() and img[2, 5, 3] == round(0.5 * 255)
    # four points in one bin: the class the symbols draw on top (the higher index, drawn later), the
    # opacity of four overlapping symbols
    assert (img[10, 15, :3] == (0, 0, 255)).all() and img[10, 15, 3] == round((1 - 0.5 ** 4) * 255)
    assert not covered[14, 19] and (img[14, 19] == 0).all()
    # points outside the screen are left out
    none = density_image(np.array([-5.0, 100.0]), np.array([1.0, 1.0]), np.array([0, 1]), pal, 40, 30)
    assert not none[..., 3].any()


def test_density_from_data_coordinates_equals_the_numpy_path(monkeypatch):
    """The numba pass (map the points with the view's transform, bin, count those on screen, leave
    hidden classes out) gives the numpy path's image and count exactly, bins on their edges included."""
    from explorer import density

    rng = np.random.default_rng(5)
    n = 20_000
    x = rng.normal(size=n) * 3
    y = rng.normal(size=n) * 2
    x[:200] = np.round(x[:200] * 4) / 4  # points on bin edges after the transform
    y[:200] = np.round(y[:200] * 4) / 4
    cls = rng.integers(0, 5, n)
    pal = rng.integers(0, 256, (5, 3)).astype(float)
    shown = np.array([True, True, False, True, True])
    for tr in ((20.0, 0.0, 0.0, -16.0, 200.0, 150.0), (8.0, 0.0, 0.0, 8.0, 3.0, 7.0), (50.5, 0.0, 0.0, -49.5, 0, 0)):
        fast = density.density_image_mapped(x, y, cls, shown, pal, tr, 400, 300, alpha=0.6)
        with monkeypatch.context() as m:
            m.setattr(density._KERNELS, "get", lambda: None)
            slow = density.density_image_mapped(x, y, cls, shown, pal, tr, 400, 300, alpha=0.6)
        assert fast[1] == slow[1] and fast[1] > 0
        np.testing.assert_array_equal(fast[0], slow[0])
        keep = shown[cls]
        dx = tr[0] * x[keep] + tr[2] * y[keep] + tr[4]
        dy = tr[1] * x[keep] + tr[3] * y[keep] + tr[5]
        np.testing.assert_array_equal(slow[0], density.density_image(dx, dy, cls[keep], pal, 400, 300, alpha=0.6))


def _blob_map(n, k=6, spread=0.6, seed=0):
    rng = np.random.default_rng(seed)
    ang = np.arange(k) * 2 * np.pi / k
    centers = 10 * np.c_[np.cos(ang), np.sin(ang)]
    labels = rng.integers(0, k, n)
    coords = (centers[labels] + rng.normal(size=(n, 2)) * spread).astype(np.float32)
    emb = D.DatasetEmbedding(np.zeros((n, 1), np.float32), np.zeros((n, 1), np.float32), labels,
                             [f"c{c}" for c in range(k)], [f"o{i}" for i in range(n)],
                             [f"/d/o{i}.ply" for i in range(n)], "fp")
    return emb, coords


def _plot_rgb(p):
    img = p.plot.grab().toImage().convertToFormat(p.plot.grab().toImage().Format.Format_RGB888)
    w, h = img.width(), img.height()
    a = np.frombuffer(img.bits().asstring(img.bytesPerLine() * h), np.uint8).reshape(h, img.bytesPerLine())
    return a[:, :3 * w].reshape(h, w, 3).astype(int)


def test_density_layer_takes_over_above_the_threshold_and_draws_the_same_picture(qtbot, monkeypatch):
    """The honesty figure of the density layer: against the symbols it replaces, on separated
    blobs, the covered pixels agree (IoU) and so do the colours where both draw."""
    import explorer.embedding as E
    from explorer.state import AppState

    class _MP:
        state = AppState()

    emb, coords = _blob_map(30_000)
    p = E.EmbeddingPanel(_MP())
    qtbot.addWidget(p)
    p.resize(900, 600)
    p.show()
    monkeypatch.setattr(E, "DENSITY_MIN_VISIBLE", 10 ** 9)
    p.set_embedding(emb, coords)
    assert not p.density_active() and not any(it.suppressed for it in p.class_items)
    symbols = _plot_rgb(p)
    monkeypatch.setattr(E, "DENSITY_MIN_VISIBLE", 20_000)
    p._update_density("main")
    assert p.density_active() and all(it.suppressed for it in p.class_items)
    dense = _plot_rgb(p)
    assert p.density.last_paint[0] == len(coords)  # every point in view went into the image
    bg = np.array([0x1E, 0x21, 0x26])
    legend_x = int(dense.shape[1] * 0.76)  # the legend (top right) is drawn the same way in both
    ca = np.abs(dense[:, :legend_x] - bg).sum(-1) > 30
    cb = np.abs(symbols[:, :legend_x] - bg).sum(-1) > 30
    iou = (ca & cb).sum() / (ca | cb).sum()
    close = (np.abs(dense[:, :legend_x] - symbols[:, :legend_x]).sum(-1) < 60)[ca & cb].mean()
    print(f"density layer vs symbols: covered IoU {iou:.3f}, colours agree {close:.3f}")
    assert iou > 0.9, iou
    assert close > 0.9, close
    # zoomed in on one blob, fewer points are in view: the symbols come back
    c = coords[emb.labels == 0].mean(0).astype(float)
    p.vb.setRange(xRange=(c[0] - 1, c[0] + 1), yRange=(c[1] - 1, c[1] + 1), padding=0)
    assert not p.density_active() and not any(it.suppressed for it in p.class_items)
    p._fit_view()
    assert p.density_active()
    # a class hidden from the legend leaves the layer too
    p.class_items[0].setVisible(False)
    p.plot.grab()
    assert p.density.last_paint[0] == int(np.count_nonzero(emb.labels != 0))


def test_selection_marks_merge_when_many_are_in_view(qtbot):
    """Over MERGE_ABOVE marks in view, marks within one 2-px bin are drawn once, at most about a
    pixel from every point they stand for; below it every mark is drawn where its point is."""
    from PyQt6.QtGui import QImage, QPainter

    import pyqtgraph as pg

    from explorer.embedding import PointMarks

    rng = np.random.default_rng(0)
    marks = PointMarks(size=11, pen=pg.mkPen("w"), brush=pg.mkBrush(0, 0, 0, 0))
    img = QImage(400, 300, QImage.Format.Format_ARGB32)

    def paint(x, y):
        marks.setData(x, y)
        img.fill(0)
        p = QPainter(img)
        marks.paint(p, None)
        p.end()
        return marks.last_drawn

    x, y = rng.uniform(0, 400, 500), rng.uniform(0, 300, 500)
    assert paint(x, y) == 500
    x, y = rng.uniform(50, 150, 60_000), rng.uniform(50, 120, 60_000)
    drawn = paint(x, y)
    assert drawn < 60_000 / 10  # 100 x 70 px hold 1,750 bins of 2 px
    from scipy.spatial import cKDTree

    centres = np.c_[marks._merged(x, y, marks._size)]  # the painter's transform is the identity here
    assert len(centres) == drawn

    assert cKDTree(centres).query(np.c_[x, y])[0].max() <= np.sqrt(2) + 1e-9  # every point has its mark
    assert cKDTree(np.c_[x, y]).query(centres)[0].max() <= np.sqrt(2) + 1e-9  # every mark has its point
