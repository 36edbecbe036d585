"""Session fixtures of the upsample tests: one tiny RGAN and one tiny DSRNet trained once each
(fixed step counts) on the Indian Pines train split, small LR scenes for tiled-vs-untiled runs,
and a folder of RGB PNG tiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dsr_helpers import dsr_config

from stages.common.runtime import torch_threads

# Fixed training length of the shared tiny RGAN (the tiny preset's batch and crop).
RGAN_STEPS = 150


@pytest.fixture(autouse=True)
def _single_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def tiny_rgan(ip_dataset, tmp_path_factory) -> Path:
    """A tiny ×2 RGAN trained for RGAN_STEPS steps with true HR RGB guidance."""
    from stages.training import resolve_preset
    from stages.upsample import train_rgan as train

    out = tmp_path_factory.mktemp("rgan") / "rgan-x2"
    net = resolve_preset(train.PRESETS, "tiny", {"steps": RGAN_STEPS})
    cfg = train.RganTrainConfig(scale=2, preset="tiny", net=net, seed=0, checkpoint_every=0)
    with torch_threads(1):
        train.run(ip_dataset, out, cfg, device="cpu")
    return out


@pytest.fixture(scope="session")
def small_lr_dataset(ip_dataset, tmp_path_factory) -> Path:
    """A 100x36-pixel crop of the Indian Pines cube ingested on the same 48-band grid."""
    import rasterio

    from stages import ingest
    from stages.spectral import target_grid

    with rasterio.open(ip_dataset / "cube.tif") as src:
        crop = src.read(window=((20, 120), (50, 86))).astype(np.float32)  # B, 100, 36
    root = tmp_path_factory.mktemp("small")
    np.save(root / "crop.npy", np.moveaxis(crop, 0, -1))
    grid = list(target_grid())
    cfg = ingest.IngestConfig(target_wavelengths_nm=grid, size=16, stride=16, wavelengths_source="grid")
    ingest.run([root / "crop.npy"], root / "small", cfg, wavelengths=np.asarray(grid))
    return root / "small"


@pytest.fixture(scope="session")
def degraded_val_scene(ip_dataset, tmp_path_factory) -> tuple[Path, np.ndarray]:
    """The held-out (val) rows of Indian Pines, degraded ×2 by the training degradation and
    ingested as an LR hsi-dataset; returns (dataset, the real HR cube (B, 36, 144))."""
    import rasterio
    import torch

    from stages import ingest
    from stages.spectral import target_grid
    from stages.upsample.degrade import degrade

    with rasterio.open(ip_dataset / "cube.tif") as src:
        truth = src.read(window=((109, 145), (0, 144))).astype(np.float32)  # val split: rows >= 109
    lr = degrade(torch.from_numpy(truth)[None].double(), 2)[0].float().numpy()  # linear: physical units
    root = tmp_path_factory.mktemp("degraded")
    np.save(root / "lr.npy", np.moveaxis(lr, 0, -1))
    grid = list(target_grid())
    cfg = ingest.IngestConfig(target_wavelengths_nm=grid, size=16, stride=16, wavelengths_source="grid")
    ingest.run([root / "lr.npy"], root / "lr", cfg, wavelengths=np.asarray(grid))
    return root / "lr", truth


@pytest.fixture(scope="session")
def tiny_dsr(ip_dataset, tmp_path_factory) -> Path:
    """A tiny ×2 DSRNet trained on the RGB bands of the Indian Pines train split for
    DSR_AE_STEPS autoencoder steps and DSR_STEPS denoiser steps."""
    from stages.upsample import train_dsr

    out = tmp_path_factory.mktemp("dsr") / "dsr-x2"
    with torch_threads(1):
        train_dsr.run([ip_dataset], out, dsr_config(), device="cpu")
    return out


@pytest.fixture(scope="session")
def strip_dataset(ip_dataset, tmp_path_factory) -> Path:
    """A 144x24-pixel strip of the Indian Pines cube on the same 48-band grid: taller than a
    tile plus the DSRNet + RGAN context, small enough to sample quickly."""
    import rasterio

    from stages import ingest
    from stages.spectral import target_grid

    with rasterio.open(ip_dataset / "cube.tif") as src:
        crop = src.read(window=((0, 144), (60, 84))).astype(np.float32)
    root = tmp_path_factory.mktemp("strip")
    np.save(root / "strip.npy", np.moveaxis(crop, 0, -1))
    grid = list(target_grid())
    cfg = ingest.IngestConfig(target_wavelengths_nm=grid, size=16, stride=16, wavelengths_source="grid")
    ingest.run([root / "strip.npy"], root / "strip", cfg, wavelengths=np.asarray(grid))
    return root / "strip"


@pytest.fixture(scope="session")
def image_folder(ip_dataset, tmp_path_factory) -> Path:
    """Four 64x64 PNG tiles of the Indian Pines false-colour preview: an RGB image folder."""
    import cv2

    preview = cv2.imread(str(ip_dataset / "preview.png"))
    root = tmp_path_factory.mktemp("images") / "rgb"
    root.mkdir()
    for i, (r, c) in enumerate([(0, 0), (0, 64), (64, 0), (64, 64)]):
        cv2.imwrite(str(root / f"tile_{i}.png"), preview[r : r + 64, c : c + 64])
    return root


@pytest.fixture(scope="session")
def tiny_dsr_x4(tiny_dsr, image_folder, tmp_path_factory) -> Path:
    """A ×4 DSRNet on the PNG folder that reuses tiny_dsr's autoencoder (2 denoiser steps:
    a model for shapes, provenance and scale checks, not for quality)."""
    from stages.upsample import train_dsr

    out = tmp_path_factory.mktemp("dsr4") / "dsr-x4"
    cfg = dsr_config(scale=4, autoencoder=str(tiny_dsr), steps=2, sample_steps=1, eval_images=2)
    with torch_threads(1):
        train_dsr.run([image_folder], out, cfg, device="cpu")
    return out
