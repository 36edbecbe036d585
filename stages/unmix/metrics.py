"""Reconstruction quality of an unmixing: RMSE, spectral angle (SAD) and PSNR."""

from __future__ import annotations

import numpy as np


def spectral_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in radians between matching columns of ``a`` and ``b`` (B, N)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    cos = np.sum(a * b, axis=0) / np.maximum(np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0), 1e-300)
    return np.arccos(np.clip(cos, -1.0, 1.0))


class ReconstructionStats:
    """Accumulates squared error, angles and the data range over chunks of pixels."""

    def __init__(self) -> None:
        self.sq, self.angle, self.n_values, self.n_pixels = 0.0, 0.0, 0, 0
        self.low, self.high = np.inf, -np.inf

    def add(self, real: np.ndarray, recon: np.ndarray) -> None:
        """``real``/``recon``: (B, N) in physical units."""
        diff = np.asarray(real, np.float64) - recon
        self.sq += float(np.sum(diff * diff))
        self.angle += float(np.sum(spectral_angles(real, recon)))
        self.n_values += diff.size
        self.n_pixels += diff.shape[1]
        self.low, self.high = min(self.low, float(real.min())), max(self.high, float(real.max()))

    def result(self) -> dict:
        rmse = np.sqrt(self.sq / max(self.n_values, 1))
        peak = self.high - self.low
        psnr = float("inf") if rmse == 0 else 20 * np.log10(peak / rmse)
        return {"reconstruction_rmse": float(rmse), "reconstruction_sad_rad": self.angle / max(self.n_pixels, 1),
                "reconstruction_psnr_db": float(psnr), "data_range": float(peak)}
