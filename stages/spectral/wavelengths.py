"""Wavelength grids and sidecar files, always in nanometres (docs/design.md §3)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..common import log
from ..common.errors import InputError, SpectralError

# HSIGene's grid: 48 bands over 400-1000 nm (Pang et al., HSIGene, arXiv:2409.12470 §3.1.1).
DEFAULT_GRID = np.linspace(400.0, 1000.0, 48)

_UNIT_FACTORS = {
    "nanometers": 1.0,
    "nanometer": 1.0,
    "nm": 1.0,
    "micrometers": 1000.0,
    "micrometer": 1000.0,
    "microns": 1000.0,
    "micron": 1000.0,
    "um": 1000.0,
    "µm": 1000.0,
    "millimeters": 1e6,
    "mm": 1e6,
    "wavenumber": None,
    "index": None,
    "unknown": None,
}


def to_nanometres(values, units: str | None = None, where: str = "wavelengths") -> np.ndarray:
    """Convert to nm. Without units, values all below 100 are taken as micrometres (with a warning)."""
    wl = np.asarray(values, dtype=np.float64).ravel()
    if wl.size == 0 or not np.all(np.isfinite(wl)):
        raise SpectralError(f"{where}: wavelengths are empty or not finite numbers")
    if units:
        key = units.strip().lower()
        if key not in _UNIT_FACTORS:
            raise SpectralError(f"{where}: unknown wavelength units {units!r}; use nanometers or micrometers")
        factor = _UNIT_FACTORS[key]
        if factor is None:
            raise SpectralError(f"{where}: wavelength units {units!r} are not a length; give --wavelengths-file in nm")
        return wl * factor
    if np.nanmax(wl) < 100:
        log.warn(f"{where}: no wavelength units given and values are < 100; reading them as micrometres")
        return wl * 1000.0
    return wl


def parse_grid_spec(spec: str) -> np.ndarray:
    """``START:STOP:COUNT`` in nm, e.g. ``400:1000:48`` (both ends included)."""
    parts = spec.split(":")
    try:
        start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise SpectralError(f"wavelength grid {spec!r} is not START:STOP:COUNT (e.g. 400:1000:48)") from None
    if count < 1 or stop < start:
        raise SpectralError(f"wavelength grid {spec!r}: need COUNT >= 1 and STOP >= START")
    return np.linspace(start, stop, count)


def target_grid(bands: int | None = None, wl_range: str | None = None, grid_file: Path | None = None) -> np.ndarray:
    """The target grid from ``--bands``/``--range`` (``400:1000`` nm) or a grid file."""
    if grid_file is not None:
        return read_wavelengths_file(grid_file)
    lo, hi = 400.0, 1000.0
    if wl_range:
        try:
            lo, hi = (float(v) for v in wl_range.replace(",", ":").split(":"))
        except ValueError:
            raise SpectralError(f"--range {wl_range!r} is not LOW:HIGH in nm (e.g. 400:1000)") from None
        if hi <= lo:
            raise SpectralError(f"--range {wl_range!r}: HIGH must exceed LOW")
    count = 48 if bands is None else int(bands)
    if count < 1:
        raise SpectralError("--bands must be at least 1")
    return np.linspace(lo, hi, count)


def read_wavelengths_file(path: str | Path) -> np.ndarray:
    """A text/CSV list of centres (one per line or comma separated; a header line is skipped),
    or an AVIRIS ``.spc`` calibration file (first column = centre nm, two header lines)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"wavelengths file {path} does not exist; check --wavelengths-file")
    text = path.read_text(errors="replace")
    values: list[float] = []
    units = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if re.search(r"micro|\bum\b|µm", line, re.I) and not re.match(r"^[\d.+-]", line):
            units = "micrometers"
        fields = [f for f in re.split(r"[,\s;]+", line) if f]
        try:
            numbers = [float(f) for f in fields]
        except ValueError:
            continue  # header or comment-like line
        if path.suffix.lower() == ".spc" or len(numbers) > 1 and "," not in line and len(fields) >= 4:
            values.append(numbers[0])  # calibration table: first column is the centre
        else:
            values.extend(numbers)
    if not values:
        raise InputError(f"wavelengths file {path} holds no numbers; give one centre per line in nm")
    return to_nanometres(values, units, where=str(path))


def parse_band_ranges(spec: str | None) -> list[int]:
    """``104-108,150-163,220`` → sorted unique 1-based band indices."""
    if not spec:
        return []
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise SpectralError(f"--drop-bands {spec!r}: {part!r} is not N or N-M (1-based band numbers)")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if a < 1 or b < a:
            raise SpectralError(f"--drop-bands {spec!r}: {part!r} must be 1-based with N <= M")
        out.update(range(a, b + 1))
    return sorted(out)
