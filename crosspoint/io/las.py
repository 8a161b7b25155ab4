"""LAS / LAZ airborne-laser point clouds, read with laspy (LAZ through lazrs).

Scaled ``x y z``, 16-bit colours, ``classification`` as per-point labels. Far-away
(georeferenced) coordinates are shifted to keep float32 precision; the shift is
``meta["origin"]``. The public header is checked against the file size before laspy sees it.
"""

from __future__ import annotations

import numpy as np

from .common import ReadError, Raw, colors_to_unit


def _check_las_header(path, fmt: str) -> None:
    """Sanity-check the LAS public header before laspy sees it.

    laspy trusts the counts in the header: a corrupt VLR count makes it loop for billions of
    iterations, a corrupt point count makes it allocate gigabytes. Both are checked against
    the file size here.
    """
    import struct

    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(375)
    if len(head) < 227 or head[:4] != b"LASF":
        raise ReadError(path, f"not a valid {fmt.upper()} file (header too short or no 'LASF' signature)")
    major, minor = head[24], head[25]
    header_size, point_offset, n_vlrs = struct.unpack_from("<HII", head, 94)
    point_format = head[104] & 0x3F
    compressed = bool(head[104] & 0xC0)
    record_len = struct.unpack_from("<H", head, 105)[0]
    count = struct.unpack_from("<I", head, 107)[0]
    if major != 1 or minor > 4:
        raise ReadError(path, f"unsupported LAS version {major}.{minor}")
    if header_size < 227 or header_size > size or point_offset > size or point_offset < header_size:
        raise ReadError(path, "LAS header sizes/offsets are inconsistent with the file (corrupt or truncated)")
    if n_vlrs * 54 > point_offset - header_size:
        raise ReadError(path, f"LAS header says {n_vlrs:,} VLRs, more than fit before the point data (corrupt)")
    if minor >= 4 and len(head) >= 255:
        first_evlr, n_evlrs, count14 = struct.unpack_from("<QIQ", head, 235)
        if n_evlrs and (first_evlr > size or n_evlrs * 60 > size - first_evlr):
            raise ReadError(path, f"LAS header says {n_evlrs:,} extended VLRs that do not fit in the file (corrupt)")
        count = max(count, count14)
    if point_format > 10 or record_len == 0:
        raise ReadError(path, f"LAS point format {point_format} / record length {record_len} is invalid (corrupt)")
    need = count * record_len
    if not compressed and point_offset + need > size:
        raise ReadError(
            path, f"LAS header says {count:,} points ({need:,} bytes) but only {size - point_offset:,} bytes "
            f"of point data follow (truncated)"
        )
    if compressed and need > 200 * size:
        raise ReadError(path, f"LAZ header says {count:,} points, far more than a {size:,}-byte file can hold; corrupt")
    if compressed:
        # the LAZ chunk table: lazrs allocates 'number of chunks' entries up front (a Rust abort when huge)
        with open(path, "rb") as fh:
            fh.seek(point_offset)
            raw_off = fh.read(8)
            if len(raw_off) < 8:
                raise ReadError(path, "LAZ file ends before its point data (truncated)")
            table = struct.unpack("<q", raw_off)[0]
            if table == -1 and size >= 8:  # written at the end of the file instead
                fh.seek(size - 8)
                table = struct.unpack("<q", fh.read(8))[0]
            if table != -1:
                if table < point_offset + 8 or table + 8 > size:
                    raise ReadError(path, "LAZ chunk table offset points outside the file (corrupt or truncated)")
                fh.seek(table)
                _version, n_chunks = struct.unpack("<II", fh.read(8))
                if n_chunks > max(size - point_offset, 1) or n_chunks > count + 1:
                    raise ReadError(path, f"LAZ chunk table claims {n_chunks:,} chunks (corrupt)")


def read_las(path, fmt, index=None) -> Raw:
    """A LAS or LAZ file; ``fmt`` is the format the extension named (the header decides)."""
    fmt = fmt.key
    try:
        import laspy
    except ImportError:  # pragma: no cover
        raise ReadError(path, "reading LAS/LAZ needs the 'laspy' package") from None
    _check_las_header(path, fmt)
    try:
        las = laspy.read(str(path))
        xyz = np.stack([np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)], axis=1)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # lazrs reports corrupt data as a Rust panic (a BaseException)
        msg = str(e)
        if "lazrs" in msg.lower() or "laszip" in msg.lower() or "backend" in msg.lower():
            msg = f"LAZ decompression is not available ({msg}); install laspy[lazrs]"
        raise ReadError(path, f"cannot read as {fmt.upper()}: {type(e).__name__}: {msg}") from None
    compressed = bool(getattr(las.header, "are_points_compressed", False))
    raw = Raw(fmt="laz" if compressed else "las")
    n = xyz.shape[0]
    if n == 0:
        raise ReadError(path, "LAS file has 0 points")
    raw.meta["point_format"] = int(las.header.point_format.id)
    raw.meta["version"] = str(las.header.version)
    finite = xyz[np.isfinite(xyz).all(axis=1)]
    if finite.size:
        lo = finite.min(axis=0)
        span = float(np.abs(finite).max())
        scale = float(min(las.header.scales)) if len(las.header.scales) else 0.001
        # float32 keeps ~24 bits: shift far-away (georeferenced) clouds so no precision is lost
        if span * 2.0**-23 > scale / 2.0:
            origin = np.floor(lo)
            xyz = xyz - origin
            raw.meta["origin"] = [float(o) for o in origin]
            raw.warnings.append(
                "coordinates shifted by (" + ", ".join(f"{o:.0f}" for o in origin) + ") to keep float32 precision"
            )
    raw.points = xyz.astype(np.float32)
    dims = set(las.point_format.dimension_names)
    if {"red", "green", "blue"} <= dims:
        rgb = np.stack([np.asarray(las.red), np.asarray(las.green), np.asarray(las.blue)], axis=1)
        if rgb.any():
            raw.colors = colors_to_unit(rgb.astype(np.uint16))
    if "classification" in dims:
        raw.labels = np.asarray(las.classification).astype(np.int64)
    return raw
