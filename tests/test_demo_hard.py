"""The demo package (crosspoint.data.demo): the hard preset's families, its partial scans, the easy
preset's exact reproduction of the original demo, determinism, the layouts and the make-demo CLI."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from crosspoint.data.demo import (
    ScanSettings,
    default_demo_dir,
    demo_is_complete,
    demo_object,
    ensure_demo,
    generate_demo,
    get_preset,
    scan_object,
)
from crosspoint.data.demo.primitives import rot
from crosspoint.data.demo.writer import _object_seeds

HARD = get_preset("hard")
EASY = get_preset("easy")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ the catalogue


def test_hard_catalogue_tables():
    assert len(HARD.classes) >= 16
    ids = [i for c in HARD.classes for i in HARD.class_part_ids(c)]
    assert ids == list(range(HARD.n_parts))  # contiguous, global
    syn = list(HARD.synsets.values())
    assert len(set(syn)) == len(syn) and all(len(s) == 8 and s.isdigit() and s[0] == "9" for s in syn)
    assert not set(syn) & set(EASY.synsets.values())  # a hard class never reads as an easy one
    assert len(HARD.part_names()) == HARD.n_parts
    # the confusable groups the preset is built around are all there
    assert {"chair", "armchair", "sofa", "bench", "stool", "table", "desk", "bookshelf", "cabinet", "mug", "cup", "bucket",
            "bowl", "bottle", "vase", "jar"} <= set(HARD.classes)
    assert "chair" in HARD.catalogue() and "swivel" in HARD.catalogue()


@pytest.mark.parametrize("name", HARD.classes)
def test_every_hard_class_builds_valid_labelled_meshes(name):
    ids = HARD.class_part_ids(name)
    seen_parts, styles = set(), set()
    for seed in range(6):
        mesh, labels, style = HARD.build_object(name, np.random.default_rng(seed))
        v, f = mesh.vertices, mesh.faces
        assert v.dtype == np.float32 and f.dtype == np.int64 and np.isfinite(v).all() and len(f) > 10
        assert f.min() >= 0 and f.max() < len(v) and labels.shape == (len(f),)
        assert labels.min() >= ids[0] and labels.max() <= ids[-1]
        assert len(np.unique(labels)) >= 2  # every object has labelled parts
        assert np.linalg.norm(v, axis=1).max() <= 1.0 + 1e-4
        assert np.allclose(np.linalg.norm(mesh.vertex_normals, axis=1), 1, atol=1e-4)
        assert mesh.vertex_colors.shape == v.shape and mesh.vertex_colors.min() >= 0 and mesh.vertex_colors.max() <= 1
        area = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
        assert (area > 0).all()
        seen_parts |= set(np.unique(labels).tolist())
        styles.add(json.dumps({k: s for k, s in style.items() if k != "heading"}, sort_keys=True))
        assert 0 <= style["heading"] < 360
    assert len(styles) >= 3, styles  # several styles among six objects, not one template
    for seed in range(6, 30):  # optional parts show up among a few dozen objects
        seen_parts |= set(np.unique(HARD.make_object(name, np.random.default_rng(seed))[1]).tolist())
    assert len(seen_parts) >= min(3, len(ids)), seen_parts
    m1, l1, _ = HARD.build_object(name, np.random.default_rng(3))
    m2, l2, _ = HARD.build_object(name, np.random.default_rng(3))
    assert np.array_equal(m1.vertices, m2.vertices) and np.array_equal(l1, l2)


def _descriptor(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A shape descriptor invariant to the heading about +Y: the D2 distance histogram (Osada et
    al.), height quantiles and horizontal-radius quantiles of the unit-sphere-normalised points."""
    p = points - points.mean(0)
    p = p / np.linalg.norm(p, axis=1).max()
    i, j = rng.integers(0, len(p), (2, 3000))
    d2 = np.histogram(np.linalg.norm(p[i] - p[j], axis=1), bins=16, range=(0, 2))[0] / 3000
    r = np.hypot(p[:, 0], p[:, 2])
    return np.concatenate([d2, np.quantile(p[:, 1], [0.1, 0.5, 0.9]), np.quantile(r, [0.5, 0.9])])


