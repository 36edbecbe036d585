"""Fixtures of the evaluate tests: small hsi-samples artifacts written here (the layout the
sampling stage writes), and one tiny classifier trained once per session (fixed steps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CLASSIFIER_STEPS = 150


def write_samples(
    out: Path,
    cubes_physical: np.ndarray,
    wavelengths_nm,
    labels=None,
    condition_index=None,
    scale: float = 1000.0,
    offset: float = 0.0,
    conditions: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """An hsi-samples artifact: samples.h5 with hsi (n, B, H, W) in normalised units (and, given
    ``conditions`` = (maps (n, 6, H, W), presence (n, 6)), a latent generator's condition arrays)."""
    import h5py

    from stages.artifacts.store import ArtifactWriter, spectral_block

    writer = ArtifactWriter(out, "hsi-samples", "test", {"n": int(len(cubes_physical))}, [])
    with writer.building() as tmp:
        with h5py.File(tmp / "samples.h5", "w") as h5:
            h5["hsi"] = ((np.asarray(cubes_physical, np.float64) - offset) / scale).astype(np.float32)
            h5["wavelengths_nm"] = np.asarray(wavelengths_nm, np.float64)
            if labels is not None:
                h5["labels"] = np.asarray(labels, np.int32)
            if condition_index is not None:
                h5["condition_index"] = np.asarray(condition_index, np.int64)
            if conditions is not None:
                h5["conditions"] = np.asarray(conditions[0], np.float32)
                h5["condition_present"] = np.asarray(conditions[1], np.float32)
        writer.spectral = spectral_block(wavelengths_nm, scale, offset)
    return out


@pytest.fixture(scope="session")
def samples_writer():
    """``write_samples`` for tests that need their own hsi-samples artifact."""
    return write_samples


@pytest.fixture(scope="session")
def ip_patches(ip_dataset):
    from stages.artifacts.datasets import load_patches

    return load_patches(ip_dataset)


@pytest.fixture(scope="session")
def ip_samples(ip_patches, tmp_path_factory) -> Path:
    """'Generated' samples: real training patches with ±5 % brightness and 2 % noise, with
    their labels, two samples per condition (for SDM)."""
    rng = np.random.default_rng(7)
    train = ip_patches.subset(ip_patches.split == "train")
    pick = rng.choice(len(train.hsi), 6, replace=False)
    base = train.physical()[pick]
    cubes = np.concatenate([base, base]) * rng.uniform(0.95, 1.05, (12, 1, 1, 1))
    cubes = cubes * (1 + 0.02 * rng.standard_normal(cubes.shape))
    labels = np.concatenate([train.labels[pick], train.labels[pick]])
    out = tmp_path_factory.mktemp("samples") / "noisy"
    return write_samples(
        out, cubes, ip_patches.wavelengths_nm, labels, np.tile(np.arange(6), 2), scale=4000.0, offset=500.0
    )


@pytest.fixture(scope="session")
def ip_classifier(ip_dataset, tmp_path_factory) -> Path:
    from stages.evaluate import TrainClassifierConfig
    from stages.evaluate.train import run

    out = tmp_path_factory.mktemp("classifier") / "clf"
    run(ip_dataset, out, TrainClassifierConfig(preset="tiny", steps=CLASSIFIER_STEPS, device="cpu"))
    return out
