"""Checking a dataset before anything trains on it: :func:`validate_dataset` -> :class:`Report`.

``problems`` are what makes the data unusable or silently wrong (missing folders or files, objects
without views, unreadable point files or views, wrong shapes, NaNs, labels or part ids out of
range, split files naming missing objects, empty classes); ``warnings`` are what is odd but
harmless (ignored files, orphan renderings, varying point counts, classes absent from a split).

``quick=True`` keeps the structural checks (every folder, file name, split entry; every HDF5 file's
shapes and labels) but reads only a sample of ``sample`` objects' point files and views; the full
scan reads every file (with a tqdm bar on stderr when ``progress``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from crosspoint.data.base import DatasetError, natural_key
from crosspoint.data.layouts import (
    MODELNET40_CLASSES,
    PART_TXT_DIR,
    SCANOBJECTNN_CLASSES,
    LayoutInfo,
    detect_layout,
    detect_layouts,
    read_demo_meta,
)

log = logging.getLogger(__name__)

__all__ = ["Report", "validate_dataset", "validate_layout", "validate_all"]


@dataclass
class Report:
    """The result of :func:`validate_dataset`."""

    layout: str | None
    root: Path
    counts: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    quick: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "layout": self.layout,
            "root": str(self.root),
            "counts": self.counts,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "quick": self.quick,
            "ok": self.ok,
        }

    def format(self) -> str:
        lines = [f"layout: {self.layout or '(none recognised)'}", f"root: {self.root}"]
        for k, v in self.counts.items():
            if isinstance(v, dict):
                v = ", ".join(f"{kk} {vv}" for kk, vv in v.items())
            lines.append(f"{k}: {v}")
        if self.quick:
            lines.append("(quick check: file contents sampled)")
        lines.append(f"problems: {len(self.problems)}")
        lines += [f"  ERROR {p}" for p in self.problems]
        if self.warnings:
            lines.append(f"warnings: {len(self.warnings)}")
            lines += [f"  warning {w}" for w in self.warnings]
        return "\n".join(lines)


def _iterate(items: list, progress: bool, desc: str) -> Iterable:
    if progress and items:
        from tqdm import tqdm

        return tqdm(items, desc=desc, unit="file", leave=False)
    return items


def _pick(n: int, quick: bool, sample: int) -> list[int]:
    if not quick or n <= sample:
        return list(range(n))
    return sorted(np.random.default_rng(0).choice(n, size=sample, replace=False).tolist())


def _read_cloud(path, problems: list[str], *, nan_is_problem: bool = True, warnings: list[str] | None = None):
    """Points of a file via crosspoint.io, recording problems; None when unreadable."""
    from crosspoint.io import read_point_cloud

    try:
        pc = read_point_cloud(path)
    except (ValueError, OSError) as e:
        msg = str(e)
        problems.append(msg if str(path) in msg else f"{path}: unreadable point file ({msg})")
        return None
    for w in pc.warnings:
        if "non-finite" in w:
            (problems if nan_is_problem else (warnings if warnings is not None else problems)).append(
                f"{path}: NaN/inf coordinates ({w})"
            )
    if pc.n_points == 0:
        problems.append(f"{path}: no points")
        return None
    return pc.points


def _check_image(path, problems: list[str]) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.size[0] < 1 or im.size[1] < 1:
                raise ValueError("empty image")
    except Exception as e:
        problems.append(f"{path}: unreadable view ({e})")
        return False
    return True


def _count_summary(counts: list[int]) -> str:
    if not counts:
        return "-"
    lo, hi = min(counts), max(counts)
    return str(lo) if lo == hi else f"{lo}..{hi}"


# ------------------------------------------------------------------------------ ShapeNetRender


def _validate_render(report: Report, root: Path, quick: bool, sample: int, progress: bool) -> None:
    from crosspoint.data.shapenet_render import scan_shapenet_render

    index = scan_shapenet_render(root)
    report.problems += index.problems
    report.warnings += index.warnings
    report.counts.update(index.counts())
    per_class = {}
    for r in index.refs:
        name = index.class_names[r.label]
        per_class[name] = per_class.get(name, 0) + 1
    report.counts["objects_per_class"] = per_class
    picks = _pick(len(index.refs), quick, sample)
    n_points = []
    for i in _iterate(picks, progress, "point files"):
        pts = _read_cloud(index.refs[i].ref, report.problems)
        if pts is not None:
            n_points.append(int(pts.shape[0]))
    report.counts["points_per_object"] = _count_summary(n_points)
    if len(set(n_points)) > 1:
        report.warnings.append(
            f"point counts vary between objects ({_count_summary(n_points)}); items are resampled to num_points"
        )
    views = [(i, v) for i in picks for v in index.views[i]]
    if quick:  # one view per sampled object
        views = [(i, index.views[i][0]) for i in picks if index.views[i]]
    bad_views: dict[int, int] = {}
    for i, v in _iterate(views, progress, "views"):
        if not _check_image(v, report.problems):
            bad_views[i] = bad_views.get(i, 0) + 1
    for i, n in bad_views.items():
        if not quick and n == len(index.views[i]):
            report.problems.append(f"{index.refs[i].ref}: none of its {n} views can be read")


# ------------------------------------------------------------------------------ HDF5


def _h5_file_check(path: Path, keys: tuple[str, ...], report: Report, n_classes: int, label_name: str = "label"):
    """Read one HDF5 file, record its problems; returns (labels, cats-for-pid check) or None."""
    from crosspoint.data.h5data import read_h5_rows

    try:
        rows = read_h5_rows([path], keys, None)
    except DatasetError as e:
        report.problems.append(str(e))
        return None
    data = rows["data"]
    if data.shape[0] == 0:
        report.problems.append(f"{path}: no objects")
        return None
    bad = ~np.isfinite(data.reshape(data.shape[0], -1)).all(axis=1)
    if bad.any():
        rows_bad = np.flatnonzero(bad)
        report.problems.append(
            f"{path}: {rows_bad.size} object(s) with NaN/inf coordinates (rows {', '.join(map(str, rows_bad[:5]))}{' ...' if rows_bad.size > 5 else ''})"
        )
    labels = np.asarray(rows["label"]).astype(np.int64)
    out = (labels < 0) | (labels >= n_classes)
    if out.any():
        r = np.flatnonzero(out)
        report.problems.append(
            f"{path}: {r.size} {label_name}(s) out of range 0..{n_classes - 1} (row {r[0]} has {labels[r[0]]})"
        )
    return rows


def _validate_modelnet(report: Report, root: Path) -> None:
    names_file = root / "shape_names.txt"
    names = list(MODELNET40_CLASSES)
    if names_file.is_file():
        listed = [ln.strip() for ln in names_file.read_text(errors="replace").splitlines() if ln.strip()]
        if listed:
            names = listed
    else:
        report.warnings.append(f"{names_file}: missing; using the standard 40 ModelNet40 class names")
    report.counts["classes"] = len(names)
    splits = {}
    for split in ("train", "test"):
        files = sorted(root.glob(f"ply_data_{split}*.h5"), key=natural_key)
        if not files:
            report.problems.append(f"{root}: no ply_data_{split}*.h5 files ({split} split missing)")
            continue
        labels_all, points = [], set()
        for f in files:
            rows = _h5_file_check(f, ("data", "label"), report, len(names))
            if rows is not None:
                labels_all.append(rows["label"].astype(np.int64))
                points.add(int(rows["data"].shape[1]))
        labels = np.concatenate(labels_all) if labels_all else np.zeros(0, np.int64)
        splits[split] = int(labels.size)
        if labels.size:
            report.counts[f"labels_{split}"] = f"{labels.min()}..{labels.max()} (of 0..{len(names) - 1})"
        present = set(np.unique(labels[(labels >= 0) & (labels < len(names))]).tolist())
        missing = [names[k] for k in range(len(names)) if k not in present]
        if missing and labels.size:
            report.warnings.append(f"{split} split has no objects of {len(missing)} class(es): {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        report.counts[f"points_per_object_{split}"] = ", ".join(map(str, sorted(points))) or "-"
    report.counts["splits"] = splits
    report.counts["objects"] = sum(splits.values())


def _validate_scanobjectnn(report: Report, info: LayoutInfo) -> None:
    variants = info.details.get("variants", {})
    report.counts["classes"] = len(SCANOBJECTNN_CLASSES)
    report.counts["variants"] = ", ".join(f"{v} ({d['source']})" for v, d in variants.items()) or "-"
    splits = {}
    for variant, d in variants.items():
        for split in ("train", "test"):
            path = Path(d[split])
            if not path.is_file():
                report.problems.append(f"{path}: missing ({variant} {split} split)")
                continue
            rows = _h5_file_check(path, ("data", "label"), report, len(SCANOBJECTNN_CLASSES))
            if rows is not None and rows["label"].size:
                lab = rows["label"].astype(np.int64)
                splits[f"{variant} {split}"] = int(lab.size)
                report.counts[f"labels {variant} {split}"] = f"{lab.min()}..{lab.max()} (of 0..{len(SCANOBJECTNN_CLASSES) - 1})"
    report.counts["splits"] = splits
    report.counts["objects"] = sum(splits.values())


def _validate_part_h5(report: Report, root: Path) -> None:
    from crosspoint.data.partseg import PartTable

    table = PartTable.standard()
    report.counts["categories"] = table.num_categories
    report.counts["parts"] = table.num_parts
    splits = {}
    ranges: dict[str, tuple[int, int, int, int]] = {}
    for split in ("train", "val", "test"):
        files = sorted(root.glob(f"ply_data_{split}*.h5"), key=natural_key)
        if not files:
            report.problems.append(f"{root}: no ply_data_{split}*.h5 files ({split} split missing)")
            continue
        n = 0
        for f in files:
            rows = _h5_file_check(f, ("data", "label", "pid"), report, table.num_categories, "category")
            if rows is None:
                continue
            cats = rows["label"].astype(np.int64)
            n += int(cats.size)
            lo_c, hi_c = int(cats.min()), int(cats.max())
            lo_p, hi_p = int(rows["pid"].min()), int(rows["pid"].max())
            prev = ranges.get(split)
            if prev is not None:
                lo_c, hi_c, lo_p, hi_p = min(lo_c, prev[0]), max(hi_c, prev[1]), min(lo_p, prev[2]), max(hi_p, prev[3])
            ranges[split] = (lo_c, hi_c, lo_p, hi_p)
            okc = (cats >= 0) & (cats < table.num_categories)
            pid = rows["pid"].astype(np.int64)[okc]
            c = cats[okc]
            bad = ((pid < table.part_start[c][:, None]) | (pid >= table.part_stop[c][:, None])).any(axis=1)
            if bad.any():
                r = np.flatnonzero(okc)[np.flatnonzero(bad)]
                report.problems.append(
                    f"{f}: {r.size} object(s) with part ids outside their category's range (first: row {r[0]}, "
                    f"{table.category_names[cats[r[0]]]} owns {table.part_start[cats[r[0]]]}..{table.part_stop[cats[r[0]]] - 1})"
                )
        splits[split] = n
        if split in ranges:
            a, b, c, d = ranges[split]
            report.counts[f"labels_{split}"] = f"categories {a}..{b}, parts {c}..{d} (of 0..{table.num_parts - 1})"
    report.counts["splits"] = splits
    report.counts["objects"] = sum(splits.values())


# ------------------------------------------------------------------------------ ShapeNetPart txt


def _validate_part_txt(report: Report, root: Path, quick: bool, sample: int, progress: bool, prefix: str = "") -> None:
    from crosspoint.data.partseg import read_part_txt, scan_part_txt

    try:
        index = scan_part_txt(root)
    except DatasetError as e:
        report.problems.append(str(e))
        return
    report.problems += index.problems
    report.warnings += index.warnings
    report.counts[f"{prefix}categories"] = index.table.num_categories
    report.counts[f"{prefix}parts"] = index.table.num_parts
    report.counts[f"{prefix}splits"] = {s: len(v) for s, v in index.splits.items()}
    report.counts[f"{prefix}files"] = index.n_files
    entries = sorted({e for v in index.splits.values() for e in v})
    syn_to_cat = index.syn_to_cat  # type: ignore[attr-defined]
    n_points = []
    for k in _iterate(_pick(len(entries), quick, sample), progress, "part files"):
        syn, oid = entries[k]
        path = index.path(syn, oid)
        try:
            pts, lab = read_part_txt(path)
        except DatasetError as e:
            report.problems.append(str(e))
            continue
        n_points.append(int(pts.shape[0]))
        c = syn_to_cat[syn]
        a, b = index.table.part_ranges[c]
        bad = (lab < a) | (lab >= b)
        if bad.any():
            report.problems.append(
                f"{path}: {int(bad.sum())} part label(s) out of range {a}..{b - 1} for {index.table.category_names[c]} "
                f"(e.g. {int(lab[bad][0])})"
            )
    report.counts[f"{prefix}points_per_object"] = _count_summary(n_points)


# ------------------------------------------------------------------------------ folder


def _validate_folder(report: Report, root: Path, quick: bool, sample: int, progress: bool) -> None:
    from crosspoint.data.folder import cache_root_for, scan_folder

    index = scan_folder(root)
    report.problems += index.problems
    report.warnings += index.warnings
    report.counts["classes"] = len(index.class_names)
    report.counts["objects"] = len(index.files)
    report.counts["objects_per_class"] = {
        c: int((index.labels == k).sum()) for k, c in enumerate(index.class_names)
    }
    n_points, unreadable = [], []
    for i in _iterate(_pick(len(index.files), quick, sample), progress, "files"):
        pts = _read_cloud(index.files[i], report.problems, nan_is_problem=False, warnings=report.warnings)
        if pts is None:
            unreadable.append(i)
        else:
            n_points.append(int(pts.shape[0]))
    report.counts["points_per_object"] = _count_summary(n_points)
    for k, c in enumerate(index.class_names):
        members = np.flatnonzero(index.labels == k)
        if members.size and not quick and all(m in unreadable for m in members):
            report.problems.append(f"{root / c}: no readable files in this class")
    cache = cache_root_for(root) if (root / ".crosspoint_cache").is_dir() else None
    if cache is not None:
        n_cached = sum(1 for key in index.keys if (cache / "views" / key / "source.json").is_file())
        report.counts["objects_with_cached_views"] = n_cached


# ------------------------------------------------------------------------------ demo


def _validate_demo(report: Report, info: LayoutInfo, quick: bool, sample: int, progress: bool) -> None:
    root = info.root
    try:
        meta = read_demo_meta(root / "demo_meta.json")
    except DatasetError as e:
        report.problems.append(str(e))
        meta = {}
    _validate_render(report, root, quick, sample, progress)
    classes = meta.get("classes") if isinstance(meta, dict) else None
    if isinstance(classes, list):
        syns = {str(c.get("synset")) for c in classes if isinstance(c, dict)}
        on_disk = {p.name for p in (root / "ShapeNet").iterdir() if p.is_dir()} if (root / "ShapeNet").is_dir() else set()
        for s in sorted(syns - on_disk):
            report.problems.append(f"{root / 'ShapeNet' / s}: class listed in demo_meta.json has no folder")
        for s in sorted(on_disk - syns):
            report.warnings.append(f"{root / 'ShapeNet' / s}: folder not listed in demo_meta.json")
    part_root = info.details.get("part_root")
    if part_root:
        _validate_part_txt(report, Path(part_root), quick, sample, progress, prefix="part_")
    else:
        report.warnings.append(f"{root}: no part-segmentation data ({PART_TXT_DIR}/)")


# ------------------------------------------------------------------------------ entry points


def validate_layout(info: LayoutInfo, *, quick: bool = False, sample: int = 32, progress: bool = False) -> Report:
    """Validate one recognised layout (see the module docstring)."""
    report = Report(info.name, info.root, quick=quick)
    try:
        if info.name == "crosspoint_demo":
            _validate_demo(report, info, quick, sample, progress)
        elif info.name == "shapenet_render":
            _validate_render(report, info.root, quick, sample, progress)
        elif info.name == "modelnet40_h5":
            _validate_modelnet(report, info.root)
        elif info.name == "scanobjectnn_h5":
            _validate_scanobjectnn(report, info)
        elif info.name == "shapenetpart_h5":
            _validate_part_h5(report, info.root)
        elif info.name == "shapenetpart_txt":
            _validate_part_txt(report, info.root, quick, sample, progress)
        elif info.name == "folder":
            _validate_folder(report, info.root, quick, sample, progress)
        else:  # pragma: no cover
            report.problems.append(f"{info.root}: no validator for layout {info.name}")
    except DatasetError as e:
        report.problems.append(str(e))
    return report


def validate_dataset(
    root, *, layout: str | None = None, quick: bool = False, sample: int = 32, progress: bool = False
) -> Report:
    """Detect the layout at ``root`` (or use ``layout``) and check it. Never raises for bad data:
    an unrecognised or missing folder is a report with ``layout=None`` and one problem."""
    try:
        info = detect_layout(root, layout=layout)
    except DatasetError as e:
        return Report(None, Path(root), problems=[str(e)], quick=quick)
    return validate_layout(info, quick=quick, sample=sample, progress=progress)


def validate_all(root, *, quick: bool = False, sample: int = 32, progress: bool = False) -> list[Report]:
    """One report per layout found at ``root`` (a parent such as the reference's ``data/`` may hold several)."""
    try:
        found = detect_layouts(root)
    except DatasetError as e:
        return [Report(None, Path(root), problems=[str(e)], quick=quick)]
    if not found:
        return [validate_dataset(root, quick=quick)]
    return [validate_layout(i, quick=quick, sample=sample, progress=progress) for i in found]