def _spread(preset: str, n: int = 8):
    fs = get_preset(preset)
    d = {c: np.stack([_descriptor(demo_object(c, 0, index=i, n_points=1024, preset=preset).points,
                                  np.random.default_rng(i)) for i in range(n)]) for c in fs.classes}
    means = {c: d[c].mean(0) for c in fs.classes}
    within = {c: np.mean([np.linalg.norm(a - b) for k, a in enumerate(d[c]) for b in d[c][k + 1:]]) for c in fs.classes}
    dist = {(a, b): float(np.linalg.norm(means[a] - means[b])) for a in fs.classes for b in fs.classes if a != b}
    return within, dist


def test_intra_class_variety_and_confusable_classes():
    """Within a class, objects differ as much as classes differ from their nearest neighbour (a
    template with noise would have a small spread); the easy preset is the contrast."""
    within, dist = _spread("hard")
    nearest = {c: min(v for (a, _), v in dist.items() if a == c) for c in HARD.classes}
    ratio = {c: within[c] / nearest[c] for c in HARD.classes}
    assert min(ratio.values()) > 0.55, ratio  # airplanes are the most distinct (~0.65)
    assert np.median(list(ratio.values())) > 1.3, ratio
    between = np.median(list(dist.values()))
    e_within, e_dist = _spread("easy")
    hard_rel = np.mean(list(within.values())) / np.mean(list(dist.values()))
    easy_rel = np.mean(list(e_within.values())) / np.mean(list(e_dist.values()))
    assert hard_rel > 1.2 * easy_rel, (hard_rel, easy_rel)
    # the pairs chosen to be confusable are closer than a typical pair of classes
    for a, b in [("chair", "armchair"), ("armchair", "sofa"), ("sofa", "bench"), ("sofa", "bed"), ("table", "desk"),
                 ("mug", "cup"), ("cup", "bucket"), ("mug", "bucket"), ("bottle", "vase"), ("bottle", "rocket"),
                 ("chair", "stool"), ("desk", "cabinet"), ("bookshelf", "cabinet"), ("cup", "bowl"), ("vase", "jar")]:
        assert dist[(a, b)] < between, (a, b, dist[(a, b)], between)


# ------------------------------------------------------------------------------ the scanner


def _world(scan) -> np.ndarray:
    """Scan points back in the object's frame (undo the normalisation and the turn about +Y)."""
    p = scan.points.astype(np.float64) * scan.info["scale"] + np.asarray(scan.info["center"])
    return p @ rot("y", scan.info["yaw"])


@pytest.mark.parametrize("name", ["chair", "mug", "car", "sofa"])
def test_scans_are_partial_views_with_self_occlusion(name):
    from scipy.spatial import cKDTree

    from crosspoint.geometry import sample_mesh_surface
    from crosspoint.render import Camera, render_mesh

    rng, _, _, _ = _object_seeds(HARD, 0, HARD.classes.index(name), 0)
    mesh, fl, _ = HARD.build_object(name, rng)
    st = ScanSettings(clutter=False, outliers=0.0)
    scan = scan_object(mesh, fl, 2048, np.random.default_rng(7), st)
    assert scan.points.shape == (2048, 3) and scan.points.dtype == np.float32
    assert np.linalg.norm(scan.points, axis=1).max() <= 1 + 1e-5
    assert (scan.labels >= 0).all()  # no clutter, no flying pixels: every point is on the object
    # the scanner's camera, with the renderer's depth buffer: which of the object's surface is visible
    i = scan.info
    cam = Camera(azimuth=i["azimuth"], elevation=i["elevation"], distance=i["distance"], fov=st.fov, size=st.resolution)
    _, buf = render_mesh(mesh, cam, return_buffers=True, antialias=False)
    surf, _, _ = sample_mesh_surface(mesh.vertices, mesh.faces, 20000, seed=0)
    uv, z = cam.project(surf)
    n = st.resolution
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < n) & (uv[:, 1] >= 0) & (uv[:, 1] < n) & (z > 0)
    px = buf["depth"][np.clip(uv[:, 1].astype(int), 0, n - 1), np.clip(uv[:, 0].astype(int), 0, n - 1)]
    visible = inside & (z <= px + 0.02)
    occluded = inside & (z > px + 0.05)  # behind another surface of the same object
    assert 0.1 < visible.mean() < 0.7 and occluded.mean() > 0.3, (visible.mean(), occluded.mean())
    tree = cKDTree(_world(scan))
    assert (tree.query(surf[occluded])[0] < 0.03).mean() < 0.12  # hidden surface is (almost) never scanned
    assert (tree.query(surf[visible])[0] < 0.03).mean() > 0.6  # the visible surface is
    # the scan's camera (in the scan's own coordinates) sees every scan point on its image
    uv2, _ = scan.camera.project(scan.points)
    ij = np.clip(uv2.astype(int), 0, n - 1)
    assert (scan.image[ij[:, 1], ij[:, 0], 3] > 0).mean() > 0.97


