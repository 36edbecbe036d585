"""Reading ``hsi-dataset`` and ``hsi-samples`` arrays back, for every downstream stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.errors import ArtifactError
from .store import Artifact, open_artifact


@dataclass
class PatchSet:
    """Normalised patches with their spectral metadata; physical = hsi * scale + offset."""

    hsi: np.ndarray  # (N, B, S, S) float32
    wavelengths_nm: np.ndarray  # (B,)
    scale: float
    offset: float
    labels: np.ndarray | None = None  # (N, S, S) int
    origin: np.ndarray | None = None  # (N, 2)
    split: np.ndarray | None = None  # (N,) str
    artifact: Artifact | None = None

    def physical(self) -> np.ndarray:
        return self.hsi * np.float32(self.scale) + np.float32(self.offset)

    def subset(self, mask) -> PatchSet:
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return PatchSet(
            self.hsi[mask],
            self.wavelengths_nm,
            self.scale,
            self.offset,
            pick(self.labels),
            pick(self.origin),
            pick(self.split),
            self.artifact,
        )


def load_patches(path: str | Path | Artifact, split: str | None = None) -> PatchSet:
    """All patches of an ``hsi-dataset`` (optionally one ``split``: train | val)."""
    artifact = path if isinstance(path, Artifact) else open_artifact(path, "hsi-dataset")
    import h5py

    with h5py.File(artifact.file("patches.h5"), "r") as h5:
        hsi = h5["hsi"][...]
        labels = h5["labels"][...] if "labels" in h5 else None
        origin = h5["origin"][...] if "origin" in h5 else None
        splits = h5["split"][...].astype(str) if "split" in h5 else None
        wl = h5["wavelengths_nm"][...]
    sp = artifact.spectral
    patches = PatchSet(hsi, wl, float(sp["scale"]), float(sp["offset"]), labels, origin, splits, artifact)
    if split is not None:
        if splits is None:
            if split == "train":
                return patches
            raise ArtifactError(f"{artifact.path} has no train/val split; re-run ingest with --val-fraction")
        patches = patches.subset(splits == split)
    return patches


def load_samples(path: str | Path | Artifact) -> PatchSet:
    """The generated HSIs of an ``hsi-samples`` artifact (same conventions as patches)."""
    artifact = path if isinstance(path, Artifact) else open_artifact(path, "hsi-samples")
    import h5py

    with h5py.File(artifact.file("samples.h5"), "r") as h5:
        hsi = h5["hsi"][...]
        labels = h5["labels"][...] if "labels" in h5 else None
        wl = h5["wavelengths_nm"][...]
    sp = artifact.spectral
    return PatchSet(hsi, wl, float(sp["scale"]), float(sp["offset"]), labels, None, None, artifact)
