"""PCL's PCD format (v0.5 / v0.6 / v0.7): ``ascii``, ``binary`` and ``binary_compressed`` (LZF).

Fields: ``x y z`` -> points, ``normal_x normal_y normal_z`` -> normals, ``rgb`` / ``rgba`` (packed
into a float or uint32) or ``r g b`` -> colours, ``label`` (and the other label names of
:data:`crosspoint.io.common.LABEL_NAMES`) -> labels. Padding fields ``_`` and fields with
``COUNT > 1`` (descriptors) are skipped. Organised clouds (``HEIGHT > 1``) keep their shape in
``meta["organized"]``; their NaN points are dropped by the caller.
"""

from __future__ import annotations

import struct

import numpy as np

from .common import ReadError, Raw, from_named_fields, pack_rgb

_TYPES = {
    ("F", 4): "<f4", ("F", 8): "<f8",
    ("I", 1): "<i1", ("I", 2): "<i2", ("I", 4): "<i4", ("I", 8): "<i8",
    ("U", 1): "<u1", ("U", 2): "<u2", ("U", 4): "<u4", ("U", 8): "<u8",
}
_MAX_HEADER = 1 << 20


def parse_header(path, data: bytes) -> tuple[dict, int]:
    """(header dict, offset of the data) of a PCD file."""
    hdr: dict = {}
    pos = 0
    n = len(data)
    while True:
        if pos >= n or pos > _MAX_HEADER:
            raise ReadError(path, "PCD header has no DATA line (truncated or not a PCD file)")
        end = data.find(b"\n", pos)
        end = n if end < 0 else end
        line = data[pos:end].decode("latin-1").strip()
        if "\x00" in line:
            raise ReadError(path, "PCD header contains binary bytes (not a PCD file, or no DATA line)")
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, _, rest = line.partition(" ")
        key = key.upper()
        vals = rest.split()
        if key == "DATA":
            hdr["DATA"] = (vals[0].lower() if vals else "")
            break
        hdr[key] = vals
        if len(hdr) > 50:
            raise ReadError(path, "not a PCD header (too many unknown lines before DATA)")
    if "FIELDS" not in hdr and "COLUMNS" in hdr:  # very old files
        hdr["FIELDS"] = hdr["COLUMNS"]
    return hdr, pos


def _ints(path, hdr, key, default=None):
    if key not in hdr:
        if default is None:
            raise ReadError(path, f"PCD header has no {key} line")
        return default
    try:
        return [int(v) for v in hdr[key]]
    except ValueError:
        raise ReadError(path, f"PCD header {key} line is not integers: {' '.join(hdr[key])!r}") from None


