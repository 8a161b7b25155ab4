"""The explorer's state without a display: every result is tied to the object, view, checkpoint and
settings it was computed for, and says when it is stale (explorer.state, Qt-free, psygnal); the
segmentation comparison (explorer.segcompare) and the export's second label column (explorer.export).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crosspoint.pointcloud import PointCloud
from explorer.state import AppState, Document, RunProgress

REPO = Path(__file__).resolve().parents[1]


def _doc(n=50, labels=None, colors=None, name="obj") -> Document:
    rng = np.random.default_rng(0)
    return Document(PointCloud(rng.normal(size=(n, 3)).astype(np.float32), labels=labels, colors=colors), name)


class Recorder:
    def __init__(self, state: AppState):
        self.events = []
        state.resultChanged.connect(lambda doc, kind: self.events.append(("result", kind)))
        state.contextChanged.connect(lambda: self.events.append(("context",)))
        state.documentUpdated.connect(lambda doc: self.events.append(("updated", doc.key)))
        state.message.connect(lambda m: self.events.append(("message", m)))


def test_the_state_and_its_helpers_import_without_qt():
    code = ("import sys\nimport explorer.state, explorer.segcompare, explorer.export\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PyQt6', 'pyqtgraph', 'superqt'))\n"
            "print(bad)\nsys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_heatmap_is_stale_on_another_view_and_current_again_on_its_own():
    st = AppState()
    doc = _doc()
    st.add(doc)
    st.set_checkpoint("ck1", "demo checkpoint")
    st.set_settings("heatmap", method="gradcam")
    st.set_view(doc, "obj/render 6/0", "view 00")
    rec = Recorder(st)
    prov = st.provenance("heatmap", doc)  # captured when the job starts
    st.set_result(doc, "heatmap", {"values": np.linspace(0, 1, 50)}, prov, color_mode="heatmap")
    assert ("result", "heatmap") in rec.events and ("updated", doc.key) in rec.events
    assert doc.color_mode == "heatmap" and st.fresh(doc, "heatmap") is not None
    assert st.stale_reason(doc, "heatmap") == ""

    st.set_view(doc, "obj/render 6/1", "view 01")
    assert ("context",) in rec.events
    reason = st.stale_reason(doc, "heatmap")
    assert "view 00" in reason and "view 01" in reason and st.fresh(doc, "heatmap") is None
    assert st.result(doc, "heatmap") is not None  # kept, marked: the widgets decide how to show it
    st.set_view(doc, "obj/render 6/0", "view 00")
    assert not st.is_stale(doc, "heatmap")


def test_a_view_changed_while_the_job_ran_makes_its_result_stale_at_once():
    st = AppState()
    doc = _doc()
    st.add(doc)
    st.set_view(doc, "v0", "view 00")
    prov = st.provenance("image_heatmap", doc)
    st.set_view(doc, "v1", "view 01")  # the user picks another view before the job returns
    st.set_result(doc, "image_heatmap", {"values": np.zeros((4, 4))}, prov)
    assert st.is_stale(doc, "image_heatmap") and st.fresh(doc, "image_heatmap") is None


def test_another_checkpoint_or_other_settings_make_results_stale():
    st = AppState()
    doc = _doc(labels=np.zeros(50, np.int64))
    st.add(doc)
    st.set_checkpoint("ck1", "a.pt")
    st.set_settings("segmentation", category="chair")
    st.set_result(doc, "segmentation", {"labels": np.zeros(50, np.int64), "names": {0: "seat"}})
    st.set_result(doc, "embedding", {"feature": np.ones(4), "projection": np.ones(2)})
    assert not st.is_stale(doc, "segmentation") and not st.is_stale(doc, "embedding")
    st.set_settings("segmentation", category="table")
    assert "category chair" in st.stale_reason(doc, "segmentation") and "table" in st.stale_reason(doc, "segmentation")
    st.set_settings("segmentation", category="chair")
    st.set_checkpoint("ck2", "b.pt")
    for kind in ("segmentation", "embedding"):
        reason = st.stale_reason(doc, kind)
        assert "a.pt" in reason and "b.pt" in reason, reason


def test_retrieval_is_stale_when_the_open_objects_or_the_current_object_change():
    st = AppState()
    a, b = _doc(name="a"), _doc(name="b")
    st.add(a)
    st.add(b)
    st.set_current(0)
    st.set_checkpoint("ck", "ck.pt")
    st.set_view(a, "a/v0", "view 00")
    st.set_result(None, "retrieval", {"hits": [(a.key, "a", 0.9), (b.key, "b", 0.1)]})
    assert not st.is_stale(None, "retrieval")
    st.set_current(1)
    assert "a view of a" in st.stale_reason(None, "retrieval")
    st.set_current(0)
    assert not st.is_stale(None, "retrieval")
    st.add(_doc(name="c"), make_current=False)
    assert "open objects changed" in st.stale_reason(None, "retrieval")
    with pytest.raises(ValueError):
        st.set_result(None, "heatmap", {"values": np.zeros(3)})


def test_results_are_read_only_for_widgets_and_removing_one_restores_a_colour_mode():
    st = AppState()
    doc = _doc(labels=(np.arange(50) % 2).astype(np.int64))
    st.add(doc)
    with pytest.raises(TypeError):
        doc.results["segmentation"] = {}  # only the state writes results
    st.set_result(doc, "segmentation", {"labels": np.ones(50, np.int64), "names": {1: "b"}}, color_mode="prediction")
    assert doc.color_mode == "prediction" and "prediction" in st.available_modes(doc)
    st.clear_result(doc, "segmentation")
    assert "segmentation" not in doc.results and doc.color_mode == "labels"


def test_a_colour_mode_the_object_has_no_data_for_is_refused_with_a_message():
    st = AppState()
    doc = _doc()  # no colours, no labels
    st.add(doc)
    rec = Recorder(st)
    doc.color_mode = "height"
    assert st.set_color_mode("rgb") is False
    assert doc.color_mode == "height" and any(e[0] == "message" and "RGB" in e[1] for e in rec.events)
    assert st.set_color_mode("uniform") is True and doc.color_mode == "uniform"


def test_documents_opened_together_keep_their_order_whatever_order_they_load_in():
    st = AppState()
    docs = [Document(PointCloud(np.zeros((3, 3), np.float32)), f"f{i}", order=(1, i)) for i in range(4)]
    for i in (2, 0, 3, 1):  # load-completion order
        st.add(docs[i], make_current=(i == 2))
    assert [d.source for d in st.documents] == ["f0", "f1", "f2", "f3"]
    assert st.current is docs[2]  # the current object stays the same object while others arrive
    later = Document(PointCloud(np.zeros((3, 3), np.float32)), "g", order=(2, 0))
    st.add(later)
    assert st.documents[-1] is later


def test_the_training_eta_is_shown_only_while_the_run_is_live():
    rp = RunProgress()
    seen = []
    rp.changed.connect(lambda: seen.append(rp.text()))
    rp.set_status("running")
    rp.set_step(1, 40, 0.4, 353)
    assert rp.text() == "epoch 2  step 40  40%  ETA 5:53"
    rp.set_status("stopped")
    assert "ETA" not in rp.text() and "stopped" in rp.text()
    rp.set_status("watching")
    assert "ETA" not in rp.text() and "not running" in rp.text()
    assert seen and "ETA 5:53" in seen[1]


# -- the segmentation comparison ---------------------------------------------------------------------
def _seg_result(local, part_ids=None, source="head", category="chair", confidence=None):
    from crosspoint.analysis import SegmentationResult

    names = {i: f"p{i}" for i in range(int(np.max(local)) + 1 if part_ids is None else len(part_ids))}
    return SegmentationResult(labels=np.asarray(local, np.int64), names=names, source=source,
                              confidence=confidence, category=category, category_source="inferred",
                              part_ids=None if part_ids is None else np.asarray(part_ids, np.int64))


def _iou(p, g, part):
    inter, union = np.sum((p == part) & (g == part)), np.sum((p == part) | (g == part))
    return 1.0 if union == 0 else inter / union


def test_prediction_vs_the_files_labels_per_part_iou_errors_and_uncertainty():
    from explorer.segcompare import describe, segmentation_value

    rng = np.random.default_rng(1)
    parts = [4, 5, 6]  # the category's global part ids (the demo's table)
    gt = rng.choice([4, 5], size=300)  # part 6 is in neither
    local = np.where(rng.random(300) < 0.8, gt - 4, rng.integers(0, 2, 300))
    conf = rng.uniform(0.3, 1.0, 300).astype(np.float32)
    v = segmentation_value(_seg_result(local, parts, category="table", confidence=conf), gt)
    pred = v["labels"]
    assert set(np.unique(pred)) <= {4, 5} and np.array_equal(pred, local + 4)  # global ids, like the file's
    assert v["names"] == {4: "p0", 5: "p1", 6: "p2"}
    np.testing.assert_allclose(v["uncertainty"], 1 - conf, rtol=1e-6)
    cmp = v["comparison"]
    assert np.array_equal(cmp["errors"], (pred != gt).astype(np.int8))
    ious = {pid: iou for pid, _, iou, _, _ in cmp["parts"]}
    for part in parts:
        assert ious[part] == pytest.approx(_iou(pred, gt, part))
    assert ious[6] == 1.0  # in neither: counts 1, as crosspoint.evaluation.partseg does
    assert cmp["miou"] == pytest.approx(np.mean([_iou(pred, gt, p) for p in parts]))
    assert cmp["accuracy"] == pytest.approx(np.mean(pred == gt))
    text = describe(cmp)
    assert f"mIoU {cmp['miou']:.3f}" in text and "p2: IoU 1.000 (in neither" in text

    # a file numbering the category's parts 0..K-1 is read as those parts
    local_gt = gt - 4
    cmp2 = segmentation_value(_seg_result(local, parts, category="table"), local_gt)["comparison"]
    assert cmp2["miou"] == pytest.approx(cmp["miou"]) and "0..2" in cmp2["note"]
    # points without a label (-1) are not compared
    gt3 = gt.copy()
    gt3[:10] = -1
    cmp3 = segmentation_value(_seg_result(local, parts, category="table"), gt3)["comparison"]
    assert (cmp3["errors"][:10] == -1).all() and cmp3["n_compared"] == 290
    # labels of another category: not compared, and the note says why
    cmp4 = segmentation_value(_seg_result(local, parts, category="table"), np.full(300, 20))["comparison"]
    assert cmp4["errors"] is None and "not parts of table" in cmp4["note"]
    # no labels in the file: nothing to compare
    assert segmentation_value(_seg_result(local, parts), None)["comparison"] is None


def test_clusters_are_compared_after_matching_them_to_parts():
    from explorer.segcompare import segmentation_value

    gt = np.repeat([7, 8, 9], 40)
    clusters = np.repeat([2, 0, 1], 40)  # a perfect segmentation with other numbers
    v = segmentation_value(_seg_result(clusters, None, source="clusters", category=None), gt)
    assert v["comparison"]["miou"] == pytest.approx(1.0) and v["comparison"]["errors"] is None
    assert "Hungarian" in v["comparison"]["note"]


def test_export_adds_the_prediction_beside_the_files_labels(tmp_path):
    import plyfile

    from crosspoint.io import read_point_cloud, write_point_cloud
    from explorer.export import add_columns

    rng = np.random.default_rng(0)
    cloud = PointCloud(rng.normal(size=(20, 3)).astype(np.float32), labels=np.arange(20) % 3,
                       colors=rng.uniform(size=(20, 3)).astype(np.float32))
    pred = (np.arange(20) + 1) % 3
    unc = rng.uniform(size=20).astype(np.float32)
    for ext in (".ply", ".npz"):
        path = tmp_path / f"out{ext}"
        write_point_cloud(path, cloud)
        note = add_columns(path, pred, unc)
        assert "pred" in note
        back = read_point_cloud(path)
        np.testing.assert_array_equal(back.labels, cloud.labels)  # the file's labels stay `label(s)`
        np.testing.assert_allclose(back.colors, cloud.colors, atol=1 / 255)
        if ext == ".ply":
            v = plyfile.PlyData.read(str(path))["vertex"]
            np.testing.assert_array_equal(np.asarray(v["pred_label"]), pred)
            np.testing.assert_allclose(np.asarray(v["pred_uncertainty"]), unc)
        else:
            with np.load(path) as z:
                np.testing.assert_array_equal(z["pred_labels"], pred)
                np.testing.assert_allclose(z["pred_uncertainty"], unc)
    path = tmp_path / "out.pcd"
    write_point_cloud(path, cloud)
    assert "one label column" in add_columns(path, pred)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_the_up_axis_is_one_property_of_the_object_and_drops_results_of_the_other_orientation():
    import numpy as np

    from crosspoint.pointcloud import PointCloud
    from explorer.state import AppState, Document

    state = AppState()
    cloud = PointCloud(np.random.default_rng(0).standard_normal((20, 3)), source_format="off", up_axis=2)
    doc = Document(cloud, "x.off", up_axis=cloud.up_axis)
    state.add(doc)
    state.set_result(doc, "segmentation", {"labels": np.zeros(20, np.int64), "names": {0: "part"}})
    assert "segmentation" in doc.results
    state.set_up_axis(doc, 1)
    assert doc.up_axis == cloud.up_axis == 1 and "segmentation" not in doc.results
    assert np.array_equal(cloud.model_points(), cloud.points)