def test_scan_noise_grows_with_depth_and_clutter_is_background():
    rng, _, _, _ = _object_seeds(HARD, 0, HARD.classes.index("table"), 1)
    mesh, fl, _ = HARD.build_object("table", rng)
    kw = dict(clutter=False, outliers=0.0, margin=(0.25, 0.25))
    noisy = scan_object(mesh, fl, 2048, np.random.default_rng(3), ScanSettings(**kw))
    clean = scan_object(mesh, fl, 2048, np.random.default_rng(3), ScanSettings(noise=0.0, **kw))
    assert np.array_equal(noisy.labels, clean.labels)  # same pixels: the difference is the sensor noise
    wn, wc = _world(noisy), _world(clean)
    disp = np.linalg.norm(wn - wc, axis=1)
    i = clean.info
    el, az = np.radians(i["elevation"]), np.radians(i["azimuth"])
    eye = i["distance"] * np.array([np.cos(el) * np.cos(az), np.sin(el), np.cos(el) * np.sin(az)])
    depth = np.linalg.norm(wc - eye, axis=1)
    near = depth < np.median(depth)
    assert disp.mean() > 0.005
    assert disp[~near].mean() > 1.1 * disp[near].mean()  # sigma ~ depth^2
    # clutter and flying pixels are kept inside the crop box, labelled -1 (background)
    cl = scan_object(mesh, fl, 2048, np.random.default_rng(5), ScanSettings())
    assert 0 < (cl.labels < 0).mean() < 0.9 and cl.info["yaw"] != 0.0
    assert not np.array_equal(cl.points, scan_object(mesh, fl, 2048, np.random.default_rng(6), ScanSettings()).points)
    again = scan_object(mesh, fl, 2048, np.random.default_rng(5), ScanSettings())
    assert np.array_equal(cl.points, again.points) and np.array_equal(cl.image, again.image)


# ------------------------------------------------------------------------------ the easy preset

# Digests of the original generator's output (crosspoint/data/synthetic.py as of commit 4e7d859, before
# the package) for generate_demo(root, seed=0, per_class=3, n_views=2, size=32, workers=0): every file's
# bytes, except the PNGs, whose decoded pixels are hashed (their compressed bytes depend on the zlib
# that Pillow ships). Change these only when you mean to change the easy demo.
# The generator's float64 sin/cos come from numpy, which on a CPU with AVX-512 dispatches them to SVML:
# results 1 ulp apart from glibc's now and then, enough to move a float32 vertex normal and so the mesh
# files and the shaded pixels (session 14: the digests recorded on an AVX-512 Intel host failed on an AMD
# EPYC without it; the points and the rest were the same). So the digests are of the portable paths, the
# same on every x86-64 CPU: the generator runs in a child process with numpy's AVX-512 targets switched
# off (NPY_DISABLE_CPU_FEATURES) and numba compiling for a generic x86-64 (NUMBA_CPU_NAME).
PORTABLE_MATH_ENV = {"NPY_DISABLE_CPU_FEATURES": "X86_V4,AVX512_ICL,AVX512_SPR", "NUMBA_CPU_NAME": "generic"}
EASY_SEED0_DIGESTS = {
    "meshes": "6493d276712ff2522a105a6c9c8f6f48",
    "part layout + meta": "4f4d79634d6dbf8c19969b9157fac4aa",
    "points": "38ba37727e78c1225739cc4ddf930998",
    "view metadata": "92b17f6adeaade06e0a37b658934a594",
    "views (png pixels)": "d4560f8c4b3b689076995f64fa5eeabe",
}


