"""DSRNet (hsigene §3.3.2): the train-dsr artifact and its parameter counts, deterministic
position-keyed sampling, output that follows its LR input, blended windows without seams,
exact --resume across both training phases, image-folder sources with a reused autoencoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from dsr_helpers import DSR_SAMPLE_STEPS, dsr_config

from stages.artifacts import open_artifact
from stages.upsample import train_dsr
from stages.upsample.degrade import degrade
from stages.upsample.dsr import (
    DSRDenoiser,
    DSRModel,
    load_dsr,
    position_noise,
    rgb_to_unit,
)
from stages.upsample.dsr_guide import WindowedDSR


def _held_out(ip_dataset) -> torch.Tensor:
    """The val-split patches' RGB (as DSRNet was trained to see them), (N, 3, 32, 32) in [-1, 1]."""
    images = train_dsr.load_images([ip_dataset], 32).held_out
    return torch.from_numpy(np.stack([rgb_to_unit(im) for im in images]))


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """MPSNR: mean over images and channels of PSNR in [0, 1] units (data in [-1, 1]: peak 2)."""
    mse = ((a.double() - b.double()) ** 2).mean(dim=(2, 3))
    return float((10 * torch.log10(4.0 / mse)).mean())


def _sample(dsr, lr: torch.Tensor, seed: int = 0, sampler: str = "ddim", steps: int = DSR_SAMPLE_STEPS):
    return torch.stack(
        [
            WindowedDSR(
                dsr,
                lr.shape[-2],
                lr.shape[-1],
                int(dsr.info["window_lr"]),
                int(dsr.info["overlap_lr"]),
                steps,
                sampler,
                seed,
                item=i,
            )(lr[i])
            for i in range(len(lr))
        ]
    )


def test_train_dsr_writes_a_complete_sr_model_and_dry_run_counts_it(cli, tiny_dsr):
    artifact = open_artifact(tiny_dsr, "sr-model")
    info = artifact.manifest["sr_model"]
    assert info["method"] == "dsr" and info["scale"] == 2 and info["factor"] == 2 and info["multiple"] == 8
    for name in (
        "model.json",
        "adapters.safetensors",
        "autoencoder/vae/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.safetensors",
        "controlnet/diffusion_pytorch_model.safetensors",
        "scheduler/scheduler_config.json",
        "examples.png",
    ):
        assert artifact.has(name), name
    m = artifact.metrics
    assert m["eval_split"] == "val" and m["eval_images"] == 8 and m["training_images"] == 54
    assert json.loads((tiny_dsr / "model.json").read_text()) == info

    dsr = load_dsr(tiny_dsr)
    loaded = sum(p.numel() for p in dsr.ae.parameters()) + sum(p.numel() for p in dsr.denoiser.parameters())
    code, out, _ = cli("upsample", "train-dsr", "--scale", "2", "--dry-run", "--json")
    report = json.loads(out)
    assert code == 0 and report["scale"] == 2 and report["parameters"]["total"] == loaded == 1_414_847
    code, out, _ = cli("upsample", "train-dsr", "--scale", "4", "--preset", "paper", "--dry-run", "--json")
    report = json.loads(out)
    # HSIGene's latent-diffusion sizes: Stable Diffusion 1.5's UNet (859,520,964 parameters) + ControlNet
    assert code == 0 and report["parameters"]["unet"] == 859_520_964 and report["downsampling_factor"] == 4
    assert report["parameters"]["total"] == 1_233_924_555


def test_sampling_is_bit_identical_for_a_seed_and_scales_the_input(tiny_dsr, ip_dataset):
    dsr = load_dsr(tiny_dsr)
    lr = degrade(_held_out(ip_dataset)[:1].double(), 2).float()[0, :, :13, :11]  # not a size multiple
    first = WindowedDSR(dsr, 13, 11, 16, 8, 4, "ddim", seed=5)(lr)
    assert first.shape == (3, 26, 22)
    assert torch.equal(first, WindowedDSR(dsr, 13, 11, 16, 8, 4, "ddim", seed=5)(lr))
    assert (first - WindowedDSR(dsr, 13, 11, 16, 8, 4, "ddim", seed=6)(lr)).abs().max() > 1e-3
    ancestral = WindowedDSR(dsr, 13, 11, 16, 8, 4, "ddpm", seed=5)(lr)
    assert torch.equal(ancestral, WindowedDSR(dsr, 13, 11, 16, 8, 4, "ddpm", seed=5)(lr))
    assert (first - ancestral).abs().max() > 1e-3
    # noise depends on the position only: a window cut out of a larger draw is the same draw
    big = position_noise(5, 0, 0, 4, 10, 3, 40, 50)
    assert torch.equal(big[:, 7:20, 22:45], position_noise(5, 0, 0, 4, 17, 25, 13, 23))


