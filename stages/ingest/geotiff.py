"""GeoTIFF reader (rasterio): windowed row reads, nodata, CRS/transform, wavelengths.

Wavelengths are looked for, in order, in
1. band descriptions holding a number with a unit ("412.8 nm", "0.4128 um", "Band 3 (650 nm)"),
   or a bare number ("412.8"; < 100 means micrometres, with a warning);
2. per-band tags: ``wavelength_nm`` (hsigen's own cube.tif), ``wavelength`` (+ ``wavelength_units``),
   GDAL's IMAGERY domain ``CENTRAL_WAVELENGTH_UM``;
3. dataset tags ``wavelengths_nm`` or ``wavelength`` + ``wavelength_units`` (ENVI style, also in
   GDAL's ``ENVI`` metadata domain).
Otherwise the scene has none and ``--wavelengths-file``/``--wavelengths`` is required.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..common import log
from ..common.errors import InputError
from ..common.georef import no_georeference
from ..spectral.wavelengths import to_nanometres
from .scene import Scene

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_WITH_UNIT = re.compile(
    rf"({_NUMBER})\s*(nanomet(?:er|re)s?|nm|micromet(?:er|re)s?|microns?|um|µm|μm)\b", re.IGNORECASE
)
_BARE = re.compile(rf"^\s*({_NUMBER})\s*$")


def _units_factor(unit: str) -> float:
    return 1.0 if unit.lower().startswith("n") else 1000.0


def _from_descriptions(descriptions, where: str) -> np.ndarray | None:
    if not descriptions or any(not d for d in descriptions):
        return None
    with_unit = [_WITH_UNIT.search(d) for d in descriptions]
    if all(with_unit):
        return np.array([float(m.group(1)) * _units_factor(m.group(2)) for m in with_unit])
    bare = [_BARE.match(d) for d in descriptions]
    if all(bare):
        return to_nanometres([float(m.group(1)) for m in bare], None, where=f"{where} band descriptions")
    return None


def _tag(tags: dict, *names: str) -> str | None:
    lower = {k.lower(): v for k, v in tags.items()}
    for name in names:
        if name.lower() in lower and str(lower[name.lower()]).strip():
            return str(lower[name.lower()]).strip()
    return None


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(_NUMBER, text.strip().strip("{}"))]


def _from_band_tags(src, where: str) -> np.ndarray | None:
    values, units = [], None
    for i in range(1, src.count + 1):
        tags = src.tags(i)
        if (v := _tag(tags, "wavelength_nm")) is not None:
            values.append(float(v))
            units = "nm"
        elif (v := _tag(tags, "wavelength")) is not None:
            values.append(float(_numbers(v)[0]))
            units = _tag(tags, "wavelength_units", "wavelength units") or _tag(src.tags(), "wavelength_units")
        elif (v := _tag(src.tags(i, ns="IMAGERY"), "CENTRAL_WAVELENGTH_UM")) is not None:
            values.append(float(v))
            units = "micrometers"
        else:
            return None
    return to_nanometres(values, units, where=f"{where} band tags")


def _from_dataset_tags(src, where: str) -> np.ndarray | None:
    for tags in (src.tags(), src.tags(ns="ENVI")):
        if (v := _tag(tags, "wavelengths_nm")) is not None:
            return to_nanometres(_numbers(v), "nm", where=where)
        if (v := _tag(tags, "wavelength", "wavelengths")) is not None:
            units = _tag(tags, "wavelength_units", "wavelength units")
            if units is not None and units.lower() == "unknown":
                units = None
            return to_nanometres(_numbers(v), units, where=f"{where} tags")
    return None


def geotiff_wavelengths(src, where: str) -> np.ndarray | None:
    for finder in (
        lambda: _from_descriptions(src.descriptions, where),
        lambda: _from_band_tags(src, where),
        lambda: _from_dataset_tags(src, where),
    ):
        try:
            wl = finder()
        except (ValueError, IndexError):
            wl = None
        if wl is not None:
            if wl.size != src.count:
                log.warn(f"{where}: {wl.size} wavelengths in the metadata for {src.count} bands; ignoring them")
                continue
            return wl
    return None


def open_geotiff(path: str | Path) -> Scene:
    import rasterio
    from rasterio.errors import RasterioIOError
    from rasterio.windows import Window

    path = Path(path)
    try:
        with no_georeference():
            src = rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(f"{path}: not a readable GeoTIFF ({exc}); check the file") from exc
    if len(set(src.dtypes)) != 1:
        raise InputError(
            f"{path}: bands have different data types {sorted(set(src.dtypes))}; write all bands with one type"
        )
    scales = np.asarray(src.scales, dtype=np.float64)
    offsets = np.asarray(src.offsets, dtype=np.float64)
    rescale = not (np.all(scales == 1.0) and np.all(offsets == 0.0))
    nodata = src.nodata

    def read(r0: int, r1: int) -> np.ndarray:
        block = src.read(window=Window(0, r0, src.width, r1 - r0))  # (B, rows, W)
        block = np.moveaxis(block, 0, -1)  # (rows, W, B)
        if not rescale:
            return block
        # GDAL band scale/offset: physical = stored * scale + offset. Nodata is masked first,
        # since it refers to the stored values.
        out = block.astype(np.float32)
        if nodata is not None and not np.isnan(nodata):
            out[block == nodata] = np.nan
        return out * scales.astype(np.float32) + offsets.astype(np.float32)

    transform = None if src.transform.is_identity else src.transform
    return Scene(
        path=path,
        height=src.height,
        width=src.width,
        bands=src.count,
        _read=read,
        wavelengths_nm=geotiff_wavelengths(src, str(path)),
        nodata=None if nodata is None else float(nodata),
        crs=src.crs,
        transform=transform,
        format="geotiff",
        notes={"dtype": src.dtypes[0]},
    )
