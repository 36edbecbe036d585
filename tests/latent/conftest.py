"""Session fixtures of the latent-diffusion tests: a tiny ``kl`` autoencoder trained with the
autoencoder stage's ``run`` on the embedded Indian Pines patches, and a tiny controllable latent
diffusion model (hed + seg maps) trained on its latents — each built once, with fixed step counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

AE_STEPS = 300
DIFFUSION_STEPS = 300
KINDS = "hed,seg"
# The tests check condition following after 300 diffusion steps, with margins measured on the 4 × 8 × 8 latents
# of an f = 4 VAE. The tiny preset's latent (f = 2, 16 × 16 × 16, issue 14) is 16 times larger and its models
# train for longer (the pretrained latent model: 1500 steps); a 32-channel f = 2 latent gave flat samples after
# 300 steps. So the fixture keeps the small latent.
SMALL_LATENT = {"block_out_channels": [32, 64, 64], "latent_channels": 4, "linear_path": False, "gradient_weight": 0.0}
# The latent preset's full-resolution level is 96 wide for the tiny preset's 48 latent channels (issue 14); for the
# fixture's 4 channels the tests keep the 32 the margins were measured with (and half the training time).
SMALL_LATENT_UNET = {"block_out_channels": [32, 48, 48]}


@pytest.fixture(scope="session")
def kl_autoencoder(ip_dataset, tmp_path_factory) -> Path:
    from stages.autoencoder import PRESETS, TrainAEConfig, run
    from stages.training import resolve_preset

    out = tmp_path_factory.mktemp("latent") / "ae-kl"
    model = resolve_preset(PRESETS["kl"], "tiny", {"steps": AE_STEPS, **SMALL_LATENT})
    run(ip_dataset, out, TrainAEConfig(kind="kl", preset="tiny", model=model, seed=0), device="cpu")
    return out


def train_tiny(ip_dataset, autoencoder, out: Path, steps: int, kinds: str | None = KINDS, **overrides):
    from stages.diffusion.spaces.latent import PRESETS, train
    from stages.diffusion.stage import DiffusionTrainConfig
    from stages.training import resolve_preset

    preset = overrides.pop("preset", "tiny")
    model = resolve_preset(PRESETS, preset, {"steps": steps, **overrides}, {"unet": SMALL_LATENT_UNET})
    cfg = DiffusionTrainConfig(space="latent", preset="tiny", model=model, seed=0, device="cpu", checkpoint_every=0)
    return train({"autoencoder": autoencoder, "dataset": ip_dataset, "kinds": kinds}, out, cfg)


@pytest.fixture(scope="session")
def tiny_trainer():
    """``train_tiny(ip_dataset, autoencoder, out, steps, kinds=..., **preset overrides)``."""
    return train_tiny


@pytest.fixture(scope="session")
def latent_model(ip_dataset, kl_autoencoder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("latent") / "ldm"
    train_tiny(ip_dataset, kl_autoencoder, out, DIFFUSION_STEPS)
    return out


@pytest.fixture(scope="session")
def val_conditions(ip_dataset):
    """hed and seg maps of held-out (val) patches, computed as the conditions stage does."""
    from stages.artifacts.datasets import load_patches
    from stages.conditions import make_extractor
    from stages.diffusion.spaces.latent import dataset_rgb

    patches = load_patches(ip_dataset)
    val = np.flatnonzero(patches.split == "val")[:12]
    rgbs, _ = dataset_rgb(Path(ip_dataset))
    seg, hed = make_extractor("seg"), make_extractor("hed")
    return {
        "rows": val,
        "seg": np.stack([seg(rgbs[i]) for i in val]),
        "hed": np.stack([hed(rgbs[i]) for i in val]),
        "rgb": [rgbs[i] for i in val],
    }
