"""Training/held-out arrays for ``train-ae`` and the per-step random batch (crops, flips)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..artifacts.datasets import PatchSet, load_patches
from ..common import log
from ..common.errors import InputError, SpectralError


@dataclass
class AEData:
    train: PatchSet
    heldout: PatchSet
    heldout_split: str
    classes: list[int] | None = None          # two-stream: label values, in one-hot order
    train_b: PatchSet | None = None           # two-stream --pairs: the co-registered image
    heldout_b: PatchSet | None = None


def class_index(labels: np.ndarray, classes: list[int]) -> np.ndarray:
    """Label values → 0..K-1 in the order of ``classes`` (values outside map to an error)."""
    lut = {v: i for i, v in enumerate(classes)}
    unknown = sorted(set(np.unique(labels).tolist()) - set(lut))
    if unknown:
        raise InputError(f"labels {unknown} were not seen when the autoencoder was trained "
                         f"(its classes are {classes}); use a dataset with the same label set")
    out = np.zeros(labels.shape, dtype=np.int64)
    for v, i in lut.items():
        out[labels == v] = i
    return out


def _split(patches: PatchSet) -> tuple[PatchSet, PatchSet, str]:
    if patches.split is None or not np.any(patches.split == "val"):
        log.warn(f"{patches.artifact.path} has no val split: held-out metrics are measured on the training "
                 "patches (re-run ingest with --val-fraction for a real held-out set)")
        return patches, patches, "train"
    return patches.subset(patches.split == "train"), patches.subset(patches.split == "val"), "val"


def load_training_data(dataset, kind: str, factor: int, pairs=None) -> AEData:
    patches = load_patches(dataset)
    size = patches.hsi.shape[-1]
    if size % factor:
        raise InputError(f"{dataset}: patch size {size} is not divisible by the downsampling factor {factor}; "
                         "re-run ingest with --size a multiple of it")
    train, heldout, which = _split(patches)
    if len(train.hsi) == 0:
        raise InputError(f"{dataset} has no training patches; re-run ingest with a smaller --val-fraction")
    data = AEData(train, heldout, which)
    if kind == "two-stream":
        if patches.labels is None:
            raise InputError(f"--kind two-stream needs a label map: {dataset} has no labels; "
                             "re-run ingest with --labels FILE")
        data.classes = sorted(int(v) for v in np.unique(patches.labels))
    if pairs is not None:
        other = load_patches(pairs)
        if other.hsi.shape != patches.hsi.shape or not np.allclose(other.wavelengths_nm, patches.wavelengths_nm):
            raise InputError(f"--pairs {pairs}: its patches {other.hsi.shape} must match {dataset}'s "
                             f"{patches.hsi.shape} band for band (co-registered images ingested alike)")
        if patches.origin is not None and other.origin is not None and not np.array_equal(patches.origin,
                                                                                         other.origin):
            raise InputError(f"--pairs {pairs}: patch origins differ from {dataset}'s; ingest both scenes with "
                             "the same --size/--stride so the patches are co-registered")
        if abs(other.scale - patches.scale) > 1e-6 * patches.scale or abs(other.offset - patches.offset) > 1e-6 * max(
                1.0, abs(patches.offset)):
            # Bring the second image into the first one's normalisation (one codec for both).
            other.hsi = ((other.physical() - patches.offset) / patches.scale).astype(np.float32)
            other.scale, other.offset = patches.scale, patches.offset
        other.split = patches.split
        b_train, b_held, _ = _split(other) if which == "val" else (other, other, "train")
        data.train_b, data.heldout_b = b_train, b_held
    return data


def check_wavelengths(expected_nm, got_nm, what: str) -> None:
    expected, got = np.asarray(expected_nm, float), np.asarray(got_nm, float)
    if expected.shape != got.shape or not np.allclose(expected, got, atol=0.05):
        raise SpectralError(f"{what} has {got.size} bands at {got[:1]}..{got[-1:]} nm but the autoencoder was "
                            f"trained on {expected.size} bands at {expected[:1]}..{expected[-1:]} nm; "
                            "ingest it with the same --bands/--range")


def random_batch(generator, arrays: list, batch_size: int, crop: int):
    """Pick ``batch_size`` patches, one random ``crop``×``crop`` window and random flips,
    all drawn from ``generator`` (so a resumed run sees the same batches)."""
    import torch

    first = arrays[0]
    n, size = first.shape[0], first.shape[-1]
    crop = min(int(crop), size)
    idx = torch.randint(n, (batch_size,), generator=generator)
    top = torch.randint(size - crop + 1, (batch_size,), generator=generator)
    left = torch.randint(size - crop + 1, (batch_size,), generator=generator)
    flips = torch.rand(batch_size, 2, generator=generator) < 0.5
    outs = []
    for array in arrays:
        if array is None:
            outs.append(None)
            continue
        items = []
        for k in range(batch_size):
            t, l = int(top[k]), int(left[k])
            item = array[int(idx[k])][..., t:t + crop, l:l + crop]
            if flips[k, 0]:
                item = item.flip(-1)
            if flips[k, 1]:
                item = item.flip(-2)
            items.append(item)
        outs.append(torch.stack(items))
    return outs
