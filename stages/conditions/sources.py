"""Reading condition sources as RGB images (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2: conditions come from the RGB bands).

A SOURCE is an ``hsi-dataset`` (its patches), an ``hsi-samples`` artifact, an image file
(PNG/JPEG/GeoTIFF) or a directory of image files. Hyperspectral sources become RGB through the
bands nearest 640/550/470 nm with one 2 % stretch per source (shared by all its patches, so
colours stay comparable between patches); the choice is recorded for the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..artifacts.store import input_record, open_artifact
from ..common import log
from ..common.errors import InputError
from ..common.georef import no_georeference
from ..spectral.preview import RGB_NM, false_colour, rgb_band_indices, stretch_limits

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_STRETCH_SAMPLE = 2_000_000  # pixels used to estimate the stretch of one source


@dataclass
class SpectralCube:
    """One hyperspectral image of a source, in its normalised units."""

    hsi: np.ndarray  # (B, H, W) float32; physical = hsi * scale + offset
    wavelengths_nm: np.ndarray  # (B,)
    scale: float
    offset: float

    def physical(self) -> np.ndarray:
        return self.hsi * np.float32(self.scale) + np.float32(self.offset)


@dataclass
class SourceImage:
    rgb: np.ndarray  # (H, W, 3) uint8
    source: int  # index into SourceSet.sources
    item: int  # patch / sample / file index inside that source
    name: str
    labels: np.ndarray | None = None  # (H, W) int class map when the source has one
    split: str | None = None
    cube: SpectralCube | None = None  # the hyperspectral image (artifact sources only)


@dataclass
class SourceSet:
    images: list[SourceImage] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)  # description per SOURCE (for index.json)
    inputs: list[dict] = field(default_factory=list)  # manifest input records


@dataclass
class SourceRef:
    """One image of a source, not yet read: what a chunk of work carries (small, picklable)."""

    source: int  # index into SourceList.sources / .specs
    item: int  # patch / sample / file index inside that source
    name: str
    split: str | None = None


@dataclass
class SourceSpec:
    """How to read the images of one source (small, picklable: a worker process reads its own)."""

    kind: str  # "images" | "h5" (an hsi-dataset's patches.h5 or an hsi-samples' samples.h5)
    files: list[str] = field(default_factory=list)  # images: one path per item
    h5: str | None = None
    wavelengths_nm: np.ndarray | None = None
    limits: tuple[np.ndarray, np.ndarray] | None = None  # the source's RGB stretch
    scale: float = 1.0
    offset: float = 0.0
    has_labels: bool = False
    shape: tuple[int, int] | None = None  # (H, W) of every image when known without reading them


@dataclass
class SourceList:
    """Every SOURCE's images as references, read chunk by chunk with ``load_images``."""

    refs: list[SourceRef] = field(default_factory=list)
    specs: list[SourceSpec] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)  # description per SOURCE (for index.json)
    inputs: list[dict] = field(default_factory=list)  # manifest input records


def read_sources(paths: list[str | Path], stretch_percent: float = 2.0) -> SourceSet:
    """Every SOURCE as RGB images, in command-line order (all in memory; ``list_sources`` +
    ``load_images`` read them chunk by chunk)."""
    listing = list_sources(paths, stretch_percent)
    return SourceSet(load_images(listing.specs, listing.refs), listing.sources, listing.inputs)


def list_sources(paths: list[str | Path], stretch_percent: float = 2.0) -> SourceList:
    """Every SOURCE's images, in command-line order, without decoding any image (an artifact's
    RGB stretch is estimated here, reading its three RGB bands in blocks)."""
    if not paths:
        raise InputError("no SOURCE given; name an hsi-dataset, hsi-samples artifact or RGB image files")
    result = SourceList()
    for path in map(Path, paths):
        if not path.exists():
            raise InputError(f"SOURCE {path} does not exist; check the path")
        if path.is_dir() and (path / "manifest.json").exists():
            _list_artifact(path, result, stretch_percent)
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputError(
                    f"SOURCE {path} is a directory without manifest.json or image files "
                    f"({', '.join(IMAGE_SUFFIXES)}); give an artifact or images"
                )
            _list_images(path, files, result)
        else:
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise InputError(
                    f"SOURCE {path}: unsupported file type {path.suffix!r}; "
                    f"use {', '.join(IMAGE_SUFFIXES)} or an hsigen artifact directory"
                )
            _list_images(path, [path], result)
    return result


_STRETCH_BLOCK = 256  # patches read at once while estimating an artifact's stretch


