"""Plain-text point lists: XYZ / XYZN / XYZRGB / PTS / TXT / CSV (MeshLab's Expe ``.pts`` is :mod:`crosspoint.io.expe`).

One point per line, values separated by whitespace or commas. Leading header lines that are not
numbers (``x y z``, ``//X,Y,Z``, ``# comment``) are skipped, as is a single integer count on the
first line (PTS; it must then match the number of rows). Blank lines anywhere are ignored. Every
data line must have the same number of columns.

Columns (``interpret_columns``):

- 3: ``x y z``
- 4: ``x y z label`` when the 4th column is integer-valued (not for ``.pts``), else ``x y z intensity``
  (ignored)
- 6: ``x y z nx ny nz`` or ``x y z r g b``: ``.xyzn`` means normals and ``.xyzrgb`` colours; otherwise
  normals when columns 4-6 have unit length, colours when they lie in 0..1 or 0..255, else
  un-normalised normals (normalised, with a warning)
- 7: ``.pts``: ``x y z intensity r g b``; otherwise ``x y z nx ny nz label`` (ShapeNetPart) when
  columns 4-6 are unit normals and column 7 is integer-valued, ``x y z r g b label`` when they
  are colours, ``x y z intensity r g b`` when columns 5-7 are colours
- 9 / 10: ``x y z`` + a normals triple and a colours triple (either order) [+ an integer label]
- anything else >= 3: ``x y z`` + the 4-6 triple as for 6 columns; the rest is ignored (``meta["ignored_columns"]``)
"""

from __future__ import annotations

import numpy as np

from .common import ReadError, Raw, as_labels, colors_to_unit, is_integral

