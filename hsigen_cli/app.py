"""The ``hsigen`` Typer app: one module per command, each a thin layer over ``stages``.

hsigen ingest --example indian-pines --size 32 --stride 16 --out runs/ip
hsigen inspect runs/ip --json
"""

from __future__ import annotations

from typing import Optional

import typer

from stages import __version__

from . import (
    condition,
    evaluate,
    import_cmd,
    ingest,
    inspect,
    pretrained,
    sample,
    train_ae,
    train_diffusion,
    unmix,
    upsample,
)
from .groups import HsigenGroup

app = typer.Typer(
    name="hsigen",
    cls=HsigenGroup,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Generate realistic synthetic hyperspectral images from real scenes, stage by stage.\n\n"
    "Each stage reads and writes artifact directories (manifest.json + files); see `hsigen inspect`.",
)


def _version(value: bool):
    if value:
        typer.echo(f"hsigen {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
):
    """hsigen: hyperspectral image generation toolkit (-v/-q here or after any command)."""


for module in (
    ingest,
    inspect,
    unmix,
    condition,
    train_diffusion,
    sample,
    train_ae,
    evaluate,
    upsample,
    import_cmd,
    pretrained,
):
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
