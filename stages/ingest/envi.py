"""ENVI raster reader (``.hdr`` text header + raw binary data file).

The header is parsed here (not with the ``spectral`` package) so every field hsigen relies
on is checked with a clear message. Data are read lazily: each ``Scene._read(r0, r1)`` maps
only the file, copies the requested rows and unmaps again, so resident memory stays at one
block whatever the file size (a long-lived ``numpy.memmap`` of the whole file would keep
every page it touched resident and count towards the process RSS).

Header format: ENVI Header Format reference (L3Harris, "ENVI Header Files"):
``key = value`` lines after a first line ``ENVI``; ``{...}`` values may span lines; keys are
case-insensitive.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common import log
from ..common.errors import InputError, SpectralError
from ..spectral.wavelengths import to_nanometres
from .scene import Scene

# ENVI ``data type`` codes hsigen reads (complex 6/9 and 64-bit integers 14/15 are refused).
ENVI_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4"}
_DTYPE_NAMES = {1: "uint8", 2: "int16", 3: "int32", 4: "float32", 5: "float64", 12: "uint16", 13: "uint32"}
SUPPORTED_DTYPES = ", ".join(f"{code} ({_DTYPE_NAMES[code]})" for code in ENVI_DTYPES)

# Data files are named like the header without ``.hdr`` or with one of these extensions.
DATA_EXTENSIONS = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip", ".bin", ".sli", ".envi")

_NON_LENGTH_UNITS = {"index", "wavenumber", "ghz", "mhz"}


def find_envi_header(path: str | Path) -> Path | None:
    """The ``.hdr`` belonging to ``path`` (itself when it is one), or None."""
    path = Path(path)
    if path.suffix.lower() == ".hdr":
        return path if path.is_file() else None
    candidates = [path.with_name(path.name + ".hdr"), path.with_name(path.name + ".HDR")]
    if path.suffix:
        candidates += [path.with_suffix(".hdr"), path.with_suffix(".HDR")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def parse_envi_header(path: str | Path) -> dict[str, str]:
    """``{lower-case key: raw value}``; brace values keep their inner text (may span lines)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"ENVI header {path} cannot be read ({exc.strerror}); check the path and permissions") from exc
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    if not lines or lines[0].strip().upper() != "ENVI":
        raise InputError(
            f"{path} is not an ENVI header: its first line must be 'ENVI'; give the .hdr written with the data file"
        )
    fields: dict[str, str] = {}
    i = 1
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        if "=" not in line:
            raise InputError(f"ENVI header {path}, line {i}: {line.strip()!r} is not 'key = value'; fix the header")
        key, value = line.split("=", 1)
        key = " ".join(key.split()).lower()
        value = value.strip()
        if value.startswith("{"):
            # Collect until the matching closing brace, possibly several lines further on.
            while value.count("{") > value.count("}"):
                if i >= len(lines):
                    raise InputError(
                        f"ENVI header {path}: the value of {key!r} opens '{{' but never closes it; add the missing '}}'"
                    )
                value += "\n" + lines[i]
                i += 1
            value = value.strip()[1:-1].strip()
        fields[key] = value
    return fields


def _list_values(raw: str) -> list[str]:
    return [v.strip() for v in raw.split(",") if v.strip()]


def _int_field(fields: dict, key: str, path: Path, default: int | None = None) -> int:
    if key not in fields:
        if default is not None:
            return default
        raise InputError(f"ENVI header {path} has no '{key}' field; add '{key} = N' to the header")
    try:
        value = float(fields[key])
        if value != int(value):
            raise ValueError
        return int(value)
    except ValueError:
        raise InputError(f"ENVI header {path}: '{key} = {fields[key]}' is not an integer; fix the header") from None


def _float_list(fields: dict, key: str, path: Path) -> list[float]:
    try:
        return [float(v) for v in _list_values(fields[key])]
    except ValueError:
        raise InputError(f"ENVI header {path}: '{key}' holds a value that is not a number; fix the header") from None


