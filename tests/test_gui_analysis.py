"""The model, 2D-views and embedding panels of the main window, driven through their widgets (pytest-qt).

Small random-weight checkpoints keep this fast; what is checked is the wiring a user relies on: a
button runs the job off the GUI thread, its result lands on the right object, the 3D view and the 2D
view change, a selection on the UMAP map selects the right objects and opens them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PyQt6.QtCore import QPoint, QPointF, Qt

from crosspoint.data.synthetic import CLASS_PARTS, CLASSES, class_part_ids
from crosspoint.models import DGCNN, ImageEncoder
from crosspoint.models.checkpoint import save_model_bundle

from tests.gui_support import small_bundles


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict:
    return small_bundles(tmp_path_factory.mktemp("gui_ckpt"))


def _load(qtbot, win, checkpoint) -> None:
    win.model_panel.load(str(checkpoint))
    qtbot.waitUntil(lambda: not win.model_panel.busy, timeout=60_000)
    assert win.model_panel.session is not None, win.action_errors


def _open_demo(qtbot, win, cls="chair") -> None:
    win.open_demo(cls)
    qtbot.waitUntil(lambda: win.viewer.has_frame, timeout=30_000)
    qtbot.waitUntil(lambda: win.views.image_count() > 0, timeout=60_000)


def _dense_on_demo(qtbot, win, cls: str):
    """The demo checkpoint, a demo object of class ``cls`` and "dense similarity on click" switched
    on, its figures computed: ``(model panel, document)``."""
    win.model_panel.load(None)
    qtbot.waitUntil(lambda: not win.model_panel.busy and win.model_panel.session is not None, timeout=60_000)
    _open_demo(qtbot, win, cls)
    qtbot.waitUntil(lambda: not win.views.rendering, timeout=60_000)
    mp = win.model_panel
    mp.dense_links.setChecked(True)
    qtbot.waitUntil(lambda: mp._dense is not None and not mp.busy, timeout=120_000)
    return mp, win.state.current


def _distinct_colours(frame: np.ndarray) -> int:
    bg = frame[0, 0].astype(int)
    fg = frame[(np.abs(frame.astype(int) - bg).max(axis=2) > 30)]
    return len(np.unique(fg // 32, axis=0))


def test_segmentation_button_colours_the_object_by_part(qtbot, window, ckpts):
    _load(qtbot, window, ckpts["seg"])
    _open_demo(qtbot, window, "chair")
    mp = window.model_panel
    assert mp.seg_button.isEnabled()
    assert {mp.category.itemData(i) for i in range(mp.category.count())} >= set(CLASSES)
    doc = window.state.current
    qtbot.mouseClick(mp.seg_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "segmentation" in doc.results and not mp.busy, timeout=60_000)
    seg = doc.results["segmentation"].value
    assert seg["source"] == "head"
    assert seg["labels"].shape == (doc.cloud.n_points,)
    # the head predicts among the chair's parts only
    chair_ids = set(class_part_ids("chair"))
    assert set(np.unique(seg["labels"]).tolist()) <= chair_ids
    assert doc.color_mode == "prediction" and window.color_combo.currentData() == "prediction"
    assert "chair" in mp.seg_note.text()
    qtbot.waitUntil(lambda: window.viewer.has_frame, timeout=10_000)
    legend = [name for name, rgb in window.viewer._legend if rgb is not None]
    assert len(legend) == len(np.unique(seg["labels"])) and set(legend) <= set(CLASS_PARTS["chair"]), legend
    # File > Export writes the file's labels and the prediction beside them, with the colours shown
    import plyfile

    from crosspoint.io import read_point_cloud

    out = Path(window.settings.fileName()).parent / "chair_parts.ply"
    assert window.export_document(doc, str(out))
    back = read_point_cloud(out)
    np.testing.assert_array_equal(back.labels, doc.cloud.labels)
    np.testing.assert_array_equal(np.asarray(plyfile.PlyData.read(str(out))["vertex"]["pred_label"]), seg["labels"])
    assert back.colors is not None and len(np.unique(np.round(back.colors, 2), axis=0)) == len(legend)


def test_clustering_segmentation_without_a_head(qtbot, window, ckpts):
    _load(qtbot, window, ckpts["full"])
    _open_demo(qtbot, window, "mug")
    mp = window.model_panel
    assert mp.k_parts.isEnabled() and not mp.category.isEnabled()
    # the current object is embedded in the background and the panel says so
    qtbot.waitUntil(lambda: mp.embed_status.text().startswith("embedded"), timeout=30_000)
    result = window.state.current.results["embedding"]
    emb = result.value
    assert result.provenance.checkpoint == mp.session.fingerprint
    assert emb["feature"].shape == (mp.session.point_encoder.feature_dim,)
    assert abs(np.linalg.norm(emb["projection"]) - 1) < 1e-4
    mp.k_parts.setValue(3)
    doc = window.state.current
    qtbot.mouseClick(mp.seg_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "segmentation" in doc.results and not mp.busy, timeout=60_000)
    seg = doc.results["segmentation"].value
    assert seg["source"] != "head" and len(np.unique(seg["labels"])) == 3
    assert "unsupervised" in mp.seg_note.text()


def test_heatmap_on_points_and_on_the_view(qtbot, window, ckpts):
    _load(qtbot, window, ckpts["full"])
    _open_demo(qtbot, window, "airplane")
    mp, views = window.model_panel, window.views
    from explorer.views2d import on_white

    raw = on_white(views.current_image())
    doc = window.state.current
    assert mp.heat_button.isEnabled()
    qtbot.mouseClick(mp.heat_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "heatmap" in doc.results and not mp.busy, timeout=120_000)
    heat = doc.results["heatmap"].value["values"]
    assert heat.shape == (doc.cloud.n_points,) and np.isfinite(heat).all()
    assert heat.min() >= 0 and heat.max() <= 1 and heat.std() > 0
    assert doc.color_mode == "heatmap"
    assert "cosine similarity" in mp.similarity.text()
    # the honesty readouts beside it: the library's figures, for this view and camera
    ro = doc.results["heatmap"].value["readouts"]
    from explorer.model_panel import heatmap_readouts

    want = heatmap_readouts(mp.session, doc.cloud, views.current_image(), views.current_camera(), "gradcam")
    for key in ("top_drop", "blob_drop", "random_drop", "other_top_drop", "other_heat_corr", "spearman_point_image"):
        assert abs(ro[key] - want[key]) < 1e-4, (key, ro[key], want[key])  # float32 model on another thread
    assert set(ro["deletion_curve"]) >= {"fractions", "top", "blob", "random", "other_top"}
    assert mp.readout_plot.isVisible() and len(mp.readout_plot.getPlotItem().listDataItems()) == 4
    text = mp.readout_text.text()
    assert "random contiguous blob" in text and "Specificity" in text and "Spearman" in text
    img_heat = doc.results["image_heatmap"].value["values"]
    assert img_heat.ndim == 2 and np.isfinite(img_heat).all()
    shown = views.displayed_image()
    assert shown.shape[:2] == raw.shape[:2] and np.abs(shown[..., :3].astype(int) - raw[..., :3]).mean() > 1, \
        "the view shows the heat overlay"
    # picking another view makes the heatmaps stale: the overlay goes away, the bar is marked
    views.thumbs.setCurrentRow((views.current_index + 1) % views.image_count())
    assert window.state.is_stale(doc, "image_heatmap") and views._overlay is None
    assert window.viewer.colorbar_stale and "STALE" in window.viewer.colorbar_title


def test_retrieval_lists_open_objects_by_similarity(qtbot, window, ckpts, shared_data):
    _load(qtbot, window, ckpts["full"])
    window.open_files([str(shared_data / "ply" / "airplane.ply"), str(shared_data / "pcd" / "bunny.pcd")])
    qtbot.waitUntil(lambda: not window.loading and len(window.state.documents) == 2, timeout=30_000)
    qtbot.waitUntil(lambda: window.views.image_count() > 0, timeout=60_000)
    mp = window.model_panel
    with qtbot.waitSignal(mp.retrievalReady, timeout=60_000) as sig:
        qtbot.mouseClick(mp.retrieve_button, Qt.MouseButton.LeftButton)
    hits = sig.args[0]
    assert len(hits) == 2 and sorted(i for i, _ in hits) == [0, 1]
    sims = [s for _, s in hits]
    assert sims == sorted(sims, reverse=True) and all(-1 <= s <= 1 for s in sims)
    assert mp.results.count() == 2
    # the honesty figure: the view's own object (the current one) among all open objects
    own = window.state.current_index
    rank = [i for i, _ in hits].index(own) + 1
    r = window.state.result(None, "retrieval")
    assert r.value["own_rank"] == rank and r.value["n"] == 2
    assert f"ranks {rank} of 2" in mp.results_note.text() and "1.5" in mp.results_note.text()
    # clicking a result makes that object current
    other = 1 - window.state.current_index
    row = [k for k in range(2) if hits[k][0] == other][0]
    item = mp.results.item(row)
    mp.results.itemClicked.emit(item)
    assert window.state.current_index == other


def test_official_point_checkpoint_disables_heatmaps_with_a_reason(qtbot, window, reference_fixtures):
    _load(qtbot, window, reference_fixtures / "dgcnn_cls.pth")
    _open_demo(qtbot, window, "table")
    mp = window.model_panel
    assert not mp.heat_button.isEnabled() and mp.heat_button.toolTip()
    assert mp.seg_button.isEnabled()
    assert "image encoder: none" in mp.info.text()


def test_bad_checkpoint_shows_an_error_and_keeps_the_model(qtbot, window, ckpts, tmp_path):
    _load(qtbot, window, ckpts["full"])
    before = window.model_panel.session
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"\x80\x04not a checkpoint at all" * 10)
    window.model_panel.load(str(bad))
    qtbot.waitUntil(lambda: not window.model_panel.busy, timeout=30_000)
    assert window.model_panel.session is before
    assert window.action_errors and "garbage.pt" in window.action_errors[-1][0] + window.action_errors[-1][1]
    assert window.banner.isVisible()


def test_views_panel_takes_an_image_file(qtbot, window, shared_data):
    _open_demo(qtbot, window, "lamp")
    views = window.views
    n = views.image_count()
    png = shared_data / "renders" / "pixel2mesh" / "chair.png"
    # each rendered view is labelled under its thumbnail with its camera's azimuth (the caption's)
    labels = [views.thumbs.item(i).text() for i in range(n)]
    assert labels == [f"az {v['camera'].azimuth:.0f}°" for v in views._views[:n]], labels
    views.add_image_file(png)
    assert views.image_count() == n + 1 and views.current_index == n
    assert views.thumbs.item(n).text() == "image 1"
    img = views.current_image()
    assert img.ndim == 3 and img.shape[2] == 4 and img.dtype == np.uint8
    # a file that is not an image: an error, nothing added
    bad = Path(window.settings.fileName()).parent / "not_an_image.png"
    bad.write_bytes(b"definitely not a PNG")
    with qtbot.waitSignal(views.error, timeout=5000):
        views.add_image_file(bad)
    assert views.image_count() == n + 1
    # a PNG whose header claims 20000 x 20000 pixels (400 kB on disk): PIL's DecompressionBombError is
    # not an OSError, and escaping a Qt slot it used to abort the whole application
    from PIL import Image

    bomb = bad.with_name("bomb.png")
    Image.new("L", (20000, 20000)).save(bomb)
    with qtbot.waitSignal(views.error, timeout=5000) as blocker:
        views.add_image_file(bomb)
    assert "bomb.png: not read" in blocker.args[1] and "400000000 pixels" in blocker.args[1]
    assert views.image_count() == n + 1


def test_image_buttons_wait_for_an_image_and_say_why(qtbot, window, ckpts, shared_data, tmp_path):
    """The heatmap, part evidence and retrieval need the selected view (part evidence also its
    camera and the object's parts): their buttons are off until there is one, and their tooltips
    say why, instead of an error after the click (found by tests/test_gui_monkey.py)."""
    _load(qtbot, window, ckpts["full"])
    mp, views = window.model_panel, window.views
    assert not mp.heat_button.isEnabled() and "no image: open an object" in mp.heat_button.toolTip()
    window.open_demo("mug")
    qtbot.waitUntil(lambda: window.state.current is not None and views.rendering, timeout=30_000)
    for b in (mp.heat_button, mp.evidence_button, mp.retrieve_button):
        assert not b.isEnabled() and "Unavailable: wait for the rendered views" in b.toolTip()
    qtbot.waitUntil(lambda: views.image_count() > 0 and not views.rendering, timeout=60_000)
    for b in (mp.heat_button, mp.evidence_button, mp.retrieve_button):
        assert b.isEnabled() and "Unavailable" not in b.toolTip()
    views.add_image_file(shared_data / "renders" / "pixel2mesh" / "chair.png")  # selected: no camera
    assert mp.heat_button.isEnabled() and mp.retrieve_button.isEnabled()
    assert not mp.evidence_button.isEnabled() and "an added image has no camera" in mp.evidence_button.toolTip()
    views.thumbs.setCurrentRow(0)  # back to a rendered view
    assert mp.evidence_button.isEnabled()
    views.n_views.setValue(views.n_views.value() + 1)  # the views render again: off meanwhile
    assert views.rendering and not mp.evidence_button.isEnabled()
    qtbot.waitUntil(lambda: not views.rendering, timeout=60_000)
    assert mp.evidence_button.isEnabled() and mp.heat_button.isEnabled()
    # an object without part labels: part evidence waits for a segmentation
    path = tmp_path / "blob.xyz"
    np.savetxt(path, np.random.default_rng(0).normal(size=(600, 3)), fmt="%.5f")
    window.open_files([str(path)])
    qtbot.waitUntil(lambda: window.state.current is not None and window.state.current.source == str(path)
                    and views.image_count() > 1 and not views.rendering, timeout=60_000)
    views.thumbs.setCurrentRow(0)
    assert mp.heat_button.isEnabled() and not mp.evidence_button.isEnabled()
    assert "Unavailable: no parts: segment the object first" in mp.evidence_button.toolTip()
    mp.seg_button.click()
    qtbot.waitUntil(lambda: "segmentation" in window.state.current.results and not mp.busy, timeout=60_000)
    assert mp.evidence_button.isEnabled() and "Unavailable" not in mp.evidence_button.toolTip()


def test_image_files_damaged_or_huge(tmp_path):
    """Every damage PIL can meet becomes a ValueError naming the file; big images are shrunk."""
    import io
    import random

    from PIL import Image

    from damage_support import outcome
    from explorer.views2d import MAX_IMAGE_SIDE, load_image_file

    rng = np.random.default_rng(0)
    pixels = (rng.uniform(size=(48, 64, 3)) * 255).astype(np.uint8)
    def load_rgba(path):
        img = load_image_file(path)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 4

    r = random.Random(0)
    counts = {"loaded": 0, "refused": 0}
    for fmt in ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format=fmt)
        data = buf.getvalue()
        for i in range(60):
            d = bytearray(data)
            if i % 3 == 0:
                d = d[: r.randrange(len(d))]
            else:  # flipped bytes, in the header (dimensions, chunk lengths) on every other file
                span = len(d) if i % 3 == 1 else min(len(d), 64)
                for _ in range(r.randint(1, 8)):
                    d[r.randrange(span)] = r.randrange(256)
            path = tmp_path / f"{fmt}{i}.img"
            path.write_bytes(bytes(d))
            what, why = outcome(load_rgba, path, ValueError)
            assert what != "failed", why
            counts[what] += 1
    assert counts["loaded"] and counts["refused"] > 100, counts
    big = tmp_path / "wide.png"
    Image.new("RGB", (MAX_IMAGE_SIDE * 2 + 2, 100), (10, 20, 30)).save(big)
    img = load_image_file(big)
    assert img.shape == (50, MAX_IMAGE_SIDE, 4) and (img[..., :3] == (10, 20, 30)).all()


@pytest.fixture
def class_folder(tmp_path, shared_data) -> Path:
    root = tmp_path / "objects"
    for f in sorted((shared_data / "modelnet40_off").glob("*.off")):
        cls = f.stem.split("_")[0]
        (root / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, root / cls / f.name)
    return root


def _drag(qtbot, widget, a: QPoint, b: QPoint, via=()) -> None:
    qtbot.mousePress(widget, Qt.MouseButton.LeftButton, pos=a)
    for p in (*via, b):
        qtbot.mouseMove(widget, p)
        qtbot.wait(20)
    qtbot.mouseRelease(widget, Qt.MouseButton.LeftButton, pos=b)


def test_embedding_map_rectangle_and_lasso_selection_open_objects(qtbot, window, ckpts, class_folder):
    _load(qtbot, window, ckpts["full"])
    window.embedding_dock.raise_()
    ep = window.embedding_panel
    ep.set_source_folder(str(class_folder))
    qtbot.mouseClick(ep.embed_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ep.embedding is not None and not ep.busy, timeout=180_000)
    n = len(list(class_folder.rglob("*.off")))
    assert len(ep.embedding) == n and ep.coords.shape == (n, 2) and np.isfinite(ep.coords).all()
    assert f"{n} objects" in ep.status.text()
    assert {it.name() for it in ep.class_items} == {"airplane", "bathtub", "bed", "chair", "toilet"}

    # a rectangle drag over the whole plot selects everything
    ep.set_mode("rect")
    view = ep.plot.viewport()
    qtbot.wait(100)
    vb = ep.vb
    x0, x1 = ep.coords[:, 0].min(), ep.coords[:, 0].max()
    y0, y1 = ep.coords[:, 1].min(), ep.coords[:, 1].max()
    pad_x, pad_y = 0.02 * (x1 - x0 + 1e-6), 0.02 * (y1 - y0 + 1e-6)

    def to_widget(x, y) -> QPoint:
        scene = vb.mapViewToScene(QPointF(float(x), float(y)))
        return ep.plot.mapFromScene(scene)

    with qtbot.waitSignal(ep.selectionChanged, timeout=5000):
        _drag(qtbot, view, to_widget(x0 - pad_x, y1 + pad_y), to_widget(x1 + pad_x, y0 - pad_y),
              via=[to_widget((x0 + x1) / 2, (y0 + y1) / 2)])
    assert len(ep.selection) == n and ep.sel_list.count() == n
    assert f"{n} objects" in ep.sel_label.text()

    # a lasso around one object's neighbourhood selects what lies inside it, as points_in_polygon says
    from explorer.embedding import points_in_polygon

    ep.set_mode("lasso")
    cx, cy = ep.coords[0]
    r_x, r_y = 0.15 * (x1 - x0 + 1e-6), 0.15 * (y1 - y0 + 1e-6)
    ring = [to_widget(cx + r_x * np.cos(t), cy + r_y * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 13)]
    with qtbot.waitSignal(ep.selectionChanged, timeout=5000):
        _drag(qtbot, view, ring[0], ring[-1], via=ring[1:-1])
    assert 0 in ep.selection.tolist()
    assert len(ep.selection) < n or np.ptp(ep.coords, axis=0).max() < 0.3 * max(x1 - x0, y1 - y0)
    poly = np.array([[cx + r_x * np.cos(t), cy + r_y * np.sin(t)] for t in np.linspace(0, 2 * np.pi, 13)])
    expected = set(np.flatnonzero(points_in_polygon(ep.coords, poly)).tolist())
    assert abs(len(set(ep.selection.tolist()) ^ expected)) <= 1  # the drawn ring is pixel-rounded

    # opening a selected object from the list shows it in the 3D view and stars it on the map
    i = int(ep.selection[0])
    item = ep.sel_list.item(0)
    ep.sel_list.itemDoubleClicked.emit(item)
    qtbot.waitUntil(lambda: not window.loading and window.state.current is not None, timeout=30_000)
    assert Path(window.state.current.source).name == Path(str(ep.embedding.refs[i])).name
    qtbot.waitUntil(lambda: len(ep.cur_item.data) == 1, timeout=5000)

    # a second run hits the on-disk cache
    ep.embedding = None
    qtbot.mouseClick(ep.embed_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ep.embedding is not None and not ep.busy, timeout=60_000)
    assert "cache" in ep.status.text()


def test_embedding_map_compared_with_random_weights(qtbot, window, ckpts, class_folder):
    """The comparison embeds the same objects with a seeded random encoder of the same architecture,
    shows its map beside the checkpoint's, mirrors the selection, and its figures are the measured ones."""
    from crosspoint.analysis.dataset import map_quality

    torch.manual_seed(7)  # not the baseline's seed: "random weights" is seed 0
    ck = save_model_bundle(class_folder.parent / "seed7.pt", point_encoder=DGCNN(k=8, emb_dims=64, projection_dim=32),
                           image_encoder=ImageEncoder("resnet18", projection_dim=32),
                           meta={"n_points": 512, "image_size": 64})
    _load(qtbot, window, ck)
    window.embedding_dock.raise_()
    ep = window.embedding_panel
    ep.set_source_folder(str(class_folder))
    ep.compare.setChecked(True)
    qtbot.mouseClick(ep.embed_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ep.embedding is not None and not ep.busy, timeout=240_000)
    n = len(ep.embedding)
    assert ep.baseline is not None and ep.base_box.isVisible() and ep.map_title.isVisible()
    assert [str(r) for r in ep.baseline.refs] == [str(r) for r in ep.embedding.refs]
    assert ep.base_coords.shape == (n, 2) and np.isfinite(ep.base_coords).all()
    assert not np.allclose(ep.baseline.features, ep.embedding.features), "another encoder"
    assert "random weights" in ep.base_title.text() and "random weights" in ep.status.text()
    r = window.state.result(None, "embedding_map").value
    # few labels: both encoders scored on the same draws of the map's own objects, the figures shown are those
    from crosspoint.analysis.background import labels_curve

    assert r["labels_curve"] == labels_curve(ep.embedding) and r["labels_curve"]
    assert r["baseline"]["labels_curve"] == labels_curve(ep.baseline)
    assert "labelled objects per class" in ep.status.text()
    from explorer.embedding import CLEAN_DEMO_HINT

    assert CLEAN_DEMO_HINT not in ep.status.text()  # only below a comparison on the plain demo
    assert f"this checkpoint {100 * r['labels_curve'][0]['mean']:.0f}" in ep.status.text()
    assert r["baseline"]["quality"] == map_quality(ep.base_coords, ep.embedding.labels)
    assert r["quality"] == map_quality(ep.coords, ep.embedding.labels)
    assert f"silhouette {r['baseline']['quality']['silhouette']:.2f}" in ep.base_title.text()
    assert len(ep.base_items) == len(ep.class_items)
    ep.set_selection(np.array([0, 2]))
    np.testing.assert_array_equal(np.c_[ep.base_sel_item.data["x"], ep.base_sel_item.data["y"]],
                                  ep.base_coords[[0, 2]])
    # unchecked: the next map is the checkpoint's alone
    ep.compare.setChecked(False)
    ep.embedding = None
    qtbot.mouseClick(ep.embed_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ep.embedding is not None and not ep.busy, timeout=60_000)
    assert ep.baseline is None and not ep.base_box.isVisible()


def test_embedding_without_a_checkpoint_says_so(qtbot, window):
    window.embedding_panel.run()
    assert window.action_errors and "checkpoint" in window.action_errors[-1][1]


def test_points_in_polygon_on_a_concave_lasso():
    from explorer.embedding import points_in_polygon

    rng = np.random.default_rng(0)
    xy = rng.uniform(-0.5, 2.5, (4000, 2))
    # an L: the unit-2 square minus its upper-right unit square (concave, like a hand-drawn lasso)
    ell = np.array([[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]], float)
    inside = points_in_polygon(xy, ell)
    x, y = xy[:, 0], xy[:, 1]
    truth = (x > 0) & (x < 2) & (y > 0) & (y < 2) & ~((x > 1) & (y > 1))
    assert (inside == truth).all()
    # orientation does not matter; fewer than three vertices select nothing
    assert (points_in_polygon(xy, ell[::-1]) == truth).all()
    assert not points_in_polygon(xy, ell[:2]).any()


def test_point_to_pixel_and_pixel_to_points_links(qtbot, window):
    """Click a point: its pixel is marked in the selected view (visible / occluded, from the renderer's
    camera and depth buffer); click a pixel: the visible points it sees are ringed in 3D."""
    from crosspoint.analysis.correspondence import view_correspondence

    _open_demo(qtbot, window, "chair")
    qtbot.waitUntil(lambda: not window.views.rendering, timeout=60_000)
    doc = window.state.current
    cam = window.views.current_camera()
    truth = view_correspondence(doc.cloud.points, cam, mesh=doc.cloud.mesh)
    vis, occ = np.flatnonzero(truth.visible), np.flatnonzero(truth.in_frame & ~truth.visible)
    assert len(vis) > 100 and len(occ) > 100  # a chair hides part of itself from any view

    for i, kind in ((int(vis[0]), "visible"), (int(occ[0]), "occluded")):
        window._on_point_picked(i)  # what a click on point i in the 3D view does
        marks = window.views.big.markers
        assert len(marks) == 1 and marks[0][2] == kind
        np.testing.assert_allclose(marks[0][:2], truth.uv[i], atol=1e-4)
        assert kind in window.statusBar().currentMessage()

    # a click on the visible point's pixel, through the widget, rings it (and only visible points) in 3D
    i = int(vis[len(vis) // 2])
    big = window.views.big
    pos = big.to_widget(*truth.uv[i])
    assert pos is not None
    with qtbot.waitSignal(window.views.pixelClicked, timeout=5000) as sig:
        qtbot.mouseClick(big, Qt.MouseButton.LeftButton, pos=QPoint(round(pos.x()), round(pos.y())))
    u, v = sig.args[1], sig.args[2]
    scale = truth.shape[1] / big.image_rect().width()
    assert abs(u - truth.uv[i][0]) <= scale and abs(v - truth.uv[i][1]) <= scale  # within one screen pixel
    seen = window.pixel_points
    d = np.hypot(truth.uv[:, 0] - u, truth.uv[:, 1] - v)
    np.testing.assert_array_equal(seen, np.flatnonzero(truth.visible & (d <= window.PIXEL_PROBE_RADIUS)))
    assert window.viewer.highlight is not None and len(window.viewer.highlight) == len(seen) > 0
    assert "visible" in window.statusBar().currentMessage()
    # another object forgets the links
    window.open_demo("table")
    qtbot.waitUntil(lambda: window.state.current is not doc, timeout=30_000)
    assert window.viewer.highlight is None and window.views.big.markers == []


def test_views_of_a_z_up_file_are_rendered_as_the_model_sees_it_and_look_from_matches(qtbot, window, shared_data):
    """A ModelNet OFF file is +Z up: its 2D views are rendered in the model's +Y-up frame (the object
    upright, as the image encoder gets it), the point <-> pixel links use that frame, and "look from
    here" puts the 3D camera (drawing the file's own frame) on the view's camera exactly."""
    from crosspoint.analysis.correspondence import as_pinhole, view_correspondence
    from crosspoint.render import render_views

    window.open_file(str(shared_data / "modelnet40_off" / "chair_0001.off"))
    qtbot.waitUntil(lambda: window.state.current is not None and window.viewer.has_frame, timeout=60_000)
    qtbot.waitUntil(lambda: window.views.image_count() > 0 and not window.views.rendering, timeout=60_000)
    doc = window.state.current
    assert doc.up_axis == 2 and doc.cloud.up_axis == 2
    model = doc.cloud.in_model_frame()
    n = window.views.n_views.value()
    expected = render_views(model.mesh, n, size=window.views.size_px, seed=0)
    for got, (img, _cam) in zip(window.views._views, expected):
        np.testing.assert_array_equal(got["rgba"], img)
    cam = window.views.current_camera()
    corr = window.view_correspondence()
    truth = view_correspondence(model.points, cam, mesh=model.mesh)
    np.testing.assert_array_equal(corr.visible, truth.visible)

    window.views._look_from()
    qtbot.wait(50)
    pin = as_pinhole(cam)
    c3 = window.viewer.renderer().camera()
    pts = doc.cloud.points[:200].astype(np.float64)
    uv3, _ = c3.project(pts)
    n3 = (uv3 - c3.intrinsic[:2, 2]) / c3.intrinsic[0, 0]
    pm = model.points[:200].astype(np.float64)
    pc = pm @ pin.extrinsic[:3, :3].T + pin.extrinsic[:3, 3]
    np.testing.assert_allclose(n3, pc[:, :2] / pc[:, 2:], atol=1e-9)

    # +Y chosen by hand: the views are rendered anew in the file's own frame
    old = window.views.current_view()[0]
    window.set_up_axis(1)
    qtbot.waitUntil(lambda: window.views.image_count() > 0 and not window.views.rendering
                    and window.views.current_view()[0] != old, timeout=60_000)
    raw = render_views(doc.cloud.mesh, n, size=window.views.size_px, seed=0)
    np.testing.assert_array_equal(window.views._views[0]["rgba"], raw[0][0])


def test_embedding_map_overlays_the_partial_scans(qtbot, window, ckpts, tmp_path):
    """'Overlay: its partial scans' maps the demo's scans with its objects (crosses in the class colours)
    and says how a linear SVM fit on the objects does on the scans."""
    from crosspoint.data.demo import generate_demo

    root = generate_demo(tmp_path / "d", preset="hard", per_class=4, n_points=256, n_views=1, size=32, workers=0,
                         classes=("chair", "mug", "car"), scans=True)
    _load(qtbot, window, ckpts["full"])
    ep = window.embedding_panel
    ep.set_source_folder(str(root))
    ep.overlay_source.setCurrentIndex(ep.overlay_source.findData("scans"))
    qtbot.mouseClick(ep.embed_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ep.embedding is not None and not ep.busy, timeout=240_000)
    ov = ep.overlay
    assert ov is not None and len(ov.embedding) == 12 and ov.coords.shape == (12, 2)
    assert sum(len(it.data) for it in ep.overlay_items) == 12
    assert {it.opts["symbol"] for it in ep.overlay_items} == {"x"}
    assert "overlay: 12 objects" in ep.status.text() and "SVM fit on the data scores" in ep.status.text()
    r = window.state.result(None, "embedding_map").value
    assert r["overlay"]["transfer_acc"] == ov.transfer_acc
    # a click on a cross opens that scan
    item = ep.overlay_items[0]
    with qtbot.waitSignal(ep.openRequested, timeout=5000) as sig:
        ep._on_overlay_clicked(item, [item.points()[0]])
    assert "scans" in sig.args[0]


def test_embedding_map_steps_through_a_runs_checkpoints(qtbot, window, ckpts, class_folder, tmp_path):
    """'Over training...' embeds the data with each checkpoint of a run folder and the random
    initialisation; the slider shows each aligned map with that epoch's SVM accuracy."""
    import shutil

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(ckpts["full"], run / "checkpoints" / "epoch_0005.pt")
    _load(qtbot, window, ckpts["full"])
    ep = window.embedding_panel
    ep.in_process = True
    ep.set_source_folder(str(class_folder))
    ep.run_training_maps(str(run))
    qtbot.waitUntil(lambda: ep.training_maps is not None and not ep.busy, timeout=240_000)
    tm = ep.training_maps
    assert tm.epochs == [0, 5] and ep.epoch_row.isVisible() and ep.epoch_slider.maximum() == 1
    assert "epoch 5" in ep.epoch_label.text() and "SVM by epoch" not in ep.epoch_label.text()
    np.testing.assert_array_equal(ep.coords, tm.coords[1])
    ep.epoch_slider.setValue(0)
    assert "random initialisation" in ep.epoch_label.text()
    np.testing.assert_array_equal(ep.coords, tm.coords[0])
    assert "SVM accuracy by epoch" in ep.status.text()


def test_orientation_check_turns_the_object_for_the_model_and_the_views(qtbot, window, ckpts, shared_data, monkeypatch):
    """Model > Check Orientation scores the 24 axis-aligned turns (the library's check; whether it finds
    the true up axis is measured in test_demo_checkpoint.py) and "Turn upright" makes its best turn one
    property of the object: the model's points, the 2D views (rendered anew), the "as the model sees
    it" drawing; results made before are removed, "Undo turn" goes back."""
    from crosspoint import analysis as A
    from crosspoint.render import render_views

    _load(qtbot, window, ckpts["full"])
    window.open_file(str(shared_data / "modelnet40_off" / "chair_0001.off"))
    qtbot.waitUntil(lambda: window.state.current is not None and window.viewer.has_frame, timeout=60_000)
    qtbot.waitUntil(lambda: window.views.image_count() > 0 and not window.views.rendering, timeout=60_000)
    doc = window.state.current
    mp = window.model_panel
    # upright references: this chair itself turned +Y up (+Z of the file) and a few noise features, so
    # that the +Z-up turns score best whatever the (random) weights
    upright = A.embed_clouds(mp.session, [doc.cloud.in_model_frame()], n_points=1024)
    refs = np.concatenate([upright, np.random.default_rng(0).standard_normal((3, upright.shape[1]))])
    window.set_up_axis(1)  # wrong by hand: the chair lies for the model
    qtbot.waitUntil(lambda: window.views.image_count() > 0 and not window.views.rendering, timeout=60_000)
    real = A.check_orientation
    monkeypatch.setattr(A, "check_orientation", lambda s, c, reference=None, **kw: real(s, c, refs, k=1, **kw))
    mp.run_orientation_check()
    qtbot.waitUntil(lambda: not mp.busy, timeout=60_000)
    r = window.state.result(doc, "orientation")
    assert r is not None, window.action_errors
    check = r.value["check"]
    assert A.up_direction(check.rotations[check.best]) == "+Z" and not check.is_current_best
    assert "+Z axis up" in mp.orient_note.text() and mp.orient_apply.isEnabled()

    window.state.set_result(doc, "embedding", {"feature": np.ones(4), "projection": np.ones(4)})  # an earlier result
    old_view = window.views.current_view()[0]
    mp.orient_apply.click()
    assert doc.cloud.rotation is not None and np.array_equal(doc.cloud.model_matrix()[1], [0.0, 0.0, 1.0])
    assert "turned" in mp.orient_note.text() and not mp.orient_apply.isEnabled() and mp.orient_reset.isEnabled()
    assert window.state.result(doc, "embedding") is None
    qtbot.waitUntil(lambda: window.views.image_count() > 0 and not window.views.rendering
                    and window.views.current_view()[0] != old_view, timeout=60_000)
    model = doc.cloud.in_model_frame()
    expected = render_views(model.mesh, window.views.n_views.value(), size=window.views.size_px, seed=0)
    np.testing.assert_array_equal(window.views._views[0]["rgba"], expected[0][0])
    corr = window.view_correspondence()
    assert corr is not None and corr.n == doc.cloud.n_points

    # the 3D view as the model sees it: the same points, turned; and back to the file's frame
    window.model_frame_action.setChecked(True)
    assert window.model_frame and np.array_equal(window.viewer._points, model.points)
    assert window.viewer._up_axis == 1
    window.model_frame_action.setChecked(False)
    assert np.array_equal(window.viewer._points, doc.cloud.points)

    mp.orient_reset.click()
    assert doc.cloud.rotation is None and window.state.result(doc, "orientation") is None


def test_part_evidence_bar_chart_and_colours(qtbot, window, ckpts):
    """Model > Part Evidence: per part of the file's labels, the similarity drops by occlusion in 3D and
    2D (the library's part_occlusion, same call, same numbers), drawn as a bar chart with the random-blob
    baseline, and as colours on the points and the view; a new view marks it stale."""
    from crosspoint import analysis as A
    from explorer.workers import run_job

    _load(qtbot, window, ckpts["full"])
    _open_demo(qtbot, window, "chair")
    qtbot.waitUntil(lambda: not window.views.rendering, timeout=60_000)
    doc, mp = window.state.current, window.model_panel
    assert doc.label_array() is not None
    mp.run_part_evidence()
    qtbot.waitUntil(lambda: not mp.busy, timeout=120_000)
    r = window.state.result(doc, "part_evidence")
    assert r is not None, window.action_errors
    ev = r.value["evidence"]
    model = doc.cloud.in_model_frame()
    args = (mp.session, model.points, window.views.current_image(), window.views.current_camera(),
            doc.label_array())
    box = {}
    # the same call through the app's own worker pool; the answer does not depend on the thread or on
    # what the session computed before (part_occlusion embeds the view on its own, cached or not), so
    # the check is exact
    run_job(lambda progress, cancel: A.part_occlusion(*args, names=doc.label_names(), mesh=model.mesh),
            name="want", on_result=lambda r: box.setdefault("want", r))
    qtbot.waitUntil(lambda: "want" in box, timeout=120_000)
    again = A.part_occlusion(*args, names=doc.label_names(), mesh=model.mesh)  # this thread, cached view
    want = box["want"]
    np.testing.assert_array_equal(ev.labels, want.labels)
    np.testing.assert_array_equal(ev.pixels_2d, want.pixels_2d)
    for a in ("drop_3d", "drop_2d", "blob_3d", "blob_2d"):
        np.testing.assert_array_equal(getattr(ev, a), getattr(want, a))
        np.testing.assert_array_equal(getattr(again, a), getattr(want, a))
    assert len(ev.labels) == 3 and mp.evidence_plot.isVisible()
    bars = [it for it in mp.evidence_plot.getPlotItem().items if type(it).__name__ == "BarGraphItem"]
    assert len(bars) == 2
    np.testing.assert_array_equal(bars[0].opts["height"], np.nan_to_num(ev.drop_3d, nan=0.0))
    assert "Most important part: 3D" in mp.evidence_note.text() and "random blob" in mp.evidence_note.text()
    # colours: every point of a part carries its part's (non-negative) 3D drop
    heat = doc.heatmap()
    lab = doc.label_array()
    for k, p in enumerate(ev.labels):
        assert np.all(heat[lab == p] == np.float32(max(ev.drop_3d[k], 0.0)))
    assert doc.color_mode == "heatmap" and window.views._overlay is not None
    # another view: the evidence is for the old one
    window.views.thumbs.setCurrentRow(1)
    qtbot.waitUntil(lambda: "STALE" in mp.evidence_note.text(), timeout=5_000)


def test_segmentation_beside_random_weights_and_xyz_kmeans(qtbot, window, ckpts):
    """"Compare with random weights": the segmentation comes with part discovery by this checkpoint's
    features, by a random-weight encoder's, and k-means on xyz alone, each scored against the file's
    labels (matched mIoU), and drawn side by side from the selected view."""
    from crosspoint import analysis as A
    from crosspoint.analysis.segment import cluster_parts

    _load(qtbot, window, ckpts["seg"])
    _open_demo(qtbot, window, "chair")
    qtbot.waitUntil(lambda: not window.views.rendering, timeout=60_000)
    doc, mp = window.state.current, window.model_panel
    mp.compare_seg.setChecked(True)
    mp.run_segmentation()
    qtbot.waitUntil(lambda: not mp.busy, timeout=120_000)
    seg = window.state.result(doc, "segmentation")
    assert seg is not None, window.action_errors
    cmp = seg.value["baselines"]
    gt = doc.label_array()
    assert cmp["k"] == len(np.unique(gt)) == 3
    names = [r["name"] for r in cmp["rows"]]
    assert names == ["part discovery, this checkpoint", "part discovery, random weights", "k-means on xyz alone"]
    for r in cmp["rows"]:
        assert r["labels"].shape == gt.shape and 0.0 <= r["miou"] <= 1.0
        assert r["miou"] == A.matched_miou(r["labels"], gt)
    # the xyz baseline does not depend on any model: the same k-means on the same prepared points
    prep = A.prepare_points(doc.cloud, mp.session.points_for(None), 0)
    base, _ = cluster_parts(np.zeros((prep.n, 1)), prep.points, 3, xyz_weight=1.0, seed=0)
    assert np.array_equal(cmp["rows"][2]["labels"][prep.index], base)
    assert len(cmp["images"]) == 3 and all(img.shape[:2] == (150, 150) for _, img in cmp["images"])
    assert mp.compare_image.isVisible() and mp.compare_image.pixmap().width() == 450
    assert "random weights" in mp.compare_text.text()


def test_dense_similarity_on_click_with_this_views_figures(qtbot, window):
    """"Dense similarity on click" with the demo checkpoint (it has dense heads): clicking a visible point
    overlays its similarity over the view, marks the peak beside the true pixel and says how far apart
    they are; clicking a pixel colours the points by their similarity to it, with that pixel's AUC;
    the note gives this view's hit rate and AUC (dense_readouts, the eval's measure)."""
    from crosspoint.analysis.correspondence import EVAL_SIZE

    mp, doc = _dense_on_demo(qtbot, window, "chair")
    key, ds, f = mp._dense
    assert ds.method == "dense heads" and 0 <= f["point_to_pixel_hit"] <= 1 and f["tested"] > 0
    assert f"{100 * f['point_to_pixel_hit']:.0f} %" in mp.dense_note.text() and "AUC" in mp.dense_note.text()
    # where the peaks land: within 16 px, and (the demo file has part labels) the misses' parts
    assert f["point_to_pixel_hit"] <= f["point_to_pixel_hit_2r"] <= 1 and "within 16 px" in mp.dense_note.text()
    assert doc.cloud.labels is not None and 0 <= f["misses_on_own_part"] <= 1
    assert f"own part (the file's labels) for {100 * f['misses_on_own_part']:.0f} %" in mp.dense_note.text()
    # the demo object is a mesh: its symmetries are known, and the note names a rotational one
    assert f["symmetry"] is not None and f["point_to_pixel_hit"] <= f["point_to_pixel_hit_sym"] \
        <= f["point_to_pixel_hit_twin"] <= 1 and 0 < f["point_to_pixel_hit_ceiling"] <= 1
    assert ("ceiling" in mp.dense_note.text()) == (f["symmetry_rotations"] > 0)
    corr = window.view_correspondence()
    i = int(ds.prepared.index[np.flatnonzero(corr.visible[ds.prepared.index])[0]])  # a visible input point
    window._on_point_picked(i)
    qtbot.waitUntil(lambda: "peaks" in window.statusBar().currentMessage(), timeout=10_000)
    assert window.views._overlay is not None and "dense similarity" in window.views._overlay_label
    marks = window.views.big.markers
    assert [m[2] for m in marks] == ["dense", "visible"]
    (du, dv, _), (tu, tv, _) = marks
    H, W = corr.shape
    d = np.hypot((du - tu) * EVAL_SIZE / W, (dv - tv) * EVAL_SIZE / H)
    assert f"peaks {d:.0f} px" in window.statusBar().currentMessage()
    u, v = corr.uv[i]
    window._on_pixel_clicked(window.views.current_index, float(u), float(v))
    qtbot.waitUntil(lambda: "AUC" in window.statusBar().currentMessage(), timeout=10_000)
    hm = window.state.result(doc, "heatmap")
    assert hm is not None and hm.value["title"].startswith("dense similarity to pixel")
    assert hm.value["values"].shape == (doc.cloud.n_points,) and doc.color_mode == "heatmap"


def test_dense_peak_on_a_rotated_twin_is_called_so(qtbot, window):
    """On the demo table (two-fold: a half-turned camera sees the same picture) some points' peaks
    land on their half-turn twin; the status says so, and only where symmetric_twin_at agrees."""
    from crosspoint.analysis.correspondence import symmetric_twin_at

    mp, doc = _dense_on_demo(qtbot, window, "table")
    key0, ds, f = mp._dense
    assert f["symmetry_rotations"] >= 1 and "rotation 180" in ds.symmetries.names
    assert "ceiling" in mp.dense_note.text()
    corr = window.view_correspondence()
    vis = np.flatnonzero(corr.visible[ds.prepared.index])
    seen = {"twin": 0, "plain": 0}
    for k in range(0, vis.size, 3):
        i = int(ds.prepared.index[vis[k]])
        window.statusBar().clearMessage()
        window._on_point_picked(i)
        qtbot.waitUntil(lambda: "peaks" in window.statusBar().currentMessage(), timeout=10_000)
        msg = window.statusBar().currentMessage()
        (du, dv, _), _true = window.views.big.markers
        expect = None if "a hit" in msg else symmetric_twin_at(ds.symmetries, doc.cloud.model_points()[i], corr, (du, dv))
        assert ("twin under the object's" in msg) == (expect is not None), msg
        seen["twin" if expect else "plain"] += 1
        if seen["twin"] and seen["plain"]:
            break
    assert seen["twin"] >= 1 and seen["plain"] >= 1
    # another view of the same object: new figures, the same symmetries (found once per object)
    window.views.thumbs.setCurrentRow(1)
    mp.ensure_dense()
    qtbot.waitUntil(lambda: mp._dense is not None and mp._dense[0] != key0 and not mp.busy, timeout=120_000)
    assert mp._dense[1].symmetries is ds.symmetries


def test_embedding_map_of_the_sensor_like_demo(qtbot, window, ckpts):
    """'Demo, held-out objects, sensor-like points' maps the ``demo-sensor`` dataset: the held-out seed
    with :data:`~crosspoint.data.demo.SENSOR`, generated into its own cache folder (here a small one made
    beforehand in that folder, which the map then finds complete)."""
    from crosspoint.data.demo import SENSOR, generate_demo, keyword_demo_dir

    root = keyword_demo_dir("demo-sensor")
    generate_demo(root, preset="hard", seed=1, per_class=3, n_views=1, size=32, n_points=512, scans=False,
                  classes=["chair", "mug", "bottle"], workers=0, nuisance=SENSOR)
    _load(qtbot, window, ckpts["full"])
    window.embedding_dock.raise_()
    ep = window.embedding_panel
    ep.in_process = True
    ep.source.setCurrentIndex(ep.source.findData("demo-sensor"))
    assert "sensor" in ep.source.currentText()
    assert window.state.settings("embedding_map")["source"] == "demo-sensor"
    qtbot.mouseClick(ep.embed_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ep.embedding is not None and not ep.busy, timeout=240_000)
    assert len(ep.embedding) == 9 and Path(ep.source_root) == root
    assert {Path(str(r)).parent.parent.parent for r in ep.embedding.refs} == {root}


def test_a_comparison_on_the_plain_demo_points_to_the_sensor_like_one(qtbot, window, ckpts):
    """On clean demo samples random weights are a strong baseline (the model card: 89.6 % against 93.8 %): a
    comparison on "Demo dataset" says where the difference is worth looking at instead."""
    from crosspoint.data.demo import generate_demo, keyword_demo_dir
    from explorer.embedding import CLEAN_DEMO_HINT

    generate_demo(keyword_demo_dir("demo"), preset="hard", seed=0, per_class=3, n_views=1, size=32, n_points=512,
                  scans=False, classes=["chair", "mug", "bottle"], workers=0)
    _load(qtbot, window, ckpts["full"])
    ep = window.embedding_panel
    ep.in_process = True
    ep.source.setCurrentIndex(ep.source.findData("demo"))
    ep.compare.setChecked(True)
    qtbot.mouseClick(ep.embed_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ep.embedding is not None and not ep.busy, timeout=240_000)
    assert ep.baseline is not None and len(ep.embedding) == 9
    assert CLEAN_DEMO_HINT in ep.status.text() and "sensor-like points" in ep.source.itemText(1)
