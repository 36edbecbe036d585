"""EDM preconditioning of an x0-predicting denoiser (Karras et al., "Elucidating the Design Space of
Diffusion-Based Generative Models", NeurIPS 2022, §5 and Table 1), on a VP schedule.

With x̃ = x_t / √ᾱ_t = x_0 + σ·ε and σ² = (1 − ᾱ_t) / ᾱ_t, the denoiser returns

    D(x_t) = c_skip(σ)·x̃ + c_out(σ)·F(x_t, t),   c_skip = σ_d² / (σ² + σ_d²),   c_out = σ·σ_d / √(σ² + σ_d²)

where F is the network and σ_d the data's standard deviation (the ``sigma_data`` preset field). At low
noise D passes its input through and F only corrects it; at high noise D ≈ σ_d·F, an x0 prediction.
The loss is EDM's: the x0 error weighted by 1 / c_out², i.e. unit weight on F's own target. With
σ_d = 1 this is v-prediction (Salimans & Ho 2022) written as an x0 prediction.

Why (issue 14): the raw x0 prediction of the tiny latent preset could not give back its input even
at t = 1 — its first UNet level has 32 channels for 48 latent channels — so every sample carried
the error of that last step: denoising the embedded scene's val latents at t = 1 took their decoded
spectra from sPr 0.91 to 0.48, the samples' own level.
"""

from __future__ import annotations

import torch


def edm_coefficients(alphas_cumprod_t: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(the factor on x_t, c_out) for ᾱ_t of each sample: D = skip·x_t + c_out·F."""
    a = alphas_cumprod_t.float()
    sigma2 = (1 - a) / a
    sd2 = float(sigma_data) ** 2
    c_skip = sd2 / (sigma2 + sd2)
    c_out = sigma2.sqrt() * float(sigma_data) / (sigma2 + sd2).sqrt()
    return c_skip / a.sqrt(), c_out


def loss_weights(alphas_cumprod_t: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """EDM's λ(σ) = 1 / c_out² on the x0 error of each sample."""
    return edm_coefficients(alphas_cumprod_t, sigma_data)[1].pow(-2)


class Preconditioning(torch.nn.Module):
    """D(x_t, t) from the network's output F; ᾱ of the training schedule as a (non-saved) buffer."""

    def __init__(self, alphas_cumprod: torch.Tensor, sigma_data: float):
        super().__init__()
        self.sigma_data = float(sigma_data)
        self.register_buffer("alphas_cumprod", alphas_cumprod.detach().float().clone(), persistent=False)

    def forward(self, x_t: torch.Tensor, t, network_output: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=x_t.device).long().reshape(-1)
        a = self.alphas_cumprod.to(x_t.device)[t]
        a = a.expand(x_t.shape[0]) if a.numel() == 1 else a
        skip, out = edm_coefficients(a, self.sigma_data)
        shape = (-1,) + (1,) * (x_t.dim() - 1)
        return (skip.reshape(shape) * x_t.float() + out.reshape(shape) * network_output.float()).to(x_t.dtype)


def schedule_alphas_cumprod(schedule: dict) -> torch.Tensor:
    """ᾱ_t of a training schedule (the diffusers DDPMScheduler's, as training uses)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=int(schedule["num_train_timesteps"]),
        beta_start=float(schedule["beta_start"]),
        beta_end=float(schedule["beta_end"]),
        beta_schedule=schedule["beta_schedule"],
    ).alphas_cumprod
