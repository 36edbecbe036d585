"""``train-diffusion``: DDPM in a space (``abundance`` now), diffusers UNet + schedulers."""

from .model import DiffusionModel, load_model
from .stage import DiffusionTrainConfig, resolve, train
from .schedules import PREDICTION_TYPES, SAMPLERS
from .spaces import SPACES, get_space

__all__ = ["DiffusionModel", "DiffusionTrainConfig", "PREDICTION_TYPES", "SAMPLERS", "SPACES", "get_space",
           "load_model", "resolve", "train"]
