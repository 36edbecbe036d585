"""The ``hsi-samples`` files (DESIGN.md §2), written by every generator:

- ``samples.h5``: ``hsi`` (n, B, H, W) float32 in normalised units (physical = hsi · scale +
  offset, also as attributes), ``wavelengths_nm``, and any extra maps (``abundances``,
  ``labels``, ``conditions``) the generator produced;
- ``samples/sample_NNNN.{tif|hdr+img|mat}``: one file per sample in physical units;
- ``previews/sample_NNNN.png``: false colour on one shared stretch, plus ``previews/grid.png``;
- labelled generators (``labels``, and ``hsi_t2`` for change-detection pairs): a label GeoTIFF,
  the t2 image and mask-overlay previews per sample (``stages/sampling/labelled.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.errors import ConfigError
from ..spectral import false_colour, rgb_band_indices, save_png
from ..spectral.preview import stretch_limits
from .labelled import check_labelled, overlay, write_label_geotiff

FORMATS = ("tif", "envi", "mat")


def band_names(wavelengths_nm) -> list[str]:
    return [f"{float(w):.1f} nm" for w in wavelengths_nm]


def write_geotiff(path: Path, cube_bhw: np.ndarray, wavelengths_nm) -> None:
    import rasterio

    from ..common.georef import no_georeference

    b, h, w = cube_bhw.shape
    with no_georeference(), rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=b,
                                          dtype="float32", compress="deflate") as dst:
        dst.write(cube_bhw.astype(np.float32))
        for i, name in enumerate(band_names(wavelengths_nm), start=1):
            dst.set_band_description(i, name)


def write_envi(path_hdr: Path, cube_bhw: np.ndarray, wavelengths_nm) -> None:
    import spectral.io.envi as envi

    metadata = {"wavelength": [f"{float(w):.4f}" for w in wavelengths_nm], "wavelength units": "nm",
                "band names": band_names(wavelengths_nm), "description": "hsigen synthetic HSI (physical units)"}
    envi.save_image(str(path_hdr), np.moveaxis(cube_bhw, 0, -1).astype(np.float32), dtype=np.float32,
                    interleave="bsq", ext=".img", metadata=metadata, force=True)


def write_mat(path: Path, cube_bhw: np.ndarray, wavelengths_nm) -> None:
    from scipy.io import savemat

    savemat(path, {"hsi": np.moveaxis(cube_bhw, 0, -1).astype(np.float32),
                   "wavelengths_nm": np.asarray(wavelengths_nm, np.float64)}, format="5", do_compression=True)


def write_samples(tmp: Path, hsi: np.ndarray, wavelengths_nm, scale: float, offset: float, fmt: str = "tif",
                  **arrays) -> dict:
    """Write every hsi-samples file into ``tmp``; ``arrays`` (e.g. ``abundances=``, ``labels=``,
    ``conditions=``) go into ``samples.h5`` beside ``hsi``. Returns summary metrics."""
    import h5py

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose tif, envi or mat")
    hsi = np.asarray(hsi, np.float32)
    wl = np.asarray(wavelengths_nm, np.float64)
    if hsi.ndim != 4 or hsi.shape[1] != len(wl):
        raise ConfigError(f"internal: samples of shape {hsi.shape} do not match {len(wl)} wavelengths")
    labels, hsi_t2 = arrays.get("labels"), arrays.get("hsi_t2")
    check_labelled(hsi, labels, hsi_t2)
    with h5py.File(tmp / "samples.h5", "w") as h5:
        h5.create_dataset("hsi", data=hsi, compression="gzip", compression_opts=4)
        h5.create_dataset("wavelengths_nm", data=wl)
        for name, value in arrays.items():
            if value is not None:
                h5.create_dataset(name, data=np.asarray(value), compression="gzip", compression_opts=4)
        h5.attrs["scale"], h5.attrs["offset"] = float(scale), float(offset)

    physical = hsi * np.float32(scale) + np.float32(offset)
    physical_t2 = None if hsi_t2 is None else np.asarray(hsi_t2, np.float32) * np.float32(scale) + np.float32(offset)
    (tmp / "samples").mkdir()
    (tmp / "previews").mkdir()
    for i, cube in enumerate(physical):
        stem = tmp / "samples" / f"sample_{i:04d}"
        images = [(stem, cube)] + ([] if physical_t2 is None else [(stem.with_name(stem.name + "_t2"), physical_t2[i])])
        for path, image in images:
            if fmt == "tif":
                write_geotiff(path.with_suffix(".tif"), image, wl)
            elif fmt == "envi":
                write_envi(path.with_suffix(".hdr"), image, wl)
            else:
                write_mat(path.with_suffix(".mat"), image, wl)
        if labels is not None:
            write_label_geotiff(stem.with_name(stem.name + "_labels.tif"), labels[i])

    # One stretch for all previews so that samples can be compared by eye.
    idx = rgb_band_indices(wl)
    limits = stretch_limits(np.stack([physical[:, i] for i in idx], axis=-1))
    tiles = []
    for i, cube in enumerate(physical):
        rgb = false_colour(cube, wl, limits=limits)
        save_png(tmp / "previews" / f"sample_{i:04d}.png", rgb)
        if physical_t2 is not None:
            # Change detection: t1 | t2 with the change mask over t2 in the grid.
            rgb_t2 = false_colour(physical_t2[i], wl, limits=limits)
            save_png(tmp / "previews" / f"sample_{i:04d}_t2.png", rgb_t2)
            tiles.append(rgb)
            rgb = overlay(rgb_t2, labels[i]) if labels is not None else rgb_t2
            save_png(tmp / "previews" / f"sample_{i:04d}_labels.png", rgb)
        elif labels is not None:
            rgb = overlay(rgb, labels[i])
            save_png(tmp / "previews" / f"sample_{i:04d}_labels.png", rgb)
        tiles.append(rgb)
    save_png(tmp / "previews" / "grid.png", contact_sheet(tiles))
    summary = {"samples": int(len(hsi)), "bands": int(len(wl)), "height": int(hsi.shape[2]), "width": int(hsi.shape[3]),
               "physical_min": float(physical.min()), "physical_max": float(physical.max())}
    if labels is not None:
        summary["label_values"] = sorted(int(v) for v in np.unique(labels))
    return summary


def contact_sheet(tiles: list[np.ndarray], columns: int = 8, gap: int = 2) -> np.ndarray:
    """Tiles (H, W, 3) in a grid, each enlarged ×4 (nearest) so small patches are visible."""
    zoom = 4 if tiles[0].shape[0] <= 64 else 1
    tiles = [np.repeat(np.repeat(t, zoom, 0), zoom, 1) for t in tiles]
    h, w = tiles[0].shape[:2]
    cols = min(columns, len(tiles))
    rows = -(-len(tiles) // cols)
    sheet = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = t
    return sheet
