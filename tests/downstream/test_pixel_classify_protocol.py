"""The downstream check's handling of labelled synthetic pixels (stages/downstream/pixel_classify.py):
pixels next to another generated label are left out, and each class gets at most
``synthetic_ratio`` × its real training pixels."""

from __future__ import annotations

import numpy as np

from stages.downstream.pixel_classify import _per_class_budget, interior_labels


def _interior_brute_force(labels: np.ndarray, radius: int) -> np.ndarray:
    n, h, w = labels.shape
    out = labels.copy()
    for i in range(n):
        for r in range(h):
            for c in range(w):
                window = labels[i, max(r - radius, 0) : r + radius + 1, max(c - radius, 0) : c + radius + 1]
                if (window != labels[i, r, c]).any():
                    out[i, r, c] = -1
    return out


def test_interior_labels_match_brute_force():
    rng = np.random.default_rng(0)
    # Blocky maps (like decoded masks) so that interiors exist.
    labels = np.kron(rng.integers(0, 4, (3, 4, 4)), np.ones((1, 4, 4), np.int64))
    for radius in (1, 2):
        np.testing.assert_array_equal(interior_labels(labels, radius), _interior_brute_force(labels, radius))
    np.testing.assert_array_equal(interior_labels(labels, 0), labels)
    # A 4 × 4 block keeps its 2 × 2 centre at radius 1 when all its neighbours differ.
    single = np.zeros((1, 8, 8), np.int64)
    single[0, 2:6, 2:6] = 5
    assert (interior_labels(single, 1) == 5).sum() == 4


def test_per_class_budget_caps_each_class():
    rng = np.random.default_rng(1)
    y_real = np.repeat([1, 2, 3], [10, 10, 4])
    y_syn = np.repeat([1, 2, 3, 4], [100, 30, 100, 7])
    pick = _per_class_budget(y_syn, y_real, 5.0, rng)
    counts = {int(c): int((y_syn[pick] == c).sum()) for c in np.unique(y_syn)}
    # min(available, 5 × real): class 2 has only 30, class 4 has no real pixels.
    assert counts == {1: 50, 2: 30, 3: 20, 4: 0}
    assert len(np.unique(pick)) == len(pick)
