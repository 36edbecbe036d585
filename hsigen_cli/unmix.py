"""``hsigen unmix``: endmembers and abundance maps of an hsi-dataset.

hsigen unmix runs/ip --out runs/ip-unmix                          # VCA + FCLS, k = 5
hsigen unmix runs/ip -k 8 --abundance lsq --out runs/ip-lsq        # pseudo-inverse (Shen et al., HUD (2025) eq. 3)
hsigen unmix runs/ip -k 12 --method min-volume --out runs/ip-mv    # simplex enclosing the pixels (SISAL-style)
hsigen unmix runs/xiongan runs/chikusei -k 6 --out runs/corpus-unmix    # one unmixing of several datasets
hsigen unmix corpus.yaml --out runs/corpus-unmix                   # a corpus YAML (docs/scale.md)
hsigen unmix runs/ip -k 3 --method manifold --out runs/ip-manifold  # for sample --spectral-manifold
hsigen unmix runs/ip -k 3 --method manifold --by-class --out runs/ip-manifold-cls  # labelled (joint) samples
hsigen unmix runs/ip --method scene-net --preset tiny --out runs/ip-net
hsigen unmix runs/ip --method scene-net --preset paper --dry-run   # parameter counts
hsigen unmix infer runs/ip-net photo1.png photo2.jpg --out runs/photos-abund
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from .choices import AbundanceSolver, UnmixMethod
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

unmix_app = typer.Typer(
    cls=DefaultCommandGroup,
    no_args_is_help=True,
    help="Unmix an hsi-dataset (VCA + FCLS/LSQ, or the MSF-Diff scene network); "
    "`unmix infer` applies a scene network to RGB images.",
)


@unmix_app.command("run")
def unmix_run(
    dataset: Annotated[
        List[Path],
        typer.Argument(
            help="An hsi-dataset artifact (from `hsigen ingest`); several, or a corpus YAML, give one unmixing "
            "of all of them (vca, min-volume: endmembers from every source's training pixels, docs/scale.md)."
        ),
    ],
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Output artifact directory (not needed with --dry-run).", show_default=False),
    ] = None,
    method: Annotated[
        UnmixMethod,
        typer.Option(
            "--method",
            help="vca | min-volume (the smallest simplex enclosing the pixels, from VCA's) | scene-net | "
            "manifold (a nonlinear per-pixel mixing model with -k dimensions, for sample --spectral-manifold).",
        ),
    ] = UnmixMethod.vca,
    endmembers: Annotated[
        int, typer.Option("--endmembers", "-k", help="Number of endmembers (manifold: its dimension).")
    ] = 5,
    abundance: Annotated[
        AbundanceSolver,
        typer.Option("--abundance", help="vca, min-volume: fcls (non-negative, sum-to-one) | lsq (pseudo-inverse)."),
    ] = AbundanceSolver.fcls,
    preset: Preset = PresetChoice.tiny,
    model_config: ModelConfig = None,
    steps: Steps = None,
    batch_size: BatchSize = None,
    lr: LearningRate = None,
    alpha: Annotated[float, typer.Option("--alpha", help="scene-net SAD loss weight (msf-diff eq. 4).")] = 0.1,
    beta: Annotated[float, typer.Option("--beta", help="scene-net endmember-TV loss weight.")] = 1e-3,
    by_class: Annotated[
        bool,
        typer.Option(
            "--by-class",
            help="manifold: one manifold per ground-truth class (for labelled samples: sample --spectral-manifold "
            "decodes each pixel by its generated label).",
        ),
    ] = False,
    checkpoint_every: CheckpointEvery = 100,
    seed: Seed = 0,
    device: Device = "auto",
    dry_run: DryRun = False,
    as_json: Json = False,
    resume: Resume = False,
    overwrite: Overwrite = False,
):
    """Extract endmembers and abundance maps into an unmixing artifact."""
    from stages import unmix as stage
    from stages.common.errors import ConfigError
    from stages.training import resolve_preset

    if out is None and not dry_run:
        raise ConfigError("--out is required: name the unmixing artifact directory to write")
    method, abundance, preset = method.value, abundance.value, preset.value
    cfg = stage.UnmixConfig(
        method=method,
        endmembers=endmembers,
        abundance=abundance,
        seed=seed,
        alpha=alpha,
        beta=beta,
        device=device,
        checkpoint_every=checkpoint_every,
    )
    if method == "scene-net":
        cfg.preset = preset
        cfg.scene_net = resolve_preset(
            stage.SCENE_NET_PRESETS,
            preset,
            {"steps": steps, "batch_size": batch_size, "lr": lr},
            **model_config_args(model_config),
        )
    elif method == "manifold":
        given = {"steps": steps, "batch_size": batch_size, "lr": lr}
        cfg.manifold = {k: v for k, v in given.items() if v is not None} | ({"by_class": True} if by_class else {})
    if by_class and method != "manifold":
        raise ConfigError("--by-class is for --method manifold (a manifold per class)")
    if method != "scene-net" and model_config is not None:
        raise ConfigError("--model-config is for --method scene-net (vca and min-volume have no model to configure)")
    result = stage.run(
        dataset[0] if len(dataset) == 1 else list(dataset),
        out,
        cfg,
        overwrite=overwrite,
        resume=resume,
        dry_run=dry_run,
    )
    if dry_run:
        echo_dry_run(result, as_json)
    else:
        typer.echo(str(result.path))


@unmix_app.command("infer")
def unmix_infer(
    unmixing: Annotated[Path, typer.Argument(help="An unmixing artifact made with --method scene-net.")],
    images: Annotated[List[Path], typer.Argument(help="RGB images: PNG, JPEG or GeoTIFF (bands R, G, B).")],
    out: Out = ...,
    size: Annotated[
        Optional[int],
        typer.Option("--size", help="Tile size of the abundance patches (default: the training patch size)."),
    ] = None,
    stride: Annotated[Optional[int], typer.Option("--stride", help="Tile stride (default: --size).")] = None,
    device: Device = "auto",
    overwrite: Overwrite = False,
):
    """Infer abundance maps of external RGB images (the MSF-Diff fusion path)."""
    from stages.unmix.scene_training import infer

    artifact = infer(unmixing, list(images), out, size=size, stride=stride, device=device, overwrite=overwrite)
    typer.echo(str(artifact.path))


def register(app: typer.Typer) -> None:
    app.add_typer(unmix_app, name="unmix")
