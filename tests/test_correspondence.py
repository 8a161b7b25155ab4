"""3D-2D correspondence (crosspoint.analysis.correspondence): exact geometry against analytic
answers and the renderer itself, the occlusion evidence with its baselines, the dense similarity
(with the projection heads and with plugged-in dense heads), the Grad-CAM readouts."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from crosspoint import analysis as A
from crosspoint.analysis.correspondence import (
    DepthBuffers, PinholeCamera, depth_buffer, mask_image, point_in_views, random_blob, view_correspondence,
)
from crosspoint.pointcloud import Mesh
from crosspoint.render import Camera, render_mesh, render_points, render_views

torch.set_num_threads(2)


# ------------------------------------------------------------------------------ geometry fixtures
def _cube(half: float = 0.5) -> Mesh:
    v = np.array([[x, y, z] for x in (-half, half) for y in (-half, half) for z in (-half, half)], np.float32)
    # two triangles per face, indices into v (x major, then y, then z)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = []
    for a, b, c, d in quads:
        faces += [(a, b, c), (a, c, d)]
    return Mesh(v, np.asarray(faces, np.int64))


def _cube_points(n_per_face: int, half: float = 0.5, seed: int = 0):
    """Points on the cube's six faces and each one's outward normal."""
    rng = np.random.default_rng(seed)
    pts, nrm = [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            p = rng.uniform(-half, half, size=(n_per_face, 3))
            p[:, axis] = sign * half
            n = np.zeros((n_per_face, 3))
            n[:, axis] = sign
            pts.append(p)
            nrm.append(n)
    return np.concatenate(pts), np.concatenate(nrm)


def _edge_distance(p: np.ndarray, half: float = 0.5) -> np.ndarray:
    """Distance of face points to the nearest cube edge (within the face)."""
    on = np.isclose(np.abs(p), half)
    d = np.where(on, np.inf, half - np.abs(p))
    return d.min(axis=1)


def _look_at(eye, target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0)):
    """OpenCV R, t (x right, y down, z forward) of a camera at ``eye`` looking at ``target``."""
    eye = np.asarray(eye, np.float64)
    f = np.asarray(target, np.float64) - eye
    f /= np.linalg.norm(f)
    r = np.cross(f, up)
    r /= np.linalg.norm(r)
    d = np.cross(f, r)
    R = np.stack([r, d, f])
    return R, -R @ eye


CAM = Camera(azimuth=35.0, elevation=25.0, distance=4.0, size=128)


# ------------------------------------------------------------------------------ exact geometry
def test_cube_visible_faces_are_the_analytic_ones():
    mesh = _cube()
    pts, nrm = _cube_points(400)
    eye = CAM.position()
    analytic = np.sum(nrm * (eye - pts), axis=1) > 0  # convex: a face point is seen iff its face faces the eye
    v = view_correspondence(pts, CAM, mesh=mesh)
    assert v.in_frame.all() and v.buffer_source == "mesh"
    away = _edge_distance(pts) > 0.02  # points within 2 % of the side of a silhouette edge are ambiguous
    assert away.mean() > 0.85
    np.testing.assert_array_equal(v.visible[away], analytic[away])
    # three faces face this camera: half the points
    assert abs(analytic.mean() - 0.5) < 1e-9
    # the tolerance is the documented formula: slope * (0 + sqrt(0.5) / 2) * z / f
    np.testing.assert_allclose(v.tolerance, A.correspondence.VISIBILITY_SLOPE * math.sqrt(0.5) / 2 * v.depth
                               / CAM.focal_px(), rtol=1e-5)


def test_dropped_in_camera_from_opencv_intrinsics_and_extrinsics():
    """A camera the renderer never made: non-square image, OpenCV K (integer pixel centres), R, t."""
    mesh = _cube()
    pts, nrm = _cube_points(300, seed=1)
    eye = np.array([2.5, 1.8, -3.0])
    R, t = _look_at(eye)
    K = np.array([[250.0, 0.0, 79.5], [0.0, 260.0, 59.5], [0.0, 0.0, 1.0]])
    cam = PinholeCamera.from_opencv(K, R, t, 160, 120)
    # projection: p_cam = R p + t, (u, v) = K p_cam / z + 0.5 (our pixel centres are at +0.5)
    pc = pts @ R.T + t
    uv_ref = (pc @ K.T)[:, :2] / pc[:, 2:3] + 0.5
    v = view_correspondence(pts, cam, mesh=mesh)
    np.testing.assert_allclose(v.uv, uv_ref, atol=1e-4)
    assert v.shape == (120, 160)
    analytic = np.sum(nrm * (eye - pts), axis=1) > 0
    away = _edge_distance(pts) > 0.02
    ok = away & v.in_frame
    assert ok.mean() > 0.8
    np.testing.assert_array_equal(v.visible[ok], analytic[ok])
    # the same camera as a dict, and unprojection inverts projection
    v2 = view_correspondence(pts, {"K": cam.K, "R": R, "t": t, "width": 160, "height": 120}, mesh=mesh)
    np.testing.assert_array_equal(v2.visible, v.visible)
    back = cam.unproject(v.uv.astype(np.float64), v.depth.astype(np.float64))
    np.testing.assert_allclose(back, pts, atol=1e-4)


def test_plane_hides_what_is_behind_it():
    """A square plane between the camera and three points: the one behind it is occluded, the one
    in front and the one beside it are seen."""
    eye = CAM.position()
    fwd = -eye / np.linalg.norm(eye)
    R = PinholeCamera.from_camera(CAM).extrinsic[:3, :3]
    right, down = R[0], R[1]
    c = 0.3 * fwd * -1.0  # plane centre a little towards the camera from the origin
    s = 0.4
    verts = np.array([c + a * s * right + b * s * down for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))], np.float32)
    plane = Mesh(verts, np.array([[0, 1, 2], [0, 2, 3]]))
    behind = c + 0.5 * fwd
    in_front = c - 0.5 * fwd
    beside = c + 0.8 * right + 0.5 * fwd
    v = view_correspondence(np.stack([behind, in_front, beside]), CAM, mesh=plane)
    assert v.in_frame.all()
    assert v.visible.tolist() == [False, True, True]


def test_a_point_hidden_behind_another_point():
    """Splat buffer: two points on one ray; the farther one is occluded; a lone point is seen."""
    eye = CAM.position()
    d = -eye / np.linalg.norm(eye)
    near, far = eye + 3.5 * d, eye + 4.5 * d
    R = PinholeCamera.from_camera(CAM).extrinsic[:3, :3]
    lone = eye + 4.0 * d + 0.6 * R[0]
    v = view_correspondence(np.stack([near, far, lone]), CAM)
    assert v.buffer_source == "points" and v.index_buffer is not None
    assert v.visible.tolist() == [True, False, True]
    np.testing.assert_allclose(v.uv[0], v.uv[1], atol=1e-3)
    # the buffer's splat there is the near point's
    r, c = v.pixel[1]
    assert v.index_buffer[r, c] == 0
    assert v.seen_points([(c + 0.5, r + 0.5)]).tolist() == [0]


def test_buffers_are_the_renderers_own():
    """depth_buffer() reproduces render_mesh / render_points(return_buffers=True) exactly, through the
    renderer's camera and through a PinholeCamera built from it."""
    from crosspoint.data.synthetic import demo_object

    obj = demo_object("chair", 3, n_points=800)
    cam = Camera(azimuth=120.0, elevation=28.0, distance=4.85, size=96)
    _, ref = render_mesh(obj.mesh, cam, return_buffers=True)
    for c in (cam, PinholeCamera.from_camera(cam)):
        db = depth_buffer(c, mesh=obj.mesh)
        assert isinstance(db, DepthBuffers) and db.ss == 2 and db.samples.shape == (192, 192)
        np.testing.assert_array_equal(db.depth, ref["depth"])
    _, refp = render_points(obj.points, cam, return_buffers=True)
    for c in (cam, PinholeCamera.from_camera(cam)):
        db = depth_buffer(c, points=obj.points)
        np.testing.assert_array_equal(db.depth, refp["depth"])
        np.testing.assert_array_equal(db.index, refp["point_index"])


