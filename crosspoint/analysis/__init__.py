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

    # 3D-2D correspondence (no model; milliseconds once the view is set up)
    v = A.view_correspondence(points, camera, mesh=mesh) # camera: render.Camera or A.PinholeCamera(K, E, w, h)
    v.uv, v.visible                                     # (N, 2) pixel of every point, (N,) not occluded
    v.points_in_pixels(brush), v.seen_points(brush)     # brush: (H, W) mask or [(u, v)] -> point indices
    v.pixel_mask(part_points)                           # (H, W): the pixels those points show
    A.point_in_views(views, i)                          # point i's pixel + visibility in every view
    ev = A.part_occlusion(s, points, image, camera, labels)  # similarity drops per part, 3D and 2D + baselines
    ds = A.dense_similarity(s, points, image, camera)   # point x pixel similarity (dense heads if trained)
    ro = A.heat_readouts(s, points, image, camera, other_image=img2)  # what the Grad-CAM heatmaps are worth

    # which way is up for the model: the 24 axis-aligned turns scored against upright references
    oc = A.check_orientation(s, cloud)                  # oc.summary(); cloud.rotation = oc.rotation

Modules: :mod:`.session` (loading), :mod:`.points` (prepare / propagate back), :mod:`.embed`
(embeddings, retrieval), :mod:`.segment`, :mod:`.heatmap` (Grad-CAM: what drives the object-view
similarity, and its readouts), :mod:`.correspondence` (exact point <-> pixel geometry, occlusion
evidence, dense similarity), :mod:`.dataset` (dataset embeddings, UMAP, SVM), :mod:`.orientation` (the up-axis check), :mod:`.colors`
(colour maps, overlays).
"""

from crosspoint.analysis._common import AnalysisError, Cancelled, user_cache_dir
from crosspoint.analysis.colors import CMAPS, colormap, overlay
from crosspoint.analysis.correspondence import (
    DenseSimilarity, PartEvidence, PinholeCamera, ViewCorrespondence, as_pinhole, dense_readouts, dense_similarity,
    mask_image,
    object_views, part_occlusion, point_in_views, view_correspondence,
)
from crosspoint.analysis.dataset import (
    DatasetEmbedding, Projection2D, embed_dataset, ensure_numba_cache_dir, project_2d, svm_accuracy, map_quality, umap_2d,
    warm_up_umap,
)
from crosspoint.analysis.embed import (
    embed_clouds, embed_images, encode_clouds, image_tensor, project_clouds, retrieve, retrieve_images,
)
from crosspoint.analysis.heatmap import (
    GRADCAM_LABEL, HEAT_METHODS, PointHeatmap, deletion_test, heat_readouts, image_heatmap, point_heatmap,
    point_heatmap_result, similarity,
)
from crosspoint.analysis.orientation import OrientationCheck, axis_rotations, check_orientation, up_direction
from crosspoint.analysis.points import Prepared, prepare_points, propagation_index, to_full
from crosspoint.analysis.segment import (
    SegmentationResult, cluster_parts, infer_category, matched_miou, point_features, segment,
)
from crosspoint.analysis.session import ModelSession, default_checkpoint_path, random_weights_session

__all__ = [
    "AnalysisError", "Cancelled", "user_cache_dir", "ModelSession", "random_weights_session", "default_checkpoint_path",
    "Prepared", "prepare_points", "to_full", "propagation_index",
    "embed_clouds", "project_clouds", "encode_clouds", "embed_images", "image_tensor", "retrieve", "retrieve_images",
    "SegmentationResult", "segment", "point_features", "cluster_parts", "matched_miou", "infer_category",
    "PointHeatmap", "point_heatmap", "point_heatmap_result", "image_heatmap", "similarity", "deletion_test",
    "HEAT_METHODS", "GRADCAM_LABEL", "heat_readouts", "colormap", "overlay", "CMAPS",
    "DatasetEmbedding", "embed_dataset", "umap_2d", "project_2d", "Projection2D", "svm_accuracy", "map_quality",
    "ensure_numba_cache_dir", "warm_up_umap",
    "PinholeCamera", "as_pinhole", "ViewCorrespondence", "view_correspondence", "object_views", "point_in_views",
    "DenseSimilarity", "dense_similarity", "dense_readouts", "PartEvidence", "part_occlusion", "mask_image",
    "OrientationCheck", "check_orientation", "axis_rotations", "up_direction",
]
