"""Diffusion spaces: each module turns its inputs into training tensors and model outputs
back into HSIs. ``train-diffusion --space NAME`` and ``sample`` dispatch through ``SPACES``.

A space module provides:
- ``PRESETS``: named model sizes (``tiny``, ``paper`` ...), resolved by ``stages/diffusion/stage.py``;
- for training, either ``prepare(inputs: dict, seed) -> SpaceData`` (training tensors in
  normalised units for the shared UNet trainer of ``stage.py``) or ``train(inputs, out, cfg,
  *, overwrite, resume, dry_run)`` when the space trains a different denoiser (``latent``);
- for sampling, ``Generator(model)``: the ``generator.Generator`` interface ``sample`` drives.

A model whose manifest names an ``architecture`` of ``ARCHITECTURES`` (e.g. an imported
HSIGene model, ``space: latent``) samples with that module's ``Generator`` instead.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ...common.errors import ConfigError

SPACES = {
    "abundance": "stages.diffusion.spaces.abundance",
    "latent": "stages.diffusion.spaces.latent",
    "joint": "stages.diffusion.spaces.joint",
}

ARCHITECTURES = {"hsigene": "stages.hsigene.generator"}


@dataclass
class SpaceData:
    """What a space hands to the generic trainer."""

    tensors: np.ndarray  # (N, C, H, W) float32, about [-1, 1]
    normalisation: dict  # how tensors were scaled (recorded in the manifest)
    inputs: list[Path]  # input artifacts (manifest ``inputs``)
    space_config: dict  # space-specific settings recorded in the manifest
    spectral: dict  # the manifest's spectral block for generated HSIs
    write_files: Callable[[Path], None] = lambda tmp: None  # extra files the model needs (decoder)
    # (N,) sampling probability of every tensor (a corpus with source weights); None: uniform
    sample_weights: np.ndarray | None = None


def get_space(name: str):
    if name not in SPACES:
        raise ConfigError(f"--space {name!r}: this hsigen supports {', '.join(SPACES)}")
    return importlib.import_module(SPACES[name])


def generator_module(config: dict):
    """The module whose ``Generator`` samples a diffusion-model of this manifest config."""
    architecture = config.get("architecture")
    if architecture is None:
        return get_space(config["space"])
    if architecture not in ARCHITECTURES:
        raise ConfigError(
            f"this diffusion-model's architecture {architecture!r} is not one this hsigen samples "
            f"({', '.join(ARCHITECTURES)}); sample it with the hsigen that made it"
        )
    return importlib.import_module(ARCHITECTURES[architecture])
