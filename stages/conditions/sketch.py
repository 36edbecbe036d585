"""``sketch``: a simplified contour drawing (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2, "Sketch": the image reduced
to the essential lines and contours of its shapes).

Offline backend: Canny edges on each RGB channel (thresholds in units of step height, so the
result does not depend on the image's own contrast), their contours traced with OpenCV,
contours shorter than ``min_length`` dropped (texture, noise), and each remaining contour
simplified with the Douglas-Peucker algorithm (``approxPolyDP``, tolerance ``epsilon`` px)
and drawn 1 px wide. The network backends replace the Canny edges by a network's edge
probabilities thresholded at ``threshold`` and thinned to 1 px, then simplified the same way:
``pretrained`` uses the HED network (the scribble-from-HED recipe of the ControlNet
annotators), ``pidinet`` PiDiNet (``pidinet.py``, ``table5_pidinet.pth``: the sketch annotator),
run at ``resolution``² and resized back to the image (ControlNet's detect resolution).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import MapExtractor, NetworkExtractor, check_rgb, network_resolution, quantise

DEFAULT_LOW, DEFAULT_HIGH = 0.12, 0.3  # Canny hysteresis thresholds, as step heights in [0, 1]
DEFAULT_EPSILON = 1.5
DEFAULT_MIN_LENGTH = 8.0
DEFAULT_BLUR = 1.0


def canny_edges(
    rgb: np.ndarray, low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH, blur: float = DEFAULT_BLUR
) -> np.ndarray:
    """(H, W) uint8 0/255 edges: the union of per-channel Canny edges."""
    import cv2

    rgb = check_rgb(rgb)
    # A 3×3 Sobel answers 4·h to a step of height h (L1 gradient), so thresholds scale by 4·255.
    lo, hi = 4 * 255 * low, 4 * 255 * high
    edges = np.zeros(rgb.shape[:2], np.uint8)
    for c in range(3):
        channel = np.ascontiguousarray(rgb[..., c])
        if blur > 0:
            channel = cv2.GaussianBlur(channel, (0, 0), blur)
        edges |= cv2.Canny(channel, lo, hi, apertureSize=3, L2gradient=False)
    return edges


def simplify_contours(
    edges: np.ndarray, epsilon: float = DEFAULT_EPSILON, min_length: float = DEFAULT_MIN_LENGTH
) -> np.ndarray:
    """(H, W) uint8 drawing of the simplified outer contours of an edge image."""
    import cv2

    contours, hierarchy = cv2.findContours((edges > 0).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    canvas = np.zeros(edges.shape, np.uint8)
    if hierarchy is None:
        return canvas
    for contour, (_, _, _, parent) in zip(contours, hierarchy[0]):
        # RETR_CCOMP: parent == -1 are outer borders; the others are holes that retrace the
        # inside of the same 1-px edge and would double the stroke.
        if parent != -1 or cv2.arcLength(contour, closed=False) / 2 < min_length:
            continue
        simple = cv2.approxPolyDP(contour, float(epsilon), closed=True)
        cv2.polylines(canvas, [simple], isClosed=True, color=255, thickness=1, lineType=cv2.LINE_8)
    return canvas


def sketch_from_probabilities(
    probability: np.ndarray, threshold: float, epsilon: float, min_length: float
) -> np.ndarray:
    """(1, H, W) sketch of an (H, W) edge probability map: threshold, thin to 1 px, simplify."""
    from skimage.morphology import skeletonize

    edges = skeletonize(probability >= threshold).astype(np.uint8) * 255
    return quantise(simplify_contours(edges, epsilon, min_length) / 255.0)


@dataclass
class OfflineSketch(MapExtractor):
    low: float = DEFAULT_LOW
    high: float = DEFAULT_HIGH
    blur: float = DEFAULT_BLUR
    epsilon: float = DEFAULT_EPSILON
    min_length: float = DEFAULT_MIN_LENGTH
    kind = "sketch"
    method = "canny → contours → approxPolyDP"
    setting_names = {"low": "canny_low", "high": "canny_high"}

    def compute(self, rgb: np.ndarray) -> np.ndarray:
        edges = canny_edges(rgb, self.low, self.high, self.blur)
        return simplify_contours(edges, self.epsilon, self.min_length) / 255.0


class NetworkSketch(NetworkExtractor):
    """A network's edge probabilities turned into a sketch (``sketch_from_probabilities``);
    subclasses load the network and define ``probabilities(images) -> (N, H, W)``."""

    kind = "sketch"
    method = ""

    def __init__(
        self, threshold: float = 0.5, epsilon: float = DEFAULT_EPSILON, min_length: float = DEFAULT_MIN_LENGTH
    ):
        self.threshold, self.epsilon, self.min_length = float(threshold), float(epsilon), float(min_length)

    def settings(self) -> dict:
        return {
            "backend": self.backend,
            "method": self.method,
            "weights": self.weights,
            "threshold": self.threshold,
            "epsilon": self.epsilon,
            "min_length": self.min_length,
        }

    def batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [
            sketch_from_probabilities(p, self.threshold, self.epsilon, self.min_length)
            for p in self.probabilities(images)
        ]


class PretrainedSketch(NetworkSketch):
    """HED-network edges, thinned and simplified into contours."""

    backend = "pretrained"
    method = "HED network → threshold → thin → contours → approxPolyDP"
    settings_accepted = ("threshold", "epsilon", "min_length")

    def __init__(self, weights, device: str = "cpu", **settings):
        from .edges import PretrainedHED

        super().__init__(**settings)
        self.hed = PretrainedHED(weights, device)
        self.weights = self.hed.weights

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        return self.hed.probabilities(images)


class PidiNetSketch(NetworkSketch):
    """PiDiNet edges (the ControlNet sketch annotator), thinned and simplified into contours."""

    backend = "pidinet"
    method = "PiDiNet (carv4) → threshold → thin → contours → approxPolyDP"
    settings_accepted = ("threshold", "epsilon", "min_length", "resolution")

    def __init__(self, weights, device: str = "cpu", resolution: int = 512, **settings):
        from .pidinet import EXPECTED, build_pidinet
        from .pretrained import load_annotator

        super().__init__(**settings)
        self.resolution = network_resolution(resolution, self.kind)
        self.weights = str(weights)
        self.network, self.device = load_annotator(
            weights, "--pidinet-weights", EXPECTED, lambda state, path: build_pidinet(), device
        )

    def settings(self) -> dict:
        return {**super().settings(), "resolution": self.resolution}

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, H, W) float32 fused PiDiNet edge probabilities at each image's own size."""
        import cv2

        from .pidinet import pidinet_input
        from .pretrained import infer
        from .sources import resize_rgb

        images = [check_rgb(im) for im in images]
        batch = np.stack([resize_rgb(im, self.resolution) for im in images])
        fused = infer(self.network, pidinet_input(batch), self.device)[:, 0]
        return np.stack(
            [
                cv2.resize(p, (im.shape[1], im.shape[0]), interpolation=cv2.INTER_LINEAR)
                if p.shape != im.shape[:2]
                else p
                for p, im in zip(fused, images)
            ]
        )
