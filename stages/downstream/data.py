"""Patches for the downstream tasks, read lazily from an artifact's HDF5 file in batches.

Nothing holds a whole dataset in memory: a training step reads the few patches its batch
needs, evaluation walks the held-out patches ``batch`` at a time. Every source converts its
values into one *reference* normalisation (the real dataset's, or the test scene's own), so
noise levels and network inputs mean the same thing for real and synthetic patches:
``physical = value · ref_scale + ref_offset``.

Several real datasets (``--real A --real B``) are one ``SourceUnion``: the rows of every source,
each in its **own** normalisation (its stored [0, 1] values, as training on a corpus sees them:
``stages/data/corpus.py``), their labels mapped into the corpus's class space. Why not one
normalisation: sensors bring different units (DN, reflectance, radiance), so expressing every
source in the first one's would put the others near zero — the noise level, the PSNR peak and
the networks' inputs would mean something else per source. Synthetic samples are converted into
the first source's normalisation, the units a corpus-trained generator records for its samples.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from ..artifacts.store import open_artifact
from ..common.errors import ArtifactError, ConfigError
from ..evaluate.spectra import check_same_grid

FILES = {"hsi-dataset": "patches.h5", "hsi-samples": "samples.h5"}


@dataclass
class PatchSource:
    """Some patches of one artifact; ``rows`` index its ``hsi`` array (sorted)."""

    path: Path
    kind: str
    h5_path: Path
    rows: np.ndarray
    wavelengths_nm: np.ndarray
    size: tuple[int, int]
    has_labels: bool
    has_t2: bool
    gain: float  # own normalised units → reference normalised units
    bias: float
    ref_scale: float  # reference normalised units → physical
    ref_offset: float
    origin: np.ndarray | None = None
    scene_labels: np.ndarray | None = None  # one given class per patch (scene_labels.py), else None
    label_lut: np.ndarray | None = None  # label value → class id (several real datasets), else None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def scenes(self) -> np.ndarray | None:
        """Which scene each patch is cut from (a ``SourceUnion``); None: all from one scene."""
        return None

    @property
    def parts(self) -> list[PatchSource]:
        """The sources in one set of units each (a ``SourceUnion`` has one per real dataset)."""
        return [self]

    def in_units_of(self, reference: PatchSource) -> PatchSource:
        """The same patches, expressed in ``reference``'s normalisation."""
        own_scale, own_offset = self.gain * self.ref_scale, self.bias * self.ref_scale + self.ref_offset
        gain = own_scale / reference.ref_scale
        bias = (own_offset - reference.ref_offset) / reference.ref_scale
        return replace(self, gain=gain, bias=bias, ref_scale=reference.ref_scale, ref_offset=reference.ref_offset)

    def subset(self, picks: np.ndarray) -> PatchSource:
        picks = np.sort(np.asarray(picks, np.int64))
        return replace(
            self,
            rows=self.rows[picks],
            origin=None if self.origin is None else self.origin[picks],
            scene_labels=None if self.scene_labels is None else self.scene_labels[picks],
        )

    def with_scene_labels(self, per_row: np.ndarray) -> PatchSource:
        """These patches labelled by ``per_row`` (one class per row of the artifact's ``hsi``)."""
        return replace(self, has_labels=True, scene_labels=np.asarray(per_row, np.int64)[self.rows])

    def read(self, which) -> dict[str, np.ndarray]:
        """Patches ``which`` (positions in this source, any order, repeats allowed): ``hsi``
        (n, B, H, W) float32 in reference units, ``labels`` (n, H, W) int64, ``hsi_t2``."""
        which = np.asarray(which, np.int64)
        unique, back = np.unique(which, return_inverse=True)
        rows = self.rows[unique]
        h5 = _open_h5(self.h5_path)
        out = {"hsi": self._units(_rows(h5["hsi"], rows))[back]}
        if self.has_t2:
            out["hsi_t2"] = self._units(_rows(h5["hsi_t2"], rows))[back]
        if self.scene_labels is not None:  # a constant mask: every window's majority is the given class
            out["labels"] = np.broadcast_to(self.scene_labels[which][:, None, None], (len(which), *self.size)).copy()
        elif self.has_labels:
            out["labels"] = np.asarray(_rows(h5["labels"], rows), np.int64)[back]
            if self.label_lut is not None:
                out["labels"] = apply_lut(self.label_lut, out["labels"])
        return out

    def _units(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, np.float32) * np.float32(self.gain) + np.float32(self.bias)).astype(np.float32)

    def physical(self, values: np.ndarray) -> np.ndarray:
        return values * np.float32(self.ref_scale) + np.float32(self.ref_offset)

    def batches(self, batch: int) -> Iterator[dict[str, np.ndarray]]:
        for a in range(0, len(self), batch):
            yield self.read(np.arange(a, min(a + batch, len(self))))


