"""EDM preconditioning (stages/diffusion/precondition.py) against its definition (Karras et al. 2022, Table 1),
computed by hand from the schedule's β; σ_d = 1 against diffusers' v-prediction; the options it refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

T = torch.tensor([0, 1, 10, 100, 400, 999])


def _abar():
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2  # SD's "scaled_linear"
    return np.cumprod(1 - betas)


def test_coefficients_match_the_edm_definition():
    from stages.diffusion.precondition import edm_coefficients, loss_weights, schedule_alphas_cumprod
    from stages.diffusion.spaces.latent import SD_SCHEDULE

    abar = schedule_alphas_cumprod(SD_SCHEDULE)
    np.testing.assert_allclose(abar.numpy(), _abar(), rtol=1e-5)
    a = _abar()[T.numpy()]
    sigma = np.sqrt((1 - a) / a)
    for sd in (0.25, 0.5, 1.0):
        skip, out = edm_coefficients(abar[T], sd)
        c_skip, c_out = sd**2 / (sigma**2 + sd**2), sigma * sd / np.sqrt(sigma**2 + sd**2)
        np.testing.assert_allclose(skip.numpy(), c_skip / np.sqrt(a), rtol=1e-4)  # c_skip on x̃ = x_t / √ᾱ
        np.testing.assert_allclose(out.numpy(), c_out, rtol=1e-4)
        np.testing.assert_allclose(loss_weights(abar[T], sd).numpy(), 1 / c_out**2, rtol=1e-4)


def test_sigma_data_one_is_v_prediction():
    """D = √ᾱ·x_t − √(1 − ᾱ)·v: with F = −v (diffusers' velocity) the output is x_0 exactly."""
    from stages.diffusion.precondition import Preconditioning, schedule_alphas_cumprod
    from stages.diffusion.schedules import training_scheduler
    from stages.diffusion.spaces.latent import SD_SCHEDULE

    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(len(T), 4, 8, 8, generator=g), torch.randn(len(T), 4, 8, 8, generator=g)
    scheduler = training_scheduler(SD_SCHEDULE, "v_prediction")
    xt, v = scheduler.add_noise(x0, eps, T), scheduler.get_velocity(x0, eps, T)
    d = Preconditioning(schedule_alphas_cumprod(SD_SCHEDULE), 1.0)(xt, T, -v)
    np.testing.assert_allclose(d.numpy(), x0.numpy(), atol=2e-5)


def test_low_noise_passes_the_input_through_and_high_noise_is_an_x0_prediction():
    from stages.diffusion.precondition import Preconditioning, schedule_alphas_cumprod
    from stages.diffusion.spaces.latent import SD_SCHEDULE

    pre = Preconditioning(schedule_alphas_cumprod(SD_SCHEDULE), 0.5)
    g = torch.Generator().manual_seed(1)
    xt, f = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    a0 = float(_abar()[0])
    low = pre(xt, torch.tensor(0), f)  # a scalar t, as the samplers pass it
    # |D − x_t/√ᾱ| ≤ (1 − c_skip)·|x̃| + c_out·|F|: 0.1 % and 1.5 % of the values at t = 0
    assert (low - xt / a0**0.5).abs().max() < 0.02 * float(xt.abs().max() + f.abs().max())
    high = pre(xt, torch.tensor([999, 999]), f)
    np.testing.assert_allclose(high.numpy(), 0.5 * f.numpy(), atol=0.06)  # D ≈ σ_d·F (x_t's weight ≈ 0.017)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"prediction_type": "epsilon"}, "needs --prediction sample"),
        ({"snr_gamma": 5.0}, "no snr_gamma"),
        ({"sigma_data": 0.0}, "must be > 0"),
    ],
)
def test_refused_combinations(change, message):
    from stages.common.errors import ConfigError
    from stages.diffusion.latent_training import check_options
    from stages.diffusion.spaces.latent import PRESETS

    cfg = {**PRESETS["tiny"].to_dict(), "sigma_data": 0.5, **change}
    with pytest.raises(ConfigError, match=message):
        check_options(cfg)
