"""Shared helpers of the ingest tests: independent references for what ingest computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TARGET = np.linspace(400.0, 1000.0, 48)


def interp_reference(cube_hwb: np.ndarray, wl_nm, target_nm=TARGET) -> np.ndarray:
    """(B_out, H, W): ``np.interp`` per pixel, the definition ingest's matrix must reproduce."""
    cube = np.asarray(cube_hwb, dtype=np.float64)
    h, w, _ = cube.shape
    out = np.empty((len(target_nm), h, w))
    order = np.argsort(wl_nm)
    wl = np.asarray(wl_nm, dtype=np.float64)[order]
    for i in range(h):
        for j in range(w):
            out[:, i, j] = np.interp(target_nm, wl, cube[i, j, order])
    return out


def read_cube(dataset: Path):
    """(data (B, H, W) float32, rasterio profile-ish dict) of an artifact's cube.tif."""
    import rasterio

    with rasterio.open(Path(dataset) / "cube.tif") as src:
        meta = {
            "crs": src.crs,
            "transform": src.transform,
            "nodata": src.nodata,
            "descriptions": src.descriptions,
            "count": src.count,
            "dtype": src.dtypes[0],
        }
        return src.read(), meta


def read_patches(dataset: Path) -> dict:
    import h5py

    with h5py.File(Path(dataset) / "patches.h5", "r") as f:
        out = {k: f[k][()] for k in f.keys()}
        out.update({k: f.attrs[k] for k in f.attrs.keys()})
    return out


def smooth_scene(rng, h: int, w: int, b: int, low: float, high: float) -> np.ndarray:
    """A (H, W, B) float64 scene with spatial and spectral structure spanning [low, high]."""
    yy, xx = np.mgrid[0:h, 0:w]
    spectra = rng.uniform(0, 1, size=(4, b)).cumsum(axis=1)
    spectra /= spectra.max(axis=1, keepdims=True)
    mix = np.stack([np.sin(yy / 5.0) ** 2, np.cos(xx / 7.0) ** 2, (yy + xx) / (h + w), rng.uniform(0, 1, (h, w))], -1)
    mix /= mix.sum(-1, keepdims=True)
    cube = mix @ spectra
    cube = (cube - cube.min()) / (cube.max() - cube.min())
    return low + cube * (high - low)


def entries(folder: Path) -> set[str]:
    return {p.name for p in Path(folder).iterdir()}
