"""HR RGB guidance for RGAN in ``upsample run`` (Pang et al., HSIGene, arXiv:2409.12470 §3.3.3): the ``Guide`` interface,
``bicubic`` (the LR scene's own RGB bands upsampled) and ``zero`` (Table 7's ablation). The
DSRNet guide (``dsr_guide.py``) implements the same interface."""

from __future__ import annotations

from typing import Callable

# Bicubic reads two LR pixels beyond its sample point; one more for safety of the clamp.
BICUBIC_MARGIN_LR = 3


class Guide:
    """HR RGB guidance for a tile: ``__call__(lr (1, B, h, w) model units, origin (row, col) of the
    tile in the LR scene) → (1, 3, h·s, w·s)`` in the same units, or None for no guidance;
    ``margin_lr`` is how far beyond a pixel it reads, ``align_lr`` the grid tile origins must
    fall on, ``description`` what the manifest records about it."""

    name = "guide"
    margin_lr = 0
    align_lr = 1
    inputs: tuple = ()  # artifacts it reads (e.g. a DSRNet sr-model), hashed into the manifest

    def __init__(self, rgb_idx: list[int], scale: int):
        self.rgb_idx, self.scale = rgb_idx, scale


class BicubicGuide(Guide):
    """The LR scene's own RGB bands, upsampled bicubically."""

    name, margin_lr = "bicubic", BICUBIC_MARGIN_LR

    def __call__(self, lr, origin=(0, 0)):
        from .rgan import upsample_bicubic

        return upsample_bicubic(lr[:, self.rgb_idx], self.scale)


class ZeroGuide(Guide):
    """No RGB information (hsigene Table 7: 'the input of RGB-modality is set as zeros')."""

    name = "zero"

    def __call__(self, lr, origin=(0, 0)):
        return None  # RGAN feeds zeros to its RGB branch


GUIDES: dict[str, Callable[[list[int], int], Guide]] = {"bicubic": BicubicGuide, "zero": ZeroGuide}
