"""Generation in memory, for any generator: open a model's generator, check the sampling
options against it, and run the one reverse loop plus decoding over a range of samples.
``stage.py`` writes what this makes; tests and benchmarks call ``generate`` directly."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..artifacts.samples import FORMATS
from ..common import log
from ..common.errors import ConfigError
from ..diffusion.generator import Conditions, Decoded, Generator


@dataclass
class SampleConfig:
    n: int = 8
    sampler: str = "ddim"
    steps: int | None = None  # default: 50 for ddim/dpm, the training schedule's length for ddpm
    seed: int = 0
    batch_size: int = 8
    size: int | None = None  # default: the model's training sample size (output pixels)
    format: str = "tif"


def open_generator(model) -> Generator:
    """The generator of a loaded ``diffusion-model`` (its space's ``Generator``)."""
    from ..diffusion.spaces import generator_module

    return generator_module(model.config).Generator(model)


def resolve_options(model, generator: Generator, cfg: SampleConfig) -> SampleConfig:
    """``cfg`` checked against the model, with ``steps`` and ``size`` filled in."""
    from ..diffusion.schedules import SAMPLERS, default_steps

    if cfg.sampler not in SAMPLERS:
        raise ConfigError(f"--sampler {cfg.sampler!r}: choose one of {', '.join(SAMPLERS)}")
    if cfg.format not in FORMATS:
        raise ConfigError(f"--format {cfg.format!r}: choose tif, envi or mat")
    if cfg.n < 1 or cfg.batch_size < 1:
        raise ConfigError("-n and --batch-size must be at least 1")
    total = int(model.training_scheduler_config()["num_train_timesteps"])
    steps = cfg.steps or default_steps(cfg.sampler, total)
    if not 1 <= steps <= total:
        raise ConfigError(f"--steps {steps}: the model was trained with {total} diffusion steps; choose 1..{total}")
    factor = generator.pixel_factor
    size = cfg.size or generator.default_size()
    multiple = generator.size_multiple()
    if size % multiple:
        raise ConfigError(
            f"--size {size} must be a multiple of {multiple} for this model"
            + (f" (AE f = {factor})" if factor > 1 else "")
        )
    return replace(cfg, steps=steps, size=size)


def parse_guidance_interval(text: str | None) -> tuple[int, int] | None:
    """``--guidance-interval LO:HI`` → (lo, hi) timesteps; ``all`` → every step; None → None (the
    generator's default)."""
    if text is None:
        return None
    if text.strip().lower() == "all":
        return (0, 10**9)
    lo, sep, hi = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return (int(lo), int(hi))
    except ValueError:
        raise ConfigError(
            f"--guidance-interval {text!r}: give LO:HI timesteps (e.g. 300:999, guidance only at high noise) "
            "or 'all' (every step)"
        ) from None


def prepare_conditions(model, generator: Generator, request, n: int, size: int, guidance, interval) -> Conditions:
    """``generator.prepare`` (every input read and checked before anything is written) with the
    guidance scale and interval filled in: None takes the generator's default."""
    conditions = generator.prepare(request, n, size, generator.default_guidance if guidance is None else guidance)
    set_guidance_interval(model, generator, conditions, interval)
    return conditions


def set_guidance_interval(model, generator: Generator, conditions: Conditions, interval) -> None:
    """Sets ``conditions.guidance_interval`` to ``interval`` ((lo, hi) timesteps, ``LO:HI`` text; None:
    the generator's default), checked against the model's schedule and recorded with the guidance."""
    if isinstance(interval, str):
        interval = parse_guidance_interval(interval)
    if interval is None:
        interval = generator.default_guidance_interval
    if interval is not None:
        lo, hi = (int(v) for v in interval)
        total = int(model.training_scheduler_config()["num_train_timesteps"])
        if not 0 <= lo <= hi:
            raise ConfigError(
                f"--guidance-interval {lo}:{hi}: give LO:HI with 0 <= LO <= HI (timesteps 0..{total - 1})"
            )
        interval = (lo, min(hi, total - 1))
    conditions.guidance_interval = interval
    if "guidance" in conditions.recorded:  # only generators that guide record it
        conditions.recorded["guidance_interval"] = list(interval) if interval is not None else None


def generate_rows(
    generator: Generator,
    scheduler,
    conditions: Conditions,
    rows: range,
    cfg: SampleConfig,
    progress=None,
    manifold=None,
) -> tuple[np.ndarray, Decoded]:
    """Samples ``rows`` (global sample numbers, so each keeps its own noise): model-space
    tensors and their decoding. ``generator`` must be loaded; ``manifold`` (a
    ``unmix.manifold.SpectralManifold``): every decoded pixel projected onto it."""
    from ..diffusion.reverse import denoise

    x0 = denoise(
        lambda x, t, batch: generator.predict(x, t, batch, conditions),
        scheduler,
        rows,
        generator.noise_shape(cfg.size),
        cfg.steps,
        cfg.seed,
        cfg.batch_size,
        generator.device,
        progress,
    )
    decoded = generator.decode(x0, slice(rows.start, rows.stop), conditions)
    if manifold is not None:  # a by-class manifold decodes each pixel by its generated label
        labels = decoded.arrays.get("labels") if manifold.classes is not None else None
        project = lambda images: manifold.project_normalised(  # noqa: E731
            images, decoded.scale, decoded.offset, labels, as_unlabelled=True
        )
        decoded.hsi = project(decoded.hsi)
        if "hsi_t2" in decoded.arrays:  # the second date of a change triplet: the same label map
            decoded.arrays["hsi_t2"] = project(decoded.arrays["hsi_t2"])
    return x0, decoded


def generate(
    model,
    request,
    n: int,
    size: int | None,
    sampler: str,
    steps: int | None,
    seed: int,
    batch_size: int,
    guidance: float | None,
    device,
    conditions: Conditions | None = None,
    precision: str | None = None,
    guidance_interval: str | tuple[int, int] | None = None,
    manifold=None,
):
    """(hsi (n, B, size, size) normalised, model-space x0, conditions): the whole generator in
    memory. ``conditions`` (from ``generator.prepare``) replaces ``request`` when given;
    ``guidance`` / ``guidance_interval`` None: the generator's defaults; ``manifold``: a
    ``SpectralManifold`` every decoded pixel is projected onto (``sample --spectral-manifold``)."""
    from ..common.runtime import resolve_device
    from ..diffusion.schedules import sampling_scheduler

    generator = open_generator(model)
    cfg = resolve_options(
        model, generator, SampleConfig(n=n, sampler=sampler, steps=steps, seed=seed, batch_size=batch_size, size=size)
    )
    device = resolve_device(device) if isinstance(device, str) else device
    generator.set_precision(precision, device)
    if conditions is None:
        conditions = prepare_conditions(model, generator, request, n, cfg.size, guidance, guidance_interval)
    else:
        set_guidance_interval(model, generator, conditions, guidance_interval)
    generator.load(device, cfg.batch_size)
    scheduler = sampling_scheduler(cfg.sampler, generator.scheduler_config())
    with log.progress(f"sample ({cfg.sampler}, {cfg.steps} steps)", n * cfg.steps) as bar:
        x0, decoded = generate_rows(generator, scheduler, conditions, range(n), cfg, bar, manifold)
    return decoded.hsi, x0, conditions
