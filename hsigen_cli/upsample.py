"""``hsigen upsample``: RGB-guided hyperspectral super-resolution (hsigene §3.3) and the
super-resolution-based augmentation it feeds.

    hsigen upsample train-dsr runs/ip --scale 2 --preset tiny --out runs/dsr-x2      # RGB bands of a dataset
    hsigen upsample train-dsr photos/ runs/ip --scale 2 --ae-steps 400 --steps 800 --out runs/dsr-x2
    hsigen upsample train-dsr --scale 4 --preset paper --dry-run                      # parameter counts
    hsigen upsample train-dsr photos/ --scale 4 --autoencoder runs/dsr-x2 --out runs/dsr-x4   # reuse its AE
    hsigen upsample train-rgan runs/ip --scale 2 --preset tiny --out runs/rgan-x2
    hsigen upsample train-rgan runs/ip --scale 4 --preset paper --dry-run        # parameter counts
    hsigen upsample train-rgan runs/ip --scale 2 --rgb-zero --out runs/rgan-x2-zero   # Table 7 ablation
    hsigen upsample train-rgan runs/xiongan runs/chikusei --scale 2 --out runs/rgan-x2-both   # a corpus
    hsigen upsample train-rgan corpus.yaml --scale 4 --preset paper --out runs/rgan-x4      # weights: docs/scale.md
    hsigen upsample run runs/ip --rgan runs/rgan-x2 --size 64 --stride 32 --out runs/ip-x2
    hsigen upsample run runs/ip --dsr runs/dsr-x2 --rgan runs/rgan-x2 --steps 20 --seed 0 --out runs/ip-x2-dsr
    hsigen upsample run runs/ip --rgan runs/rgan-x2 --guide zero --size 64 --out runs/ip-x2-zero
    hsigen upsample run runs/ip --method bicubic --scale 2 --size 64 --out runs/ip-x2-bicubic
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .choices import Guide, Sampler, UpsampleMethod, plain
from .choices import Preset as PresetChoice
from .groups import DefaultCommandGroup
from .options import (
    BatchSize,
    CheckpointEvery,
    Device,
    DryRun,
    Json,
    LearningRate,
    ModelConfig,
    Out,
    Overwrite,
    Preset,
    Resume,
    Seed,
    Steps,
    model_config_args,
)
from .output import echo_dry_run

upsample_app = typer.Typer(
    cls=DefaultCommandGroup,
    no_args_is_help=True,
    help="Super-resolve hsi-datasets with RGAN (RGB-guided, optionally by DSRNet's HR "
    "RGB) or bicubic; `upsample train-dsr` / `train-rgan` train the networks.",
)

Scale = Annotated[Optional[int], typer.Option("--scale", help="Upscaling factor: 2 or 4.", show_default=False)]


@upsample_app.command("train-rgan")
def train_rgan(
    dataset: Annotated[
        list[Path],
        typer.Argument(
            help="hsi-datasets with a train/val split (ingest --val-fraction), and/or corpus YAML files: "
            "several train one RGAN, each in its own normalisation (same spectral grid and patch size; "
            "docs/scale.md).",
            metavar="DATASET",
        ),
    ],
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Output sr-model directory (not needed with --dry-run).", show_default=False),
    ] = None,
    scale: Scale = None,
    preset: Preset = PresetChoice.tiny,
    model_config: ModelConfig = None,
    steps: Steps = None,
    epochs: Annotated[
        Optional[int],
        typer.Option("--epochs", help="Epochs over the train split (used when --steps is not given; paper: 30)."),
    ] = None,
    batch_size: BatchSize = None,
    lr: LearningRate = None,
    rgb_zero: Annotated[
        bool, typer.Option("--rgb-zero", help="Train with zero RGB guidance (the ablation of hsigene Table 7).")
    ] = False,
    checkpoint_every: CheckpointEvery = 100,
    seed: Seed = 0,
    device: Device = "auto",
    dry_run: DryRun = False,
    as_json: Json = False,
    resume: Resume = False,
    overwrite: Overwrite = False,
):
    """Train RGAN (rectangular guided attention network) and write an sr-model artifact."""
    from stages.common.errors import ConfigError
    from stages.training import resolve_preset
    from stages.upsample import train_rgan as stage

    preset = preset.value
    if scale is None:
        raise ConfigError("--scale is required: 2 or 4")
    if out is None and not dry_run:
        raise ConfigError("--out DIR is required (only --dry-run runs without it)")
    net = resolve_preset(
        stage.PRESETS,
        preset,
        {"steps": steps, "epochs": epochs, "batch_size": batch_size, "lr": lr},
        **model_config_args(model_config),
    )
    if epochs is not None and steps is None:
        net["steps"] = None  # --epochs alone replaces the preset's step count
    cfg = stage.RganTrainConfig(
        scale=scale, preset=preset, net=net, rgb_zero=rgb_zero, seed=seed, checkpoint_every=checkpoint_every
    )
    given = dataset[0] if len(dataset) == 1 else list(dataset)
    result = stage.run(given, out, cfg, device=device, overwrite=overwrite, resume=resume, dry_run=dry_run)
    if dry_run:
        echo_dry_run(result, as_json)
    else:
        typer.echo(str(result.path))


@upsample_app.command("train-dsr")
def train_dsr(
    sources: Annotated[
        Optional[list[Path]],
        typer.Argument(
            help="HR RGB images (PNG/JPEG/GeoTIFF files or directories) and/or hsi-datasets (their RGB bands, "
            "one 2 % stretch per dataset; val-split patches are held out) and/or corpus YAML files of hsi-datasets.",
            show_default=False,
            metavar="IMAGES_OR_DATASET",
        ),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Output sr-model directory (not needed with --dry-run).", show_default=False),
    ] = None,
    scale: Scale = None,
    preset: Preset = PresetChoice.tiny,
    model_config: ModelConfig = None,
    steps: Steps = None,
    ae_steps: Annotated[
        Optional[int], typer.Option("--ae-steps", help="Steps of the RGB autoencoder phase (default: the preset's).")
    ] = None,
    autoencoder: Annotated[
        Optional[Path],
        typer.Option(
            "--autoencoder",
            help="Reuse the RGB autoencoder of this DSRNet sr-model (skips the autoencoder phase).",
            show_default=False,
        ),
    ] = None,
    batch_size: BatchSize = None,
    lr: LearningRate = None,
    crop: Annotated[
        Optional[int],
        typer.Option("--crop", help="HR training crop in pixels (default: the preset's; tiny 32, paper 256)."),
    ] = None,
    sample_steps: Annotated[
        Optional[int],
        typer.Option("--sample-steps", help="DDIM steps of the held-out evaluation and the default of `upsample run`."),
    ] = None,
    checkpoint_every: CheckpointEvery = 100,
    seed: Seed = 0,
    device: Device = "auto",
    dry_run: DryRun = False,
    as_json: Json = False,
    resume: Resume = False,
    overwrite: Overwrite = False,
):
    """Train DSRNet (diffusion RGB super-resolution, hsigene §3.3.2) and write an sr-model artifact."""
    from stages.common.errors import ConfigError
    from stages.training import resolve_preset
    from stages.upsample import train_dsr as stage

    preset = preset.value
    if scale is None:
        raise ConfigError("--scale is required: 2 or 4")
    net = resolve_preset(
        stage.PRESETS,
        preset,
        {"steps": steps, "batch_size": batch_size, "lr": lr, "crop": crop, "sample_steps": sample_steps},
        **model_config_args(model_config),
    )
    if ae_steps is not None:
        net["ae"]["steps"] = ae_steps
    if crop is not None:
        net["ae"]["crop"] = crop
    cfg = stage.DsrTrainConfig(
        scale=scale,
        preset=preset,
        net=net,
        seed=seed,
        checkpoint_every=checkpoint_every,
        autoencoder=None if autoencoder is None else str(autoencoder),
    )
    result = stage.run(
        list(sources or []), out, cfg, device=device, overwrite=overwrite, resume=resume, dry_run_only=dry_run
    )
    if dry_run:
        echo_dry_run(result, as_json)
    else:
        typer.echo(str(result.path))


@upsample_app.command("run")
def upsample_run(
    dataset: Annotated[Path, typer.Argument(help="The low-resolution hsi-dataset to super-resolve.")],
    out: Out = ...,
    method: Annotated[
        UpsampleMethod, typer.Option("--method", help="rgan | bicubic (the baseline).")
    ] = UpsampleMethod.rgan,
    rgan: Annotated[
        Optional[Path],
        typer.Option(
            "--rgan", help="sr-model from `upsample train-rgan` (needed for --method rgan).", show_default=False
        ),
    ] = None,
    scale: Scale = None,
    guide: Annotated[
        Optional[Guide],
        typer.Option(
            "--guide",
            help="HR RGB guidance for RGAN: bicubic (the scene's RGB bands upsampled) | zero | dsr "
            "(default: dsr with --dsr, else bicubic).",
            show_default=False,
        ),
    ] = None,
    dsr: Annotated[
        Optional[Path],
        typer.Option(
            "--dsr",
            help="DSRNet sr-model (`upsample train-dsr`) that makes the HR RGB guidance (hsigene Fig. 4).",
            show_default=False,
        ),
    ] = None,
    steps: Annotated[
        Optional[int], typer.Option("--steps", help="DSRNet sampling steps (default: the model's).", show_default=False)
    ] = None,
    sampler: Annotated[Sampler, typer.Option("--sampler", help="DSRNet sampler: ddim | dpm | ddpm.")] = Sampler.ddim,
    seed: Seed = 0,
    dsr_window: Annotated[
        Optional[int],
        typer.Option(
            "--dsr-window", help="LR pixels per DSRNet window core (default: the model's).", show_default=False
        ),
    ] = None,
    dsr_overlap: Annotated[
        Optional[int],
        typer.Option(
            "--dsr-overlap",
            help="LR pixels of context blended around each DSRNet window (default: the model's).",
            show_default=False,
        ),
    ] = None,
    size: Annotated[int, typer.Option("--size", help="Output patch size in HR pixels.")] = 256,
    stride: Annotated[int, typer.Option("--stride", help="Output patch stride in HR pixels.")] = 128,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Bottom share of HR rows held out as a validation split (0 = none).")
    ] = 0.0,
    max_nodata: Annotated[
        float, typer.Option("--max-nodata", help="Drop patches with more than this share of nodata pixels.")
    ] = 0.5,
    tile: Annotated[
        int, typer.Option("--tile", help="LR pixels per processing tile (memory bound; results do not depend on it).")
    ] = 128,
    device: Device = "auto",
    overwrite: Overwrite = False,
):
    """Super-resolve a whole scene tile by tile into a new hsi-dataset (cube.tif, patches.h5, preview.png)."""
    from stages.upsample import stage

    cfg = stage.UpsampleRunConfig(
        method=method.value,
        scale=scale,
        guide=plain(guide),
        size=size,
        stride=stride,
        val_fraction=val_fraction,
        max_nodata_fraction=max_nodata,
        tile=tile,
        dsr_steps=steps,
        sampler=sampler.value,
        seed=seed,
        dsr_window=dsr_window,
        dsr_overlap=dsr_overlap,
    )
    artifact = stage.run(dataset, out, cfg, rgan=rgan, dsr=dsr, device=device, overwrite=overwrite)
    typer.echo(str(artifact.path))


def register(app: typer.Typer) -> None:
    app.add_typer(upsample_app, name="upsample")
