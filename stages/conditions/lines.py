"""``mlsd``: straight line segments drawn as a binary map (hsigene.txt §3.1.2, "MLSD").

The offline backend is OpenCV's LSD line-segment detector (von Gioi et al., a contrario
validation of aligned gradient regions) on the luminance, keeping segments at least
``min_length`` pixels long, drawn ``thickness`` pixels wide: 1 on a line, 0 elsewhere — the
same form as ControlNet's M-LSD maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import check_rgb, quantise

DEFAULT_MIN_LENGTH = 0.1   # fraction of the shorter image side
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
class OfflineMLSD:
    min_length: float = DEFAULT_MIN_LENGTH
    thickness: int = DEFAULT_THICKNESS
    kind = "mlsd"
    backend = "offline"

    def settings(self) -> dict:
        return {"backend": self.backend, "method": "OpenCV LSD (LSD_REFINE_STD) on luminance",
                "min_length": float(self.min_length), "thickness": int(self.thickness)}

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        segments = detect_segments(rgb, self.min_length)
        return quantise(draw_segments(segments, rgb.shape[:2], self.thickness) / 255.0)
