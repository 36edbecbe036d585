"""The preset types of ``upsample train-rgan`` and ``upsample train-dsr``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..autoencoder.config import KLAutoencoderPreset
from ..training.presets import NoiseSchedule, Preset, UNetConfig


@dataclass(frozen=True)
class RganPreset(Preset):
    """RGAN's widths and attention windows, and its optimiser (steps, or epochs when None)."""

    dim: int
    depth: int
    heads: int
    window: list[int]
    block: int
    ffn_ratio: float
    crop: Optional[int]
    batch_size: int
    steps: Optional[int]
    epochs: Optional[int]
    lr: float
    min_lr: float


@dataclass(frozen=True)
class DsrPreset(Preset):
    """DSRNet: its RGB autoencoder (``ae``), the latent UNet + ControlNet, and their training."""

    unet: UNetConfig
    cross_attention_dim: int
    conditioning_base: int
    schedule: NoiseSchedule
    ae: KLAutoencoderPreset
    prediction_type: str
    upsampler_width: int
    crop: int
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    ema_decay: float
    sample_steps: int
    eval_images: int
