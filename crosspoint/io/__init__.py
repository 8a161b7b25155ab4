"""Reading and writing point clouds and meshes.

``read_point_cloud(path)`` returns a :class:`~crosspoint.pointcloud.PointCloud`: points ``(N, 3)``
float32 and, when the file has them, normals, colours (float32 in [0, 1]), per-point labels, the
object's class, and the mesh (vertices / faces) when the file is a mesh. Meshes are sampled
area-weighted to ``DEFAULT_MESH_SAMPLES`` (10,000) points -- fewer when ``max_points`` is smaller
-- with a fixed seed, so the same file always gives the same points; sample normals are the face
normals and the mesh is kept on ``cloud.mesh`` for rendering.

Formats are chosen by extension; the table of formats and what each reads is in
:mod:`crosspoint.io.formats`, whose :data:`~crosspoint.io.formats.FORMATS` registry (one
:class:`~crosspoint.io.formats.Format` per format: extensions, name, reader, writer, what it can
hold) drives dispatch, :func:`sniff_format`, :data:`SUPPORTED_EXTENSIONS` and the file-dialog
filters. One module per reader: :mod:`~crosspoint.io.ply`, :mod:`~crosspoint.io.pcd`,
:mod:`~crosspoint.io.text`, :mod:`~crosspoint.io.expe`, :mod:`~crosspoint.io.off`,
:mod:`~crosspoint.io.meshes` (OBJ / STL / GLB / glTF), :mod:`~crosspoint.io.npy`,
:mod:`~crosspoint.io.hdf5`, :mod:`~crosspoint.io.las`.

Every problem with the input -- a missing file, a symbolic link loop, an unknown extension, empty,
truncated or garbage content, zero points, counts that disagree with the data, a row that is
negative or out of range -- raises :class:`ReadError` (a ``ValueError``) whose message starts
with the path. Points with NaN / inf coordinates are dropped and the result's ``warnings`` says
how many (all non-finite is an error). Clouds with more than ``max_points`` points are
subsampled at random with ``seed`` (with a warning).

**Lying extensions**: the content is checked against the extension with :func:`sniff_format`
(magic bytes). When the content is clearly another supported format, the file is read as that
format and a warning is added to the result; when it matches no known signature and the extension
names a binary format (PLY, PCD, NPY, NPZ, HDF5, LAS, GLB), it is a ReadError. An unknown
extension is always a ReadError (the message says what the content looks like).

``write_point_cloud(path, cloud)`` writes ``.ply`` (binary little endian), ``.pcd`` (binary) or
``.npz`` (keys ``points``, ``normals``, ``colors``, ``labels``, ``class_label``, ``category``;
absent attributes are left out), including normals, colours and labels.
"""

from __future__ import annotations

from crosspoint.pointcloud import Mesh, PointCloud

from .common import ReadError
from .formats import (
    FILE_DIALOG_FILTER,
    FORMATS,
    SUPPORTED_EXTENSIONS,
    WRITE_DIALOG_FILTER,
    WRITE_EXTENSIONS,
    Format,
    format_by_key,
    format_for_path,
    sniff_format,
)
from .reading import DEFAULT_MESH_SAMPLES, read_mesh, read_point_cloud, split_index
from .writing import write_point_cloud

__all__ = [
    "PointCloud",
    "Mesh",
    "ReadError",
    "read_point_cloud",
    "read_mesh",
    "write_point_cloud",
    "sniff_format",
    "format_for_path",
    "format_by_key",
    "split_index",
    "Format",
    "FORMATS",
    "SUPPORTED_EXTENSIONS",
    "WRITE_EXTENSIONS",
    "FILE_DIALOG_FILTER",
    "WRITE_DIALOG_FILTER",
    "DEFAULT_MESH_SAMPLES",
]
