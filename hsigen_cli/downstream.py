"""``hsigen evaluate downstream --task ...``: does synthetic data help the user's own task?

    hsigen evaluate downstream --task denoise --real runs/ip --synthetic runs/samples --out runs/down-dn
    hsigen evaluate downstream --task sr --scale 4 --real runs/ip --synthetic runs/s1 runs/s2 --test runs/other --out D
    hsigen evaluate downstream --task segment --real runs/ip --synthetic runs/ip-labelled --out runs/down-seg
    hsigen evaluate downstream --task segment --backbone models/segformer-b0 --real runs/ip --synthetic S --out D
    hsigen evaluate downstream --real runs/ip --synthetic runs/ip-labelled --out runs/down   # pixel-classify
    hsigen evaluate downstream --task scene-classify --scene-labels scenes.csv --real runs/sc --synthetic S --out D
    hsigen evaluate downstream --task denoise --real runs/xiongan --real runs/chikusei --synthetic S --out D   # union

Registered on the ``evaluate`` group by ``hsigen_cli/evaluate.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from stages.downstream.protocol import Task

from .choices import Preset as PresetChoice
from .options import BatchSize, Device, Json, LearningRate, Out, Overwrite, Preset, Steps


def downstream(
    real: Annotated[
        List[Path],
        typer.Option(
            "--real",
            help="Real hsi-dataset with a train/val split (ingest --val-fraction); repeat it (--real A --real B), "
            "or give a corpus YAML, to train on the union of the sources' train rows and test on the union of "
            "their val rows (same spectral grid and patch size; each in physical units by its own scale/offset; "
            "label values of different datasets are different classes unless a YAML 'labels:' map names a "
            "shared class). --task change and --scene-labels take one.",
            show_default=False,
        ),
    ],
    synthetic: Annotated[
        List[Path],
        typer.Option(
            "--synthetic",
            help="hsi-samples (or hsi-dataset) artifacts to add; labelled ones for pixel-classify, segment, "
            "change, scene-classify (several: list them after one flag).",
            show_default=False,
        ),
    ],
    out: Out = ...,
    task: Annotated[
        Task,
        typer.Option(
            "--task",
            help="denoise (HSIGene Tab. 8), sr (Tab. 9), pixel-classify (HyperLDM Tab. VI), segment "
            "(SpecDM Tab. 3a), change (SpecDM Tab. 3b), scene-classify (MSF-Diff Tab. 7).",
        ),
    ] = Task.pixel_classify,
    test: Annotated[
        Optional[Path],
        typer.Option(
            "--test",
            help="A second hsi-dataset, never trained on, scored as well (all its patches).",
            show_default=False,
        ),
    ] = None,
    seeds: Annotated[str, typer.Option("--seeds", help="Comma list of seeds (at least 3).")] = "0,1,2",
    synthetic_ratio: Annotated[
        Optional[float],
        typer.Option(
            "--synthetic-ratio",
            help="At most this many synthetic patches per real training patch (pixel-classify: "
            "pixels per real pixel of each class). Default: 1 (pixel-classify 5).",
            show_default=False,
        ),
    ] = None,
    steps: Steps = None,
    batch_size: BatchSize = None,
    lr: LearningRate = None,
    crop: Annotated[
        Optional[int],
        typer.Option(
            "--crop",
            help="Training crop in pixels (default 16; scene-classify: 8, the scene size).",
            show_default=False,
        ),
    ] = None,
    scale: Annotated[int, typer.Option("--scale", help="sr: downsampling factor, 4 or 2.")] = 4,
    noise_sigma: Annotated[
        float, typer.Option("--noise-sigma", help="denoise: Gaussian noise σ in normalised units.")
    ] = 0.2,
    labels: Annotated[
        Optional[Path], typer.Option("--labels", help="pixel-classify: scene label map for --real.")
    ] = None,
    scene_labels: Annotated[
        Optional[Path],
        typer.Option(
            "--scene-labels",
            help="scene-classify: one class per patch of --real (.npy, or .csv/.txt one integer per line, dataset "
            "row order, 0 = none); each patch is then one scene (--crop defaults to the patch size).",
            show_default=False,
        ),
    ] = None,
    per_class: Annotated[int, typer.Option("--per-class", help="pixel-classify: real training pixels per class.")] = 20,
    boundary: Annotated[
        int,
        typer.Option(
            "--boundary", help="pixel-classify: leave out labelled synthetic pixels within N px of another label."
        ),
    ] = 1,
    confidence: Annotated[
        float,
        typer.Option(
            "--confidence", help="pixel-classify: pseudo-label threshold (softmax max) for unlabelled samples."
        ),
    ] = 0.9,
    backbone: Annotated[
        Optional[Path],
        typer.Option(
            "--backbone",
            help="segment: a local transformers SegFormer directory (config.json + model.safetensors, from "
            "save_pretrained) used as the encoder; nothing is downloaded.",
            show_default=False,
        ),
    ] = None,
    preset: Preset = PresetChoice.tiny,
    device: Device = "auto",
    as_json: Json = False,
    overwrite: Overwrite = False,
):
    """Train the task's model on real, real + synthetic (and synthetic-only) data; mean ± std over seeds,
    a paired test and a verdict; report.md with a bar chart, report.json."""
    from stages.common.errors import ConfigError
    from stages.downstream import DownstreamConfig, run

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {seeds!r}: give integers separated by commas, e.g. 0,1,2") from None
    cfg = DownstreamConfig(
        task=Task(task).value,
        seeds=seed_list,
        synthetic_ratio=synthetic_ratio,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        crop=crop,
        scale=scale,
        noise_sigma=noise_sigma,
        test=str(test) if test else None,
        device=device,
        per_class=per_class,
        confidence=confidence,
        boundary=boundary,
        preset=PresetChoice(preset).value,
        labels_file=str(labels) if labels else None,
        scene_labels=str(scene_labels) if scene_labels else None,
        backbone=str(backbone) if backbone else None,
    )
    artifact = run(real[0] if len(real) == 1 else list(real), list(synthetic), out, cfg, overwrite=overwrite)
    if as_json:
        typer.echo(json.dumps(json.loads(artifact.file("report.json").read_text()), indent=2))
    else:
        typer.echo(str(artifact.path / "report.md"))
