"""The 3D view's camera model (explorer.camera): no Qt, no OpenGL. Exact checks in float64."""

import numpy as np
import pytest

from explorer.camera import OrbitCamera, rotation_about


def _cloud(seed=0, n=500, center=(0.3, -0.2, 0.5), scale=1.7):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)) * scale / 3 + np.asarray(center)


def _is_rotation(r):
    return np.allclose(r @ r.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(r), 1.0, atol=1e-12)


def test_reset_frames_every_point_inside_the_viewport_with_up_up():
    for w, h in ((800, 600), (300, 900)):
        for up in (1, 2):
            cam = OrbitCamera(w, h, up_axis=up)
            pts = _cloud()
            cam.reset(pts)
            assert _is_rotation(cam.rotation)
            uv, z = cam.project(pts)
            assert (z > 0).all()
            assert (uv[:, 0] > 0).all() and (uv[:, 0] < w - 1).all() and (uv[:, 1] > 0).all() and (uv[:, 1] < h - 1).all()
            # the up axis points up in the image (smaller y), and the target is at the image centre
            uv2, _ = cam.project(np.stack([cam.target, cam.target + 0.1 * cam.world_up]))
            assert uv2[1, 1] < uv2[0, 1]
            assert abs(uv2[1, 0] - uv2[0, 0]) < 1e-9
            np.testing.assert_allclose(uv2[0], [(w - 1) / 2, (h - 1) / 2], atol=1e-9)


def test_orbit_keeps_the_target_and_distance_and_never_crosses_the_pole():
    cam = OrbitCamera(640, 480)
    cam.reset(_cloud())
    t0, d0 = cam.target.copy(), cam.distance
    for dx, dy in ((40, 0), (0, 25), (-300, 170), (0, 2000), (0, -5000)):
        cam.orbit(dx, dy)
        assert _is_rotation(cam.rotation)
        np.testing.assert_array_equal(cam.target, t0)
        assert np.isclose(np.linalg.norm(cam.center - cam.target), d0, rtol=1e-12)
        assert abs(cam.forward @ cam.world_up) <= OrbitCamera.MAX_POLE_COS + 1e-12
        # no roll: the camera's right axis stays horizontal
        assert abs(cam.rotation[0] @ cam.world_up) < 1e-9


def test_a_horizontal_drag_turns_about_the_up_axis_by_the_stated_rate():
    cam = OrbitCamera(640, 480)
    cam.reset(None, center=np.zeros(3), radius=1.0)
    f0 = cam.forward
    cam.orbit(100, 0)
    angle = np.radians(100 * OrbitCamera.ORBIT_DEG_PER_PX)
    np.testing.assert_allclose(cam.forward, rotation_about([0, 1, 0], -angle) @ f0, atol=1e-12)


def test_pan_moves_the_target_plane_by_exactly_the_dragged_pixels():
    cam = OrbitCamera(500, 400)
    cam.reset(_cloud())
    p = cam.target + 0.05 * cam.rotation[0] + 0.02 * cam.rotation[1]  # a point at the target's depth
    uv0, _ = cam.project(p)
    cam.pan(17.0, -9.0)
    uv1, _ = cam.project(p)
    np.testing.assert_allclose(uv1 - uv0, [[17.0, -9.0]], atol=1e-9)


def test_zoom_scales_the_distance_and_keeps_the_target():
    cam = OrbitCamera()
    cam.reset(_cloud())
    d, t = cam.distance, cam.target.copy()
    cam.zoom(2)
    assert np.isclose(cam.distance, d * 0.81, rtol=1e-12)
    cam.zoom(-2)
    assert np.isclose(cam.distance, d, rtol=1e-12)
    np.testing.assert_array_equal(cam.target, t)
    cam.zoom(1e6)
    assert cam.distance >= 1e-6


def test_extrinsic_and_state_round_trip():
    cam = OrbitCamera(320, 240)
    cam.reset(_cloud())
    cam.orbit(33, -12)
    cam.pan(5, 7)
    e = cam.extrinsic()
    other = OrbitCamera(320, 240, distance=cam.distance)
    other.set_extrinsic(e)
    np.testing.assert_allclose(other.extrinsic(), e, atol=1e-12)
    np.testing.assert_allclose(other.target, cam.target, atol=1e-12)
    third = OrbitCamera(320, 240)
    third.restore(cam.state())
    np.testing.assert_array_equal(third.extrinsic(), e)


def test_projection_is_the_pinhole_model():
    cam = OrbitCamera(200, 100, fov_deg=60.0)
    cam.reset(None, center=np.zeros(3), radius=1.0)
    k, e = cam.intrinsic(), cam.extrinsic()
    assert k[0, 2] == 99.5 and k[1, 2] == 49.5
    assert np.isclose(k[1, 1], 50.0 / np.tan(np.radians(30.0)), rtol=1e-15)
    pts = _cloud(1, 20)
    cam_pts = pts @ e[:3, :3].T + e[:3, 3]
    h = cam_pts @ k.T
    uv, z = cam.project(pts)
    np.testing.assert_allclose(uv, h[:, :2] / h[:, 2:], rtol=1e-12)
    np.testing.assert_allclose(z, cam_pts[:, 2], rtol=1e-12)


def test_pick_takes_the_front_point_among_overlapping_ones_and_none_far_away():
    cam = OrbitCamera(400, 300)
    cam.reset(None, center=np.zeros(3), radius=1.0)
    front = cam.target - 0.5 * cam.forward  # nearer the camera, on the same ray
    back = cam.target + 0.5 * cam.forward
    pts = np.stack([back, front, cam.target + 0.8 * cam.rotation[0]])
    u, v = cam.project(front)[0][0]
    assert cam.pick(u, v, pts) == 1
    assert cam.pick(-100, -100, pts) is None
    assert cam.pick(u, v, np.zeros((0, 3))) is None
    behind = np.stack([cam.center - cam.forward])  # behind the camera: never picked
    assert cam.pick((400 - 1) / 2, (300 - 1) / 2, behind) is None


