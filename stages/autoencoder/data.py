"""Training/held-out arrays for ``train-ae`` and the per-step random batch.

Crops come from a *training field*: when the training patches carry their ``origin`` in
the scene and agree where they overlap (patches of one ingested cube), they are stitched
back into the training part of the scene and every crop window that lies wholly inside it
is a candidate (Indian Pines: ~8,900 distinct 32×32 windows instead of 54 patches). Other
datasets crop inside single patches. Each crop is then turned by one of the 8 symmetries of
the square (rotations by 90° and flips), which leave nadir imagery and its label maps valid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..artifacts.datasets import PatchSet, load_patches
from ..common import log
from ..common.errors import ConfigError, InputError, SpectralError

LOADERS = ("auto", "memory", "stream")
MEMORY_LIMIT_BYTES = 512 << 20  # --loader auto: a single dataset up to this size trains from memory
SUBSET_PATCHES = 256  # streamed corpora: at most this many patches kept in memory for stats /
SUBSET_BYTES = 64 << 20  # baseline / metrics, and at most this many bytes (5 patches of 48×256×256);
#                                   the PCA baseline and the metrics make float64 copies of them


@dataclass
class AEData:
    train: PatchSet
    heldout: PatchSet
    heldout_split: str
    classes: list[int] | None = None  # two-stream: label values, in one-hot order
    train_t2: PatchSet | None = None  # two-stream --pairs: the co-registered t2 image
    heldout_t2: PatchSet | None = None
    corpus: object = None  # stages.data.Corpus: every source, for the record
    streamed: bool = False  # train from disk (train/heldout are then bounded subsets)
    train_patches: int = 0  # all training patches of the corpus
    class_names: list[str] | None = None  # two-stream over a streamed corpus: the corpus's class names by id

    @property
    def loader(self) -> str:
        return "stream" if self.streamed else "memory"


def class_index(labels: np.ndarray, classes: list[int]) -> np.ndarray:
    """Label values → 0..K-1 in the order of ``classes`` (values outside map to an error)."""
    lut = {v: i for i, v in enumerate(classes)}
    unknown = sorted(set(np.unique(labels).tolist()) - set(lut))
    if unknown:
        raise InputError(
            f"labels {unknown} were not seen when the autoencoder was trained "
            f"(its classes are {classes}); use a dataset with the same label set"
        )
    out = np.zeros(labels.shape, dtype=np.int64)
    for v, i in lut.items():
        out[labels == v] = i
    return out


def _split(patches: PatchSet) -> tuple[PatchSet, PatchSet, str]:
    if patches.split is None or not np.any(patches.split == "val"):
        log.warn(
            f"{patches.artifact.path} has no val split: held-out metrics are measured on the training "
            "patches (re-run ingest with --val-fraction for a real held-out set)"
        )
        return patches, patches, "train"
    return patches.subset(patches.split == "train"), patches.subset(patches.split == "val"), "val"


def choose_loader(corpus, loader: str, pairs) -> bool:
    """Whether to stream: ``memory`` keeps today's in-memory path (stitched scene crops) and
    needs one source; ``auto`` streams several sources or one above MEMORY_LIMIT_BYTES."""
    if loader not in LOADERS:
        raise ConfigError(f"--loader {loader!r}: choose one of {', '.join(LOADERS)}")
    if loader == "memory" and not corpus.single:
        raise ConfigError("--loader memory reads one dataset; several sources train with --loader stream (or auto)")
    stream = loader == "stream" or (
        loader == "auto" and (not corpus.single or corpus.train_bytes() > MEMORY_LIMIT_BYTES)
    )
    if stream and pairs is not None:
        raise ConfigError(
            "--pairs (change pairs) trains from memory on one dataset; drop the extra sources or use --loader memory"
        )
    return stream


def load_training_data(dataset, kind: str, factor: int, pairs=None, loader: str = "auto", seed: int = 0) -> AEData:
    """``dataset``: one path or several (artifact directories and/or corpus YAML files)."""
    from ..data import open_corpus

    corpus = open_corpus(dataset)
    size = corpus.size
    if size % factor:
        raise InputError(
            f"{corpus.sources[0].path}: patch size {size} is not divisible by the downsampling factor "
            f"{factor}; re-run ingest with --size a multiple of it"
        )
    if choose_loader(corpus, loader, pairs):
        return _streamed_data(corpus, kind, seed)
    data = _in_memory_data(corpus.sources[0].path, kind, factor, pairs)
    data.corpus, data.train_patches = corpus, len(data.train.hsi)
    return data


def _streamed_data(corpus, kind: str, seed: int) -> AEData:
    """Bounded subsets in memory; the training batches themselves come from disk."""
    from ..data.subset import read_subset

    labels = kind == "two-stream"
    if labels:
        _, names = corpus.label_table()
    limit = max(1, min(SUBSET_PATCHES, SUBSET_BYTES // (corpus.bands * corpus.size**2 * 4)))
    train = read_subset(corpus, "train", limit, seed, labels)
    held = read_subset(corpus, "val", limit, seed, labels)
    which = "val"
    if held is None:
        log.warn(
            f"{corpus.origin}: no source has a val split: held-out metrics are measured on training patches "
            "(re-run ingest with --val-fraction for a real held-out set)"
        )
        held, which = train, "train"
    data = AEData(train, held, which, corpus=corpus, streamed=True, train_patches=sum(corpus.train_counts()))
    if labels:
        data.classes, data.class_names = list(range(len(names))), list(names)
    return data


def _in_memory_data(dataset, kind: str, factor: int, pairs=None) -> AEData:
    patches = load_patches(dataset)
    size = patches.hsi.shape[-1]
    if size % factor:
        raise InputError(
            f"{dataset}: patch size {size} is not divisible by the downsampling factor {factor}; "
            "re-run ingest with --size a multiple of it"
        )
    train, heldout, which = _split(patches)
    if len(train.hsi) == 0:
        raise InputError(f"{dataset} has no training patches; re-run ingest with a smaller --val-fraction")
    data = AEData(train, heldout, which)
    if kind == "two-stream":
        if patches.labels is None:
            raise InputError(
                f"--kind two-stream needs a label map: {dataset} has no labels; re-run ingest with --labels FILE"
            )
        data.classes = sorted(int(v) for v in np.unique(patches.labels))
    if pairs is not None:
        other = load_second_images(pairs)
        if other.hsi.shape != patches.hsi.shape or not np.allclose(other.wavelengths_nm, patches.wavelengths_nm):
            raise InputError(
                f"--pairs {pairs}: its patches {other.hsi.shape} must match {dataset}'s "
                f"{patches.hsi.shape} band for band (co-registered images ingested alike)"
            )
        if patches.origin is not None and other.origin is not None and not np.array_equal(patches.origin, other.origin):
            raise InputError(
                f"--pairs {pairs}: patch origins differ from {dataset}'s; ingest both scenes with "
                "the same --size/--stride so the patches are co-registered"
            )
        if abs(other.scale - patches.scale) > 1e-6 * patches.scale or abs(other.offset - patches.offset) > 1e-6 * max(
            1.0, abs(patches.offset)
        ):
            # Bring the second image into the first one's normalisation (one codec for both).
            other.hsi = ((other.physical() - patches.offset) / patches.scale).astype(np.float32)
            other.scale, other.offset = patches.scale, patches.offset
        other.split = patches.split
        t2_train, t2_held, _ = _split(other) if which == "val" else (other, other, "train")
        data.train_t2, data.heldout_t2 = t2_train, t2_held
    return data


def load_second_images(path, split: str | None = None) -> PatchSet:
    """The t2 images of change pairs (``--pairs``): the dataset's own ``hsi_t2`` when it holds
    change pairs (``ingest --pair``), otherwise its ``hsi``."""
    import h5py

    other = load_patches(path, split)
    with h5py.File(other.artifact.file("patches.h5"), "r") as h5:
        if "hsi_t2" in h5:
            t2 = h5["hsi_t2"][...]
            other.hsi = t2 if split is None or other.split is None else t2[h5["split"][...].astype(str) == split]
    return other


def check_wavelengths(expected_nm, got_nm, what: str) -> None:
    expected, got = np.asarray(expected_nm, float), np.asarray(got_nm, float)
    if expected.shape != got.shape or not np.allclose(expected, got, atol=0.05):
        raise SpectralError(
            f"{what} has {got.size} bands at {got[:1]}..{got[-1:]} nm but the autoencoder was "
            f"trained on {expected.size} bands at {expected[:1]}..{expected[-1:]} nm; "
            "ingest it with the same --bands/--range"
        )


@dataclass
class TrainingField:
    """Named training arrays to crop from, and the crop windows allowed in them.

    ``arrays``: name → (M, C, H, W) or (M, H, W) tensors (M = 1 for a stitched scene, M =
    patches otherwise); ``windows``: (K, 3) rows (array index, top, left) of every allowed
    ``crop``×``crop`` window, or None for "any window inside any of the M arrays"."""

    arrays: dict
    crop: int
    windows: object = None  # torch.LongTensor (K, 3) or None
    stitched: bool = False

    @property
    def window_count(self) -> int:
        if self.windows is not None:
            return int(self.windows.shape[0])
        first = next(iter(self.arrays.values()))
        side = first.shape[-1] - self.crop + 1
        return int(first.shape[0]) * side * side


def _stitch(origin: np.ndarray, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The scene region the patches cover, or None when they disagree where they overlap
    (then they are not crops of one image) or have no origins."""
    if origin is None or len(origin) == 0:
        return None
    size = next(iter(arrays.values())).shape[-1]
    rows, cols = int(origin[:, 0].max()) + size, int(origin[:, 1].max()) + size
    if origin.min() < 0:
        return None
    covered = np.zeros((rows, cols), dtype=bool)
    scenes = {k: np.zeros(a.shape[1:-2] + (rows, cols), dtype=a.dtype) for k, a in arrays.items()}
    for i, (r, c) in enumerate(origin.astype(int)):
        window = (slice(r, r + size), slice(c, c + size))
        seen = covered[window]
        for name, a in arrays.items():
            target = scenes[name][(...,) + window]
            if seen.any() and not np.array_equal(target[..., seen], a[i][..., seen]):
                return None
            target[...] = a[i]
        covered[window] = True
    scenes["_covered"] = covered
    return scenes


