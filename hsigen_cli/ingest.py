"""``hsigen ingest``: read a sensor scene, align it to the target wavelength grid, cut patches.

    hsigen ingest --example indian-pines --size 32 --stride 16 --out runs/ip
    hsigen ingest scene.hdr --out runs/scene                       # ENVI with wavelengths
    hsigen ingest Indian_pines_corrected.mat --wavelengths-file 92AV3C.spc \\
        --drop-bands 104-108,150-163,220 --labels Indian_pines_gt.mat --size 64 --out runs/ip
    hsigen ingest scene.tif --wavelengths 400:1000:120 --bands 48 --range 400:1000 --out runs/t
    hsigen ingest --example indian-pines --labels 92AV3GT.GIS --out runs/ip-gis   # ERDAS .GIS labels
    hsigen ingest scene.mat --var radiance --labels gt.mat --labels-var classes --out runs/m
    hsigen ingest t1.tif --pair t2.tif --change-mask change.tif --size 32 --stride 16 --out runs/cd  # change detection
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from .choices import Example, Extrapolate, plain
from .options import Out, Overwrite


def ingest(
    sources: Annotated[
        Optional[List[Path]],
        typer.Argument(
            help="Scene file: ENVI .hdr (or its data file), GeoTIFF, .mat (v5/v7.3) or .npy (H, W, B).",
            show_default=False,
        ),
    ] = None,
    out: Out = ...,
    example: Annotated[
        Optional[Example],
        typer.Option("--example", help="Ingest an embedded real scene instead of SOURCE: indian-pines."),
    ] = None,
    var: Annotated[Optional[str], typer.Option("--var", help="Variable of a .mat file holding the cube.")] = None,
    wavelengths_file: Annotated[
        Optional[Path],
        typer.Option("--wavelengths-file", help="Band centres: a text/CSV list (nm or um) or an AVIRIS .spc file."),
    ] = None,
    wavelengths: Annotated[
        Optional[str],
        typer.Option("--wavelengths", help="Band centres as START:STOP:COUNT in nm when the file has none."),
    ] = None,
    drop_bands: Annotated[
        Optional[str],
        typer.Option("--drop-bands", help="1-based bands to remove before alignment, e.g. 104-108,150-163,220."),
    ] = None,
    bands: Annotated[int, typer.Option("--bands", help="Number of target bands.")] = 48,
    wl_range: Annotated[str, typer.Option("--range", help="Target range LOW:HIGH in nm.")] = "400:1000",
    grid_file: Annotated[
        Optional[Path], typer.Option("--grid-file", help="Target band centres from a file (overrides --bands/--range).")
    ] = None,
    extrapolate: Annotated[
        Extrapolate, typer.Option("--extrapolate", help="Targets outside the input's coverage: error | edge.")
    ] = Extrapolate.error,
    size: Annotated[int, typer.Option("--size", help="Patch size in pixels.")] = 256,
    stride: Annotated[int, typer.Option("--stride", help="Patch stride in pixels.")] = 128,
    labels: Annotated[
        Optional[Path],
        typer.Option("--labels", help="Label map (mat/tif/npy/ERDAS .GIS) cropped in sync with the patches."),
    ] = None,
    labels_var: Annotated[
        Optional[str], typer.Option("--labels-var", help="Variable of a .mat label map holding the labels.")
    ] = None,
    pair: Annotated[
        Optional[Path],
        typer.Option(
            "--pair", help="Second, co-registered scene (t2) of a change-detection pair; needs --change-mask."
        ),
    ] = None,
    change_mask: Annotated[
        Optional[Path],
        typer.Option(
            "--change-mask", help="Change mask of the --pair (mat/tif/npy/.GIS; 0 = unchanged), stored as labels."
        ),
    ] = None,
    val_fraction: Annotated[
        float,
        typer.Option("--val-fraction", help="Bottom share of rows held out as a spatial validation split (0 = none)."),
    ] = 0.0,
    max_nodata: Annotated[
        float, typer.Option("--max-nodata", help="Drop patches with more than this share of nodata pixels.")
    ] = 0.5,
    block_rows: Annotated[int, typer.Option("--block-rows", help="Rows per streamed block (memory bound).")] = 256,
    overwrite: Overwrite = False,
):
    """Ingest a hyperspectral scene into an hsi-dataset artifact (cube.tif, patches.h5, preview.png)."""
    from stages import ingest as stage
    from stages.common.errors import ConfigError
    from stages.spectral import (
        parse_band_ranges,
        parse_grid_spec,
        read_wavelengths_file,
        target_grid,
    )

    extrapolate, example = extrapolate.value, plain(example)
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError("--val-fraction must be in [0, 1)")
    extra_inputs: list[Path] = []
    if example is not None:
        if sources:
            raise ConfigError("give either SOURCE files or --example, not both")
        if example not in stage.EXAMPLES:
            raise ConfigError(f"--example {example!r}: known examples are {', '.join(stage.EXAMPLES)}")
        ex = stage.EXAMPLES[example]
        sources = [ex["source"]]
        wavelengths_file = wavelengths_file or ex["wavelengths_file"]
        drop_bands = drop_bands if drop_bands is not None else ex["drop_bands"]
        labels = labels or (ex["labels"] if change_mask is None else None)  # a pair: the change mask labels
    if not sources:
        raise ConfigError("no SOURCE given; name a scene file or use --example indian-pines")
    if wavelengths_file is not None and wavelengths is not None:
        raise ConfigError("give --wavelengths-file or --wavelengths, not both")
    wl, wl_source = None, "file"
    if wavelengths_file is not None:
        wl, wl_source = read_wavelengths_file(wavelengths_file), "sidecar"
        extra_inputs.append(wavelengths_file)
    elif wavelengths is not None:
        wl, wl_source = parse_grid_spec(wavelengths), "grid"

    cfg = stage.IngestConfig(
        target_wavelengths_nm=[float(w) for w in target_grid(bands, wl_range, grid_file)],
        size=size,
        stride=stride,
        drop_bands=parse_band_ranges(drop_bands),
        extrapolate=extrapolate,
        var=var,
        labels_var=labels_var,
        wavelengths_source=wl_source,
        max_nodata_fraction=max_nodata,
        val_fraction=val_fraction,
        block_rows=block_rows,
        example=example,
    )
    artifact = stage.run(
        list(sources),
        out,
        cfg,
        wavelengths=wl,
        labels_path=labels,
        overwrite=overwrite,
        extra_inputs=extra_inputs,
        pair=pair,
        change_mask=change_mask,
    )
    typer.echo(str(artifact.path))


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
