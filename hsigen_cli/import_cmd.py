"""``hsigen import``: bring published model weights into hsigen artifacts.

    hsigen import hsigene checkpoints/last.ckpt --out runs/hsigene
    hsigen import hsigene hsigene.safetensors --clip-model ~/models/clip-vit-large-patch14 \\
        --content-encoder ~/models/hsigene-content-clip --out runs/hsigene
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import Out, Overwrite

import_app = typer.Typer(no_args_is_help=True, help="Import published model weights as hsigen artifacts.")


@import_app.command("hsigene")
def hsigene(
    ckpt: Annotated[
        Path,
        typer.Argument(help="The released HSIGene checkpoint: last.ckpt ({'state_dict': …}) or a .safetensors file."),
    ],
    out: Out = ...,
    clip_model: Annotated[
        Optional[Path],
        typer.Option(
            "--clip-model", help="Local CLIP ViT-L/14 folder whose tokenizer encodes --text (never downloaded)."
        ),
    ] = None,
    content_encoder: Annotated[
        Optional[Path],
        typer.Option("--content-encoder", help="Local folder of HSIGene's fine-tuned CLIP image model for --content."),
    ] = None,
    model_config: Annotated[
        Optional[str],
        typer.Option(
            "--model-config", help="Widths other than the release: a JSON of HSIGeneConfig fields, or 'tiny'."
        ),
    ] = None,
    sample_size: Annotated[
        Optional[int], typer.Option("--sample-size", help="Default sample height = width in pixels (release: 256).")
    ] = None,
    overwrite: Overwrite = False,
):
    """Import the released HSIGene model strictly (every key and shape must match)."""
    from stages.hsigene.importer import import_checkpoint

    artifact = import_checkpoint(
        ckpt,
        out,
        clip_model=str(clip_model) if clip_model else None,
        content_encoder=str(content_encoder) if content_encoder else None,
        model_config=model_config,
        sample_size=sample_size,
        overwrite=overwrite,
    )
    typer.echo(str(artifact.path))


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
