"""VCA + FCLS / LSQ on a noise-free scene mixed from real library spectra with known
Dirichlet abundances (HUD §III-B, eqs. 2-3), and the minimum-volume simplex on a scene without
pure pixels."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment, minimize

from stages.common.errors import ConfigError, InputError
from stages.spectral.quality import spectral_angles
from stages.unmix import fcls_abundances, lsq_abundances, vca
from stages.unmix.min_volume import min_volume_endmembers


@pytest.fixture(scope="module")
def scene(library_endmembers):
    wl, endmembers = library_endmembers
    k = endmembers.shape[1]
    rng = np.random.default_rng(7)
    abundances = rng.dirichlet(np.full(k, 0.6), size=60 * 60).T  # (k, N)
    pure = rng.choice(abundances.shape[1], k, replace=False)
    abundances[:, pure] = np.eye(k)  # VCA needs the vertices present
    return endmembers, abundances, endmembers @ abundances


def _match(found, truth):
    """Angles between every found and true endmember, paired by the Hungarian algorithm."""
    k = truth.shape[1]
    angles = np.array([[spectral_angles(found[:, [i]], truth[:, [j]], axis=0)[0] for j in range(k)] for i in range(k)])
    rows, cols = linear_sum_assignment(angles)
    return angles[rows, cols], cols


def test_vca_fcls_recovers_endmembers_and_abundances(scene):
    endmembers, abundances, y = scene
    result = vca(y, endmembers.shape[1], seed=0)
    angles, order = _match(result.endmembers, endmembers)
    assert angles.max() < 0.05
    x = fcls_abundances(y, result.endmembers)
    recovered = np.empty_like(x)
    recovered[order] = x
    assert np.sqrt(np.mean((recovered - abundances) ** 2)) < 0.02
    assert x.min() >= 0
    assert np.abs(x.sum(axis=0) - 1).max() < 1e-6


def test_vca_is_seeded_and_validates_k(scene):
    _, _, y = scene
    assert np.array_equal(vca(y, 6, seed=3).indices, vca(y, 6, seed=3).indices)
    with pytest.raises(ConfigError, match="larger than the 48 bands"):
        vca(y, 49)
    bad = y.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        vca(bad, 5)


def test_lsq_is_the_pseudo_inverse(scene):
    endmembers, _, y = scene
    noisy = y + np.random.default_rng(1).normal(0, 0.01, y.shape)
    expected = np.linalg.solve(endmembers.T @ endmembers, endmembers.T @ noisy)  # HUD eq. 3
    assert np.allclose(lsq_abundances(noisy, endmembers), expected, atol=1e-8)


def test_fcls_is_optimal_on_noisy_pixels(scene):
    """On noisy pixels (many with active constraints) FCLS matches a generic constrained
    optimiser and the NNLS-based path."""
    endmembers, _, y = scene
    rng = np.random.default_rng(2)
    noisy = y[:, :40] + rng.normal(0, 0.05, (y.shape[0], 40))
    x = fcls_abundances(noisy, endmembers)
    assert x.min() >= 0 and np.abs(x.sum(0) - 1).max() < 1e-6
    assert np.any(x < 1e-12), "the noisy pixels should exercise the non-negativity constraint"
    k = endmembers.shape[1]
    for i in range(40):
        obj = lambda a, i=i: np.sum((noisy[:, i] - endmembers @ a) ** 2)  # noqa: E731
        ref = minimize(
            obj,
            np.full(k, 1 / k),
            method="SLSQP",
            bounds=[(0, 1)] * k,
            constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1}],
            options={"ftol": 1e-14, "maxiter": 500},
        ).x
        assert obj(x[:, i]) <= obj(ref) + 1e-9
    via_nnls = fcls_abundances(noisy, endmembers, enumeration_max_k=2)
    assert np.abs(via_nnls - x).max() < 1e-4
    assert np.abs(via_nnls.sum(0) - 1).max() < 1e-6


def test_min_volume_recovers_endmembers_without_pure_pixels(library_endmembers):
    """No pixel is purer than 80 %: VCA can only return mixed pixels, while the smallest simplex
    enclosing the data is the true one (every face is touched by pixels missing an endmember)."""
    _, endmembers = library_endmembers
    k = endmembers.shape[1]
    rng = np.random.default_rng(7)
    abundances = rng.dirichlet(np.full(k, 0.6), size=20_000).T
    abundances = abundances[:, abundances.max(0) <= 0.8][:, :3000]
    y = endmembers @ abundances
    start = vca(y, k, seed=0).endmembers
    vca_angles, _ = _match(start, endmembers)
    fit = min_volume_endmembers(y, start)
    angles, order = _match(fit.endmembers, endmembers)
    assert vca_angles.max() > 0.2  # measured 0.256 rad
    assert angles.max() < 0.01  # measured 0.001 rad
    assert fit.outside_share == 0.0 and fit.log_volume_gain > 1.0
    x = fcls_abundances(y, fit.endmembers)
    recovered = np.empty_like(x)
    recovered[order] = x
    assert np.sqrt(np.mean((recovered - abundances) ** 2)) < 0.01


def test_min_volume_floor_keeps_endmembers_above_it(library_endmembers):
    """The floor hinge: with a floor at the data's own minimum no endmember goes (much) below it."""
    _, endmembers = library_endmembers
    rng = np.random.default_rng(3)
    abundances = rng.dirichlet(np.full(endmembers.shape[1], 1.0), size=3000).T
    y = endmembers @ abundances + rng.normal(0, 0.002, (endmembers.shape[0], 3000))
    start = vca(y, endmembers.shape[1], seed=0).endmembers
    free = min_volume_endmembers(y, start, iterations=600).endmembers
    floored = min_volume_endmembers(y, start, floor=float(y.min()), iterations=600).endmembers
    assert free.min() < y.min() - 0.05  # measured −0.097 against the data's 0.039
    assert floored.min() > y.min() - 1e-3  # measured 0.040


def test_min_volume_refuses_pixels_that_span_too_few_dimensions(library_endmembers):
    """Mixtures of two spectra span a line: no 3-vertex simplex to fit; one clear error."""
    _, endmembers = library_endmembers
    t = np.random.default_rng(0).uniform(size=500)
    y = np.outer(endmembers[:, 0], t) + np.outer(endmembers[:, 1], 1 - t)
    start = np.stack([endmembers[:, 0], endmembers[:, 1], 0.5 * (endmembers[:, 0] + endmembers[:, 1])], axis=1)
    with pytest.raises(ConfigError, match="lower -k or use --method vca"):
        min_volume_endmembers(y, start, iterations=10)
