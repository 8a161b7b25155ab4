"""CrossPoint's models: point encoders (DGCNN, part-segmentation DGCNN, PointNet), the image
encoder, the CrossPoint pair, the part segmenter, and loading/saving them.

Quick start::

    from crosspoint.models import load_point_encoder
    enc = load_point_encoder("best_model.pth")          # official file or project checkpoint
    enc.k, enc.k_source                                 # 15, "official default" (the k it was trained with)
    feats = enc.embed(points)                           # (B, N, 3) float32 -> (B, 2048)
    proj = enc.project(points)                          # (B, 256)
    pmap = enc.point_features(points)                   # (B, N, 1024), for heatmaps

Everything is device-agnostic: move a model with ``.to(resolve_device("auto"))``; on CUDA run
under :func:`crosspoint.device.autocast` for bf16 matrix products.
"""

from crosspoint.device import autocast, resolve_device
from crosspoint.models.base import EncoderOutput, PointEncoder
from crosspoint.models.checkpoint import (
    FORMAT, FORMAT_VERSION, OFFICIAL_FINETUNE_K, OFFICIAL_PRETRAIN_K, POINT_ARCHS, SEG_BACKBONE_KEY, CheckpointError,
    build_image_encoder, build_point_encoder, build_seg_head, checkpoint_background, describe_k,
    load_image_encoder, load_part_segmenter, load_point_encoder, model_bundle, read_checkpoint, recorded_k,
    save_model_bundle, save_official, to_official_state_dict,
)
from crosspoint.models.crosspoint import CrossPointModel
from crosspoint.models.dgcnn import DGCNN
from crosspoint.models.image import IMAGE_ARCHS, ImageEncoder, ImageEncoderOutput
from crosspoint.models.layers import SyncBatchNorm, convert_sync_batchnorm
from crosspoint.models.ops import knn
from crosspoint.models.partseg import (
    INDEX_START, NUM_CATEGORIES, NUM_PART_CLASSES, PARTSEG_CATEGORIES, SEG_NUM, DGCNNPartSeg, PartSegHead,
    PartSegmenter, part_range,
)
from crosspoint.models.pointnet import PointNet

__all__ = [
    "resolve_device", "autocast", "EncoderOutput", "PointEncoder", "DGCNN", "DGCNNPartSeg", "PointNet",
    "ImageEncoder", "ImageEncoderOutput", "IMAGE_ARCHS", "CrossPointModel", "PartSegHead", "PartSegmenter",
    "PARTSEG_CATEGORIES", "SEG_NUM", "INDEX_START", "NUM_PART_CLASSES", "NUM_CATEGORIES", "part_range",
    "CheckpointError", "FORMAT", "FORMAT_VERSION", "SEG_BACKBONE_KEY", "POINT_ARCHS", "build_point_encoder", "build_image_encoder",
    "build_seg_head", "model_bundle", "save_model_bundle", "read_checkpoint", "load_point_encoder",
    "load_image_encoder", "load_part_segmenter", "to_official_state_dict", "save_official",
    "convert_sync_batchnorm", "SyncBatchNorm", "knn", "checkpoint_background", "describe_k", "recorded_k",
    "OFFICIAL_PRETRAIN_K", "OFFICIAL_FINETUNE_K",
]
