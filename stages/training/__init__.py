"""Shared training machinery: presets, optimiser + cosine schedule, EMA, exact-resume
checkpoints and optional DDP. Every trainable stage (train-ae, train-diffusion, unmix
scene-net, upsample, evaluate's classifier) uses this one loop."""

from .checkpoint import load_weights, save_weights
from .ema import EMA
from .loop import Performance, Trainer, TrainSpec, count_parameters, make_optimizer
from .presets import resolve_preset

__all__ = [
    "EMA",
    "Performance",
    "TrainSpec",
    "Trainer",
    "count_parameters",
    "load_weights",
    "make_optimizer",
    "resolve_preset",
    "save_weights",
]
