"""The extra ``hsi-samples`` files of labelled generators (SpecDM, Liu et al., SpecDM, arXiv:2502.17056 §3.3):

- ``samples/sample_NNNN_labels.tif``: the generated mask, one integer band (GDAL-readable);
- ``samples/sample_NNNN_t2.{tif|hdr+img|mat}``: the second date of a change-detection pair;
- ``previews/sample_NNNN_labels.png``: the mask over the false-colour image (label 0, the
  unlabelled background / "no change", is left transparent); ``sample_NNNN_t2.png`` for t2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OVERLAY_ALPHA = 0.5


def label_colours(values) -> dict[int, np.ndarray]:
    """A fixed colour per label value (matplotlib's tab20, cycling), the same in every run."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return {int(v): (np.asarray(cmap((int(v) - 1) % 20)[:3]) * 255).astype(np.float32) for v in values}


def overlay(rgb: np.ndarray, labels: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """(H, W, 3) uint8 false colour with non-zero ``labels`` (H, W) blended in their colours."""
    out = rgb.astype(np.float32)
    for value, colour in label_colours(np.unique(labels[labels != 0])).items():
        where = labels == value
        out[where] = (1 - alpha) * out[where] + alpha * colour
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def write_label_geotiff(path: Path, labels_hw: np.ndarray) -> None:
    import rasterio

    labels_hw = np.asarray(labels_hw)
    dtype = "int16" if labels_hw.min() >= -32768 and labels_hw.max() <= 32767 else "int32"
    from ..common.georef import no_georeference

    h, w = labels_hw.shape
    with (
        no_georeference(),
        rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype=dtype, compress="deflate") as dst,
    ):
        dst.write(labels_hw.astype(dtype)[None])
        dst.set_band_description(1, "class label")


def check_labelled(hsi: np.ndarray, labels, hsi_t2) -> None:
    from ..common.errors import ConfigError

    n, _, h, w = hsi.shape
    if labels is not None and np.asarray(labels).shape != (n, h, w):
        raise ConfigError(f"internal: labels {np.asarray(labels).shape} do not match samples {hsi.shape}")
    if hsi_t2 is not None and np.asarray(hsi_t2).shape != hsi.shape:
        raise ConfigError(f"internal: hsi_t2 {np.asarray(hsi_t2).shape} does not match samples {hsi.shape}")
