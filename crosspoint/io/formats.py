"""The format registry: one :class:`Format` per file format, and content sniffing.

Reading dispatch, :func:`sniff_format`, the extension lists and the file-dialog filters all come
from :data:`FORMATS`, so adding a format is a reader module plus one entry here.

==========================  ==============================================================
``.ply``                    ascii / binary little & big endian; points or meshes (polygons
                            fan-triangulated); ``nx ny nz``, ``red green blue``, ``label``-like
                            vertex properties (:mod:`crosspoint.io.ply`)
``.pcd``                    PCL v0.5-v0.7 ascii / binary / binary_compressed (LZF); ``rgb``/``rgba``
                            packed colours, ``normal_*``, ``label``; organised clouds
``.xyz .xyzn .xyzrgb .pts   whitespace- or comma-separated numbers, header lines skipped; 3-10
.txt .csv``                 columns (ModelNet40 ``normal_resampled``, ShapeNetPart part txt,
                            Leica PTS): the column rules are in :mod:`crosspoint.io.text`
``.pts`` (Expe / MeshLab)   ``[Expe/PointSet/Binary/0.1]`` (or ``Ascii``, ``0.2``) point sets
                            (:mod:`crosspoint.io.expe`), told from Leica PTS by their header
``.off``                    Geomview OFF incl. ModelNet's ``OFF3514 3546 0`` first lines
``.obj .stl .glb .gltf``    via trimesh (geometry only: materials and textures are not read;
                            scenes are flattened with their transforms)
``.npy .npz``               see :mod:`crosspoint.io.npy` for the recognised NPZ keys
``.h5 .hdf5``               ModelNet40 (``data``, ``label``) / ShapeNetPart (``data``, ``label``,
                            ``pid``) files; one row per read: ``index=12`` or ``"file.h5#12"``
``.las .laz``               via laspy (lazrs): scaled x y z, 16-bit colours, ``classification``
                            as labels; far-away (georeferenced) coordinates are shifted to keep
                            float32 precision, the shift is ``meta["origin"]``
==========================  ==============================================================

Writers: ``.ply`` (binary little endian), ``.pcd`` (binary), ``.npz``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

from . import expe, hdf5, las, meshes, npy, off, pcd, ply, text

__all__ = [
    "Format",
    "FORMATS",
    "format_by_key",
    "formats_for_extension",
    "format_for_path",
    "sniff_format",
    "SUPPORTED_EXTENSIONS",
    "WRITE_EXTENSIONS",
    "FILE_DIALOG_FILTER",
    "WRITE_DIALOG_FILTER",
]


class Head:
    """The first 4 KiB of a file and its size, with the views of it that the sniffers share."""

    SIZE = 4096

    def __init__(self, data: bytes, size: int):
        self.data = data
        self.size = size

    @cached_property
    def text(self) -> bytes:
        """The head without a UTF-8 byte order mark."""
        return self.data.lstrip(b"\xef\xbb\xbf")

    @cached_property
    def stripped(self) -> bytes:
        return self.text.lstrip()

    @cached_property
    def has_nul(self) -> bool:
        """A NUL byte: binary content (a text format never has one)."""
        return b"\x00" in self.data

    @cached_property
    def content_lines(self) -> list[bytes]:
        """Non-empty lines that are not ``#`` comments, stripped."""
        lines = (ln.strip() for ln in self.text.splitlines())
        return [ln for ln in lines if ln and not ln.startswith(b"#")]


@dataclass(frozen=True)
class Format:
    """One file format: how it is named, found, read and written, and what it can hold.

    ``read(path, fmt, index) -> Raw`` (``index`` is only ever given when ``rows``);
    ``write(path, cloud)`` writes points with normals, colours and labels. ``sniff(head)`` says
    whether content is this format; sniffers run by ``sniff_rank`` (0 magic bytes, 1 structure,
    2 text headers, 3 weak evidence), then in registry order. The first format listing an
    extension is the one that extension names; another format listing it is still read
    without a warning when its content sniffs as that format (Expe ``.pts``). Formats of one
    ``family`` (LAS / LAZ) are told apart by their shared reader.
    """

    key: str
    name: str
    extensions: tuple[str, ...]
    group: str
    read: Callable
    write: Callable | None = None
    sniff: Callable[[Head], bool] | None = None
    sniff_rank: int = 2
    binary: bool = False  # content must match a signature: no fallback to the extension
    rows: bool = False  # holds a batch of clouds; ``file#N`` / ``index`` picks one
    family: str = ""
    mesh: bool = False
    normals: bool = False
    colors: bool = False
    labels: bool = False
    #: the axis that points up in this format's data by convention (1: +Y, ShapeNet and most meshes;
    #: 2: +Z, ModelNet's OFF meshes and LAS/LAZ scans)
    up_axis: int = 1

    @property
    def family_key(self) -> str:
        return self.family or self.key

    @property
    def writable(self) -> bool:
        return self.write is not None


