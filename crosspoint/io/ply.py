"""PLY reader (ascii, binary little / big endian) and binary PLY writer.

The header is parsed here and the data read with numpy: a binary element of fixed-size rows is
one ``np.frombuffer``; lists (faces) are read as fixed-size rows when every row has the first
row's length (checked), and walked row by row otherwise. ASCII data is tokenised in one go.
(``plyfile`` reads lists and ASCII row by row in Python, about 100x slower for big files; the
tests use it as an independent writer.)

Vertex properties: ``x y z`` -> points, ``nx ny nz`` -> normals, ``red green blue`` (uint8 /
uint16 / float) -> colours, the first of :data:`~crosspoint.io.common.LABEL_NAMES` (``label``,
``scalar_label``, ``class``, ``part``, ``segment``, ``instance`` ...) -> labels. Face
``vertex_indices`` / ``vertex_index`` -> triangles (polygons fan-triangulated); a face label
property -> per-face labels.
"""

from __future__ import annotations

import struct

import numpy as np

from .common import LABEL_NAMES, ReadError, Raw, as_labels, check_faces, fan_triangulate, fixed_fan, from_named_fields

_SCALARS = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_FACE_LISTS = ("vertex_indices", "vertex_index")
_MAX_HEADER = 1 << 20


class _Elem:
    def __init__(self, name: str, count: int):
        self.name = name
        self.count = count
        self.props: list[tuple] = []  # (name, dtype) or (name, count dtype, item dtype)

    @property
    def has_lists(self) -> bool:
        return any(len(p) == 3 for p in self.props)


def _parse_header(path, data: bytes):
    end = data.find(b"end_header", 0, _MAX_HEADER)
    if end < 0:
        raise ReadError(path, "PLY header has no 'end_header' (truncated or not a PLY file)")
    nl = data.find(b"\n", end)
    if nl < 0:
        if data[end:].strip() == b"end_header":
            start = len(data)
        else:
            raise ReadError(path, "PLY header does not end with a line break")
    else:
        start = nl + 1
    lines = data[:end].decode("latin-1").splitlines()  # comments may hold any 8-bit text
    if not lines or lines[0].strip() != "ply":
        raise ReadError(path, "not a PLY file (does not start with 'ply')")
    fmt = None
    elems: list[_Elem] = []
    for i, line in enumerate(lines[1:], start=2):
        toks = line.split()
        if not toks or toks[0] in ("comment", "obj_info"):
            continue
        if toks[0] == "format":
            if len(toks) < 2 or toks[1] not in ("ascii", "binary_little_endian", "binary_big_endian"):
                raise ReadError(path, f"PLY header line {i}: unknown format {line.strip()!r}")
            fmt = toks[1]
        elif toks[0] == "element":
            try:
                elems.append(_Elem(toks[1], int(toks[2])))
            except (IndexError, ValueError):
                raise ReadError(path, f"PLY header line {i}: bad element line {line.strip()!r}") from None
            if elems[-1].count < 0:
                raise ReadError(path, f"PLY header line {i}: negative element count")
        elif toks[0] == "property":
            if not elems:
                raise ReadError(path, f"PLY header line {i}: property before any element")
            try:
                if toks[1] == "list":
                    elems[-1].props.append((toks[4], _SCALARS[toks[2]], _SCALARS[toks[3]]))
                else:
                    elems[-1].props.append((toks[2], _SCALARS[toks[1]]))
            except (IndexError, KeyError):
                raise ReadError(path, f"PLY header line {i}: bad property line {line.strip()!r}") from None
        else:
            raise ReadError(path, f"PLY header line {i}: unknown keyword {toks[0]!r}")
    if fmt is None:
        raise ReadError(path, "PLY header has no 'format' line")
    return fmt, elems, start


# -- binary ------------------------------------------------------------------------------------


def _scalar_dtype(elem: _Elem, bo: str) -> np.dtype:
    return np.dtype([(p[0], bo + p[1]) for p in elem.props])


