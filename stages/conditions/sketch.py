"""``sketch``: a simplified contour drawing (hsigene.txt §3.1.2, "Sketch": the image reduced
to the essential lines and contours of its shapes).

Offline backend: Canny edges on each RGB channel (thresholds in units of step height, so the
result does not depend on the image's own contrast), their contours traced with OpenCV,
contours shorter than ``min_length`` dropped (texture, noise), and each remaining contour
simplified with the Douglas-Peucker algorithm (``approxPolyDP``, tolerance ``epsilon`` px)
and drawn 1 px wide. The pretrained backend replaces the Canny edges by the HED network's
edges thresholded at ``threshold`` (the scribble-from-HED recipe of the ControlNet annotators).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import check_rgb, quantise

DEFAULT_LOW, DEFAULT_HIGH = 0.12, 0.3   # Canny hysteresis thresholds, as step heights in [0, 1]
DEFAULT_EPSILON = 1.5
DEFAULT_MIN_LENGTH = 8.0
DEFAULT_BLUR = 1.0


def canny_edges(rgb: np.ndarray, low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH,
                blur: float = DEFAULT_BLUR) -> np.ndarray:
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


def simplify_contours(edges: np.ndarray, epsilon: float = DEFAULT_EPSILON,
                      min_length: float = DEFAULT_MIN_LENGTH) -> np.ndarray:
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


@dataclass
class OfflineSketch:
    low: float = DEFAULT_LOW
    high: float = DEFAULT_HIGH
    blur: float = DEFAULT_BLUR
    epsilon: float = DEFAULT_EPSILON
    min_length: float = DEFAULT_MIN_LENGTH
    kind = "sketch"
    backend = "offline"

    def settings(self) -> dict:
        return {"backend": self.backend, "method": "canny → contours → approxPolyDP",
                "canny_low": float(self.low), "canny_high": float(self.high), "blur": float(self.blur),
                "epsilon": float(self.epsilon), "min_length": float(self.min_length)}

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        edges = canny_edges(rgb, self.low, self.high, self.blur)
        return quantise(simplify_contours(edges, self.epsilon, self.min_length) / 255.0)


class PretrainedSketch:
    """HED-network edges, thinned and simplified into contours."""

    kind = "sketch"
    backend = "pretrained"

    def __init__(self, weights, device: str = "cpu", threshold: float = 0.5,
                 epsilon: float = DEFAULT_EPSILON, min_length: float = DEFAULT_MIN_LENGTH):
        from .edges import PretrainedHED

        self.hed = PretrainedHED(weights, device, flag="--hed-weights")
        self.threshold, self.epsilon, self.min_length = threshold, epsilon, min_length

    def settings(self) -> dict:
        return {"backend": self.backend, "method": "HED network → threshold → thin → contours → approxPolyDP",
                "weights": self.hed.weights, "threshold": float(self.threshold),
                "epsilon": float(self.epsilon), "min_length": float(self.min_length)}

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return self.batch([rgb])[0]

    def batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        from skimage.morphology import skeletonize

        out = []
        for hed in self.hed.batch(images):
            edges = skeletonize(hed[0] >= self.threshold).astype(np.uint8) * 255
            out.append(quantise(simplify_contours(edges, self.epsilon, self.min_length) / 255.0))
        return out
