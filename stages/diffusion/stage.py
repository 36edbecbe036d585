"""``train-diffusion``: generic DDPM training of a diffusers UNet in any space.

The space module (``stages/diffusion/spaces``) turns inputs into tensors (or, like ``latent``,
brings its own trainer); everything else —
preset resolution, the noise schedule, the loss, EMA, checkpoints and ``--resume`` via the
shared Trainer, the ``diffusion-model`` artifact — is shared by all spaces.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, input_record
from ..common import log
from ..common.errors import ConfigError
from ..common.runtime import resolve_device, seed_everything
from .model import SCHEDULER_DIR, UNET_DIR, build_unet, warn_if_narrow
from .schedules import training_scheduler
from .spaces import get_space


@dataclass
class DiffusionTrainConfig:
    space: str
    preset: str
    model: dict = field(default_factory=dict)  # the resolved preset (unet, schedule, steps, lr ...)
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 200
    loader: str = "auto"  # latent: auto | memory | stream (stages/data)
    workers: int = 2  # DataLoader processes when streaming
    compile: bool = False  # torch.compile the training forward
    channels_last: bool = False

    def recorded(self) -> dict:
        """What the manifest records (where it ran, how often it saved and speed switches are left out)."""
        d = asdict(self)
        for key in ("device", "checkpoint_every", "workers", "compile", "channels_last"):
            d.pop(key)
        if self.space != "latent":
            d.pop("loader")
        return d

    def performance(self):
        from ..training import Performance

        return Performance(compile=self.compile, channels_last=self.channels_last)


CORPUS_SPACES = ("latent", "joint")  # spaces whose --dataset may name several sources (stages.data.corpus)


def single_dataset(dataset, space: str):
    """The one dataset of a space that trains on one (``--dataset`` may be repeated for latent
    and joint; the abundance space takes its sources from the unmixing artifact)."""
    if isinstance(dataset, (list, tuple)):
        dataset = dataset[0] if len(dataset) == 1 else (None if not dataset else list(dataset))
    if isinstance(dataset, list) or (dataset is not None and Path(dataset).suffix.lower() in (".yaml", ".yml")):
        raise ConfigError(
            f"--space {space} trains on one --dataset; several sources (a corpus) train train-ae, "
            "--space latent and --space joint (--space abundance: `hsigen unmix A B ...`, then --unmixing)"
        )
    return dataset


def resolve(
    space: str, preset: str, overrides: dict, model_config: dict | None = None, source: str = "--model-config"
) -> dict:
    from ..training import resolve_preset

    return resolve_preset(get_space(space).PRESETS, preset, overrides, model_config, source)


# ``train-diffusion --space latent --architecture NAME``: the latent space's two denoisers.
#   hsigene     the released HSIGene model (stages/hsigene): fine-tune an import (--init), or train one
#               from scratch (--autoencoder of kind hsigene-kl, stages/hsigene/scratch.py). --preset
#               paper means it, so hsigen's paper-scale training and the released weights are one model.
#   controlnet  hsigen's diffusers UNet + ControlNet (latent_training.py), --preset tiny's and
#               paper-hyperldm's: it trains in minutes on a 2-core CPU (tiny, ≈ 1.3 M parameters), the
#               shipped pretrained latent model (pretrained:indian-pines-latent) is one, and HyperLDM's
#               RGB mode (--rgb-condition, a vq-rgb autoencoder) exists only in it. --preset paper
#               --architecture controlnet keeps its SD-1.5-sized preset.
LATENT_ARCHITECTURES = ("hsigene", "controlnet")
FINETUNE_ARCHITECTURES = {"hsigene": ("latent", "stages.hsigene.finetune")}
PRESET_ARCHITECTURE = {"paper": "hsigene"}  # --space latent: the architecture a preset means; else controlnet


def resolve_architecture(space: str, preset: str, architecture: str | None = None) -> str | None:
    """The ``--architecture`` a run trains: the one given, else the one ``--preset`` means in
    ``--space latent`` (paper → hsigene, any other → controlnet); None in the other spaces."""
    if architecture is None:
        return PRESET_ARCHITECTURE.get(preset, "controlnet") if space == "latent" else None
    if architecture not in LATENT_ARCHITECTURES:
        raise ConfigError(f"--architecture {architecture!r}: choose one of {', '.join(LATENT_ARCHITECTURES)}")
    if space != "latent":
        raise ConfigError(f"--architecture {architecture} is a --space latent model: add --space latent")
    return architecture


def finetune_architecture(
    architecture: str,
    space: str,
    init,
    dataset,
    out,
    *,
    train: str = "adapters",
    steps: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    checkpoint_every: int = 200,
    conditions=None,
    kinds=None,
    condition_dropout: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    autoencoder=None,
    preset: str = "tiny",
    dry_run: bool = False,
):
    """``train-diffusion --architecture NAME``: with ``--init MODEL``, fine-tune an imported model
    (HSIGene: ``stages/hsigene/finetune.py``, on the shared Trainer); without, train the
    architecture's ``preset`` from scratch on ``autoencoder`` (``stages/hsigene/scratch.py``,
    the same loop with ``--train all``). ``conditions`` (a conditions artifact of ``dataset``)
    pairs each patch with its maps; ``dry_run`` (from scratch only) returns parameter counts."""
    import importlib

    if architecture not in FINETUNE_ARCHITECTURES:
        raise ConfigError(
            f"--architecture {architecture!r}: this hsigen fine-tunes {', '.join(FINETUNE_ARCHITECTURES)}"
        )
    wanted, module = FINETUNE_ARCHITECTURES[architecture]
    if space != wanted:
        raise ConfigError(f"--architecture {architecture} is a --space {wanted} model: add --space {wanted}")
    if checkpoint_every < 0:
        raise ConfigError("--checkpoint-every must be >= 0")
    finetune = importlib.import_module(module)
    if init is None:
        from ..hsigene import scratch

        if dry_run:
            return scratch.describe(preset, autoencoder)
        chosen = scratch.preset(preset)
        ft = finetune.FineTuneConfig(
            train=train or "all",
            steps=steps or chosen.steps,
            lr=lr or chosen.lr,
            batch_size=batch_size or chosen.batch_size,
            seed=seed,
            checkpoint_every=checkpoint_every,
            conditions=conditions,
            kinds=kinds,
            condition_dropout=condition_dropout,
        )
        if out is None:
            raise ConfigError("--out is required: name the diffusion-model directory to write")
        return scratch.train_from_scratch(
            autoencoder,
            dataset,
            Path(out),
            ft,
            preset_name=preset,
            resume=resume,
            overwrite=overwrite,
            device=device,
        )
    if autoencoder is not None:
        raise ConfigError(
            f"--autoencoder: not with --init (the VAE of --init {init} is frozen and kept); drop --init "
            f"to train --architecture {architecture} from scratch on --autoencoder"
        )
    if dry_run:
        raise ConfigError("--dry-run counts the parameters of a preset trained from scratch; drop --init")
    if dataset is None or out is None:
        raise ConfigError(
            f"--architecture {architecture} needs --init MODEL (from `hsigen import {architecture}`), "
            "--dataset DATASET and --out"
        )
    ft = finetune.FineTuneConfig(
        train=train or "adapters",
        steps=steps or 1000,
        lr=lr or 1e-5,
        batch_size=batch_size or 2,
        seed=seed,
        checkpoint_every=checkpoint_every,
        conditions=conditions,
        kinds=kinds,
        condition_dropout=condition_dropout,
    )
    return finetune.finetune(init, dataset, Path(out), ft, resume=resume, overwrite=overwrite, device=device)


def train(
    inputs: dict,
    out: Path | None,
    cfg: DiffusionTrainConfig,
    *,
    overwrite: bool = False,
    resume: bool = False,
    dry_run: bool = False,
):
    import torch

    from ..training import Trainer, TrainSpec, count_parameters

    space = get_space(cfg.space)
    if hasattr(space, "train"):  # a space with its own denoiser and trainer (latent: UNet + ControlNet)
        return space.train(inputs, out, cfg, overwrite=overwrite, resume=resume, dry_run=dry_run)
    if cfg.space not in CORPUS_SPACES:
        inputs = {**inputs, "dataset": single_dataset(inputs.get("dataset"), cfg.space)}
    model_cfg = cfg.model
    data = space.prepare(inputs, cfg.seed, model_cfg)
    n, channels, height, width = data.tensors.shape
    crop = int(model_cfg.get("crop") or min(height, width))
    if crop > min(height, width):
        raise ConfigError(f"--crop {crop} is larger than the {height}×{width} training maps")
    factor = 2 ** (len(model_cfg["unet"]["block_out_channels"]) - 1)
    if crop % factor:
        raise ConfigError(
            f"the {cfg.preset} UNet halves the size {len(model_cfg['unet']['block_out_channels']) - 1} "
            f"times: --crop (or the patch size {crop}) must be a multiple of {factor}"
        )
    if model_cfg["batch_size"] < 1 or model_cfg["steps"] < 1:
        raise ConfigError("--steps and --batch-size must be at least 1")
    seed_everything(cfg.seed)
    if dry_run:  # the parameter counts, for the CLI to print; on the meta device, no weights are made
        import torch

        with torch.device("meta"):
            unet = build_unet(model_cfg["unet"], channels, crop)
        return {
            "model": "diffusion UNet",
            "preset": cfg.preset,
            "space": cfg.space,
            "parameters": {"unet": count_parameters(unet), "total": count_parameters(unet)},
            "channels": channels,
            "sample_size": crop,
            "diffusion_steps": model_cfg["schedule"]["num_train_timesteps"],
            "prediction_type": model_cfg["prediction_type"],
            "training_steps": model_cfg["steps"],
        }
    warn_if_narrow(model_cfg["unet"], channels)
    unet = build_unet(model_cfg["unet"], channels, crop)
    if out is None:
        raise ConfigError("--out is required: name the diffusion-model directory to write")
    if n == 0:
        raise ConfigError("there are no training maps; check the unmixing artifact's split")

    recorded = {
        **cfg.recorded(),
        "sample_size": crop,
        "channels": channels,
        "normalisation": data.normalisation,
        **data.space_config,
    }
    records = [input_record(p) for p in data.inputs]
    writer = ArtifactWriter(out, "diffusion-model", "train-diffusion", recorded, records, overwrite)
    if writer.up_to_date():
        log.info("train-diffusion: up to date")
        return writer.artifact
    writer.check_destination()

    device = resolve_device(cfg.device)
    scheduler = training_scheduler(model_cfg["schedule"], model_cfg["prediction_type"])
    tensors = torch.from_numpy(np.ascontiguousarray(data.tensors)).to(device)
    from .loss import diffusion_loss_fn

    weights = None if data.sample_weights is None else torch.as_tensor(data.sample_weights, dtype=torch.float64)
    loss_fn = diffusion_loss_fn(tensors, scheduler, int(model_cfg["batch_size"]), crop, device, weights)
    spec = TrainSpec(
        steps=int(model_cfg["steps"]),
        lr=float(model_cfg["lr"]),
        seed=cfg.seed,
        warmup_steps=int(model_cfg.get("warmup_steps", 0)),
        ema_decay=model_cfg.get("ema_decay"),
        checkpoint_every=cfg.checkpoint_every,
    )
    fingerprint = {"config": recorded, "inputs": [r["sha256"] for r in records]}
    log.info(
        f"train-diffusion: {count_parameters(unet):,} parameters, {n} training maps "
        f"{channels}×{height}×{width}, crops {crop}, {spec.steps} steps on {device}"
    )
    trainer = Trainer(unet, spec, out, device, fingerprint, resume=resume, performance=cfg.performance())
    history = trainer.fit(loss_fn, "train-diffusion")
    unet.load_state_dict(trainer.final_state())

    with writer.building() as tmp:
        unet.save_pretrained(str(tmp / UNET_DIR), safe_serialization=True)
        scheduler.save_pretrained(str(tmp / SCHEDULER_DIR))
        data.write_files(tmp)
        writer.spectral = data.spectral
        writer.metrics = {"final_loss": history[-1]["loss"] if history else None, "parameters": count_parameters(unet)}
        writer.extra = {"history": history}
        if "corpus_normalisation" in data.space_config:  # several sources: every one, with its scale/offset
            writer.extra["normalisation"] = data.space_config["corpus_normalisation"]
    trainer.cleanup()
    return writer.artifact