def _read_binary_elem(path, elem: _Elem, buf: memoryview, off: int, bo: str):
    """(dict name -> column or list of arrays / 2-D array, new offset)."""
    n = elem.count
    left = len(buf) - off
    if not elem.has_lists:
        dt = _scalar_dtype(elem, bo)
        need = n * dt.itemsize
        if need > left:
            raise ReadError(
                path,
                f"PLY element '{elem.name}' needs {need} bytes for {n} rows but only {left} bytes are left "
                f"(truncated)",
            )
        arr = np.frombuffer(buf, dt, n, off)
        return {p[0]: arr[p[0]] for p in elem.props}, off + need
    if n == 0:
        return {p[0]: np.zeros((0, 0)) for p in elem.props}, off
    min_row = sum(np.dtype(p[1]).itemsize for p in elem.props)  # scalars and list counts
    if n * min_row > left:
        raise ReadError(
            path,
            f"PLY element '{elem.name}' needs at least {n * min_row} bytes for {n} rows but only {left} bytes "
            f"are left (truncated)",
        )
    # guess: every list has the length of the first row's list
    lens = []
    o = off
    for p in elem.props:
        if len(p) == 2:
            o += np.dtype(p[1]).itemsize
        else:
            cdt = np.dtype(bo + p[1])
            if o + cdt.itemsize > len(buf):
                raise ReadError(path, f"PLY element '{elem.name}' is truncated (no data for its first row)")
            L = int(np.frombuffer(buf, cdt, 1, o)[0])
            lens.append(L)
            o += cdt.itemsize + L * np.dtype(p[2]).itemsize
    fields = []
    li = 0
    for p in elem.props:
        if len(p) == 2:
            fields.append((p[0], bo + p[1]))
        else:
            fields.append((p[0] + "\nlen", bo + p[1]))
            fields.append((p[0], bo + p[2], (lens[li],)))
            li += 1
    dt = np.dtype(fields)
    need = n * dt.itemsize
    if need <= left:
        arr = np.frombuffer(buf, dt, n, off)
        li = 0
        ok = True
        for p in elem.props:
            if len(p) == 3:
                if not np.all(arr[p[0] + "\nlen"] == lens[li]):
                    ok = False
                    break
                li += 1
        if ok:
            return {p[0]: arr[p[0]] for p in elem.props}, off + need
    # variable-length lists (or the guess ran out of bytes): walk the rows
    return _walk_binary_elem(path, elem, buf, off, bo)


def _walk_binary_elem(path, elem: _Elem, buf: memoryview, off: int, bo: str):
    n = elem.count
    out: dict = {}
    sc = {p[0]: [] for p in elem.props if len(p) == 2}
    lists = {p[0]: ([], []) for p in elem.props if len(p) == 3}  # (lengths, flat chunks)
    steps = []
    for p in elem.props:
        if len(p) == 2:
            steps.append((p[0], False, struct.Struct(bo + np.dtype(p[1]).char), None))
        else:
            steps.append((p[0], True, struct.Struct(bo + np.dtype(p[1]).char), np.dtype(bo + p[2])))
    size = len(buf)
    o = off
    try:
        for _ in range(n):
            for name, is_list, st, it in steps:
                if not is_list:
                    sc[name].append(st.unpack_from(buf, o)[0])
                    o += st.size
                else:
                    L = st.unpack_from(buf, o)[0]
                    o += st.size
                    nb = L * it.itemsize
                    if L < 0 or o + nb > size:
                        raise struct.error("truncated")
                    lists[name][0].append(L)
                    lists[name][1].append(np.frombuffer(buf, it, L, o))
                    o += nb
    except struct.error:
        raise ReadError(path, f"PLY element '{elem.name}' is truncated (the file ends inside its data)") from None
    for name, vals in sc.items():
        out[name] = np.array(vals)
    for name, (lens_, chunks) in lists.items():
        out[name] = (np.array(lens_, np.int64), np.concatenate(chunks) if chunks else np.zeros(0))
    return out, o


