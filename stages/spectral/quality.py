"""Image-quality measures shared by every stage that reports reconstructions
(autoencoders, super-resolution). ``stages/evaluate/paired.py`` holds the full paired set."""

from __future__ import annotations

import numpy as np


def mpsnr(reference: np.ndarray, estimate: np.ndarray, peak: float = 1.0) -> float:
    """Mean over images and bands of 10·log10(peak² / MSE) for (N, B, H, W) arrays."""
    ref, est = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    mse = np.maximum(((ref - est) ** 2).mean(axis=(2, 3)), 1e-12)     # (N, B)
    return float(np.mean(10.0 * np.log10(peak ** 2 / mse)))


def sam_degrees(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Mean spectral angle (degrees) between corresponding pixels of (N, B, H, W) arrays in
    physical units (an angle is not invariant to an offset, so never in normalised units)."""
    a = np.moveaxis(np.asarray(reference, np.float64), 1, -1).reshape(-1, reference.shape[1])
    b = np.moveaxis(np.asarray(estimate, np.float64), 1, -1).reshape(-1, estimate.shape[1])
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).mean())
