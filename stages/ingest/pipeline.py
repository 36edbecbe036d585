"""``ingest``: a sensor scene → an ``hsi-dataset`` artifact (DESIGN.md §2, §3).

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
from ..common.errors import InputError, SpectralError
from ..common.georef import no_georeference
from ..spectral import align_block, alignment_matrix, false_colour, save_png
from ..spectral.preview import stretch_limits
from .config import IngestConfig
from .readers import Scene, open_scene, read_label_map

# Input rows per read are capped so one block holds at most this many float32 bytes.
INPUT_BLOCK_BYTES = 64 << 20
# GDAL's raster block cache; its default (5 % of RAM) would let dirty tiles of a large cube.tif
# pile up in memory. rasterio.Env(GDAL_CACHEMAX=...) takes BYTES (it calls GDALSetCacheMax64):
# pass GDAL_CACHE_BYTES — a bare 128 would mean a 128-byte cache and re-decode every tile.
GDAL_CACHE_MB = 128
GDAL_CACHE_BYTES = GDAL_CACHE_MB << 20



def patch_origins(length: int, size: int, stride: int) -> list[int]:
    """Origins along one axis: every ``stride``, plus one flush with the far edge."""
    if length < size:
        return []
    origins = list(range(0, length - size + 1, stride))
    if origins[-1] != length - size:
        origins.append(length - size)
    return origins


def split_boundary(height: int, config: IngestConfig) -> int:
    """First validation row of the spatial split (``height`` when there is no split)."""
    if config.val_fraction <= 0:
        return height
    boundary = height - int(round(height * config.val_fraction))
    if min(boundary, height - boundary) < config.size:
        raise InputError(
            f"--val-fraction {config.val_fraction} splits the {height} rows into {boundary} + {height - boundary}; "
            f"both parts must be at least --size {config.size} rows: change --val-fraction or lower --size")
    return boundary


def resolve_band_wavelengths(scene: Scene, wavelengths, drop_bands: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Return (keep mask over the scene's bands, wavelengths of the kept bands).

    ``--drop-bands`` numbers bands 1-based in the wavelength list. When that list is longer
    than the scene by exactly the dropped count (the Indian Pines .mat already lacks bands
    104-108, 150-163 and 220 of its 220-band .spc), the drop applies to the list only;
    when both have the same length it applies to both.
    """
    if wavelengths is None:
        raise SpectralError(
            f"{scene.path}: the file carries no wavelengths; give --wavelengths-file FILE "
            "(a list or an AVIRIS .spc) or --wavelengths START:STOP:COUNT")
    wl = np.asarray(wavelengths, dtype=np.float64)
    keep_file = np.ones(scene.bands, dtype=bool) if scene.bad_bands is None else scene.bad_bands.astype(bool)
    drop = np.array(drop_bands or [], dtype=int)
    if drop.size and drop.max() > wl.size:
        raise SpectralError(f"--drop-bands names band {drop.max()} but there are only {wl.size} wavelengths")
    if wl.size == scene.bands:
        keep = keep_file.copy()
        keep[drop - 1] = False
        return keep, wl[keep]
    if drop.size and wl.size == scene.bands + drop.size:
        wl_keep = np.ones(wl.size, dtype=bool)
        wl_keep[drop - 1] = False
        return keep_file, wl[wl_keep][keep_file]
    raise SpectralError(
        f"{scene.path}: {scene.bands} bands but {wl.size} wavelengths; they must match "
        "(or differ by exactly the bands named in --drop-bands)")


