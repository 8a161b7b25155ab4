"""Colour maps for heat values and heatmap overlays (NumPy only; no matplotlib needed).

``inferno`` and ``viridis`` are matplotlib's perceptually uniform maps, rebuilt by linear
interpolation between 11 evenly spaced samples of each (within a few levels of 255 of the
originals); ``gray`` is the plain ramp.
"""

from __future__ import annotations

import numpy as np

__all__ = ["colormap", "overlay", "CMAPS"]

_HEX = {
    "inferno": ["000004", "160b39", "420a68", "6a176e", "932667", "bc3754", "dd513a", "f37819", "fca50a",
                "f6d746", "fcffa4"],
    "viridis": ["440154", "482576", "414487", "35608d", "2a788e", "21908c", "22a884", "43bf71", "7ad151",
                "bbdf27", "fde725"],
    "gray": ["000000", "ffffff"],
}
CMAPS = tuple(_HEX)
_LUT: dict = {}


def _lut(name: str) -> np.ndarray:
    if name not in _HEX:
        raise ValueError(f"unknown colour map {name!r}; choose one of {', '.join(CMAPS)}")
    if name not in _LUT:
        anchors = np.array([[int(h[i:i + 2], 16) for i in (0, 2, 4)] for h in _HEX[name]], np.float64)
        xs = np.linspace(0.0, 1.0, anchors.shape[0])
        t = np.linspace(0.0, 1.0, 256)
        _LUT[name] = np.stack([np.interp(t, xs, anchors[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)
    return _LUT[name]


def colormap(values, cmap: str = "inferno") -> np.ndarray:
    """RGBA uint8 ``(..., 4)`` colours of ``values`` in [0, 1] (clipped; NaN -> 0)."""
    v = np.nan_to_num(np.asarray(values, np.float32), nan=0.0)
    idx = np.clip(np.rint(np.clip(v, 0.0, 1.0) * 255.0), 0, 255).astype(np.intp)
    rgb = _lut(cmap)[idx]
    return np.concatenate([rgb, np.full(rgb.shape[:-1] + (1,), 255, np.uint8)], axis=-1)


def _resize(heat: np.ndarray, h: int, w: int) -> np.ndarray:
    if heat.shape == (h, w):
        return heat
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(heat, np.float32))[None, None]
    return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()


def overlay(image_rgba, heat, alpha: float = 0.5, cmap: str = "inferno", background=(255, 255, 255)) -> np.ndarray:
    """``heat`` ``(h, w)`` in [0, 1] coloured with ``cmap`` and blended over ``image_rgba`` (``(H, W,
    4)`` / ``(H, W, 3)`` uint8, transparent pixels first made RGB with ``background`` by
    :func:`crosspoint.data.transforms.to_rgb`: "drop", "white", "black" or an ``(r, g, b)``; pass
    the session's ``background`` to show the image as the model saw it): ``(1 - alpha) * image +
    alpha * colour``; heat of another size is resized bilinearly. Returns an opaque ``(H, W, 4)``
    uint8 image."""
    img = np.asarray(image_rgba)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"image must be (H, W, 3) or (H, W, 4), got shape {img.shape}")
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img.astype(np.float64) * (255.0 if img.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
    from crosspoint.data.transforms import to_rgb

    h, w = img.shape[:2]
    rgb = to_rgb(np.ascontiguousarray(img), background).astype(np.float32)
    hm = _resize(np.asarray(heat, np.float32), h, w)
    col = colormap(hm, cmap)[:, :, :3].astype(np.float32)
    a = float(np.clip(alpha, 0.0, 1.0))
    out = (1.0 - a) * rgb + a * col
    res = np.empty((h, w, 4), np.uint8)
    res[:, :, :3] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    res[:, :, 3] = 255
    return res