def _window_corners(covered: np.ndarray, crop: int) -> np.ndarray:
    """(top, left) of every crop×crop window wholly inside ``covered`` (integral image)."""
    integral = np.pad(covered.astype(np.int64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    inside = (
        integral[crop:, crop:] - integral[:-crop, crop:] - integral[crop:, :-crop] + integral[:-crop, :-crop]
    ) == crop * crop
    return np.argwhere(inside)


def training_field(arrays: dict[str, np.ndarray], origin: np.ndarray | None, crop: int, device) -> TrainingField:
    """Stitch the training patches into their scene when possible (see the module docstring)."""
    import torch

    size = next(iter(arrays.values())).shape[-1]
    crop = min(int(crop), size)
    scenes = _stitch(origin, arrays)
    if scenes is None:
        return TrainingField({k: torch.from_numpy(a).to(device) for k, a in arrays.items()}, crop)
    corners = _window_corners(scenes.pop("_covered"), crop)
    windows = np.concatenate([np.zeros((len(corners), 1), np.int64), corners], axis=1)
    return TrainingField(
        {k: torch.from_numpy(a[None]).to(device) for k, a in scenes.items()},
        crop,
        torch.from_numpy(windows),
        stitched=True,
    )


def dihedral(x, k: int):
    """The k-th of the 8 symmetries of the square (k % 4 quarter turns, then a flip if k ≥ 4)
    on the last two axes."""
    import torch

    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def random_batch(generator, field: TrainingField, batch_size: int) -> dict:
    """``batch_size`` random crops of every array in ``field`` (the same windows and
    symmetries for all of them), drawn from ``generator`` so a resumed run sees the same
    batches."""
    import torch

    crop = field.crop
    if field.windows is not None:
        pick = torch.randint(field.windows.shape[0], (batch_size,), generator=generator)
        chosen = field.windows[pick]
        idx, top, left = chosen[:, 0], chosen[:, 1], chosen[:, 2]
    else:
        first = next(iter(field.arrays.values()))
        n, size = first.shape[0], first.shape[-1]
        idx = torch.randint(n, (batch_size,), generator=generator)
        top = torch.randint(size - crop + 1, (batch_size,), generator=generator)
        left = torch.randint(size - crop + 1, (batch_size,), generator=generator)
    symmetry = torch.randint(8, (batch_size,), generator=generator)
    out = {}
    for name, array in field.arrays.items():
        items = [
            dihedral(
                array[int(idx[k])][..., int(top[k]) : int(top[k]) + crop, int(left[k]) : int(left[k]) + crop],
                int(symmetry[k]),
            )
            for k in range(batch_size)
        ]
        out[name] = torch.stack(items)
    return out