def test_output_follows_its_low_resolution_input_and_keeps_the_colours(tiny_dsr, ip_dataset):
    dsr = load_dsr(tiny_dsr)
    hr = _held_out(ip_dataset)
    lr = degrade(hr.double(), 2).float()
    sr = _sample(dsr, lr)
    assert sr.shape == hr.shape
    consistency = _psnr(degrade(sr.double(), 2), lr)
    # the same model given another image's LR input, and an untrained denoiser on the trained AE
    mismatched = _psnr(degrade(_sample(dsr, torch.roll(lr, 5, dims=0)).double(), 2), lr)
    torch.manual_seed(0)
    untrained = DSRModel(dsr.ae, DSRDenoiser.from_description(dsr.info).eval(), dsr.scheduler_config, dsr.info)
    sr_untrained = _sample(untrained, lr)
    assert consistency > _psnr(degrade(sr_untrained.double(), 2), lr) + 5.0
    assert consistency > mismatched + 5.0
    # colour statistics of the output match the HR targets (in [0, 1] units)
    unit = lambda t: (t.double() + 1) / 2  # noqa: E731
    mean_err = (unit(sr).mean(dim=(0, 2, 3)) - unit(hr).mean(dim=(0, 2, 3))).abs()
    std_ratio = unit(sr).std(dim=(0, 2, 3)) / unit(hr).std(dim=(0, 2, 3))
    assert float(mean_err.max()) < 0.08 and bool(((std_ratio > 0.6) & (std_ratio < 1.5)).all())
    untrained_err = (unit(sr_untrained).mean(dim=(0, 2, 3)) - unit(hr).mean(dim=(0, 2, 3))).abs()
    assert float(untrained_err.mean()) > float(mean_err.mean())
    # the manifest's held-out numbers are these (first eval_images val patches, same seeds)
    m = open_artifact(tiny_dsr).metrics
    n = m["eval_images"]
    assert m["dsr_lr_psnr"] == pytest.approx(_psnr(degrade(sr[:n].double(), 2), lr[:n]), abs=1e-3)
    assert m["dsr_psnr"] == pytest.approx(_psnr(sr[:n], hr[:n]), abs=1e-3)


def _seam_ratio(x: torch.Tensor, period: int) -> float:
    """Mean |step| between neighbouring pixels across window-core borders over that elsewhere."""
    d_r = (x[:, 1:] - x[:, :-1]).abs().mean(dim=(0, 2))
    d_c = (x[:, :, 1:] - x[:, :, :-1]).abs().mean(dim=(0, 1))
    border = torch.zeros(len(d_r), dtype=torch.bool)
    border[period - 1 :: period] = True
    return float((d_r[border].mean() + d_c[border].mean()) / (d_r[~border].mean() + d_c[~border].mean()))


def test_blended_windows_hide_the_seams_that_hard_windows_show(tiny_dsr, ip_dataset):
    """A latent diffusion window is not a crop of a larger pass (GroupNorm, attention), so a scene
    is sampled on a fixed window grid; blending the overlaps bounds the seams."""
    import rasterio

    from stages.spectral import rgb_band_indices

    dsr = load_dsr(tiny_dsr)
    wl = np.asarray(open_artifact(ip_dataset).spectral["wavelengths_nm"])
    with rasterio.open(ip_dataset / "cube.tif") as src:
        rgb = src.read([i + 1 for i in rgb_band_indices(wl)], window=((0, 96), (0, 96))).astype(np.float64)
    lo, hi = np.percentile(rgb.reshape(3, -1), 2, axis=1), np.percentile(rgb.reshape(3, -1), 98, axis=1)
    hr = torch.from_numpy((rgb - lo[:, None, None]) / (hi - lo)[:, None, None] * 2 - 1)
    lr = degrade(hr[None], 2)[0].float()
    window = int(dsr.info["window_lr"])
    blended = WindowedDSR(dsr, 48, 48, window, int(dsr.info["overlap_lr"]), 4, "ddim", 0)(lr)
    hard = WindowedDSR(dsr, 48, 48, window, 0, 4, "ddim", 0)(lr)
    truth = _seam_ratio(hr, 2 * window)
    assert _seam_ratio(hard, 2 * window) > 1.3 * truth  # the measure sees real seams
    assert _seam_ratio(blended, 2 * window) < 1.15 * truth


