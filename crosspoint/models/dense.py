"""The dense point-pixel term: per-point and per-pixel embeddings trained to agree where the camera
says a point and a pixel are the same place (an opt-in addition to CrossPoint, off in the paper config).

CrossPoint trains global embeddings only, so a per-point feature has no reason to resemble the
image feature at that point's pixel (measured on the demo: a visible point's true cell ranks first
22.7 % of the time, chance 17.3 %). The correspondences are free here: the project renders the
views itself, so every sampled point's pixel and visibility in the chosen view are known.

:class:`DenseHeads` maps

* the point encoder's per-point map (the pre-pool map, ``(B, N, C_p)``) through a small MLP to
  ``(B, N, D)``, and
* the image encoder's ``layer2`` map (stride 8) fused with the bilinearly upsampled ``layer3`` map
  (stride 16) through 1x1 convolutions to ``(B, D, H/8, W/8)`` - finer than the 4x4 last stage that
  Grad-CAM had. Options (defaults: as pretraining builds them): ``stride=4`` adds the
  ``layer1`` map and gives ``(B, D, H/4, W/4)``; ``context=n`` puts ``n`` 3x3 convolutions between
  the two 1x1 ones, so that a pixel's embedding sees its neighbourhood (where on the object it is);
  ``image_branch`` ("layer3" or "layer2+layer3", :mod:`crosspoint.analysis.dense_refine` only) gives
  the heads their own copies of those ResNet stages, started from the encoder's and fitted with the
  heads: the image encoder itself, and every global figure, stay as they were; ``point_context="pooled"``
  (also :mod:`~crosspoint.analysis.dense_refine` only) gives the point MLP the object's pooled map
  (max and mean over its points) beside each point's own feature: a point's feature says where the
  point is but not which way the object faces, so of two mirror twins it cannot say which is the left
  one (``scripts/probe_point_features.py``); the pooled map carries some of the heading;

:func:`dense_nce` is the loss: for each image, ``M`` visible points (chosen by the data pipeline, so
resume stays exact) are matched to the image embeddings sampled bilinearly at their pixels, with the
other chosen points' pixels as negatives (symmetric InfoNCE, temperature ``tau``).
:func:`dense_cell_loss` is the loss of :mod:`crosspoint.analysis.dense_refine`, which fits the heads
on frozen encoders against exact correspondences: each point against every cell of its image (the
cell its pixel falls in is the answer) and each point's pixel against many points of the object
(every visible point within the hit radius counts as a positive): the two directions the
evaluation measures.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DenseHeads", "dense_nce", "dense_cell_loss", "sample_pixels", "dense_maps", "RESNET_STAGE_CHANNELS",
           "IMAGE_BRANCHES", "POINT_CONTEXTS"]

#: channels of (layer1, layer2, layer3) of the torchvision ResNets
RESNET_STAGE_CHANNELS = {"resnet18": (64, 128, 256), "resnet34": (64, 128, 256), "resnet50": (256, 512, 1024)}


#: the ResNet stages a dense branch may own (``image_branch``), each recomputed from the one before
IMAGE_BRANCHES = ("none", "layer3", "layer2+layer3")
#: what the point MLP sees beside a point's own feature (``point_context``)
POINT_CONTEXTS = ("none", "pooled")


class DenseHeads(nn.Module):
    def __init__(self, point_dim: int, image_arch: str, dim: int = 64, hidden: int = 256, stride: int = 8,
                 context: int = 0, image_branch: str = "none", point_context: str = "none"):
        super().__init__()
        if image_arch not in RESNET_STAGE_CHANNELS:
            raise ValueError(f"no dense head for image encoder {image_arch!r}")
        if int(stride) not in (4, 8):
            raise ValueError(f"the dense image map has stride 4 or 8, got {stride!r}")
        if int(context) < 0:
            raise ValueError(f"context must be >= 0 (3x3 layers), got {context!r}")
        if image_branch not in IMAGE_BRANCHES:
            raise ValueError(f"image_branch must be one of {', '.join(IMAGE_BRANCHES)}, got {image_branch!r}")
        if point_context not in POINT_CONTEXTS:
            raise ValueError(f"point_context must be one of {', '.join(POINT_CONTEXTS)}, got {point_context!r}")
        c1, c2, c3 = RESNET_STAGE_CHANNELS[image_arch]
        self.point_dim, self.image_arch, self.dim, self.hidden = int(point_dim), image_arch, int(dim), int(hidden)
        self.stride, self.context, self.image_branch = int(stride), int(context), image_branch
        self.point_context = point_context
        width = self.point_dim * (3 if point_context == "pooled" else 1)  # (own, max, mean)
        self.point = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))
        layers = [nn.Conv2d(c2 + c3 + (c1 if self.stride == 4 else 0), hidden, 1), nn.ReLU(inplace=True)]
        for _ in range(self.context):
            layers += [nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(inplace=True)]
        self.image = nn.Sequential(*layers, nn.Conv2d(hidden, dim, 1))
        #: the dense branch's own copies of ResNet stages (``image_branch``), fitted for the dense
        #: similarity while the image encoder (and every global figure) stays as it was
        self.branch = nn.ModuleDict()
        if image_branch != "none":
            import torchvision

            net = getattr(torchvision.models, image_arch)(weights=None)
            for name in image_branch.split("+"):
                self.branch[name] = getattr(net, name)

    def config(self) -> dict:
        cfg = {"point_dim": self.point_dim, "image_arch": self.image_arch, "dim": self.dim, "hidden": self.hidden,
               "stride": self.stride, "context": self.context}
        if self.image_branch != "none":  # checkpoints written before the option keep their config
            cfg["image_branch"] = self.image_branch
        if self.point_context != "none":
            cfg["point_context"] = self.point_context
        return cfg

    def widens(self, narrow: "DenseHeads") -> bool:
        """Whether these are ``point_context="pooled"`` heads of ``narrow``'s shape otherwise (what
        :meth:`widened_state` takes)."""
        return self.point_context == "pooled" and narrow.config() == {
            k: v for k, v in self.config().items() if k != "point_context"}

    def widened_state(self, narrow: "DenseHeads") -> dict:
        """A state dict for these ``point_context="pooled"`` heads from ``narrow`` heads that are the
        same but without the context: every tensor copied, the point MLP's first layer widened with
        zero weights on the pooled inputs, so the widened heads start as exactly ``narrow``'s
        function and a fit can only add what the pooled map carries."""
        if not self.widens(narrow):
            raise ValueError("widened_state needs heads without point context of otherwise the same shape")
        sd = {k: v.detach().clone() for k, v in narrow.state_dict().items()}
        w = sd["point.0.weight"]
        sd["point.0.weight"] = torch.cat([w, w.new_zeros(w.shape[0], 2 * w.shape[1])], dim=1)
        return sd

    def init_branch(self, image_encoder) -> None:
        """Start the branch's stages as copies of ``image_encoder``'s (a trained ResNet's features)."""
        for name, stage in self.branch.items():
            stage.load_state_dict(getattr(image_encoder.resnet, name).state_dict())

    def train(self, mode: bool = True):
        super().train(mode)
        self.branch.eval()  # BatchNorm keeps the encoder's statistics: batches of a few views
        return self

    def point_embeddings(self, point_map: torch.Tensor, context_map: "torch.Tensor | None" = None) -> torch.Tensor:
        """``(B, N, C_p) -> (B, N, D)`` (not normalised). With ``point_context="pooled"`` the pooled
        map is taken over ``context_map`` ``(B, N_all, C_p)``, the object's whole map, when
        ``point_map`` holds some of its points only (default: ``point_map`` itself)."""
        x = point_map.to(self.point[0].weight.dtype)
        if self.point_context == "pooled":
            full = x if context_map is None else context_map.to(x.dtype)
            pooled = torch.cat([full.amax(dim=1), full.mean(dim=1)], dim=-1)  # (B, 2 C_p)
            x = torch.cat([x, pooled[:, None].expand(-1, x.shape[1], -1)], dim=-1)
        return self.point(x)

    def image_embeddings(self, stages: dict) -> torch.Tensor:
        """``(B, D, h, w)`` (stride :attr:`stride`) from the ResNet's stage maps ``{"layer1",
        "layer2", "layer3"}`` (``layer1`` only needed at stride 4); not normalised. With an
        ``image_branch``, its own stages replace the encoder's (``layer3`` from ``layer2``, or both
        from ``layer1``)."""
        if self.branch:
            stages = dict(stages)
            dt = self.image[0].weight.dtype
            if "layer2" in self.branch:
                stages["layer2"] = self.branch["layer2"](stages["layer1"].to(dt))
            stages["layer3"] = self.branch["layer3"](stages["layer2"].to(dt))
        fine = stages["layer1"] if self.stride == 4 else stages["layer2"]
        size = fine.shape[-2:]
        parts = [fine] if self.stride == 4 else []
        for name in ("layer2", "layer3"):
            m = stages[name]
            parts.append(m if m.shape[-2:] == size else
                         F.interpolate(m, size=size, mode="bilinear", align_corners=False))
        return self.image(torch.cat(parts, dim=1).to(self.image[0].weight.dtype))


def sample_pixels(emb_map: torch.Tensor, uv: torch.Tensor, image_size: "tuple[int, int]") -> torch.Tensor:
    """Bilinear samples of ``emb_map`` ``(B, D, h, w)`` at pixel positions ``uv`` ``(B, M, 2)`` (x, y in
    pixels of an ``image_size = (H, W)`` image, pixel centres at integer + 0.5) -> ``(B, M, D)``."""
    h_img, w_img = image_size
    gx = uv[..., 0] / w_img * 2 - 1  # align_corners=False: -1 and 1 are the image's outer edges
    gy = uv[..., 1] / h_img * 2 - 1
    grid = torch.stack([gx, gy], dim=-1).unsqueeze(1).to(emb_map.dtype)  # (B, 1, M, 2)
    out = F.grid_sample(emb_map, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[:, :, 0, :].transpose(1, 2)


def dense_nce(point_emb: torch.Tensor, pixel_emb: torch.Tensor, valid: torch.Tensor,
              temperature: float = 0.1) -> torch.Tensor:
    """Symmetric InfoNCE between ``point_emb`` and ``pixel_emb`` ``(B, M, D)`` row by row within each
    sample (row i's positive is row i of the other side, the sample's other valid rows are the
    negatives); ``valid`` ``(B, M)`` marks the rows that are real (padding otherwise). Samples with
    fewer than two valid rows are skipped; the result is the mean over the remaining samples' rows
    (0 when none remain, with a gradient of 0)."""
    if point_emb.shape != pixel_emb.shape or point_emb.dim() != 3:
        raise ValueError(f"dense_nce expects two (B, M, D) tensors, got {tuple(point_emb.shape)} and "
                         f"{tuple(pixel_emb.shape)}")
    dt = torch.float64 if point_emb.dtype == torch.float64 else torch.float32
    q = F.normalize(point_emb.to(dt), dim=-1)
    k = F.normalize(pixel_emb.to(dt), dim=-1)
    logits = q @ k.transpose(1, 2) / temperature  # (B, M, M)
    valid = valid.to(torch.bool)
    pair = valid[:, :, None] & valid[:, None, :]
    logits = logits.masked_fill(~pair, float("-inf"))
    m = logits.shape[1]
    target = torch.arange(m, device=logits.device).expand(logits.shape[0], m)
    keep = valid & (valid.sum(dim=1, keepdim=True) >= 2)
    if not bool(keep.any()):
        return (point_emb.sum() + pixel_emb.sum()).to(dt) * 0.0
    rows = F.cross_entropy(logits[keep], target[keep], reduction="mean")
    cols = F.cross_entropy(logits.transpose(1, 2)[keep], target[keep], reduction="mean")
    return 0.5 * (rows + cols)


def dense_cell_loss(point_emb: torch.Tensor, pixel_map: torch.Tensor, uv: torch.Tensor, valid: torch.Tensor,
                    cand_emb: torch.Tensor, positives: torch.Tensor, image_size: "tuple[int, int]",
                    temperature: float = 0.1) -> torch.Tensor:
    """The refinement loss (see the module docstring), averaged over the two directions.

    ``point_emb`` ``(B, M, D)``: M visible points per image; ``pixel_map`` ``(B, D, h, w)``; ``uv``
    ``(B, M, 2)`` their pixels (at ``image_size``); ``valid`` ``(B, M)``; ``cand_emb`` ``(B, C, D)``
    candidate points of the object (the M first, then others); ``positives`` ``(B, M, C)`` bool:
    which candidates count as the same place as point m's pixel (point m itself included).
    Point -> cells: cross-entropy over all ``h * w`` cells, the target the cell that holds the
    point's pixel. Pixel -> points: ``-log`` of the softmax mass on the positives among the
    candidates."""
    b, m, _ = point_emb.shape
    _, d, h, w = pixel_map.shape
    q = F.normalize(point_emb, dim=-1)
    k = F.normalize(pixel_map, dim=1).reshape(b, d, h * w)
    logits = torch.einsum("bmd,bdc->bmc", q, k) / temperature
    hi, wi = image_size
    cx = (uv[..., 0] / wi * w).floor().long().clamp(0, w - 1)
    cy = (uv[..., 1] / hi * h).floor().long().clamp(0, h - 1)
    keep = valid.to(torch.bool)
    if not bool(keep.any()):
        return (point_emb.sum() + pixel_map.sum()) * 0.0
    to_cells = F.cross_entropy(logits[keep], (cy * w + cx)[keep])
    pix = F.normalize(sample_pixels(pixel_map, uv, image_size), dim=-1)  # (B, M, D)
    cand = F.normalize(cand_emb, dim=-1)
    lg = torch.einsum("bmd,bcd->bmc", pix, cand) / temperature
    pos_lse = torch.logsumexp(lg.masked_fill(~positives, float("-inf")), dim=-1)
    to_points = (torch.logsumexp(lg, dim=-1) - pos_lse)[keep].mean()
    return 0.5 * (to_cells + to_points)


def dense_maps(point_encoder, image_encoder, heads: DenseHeads, points: torch.Tensor, images: torch.Tensor):
    """``(point embeddings (B, N, D), pixel embeddings (B, D, h, w))``, both L2-normalised along D, of a
    model trained with the dense term: their dot product is the point-pixel similarity (the pixel map
    has stride ``heads.stride``; sample it with :func:`sample_pixels` or upsample it to the image)."""
    out = point_encoder(points, with_point_features=True)
    _, stages = image_encoder.forward_stages(images)
    q = F.normalize(heads.point_embeddings(out.point_features).float(), dim=-1)
    k = F.normalize(heads.image_embeddings(stages).float(), dim=1)
    return q, k
