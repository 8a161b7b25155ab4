"""Expe point sets: the ``.pts`` variant MeshLab reads and writes (vcglib's ``import_expe.h``).

Not Leica's text PTS (that is :mod:`crosspoint.io.text`): these files start with a header line
``[Expe/PointSet/<Binary|Ascii>/<0.1|0.2>]``, then whitespace-separated header commands up to the
word ``data``::

    [Expe/PointSet/Binary/0.1]
    property position 12            # 0.1: name, size in bytes
    property radius 4
    property normal 12
    property color 4
    nofpoints 1000
    data
    <1000 records of 32 bytes>

Version 0.2 declares ``property <name> <count> <type>`` with the type one of ``r32 r16 i32 ui32 i16
ui16 i8 ui8`` (4, 2 or 1 bytes). In a binary file exactly one byte (the line break) follows
``data``; then ``nofpoints`` records, each the properties in header order, packed, little-endian
(the writers dump x86 memory). In 0.1 files ``position`` and ``normal`` are three float32,
``radius`` one float32 and ``color`` 4 bytes RGBA. An ASCII file has one line per point, the
properties separated by ``;`` and their values by spaces (or commas).

``position`` -> points, ``normal`` -> normals, ``color`` -> colours; other properties (``radius``)
are skipped and listed in ``meta["other_fields"]``.
"""

from __future__ import annotations

import re

import numpy as np

from .common import ReadError, Raw, colors_to_unit

MAGIC = b"[Expe/PointSet/"
_HEADER = re.compile(rb"\[Expe/PointSet/(Binary|Ascii)/(0\.1|0\.2)\]")
_TYPES = {"r32": "<f4", "r16": "<f2", "i32": "<i4", "ui32": "<u4", "i16": "<i2", "ui16": "<u2", "i8": "i1", "ui8": "u1"}
_MAX_HEADER = 1 << 16


def _header(path, data: bytes):
    """(encoding, version, [(name, count, numpy type or None, size in bytes)], points, data offset)."""
    m = _HEADER.match(data.lstrip())
    if not m:
        first = data.lstrip()[:40].splitlines()[0]
        raise ReadError(
            path, f"unsupported Expe point set header {first!r}; expected [Expe/PointSet/Binary|Ascii/0.1|0.2]"
        )
    encoding, version = m.group(1).decode(), m.group(2).decode()
    pos = len(data) - len(data.lstrip()) + m.end()
    props: list[tuple[str, int, str | None, int]] = []
    n_points = None
    token = re.compile(rb"\S+")

    def next_token():
        nonlocal pos
        t = token.search(data, pos, min(len(data), _MAX_HEADER))
        if t is None:
            raise ReadError(path, "Expe point set header has no 'data' line (truncated, or not an Expe point set)")
        pos = t.end()
        return t.group().decode("latin-1")

    def number(what: str) -> int:
        t = next_token()
        try:
            return int(t)
        except ValueError:
            raise ReadError(path, f"Expe point set header: {what} is {t!r}, not an integer") from None

    while True:
        cmd = next_token()
        if cmd == "data":
            break
        if cmd == "nofpoints":
            n_points = number("nofpoints")
        elif cmd == "property":
            name = next_token()
            if version == "0.1":
                size = number(f"the size of property {name!r}")
                props.append((name, 0, None, size))
            else:
                count = number(f"the count of property {name!r}")
                kind = next_token()
                if kind not in _TYPES:
                    raise ReadError(
                        path, f"Expe point set property {name!r} has an unknown type {kind!r} "
                        f"(known: {' '.join(_TYPES)})"
                    )
                props.append((name, count, _TYPES[kind], count * np.dtype(_TYPES[kind]).itemsize))
        else:
            raise ReadError(path, f"Expe point set header: unknown command {cmd!r} before 'data'")
    if n_points is None:
        raise ReadError(path, "Expe point set header has no 'nofpoints' line")
    if n_points < 0:
        raise ReadError(path, f"Expe point set header says {n_points} points")
    if not any(p[0] == "position" for p in props):
        raise ReadError(
            path, f"Expe point set has no 'position' property (properties: {' '.join(p[0] for p in props) or 'none'})"
        )
    if any(p[3] <= 0 for p in props):
        bad = next(p for p in props if p[3] <= 0)
        raise ReadError(path, f"Expe point set property {bad[0]!r} has size {bad[3]} bytes")
    return encoding, version, props, n_points, pos


def _v01_type(path, name: str, size: int) -> tuple[int, str | None]:
    """(count, numpy type) of a 0.1 property from its name and size; (0, None) for a skipped one."""
    if name in ("position", "normal"):
        if size != 12:
            raise ReadError(path, f"Expe point set property {name!r} is {size} bytes, expected 12 (3 float32)")
        return 3, "<f4"
    if name == "color":
        if size not in (3, 4):
            raise ReadError(path, f"Expe point set property 'color' is {size} bytes, expected 4 (RGBA bytes)")
        return size, "u1"
    return 0, None


