"""``content``: one global embedding per image (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2, "Content": HSIGene uses
CLIP's image encoder).

Offline backend — a deterministic colour/texture descriptor of the RGB image, D = 64:
- per-channel mean and standard deviation (6 values),
- per-channel 16-bin intensity histograms, each summing to 1 (48),
- the share of pixels whose scale-normalised edge strength (``edges.edge_strength``, σ = 1 and
  σ = 4) exceeds 0.1 — fine and coarse texture density (2),
- an 8-bin histogram of gradient orientation modulo 180°, weighted by gradient magnitude and
  summing to 1 (dominant directions of field boundaries and roads) (8);
each block scaled by 1/√(its length) so that every block carries similar weight, then the whole
vector L2-normalised. It is computed from RGB only, so training sources (HSI RGB bands) and
sampling-time reference images give comparable vectors.

The ``clip`` backend: ``CLIPModel.get_image_features`` of a local ``save_pretrained``
directory, L2-normalised (see ``pretrained.ClipBundle``). The ``encoder`` backend: pooled
statistics of a trained hsigen autoencoder's latent of the hyperspectral source itself
(``encoder.py``).
"""

from __future__ import annotations

import numpy as np

from .common import Extractor, check_rgb
from .pretrained import ClipExtractor

HIST_BINS = 16
ORIENTATION_BINS = 8
DESCRIPTOR_DIM = 64


def colour_texture_descriptor(rgb: np.ndarray) -> np.ndarray:
    """(64,) float32 with unit L2 norm."""
    from scipy.ndimage import gaussian_filter

    from .edges import edge_strength

    image = check_rgb(rgb).astype(np.float64) / 255.0
    pixels = image.reshape(-1, 3)
    moments = np.concatenate([pixels.mean(axis=0), pixels.std(axis=0)])
    histograms = np.concatenate(
        [np.histogram(pixels[:, c], bins=HIST_BINS, range=(0.0, 1.0))[0] / pixels.shape[0] for c in range(3)]
    )
    density = np.array([(edge_strength(rgb, (s,)) > 0.1).mean() for s in (1.0, 4.0)])
    gray = gaussian_filter(image.mean(axis=-1), 1.0, mode="reflect")
    gy, gx = np.gradient(gray)
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    orientation = np.histogram(angle, bins=ORIENTATION_BINS, range=(0.0, np.pi), weights=magnitude)[0]
    orientation = orientation / max(orientation.sum(), 1e-12)
    blocks = [moments, histograms, density, orientation]
    vector = np.concatenate([b / np.sqrt(len(b)) for b in blocks])
    norm = np.linalg.norm(vector)
    return (vector / norm if norm > 0 else vector).astype(np.float32)


class OfflineContent(Extractor):
    kind = "content"

    def settings(self) -> dict:
        return {
            "backend": self.backend,
            "method": "colour moments + histograms + edge density + orientation",
            "dim": DESCRIPTOR_DIM,
            "normalised": "l2",
        }

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return colour_texture_descriptor(rgb)


class ClipContent(ClipExtractor):
    kind = "content"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return self.clip.image_features([check_rgb(rgb)])[0]

    def batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return list(self.clip.image_features([check_rgb(im) for im in images]))
