"""The Open3D offscreen renderer and the Qt 3D view widget."""

from __future__ import annotations

import numpy as np
import pytest

from crosspoint.pointcloud import PointCloud
from explorer import colors
from explorer.o3d_renderer import OffscreenRenderer


def _sphere(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 3)).astype(np.float32)
    return p / np.linalg.norm(p, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def renderer():
    r = OffscreenRenderer(320, 240, point_size=4)
    yield r
    r.close()


def test_renderer_draws_points_in_their_colour(renderer):
    pts = _sphere()
    red = np.tile([[1.0, 0.0, 0.0]], (len(pts), 1))
    renderer.set_points(pts, red)
    frame = renderer.render()
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
    redish = (frame[..., 0] > 200) & (frame[..., 1] < 60) & (frame[..., 2] < 60)
    assert 0.05 < redish.mean() < 0.9, "the sphere should cover part, not all, of the frame"
    bg = np.round(renderer.background * 255)
    assert np.all(np.abs(frame[0, 0].astype(int) - bg) <= 2), "corners show the background"

    renderer.set_colors(np.tile([[0.0, 0.0, 1.0]], (len(pts), 1)))
    frame2 = renderer.render()
    blueish = (frame2[..., 2] > 200) & (frame2[..., 0] < 60)
    assert abs(blueish.mean() - redish.mean()) < 0.02


def test_projection_matches_the_frame_and_picking_finds_the_point(renderer):
    pts = np.array([[0.0, 0.0, 0.0], [0.5, 0.3, 0.1], [-0.4, -0.2, 0.3]], np.float32)
    # the 8 corners of a cube give the scene its extent; three bright marker points inside
    ctx = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float32)
    allp = np.concatenate([pts, ctx])
    col = np.concatenate([np.ones((3, 3)), np.full((8, 3), 0.3)])
    renderer.set_points(allp, col)
    renderer.set_point_size(6)
    frame = renderer.render()
    cam = renderer.camera()
    rot = cam.extrinsic[:3, :3]
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-6)
    uv, z = cam.project(pts)
    assert np.all(z > 0)
    for (u, v) in uv:
        x, y = int(round(u)), int(round(v))
        patch = frame[max(y - 3, 0):y + 4, max(x - 3, 0):x + 4]
        assert patch.max() >= 250, "a white marker is drawn where the camera model projects it"
    i = renderer.pick(uv[1, 0], uv[1, 1], allp)
    assert i == 1
    assert renderer.pick(-500, -500, allp) is None
    renderer.set_point_size(4)


def test_orbit_pan_zoom_and_reset_change_the_camera(renderer):
    pts = _sphere()
    renderer.set_points(pts, np.full((len(pts), 3), 0.8))
    e0 = renderer.camera().extrinsic.copy()
    renderer.rotate(80, 0)
    e1 = renderer.camera().extrinsic
    assert not np.allclose(e0, e1)
    renderer.pan(30, 10)
    renderer.zoom(2)
    renderer.reset_view()
    assert np.allclose(renderer.camera().extrinsic, e0, atol=1e-6)


def test_resize_keeps_the_scene_and_pose(renderer):
    pts = _sphere()
    renderer.set_points(pts, np.full((len(pts), 3), 0.9))
    renderer.rotate(50, 20)
    e = renderer.camera().extrinsic.copy()
    renderer.resize(400, 300)
    frame = renderer.render()
    assert frame.shape == (300, 400, 3)
    assert (frame.max(axis=2) > 200).mean() > 0.02
    np.testing.assert_allclose(renderer.camera().extrinsic, e, atol=1e-5)
    renderer.resize(320, 240)


