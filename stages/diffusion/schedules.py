"""Noise schedules and samplers from diffusers: the training scheduler (DDPM, with the
preset's β schedule and prediction type) and the samplers built from its config."""

from __future__ import annotations

from ..common.errors import ConfigError

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
SAMPLERS = ("ddim", "ddpm")


def training_scheduler(schedule: dict, prediction_type: str):
    """A DDPMScheduler for training (eqs. 7-8 of hud.txt: q(z_t | z_{t-1}) with β_1..β_T)."""
    from diffusers import DDPMScheduler

    if prediction_type not in PREDICTION_TYPES:
        raise ConfigError(f"--prediction {prediction_type!r}: choose one of {', '.join(PREDICTION_TYPES)}")
    return DDPMScheduler(
        num_train_timesteps=int(schedule["num_train_timesteps"]), beta_start=float(schedule["beta_start"]),
        beta_end=float(schedule["beta_end"]), beta_schedule=schedule["beta_schedule"],
        prediction_type=prediction_type,
        # Data live in a scaled, unconstrained space (e.g. HUD's Z): never clip to [-1, 1].
        clip_sample=False, timestep_spacing="trailing")


def sampling_scheduler(kind: str, training_config: dict):
    """``ddpm``: ancestral sampling (hud.txt Algorithm 2, msf-diff.txt Algorithm 2);
    ``ddim``: deterministic DDIM (η = 0) on the same trained noise schedule."""
    from diffusers import DDIMScheduler, DDPMScheduler

    if kind == "ddpm":
        return DDPMScheduler.from_config(training_config)
    if kind == "ddim":
        return DDIMScheduler.from_config(training_config)
    raise ConfigError(f"--sampler {kind!r}: choose ddim or ddpm")
