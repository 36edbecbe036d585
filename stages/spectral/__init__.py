"""Spectral helpers: wavelength grids, band alignment, false-colour previews."""

from .align import align_block, alignment_matrix
from .preview import false_colour, rgb_band_indices, save_png
from .wavelengths import (
    DEFAULT_GRID,
    parse_band_ranges,
    parse_grid_spec,
    read_wavelengths_file,
    target_grid,
    to_nanometres,
)

__all__ = [
    "DEFAULT_GRID",
    "alignment_matrix",
    "align_block",
    "false_colour",
    "parse_band_ranges",
    "parse_grid_spec",
    "read_wavelengths_file",
    "rgb_band_indices",
    "save_png",
    "target_grid",
    "to_nanometres",
]
