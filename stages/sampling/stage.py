"""``sample``: a trained ``diffusion-model`` → an ``hsi-samples`` artifact.

Generic over spaces: the reverse diffusion runs in the model's space with a diffusers
scheduler, then the space module decodes tensors to HSIs (``stages/diffusion/spaces``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..artifacts import ArtifactWriter, input_record, spectral_block
from ..common import log
from ..common.errors import ConfigError
from ..common.runtime import resolve_device
from ..artifacts.samples import FORMATS, write_samples


@dataclass
class SampleConfig:
    n: int = 8
    sampler: str = "ddim"
    steps: int | None = None        # default: 50 for ddim, the training schedule's length for ddpm
    seed: int = 0
    batch_size: int = 8
    size: int | None = None         # default: the model's training sample size
    format: str = "tif"


def run(model_path: str | Path, out: str | Path, cfg: SampleConfig, *, device: str = "auto",
        overwrite: bool = False, conditions=None, guidance: float = 2.0):
    """``conditions``: a ``latent_sampling.ConditionRequest`` (latent models only)."""
    from ..diffusion import SAMPLERS, get_space, load_model
    from ..diffusion.sampling import denoise
    from ..diffusion.schedules import sampling_scheduler

    model = load_model(model_path)
    if model.space == "latent":
        from ..diffusion.latent_sampling import ConditionRequest, run_latent_sample

        return run_latent_sample(model, model_path, out, cfg, conditions or ConditionRequest(), guidance, device,
                                 overwrite)
    if conditions is not None and not conditions.empty():
        raise ConfigError(f"{model_path} is an {model.space}-space model: it takes no --cond/--conditions/"
                          "--content/--text (those steer `--space latent` models)")
    space = get_space(model.space)
    if cfg.sampler not in SAMPLERS:
        raise ConfigError(f"--sampler {cfg.sampler!r}: choose ddim or ddpm")
    if cfg.format not in FORMATS:
        raise ConfigError(f"--format {cfg.format!r}: choose tif, envi or mat")
    if cfg.n < 1 or cfg.batch_size < 1:
        raise ConfigError("-n and --batch-size must be at least 1")
    train_cfg = model.training_scheduler_config()
    total = int(train_cfg["num_train_timesteps"])
    cfg.steps = cfg.steps or (50 if cfg.sampler == "ddim" else total)
    if not 1 <= cfg.steps <= total:
        raise ConfigError(f"--steps {cfg.steps}: the model was trained with {total} diffusion steps; choose 1..{total}")
    # Latent spaces (joint) decode f× larger images: --size counts output pixels.
    pixel_factor = int(getattr(space, "pixel_factor", lambda m: 1)(model))
    cfg.size = cfg.size or model.sample_size * pixel_factor
    if cfg.size % (model.downsample_factor * pixel_factor):
        raise ConfigError(f"--size {cfg.size} must be a multiple of {model.downsample_factor * pixel_factor} "
                          "for this model")

    recorded = {**asdict(cfg), "space": model.space}
    recorded.pop("batch_size")  # batching does not change the samples
    writer = ArtifactWriter(Path(out), "hsi-samples", "sample", recorded, [input_record(model_path)], overwrite)
    if writer.up_to_date():
        log.info("sample: up to date")
        return writer.artifact
    writer.check_destination()

    dev = resolve_device(device)
    unet = model.load_unet(dev)
    scheduler = sampling_scheduler(cfg.sampler, train_cfg)
    shape = (model.channels, cfg.size // pixel_factor, cfg.size // pixel_factor)
    with log.progress(f"sample ({cfg.sampler}, {cfg.steps} steps)", cfg.n * cfg.steps) as bar:
        x0 = denoise(unet, scheduler, cfg.n, shape, cfg.steps, cfg.seed, cfg.batch_size, dev, progress=bar)
    decoded = space.decode(model, x0)
    with writer.building() as tmp:
        summary = write_samples(tmp, decoded.hsi, decoded.wavelengths_nm, decoded.scale, decoded.offset,
                                cfg.format, **decoded.arrays)
        writer.spectral = spectral_block(decoded.wavelengths_nm, decoded.scale, decoded.offset)
        writer.metrics = {**summary, **decoded.metrics}
    log.info(f"sample: {cfg.n} samples of {len(decoded.wavelengths_nm)} bands × {cfg.size}×{cfg.size} → {out}")
    return writer.artifact