def run(sources: list[Path], out: Path, config: IngestConfig, *, wavelengths=None, labels_path: Path | None = None,
        overwrite: bool = False, extra_inputs: list[Path] = (), pair: Path | None = None,
        change_mask: Path | None = None):
    """One scene → an hsi-dataset; with ``pair`` (a second, co-registered scene) and
    ``change_mask`` → a change-detection dataset (see ``stages/ingest/pairs.py``)."""
    if pair is not None or change_mask is not None:
        from .pairs import run_pair

        return run_pair(sources, out, config, wavelengths=wavelengths, labels_path=labels_path, overwrite=overwrite,
                        extra_inputs=extra_inputs, pair=pair, change_mask=change_mask)
    if len(sources) != 1:
        raise InputError("ingest takes one scene per run (a list of scenes is not supported yet); run it once per scene")
    src = Path(sources[0])
    scene = open_scene(src, var=config.var)
    if config.size < 4 or config.stride < 1:
        raise InputError("--size must be >= 4 and --stride >= 1")
    if scene.height < config.size or scene.width < config.size:
        raise InputError(
            f"{src}: the scene is {scene.height}x{scene.width} pixels, smaller than --size {config.size}; "
            f"use --size {min(scene.height, scene.width)} or less")
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
                f"{scene.height}x{scene.width}; give the label map of this scene")

    inputs = [input_record(src)] + [input_record(p) for p in extra_inputs]
    if scene.path.resolve() != src.resolve():   # ENVI given by its header: hash the data file too
        inputs.insert(1, input_record(scene.path))
    if labels_path is not None:
        inputs.append(input_record(labels_path))
    writer = ArtifactWriter(out, "hsi-dataset", "ingest", config.to_json(), inputs, overwrite=overwrite)
    if writer.up_to_date():
        log.info("ingest: up to date")
        return writer.artifact

    import rasterio
    with writer.building() as tmp, rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        lo, hi = _write_cube(scene, keep, weights, target, tmp / "cube.tif", config.block_rows)
        # float32 interpolation of a constant spectrum can wobble in the last bits: compare relatively.
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi - lo <= 1e-6 * max(abs(lo), abs(hi)):
            raise InputError(f"{src}: the scene is all nodata/NaN or constant after alignment; check the file and --drop-bands")
        scale, offset = float(hi - lo), float(lo)
        stats = write_patches(tmp / "cube.tif", tmp / "patches.h5", target, scale, offset, labels, config)
        if stats["count"] == 0:
            raise InputError(f"{src}: every patch is mostly nodata (> {config.max_nodata_fraction:.0%}); "
                             "use a smaller --size or check the nodata value")
        write_preview(tmp / "cube.tif", target, tmp / "preview.png")
        writer.spectral = spectral_block(target, scale, offset)
        writer.metrics = stats
        writer.extra = {"source": {"format": scene.format, "height": scene.height, "width": scene.width,
                                   "bands": scene.bands, "bands_used": int(keep.sum()), **scene.notes}}
    log.info(f"ingest: {stats['count']} patches of {config.size}x{config.size}x{target.size} → {out}")
    return writer.artifact


