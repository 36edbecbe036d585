"""Shared settings of the DSRNet tests (imported by conftest.py and test_dsr.py)."""

from __future__ import annotations

# Fixed training length of the shared tiny DSRNet (×2, Indian Pines RGB bands): autoencoder
# steps, denoiser steps, and the DDIM steps of its evaluation and of the tests' sampling.
DSR_AE_STEPS, DSR_STEPS, DSR_SAMPLE_STEPS = 80, 100, 8


def dsr_config(scale: int = 2, **overrides):
    from stages.training import resolve_preset
    from stages.upsample import train_dsr

    ae_steps = overrides.pop("ae_steps", DSR_AE_STEPS)
    autoencoder = overrides.pop("autoencoder", None)
    checkpoint_every = overrides.pop("checkpoint_every", 0)
    seed = overrides.pop("seed", 0)
    net = resolve_preset(
        train_dsr.PRESETS, "tiny", {"steps": DSR_STEPS, "sample_steps": DSR_SAMPLE_STEPS, "eval_images": 8, **overrides}
    )
    net["ae"]["steps"] = ae_steps
    return train_dsr.DsrTrainConfig(
        scale=scale, preset="tiny", net=net, seed=seed, checkpoint_every=checkpoint_every, autoencoder=autoencoder
    )