def test_color_modes():
    pts = _sphere(100)
    cloud = PointCloud(pts, normals=pts, labels=np.arange(100) % 3)
    assert colors.available_modes(cloud) == ["normal", "height", "labels", "uniform"]
    n = colors.point_colors(cloud, "normal")
    np.testing.assert_allclose(n, 0.5 * (pts + 1), atol=1e-6)
    lab = colors.point_colors(cloud, "labels")
    assert len({tuple(c) for c in lab}) == 3
    h = colors.point_colors(cloud, "height")
    top, bottom = np.argmax(pts[:, 1]), np.argmin(pts[:, 1])
    assert not np.allclose(h[top], h[bottom])
    # missing data falls back to height instead of failing
    np.testing.assert_allclose(colors.point_colors(cloud, "rgb"), h)
    hm = colors.point_colors(cloud, "heatmap", heatmap=np.linspace(0, 1, 100))
    assert hm.shape == (100, 3) and np.isfinite(hm).all()
    grey = colors.scalar_colors(np.array([np.nan, 1.0, 2.0]))
    np.testing.assert_allclose(grey[0], 0.5)


def test_viewer_widget_mouse_and_keys(qtbot):
    from PyQt6.QtCore import QPoint, Qt

    from explorer.viewer3d import Viewer3D

    v = Viewer3D()
    qtbot.addWidget(v)
    v.resize(400, 300)
    v.show()
    qtbot.waitExposed(v)
    pts = _sphere()
    v.set_cloud(pts, colors.point_colors(PointCloud(pts), "height"))
    qtbot.waitUntil(lambda: v.has_frame, timeout=10000)
    qtbot.waitUntil(lambda: v.renderer().width == 400, timeout=5000)
    e0 = v.renderer().camera().extrinsic.copy()
    qtbot.mousePress(v, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    for x in range(110, 200, 15):
        qtbot.mouseMove(v, QPoint(x, 120))
    qtbot.mouseRelease(v, Qt.MouseButton.LeftButton, pos=QPoint(200, 120))
    qtbot.waitUntil(lambda: not np.allclose(v.renderer().camera().extrinsic, e0), timeout=5000)
    n0 = v.frames_rendered
    qtbot.keyClick(v, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: v.frames_rendered > n0, timeout=5000)
    np.testing.assert_allclose(v.renderer().camera().extrinsic, e0, atol=1e-6)
    frame = v.frame_array()
    assert frame is not None and frame.shape[:2] == (300, 400)
    # a click without moving picks a point and reports it
    cam = v.renderer().camera()
    uv, _ = cam.project(pts)
    j = int(np.argmin(np.abs(uv[:, 0] - 200) + np.abs(uv[:, 1] - 150)))
    with qtbot.waitSignal(v.pointPicked, timeout=3000) as sig:
        qtbot.mouseClick(v, Qt.MouseButton.LeftButton, pos=QPoint(int(uv[j, 0]), int(uv[j, 1])))
    assert sig.args[0] >= 0
    v.shutdown()


def test_loading_a_model_after_the_first_frame_does_not_crash(tmp_path):
    """Regression: Triton (pulled in by torchvision.ops -> torch._dynamo) imported after Mesa's llvmpipe
    had drawn a frame killed the explorer with SIGSEGV when it loaded its checkpoint in the background.
    A fresh process, in the explorer's order: a frame first, then a model import in a worker thread."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import threading, numpy as np\n"
        "from explorer.o3d_renderer import OffscreenRenderer\n"
        "r = OffscreenRenderer(64, 64)\n"
        "r.set_points(np.random.rand(100, 3).astype('float32'), np.ones((100, 3)))\n"
        "assert r.render().shape == (64, 64, 3)\n"
        "def load():\n"
        "    import torchvision.models, torch._dynamo  # noqa: F401\n"
        "t = threading.Thread(target=load); t.start(); t.join()\n"
        "print('survived')\n"
    )
    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and "survived" in r.stdout, (r.returncode, r.stderr[-2000:])


def _shown_viewer(qtbot, w: int = 320, h: int = 240):
    """A Viewer3D of ``w`` x ``h`` on screen."""
    from explorer.viewer3d import Viewer3D

    v = Viewer3D()
    qtbot.addWidget(v)
    v.resize(w, h)
    v.show()
    qtbot.waitExposed(v)
    return v


def test_a_huge_cloud_moves_at_a_level_of_detail_and_settles_in_full(qtbot):
    """Over LOD_MIN_POINTS points, frames drawn while the camera moves come from a fixed subset at half
    the resolution, seen through the same camera; the full cloud is drawn once the movement stops; a
    colour change reaches the subset too."""
    from PyQt6.QtCore import QPoint, Qt

    from explorer import viewer3d as V

    v = _shown_viewer(qtbot, 400, 300)
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(V.LOD_MIN_POINTS + 1000, 3)).astype(np.float32)
    cols = colors.point_colors(PointCloud(pts), "height")
    v.set_cloud(pts, cols)
    qtbot.waitUntil(lambda: v.has_frame and v.renderer().width == 400, timeout=20000)
    assert not v.last_frame_lod and v.frame_array().shape[:2] == (300, 400)
    n0 = v.frames_rendered
    qtbot.mousePress(v, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    qtbot.mouseMove(v, QPoint(140, 110))
    qtbot.waitUntil(lambda: v.frames_rendered > n0, timeout=5000)
    assert v.last_frame_lod and v.frame_array().shape[:2] == (150, 200)
    lod = v._lod
    assert len(lod._pcd.points) == V.LOD_POINTS
    np.testing.assert_array_equal(np.asarray(lod._pcd.points, np.float32), pts[v._lod_index])
    # the same camera: the subset's pixels are the full view's, halved (integer pixel centres: +0.5)
    full_cam, small_cam = v.renderer().camera(), lod.camera()
    uv_full, _ = full_cam.project(pts[:50])
    uv_small, _ = small_cam.project(pts[:50])
    np.testing.assert_allclose(uv_small + 0.5, (uv_full + 0.5) / 2, atol=1e-9)
    new = np.zeros_like(cols)
    new[:, 0] = 1.0
    v.set_colors(new)
    np.testing.assert_array_equal(np.asarray(lod._pcd.colors), new[v._lod_index].astype(np.float64))
    qtbot.mouseRelease(v, Qt.MouseButton.LeftButton, pos=QPoint(140, 110))
    qtbot.waitUntil(lambda: not v.last_frame_lod, timeout=5000)  # settled: the full cloud again
    assert v.frame_array().shape[:2] == (300, 400)
    v.shutdown()


def test_measurement_marks_bounding_box_and_colorbar_ticks(qtbot):
    """Ctrl+click marks the picked point for measuring (distances between consecutive marks); a new
    cloud clears them; the bounding box is the drawn points'; colour-bar ticks are round values."""
    from PyQt6.QtCore import QPoint, Qt

    from explorer.viewer3d import colorbar_ticks

    v = _shown_viewer(qtbot, 400, 300)
    pts = _sphere()
    v.set_cloud(pts, colors.point_colors(PointCloud(pts), "height"))
    qtbot.waitUntil(lambda: v.has_frame and v.renderer().width == 400, timeout=10000)
    uv, z = v.renderer().camera().project(pts)
    front = np.flatnonzero(z < np.median(z))
    a, b = front[np.argmin(uv[front, 0])], front[np.argmax(uv[front, 0])]
    for j in (a, b):
        with qtbot.waitSignal(v.measurementChanged, timeout=3000):
            qtbot.mouseClick(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                             QPoint(int(round(uv[j, 0])), int(round(uv[j, 1]))))
    marks = np.asarray(v.marks)
    assert marks.shape == (2, 3)
    # each mark is a drawn point, picked where it was clicked (the nearest drawn point to the pixel)
    for m in marks:
        assert np.min(np.linalg.norm(pts - m, axis=1)) == 0.0
    assert np.linalg.norm(marks[1] - marks[0]) > 0.5 * np.ptp(pts[:, 0])
    lo, hi = v._bounds
    np.testing.assert_array_equal(lo, pts.min(axis=0).astype(np.float64))
    v.set_show_bbox(True)
    v.repaint()
    v.set_cloud(pts[:100], colors.point_colors(PointCloud(pts[:100]), "height"))
    assert v.marks == []
    assert colorbar_ticks(0.0, 1.3) == [(0.0, 0.0), (0.5, 0.5 / 1.3), (1.0, 1.0 / 1.3), (1.3, 1.0)]
    assert [t for t, _ in colorbar_ticks(-0.437, 0.903)] == [-0.437, 0.0, 0.5, 0.903]
    v.shutdown()


def test_eye_dome_lighting_darkens_the_far_side_of_a_depth_edge_only():
    """EDL on a synthetic depth buffer: a near square in front of a far plane. Far pixels next to the
    near square's edge are darkened; pixels whose neighbours are all at their depth or farther keep
    their colour exactly; background (depth 0) is untouched."""
    from explorer.o3d_renderer import EDL_RADIUS, eye_dome_lighting

    h, w = 40, 50
    depth = np.full((h, w), 10.0, np.float32)
    depth[:, :5] = 0.0  # background strip
    depth[15:25, 20:30] = 5.0  # the near square
    rgb = np.full((h, w, 3), 200, np.uint8)
    out = eye_dome_lighting(rgb, depth)
    near_edge = out[20, 20 - EDL_RADIUS]  # far plane, the near square EDL_RADIUS pixels to its right
    assert near_edge[0] < 150
    np.testing.assert_array_equal(out[15:25, 20:30], rgb[15:25, 20:30])  # the near square itself
    np.testing.assert_array_equal(out[:, :5], rgb[:, :5])  # background
    np.testing.assert_array_equal(out[2, 40], rgb[2, 40])  # far plane, away from every edge
    # the rim is as wide as the neighbourhood
    assert out[20, 20 - EDL_RADIUS - 1][0] == 200


def test_eye_dome_lighting_in_the_viewer(qtbot):
    v = _shown_viewer(qtbot, 320, 240)
    pts = _sphere()
    v.set_cloud(pts, np.full((len(pts), 3), 0.8, np.float32))
    qtbot.waitUntil(lambda: v.has_frame and v.renderer().width == 320, timeout=10000)
    v.render_now()
    plain = v.frame_array().copy()
    v.set_edl(True)
    v.render_now()
    shaded = v.frame_array()
    assert v.renderer().edl
    drawn = plain.sum(axis=2) > 200
    assert (shaded[drawn].astype(int) <= plain[drawn].astype(int)).all()  # only ever darker
    assert (shaded[drawn].sum(axis=1) < plain[drawn].sum(axis=1)).mean() > 0.02  # and somewhere it is
    v.shutdown()


def test_orthographic_toggle_draws_the_same_target_plane(qtbot):
    v = _shown_viewer(qtbot, 320, 240)
    pts = _sphere()
    v.set_cloud(pts, np.full((len(pts), 3), 0.8, np.float32))
    qtbot.waitUntil(lambda: v.has_frame and v.renderer().width == 320, timeout=10000)
    v.render_now()
    persp = v.frame_array().sum(axis=2) > 200
    v.set_ortho(True)
    v.render_now()
    ortho = v.frame_array().sum(axis=2) > 200
    assert v.renderer().cam.ortho and ortho.sum() > 0.5 * persp.sum()  # drawn, at a comparable size
    ys, xs = np.nonzero(ortho)
    assert 0 < xs.min() and xs.max() < 319 and 0 < ys.min() and ys.max() < 239  # framed, not clipped
    v.shutdown()


def test_a_long_colour_bar_title_is_wrapped_to_its_width(qtbot):
    """Long titles ("similarity drop when the part is removed") ran left over the object; they are
    broken at spaces into lines no wider than the limit, every word kept in order."""
    from PyQt6.QtGui import QFont, QFontMetrics

    from explorer.viewer3d import _wrap_text

    fm = QFontMetrics(QFont())
    title = "similarity drop when the part is removed"
    limit = fm.horizontalAdvance("similarity drop when")
    lines = _wrap_text(title, fm, limit)
    assert len(lines) >= 2 and " ".join(lines) == title
    assert all(fm.horizontalAdvance(line) <= limit for line in lines)
    assert _wrap_text("3D-2D heat", fm, 1000) == ["3D-2D heat"]
    assert _wrap_text("unbreakable_very_long_word", fm, 5) == ["unbreakable_very_long_word"]
