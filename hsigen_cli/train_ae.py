"""``hsigen train-ae``: train a spectral autoencoder, and encode/decode with it.

    hsigen train-ae runs/ip --kind kl --out runs/ae                      # HSIGene KL-VAE, tiny preset
    hsigen train-ae runs/ip --kind kl --preset paper --dry-run           # parameter counts only
    hsigen train-ae runs/ip --kind hsigene-kl --out runs/ae-hsigene      # the released HSIGene VAE layout, tiny widths
    hsigen train-ae runs/ip --kind hsigene-kl --preset paper --out runs/ae-hsigene-paper   # the released VAE's size
    hsigen train-ae runs/ip --kind two-stream --steps 400 --out runs/ae2 # SpecDM image + mask VAE
    hsigen train-ae runs/ip --kind two-stream --pairs runs/ip_t2 --out runs/ae_cd   # change pairs (t1, t2)
    hsigen train-ae runs/ip --kind kl --epochs 20 --out runs/ae20       # steps = ceil(20 · patches / batch)
    hsigen train-ae runs/ip --kind vq-rgb --library earthlib/spectra.sli \\
        --out runs/vq                                                   # HyperLDM conditional VQ
    hsigen train-ae runs/ip --kind kl --out runs/ae --checkpoint-every 100 --resume   # continue a killed run
    hsigen train-ae encode runs/ae runs/ip --out runs/latents.h5
    hsigen train-ae decode runs/ae runs/latents.h5 --out runs/decoded   # an hsi-samples artifact
    hsigen train-ae decode runs/ae runs/latents.h5 --format envi --out runs/decoded_envi
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .choices import AutoencoderKind, SampleFormat, Split, plain
from .choices import Preset as PresetChoice
from .groups import DefaultCommandGroup
from .options import (
    BatchSize,
    ChannelsLast,
    CheckpointEvery,
    Compile,
    Device,
    DryRun,
    LearningRate,
    Loader,
    ModelConfig,
    Out,
    Overwrite,
    Preset,
    Resume,
    Seed,
    Steps,
    Workers,
    model_config_args,
)

group = typer.Typer(
    cls=DefaultCommandGroup,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Train a spectral autoencoder (kl | vq-rgb | two-stream | hsigene-kl); encode/decode with it.",
)

Dataset = Annotated[Path, typer.Argument(help="An hsi-dataset artifact (from hsigen ingest).", show_default=False)]
Datasets = Annotated[
    list[Path],
    typer.Argument(
        help="One or more hsi-datasets (ingest / upsample run outputs) or corpus YAML files (sources with weights and "
        "label maps; docs/scale.md). All on one spectral grid.",
        show_default=False,
    ),
]
Autoencoder = Annotated[
    Path, typer.Argument(help="An autoencoder artifact (from hsigen train-ae).", show_default=False)
]


@group.command("run")
def train(
    dataset: Datasets,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out", "-o", help="Output autoencoder artifact directory (not needed with --dry-run).", show_default=False
        ),
    ] = None,
    kind: Annotated[
        AutoencoderKind,
        typer.Option(
            "--kind",
            help="kl (HSIGene's KL-VAE, diffusers) | vq-rgb (HyperLDM) | two-stream (SpecDM) | hsigene-kl (the "
            "released HSIGene VAE's own layout, from scratch; for train-diffusion --architecture hsigene).",
        ),
    ] = AutoencoderKind.kl,
    preset: Preset = PresetChoice.tiny,
    model_config: ModelConfig = None,
    steps: Steps = None,
    epochs: Annotated[
        Optional[int],
        typer.Option(
            "--epochs",
            help="Train for N passes over the training patches: steps = ceil(N · patches / batch size). "
            "Not with --steps.",
            show_default=False,
        ),
    ] = None,
    batch_size: BatchSize = None,
    lr: LearningRate = None,
    crop: Annotated[Optional[int], typer.Option("--crop", help="Random crop size (default: the preset's).")] = None,
    checkpoint_every: CheckpointEvery = 0,
    library: Annotated[
        Optional[Path],
        typer.Option(
            "--library", help="vq-rgb: spectral library (ENVI .sli with .hdr, or USGS .npz); default: bundled."
        ),
    ] = None,
    adversarial: Annotated[
        bool, typer.Option("--adversarial", help="vq-rgb: add the spatial + spectral discriminators (hyperldm eq. 6).")
    ] = False,
    pairs: Annotated[
        Optional[Path],
        typer.Option(
            "--pairs",
            help="two-stream: the co-registered second-date (t2) hsi-dataset of change pairs (specdm "
            "§3.3); its hsi_t2 when it holds pairs (ingest --pair), otherwise its hsi.",
        ),
    ] = None,
    loader: Loader = "auto",
    workers: Workers = 2,
    compile_model: Compile = False,
    channels_last: ChannelsLast = False,
    seed: Seed = 0,
    device: Device = "auto",
    resume: Resume = False,
    dry_run: DryRun = False,
    overwrite: Overwrite = False,
):
    """Train an autoencoder on the train split of DATASET(s); held-out metrics on the val split."""
    from stages import autoencoder as stage
    from stages.common.errors import ConfigError
    from stages.training import resolve_preset

    kind, preset = kind.value, preset.value
    if steps is not None and epochs is not None:
        raise ConfigError(
            "give either --steps or --epochs, not both (--epochs N trains "
            "ceil(N · training patches / batch size) steps)"
        )
    for name, value in (("--steps", steps), ("--epochs", epochs), ("--batch-size", batch_size), ("--crop", crop)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1")
    if checkpoint_every < 0:
        raise ConfigError("--checkpoint-every must be 0 or more")
    if workers < 0:
        raise ConfigError("--workers must be 0 or more")
    model = resolve_preset(
        stage.PRESETS[kind],
        preset,
        {"steps": steps, "batch_size": batch_size, "lr": lr, "crop": crop},
        **model_config_args(model_config),
    )
    cfg = stage.TrainAEConfig(
        kind=kind,
        preset=preset,
        model=model,
        seed=seed,
        checkpoint_every=checkpoint_every,
        library=str(library) if library is not None else None,
        adversarial=adversarial,
        pairs=str(pairs) if pairs is not None else None,
        epochs=epochs,
        loader=loader,
    )
    if dry_run:
        typer.echo(json.dumps(stage.describe(dataset, cfg), indent=2))
        return
    if out is None:
        raise ConfigError("--out DIR is required (where the autoencoder artifact is written)")
    from stages.training import Performance

    artifact = stage.run(
        dataset,
        out,
        cfg,
        device=device,
        resume=resume,
        overwrite=overwrite,
        workers=workers,
        performance=Performance(compile=compile_model, channels_last=channels_last),
    )
    typer.echo(str(artifact.path))


@group.command("encode")
def encode(
    autoencoder: Autoencoder,
    dataset: Dataset,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Latents file to write (HDF5, e.g. latents.h5).", show_default=False)
    ] = ...,
    split: Annotated[Optional[Split], typer.Option("--split", help="Only this split: train | val.")] = None,
    pairs: Annotated[
        Optional[Path],
        typer.Option(
            "--pairs", help="two-stream --pairs models: the second-date (t2) dataset (its hsi_t2 if it has one)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Patches per forward pass.")] = 16,
    device: Device = "auto",
    overwrite: Overwrite = False,
):
    """Encode DATASET's patches into latents with AUTOENCODER (deterministic: posterior means)."""
    from stages.autoencoder import codec

    path = codec.encode(
        autoencoder,
        dataset,
        out,
        split=plain(split),
        pairs=pairs,
        device=device,
        batch_size=batch_size,
        overwrite=overwrite,
    )
    typer.echo(str(path))


@group.command("decode")
def decode(
    autoencoder: Autoencoder,
    latents: Annotated[Path, typer.Argument(help="A latents file from train-ae encode.", show_default=False)],
    out: Out = ...,
    fmt: Annotated[
        SampleFormat, typer.Option("--format", help="Per-sample files: tif (GeoTIFF) | envi | mat.")
    ] = SampleFormat.tif,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Latents per forward pass.")] = 16,
    device: Device = "auto",
    overwrite: Overwrite = False,
):
    """Decode LATENTS with AUTOENCODER into an hsi-samples artifact (samples.h5, one file per
    sample in physical units, label GeoTIFFs for two-stream, previews)."""
    from stages.autoencoder import codec

    artifact = codec.decode(
        autoencoder, latents, out, device=device, batch_size=batch_size, overwrite=overwrite, fmt=fmt.value
    )
    typer.echo(str(artifact.path))


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="train-ae")
