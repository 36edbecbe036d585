"""Which bands of a scene are kept, and at which wavelengths (``--drop-bands``, sidecar lists)."""

from __future__ import annotations

import numpy as np

from ..common.errors import SpectralError
from .scene import Scene


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
            "(a list or an AVIRIS .spc) or --wavelengths START:STOP:COUNT"
        )
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
        "(or differ by exactly the bands named in --drop-bands)"
    )