def _digests(root: Path) -> dict[str, str]:
    from PIL import Image

    cats: dict = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(root).as_posix()
        if p.suffix == ".png":
            with Image.open(p) as im:
                data = im.mode.encode() + repr(im.size).encode() + np.asarray(im).tobytes()
            cat = "views (png pixels)"
        else:
            data = p.read_bytes()
            cat = {"ShapeNet": "points", "meshes": "meshes", "ShapeNetRendering": "view metadata"}.get(
                rel.split("/")[0], "part layout + meta")
        cats.setdefault(cat, hashlib.sha256()).update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return {k: v.hexdigest()[:32] for k, v in sorted(cats.items())}


def test_easy_preset_reproduces_the_original_demo(tmp_path):
    import os
    import subprocess
    import sys

    from crosspoint.data import synthetic

    a = tmp_path / "a"
    code = ("import sys; from crosspoint.data import synthetic; "
            "synthetic.generate_demo(sys.argv[1], seed=0, per_class=3, n_views=2, size=32, workers=0)")
    subprocess.run([sys.executable, "-c", code, str(a)], check=True, env={**os.environ, **PORTABLE_MATH_ENV},
                   cwd=Path(__file__).resolve().parents[1])
    assert _digests(a) == EASY_SEED0_DIGESTS
    a = synthetic.generate_demo(tmp_path / "here", seed=0, per_class=3, n_views=2, size=32, workers=0)
    b = generate_demo(tmp_path / "b", preset="easy", seed=0, per_class=3, n_views=2, size=32, workers=0)
    assert _files(a) == _files(b)
    meta = json.loads((a / "demo_meta.json").read_text())
    assert "preset" not in meta and meta["generator"] == "crosspoint.data.synthetic" and not (a / "scans").exists()
    # the compatibility module is the easy preset
    assert synthetic.CLASSES == EASY.classes and synthetic.N_PARTS == EASY.n_parts
    assert np.array_equal(synthetic.demo_object("mug", 2).points, demo_object("mug", 2).points)


def test_explorer_demo_follows_the_shipped_checkpoints_preset(monkeypatch, tmp_path):
    """The shipped checkpoint is trained on the hard demo: ensure_demo (the explorer's and "--data
    demo"'s dataset) defaults to it, and so do the CLI; generate_demo keeps the easy default."""
    from crosspoint.data.demo import SHIPPED_PRESET

    assert SHIPPED_PRESET == "hard"
    assert inspect.signature(ensure_demo).parameters["preset"].default == SHIPPED_PRESET
    assert inspect.signature(generate_demo).parameters["preset"].default == "easy"
    monkeypatch.setenv("CROSSPOINT_CACHE_DIR", str(tmp_path))
    assert default_demo_dir() == tmp_path / "demo-hard-v1-seed0"
    assert default_demo_dir(0, "easy") == tmp_path / "demo-v1-seed0"


# ------------------------------------------------------------------------------ layouts, determinism, CLI

TINY_HARD = dict(preset="hard", per_class=2, n_points=256, n_views=1, size=24)


def test_hard_generation_is_deterministic_and_worker_independent(tmp_path):
    classes = ["chair", "mug", "boat"]
    a = _files(generate_demo(tmp_path / "a", seed=4, classes=classes, workers=0, **TINY_HARD))
    b = _files(generate_demo(tmp_path / "b", seed=4, classes=classes, workers=2, **TINY_HARD))
    assert a.keys() == b.keys() and [k for k in a if a[k] != b[k]] == []
    c = _files(generate_demo(tmp_path / "c", seed=5, classes=classes, workers=0, **TINY_HARD))
    key = f"ShapeNet/{HARD.synsets['chair']}/chair_0000.ply"
    assert a[key] != c[key] and a["scans/" + key] != c["scans/" + key]
    # the heading is drawn last: aligned objects are the same objects, facing +Z
    turned, _, style = HARD.build_object("car", np.random.default_rng(8))
    facing, _, style0 = HARD.with_heading("aligned").build_object("car", np.random.default_rng(8))
    assert "heading" not in style0
    assert np.allclose(facing.vertices @ rot("y", style["heading"]).T, turned.vertices, atol=1e-5)
    aligned = generate_demo(tmp_path / "d", seed=4, classes=["car"], workers=0, heading="aligned", **TINY_HARD)
    assert json.loads((aligned / "demo_meta.json").read_text())["heading"] == "aligned"


