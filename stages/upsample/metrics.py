"""Super-resolution quality: MPSNR, SAM, and a nearest-spectrum angle for spectral fidelity."""

from __future__ import annotations

import numpy as np


def mpsnr(reference: np.ndarray, estimate: np.ndarray, peak: float) -> float:
    """Mean over images and bands of PSNR = 10 log10(peak² / MSE); arrays (N, B, H, W)."""
    ref, est = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    mse = ((ref - est) ** 2).mean(axis=(2, 3))
    mse = np.maximum(mse, 1e-20)
    return float(np.mean(10 * np.log10(peak ** 2 / mse)))


def sam_degrees(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Mean spectral angle (degrees) between corresponding pixels; arrays (N, B, H, W) in
    physical units (an angle is not invariant to an offset, so never in normalised units)."""
    ref = np.moveaxis(np.asarray(reference, np.float64), 1, -1).reshape(-1, reference.shape[1])
    est = np.moveaxis(np.asarray(estimate, np.float64), 1, -1).reshape(-1, estimate.shape[1])
    cos = (ref * est).sum(1) / np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(est, axis=1), 1e-20)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).mean())


def nearest_spectrum_angle(spectra: np.ndarray, reference: np.ndarray, chunk: int = 2048) -> float:
    """Mean over ``spectra`` (n, B) of the angle (degrees) to the closest spectrum of
    ``reference`` (m, B): how far produced spectra stray from the ones that exist."""
    ref = np.asarray(reference, np.float64)
    ref = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-20)
    best = []
    for i in range(0, len(spectra), chunk):
        s = np.asarray(spectra[i:i + chunk], np.float64)
        s = s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-20)
        best.append(np.clip((s @ ref.T).max(axis=1), -1.0, 1.0))
    return float(np.degrees(np.arccos(np.concatenate(best))).mean())
