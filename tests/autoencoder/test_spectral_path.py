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
    model, x = _model(linear_path=True, linear_block=False)
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


def test_pooled_linear_path_adds_two_1x1_convolutions_and_tiny_has_the_block_path():
    plain, _ = _model(linear_path=False)
    assert plain.linear_path is None
    with_path, _ = _model(linear_path=True, linear_block=False)
    assert not with_path.linear_path.block
    counts = with_path.parameter_counts()
    assert counts["linear_path"] == (12 * 6 + 6) + (6 * 12 + 12)
    assert counts["vae"] == plain.parameter_counts()["vae"]
    tiny, _ = _model()
    assert tiny.linear_path is not None and tiny.linear_path.block  # the tiny preset since issue 14


def _block_pca_reconstruction(x: np.ndarray, f: int, components: int) -> np.ndarray:
    """Brute force: PCA of the f×f blocks' B·f·f values, truncated, back to images."""
    n, b, h, w = x.shape
    rows = x.reshape(n, b, h // f, f, w // f, f).transpose(0, 2, 4, 1, 3, 5).reshape(-1, b * f * f).astype(np.float64)
    mean = rows.mean(0)
    _, _, vt = np.linalg.svd(rows - mean, full_matrices=False)
    rec = (rows - mean) @ vt[:components].T @ vt[:components] + mean
    return rec.reshape(n, h // f, w // f, b, f, f).transpose(0, 3, 1, 4, 2, 5).reshape(x.shape)


def test_block_linear_path_starts_at_the_block_pca():
    from stages.autoencoder.spectral_path import SpectralLinearPath

    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 5, 8, 8)).astype(np.float32)
    path = SpectralLinearPath(5, 7, 2, block=True)  # no band statistics: the path sees x as it is
    path.fit_pca(torch.from_numpy(x))
    with torch.no_grad():
        rec = path.image_shift(path.latent_shift(torch.from_numpy(x))).numpy()
    # The path leaves the block mean to the VAE's output layer (bias 0): compare without it.
    blocks_mean = _block_pca_reconstruction(x, 2, 0)
    expected = _block_pca_reconstruction(x, 2, 7) - blocks_mean
    np.testing.assert_allclose(rec, expected, atol=1e-4)
    # 7 of 20 components: far from the identity, so the check above is not trivial.
    assert float(np.abs(expected + blocks_mean - x).mean()) > 0.3
    assert path.linear_in.weight.shape == (7, 5, 2, 2) and path.linear_out.weight.shape == (7, 5, 2, 2)


def test_block_linear_path_round_trips_through_save_and_load(tmp_path):
    model, x = _model(linear_path=True, linear_block=True)
    assert model.linear_path.block
    counts = model.parameter_counts()
    assert counts["linear_path"] == (12 * 4 * 6 + 6) + (6 * 12 * 4 + 12)
    model.eval()
    z = model.encode(x)
    model.save(tmp_path)
    meta = {"bands": 12, "cfg": model.cfg, "shift": 0.1, "band_stats": model.band_stats}
    loaded = type(model).load(tmp_path, meta).eval()
    assert loaded.linear_path.block
    np.testing.assert_array_equal(loaded.encode(x).numpy(), z.numpy())
    np.testing.assert_array_equal(loaded.decode(z).numpy(), model.decode(z).numpy())
