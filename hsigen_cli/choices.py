"""Every fixed set of string choices on the command line, as Enums.

Typer turns an Enum-typed option into a Click choice, so a bad value is a usage error
(exit 2) that lists the choices, before any work starts. Commands pass ``.value`` (plain
strings) on to ``stages``. ``tests/core/test_cli_choices.py`` checks that each list matches
the one the stage accepts.
"""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A string choice: ``str(choice)`` is its value, so messages and manifests read plainly."""

    def __str__(self) -> str:
        return self.value


def plain(choice: Choice | None) -> str | None:
    """The plain string of an optional choice."""
    return None if choice is None else choice.value


class Sampler(Choice):
    ddim = "ddim"
    ddpm = "ddpm"
    dpm = "dpm"


class SampleFormat(Choice):
    tif = "tif"
    envi = "envi"
    mat = "mat"


class AutoencoderKind(Choice):
    kl = "kl"
    vq_rgb = "vq-rgb"
    two_stream = "two-stream"
    hsigene_kl = "hsigene-kl"


class Space(Choice):
    abundance = "abundance"
    latent = "latent"
    joint = "joint"


class Prediction(Choice):
    epsilon = "epsilon"
    v_prediction = "v_prediction"
    sample = "sample"


class Preset(Choice):
    """The union of every stage's preset names; a name a stage lacks is refused there (exit 1)."""

    tiny = "tiny"
    paper = "paper"
    paper_hud = "paper-hud"
    paper_hyperldm = "paper-hyperldm"


class Extrapolate(Choice):
    error = "error"
    edge = "edge"


class Example(Choice):
    indian_pines = "indian-pines"


class UnmixMethod(Choice):
    vca = "vca"
    min_volume = "min-volume"
    scene_net = "scene-net"
    manifold = "manifold"


class AbundanceSolver(Choice):
    fcls = "fcls"
    lsq = "lsq"


class Split(Choice):
    train = "train"
    val = "val"


class UpsampleMethod(Choice):
    rgan = "rgan"
    bicubic = "bicubic"


class Guide(Choice):
    bicubic = "bicubic"
    zero = "zero"
    dsr = "dsr"


class Precision(Choice):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Architecture(Choice):
    """``train-diffusion --space latent --architecture``: stages.diffusion.stage.LATENT_ARCHITECTURES."""

    hsigene = "hsigene"
    controlnet = "controlnet"


class TrainParts(Choice):
    adapters = "adapters"
    unet = "unet"
    all = "all"


class References(Choice):
    """``evaluate --references``: stages.evaluate.references.References."""

    none = "none"
    auto = "auto"
    all = "all"
