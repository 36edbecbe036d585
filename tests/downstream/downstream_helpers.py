"""Synthetic inputs for the downstream tests, cheap and valid: hsi-samples artifacts written
through the project's own writer (``stages.artifacts.samples.write_samples``) from real
training patches with ±5 % brightness and 2 % multiplicative noise — a stand-in for a
generator's samples that every task can train on in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

STEPS = {"denoise": 40, "sr": 80, "segment": 40, "change": 40, "scene-classify": 40}


def write_perturbed_samples(
    dataset: Path,
    out: Path,
    n: int = 24,
    seed: int = 0,
    labels: bool = True,
    scale: float = 3000.0,
    offset: float = 100.0,
) -> Path:
    """``n`` perturbed copies of the dataset's train patches (with labels / t2 when it has
    them), stored with another scale/offset than the dataset, as an hsi-samples artifact."""
    import h5py

    from stages.artifacts.datasets import load_patches
    from stages.artifacts.samples import write_samples
    from stages.artifacts.store import ArtifactWriter, input_record, spectral_block

    patches = load_patches(dataset, split="train")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(patches.hsi), n, replace=len(patches.hsi) < n)
    gain = rng.uniform(0.95, 1.05, (n, 1, 1, 1)).astype(np.float32)

    def perturb(normalised):
        physical = normalised[pick] * np.float32(patches.scale) + np.float32(patches.offset)
        physical = physical * gain * (1 + 0.02 * rng.standard_normal(physical.shape).astype(np.float32))
        return (physical - np.float32(offset)) / np.float32(scale)

    arrays = {}
    if labels and patches.labels is not None:
        arrays["labels"] = patches.labels[pick]
    with h5py.File(patches.artifact.file("patches.h5"), "r") as h5:
        if "hsi_t2" in h5:  # a change pair: t2 of the same train patches
            train_rows = np.flatnonzero(h5["split"][...].astype(str) == "train")
            arrays["hsi_t2"] = perturb(h5["hsi_t2"][...][train_rows])
    writer = ArtifactWriter(
        out, "hsi-samples", "test perturbed samples", {"n": n, "seed": seed, "labels": labels}, [input_record(dataset)]
    )
    with writer.building() as tmp:
        writer.metrics = write_samples(
            tmp, perturb(patches.hsi), patches.wavelengths_nm, scale, offset, "tif", **arrays
        )
        writer.spectral = spectral_block(patches.wavelengths_nm, scale, offset)
    return out


def write_raw_samples(out: Path, hsi: np.ndarray, wavelengths_nm, **arrays) -> Path:
    """An hsi-samples artifact with exactly these arrays in samples.h5 (for malformed inputs
    the project's writer refuses to make, e.g. t2 images of another shape than t1)."""
    import h5py

    from stages.artifacts.store import ArtifactWriter, spectral_block

    writer = ArtifactWriter(out, "hsi-samples", "test raw samples", {"n": int(len(hsi))}, [])
    with writer.building() as tmp:
        with h5py.File(tmp / "samples.h5", "w") as h5:
            h5["hsi"] = np.asarray(hsi, np.float32)
            h5["wavelengths_nm"] = np.asarray(wavelengths_nm, np.float64)
            for name, value in arrays.items():
                h5[name] = value
        writer.spectral = spectral_block(wavelengths_nm, 1.0, 0.0)
    return out
