"""False-colour previews: bands nearest 640/550/470 nm with a 2 % linear stretch (docs/design.md §2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

RGB_NM = (640.0, 550.0, 470.0)


def rgb_band_indices(wavelengths_nm, targets=RGB_NM) -> list[int]:
    wl = np.asarray(wavelengths_nm, dtype=np.float64)
    return [int(np.argmin(np.abs(wl - t))) for t in targets]


def false_colour(
    cube_bhw: np.ndarray, wavelengths_nm, percent: float = 2.0, limits: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """(B, H, W) → (H, W, 3) uint8 RGB. ``limits`` (low, high per channel) fixes the stretch
    so several images can be shown on one scale."""
    idx = rgb_band_indices(wavelengths_nm)
    rgb = np.stack([np.asarray(cube_bhw[i], dtype=np.float32) for i in idx], axis=-1)
    if limits is None:
        limits = stretch_limits(rgb, percent)
    low, high = limits
    scaled = (rgb - low) / np.maximum(high - low, 1e-12)
    return (np.clip(np.nan_to_num(scaled), 0, 1) * 255 + 0.5).astype(np.uint8)


def stretch_limits(rgb_hw3: np.ndarray, percent: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    flat = rgb_hw3.reshape(-1, 3)
    flat = flat[np.all(np.isfinite(flat), axis=1)]
    if flat.size == 0:
        return np.zeros(3, np.float32), np.ones(3, np.float32)
    return (
        np.percentile(flat, percent, axis=0).astype(np.float32),
        np.percentile(flat, 100 - percent, axis=0).astype(np.float32),
    )


def save_png(path: str | Path, rgb_hw3: np.ndarray) -> None:
    import cv2

    ok = cv2.imwrite(str(path), np.ascontiguousarray(rgb_hw3[..., ::-1]))
    if not ok:
        raise OSError(f"could not write {path}")
