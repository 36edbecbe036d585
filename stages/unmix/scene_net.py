"""The scene-based unmixing network of MSF-Diff (Pan et al., MSF-Diff, Information Fusion 108 (2024) §4.1, eqs. 2-4).

Encoder G_E: three selected bands (RGB-like) → a stack of residual spectral-attention (RSA)
modules (3×3 convolutions + CBAM-style channel attention [61]) → softmax over k channels, so
abundances are non-negative and sum to one by construction (ANC, ASC).
Decoder G_D: a 1×1 convolution with bias whose weights are the endmembers (eq. 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..training.presets import Preset, preset_table


@dataclass(frozen=True)
class SceneNetPreset(Preset):
    """``unmix --method scene-net``: encoder widths and optimiser (steps, or epochs when None)."""

    channels: list[int]
    steps: Optional[int]
    batch_size: int
    lr: float
    weight_decay: float
    ema_decay: Optional[float]
    epochs: Optional[int]


# Channels of the encoder's layers (Pan et al., MSF-Diff, Information Fusion 108 (2024) §5.1.3 uses [3, 32, 64, 128, 96, 48, 5]);
# the last entry is replaced by k.
SCENE_NET_PRESETS: dict[str, SceneNetPreset] = preset_table(
    SceneNetPreset,
    {
        "tiny": {
            "channels": [3, 16, 32, 32, 16],
            "steps": 300,
            "batch_size": 8,
            "lr": 2e-3,
            "weight_decay": 0.0,
            "ema_decay": None,
            "epochs": None,
        },
        # §5.1.3: Adam, lr 1e-4, 40 epochs (steps = 40 × patches / batch).
        "paper": {
            "channels": [3, 32, 64, 128, 96, 48],
            "steps": None,
            "batch_size": 8,
            "lr": 1e-4,
            "weight_decay": 0.0,
            "ema_decay": None,
            "epochs": 40,
        },
    },
)


def build_scene_net(channels: list[int], k: int, bands: int):
    import torch
    from torch import nn

    class ChannelAttention(nn.Module):
        """CBAM channel attention [61]: a shared 1×1-conv MLP on average- and max-pooled
        descriptors, sigmoid gate per channel."""

        def __init__(self, c: int, reduction: int = 4):
            super().__init__()
            hidden = max(c // reduction, 2)
            self.mlp = nn.Sequential(nn.Conv2d(c, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, c, 1))

        def forward(self, x):
            gate = self.mlp(x.mean(dim=(2, 3), keepdim=True)) + self.mlp(x.amax(dim=(2, 3), keepdim=True))
            return x * torch.sigmoid(gate)

    class RSA(nn.Module):
        """Residual spectral attention: conv3×3 → ReLU → conv3×3 → channel attention, plus a
        (1×1-projected when widths differ) identity path."""

        def __init__(self, c_in: int, c_out: int, last: bool):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1),
                ChannelAttention(c_out),
            )
            self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)
            self.last = last

        def forward(self, x):
            y = self.body(x) + self.skip(x)
            return y if self.last else torch.relu(y)

    class SceneUnmixingNet(nn.Module):
        def __init__(self):
            super().__init__()
            widths = [*channels, k]
            self.encoder = nn.Sequential(
                *[RSA(a, b, last=(i == len(widths) - 2)) for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]
            )
            # eq. 3: Ŷ = Ê·Â + b, a 1×1 convolution whose weights are the endmembers.
            self.decoder = nn.Conv2d(k, bands, 1, bias=True)

        def abundances(self, rgb):
            return torch.softmax(self.encoder(rgb), dim=1)

        def forward(self, rgb):
            a = self.abundances(rgb)
            return self.decoder(a), a

        def endmembers(self) -> np.ndarray:
            """(B, k) in the decoder's units, with the bias folded in: since Σ a = 1,
            E·a + b = (E + b·1ᵀ)·a, so the plain linear mixing model reproduces the decoder."""
            w = self.decoder.weight.detach()[:, :, 0, 0]
            return (w + self.decoder.bias.detach()[:, None]).cpu().double().numpy()

    return SceneUnmixingNet()


def unmixing_loss(y, y_hat, decoder_weight, alpha: float, beta: float):
    """Pan et al., MSF-Diff, Information Fusion 108 (2024) eq. 4: L = MAE + α·SAD + β·ETV.

    SAD is the mean per-pixel spectral angle between Y and Ŷ; ETV is the total variation
    Σ_i |e_{i+1} − e_i| along the bands of each endmember (mean over endmembers)."""
    import torch

    mae = (y - y_hat).abs().mean()
    cos = (y * y_hat).sum(1) / (y.norm(dim=1) * y_hat.norm(dim=1)).clamp_min(1e-8)
    sad = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7)).mean()
    e = decoder_weight[:, :, 0, 0]  # (B, k)
    etv = (e[1:] - e[:-1]).abs().sum(0).mean()
    return mae + alpha * sad + beta * etv, {
        "mae": float(mae.detach()),
        "sad": float(sad.detach()),
        "etv": float(etv.detach()),
    }


def stretch_rgb(rgb_chw: np.ndarray, percent: float = 2.0) -> np.ndarray:
    """Per-image, per-channel linear stretch of the 2-98 % range to [0, 1]. The same mapping is
    applied to the training bands and to external RGB images, so the encoder sees one input
    convention whatever the units (reflectance, radiance, 8-bit, 16-bit)."""
    x = np.asarray(rgb_chw, np.float32).reshape(rgb_chw.shape[0], -1)
    low = np.percentile(x, percent, axis=1)[:, None, None]
    high = np.percentile(x, 100 - percent, axis=1)[:, None, None]
    out = (rgb_chw - low) / np.maximum(high - low, 1e-6)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
