"""Endmembers of a dataset's training split, or of a corpus's training pixels (several datasets):
VCA (the ``vca`` method, and scene-net's decoder initialisation), refined into the minimum-volume
enclosing simplex for the ``min-volume`` method (``min_volume.py``)."""

from __future__ import annotations

import numpy as np

from ..artifacts.datasets import PatchSet
from ..common import log
from .min_volume import min_volume_endmembers
from .vca import vca


def pixels_of(hsi_nbss: np.ndarray) -> np.ndarray:
    """(N, B, S, S) → (B, N·S·S)."""
    return np.moveaxis(hsi_nbss, 1, 0).reshape(hsi_nbss.shape[1], -1)


def extract_endmembers(patches: PatchSet, cfg) -> np.ndarray:
    """Endmembers (B, k), normalised units, from the training split's pixels; ``cfg``: an
    ``UnmixConfig`` (method, endmembers, seed, vca_max_pixels)."""
    train = patches.subset(patches.split == "train") if patches.split is not None else patches
    y = pixels_of(train.hsi)
    if y.shape[1] > cfg.vca_max_pixels:
        pick = np.random.default_rng(cfg.seed).choice(y.shape[1], cfg.vca_max_pixels, replace=False)
        y = y[:, np.sort(pick)]
    result = vca(y, cfg.endmembers, seed=cfg.seed)
    log.info(
        f"unmix: VCA found {cfg.endmembers} endmembers (SNR {result.snr_db:.1f} dB, {result.projection} projection)"
    )
    if cfg.method == "min-volume":
        return refine(y, result.endmembers, floor=physical_floor(patches.scale, patches.offset))
    return result.endmembers


def physical_floor(scale: float, offset: float) -> float:
    """Physical 0 in normalised units (radiance and reflectance are not negative), or the data's
    own minimum (normalised 0) where the sensor already stores values below 0."""
    return min(-offset / scale, 0.0)


def refine(y: np.ndarray, vca_endmembers: np.ndarray, floor: float) -> np.ndarray:
    """The minimum-volume simplex enclosing ``y`` (B, N), started at the VCA endmembers."""
    fit = min_volume_endmembers(y, vca_endmembers, floor=floor)
    log.info(
        f"unmix: minimum-volume simplex (log-volume +{fit.log_volume_gain:.1f} over VCA's); "
        f"{fit.outside_share:.1%} of the pixels stay outside it (FCLS puts them on its faces)"
    )
    return fit.endmembers


def corpus_training_pixels(corpus, limit: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """(B, n) training pixels of every source of ``corpus`` (``stages.data.Corpus``), each in its
    own per-source normalisation, and how many came from each source: all of them when they are
    at most ``limit``, else a seeded random subset split over the sources by the corpus weights
    (default: by training patches, i.e. uniform over pixels). One source is read at a time."""
    import h5py

    from ..data.plan import allocate

    pixels_per_patch = corpus.size * corpus.size
    available = [len(s.train_rows) * pixels_per_patch for s in corpus.sources]
    counts = allocate(min(limit, sum(available)), corpus.weights(), available)
    rng = np.random.default_rng([seed, 0x5CA])
    chosen = []
    for src, n, total in zip(corpus.sources, counts, available):
        with h5py.File(src.h5_path, "r") as h5:
            y = pixels_of(np.asarray(h5["hsi"][...][src.train_rows], np.float32))
        if n < total:
            y = y[:, np.sort(rng.choice(total, n, replace=False))]
        chosen.append(y)
    return np.concatenate(chosen, axis=1), [int(c) for c in counts]


def extract_corpus_endmembers(corpus, cfg) -> tuple[np.ndarray, list[int]]:
    """Endmembers (B, k) in the per-source normalised units shared by every source, and the
    VCA pixels taken from each source."""
    y, counts = corpus_training_pixels(corpus, cfg.vca_max_pixels, cfg.seed)
    result = vca(y, cfg.endmembers, seed=cfg.seed)
    log.info(
        f"unmix: VCA found {cfg.endmembers} endmembers in {y.shape[1]:,} training pixels of "
        f"{len(corpus.sources)} sources (SNR {result.snr_db:.1f} dB, {result.projection} projection)"
    )
    if cfg.method == "min-volume":  # the strictest source's floor keeps every source's spectra ≥ 0
        floor = max(physical_floor(s.scale, s.offset) for s in corpus.sources)
        return refine(y, result.endmembers, floor=floor), counts
    return result.endmembers, counts
