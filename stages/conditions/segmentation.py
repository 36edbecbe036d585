"""``seg``: segmentation maps with every region filled with its mean colour (Pang et al., HSIGene, arXiv:2409.12470
§3.1.2, "Segmentation": HSIGene fills SAM masks with their mean colour).

Offline backend: SLIC superpixels (Achanta et al., k-means on CIELAB colour + position) merged
over their region adjacency graph whenever two neighbouring regions' mean colours differ by less
than ``threshold`` (RGB distance in [0, 1] units), then each merged region filled with its
mean colour. ``labels`` backend: the source's class map (an hsi-dataset ingested with
``--labels``), colour-coded with a fixed palette (class 0 = background = black).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from .common import MapExtractor, check_rgb

DEFAULT_REGION_PIXELS = 64  # SLIC: about one superpixel per this many pixels
DEFAULT_COMPACTNESS = 10.0
DEFAULT_THRESHOLD = 0.08


def segment(
    rgb: np.ndarray,
    region_pixels: int = DEFAULT_REGION_PIXELS,
    compactness: float = DEFAULT_COMPACTNESS,
    threshold: float = DEFAULT_THRESHOLD,
) -> np.ndarray:
    """(H, W) int region labels 0..R-1."""
    from skimage import graph
    from skimage.segmentation import relabel_sequential, slic

    image = check_rgb(rgb).astype(np.float64) / 255.0
    n_segments = max(2, image.shape[0] * image.shape[1] // int(region_pixels))
    superpixels = slic(
        image,
        n_segments=n_segments,
        compactness=compactness,
        start_label=0,
        enforce_connectivity=True,
        convert2lab=True,
    )
    # SLIC can leave label numbers unused (e.g. on a near-constant image); the region graph needs 0..R-1.
    superpixels = relabel_sequential(superpixels)[0]
    if superpixels.max() == 0:
        return superpixels
    rag = graph.rag_mean_color(image, superpixels, mode="distance")
    merged = graph.cut_threshold(superpixels, rag, threshold, in_place=True)
    return relabel_sequential(merged)[0]


def fill_mean_colour(rgb: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: each region painted with its mean RGB."""
    flat = regions.ravel()
    count = np.bincount(flat)
    image = rgb.reshape(-1, 3).astype(np.float64) / 255.0
    means = np.stack([np.bincount(flat, weights=image[:, c], minlength=count.size) for c in range(3)], axis=1)
    means /= np.maximum(count, 1)[:, None]
    return means[regions]


def class_palette(n_classes: int) -> np.ndarray:
    """(n, 3) uint8: class 0 black, then well-separated hues (golden-ratio steps), fixed forever."""
    palette = np.zeros((max(n_classes, 1), 3), np.uint8)
    for k in range(1, n_classes):
        hue = (k * 0.618033988749895) % 1.0
        value = 0.95 if k % 2 else 0.7
        palette[k] = np.round(np.array(colorsys.hsv_to_rgb(hue, 0.85, value)) * 255)
    return palette


@dataclass
class OfflineSeg(MapExtractor):
    region_pixels: int = DEFAULT_REGION_PIXELS
    compactness: float = DEFAULT_COMPACTNESS
    threshold: float = DEFAULT_THRESHOLD
    kind = "seg"
    method = "SLIC superpixels + RAG mean-colour merge, mean-colour fill"

    def compute(self, rgb: np.ndarray) -> np.ndarray:
        rgb = check_rgb(rgb)
        return fill_mean_colour(rgb, segment(rgb, self.region_pixels, self.compactness, self.threshold))


@dataclass
class LabelSeg(MapExtractor):
    """Colour-codes a given class map; called with the labels, not the RGB image."""

    n_classes: int = 256
    kind = "seg"
    backend = "labels"
    takes = "labels"
    method = "class map colour-coded (golden-ratio hues, 0 = black)"
    setting_names = {"n_classes": "palette_classes"}

    def compute(self, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels).astype(np.int64)
        palette = class_palette(max(int(labels.max()) + 1, self.n_classes))
        return palette[np.clip(labels, 0, None)] / 255.0
