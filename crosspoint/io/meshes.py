"""Meshes read through trimesh: OBJ, STL (ascii / binary), GLB and glTF.

Geometry only: materials and textures are not read (an OBJ's ``mtllib`` is never opened), and
scenes are flattened with their transforms. Vertex colours are kept when the file has them. A
file whose geometry has no faces is a point cloud. An OBJ face that refers to a vertex the file
does not have is a :class:`~crosspoint.io.common.ReadError` naming the face's line, the index and
the vertex count.
"""

from __future__ import annotations

import numpy as np

from .common import ReadError, Raw, colors_to_unit


def _obj_face_problem(path) -> str | None:
    """Why an OBJ's faces cannot be read: the first face index with no vertex, or None.

    OBJ indices start at 1; a negative index counts back from the last vertex defined so far.
    """
    n_vertices = 0
    faces = []  # (line number, index tokens, vertices defined before the face's line)
    with open(path, "rb") as fh:
        for line_no, line in enumerate(fh, 1):
            toks = line.split()
            if not toks:
                continue
            if toks[0] == b"v":
                n_vertices += 1
            elif toks[0] == b"f":
                faces.append((line_no, toks[1:], n_vertices))
    for line_no, toks, before in faces:
        for tok in toks:
            head = tok.split(b"/", 1)[0]
            try:
                i = int(head)
            except ValueError:
                return f"line {line_no}: face index {head.decode('utf-8', 'replace')[:20]!r} is not an integer"
            if i == 0 or i > n_vertices or (i < 0 and before + i < 0):
                valid = f"1..{n_vertices}" if n_vertices else "none"
                back = f", or -1..-{before} counting back" if before else ""
                return (
                    f"line {line_no}: a face refers to vertex {i}, but the file has {n_vertices:,} vertices "
                    f"(valid indices: {valid}{back})"
                )
    return None


def read_trimesh(path, fmt, index=None) -> Raw:
    """An OBJ / STL / GLB / glTF file (``fmt.key``) read with trimesh."""
    import trimesh

    fmt = fmt.key
    file_type = {"obj": "obj", "stl": "stl", "glb": "glb", "gltf": "gltf"}[fmt]
    kwargs = {"process": False}
    if fmt == "obj":
        kwargs["skip_materials"] = True  # never touch .mtl / textures: geometry only
    try:
        with open(path, "rb") as fh:
            if fmt == "gltf":
                # external buffers resolve from the file's folder only (no network resolver)
                from trimesh.resolvers import FilePathResolver

                kwargs["resolver"] = FilePathResolver(str(path))
            loaded = trimesh.load(fh, file_type=file_type, **kwargs)
    except ReadError:
        raise
    except Exception as e:  # trimesh raises anything from ValueError to KeyError on bad input
        problem = _obj_face_problem(path) if fmt == "obj" and isinstance(e, (IndexError, ValueError)) else None
        if problem:
            raise ReadError(path, problem) from None
        raise ReadError(path, f"cannot read as {fmt.upper()}: {type(e).__name__}: {e}") from None
    geoms = []
    if isinstance(loaded, trimesh.Scene):
        try:
            geoms = list(loaded.dump(concatenate=False)) if loaded.geometry else []
        except Exception as e:
            raise ReadError(path, f"cannot assemble the {fmt.upper()} scene: {type(e).__name__}: {e}") from None
    else:
        geoms = [loaded]
    meshes = [g for g in geoms if isinstance(g, trimesh.Trimesh) and len(g.vertices)]
    clouds = [g for g in geoms if isinstance(g, trimesh.PointCloud) and len(g.vertices)]
    raw = Raw(fmt=fmt)
    with_faces = [m for m in meshes if len(m.faces)]
    if with_faces:
        verts, faces, cols = [], [], []
        base = 0
        any_col = False
        for m in with_faces:
            v = np.asarray(m.vertices, np.float64)
            verts.append(v)
            faces.append(np.asarray(m.faces, np.int64) + base)
            base += v.shape[0]
            c = None
            try:
                if m.visual is not None and m.visual.kind in ("vertex", "face"):
                    c = np.asarray(m.visual.vertex_colors)[:, :3]
                    any_col = True
            except Exception:
                c = None
            cols.append(c)
        raw.points = np.concatenate(verts).astype(np.float32)
        raw.faces = np.concatenate(faces)
        if any_col:
            raw.colors = np.concatenate(
                [colors_to_unit(c) if c is not None else np.full((v.shape[0], 3), 0.7, np.float32)
                 for c, v in zip(cols, verts)]
            )
        if len(geoms) > 1:
            raw.meta["parts"] = len(with_faces)
    elif meshes or clouds:  # vertices only: a point cloud
        pts = [np.asarray(g.vertices, np.float64) for g in meshes + clouds]
        raw.points = np.concatenate(pts).astype(np.float32)
        cols = []
        for g in clouds:
            c = getattr(g, "colors", None)
            if c is not None and len(c) == len(g.vertices):
                cols.append(np.asarray(c)[:, :3])
        if cols and len(clouds) == len(meshes + clouds) and sum(len(c) for c in cols) == len(raw.points):
            raw.colors = colors_to_unit(np.concatenate(cols))
    else:
        raise ReadError(path, f"no vertices found in this {fmt.upper()} file")
    if raw.faces is not None:
        raw.faces = raw.faces.reshape(-1, 3)
    return raw