def _write_cube(scene: Scene, keep: np.ndarray, weights: np.ndarray, target: np.ndarray, path: Path,
                block_rows: int) -> tuple[float, float]:
    """Pass 1: align ``block_rows``-row windows and write them to ``cube.tif``; return (min, max).

    Input rows are read in sub-blocks of at most ``INPUT_BLOCK_BYTES`` (as float32) so a scene
    with many bands or wide rows stays bounded too; only bands with a non-zero alignment
    weight are converted (the others cannot change the result).
    """
    import rasterio
    nodata_out = None if scene.nodata is None or np.isnan(scene.nodata) else float(scene.nodata)
    profile = dict(driver="GTiff", height=scene.height, width=scene.width, count=int(target.size),
                   dtype="float32", tiled=True, blockxsize=256, blockysize=256, interleave="band",
                   compress="deflate", predictor=3, BIGTIFF="IF_SAFER",
                   # Level 1 halves the write time of the default level 6 for about the same size
                   # on noisy float data; compression is most of pass 1 otherwise.
                   zlevel=1, num_threads="ALL_CPUS")
    if scene.nodata is not None:
        profile["nodata"] = nodata_out if nodata_out is not None else float("nan")
    if scene.crs is not None:
        profile["crs"] = scene.crs
    if scene.transform is not None:
        profile["transform"] = scene.transform
    used = weights.any(axis=1)
    bands = np.flatnonzero(keep)[used]
    w_used = weights[used].astype(np.float32)
    sub_rows = max(1, min(block_rows, INPUT_BLOCK_BYTES // (scene.width * max(1, scene.bands) * 4)))
    lo, hi = np.inf, -np.inf
    total = (scene.height + block_rows - 1) // block_rows
    # Many HSIs (lab scenes, benchmark .mat files) carry no georeferencing; cube.tif then has none either.
    with no_georeference(scene.transform is None), rasterio.open(path, "w", **profile) as dst, \
            log.progress("ingest: aligning", total) as bar:
        for i, band_nm in enumerate(target, start=1):
            dst.set_band_description(i, f"{band_nm:.1f} nm")
            dst.update_tags(i, wavelength_nm=f"{band_nm:.4f}")
        dst.update_tags(wavelength_units="nm", wavelengths_nm=",".join(f"{w:.4f}" for w in target))
        for w0 in range(0, scene.height, block_rows):
            w1 = min(scene.height, w0 + block_rows)
            window = np.empty((target.size, w1 - w0, scene.width), dtype=np.float32)   # (B_out, rows, W)
            for r0 in range(w0, w1, sub_rows):
                r1 = min(w1, r0 + sub_rows)
                aligned = align_block(scene.read_rows(r0, r1, bands=bands), w_used)    # (rows, W, B_out)
                window[:, r0 - w0:r1 - w0, :] = np.moveaxis(aligned, -1, 0)
            if np.isfinite(window).any():
                lo, hi = min(lo, float(np.nanmin(window))), max(hi, float(np.nanmax(window)))
            if nodata_out is not None:
                window[~np.isfinite(window)] = np.float32(nodata_out)
            dst.write(window, window=((w0, w1), (0, scene.width)))
            bar.advance()
    return lo, hi


def _read_cube_rows(src, r0: int, r1: int) -> np.ndarray:
    data = src.read(window=((r0, r1), (0, src.width))).astype(np.float32, copy=False)
    if src.nodata is not None and not np.isnan(src.nodata):
        data[data == src.nodata] = np.nan
    return data


def write_patches(cube_path: Path, out_path: Path, target: np.ndarray, scale: float, offset: float,
                  labels: np.ndarray | None, config: IngestConfig) -> dict:
    import h5py
    import rasterio

    size, stride = config.size, config.stride
    with no_georeference(), rasterio.open(cube_path) as src:
        height, width = src.height, src.width
        cols = patch_origins(width, size, stride)
        boundary = split_boundary(height, config)
        rows = [(r, "train") for r in patch_origins(boundary, size, stride)]
        rows += [(boundary + r, "val") for r in patch_origins(height - boundary, size, stride)]
        bands = src.count
        with h5py.File(out_path, "w") as h5:
            # Sized for every candidate patch up front and shrunk once at the end: resizing
            # per patch costs an HDF5 metadata update per write.
            upper = len(rows) * len(cols)
            hsi = h5.create_dataset("hsi", shape=(upper, bands, size, size), maxshape=(None, bands, size, size),
                                    dtype="float32", chunks=(1, bands, size, size))
            lab = (h5.create_dataset("labels", shape=(upper, size, size), maxshape=(None, size, size),
                                     dtype="int32", chunks=(1, size, size)) if labels is not None else None)
            origins, splits, dropped_nodata = [], [], 0
            with log.progress("ingest: patches", len(rows)) as bar:
                for r, split in rows:
                    strip = _read_cube_rows(src, r, r + size)
                    for c in cols:
                        patch = strip[:, :, c:c + size]
                        finite = np.isfinite(patch)
                        invalid = ~np.all(finite, axis=0)
                        if invalid.mean() > config.max_nodata_fraction:
                            dropped_nodata += 1
                            continue
                        norm = (patch - np.float32(offset)) / np.float32(scale)
                        norm[~finite] = 0.0
                        n = len(origins)
                        hsi[n] = norm
                        if lab is not None:
                            lab[n] = np.where(invalid, 0, labels[r:r + size, c:c + size])
                        origins.append((r, c))
                        splits.append(split)
                    bar.advance()
            hsi.resize(len(origins), axis=0)
            if lab is not None:
                lab.resize(len(origins), axis=0)
            h5.create_dataset("wavelengths_nm", data=np.asarray(target, dtype=np.float64))
            h5.create_dataset("origin", data=np.asarray(origins, dtype=np.int64).reshape(-1, 2))
            if config.val_fraction > 0:
                h5.create_dataset("split", data=np.asarray(splits, dtype="S5"))
            h5.attrs["scale"], h5.attrs["offset"] = scale, offset
            h5.attrs["patch_size"], h5.attrs["stride"] = size, stride
            h5.attrs["units"] = "physical = hsi * scale + offset"
    stats = {"count": len(origins), "dropped_nodata": dropped_nodata,
             "train": splits.count("train"), "val": splits.count("val")}
    if labels is not None:
        stats["label_classes"] = sorted(int(v) for v in np.unique(labels))
    return stats


def write_preview(cube_path: Path, target: np.ndarray, out_png: Path) -> None:
    import rasterio

    from ..spectral.preview import rgb_band_indices

    with no_georeference(), rasterio.open(cube_path) as src:
        idx = rgb_band_indices(target)
        # Decimate large scenes so the preview stays small and memory stays bounded.
        step = max(1, int(np.ceil(max(src.height, src.width) / 2048)))
        out_shape = (3, (src.height + step - 1) // step, (src.width + step - 1) // step)
        rgb = src.read([i + 1 for i in idx], out_shape=out_shape).astype(np.float32)
        if src.nodata is not None and not np.isnan(src.nodata):
            rgb[rgb == src.nodata] = np.nan
    rgb_hw3 = np.moveaxis(rgb, 0, -1)
    img = false_colour(np.moveaxis(rgb_hw3, -1, 0), [target[i] for i in idx], limits=stretch_limits(rgb_hw3))
    save_png(out_png, img)
