"""The loaded models of one checkpoint: :class:`ModelSession`.

``ModelSession(checkpoint=None, *, device="auto", k=None, image_checkpoint=None)`` opens

* a project bundle (``crosspoint-explorer`` format): its point encoder, its image encoder when it
  has one, and its part-segmentation head (``seg_head``) when it has one -- with the part table
  saved in ``meta["part_table"]`` (the demo's 8 categories / 25 parts) or else the standard
  16-category ShapeNetPart table;
* an official CrossPoint file: ``best_model.pth`` / ``ckpt_epoch_*.pth`` (a DGCNN: no image encoder,
  so the image side is unavailable unless ``image_checkpoint`` names the matching
  ``img_model_best.pth``), a part-segmentation pretraining file (the backbone), or a fine-tuned
  ``model.t7`` (backbone + head, ShapeNetPart table, ``k`` 40).

``checkpoint=None`` opens the bundled demo checkpoint (:func:`default_checkpoint_path`).
The point count and image size the functions use by default are the ones the model was trained
with when the checkpoint says (a training checkpoint's ``config["data"]``), else the paper's 2048
points and 224 px. The kNN size ``k`` is the one the model was trained with unless given
(:func:`crosspoint.models.load_point_encoder`; ``k_source`` says where it came from: "checkpoint",
"official default" = the reference's 15, "argument", ...). Images reach the image encoder as it
saw them in training: ``background`` is the checkpoint's ``data.background``
(:func:`crosspoint.models.checkpoint_background`: "white" for a checkpoint saved before the setting
existed, like the bundled demo checkpoint; "drop", the reference's, for official files), applied
by :func:`crosspoint.data.transforms.to_rgb`. Every model is put in eval mode on ``device``; the
analysis functions run them without gradients (except the heatmaps, which differentiate the
similarity) and under bf16 autocast on CUDA only.
Model calls go through :meth:`ModelSession.inference` (the session's lock, no gradients, autocast on
CUDA), so worker threads may share a session.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from pathlib import Path

import numpy as np

from crosspoint.analysis._common import AnalysisError, user_cache_dir

log = logging.getLogger(__name__)

__all__ = ["ModelSession", "default_checkpoint_path", "DEMO_CHECKPOINT_NAME", "random_weights_session"]

DEMO_CHECKPOINT_NAME = "demo_checkpoint.pt"
#: the paper's input sizes, used when a checkpoint does not say what it was trained with
DEFAULT_N_POINTS = 2048
DEFAULT_IMAGE_SIZE = 224


def default_checkpoint_path() -> Path:
    """``<repository>/assets/demo_checkpoint.pt`` (may not exist)."""
    return Path(__file__).resolve().parents[2] / "assets" / DEMO_CHECKPOINT_NAME


def _file_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _n_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters())) if model is not None else 0


def _plain_meta(meta) -> dict:
    """The scalar entries of a checkpoint's ``meta`` (for display)."""
    if not isinstance(meta, dict):
        return {}
    return {str(k): v for k, v in meta.items() if isinstance(v, (str, int, float, bool)) or v is None}


