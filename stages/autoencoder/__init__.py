"""``train-ae``: the spectral autoencoders of HSIGene (``kl``), HyperLDM (``vq-rgb``) and
SpecDM (``two-stream``). Load a trained one with ``stages.autoencoder.io.load_autoencoder``."""

from .config import KINDS, PRESETS, TrainAEConfig

__all__ = ["KINDS", "PRESETS", "TrainAEConfig", "describe", "load_autoencoder", "run"]


def __getattr__(name):
    # Lazy: importing the package must not import torch (hsigen --help stays fast).
    if name in ("run", "describe"):
        from . import stage

        return getattr(stage, name)
    if name == "load_autoencoder":
        from .io import load_autoencoder

        return load_autoencoder
    raise AttributeError(name)