def test_hard_layouts_scans_and_readers(tmp_path):
    from plyfile import PlyData

    from crosspoint.data.layouts import detect_layout, detect_layouts
    from crosspoint.data.shapenet_render import ShapeNetRenderClassification, scan_shapenet_render
    from crosspoint.render import read_view_metadata

    classes = ["sofa", "cup", "knife"]
    out = generate_demo(tmp_path / "demo", seed=1, classes=classes, workers=0, **{**TINY_HARD, "per_class": 4})
    assert demo_is_complete(out) and demo_is_complete(out / "scans")
    meta = json.loads((out / "demo_meta.json").read_text())
    assert meta["preset"] == "hard" and meta["scans"]["clutter"] and meta["heading"] == "random"
    assert all("style" in o and "scan" in o for o in meta["objects"])
    smeta = json.loads((out / "scans" / "demo_meta.json").read_text())
    assert smeta["variant"] == "scan" and [o["id"] for o in smeta["objects"]] == [o["id"] for o in meta["objects"]]
    # whole objects and scans: the same objects, the same classes, two datasets
    found = {(i.name, i.root) for i in detect_layouts(out)}
    assert ("crosspoint_demo", out.resolve()) in found and ("crosspoint_demo", (out / "scans").resolve()) in found
    assert detect_layout(out, task="classification").root == out.resolve()
    whole, scans = scan_shapenet_render(out), scan_shapenet_render(out / "scans")
    assert not whole.problems and not scans.problems
    assert [r.name for r in whole.refs] == [r.name for r in scans.refs] and sorted(scans.class_names) == sorted(classes)
    tr = ShapeNetRenderClassification(out / "scans", "train", 256, 0.25, 1)
    te = ShapeNetRenderClassification(out / "scans", "val", 256, 0.25, 1)
    assert len(tr) + len(te) == 12 and len(te) > 0
    # a scan file: points with the part id of the surface each hit (-1: background); its view's
    # camera projects those points onto the scanner's image
    syn = HARD.synsets["sofa"]
    v = PlyData.read(str(out / "scans" / "ShapeNet" / syn / "sofa_0001.ply"))["vertex"]
    lab = np.asarray(v["label"])
    assert set(lab.tolist()) <= {-1, *HARD.class_part_ids("sofa")} and (lab >= 0).mean() > 0.3
    (cam,) = read_view_metadata(out / "scans" / "ShapeNetRendering" / syn / "sofa_0001" / "rendering")
    assert cam.size == ScanSettings().resolution
    # the part layout of the whole objects covers all of a class's part ids
    rows = np.loadtxt(out / "shapenetcore_partanno_segmentation_benchmark_v0_normal" / syn / "sofa_0000.txt")
    assert set(rows[:, 6].astype(int)) <= set(HARD.class_part_ids("sofa"))
    # a missing scan makes the demo incomplete
    (out / "scans" / "ShapeNet" / syn / "sofa_0002.ply").unlink()
    assert not demo_is_complete(out)


def test_cli_make_demo_presets(tmp_path, capsys):
    from crosspoint.cli import main

    hard = tmp_path / "hard"
    common = ["--per-class", "1", "--views", "1", "--size", "24", "--points", "128", "--workers", "0"]
    assert main(["make-demo", str(hard), *common]) == 0
    meta = json.loads((hard / "demo_meta.json").read_text())
    assert meta["preset"] == "hard" and len(meta["classes"]) == len(HARD.classes) and meta["scans"]["rotate"]
    assert len(list((hard / "scans" / "ShapeNet").glob("*/*.ply"))) == len(HARD.classes)
    assert "partial scans" in capsys.readouterr().out
    easy = tmp_path / "easy"
    assert main(["make-demo", str(easy), "--preset", "easy", *common]) == 0
    meta = json.loads((easy / "demo_meta.json").read_text())
    assert "preset" not in meta and len(meta["classes"]) == len(EASY.classes) and not (easy / "scans").exists()
    plain = tmp_path / "plain"
    assert main(["make-demo", str(plain), "--no-clutter", "--no-rotate", *common]) == 0
    meta = json.loads((plain / "demo_meta.json").read_text())
    assert meta["scans"]["clutter"] is False and meta["scans"]["rotate"] is False
    assert main(["make-demo", str(tmp_path / "bad"), "--no-scans", "--clutter", *common]) == 2
    # a second run into the finished hard demo keeps it (it crashed with a TypeError before)
    assert main(["make-demo", str(hard), *common]) == 0
    noisy = tmp_path / "noisy"
    assert main(["make-demo", str(noisy), "--density", "2", "--jitter", "0.01", *common]) == 0
    assert json.loads((noisy / "demo_meta.json").read_text())["nuisance"] == {"density": 2.0, "jitter": 0.01}
    assert main(["make-demo", str(tmp_path / "bad2"), "--jitter", "-0.1", *common]) == 2


