"""Datasets: ShapeNetRender, ModelNet40, ScanObjectNN, ShapeNetPart, folders, and the embedded demo
(:mod:`crosspoint.data.synthetic`).

This package imports nothing heavy: the names below are loaded from their submodules on first
use.

Entry points
------------
``open_dataset(root, task="pretrain"|"classification"|"partseg", split=None, *, layout=None, **kw)``
    Detect the layout at ``root`` (the dataset folder or its parent) and build the dataset for
    ``task``; ``kw`` go to the constructor (``num_points``, ``seed``, ``variant`` for
    ScanObjectNN, ...). ``split``: for the releases with official splits (ModelNet40,
    ScanObjectNN, ShapeNetPart) "train" by default, also "test" (and "val"/"trainval" for
    ShapeNetPart); for ShapeNetRender, the demo and folders, None (all objects) by default, or
    the held-out "train"/"val" split (``val_fraction``, ``seed``).
``detect_layout(root, task=None, layout=None) -> LayoutInfo(name, root, details)``,
``detect_layouts(root) -> [LayoutInfo]`` (:mod:`crosspoint.data.layouts`)
``validate_dataset(root, *, layout=None, quick=False) -> Report(layout, root, counts, problems, warnings)``
    (:mod:`crosspoint.data.validate`; ``crosspoint check-data`` prints it).

Datasets (one module each; see their docstrings for layouts and quirks)
-----------------------------------------------------------------------
- pretraining (items are dicts, :mod:`crosspoint.data.pretrain`): :class:`ShapeNetRenderDataset`,
  :class:`FolderPretrainDataset`;
- classification (``(points (N, 3) float32, label)``, ``points``, ``labels``, ``class_names``):
  :class:`ModelNet40H5`, :class:`ScanObjectNNH5`, :class:`ShapeNetRenderClassification`,
  :class:`FolderClassification`;
- part segmentation (``(points, category, part_labels)``, ``num_categories``, ``num_parts``,
  ``part_ranges``): :class:`ShapeNetPartH5`, :class:`ShapeNetPartTxt`.

Every dataset lists its objects with ``objects() -> [ObjectRef(name, ref, label)]`` (``ref`` is a
path, or ``"file.h5#row"``, for :func:`crosspoint.io.read_point_cloud`). A broken dataset raises
:class:`DatasetError` (a ``ValueError``) at construction, naming the path and what is wrong.
Augmentations and seeding: :mod:`crosspoint.data.transforms`. The held-out validation split of
the pretraining data (model selection): :func:`stratified_split`, :func:`holdout_split`, or
``split="train"|"val"`` with the same ``val_fraction``/``seed`` on the pretraining and
classification datasets.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DatasetError": "base",
    "ObjectRef": "base",
    "LazyPoints": "base",
    "fix_point_count": "base",
    "stratified_split": "base",
    "LayoutInfo": "layouts",
    "LAYOUTS": "layouts",
    "detect_layout": "layouts",
    "detect_layouts": "layouts",
    "Report": "validate",
    "validate_dataset": "validate",
    "validate_all": "validate",
    "ShapeNetRenderDataset": "shapenet_render",
    "ShapeNetRenderClassification": "shapenet_render",
    "holdout_split": "shapenet_render",
    "ModelNet40H5": "h5data",
    "ScanObjectNNH5": "h5data",
    "ShapeNetPartH5": "h5data",
    "ShapeNetPartTxt": "partseg",
    "PartTable": "partseg",
    "FolderPretrainDataset": "folder",
    "FolderClassification": "folder",
    "PretrainDataset": "pretrain",
    "worker_init_fn": "transforms",
    "paper_point_augmentation": "transforms",
    "paper_image_augmentation": "transforms",
    "eval_image_transform": "transforms",
}

__all__ = sorted(_EXPORTS) + ["open_dataset", "TASKS"]

TASKS = ("pretrain", "classification", "partseg")


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'crosspoint.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"crosspoint.data.{mod}"), name)
    globals()[name] = value
    return value


def open_dataset(root, task: str = "pretrain", split: str | None = None, *, layout: str | None = None, **kw):
    """Build the dataset for ``task`` from whatever layout is at ``root`` (see the module docstring).

    Raises :class:`DatasetError` when no usable layout is found or the data is broken.
    """
    from pathlib import Path

    from crosspoint.data.base import DatasetError
    from crosspoint.data.layouts import detect_layout

    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    info = detect_layout(root, task=task, layout=layout)
    name = info.name
    if task == "pretrain":
        if name in ("crosspoint_demo", "shapenet_render"):
            from crosspoint.data.shapenet_render import ShapeNetRenderDataset

            return ShapeNetRenderDataset(info.root, split=split, **kw)
        from crosspoint.data.folder import FolderPretrainDataset

        return FolderPretrainDataset(info.root, split=split, **kw)
    if task == "classification":
        if name == "modelnet40_h5":
            from crosspoint.data.h5data import ModelNet40H5

            return ModelNet40H5(info.root, split=split or "train", **kw)
        if name == "scanobjectnn_h5":
            from crosspoint.data.h5data import ScanObjectNNH5

            return ScanObjectNNH5(info.root, split=split or "train", **kw)
        if name in ("crosspoint_demo", "shapenet_render"):
            from crosspoint.data.shapenet_render import ShapeNetRenderClassification

            return ShapeNetRenderClassification(info.root, split=split, **kw)
        from crosspoint.data.folder import FolderClassification

        return FolderClassification(info.root, split=split, **kw)
    # partseg
    if name == "shapenetpart_h5":
        from crosspoint.data.h5data import ShapeNetPartH5

        return ShapeNetPartH5(info.root, split=split or "train", **kw)
    from crosspoint.data.partseg import ShapeNetPartTxt

    part_root = info.details.get("part_root") if name == "crosspoint_demo" else info.root
    if part_root is None:
        raise DatasetError(f"{info.root}: the demo dataset has no part-segmentation data")
    return ShapeNetPartTxt(Path(part_root), split=split or "train", **kw)
