"""Cube I/O shared by ``ingest`` (one scene and change pairs) and ``upsample run``: the aligned
``cube.tif`` written in row blocks (pass 1), read back in strips and cut into normalised
patches (pass 2), and its false-colour preview. Memory stays bounded by a block of rows; see
``stage.py`` for the passes and the spatial split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common import log
from ..common.errors import InputError
from ..common.georef import no_georeference
from ..spectral import align_block, false_colour, save_png
from ..spectral.preview import stretch_limits
from .config import IngestConfig
from .scene import Scene

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
            f"both parts must be at least --size {config.size} rows: change --val-fraction or lower --size"
        )
    return boundary


def write_cube(
    scene: Scene, keep: np.ndarray, weights: np.ndarray, target: np.ndarray, path: Path, block_rows: int
) -> tuple[float, float]:
    """Pass 1: align ``block_rows``-row windows and write them to ``cube.tif``; return (min, max).

    Input rows are read in sub-blocks of at most ``INPUT_BLOCK_BYTES`` (as float32) so a scene
    with many bands or wide rows stays bounded too; only bands with a non-zero alignment
    weight are converted (the others cannot change the result).
    """
    import rasterio

    nodata_out = None if scene.nodata is None or np.isnan(scene.nodata) else float(scene.nodata)
    profile = dict(
        driver="GTiff",
        height=scene.height,
        width=scene.width,
        count=int(target.size),
        dtype="float32",
        tiled=True,
        blockxsize=256,
        blockysize=256,
        interleave="band",
        compress="deflate",
        predictor=3,
        BIGTIFF="IF_SAFER",
        # Level 1 halves the write time of the default level 6 for about the same size
        # on noisy float data; compression is most of pass 1 otherwise.
        zlevel=1,
        num_threads="ALL_CPUS",
    )
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
    with (
        no_georeference(scene.transform is None),
        rasterio.open(path, "w", **profile) as dst,
        log.progress("ingest: aligning", total) as bar,
    ):
        for i, band_nm in enumerate(target, start=1):
            dst.set_band_description(i, f"{band_nm:.1f} nm")
            dst.update_tags(i, wavelength_nm=f"{band_nm:.4f}")
        dst.update_tags(wavelength_units="nm", wavelengths_nm=",".join(f"{w:.4f}" for w in target))
        for w0 in range(0, scene.height, block_rows):
            w1 = min(scene.height, w0 + block_rows)
            window = np.empty((target.size, w1 - w0, scene.width), dtype=np.float32)  # (B_out, rows, W)
            for r0 in range(w0, w1, sub_rows):
                r1 = min(w1, r0 + sub_rows)
                aligned = align_block(scene.read_rows(r0, r1, bands=bands), w_used)  # (rows, W, B_out)
                window[:, r0 - w0 : r1 - w0, :] = np.moveaxis(aligned, -1, 0)
            if np.isfinite(window).any():
                lo, hi = min(lo, float(np.nanmin(window))), max(hi, float(np.nanmax(window)))
            if nodata_out is not None:
                window[~np.isfinite(window)] = np.float32(nodata_out)
            dst.write(window, window=((w0, w1), (0, scene.width)))
            bar.advance()
    return lo, hi


def read_cube_rows(src, r0: int, r1: int) -> np.ndarray:
    data = src.read(window=((r0, r1), (0, src.width))).astype(np.float32, copy=False)
    if src.nodata is not None and not np.isnan(src.nodata):
        data[data == src.nodata] = np.nan
    return data


def write_patches(
    cube_path: Path,
    out_path: Path,
    target: np.ndarray,
    scale: float,
    offset: float,
    labels: np.ndarray | None,
    config: IngestConfig,
) -> dict:
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
            hsi = h5.create_dataset(
                "hsi",
                shape=(upper, bands, size, size),
                maxshape=(None, bands, size, size),
                dtype="float32",
                chunks=(1, bands, size, size),
            )
            lab = (
                h5.create_dataset(
                    "labels",
                    shape=(upper, size, size),
                    maxshape=(None, size, size),
                    dtype="int32",
                    chunks=(1, size, size),
                )
                if labels is not None
                else None
            )
            origins, splits, dropped_nodata = [], [], 0
            with log.progress("ingest: patches", len(rows)) as bar:
                for r, split in rows:
                    strip = read_cube_rows(src, r, r + size)
                    for c in cols:
                        patch = strip[:, :, c : c + size]
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
                            lab[n] = np.where(invalid, 0, labels[r : r + size, c : c + size])
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
    stats = {
        "count": len(origins),
        "dropped_nodata": dropped_nodata,
        "train": splits.count("train"),
        "val": splits.count("val"),
    }
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
