"""Bounded in-memory subsets of a corpus: what statistics, baselines, calibration and held-out
metrics need when the corpus itself does not fit in memory."""

from __future__ import annotations

import numpy as np

from ..artifacts.datasets import PatchSet
from .corpus import Corpus
from .plan import allocate
from .stream import PatchReader


def read_subset(corpus: Corpus, split: str, limit: int, seed: int, labels: bool = False) -> PatchSet | None:
    """At most ``limit`` patches of ``split`` (train | val) over all sources, chosen with the
    corpus weights from a generator seeded by ``seed``, in per-source normalised units; labels
    as global class ids. ``scale``/``offset`` are the first source's (the manifest's reference).
    None when no source has patches of ``split``."""
    rows = [s.train_rows if split == "train" else s.val_rows for s in corpus.sources]
    available = [len(r) for r in rows]
    if sum(available) == 0:
        return None
    rng = np.random.default_rng([seed, 0xC0DE, 1 if split == "train" else 2])
    weights = [w if a else 0.0 for w, a in zip(corpus.weights(), available)]
    counts = allocate(min(limit, sum(available)), list(np.asarray(weights) / sum(weights)), available)
    reader = PatchReader([s.h5_path for s in corpus.sources])
    hsi, labs = [], []
    for k, (r, n) in enumerate(zip(rows, counts)):
        chosen = np.sort(rng.choice(r, size=n, replace=False)) if n else r[:0]
        lut = corpus.label_lut(k) if labels else None
        for row in chosen:
            hsi.append(reader.dataset(k, "hsi")[int(row)])
            if labels:
                labs.append(lut[reader.dataset(k, "labels")[int(row)]])
    first = corpus.sources[0]
    return PatchSet(
        np.stack(hsi).astype(np.float32),
        first.wavelengths_nm,
        first.scale,
        first.offset,
        np.stack(labs).astype(np.int64) if labels else None,
        None,
        np.array([split] * len(hsi)),
        first.artifact,
    )
