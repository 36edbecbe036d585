"""The ``Scene`` every reader returns (``readers.py`` dispatches, ``envi.py`` / ``geotiff.py``
open their formats): a (H, W, B) scene read in physical-unit row blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass
class Scene:
    """A (H, W, B) scene with optional metadata; ``read_rows`` returns float32 physical units
    with nodata pixels set to NaN."""

    path: Path
    height: int
    width: int
    bands: int
    _read: Callable[[int, int], np.ndarray]
    wavelengths_nm: np.ndarray | None = None
    nodata: float | None = None
    scale_factor: float = 1.0
    bad_bands: np.ndarray | None = None  # boolean keep-mask from the file (ENVI bbl)
    crs: object | None = None
    transform: object | None = None
    format: str = ""
    notes: dict = field(default_factory=dict)

    def read_rows(self, r0: int, r1: int, bands=None) -> np.ndarray:
        """Rows ``r0:r1`` as float32 (rows, W, B) physical units; ``bands`` (indices) selects
        bands before the conversion so unused bands cost no float memory."""
        raw = self._read(r0, r1)
        if bands is not None:
            raw = raw[..., bands]
        block = raw.astype(np.float32, order="C")  # C order: the alignment matmul is much faster
        if self.nodata is not None and not np.isnan(self.nodata):
            block[raw == self.nodata] = np.nan
        if self.scale_factor != 1.0:
            block /= np.float32(self.scale_factor)
        return block