def _load_dense_heads(obj: dict, path="the checkpoint"):
    """The checkpoint's :class:`~crosspoint.models.dense.DenseHeads`, or None (not trained with them)."""
    entry = obj.get("dense_heads")
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        return None
    from crosspoint.models import CheckpointError
    from crosspoint.models.checkpoint import check_finite
    from crosspoint.models.dense import DenseHeads

    if isinstance(entry.get("state_dict"), dict):
        check_finite(entry["state_dict"], path, "its dense heads")
    try:
        heads = DenseHeads(**entry["config"])
        heads.load_state_dict({k: v.float() for k, v in entry["state_dict"].items()})
    except (TypeError, KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its dense heads cannot be loaded: {exc}") from None
    return heads


class ModelSession:
    """The models of one checkpoint, ready for the analysis functions (see the module docstring).

    Attributes: ``path``, ``device``, ``n_points``, ``image_size``, ``background`` (and
    ``background_source``), ``k`` (and ``k_source``), ``point_encoder``, ``image_encoder`` (or None),
    ``segmenter`` (or None), ``part_table`` (or None), ``meta``, ``fingerprint``, ``lock``.
    """

    def __init__(self, checkpoint=None, *, device="auto", k: "int | None" = None,
                 image_checkpoint=None, image_arch: str = "resnet50"):
        import torch  # noqa: F401  (models need it; keep the import error here)

        from crosspoint.device import resolve_device
        from crosspoint.models import CheckpointError
        from crosspoint.models.checkpoint import shared_reads

        if checkpoint is None:
            path = default_checkpoint_path()
            if not path.is_file():
                raise AnalysisError(f"no bundled demo checkpoint at {path}: open a checkpoint file instead "
                                    "(a CrossPoint Explorer bundle or an official CrossPoint .pth/.t7)")
        else:
            path = Path(checkpoint).expanduser()
        self.path = path
        #: the arguments that rebuild this session in another process (see :mod:`.background`)
        self.spec = {"checkpoint": str(path), "device": str(device), "k": k,
                     "image_checkpoint": None if image_checkpoint is None else str(image_checkpoint),
                     "image_arch": image_arch}
        try:
            self.device = resolve_device(device)
        except ValueError as exc:
            raise AnalysisError(str(exc)) from None
        self.lock = threading.RLock()
        self.image_path = Path(image_checkpoint).expanduser() if image_checkpoint is not None else None
        self.image_unavailable_reason: "str | None" = None
        self.seg_note: "str | None" = None

        try:
            with shared_reads():  # every loader below reads the file once between them
                self._load(path, k, image_arch)
        except CheckpointError as exc:
            raise AnalysisError(str(exc)) from exc
        self._finish_load(path)

    def _load(self, path: Path, k, image_arch: str) -> None:
        from crosspoint.models import checkpoint_background, load_image_encoder, load_point_encoder, read_checkpoint
        from crosspoint.models.checkpoint import FORMAT

        obj = read_checkpoint(path)
        bundle = isinstance(obj, dict) and obj.get("format") == FORMAT
        self.format = "bundle" if bundle else "official"
        self.meta = dict(obj.get("meta") or {}) if bundle and isinstance(obj.get("meta"), dict) else {}
        has_seg = self._has_seg_head(obj, bundle)
        has_image = bundle and isinstance(obj.get("image_encoder"), dict)
        self.n_points, self.image_size = self._input_sizes(obj)
        #: what the image encoder saw behind transparent pixels ("drop", "white" or "black")
        self.background, self.background_source = (
            checkpoint_background(self.image_path) if self.image_path is not None else checkpoint_background(obj))
        #: the dense point-pixel heads (crosspoint.models.dense) when the checkpoint was trained with them
        self.dense_heads = _load_dense_heads(obj, path) if bundle else None
        from crosspoint.analysis.segment import PROBE_KEY

        #: the bundle's category-probe entry as read (None without one), for ``segment.category_probe``
        self.category_probe = obj.get(PROBE_KEY) if bundle and isinstance(obj.get(PROBE_KEY), dict) else None

        self.segmenter = None
        self.part_table = None
        self.seg_backbone_own = False
        if has_seg:
            from crosspoint.evaluation.partseg import load_segmenter

            self.segmenter = load_segmenter(path, k=k, device=self.device)
            #: the head was fine-tuned with its own copy of the encoder (``seg_backbone``): every other
            #: analysis keeps the pretrained ``point_encoder``
            self.seg_backbone_own = bool(getattr(self.segmenter, "own_backbone", False))
            self.point_encoder = (load_point_encoder(path, k=k, device=self.device) if self.seg_backbone_own
                                  else self.segmenter.backbone)
            self.part_table = self._part_table()
        else:
            self.point_encoder = load_point_encoder(path, k=k, device=self.device)
        del obj

        self.image_encoder = None
        if self.image_path is not None:
            self.image_encoder = load_image_encoder(self.image_path, arch=image_arch, device=self.device)
        elif has_image:
            self.image_encoder = load_image_encoder(path, device=self.device)
        else:
            kind = ("an official CrossPoint point-encoder file" if self.format == "official"
                    else "a checkpoint without an image encoder")
            self.image_unavailable_reason = (
                f"{path} is {kind}: it holds no image encoder, so image retrieval and image heatmaps are "
                "unavailable (for official weights, also open the matching img_model_best.pth: "
                "ModelSession(..., image_checkpoint=...))")

    def _finish_load(self, path: Path) -> None:
        if self.image_encoder is not None and self.image_encoder.projection_dim != self.point_encoder.projection_dim:
            raise AnalysisError(
                f"{self.image_path or path}: the image encoder projects to {self.image_encoder.projection_dim} dims "
                f"but the point encoder to {self.point_encoder.projection_dim}: they are not a CrossPoint pair")
        if self.dense_heads is not None:
            self.dense_heads.to(self.device)
        for m in (self.point_encoder, self.image_encoder, self.segmenter, self.dense_heads):
            if m is not None:
                m.eval()
                for p in m.parameters():
                    p.requires_grad_(False)
        key = _file_key(path) + f"|k={self.k}"
        if self.image_path is not None:
            key += "|" + _file_key(self.image_path)
        self.fingerprint = hashlib.sha1(key.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------------------ loading
    @contextlib.contextmanager
    def inference(self, *, grad: bool = False, autocast: bool = True):
        """The one way to call the session's models from any thread: holds the session's lock, turns
        gradients off (on with ``grad=True``, for Grad-CAM) and, with ``autocast``, runs under bf16
        autocast on CUDA (a no-op on the CPU)::

            with session.inference():
                f = session.point_encoder.embed(x)
        """
        import torch

        from crosspoint.device import autocast as _autocast

        with self.lock, (torch.enable_grad() if grad else torch.no_grad()):
            with (_autocast(self.device) if autocast else contextlib.nullcontext()):
                yield

    def _input_sizes(self, obj) -> tuple[int, int]:
        """The point count and image size the model was trained with: a training checkpoint's
        ``config["data"]`` (``num_points``, ``image_size``), else ``meta``, else the paper's 2048 / 224."""
        n, size = DEFAULT_N_POINTS, DEFAULT_IMAGE_SIZE
        sources = []
        if isinstance(obj, dict):
            cfg = obj.get("config")
            if isinstance(cfg, dict) and isinstance(cfg.get("data"), dict):
                sources.append(cfg["data"])
        sources.append(self.meta)
        for src in reversed(sources):
            for key, cast in (("num_points", "n"), ("image_size", "size")):
                v = src.get(key)
                if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                    if cast == "n":
                        n = v
                    else:
                        size = v
        return n, size

    def points_for(self, n_points: "int | None") -> int:
        """``n_points``, or the count the model was trained with when None."""
        return int(n_points) if n_points else int(self.n_points)

    def size_for(self, size: "int | None") -> int:
        """``size``, or the image size the model was trained with when None."""
        return int(size) if size else int(self.image_size)

    @staticmethod
    def _has_seg_head(obj, bundle: bool) -> bool:
        if bundle:
            return isinstance(obj.get("seg_head"), dict)
        if isinstance(obj, dict):
            return any(isinstance(k, str) and k.endswith("conv11.weight") for k in obj)
        return False

    def _part_table(self):
        from crosspoint.evaluation.partseg import as_part_table, part_table_from_meta

        head = self.segmenter.head
        table = None
        pt = self.meta.get("part_table")
        if isinstance(pt, dict):
            try:
                table = part_table_from_meta(pt)
            except (KeyError, TypeError, ValueError):
                log.warning("%s: unreadable part table in meta; ignoring it", self.path)
        if table is None:
            table = as_part_table(None)
        if table.num_categories != head.num_categories or table.num_parts > head.num_parts:
            self.seg_note = (f"the segmentation head has {head.num_categories} categories / {head.num_parts} parts "
                             f"but the part table has {table.num_categories} / {table.num_parts}; categories are "
                             "unnamed and parts are not restricted")
            log.warning("%s: %s", self.path, self.seg_note)
            from crosspoint.data.partseg import PartTable

            n = head.num_categories
            table = PartTable([f"category {i}" for i in range(n)], np.zeros(n, np.int64),
                              np.full(n, head.num_parts, np.int64), head.num_parts)
        return table

    # ------------------------------------------------------------------------------ facts
    @property
    def k(self) -> "int | None":
        return getattr(self.point_encoder, "k", None)

    @property
    def k_source(self) -> "str | None":
        """Where :attr:`k` came from: "checkpoint", "official default", "argument" or "default"."""
        return getattr(self.point_encoder, "k_source", None)

    @property
    def has_image_encoder(self) -> bool:
        return self.image_encoder is not None

    @property
    def has_seg_head(self) -> bool:
        return self.segmenter is not None

    def require_image_encoder(self):
        if self.image_encoder is None:
            raise AnalysisError(self.image_unavailable_reason or f"{self.path}: no image encoder")
        return self.image_encoder

    def part_names(self, category: int) -> list[str]:
        """The names of ``category``'s parts (the table's names without the category prefix, else
        ``"part 1"``, ...)."""
        t = self.part_table
        a, b = int(t.part_start[category]), int(t.part_stop[category])
        names = []
        for i, gid in enumerate(range(a, b)):
            name = t.part_names[gid] if t.part_names and gid < len(t.part_names) else None
            if name:
                name = str(name).split("/", 1)[-1]
            names.append(name or f"part {i + 1}")
        return names

    def info(self) -> dict:
        """What the GUI's model panel shows (plain types only)."""
        pe = self.point_encoder
        seg = None
        if self.segmenter is not None:
            t = self.part_table
            seg = {
                "kind": "dgcnn_partseg" if getattr(pe, "arch", "") == "dgcnn_partseg" else "head_on_encoder",
                "categories": list(t.category_names),
                "parts": {name: self.part_names(c) for c, name in enumerate(t.category_names)},
                "num_parts": int(self.segmenter.head.num_parts),
                "note": self.seg_note,
                "encoder": "fine-tuned with the head" if self.seg_backbone_own else "the point encoder (frozen)",
            }
        ie = self.image_encoder
        return {
            "source": str(self.path),
            "image_source": str(self.image_path) if self.image_path is not None else None,
            "format": self.format,
            "point_arch": getattr(pe, "arch", type(pe).__name__),
            "k": self.k,
            "k_source": self.k_source,
            "background": self.background,
            "background_source": self.background_source,
            "feature_dim": int(pe.feature_dim),
            "projection_dim": int(pe.projection_dim),
            "point_feature_dim": int(pe.point_feature_dim),
            "image_arch": getattr(ie, "arch", None) if ie is not None else None,
            "image_feature_dim": int(ie.feature_dim) if ie is not None else None,
            "image_unavailable": self.image_unavailable_reason,
            "seg_head": seg,
            "device": str(self.device),
            "n_points": int(self.n_points),
            "image_size": int(self.image_size),
            "parameters": {
                "point_encoder": _n_params(pe),
                "image_encoder": _n_params(ie),
                "seg_head": _n_params(self.segmenter.head) if self.segmenter is not None else 0,
                "seg_backbone": _n_params(self.segmenter.backbone) if self.seg_backbone_own else 0,
            },
            "meta": _plain_meta(self.meta),
            "fingerprint": self.fingerprint,
        }

    def __repr__(self) -> str:
        parts = [getattr(self.point_encoder, "arch", "?")]
        if self.image_encoder is not None:
            parts.append(self.image_encoder.arch)
        if self.segmenter is not None:
            parts.append("seg head")
        return f"ModelSession({str(self.path)!r}, {' + '.join(parts)}, device={self.device})"


def random_weights_session(like: ModelSession, *, seed: int = 0, folder=None) -> ModelSession:
    """The baseline every analysis should beat: a session with ``like``'s architectures (point
    encoder, and image encoder when it has one; no segmentation or dense heads) at a seeded random
    initialisation, the same input sizes, background and device. Written once as a bundle to
    ``<user cache>/random-weights/`` (or ``folder``) so that its embeddings are cached like any
    checkpoint's, and so that it opens in another process (``spec``)."""
    import torch

    from crosspoint.models import build_image_encoder, build_point_encoder
    from crosspoint.models.checkpoint import save_model_bundle

    pe = like.point_encoder
    arch = "dgcnn" if pe.arch == "dgcnn_partseg" else pe.arch
    cfg = dict(pe.config())
    ie = like.image_encoder
    key = {"seed": int(seed), "pe": [arch, cfg], "ie": [ie.arch, ie.config()] if ie is not None else None,
           "n": int(like.n_points), "size": int(like.image_size), "bg": like.background}
    name = hashlib.sha1(repr(sorted(key.items(), key=lambda kv: kv[0])).encode()).hexdigest()[:16]
    out = (Path(folder) if folder is not None else user_cache_dir("random-weights")) / f"random-{name}.pt"
    if not out.is_file():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            rpe = build_point_encoder(arch, **cfg)
            rie = None
            if ie is not None:
                torch.manual_seed(int(seed) + 1)
                rie = build_image_encoder(ie.arch, **ie.config())
        out.parent.mkdir(parents=True, exist_ok=True)
        save_model_bundle(out, point_encoder=rpe, image_encoder=rie,
                          meta={"num_points": int(like.n_points), "image_size": int(like.image_size),
                                "background": like.background, "run": f"random weights (seed {seed})",
                                "random_weights_of": str(like.path)})
    return ModelSession(out, device=str(like.device), k=like.k)
