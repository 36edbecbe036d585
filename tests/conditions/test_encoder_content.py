"""``content`` from a trained hsigen encoder: pooled latent statistics against a direct
computation with the autoencoder's own VAE, the manifest record, spectral alignment, clear
errors for RGB sources and uncovered grids, and a latent diffusion model trained and sampled
on encoder content end to end."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stages.artifacts.datasets import load_patches
from stages.artifacts.store import ArtifactWriter, open_artifact, spectral_block
from stages.autoencoder.io import load_autoencoder
from stages.conditions import make_extractor
from stages.conditions.io import load_conditions
from stages.conditions.sources import read_sources

FIRST = 6


def posterior_means(vae, scaling_factor: float, hsi: np.ndarray, linear_path=None) -> torch.Tensor:
    """The posterior mean, with the linear path's shift when the autoencoder has one (spectral_path.py)."""
    from stages.autoencoder.spectral_path import shifted_posterior

    with torch.no_grad():
        return shifted_posterior(vae, linear_path, torch.from_numpy(hsi)).mean * scaling_factor


def cubes_of(dataset, count=FIRST):
    return [image.cube for image in read_sources([dataset]).images[:count]]


def test_kl_content_is_mean_std_and_cell_means_of_the_posterior_mean(kl_encoder, ip_dataset):
    ae = load_autoencoder(kl_encoder)
    patches = load_patches(ip_dataset)
    hsi = ((patches.physical()[:FIRST] - ae.offset) / ae.scale).astype(np.float32)
    z = posterior_means(ae.vae, ae.scaling_factor, hsi, ae.linear_path)  # (6, 4, 8, 8); the tiny preset's block path
    cells = F.avg_pool2d(z, 4).reshape(FIRST, -1)  # 2×2 grid, channel-major
    expected = torch.cat([z.mean(dim=(2, 3)), z.std(dim=(2, 3), unbiased=False), cells], dim=1).numpy()

    content = make_extractor("content", "encoder", encoder=kl_encoder, grid=2)
    got = np.stack(content.batch(cubes_of(ip_dataset)))
    assert got.shape == (FIRST, 4 * (2 + 4)) and content.dim == 24
    assert np.abs(got - expected).max() < 1e-5
    plain = make_extractor("content", "encoder", encoder=kl_encoder)
    assert np.allclose(np.stack(plain.batch(cubes_of(ip_dataset))), expected[:, :8], atol=1e-5)
    assert np.abs(expected[:, 4:8]).min() > 0  # the spatial spread is informative


def test_two_stream_content_uses_its_hsi_branch(two_stream_encoder, ip_dataset):
    ae = load_autoencoder(two_stream_encoder)
    hsi = ((load_patches(ip_dataset).physical()[:FIRST] - ae.offset) / ae.scale).astype(np.float32)
    assert ae.linear_path is not None  # the tiny two-stream preset's image branch has one
    z = posterior_means(ae.hsi_vae, ae.scaling_factor, hsi, ae.linear_path)
    expected = torch.cat([z.mean(dim=(2, 3)), z.std(dim=(2, 3), unbiased=False)], dim=1).numpy()
    content = make_extractor("content", "encoder", encoder=two_stream_encoder)
    assert np.abs(np.stack(content.batch(cubes_of(ip_dataset))) - expected).max() < 1e-5
    assert content.settings()["autoencoder_kind"] == "two-stream"


def test_condition_command_records_the_encoder(cli, ip_dataset, kl_encoder, tmp_path):
    out = tmp_path / "enc"
    code, _, err = cli("condition", ip_dataset, "--kinds", "hed,content", "--encoder", kl_encoder, "--out", out)
    assert code == 0, err
    cond = load_conditions(out)
    n = len(load_patches(ip_dataset).hsi)
    assert cond.embeddings["content"].shape == (n, 8)
    direct = make_extractor("content", "encoder", encoder=kl_encoder).batch(cubes_of(ip_dataset, n))
    assert np.abs(cond.embeddings["content"] - np.stack(direct)).max() < 1e-5  # batches of 32 vs all at once
    manifest = open_artifact(out, "conditions").manifest
    record = manifest["config"]["kinds"]["content"]
    assert record["backend"] == "encoder" and record["autoencoder"] == str(kl_encoder)
    assert record["autoencoder_sha256"] == open_artifact(kl_encoder).sha256()
    assert record["spectral_alignment"] == ["identical grid (48 bands)"] and record["dim"] == 8
    ae_record = {"kind": "autoencoder", "path": str(kl_encoder), "sha256": record["autoencoder_sha256"]}
    assert ae_record in manifest["inputs"]
    code, _, err = cli("condition", ip_dataset, "--kinds", "hed,content", "--encoder", kl_encoder, "--out", out)
    assert code == 0 and "up to date" in err


