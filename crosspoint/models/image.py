"""Image encoder: a torchvision ResNet trained from scratch plus CrossPoint's image projection head.

As the reference's ``ResNet(model, feat_dim)``: ``resnet.fc`` is replaced by the identity and
``inv_head = Sequential(Linear(feat_dim, 512, bias=False), BatchNorm1d(512), ReLU,
Linear(512, 256, bias=False))``; module names ``resnet.*`` / ``inv_head.*`` so an official
``img_model_best.pth`` loads strictly. ``resnet50`` (feat_dim 2048) is the paper's; ``resnet18``
and ``resnet34`` (512) are for small runs. Weights are never downloaded (``weights=None``).

``forward(images)`` returns an :class:`ImageEncoderOutput` ``(feature, projection, feature_map)``;
``feature_map`` is the last stage's ``(B, C, H/32, W/32)`` activation (``layer4``), the usual
Grad-CAM target, and stays in the autograd graph of ``feature``/``projection``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn

from crosspoint.models.layers import project_head

__all__ = ["ImageEncoder", "ImageEncoderOutput", "IMAGE_ARCHS"]

#: supported backbones and their feature widths
IMAGE_ARCHS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048}


class ImageEncoderOutput(NamedTuple):
    feature: torch.Tensor
    projection: torch.Tensor
    feature_map: "torch.Tensor | None"


class ImageEncoder(nn.Module):
    def __init__(self, arch: str = "resnet50", projection_dim: int = 256, hidden_dim: int = 512):
        super().__init__()
        if arch not in IMAGE_ARCHS:
            raise ValueError(f"unknown image encoder {arch!r}; choose one of {', '.join(IMAGE_ARCHS)}")
        import torchvision

        self.arch = arch
        self.feature_dim = IMAGE_ARCHS[arch]
        self.projection_dim = int(projection_dim)
        self.hidden_dim = int(hidden_dim)
        self.resnet = getattr(torchvision.models, arch)(weights=None)
        self.resnet.fc = nn.Identity()
        self.inv_head = nn.Sequential(
            nn.Linear(self.feature_dim, self.hidden_dim, bias=False),
            nn.BatchNorm1d(self.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(self.hidden_dim, self.projection_dim, bias=False),
        )

    def config(self) -> dict:
        return {"projection_dim": self.projection_dim, "hidden_dim": self.hidden_dim}

    def _check(self, images) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a (B, 3, H, W) tensor, got {shape}")
        p = self.inv_head[0].weight
        return images.to(device=p.device, dtype=p.dtype)

    def feature_map(self, images) -> torch.Tensor:
        """The last ResNet stage's activation ``(B, C, h, w)`` (C = 2048 for resnet50, 512 else)."""
        r = self.resnet
        x = self._check(images)
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        return r.layer4(r.layer3(r.layer2(r.layer1(x))))

    def forward_stages(self, images) -> "tuple[ImageEncoderOutput, dict]":
        """:meth:`forward` plus the ``layer1`` (stride 4), ``layer2`` (stride 8) and ``layer3``
        (stride 16) maps, in one pass (the dense point-pixel term, :mod:`crosspoint.models.dense`)."""
        r = self.resnet
        x = self._check(images)
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        l1 = r.layer1(x)
        l2 = r.layer2(l1)
        l3 = r.layer3(l2)
        fmap = r.layer4(l3)
        feature = torch.flatten(self.resnet.avgpool(fmap), 1)
        out = ImageEncoderOutput(feature, project_head(feature, self.inv_head), fmap)
        return out, {"layer1": l1, "layer2": l2, "layer3": l3}

    def forward(self, images, *, with_feature_map: bool = False) -> ImageEncoderOutput:
        fmap = self.feature_map(images)
        feature = torch.flatten(self.resnet.avgpool(fmap), 1)
        return ImageEncoderOutput(feature, project_head(feature, self.inv_head), fmap if with_feature_map else None)

    def embed(self, images) -> torch.Tensor:
        """The pooled ResNet feature ``(B, feature_dim)``."""
        return self.forward(images).feature

    def project(self, images) -> torch.Tensor:
        """The projection ``(B, projection_dim)``."""
        return self.forward(images).projection
