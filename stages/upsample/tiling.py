"""Seamless tiled super-resolution of whole scenes with bounded memory.

The LR scene is cut into cores of ``tile`` × ``tile`` LR pixels; each core is read with a
margin of context on every side, upsampled, and only the core's HR pixels are kept (crop,
no blending). The margin is the upsampler's exact reach (``Upsampler.margin_lr``), and core
and margin are multiples of its grid period (``Upsampler.align_lr``), so every window grid
inside the network falls where it would on the whole scene: a tiled result equals the
untiled one up to floating-point summation order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np


class Upsampler(Protocol):
    scale: int
    margin_lr: int  # LR pixels of context a core needs on each side
    align_lr: int  # tile origins must be multiples of this (LR pixels)
    fill: float  # value given to nodata pixels before upsampling (physical units)

    def __call__(self, lr: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
        """(B, h, w) float32 physical units whose top-left pixel is ``origin`` (row, col) of the
        scene → (B, h·s, w·s) float32 physical units; NaN-free input."""


@dataclass(frozen=True)
class Tile:
    core: tuple[int, int, int, int]  # r0, r1, c0, c1 (LR) written to the output
    read: tuple[int, int, int, int]  # r0, r1, c0, c1 (LR) read as input, core ⊂ read


def round_up(value: int, multiple: int) -> int:
    return max(multiple, int(math.ceil(value / multiple)) * multiple)


def plan_tiles(height: int, width: int, tile: int, margin: int, align: int) -> list[Tile]:
    """Cores of ``tile`` (rounded up to ``align``) covering the scene once, each with
    ``margin`` (rounded up to ``align``) of context clipped at the scene's edges."""
    tile, margin = round_up(tile, align), (round_up(margin, align) if margin > 0 else 0)
    tiles = []
    for r0 in range(0, height, tile):
        r1 = min(height, r0 + tile)
        for c0 in range(0, width, tile):
            c1 = min(width, c0 + tile)
            tiles.append(
                Tile(
                    (r0, r1, c0, c1),
                    (max(0, r0 - margin), min(height, r1 + margin), max(0, c0 - margin), min(width, c1 + margin)),
                )
            )
    return tiles


def super_resolve_tiled(
    read_lr: Callable[[int, int, int, int], np.ndarray],
    write_hr: Callable[[np.ndarray, int, int], None],
    height: int,
    width: int,
    upsampler: Upsampler,
    tile: int,
    progress=None,
) -> int:
    """Run ``upsampler`` over the scene tile by tile.

    ``read_lr(r0, r1, c0, c1)`` returns LR pixels (B, r1-r0, c1-c0) with NaN for nodata;
    ``write_hr(block, R0, C0)`` receives each HR core (B, h, w) at HR origin (R0, C0), NaN
    where the nearest LR pixel was nodata. Nodata pixels are set to ``upsampler.fill`` for
    the upsampler. Returns the number of tiles."""
    s = upsampler.scale
    tiles = plan_tiles(height, width, tile, upsampler.margin_lr, upsampler.align_lr)
    for t in tiles:
        r0, r1, c0, c1 = t.read
        lr = read_lr(r0, r1, c0, c1).astype(np.float32, copy=False)
        invalid = ~np.all(np.isfinite(lr), axis=0)
        if invalid.any():
            lr = np.where(np.isfinite(lr), lr, np.float32(upsampler.fill))
        hr = upsampler(lr, (r0, c0))
        cr0, cr1, cc0, cc1 = t.core
        core = hr[:, (cr0 - r0) * s : (cr1 - r0) * s, (cc0 - c0) * s : (cc1 - c0) * s]
        if invalid.any():
            mask = invalid[cr0 - r0 : cr1 - r0, cc0 - c0 : cc1 - c0].repeat(s, 0).repeat(s, 1)
            core = np.where(mask[None], np.float32(np.nan), core)
        write_hr(np.ascontiguousarray(core, dtype=np.float32), cr0 * s, cc0 * s)
        if progress is not None:
            progress.advance()
    return len(tiles)


def tile_count(height: int, width: int, tile: int, upsampler: Upsampler) -> int:
    return len(plan_tiles(height, width, tile, upsampler.margin_lr, upsampler.align_lr))
