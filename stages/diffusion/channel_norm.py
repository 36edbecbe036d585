"""Per-channel standardisation of autoencoder latents before diffusion (the joint space always,
the latent space when its preset's ``standardise_latents`` is on).

An autoencoder's scaling factor gives its latent unit variance as a whole, but single channels
can differ by orders of magnitude — most of all with a linear spectral path, whose channels are
principal components (``stages/autoencoder/spectral_path.py``). With one global scale the
diffusion loss all but ignores the small channels and sampling leaves them at the noise level;
standardising each channel gives every one the same weight (the per-channel latent mean/std that
later latent-diffusion models record beside their VAE). The statistics go into the model's
manifest and are undone before decoding.
"""

from __future__ import annotations

import numpy as np


def channel_statistics(latents: np.ndarray) -> dict:
    """Per-channel mean and std of (N, C, h, w) training latents."""
    # reduced in the latents' dtype, then widened (what the joint space's recorded models used)
    mean = latents.mean(axis=(0, 2, 3)).astype(np.float64)
    std = latents.std(axis=(0, 2, 3)).astype(np.float64) + 1e-6
    return {"channel_mean": mean.tolist(), "channel_std": std.tolist()}


def _affine(norm: dict, channels: int):
    mean = np.asarray(norm.get("channel_mean", np.zeros(channels)), np.float32)[None, :, None, None]
    std = np.asarray(norm.get("channel_std", np.ones(channels)), np.float32)[None, :, None, None]
    gain = np.asarray(norm.get("channel_gain", np.ones(channels)), np.float32)[None, :, None, None]
    return mean, std, gain


def normalise(latents: np.ndarray, norm: dict) -> np.ndarray:
    """Autoencoder latents → diffusion tensors: (z − mean) / std per channel, × the channel's gain."""
    mean, std, gain = _affine(norm, latents.shape[1])
    return ((latents - mean) / std * gain).astype(np.float32)


def denormalise(tensors: np.ndarray, norm: dict | None) -> np.ndarray:
    """The inverse of ``normalise`` (identity for models that recorded no channel statistics)."""
    if not norm:
        return np.asarray(tensors, np.float32)
    mean, std, gain = _affine(norm, tensors.shape[1])
    return (tensors / gain * std + mean).astype(np.float32)


def torch_affine(norm: dict, device):
    """(mean, std) of ``norm`` as (1, C, 1, 1) float32 tensors on ``device``, for batches normalised
    on the fly (the streamed latent corpus): (z − mean) / std as ``normalise`` does, gain 1."""
    import torch

    shape = (1, -1, 1, 1)
    mean = torch.tensor(norm["channel_mean"], dtype=torch.float32, device=device).reshape(shape)
    std = torch.tensor(norm["channel_std"], dtype=torch.float32, device=device).reshape(shape)
    return mean, std
