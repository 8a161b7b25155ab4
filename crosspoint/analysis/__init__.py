"""Everything the explorer shows about a model and the user's objects, as plain functions.

No Qt and no drawing here: the GUI calls these from worker threads and draws the NumPy results.
Long calls take ``progress(done, total, text)`` and ``cancel() -> bool`` (checked between
batches; a true answer raises :class:`Cancelled`). Results are deterministic for a given
``seed``. Bad requests raise :class:`AnalysisError` (a ``ValueError``) with a readable message.

Quick start::

    from crosspoint import analysis as A

    s = A.ModelSession("run/checkpoints/best.pt")      # or None: the bundled demo checkpoint
    s.info()                                            # the model panel
    prep = A.prepare_points(cloud, 2048)                # FPS + unit sphere; prep.index -> original
    seg = A.segment(s, cloud)                           # head (category given/own/inferred) or k-means
    heat = A.point_heatmap(s, cloud, image_rgba)        # (N,) in [0, 1]
    cam = A.image_heatmap(s, cloud, image_rgba)         # (H, W) in [0, 1]
    shown = A.overlay(image_rgba, cam)                  # RGBA uint8
    hits = A.retrieve(s, image_rgba, clouds, top_k=5)   # [(index, cosine)]
    emb = A.embed_dataset(s, "~/data/modelnet40_ply_hdf5_2048")   # cached
    xy = A.umap_2d(emb.features)                        # (M, 2), cached
    acc, sd = A.svm_accuracy(emb.features, emb.labels)

Modules: :mod:`.session` (loading), :mod:`.points` (prepare / propagate back), :mod:`.embed`
(embeddings, retrieval), :mod:`.segment`, :mod:`.heatmap` (3D-2D correspondence), :mod:`.dataset`
(dataset embeddings, UMAP, SVM), :mod:`.colors` (colour maps, overlays).
"""

from crosspoint.analysis._common import AnalysisError, Cancelled, user_cache_dir
from crosspoint.analysis.colors import CMAPS, colormap, overlay
from crosspoint.analysis.dataset import (
    DatasetEmbedding, Projection2D, embed_dataset, ensure_numba_cache_dir, project_2d, svm_accuracy, umap_2d,
    warm_up_umap,
)
from crosspoint.analysis.embed import (
    embed_clouds, embed_images, encode_clouds, image_tensor, project_clouds, retrieve, retrieve_images,
)
from crosspoint.analysis.heatmap import (
    HEAT_METHODS, PointHeatmap, deletion_test, image_heatmap, point_heatmap, point_heatmap_result, similarity,
)
from crosspoint.analysis.points import Prepared, prepare_points, propagation_index, to_full
from crosspoint.analysis.segment import SegmentationResult, cluster_parts, matched_miou, point_features, segment
from crosspoint.analysis.session import ModelSession, default_checkpoint_path

__all__ = [
    "AnalysisError", "Cancelled", "user_cache_dir", "ModelSession", "default_checkpoint_path",
    "Prepared", "prepare_points", "to_full", "propagation_index",
    "embed_clouds", "project_clouds", "encode_clouds", "embed_images", "image_tensor", "retrieve", "retrieve_images",
    "SegmentationResult", "segment", "point_features", "cluster_parts", "matched_miou",
    "PointHeatmap", "point_heatmap", "point_heatmap_result", "image_heatmap", "similarity", "deletion_test",
    "HEAT_METHODS", "colormap", "overlay", "CMAPS",
    "DatasetEmbedding", "embed_dataset", "umap_2d", "project_2d", "Projection2D", "svm_accuracy",
    "ensure_numba_cache_dir", "warm_up_umap",
]
