"""``mlsd``: straight line segments drawn as a binary map (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2, "MLSD").

The offline backend is OpenCV's LSD line-segment detector (von Gioi et al., a contrario
validation of aligned gradient regions) on the luminance, keeping segments at least
``min_length`` pixels long, drawn ``thickness`` pixels wide: 1 on a line, 0 elsewhere — the
same form as ControlNet's M-LSD maps.

The pretrained backend runs M-LSD large (``mlsd_net.py``) on the user's
``mlsd_large_512_fp32.pth``: the image resized to ``resolution``², its TP map decoded into
segments (``score_threshold``, ``distance_threshold``: ControlNet's defaults 0.1 / 0.1), the
segments scaled back to the image and drawn like the offline ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import MapExtractor, NetworkExtractor, check_rgb, network_resolution, quantise

DEFAULT_MIN_LENGTH = 0.1  # fraction of the shorter image side
DEFAULT_THICKNESS = 1


def detect_segments(rgb: np.ndarray, min_length: float = DEFAULT_MIN_LENGTH) -> np.ndarray:
    """(K, 4) float32 segments x0, y0, x1, y1 of at least ``min_length`` (a fraction of the shorter
    side when < 1, pixels otherwise)."""
    import cv2

    gray = cv2.cvtColor(check_rgb(rgb), cv2.COLOR_RGB2GRAY)
    detector = cv2.createLineSegmentDetector(cv2.LSD_REFINE_STD)
    found = detector.detect(gray)[0]
    if found is None:
        return np.zeros((0, 4), np.float32)
    segments = found.reshape(-1, 4).astype(np.float32)
    limit = min_length * min(gray.shape) if min_length < 1 else min_length
    lengths = np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1])
    return segments[lengths >= limit]


def draw_segments(segments: np.ndarray, shape: tuple[int, int], thickness: int = DEFAULT_THICKNESS) -> np.ndarray:
    import cv2

    canvas = np.zeros(shape, np.uint8)
    for x0, y0, x1, y1 in np.round(segments).astype(int):
        cv2.line(canvas, (int(x0), int(y0)), (int(x1), int(y1)), 255, int(thickness), lineType=cv2.LINE_8)
    return canvas


@dataclass
class OfflineMLSD(MapExtractor):
    min_length: float = DEFAULT_MIN_LENGTH
    thickness: int = DEFAULT_THICKNESS
    kind = "mlsd"
    method = "OpenCV LSD (LSD_REFINE_STD) on luminance"

    def compute(self, rgb: np.ndarray) -> np.ndarray:
        return draw_segments(detect_segments(rgb, self.min_length), rgb.shape[:2], self.thickness) / 255.0


class PretrainedMLSD(NetworkExtractor):
    """M-LSD large on local weights (see ``mlsd_net``)."""

    kind = "mlsd"
    backend = "pretrained"
    settings_accepted = ("score_threshold", "distance_threshold", "resolution", "thickness")

    def __init__(
        self,
        weights,
        device: str = "cpu",
        score_threshold: float = 0.1,
        distance_threshold: float = 0.1,
        resolution: int = 512,
        thickness: int = DEFAULT_THICKNESS,
    ):
        from .mlsd_net import EXPECTED, MULTIPLE, build_mlsd
        from .pretrained import load_annotator

        self.resolution = network_resolution(resolution, self.kind, MULTIPLE)
        self.score_threshold, self.distance_threshold = float(score_threshold), float(distance_threshold)
        self.thickness = int(thickness)
        self.weights = str(weights)
        self.network, self.device = load_annotator(
            weights, "--mlsd-weights", EXPECTED, lambda state, path: build_mlsd(), device
        )

    def settings(self) -> dict:
        return {
            "backend": self.backend,
            "network": "M-LSD large (MobileNetV2 + M-LSD decoder, TP map)",
            "weights": self.weights,
            "score_threshold": self.score_threshold,
            "distance_threshold": self.distance_threshold,
            "resolution": self.resolution,
            "thickness": self.thickness,
        }

    def segments(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """(K, 4) segments x0, y0, x1, y1 per image, in that image's pixels."""
        from .mlsd_net import OUTPUT_STRIDE, decode_segments, mlsd_input
        from .pretrained import infer
        from .sources import resize_rgb

        images = [check_rgb(im) for im in images]
        batch = np.stack([resize_rgb(im, self.resolution) for im in images])
        tp_maps = infer(self.network, mlsd_input(batch), self.device)
        out = []
        for image, tp in zip(images, tp_maps):
            h, w = image.shape[:2]
            # TP-map pixels → network-input pixels (× output stride) → image pixels.
            scale = OUTPUT_STRIDE * np.array([w, h, w, h], np.float32) / self.resolution
            out.append(decode_segments(tp, self.score_threshold, self.distance_threshold) * scale)
        return out

    def batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [
            quantise(draw_segments(segs, im.shape[:2], self.thickness) / 255.0)
            for im, segs in zip(images, self.segments(images))
        ]