# -- sniffers ------------------------------------------------------------------------------------

_OFF_RE = re.compile(rb"^(ST)?C?N?4?n?OFF(\s|\d|$)")
_PCD_RE = re.compile(rb"^(#[^\n]*\n\s*)*(VERSION|FIELDS)\s")
_OBJ_KEYS = (b"v ", b"vn ", b"vt ", b"f ", b"o ", b"g ", b"mtllib", b"usemtl", b"s ", b"l ", b"v\t", b"f\t")


def _is_ply(h: Head) -> bool:
    return h.data[:3] == b"ply" and h.data[3:4] in (b"\n", b"\r", b" ")


def _is_las(h: Head, compressed: bool) -> bool:
    if not h.data.startswith(b"LASF"):
        return False
    return (len(h.data) > 104 and bool(h.data[104] & 0xC0)) == compressed  # bit 7 (or 6): compressed points


def _is_stl(h: Head) -> bool:
    if h.size >= 84 and len(h.data) >= 84:  # binary: an 84-byte header + 50 bytes per triangle
        n_tri = int.from_bytes(h.data[80:84], "little")
        if h.size == 84 + 50 * n_tri and (n_tri > 0 or not h.data[:5].lower() == b"solid"):
            return True
    return not h.has_nul and h.stripped[:5].lower() == b"solid" and b"facet" in h.text


def _is_pcd(h: Head) -> bool:  # a PCD header is text even when binary data follows it
    return h.stripped.startswith(b"# .PCD") or bool(_PCD_RE.match(h.stripped))


def _is_off(h: Head) -> bool:
    return not h.has_nul and bool(h.content_lines) and bool(_OFF_RE.match(h.content_lines[0]))


def _is_gltf(h: Head) -> bool:
    return not h.has_nul and h.stripped.startswith(b"{") and b'"asset"' in h.text


