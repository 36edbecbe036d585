"""``train-diffusion``: denoising diffusion models in a space (``abundance``, ``latent``, ``joint``;
``spaces/``) on diffusers UNets, and what sampling needs of them: the shared schedulers
(``schedules.py``), the one reverse loop (``reverse.py``) and the generator interface
(``generator.py``) each space implements. Entry: ``stage.train``."""

from .model import DiffusionModel, load_model
from .schedules import PREDICTION_TYPES, SAMPLERS
from .spaces import SPACES, get_space
from .stage import DiffusionTrainConfig, finetune_architecture, resolve, resolve_architecture, train

__all__ = [
    "DiffusionModel",
    "DiffusionTrainConfig",
    "finetune_architecture",
    "PREDICTION_TYPES",
    "SAMPLERS",
    "SPACES",
    "get_space",
    "load_model",
    "resolve",
    "resolve_architecture",
    "train",
]
