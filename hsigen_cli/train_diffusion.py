"""``hsigen train-diffusion``: a DDPM in a chosen space (diffusers UNets; --space latent --architecture
hsigene: the released HSIGene model, fine-tuned or from scratch).

    hsigen train-diffusion --space abundance --unmixing runs/ip-unmix --out runs/ip-diff
    hsigen train-diffusion --space abundance --unmixing runs/ip-unmix --steps 2000 --resume --out runs/ip-diff
    hsigen train-diffusion --space abundance --abundances runs/photos-abund --out runs/fusion-diff   # MSF-Diff
    hsigen train-diffusion --space abundance --unmixing runs/ip-unmix --preset paper --dry-run
    hsigen train-diffusion --space latent --autoencoder runs/ip-ae --dataset runs/ip --out runs/ip-ldm   # ControlNet
    hsigen train-diffusion --space latent --autoencoder runs/ip-ae --dataset runs/ip --conditions runs/ip-cond \
        --condition-dropout 0.3 --grad-accum 4 --out runs/ip-ldm
    hsigen train-diffusion --space latent --autoencoder runs/ip-vq --dataset runs/ip --rgb-condition \
        --ssim-weight 0.1 --out runs/ip-hyperldm                                                  # HyperLDM
    torchrun --nproc_per_node 4 $(which hsigen) train-diffusion --space latent ... --out runs/ip-ldm   # DDP
    hsigen train-diffusion --space latent --architecture hsigene --init runs/hsigene --dataset runs/ip \
        --train adapters --steps 500 --out runs/hsigene-ip                                         # fine-tune HSIGene
    hsigen train-diffusion --space latent --architecture hsigene --init runs/hsigene --dataset runs/ip \
        --conditions runs/ip-cond --kinds hed,seg --condition-dropout 0.3 --out runs/hsigene-ip-cond  # paired maps
    hsigen train-ae runs/ip --kind hsigene-kl --out runs/ip-ae-hsigene                        # HSIGene from scratch:
    hsigen train-diffusion --space latent --architecture hsigene --autoencoder runs/ip-ae-hsigene \
        --dataset runs/ip --out runs/ip-hsigene                        # tiny widths; --preset paper = the release's
    hsigen train-diffusion --space latent --preset paper --dry-run                # = --architecture hsigene, 1.5 B
    hsigen train-diffusion --space latent --preset paper --architecture controlnet --dry-run   # SD 1.5 + ControlNet
    hsigen train-diffusion --space joint --autoencoder runs/ip-ae2 --dataset runs/ip --out runs/ip-specdm   # SpecDM
    hsigen train-diffusion --space joint --autoencoder runs/cd-ae2 --dataset runs/ip-change --out runs/cd-specdm
    hsigen train-diffusion --space joint --autoencoder runs/ip-ae2 --dataset runs/ip --preset paper --dry-run
    hsigen train-diffusion --space joint --autoencoder runs/corpus-ae2 --dataset runs/a --dataset runs/b \
        --out runs/corpus-specdm                     # several labelled sources (train-ae --kind two-stream A B)
    hsigen train-diffusion --space abundance --unmixing runs/corpus-unmix --out runs/corpus-hud   # unmix A B
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .choices import Architecture, Prediction, Space, TrainParts, plain
from .choices import Preset as PresetChoice
from .options import (
    BatchSize,
    ChannelsLast,
    CheckpointEvery,
    Compile,
    Device,
    DryRun,
    Json,
    LearningRate,
    Loader,
    ModelConfig,
    Overwrite,
    Preset,
    Resume,
    Seed,
    Steps,
    Workers,
    model_config_args,
)
from .output import echo_dry_run


def train_diffusion(
    space: Annotated[
        Space, typer.Option("--space", help="Diffusion space: abundance | latent | joint.")
    ] = Space.abundance,
    unmixing: Annotated[
        Optional[Path],
        typer.Option(
            "--unmixing", help="abundance: an unmixing artifact (endmembers for decoding, and the training maps)."
        ),
    ] = None,
    abundances: Annotated[
        Optional[Path],
        typer.Option(
            "--abundances", help="abundance: train on the maps of this `unmix infer` artifact (MSF-Diff fusion)."
        ),
    ] = None,
    autoencoder: Annotated[
        Optional[Path],
        typer.Option(
            "--autoencoder",
            help="latent: the autoencoder whose latents are learned (kl; vq-rgb with --rgb-condition; "
            "hsigene-kl for --architecture hsigene); joint: a two-stream autoencoder (SpecDM).",
        ),
    ] = None,
    dataset: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--dataset",
            help="latent / joint: the hsi-dataset to train on (joint: labelled, or a --pair dataset). "
            "Repeat it, or give a corpus YAML, to train on several sources (docs/scale.md; joint: not "
            "with --pairs).",
        ),
    ] = None,
    pairs: Annotated[
        Optional[Path],
        typer.Option("--pairs", help="joint: a second dataset holding the t2 images (when --dataset has no hsi_t2)."),
    ] = None,
    conditions: Annotated[
        Optional[Path],
        typer.Option(
            "--conditions",
            help="latent: a conditions artifact of --dataset (default: offline extraction on the fly; "
            "hsigene: none = empty slots).",
        ),
    ] = None,
    kinds: Annotated[
        Optional[str],
        typer.Option(
            "--kinds",
            help="latent: condition kinds to train with (default: hed,mlsd,sketch,seg,content, or all of "
            "--conditions; hsigene: those of --conditions with a released slot, hed,seg,sketch,mlsd).",
        ),
    ] = None,
    rgb_condition: Annotated[
        bool,
        typer.Option(
            "--rgb-condition", help="latent: HyperLDM mode (RGB features concatenated with the latent; T = 100)."
        ),
    ] = False,
    grad_accum: Annotated[
        Optional[int], typer.Option("--grad-accum", help="latent: micro-batches accumulated per optimiser step.")
    ] = None,
    condition_dropout: Annotated[
        Optional[float],
        typer.Option(
            "--condition-dropout",
            help="latent: probability of dropping each condition in training (preset: 0.3; hsigene: each "
            "slot of each sample, 0.3).",
        ),
    ] = None,
    ssim_weight: Annotated[
        Optional[float],
        typer.Option(
            "--ssim-weight", help="latent: λ3 of HyperLDM's SSIM loss (hyperldm eq. 24; paper-hyperldm: 0.1)."
        ),
    ] = None,
    architecture: Annotated[
        Optional[Architecture],
        typer.Option(
            "--architecture",
            help="latent: hsigene = the released HSIGene model (fine-tune an import with --init, or train it "
            "from scratch on a hsigene-kl --autoencoder; --preset paper's default) | controlnet = hsigen's "
            "diffusers UNet + ControlNet (--preset tiny's and paper-hyperldm's default; CPU-sized, HyperLDM's "
            "--rgb-condition).",
        ),
    ] = None,
    init: Annotated[
        Optional[Path],
        typer.Option(
            "--init",
            help="latent, hsigene: the imported model to fine-tune (`hsigen import hsigene`); without it, "
            "the --preset is trained from scratch.",
        ),
    ] = None,
    train: Annotated[
        Optional[TrainParts],
        typer.Option(
            "--train",
            help="hsigene --init: which parts learn: adapters (default) | unet | all (VAE and CLIP stay frozen; "
            "from scratch: all).",
        ),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out", "-o", help="Output diffusion-model directory (not needed with --dry-run).", show_default=False
        ),
    ] = None,
    preset: Preset = PresetChoice.tiny,
    model_config: ModelConfig = None,
    steps: Steps = None,
    batch_size: BatchSize = None,
    lr: LearningRate = None,
    prediction: Annotated[
        Optional[Prediction],
        typer.Option("--prediction", help="epsilon | v_prediction | sample (default: the preset's)."),
    ] = None,
    crop: Annotated[
        Optional[int],
        typer.Option("--crop", help="Random training crop size (default: the preset's, else the whole map)."),
    ] = None,
    ema_decay: Annotated[Optional[float], typer.Option("--ema-decay", help="EMA decay (default: preset's).")] = None,
    checkpoint_every: CheckpointEvery = 200,
    loader: Loader = "auto",
    workers: Workers = 2,
    compile_model: Compile = False,
    channels_last: ChannelsLast = False,
    seed: Seed = 0,
    device: Device = "auto",
    dry_run: DryRun = False,
    as_json: Json = False,
    resume: Resume = False,
    overwrite: Overwrite = False,
):
    """Train a diffusion model (HUD / MSF-Diff in the abundance space) into a diffusion-model artifact."""
    from stages import diffusion as stage
    from stages.common.errors import ConfigError

    space, preset, prediction = space.value, preset.value, plain(prediction)
    chosen = stage.resolve_architecture(space, preset, plain(architecture))
    if (init is not None or train is not None) and chosen != "hsigene":
        raise ConfigError(
            "--init and --train are for --architecture hsigene (fine-tuning an imported model): add "
            "--architecture hsigene" + ("" if space == "latent" else " --space latent")
        )
    if chosen == "hsigene":
        others = {
            "--unmixing": unmixing,
            "--abundances": abundances,
            "--pairs": pairs,
            "--model-config": model_config,
            "--rgb-condition": rgb_condition or None,
            "--grad-accum": grad_accum,
            "--ssim-weight": ssim_weight,
            "--prediction": prediction,
            "--crop": crop,
            "--ema-decay": ema_decay,
            "--loader": None if loader == "auto" else loader,
            "--workers": None if workers == 2 else workers,
            "--compile": compile_model or None,
            "--channels-last": channels_last or None,
        }
        given = [flag for flag, value in others.items() if value is not None]
        if given:
            raise ConfigError(
                f"{', '.join(given)}: not for --architecture hsigene (it trains the released HSIGene model: "
                "--init MODEL to fine-tune an import, or --autoencoder AE (kind hsigene-kl) from scratch, "
                "on --dataset DATASET)"
            )
        if dataset is not None and len(dataset) != 1:
            raise ConfigError("--architecture hsigene trains on one --dataset; give it once")
        result = stage.finetune_architecture(
            chosen,
            space,
            init,
            dataset[0] if dataset else None,
            out,
            train=plain(train),
            steps=steps,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            checkpoint_every=checkpoint_every,
            conditions=conditions,
            kinds=kinds,
            condition_dropout=condition_dropout,
            resume=resume,
            overwrite=overwrite,
            device=device,
            autoencoder=autoencoder,
            preset=preset,
            dry_run=dry_run,
        )
        if dry_run:
            echo_dry_run(result, as_json)
        else:
            typer.echo(str(result.path))
        return
    if out is None and not dry_run:
        raise ConfigError("--out is required: name the diffusion-model directory to write")
    if checkpoint_every < 0:
        raise ConfigError("--checkpoint-every must be >= 0")
    if workers < 0:
        raise ConfigError("--workers must be 0 or more")
    dataset = list(dataset) if dataset else None
    overrides = {
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "prediction_type": prediction,
        "crop": crop,
        "ema_decay": ema_decay,
    }
    latent_options = {
        "--autoencoder": autoencoder,
        "--dataset": dataset,
        "--conditions": conditions,
        "--kinds": kinds,
        "--rgb-condition": rgb_condition or None,
        "--grad-accum": grad_accum,
        "--condition-dropout": condition_dropout,
        "--ssim-weight": ssim_weight,
    }
    if space == "latent":
        if unmixing is not None or abundances is not None or crop is not None:
            raise ConfigError(
                "--unmixing, --abundances and --crop are for --space abundance; --space latent trains "
                "on --autoencoder AE --dataset DATASET"
            )
        overrides.update(
            {
                "grad_accum": grad_accum,
                "condition_dropout": condition_dropout,
                "ssim_weight": ssim_weight,
                "rgb_condition": True if rgb_condition else None,
            }
        )
    elif space == "joint":
        if unmixing is not None or abundances is not None:
            raise ConfigError(
                "--unmixing and --abundances are for --space abundance; --space joint trains on "
                "--autoencoder TWO_STREAM --dataset DATASET"
            )
        given = [
            flag
            for flag, value in latent_options.items()
            if value is not None and flag not in ("--autoencoder", "--dataset")
        ]
        if given:
            raise ConfigError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for --space latent")
    else:
        given = [flag for flag, value in latent_options.items() if value is not None]
        if given:
            raise ConfigError(
                f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for --space latent"
                + (
                    " (and --space joint); --space abundance trains on --unmixing U, which may hold several "
                    "datasets (`hsigen unmix A B ... --out U`)"
                    if "--dataset" in given
                    else ""
                )
            )
    if pairs is not None and space != "joint":
        raise ConfigError("--pairs is for --space joint (change-detection pairs)")
    if pairs is not None and dataset is not None and len(dataset) > 1:
        raise ConfigError(
            f"--pairs (change pairs) trains on one dataset; give one --dataset with --pairs, not {len(dataset)}"
        )
    model = stage.resolve(space, preset, overrides, **model_config_args(model_config))
    cfg = stage.DiffusionTrainConfig(
        space=space,
        preset=preset,
        model=model,
        seed=seed,
        device=device,
        checkpoint_every=checkpoint_every,
        loader=loader,
        workers=workers,
        compile=compile_model,
        channels_last=channels_last,
    )
    inputs = {
        "unmixing": unmixing,
        "abundances": abundances,
        "autoencoder": autoencoder,
        "dataset": dataset,
        "conditions": conditions,
        "kinds": kinds,
        "pairs": pairs,
    }
    result = stage.train(inputs, out, cfg, overwrite=overwrite, resume=resume, dry_run=dry_run)
    if dry_run:
        echo_dry_run(result, as_json)
    elif result is not None:  # None on DDP ranks other than 0, which write nothing
        typer.echo(str(result.path))


def register(app: typer.Typer) -> None:
    app.command("train-diffusion")(train_diffusion)