# -- ascii -------------------------------------------------------------------------------------


def _cast(col: np.ndarray, dt: str) -> np.ndarray:
    """An ascii column (float64) in its declared type (so uchar colours stay uchar)."""
    if dt[0] == "f" or not np.isfinite(col).all():
        return col.astype(dt) if dt[0] == "f" else col
    return col.astype(dt)


def _read_ascii(path, elems, body: bytes):
    try:
        vals = np.array(body.split(), dtype=np.float64)
    except ValueError:
        raise ReadError(path, "PLY ascii data contains values that are not numbers") from None
    pos = 0
    results = {}
    total = vals.size
    for e in elems:
        n = e.count
        if not e.has_lists:
            w = len(e.props)
            need = n * w
            if pos + need > total:
                raise ReadError(
                    path,
                    f"PLY element '{e.name}' needs {need} values for {n} rows but only {total - pos} are left "
                    f"(truncated or wrong count)",
                )
            tab = vals[pos : pos + need].reshape(n, w)
            results[e.name] = {p[0]: _cast(tab[:, i], p[1]) for i, p in enumerate(e.props)}
            pos += need
            continue
        if n == 0:
            results[e.name] = {}
            continue
        if pos + n * len(e.props) > total:
            raise ReadError(
                path,
                f"PLY element '{e.name}' needs at least {n * len(e.props)} values for {n} rows but only "
                f"{total - pos} are left (truncated or wrong count)",
            )
        # fixed-length guess from the first row
        lens = []
        q = pos
        for p in e.props:
            if q >= total:
                raise ReadError(path, f"PLY element '{e.name}' is truncated")
            if len(p) == 2:
                q += 1
            else:
                L = int(vals[q])
                lens.append(L)
                q += 1 + L
        w = q - pos
        need = n * w
        done = False
        if pos + need <= total:
            tab = vals[pos : pos + need].reshape(n, w)
            c = 0
            li = 0
            cols = {}
            ok = True
            for p in e.props:
                if len(p) == 2:
                    cols[p[0]] = _cast(tab[:, c], p[1])
                    c += 1
                else:
                    if not np.all(tab[:, c] == lens[li]):
                        ok = False
                        break
                    cols[p[0]] = tab[:, c + 1 : c + 1 + lens[li]]
                    c += 1 + lens[li]
                    li += 1
            if ok:
                results[e.name] = cols
                pos += need
                done = True
        if not done:
            sc = {p[0]: np.empty(n) for p in e.props if len(p) == 2}
            ll = {p[0]: (np.empty(n, np.int64), []) for p in e.props if len(p) == 3}
            for r in range(n):
                for p in e.props:
                    if pos >= total:
                        raise ReadError(path, f"PLY element '{e.name}' is truncated (row {r} of {n})")
                    if len(p) == 2:
                        sc[p[0]][r] = vals[pos]
                        pos += 1
                    else:
                        L = int(vals[pos])
                        if L < 0 or pos + 1 + L > total:
                            raise ReadError(path, f"PLY element '{e.name}' is truncated (row {r} of {n})")
                        ll[p[0]][0][r] = L
                        ll[p[0]][1].append(vals[pos + 1 : pos + 1 + L])
                        pos += 1 + L
            cols = {k: _cast(v, next(p[1] for p in e.props if p[0] == k)) for k, v in sc.items()}
            for name, (lens_, chunks) in ll.items():
                cols[name] = (lens_, np.concatenate(chunks) if chunks else np.zeros(0))
            results[e.name] = cols
    return results, total - pos


# -- the reader -------------------------------------------------------------------------------