def read_pcd(path, fmt=None, index=None) -> Raw:
    """A PCD file (ascii, binary or binary_compressed)."""
    data = path.read_bytes()
    hdr, off = parse_header(path, data)
    fields = hdr.get("FIELDS")
    if not fields:
        raise ReadError(path, "PCD header has no FIELDS line")
    nf = len(fields)
    sizes = _ints(path, hdr, "SIZE", [4] * nf)
    types = [t.upper() for t in hdr.get("TYPE", ["F"] * nf)]
    counts = _ints(path, hdr, "COUNT", [1] * nf)
    if not (len(sizes) == len(types) == len(counts) == nf):
        raise ReadError(
            path, f"PCD header lists {nf} FIELDS but {len(sizes)} SIZE, {len(types)} TYPE, {len(counts)} COUNT values"
        )
    width = _ints(path, hdr, "WIDTH", [0])[0] if "WIDTH" in hdr else None
    height = _ints(path, hdr, "HEIGHT", [1])[0]
    if "POINTS" in hdr:
        npts = _ints(path, hdr, "POINTS")[0]
    elif width is not None:
        npts = width * height
    else:
        raise ReadError(path, "PCD header has neither POINTS nor WIDTH")
    if npts < 0 or (width is not None and width < 0) or height < 0:
        raise ReadError(path, "PCD header has a negative size")
    if width is not None and width * height != npts:
        raise ReadError(path, f"PCD header says WIDTH {width} x HEIGHT {height} but POINTS {npts}")
    if npts == 0:
        raise ReadError(path, "PCD header says 0 points")
    dtypes = []
    for name, t, s in zip(fields, types, sizes):
        if (t, s) not in _TYPES:
            raise ReadError(path, f"PCD field {name!r} has an unsupported TYPE {t} SIZE {s}")
        dtypes.append(np.dtype(_TYPES[(t, s)]))
    for c in counts:
        if c < 1:
            raise ReadError(path, f"PCD header has a COUNT of {c}")
    # unique names for the structured dtype (padding fields '_' repeat)
    names = []
    seen: dict = {}
    for f in fields:
        k = seen.get(f, 0)
        seen[f] = k + 1
        names.append(f if k == 0 else f"{f}__{k}")
    kind = hdr.get("DATA", "")
    body = memoryview(data)[off:]
    cols: dict[str, np.ndarray] = {}
    raw = Raw(fmt="pcd")
    raw.meta["encoding"] = kind
    version = hdr.get("VERSION", ["?"])[0]
    raw.meta["version"] = version
    row_values = sum(counts)
    if kind == "ascii":
        try:
            text = bytes(body).decode("ascii")
        except UnicodeDecodeError:
            raise ReadError(path, "PCD ascii data contains non-text bytes") from None
        try:
            vals = np.array(text.split(), dtype=np.float64)
        except ValueError:
            raise ReadError(path, "PCD ascii data contains values that are not numbers") from None
        need = npts * row_values
        if vals.size < need:
            raise ReadError(
                path,
                f"PCD header says {npts} points ({need} values) but the data has {vals.size} values "
                f"({vals.size // max(row_values, 1)} points)",
            )
        if vals.size > need:
            raise ReadError(
                path, f"PCD header says {npts} points ({need} values) but the data has {vals.size} values"
            )
        table = vals.reshape(npts, row_values)
        c0 = 0
        for name, dt, c in zip(names, dtypes, counts):
            col = table[:, c0 : c0 + c]
            c0 += c
            if name.lower() in ("rgb", "rgba") and dt.itemsize == 4 and col.size and (
                np.all(col == np.rint(col)) and col.min() >= 0 and col.max() < 2**32 and col.max() >= 1
            ):
                cols[name] = col.astype(np.uint32)  # PCL writes packed colours as their integer value
            elif dt.kind == "f":
                with np.errstate(over="ignore"):  # beyond float32: inf, dropped later with the other non-finite points
                    cols[name] = col.astype(dt)
            else:
                with np.errstate(invalid="ignore"):
                    cols[name] = np.nan_to_num(col).astype(np.int64).astype(dt)
    elif kind == "binary":
        row = np.dtype({"names": names, "formats": [(dt, (c,)) if c > 1 else dt for dt, c in zip(dtypes, counts)]})
        need = npts * row.itemsize
        if len(body) < need:
            raise ReadError(
                path,
                f"PCD header says {npts} points ({need} bytes) but only {len(body)} bytes of data follow "
                f"({len(body) // row.itemsize} points; truncated)",
            )
        if len(body) > need:
            raw.warnings.append(f"{len(body) - need} bytes after the last point ignored")
        arr = np.frombuffer(body, dtype=row, count=npts)
        for name in names:
            cols[name] = arr[name]
    elif kind == "binary_compressed":
        if len(body) < 8:
            raise ReadError(path, "PCD binary_compressed data is missing its size header (truncated)")
        csize, usize = struct.unpack_from("<II", body, 0)
        item = sum(dt.itemsize * c for dt, c in zip(dtypes, counts))
        need = npts * item
        if usize != need:
            raise ReadError(
                path, f"PCD header says {npts} points ({need} bytes) but the compressed block holds {usize} bytes"
            )
        if usize > 128 * csize + 64:  # LZF expands at most ~100x (a 3-byte reference gives 264 bytes)
            raise ReadError(
                path, f"PCD compressed block of {csize} bytes cannot hold {npts} points ({usize} bytes); corrupt"
            )
        if 8 + csize > len(body):
            raise ReadError(
                path, f"PCD compressed block is {csize} bytes but only {len(body) - 8} follow (truncated)"
            )
        from .lzf import decompress

        try:
            buf = decompress(np.frombuffer(body, np.uint8, csize, 8), usize)
        except ValueError as e:
            raise ReadError(path, f"PCD binary_compressed data is corrupt: {e}") from None
        o = 0
        for name, dt, c in zip(names, dtypes, counts):
            nb = npts * dt.itemsize * c
            col = buf[o : o + nb].view(dt)
            cols[name] = col.reshape(npts, c) if c > 1 else col
            o += nb
    else:
        raise ReadError(path, f"PCD DATA type {kind!r} is not ascii, binary or binary_compressed")

    scalar = {n: (v[:, 0] if v.ndim == 2 and v.shape[1] == 1 else v) for n, v in cols.items()}
    scalar = {n: v for n, v in scalar.items() if v.ndim == 1 and not n.startswith("_")}
    found = from_named_fields(list(scalar), scalar.__getitem__)
    if found["points"] is None:
        raise ReadError(path, f"PCD has no x y z fields (fields: {' '.join(fields)})")
    raw.points = found["points"]
    raw.normals = found.get("normals")
    raw.colors = found.get("colors")
    raw.labels = found.get("labels")
    extra = [f for f in fields if f not in found["used"] and f != "_"]
    if extra:
        raw.meta["other_fields"] = extra
    raw.meta["fields"] = list(fields)
    if height > 1:
        raw.meta["organized"] = (height, width)
    return raw


def write_pcd(path, cloud) -> None:
    """Binary PCD v0.7: x y z [normal_x normal_y normal_z] [rgb (packed, F 4)] [label (U 4 / I 4)]."""
    n = cloud.n_points
    fields = [("x", "F", "<f4"), ("y", "F", "<f4"), ("z", "F", "<f4")]
    if cloud.normals is not None:
        fields += [("normal_x", "F", "<f4"), ("normal_y", "F", "<f4"), ("normal_z", "F", "<f4")]
    if cloud.colors is not None:
        fields.append(("rgb", "F", "<f4"))
    if cloud.labels is not None:
        signed = n > 0 and int(cloud.labels.min()) < 0
        fields.append(("label", "I" if signed else "U", "<i4" if signed else "<u4"))
    dt = np.dtype([(f, t) for f, _, t in fields])
    arr = np.zeros(n, dt)
    arr["x"], arr["y"], arr["z"] = cloud.points.T
    if cloud.normals is not None:
        arr["normal_x"], arr["normal_y"], arr["normal_z"] = cloud.normals.T
    if cloud.colors is not None:
        arr["rgb"] = pack_rgb(cloud.colors).view(np.float32)
    if cloud.labels is not None:
        arr["label"] = cloud.labels
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\n"
        "VERSION 0.7\n"
        f"FIELDS {' '.join(f for f, _, _ in fields)}\n"
        f"SIZE {' '.join('4' for _ in fields)}\n"
        f"TYPE {' '.join(t for _, t, _ in fields)}\n"
        f"COUNT {' '.join('1' for _ in fields)}\n"
        f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n"
    )
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(arr.tobytes())
