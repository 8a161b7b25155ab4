"""Demo generation speed: seconds per object and in total, easy vs hard preset, at their default sizes.

Goal (this 2-core machine, 2 worker processes): the hard demo at its default size (24 classes x 36
objects, 6 views of 137 px, partial scans) in under 60 s. The easy demo (8 x 60 objects, 24 views,
no scans) is the baseline measured in the same run. A per-stage breakdown (one process, a few
objects of every class) says where the time goes: building the mesh, sampling the points, rendering
the views, scanning, writing the files.

Run: ``python benchmarks/bench_demo.py [--workers 2] [--per-class N] [--skip-easy] [--stages-only]``.
The machine must be otherwise idle for the totals to mean anything (it is shared here: compare
the CPU seconds, printed beside the wall time).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def total(preset: str, workers: int, per_class: int | None, tmp: Path) -> dict:
    from crosspoint.data.demo import PRESET_DEFAULTS, generate_demo, get_preset

    out = tmp / f"demo-{preset}"
    n = (per_class or PRESET_DEFAULTS[preset]["per_class"]) * len(get_preset(preset).classes)
    c0, t0 = _cpu(), time.perf_counter()
    generate_demo(out, preset=preset, per_class=per_class, workers=workers)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out)
    return {"preset": preset, "objects": n, "wall_s": wall, "cpu_s": cpu, "mb": size / 2**20}


def stages(preset: str, per_class: int = 2) -> dict:
    """Seconds per object of each stage, in this process (numba kernels warmed up first)."""
    from crosspoint.data.demo import PRESET_DEFAULTS, ScanSettings, get_preset, scan_object
    from crosspoint.data.demo.writer import _object_seeds, _sample
    from crosspoint.render import render_views

    fs = get_preset(preset)
    n_views = PRESET_DEFAULTS[preset]["n_views"]
    scans = PRESET_DEFAULTS[preset]["scans"]
    t = {"build": 0.0, "sample": 0.0, "render": 0.0, "scan": 0.0}
    warm = fs.make_object(fs.classes[0], 0)
    render_views(warm[0], 1, size=137, normalize=False)
    scan_object(warm[0], warm[1], 256, 0)
    n = 0
    for ci, c in enumerate(fs.classes):
        for i in range(per_class):
            rng, s_seed, v_seed, scan_rng = _object_seeds(fs, 0, ci, i)
            t0 = time.perf_counter()
            mesh, fl, _ = fs.build_object(c, rng)
            t1 = time.perf_counter()
            _sample(mesh, fl, 2048, s_seed)
            t2 = time.perf_counter()
            render_views(mesh, n_views, size=137, seed=v_seed, normalize=False)
            t3 = time.perf_counter()
            if scans:
                scan_object(mesh, fl, 2048, scan_rng, ScanSettings())
            t4 = time.perf_counter()
            t["build"] += t1 - t0
            t["sample"] += t2 - t1
            t["render"] += t3 - t2
            t["scan"] += t4 - t3
            n += 1
    return {k: v / n for k, v in t.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--per-class", type=int, default=None, help="objects per class (default: each preset's)")
    ap.add_argument("--skip-easy", action="store_true")
    ap.add_argument("--stages-only", action="store_true")
    args = ap.parse_args(argv)
    presets = ["hard"] if args.skip_easy else ["easy", "hard"]
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    for p in presets:
        st = stages(p)
        print(f"{p:5s} per object, one process: " + ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in st.items())
              + " (+ writing the files)")
    if args.stages_only:
        return 0
    with tempfile.TemporaryDirectory() as d:
        for p in presets:
            r = total(p, args.workers, args.per_class, Path(d))
            print(f"{p:5s} {r['objects']} objects with {args.workers} workers: {r['wall_s']:.1f} s wall "
                  f"({r['wall_s'] / r['objects'] * 1000:.0f} ms/object), {r['cpu_s']:.1f} s CPU "
                  f"({r['cpu_s'] / r['objects'] * 1000:.0f} ms/object), {r['mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