@pytest.mark.slow
def test_resume_continues_exactly_in_both_phases(ip_dataset, tmp_path, monkeypatch):
    from stages.training import load_weights

    def config():
        return dsr_config(
            ae_steps=4, steps=4, batch_size=2, crop=16, sample_steps=1, eval_images=2, checkpoint_every=2, seed=3
        )

    train_dsr.run([ip_dataset], tmp_path / "full", config(), device="cpu")

    def dies_on_call(name, n):
        real, calls = getattr(train_dsr, name), {"n": 0}

        def dying(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(train_dsr, name, dying)
        return real

    out = tmp_path / "resumed"
    real = dies_on_call("random_crops", 3)  # the autoencoder's third step
    with pytest.raises(KeyboardInterrupt):
        train_dsr.run([ip_dataset], out, config(), device="cpu")
    assert (tmp_path / "resumed.autoencoder.work" / "checkpoint").is_dir() and not out.exists()
    monkeypatch.setattr(train_dsr, "random_crops", real)
    real = dies_on_call("degrade", 3)  # the denoiser's third step
    with pytest.raises(KeyboardInterrupt):
        train_dsr.run([ip_dataset], out, config(), device="cpu", resume=True)
    assert (tmp_path / "resumed.work" / "checkpoint").is_dir() and not out.exists()
    monkeypatch.setattr(train_dsr, "degrade", real)
    train_dsr.run([ip_dataset], out, config(), device="cpu", resume=True)
    for name in (
        "adapters.safetensors",
        "unet/diffusion_pytorch_model.safetensors",
        "controlnet/diffusion_pytorch_model.safetensors",
        "autoencoder/vae/diffusion_pytorch_model.safetensors",
    ):
        a, b = load_weights(tmp_path / "full" / name), load_weights(out / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert not (tmp_path / "resumed.work").exists() and not (tmp_path / "resumed.autoencoder.work").exists()


def test_trains_on_an_image_folder_reusing_an_autoencoder(tiny_dsr_x4, tiny_dsr, image_folder):
    from stages.training import load_weights

    artifact = open_artifact(tiny_dsr_x4, "sr-model")
    assert artifact.manifest["sr_model"]["scale"] == 4 and artifact.metrics["eval_split"] == "train"
    assert artifact.manifest["sources"][0]["kind"] == "images" and len(artifact.manifest["sources"][0]["files"]) == 4
    recorded = {r["path"] for r in artifact.manifest["inputs"]}
    assert str(tiny_dsr) in recorded and str(image_folder / "tile_0.png") in recorded
    assert artifact.manifest["history"]["autoencoder"] == []
    name = "autoencoder/vae/diffusion_pytorch_model.safetensors"
    a, b = load_weights(tiny_dsr / name), load_weights(tiny_dsr_x4 / name)
    assert all(torch.equal(a[k], b[k]) for k in a)
    lr = torch.zeros(3, 8, 12)
    assert WindowedDSR(load_dsr(tiny_dsr_x4), 8, 12, 8, 4, 1, "ddim", 0)(lr).shape == (3, 32, 48)


def _nothing_written(path):
    return not path.exists() and not list(path.parent.glob(f".hsigen-tmp-{path.name}-*"))


def test_train_dsr_bad_input_exits_1_and_writes_nothing(cli, ip_dataset, tiny_rgan, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "bad"
    cases = [
        (("upsample", "train-dsr", ip_dataset, "--scale", "3"), "--scale 2 or --scale 4"),
        (("upsample", "train-dsr", ip_dataset), "--scale is required"),
        (("upsample", "train-dsr", tmp_path / "missing", "--scale", "2"), "does not exist"),
        (("upsample", "train-dsr", empty, "--scale", "2"), "image files"),
        (("upsample", "train-dsr", "--scale", "2"), "IMAGES_OR_DATASET"),
        (("upsample", "train-dsr", ip_dataset, "--scale", "2", "--crop", "20"), "multiples of 8"),
        (("upsample", "train-dsr", ip_dataset, "--scale", "2", "--crop", "64"), "at least 64×64"),
        (("upsample", "train-dsr", ip_dataset, "--scale", "2", "--ae-steps", "0"), "--ae-steps"),
        (("upsample", "train-dsr", ip_dataset, "--scale", "2", "--autoencoder", tiny_rgan), "rgan sr-model"),
        (("upsample", "train-dsr", ip_dataset, "--scale", "2", "--autoencoder", ip_dataset), "sr-model"),
    ]
    for args, message in cases:
        code, _, err = cli(*args, "--out", out)
        assert code == 1, (args, err)
        assert message in err, (args, err)
        assert _nothing_written(out)
