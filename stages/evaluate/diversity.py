"""Spectral diversity SD and SDM (Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-E, eqs. 26-29) from the pixel
classifier's softmax vectors."""

from __future__ import annotations

import numpy as np

EPS = 1e-12


def _xlogx(p: np.ndarray) -> np.ndarray:
    return p * np.log(np.maximum(p, EPS))


def spectral_diversity(probs: np.ndarray) -> float:
    """SD of one image, eq. 28, from its pixels' softmax vectors ``probs`` (n_pixels, n_s).

    Pixels are grouped by predicted class (V_i); p(y_i) is the mean softmax vector of the
    group (eq. 26); the group's mean KL divergence to it is E[v log v] - p log p (eq. 27);
    SD = (1/n_s) Σ_i exp(mean KL_i) (eq. 28). A class that no pixel is predicted as has an
    empty group, KL 0 and contributes exp(0) = 1, as the sum over all n_s classes implies.
    """
    probs = np.asarray(probs, dtype=np.float64)
    n_s = probs.shape[1]
    predicted = probs.argmax(1)
    total = 0.0
    for i in range(n_s):
        group = probs[predicted == i]
        if len(group) == 0:
            total += 1.0
            continue
        marginal = group.mean(0)  # eq. 26
        kl = _xlogx(group).sum(1).mean() - _xlogx(marginal).sum()  # eq. 27
        total += float(np.exp(kl))
    return total / n_s  # eq. 28


def spectral_diversity_multiple(probs_k: np.ndarray) -> float:
    """SDM for K images generated from one condition, eq. 29: ``probs_k`` (K, n_pixels, n_s)
    holds p(y | c) of each image at each pixel; p(y) is their mean over the K images at that
    pixel, and SDM = exp(mean over images and pixels of KL(p(y | c) || p(y)))."""
    probs_k = np.asarray(probs_k, dtype=np.float64)
    marginal = probs_k.mean(0, keepdims=True)
    kl = (probs_k * (np.log(np.maximum(probs_k, EPS)) - np.log(np.maximum(marginal, EPS)))).sum(-1)
    return float(np.exp(kl.mean()))