def _list_artifact(path: Path, result: SourceList, percent: float) -> None:
    import h5py

    artifact = open_artifact(path, ("hsi-dataset", "hsi-samples"), role="SOURCE")
    h5_path = artifact.file("patches.h5" if artifact.kind == "hsi-dataset" else "samples.h5")
    with h5py.File(h5_path, "r") as h5:
        hsi = h5["hsi"]
        count, side = int(hsi.shape[0]), tuple(int(s) for s in hsi.shape[2:4])
        wavelengths = h5["wavelengths_nm"][...]
        has_labels = "labels" in h5
        splits = h5["split"][...].astype(str) if artifact.kind == "hsi-dataset" and "split" in h5 else None
        bands = rgb_band_indices(wavelengths)
        # One stretch for the whole source, estimated on a deterministic subsample: every
        # ``step``-th pixel of all patches in order, read a block of patches at a time.
        pixels = side[0] * side[1]
        step = max(1, count * pixels // _STRETCH_SAMPLE)
        picked = []
        for first in range(0, count, _STRETCH_BLOCK):
            last = min(first + _STRETCH_BLOCK, count)
            block = np.stack([hsi[first:last, i] for i in bands], axis=-1).reshape(-1, 3)
            offset = -(first * pixels) % step  # the first flat index ≥ first·pixels that is a multiple of step
            picked.append(block[offset::step])
        low, high = stretch_limits(np.concatenate(picked), percent)
    sp = artifact.spectral
    index = len(result.sources)
    result.sources.append(
        {
            "path": str(path),
            "kind": artifact.kind,
            "count": count,
            "rgb": {
                "targets_nm": list(RGB_NM),
                "bands": bands,
                "wavelengths_nm": [float(wavelengths[i]) for i in bands],
                "stretch_percent": percent,
                "low": low.tolist(),
                "high": high.tolist(),
                "units": "normalised (physical = value * scale + offset)",
            },
        }
    )
    result.specs.append(
        SourceSpec(
            "h5",
            h5=str(h5_path),
            wavelengths_nm=wavelengths,
            limits=(low, high),
            scale=float(sp["scale"]),
            offset=float(sp["offset"]),
            has_labels=has_labels,
            shape=side,
        )
    )
    result.inputs.append(input_record(path))
    for i in range(count):
        split = None if splits is None else str(splits[i])
        result.refs.append(SourceRef(index, i, f"{path.name}[{i}]", split))


def _list_images(path: Path, files: list[Path], result: SourceList) -> None:
    index = len(result.sources)
    result.sources.append({"path": str(path), "kind": "images", "count": len(files), "files": [f.name for f in files]})
    result.specs.append(SourceSpec("images", files=[str(f) for f in files]))
    for i, file in enumerate(files):
        result.inputs.append(input_record(file))
        result.refs.append(SourceRef(index, i, file.name))


def load_images(specs: list[SourceSpec], refs: list[SourceRef]) -> list[SourceImage]:
    """The images of ``refs`` read (each h5 file opened once), in the order given."""
    import contextlib

    images = []
    with contextlib.ExitStack() as stack:
        opened = {}
        for ref in refs:
            spec = specs[ref.source]
            if spec.kind == "images":
                rgb = read_rgb(spec.files[ref.item])
                images.append(SourceImage(rgb=rgb, source=ref.source, item=ref.item, name=ref.name, split=ref.split))
                continue
            if ref.source not in opened:
                import h5py

                opened[ref.source] = stack.enter_context(h5py.File(spec.h5, "r"))
            h5 = opened[ref.source]
            hsi = h5["hsi"][ref.item]
            images.append(
                SourceImage(
                    rgb=false_colour(hsi, spec.wavelengths_nm, limits=spec.limits),
                    source=ref.source,
                    item=ref.item,
                    name=ref.name,
                    labels=np.asarray(h5["labels"][ref.item]) if spec.has_labels else None,
                    split=ref.split,
                    cube=SpectralCube(hsi, spec.wavelengths_nm, spec.scale, spec.offset),
                )
            )
    return images


def read_rgb(path: str | Path) -> np.ndarray:
    """One image file as (H, W, 3) uint8 RGB. Grey images are replicated; alpha is dropped;
    16-bit and float GeoTIFFs get a 2 % stretch."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        return _read_geotiff(path)
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"{path} could not be decoded as an image; is it a valid PNG/JPEG?")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    else:
        image = image[..., :3][..., ::-1]  # BGR(A) → RGB
    return _to_uint8(image, path)


def _read_geotiff(path: Path) -> np.ndarray:
    import rasterio

    try:
        with no_georeference(), rasterio.open(path) as src:
            count = src.count
            data = src.read(list(range(1, min(count, 3) + 1)))
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{path} could not be read as a GeoTIFF ({exc})") from exc
    if count > 3:
        log.warn(
            f"{path} has {count} bands; using bands 1-3 as RGB (ingest it as an hsi-dataset "
            "to pick the bands nearest 640/550/470 nm)"
        )
    image = np.moveaxis(data, 0, -1)
    if image.shape[-1] < 3:
        image = np.repeat(image[..., :1], 3, axis=-1)
    return _to_uint8(image, path)


def _to_uint8(image: np.ndarray, path: Path) -> np.ndarray:
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype == np.uint16 and path.suffix.lower() == ".png":
        return np.ascontiguousarray((image.astype(np.uint32) * 255 // 65535).astype(np.uint8))
    values = image.astype(np.float32)
    low, high = stretch_limits(values, 2.0)
    scaled = (values - low) / np.maximum(high - low, 1e-12)
    return (np.clip(np.nan_to_num(scaled), 0, 1) * 255 + 0.5).astype(np.uint8)


def resize_rgb(rgb: np.ndarray, size: int | None) -> np.ndarray:
    """Area resampling when shrinking, bicubic when enlarging; ``None`` keeps the size."""
    import cv2

    if size is None or rgb.shape[:2] == (size, size):
        return rgb
    shrink = size < min(rgb.shape[:2])
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def resize_labels(labels: np.ndarray, size: int | None) -> np.ndarray:
    import cv2

    if size is None or labels.shape == (size, size):
        return labels
    return cv2.resize(labels.astype(np.int32), (size, size), interpolation=cv2.INTER_NEAREST)
