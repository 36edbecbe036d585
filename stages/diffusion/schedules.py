"""Noise schedules and samplers from diffusers: the training scheduler (DDPM, with the
preset's β schedule and prediction type) and the one sampler factory every model (abundance,
latent, joint, DSRNet) builds its reverse process from."""

from __future__ import annotations

from ..common.errors import ConfigError

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
SAMPLERS = ("ddim", "ddpm", "dpm")


def training_scheduler(schedule: dict, prediction_type: str):
    """A DDPMScheduler for training (eqs. 7-8 of Shen et al., HUD (2025): q(z_t | z_{t-1}) with β_1..β_T)."""
    from diffusers import DDPMScheduler

    if prediction_type not in PREDICTION_TYPES:
        raise ConfigError(f"--prediction {prediction_type!r}: choose one of {', '.join(PREDICTION_TYPES)}")
    return DDPMScheduler(
        num_train_timesteps=int(schedule["num_train_timesteps"]),
        beta_start=float(schedule["beta_start"]),
        beta_end=float(schedule["beta_end"]),
        beta_schedule=schedule["beta_schedule"],
        prediction_type=prediction_type,
        # Data live in a scaled, unconstrained space (e.g. HUD's Z): never clip to [-1, 1].
        clip_sample=False,
        timestep_spacing="trailing",
    )


def sampling_scheduler(kind: str, training_config: dict):
    """A sampler on the trained noise schedule: ``ddim`` deterministic DDIM (η = 0, Pang et al., HSIGene, arXiv:2409.12470
    eq. 2); ``ddpm`` ancestral sampling (Shen et al., HUD (2025) Algorithm 2, Pan et al., MSF-Diff, Information Fusion 108 (2024) Algorithm 2);
    ``dpm`` DPM-Solver++ (multistep, second order)."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    factories = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler, "dpm": DPMSolverMultistepScheduler}
    if kind not in factories:
        raise ConfigError(f"--sampler {kind!r}: choose one of {', '.join(SAMPLERS)}")
    return factories[kind].from_config(training_config)


def default_steps(kind: str, num_train_timesteps: int) -> int:
    """Reverse steps when ``--steps`` is not given: 50 for the deterministic solvers, the whole
    training schedule for ancestral DDPM."""
    return num_train_timesteps if kind == "ddpm" else 50


def noised_sample(scheduler, x0, generator, device):
    """One draw of the forward process (Pang et al., HSIGene, arXiv:2409.12470 eq. 1, in closed form): noise ε and a
    timestep t per sample from ``generator`` (noise first, then t), x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε,
    and the regression target of eq. 3 for the scheduler's prediction type (ε, v or x0).
    Returns (x_t, t, target)."""
    import torch

    noise = torch.randn(x0.shape, generator=generator).to(device)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), generator=generator).to(device)
    xt = scheduler.add_noise(x0, noise, t)
    prediction = scheduler.config.prediction_type
    if prediction == "epsilon":
        target = noise
    elif prediction == "v_prediction":
        target = scheduler.get_velocity(x0, noise, t)
    else:
        target = x0
    return xt, t, target
