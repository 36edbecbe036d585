"""Brute-force quality measures of abundance maps, used by the tests."""

from __future__ import annotations

import numpy as np


def pixel_vectors(maps: np.ndarray, count: int, seed: int) -> np.ndarray:
    """(n, k, H, W) → ``count`` random per-pixel abundance vectors (count, k)."""
    vectors = np.moveaxis(maps, 1, -1).reshape(-1, maps.shape[1])
    pick = np.random.default_rng(seed).choice(len(vectors), min(count, len(vectors)), replace=False)
    return vectors[pick]


def knn_precision(real: np.ndarray, fake: np.ndarray, k: int = 3) -> float:
    """Kynkäänniemi et al. (2019) precision (their default k = 3): the share of generated
    vectors that fall inside the k-NN ball of at least one real vector (radius: the distance
    from that real vector to its k-th nearest real neighbour)."""
    from scipy.spatial.distance import cdist

    radii = np.sort(cdist(real, real), axis=1)[:, k]  # column 0 is the point itself
    inside = np.zeros(len(fake), bool)
    for start in range(0, len(fake), 1024):
        d = cdist(fake[start : start + 1024], real)
        inside[start : start + 1024] = np.any(d <= radii[None, :], axis=1)
    return float(inside.mean())


def neighbour_variation(maps: np.ndarray) -> float:
    """Mean absolute abundance difference between horizontally and vertically adjacent pixels
    (summed over endmembers)."""
    dx = np.abs(np.diff(maps, axis=-1)).sum(axis=1).mean()
    dy = np.abs(np.diff(maps, axis=-2)).sum(axis=1).mean()
    return float((dx + dy) / 2)
