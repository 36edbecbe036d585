"""``hed``: soft multi-scale edge maps (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2, "HED").

The offline backend is a scale-space edge strength: for each scale σ the Gaussian-derivative
gradient magnitude of every RGB channel, multiplied by σ·√(2π). With this normalisation
(Lindeberg's γ = 1 scale-normalised derivative) an ideal step edge of height h answers h at
every scale, so responses are comparable across scales and images and a flat image gives 0.
The map is the mean over scales of the largest channel response, divided by ``saturation``
(the step height that maps to 1) and clipped to [0, 1]: wide soft ridges like HED's fused
side outputs, thin where only fine scales respond.

The pretrained backend runs the HED network of ``pretrained.py`` on local weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .common import Extractor, MapExtractor, check_rgb, quantise

DEFAULT_SIGMAS = (1.0, 2.0, 4.0)
DEFAULT_SATURATION = 0.6


def edge_strength(rgb: np.ndarray, sigmas=DEFAULT_SIGMAS) -> np.ndarray:
    """(H, W) scale-normalised edge strength in units of step height (0..1 for an 8-bit image)."""
    from scipy.ndimage import gaussian_gradient_magnitude

    image = check_rgb(rgb).astype(np.float64) / 255.0
    per_scale = []
    for sigma in sigmas:
        response = np.max(
            np.stack(
                [gaussian_gradient_magnitude(image[..., c], sigma=float(sigma), mode="reflect") for c in range(3)]
            ),
            axis=0,
        )
        per_scale.append(response * float(sigma) * math.sqrt(2.0 * math.pi))
    return np.mean(per_scale, axis=0)


@dataclass
class OfflineHED(MapExtractor):
    sigmas: tuple = DEFAULT_SIGMAS
    saturation: float = DEFAULT_SATURATION
    kind = "hed"
    method = "scale-normalised gaussian gradient magnitude"

    def compute(self, rgb: np.ndarray) -> np.ndarray:
        return np.clip(edge_strength(rgb, self.sigmas) / self.saturation, 0.0, 1.0)


class PretrainedHED(Extractor):
    """The HED network on the user's local weights (see ``pretrained.build_hed``)."""

    kind = "hed"
    backend = "pretrained"

    def __init__(self, weights, device: str = "cpu"):
        from .pretrained import load_hed

        self.weights = str(weights)
        self.network, self.device = load_hed(weights, device)

    def settings(self) -> dict:
        return {
            "backend": self.backend,
            "network": "HED (5-stage VGG, side outputs, ControlNet layout)",
            "weights": self.weights,
        }

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return self.batch([rgb])[0]

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, H, W) float32 edge probabilities."""
        from .pretrained import infer

        rgb = np.stack([check_rgb(im) for im in images]).transpose(0, 3, 1, 2)  # RGB in 0..255
        return infer(self.network, rgb.astype(np.float32), self.device)[:, 0]

    def batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [quantise(e) for e in self.probabilities(images)]
