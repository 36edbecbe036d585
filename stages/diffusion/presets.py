"""The preset types of ``train-diffusion``: one for the abundance and joint spaces (a
diffusers UNet on the maps or latents), one for the latent space (UNet + ControlNet)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..training.presets import NoiseSchedule, Preset, UNetConfig


@dataclass(frozen=True)
class DenoiserTraining(Preset):
    """What every diffusion preset has: the UNet, the noise schedule and the optimiser."""

    unet: UNetConfig
    prediction_type: str
    schedule: NoiseSchedule
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    ema_decay: float


@dataclass(frozen=True)
class DiffusionPreset(DenoiserTraining):
    """``--space abundance`` and ``--space joint``."""

    crop: Optional[int]  # random training crop; None: the whole map


@dataclass(frozen=True)
class AbundanceDiffusionPreset(DiffusionPreset):
    """``--space abundance``."""

    z_scaling: str  # HUD eq. 4's Z onto the model's range: "range" (its exact bounds) | "standard" (per endmember)


@dataclass(frozen=True)
class LatentDiffusionPreset(DenoiserTraining):
    """``--space latent``: HSIGene's ControlNet-conditioned UNet, or HyperLDM's RGB mode."""

    cross_attention_dim: int
    conditioning_base: int
    rgb_channels: int
    condition_dropout: float
    drop_all: float
    ssim_weight: float
    rgb_condition: bool
    augment: bool
    grad_accum: int
    standardise_latents: bool  # channel_norm.py: every latent channel to zero mean, unit std
    snr_gamma: Optional[float]  # Min-SNR-γ loss weighting over t (latent_training.min_snr_weights); None: uniform
    sigma_data: Optional[float]  # EDM preconditioning of the x0 prediction (precondition.py); None: the raw output
