"""Diffusion spaces: each module turns its inputs into training tensors and model outputs
back into HSIs. ``train-diffusion --space NAME`` and ``sample`` dispatch through ``SPACES``.

A space module provides:
- ``PRESETS``: named model sizes (``tiny``, ``paper`` ...), see ``stages/diffusion/stage.py``;
- ``prepare(inputs: dict, seed) -> SpaceData``: training tensors in normalised units;
- ``decode(model: DiffusionModel, x0) -> Decoded``: generated tensors → HSIs (+ extra maps).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ...common.errors import ConfigError

SPACES = {"abundance": "stages.diffusion.spaces.abundance", "latent": "stages.diffusion.spaces.latent",
          "joint": "stages.diffusion.spaces.joint"}


@dataclass
class SpaceData:
    """What a space hands to the generic trainer."""

    tensors: np.ndarray                     # (N, C, H, W) float32, about [-1, 1]
    normalisation: dict                     # how tensors were scaled (recorded in the manifest)
    inputs: list[Path]                      # input artifacts (manifest ``inputs``)
    space_config: dict                      # space-specific settings recorded in the manifest
    spectral: dict                          # the manifest's spectral block for generated HSIs
    write_files: Callable[[Path], None] = lambda tmp: None   # extra files the model needs (decoder)


@dataclass
class Decoded:
    """Generated HSIs in the dataset's normalised units plus the maps that produced them."""

    hsi: np.ndarray                         # (n, B, H, W) float32
    wavelengths_nm: np.ndarray
    scale: float
    offset: float
    arrays: dict = field(default_factory=dict)   # e.g. {"abundances": (n, k, H, W)}
    metrics: dict = field(default_factory=dict)  # extra manifest metrics of the samples (e.g. class shares)


def get_space(name: str):
    if name not in SPACES:
        raise ConfigError(f"--space {name!r}: this hsigen supports {', '.join(SPACES)}")
    return importlib.import_module(SPACES[name])
