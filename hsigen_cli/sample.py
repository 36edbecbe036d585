"""``hsigen sample``: generate HSIs from a trained diffusion model.

hsigen sample --ckpt runs/ip-diff -n 16 --out runs/ip-samples                # DDIM, 50 steps
hsigen sample --ckpt runs/ip-diff -n 4 --sampler ddpm --out runs/ip-ddpm     # ancestral, all steps
hsigen sample --ckpt runs/ip-diff -n 8 --size 64 --format envi --seed 3 --out runs/ip-envi
hsigen sample --ckpt runs/ip-ldm --cond hed.png --cond seg=field.png -n 4 --out runs/ip-cond-samples
hsigen sample --ckpt runs/ip-ldm --conditions runs/ip-cond -n 16 --guidance 3 --sampler dpm --steps 20 --out s
hsigen sample --ckpt runs/ip-ldm --content scene.png --text farmland -n 4 --out runs/ip-text   # global
hsigen sample --ckpt runs/ip-hyperldm --cond rgb=photo.png -n 10 --sampler ddpm --out runs/hyperldm-samples
hsigen sample --ckpt runs/ip-diff -n 100000 --shard 3/8 --out runs/part-3      # slice 3 of 8 (a job array)
hsigen sample --merge runs/part-0 --merge runs/part-1 ... --out runs/ip-100k   # = the unsharded run
hsigen sample --ckpt runs/ip-ldm -n 16 --spectral-manifold runs/ip-manifold --out s   # spectra on the scene's manifold
hsigen sample --ckpt pretrained:indian-pines-latent -n 16 --spectral-manifold none --out s   # raw (no default manifold)
hsigen sample --ckpt runs/hsigene --cond hed=a.png --cond seg=b.png --text Farmland -n 4 --out s  # released HSIGene
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from .choices import Precision, SampleFormat, Sampler, plain
from .options import BatchSize, Device, Out, Overwrite, Seed


def sample(
    ckpt: Annotated[
        Optional[Path],
        typer.Option("--ckpt", help="A diffusion-model artifact (from train-diffusion); not with --merge."),
    ] = None,
    out: Out = ...,
    n: Annotated[int, typer.Option("-n", "--num-samples", help="Number of samples.")] = 8,
    sampler: Annotated[
        Sampler, typer.Option("--sampler", help="ddim (deterministic) | ddpm (ancestral) | dpm (DPM-Solver++).")
    ] = Sampler.ddim,
    cond: Annotated[
        Optional[List[str]],
        typer.Option(
            "--cond",
            help="latent: a condition map as KIND=FILE or a file named after its kind (hed.png, seg.png); "
            "repeat for several; HyperLDM models take rgb=IMAGE.",
        ),
    ] = None,
    conditions: Annotated[
        Optional[Path],
        typer.Option(
            "--conditions", help="latent: a conditions artifact instead of files (sample i uses item i mod count)."
        ),
    ] = None,
    content: Annotated[
        Optional[Path], typer.Option("--content", help="latent: an image whose content embedding guides the samples.")
    ] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="latent: category text, e.g. farmland.")] = None,
    guidance: Annotated[
        Optional[float],
        typer.Option(
            "--guidance", help="latent: classifier-free guidance scale (1 = none; default 2.5, HSIGene models 1)."
        ),
    ] = None,
    guidance_interval: Annotated[
        Optional[str],
        typer.Option(
            "--guidance-interval",
            help="latent: LO:HI timesteps where the guidance applies, one conditional pass elsewhere "
            "(default 300:999 for latent models, Kynkäänniemi et al. 2024); 'all' for every step.",
        ),
    ] = None,
    steps: Annotated[
        Optional[int], typer.Option("--steps", help="Reverse steps (default: 50 for ddim, the full schedule for ddpm).")
    ] = None,
    size: Annotated[
        Optional[int],
        typer.Option("--size", help="Sample height = width in pixels (default: the model's training size)."),
    ] = None,
    fmt: Annotated[
        SampleFormat, typer.Option("--format", help="Per-sample files: tif | envi | mat.")
    ] = SampleFormat.tif,
    precision: Annotated[
        Optional[Precision],
        typer.Option("--precision", help="HSIGene models: fp32 (default) | bf16 (CPU or GPU) | fp16 (GPU)."),
    ] = None,
    shard: Annotated[
        Optional[str],
        typer.Option(
            "--shard", help="I/N: make slice I of N of the -n samples (each keeps its seed); join with --merge."
        ),
    ] = None,
    merge: Annotated[
        Optional[List[Path]],
        typer.Option(
            "--merge", help="Join the shard artifacts of one run (repeat per shard) into --out, checking their hashes."
        ),
    ] = None,
    spectral_manifold: Annotated[
        Optional[Path],
        typer.Option(
            "--spectral-manifold",
            help="Decode every generated pixel through this spectral manifold of real spectra "
            "(`unmix --method manifold`, or pretrained:indian-pines-manifold); `none` for raw samples. "
            "Shipped generators decode through their own by default (`hsigen pretrained` names it).",
        ),
    ] = None,
    batch_size: BatchSize = None,
    seed: Seed = 0,
    device: Device = "auto",
    overwrite: Overwrite = False,
):
    """Sample HSIs (and their abundance maps) into an hsi-samples artifact."""
    from stages import sampling as stage
    from stages.sampling import ConditionRequest

    if merge:
        if ckpt is not None or shard is not None:
            raise typer.BadParameter(
                "--merge joins finished shards: give it without --ckpt/--shard", param_hint="--merge"
            )
        typer.echo(str(stage.merge(merge, out, overwrite=overwrite).path))
        return
    if ckpt is None:
        raise typer.BadParameter("give the model to sample: --ckpt DIR (or --merge SHARDS)", param_hint="--ckpt")
    cfg = stage.SampleConfig(
        n=n, sampler=sampler.value, steps=steps, seed=seed, batch_size=batch_size or 8, size=size, format=fmt.value
    )
    request = ConditionRequest(
        files=[str(c) for c in cond or []],
        conditions=str(conditions) if conditions else None,
        content=str(content) if content else None,
        text=text,
    )
    artifact = stage.run(
        ckpt,
        out,
        cfg,
        device=device,
        overwrite=overwrite,
        conditions=request,
        guidance=guidance,
        shard=shard,
        precision=plain(precision),
        guidance_interval=guidance_interval,
        spectral_manifold=spectral_manifold,
    )
    typer.echo(str(artifact.path))


def register(app: typer.Typer) -> None:
    app.command("sample")(sample)
