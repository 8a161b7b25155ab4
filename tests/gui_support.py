"""Small random-weight model bundles for the GUI tests (fast to load and run; what they check is the
wiring, not the figures)."""

from __future__ import annotations

from pathlib import Path

import torch

from crosspoint.data.demo import demo_part_table_meta, get_preset
from crosspoint.models import DGCNN, ImageEncoder, PartSegHead
from crosspoint.models.checkpoint import save_model_bundle


def small_bundles(folder: Path, preset: str = "easy", *, seg_image: bool = False) -> dict:
    """``{"full": point + image encoder, "seg": the same point encoder + a part-segmentation head for
    ``preset``'s parts (and the image encoder with ``seg_image``)}``: paths of bundles in ``folder``,
    the same weights every time (seeded)."""
    torch.manual_seed(0)
    pe = DGCNN(k=8, emb_dims=64, projection_dim=32)
    ie = ImageEncoder("resnet18", projection_dim=32)
    fs = get_preset(preset)
    head = PartSegHead(num_parts=fs.n_parts, num_categories=len(fs.classes), emb_dims=128, local_dims=512)
    meta = {"n_points": 512, "image_size": 64}
    return {
        "full": save_model_bundle(folder / "full.pt", point_encoder=pe, image_encoder=ie, meta=meta),
        "seg": save_model_bundle(folder / "seg.pt", point_encoder=pe, seg_head=head,
                                 **({"image_encoder": ie} if seg_image else {}),
                                 meta={**meta, "part_table": demo_part_table_meta(preset)}),
    }