def _write_samples(path, hsi: np.ndarray, wavelengths, scale: float, offset: float):
    writer = ArtifactWriter(path, "hsi-samples", "sample", {"test": True}, [])
    with writer.building() as tmp:
        with h5py.File(tmp / "samples.h5", "w") as h5:
            h5["hsi"], h5["wavelengths_nm"] = hsi, np.asarray(wavelengths, np.float64)
        writer.spectral = spectral_block(wavelengths, scale, offset)
    return path


def test_other_band_grids_are_aligned_or_refused(cli, ip_dataset, kl_encoder, tmp_path):
    patches = load_patches(ip_dataset)
    physical = patches.physical()[:FIRST]
    # 95 bands over 400-1000 nm: the 48 original centres at even indices, midpoints between them,
    # in other normalised units. Interpolating back onto the 48-band grid recovers the patches.
    fine = np.empty((FIRST, 95, 32, 32), np.float32)
    fine[:, ::2], fine[:, 1::2] = physical, (physical[:, :-1] + physical[:, 1:]) / 2
    samples = _write_samples(tmp_path / "fine", (fine - 100.0) / 5000.0, np.linspace(400, 1000, 95), 5000.0, 100.0)
    out = tmp_path / "fine-cond"
    code, _, err = cli("condition", samples, "--kinds", "content", "--encoder", kl_encoder, "--out", out)
    assert code == 0, err
    expected = np.stack(make_extractor("content", "encoder", encoder=kl_encoder).batch(cubes_of(ip_dataset)))
    assert np.abs(load_conditions(out).embeddings["content"] - expected).max() < 1e-4
    assert load_conditions(out).kinds["content"]["spectral_alignment"] == [
        "linear interpolation of 95 bands onto the autoencoder's 48"
    ]

    narrow = _write_samples(tmp_path / "narrow", fine[:, 10:80], np.linspace(400, 1000, 95)[10:80], 5000.0, 100.0)
    code, _, err = cli("condition", narrow, "--kinds", "content", "--encoder", kl_encoder, "--out", tmp_path / "x")
    assert code == 1 and "covers 463.8-904.3 nm" in err and "--range" in err
    assert not (tmp_path / "x").exists()


def test_encoder_content_needs_hyperspectral_sources_and_an_autoencoder(cli, ip_dataset, kl_encoder, tmp_path):
    png = tmp_path / "photo.png"
    cv2.imwrite(str(png), np.zeros((32, 32, 3), np.uint8))
    cases = [
        ([png, "--kinds", "hed,content", "--encoder", kl_encoder], "needs hyperspectral sources"),
        ([ip_dataset, "--kinds", "content", "--encoder", tmp_path / "no-ae"], "--encoder"),
        ([ip_dataset, "--kinds", "content", "--encoder", ip_dataset], "this needs autoencoder"),
        ([ip_dataset, "--kinds", "content", "--encoder", kl_encoder, "--content-grid", "9"], "grid 9"),
    ]
    for n, (args, message) in enumerate(cases):
        out = tmp_path / f"bad{n}"
        code, _, err = cli("condition", *args, "--out", out)
        assert code == 1 and message in err, (args, err)
        assert not out.exists()


@pytest.mark.slow
def test_encoder_content_trains_and_samples_end_to_end(cli, ip_dataset, kl_encoder, tmp_path):
    cond = tmp_path / "cond"
    assert cli("condition", ip_dataset, "--kinds", "hed,content", "--encoder", kl_encoder, "--out", cond)[0] == 0
    model = tmp_path / "ldm"
    code, _, err = cli(
        "train-diffusion",
        "--space",
        "latent",
        "--autoencoder",
        kl_encoder,
        "--dataset",
        ip_dataset,
        "--conditions",
        cond,
        "--steps",
        "4",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--out",
        model,
    )
    assert code == 0, err
    config = json.loads((model / "manifest.json").read_text())["config"]
    assert config["global_dims"] == {"content": 8}
    assert config["conditions"]["global"]["content"]["backend"] == "encoder"

    samples = tmp_path / "samples"
    code, _, err = cli("sample", "--ckpt", model, "--conditions", cond, "-n", "2", "--steps", "2", "--out", samples)
    assert code == 0, err
    with h5py.File(samples / "samples.h5") as h5:
        assert h5["hsi"].shape == (2, 48, 32, 32) and np.isfinite(h5["hsi"][...]).all()
        assert h5["condition_present"][...].tolist() == [[1, 0, 0, 0, 1, 0]] * 2
    png = tmp_path / "content.png"
    cv2.imwrite(str(png), np.zeros((32, 32, 3), np.uint8))
    code, _, err = cli("sample", "--ckpt", model, "--content", png, "-n", "1", "--out", tmp_path / "rgb-content")
    assert code == 1 and "--conditions" in err and not (tmp_path / "rgb-content").exists()
