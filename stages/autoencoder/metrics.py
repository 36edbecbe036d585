"""Reconstruction metrics and the spectral loss terms shared by every autoencoder kind.

Conventions (written into every manifest): MPSNR is the per-band PSNR averaged over bands
and patches, on the dataset's normalised units (peak 1.0, the global [0, 1] min-max of
ingest); SAM is the mean spectral angle in degrees between physical-unit spectra
(physical = stored * scale + offset, DESIGN.md §3: evaluation compares physical units).
"""

from __future__ import annotations

import numpy as np


def mpsnr(real: np.ndarray, recon: np.ndarray, peak: float = 1.0) -> float:
    """Mean over patches and bands of 10·log10(peak² / MSE) for (N, B, H, W) arrays."""
    real = np.asarray(real, dtype=np.float64)
    recon = np.asarray(recon, dtype=np.float64)
    mse = np.mean((real - recon) ** 2, axis=(2, 3))              # (N, B)
    mse = np.maximum(mse, 1e-12)
    return float(np.mean(10.0 * np.log10(peak ** 2 / mse)))


def sam_degrees(real_phys: np.ndarray, recon_phys: np.ndarray) -> float:
    """Mean spectral angle (degrees) over all pixels of (N, B, H, W) physical-unit arrays."""
    a = np.moveaxis(np.asarray(real_phys, dtype=np.float64), 1, -1).reshape(-1, real_phys.shape[1])
    b = np.moveaxis(np.asarray(recon_phys, dtype=np.float64), 1, -1).reshape(-1, recon_phys.shape[1])
    cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return float(np.degrees(np.mean(np.arccos(np.clip(cos, -1.0, 1.0)))))


def sad_loss(x, x_hat, shift: float = 0.0):
    """Spectral angle distance (radians), averaged over pixels: specdm.txt eq. 1's second term.

    ``shift`` = offset / scale moves normalised values back to physical proportions, so the
    angle trained on is the angle SAM measures."""
    import torch

    a, b = x + shift, x_hat + shift
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-8)
    return torch.arccos(cos.clamp(-1 + 1e-6, 1 - 1e-6)).mean()


def cosine_loss(x, x_hat, shift: float = 0.0):
    """1 − cosine similarity of spectra, averaged over pixels (hyperldm.txt eq. 4, L_cos)."""
    import torch

    return (1.0 - torch.nn.functional.cosine_similarity(x + shift, x_hat + shift, dim=1, eps=1e-8)).mean()


def reconstruction_metrics(real: np.ndarray, recon: np.ndarray, scale: float, offset: float) -> dict:
    return {"mpsnr_db": mpsnr(real, recon),
            "sam_deg": sam_degrees(real * scale + offset, recon * scale + offset)}