def test_point_nuisances_change_only_the_points_and_are_recorded(tmp_path):
    """``--density`` / ``--jitter``: the meshes, views and scans stay those of the plain demo, the points are a
    density-weighted subset of 2n uniform samples plus clipped noise, the part files carry the same points,
    the setting is in demo_meta.json, and zeros (the default) leave the demo as it was, byte for byte."""
    from crosspoint.data.demo import PointNuisance
    from crosspoint.data.demo.writer import _sample
    from crosspoint.io import read_point_cloud

    classes = ["chair", "mug"]
    plain = _files(generate_demo(tmp_path / "plain", seed=3, classes=classes, workers=0, **TINY_HARD))
    zeros = _files(generate_demo(tmp_path / "zeros", seed=3, classes=classes, workers=0, nuisance=PointNuisance(),
                                 **TINY_HARD))
    assert zeros == plain
    nz = PointNuisance(density=2.0, jitter=0.02)
    root = generate_demo(tmp_path / "noisy", seed=3, classes=classes, workers=0, nuisance=nz, **TINY_HARD)
    noisy = _files(root)
    assert noisy.keys() == plain.keys()
    changed = {k for k in plain if plain[k] != noisy[k]}
    assert all(k.startswith(("ShapeNet/", "shapenetcore_partanno_segmentation_benchmark_v0_normal/")) or
               k in ("demo_meta.json", "scans/demo_meta.json", ".crosspoint-demo") for k in changed), sorted(changed)
    assert any(k.startswith("ShapeNet/") for k in changed)
    meta = json.loads((root / "demo_meta.json").read_text())
    assert meta["nuisance"] == {"density": 2.0, "jitter": 0.02} and "nuisance" not in json.loads(plain["demo_meta.json"])
    # one object by hand: density-weighted subset of the 2n uniform samples, then clipped noise
    syn = HARD.synsets["chair"]
    pts = read_point_cloud(root / "ShapeNet" / syn / "chair_0001.ply").points
    part = np.loadtxt(root / "shapenetcore_partanno_segmentation_benchmark_v0_normal" / syn / "chair_0001.txt")
    np.testing.assert_allclose(part[:, :3], pts, atol=1e-6)  # the part file's 6-decimal text
    rng, s_seed, _, _ = _object_seeds(HARD, 3, HARD.classes.index("chair"), 1)
    mesh, fl, _ = HARD.build_object("chair", rng)
    pool = _sample(mesh, fl, 2 * pts.shape[0], s_seed)[0]
    dist = np.abs(pts[:, None, :] - pool[None, :, :]).max(axis=2).min(axis=1)  # to the nearest pool point, per axis
    assert dist.max() <= 2.5 * 0.02 + 1e-6 and dist.mean() > 0.005
    # asked again with the same settings, the finished demo is kept (this raised a TypeError for the hard preset)
    stamp = (root / "demo_meta.json").stat().st_mtime_ns
    assert _files(generate_demo(root, seed=3, classes=classes, workers=0, nuisance=nz, **TINY_HARD)) == noisy
    assert (root / "demo_meta.json").stat().st_mtime_ns == stamp
    # asked again without the nuisances, the folder becomes the plain demo again
    assert _files(generate_demo(root, seed=3, classes=classes, workers=0, **TINY_HARD)) == plain
    with pytest.raises(ValueError, match="must be >= 0"):
        PointNuisance(jitter=-1.0)


