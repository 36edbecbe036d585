"""Abundance-space diffusion (HUD eqs. 4-6) and `hsigen sample`: simplex, band grid,
reproducibility, samplers, file formats, `--resume` wiring and bad input."""

import json
import math

import h5py
import numpy as np
import rasterio
import torch

from stages.artifacts import open_artifact
from stages.artifacts.datasets import load_patches, load_samples
from stages.diffusion.spaces import abundance as space


def test_projection_pair_is_hud_eq6():
    k = 5
    x = np.random.default_rng(0).dirichlet(np.ones(k), size=(3, 8, 8))
    x = np.moveaxis(x, -1, 1)
    x[0, :, 0, 0] = [1, 0, 0, 0, 0]
    norm = space.projection_constants(k)
    back = space.to_abundances(space.to_model_space(x, norm), norm)
    eps = math.exp(-math.log(k) - 8)
    assert np.allclose(back, (x + eps) / (1 + math.exp(-8)), atol=1e-6)  # eq. 6
    assert np.abs(back.sum(1) - 1).max() < 1e-12


def test_standard_scaling_whitens_z_and_round_trips():
    """z_scaling standard: each endmember's Z has mean 0 / std 1 over the training maps, and the
    abundances come back exactly (eq. 6) as with the fixed range."""
    k = 4
    x = np.moveaxis(np.random.default_rng(1).dirichlet([4.0, 2.0, 1.0, 0.5], size=(6, 8, 8)), -1, 1)
    x[:, 3] = 0.0  # an endmember absent from every map
    x /= x.sum(1, keepdims=True)
    norm = space.fit_standard_scaling(x, space.projection_constants(k))
    z = space.to_model_space(x, norm).astype(np.float64)
    assert np.abs(z[:, :3].mean(axis=(0, 2, 3))).max() < 1e-5
    assert np.abs(z[:, :3].std(axis=(0, 2, 3)) - 1).max() < 1e-5
    assert norm["z_scale"][3] == 1.0 and np.abs(z[:, 3]).max() < 1e-5
    eps = norm["eps"]
    back = space.to_abundances(z, norm)
    assert np.allclose(back, (x + eps) / (1 + k * eps), atol=1e-6)


def test_dry_run_prints_parameter_counts(cli, ip_unmixing, tmp_path):
    code, stdout, _ = cli("train-diffusion", "--unmixing", ip_unmixing, "--preset", "paper", "--dry-run", "--json")
    assert code == 0
    report = json.loads(stdout)
    # msf-diff Table 4 reports 99.76 M for 5 endmembers; this UNet's [1, 2, 2, 4, 4] × 128 layout has 111.0 M
    assert report["parameters"]["total"] == 111_034_117
    assert report["diffusion_steps"] == 2000 and report["prediction_type"] == "epsilon" and report["channels"] == 5
    code, stdout, _ = cli("train-diffusion", "--unmixing", ip_unmixing, "--dry-run", "--json")
    report = json.loads(stdout)
    assert code == 0 and report["parameters"]["total"] == 1_115_109 and report["prediction_type"] == "sample"
    code, stdout, _ = cli("train-diffusion", "--unmixing", ip_unmixing, "--dry-run")
    assert code == 0 and stdout.startswith(
        "diffusion UNet (tiny): 1,115,109 parameters (unet 1,115,109); space abundance"
    )


def test_samples_on_simplex_with_dataset_bands(tiny_samples, ip_dataset):
    samples = load_samples(tiny_samples)
    patches = load_patches(ip_dataset)
    with h5py.File(open_artifact(tiny_samples).file("samples.h5")) as h5:
        abundances = h5["abundances"][...]
    assert abundances.shape == (16, 5, 16, 16)
    assert abundances.min() >= 0 and np.abs(abundances.sum(1) - 1).max() < 1e-5
    assert samples.hsi.shape == (16, 48, 16, 16)
    assert np.allclose(samples.wavelengths_nm, patches.wavelengths_nm)
    assert (samples.scale, samples.offset) == (patches.scale, patches.offset)
    # Per-sample GeoTIFFs are physical units with wavelength band descriptions.
    art = open_artifact(tiny_samples)
    with rasterio.open(art.file("samples/sample_0003.tif")) as src:
        assert src.count == 48 and src.descriptions[0] == "400.0 nm"
        assert np.allclose(src.read(), samples.physical()[3], rtol=1e-5)
    assert art.has("previews/sample_0000.png") and art.has("previews/grid.png")


