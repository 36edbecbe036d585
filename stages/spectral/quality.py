"""Image-quality primitives shared by every stage that reports reconstructions (unmixing,
autoencoders, super-resolution, the paired metrics of ``stages/evaluate/paired.py``): one
spectral angle and one MPSNR for the whole project."""

from __future__ import annotations

import numpy as np


def mpsnr(reference: np.ndarray, estimate: np.ndarray, peak: float = 1.0) -> float:
    """Mean over images and bands of 10·log10(peak² / MSE) for (N, B, H, W) arrays."""
    ref, est = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    mse = np.maximum(((ref - est) ** 2).mean(axis=(2, 3)), 1e-12)  # (N, B)
    return float(np.mean(10.0 * np.log10(peak**2 / mse)))


def spectral_angles(a: np.ndarray, b: np.ndarray, axis: int = 1) -> np.ndarray:
    """Angle in radians between the spectra of ``a`` and ``b`` that run along ``axis`` (the band
    axis); the result has that axis removed. A zero spectrum counts as orthogonal (π/2)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    dot = (a * b).sum(axis)
    norms = np.linalg.norm(a, axis=axis) * np.linalg.norm(b, axis=axis)
    return np.arccos(np.clip(dot / np.maximum(norms, 1e-12), -1.0, 1.0))


def sam_degrees(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Mean spectral angle (degrees) between corresponding pixels of (N, B, H, W) arrays in
    physical units (an angle is not invariant to an offset, so never in normalised units)."""
    return float(np.degrees(spectral_angles(reference, estimate, axis=1)).mean())
