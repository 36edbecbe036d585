"""train-rgan: held-out quality of a tiny RGAN against bicubic and zero guidance, the
manifest's numbers against a recomputation, exact --resume, and refusals of bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stages.artifacts import open_artifact
from stages.artifacts.datasets import load_patches
from stages.spectral import rgb_band_indices
from stages.upsample.degrade import degrade, gaussian_kernel
from stages.upsample.rgan import upsample_bicubic
from stages.upsample.train_rgan import load_rgan


def test_degradation_is_blur_then_bicubic_downsampling():
    k = gaussian_kernel(1.0)
    assert k.numel() == 7 and abs(float(k.sum()) - 1) < 1e-6
    flat = torch.full((1, 3, 16, 16), 0.37)
    lr = degrade(flat, 2)
    assert lr.shape == (1, 3, 8, 8) and torch.allclose(lr, flat[..., :8, :8], atol=1e-6)
    with pytest.raises(ValueError, match="multiple"):
        degrade(torch.zeros(1, 1, 15, 16), 2)


def _psnr_sam(ref, est, scale, offset):
    """Brute-force MPSNR (peak 1 in normalised units) and SAM (degrees, physical units)."""
    psnrs = [
        10 * np.log10(1.0 / np.mean((ref[i, b].astype(np.float64) - est[i, b]) ** 2))
        for i in range(ref.shape[0])
        for b in range(ref.shape[1])
    ]
    r = ref.astype(np.float64) * scale + offset
    e = est.astype(np.float64) * scale + offset
    angles = []
    for i in range(r.shape[0]):
        a, b = r[i].reshape(r.shape[1], -1), e[i].reshape(e.shape[1], -1)
        cos = (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0))
        angles.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    return float(np.mean(psnrs)), float(np.concatenate(angles).mean())


def test_tiny_rgan_beats_bicubic_and_zero_guidance_on_held_out_patches(tiny_rgan, ip_dataset):
    artifact = open_artifact(tiny_rgan, "sr-model")
    m = artifact.metrics
    assert m["val_patches"] > 0
    # true HR RGB guidance beats bicubic and beats the same network with zero guidance
    assert m["rgan_rgb_mpsnr"] > m["bicubic_mpsnr"] + 0.3
    assert m["rgan_rgb_mpsnr"] > m["rgan_zero_mpsnr"] + 0.3
    assert m["rgan_rgb_sam_deg"] < m["bicubic_sam_deg"]
    assert m["rgan_rgb_sam_deg"] < m["rgan_zero_sam_deg"]

    # the manifest's numbers match an independent recomputation on the val split
    val = load_patches(ip_dataset, "val")
    model, info, _ = load_rgan(tiny_rgan)
    assert info["scale"] == 2 and info["rgb_band_indices"] == rgb_band_indices(val.wavelengths_nm)
    hr = torch.from_numpy(val.hsi)
    lr = degrade(hr, 2)
    with torch.no_grad():
        sr = model(lr, hr[:, info["rgb_band_indices"]], 2).numpy()
        bic = upsample_bicubic(lr, 2).numpy()
    psnr_sr, sam_sr = _psnr_sam(val.hsi, sr, val.scale, val.offset)
    psnr_bic, sam_bic = _psnr_sam(val.hsi, bic, val.scale, val.offset)
    assert psnr_sr == pytest.approx(m["rgan_rgb_mpsnr"], abs=2e-3)
    assert sam_sr == pytest.approx(m["rgan_rgb_sam_deg"], abs=2e-3)
    assert psnr_bic == pytest.approx(m["bicubic_mpsnr"], abs=2e-3)
    assert sam_bic == pytest.approx(m["bicubic_sam_deg"], abs=2e-3)
    assert artifact.has("rgan.safetensors") and artifact.has("model.json")
    assert json.loads((tiny_rgan / "model.json").read_text())["wavelengths_nm"] == pytest.approx(
        list(val.wavelengths_nm), abs=1e-3
    )


def test_dry_run_prints_parameter_counts(cli, ip_dataset):
    code, out, _ = cli("upsample", "train-rgan", ip_dataset, "--scale", "4", "--preset", "paper", "--dry-run", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["scale"] == 4 and report["gals"] == 6
    assert report["parameters"] == {"attention": 518_472, "total": 1_167_816}


def test_resume_continues_exactly(ip_dataset, tmp_path, monkeypatch):
    from stages.training import load_weights, resolve_preset
    from stages.upsample import train_rgan as train

    def config():
        net = resolve_preset(train.PRESETS, "tiny", {"steps": 4, "batch_size": 2, "crop": 16})
        return train.RganTrainConfig(scale=2, preset="tiny", net=net, seed=3, checkpoint_every=2)

    train.run(ip_dataset, tmp_path / "full", config(), device="cpu")

    calls = {"n": 0}
    real = train.degrade

    def dying(*args, **kwargs):  # the third step's degradation kills the run
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "degrade", dying)
    with pytest.raises(KeyboardInterrupt):
        train.run(ip_dataset, tmp_path / "resumed", config(), device="cpu")
    assert not (tmp_path / "resumed").exists() and (tmp_path / "resumed.work" / "checkpoint").is_dir()
    monkeypatch.setattr(train, "degrade", real)
    train.run(ip_dataset, tmp_path / "resumed", config(), device="cpu", resume=True)
    a = load_weights(tmp_path / "full" / "rgan.safetensors")
    b = load_weights(tmp_path / "resumed" / "rgan.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "resumed.work").exists()


def _nothing_written(path):
    return not path.exists() and not list(path.parent.glob(f".hsigen-tmp-{path.name}-*"))


def test_bad_input_exits_1_and_writes_nothing(cli, ip_dataset, tiny_rgan, tmp_path):
    out = tmp_path / "bad"
    code, _, err = cli("upsample", "train-rgan", ip_dataset, "--scale", "3", "--out", out)
    assert code == 1 and "--scale 2 or --scale 4" in err and _nothing_written(out)
    code, _, err = cli("upsample", "train-rgan", tiny_rgan, "--scale", "2", "--out", out)
    assert code == 1 and "sr-model" in err and "hsi-dataset" in err and _nothing_written(out)
    code, _, err = cli("upsample", "train-rgan", ip_dataset, "--out", out)
    assert code == 1 and "--scale" in err and _nothing_written(out)


def test_patches_too_small_for_the_scale(cli, tmp_path):
    tiny_patches = tmp_path / "ip12"
    code, _, _ = cli(
        "ingest",
        "--example",
        "indian-pines",
        "--size",
        "12",
        "--stride",
        "12",
        "--val-fraction",
        "0.25",
        "--out",
        tiny_patches,
    )
    assert code == 0
    out = tmp_path / "rgan"
    code, _, err = cli("upsample", "train-rgan", tiny_patches, "--scale", "4", "--out", out)
    assert code == 1 and "12x12" in err and "16 pixels" in err and _nothing_written(out)