@pytest.mark.parametrize("bad", [np.full((4, 3), np.nan), np.zeros((0, 3))])
def test_reset_with_no_finite_points_frames_the_unit_sphere(bad):
    cam = OrbitCamera()
    cam.reset(bad)
    np.testing.assert_array_equal(cam.target, np.zeros(3))
    assert np.isfinite(cam.extrinsic()).all()


def test_standard_views_look_along_the_axes_with_the_up_axis_up():
    for up in (1, 2):
        cam = OrbitCamera(400, 300, up_axis=up)
        cam.reset(_cloud())
        for name, front in OrbitCamera.STANDARD_VIEWS.items():
            cam.standard_view(name)
            assert _is_rotation(cam.rotation)
            f = np.asarray(front, np.float64)
            if up == 2:
                f = np.array([f[0], -f[2], f[1]])
            np.testing.assert_allclose(cam.forward, -f, atol=1e-12)
            if name not in ("top", "bottom"):  # the up axis points up in the image
                np.testing.assert_allclose(cam.rotation[1], -cam.world_up, atol=1e-12)
    with pytest.raises(ValueError, match="unknown view"):
        cam.standard_view("diagonal")


def test_look_from_another_camera_reproduces_its_image_up_to_scale():
    """After look_from, every point lands where the other camera's image has it, scaled about the
    image centre (the viewport has another size), and the whole image fits the viewport."""
    from crosspoint.analysis.correspondence import as_pinhole
    from crosspoint.render import render_views

    pts = _cloud(3, 300)
    _, cams = zip(*render_views(pts.astype(np.float32), 3, size=137, seed=0))
    for vw, vh in ((800, 600), (300, 700)):
        for c in cams:
            pin = as_pinhole(c)
            cam = OrbitCamera(vw, vh)
            cam.reset(pts)
            fov = np.degrees(2 * np.arctan((pin.height / 2) / pin.K[1, 1]))
            cam.look_from(pin.extrinsic, fov, image_aspect=(pin.width / pin.K[0, 0]) / (pin.height / pin.K[1, 1]),
                          focus=pts.mean(0))
            cam_pts = pts @ pin.extrinsic[:3, :3].T + pin.extrinsic[:3, 3]
            scale = np.cbrt(np.linalg.det(pin.extrinsic[:3, :3]))  # the renderer's object normalisation
            n_img = cam_pts[:, :2] / cam_pts[:, 2:]  # normalised image coordinates of the view
            uv, z = cam.project(pts)
            k = cam.intrinsic()
            n_3d = (uv - k[:2, 2]) / k[0, 0]
            np.testing.assert_allclose(n_3d, n_img, atol=1e-12)
            np.testing.assert_allclose(z, cam_pts[:, 2] / scale, rtol=1e-12)
            # the image's corners are inside the viewport
            corners = np.array([[0, 0], [pin.width, pin.height]], np.float64)
            nc = (corners - pin.K[:2, 2]) / np.diag(pin.K)[:2]
            pix = nc * k[0, 0] + k[:2, 2]
            assert (pix[:, 0] >= -0.5 - 1e-9).all() and (pix[:, 0] <= vw - 0.5 + 1e-9).all()
            assert (pix[:, 1] >= -0.5 - 1e-9).all() and (pix[:, 1] <= vh - 0.5 + 1e-9).all()
            cam.reset(pts)
            assert cam.fov_deg == OrbitCamera.DEFAULT_FOV


def test_orthographic_keeps_the_target_plane_and_makes_depth_almost_irrelevant():
    """Orthographic mode draws through ORTHO_FOV_DEG from far away: points in the target's plane land
    where the perspective view puts them; a point's pixel then barely depends on its depth (under 1 %
    of the offset across the object, against ~tens of % in perspective); pan still moves the target
    plane by the dragged pixels; the state round-trips; look_from goes back to perspective."""
    cam = OrbitCamera(500, 400)
    pts = _cloud()
    cam.reset(pts)
    plane = cam.target + 0.3 * cam.rotation[0] - 0.2 * cam.rotation[1]
    uv_p, _ = cam.project(plane)
    radius = np.linalg.norm(pts - pts.mean(0), axis=1).max()
    near, far = plane - radius * cam.rotation[2], plane + radius * cam.rotation[2]  # the same ray, in depth

    def spread(c):
        a, _ = c.project(near)
        b, _ = c.project(far)
        centre = np.array([(c.width - 1) / 2, (c.height - 1) / 2])
        return np.linalg.norm(a - b) / np.linalg.norm(a - centre)

    persp = spread(cam)
    cam.ortho = True
    uv_o, _ = cam.project(plane)
    np.testing.assert_allclose(uv_o, uv_p, atol=1e-6)  # the target plane keeps its size
    assert spread(cam) < 0.01 < 0.2 < persp
    p0, _ = cam.project(plane)
    cam.pan(11.0, 4.0)
    p1, _ = cam.project(plane)
    np.testing.assert_allclose(p1 - p0, [[11.0, 4.0]], atol=1e-6)
    other = OrbitCamera(500, 400)
    other.restore(cam.state())
    assert other.ortho and np.allclose(other.extrinsic(), cam.extrinsic(), atol=0)
    e = cam.extrinsic()
    other.set_extrinsic(e)
    np.testing.assert_allclose(other.target, cam.target, atol=1e-9)
    cam.look_from(e, 30.0)
    assert not cam.ortho