# bytes that str.split() treats as whitespace, as a lookup table
_WS = np.zeros(256, bool)
_WS[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True

TEXT_EXTENSIONS = (".xyz", ".xyzn", ".xyzrgb", ".pts", ".txt", ".csv")


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _numeric_tokens(line: str) -> list[str] | None:
    toks = line.replace(",", " ").replace(";", " ").split()
    if toks and all(_is_number(t) for t in toks):
        return toks
    return None


def _line_token_counts(buf: bytes) -> np.ndarray:
    """Number of whitespace-separated tokens on each line of ``buf`` (blank lines give 0)."""
    a = np.frombuffer(buf, np.uint8)
    ws = _WS[a]
    start = ~ws
    start[1:] &= ws[:-1]
    tok_pos = np.flatnonzero(start)
    nl_pos = np.flatnonzero(a == 10)
    line_of_tok = np.searchsorted(nl_pos, tok_pos)
    return np.bincount(line_of_tok, minlength=nl_pos.size + 1)


def read_text(path, fmt=None, index=None) -> Raw:
    """A text point list; the extension picks the column rules (``.txt`` for an unknown one)."""
    ext = path.suffix.lower()
    if ext not in TEXT_EXTENSIONS:
        ext = ".txt"
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte order mark
        data = data[3:]
    if not data.strip():
        raise ReadError(path, "file is empty (no data lines)")
    if b"\x00" in data[:65536]:
        raise ReadError(path, "binary data where a text point list was expected")
    # -- header lines -----------------------------------------------------------------------
    pos = 0
    header_lines = 0
    expected = None
    first_toks = None
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        raw_line = data[pos:end]
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError:
            raise ReadError(path, f"line {header_lines + 1} is not text (not UTF-8)") from None
        stripped = line.strip()
        toks = _numeric_tokens(stripped) if stripped and not stripped.startswith(("#", "//")) else None
        if toks is not None:
            if len(toks) == 1 and expected is None and is_integral(np.array([float(toks[0])])):
                expected = int(float(toks[0]))  # a PTS-style count line
                pos = end + 1
                header_lines += 1
                continue
            first_toks = toks
            break
        if stripped and expected is not None:
            raise ReadError(path, f"line {header_lines + 1} is not numeric: {stripped[:60]!r}")
        pos = end + 1
        header_lines += 1
        if header_lines > 100:
            raise ReadError(path, "no numeric data in the first 100 lines (not a point list)")
    if first_toks is None:
        if expected is not None:
            raise ReadError(path, f"the count line says {expected} points but there are no data lines")
        raise ReadError(path, "no numeric data lines found")
    body = data[pos:]
    comma = b"," in body
    if comma:
        body = body.replace(b",", b" ")
    if b";" in body:
        body = body.replace(b";", b" ")
    k = len(first_toks)
    # -- consistency of columns -------------------------------------------------------------
    counts = _line_token_counts(body)
    bad = np.flatnonzero((counts != k) & (counts != 0))
    if bad.size:
        line_no = int(bad[0]) + header_lines + 1
        raise ReadError(
            path,
            f"line {line_no} has {int(counts[bad[0]])} values but the first data line has {k} "
            f"(ragged columns)",
        )
    n_rows = int(np.count_nonzero(counts))
    if expected is not None and expected != n_rows:
        raise ReadError(path, f"the count line says {expected} points but the file has {n_rows} data lines")
    try:
        values = np.array(body.split(), dtype=np.float32)
    except ValueError:
        # find the offending line for the message (only on the error path)
        for i, line in enumerate(body.split(b"\n")):
            toks = line.split()
            try:
                np.array(toks, dtype=np.float32)
            except ValueError:
                bad_tok = next(t for t in toks if not _is_number(t.decode("utf-8", "replace")))
                raise ReadError(
                    path, f"line {i + header_lines + 1}: {bad_tok.decode('utf-8', 'replace')[:40]!r} is not a number"
                ) from None
        raise ReadError(path, "contains values that are not numbers") from None
    if values.size != n_rows * k:  # pragma: no cover - guarded by the count check
        raise ReadError(path, f"expected {n_rows * k} values, found {values.size}")
    arr = values.reshape(n_rows, k)
    raw = Raw(fmt=ext.lstrip(".") or "txt")
    raw.meta["columns_in_file"] = k
    if comma:
        raw.meta["delimiter"] = ","
    if header_lines:
        raw.meta["header_lines"] = header_lines
    interpret_columns(path, arr, ext, raw)
    return raw


# -- column interpretation -------------------------------------------------------------------


def _unit_rows(t: np.ndarray) -> bool:
    n = np.linalg.norm(t.astype(np.float64), axis=1)
    ok = (np.abs(n - 1.0) < 0.02) | (n < 1e-6)
    return t.shape[0] > 0 and float(ok.mean()) >= 0.95 and bool((n > 1e-6).any())


def _colour_range(t: np.ndarray) -> bool:
    f = t[np.isfinite(t)]
    return f.size > 0 and float(f.min()) >= 0.0 and float(f.max()) <= 255.0


def _triple_kind(t: np.ndarray) -> str | None:
    if _unit_rows(t):
        return "normals"
    if _colour_range(t):
        return "colors"
    return None


def _set(raw: Raw, kind: str, t: np.ndarray, note: list) -> None:
    if kind == "normals":
        raw.normals = t.astype(np.float32)
        note.append("nx ny nz")
    else:
        raw.colors = colors_to_unit(t)
        note.append("r g b")


def interpret_columns(path, arr: np.ndarray, ext: str, raw: Raw) -> None:
    """Fill ``raw`` from an ``(N, C)`` numeric table (see the module docstring for the rules)."""
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise ReadError(path, f"has {arr.shape[-1] if arr.ndim else 0} column(s); need at least x y z")
    n, k = arr.shape
    raw.points = arr[:, :3].astype(np.float32)
    cols = ["x y z"]
    ignored: list[int] = []
    ext = ext.lower()

    def rest_ignored(start: int) -> None:
        ignored.extend(range(start, k))

    if k == 4:
        if ext != ".pts" and is_integral(arr[:, 3]):
            raw.labels = as_labels(arr[:, 3])
            cols.append("label")
        else:
            cols.append("intensity (ignored)")
            ignored.append(3)
    elif k == 6 or (k not in (3, 4, 7, 9, 10)):
        t = arr[:, 3:6] if k >= 6 else None
        if t is None:
            rest_ignored(3)
        else:
            if ext == ".xyzn":
                kind = "normals"
            elif ext == ".xyzrgb":
                kind = "colors"
            else:
                kind = _triple_kind(t)
                if kind is None:
                    kind = "normals"
                    t = _normalise(t)
                    raw.warnings.append(
                        "columns 4-6 are neither unit normals nor colours; read as normals and normalised"
                    )
            _set(raw, kind, t, cols)
            rest_ignored(6)
    elif k == 7:
        a, last = arr[:, 3:6], arr[:, 6]
        b = arr[:, 4:7]
        if ext == ".pts":
            cols.append("intensity (ignored)")
            ignored.append(3)
            _set(raw, "colors", b, cols)
        elif _unit_rows(a) and is_integral(last):
            _set(raw, "normals", a, cols)
            raw.labels = as_labels(last)
            cols.append("label")
        elif _colour_range(a) and is_integral(last) and not _colour_range(b):
            _set(raw, "colors", a, cols)
            raw.labels = as_labels(last)
            cols.append("label")
        elif _colour_range(b):
            cols.append("intensity (ignored)")
            ignored.append(3)
            _set(raw, "colors", b, cols)
        elif is_integral(last):
            kind = _triple_kind(a) or "normals"
            _set(raw, kind, a, cols)
            raw.labels = as_labels(last)
            cols.append("label")
        else:
            rest_ignored(3)
    elif k in (9, 10):
        a, b = arr[:, 3:6], arr[:, 6:9]
        if _unit_rows(a) and _colour_range(b):
            _set(raw, "normals", a, cols)
            _set(raw, "colors", b, cols)
        elif _unit_rows(b) and _colour_range(a):
            _set(raw, "colors", a, cols)
            _set(raw, "normals", b, cols)
        else:
            kind = _triple_kind(a)
            if kind:
                _set(raw, kind, a, cols)
                ignored.extend(range(6, 9))
            else:
                ignored.extend(range(3, 9))
        if k == 10:
            if is_integral(arr[:, 9]):
                raw.labels = as_labels(arr[:, 9])
                cols.append("label")
            else:
                ignored.append(9)
    raw.meta["columns"] = " ".join(cols)
    if ignored:
        raw.meta["ignored_columns"] = [c + 1 for c in ignored]


def _normalise(t: np.ndarray) -> np.ndarray:
    t = t.astype(np.float64)
    n = np.linalg.norm(t, axis=1, keepdims=True)
    return np.where(n > 0, t / np.where(n > 0, n, 1.0), 0.0).astype(np.float32)