def test_density_pool_and_the_sensor_preset(tmp_path, monkeypatch):
    """``pool``: the points are n of pool x n uniform samples (pool 2 is the default and the same bytes); the
    pool is recorded only when it is not 2. ``make-demo --sensor`` is :data:`SENSOR` (explicit flags
    override it), and the ``demo-sensor`` data keyword is the held-out seed with it, in its own cache folder."""
    from crosspoint.cli import main
    from crosspoint.data import base
    from crosspoint.data.demo import DEMO_KEYWORDS, SENSOR, PointNuisance, keyword_demo_dir, writer
    from crosspoint.data.demo.writer import _sample
    from crosspoint.io import read_point_cloud

    classes = ["mug"]
    two = _files(generate_demo(tmp_path / "two", seed=3, classes=classes, workers=0,
                               nuisance=PointNuisance(density=3.0, pool=2), **TINY_HARD))
    default = _files(generate_demo(tmp_path / "default", seed=3, classes=classes, workers=0,
                                   nuisance=PointNuisance(density=3.0), **TINY_HARD))
    assert two == default and "pool" not in json.loads(two["demo_meta.json"])["nuisance"]
    root = generate_demo(tmp_path / "four", seed=3, classes=classes, workers=0,
                         nuisance=PointNuisance(density=3.0, pool=4), **TINY_HARD)
    assert json.loads((root / "demo_meta.json").read_text())["nuisance"] == {"density": 3.0, "jitter": 0.0, "pool": 4}
    syn = HARD.synsets["mug"]
    pts = read_point_cloud(root / "ShapeNet" / syn / "mug_0000.ply").points
    rng, s_seed, _, _ = _object_seeds(HARD, 3, HARD.classes.index("mug"), 0)
    mesh, fl, _ = HARD.build_object("mug", rng)
    cand = _sample(mesh, fl, 4 * pts.shape[0], s_seed)[0]
    # no jitter: every point is one of the 4n candidates, exactly, and in the candidates' order
    idx = [int(np.flatnonzero((cand == p).all(axis=1))[0]) for p in pts]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    # it thins one side out: along the object's density direction d the kept candidates sit further out
    d = writer._nuisance_rng(HARD, 3, HARD.classes.index("mug"), 0).normal(size=3)
    c = cand.astype(np.float64) - cand.mean(axis=0)
    proj = c @ (d / np.linalg.norm(d)) / np.linalg.norm(c, axis=1).max()
    kept = np.zeros(len(cand), bool)
    kept[idx] = True
    assert proj[kept].mean() > proj.mean() + 0.1
    for bad in (1, 2.5):
        with pytest.raises(ValueError, match="pool"):
            PointNuisance(density=1.0, pool=bad)
    # the CLI: --sensor is SENSOR, an explicit flag overrides one of its values
    common = ["--per-class", "1", "--views", "1", "--size", "32", "--points", "64", "--no-scans", "--workers", "0"]
    assert main(["make-demo", str(tmp_path / "s"), "--sensor", *common]) == 0
    assert json.loads((tmp_path / "s" / "demo_meta.json").read_text())["nuisance"] == SENSOR.to_meta()
    assert main(["make-demo", str(tmp_path / "s2"), "--sensor", "--jitter", "0", *common]) == 0
    assert json.loads((tmp_path / "s2" / "demo_meta.json").read_text())["nuisance"] == {**SENSOR.to_meta(),
                                                                                        "jitter": 0.0}
    assert main(["make-demo", str(tmp_path / "s3"), "--density-pool", "1", *common]) == 2
    # the data keyword: the held-out seed with SENSOR, in a folder of its own
    monkeypatch.setenv("CROSSPOINT_CACHE_DIR", str(tmp_path / "cache"))
    assert tuple(DEMO_KEYWORDS) == base.DEMO_DATA_KEYWORDS
    assert keyword_demo_dir("demo") != keyword_demo_dir("demo-sensor")
    assert "sensor" in keyword_demo_dir("demo-sensor").name and DEMO_KEYWORDS["demo-sensor"]["seed"] == 1
    asked = []

    def fake_generate(out, **kw):  # records what ensure_demo asks for, and makes a small demo of it
        asked.append(kw)
        kw = {**kw, "per_class": 1, "n_views": 1, "size": 32, "n_points": 64, "scans": False, "classes": classes}
        return real_generate(out, **kw)

    real_generate = writer.generate_demo
    monkeypatch.setattr(writer, "generate_demo", fake_generate)
    got = base.resolve_root("demo-sensor")
    assert got == keyword_demo_dir("demo-sensor") and asked[0]["seed"] == 1 and asked[0]["nuisance"] == SENSOR
    assert json.loads((got / "demo_meta.json").read_text())["nuisance"] == SENSOR.to_meta()
