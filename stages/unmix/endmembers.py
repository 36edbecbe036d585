"""VCA endmembers of a dataset's training split (the ``vca`` method, and scene-net's
decoder initialisation), or of a corpus's training pixels (several datasets)."""

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
    """VCA endmembers (B, k) in the per-source normalised units shared by every source, and the
    VCA pixels taken from each source."""
    y, counts = corpus_training_pixels(corpus, cfg.vca_max_pixels, cfg.seed)
    result = vca(y, cfg.endmembers, seed=cfg.seed)
    log.info(
        f"unmix: VCA found {cfg.endmembers} endmembers in {y.shape[1]:,} training pixels of "
        f"{len(corpus.sources)} sources (SNR {result.snr_db:.1f} dB, {result.projection} projection)"
    )
    return result.endmembers, counts
