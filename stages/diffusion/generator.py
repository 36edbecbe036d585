"""The one interface ``sample`` drives every generator through (abundance, latent, joint, and
architectures to come). A space module (``spaces/``) provides ``Generator(model)``; the
sampling stage then, for any of them:

1. ``prepare(request, n, size, guidance)`` reads and checks the conditions BEFORE anything is
   written (a model without conditions refuses a non-empty request);
2. ``load(device)`` loads the weights;
3. runs the one reverse-diffusion loop (``reverse.denoise``) from N(0, I) noise of
   ``noise_shape(size)``, calling ``predict(x, t, rows, conditions)`` once per step and batch;
4. ``decode(x0, rows, conditions)`` turns model-space tensors into HSIs (+ extra maps);
5. writes the hsi-samples files (``artifacts/samples.py``) and ``write_beside`` adds what the
   generator writes next to each sample (e.g. the condition maps it used);
6. ``summary(samples_h5, conditions)`` gives the manifest's generator-specific metrics.

Steps 3-5 run part by part (``artifacts.samples.PART_SAMPLES``), so memory does not grow
with the number of samples.

Schedulers and the sampler list are shared (``schedules.py``), so every sampler works for
every generator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..common.errors import ConfigError
from .model import DiffusionModel


@dataclass
class ConditionRequest:
    """What the user asked the samples to follow (checked against the model by ``prepare``)."""

    files: list[str] = field(default_factory=list)  # "hed.png" | "KIND=FILE"
    conditions: str | None = None  # a conditions artifact
    content: str | None = None  # an image for the content embedding
    text: str | None = None

    def empty(self) -> bool:
        return not self.files and self.conditions is None and self.content is None and self.text is None


@dataclass
class Conditions:
    """Checked conditions of samples 0..n-1, ready for the denoiser."""

    n: int
    inputs: list[Path] = field(default_factory=list)  # files/artifacts read (manifest inputs)
    recorded: dict = field(default_factory=dict)  # joins the manifest's config (what steered the samples)
    kinds: list[str] = field(default_factory=list)  # the condition kinds given (for the log line)
    guidance: float = 1.0  # classifier-free guidance scale (1 = none)
    # Timesteps [lo, hi] where the guidance applies; None: every step. Outside it the denoiser makes
    # one conditional pass (Kynkäänniemi et al., "Applying Guidance in a Limited Interval Improves
    # Sample and Distribution Quality in Diffusion Models", NeurIPS 2024, §3).
    guidance_interval: tuple[int, int] | None = None
    state: object = None  # the generator's own per-sample arrays

    def guidance_at(self, t) -> float:
        """The guidance scale of the reverse step at timestep ``t``: ``guidance`` inside the
        interval, 1 (no unconditional pass) outside it."""
        if self.guidance_interval is None:
            return self.guidance
        lo, hi = self.guidance_interval
        return self.guidance if lo <= int(t) <= hi else 1.0


@dataclass
class Decoded:
    """Generated HSIs in normalised units (physical = hsi · scale + offset) and the maps that
    produced them."""

    hsi: np.ndarray  # (n, B, H, W) float32
    wavelengths_nm: np.ndarray
    scale: float
    offset: float
    arrays: dict = field(default_factory=dict)  # extra samples.h5 datasets, e.g. {"abundances": (n, k, H, W)}
    metrics: dict = field(default_factory=dict)  # metrics of these samples (e.g. class shares)


class Generator(ABC):
    """Base of every generator; the defaults fit an unconditional diffusers ``UNet2DModel``
    in the model's own pixel grid (subclasses override what differs)."""

    pixel_factor = 1  # output pixels per model-space pixel (the AE's f for latent spaces)
    default_guidance = 2.0  # --guidance when not given (used by generators that take conditions)
    default_guidance_interval: tuple[int, int] | None = None  # --guidance-interval when not given
    precisions = ("fp32",)  # --precision values the generator runs in

    def __init__(self, model: DiffusionModel):
        self.model = model
        self.device = None

    # -- before anything is written -----------------------------------------------------------
    def prepare(self, request: ConditionRequest | None, n: int, size: int, guidance: float) -> Conditions:
        if request is not None and not request.empty():
            raise ConfigError(
                f"{self.model.artifact.path} is an {self.model.space}-space model: it takes no --cond/"
                "--conditions/--content/--text (those steer `--space latent` models)"
            )
        return Conditions(n)

    def set_precision(self, precision: str | None, device) -> None:
        """``--precision`` (None: fp32), checked before anything is written."""
        if precision not in (None, *self.precisions):
            raise ConfigError(
                f"--precision {precision}: this {self.model.space}-space model samples in "
                f"{', '.join(self.precisions)} only"
            )
        self.precision = precision or "fp32"

    def default_size(self) -> int:
        """Output pixels when ``--size`` is not given: the training size."""
        return self.model.sample_size * self.pixel_factor

    def size_multiple(self) -> int:
        """``--size`` must be a multiple of this (the UNet's downsampling times ``pixel_factor``)."""
        return self.model.downsample_factor * self.pixel_factor

    def scheduler_config(self) -> dict:
        """The noise schedule every sampler of ``schedules.SAMPLERS`` is built from."""
        return self.model.training_scheduler_config()

    def noise_shape(self, size: int) -> tuple[int, int, int]:
        side = size // self.pixel_factor
        return (self.model.channels, side, side)

    # -- generation ---------------------------------------------------------------------------
    def load(self, device, batch_size: int = 16) -> None:
        """Load the weights onto ``device``; ``batch_size`` bounds what one call holds."""
        self.device, self.batch_size = device, batch_size
        self.unet = self.model.load_unet(device)

    def predict(self, x, t, rows: slice, conditions: Conditions):
        return self.unet(x, t.to(self.device)).sample

    @abstractmethod
    def decode(self, x0: np.ndarray, rows: slice, conditions: Conditions) -> Decoded:
        """Model-space samples ``rows`` → HSIs in normalised units (+ the generator's extra maps)."""

    def write_beside(self, tmp: Path, decoded: Decoded, rows: slice, conditions: Conditions) -> None:  # noqa: B027  (optional hook)
        """Files written next to samples ``rows`` (``samples/sample_NNNN_*``); none by default."""

    def summary(self, samples_h5: Path, conditions: Conditions) -> tuple[dict, dict]:
        """(metrics, extra manifest fields) of the finished ``samples.h5``; read it in windows
        (it may hold more samples than memory). None by default."""
        return {}, {}