def _is_obj(h: Head) -> bool:
    first = h.content_lines[:20]
    return not h.has_nul and bool(first) and sum(ln.startswith(_OBJ_KEYS) for ln in first) >= max(1, len(first) // 2)


def _is_text(h: Head) -> bool:
    if h.has_nul:
        return False
    for ln in h.content_lines[:50]:
        toks = ln.replace(b",", b" ").replace(b";", b" ").split()
        if len(toks) >= 3:
            try:
                [float(t) for t in toks]
            except ValueError:
                continue
            return True
    return False


# -- the registry ----------------------------------------------------------------------------------

FORMATS: tuple[Format, ...] = (
    Format("ply", "PLY", (".ply",), "PLY", ply.read_ply, ply.write_ply, _is_ply, 0, binary=True,
           mesh=True, normals=True, colors=True, labels=True),
    Format("pcd", "PCD", (".pcd",), "PCD", pcd.read_pcd, pcd.write_pcd, _is_pcd, 2, binary=True,
           normals=True, colors=True, labels=True),
    Format("text", "a text point list", text.TEXT_EXTENSIONS, "Text points", text.read_text, None, _is_text, 3,
           normals=True, colors=True, labels=True),
    Format("expe", "an Expe (MeshLab) point set", (".pts",), "Expe / MeshLab PTS", expe.read_expe, None,
           lambda h: h.stripped.startswith(expe.MAGIC), 2, normals=True, colors=True),
    Format("off", "OFF", (".off",), "OFF", off.read_off, None, _is_off, 2, mesh=True, normals=True, colors=True,
           up_axis=2),
    Format("obj", "OBJ", (".obj",), "OBJ", meshes.read_trimesh, None, _is_obj, 2, mesh=True, colors=True),
    Format("stl", "STL", (".stl",), "STL", meshes.read_trimesh, None, _is_stl, 1, mesh=True),
    Format("glb", "GLB", (".glb",), "glTF", meshes.read_trimesh, None, lambda h: h.data.startswith(b"glTF"), 0,
           binary=True, mesh=True, colors=True),
    Format("gltf", "glTF", (".gltf",), "glTF", meshes.read_trimesh, None, _is_gltf, 2, mesh=True, colors=True),
    Format("npy", "NPY", (".npy",), "NumPy", npy.read_npy, None, lambda h: h.data.startswith(b"\x93NUMPY"), 0,
           binary=True, rows=True, normals=True, colors=True, labels=True),
    Format("npz", "NPZ", (".npz",), "NumPy", npy.read_npz, npy.write_npz,
           lambda h: h.data.startswith((b"PK\x03\x04", b"PK\x05\x06")), 0,
           binary=True, rows=True, normals=True, colors=True, labels=True),
    Format("hdf5", "HDF5", (".h5", ".hdf5", ".hdf"), "HDF5", hdf5.read_h5, None,
           lambda h: h.data.startswith(b"\x89HDF\r\n\x1a\n"), 0, binary=True, rows=True, normals=True, labels=True),
    Format("las", "LAS", (".las",), "LAS / LAZ", las.read_las, None, lambda h: _is_las(h, False), 0,
           binary=True, family="las", colors=True, labels=True, up_axis=2),
    Format("laz", "LAZ", (".laz",), "LAS / LAZ", las.read_las, None, lambda h: _is_las(h, True), 0,
           binary=True, family="las", colors=True, labels=True, up_axis=2),
)

_BY_KEY = {f.key: f for f in FORMATS}
_SNIFF_ORDER = sorted((f for f in FORMATS if f.sniff is not None), key=lambda f: f.sniff_rank)


def _unique(items) -> tuple:
    return tuple(dict.fromkeys(items))


SUPPORTED_EXTENSIONS: tuple[str, ...] = _unique(e for f in FORMATS for e in f.extensions)
WRITE_EXTENSIONS: tuple[str, ...] = _unique(e for f in FORMATS if f.writable for e in f.extensions)


def _dialog_filter(formats, everything: str | None) -> str:
    groups: dict[str, list[str]] = {}
    for f in formats:
        groups.setdefault(f.group, []).extend(f.extensions)
    entries = [f"{name} (" + " ".join("*" + e for e in _unique(exts)) + ")" for name, exts in groups.items()]
    if everything:
        exts = _unique(e for f in formats for e in f.extensions)
        entries = [f"{everything} (" + " ".join("*" + e for e in exts) + ")"] + entries + ["All files (*)"]
    return ";;".join(entries)


FILE_DIALOG_FILTER = _dialog_filter(FORMATS, "Point clouds and meshes")
"""Qt file-dialog filter for opening: every readable extension, then one entry per format group."""
WRITE_DIALOG_FILTER = _dialog_filter([f for f in FORMATS if f.writable], None)
"""Qt file-dialog filter for saving: one entry per writable format."""


# -- lookups ---------------------------------------------------------------------------------------


def format_by_key(key: str) -> Format:
    """The :class:`Format` of a key (``"ply"``, ``"text"`` ...); KeyError for an unknown one."""
    return _BY_KEY[key]


def formats_for_extension(ext: str) -> tuple[Format, ...]:
    """The formats that use an extension (``".pts"``: text, then Expe); the first is its default."""
    ext = ext.lower()
    return tuple(f for f in FORMATS if ext in f.extensions)


def format_for_path(path) -> str | None:
    """The reader format an extension names (``"ply"``, ``"text"``, ``"hdf5"`` ...), or None."""
    found = formats_for_extension(Path(path).suffix)
    return found[0].key if found else None


def sniff_format(path) -> str | None:
    """The format of a file from its content, or None when no signature matches.

    Binary signatures: ``ply`` -> ``"ply"``, ``\\x93NUMPY`` -> ``"npy"``, ``PK\\x03\\x04`` (zip) ->
    ``"npz"``, ``\\x89HDF`` -> ``"hdf5"``, ``LASF`` -> ``"las"`` / ``"laz"`` (compressed point
    format), ``glTF`` -> ``"glb"``, an 84-byte header + 50 bytes per triangle -> ``"stl"``.
    Text: ``# .PCD`` / ``VERSION`` / ``FIELDS`` -> ``"pcd"``, ``[Expe/PointSet/`` -> ``"expe"``,
    ``OFF`` (also ``OFF3514 3546 0``, ``COFF``, ``NOFF``) -> ``"off"``, ``solid ... facet`` ->
    ``"stl"``, a JSON object with ``"asset"`` -> ``"gltf"``, ``v`` / ``f`` / ``mtllib`` lines ->
    ``"obj"``, lines of numbers -> ``"text"``. An empty or unreadable file gives None.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            data = fh.read(Head.SIZE)
    except OSError:
        return None
    if not data:
        return None
    head = Head(data, size)
    for f in _SNIFF_ORDER:
        if f.sniff(head):
            return f.key
    return None
