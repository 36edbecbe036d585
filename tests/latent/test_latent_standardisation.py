"""``standardise_latents`` (stages/diffusion/channel_norm.py): the latent space's training tensors
are the autoencoder's latents standardised per channel with statistics of exactly those latents,
recorded in the manifest, and the generator undoes them before decoding."""

from __future__ import annotations

import numpy as np
import torch


def _prepare(ip_dataset, kl_autoencoder, standardise: bool):
    from stages.diffusion.spaces.latent import PRESETS, prepare_latent
    from stages.training import resolve_preset

    cfg = resolve_preset(PRESETS, "tiny", {"standardise_latents": standardise})
    return prepare_latent({"autoencoder": kl_autoencoder, "dataset": ip_dataset, "kinds": "hed"}, cfg)


def test_standardised_latents_are_the_plain_ones_per_channel(ip_dataset, kl_autoencoder):
    plain = _prepare(ip_dataset, kl_autoencoder, False)
    std = _prepare(ip_dataset, kl_autoencoder, True)
    assert "latent_standardisation" not in plain.space_config
    norm = std.space_config["latent_standardisation"]
    z = plain.latents.astype(np.float64)
    mean = [z[:, c].mean() for c in range(z.shape[1])]  # brute force, channel by channel
    spread = [z[:, c].std() for c in range(z.shape[1])]
    np.testing.assert_allclose(norm["channel_mean"], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm["channel_std"], np.asarray(spread) + 1e-6, rtol=1e-5)
    expected = (z - np.asarray(mean)[None, :, None, None]) / (np.asarray(spread)[None, :, None, None] + 1e-6)
    np.testing.assert_allclose(std.latents, expected, atol=1e-4)
    per_channel = std.latents.transpose(1, 0, 2, 3).reshape(std.latents.shape[1], -1)
    np.testing.assert_allclose(per_channel.mean(1), 0, atol=1e-4)
    np.testing.assert_allclose(per_channel.std(1), 1, atol=1e-3)


def test_generator_undoes_the_standardisation(ip_dataset, kl_autoencoder, tiny_trainer, tmp_path):
    from stages.autoencoder.io import load_autoencoder
    from stages.diffusion.channel_norm import normalise
    from stages.diffusion.model import load_model
    from stages.sampling.generation import open_generator

    out = tmp_path / "ldm-std"
    tiny_trainer(ip_dataset, kl_autoencoder, out, 2, kinds="hed", standardise_latents=True)
    model = load_model(out)
    norm = model.config["latent_standardisation"]
    assert len(norm["channel_mean"]) == 4
    generator = open_generator(model)
    generator.load("cpu")
    cond = generator.prepare(None, 3, 32, 1.0)
    ae = load_autoencoder(kl_autoencoder)
    z = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(0)).numpy()
    decoded = generator.decode(normalise(z, norm), slice(0, 3), cond)
    with torch.no_grad():
        direct = ae.decode(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(decoded.hsi, direct, atol=1e-5)