def apply_lut(lut: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``lut[labels]``; values outside the table (no class of it) become 0, unlabelled."""
    labels = np.asarray(labels, np.int64)
    inside = (labels >= 0) & (labels < len(lut))
    return np.where(inside, np.asarray(lut, np.int64)[np.where(inside, labels, 0)], 0)


class SourceUnion:
    """The patches of several real datasets read as one source: positions run through the parts
    in order, every part in its own normalisation, labels through each part's ``label_lut``.
    Offers what the tasks use of a ``PatchSource`` (``read``, ``batches``, ``origin``, ``scenes``);
    physical units differ per part, so scoring walks ``parts`` (``restoration.image_scores``).
    ``ref_scale`` / ``ref_offset`` are the first part's: what synthetic samples are converted to."""

    kind = "hsi-dataset"
    scene_labels = None
    rows = None

    def __init__(self, parts: list[PatchSource], luts: list[np.ndarray] | None = None):
        reference = parts[0]
        luts = luts if luts is not None else [None] * len(parts)
        self.parts = [replace(p, label_lut=lut) for p, lut in zip(parts, luts)]
        self.path = " + ".join(str(p.path) for p in parts)
        self.wavelengths_nm = reference.wavelengths_nm
        self.size = reference.size
        self.has_labels = all(p.has_labels for p in parts)
        self.has_t2 = all(p.has_t2 for p in parts)
        self.ref_scale, self.ref_offset = reference.ref_scale, reference.ref_offset
        self.sizes = np.array([len(p) for p in self.parts], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)])
        origins = [p.origin for p in self.parts]
        self.origin = None if any(o is None for o in origins) else np.concatenate(origins)
        self._scenes = np.repeat(np.arange(len(self.parts)), self.sizes)
        self._units = [(p.gain * p.ref_scale, p.bias * p.ref_scale + p.ref_offset) for p in parts]

    def __len__(self) -> int:
        return int(self.sizes.sum())

    @property
    def scenes(self) -> np.ndarray:
        return self._scenes

    def read(self, which) -> dict[str, np.ndarray]:
        which = np.asarray(which, np.int64)
        part = np.searchsorted(self.starts, which, side="right") - 1
        out: dict[str, np.ndarray] = {}
        for k in np.unique(part):
            mine = np.flatnonzero(part == k)
            data = self.parts[k].read(which[mine] - self.starts[k])
            for name, values in data.items():
                if name not in out:
                    out[name] = np.empty((len(which), *values.shape[1:]), values.dtype)
                out[name][mine] = values
        return out

    def batches(self, batch: int) -> Iterator[dict[str, np.ndarray]]:
        for a in range(0, len(self), batch):
            yield self.read(np.arange(a, min(a + batch, len(self))))

    def records(self) -> list[dict]:
        """One entry per real dataset: its path, units and patch count."""
        return [
            {"path": str(p.path), "patches": int(len(p)), "scale": float(scale), "offset": float(offset)}
            for p, (scale, offset) in zip(self.parts, self._units)
        ]


_OPEN: dict[Path, object] = {}


def _open_h5(path: Path):
    """One read-only handle per file for the whole run (a training step reads a few patches;
    reopening the file each step cost more than the step)."""
    import h5py

    h5 = _OPEN.get(path)
    if h5 is None or not h5.id.valid:
        h5 = _OPEN[path] = h5py.File(path, "r")
    return h5


# Arrays small enough to hold are read once and kept (all of them together at most this many
# bytes); larger ones stream from disk, so memory stays bounded whatever the inputs' size. Reading
# row by row cost ~1.5 ms a patch, a fifth of a small task's run time on the embedded scene.
IN_MEMORY_BYTES = 512 * 1024**2
_HELD: dict[tuple, np.ndarray] = {}


def _rows(dataset, rows: np.ndarray) -> np.ndarray:
    """``dataset[rows]``: from memory when the array fits the budget, else contiguous runs as
    slices and single rows one by one (h5py's point selection took ~30 ms for a batch of 8,
    longer than a training step)."""
    key = (dataset.file.filename, dataset.name)
    held = _HELD.get(key)
    if held is None and dataset.nbytes + sum(a.nbytes for a in _HELD.values()) <= IN_MEMORY_BYTES:
        held = _HELD[key] = dataset[...]
    if held is not None:
        return held[rows]
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return dataset[int(rows[0]) : int(rows[-1]) + 1]
    return np.stack([dataset[int(r)] for r in rows])


def close_all() -> None:
    for h5 in _OPEN.values():
        if h5.id.valid:
            h5.close()
    _OPEN.clear()
    _HELD.clear()