def _read_binary(path, data: bytes, start: int, props, n: int, version: str) -> tuple[dict, str | None]:
    """({property: (n, k) array}, a warning about trailing bytes or None)."""
    if start >= len(data) or data[start:start + 1] not in (b"\n", b"\r", b" ", b"\t"):
        raise ReadError(path, "Expe point set: no line break after 'data' (truncated or not a binary point set)")
    start += 1  # the one byte after 'data', as the Expe and vcglib readers skip it
    fields, offset, wanted = [], 0, {}
    for name, count, kind, size in props:
        if version == "0.1":
            count, kind = _v01_type(path, name, size)
        elif (name in ("position", "normal") and count != 3) or (name == "color" and count not in (3, 4)):
            raise ReadError(path, f"Expe point set property {name!r} has {count} values per point")
        if name in ("position", "normal", "color") and kind is not None:
            fields.append((name, kind, (count,), offset))
            wanted[name] = count
        offset += size
    record = np.dtype({"names": [f[0] for f in fields], "formats": [(f[1], f[2]) for f in fields],
                       "offsets": [f[3] for f in fields], "itemsize": offset})
    need = n * record.itemsize
    have = len(data) - start
    if data[start - 1:start + 1] == b"\r\n" and have == need + 1:  # written with a CRLF line break
        start += 1
        have -= 1
    if have < need:
        raise ReadError(
            path, f"Expe point set header says {n:,} points ({need:,} bytes of {record.itemsize}-byte records) "
            f"but only {have:,} bytes follow ({have // max(record.itemsize, 1):,} points; truncated)"
        )
    arr = np.frombuffer(data, record, n, start)
    extra = f"{have - need:,} bytes after the last point ignored" if have > need else None
    return {name: np.asarray(arr[name]) for name in wanted}, extra


def _read_ascii(path, data: bytes, start: int, props, n: int) -> tuple[dict, str | None]:
    """({property: (n, k) array}, a warning about trailing lines or None)."""
    lines = [ln for ln in data[start:].split(b"\n") if ln.strip()]
    if len(lines) < n:
        raise ReadError(path, f"Expe point set header says {n:,} points but the file has {len(lines):,} data lines")
    cols: dict[str, list] = {p[0]: [] for p in props}
    for k, line in enumerate(lines[:n]):
        parts = line.split(b";")
        if len(parts) != len(props):
            raise ReadError(
                path, f"Expe point set data line {k + 1} has {len(parts)} ';'-separated properties, "
                f"the header declares {len(props)}"
            )
        for (name, *_), part in zip(props, parts):
            cols[name].append(part.replace(b",", b" ").split())
    out = {}
    for name in ("position", "normal", "color"):
        if name not in cols:
            continue
        try:
            a = np.array(cols[name], dtype=np.float64)
        except ValueError:
            raise ReadError(path, f"Expe point set property {name!r} has values that are not numbers "
                            "or a varying count per line") from None
        want = 3 if name != "color" else (3, 4)
        if a.ndim != 2 or a.shape[1] not in ((want,) if isinstance(want, int) else want):
            raise ReadError(path, f"Expe point set property {name!r} has {a.shape[-1]} values per point")
        out[name] = a
    extra = f"{len(lines) - n:,} data lines after the last point ignored" if len(lines) > n else None
    return out, extra


def read_expe(path, fmt=None, index=None) -> Raw:
    """An Expe / MeshLab point set (binary or ASCII, version 0.1 or 0.2)."""
    data = path.read_bytes()
    encoding, version, props, n, start = _header(path, data)
    if n == 0:
        raise ReadError(path, "Expe point set header says 0 points")
    if encoding == "Binary":
        cols, extra = _read_binary(path, data, start, props, n, version)
    else:
        cols, extra = _read_ascii(path, data, start, props, n)
    raw = Raw(fmt="expe")
    raw.points = np.asarray(cols["position"], np.float32).reshape(n, 3)
    if "normal" in cols:
        raw.normals = np.asarray(cols["normal"], np.float32).reshape(n, 3)
    if "color" in cols:
        raw.colors = colors_to_unit(cols["color"][:, :3])
    raw.meta["encoding"] = encoding.lower()
    raw.meta["version"] = version
    raw.meta["fields"] = [p[0] for p in props]
    other = [p[0] for p in props if p[0] not in cols]
    if other:
        raw.meta["other_fields"] = other
    if extra:
        raw.warnings.append(extra)
    return raw
