"""``ingest SCENE1 --pair SCENE2 --change-mask FILE``: a bi-temporal change-detection dataset
(Liu et al., SpecDM, arXiv:2502.17056 §3.3: "a data instance consists of two images at different temporal phases and a
mask to represent the change").

Both scenes go through the single-scene stage's passes (``stage.py``) on the same target
grid. They must be co-registered: the same pixel grid (height × width, and the same CRS /
transform when both carry one). The hsi-dataset then holds

- ``cube.tif`` (t1) and ``cube_t2.tif`` (t2), physical units;
- ``patches.h5``: ``hsi`` (t1) and ``hsi_t2`` (t2), (N, B, S, S), cut at the same origins and
  normalised with ONE scale/offset from the joint min/max of both scenes (so a spectral change
  between dates is a change in normalised values too); ``labels`` = the change mask;
- the manifest's ``pair`` block: both sources, the mask and its changed-pixel share.

Patches are kept or dropped for nodata by t1 (as for one scene); t2 nodata becomes 0 as well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, input_record, spectral_block
from ..common import log
from ..common.errors import InputError
from ..common.georef import no_georeference
from ..spectral import alignment_matrix
from .bands import resolve_band_wavelengths
from .config import IngestConfig
from .cube_io import GDAL_CACHE_BYTES, read_cube_rows, split_boundary, write_cube, write_patches, write_preview
from .readers import open_scene, read_label_map


def _check_co_registered(a, b) -> None:
    if (a.height, a.width) != (b.height, b.width):
        raise InputError(
            f"--pair {b.path} is {b.height}x{b.width} pixels but {a.path} is {a.height}x{a.width}; "
            "co-register (resample) the two scenes onto one pixel grid first"
        )
    if a.crs is not None and b.crs is not None and a.crs != b.crs:
        raise InputError(f"--pair {b.path} has another CRS ({b.crs}) than {a.path} ({a.crs}); reproject it first")
    if (
        a.transform is not None
        and b.transform is not None
        and not np.allclose(tuple(a.transform)[:6], tuple(b.transform)[:6])
    ):
        raise InputError(f"--pair {b.path} has another geotransform than {a.path}; co-register the scenes first")


def add_t2_patches(cube_t2: Path, patches_h5: Path, scale: float, offset: float) -> None:
    """Cut ``hsi_t2`` at the origins already in ``patches.h5``, with the shared scale/offset."""
    import h5py
    import rasterio

    with no_georeference(), h5py.File(patches_h5, "a") as h5, rasterio.open(cube_t2) as src:
        origins = h5["origin"][...]
        n, bands, size, _ = h5["hsi"].shape
        out = h5.create_dataset("hsi_t2", shape=(n, bands, size, size), dtype="float32", chunks=(1, bands, size, size))
        rows = sorted(set(int(r) for r in origins[:, 0]))
        with log.progress("ingest: t2 patches", len(rows)) as bar:
            for r in rows:
                strip = read_cube_rows(src, r, r + size)
                for i in np.flatnonzero(origins[:, 0] == r):
                    c = int(origins[i, 1])
                    patch = strip[:, :, c : c + size]
                    norm = (patch - np.float32(offset)) / np.float32(scale)
                    norm[~np.isfinite(patch)] = 0.0
                    out[i] = norm
                bar.advance()
        h5.attrs["pair"] = "hsi = t1, hsi_t2 = t2 (same origins), labels = change mask"


def run_pair(
    sources: list[Path],
    out: Path,
    config: IngestConfig,
    *,
    wavelengths=None,
    labels_path: Path | None = None,
    overwrite: bool = False,
    extra_inputs=(),
    pair: Path | None = None,
    change_mask: Path | None = None,
):
    if pair is None or change_mask is None:
        raise InputError("a change-detection dataset needs both --pair SCENE2 and --change-mask FILE")
    if labels_path is not None:
        raise InputError(
            "--labels and --change-mask both name the label map: for a pair, the change mask is the "
            "label map; drop --labels"
        )
    if len(sources) != 1:
        raise InputError("give one SOURCE scene (t1) and the second date with --pair SCENE2")
    if config.size < 4 or config.stride < 1:
        raise InputError("--size must be >= 4 and --stride >= 1")
    src, src2 = Path(sources[0]), Path(pair)
    scene, scene2 = open_scene(src, var=config.var), open_scene(src2, var=config.var)
    _check_co_registered(scene, scene2)
    if scene.height < config.size or scene.width < config.size:
        raise InputError(
            f"{src}: the scene is {scene.height}x{scene.width} pixels, smaller than --size "
            f"{config.size}; use --size {min(scene.height, scene.width)} or less"
        )
    split_boundary(scene.height, config)
    target = np.asarray(config.target_wavelengths_nm, dtype=np.float64)
    # Both dates come from the same sensor: the given wavelengths apply to both, else each file's own.
    wl1 = wavelengths if wavelengths is not None else scene.wavelengths_nm
    wl2 = wavelengths if wavelengths is not None else scene2.wavelengths_nm
    keep1, kept1 = resolve_band_wavelengths(scene, wl1, config.drop_bands or [])
    keep2, kept2 = resolve_band_wavelengths(scene2, wl2, config.drop_bands or [])
    weights1 = alignment_matrix(kept1, target, extrapolate=config.extrapolate)
    weights2 = alignment_matrix(kept2, target, extrapolate=config.extrapolate)
    mask = read_label_map(change_mask, var=config.labels_var)
    if mask.shape != (scene.height, scene.width):
        raise InputError(
            f"change mask {change_mask} is {mask.shape[0]}x{mask.shape[1]} but the scenes are "
            f"{scene.height}x{scene.width}; give the change mask of this pair"
        )

    inputs = [input_record(src), input_record(src2)] + [input_record(p) for p in extra_inputs]
    inputs.append(input_record(change_mask))
    recorded = {**config.to_json(), "pair": True}
    writer = ArtifactWriter(out, "hsi-dataset", "ingest", recorded, inputs, overwrite=overwrite)
    if writer.up_to_date():
        log.info("ingest: up to date")
        return writer.artifact

    import rasterio

    with writer.building() as tmp, rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        lo1, hi1 = write_cube(scene, keep1, weights1, target, tmp / "cube.tif", config.block_rows)
        lo2, hi2 = write_cube(scene2, keep2, weights2, target, tmp / "cube_t2.tif", config.block_rows)
        lo, hi = min(lo1, lo2), max(hi1, hi2)
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi - lo <= 1e-6 * max(abs(lo), abs(hi)):
            raise InputError(
                f"{src} / {src2}: the pair is all nodata/NaN or constant after alignment; "
                "check the files and --drop-bands"
            )
        # One scale/offset for both dates (specdm §3.3 pairs are compared value for value).
        scale, offset = float(hi - lo), float(lo)
        stats = write_patches(tmp / "cube.tif", tmp / "patches.h5", target, scale, offset, mask, config)
        if stats["count"] == 0:
            raise InputError(
                f"{src}: every patch is mostly nodata (> {config.max_nodata_fraction:.0%}); "
                "use a smaller --size or check the nodata value"
            )
        add_t2_patches(tmp / "cube_t2.tif", tmp / "patches.h5", scale, offset)
        write_preview(tmp / "cube.tif", target, tmp / "preview.png")
        write_preview(tmp / "cube_t2.tif", target, tmp / "preview_t2.png")
        values, counts = np.unique(mask, return_counts=True)
        writer.spectral = spectral_block(target, scale, offset)
        writer.metrics = stats
        writer.extra = {
            "source": {
                "format": scene.format,
                "height": scene.height,
                "width": scene.width,
                "bands": scene.bands,
                "bands_used": int(keep1.sum()),
                **scene.notes,
            },
            "pair": {
                "t1": str(src),
                "t2": str(src2),
                "t2_format": scene2.format,
                "t2_bands_used": int(keep2.sum()),
                "change_mask": str(change_mask),
                "files": {"t2_cube": "cube_t2.tif", "t2_patches": "hsi_t2"},
                "mask_values": {str(int(v)): int(c) for v, c in zip(values, counts)},
                "changed_fraction": float(np.mean(mask != 0)),
                "normalisation": "one scale/offset from the joint min/max of both dates",
            },
        }
    log.info(f"ingest: {stats['count']} bi-temporal patch pairs of {config.size}x{config.size}x{target.size} → {out}")
    return writer.artifact
