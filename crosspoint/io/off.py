"""Geomview OFF meshes (ModelNet's format), our own parser.

Handles ``OFF`` on its own line and ModelNet's quirk of counts glued to it (``OFF3514 3546 0``),
``#`` comments, blank lines, the ``C``/``N``/``ST`` variants (``COFF``, ``NOFF``, ``CNOFF``: vertex
colours / normals on the vertex lines), polygons with more than 3 vertices (fan-triangulated),
and per-face colour columns after the indices (ignored). A file with 0 faces is a point cloud.
Counts that do not match the data (too few or too many lines, a face index out of range) are a
:class:`~crosspoint.io.common.ReadError`.
"""

from __future__ import annotations

import re

import numpy as np

from .common import ReadError, Raw, check_faces, colors_to_unit, fan_triangulate

_HEAD = re.compile(r"^(ST)?(C)?(N)?(4)?(n)?OFF(.*)$", re.IGNORECASE | re.DOTALL)


def _strip_comments(text: str) -> list[str]:
    if "#" in text:
        lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    else:
        lines = [ln.strip() for ln in text.splitlines()]
    return [ln for ln in lines if ln]


def read_off(path, fmt=None, index=None) -> Raw:
    """An OFF mesh (or point list, with 0 faces)."""
    data = path.read_bytes()
    if b"\x00" in data[:4096]:
        raise ReadError(path, "binary data where an OFF text file was expected (binary OFF is not supported)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    lines = _strip_comments(text)
    if not lines:
        raise ReadError(path, "file is empty (no OFF header)")
    m = _HEAD.match(lines[0])
    if not m:
        raise ReadError(path, f"not an OFF file: the first line is {lines[0][:40]!r}, expected 'OFF'")
    has_st, has_c, has_n, has_4, has_ndim, rest = m.groups()
    if has_4 or has_ndim:
        raise ReadError(path, "4D / n-dimensional OFF files are not supported")
    rest = rest.strip()
    li = 1
    if not rest:
        if len(lines) < 2:
            raise ReadError(path, "OFF header has no vertex/face counts")
        rest = lines[1]
        li = 2
    try:
        counts = [int(t) for t in rest.split()]
    except ValueError:
        raise ReadError(path, f"OFF counts line is not integers: {rest[:40]!r}") from None
    if len(counts) < 2:
        raise ReadError(path, f"OFF counts line needs 'vertices faces [edges]', got {rest[:40]!r}")
    nv, nf = counts[0], counts[1]
    if nv < 0 or nf < 0:
        raise ReadError(path, f"OFF counts are negative ({nv} vertices, {nf} faces)")
    if nv == 0:
        raise ReadError(path, "OFF file has 0 vertices")
    body = lines[li:]
    if len(body) < nv + nf:
        raise ReadError(
            path,
            f"OFF header says {nv} vertices and {nf} faces but the file has only {len(body)} data lines "
            f"(truncated or wrong counts)",
        )
    if len(body) > nv + nf:
        raise ReadError(
            path,
            f"OFF header says {nv} vertices and {nf} faces but the file has {len(body)} data lines "
            f"({len(body) - nv - nf} more than the counts)",
        )
    raw = Raw(fmt="off")
    # -- vertices ---------------------------------------------------------------------------
    vlines = body[:nv]
    k = len(vlines[0].split())
    joined = " ".join(vlines)
    try:
        vals = np.array(joined.split(), dtype=np.float64)
    except ValueError:
        raise ReadError(path, "an OFF vertex line contains something that is not a number") from None
    if k < 3 or vals.size != nv * k:
        lens = np.array([len(v.split()) for v in vlines])
        bad = int(np.flatnonzero(lens != k)[0]) if (lens != k).any() else 0
        raise ReadError(
            path,
            f"OFF vertex lines have different numbers of values (line {li + bad + 1} has {int(lens[bad])}, "
            f"expected {k} >= 3); the vertex count may be wrong",
        )
    v = vals.reshape(nv, k)
    raw.points = v[:, :3].astype(np.float32)
    c = 3
    if has_n and k >= c + 3:
        raw.normals = v[:, c : c + 3].astype(np.float32)
        c += 3
    if has_c and k >= c + 3:
        raw.colors = colors_to_unit(v[:, c : c + 3])
        c += 4 if k >= c + 4 else 3
    # -- faces ------------------------------------------------------------------------------
    if nf:
        flines = body[nv:]
        joined = " ".join(flines)
        try:
            fv = np.array(joined.split(), dtype=np.float64)
        except ValueError:
            raise ReadError(path, "an OFF face line contains something that is not a number") from None
        lens = np.fromiter((len(ln.split()) for ln in flines), dtype=np.int64, count=nf)
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        nvert = fv[starts]
        if not np.all(nvert == np.rint(nvert)) or (nvert < 0).any():
            raise ReadError(path, "an OFF face line does not start with its vertex count")
        nvert = nvert.astype(np.int64)
        short = np.flatnonzero(nvert + 1 > lens)
        if short.size:
            i = int(short[0])
            raise ReadError(
                path, f"OFF face {i} says {int(nvert[i])} vertices but its line has only {int(lens[i]) - 1} values"
            )
        # indices of all polygons, one after another
        take = np.repeat(starts + 1, nvert) + (np.arange(int(nvert.sum())) - np.repeat(np.cumsum(nvert) - nvert, nvert))
        flat = fv[take]
        if flat.size and not np.all(flat == np.rint(flat)):
            raise ReadError(path, "an OFF face has a vertex index that is not an integer")
        flat = flat.astype(np.int64)
        tri, _ = fan_triangulate(flat, nvert)
        check_faces(path, tri, nv)
        if (nvert < 3).any():
            raw.warnings.append(f"{int((nvert < 3).sum())} faces with fewer than 3 vertices ignored")
        if (nvert > 3).any():
            raw.meta["polygons_triangulated"] = int((nvert > 3).sum())
        raw.faces = tri
    raw.meta["off_counts"] = (nv, nf)
    return raw
