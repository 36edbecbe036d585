"""Minimum-volume simplex endmembers (the ``min-volume`` method of ``unmix``).

VCA (Nascimento & Bioucas-Dias, IEEE TGRS 43(4), 2005) picks the purest *pixels* as endmembers,
so every pixel outside the cone of those few is clipped onto a face of their simplex by FCLS.
On the embedded Indian Pines scene that costs most of the spectral detail: the val patches
rebuilt from their own FCLS abundances score sPr 0.34 / sRec 0.03 at k = 8 (0.50 / 0.10 at
k = 20), far below what the same number of principal components keeps. Minimum-volume methods
(Li & Bioucas-Dias, "Minimum volume simplex analysis", IGARSS 2008; SISAL, Bioucas-Dias,
"A variable splitting augmented Lagrangian approach to linear spectral unmixing", WHISPERS
2009) instead fit the *smallest simplex that encloses the data*, so its vertices may lie
outside the data (no pure pixel is needed) and almost every pixel keeps exact sum-to-one,
non-negative abundances.

As in SISAL: the pixels are projected onto their (k − 1)-dimensional affine principal subspace,
the simplex starts at the VCA endmembers there, and

    minimise  log |det M(E)|  +  λ · mean_pixels Σ_j max(0, −a_j)  (+ a floor penalty)

over the k vertices E, where M = [E 1] (k × k) and a = M⁻ᵀ [y; 1] are a pixel's barycentric
coordinates (its abundances when it lies inside). The hinge term is SISAL's soft constraint: a
few noisy pixels may stay outside rather than inflate the simplex. Optional ``floor``: a lower
bound on every endmember value (in the units of ``y``), e.g. physical radiance ≥ 0, as a
second hinge. Solved by full-batch Adam (deterministic; no randomness beyond VCA's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..common.errors import ConfigError
from .vca import top_eigenvectors

HINGE_WEIGHT = 500.0  # λ: on Indian Pines 3.1 / 8.6 / 16.2 % of the train pixels stay outside at k = 5 / 8 / 12
FLOOR_WEIGHT = 1.0e4
ITERATIONS = 3000
LEARNING_RATE = 0.05  # in units of the pixels' spread about their mean
OUTSIDE_TOLERANCE = 1e-3  # a pixel counts as outside when an abundance is below −this


@dataclass
class MinVolumeResult:
    endmembers: np.ndarray  # (B, k), the units of y
    outside_share: float  # pixels with a barycentric coordinate < −OUTSIDE_TOLERANCE
    log_volume_gain: float  # log det of the fitted simplex minus the VCA simplex's (both in the subspace)


def _reduced(y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The pixels ``y`` (B, N) in their affine principal subspace of k − 1 dimensions: (mean (B,),
    axes (k − 1, B), coordinates (N, k − 1), the pixels' RMS distance from their mean in all B
    bands). Refused when they span fewer dimensions."""
    mean = y.mean(axis=1)
    centred = y - mean[:, None]
    axes = top_eigenvectors(centred @ centred.T / y.shape[1], k - 1).T
    coords = (axes @ centred).T
    variance = coords.var(axis=0)  # the eigenvalues, largest first
    if variance[-1] <= 1e-10 * variance[0]:
        raise ConfigError(
            f"--method min-volume: the pixels span fewer than {k - 1} dimensions (too few distinct "
            f"spectra for a simplex of k = {k}); lower -k or use --method vca"
        )
    spread = float(np.sqrt((centred**2).sum(0).mean())) or 1.0
    return mean, axes, coords, spread


def min_volume_endmembers(
    y: np.ndarray,
    init: np.ndarray,
    floor: float | None = None,
    hinge: float = HINGE_WEIGHT,
    iterations: int = ITERATIONS,
) -> MinVolumeResult:
    """Enclosing-simplex endmembers (B, k) of the pixels ``y`` (B, N), started at ``init`` (B, k)."""
    import torch

    y = np.asarray(y, np.float64)
    k = init.shape[1]
    mean, axes, coords, spread = _reduced(y, k)
    t_axes, t_mean = torch.from_numpy(axes), torch.from_numpy(mean)
    # Coordinates in units of the spread, so one learning rate fits every dataset's units.
    reduced = torch.from_numpy(coords / spread)  # (N, k − 1)
    homogeneous = torch.cat([reduced, torch.ones(len(reduced), 1, dtype=reduced.dtype)], 1)
    start = torch.from_numpy((axes @ (np.asarray(init, np.float64) - mean[:, None])).T / spread)  # (k, k − 1)
    vertices = start.clone().requires_grad_(True)
    ones = torch.ones(k, 1, dtype=reduced.dtype)
    start_sign, start_logdet = torch.linalg.slogdet(torch.cat([start, ones], 1))
    if start_sign == 0:
        raise ConfigError(
            f"--method min-volume: VCA's {k} endmembers span no {k - 1}-dimensional simplex to start "
            "from; lower -k or use --method vca"
        )

    def spectra(v):  # (k, B), the units of y
        return (v * spread) @ t_axes + t_mean

    def barycentric(v):
        matrix = torch.cat([v, ones], 1)  # rows: vertices
        return matrix, torch.linalg.solve(matrix.T, homogeneous.T)  # (k, N)

    optimiser = torch.optim.Adam([vertices], lr=LEARNING_RATE)
    # The hinge's gradient jumps as pixels cross a face: without a decaying step Adam keeps
    # oscillating around (and on noise-free data far from) the optimum.
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, iterations, eta_min=LEARNING_RATE * 1e-3)
    for _ in range(iterations):
        matrix, weights = barycentric(vertices)
        loss = torch.linalg.slogdet(matrix)[1] + hinge * torch.relu(-weights).sum(0).mean()
        if floor is not None:
            loss = loss + FLOOR_WEIGHT * torch.relu(floor - spectra(vertices)).mean() / spread
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        decay.step()
    with torch.no_grad():
        matrix, weights = barycentric(vertices)
        outside = float((weights.min(0).values < -OUTSIDE_TOLERANCE).double().mean())
        gain = float(torch.linalg.slogdet(matrix)[1] - start_logdet)
        endmembers = spectra(vertices).T.numpy()
    if not np.isfinite(endmembers).all():
        raise ConfigError(f"--method min-volume did not converge for k = {k}; lower -k or use --method vca")
    return MinVolumeResult(np.ascontiguousarray(endmembers), outside, gain)
