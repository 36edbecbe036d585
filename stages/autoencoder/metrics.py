"""Reconstruction metrics and the spectral loss terms shared by every autoencoder kind.

Conventions (written into every manifest): MPSNR is the per-band PSNR averaged over bands
and patches, on the dataset's normalised units (peak 1.0, the global [0, 1] min-max of
ingest); SAM is the mean spectral angle in degrees between physical-unit spectra
(physical = stored * scale + offset, docs/design.md §3: evaluation compares physical units).
"""

from __future__ import annotations

import numpy as np

from ..spectral.quality import mpsnr, sam_degrees  # noqa: F401  (re-exported for callers)


def sad_loss(x, x_hat, shift: float = 0.0):
    """Spectral angle distance (radians), averaged over pixels: Liu et al., SpecDM, arXiv:2502.17056 eq. 1's second term.

    ``shift`` = offset / scale moves normalised values back to physical proportions, so the
    angle trained on is the angle SAM measures."""
    import torch

    a, b = x + shift, x_hat + shift
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-8)
    return torch.arccos(cos.clamp(-1 + 1e-6, 1 - 1e-6)).mean()


def gradient_loss(x, x_hat):
    """Mean |∇x̂ − ∇x| over horizontally and vertically adjacent pixels of every band: an edge
    term that penalises the blur an L1-trained decoder settles on (the spatial gradients the
    evaluation's ``gradient`` statistic measures), as gradient losses do in SR and restoration."""
    dy = (x_hat[..., 1:, :] - x_hat[..., :-1, :]) - (x[..., 1:, :] - x[..., :-1, :])
    dx = (x_hat[..., :, 1:] - x_hat[..., :, :-1]) - (x[..., :, 1:] - x[..., :, :-1])
    return 0.5 * (dy.abs().mean() + dx.abs().mean())


def cosine_loss(x, x_hat, shift: float = 0.0):
    """1 − cosine similarity of spectra, averaged over pixels (Liu et al., HyperLDM, IEEE TGRS 61 (2023) eq. 4, L_cos)."""
    import torch

    return (1.0 - torch.nn.functional.cosine_similarity(x + shift, x_hat + shift, dim=1, eps=1e-8)).mean()


def reconstruction_metrics(real: np.ndarray, recon: np.ndarray, scale: float, offset: float) -> dict:
    return {"mpsnr_db": mpsnr(real, recon), "sam_deg": sam_degrees(real * scale + offset, recon * scale + offset)}
