"""Conventions shared by every condition extractor.

Maps are float32 (C, H, W) in [0, 1], quantised to 8-bit levels so that a map computed in
memory equals the PNG written to a conditions artifact; embeddings are float32 (D,).
"""

from __future__ import annotations

import numpy as np

from ..common.errors import InputError

MAP_KINDS = ("hed", "mlsd", "sketch", "seg")
EMBEDDING_KINDS = ("content", "text")
KINDS = MAP_KINDS + EMBEDDING_KINDS
MAP_CHANNELS = {"hed": 1, "mlsd": 1, "sketch": 1, "seg": 3}


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"an extractor needs an (H, W, 3) uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    return rgb


def quantise(map_hw_or_hwc: np.ndarray) -> np.ndarray:
    """[0, 1] float (H, W) or (H, W, C) → (C, H, W) float32 on the 8-bit grid."""
    m = np.clip(np.nan_to_num(np.asarray(map_hw_or_hwc, dtype=np.float32)), 0.0, 1.0)
    m = np.round(m * 255.0) / 255.0
    if m.ndim == 2:
        m = m[None]
    else:
        m = np.moveaxis(m, -1, 0)
    return np.ascontiguousarray(m, dtype=np.float32)


def to_uint8(map_chw: np.ndarray) -> np.ndarray:
    """(C, H, W) [0, 1] → (H, W) or (H, W, 3) uint8 for PNG."""
    m = (np.clip(map_chw, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    return m[0] if m.shape[0] == 1 else np.moveaxis(m, 0, -1)
