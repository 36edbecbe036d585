"""HyperLDM mode (hyperldm.txt §III-C): a vq-rgb autoencoder, the RGB image's encoded features
concatenated with the noisy latent, T = 100 linear β, the SSIM loss term, and decoding with
the same RGB image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def hyperldm_model(ip_dataset, tmp_path_factory, tiny_trainer):
    from stages.autoencoder import PRESETS, TrainAEConfig, run
    from stages.training import resolve_preset

    root = tmp_path_factory.mktemp("hyperldm")
    ae = root / "ae-vq"
    run(
        ip_dataset,
        ae,
        TrainAEConfig(
            kind="vq-rgb", preset="tiny", model=resolve_preset(PRESETS["vq-rgb"], "tiny", {"steps": 5}), seed=0
        ),
        device="cpu",
    )
    model = root / "ldm"
    tiny_trainer(ip_dataset, ae, model, 6, kinds="hed", rgb_condition=True, ssim_weight=0.1, augment=False)
    return ae, model


def test_hyperldm_training_records_schedule_and_ssim_term(hyperldm_model):
    from stages.artifacts import open_artifact

    _, model = hyperldm_model
    manifest = open_artifact(model, "diffusion-model").manifest
    assert manifest["config"]["model"]["schedule"] == {
        "num_train_timesteps": 100,
        "beta_start": 0.01,
        "beta_end": 0.2,
        "beta_schedule": "linear",
    }
    assert manifest["config"]["autoencoder"]["kind"] == "vq-rgb"
    assert 0 < manifest["history"][-1]["ssim_loss"] <= 2  # 1 − SSIM ∈ [0, 2]
    assert manifest["metrics"]["parameter_counts"]["rgb_encoder"] > 0


def test_hyperldm_samples_depend_on_the_rgb_image(hyperldm_model, ip_dataset, tmp_path):
    from stages.diffusion.model import load_model
    from stages.diffusion.spaces.latent import dataset_rgb
    from stages.sampling import ConditionRequest, generate
    from stages.spectral import save_png

    _, path = hyperldm_model
    model = load_model(path)
    rgbs, _ = dataset_rgb(Path(ip_dataset))
    save_png(tmp_path / "a.png", rgbs[5])
    save_png(tmp_path / "b.png", rgbs[40])
    runs = [
        generate(model, ConditionRequest(files=[f"rgb={tmp_path / name}"]), 1, 32, "ddim", 10, 0, 1, 2.0, "cpu")[0]
        for name in ("a.png", "a.png", "b.png")
    ]
    assert runs[0].shape == (1, 48, 32, 32) and np.isfinite(runs[0]).all()
    assert np.array_equal(runs[0], runs[1]) and not np.allclose(runs[0], runs[2])


def test_hyperldm_needs_its_rgb_image(hyperldm_model, ip_dataset, kl_autoencoder, tiny_trainer, tmp_path):
    from stages.common.errors import ConfigError
    from stages.diffusion.model import load_model
    from stages.sampling import ConditionRequest, generate

    _, path = hyperldm_model
    with pytest.raises(ConfigError, match="decodes with an RGB image"):
        generate(load_model(path), ConditionRequest(), 1, 32, "ddim", 2, 0, 1, 2.0, "cpu")
    ae, _ = hyperldm_model
    with pytest.raises(ConfigError, match="add --rgb-condition"):
        tiny_trainer(ip_dataset, ae, tmp_path / "x", 1, kinds="hed")
    with pytest.raises(ConfigError, match="vq-rgb autoencoder"):
        tiny_trainer(ip_dataset, kl_autoencoder, tmp_path / "y", 1, kinds="hed", rgb_condition=True)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