def test_same_seed_identical_ddpm_and_formats(cli, tiny_model, tmp_path):
    args = ("sample", "--ckpt", tiny_model, "-n", "3", "--steps", "8", "--size", "16")
    assert cli(*args, "--seed", "5", "--out", tmp_path / "a")[0] == 0
    assert cli(*args, "--seed", "5", "--format", "mat", "--out", tmp_path / "b")[0] == 0
    assert cli(*args, "--seed", "6", "--sampler", "ddpm", "--format", "envi", "--out", tmp_path / "c")[0] == 0
    assert cli(*args, "--seed", "5", "--batch-size", "2", "--out", tmp_path / "d")[0] == 0
    a, b, c, d = (load_samples(tmp_path / name).hsi for name in "abcd")
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    # Noise is drawn per sample, so batching changes only float rounding inside the UNet.
    assert np.allclose(a, d, atol=1e-4)
    import spectral
    from scipy.io import loadmat

    mat = loadmat(tmp_path / "b" / "samples" / "sample_0001.mat")
    assert mat["hsi"].shape == (16, 16, 48)
    assert np.allclose(np.moveaxis(mat["hsi"], -1, 0), load_samples(tmp_path / "b").physical()[1], rtol=1e-5)
    img = spectral.open_image(str(tmp_path / "c" / "samples" / "sample_0000.hdr"))
    assert img.shape == (16, 16, 48) and float(img.metadata["wavelength"][-1]) == 1000.0
    with h5py.File(tmp_path / "c" / "samples.h5") as h5:
        assert np.abs(h5["abundances"][...].sum(1) - 1).max() < 1e-5


def test_sample_bad_input(cli, ip_dataset, tiny_model, tmp_path):
    out = tmp_path / "never"
    code, _, stderr = cli("sample", "--ckpt", ip_dataset, "--out", out)
    assert code == 1 and "needs diffusion-model" in stderr
    code, _, stderr = cli("sample", "--ckpt", tiny_model, "--steps", "5000", "--out", out)
    assert code == 1 and "choose 1..1000" in stderr
    code, _, stderr = cli("sample", "--ckpt", tiny_model, "--size", "18", "--out", out)
    assert code == 1 and "multiple of 4" in stderr
    code, _, stderr = cli("sample", "--ckpt", tiny_model, "--format", "png", "--out", out)
    assert code == 2 and "'tif', 'envi', 'mat'" in stderr  # a usage error, before any work
    assert not out.exists()
    code, _, stderr = cli("train-diffusion", "--unmixing", ip_dataset, "--out", out)
    assert code == 1 and "needs unmixing" in stderr
    code, _, stderr = cli("train-diffusion", "--space", "pixels", "--unmixing", tiny_model, "--out", out)
    assert code == 2 and "'abundance', 'latent', 'joint'" in stderr
    assert not out.exists()


class _Killed(Exception):
    pass


def test_resume_is_wired_through_the_command(cli, ip_unmixing, tmp_path, monkeypatch):
    args = (
        "train-diffusion",
        "--unmixing",
        ip_unmixing,
        "--steps",
        "6",
        "--batch-size",
        "2",
        "--crop",
        "8",
        "--checkpoint-every",
        "3",
    )
    assert cli(*args, "--out", tmp_path / "full")[0] == 0

    from stages.diffusion import loss as training

    real = training.diffusion_loss_fn

    def dies_at_step_4(*a, **kw):
        fn = real(*a, **kw)
        return lambda model, step, g: (_ for _ in ()).throw(_Killed()) if step == 4 else fn(model, step, g)

    monkeypatch.setattr(training, "diffusion_loss_fn", dies_at_step_4)
    code, _, _ = cli(*args, "--out", tmp_path / "cut")
    assert code == 3 and not (tmp_path / "cut").exists() and (tmp_path / "cut.work" / "checkpoint").is_dir()
    monkeypatch.setattr(training, "diffusion_loss_fn", real)
    code, _, stderr = cli(*args, "--resume", "--out", tmp_path / "cut")
    assert code == 0 and "resumed from step 3" in stderr
    from safetensors.torch import load_file

    full = load_file(tmp_path / "full" / "unet" / "diffusion_pytorch_model.safetensors")
    resumed = load_file(tmp_path / "cut" / "unet" / "diffusion_pytorch_model.safetensors")
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    assert not (tmp_path / "cut.work").exists()
