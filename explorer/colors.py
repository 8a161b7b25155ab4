"""Per-point colours for the 3D view: RGB, normals, height, the file's labels, a predicted
segmentation (its labels, its errors against the file's labels, its uncertainty) and scalar heatmaps.

Pure numpy (plus pyqtgraph's colour maps), so it is cheap to test and reuse in screenshots.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from crosspoint.pointcloud import PointCloud

#: Colour modes the 3D view offers, in menu order, with their labels.
COLOR_MODES: dict[str, str] = {
    "rgb": "RGB",
    "normal": "Normal",
    "height": "Height",
    "labels": "Labels (file)",
    "prediction": "Prediction",
    "errors": "Errors",
    "uncertainty": "Uncertainty",
    "heatmap": "Heatmap",
    "uniform": "Uniform",
}

#: why a mode is not offered for an object (what it would need)
MISSING: dict[str, str] = {
    "rgb": "the file has no colours",
    "normal": "the file has no normals",
    "labels": "the file has no labels",
    "prediction": "segment it first (Model panel)",
    "errors": "needs a segmentation and the file's own labels to compare with",
    "uncertainty": "segment it first (Model panel)",
    "heatmap": "compute a 3D-2D heatmap first (Model panel)",
}

#: the map of the "uncertainty" mode: its low (certain) end is blue, visible on the dark background
UNCERTAINTY_CMAP = "plasma"

#: colours of the "errors" mode: right, wrong, no ground truth for the point
ERROR_COLORS = {"right": (0.42, 0.45, 0.50), "wrong": (0.95, 0.20, 0.22), "unknown": (0.20, 0.22, 0.25)}

UNIFORM_COLOR = np.array([0.78, 0.80, 0.84], np.float32)

# A categorical palette of 24 well-separated colours (hand-picked; first ones are the most distinct).
_CATEGORICAL = np.array(
    [
        (0.122, 0.467, 0.706), (1.000, 0.498, 0.055), (0.173, 0.627, 0.173), (0.839, 0.153, 0.157),
        (0.580, 0.404, 0.741), (0.549, 0.337, 0.294), (0.890, 0.467, 0.761), (0.737, 0.741, 0.133),
        (0.090, 0.745, 0.812), (0.682, 0.780, 0.910), (1.000, 0.733, 0.471), (0.596, 0.875, 0.541),
        (1.000, 0.596, 0.588), (0.773, 0.690, 0.835), (0.769, 0.612, 0.580), (0.969, 0.714, 0.824),
        (0.859, 0.859, 0.553), (0.620, 0.855, 0.898), (0.400, 0.400, 0.400), (0.200, 0.300, 0.600),
        (0.600, 0.150, 0.400), (0.250, 0.550, 0.500), (0.900, 0.800, 0.200), (0.450, 0.250, 0.100),
    ],
    np.float32,
)


def categorical_colors(n: int) -> np.ndarray:
    """``n`` distinct RGB colours in [0, 1]; cycles with a brightness shift beyond the base palette."""
    if n <= len(_CATEGORICAL):
        return _CATEGORICAL[:n].copy()
    reps = int(np.ceil(n / len(_CATEGORICAL)))
    out = []
    for r in range(reps):
        shade = 1.0 - 0.25 * (r % 3) if r else 1.0
        out.append(np.clip(_CATEGORICAL * shade + (0.15 if r % 2 else 0.0), 0, 1))
    return np.concatenate(out)[:n].astype(np.float32)


@lru_cache(maxsize=8)
def colormap_lut(name: str = "viridis", n: int = 256) -> np.ndarray:
    """A ``(n, 3)`` float32 lookup table from pyqtgraph's colour maps (no matplotlib needed)."""
    import pyqtgraph as pg

    lut = pg.colormap.get(name).getLookupTable(nPts=n, alpha=False)
    return (np.asarray(lut, np.float32)[:, :3] / 255.0).astype(np.float32)


def scalar_colors(values: np.ndarray, *, vmin: float | None = None, vmax: float | None = None,
                  cmap: str = "viridis") -> np.ndarray:
    """Map scalars to colours; NaNs become grey. Returns ``(N, 3)`` float32."""
    v = np.asarray(values, np.float64).reshape(-1)
    finite = np.isfinite(v)
    out = np.empty((v.size, 3), np.float32)
    out[:] = 0.5
    if not finite.any():
        return out
    lo = float(np.min(v[finite])) if vmin is None else float(vmin)
    hi = float(np.max(v[finite])) if vmax is None else float(vmax)
    span = hi - lo if hi > lo else 1.0
    lut = colormap_lut(cmap)
    idx = np.clip(((v[finite] - lo) / span * (len(lut) - 1)).round(), 0, len(lut) - 1).astype(np.int64)
    out[finite] = lut[idx]
    return out


def label_colors(labels: np.ndarray, palette_size: int | None = None) -> np.ndarray:
    """Categorical colours for integer labels (label ``l`` always gets colour ``l``; negatives grey)."""
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if labels.size == 0:
        return np.zeros((0, 3), np.float32)
    top = int(labels.max()) + 1 if palette_size is None else palette_size
    pal = categorical_colors(max(top, 1))
    out = np.full((labels.size, 3), 0.5, np.float32)
    ok = (labels >= 0) & (labels < len(pal))
    out[ok] = pal[labels[ok]]
    return out


