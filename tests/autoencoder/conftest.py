"""Small autoencoders trained once per session (fixed step counts, CPU, seed 0)."""

from __future__ import annotations

import pytest

# A micro architecture so that training in tests takes seconds; the presets' own sizes are
# checked by --dry-run parameter counts instead. GroupNorm keeps the tiny presets' one group.
MICRO = {"block_out_channels": [8, 16, 16], "batch_size": 8, "crop": 16, "warmup_steps": 0}
KL_STEPS, KL_CHECKPOINT = 48, 24


# kl_run's fields: 4 latent channels, as the tests' shapes assume, and the plain VAE (the tiny preset has 48
# with the block linear path since issue 14, which starts at a PCA code: test_spectral_path.py covers it).
KL_PLAIN = {"latent_channels": 4, "linear_path": False, "linear_block": False, "gradient_weight": 0.0}


def micro_config(kind: str, steps: int, checkpoint_every: int = 0, **overrides):
    from stages.autoencoder import PRESETS, TrainAEConfig
    from stages.training import resolve_preset

    model = resolve_preset(PRESETS[kind], "tiny", {**MICRO, "steps": steps, **overrides})
    return TrainAEConfig(kind=kind, preset="tiny", model=model, seed=0, checkpoint_every=checkpoint_every)


@pytest.fixture(scope="session")
def kl_run(ip_dataset, tmp_path_factory):
    """A micro kl VAE: 48 steps with a checkpoint at step 24 (the resume test's reference)."""
    from stages.autoencoder import run

    out = tmp_path_factory.mktemp("ae") / "kl"
    return run(ip_dataset, out, micro_config("kl", KL_STEPS, KL_CHECKPOINT, **KL_PLAIN), device="cpu")


@pytest.fixture(scope="session")
def vq_run(ip_dataset, tmp_path_factory):
    from stages.autoencoder import run

    out = tmp_path_factory.mktemp("ae") / "vq"
    cfg = micro_config(
        "vq-rgb", 6, codebook_size=64, condition_channels=8, head_channels=8, norm_num_groups=4, batch_size=4
    )
    return run(ip_dataset, out, cfg, device="cpu")


@pytest.fixture(scope="session")
def two_stream_run(ip_dataset, tmp_path_factory):
    """A micro image branch beside the tiny preset's mask branch (with its linear path), trained
    for a fixed 300 steps: issue 5's "short run" (figures per seed in test_two_stream.py)."""
    from stages.autoencoder import run

    out = tmp_path_factory.mktemp("ae") / "two_stream"
    cfg = micro_config("two-stream", TWO_STREAM_STEPS, **TWO_STREAM_OVERRIDES)
    return run(ip_dataset, out, cfg, device="cpu")


TWO_STREAM_STEPS = 300
# The mask branch and image latent as the tiny preset had them when these figures were measured (issue 14 then
# moved the preset to f = 2, 48 image channels and the block linear path).
TWO_STREAM_OVERRIDES = {
    "batch_size": 16,
    "crop": 16,
    "warmup_steps": 50,
    "mask_block_out_channels": [32, 64, 64],
    "latent_channels": 8,
    "linear_block": False,
}


@pytest.fixture
def make_config():
    """``make_config(kind, steps, checkpoint_every=0, **overrides)`` with the MICRO sizes."""
    return micro_config
