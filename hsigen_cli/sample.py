"""``hsigen sample``: generate HSIs from a trained diffusion model.

    hsigen sample --ckpt runs/ip-diff -n 16 --out runs/ip-samples                # DDIM, 50 steps
    hsigen sample --ckpt runs/ip-diff -n 4 --sampler ddpm --out runs/ip-ddpm     # ancestral, all steps
    hsigen sample --ckpt runs/ip-diff -n 8 --size 64 --format envi --seed 3 --out runs/ip-envi
    hsigen sample --ckpt runs/ip-ldm --cond hed.png --cond seg=field.png -n 4 --out runs/ip-cond-samples
    hsigen sample --ckpt runs/ip-ldm --conditions runs/ip-cond -n 16 --guidance 3 --sampler dpm --steps 20 --out s
    hsigen sample --ckpt runs/ip-ldm --content scene.png --text farmland -n 4 --out runs/ip-text   # global
    hsigen sample --ckpt runs/ip-hyperldm --cond rgb=photo.png -n 10 --sampler ddpm --out runs/hyperldm-samples
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from .choices import SampleFormat, Sampler
from .options import BatchSize, Device, Out, Overwrite, Seed


def sample(
    ckpt: Annotated[Path, typer.Option("--ckpt", help="A diffusion-model artifact (from train-diffusion).")],
    out: Out = ...,
    n: Annotated[int, typer.Option("-n", "--num-samples", help="Number of samples.")] = 8,
    sampler: Annotated[Sampler, typer.Option(
        "--sampler", help="ddim (deterministic) | ddpm (ancestral) | dpm (DPM-Solver++, latent models).")
    ] = Sampler.ddim,
    cond: Annotated[Optional[List[str]], typer.Option(
        "--cond", help="latent: a condition map as KIND=FILE or a file named after its kind (hed.png, seg.png); "
                       "repeat for several; HyperLDM models take rgb=IMAGE.")] = None,
    conditions: Annotated[Optional[Path], typer.Option(
        "--conditions", help="latent: a conditions artifact instead of files (sample i uses item i mod count).")
    ] = None,
    content: Annotated[Optional[Path], typer.Option(
        "--content", help="latent: an image whose content embedding guides the samples.")] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="latent: category text, e.g. farmland.")] = None,
    guidance: Annotated[float, typer.Option(
        "--guidance", help="latent: classifier-free guidance scale (1 = none).")] = 2.0,
    steps: Annotated[Optional[int], typer.Option(
        "--steps", help="Reverse steps (default: 50 for ddim, the full schedule for ddpm).")] = None,
    size: Annotated[Optional[int], typer.Option(
        "--size", help="Sample height = width in pixels (default: the model's training size).")] = None,
    fmt: Annotated[SampleFormat, typer.Option("--format", help="Per-sample files: tif | envi | mat.")
    ] = SampleFormat.tif,
    batch_size: BatchSize = None,
    seed: Seed = 0,
    device: Device = "auto",
    overwrite: Overwrite = False,
):
    """Sample HSIs (and their abundance maps) into an hsi-samples artifact."""
    from stages import sampling as stage

    cfg = stage.SampleConfig(n=n, sampler=sampler.value, steps=steps, seed=seed, batch_size=batch_size or 8,
                             size=size, format=fmt.value)
    from stages.diffusion.latent_sampling import ConditionRequest

    request = ConditionRequest(files=[str(c) for c in cond or []], conditions=str(conditions) if conditions else None,
                               content=str(content) if content else None, text=text)
    artifact = stage.run(ckpt, out, cfg, device=device, overwrite=overwrite, conditions=request, guidance=guidance)
    typer.echo(str(artifact.path))


def register(app: typer.Typer) -> None:
    app.command("sample")(sample)
