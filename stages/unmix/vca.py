"""Vertex Component Analysis (Nascimento & Bioucas-Dias, 2005), the endmember extractor of
Shen et al., HUD (2025) §III-B.

Under the linear mixing model the pixels of a scene lie in a simplex whose vertices are the
endmembers. VCA projects the data onto a k-dimensional subspace, then repeatedly projects it
onto a random direction orthogonal to the endmembers found so far; the pixel with the largest
projection is the next vertex.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..common.errors import ConfigError, InputError


@dataclass
class VcaResult:
    endmembers: np.ndarray  # (B, k) in the units of the input
    indices: np.ndarray  # (k,) column of the input chosen as each vertex
    snr_db: float  # estimated signal-to-noise ratio of the input
    projection: str  # "projective" (high SNR) or "pca" (low SNR)


def estimate_snr(y: np.ndarray, k: int) -> float:
    """SNR estimate of VCA (eq. 13 of Nascimento & Bioucas-Dias): signal power from the
    k-dimensional PCA subspace against the power left outside it."""
    bands, n = y.shape
    mean = y.mean(axis=1, keepdims=True)
    centred = y - mean
    u = top_eigenvectors(centred @ centred.T / n, k)
    projected = u.T @ centred
    p_y = float(np.sum(y * y) / n)
    p_x = float(np.sum(projected * projected) / n + np.sum(mean * mean))
    noise = p_y - p_x
    if noise <= 1e-12 * p_y:
        return float("inf")
    signal = p_x - k / bands * p_y
    if signal <= 0:
        return -float("inf")
    return float(10 * np.log10(signal / noise))


def top_eigenvectors(matrix: np.ndarray, k: int) -> np.ndarray:
    """The k eigenvectors (columns) of the symmetric ``matrix`` with the largest eigenvalues."""
    values, vectors = np.linalg.eigh(matrix)
    return vectors[:, np.argsort(values)[::-1][:k]]


def vca(y: np.ndarray, k: int, seed: int = 0, snr_db: float | None = None) -> VcaResult:
    """Endmembers of ``y`` (B, N): bands × pixels, float. Deterministic for a fixed ``seed``."""
    y = np.asarray(y, dtype=np.float64)
    bands, n = y.shape
    if not np.all(np.isfinite(y)):
        raise InputError("the data to unmix contains NaN or infinite values; re-ingest with --max-nodata 0")
    if k < 2:
        raise ConfigError(f"-k {k}: unmixing needs at least 2 endmembers")
    if k > bands:
        raise ConfigError(f"-k {k} is larger than the {bands} bands of the data; choose k <= {bands}")
    if k > n:
        raise ConfigError(f"-k {k} is larger than the {n} pixels of the data; choose fewer endmembers")
    snr = estimate_snr(y, k) if snr_db is None else snr_db
    threshold = 15 + 10 * np.log10(k)  # the paper's switch between the two projections
    if snr > threshold:
        # Projective projection: keeps the simplex of k vertices in k dimensions and
        # maps it onto the hyperplane <x, mean> = 1, where vertices are extreme points.
        u = top_eigenvectors(y @ y.T / n, k)
        x = u.T @ y
        recon = u @ x
        direction = x.mean(axis=1, keepdims=True)
        scale = direction.T @ x
        scale[np.abs(scale) < 1e-12] = 1e-12
        data = x / scale
        projection = "projective"
    else:
        # Low SNR: a (k-1)-dimensional PCA subspace lifted by a constant coordinate.
        mean = y.mean(axis=1, keepdims=True)
        u = top_eigenvectors((y - mean) @ (y - mean).T / n, k - 1)
        x = u.T @ (y - mean)
        recon = u @ x + mean
        lift = np.sqrt(np.max(np.sum(x * x, axis=0)))
        data = np.vstack([x, np.full((1, n), lift)])
        projection = "pca"

    rng = np.random.default_rng(seed)
    basis = np.zeros((k, k))
    basis[-1, 0] = 1.0
    indices = np.zeros(k, dtype=np.int64)
    for i in range(k):
        w = rng.standard_normal(k)
        # f is orthogonal to the span of the vertices found so far.
        f = w - basis @ np.linalg.pinv(basis) @ w
        f /= max(np.linalg.norm(f), 1e-300)
        v = f @ data
        indices[i] = int(np.argmax(np.abs(v)))
        basis[:, i] = data[:, indices[i]]
    return VcaResult(recon[:, indices], indices, snr, projection)