def test_projection_agrees_with_the_rendered_image():
    """Each point rendered alone as an anti-aliased splat: the alpha-weighted centre of what the
    renderer drew is within 0.5 px of the projection we report (for both camera paths)."""
    rng = np.random.default_rng(0)
    pts = rng.uniform(-0.7, 0.7, size=(25, 3))
    cam = Camera(azimuth=10.0, elevation=30.0, distance=4.85, size=137)
    for c in (cam, PinholeCamera.from_camera(cam)):
        v = view_correspondence(pts, c)
        ys, xs = np.mgrid[0:137, 0:137]
        for i, p in enumerate(pts):
            img = render_points(p[None], cam, point_radius_px=3.0)
            a = img[..., 3].astype(np.float64)
            centre = np.array([(a * (xs + 0.5)).sum() / a.sum(), (a * (ys + 0.5)).sum() / a.sum()])
            assert np.linalg.norm(centre - v.uv[i]) < 0.5
            r, col = v.pixel[i]
            assert a[r, col] > 0  # the point's own pixel is drawn


def test_pixels_to_points_to_pixels_round_trip():
    from crosspoint.data.synthetic import demo_object

    obj = demo_object("table", 2, n_points=1500)
    (img, cam), = render_views(obj.mesh, 1, size=137, seed=4, normalize=False)
    v = view_correspondence(obj.points, cam, mesh=obj.mesh)
    vis = np.nonzero(v.visible)[0]
    assert 0.2 < vis.size / v.n < 0.8
    rc = v.pixel
    for i in vis[:: max(1, vis.size // 60)]:
        r, c = rc[i]
        got = v.points_in_pixels([(c + 0.5, r + 0.5)])
        assert i in got
        assert (rc[got] == [r, c]).all()  # every point returned projects into that pixel
        # and the same with a boolean mask brush
        m = np.zeros(v.shape, bool)
        m[r, c] = True
        np.testing.assert_array_equal(v.points_in_pixels(m), got)
        assert v.pixel_mask([i]).sum() >= 0
    # a brush over the whole image returns every visible point, and nothing occluded
    everything = v.points_in_pixels(np.ones(v.shape, bool))
    np.testing.assert_array_equal(everything, vis)
    assert v.points_in_pixels(np.ones(v.shape, bool), include_occluded=True).size == v.in_frame.sum()
    # what the pixels show: every object pixel shows a visible point; masks of all points = the object
    own = v.owner
    obj_px = v.object_mask
    assert (own[obj_px] >= 0).mean() > 0.99 and (own[~obj_px] == -1).all()
    assert v.visible[own[own >= 0]].all()
    np.testing.assert_array_equal(v.pixel_mask(np.ones(v.n, bool)), own >= 0)
    # the rendered image's alpha is the object mask (up to anti-aliased edges)
    assert ((img[..., 3] > 0) == obj_px).mean() > 0.98
    # radius: a brush of one pixel with radius 3 px reaches the points projecting within 3 px
    i = vis[0]
    r, c = rc[i]
    near = v.points_in_pixels([(c + 0.5, r + 0.5)], radius_px=3.0)
    d = np.hypot(v.uv[near, 0] - (c + 0.5), v.uv[near, 1] - (r + 0.5))
    assert i in near and (d <= 3.0 + 1e-4).all()


def test_point_in_every_view_and_scaling():
    from crosspoint.data.synthetic import demo_object

    obj = demo_object("mug", 1, n_points=500)
    views = render_views(obj.mesh, 4, size=64, seed=2, normalize=False)
    vs = A.object_views(obj.points, [c for _, c in views], mesh=obj.mesh)
    where = point_in_views(vs, 7)
    assert where["uv"].shape == (4, 2) and where["visible"].shape == (4,)
    for k, v in enumerate(vs):
        np.testing.assert_allclose(where["uv"][k], v.uv[7])
        assert where["visible"][k] == v.visible[7]
    # the same view at 224 px: coordinates scale, visibility stays
    big = dataclasses.replace(views[0][1], size=224)
    vb = view_correspondence(obj.points, big, mesh=obj.mesh)
    np.testing.assert_allclose(vs[0].uv_at(224), vb.uv, atol=1e-3)
    np.testing.assert_allclose(PinholeCamera.from_camera(views[0][1]).scaled(224).project(obj.points)[0], vb.uv,
                               atol=1e-3)
    assert (vb.visible == vs[0].visible).mean() > 0.9
    with pytest.raises(A.AnalysisError):
        point_in_views(vs, 10_000)


def test_camera_and_brush_errors():
    with pytest.raises(A.AnalysisError):
        PinholeCamera(np.eye(2), np.eye(4), 10, 10)
    with pytest.raises(A.AnalysisError):
        A.as_pinhole("not a camera")
    with pytest.raises(A.AnalysisError):
        A.as_pinhole({"K": np.eye(3)})
    v = view_correspondence(np.zeros((3, 3)), CAM)
    with pytest.raises(A.AnalysisError):
        v.points_in_pixels(np.zeros((5, 3)))
    with pytest.raises(A.AnalysisError):
        view_correspondence(np.zeros((3, 3)), CAM, depth=np.zeros((4, 4)))


def test_mask_image_and_random_blob():
    img = np.full((8, 8, 4), 200, np.uint8)
    m = np.zeros((8, 8), bool)
    m[2:4, 2:4] = True
    out = mask_image(img, m)
    assert (out[m] == 0).all() and (out[~m] == 200).all() and (img == 200).all()
    rgb = np.full((8, 8, 3), 10, np.uint8)
    rgb[3:5, 3:5] = 250
    out = mask_image(rgb, np.pad(np.ones((2, 2), bool), 3))
    assert (out[3:5, 3:5] == 10).all()
    pts = np.random.default_rng(0).normal(size=(300, 3))
    blob = random_blob(pts, 30, np.random.default_rng(1))
    assert blob.size == 30 and np.unique(blob).size == 30
    # contiguous: every blob point is nearer the blob's seed than any point left out
    from scipy.spatial import cKDTree

    d_seed = cKDTree(pts).query(pts[blob[0]], k=300)[0]
    assert np.linalg.norm(pts[blob] - pts[blob[0]], axis=1).max() <= d_seed[29] + 1e-9


# ------------------------------------------------------------------------------ with models
@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from crosspoint.models import DGCNN, ImageEncoder, save_model_bundle

    d = tmp_path_factory.mktemp("corr_ckpt")
    torch.manual_seed(0)
    pe = DGCNN(k=8, emb_dims=64, projection_dim=32)
    ie = ImageEncoder("resnet18", projection_dim=32)
    path = save_model_bundle(d / "m.pt", point_encoder=pe, image_encoder=ie,
                             meta={"num_points": 256, "image_size": 64})
    return A.ModelSession(path, device="cpu")


@pytest.fixture(scope="module")
def scene():
    from crosspoint.data.synthetic import demo_object

    obj = demo_object("chair", 5, n_points=600)
    (img, cam), = render_views(obj.mesh, 1, size=64, seed=1, normalize=False)
    other = demo_object("car", 5, n_points=600)
    (img2, _), = render_views(other.mesh, 1, size=64, seed=1, normalize=False)
    return obj, img, cam, img2


def test_part_occlusion_both_sides_with_baselines(session, scene):
    obj, img, cam, _ = scene
    for mode in ("repool", "replace"):
        ev = A.part_occlusion(session, obj.points, img, cam, obj.labels, mesh=obj.mesh, n_random=2, mode=mode,
                              names={0: "seat", 1: "back", 2: "leg", 3: "arm"})
        assert isinstance(ev, A.PartEvidence) and ev.mode == mode
        P = ev.labels.size
        assert P >= 2 and set(ev.labels.tolist()) <= set(np.unique(obj.labels).tolist())
        for arr in (ev.drop_3d, ev.random_3d, ev.blob_3d):
            assert arr.shape == (P,) and np.isfinite(arr).all() and (np.abs(arr) <= 2).all()
        seen = ev.pixels_2d > 0
        assert seen.any()
        for arr in (ev.drop_2d, ev.random_2d, ev.blob_2d):
            assert np.isfinite(arr[seen]).all() and np.isnan(arr[~seen]).all()
        assert ev.points_3d.sum() <= 256 and -1 <= ev.similarity <= 1
        rows = ev.rows()
        assert len(rows) == P and rows[0]["name"] in ("seat", "back", "leg", "arm")
        assert ev.top_part("3d") in ev.labels.tolist() and ev.agree in (True, False)
    # deterministic for a seed
    a = A.part_occlusion(session, obj.points, img, cam, obj.labels, mesh=obj.mesh, n_random=1)
    b = A.part_occlusion(session, obj.points, img, cam, obj.labels, mesh=obj.mesh, n_random=1)
    np.testing.assert_array_equal(a.blob_2d, b.blob_2d)
    # repool is exact for the whole cloud: removing nothing keeps the similarity
    from crosspoint.analysis.correspondence import _cloud_sims
    from crosspoint.analysis.points import prepare_points

    prep = prepare_points(obj.points, 256, 0)
    with session.inference(autocast=False):
        out = session.point_encoder(torch.from_numpy(prep.points[None]), with_point_features=True)
    t = A.embed_images(session, [img])[0]
    s_full = float(A.project_clouds(session, [prep.points])[0] @ t)
    s_none = _cloud_sims(session, prep.points, [np.zeros(prep.n, bool)], t, "repool", out.point_features)[0]
    assert abs(s_none - s_full) < 1e-4
    with pytest.raises(A.AnalysisError):
        A.part_occlusion(session, obj.points, img, cam, obj.labels[:10])


def test_part_occlusion_with_a_brush(session, scene):
    """A user's brush is a 0/1 labelling; the brushed part gets its drops and baselines."""
    obj, img, cam, _ = scene
    v = view_correspondence(obj.points, cam, mesh=obj.mesh)
    brush = np.zeros(v.shape, bool)
    brush[20:40, 20:40] = True
    lab = np.zeros(obj.points.shape[0], np.int64)
    lab[v.seen_points(brush)] = 1
    ev = A.part_occlusion(session, obj.points, img, cam, lab, view=v, min_points=1)
    assert 1 in ev.labels.tolist()
    k = ev.labels.tolist().index(1)
    assert ev.pixels_2d[k] > 0 and np.isfinite(ev.blob_2d[k])


def test_dense_similarity_projection_heads_and_plugged_dense_heads(session, scene):
    obj, img, cam, _ = scene
    ds = A.dense_similarity(session, obj.points, img, cam)
    assert ds.method == "projection heads"
    assert ds.point_embeddings.shape == (256, 32) and ds.grid == (2, 2)  # resnet18 at 64 px: stride 32
    np.testing.assert_allclose(np.linalg.norm(ds.point_embeddings, axis=1), 1, atol=1e-4)
    assert ds.uv.shape == (256, 2) and np.isfinite(ds.uv).all()
    np.testing.assert_allclose(ds.uv, cam.project(ds.world_points)[0], atol=1e-3)
    maps = ds.point_maps([0, 5])
    assert maps.shape == (2, 64, 64) and (np.abs(maps) <= 1 + 1e-5).all()
    # a pixel at a cell centre reads that cell exactly
    np.testing.assert_allclose(ds.pixel_scores(16, 16), ds.cell_scores()[:, 0, 0], atol=1e-5)
    am = ds.argmax_pixels([0, 1, 2], size=(224, 224))
    assert am.shape == (3, 2) and (am >= 0).all() and (am < 224).all()
    # the similarity is the global one
    assert abs(ds.similarity - A.similarity(session, obj.points, img)) < 1e-4
    # a checkpoint with dense heads plugs in unchanged
    from crosspoint.models.dense import DenseHeads

    torch.manual_seed(0)
    session.dense_heads = DenseHeads(point_dim=64, image_arch="resnet18", dim=16).eval()
    try:
        dd = A.dense_similarity(session, obj.points, img, cam)
        assert dd.method == "dense heads" and dd.grid == (8, 8) and dd.point_embeddings.shape == (256, 16)
    finally:
        session.dense_heads = None


def test_heat_readouts_present_and_in_range(session, scene):
    obj, img, cam, img2 = scene
    r = A.heat_readouts(session, obj.points, img, cam, mesh=obj.mesh, other_image=img2, n_random=1)
    assert r["label"] == A.GRADCAM_LABEL and "what drives the object-view similarity" in r["label"]
    c = r["deletion_curve"]
    assert c["fractions"] == [0.1, 0.2, 0.3]
    for key in ("top", "blob", "random", "other_top"):
        assert len(c[key]) == 3 and np.isfinite(c[key]).all()
    for key in ("top_drop", "blob_drop", "random_drop", "other_top_drop", "top_minus_blob"):
        assert np.isfinite(r[key]) and abs(r[key]) <= 2
    assert -1 <= r["other_heat_corr"] <= 1 or np.isnan(r["other_heat_corr"])
    assert -1 <= r["spearman_point_image"] <= 1 or np.isnan(r["spearman_point_image"])
    assert 0 <= r["image_heat_on_object"] <= 1 and 0 < r["object_area"] < 1
    assert 0 <= r["visible_heat"] <= 1 and 0 <= r["hidden_heat"] <= 1
    # PointHeatmap carries the label too; image heat can be restricted to the object and computed on layer3
    assert A.point_heatmap_result(session, obj.points, img).label == A.GRADCAM_LABEL
    mask = img[..., 3] > 0
    h3 = A.image_heatmap(session, obj.points, img, layer="layer3", mask=mask)
    assert h3.shape == (64, 64) and (h3[~mask] == 0).all() and h3.max() <= 1
    with pytest.raises(A.AnalysisError):
        A.image_heatmap(session, obj.points, img, layer="layer9")


def test_evaluate_views_summary_keys(session, scene):
    from crosspoint.analysis.correspondence import evaluate_views

    obj, img, cam, img2 = scene
    objs = [{"points": obj.points, "labels": obj.labels, "image": img, "camera": cam, "mesh": obj.mesh,
             "name": "chair", "other_image": img2}] * 2
    res = evaluate_views(session, objs, n_pixels=8, max_points=32, n_random=1)
    sm = res["summary"]
    for key in ("point_to_pixel_hit", "point_to_pixel_hit_chance", "pixel_to_point_auc", "cell_top1",
                "part_agreement", "part_drop_3d", "part_blob_3d", "part_drop_2d", "part_blob_2d",
                "heat_top_drop", "heat_blob_drop", "heat_spearman_point_image"):
        assert key in sm
    for key in ("point_to_pixel_hit", "point_to_pixel_hit_chance", "pixel_to_point_auc", "cell_top1",
                "part_agreement"):
        assert 0.0 <= sm[key] <= 1.0
    assert sm["points_tested"] == 64 and sm["objects"] == 2
