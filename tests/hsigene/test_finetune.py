"""Fine-tuning a tiny-width import on the embedded scene: only the chosen parts change, and a
run killed after a checkpoint resumes to the same bits as an uninterrupted one."""

from __future__ import annotations

import json

import pytest
import torch
from finetune_helpers import full_and_resumed, weights


def _changed(before, after, prefix):
    keys = [k for k in before if k.startswith(prefix)]
    return sum(not torch.equal(before[k], after[k]) for k in keys), len(keys)


def test_adapters_only_change_and_cli(cli, tiny_import, ip_dataset, tmp_path):
    code, _, err = cli(
        "train-diffusion",
        "--space",
        "latent",
        "--architecture",
        "hsigene",
        "--init",
        tiny_import,
        "--dataset",
        ip_dataset,
        "--train",
        "adapters",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--lr",
        "1e-3",
        "--device",
        "cpu",
        "--out",
        tmp_path / "ft",
    )
    assert code == 0, err
    before, after = weights(tiny_import), weights(tmp_path / "ft")
    assert set(before) == set(after)
    for prefix in ("model.diffusion_model.", "first_stage_model.", "cond_stage_model."):
        assert _changed(before, after, prefix)[0] == 0, prefix
    changed, total = _changed(before, after, "local_adapter.")
    assert changed > total // 2
    assert _changed(before, after, "global_text_adapter.")[0] > 0
    assert _changed(before, after, "metadata_emb.")[0] > 0
    # The frozen VAE: the init's autoencoder artifact, copied unchanged (manifest included).
    for name in ("manifest.json", "model.json", "model.safetensors"):
        assert (tmp_path / "ft" / "autoencoder" / name).read_bytes() == (
            tiny_import / "autoencoder" / name
        ).read_bytes()
    # The result is again a sampleable HSIGene model.
    code, _, err = cli("sample", "--ckpt", tmp_path / "ft", "-n", "1", "--steps", "2", "--out", tmp_path / "s")
    assert code == 0, err
    # Its samples are in the dataset's grid and physical units: stored [0, 1] spans the train
    # patches' physical [min, max], counted here by brute force.
    from stages.artifacts.datasets import load_patches

    patches = load_patches(ip_dataset)
    train = patches.physical()[patches.split == "train"]
    spectral = json.loads((tmp_path / "ft" / "manifest.json").read_text())["spectral"]
    assert spectral["offset"] == pytest.approx(float(train.min()), rel=1e-6)
    assert spectral["scale"] == pytest.approx(float(train.max() - train.min()), rel=1e-6)
    assert spectral["wavelengths_nm"] == pytest.approx(list(patches.wavelengths_nm), abs=1e-3)


def test_unet_only_change(tiny_import, ip_dataset, tmp_path):
    from stages.hsigene.finetune import FineTuneConfig, finetune

    finetune(tiny_import, ip_dataset, tmp_path / "u", FineTuneConfig(train="unet", steps=1, lr=1e-3, batch_size=1))
    before, after = weights(tiny_import), weights(tmp_path / "u")
    assert _changed(before, after, "local_adapter.")[0] == 0
    assert _changed(before, after, "global_content_adapter.")[0] == 0
    changed, total = _changed(before, after, "model.diffusion_model.")
    assert changed > total // 2


def test_resume_is_exact(tiny_import, ip_dataset, tmp_path, monkeypatch):
    import stages.hsigene.finetune as ft

    cfg = ft.FineTuneConfig(train="all", steps=4, lr=1e-3, batch_size=1, checkpoint_every=2, seed=3)
    full, resumed = full_and_resumed(tiny_import, ip_dataset, tmp_path, cfg, monkeypatch)
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    assert not torch.equal(
        full["model.diffusion_model.out.2.weight"], weights(tiny_import)["model.diffusion_model.out.2.weight"]
    )


def test_finetune_refuses_other_spaces_options_and_two_datasets(cli, tiny_import, ip_dataset, tmp_path):
    base = [
        "train-diffusion",
        "--space",
        "latent",
        "--architecture",
        "hsigene",
        "--init",
        tiny_import,
        "--dataset",
        ip_dataset,
        "--steps",
        "1",
        "--out",
        tmp_path / "ft",
    ]
    code, _, err = cli(*base, "--workers", "3")
    assert code == 1 and "--workers: not for --architecture hsigene" in err
    code, _, err = cli(*base, "--dataset", ip_dataset)
    assert code == 1 and "one --dataset" in err
    code, _, err = cli(
        "train-diffusion", "--space", "latent", "--init", tiny_import, "--dataset", ip_dataset, "--out", tmp_path / "ft"
    )
    assert code == 1 and "add --architecture hsigene" in err
    code, _, err = cli(
        "train-diffusion",
        "--space",
        "joint",
        "--architecture",
        "hsigene",
        "--init",
        tiny_import,
        "--dataset",
        ip_dataset,
        "--out",
        tmp_path / "ft",
    )
    assert code == 1 and "add --space latent" in err
    assert not (tmp_path / "ft").exists()
