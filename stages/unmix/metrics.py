"""Reconstruction quality of an unmixing: RMSE, spectral angle (SAD) and PSNR."""

from __future__ import annotations

import numpy as np

from ..spectral.quality import spectral_angles


class ReconstructionStats:
    """Accumulates squared error, angles and the data range over chunks of pixels."""

    def __init__(self) -> None:
        self.sq, self.angle, self.n_values, self.n_pixels = 0.0, 0.0, 0, 0
        self.low, self.high = np.inf, -np.inf

    def add(self, real: np.ndarray, recon: np.ndarray) -> None:
        """``real``/``recon``: (B, N) in physical units."""
        diff = np.asarray(real, np.float64) - recon
        self.sq += float(np.sum(diff * diff))
        self.angle += float(np.sum(spectral_angles(real, recon, axis=0)))
        self.n_values += diff.size
        self.n_pixels += diff.shape[1]
        self.low, self.high = min(self.low, float(real.min())), max(self.high, float(real.max()))

    def result(self) -> dict:
        rmse = np.sqrt(self.sq / max(self.n_values, 1))
        peak = self.high - self.low
        psnr = float("inf") if rmse == 0 else 20 * np.log10(peak / rmse)
        return {
            "reconstruction_rmse": float(rmse),
            "reconstruction_sad_rad": self.angle / max(self.n_pixels, 1),
            "reconstruction_psnr_db": float(psnr),
            "data_range": float(peak),
        }


def simplex_stats(abundances: np.ndarray) -> dict:
    """How far abundances are from the simplex (min value, worst |sum − 1|)."""
    total = abundances.sum(axis=1)
    return {"abundance_min": float(abundances.min()), "abundance_sum_max_error": float(np.abs(total - 1).max())}
