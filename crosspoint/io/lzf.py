"""LZF decompression (the codec of PCD ``binary_compressed``), compiled with numba.

``decompress(src, size)`` returns exactly ``size`` bytes or raises :class:`ValueError`. A pure
Python loop is used when numba is missing (correct, but slow for large clouds).
"""

from __future__ import annotations

import numpy as np

from crosspoint.lazykernels import LazyKernels



def _lzf_py(src, dst):  # the same algorithm; also the numba kernel's source
    ip = 0
    op = 0
    n_in = src.shape[0]
    n_out = dst.shape[0]
    while ip < n_in:
        ctrl = np.int64(src[ip])
        ip += 1
        if ctrl < 32:  # a literal run of ctrl + 1 bytes
            ctrl += 1
            if op + ctrl > n_out:
                return -1
            if ip + ctrl > n_in:
                return -2
            for i in range(ctrl):
                dst[op + i] = src[ip + i]
            op += ctrl
            ip += ctrl
        else:  # a back reference
            ln = ctrl >> 5
            ref = op - ((ctrl & 0x1F) << 8) - 1
            if ip >= n_in:
                return -2
            if ln == 7:
                ln += np.int64(src[ip])
                ip += 1
                if ip >= n_in:
                    return -2
            ref -= np.int64(src[ip])
            ip += 1
            ln += 2
            if op + ln > n_out:
                return -1
            if ref < 0:
                return -3
            for i in range(ln):  # byte by byte: the source may overlap the destination
                dst[op + i] = dst[ref + i]
            op += ln
    return op


def _build_kernel():
    import numba

    return numba.njit(cache=True, nogil=True)(_lzf_py)


_KERNEL = LazyKernels(_build_kernel, "numba LZF kernel")


def _kernel():
    """The compiled decompressor, or the pure-Python one without numba."""
    return _KERNEL.get() or _lzf_py


def decompress(src: bytes | np.ndarray, size: int) -> np.ndarray:
    """Decompress LZF ``src`` into ``size`` bytes (uint8 array); ValueError on corrupt data."""
    s = np.frombuffer(src, np.uint8) if not isinstance(src, np.ndarray) else src.view(np.uint8)
    dst = np.zeros(int(size), np.uint8)
    n = int(_kernel()(s, dst))
    if n == -1:
        raise ValueError("LZF data decompresses to more bytes than the header says")
    if n == -2:
        raise ValueError("LZF data ends in the middle of a block (truncated)")
    if n == -3:
        raise ValueError("LZF data refers back before its start (corrupt)")
    if n != size:
        raise ValueError(f"LZF data decompresses to {n} bytes, the header says {size}")
    return dst


def compress(data: bytes) -> bytes:
    """Trivial LZF 'compression' (literal runs only): valid LZF for tests and writers."""
    out = bytearray()
    for i in range(0, len(data), 32):
        chunk = data[i : i + 32]
        out.append(len(chunk) - 1)
        out += chunk
    return bytes(out)
