"""Files of an ``unmixing`` artifact, written and read in one place.

- ``endmembers.csv``: a ``wavelength_nm`` column and one column per endmember, physical units;
- ``abundances.h5``: ``abundances`` (N, k, S, S) float32, plus ``split`` / ``origin`` /
  ``source_image`` when known; an unmixing of several datasets adds ``source`` (N,) (index of
  the manifest's ``unmixing.sources``) and ``source_row`` (N,) (the patch's row in that source);
- ``endmembers.png``: the spectra plotted (matplotlib, Agg backend).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artifacts import Artifact, open_artifact
from ..common.errors import ArtifactError


@dataclass
class Unmixing:
    endmembers: np.ndarray  # (B, k) physical units
    wavelengths_nm: np.ndarray  # (B,)
    scale: float  # the dataset's normalisation: physical = stored * scale + offset
    offset: float
    abundances: np.ndarray | None  # (N, k, S, S) float32
    split: np.ndarray | None  # (N,) str
    artifact: Artifact
    source: np.ndarray | None = None  # (N,) source index, for an unmixing of several datasets

    @property
    def k(self) -> int:
        return self.endmembers.shape[1]

    def endmembers_normalised(self) -> np.ndarray:
        return (self.endmembers - self.offset) / self.scale

    def training_abundances(self) -> np.ndarray:
        """The training split's maps (all maps when there is no split)."""
        if self.abundances is None:
            raise ArtifactError(f"{self.artifact.path} has no abundance maps")
        if self.split is None or not np.any(self.split == "train"):
            return self.abundances
        return self.abundances[self.split == "train"]

    def training_sources(self) -> np.ndarray | None:
        """The source index of every training map (``training_abundances`` order), or None."""
        if self.source is None or self.split is None or not np.any(self.split == "train"):
            return self.source
        return self.source[self.split == "train"]


def write_endmembers_csv(path: Path, wavelengths_nm, endmembers_bk: np.ndarray) -> None:
    k = endmembers_bk.shape[1]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["wavelength_nm", *[f"endmember_{i + 1}" for i in range(k)]])
        for w, row in zip(wavelengths_nm, endmembers_bk):
            writer.writerow([f"{float(w):.4f}", *[f"{float(v):.9g}" for v in row]])


def read_endmembers_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(wavelengths (B,), endmembers (B, k))."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][0] != "wavelength_nm" or len(rows[0]) < 2:
        raise ArtifactError(f"{path} is not an endmembers table (wavelength_nm, endmember_1, ...); rebuild it")
    table = np.array(rows[1:], dtype=np.float64)
    return table[:, 0], table[:, 1:]


def write_abundances_h5(path: Path, abundances: np.ndarray, **extra) -> None:
    import h5py

    with h5py.File(path, "w") as h5:
        # Byte shuffle + gzip 9: the shipped k = 12 min-volume maps 2.68 → 2.51 MB (gzip 4 alone: 2.68).
        h5.create_dataset(
            "abundances", data=abundances.astype(np.float32), compression="gzip", compression_opts=9, shuffle=True
        )
        for name, value in extra.items():
            if value is None:
                continue
            value = np.asarray(value)
            if value.dtype.kind == "U":
                value = value.astype("S")
            h5.create_dataset(name, data=value)


def plot_endmembers(path: Path, wavelengths_nm, endmembers_bk: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=80)  # 560×320 px: a line plot needs no more
    for i in range(endmembers_bk.shape[1]):
        ax.plot(wavelengths_nm, endmembers_bk[:, i], label=f"endmember {i + 1}")
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("value (physical units)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    # No "Software" text chunk: the PNG's bytes do not depend on the matplotlib version.
    fig.savefig(path, metadata={"Software": None}, pil_kwargs={"optimize": True})
    plt.close(fig)


def load_unmixing(path: str | Path | Artifact, with_abundances: bool = True) -> Unmixing:
    artifact = path if isinstance(path, Artifact) else open_artifact(path, "unmixing")
    wl, endmembers = read_endmembers_csv(artifact.file("endmembers.csv"))
    spectral = artifact.spectral
    abundances = split = source = None
    if with_abundances and artifact.has("abundances.h5"):
        import h5py

        with h5py.File(artifact.file("abundances.h5"), "r") as h5:
            abundances = h5["abundances"][...]
            split = h5["split"][...].astype(str) if "split" in h5 else None
            source = h5["source"][...].astype(np.int64) if "source" in h5 else None
    return Unmixing(
        endmembers, wl, float(spectral["scale"]), float(spectral["offset"]), abundances, split, artifact, source
    )


def write_outputs(tmp: Path, patches, endmembers_norm: np.ndarray, abundances: np.ndarray, title: str) -> None:
    """endmembers.csv, abundances.h5 and endmembers.png of an unmixing of ``patches`` (a PatchSet)."""
    physical = endmembers_norm * patches.scale + patches.offset
    write_endmembers_csv(tmp / "endmembers.csv", patches.wavelengths_nm, physical)
    write_abundances_h5(tmp / "abundances.h5", abundances, split=patches.split, origin=patches.origin)
    plot_endmembers(tmp / "endmembers.png", patches.wavelengths_nm, physical, title)
