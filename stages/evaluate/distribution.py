"""FID / KID / IS in the spectral domain: the seed papers swap ImageNet Inception for a
network trained on the HSI data (hud.txt §IV-C, hyperldm.txt §III-E); here the features are
the pixel classifier's penultimate layer and the class probabilities its softmax."""

from __future__ import annotations

import numpy as np

from ..common.errors import ConfigError

EPS = 1e-12


def frechet_distance(feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    """FID = ||μ_a - μ_b||² + Tr(Σ_a) + Tr(Σ_b) - 2 Tr((Σ_a Σ_b)^½) (Heusel et al. 2017).

    Tr((Σ_a Σ_b)^½) is computed as Σ sqrt(λ) over the eigenvalues λ of the symmetric PSD
    matrix Σ_a^½ Σ_b Σ_a^½ (same spectrum as Σ_a Σ_b): symmetric eigensolvers stay exact and
    fast where a general matrix square root struggles with the singular covariances that
    ReLU features (dead units) produce."""
    from scipy import linalg

    a = np.asarray(feat_a, dtype=np.float64)
    b = np.asarray(feat_b, dtype=np.float64)
    if min(len(a), len(b)) < 2:
        raise ConfigError("FID needs at least 2 spectra in each set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root_a @ cov_b @ root_a
    eig = linalg.eigvalsh((middle + middle.T) / 2)
    tr_covmean = float(np.sum(np.sqrt(np.clip(eig, 0, None))))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_covmean)


def kernel_inception_distance(feat_a: np.ndarray, feat_b: np.ndarray, subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel
    k(x, y) = (x·y / d + 1)³, averaged over random subsets; returns (mean, std)."""
    a = np.asarray(feat_a, dtype=np.float64)
    b = np.asarray(feat_b, dtype=np.float64)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ConfigError("KID needs at least 2 spectra in each set")
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
               - 2 * kxy.mean())
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
