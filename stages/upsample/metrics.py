"""Super-resolution quality: MPSNR, SAM, and a nearest-spectrum angle for spectral fidelity."""

from __future__ import annotations

import numpy as np

from ..spectral.quality import mpsnr, sam_degrees  # noqa: F401  (re-exported for callers)


def nearest_spectrum_angle(spectra: np.ndarray, reference: np.ndarray, chunk: int = 2048) -> float:
    """Mean over ``spectra`` (n, B) of the angle (degrees) to the closest spectrum of
    ``reference`` (m, B): how far produced spectra stray from the ones that exist."""
    ref = np.asarray(reference, np.float64)
    ref = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-20)
    best = []
    for i in range(0, len(spectra), chunk):
        s = np.asarray(spectra[i : i + chunk], np.float64)
        s = s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-20)
        best.append(np.clip((s @ ref.T).max(axis=1), -1.0, 1.0))
    return float(np.degrees(np.arccos(np.concatenate(best))).mean())
