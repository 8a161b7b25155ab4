"""Software rendering of meshes and point clouds into 2D views (the images CrossPoint's image encoder sees).

Everything here is a CPU rasteriser (numba loops for the per-pixel work, numpy for the rest): no
OpenGL, no display, no GPU, so it runs headless in DataLoader worker processes on a cluster and
gives bit-identical images for identical inputs.

Conventions
-----------
World frame
    +Y is up (the ShapeNet convention; the training augmentation rotates about +Y). The camera
    always looks at the origin.
Camera placement (:class:`Camera`)
    ``azimuth`` and ``elevation`` in degrees, ``distance`` in world units (after the optional
    normalisation, see below). The eye sits at
    ``distance * (cos(el) cos(az), sin(el), cos(el) sin(az))`` -- the formula Pixel2Mesh and
    DISN use to read 3D-R2N2's ``rendering_metadata.txt`` -- so azimuth 0 looks from +X towards
    the origin and elevation 90 looks straight down. ``in_plane_rotation`` rolls the image
    about the viewing axis (0 in everything we write, as in 3D-R2N2).
Field of view
    ``fov`` is the full vertical (= horizontal; images are square) angle in degrees. The
    default is 25 degrees, the value 3D-R2N2's ShapeNetRendering records for every view.
Distance
    :func:`fit_distance` gives the distance at which a sphere of a given radius just fits in the
    frame: about 4.62 for the unit sphere at 25 degrees. :func:`render_views` uses it with a 5%
    margin by default (4.85), so a unit-sphere-normalised object never leaves the image.
Camera frame and pixels
    :meth:`Camera.view_matrix` maps world points to camera coordinates in the OpenCV (and
    Open3D extrinsic) convention: x right, y down, z forward, so depth is positive in front of
    the camera. :meth:`Camera.intrinsics` is the 3x3 pinhole matrix ``K`` for that frame.
    Pixel coordinates ``(u, v)``: u grows to the right, v grows downwards, and pixel ``(row i,
    column j)`` covers ``[j, j + 1) x [i, i + 1)``, so its centre is at ``(j + 0.5, i + 0.5)``
    and the principal point is ``(size / 2, size / 2)``. A point with projection ``(u, v)``
    lands in pixel ``image[int(v), int(u)]``.
Normalisation
    :func:`render_mesh` and :func:`render_points` draw the geometry exactly as given, mapped
    into the camera through the camera's object transform ``(p - center) / scale``
    (``Camera.center``, ``Camera.scale``; identity by default). :func:`render_views`
    normalises the object into the unit sphere (``crosspoint.geometry.normalize_unit_sphere``)
    by putting that transform into every camera it returns -- the geometry itself is not
    copied -- so ``camera.project(points)`` takes the caller's original coordinates and lands
    where the renderer drew them. Pass ``normalize=False`` for geometry that is already
    normalised (the demo dataset is).
Images
    ``(H, W, 4)`` uint8 RGBA, straight (not premultiplied) alpha; empty pixels are
    ``(0, 0, 0, 0)`` like ShapeNetRendering's PNGs. ``background=(r, g, b)`` composites onto
    an opaque colour instead. Anti-aliasing renders at 2x and averages 2x2 blocks.

Metadata on disk (:func:`write_views`, :func:`read_view_metadata`), as in 3D-R2N2's
ShapeNetRendering: a ``rendering/`` folder with ``00.png, 01.png, ...``, ``renderings.txt``
(one PNG name per line) and ``rendering_metadata.txt`` (one line per view:
``azimuth elevation in_plane_rotation distance fov``). Our ``distance`` is in the units of the
normalised object; 3D-R2N2's files hold a ratio of their maximum camera distance instead. When
the cameras carry an object transform, a third file ``normalization.txt`` (``cx cy cz scale``)
records it.

Modules: :mod:`~crosspoint.render.camera` (:class:`Camera`, :func:`fit_distance`),
:mod:`~crosspoint.render.raster` (the numba rasteriser), :mod:`~crosspoint.render.shading`
(:func:`render_mesh`), :mod:`~crosspoint.render.splats` (:func:`render_points`),
:mod:`~crosspoint.render.views` (:func:`view_cameras`, :func:`render_views`) and
:mod:`~crosspoint.render.metadata` (:func:`write_views`, :func:`read_view_metadata`).
"""

from __future__ import annotations

from .camera import DEFAULT_ELEVATION_RANGE, DEFAULT_FOV, NEAR, Camera, fit_distance
from .metadata import METADATA_TXT, NORMALIZATION_TXT, RENDERINGS_TXT, read_view_metadata, write_views
from .shading import DEFAULT_MESH_COLOR, render_mesh
from .splats import DEFAULT_POINT_COLOR, default_point_radius, render_points
from .views import Renderable, render_views, view_cameras

__all__ = [
    "Camera",
    "fit_distance",
    "render_mesh",
    "render_points",
    "render_views",
    "write_views",
    "read_view_metadata",
    "view_cameras",
    "default_point_radius",
    "Renderable",
    "DEFAULT_FOV",
    "DEFAULT_ELEVATION_RANGE",
    "DEFAULT_MESH_COLOR",
    "DEFAULT_POINT_COLOR",
    "NEAR",
    "RENDERINGS_TXT",
    "METADATA_TXT",
    "NORMALIZATION_TXT",
]
