"""Min-SNR-γ weights (latent_training.min_snr_weights) against the definition, SNR(t) = ᾱ_t / (1 − ᾱ_t)
computed by hand from the schedule's β: the x_0 error weighted by min(SNR, γ), whichever target
the model predicts."""

from __future__ import annotations

import numpy as np
import torch


def test_min_snr_weights_match_the_definition():
    from stages.diffusion.latent_training import min_snr_weights
    from stages.diffusion.schedules import training_scheduler
    from stages.diffusion.spaces.latent import SD_SCHEDULE

    t = torch.tensor([0, 10, 100, 400, 999])
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2  # "scaled_linear"
    abar = np.cumprod(1 - betas)[t.numpy()]
    snr = abar / (1 - abar)
    for prediction, expected in (
        ("sample", np.minimum(snr, 5.0)),
        ("epsilon", np.minimum(snr, 5.0) / snr),
        ("v_prediction", np.minimum(snr, 5.0) / (snr + 1)),
    ):
        scheduler = training_scheduler(SD_SCHEDULE, prediction)
        got = min_snr_weights(scheduler, t, prediction, 5.0).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4)
    # low noise is capped at γ, high noise keeps its SNR (x_0 target)
    x0 = min_snr_weights(training_scheduler(SD_SCHEDULE, "sample"), t, "sample", 5.0).numpy()
    assert x0[0] == np.float32(5.0) and x0[-1] < 0.01
