"""``ingest``: a sensor scene → an ``hsi-dataset`` artifact (docs/design.md §2, §3).

Two streamed passes keep memory bounded by a block of rows, whatever the scene size:
1. read row blocks, drop bad bands, align to the target grid (a matmul per block), write
   ``cube.tif`` in physical units and track the global min/max;
2. read ``cube.tif`` back in strips of ``size`` rows and cut ``size`` × ``size`` patches at
   ``stride``, normalised to [0, 1] with one global scale/offset (so spectral shape is kept).

Edge handling: patch origins step by ``stride``; when the last origin does not reach the
bottom/right edge, one more origin flush with that edge is added, so every pixel lies in at
least one patch and no patch is padded.

Spatial split (``val_fraction`` > 0): the bottom ``val_fraction`` of rows is validation.
Each region is cut into patches on its own (origins as above, inside the region), so no
patch straddles the boundary and no pixel is shared between a training and a validation
patch.

Memory: pass 1 holds one output window (``block_rows`` rows × all target bands) and one input
sub-block (≤ ``INPUT_BLOCK_BYTES``); pass 2 one strip of ``size`` rows; the preview a decimated
3-band image; GDAL's tile cache is capped at ``GDAL_CACHE_MB``. ``benchmarks/ingest.py``
measures the peak on a multi-GB ENVI file. (MATLAB v5 files are the exception: scipy loads the
variable whole.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, input_record, spectral_block
from ..common import log
from ..common.errors import InputError
from ..spectral import alignment_matrix
from .bands import resolve_band_wavelengths
from .config import IngestConfig
from .cube_io import GDAL_CACHE_BYTES, split_boundary, write_cube, write_patches, write_preview
from .readers import open_scene, read_label_map


def run(
    sources: list[Path],
    out: Path,
    config: IngestConfig,
    *,
    wavelengths=None,
    labels_path: Path | None = None,
    overwrite: bool = False,
    extra_inputs: list[Path] = (),
    pair: Path | None = None,
    change_mask: Path | None = None,
):
    """One scene → an hsi-dataset; with ``pair`` (a second, co-registered scene) and
    ``change_mask`` → a change-detection dataset (see ``stages/ingest/pairs.py``)."""
    if pair is not None or change_mask is not None:
        from .pairs import run_pair

        return run_pair(
            sources,
            out,
            config,
            wavelengths=wavelengths,
            labels_path=labels_path,
            overwrite=overwrite,
            extra_inputs=extra_inputs,
            pair=pair,
            change_mask=change_mask,
        )
    if len(sources) != 1:
        raise InputError(
            "ingest takes one scene per run (a list of scenes is not supported yet); run it once per scene"
        )
    src = Path(sources[0])
    scene = open_scene(src, var=config.var)
    if config.size < 4 or config.stride < 1:
        raise InputError("--size must be >= 4 and --stride >= 1")
    if scene.height < config.size or scene.width < config.size:
        raise InputError(
            f"{src}: the scene is {scene.height}x{scene.width} pixels, smaller than --size {config.size}; "
            f"use --size {min(scene.height, scene.width)} or less"
        )
    split_boundary(scene.height, config)
    if wavelengths is None and scene.wavelengths_nm is not None:
        wavelengths = scene.wavelengths_nm
    elif wavelengths is not None:
        config.wavelengths_source = config.wavelengths_source if config.wavelengths_source != "file" else "sidecar"
    keep, kept_wl = resolve_band_wavelengths(scene, wavelengths, config.drop_bands or [])
    target = np.asarray(config.target_wavelengths_nm, dtype=np.float64)
    weights = alignment_matrix(kept_wl, target, extrapolate=config.extrapolate)

    labels = None
    if labels_path is not None:
        labels = read_label_map(labels_path, var=config.labels_var)
        if labels.shape != (scene.height, scene.width):
            raise InputError(
                f"label map {labels_path} is {labels.shape[0]}x{labels.shape[1]} but the scene is "
                f"{scene.height}x{scene.width}; give the label map of this scene"
            )

    inputs = [input_record(src)] + [input_record(p) for p in extra_inputs]
    if scene.path.resolve() != src.resolve():  # ENVI given by its header: hash the data file too
        inputs.insert(1, input_record(scene.path))
    if labels_path is not None:
        inputs.append(input_record(labels_path))
    writer = ArtifactWriter(out, "hsi-dataset", "ingest", config.to_json(), inputs, overwrite=overwrite)
    if writer.up_to_date():
        log.info("ingest: up to date")
        return writer.artifact

    import rasterio

    with writer.building() as tmp, rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        lo, hi = write_cube(scene, keep, weights, target, tmp / "cube.tif", config.block_rows)
        # float32 interpolation of a constant spectrum can wobble in the last bits: compare relatively.
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi - lo <= 1e-6 * max(abs(lo), abs(hi)):
            raise InputError(
                f"{src}: the scene is all nodata/NaN or constant after alignment; check the file and --drop-bands"
            )
        scale, offset = float(hi - lo), float(lo)
        stats = write_patches(tmp / "cube.tif", tmp / "patches.h5", target, scale, offset, labels, config)
        if stats["count"] == 0:
            raise InputError(
                f"{src}: every patch is mostly nodata (> {config.max_nodata_fraction:.0%}); "
                "use a smaller --size or check the nodata value"
            )
        write_preview(tmp / "cube.tif", target, tmp / "preview.png")
        writer.spectral = spectral_block(target, scale, offset)
        writer.metrics = stats
        writer.extra = {
            "source": {
                "format": scene.format,
                "height": scene.height,
                "width": scene.width,
                "bands": scene.bands,
                "bands_used": int(keep.sum()),
                **scene.notes,
            }
        }
    log.info(f"ingest: {stats['count']} patches of {config.size}x{config.size}x{target.size} → {out}")
    return writer.artifact
