"""The software renderer: camera conventions, determinism, z-buffering, metadata, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from crosspoint.pointcloud import Mesh, PointCloud
from crosspoint.render import (
    Camera,
    fit_distance,
    read_view_metadata,
    render_mesh,
    render_points,
    render_views,
    view_cameras,
    write_views,
)


def box(center, size):
    c = np.asarray(center, np.float32)
    s = np.asarray(size, np.float32) / 2
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float32) * s + c
    f = np.array(
        [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
         [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    )
    return v, f


def merge(*parts):
    vs, fs, off = [], [], 0
    for v, f in parts:
        vs.append(v)
        fs.append(f + off)
        off += len(v)
    return Mesh(np.concatenate(vs), np.concatenate(fs))


def sphere_points(n, seed=0):
    p = np.random.default_rng(seed).normal(size=(n, 3))
    return (p / np.linalg.norm(p, axis=1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# camera


def test_camera_conventions():
    cam = Camera(azimuth=90, elevation=0, distance=4, size=100)  # on +Z looking at -Z
    assert np.allclose(cam.position(), [0, 0, 4], atol=1e-12)
    uv, d = cam.project(np.array([[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0]], np.float32))
    assert np.allclose(uv[0], [50, 50]) and np.isclose(d[0], 4)
    assert uv[1, 0] > 50 and np.isclose(uv[1, 1], 50)  # +X is to the right
    assert uv[2, 1] < 50 and np.isclose(uv[2, 0], 50)  # +Y is up (v grows downwards)
    az0 = Camera(azimuth=0, elevation=0, distance=3)
    assert np.allclose(az0.position(), [3, 0, 0], atol=1e-12)
    top = Camera(azimuth=0, elevation=90, distance=3)
    uv, d = top.project(np.zeros((1, 3)))
    assert np.isfinite(uv).all() and np.isclose(d[0], 3)


def test_project_matches_matrices():
    cam = Camera(azimuth=33, elevation=27, distance=4.5, size=137, in_plane_rotation=10, center=(0.1, -0.2, 0.3), scale=2.0)
    p = np.random.default_rng(1).uniform(-1, 1, (20, 3))
    uv, d = cam.project(p)
    cam_pts = (cam.view_matrix() @ np.c_[p, np.ones(20)].T)[:3]
    hom = cam.intrinsics() @ cam_pts
    assert np.allclose(hom[:2] / hom[2], uv.T, atol=1e-3)
    assert np.allclose(cam_pts[2], d, atol=1e-5)
    r = cam.view_matrix()[:3, :3] * cam.scale
    assert np.allclose(r @ r.T, np.eye(3), atol=1e-9)  # a rotation times 1/scale


def test_fit_distance_keeps_unit_sphere_in_frame():
    pts = sphere_points(4000)
    for cam in view_cameras(6, size=64, seed=3):
        uv, _ = cam.project(pts)
        assert (uv >= 0).all() and (uv <= 64).all()
    assert fit_distance(1.0, 25.0) == pytest.approx(4.62, abs=0.01)


# ---------------------------------------------------------------------------------------------
# images


def test_mesh_render_shape_background_coverage_and_determinism():
    mesh = merge(box((0, 0, 0), (1.2, 1.2, 1.2)))
    cam = Camera(azimuth=30, elevation=25, distance=fit_distance(), size=96)
    img = render_mesh(mesh, cam)
    assert img.shape == (96, 96, 4) and img.dtype == np.uint8
    assert (img[0, 0] == 0).all() and (img[-1, -1] == 0).all()  # transparent, black, like ShapeNetRendering
    cover = (img[..., 3] > 0).mean()
    assert 0.05 < cover < 0.6
    assert np.array_equal(img, render_mesh(mesh, cam))
    # anti-aliased edges: partial alpha exists; opaque interior
    assert ((img[..., 3] > 0) & (img[..., 3] < 255)).any()
    assert img[48, 48, 3] == 255
    bg = render_mesh(mesh, cam, background=(1.0, 1.0, 1.0))
    assert (bg[..., 3] == 255).all() and (bg[0, 0, :3] == 255).all()


def test_depth_ordering_near_box_occludes_far_box():
    near = box((0, 0, 1.0), (0.4, 0.4, 0.2))  # towards the camera on +Z
    far = box((0, 0, -1.0), (1.0, 1.0, 0.2))
    cam = Camera(azimuth=90, elevation=0, distance=5, size=64)
    red, blue = (1.0, 0, 0), (0, 0, 1.0)
    for order in ((near, far), (far, near)):
        mesh = merge(*order)
        n_near = 12
        fc = np.array([red] * n_near + [blue] * 12) if order[0] is near else np.array([blue] * 12 + [red] * n_near)
        img, buf = render_mesh(mesh, cam, face_colors=fc, return_buffers=True, light=(0, 0, 1))
        c = img[32, 32]
        assert c[0] > 200 and c[2] == 0, c
        # the far box shows around the near one
        uv, _ = cam.project(np.array([[0.45, 0.45, -0.9]]))
        u, v = int(uv[0, 0]), int(uv[0, 1])
        assert img[v, u, 2] > 150 and img[v, u, 0] == 0
        assert buf["depth"][32, 32] == pytest.approx(5 - 1.1, abs=1e-3)
        assert np.isinf(buf["depth"][0, 0]) and buf["face_index"][0, 0] == -1


def test_face_index_buffer_matches_projection():
    v = np.array([[-0.8, -0.6, 0], [0.8, -0.6, 0], [0, 0.8, 0]], np.float32)
    mesh = Mesh(v, np.array([[0, 1, 2]]))
    cam = Camera(azimuth=90, elevation=10, distance=4, size=50)
    img, buf = render_mesh(mesh, cam, return_buffers=True)
    uv, d = cam.project(v.mean(0, keepdims=True))
    u, vv = int(uv[0, 0]), int(uv[0, 1])
    assert buf["face_index"][vv, u] == 0 and img[vv, u, 3] == 255
    assert buf["depth"][vv, u] == pytest.approx(float(d[0]), rel=1e-3)


@pytest.mark.parametrize("antialias", [False, True])
def test_project_agrees_with_splats(antialias):
    pts = np.array([[0.5, 0.3, -0.2], [-0.6, -0.4, 0.1], [0.0, 0.7, 0.5], [-0.3, 0.2, -0.7]], np.float32)
    cam = Camera(azimuth=40, elevation=28, distance=fit_distance(), size=80)
    img, buf = render_points(pts, cam, point_radius_px=0.3, antialias=antialias, return_buffers=True)
    uv, _ = cam.project(pts)
    for i, (u, v) in enumerate(uv):
        assert img[int(v), int(u), 3] > 0
        assert buf["point_index"][int(v), int(u)] == i
    # and nothing far from the points is drawn
    lit = np.argwhere(img[..., 3] > 0)
    dist = np.min(np.linalg.norm(lit[:, None, ::-1] + 0.5 - uv[None], axis=2), axis=1)
    assert dist.max() < 1.5


def test_points_render_depth_shading_and_determinism():
    pts = sphere_points(2048, seed=2)
    cam = Camera(azimuth=10, elevation=25, distance=fit_distance(), size=96)
    img = render_points(pts, cam)
    assert img.shape == (96, 96, 4) and img.dtype == np.uint8
    assert np.array_equal(img, render_points(pts, cam))
    assert (img[0, 0] == 0).all()
    cover = (img[..., 3] > 0).mean()
    assert 0.2 < cover < 0.8
    # nearer = brighter: compare the nearest and farthest point's pixel (both drawn on top at their spot)
    uv, d = cam.project(pts)
    img1, buf = render_points(pts, cam, return_buffers=True, antialias=False)
    vis = [i for i in np.argsort(d) if buf["point_index"][int(uv[i, 1]), int(uv[i, 0])] == i]
    near, far = vis[0], vis[-1]
    b = img1[..., :3].astype(int).sum(-1)
    assert b[int(uv[near, 1]), int(uv[near, 0])] > b[int(uv[far, 1]), int(uv[far, 0])]


def test_colors_per_vertex_and_per_face():
    v, f = box((0, 0, 0), (1, 1, 1))
    mesh = Mesh(v, f)
    cam = Camera(azimuth=45, elevation=30, distance=4, size=48)
    green = render_mesh(mesh, cam, colors=(0, 1.0, 0), ambient=1.0)
    assert green[24, 24, 1] == 255 and green[24, 24, 0] == 0
    per_face = render_mesh(mesh, cam, face_colors=np.tile([1.0, 0, 0], (12, 1)), ambient=1.0)
    assert per_face[24, 24, 0] == 255
    per_vertex = render_mesh(mesh, cam, colors=np.tile([0, 0, 255], (8, 1)).astype(np.uint8), ambient=1.0)
    assert per_vertex[24, 24, 2] == 255
    with pytest.raises(ValueError):
        render_mesh(mesh, cam, colors=np.zeros((5, 3)))


# ---------------------------------------------------------------------------------------------
# views and metadata


def test_render_views_deterministic_and_normalised(tmp_path):
    pts = sphere_points(1000) * 7.0 + np.array([10, -3, 2], np.float32)  # far from the unit sphere
    a = render_views(pts, 4, size=64, seed=5)
    b = render_views(pts, 4, size=64, seed=5)
    c = render_views(pts, 4, size=64, seed=6)
    assert len(a) == 4
    for (ia, ca), (ib, cb) in zip(a, b):
        assert ca == cb and np.array_equal(ia, ib)
    assert [x[1].azimuth for x in a] != [x[1].azimuth for x in c]
    for img, cam in a:
        assert 25 <= cam.elevation <= 30 and cam.fov == 25
        uv, d = cam.project(pts)  # the caller's coordinates land inside the image
        assert (uv >= 0).all() and (uv <= 64).all() and (d > 0).all()
        front = np.argmin(d)
        assert img[int(uv[front, 1]), int(uv[front, 0]), 3] > 0
    azs = sorted(x[1].azimuth for x in a)
    assert max(np.diff(azs + [azs[0] + 360])) < 180  # spread around the object


def test_render_views_of_pointcloud_with_mesh():
    v, f = box((0, 0, 0), (1, 2, 1))
    cloud = PointCloud(sphere_points(100), mesh=Mesh(v, f))
    (img_mesh, _), = render_views(cloud, 1, size=48)
    (img_pts, _), = render_views(cloud, 1, size=48, as_points=True)
    assert not np.array_equal(img_mesh, img_pts)


def test_metadata_round_trip(tmp_path):
    pts = sphere_points(500) * 3 + 1
    views = render_views(pts, 3, size=40, seed=1)
    d = tmp_path / "obj" / "rendering"
    paths = write_views(d, views)
    assert [p.name for p in paths] == ["00.png", "01.png", "02.png"]
    assert (d / "renderings.txt").read_text().split() == ["00.png", "01.png", "02.png"]
    lines = (d / "rendering_metadata.txt").read_text().splitlines()
    assert len(lines) == 3 and all(len(ln.split()) == 5 for ln in lines)
    cams = read_view_metadata(d)
    assert cams == [c for _, c in views]
    from PIL import Image

    for p, (img, _) in zip(paths, views):
        assert np.array_equal(np.asarray(Image.open(p)), img)


def test_read_r2n2_style_metadata(tmp_path):
    (tmp_path / "rendering_metadata.txt").write_text("290.3 25.8 0 0.83 25\n12.5 28.1 0 0.71 25\n")
    cams = read_view_metadata(tmp_path)
    assert len(cams) == 2 and cams[0].azimuth == 290.3 and cams[1].distance == 0.71 and cams[0].size == 137
    (tmp_path / "rendering_metadata.txt").write_text("290.3 25.8\n")
    with pytest.raises(ValueError, match="rendering_metadata.txt"):
        read_view_metadata(tmp_path)


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_render_mesh_and_points(tmp_path):
    from crosspoint.cli import main
    from crosspoint.data.synthetic import demo_object, write_mesh_ply
    from crosspoint.io import write_point_cloud

    obj = demo_object("mug", seed=1)
    mesh_file = tmp_path / "mug.ply"
    write_mesh_ply(mesh_file, obj.mesh)
    cloud_file = tmp_path / "mug_points.npz"
    write_point_cloud(cloud_file, PointCloud(obj.points))
    out1, out2 = tmp_path / "views_mesh", tmp_path / "views_pts"
    assert main(["render", str(mesh_file), "--views", "3", "--size", "64", "--out", str(out1)]) == 0
    assert main(["render", str(cloud_file), "--views", "2", "--size", "48", "--out", str(out2), "--seed", "4"]) == 0
    assert sorted(p.name for p in out1.glob("*.png")) == ["00.png", "01.png", "02.png"]
    assert len(read_view_metadata(out1)) == 3 and read_view_metadata(out1)[0].size == 64
    assert len(read_view_metadata(out2)) == 2
    assert main(["render", str(tmp_path / "missing.ply"), "--out", str(tmp_path / "x")]) != 0
