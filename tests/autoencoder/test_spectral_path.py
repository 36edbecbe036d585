"""The KL-VAE's linear path (spectral_path.py): it goes through the latent (encode → decode is
the model's own reconstruction), survives save/load bit for bit, and is off unless asked."""

from __future__ import annotations

import numpy as np
import torch

from stages.autoencoder.bandnorm import band_statistics
from stages.autoencoder.config import PRESETS
from stages.autoencoder.io import model_class
from stages.training import resolve_preset


def _model(kind="kl", **over):
    cfg = resolve_preset(PRESETS[kind], "tiny") | {"block_out_channels": [16, 16], "latent_channels": 6} | over
    x = np.random.default_rng(0).uniform(0.1, 0.9, (4, 12, 16, 16)).astype(np.float32)
    torch.manual_seed(0)
    return model_class("kl")(12, cfg, 0.1, band_stats=band_statistics(x)), torch.from_numpy(x)


def test_linear_path_passes_through_the_latent_and_round_trips(tmp_path):
    model, x = _model(linear_path=True)
    with torch.no_grad():
        for p in model.linear_path.parameters():
            p.add_(0.05 * torch.randn_like(p))  # non-trivial weights
    model.eval()
    z = model.encode(x)
    assert z.shape == (4, 6, 8, 8)
    # The shift is part of the code: the same latent decodes to the same image, and removing the
    # linear path's contribution to the latent changes it.
    np.testing.assert_allclose(model.reconstruct(x).numpy(), model.decode(z).numpy(), atol=1e-6)
    with torch.no_grad():
        plain = model.vae.encode(x).latent_dist.mode() * model.scaling_factor
    assert float((plain - z).abs().max()) > 1e-3
    model.save(tmp_path)
    assert (tmp_path / "vae_linear_path.safetensors").is_file()
    meta = {"bands": 12, "cfg": model.cfg, "shift": 0.1, "band_stats": model.band_stats}
    loaded = type(model).load(tmp_path, meta).eval()
    np.testing.assert_array_equal(loaded.encode(x).numpy(), z.numpy())
    np.testing.assert_array_equal(loaded.decode(z).numpy(), model.decode(z).numpy())


def test_linear_path_is_off_by_default_and_adds_two_1x1_convolutions():
    plain, _ = _model()
    assert plain.linear_path is None
    with_path, _ = _model(linear_path=True)
    counts = with_path.parameter_counts()
    assert counts["linear_path"] == (12 * 6 + 6) + (6 * 12 + 12)
    assert counts["vae"] == plain.parameter_counts()["vae"]
