"""Abundances for fixed endmembers: FCLS (Shen et al., HUD (2025) eq. 2) and the linear approximation LSQ
(Shen et al., HUD (2025) eq. 3), both vectorised over every pixel of a scene or patch set."""

from __future__ import annotations

import itertools

import numpy as np

from ..common.errors import ConfigError

# Up to this many endmembers FCLS is solved exactly by enumerating active sets (2^k - 1
# equality-constrained solves shared by all pixels); beyond it, per-pixel NNLS.
ENUMERATION_MAX_K = 12
_CHUNK = 65536


def lsq_abundances(y: np.ndarray, endmembers: np.ndarray) -> np.ndarray:
    """Shen et al., HUD (2025) eq. 3: X = (AᵀA)⁻¹AᵀY, the unconstrained least-squares (pseudo-inverse) solution.
    ``y`` (B, N), ``endmembers`` (B, k) → (k, N)."""
    return np.linalg.pinv(np.asarray(endmembers, np.float64)) @ np.asarray(y, np.float64)


def _sum_to_one_solve(gram_inv: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """argmin ||y - E x||² s.t. 1ᵀx = 1 in closed form (Lagrange multiplier on the sum)."""
    unconstrained = gram_inv @ rhs
    ones = gram_inv.sum(axis=1, keepdims=True)  # G⁻¹ 1
    lam = (unconstrained.sum(axis=0, keepdims=True) - 1.0) / ones.sum()
    return unconstrained - ones * lam


def fcls_abundances(
    y: np.ndarray, endmembers: np.ndarray, tol: float = 1e-10, enumeration_max_k: int = ENUMERATION_MAX_K
) -> np.ndarray:
    """Shen et al., HUD (2025) eq. 2: min ||Y − AX||² s.t. X ≥ 0, Σ X = 1, per pixel. ``y`` (B, N) → (k, N).

    The optimum's support S makes it the sum-to-one least-squares solution restricted to S
    (KKT), and every feasible restricted solution is feasible for the full problem, so the
    feasible restricted solution with the smallest residual is the exact optimum. Pixels
    whose all-endmember solution is already non-negative (most of them) stop there.
    """
    y = np.asarray(y, np.float64)
    e = np.asarray(endmembers, np.float64)
    k = e.shape[1]
    if k > enumeration_max_k:
        return _fcls_nnls(y, e)
    out = np.empty((k, y.shape[1]))
    for start in range(0, y.shape[1], _CHUNK):
        out[:, start : start + _CHUNK] = _fcls_chunk(y[:, start : start + _CHUNK], e, tol)
    return out


def _fcls_chunk(y: np.ndarray, e: np.ndarray, tol: float) -> np.ndarray:
    k = e.shape[1]
    gram = e.T @ e
    rhs = e.T @ y  # (k, N)
    best = _sum_to_one_solve(np.linalg.pinv(gram), rhs)
    infeasible = np.flatnonzero(best.min(axis=0) < -tol)
    if infeasible.size:
        rhs_t, yy = rhs[:, infeasible], np.sum(y[:, infeasible] ** 2, axis=0)
        best_err = np.full(infeasible.size, np.inf)
        best_x = np.zeros((k, infeasible.size))
        for size in range(1, k):
            for support in itertools.combinations(range(k), size):
                s = list(support)
                g = gram[np.ix_(s, s)]
                x = _sum_to_one_solve(np.linalg.pinv(g), rhs_t[s])
                # ||y − E_S x||² = yᵀy − 2 xᵀE_Sᵀy + xᵀ G_S x
                err = yy - 2 * np.sum(x * rhs_t[s], axis=0) + np.sum(x * (g @ x), axis=0)
                better = (x.min(axis=0) >= -tol) & (err < best_err)
                if better.any():
                    best_err[better] = err[better]
                    best_x[:, better] = 0.0
                    best_x[np.ix_(s, np.flatnonzero(better))] = x[:, better]
        best[:, infeasible] = best_x
    best = np.clip(best, 0.0, None)
    return best / best.sum(axis=0, keepdims=True)


def _fcls_nnls(y: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Heinz & Chang's FCLS for many endmembers: NNLS on the system augmented by a heavily
    weighted sum-to-one row, then an exact renormalisation of the tiny remaining sum error."""
    from scipy.optimize import nnls

    weight = 1e3 * max(float(np.abs(e).max()), 1e-12)
    aug = np.vstack([e, np.full((1, e.shape[1]), weight)])
    out = np.empty((e.shape[1], y.shape[1]))
    target = np.empty(aug.shape[0])
    target[-1] = weight
    for i in range(y.shape[1]):
        target[:-1] = y[:, i]
        out[:, i] = nnls(aug, target, maxiter=50 * aug.shape[1])[0]
    total = out.sum(axis=0, keepdims=True)
    if np.any(total <= 0):
        raise ConfigError("FCLS failed: an abundance vector summed to zero; check the endmembers")
    return out / total


ABUNDANCE_METHODS = {"fcls": fcls_abundances, "lsq": lsq_abundances}
