"""Rendered views on disk, as 3D-R2N2's ShapeNetRendering: PNGs, ``renderings.txt``,
``rendering_metadata.txt`` and our ``normalization.txt`` (see :mod:`crosspoint.render`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .camera import Camera

RENDERINGS_TXT = "renderings.txt"
METADATA_TXT = "rendering_metadata.txt"
NORMALIZATION_TXT = "normalization.txt"


def _png_bytes(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    mode = "RGBA" if image.shape[-1] == 4 else "RGB"
    # PIL writes no timestamps into PNGs: identical pixels give identical bytes.
    Image.fromarray(np.ascontiguousarray(image), mode).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def write_views(directory: str | Path, views: Sequence[tuple[np.ndarray, Camera]]) -> list[Path]:
    """Write views as 3D-R2N2 does: ``00.png, 01.png, ...``, ``renderings.txt``, ``rendering_metadata.txt``.

    ``directory`` is the ``rendering/`` folder itself (created if missing). When the cameras
    carry an object transform (non-identity ``center``/``scale``), ``normalization.txt``
    (``cx cy cz scale``) records it. Returns the PNG paths.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    width = max(2, len(str(len(views) - 1)))
    names, lines, paths = [], [], []
    for i, (img, cam) in enumerate(views):
        name = f"{i:0{width}d}.png"
        (d / name).write_bytes(_png_bytes(np.asarray(img)))
        names.append(name)
        lines.append(cam.metadata_line())
        paths.append(d / name)
    (d / RENDERINGS_TXT).write_text("".join(n + "\n" for n in names))
    (d / METADATA_TXT).write_text("".join(ln + "\n" for ln in lines))
    norm = d / NORMALIZATION_TXT
    if views:
        cam0 = views[0][1]
        if any(c.center != cam0.center or c.scale != cam0.scale for _, c in views):
            raise ValueError("views of one rendering folder must share one object transform")
        if cam0.center != (0.0, 0.0, 0.0) or cam0.scale != 1.0:
            norm.write_text(" ".join(repr(float(x)) for x in (*cam0.center, cam0.scale)) + "\n")
        elif norm.exists():
            norm.unlink()
    return paths


def read_view_metadata(directory: str | Path, size: int | None = None) -> list[Camera]:
    """The cameras of an existing ``rendering/`` folder (ours or 3D-R2N2's ShapeNetRendering).

    ``size`` defaults to the size of the first PNG listed in ``renderings.txt`` (137 when there
    is none). Raises ``ValueError`` naming the file when the metadata is missing or malformed.
    """
    d = Path(directory)
    meta = d / METADATA_TXT
    if not meta.is_file():
        raise ValueError(f"{meta}: no such file (not a rendering folder?)")
    if size is None:
        size = 137
        names_file = d / RENDERINGS_TXT
        names = names_file.read_text().split() if names_file.is_file() else sorted(p.name for p in d.glob("*.png"))
        if names and (d / names[0]).is_file():
            from PIL import Image

            with Image.open(d / names[0]) as im:
                size = int(im.size[0])
    kw = {}
    norm = d / NORMALIZATION_TXT
    if norm.is_file():
        try:
            cx, cy, cz, s = (float(x) for x in norm.read_text().split()[:4])
        except ValueError as e:
            raise ValueError(f"{norm}: expected 'cx cy cz scale' ({e})") from None
        kw = {"center": (cx, cy, cz), "scale": s}
    cams = []
    for k, line in enumerate(meta.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            cams.append(Camera.from_metadata_line(line, size, **kw))
        except ValueError as e:
            raise ValueError(f"{meta}, line {k}: {e}") from None
    return cams