def available_modes(cloud: PointCloud, *, labels: np.ndarray | None = None, prediction: np.ndarray | None = None,
                    errors: np.ndarray | None = None, uncertainty: np.ndarray | None = None,
                    heatmap: np.ndarray | None = None) -> list[str]:
    """The colour modes that make sense for ``cloud`` (and any result arrays attached to it)."""
    modes = []
    if cloud.colors is not None:
        modes.append("rgb")
    if cloud.normals is not None:
        modes.append("normal")
    modes.append("height")
    if labels is not None or cloud.labels is not None:
        modes.append("labels")
    if prediction is not None:
        modes.append("prediction")
    if errors is not None:
        modes.append("errors")
    if uncertainty is not None:
        modes.append("uncertainty")
    if heatmap is not None:
        modes.append("heatmap")
    modes.append("uniform")
    return modes


def error_colors(errors: np.ndarray) -> np.ndarray:
    """``errors`` per point (1 wrong, 0 right, -1 no ground truth) -> colours: wrong points in red
    over the right ones in grey, so that the mistakes stand out."""
    e = np.asarray(errors).reshape(-1)
    out = np.empty((e.size, 3), np.float32)
    out[:] = ERROR_COLORS["unknown"]
    out[e == 0] = ERROR_COLORS["right"]
    out[e == 1] = ERROR_COLORS["wrong"]
    return out


def default_mode(cloud: PointCloud) -> str:
    if cloud.labels is not None:
        return "labels"
    if cloud.colors is not None:
        return "rgb"
    return "height"


#: points whose value lies outside a scalar mode's chosen range (the histogram's threshold)
OUTSIDE_RANGE = np.array([0.30, 0.31, 0.33], np.float32)

#: the colour modes that map a scalar (the ones the histogram and its range apply to)
SCALAR_MODES = ("height", "heatmap", "uncertainty")


def scalar_values(cloud: PointCloud, mode: str, *, uncertainty=None, heatmap=None, up_axis: int = 1):
    """The scalar a scalar mode colours by (None when the object has none)."""
    if mode == "uncertainty":
        return None if uncertainty is None else np.asarray(uncertainty, np.float64)
    if mode == "heatmap":
        return None if heatmap is None else np.asarray(heatmap, np.float64)
    if mode == "height" and cloud.n_points:
        return np.asarray(cloud.model_points()[:, 1] if getattr(cloud, "rotation", None) is not None
                          else cloud.points[:, up_axis], np.float64)
    return None


def ranged_colors(values: np.ndarray, value_range, *, cmap: str, default=(None, None)) -> np.ndarray:
    """:func:`scalar_colors` over ``value_range`` ``(lo, hi)``; values outside it are
    :data:`OUTSIDE_RANGE` grey. ``value_range`` None: ``default`` limits (None: the data's)."""
    if value_range is None:
        return scalar_colors(values, vmin=default[0], vmax=default[1], cmap=cmap)
    lo, hi = (float(v) for v in value_range)
    v = np.asarray(values, np.float64).reshape(-1)
    out = scalar_colors(v, vmin=lo, vmax=hi, cmap=cmap)
    out[np.isfinite(v) & ((v < lo) | (v > hi))] = OUTSIDE_RANGE
    return out


def point_colors(cloud: PointCloud, mode: str, *, labels: np.ndarray | None = None,
                 prediction: np.ndarray | None = None, errors: np.ndarray | None = None,
                 uncertainty: np.ndarray | None = None, heatmap: np.ndarray | None = None, up_axis: int = 1,
                 cmap: str = "viridis", value_range=None) -> np.ndarray:
    """Colours ``(N, 3)`` float32 for ``cloud`` in ``mode``; falls back to height where data is missing.
    "labels" are the file's own labels (``labels`` overrides), "prediction" a segmentation's labels
    (coloured like the file's: the same part id, the same colour), "errors" see :func:`error_colors`,
    "uncertainty" a scalar in [0, 1] on :data:`UNCERTAINTY_CMAP`. ``value_range`` ``(lo, hi)``: the
    scalar modes' colour limits, values outside them grey (:func:`ranged_colors`)."""
    n = cloud.n_points
    if mode == "rgb" and cloud.colors is not None:
        return np.clip(cloud.colors, 0.0, 1.0).astype(np.float32)
    if mode == "normal" and cloud.normals is not None:
        nrm = cloud.normals
        length = np.linalg.norm(nrm, axis=1, keepdims=True)
        nrm = np.divide(nrm, length, out=np.zeros_like(nrm), where=length > 0)
        return (0.5 * (nrm + 1.0)).astype(np.float32)
    if mode == "labels":
        lab = labels if labels is not None else cloud.labels
        if lab is not None:
            return label_colors(lab)
    if mode == "prediction" and prediction is not None:
        return label_colors(prediction)
    if mode == "errors" and errors is not None:
        return error_colors(errors)
    if mode == "uncertainty" and uncertainty is not None:
        return ranged_colors(uncertainty, value_range, cmap=UNCERTAINTY_CMAP, default=(0.0, 1.0))
    if mode == "heatmap" and heatmap is not None:
        return ranged_colors(heatmap, value_range, cmap="inferno")
    if mode == "uniform":
        return np.broadcast_to(UNIFORM_COLOR, (n, 3)).astype(np.float32)
    if n == 0:
        return np.zeros((0, 3), np.float32)
    # turned for the model (the orientation check): the height is the model's +Y
    height = cloud.model_points()[:, 1] if getattr(cloud, "rotation", None) is not None else cloud.points[:, up_axis]
    if value_range is not None:
        return ranged_colors(height, value_range, cmap=cmap)
    if np.isfinite(height).all() and not np.ptp(height) > 0:
        # all at one height (a single point, a flat scan): the map's middle colour, not its darkest
        # end, which is hard to see on the dark background
        lut = colormap_lut(cmap)
        return np.broadcast_to(lut[len(lut) // 2], (n, 3)).astype(np.float32)
    return scalar_colors(height, cmap=cmap)
