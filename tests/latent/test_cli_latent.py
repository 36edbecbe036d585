"""``hsigen sample`` / ``hsigen train-diffusion --space latent`` from the command line: condition
kinds from file names or KIND=FILE, conditions saved beside each sample, clear errors (exit 1,
nothing written) for bad kinds and sizes, and the same command under torchrun (2 gloo ranks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import torch

from stages.conditions.common import to_uint8
from stages.spectral import save_png


def _write_map(path: Path, chw: np.ndarray) -> Path:
    image = to_uint8(chw)
    save_png(path, image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1))
    return path


def test_sample_with_condition_files(cli, latent_model, val_conditions, tmp_path):
    hed = _write_map(tmp_path / "hed.png", val_conditions["hed"][0])
    seg = _write_map(tmp_path / "field_seg.png", val_conditions["seg"][0])
    out = tmp_path / "samples"
    code, stdout, stderr = cli(
        "sample",
        "--ckpt",
        latent_model,
        "--cond",
        hed,
        "--cond",
        f"seg={seg}",
        "-n",
        "2",
        "--steps",
        "5",
        "--sampler",
        "dpm",
        "--guidance",
        "2",
        "--seed",
        "1",
        "--out",
        out,
    )
    assert code == 0, stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["conditions"]["kinds"] == ["hed", "seg"]
    assert manifest["config"]["conditions"]["files"] == {"hed": str(hed), "seg": str(seg)}
    with h5py.File(out / "samples.h5") as h5:
        assert h5["hsi"].shape == (2, 48, 32, 32)
        assert np.array_equal(h5["condition_present"][0], [1, 0, 0, 1, 0, 0])
        assert np.allclose(h5["conditions"][1, 3:6], val_conditions["seg"][0], atol=1 / 255)
    for i in range(2):
        assert (out / "samples" / f"sample_{i:04d}.tif").is_file()
        assert (out / "samples" / f"sample_{i:04d}_hed.png").is_file()
        assert (out / "samples" / f"sample_{i:04d}_seg.png").is_file()


def test_unconditional_sample_from_cli(cli, latent_model, tmp_path):
    out = tmp_path / "uncond"
    code, _, stderr = cli("sample", "--ckpt", latent_model, "-n", "1", "--steps", "4", "--out", out)
    assert code == 0, stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["conditions"]["kinds"] == [] and manifest["config"]["sampler"] == "ddim"


def test_bad_conditions_exit_1_and_write_nothing(cli, latent_model, val_conditions, tmp_path):
    hed = _write_map(tmp_path / "hed.png", val_conditions["hed"][0])
    big = tmp_path / "big"
    big.mkdir()
    big_hed = _write_map(big / "hed.png", np.zeros((1, 48, 48), np.float32))
    unnamed = _write_map(tmp_path / "edges.png", val_conditions["hed"][0])
    cases = [
        (["--cond", f"depth={hed}"], "unknown condition kind 'depth'"),
        (["--cond", unnamed], "cannot tell the condition kind"),
        (["--cond", big_hed], "48×48 pixels but the samples are 32×32"),
        (["--cond", f"mlsd={hed}"], "trained without 'mlsd'"),
        (["--cond", f"hed={tmp_path / 'missing.png'}"], "does not exist"),
        (["--text", "farmland"], "trained without 'text'"),
    ]
    for i, (args, message) in enumerate(cases):
        out = tmp_path / f"bad{i}"
        code, _, stderr = cli("sample", "--ckpt", latent_model, "-n", "1", "--steps", "2", *args, "--out", out)
        assert code == 1, (args, stderr)
        assert message in stderr, (message, stderr)
        assert not out.exists()
        assert not list(tmp_path.glob(".hsigen-tmp-*"))
    # An unknown sampler is a usage error (exit 2) that lists the samplers.
    code, _, stderr = cli("sample", "--ckpt", latent_model, "-n", "1", "--sampler", "euler", "--out", tmp_path / "s")
    assert code == 2 and "'euler' is not one of 'ddim', 'ddpm', 'dpm'" in stderr and not (tmp_path / "s").exists()


def test_train_under_torchrun_two_ranks_end_identical(ip_dataset, kl_autoencoder, tmp_path):
    out = tmp_path / "ddp-model"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    hsigen = Path(sys.executable).with_name("hsigen")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        str(hsigen),
        "train-diffusion",
        "--space",
        "latent",
        "--autoencoder",
        str(kl_autoencoder),
        "--dataset",
        str(ip_dataset),
        "--kinds",
        "hed",
        "--steps",
        "4",
        "--batch-size",
        "4",
        "--grad-accum",
        "2",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "manifest.json").read_text())["metrics"]
    assert metrics["ddp_world_size"] == 2
    assert metrics["ddp_ranks_identical"] is True
    assert not list(tmp_path.glob(".hsigen-tmp-*")) and not (tmp_path / "ddp-model.work").exists()


def test_conditions_artifact_for_training_and_sampling(cli, ip_dataset, kl_autoencoder, latent_model, tmp_path):
    """A conditions artifact of the dataset gives the same training maps as on-the-fly
    extraction, and can drive `sample` (item i for sample i) with text as well."""
    from stages.diffusion.spaces.latent import PRESETS, prepare_latent

    cond = tmp_path / "cond"
    code, _, stderr = cli("condition", ip_dataset, "--kinds", "hed,seg", "--out", cond)
    assert code == 0, stderr
    cfg = dict(PRESETS["tiny"].to_dict(), augment=False)
    from_artifact = prepare_latent({"autoencoder": kl_autoencoder, "dataset": ip_dataset, "conditions": cond}, cfg)
    on_the_fly = prepare_latent({"autoencoder": kl_autoencoder, "dataset": ip_dataset, "kinds": "hed,seg"}, cfg)
    assert np.array_equal(from_artifact.maps, on_the_fly.maps)
    assert np.array_equal(from_artifact.latents, on_the_fly.latents)
    assert from_artifact.space_config["conditions"]["local"] == ["hed", "seg"]

    out = tmp_path / "from-cond"
    code, _, stderr = cli(
        "sample", "--ckpt", latent_model, "--conditions", cond, "-n", "2", "--steps", "3", "--out", out
    )
    assert code == 0, stderr
    with h5py.File(out / "samples.h5") as h5:
        present = h5["condition_present"][...]
        maps = h5["conditions"][...]
    assert present[:, :4].tolist() == [[1, 0, 0, 1]] * 2
    from stages.conditions.io import load_conditions

    loaded = load_conditions(cond)
    assert np.allclose(maps[1, 0], loaded.maps["hed"][1, 0])


class _Killed(Exception):
    pass


def test_resume_continues_exactly(cli, ip_dataset, kl_autoencoder, tmp_path, monkeypatch):
    """A run killed at step 4 and resumed from its step-3 checkpoint ends with the weights of
    an uninterrupted run (randomness per step from (seed, step): exact --resume)."""
    args = (
        "train-diffusion",
        "--space",
        "latent",
        "--autoencoder",
        kl_autoencoder,
        "--dataset",
        ip_dataset,
        "--kinds",
        "hed",
        "--steps",
        "6",
        "--batch-size",
        "2",
        "--checkpoint-every",
        "3",
        "--device",
        "cpu",
    )
    assert cli(*args, "--out", tmp_path / "full")[0] == 0

    from stages.diffusion import latent_training

    real = latent_training.latent_loss_fn

    def dies_at_step_4(*a, **kw):
        fn = real(*a, **kw)
        return lambda model, step, g: (_ for _ in ()).throw(_Killed()) if step == 4 else fn(model, step, g)

    monkeypatch.setattr(latent_training, "latent_loss_fn", dies_at_step_4)
    code, _, _ = cli(*args, "--out", tmp_path / "cut")
    assert code == 3 and not (tmp_path / "cut").exists() and (tmp_path / "cut.work" / "checkpoint").is_dir()
    monkeypatch.setattr(latent_training, "latent_loss_fn", real)
    code, _, stderr = cli(*args, "--resume", "--out", tmp_path / "cut")
    assert code == 0 and "resumed from step 3" in stderr
    from safetensors.torch import load_file

    for part in ("unet/diffusion_pytorch_model.safetensors", "controlnet/diffusion_pytorch_model.safetensors"):
        full, resumed = load_file(tmp_path / "full" / part), load_file(tmp_path / "cut" / part)
        assert full.keys() == resumed.keys()
        assert all(torch.equal(full[k], resumed[k]) for k in full), part
