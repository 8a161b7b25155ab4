"""Writing a point cloud in a format of the registry (``.ply``, ``.pcd``, ``.npz``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crosspoint.pointcloud import PointCloud

from .formats import WRITE_EXTENSIONS, formats_for_extension


def write_point_cloud(path, cloud: PointCloud) -> Path:
    """Write ``cloud``'s points with normals, colours and labels to ``.ply``, ``.pcd`` or ``.npz``.

    PLY: binary little endian, ``x y z`` float, ``nx ny nz`` float, ``red green blue`` uchar,
    ``label`` int. PCD: v0.7 binary, ``x y z``, ``normal_x normal_y normal_z``, ``rgb`` (packed
    into a float, PCL style), ``label`` (uint32, int32 if negative). NPZ: ``points``, ``normals``,
    ``colors`` (float32 0..1), ``labels`` (int64), ``class_label`` and ``category`` when set.
    The file is written to a temporary name and renamed, so a failure never leaves half a file.
    Raises ``ValueError`` for an unsupported extension, ``OSError`` when the file cannot be written.
    """
    p = Path(path)
    ext = p.suffix.lower()
    writers = [f for f in formats_for_extension(ext) if f.writable]
    if not writers:
        what = repr(ext) if ext else "files without an extension"
        raise ValueError(f"{p}: cannot write {what}; use one of {', '.join(WRITE_EXTENSIONS)}")
    if not isinstance(cloud, PointCloud):
        cloud = PointCloud(np.asarray(cloud))
    from crosspoint.atomic import atomic_write

    atomic_write(p, lambda tmp: writers[0].write(tmp, cloud))
    return p
