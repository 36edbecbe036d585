"""Linear interpolation of spectra onto a target grid, as one matrix product.

Alignment is linear in the input spectrum, so it is a (B_in, B_out) matrix applied to every
pixel: streaming a scene in row blocks is a matmul per block.
"""

from __future__ import annotations

import numpy as np

from ..common.errors import SpectralError


def alignment_matrix(source_nm, target_nm, extrapolate: str = "error") -> np.ndarray:
    """Weights W with ``aligned = spectra @ W`` equal to ``np.interp(target, source, spectrum)``.

    ``extrapolate='edge'`` repeats the nearest end band for targets outside the source
    coverage; ``'error'`` (default) refuses them.
    """
    src = np.asarray(source_nm, dtype=np.float64)
    tgt = np.asarray(target_nm, dtype=np.float64)
    if src.ndim != 1 or src.size < 1:
        raise SpectralError("source wavelengths must be a non-empty 1-D list")
    order = np.argsort(src, kind="stable")
    s = src[order]
    if np.any(np.diff(s) <= 0):
        raise SpectralError("source wavelengths repeat a value; drop the duplicate bands with --drop-bands")
    lo, hi = s[0], s[-1]
    # A target within half an edge band's spacing of the coverage still lies inside that
    # band's response (AVIRIS starts at 400.02 nm; the default grid at 400.0 nm): it takes
    # the edge value rather than being refused.
    tol_lo = 0.5 * (s[1] - s[0]) if s.size > 1 else 0.0
    tol_hi = 0.5 * (s[-1] - s[-2]) if s.size > 1 else 0.0
    outside = (tgt < lo - tol_lo) | (tgt > hi + tol_hi)
    if outside.any() and extrapolate != "edge":
        raise SpectralError(
            f"target wavelengths {tgt[outside].min():.1f}-{tgt[outside].max():.1f} nm lie outside the input's "
            f"coverage {lo:.1f}-{hi:.1f} nm; narrow --range or pass --extrapolate edge"
        )
    weights = np.zeros((src.size, tgt.size), dtype=np.float64)
    for j, t in enumerate(tgt):
        if t <= lo:
            weights[order[0], j] = 1.0
        elif t >= hi:
            weights[order[-1], j] = 1.0
        else:
            i = int(np.searchsorted(s, t, side="right")) - 1
            frac = (t - s[i]) / (s[i + 1] - s[i])
            weights[order[i], j] += 1.0 - frac
            weights[order[i + 1], j] += frac
    return weights


def align_block(block: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Apply alignment weights to a (..., B_in) block; returns float32 (..., B_out)."""
    return (block.astype(np.float32, copy=False) @ weights.astype(np.float32)).astype(np.float32, copy=False)
