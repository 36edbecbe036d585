"""The joint space's latent normalisation (per-channel standardisation and the mask channels'
gain) is recorded in the model and undone exactly before the autoencoder decodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stages.artifacts.datasets import load_patches
from stages.autoencoder.data import class_index
from stages.autoencoder.io import load_autoencoder
from stages.diffusion import load_model
from stages.diffusion.spaces.joint import (
    MASK_GAIN,
    decode,
    decode_latents,
    denormalise,
    latent_normalisation,
    normalise,
)


def test_normalisation_round_trip_and_unit_statistics():
    rng = np.random.default_rng(0)
    latents = (
        rng.standard_normal((40, 6, 4, 4)) * np.array([1, 2, 3, 0.5, 0.1, 4])[None, :, None, None]
        + np.arange(6)[None, :, None, None]
    ).astype(np.float32)
    norm = latent_normalisation(latents, mask_channels=2, mask_gain=2.5)
    tensors = normalise(latents, norm)
    np.testing.assert_allclose(tensors.mean((0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(tensors.std((0, 2, 3)), [1, 1, 1, 1, 2.5, 2.5], rtol=1e-4)
    np.testing.assert_allclose(denormalise(tensors, norm), latents, rtol=1e-5, atol=1e-5)
    # A model recorded without channel statistics decodes its tensors as they are.
    np.testing.assert_array_equal(denormalise(latents, {}), latents)


def test_model_statistics_match_training_latents_and_decode_inverts_them(joint_model, ip_dataset):
    model = load_model(joint_model)
    norm = model.config["normalisation"]
    ae = load_autoencoder(joint_model / "autoencoder")
    train = load_patches(ip_dataset, "train")
    x = torch.from_numpy(((train.physical() - ae.offset) / ae.scale).astype(np.float32))
    latents = ae.encode(x, torch.from_numpy(class_index(train.labels, ae.classes))).numpy()
    # Statistics over the 8 orientations equal those of the unrotated patches (a rotation
    # permutes latent pixels; the encoder's padding makes the match approximate).
    np.testing.assert_allclose(norm["channel_mean"], latents.mean((0, 2, 3)), atol=0.05)
    np.testing.assert_allclose(norm["channel_std"], latents.std((0, 2, 3)), rtol=0.1)
    # Decoding the normalised training latents gives the autoencoder's own reconstruction.
    decoded = decode(model, normalise(latents[:4], norm))
    direct = decode_latents(ae, latents[:4])
    np.testing.assert_allclose(decoded.hsi, direct["hsi"], atol=1e-4)
    np.testing.assert_array_equal(decoded.arrays["labels"], direct["labels"])
    assert norm["mask_gain"] == MASK_GAIN
    mask_gains = norm["channel_gain"][-ae.mask_latent_channels :]
    assert mask_gains == pytest.approx([norm["mask_gain"]] * ae.mask_latent_channels)
