"""The ``hsi-samples`` files (docs/design.md §2), written by every generator:

- ``samples.h5``: ``hsi`` (n, B, H, W) float32 in normalised units (physical = hsi · scale +
  offset, also as attributes), ``wavelengths_nm``, and any extra maps (``abundances``,
  ``labels``, ``conditions``) the generator produced;
- ``samples/sample_NNNN.{tif|hdr+img|mat}``: one file per sample in physical units;
- ``previews/sample_NNNN.png``: false colour on one shared stretch, plus ``previews/grid.png``;
- labelled generators (``labels``, and ``hsi_t2`` for change-detection pairs): a label GeoTIFF,
  the t2 image and mask-overlay previews per sample (``stages/artifacts/labelled_samples.py``).

Streaming (``sample -n`` in bounded memory, resumable, sharded): samples are made in parts of
``PART_SAMPLES``; ``SampleParts`` commits each part (its per-sample files, then ``part_*.h5`` by
an atomic rename) into a work directory that survives a kill, and ``assemble`` joins parts (or
the ``samples.h5`` of shards) into the final files window by window. The shared preview
stretch is taken from at most ``STRETCH_SAMPLES`` evenly spaced samples (all of them for
smaller runs) and ``grid.png`` shows the first ``GRID_SAMPLES``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ..common.errors import ConfigError
from ..spectral import false_colour, rgb_band_indices, save_png
from ..spectral.preview import stretch_limits
from .labelled_samples import check_labelled, overlay, write_label_geotiff

FORMATS = ("tif", "envi", "mat")
PART_SAMPLES = 16  # samples per part: the unit of streaming, resuming and sharding
STRETCH_SAMPLES = 256  # samples the shared preview stretch is computed from (evenly spaced)
GRID_SAMPLES = 64  # tiles in previews/grid.png
_H5 = {"compression": "gzip", "compression_opts": 4}


def band_names(wavelengths_nm) -> list[str]:
    return [f"{float(w):.1f} nm" for w in wavelengths_nm]


def write_geotiff(path: Path, cube_bhw: np.ndarray, wavelengths_nm) -> None:
    import rasterio

    from ..common.georef import no_georeference

    b, h, w = cube_bhw.shape
    with (
        no_georeference(),
        rasterio.open(
            path, "w", driver="GTiff", width=w, height=h, count=b, dtype="float32", compress="deflate"
        ) as dst,
    ):
        dst.write(cube_bhw.astype(np.float32))
        for i, name in enumerate(band_names(wavelengths_nm), start=1):
            dst.set_band_description(i, name)


def write_envi(path_hdr: Path, cube_bhw: np.ndarray, wavelengths_nm) -> None:
    import spectral.io.envi as envi

    metadata = {
        "wavelength": [f"{float(w):.4f}" for w in wavelengths_nm],
        "wavelength units": "nm",
        "band names": band_names(wavelengths_nm),
        "description": "hsigen synthetic HSI (physical units)",
    }
    envi.save_image(
        str(path_hdr),
        np.moveaxis(cube_bhw, 0, -1).astype(np.float32),
        dtype=np.float32,
        interleave="bsq",
        ext=".img",
        metadata=metadata,
        force=True,
    )


def write_mat(path: Path, cube_bhw: np.ndarray, wavelengths_nm) -> None:
    from scipy.io import savemat

    savemat(
        path,
        {
            "hsi": np.moveaxis(cube_bhw, 0, -1).astype(np.float32),
            "wavelengths_nm": np.asarray(wavelengths_nm, np.float64),
        },
        format="5",
        do_compression=True,
    )


def physical_units(hsi: np.ndarray, scale: float, offset: float) -> np.ndarray:
    return np.asarray(hsi, np.float32) * np.float32(scale) + np.float32(offset)


def write_sample_files(
    folder: Path,
    first: int,
    hsi: np.ndarray,
    wavelengths_nm,
    scale: float,
    offset: float,
    fmt: str,
    labels=None,
    hsi_t2=None,
) -> None:
    """``samples/sample_NNNN.*`` (physical units) of samples ``first``, ``first + 1``, …: the
    image, its t2 image and label GeoTIFF when there are any."""
    wl = np.asarray(wavelengths_nm, np.float64)
    physical = physical_units(hsi, scale, offset)
    physical_t2 = None if hsi_t2 is None else physical_units(hsi_t2, scale, offset)
    (folder / "samples").mkdir(exist_ok=True)
    for j, cube in enumerate(physical):
        stem = folder / "samples" / f"sample_{first + j:04d}"
        images = [(stem, cube)] + ([] if physical_t2 is None else [(stem.with_name(stem.name + "_t2"), physical_t2[j])])
        for path, image in images:
            if fmt == "tif":
                write_geotiff(path.with_suffix(".tif"), image, wl)
            elif fmt == "envi":
                write_envi(path.with_suffix(".hdr"), image, wl)
            else:
                write_mat(path.with_suffix(".mat"), image, wl)
        if labels is not None:
            write_label_geotiff(stem.with_name(stem.name + "_labels.tif"), labels[j])


def _check(hsi: np.ndarray, wl: np.ndarray, fmt: str, arrays: dict) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose tif, envi or mat")
    if hsi.ndim != 4 or hsi.shape[1] != len(wl):
        raise ConfigError(f"internal: samples of shape {hsi.shape} do not match {len(wl)} wavelengths")
    check_labelled(hsi, arrays.get("labels"), arrays.get("hsi_t2"))


class SampleParts:
    """Samples being made, in ``work`` (a hidden sibling of the output that survives a kill):
    ``parts/part_FFFFFFFF.h5`` holds samples F … F + count − 1 (``hsi`` and the generator's
    arrays) and is committed by an atomic rename AFTER its per-sample files are in
    ``work/samples/`` — so a part file on disk means a finished part."""

    def __init__(self, work: Path, wavelengths_nm, scale: float, offset: float, fmt: str):
        self.work, self.fmt = Path(work), fmt
        self.wl = np.asarray(wavelengths_nm, np.float64)
        self.scale, self.offset = float(scale), float(offset)
        (self.work / "parts").mkdir(parents=True, exist_ok=True)

    def finished(self) -> dict[int, int]:
        """{first sample: count} of the committed parts."""
        import h5py

        done = {}
        for path in sorted((self.work / "parts").glob("part_*.h5")):
            with h5py.File(path, "r") as h5:
                done[int(path.stem.split("_")[1])] = int(h5["hsi"].shape[0])
        return done

    def write_files(self, first: int, hsi: np.ndarray, arrays: dict) -> None:
        hsi = np.asarray(hsi, np.float32)
        _check(hsi, self.wl, self.fmt, arrays)
        write_sample_files(
            self.work,
            first,
            hsi,
            self.wl,
            self.scale,
            self.offset,
            self.fmt,
            arrays.get("labels"),
            arrays.get("hsi_t2"),
        )

    def commit(self, first: int, hsi: np.ndarray, arrays: dict) -> None:
        import h5py

        final = self.work / "parts" / f"part_{first:08d}.h5"
        partial = final.with_suffix(".h5.partial")
        with h5py.File(partial, "w") as h5:
            h5.create_dataset("hsi", data=np.asarray(hsi, np.float32))
            for name, value in arrays.items():
                if value is not None:
                    h5.create_dataset(name, data=np.asarray(value))
        os.replace(partial, final)

    def sources(self) -> list[tuple[Path, int, int]]:
        return [
            (self.work / "parts" / f"part_{first:08d}.h5", first, count)
            for first, count in sorted(self.finished().items())
        ]


def _windows(sources: list[tuple[Path, int, int]]):
    """(first, {name: array}) of every source in order, PART_SAMPLES rows at a time."""
    import h5py

    for path, first, count in sources:
        with h5py.File(path, "r") as h5:
            names = [k for k in h5.keys() if k != "wavelengths_nm"]
            for start in range(0, count, PART_SAMPLES):
                stop = min(count, start + PART_SAMPLES)
                yield first + start, {name: h5[name][start:stop] for name in names}


def assemble(tmp: Path, sources: list[tuple[Path, int, int]], wavelengths_nm, scale: float, offset: float) -> dict:
    """``samples.h5``, ``previews/`` and the summary metrics of the samples in ``sources``
    ((h5 file, first sample, count), contiguous from the first), read window by window.
    The per-sample files must already be in ``tmp/samples``."""
    import h5py

    wl = np.asarray(wavelengths_nm, np.float64)
    first0 = sources[0][1]
    n = sum(count for _, _, count in sources)
    if [f for _, f, _ in sources] != list(np.cumsum([first0] + [c for _, _, c in sources[:-1]])):
        raise ConfigError("internal: sample parts are not contiguous")
    low, high, label_values = np.inf, -np.inf, set()
    with h5py.File(tmp / "samples.h5", "w") as out:
        for first, arrays in _windows(sources):
            if "hsi" not in out:
                for name, value in arrays.items():
                    # About 1 MiB chunks of whole samples: one sample reads without its neighbours.
                    rows_per_chunk = max(1, min(n, (1 << 20) // max(1, value[:1].nbytes)))
                    out.create_dataset(
                        name,
                        shape=(n, *value.shape[1:]),
                        dtype=value.dtype,
                        chunks=(rows_per_chunk, *value.shape[1:]),
                        **_H5,
                    )
            rows = slice(first - first0, first - first0 + len(arrays["hsi"]))
            for name, value in arrays.items():
                out[name][rows] = value
            physical = physical_units(arrays["hsi"], scale, offset)
            low, high = min(low, float(physical.min())), max(high, float(physical.max()))
            if "labels" in arrays:
                label_values.update(int(v) for v in np.unique(arrays["labels"]))
        out.create_dataset("wavelengths_nm", data=wl)
        out.attrs["scale"], out.attrs["offset"] = float(scale), float(offset)
        hsi = out["hsi"]
        write_previews(tmp, hsi, out.get("labels"), out.get("hsi_t2"), first0, wl, scale, offset)
        summary = {
            "samples": int(n),
            "bands": int(len(wl)),
            "height": int(hsi.shape[2]),
            "width": int(hsi.shape[3]),
            "physical_min": low,
            "physical_max": high,
        }
    if label_values:
        summary["label_values"] = sorted(label_values)
    return summary


def write_previews(tmp: Path, hsi, labels, hsi_t2, first: int, wl: np.ndarray, scale: float, offset: float) -> None:
    """False colour per sample on one stretch (so samples compare by eye), mask overlays for
    labelled samples, and the contact sheet; ``hsi`` etc. are arrays or HDF5 datasets."""
    n = hsi.shape[0]
    idx = rgb_band_indices(wl)
    picked = np.unique(np.linspace(0, n - 1, min(n, STRETCH_SAMPLES)).round().astype(int))
    rgb_bands = np.stack([physical_units(hsi[int(k)][idx], scale, offset) for k in picked])  # (m, 3, H, W)
    limits = stretch_limits(np.moveaxis(rgb_bands, 1, -1))
    (tmp / "previews").mkdir(exist_ok=True)
    tiles = []
    for k in range(n):
        name = f"sample_{first + k:04d}"
        rgb = false_colour(physical_units(hsi[k], scale, offset), wl, limits=limits)
        save_png(tmp / "previews" / f"{name}.png", rgb)
        mask = None if labels is None else np.asarray(labels[k])
        if hsi_t2 is not None:
            # Change detection: t1 | t2 with the change mask over t2 in the grid.
            rgb_t2 = false_colour(physical_units(hsi_t2[k], scale, offset), wl, limits=limits)
            save_png(tmp / "previews" / f"{name}_t2.png", rgb_t2)
            if len(tiles) < GRID_SAMPLES:
                tiles.append(rgb)
            rgb = overlay(rgb_t2, mask) if mask is not None else rgb_t2
            save_png(tmp / "previews" / f"{name}_labels.png", rgb)
        elif mask is not None:
            rgb = overlay(rgb, mask)
            save_png(tmp / "previews" / f"{name}_labels.png", rgb)
        if len(tiles) < GRID_SAMPLES:
            tiles.append(rgb)
    save_png(tmp / "previews" / "grid.png", contact_sheet(tiles))


def link_sample_files(source: Path, tmp: Path) -> None:
    """Per-sample files ``source/samples/*`` into ``tmp/samples``: hard links (no copy, and the
    source keeps them should the build fail), or copies where the file system has no links."""
    (tmp / "samples").mkdir(exist_ok=True)
    for path in sorted((source / "samples").iterdir()):
        try:
            os.link(path, tmp / "samples" / path.name)
        except OSError:
            shutil.copyfile(path, tmp / "samples" / path.name)


def write_samples(
    tmp: Path, hsi: np.ndarray, wavelengths_nm, scale: float, offset: float, fmt: str = "tif", **arrays
) -> dict:
    """Write every hsi-samples file of in-memory samples into ``tmp``; ``arrays`` (e.g.
    ``abundances=``, ``labels=``, ``conditions=``) go into ``samples.h5`` beside ``hsi``.
    Returns summary metrics."""
    hsi = np.asarray(hsi, np.float32)
    wl = np.asarray(wavelengths_nm, np.float64)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    _check(hsi, wl, fmt, arrays)
    parts = SampleParts(tmp / ".parts", wl, scale, offset, fmt)
    parts.write_files(0, hsi, arrays)
    parts.commit(0, hsi, arrays)
    link_sample_files(parts.work, tmp)
    summary = assemble(tmp, parts.sources(), wl, scale, offset)
    shutil.rmtree(parts.work)
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
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = t
    return sheet
