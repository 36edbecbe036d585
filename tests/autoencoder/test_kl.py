"""kl autoencoder: training lowers held-out error, metrics match their definitions, the
loading API and CLI encode/decode agree, resume is exact, and the PCA baseline's size."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch


def _brute_mpsnr(real, recon):
    values = []
    for n in range(real.shape[0]):
        for b in range(real.shape[1]):
            mse = np.mean((real[n, b].astype(np.float64) - recon[n, b]) ** 2)
            values.append(10 * np.log10(1.0 / mse))
    return float(np.mean(values))


def _brute_sam(real, recon):
    angles = []
    for n in range(real.shape[0]):
        for y in range(real.shape[2]):
            for x in range(real.shape[3]):
                a, b = real[n, :, y, x].astype(np.float64), recon[n, :, y, x].astype(np.float64)
                angles.append(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))
    return float(np.mean(angles))


def test_metric_definitions_match_brute_force():
    from stages.autoencoder.metrics import mpsnr, sam_degrees

    rng = np.random.default_rng(0)
    real = rng.random((2, 5, 4, 3)).astype(np.float32) + 0.1
    recon = real + rng.normal(0, 0.05, real.shape).astype(np.float32)
    assert mpsnr(real, recon) == pytest.approx(_brute_mpsnr(real, recon), rel=1e-9)
    assert sam_degrees(real, recon) == pytest.approx(_brute_sam(real, recon), rel=1e-9)
    assert sam_degrees(real, 3.0 * real) == pytest.approx(0.0, abs=1e-4)  # angles ignore brightness


def test_pca_baseline_stores_latent_sized_codes(ip_dataset):
    from stages.artifacts.datasets import load_patches
    from stages.autoencoder.baseline import PCABaseline

    p = load_patches(ip_dataset, "train")
    base = PCABaseline.fit(p.hsi, 4, 4)
    codes = base.encode(p.hsi[:3])
    assert codes.shape == (3, 4, 8, 8)  # = the kl latent (4, H/4, W/4)
    # A patch whose pixels all share one training-mean spectrum is rebuilt exactly.
    flat = np.broadcast_to(base.mean[None, :, None, None], (1, 48, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(base.reconstruct(flat), flat, atol=1e-5)


def test_training_lowers_heldout_error_and_manifest_metrics(kl_run, ip_dataset):
    from stages.artifacts.datasets import load_patches
    from stages.autoencoder.io import load_autoencoder

    m = kl_run.metrics
    assert m["heldout_split"] == "val" and m["heldout_patches"] == 18
    # Step 0 already predicts about each band's training mean (band standardisation): ≈ 21 dB.
    assert m["mpsnr_db"] > m["mpsnr_db_step0"] + 2.5
    assert m["sam_deg"] < m["sam_deg_step0"] - 2.5
    assert m["baseline_pca_components"] == 4
    assert 25.0 < m["baseline_pca_mpsnr_db"] < 40.0 and 0.5 < m["baseline_pca_sam_deg"] < 6.0
    # The manifest's numbers are the brute-force metrics of the saved model on the val split.
    val = load_patches(ip_dataset, "val")
    ae = load_autoencoder(kl_run.path, "cpu")
    with torch.no_grad():
        recon = ae.decode(ae.encode(torch.from_numpy(val.hsi))).numpy()
    assert m["mpsnr_db"] == pytest.approx(_brute_mpsnr(val.hsi, recon), abs=1e-3)
    assert m["sam_deg"] == pytest.approx(_brute_sam(val.physical()[:4], recon[:4] * val.scale + val.offset), rel=0.5)
    sp = kl_run.spectral
    assert sp["band_count"] == 48 and sp["scale"] == pytest.approx(val.scale)
    assert kl_run.has("vae/diffusion_pytorch_model.safetensors") and kl_run.has("reconstructions.png")


def test_latents_shape_and_unit_variance(kl_run, ip_dataset):
    from stages.artifacts.datasets import load_patches
    from stages.autoencoder.io import load_autoencoder

    ae = load_autoencoder(kl_run.path, "cpu")
    train = load_patches(ip_dataset, "train")
    z = ae.encode(torch.from_numpy(train.hsi))
    assert tuple(z.shape) == (len(train.hsi), 4, 8, 8)
    assert kl_run.manifest["autoencoder"]["latent_shape_per_patch"] == [4, 8, 8]
    assert float(z.std()) == pytest.approx(1.0, rel=1e-3)  # the recorded scaling factor
    assert ae.scaling_factor == pytest.approx(kl_run.manifest["autoencoder"]["scaling_factor"])


def test_cli_encode_decode_round_trip(kl_run, ip_dataset, cli, tmp_path):
    from stages.artifacts.datasets import load_patches, load_samples
    from stages.autoencoder.io import load_autoencoder

    latents = tmp_path / "latents.h5"
    code, stdout, stderr = cli(
        "train-ae", "encode", kl_run.path, ip_dataset, "--out", latents, "--split", "val", "--device", "cpu"
    )
    assert code == 0, stderr
    with h5py.File(latents) as h5:
        z = h5["latents"][...]
    val = load_patches(ip_dataset, "val")
    ae = load_autoencoder(kl_run.path, "cpu")
    expected = ae.encode(torch.from_numpy(val.hsi)).numpy()
    assert z.shape == (18, 4, 8, 8)
    np.testing.assert_allclose(z, expected, atol=1e-5)
    code, stdout, stderr = cli("train-ae", "decode", kl_run.path, latents, "--out", tmp_path / "dec", "--device", "cpu")
    assert code == 0, stderr
    decoded = load_samples(tmp_path / "dec")
    np.testing.assert_allclose(decoded.hsi, ae.decode(torch.from_numpy(expected)).numpy(), atol=1e-5)
    assert decoded.scale == pytest.approx(val.scale)
    # One GeoTIFF per patch in physical units, bands named by wavelength (stages/artifacts/samples.py).
    import rasterio

    tifs = sorted((tmp_path / "dec" / "samples").glob("sample_*.tif"))
    assert len(tifs) == 18 and (tmp_path / "dec" / "previews" / "grid.png").is_file()
    with rasterio.open(tifs[5]) as src:
        assert src.count == 48 and src.descriptions[0] == f"{val.wavelengths_nm[0]:.1f} nm"
        np.testing.assert_allclose(src.read(), decoded.hsi[5] * decoded.scale + decoded.offset, rtol=1e-6, atol=1e-3)
    code, _, stderr = cli(
        "train-ae",
        "decode",
        kl_run.path,
        latents,
        "--out",
        tmp_path / "dec_envi",
        "--format",
        "envi",
        "--device",
        "cpu",
    )
    assert code == 0, stderr
    assert len(list((tmp_path / "dec_envi" / "samples").glob("sample_*.hdr"))) == 18


def test_resume_after_kill_matches_uninterrupted(kl_run, ip_dataset, tmp_path, monkeypatch, make_config):
    """Kill right after the first checkpoint, resume, and land on the same weights."""
    from safetensors.torch import load_file

    from stages.autoencoder import run
    from stages.training import loop

    original = loop.Trainer.save_checkpoint

    def save_then_die(self):
        original(self)
        raise KeyboardInterrupt

    out = tmp_path / "kl"
    steps, every = kl_run.config["model"]["steps"], kl_run.config["checkpoint_every"]
    assert 0 < every < steps
    plain = {
        k: kl_run.config["model"][k] for k in ("latent_channels", "linear_path", "linear_block", "gradient_weight")
    }
    cfg = make_config("kl", steps, every, **plain)  # as kl_run
    monkeypatch.setattr(loop.Trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(ip_dataset, out, cfg, device="cpu")
    monkeypatch.setattr(loop.Trainer, "save_checkpoint", original)
    assert not out.exists()
    state = json.loads((tmp_path / "kl.work" / "checkpoint" / "state.json").read_text())
    assert state["step"] == every
    resumed = run(ip_dataset, out, cfg, device="cpu", resume=True)
    a = load_file(resumed.file("vae/diffusion_pytorch_model.safetensors"))
    b = load_file(kl_run.file("vae/diffusion_pytorch_model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["mpsnr_db"] == kl_run.metrics["mpsnr_db"]
    assert not (tmp_path / "kl.work").exists()


def test_dry_run_prints_parameter_counts(cli, ip_dataset):
    code, stdout, stderr = cli("train-ae", ip_dataset, "--kind", "kl", "--preset", "paper", "--dry-run")
    assert code == 0, stderr
    report = json.loads(stdout)
    # hsigene §3.2: base 64, multipliers [1, 2, 4], 2 blocks, 4 latent channels, 48 bands.
    assert report["downsampling_factor"] == 4 and report["latent_channels"] == 4
    assert report["total"] == report["parameters"]["vae"] == 13_911_380
    code, stdout, _ = cli("train-ae", ip_dataset, "--kind", "kl", "--dry-run")
    # f = 2 × 48 with the block linear path since issue 14 (f = 2 × 16: 706,336; issue 5's prototype: 980,532)
    assert json.loads(stdout)["total"] == 790_560