def read_ply(path, fmt=None, index=None) -> Raw:
    """A PLY file: its vertices (points) and faces (triangulated) with their properties."""
    data = path.read_bytes()
    fmt, elems, start = _parse_header(path, data)
    names = [e.name for e in elems]
    if "vertex" not in names:
        raise ReadError(path, f"PLY file has no 'vertex' element (elements: {', '.join(names) or 'none'})")
    raw = Raw(fmt="ply")
    raw.meta["encoding"] = fmt
    needed = {"vertex", "face"}
    if fmt == "ascii":
        results, extra = _read_ascii(path, [e for e in elems], data[start:])
        if extra > 0:
            raw.warnings.append(f"{extra} values after the last PLY element ignored")
    else:
        bo = "<" if fmt == "binary_little_endian" else ">"
        buf = memoryview(data)
        off = start
        results = {}
        last = max(i for i, e in enumerate(elems) if e.name in needed)
        for i, e in enumerate(elems[: last + 1]):
            results[e.name], off = _read_binary_elem(path, e, buf, off, bo)
    vert = results["vertex"]
    vel = elems[names.index("vertex")]
    if vel.count == 0:
        raise ReadError(path, "PLY file has 0 vertices")
    scalars = {p[0]: vert[p[0]] for p in vel.props if len(p) == 2}
    found = from_named_fields(list(scalars), scalars.__getitem__)
    if found["points"] is None:
        raise ReadError(path, f"PLY vertex element has no x y z properties ({' '.join(scalars)})")
    raw.points = np.asarray(found["points"], np.float32)
    raw.normals = found.get("normals")
    raw.colors = found.get("colors")
    raw.labels = found.get("labels")
    if "face" in results and elems[names.index("face")].count > 0:
        fel = elems[names.index("face")]
        fcols = results["face"]
        lst = next((p[0] for p in fel.props if len(p) == 3 and p[0] in _FACE_LISTS), None)
        if lst is None:
            lst = next((p[0] for p in fel.props if len(p) == 3), None)
        if lst is None:
            raise ReadError(path, "PLY face element has no vertex_indices list")
        f = fcols[lst]
        if isinstance(f, tuple):  # variable lengths
            lens, flat = f
            tri, poly = fan_triangulate(np.asarray(flat).astype(np.int64), lens)
            if (lens < 3).any():
                raw.warnings.append(f"{int((lens < 3).sum())} faces with fewer than 3 vertices ignored")
        else:
            f = np.asarray(f)
            if f.ndim != 2 or f.shape[1] < 3:
                raise ReadError(path, "PLY faces have fewer than 3 vertices")
            tri = fixed_fan(f.astype(np.int64))
            poly = np.repeat(np.arange(f.shape[0]), f.shape[1] - 2)
        check_faces(path, tri, raw.points.shape[0])
        raw.faces = tri
        fl = next((p[0] for p in fel.props if len(p) == 2 and p[0].lower() in LABEL_NAMES), None)
        if fl is not None and tri.shape[0]:
            raw.face_labels = as_labels(np.asarray(fcols[fl]))[poly]
    return raw


def write_ply(path, cloud) -> None:
    """Binary little-endian PLY of the points: x y z [nx ny nz] [red green blue uchar] [label int]."""
    n = cloud.n_points
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if cloud.normals is not None:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if cloud.colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    if cloud.labels is not None:
        fields.append(("label", "<i4"))
    arr = np.empty(n, np.dtype(fields))
    arr["x"], arr["y"], arr["z"] = cloud.points.T
    if cloud.normals is not None:
        arr["nx"], arr["ny"], arr["nz"] = cloud.normals.T
    if cloud.colors is not None:
        c = np.clip(np.rint(cloud.colors * 255.0), 0, 255).astype(np.uint8)
        arr["red"], arr["green"], arr["blue"] = c.T
    if cloud.labels is not None:
        arr["label"] = cloud.labels
    names = {"<f4": "float", "u1": "uchar", "<i4": "int"}
    header = ["ply", "format binary_little_endian 1.0", "comment written by crosspoint"]
    header.append(f"element vertex {n}")
    header += [f"property {names[t]} {f}" for f, t in fields]
    header.append("end_header")
    with open(path, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        fh.write(arr.tobytes())