def _find_data_file(header: Path, fields: dict) -> Path:
    if "data file" in fields:  # some writers name it explicitly
        named = header.parent / fields["data file"]
        if named.is_file():
            return named
    stem = header.name[:-4]  # strip ".hdr" (any case)
    candidates = []
    for ext in DATA_EXTENSIONS:
        for variant in {ext, ext.upper()}:
            candidate = header.parent / (stem + variant)
            if candidate.is_file() and candidate != header:
                candidates.append(candidate)
    if not candidates:
        raise InputError(
            f"ENVI header {header} has no data file beside it (looked for {stem} with "
            f"{', '.join(e or '(no extension)' for e in DATA_EXTENSIONS)}); put the data file next to its header"
        )
    return candidates[0]


def _wavelengths(fields: dict, path: Path, bands: int) -> np.ndarray | None:
    if "wavelength" not in fields:
        return None
    values = _float_list(fields, "wavelength", path)
    if len(values) != bands:
        raise SpectralError(
            f"ENVI header {path}: {len(values)} wavelengths for {bands} bands; "
            "fix the header or give --wavelengths-file"
        )
    units = fields.get("wavelength units", "").strip() or None
    if units is not None and units.lower() == "unknown":
        units = None
    if units is not None and units.lower() in _NON_LENGTH_UNITS:
        log.warn(f"{path}: wavelength units are {units!r}, not a length; ignoring them (give --wavelengths-file)")
        return None
    return to_nanometres(values, units, where=str(path))


def _bad_bands(fields: dict, path: Path, bands: int) -> np.ndarray | None:
    if "bbl" not in fields:
        return None
    values = _float_list(fields, "bbl", path)
    if len(values) != bands:
        raise InputError(f"ENVI header {path}: 'bbl' has {len(values)} entries for {bands} bands; fix the header")
    return np.asarray(values) != 0


def _georeference(fields: dict, path: Path):
    """(crs, transform) from ``map info`` (+ ``coordinate system string``), or (None, None).

    ``map info = {projection, ref x, ref y, easting, northing, x size, y size, [zone, hemisphere,]
    datum, units=..., rotation=...}``; the reference pixel is 1-based with (1, 1) the
    upper-left corner of the upper-left pixel.
    """
    if "map info" not in fields:
        return None, None
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    parts = _list_values(fields["map info"])
    try:
        ref_x, ref_y, east, north, dx, dy = (float(v) for v in parts[1:7])
    except (ValueError, IndexError):
        log.warn(f"{path}: cannot parse 'map info'; the cube will carry no georeference")
        return None, None
    if any(p.lower().startswith("rotation") for p in parts):
        log.warn(f"{path}: rotated 'map info' is not carried over; the cube will carry no georeference")
        return None, None
    transform = Affine(dx, 0.0, east - (ref_x - 1.0) * dx, 0.0, -dy, north + (ref_y - 1.0) * dy)
    crs = None
    projection = parts[0].lower()
    if "coordinate system string" in fields:
        try:
            crs = CRS.from_wkt(fields["coordinate system string"])
        except Exception:
            log.warn(f"{path}: unreadable 'coordinate system string'; the cube carries a transform but no CRS")
    elif projection == "utm" and len(parts) >= 10:
        datum = parts[9].lower().replace("-", "").replace(" ", "")
        if datum == "wgs84":
            north_hemi = parts[8].strip().lower().startswith("n")
            crs = CRS.from_epsg((32600 if north_hemi else 32700) + int(float(parts[7])))
    elif projection.startswith("geographic") and len(parts) >= 8:
        if parts[7].lower().replace("-", "").replace(" ", "") == "wgs84":
            crs = CRS.from_epsg(4326)
    if crs is None and "coordinate system string" not in fields:
        log.warn(f"{path}: 'map info' projection {parts[0]!r} is not translated; the cube carries the transform only")
    return crs, transform


