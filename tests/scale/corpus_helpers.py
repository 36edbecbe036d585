"""Builders of the corpus tests (tests/scale): two scenes mixed from the same library spectra in
different units, and a micro two-stream autoencoder trained on a labelled corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from joint_helpers import AE_MICRO

# USGS splib07 records (as tests/abundance/conftest.py): green vegetation, sea water, dry grass,
# chlorite; their spectra differ clearly in 400-1000 nm.
MIX_PICK = (0, 4, 7, 35)
MIX_BANDS = "400:1000:48"


def mixed_scene(spectra: np.ndarray, seed: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(cube (H, W, B), abundances (H, W, k)): random Dirichlet mixtures of ``spectra`` (B, k)
    with one pure pixel of every endmember in the first row of every 16×16 patch, so the scene's
    min/max (ingest's normalisation) are the endmembers' extremes whatever the units."""
    rng = np.random.default_rng(seed)
    k = spectra.shape[1]
    abundances = rng.dirichlet(np.full(k, 0.6), size=(h, w))
    for r in range(0, h, 16):
        for c in range(0, w, 16):
            abundances[r, c : c + k] = np.eye(k)
    return (abundances @ spectra.T).astype(np.float64), abundances


# The joint tests' micro two-stream autoencoder, 4 steps: these tests check records and class
# spaces, not quality.
TWO_STREAM_MICRO = {**AE_MICRO, "steps": 4}


def train_corpus_two_stream(datasets, out: Path) -> Path:
    from stages.autoencoder import PRESETS, TrainAEConfig, run
    from stages.training import resolve_preset

    model = resolve_preset(PRESETS["two-stream"], "tiny", dict(TWO_STREAM_MICRO))
    run(list(datasets), out, TrainAEConfig(kind="two-stream", preset="tiny", model=model, seed=0), "cpu", workers=0)
    return out
