"""``hsigen evaluate``: compare generated HSIs with real data; train the pixel classifier the
diversity metrics need; check whether synthetic pixels help a downstream classifier.

    hsigen evaluate --real runs/ip --generated runs/samples --out runs/eval
    hsigen evaluate --real runs/ip --generated runs/samples --references all --metrics spr_srec,spatial,c2st --out runs/e4
    hsigen evaluate --real runs/ip --generated runs/a runs/b --classifier runs/clf --groups 10 --json --out runs/e2
    hsigen evaluate --real runs/xiongan --real runs/chikusei --generated runs/samples --out runs/e5   # union of both
    hsigen evaluate --real runs/ip --generated runs/samples --inception-weights pt_inception-2015-12-05-6726825d.pth \\
        --metrics fid_rgb --rgb-max-images 5000 --out runs/e3
    hsigen evaluate train-classifier runs/ip --preset tiny --out runs/clf
    hsigen evaluate train-classifier runs/xiongan runs/chikusei --out runs/clf2   # or a corpus YAML
    hsigen evaluate downstream --real runs/ip --synthetic runs/samples --seeds 0,1,2 --out runs/down
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from typer.core import TyperGroup

from .choices import Preset as PresetChoice
from .choices import References, Split, plain
from .downstream import downstream as downstream_command
from .options import (
    BatchSize,
    CheckpointEvery,
    Device,
    DryRun,
    Json,
    LearningRate,
    Out,
    Overwrite,
    Preset,
    Resume,
    Seed,
    Steps,
)


class _ListOptionGroup(TyperGroup):
    """Lets ``--generated a b c`` (and ``--synthetic a b``) mean ``--generated a --generated b ...``:
    the values after such a flag run up to the next option or subcommand name."""

    list_options = ("--generated", "--synthetic")

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_list_options(args, self.list_options, set(self.commands)))


def expand_list_options(args: list[str], flags, stop_words=()) -> list[str]:
    out, current = [], None
    for arg in args:
        if arg in flags:
            current = arg
            continue
        if current is not None and not arg.startswith("-") and arg not in stop_words:
            out += [current, arg]
            continue
        current = None
        out.append(arg)
    return out


group = typer.Typer(
    cls=_ListOptionGroup,
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    help="Evaluate generated HSIs against real data (run without a subcommand), or train-classifier / downstream.",
)


def _csv(value: Optional[str]) -> Optional[list[str]]:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@group.callback()
def evaluate(
    ctx: typer.Context,
    real: Annotated[
        Optional[List[Path]],
        typer.Option(
            "--real",
            help="Real hsi-dataset; repeat it (--real A --real B) to compare against the union of several "
            "(same spectral grid and patch size; each in physical units by its own scale/offset).",
            show_default=False,
        ),
    ] = None,
    generated: Annotated[
        Optional[List[Path]],
        typer.Option(
            "--generated",
            help="hsi-samples or hsi-dataset artifacts to compare (several: list them after one flag).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Output evaluation-report directory.", show_default=False)
    ] = None,
    metrics: Annotated[
        Optional[str],
        typer.Option(
            "--metrics",
            help="Comma list of spr_srec, prdc, fp, db, sd, sdm, fid, kid, is, fid_rgb, paired, msad, "
            "spatial, conditions, patch_fd, c2st (default: all that the inputs allow, except the optional c2st).",
        ),
    ] = None,
    references: Annotated[
        References,
        typer.Option(
            "--references",
            help="Reference rows built from --real: none; auto = real-heldout, shuffled-pixels, "
            "gaussian-pixels and, for latent/joint samples, autoencoder-reconstruction; all = auto "
            "plus blurred and noisy copies of the held-out images.",
        ),
    ] = References.auto,
    c2st_folds: Annotated[int, typer.Option("--c2st-folds", help="C2ST: seeded stratified folds.")] = 3,
    c2st_steps: Annotated[int, typer.Option("--c2st-steps", help="C2ST: training steps per fold.")] = 300,
    k: Annotated[int, typer.Option("--k", help="sPr/sRec neighbourhood size (hsigene: 10).")] = 10,
    groups: Annotated[
        Optional[int],
        typer.Option("--groups", help="sPr/sRec over G random groups, averaged (the paper's variant); default exact."),
    ] = None,
    block: Annotated[int, typer.Option("--block", help="D_b block size in pixels.")] = 8,
    block_stride: Annotated[
        Optional[int], typer.Option("--block-stride", help="Stride of the real blocks for D_b (default block/2).")
    ] = None,
    db_max_blocks: Annotated[
        int,
        typer.Option(
            "--db-max-blocks", help="D_b: seeded subset of at most this many generated blocks (unbiased mean)."
        ),
    ] = 2000,
    db_max_real_blocks: Annotated[
        int, typer.Option("--db-max-real-blocks", help="D_b: seeded subset of at most this many real blocks searched.")
    ] = 20_000,
    max_spectra: Annotated[
        int, typer.Option("--max-spectra", help="Random subset of at most this many unique spectra per set.")
    ] = 100_000,
    classifier: Annotated[
        Optional[Path], typer.Option("--classifier", help="classifier artifact (for SD, SDM, spectral FID/KID/IS).")
    ] = None,
    reference: Annotated[
        Optional[Path],
        typer.Option(
            "--reference",
            help="Ground truth paired one-to-one with --generated (for MPSNR, MSSIM, SAM, ERGAS, RMSE, MRAE).",
        ),
    ] = None,
    real_split: Annotated[
        Optional[Split],
        typer.Option(
            "--real-split",
            help="Score against this split of --real (train | val; default train when it has a split); "
            "the other split is the real-heldout reference.",
        ),
    ] = None,
    ergas_ratio: Annotated[float, typer.Option("--ergas-ratio", help="ERGAS resolution ratio.")] = 1.0,
    kid_subsets: Annotated[int, typer.Option("--kid-subsets", help="KID: number of random subsets.")] = 100,
    kid_subset_size: Annotated[int, typer.Option("--kid-subset-size", help="KID: spectra per subset.")] = 1000,
    inception_weights: Annotated[
        Optional[Path],
        typer.Option(
            "--inception-weights",
            help="FID Inception-v3 weights (pt_inception-2015-12-05-6726825d.pth, or that state "
            "dict as .safetensors): adds the classic RGB FID on false-colour composites.",
            show_default=False,
        ),
    ] = None,
    rgb_max_images: Annotated[
        Optional[int],
        typer.Option(
            "--rgb-max-images",
            help="RGB FID: seeded random subset of at most this many images per set (default: all).",
            show_default=False,
        ),
    ] = None,
    rgb_batch_size: Annotated[int, typer.Option("--rgb-batch-size", help="RGB FID: images per Inception pass.")] = 16,
    device: Device = "auto",
    seed: Seed = 0,
    as_json: Json = False,
    overwrite: Overwrite = False,
):
    """Compare generated HSIs with a real dataset in physical units; writes report.json, report.md and figures."""
    if ctx.invoked_subcommand is not None:
        return
    from stages.common.errors import ConfigError
    from stages.evaluate import EvaluateConfig
    from stages.evaluate.report import run

    if not real or not generated or out is None:
        raise ConfigError(
            "hsigen evaluate needs --real DATASET, --generated SAMPLES... and --out DIR "
            "(or a subcommand: train-classifier, downstream)"
        )
    cfg = EvaluateConfig(
        metrics=_csv(metrics),
        k=k,
        groups=groups,
        block=block,
        block_stride=block_stride,
        db_max_blocks=db_max_blocks,
        db_max_real_blocks=db_max_real_blocks,
        max_spectra=max_spectra,
        seed=seed,
        kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size,
        ergas_ratio=ergas_ratio,
        classifier=str(classifier) if classifier else None,
        reference=str(reference) if reference else None,
        real_split=plain(real_split),
        inception_weights=str(inception_weights) if inception_weights else None,
        rgb_max_images=rgb_max_images,
        rgb_batch_size=rgb_batch_size,
        device=device,
        references=plain(references),
        c2st_folds=c2st_folds,
        c2st_steps=c2st_steps,
    )
    artifact, report = run(real[0] if len(real) == 1 else list(real), list(generated), out, cfg, overwrite=overwrite)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(str(artifact.path / "report.md"))


@group.command("train-classifier")
def train_classifier(
    dataset: Annotated[
        List[Path],
        typer.Argument(
            help="Labelled hsi-dataset (e.g. Indian Pines with ground truth); several, or a corpus YAML, train one "
            "classifier on the union of their labelled pixels (same spectral grid; each in physical units by its "
            "own scale/offset; label values of different datasets are different classes unless a YAML "
            "'labels:' map names a shared class)."
        ),
    ],
    out: Out = ...,
    labels: Annotated[
        Optional[Path],
        typer.Option(
            "--labels", help="Scene label map (mat/tif/npy/.GIS) when the dataset was ingested without labels."
        ),
    ] = None,
    preset: Preset = PresetChoice.tiny,
    steps: Steps = None,
    batch_size: BatchSize = None,
    lr: LearningRate = None,
    checkpoint_every: CheckpointEvery = 0,
    seed: Seed = 0,
    device: Device = "auto",
    dry_run: DryRun = False,
    resume: Resume = False,
    as_json: Json = False,
    overwrite: Overwrite = False,
):
    """Train the 4 × Conv1d + FC spectral classifier (Liu et al., HyperLDM, IEEE TGRS 61 (2023)
    §III-E) on labelled pixels of one dataset or of several (a corpus)."""
    from stages.evaluate import TrainClassifierConfig
    from stages.evaluate import train as stage

    cfg = TrainClassifierConfig(
        preset=preset.value,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        checkpoint_every=checkpoint_every,
        labels_file=str(labels) if labels else None,
    )
    given = dataset[0] if len(dataset) == 1 else list(dataset)
    if dry_run:
        info = stage.dry_run(given, cfg)
        typer.echo(
            json.dumps(info, indent=2)
            if as_json
            else f"classifier ({info['preset']}): {info['parameters']:,} parameters, {info['bands']} bands, "
            f"{info['classes']} classes, channels {info['channels']}, {info['steps']} steps"
        )
        return
    artifact = stage.run(given, out, cfg, overwrite=overwrite, resume=resume)
    typer.echo(json.dumps(artifact.metrics, indent=2) if as_json else str(artifact.path))


group.command("downstream")(downstream_command)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="evaluate")