def open_envi(header_path: str | Path, data_path: str | Path | None = None) -> Scene:
    header = Path(header_path)
    fields = parse_envi_header(header)
    if "spectral library" in fields.get("file type", "").lower():
        raise InputError(
            f"{header} is an ENVI spectral library (one spectrum per line), not an image; "
            "ingest reads image cubes — spectral libraries are inputs of the unmixing stage"
        )
    width = _int_field(fields, "samples", header)
    height = _int_field(fields, "lines", header)
    bands = _int_field(fields, "bands", header)
    if min(width, height, bands) < 1:
        raise InputError(f"ENVI header {header}: samples, lines and bands must all be >= 1; fix the header")
    code = _int_field(fields, "data type", header)
    if code not in ENVI_DTYPES:
        raise InputError(
            f"ENVI header {header}: data type {code} is not supported; hsigen reads data types "
            f"{SUPPORTED_DTYPES} — convert the file to one of them"
        )
    byte_order = _int_field(fields, "byte order", header, default=0)
    if byte_order not in (0, 1):
        raise InputError(f"ENVI header {header}: byte order {byte_order} must be 0 (little endian) or 1 (big endian)")
    dtype = np.dtype(("<" if byte_order == 0 else ">") + ENVI_DTYPES[code])
    offset = _int_field(fields, "header offset", header, default=0)
    interleave = fields.get("interleave", "").strip().lower()
    if interleave not in ("bsq", "bil", "bip"):
        raise InputError(
            f"ENVI header {header}: interleave {fields.get('interleave', '(missing)')!r} "
            "must be bsq, bil or bip; fix the header"
        )

    data = Path(data_path) if data_path is not None else _find_data_file(header, fields)
    needed = offset + width * height * bands * dtype.itemsize
    actual = data.stat().st_size
    if actual < needed:
        raise InputError(
            f"ENVI data file {data} is {actual} bytes but its header implies {needed} "
            f"({offset} + {height} lines x {width} samples x {bands} bands x {dtype.itemsize} bytes); "
            "the file is truncated or the header is wrong"
        )

    # Array shape of the whole file in its interleave, and the axis order that yields (rows, W, B).
    shape, to_rwb = {
        "bsq": ((bands, height, width), (1, 2, 0)),
        "bil": ((height, bands, width), (0, 2, 1)),
        "bip": ((height, width, bands), (0, 1, 2)),
    }[interleave]

    def read(r0: int, r1: int) -> np.ndarray:
        # BIL/BIP rows are one contiguous byte range: map just that; BSQ needs every band plane.
        if interleave == "bsq":
            mm = np.memmap(data, dtype=dtype, mode="r", offset=offset, shape=shape)
            block = np.array(mm[:, r0:r1, :])
        else:
            row_bytes = width * bands * dtype.itemsize
            mm = np.memmap(data, dtype=dtype, mode="r", offset=offset + r0 * row_bytes, shape=(r1 - r0,) + shape[1:])
            block = np.array(mm)
        del mm  # unmap now: touched file pages leave this process's RSS
        return block.transpose(to_rwb)

    nodata = None
    if "data ignore value" in fields:
        try:
            nodata = float(fields["data ignore value"])
        except ValueError:
            raise InputError(f"ENVI header {header}: 'data ignore value' is not a number; fix the header") from None
    scale = 1.0
    if "reflectance scale factor" in fields:
        try:
            scale = float(fields["reflectance scale factor"])
        except ValueError:
            raise InputError(
                f"ENVI header {header}: 'reflectance scale factor' is not a number; fix the header"
            ) from None
        if not np.isfinite(scale) or scale == 0:
            raise InputError(f"ENVI header {header}: 'reflectance scale factor' must be a non-zero number")
    crs, transform = _georeference(fields, header)
    return Scene(
        path=data,
        height=height,
        width=width,
        bands=bands,
        _read=read,
        wavelengths_nm=_wavelengths(fields, header, bands),
        nodata=nodata,
        scale_factor=scale,
        bad_bands=_bad_bands(fields, header, bands),
        crs=crs,
        transform=transform,
        format="envi",
        notes={"interleave": interleave, "data_type": code, "byte_order": byte_order, "header_offset": offset},
    )
