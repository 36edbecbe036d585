"""Building blocks of the downstream models: a fixed per-band standardisation (the real
training patches' band means and stds, measured before training) and a double 3×3 conv block.

The labelled tasks standardise their input: on the embedded scene a U-Net reached OA 0.69 on
the held-out rows after 150 steps with it and 0.07 (the majority class) without, because the
classes differ by small spectral offsets around one common mean."""

from __future__ import annotations

import numpy as np


def standardise(mean: np.ndarray, std: np.ndarray):
    import torch
    from torch import nn

    class Standardise(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

        def forward(self, x):
            return (x - self.mean) / self.std

    return Standardise()


def conv_block(c_in: int, c_out: int):
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU()
    )


def forward_np(model, *arrays: np.ndarray) -> np.ndarray:
    """``model(*arrays)`` without gradients, numpy in and out, on the model's device."""
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        return model(*(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays)).cpu().numpy()


def band_stats(source, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and std over every pixel of ``source``, streamed batch by batch."""
    total = total_sq = None
    count = 0
    for b in source.batches(batch):
        x = b["hsi"].astype(np.float64)
        s, sq = x.sum((0, 2, 3)), (x**2).sum((0, 2, 3))
        total, total_sq = (s, sq) if total is None else (total + s, total_sq + sq)
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return mean.astype(np.float32), (std + 1e-6 * (np.abs(mean) + 1.0)).astype(np.float32)
