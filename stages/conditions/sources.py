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

from ..artifacts.datasets import load_patches, load_samples
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


def read_sources(paths: list[str | Path], stretch_percent: float = 2.0) -> SourceSet:
    """Every SOURCE as RGB images, in command-line order."""
    if not paths:
        raise InputError("no SOURCE given; name an hsi-dataset, hsi-samples artifact or RGB image files")
    result = SourceSet()
    for path in map(Path, paths):
        if not path.exists():
            raise InputError(f"SOURCE {path} does not exist; check the path")
        if path.is_dir() and (path / "manifest.json").exists():
            _read_artifact(path, result, stretch_percent)
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputError(
                    f"SOURCE {path} is a directory without manifest.json or image files "
                    f"({', '.join(IMAGE_SUFFIXES)}); give an artifact or images"
                )
            _read_images(path, files, result)
        else:
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise InputError(
                    f"SOURCE {path}: unsupported file type {path.suffix!r}; "
                    f"use {', '.join(IMAGE_SUFFIXES)} or an hsigen artifact directory"
                )
            _read_images(path, [path], result)
    return result


def _read_artifact(path: Path, result: SourceSet, percent: float) -> None:
    artifact = open_artifact(path, ("hsi-dataset", "hsi-samples"), role="SOURCE")
    patches = load_patches(artifact) if artifact.kind == "hsi-dataset" else load_samples(artifact)
    bands = rgb_band_indices(patches.wavelengths_nm)
    wl = [float(patches.wavelengths_nm[i]) for i in bands]
    # One stretch for the whole source, estimated on a deterministic pixel subsample.
    rgb_all = np.stack([patches.hsi[:, i] for i in bands], axis=-1).reshape(-1, 3)
    step = max(1, rgb_all.shape[0] // _STRETCH_SAMPLE)
    low, high = stretch_limits(rgb_all[::step], percent)
    index = len(result.sources)
    result.sources.append(
        {
            "path": str(path),
            "kind": artifact.kind,
            "count": int(patches.hsi.shape[0]),
            "rgb": {
                "targets_nm": list(RGB_NM),
                "bands": bands,
                "wavelengths_nm": wl,
                "stretch_percent": percent,
                "low": low.tolist(),
                "high": high.tolist(),
                "units": "normalised (physical = value * scale + offset)",
            },
        }
    )
    result.inputs.append(input_record(path))
    for i in range(patches.hsi.shape[0]):
        rgb = false_colour(patches.hsi[i], patches.wavelengths_nm, limits=(low, high))
        result.images.append(
            SourceImage(
                rgb=rgb,
                source=index,
                item=i,
                name=f"{path.name}[{i}]",
                labels=None if patches.labels is None else np.asarray(patches.labels[i]),
                split=None if patches.split is None else str(patches.split[i]),
                cube=SpectralCube(patches.hsi[i], patches.wavelengths_nm, patches.scale, patches.offset),
            )
        )


def _read_images(path: Path, files: list[Path], result: SourceSet) -> None:
    index = len(result.sources)
    result.sources.append({"path": str(path), "kind": "images", "count": len(files), "files": [f.name for f in files]})
    for i, file in enumerate(files):
        result.inputs.append(input_record(file))
        result.images.append(SourceImage(rgb=read_rgb(file), source=index, item=i, name=file.name))


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
