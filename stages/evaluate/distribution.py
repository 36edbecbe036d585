"""FID / KID / IS in the spectral domain: the seed papers swap ImageNet Inception for a
network trained on the HSI data (Shen et al., HUD (2025) §IV-C; Liu et al., HyperLDM, IEEE TGRS
61 (2023) §III-E); here the features are the pixel classifier's penultimate layer and the class
probabilities its softmax. The same ``frechet_distance`` gives the classic RGB FID on Inception
features (inception.py)."""

from __future__ import annotations

import numpy as np

from ..common.errors import ConfigError

EPS = 1e-12
EXACT_SVD_LIMIT = 512  # up to this many singular values, take them directly (exact, cheap)


def _covariance_root(centred: np.ndarray) -> np.ndarray:
    """R (d × r) with R Rᵀ = Σ, the sample covariance of the centred rows (n × d): the rows
    themselves when n ≤ d (nothing to factor), else Σ's symmetric eigen-root."""
    from scipy import linalg

    n, d = centred.shape
    if n <= d:
        return centred.T / np.sqrt(n - 1)
    w, v = linalg.eigh(centred.T @ centred / (n - 1))
    return v * np.sqrt(np.clip(w, 0, None))


def _trace_sqrt_product(ca: np.ndarray, cb: np.ndarray) -> float:
    """Tr((Σ_a Σ_b)^½) from centred sets, with n_a ≤ n_b. With Σ_a = R Rᵀ the non-zero
    eigenvalues of Σ_a Σ_b are those of Rᵀ Σ_b R = Yᵀ Y (Y = C_b R / sqrt(n_b - 1)), so the
    trace is the sum of Y's singular values: exact even for the singular covariances that
    ReLU features (dead units) and sets smaller than the feature dimension give."""
    from scipy import linalg

    n_b, d = cb.shape
    root = _covariance_root(ca)
    if n_b <= d:  # Y is small: n_b × r
        y = cb @ root / np.sqrt(n_b - 1)
        if min(y.shape) <= EXACT_SVD_LIMIT:
            return float(np.sum(linalg.svdvals(y)))
        gram = y @ y.T if y.shape[0] <= y.shape[1] else y.T @ y
    else:  # many rows: Rᵀ Σ_b R (r × r) without forming Y
        gram = root.T @ (cb.T @ cb / (n_b - 1)) @ root
    return float(np.sum(np.sqrt(np.clip(linalg.eigvalsh((gram + gram.T) / 2), 0, None))))


def frechet_distance(feat_a: np.ndarray, feat_b: np.ndarray, items: str = "spectra") -> float:
    """FID = ||μ_a - μ_b||² + Tr(Σ_a) + Tr(Σ_b) - 2 Tr((Σ_a Σ_b)^½) (Heusel et al. 2017, eq. 6).

    Symmetric factorisations instead of a general matrix square root (see
    ``_trace_sqrt_product``); a few hundred images against 2048 Inception features cost
    O(n_a n_b d) instead of cubic in d."""
    a = np.asarray(feat_a, dtype=np.float64)
    b = np.asarray(feat_b, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if b.ndim == 1:
        b = b[:, None]
    if min(len(a), len(b)) < 2:
        raise ConfigError(f"FID needs at least 2 {items} in each set")
    mean_term = float(np.sum((a.mean(0) - b.mean(0)) ** 2))
    ca, cb = a - a.mean(0), b - b.mean(0)
    traces = float(np.sum(ca**2)) / (len(a) - 1) + float(np.sum(cb**2)) / (len(b) - 1)
    if len(ca) > len(cb):  # Tr((Σ_a Σ_b)^½) is symmetric in a, b: factor the smaller set
        ca, cb = cb, ca
    return mean_term + traces - 2 * _trace_sqrt_product(ca, cb)


def kernel_inception_distance(
    feat_a: np.ndarray, feat_b: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel
    k(x, y) = (x·y / d + 1)³, averaged over random subsets; returns (mean, std)."""
    a = np.asarray(feat_a, dtype=np.float64)
    b = np.asarray(feat_b, dtype=np.float64)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ConfigError("KID needs at least 2 spectra in each set")
    d = a.shape[1]

    def kernel(x, y):  # in place, the cube as products: ** 3 took 20 ms, this 5.5 ms (1000², 64 features)
        k = x @ y.T
        k /= d
        k += 1
        return k * k * k

    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
        mmd = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


def inception_score(probs: np.ndarray, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) || p(y))) over ``splits`` random parts; returns (mean, std)."""
    p = np.asarray(probs, dtype=np.float64)
    splits = max(1, min(splits, len(p)))
    order = np.random.default_rng(seed).permutation(len(p))
    scores = []
    for part in np.array_split(p[order], splits):
        marginal = part.mean(0, keepdims=True)
        kl = (part * (np.log(np.maximum(part, EPS)) - np.log(np.maximum(marginal, EPS)))).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
