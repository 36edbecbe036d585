"""Paired reconstruction metrics, used when ``--reference`` gives the ground truth of each
generated image (autoencoder reconstructions, super-resolution): MPSNR, MSSIM, SAM, ERGAS,
RMSE, MRAE as in Liu et al., HyperLDM, IEEE TGRS 61 (2023) Tables I-V. Arrays are (N, B, H, W) in physical units; the
PSNR/SSIM data range is the reference set's max - min."""

from __future__ import annotations

import numpy as np

from ..common.errors import ConfigError
from ..spectral import quality

EPS = 1e-12


def _check(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if pred.shape != ref.shape or pred.ndim != 4:
        raise ConfigError(
            f"paired metrics need images of equal shape (N, B, H, W): generated {pred.shape} vs reference "
            f"{ref.shape}; give the --reference that these samples reconstruct"
        )
    return pred, ref


def data_range(ref: np.ndarray) -> float:
    return float(np.max(ref) - np.min(ref)) or 1.0


def rmse(pred, ref) -> float:
    pred, ref = _check(pred, ref)
    return float(np.sqrt(np.mean((pred - ref) ** 2)))


def mrae(pred, ref) -> float:
    """Mean relative absolute error |pred - ref| / |ref|."""
    pred, ref = _check(pred, ref)
    return float(np.mean(np.abs(pred - ref) / np.maximum(np.abs(ref), EPS)))


def sam(pred, ref) -> float:
    """Mean spectral angle (radians) between aligned pixels."""
    pred, ref = _check(pred, ref)
    return float(np.mean(quality.spectral_angles(pred, ref, axis=1)))


def mpsnr(pred, ref, value_range: float | None = None) -> float:
    """PSNR per band and image, 10 log10(R² / MSE), averaged."""
    pred, ref = _check(pred, ref)
    return quality.mpsnr(ref, pred, peak=value_range or data_range(ref))


def ergas(pred, ref, ratio: float = 1.0) -> float:
    """ERGAS = 100 · ratio · sqrt(mean_b (RMSE_b / μ_b)²) per image, averaged (Wald 2000;
    ``ratio`` as in torchmetrics: high / low resolution pixel size, 1 for same resolution)."""
    pred, ref = _check(pred, ref)
    rmse_b = np.sqrt(np.mean((pred - ref) ** 2, axis=(2, 3)))
    mean_b = np.mean(ref, axis=(2, 3))
    per_image = 100 * ratio * np.sqrt(np.mean((rmse_b / np.maximum(np.abs(mean_b), EPS)) ** 2, axis=1))
    return float(np.mean(per_image))


SSIM_WINDOW = 11  # Wang et al. 2004: an 11-tap Gaussian window, σ 1.5
SSIM_SIGMA = 1.5


def _gaussian_window():
    r = SSIM_WINDOW // 2
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / SSIM_SIGMA) ** 2)
    return g / g.sum()


def mssim(pred, ref, value_range: float | None = None) -> float:
    """SSIM per band and image (Gaussian window 11, σ 1.5, population covariances), averaged over
    the positions where the window lies inside the image: the definition of scikit-image's
    ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)`` and of
    torchmetrics' SSIM. The window is separable, so it runs as two 1-D convolutions (11 + 11 taps
    per pixel rather than 121: the downstream tasks score thousands of band images per run)."""
    import torch
    import torch.nn.functional as F

    pred, ref = _check(pred, ref)
    if min(pred.shape[2:]) < SSIM_WINDOW:
        raise ConfigError(f"MSSIM needs images of at least 11x11 pixels, got {pred.shape[2]}x{pred.shape[3]}")
    r = value_range or data_range(ref)
    n, b, h, w = pred.shape
    g = torch.from_numpy(_gaussian_window())
    p = torch.from_numpy(pred.reshape(n * b, 1, h, w))
    t = torch.from_numpy(ref.reshape(n * b, 1, h, w))
    # One band = one single-channel image, so the average runs over images and bands.
    maps = torch.cat([p, t, p * p, t * t, p * t])
    blurred = F.conv2d(F.conv2d(maps, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))
    mu_p, mu_t, e_pp, e_tt, e_pt = blurred.chunk(5)
    var_p, var_t, cov = e_pp - mu_p**2, e_tt - mu_t**2, e_pt - mu_p * mu_t
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    ssim = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return float(ssim.mean())


def all_paired(pred, ref, ergas_ratio: float = 1.0) -> dict:
    r = data_range(np.asarray(ref))
    return {
        "mpsnr": mpsnr(pred, ref, r),
        "mssim": mssim(pred, ref, r),
        "sam": sam(pred, ref),
        "ergas": ergas(pred, ref, ergas_ratio),
        "rmse": rmse(pred, ref),
        "mrae": mrae(pred, ref),
        "data_range": r,
    }
