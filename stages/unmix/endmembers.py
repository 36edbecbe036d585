"""VCA endmembers of a dataset's training split (the ``vca`` method, and scene-net's
decoder initialisation)."""

from __future__ import annotations

import numpy as np

from ..artifacts.datasets import PatchSet
from ..common import log
from .vca import vca


def pixels_of(hsi_nbss: np.ndarray) -> np.ndarray:
    """(N, B, S, S) → (B, N·S·S)."""
    return np.moveaxis(hsi_nbss, 1, 0).reshape(hsi_nbss.shape[1], -1)


def extract_endmembers(patches: PatchSet, cfg) -> np.ndarray:
    """VCA endmembers (B, k), normalised units, from the training split's pixels; ``cfg``: an
    ``UnmixConfig`` (endmembers, seed, vca_max_pixels)."""
    train = patches.subset(patches.split == "train") if patches.split is not None else patches
    y = pixels_of(train.hsi)
    if y.shape[1] > cfg.vca_max_pixels:
        pick = np.random.default_rng(cfg.seed).choice(y.shape[1], cfg.vca_max_pixels, replace=False)
        y = y[:, np.sort(pick)]
    result = vca(y, cfg.endmembers, seed=cfg.seed)
    log.info(
        f"unmix: VCA found {cfg.endmembers} endmembers (SNR {result.snr_db:.1f} dB, {result.projection} projection)"
    )
    return result.endmembers