def open_source(path: str | Path, role: str, split: str | None = None) -> PatchSource:
    """An hsi-dataset (optionally one split) or hsi-samples artifact, in its own normalisation."""
    import h5py

    artifact = open_artifact(path, tuple(FILES), role=role)
    h5_path = artifact.file(FILES[artifact.kind])
    with h5py.File(h5_path, "r") as h5:
        if "hsi" not in h5 or h5["hsi"].ndim != 4 or h5["hsi"].shape[0] == 0:
            raise ArtifactError(f"{role} {path} holds no images; rebuild it")
        n, _, h, w = h5["hsi"].shape
        wl = np.asarray(h5["wavelengths_nm"][...], np.float64)
        has_labels, has_t2 = "labels" in h5, "hsi_t2" in h5
        if has_labels and h5["labels"].shape != (n, h, w):
            raise ArtifactError(
                f"{role} {path}: labels {h5['labels'].shape} do not match its images {h5['hsi'].shape}; rebuild it"
            )
        if has_t2 and h5["hsi_t2"].shape != h5["hsi"].shape:
            raise ArtifactError(
                f"{role} {path}: the t2 images {tuple(h5['hsi_t2'].shape)} do not have the shape of the t1 images "
                f"{tuple(h5['hsi'].shape)}; a change triplet needs co-registered t1/t2 of one size — rebuild it"
            )
        splits = h5["split"][...].astype(str) if "split" in h5 else None
        origin = np.asarray(h5["origin"][...]) if "origin" in h5 else None
    rows = np.arange(n)
    if split is not None:
        if splits is None or not np.any(splits == split):
            raise ArtifactError(
                f"{role} {path} has no {split} split; ingest it with --val-fraction (e.g. 0.25) "
                "so held-out rows share no patch with the training rows"
            )
        rows = np.flatnonzero(splits == split)
    spectral = artifact.spectral
    return PatchSource(
        Path(path),
        artifact.kind,
        h5_path,
        rows,
        wl,
        (h, w),
        has_labels,
        has_t2,
        1.0,
        0.0,
        float(spectral["scale"]),
        float(spectral["offset"]),
        None if origin is None else origin[rows],
    )


def check_compatible(
    reference: PatchSource, other: PatchSource, role: str, crop: int, labels: bool, pair: bool
) -> None:
    """One message naming the fix for each way ``other`` cannot serve the task."""
    check_same_grid(reference, other, role)
    if min(other.size) < crop:
        raise ConfigError(
            f"{role} {other.path} has {other.size[0]}x{other.size[1]} images, smaller than "
            f"--crop {crop}; lower --crop to {min(other.size)} or less"
        )
    if labels and not other.has_labels:
        raise ConfigError(
            f"{role} {other.path} has no labels, and this task trains on labelled images; give labelled "
            "samples (e.g. from `train-diffusion --space joint`) or a labelled dataset"
        )
    if pair and not other.has_t2:
        raise ConfigError(
            f"{role} {other.path} has no t2 images; the change task needs (t1, t2, change mask) "
            "triplets: `ingest SCENE --pair T2 --change-mask MASK`, or samples of a --pairs joint model"
        )


class Pool:
    """Training patches from several sources; ``draw`` makes a batch of random crops from a
    torch generator, so a training run is fixed by (seed, step)."""

    def __init__(self, sources: list[PatchSource]):
        self.sources = [s for s in sources if len(s)]
        self.sizes = np.array([len(s) for s in self.sources], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)])

    def __len__(self) -> int:
        return int(self.sizes.sum())

    def draw(self, generator, batch: int, crop: int, keys=("hsi",)) -> dict[str, np.ndarray]:
        """``keys`` of ``read`` to return (every source of the pool has them)."""
        import torch

        picks = torch.randint(0, len(self), (batch,), generator=generator).numpy()
        corners = torch.rand((batch, 2), generator=generator).numpy()
        parts: dict[str, list] = {}
        for k, src in enumerate(self.sources):
            mine = np.flatnonzero((picks >= self.starts[k]) & (picks < self.starts[k + 1]))
            if not len(mine):
                continue
            data = src.read(picks[mine] - self.starts[k])
            h, w = src.size
            for j, i in enumerate(mine):
                r = int(corners[i, 0] * (h - crop + 1))
                c = int(corners[i, 1] * (w - crop + 1))
                for name in keys:
                    window = data[name][j][..., r : r + crop, c : c + crop]
                    parts.setdefault(name, [None] * batch)[i] = window
        return {name: np.stack(items) for name, items in parts.items()}


def sample_sources(sources: list[PatchSource], budget: int, rng) -> list[PatchSource]:
    """At most ``budget`` patches drawn without replacement across ``sources``."""
    sizes = [len(s) for s in sources]
    total = sum(sizes)
    if total <= budget:
        return sources
    flat = np.sort(rng.choice(total, size=budget, replace=False))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    return [s.subset(flat[(flat >= starts[k]) & (flat < starts[k + 1])] - starts[k]) for k, s in enumerate(sources)]
