"""Evaluation inputs: hsi-dataset / hsi-samples artifacts in physical units, and their pixels
as spectra (docs/design.md §3: evaluation always compares physical units)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artifacts.store import Artifact, open_artifact
from ..common.errors import ArtifactError, SpectralError
from .streamed import StoredArray, distinct_sample

IMAGE_KINDS = ("hsi-dataset", "hsi-samples")
GRID_TOLERANCE_NM = 0.01
EXACT_PIXELS_BYTES = 256 << 20  # sets up to this size take the exact in-memory distinct-pixel path


@dataclass
class ImageSet:
    """Images of one artifact: cubes (N, B, H, W) in physical units, read from disk on access
    (``StoredArray``; numpy operations on the whole load it)."""

    path: Path
    kind: str
    cubes: np.ndarray | StoredArray
    wavelengths_nm: np.ndarray
    labels: np.ndarray | StoredArray | None = None  # (N, H, W) int, 0 = unlabelled
    split: np.ndarray | None = None  # (N,) str for datasets with a split
    origin: np.ndarray | None = None  # (N, 2)
    condition_ids: np.ndarray | None = None  # (N,) int: samples generated from the same condition
    artifact: Artifact | None = None
    derived_from: ImageSet | None = None  # reference rows: the real images these were made from, one to one

    @property
    def bands(self) -> int:
        return int(self.cubes.shape[1])

    def describe(self) -> dict:
        n, b, h, w = self.cubes.shape
        return {
            "path": str(self.path),
            "kind": self.kind,
            "images": int(n),
            "bands": int(b),
            "height": int(h),
            "width": int(w),
            "labelled": self.labels is not None,
        }


def _condition_ids(artifact: Artifact, n: int) -> np.ndarray | None:
    """Which samples share a generating condition: ``condition_index`` (n,) when the sampler
    wrote one, else identical ``conditions`` arrays."""
    import h5py

    with h5py.File(artifact.file("samples.h5"), "r") as h5:
        if "condition_index" in h5:
            ids = np.asarray(h5["condition_index"][...]).reshape(-1)
            return ids.astype(np.int64) if len(ids) == n else None
        if "conditions" in h5 and h5["conditions"].shape[:1] == (n,):
            cond = np.ascontiguousarray(h5["conditions"][...]).reshape(n, -1)
            _, ids = np.unique(cond, axis=0, return_inverse=True)
            return ids.reshape(-1).astype(np.int64)
    return None


def load_image_set(path: str | Path, role: str = "input", split: str | None = None) -> ImageSet:
    """The images of a dataset (optionally one split) or samples artifact, left on disk."""
    import h5py

    artifact = open_artifact(path, IMAGE_KINDS, role=role)
    name = "patches.h5" if artifact.kind == "hsi-dataset" else "samples.h5"
    h5_path = artifact.file(name)
    with h5py.File(h5_path, "r") as h5:
        shape = h5["hsi"].shape
        wl = np.asarray(h5["wavelengths_nm"][...], np.float64)
        has_labels = "labels" in h5
        splits = h5["split"][...].astype(str) if artifact.kind == "hsi-dataset" and "split" in h5 else None
        origin = h5["origin"][...] if artifact.kind == "hsi-dataset" and "origin" in h5 else None
    rows = None
    if split is not None:
        if splits is None and split != "train":
            raise ArtifactError(f"{artifact.path} has no train/val split; re-run ingest with --val-fraction")
        if splits is not None:
            rows = np.flatnonzero(splits == split)
            splits, origin = splits[rows], None if origin is None else origin[rows]
    if len(shape) != 4 or shape[0] == 0 or (rows is not None and len(rows) == 0):
        raise ArtifactError(f"{role} {path} holds no images (hsi is {shape}); rebuild it")
    sp = artifact.spectral
    cubes = StoredArray(h5_path, "hsi", rows, float(sp["scale"]), float(sp["offset"]))
    labels = StoredArray(h5_path, "labels", rows, dtype=np.int64) if has_labels else None
    cond = None if artifact.kind == "hsi-dataset" else _condition_ids(artifact, len(cubes))
    return ImageSet(Path(path), artifact.kind, cubes, wl, labels, splits, origin, cond, artifact)


def check_same_grid(reference: ImageSet, other: ImageSet, other_role: str = "--generated") -> None:
    a, b = reference.wavelengths_nm, other.wavelengths_nm
    same = a.shape == b.shape and np.allclose(a, b, atol=GRID_TOLERANCE_NM, rtol=0)
    if not same:

        def grid(w):
            return f"{len(w)} bands {w.min():.1f}-{w.max():.1f} nm" if len(w) else "no bands"

        raise SpectralError(
            f"{other_role} {other.path} has another wavelength grid ({grid(b)}) than {reference.path} "
            f"({grid(a)}); resample one of them to the same grid (e.g. `hsigen ingest --bands N --range LO:HI`) "
            "before comparing"
        )


@dataclass
class Spectra:
    values: np.ndarray  # (n, B) float32 physical units
    labels: np.ndarray | None  # (n,) int
    unique_count: int  # before subsampling


def as_pixels(cubes: np.ndarray) -> np.ndarray:
    """(N, B, H, W) images as (N·H·W, B) float32 pixel spectra, image by image, row-major."""
    return np.ascontiguousarray(cubes.transpose(0, 2, 3, 1).reshape(-1, cubes.shape[1]), dtype=np.float32)


def pixels(images: ImageSet, max_spectra: int | None, seed: int) -> Spectra:
    """All unique pixel spectra (overlapping patches repeat pixels), or a seeded random
    subset of ``max_spectra`` of them. Sets larger than EXACT_PIXELS_BYTES are streamed from
    disk (``streamed.distinct_sample``: the same definition, with the unique count estimated
    once more than ``max_spectra`` distinct spectra are seen)."""
    n, b, h, w = images.cubes.shape
    if max_spectra is not None and n * b * h * w * 4 > EXACT_PIXELS_BYTES and isinstance(images.cubes, StoredArray):
        return _streamed_pixels(images, max_spectra, seed)
    flat = as_pixels(np.asarray(images.cubes))
    labels = None if images.labels is None else np.asarray(images.labels).reshape(-1)
    rows = flat.view(np.dtype((np.void, flat.dtype.itemsize * b))).reshape(-1)
    _, first = np.unique(rows, return_index=True)
    first.sort()
    unique_count = len(first)
    if max_spectra is not None and unique_count > max_spectra:
        rng = np.random.default_rng(seed)
        first = np.sort(rng.choice(first, size=max_spectra, replace=False))
    return Spectra(flat[first], None if labels is None else labels[first], unique_count)


def _streamed_pixels(images: ImageSet, max_spectra: int, seed: int) -> Spectra:
    blocks = (
        (as_pixels(cubes), None if labels is None else labels.reshape(-1)) for _, cubes, labels in image_chunks(images)
    )
    values, labels, count = distinct_sample(blocks, images.bands, max_spectra, seed)
    return Spectra(values, labels, count)


def image_chunks(images: ImageSet, which: np.ndarray | None = None):
    """(positions (n,), cubes (n, B, H, W), labels (n, H, W) or None) for blocks of whole images
    — all of them, or the sorted positions ``which`` — read from disk CHUNK_BYTES at a time."""
    which = np.arange(len(images.cubes)) if which is None else np.asarray(which, np.int64)
    if isinstance(images.cubes, StoredArray):
        blocks = images.cubes.take(which).chunks()
    else:  # already in memory
        blocks = [(0, np.asarray(images.cubes)[which])]
    for start, cubes in blocks:
        at = which[start : start + len(cubes)]
        yield at, cubes, None if images.labels is None else np.asarray(images.labels[at])


def pixel_spectra(images: ImageSet, flat: np.ndarray):
    """Spectra of the pixels at ``flat`` (indices into the images' (N·H·W) pixels, any order),
    reading only the images that hold them, a chunk at a time: (positions into ``flat``,
    spectra (m, B) float32) blocks."""
    _, _, h, w = images.cubes.shape
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    for at, cubes, _ in image_chunks(images, np.unique(ordered // (h * w))):
        lo, hi = np.searchsorted(ordered, [at[0] * h * w, (at[-1] + 1) * h * w])
        mine = flat[order[lo:hi]]
        image, offset = np.searchsorted(at, mine // (h * w)), mine % (h * w)
        yield order[lo:hi], np.asarray(cubes[image, :, offset // w, offset % w], np.float32)


def spectra_at(images: ImageSet, flat: np.ndarray) -> np.ndarray:
    """(len(flat), B) float32 spectra of the pixels at ``flat``, in that order (``pixel_spectra``)."""
    out = np.empty((len(flat), images.bands), np.float32)
    for positions, spectra in pixel_spectra(images, flat):
        out[positions] = spectra
    return out


def scene_first_pixels(images: ImageSet) -> np.ndarray:
    """Flat indices into the images' (N·H·W) pixels of each scene pixel's first occurrence, in
    scene order: pixels are identified by scene coordinates (patch origin + offset), so one that
    several overlapping patches contain counts once. Without origins every pixel is its own."""
    n, _, h, w = images.cubes.shape
    if images.origin is None:  # unrelated images
        return np.arange(n * h * w)
    rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    rows = (images.origin[:, 0, None, None] + rr[None]).reshape(-1).astype(np.int64)
    cols = (images.origin[:, 1, None, None] + cc[None]).reshape(-1).astype(np.int64)
    _, first = np.unique(rows * (int(cols.max()) + 1) + cols, return_index=True)
    return first


def labelled_pixel_index(images: ImageSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``labelled_pixel_table`` without the spectra: (flat indices (n,) into the images' pixels,
    labels (n,), split (n,) str) of the unique labelled scene pixels — a few ints per pixel, so
    held whatever the images' size. A pixel takes the split of its patch (the ingest split is by
    rows, so a pixel never belongs to both)."""
    if images.labels is None:
        raise ArtifactError(
            f"{images.path} has no labels; ingest it with --labels (e.g. Indian_pines_gt.mat) or pass --labels"
        )
    n, _, h, w = images.cubes.shape
    split = images.split if images.split is not None else np.array(["train"] * n)
    first = scene_first_pixels(images)
    labels = np.asarray(images.labels).reshape(-1)
    keep = first[labels[first] > 0]
    return keep, labels[keep], split[keep // (h * w)]


def corpus_labelled_pixels(corpus, source: int, role: str):
    """``labelled_pixel_index`` of one corpus source with its labels as corpus class ids (pixels a
    label map sends to unlabelled are dropped): (images, flat, class ids, split)."""
    images = load_image_set(corpus.sources[source].path, role)
    flat, raw, split = labelled_pixel_index(images)
    ids = corpus.label_lut(source)[raw]
    keep = ids > 0
    return images, flat[keep], ids[keep], split[keep]


def labelled_pixel_table(images: ImageSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique labelled scene pixels of a dataset: (spectra (n, B), labels (n,), split (n,) str)."""
    flat, labels, split = labelled_pixel_index(images)
    return spectra_at(images, flat), labels, split


def attach_label_map(images: ImageSet, label_path: str | Path, var: str | None = None) -> ImageSet:
    """Crop a scene label map (H, W) at each patch origin, for datasets ingested without labels."""
    from ..ingest.readers import read_label_map

    label_map = np.asarray(read_label_map(label_path, var=var)).astype(np.int64)
    if images.origin is None:
        raise ArtifactError(f"{images.path} has no patch origins; --labels needs an hsi-dataset from ingest")
    n, _, h, w = images.cubes.shape
    need_h, need_w = int(images.origin[:, 0].max()) + h, int(images.origin[:, 1].max()) + w
    if label_map.shape[0] < need_h or label_map.shape[1] < need_w:
        raise ArtifactError(
            f"--labels {label_path} is {label_map.shape[0]}x{label_map.shape[1]} but the patches of {images.path} "
            f"reach {need_h}x{need_w}; give the label map of the same scene"
        )
    images.labels = np.stack([label_map[r : r + h, c : c + w] for r, c in images.origin])
    return images
