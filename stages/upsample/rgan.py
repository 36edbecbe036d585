"""RGAN: the rectangular guided attention network (Pang et al., HSIGene, arXiv:2409.12470 §3.3.3, Fig. 5).

    LR HSI ──bicubic ×s──┬─ conv3×3 ─ x ─┐
                         │               ├─ GAL × depth ─ conv3×3 ─ conv3×3 ─(+)─ HR HSI
    HR RGB ──────────────┼─ conv3×3 ─ y ─┘                                    │
                         └────────────────────────────────────────────────────┘

Each guided attention layer (GAL) = SAL → CAL → SpecAL → FFD, all pre-norm with residuals:
- SAL: rectangle self-attention on the HSI features;
- CAL: rectangular cross-attention (RCA, eqs. 4–7) between HSI (Z1) and RGB (Z2) features;
  Ẑ2 (RGB values gathered by HSI queries) updates the HSI stream — this is how RGB detail
  reaches the HSI — and Ẑ1 (HSI values gathered by RGB queries) updates the RGB stream;
- SpecAL: spectral enhancement as channel attention; the squeeze is a mean over aligned
  ``block``×``block`` tiles instead of the whole image (SERT's SE is global), so the network
  is local: a pixel depends only on pixels within ``receptive_margin()`` — which is what
  lets ``upsample run`` tile whole scenes with bounded memory and no seams;
- FFD: LayerNorm, Linear, ReLU, Linear.

The paper gives no widths/depths for RGAN; the presets choose them (see ``train.PRESETS``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .attention import RectangleSelfAttention, RectangularCrossAttention


class SpectralAttention(nn.Module):
    """SpecAL: channel (spectral) attention with a block-local squeeze, channels-last.

    gate = σ(W2 ReLU(W1 mean_block(x))), output = W_v x · gate. The block mean ignores the
    zero padding added when H or W is not a multiple of ``block``."""

    def __init__(self, dim: int, block: int, reduction: int = 4):
        super().__init__()
        self.block = block
        self.value = nn.Linear(dim, dim)
        hidden = max(4, dim // reduction)
        self.squeeze = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        k = self.block
        gh, gw = -(-h // k), -(-w // k)
        padded = F.pad(x, (0, 0, 0, gw * k - w, 0, gh * k - h))
        sums = padded.reshape(b, gh, k, gw, k, c).sum(dim=(2, 4))  # B, gh, gw, C
        rows = torch.full((gh,), float(k), dtype=x.dtype, device=x.device)
        cols = torch.full((gw,), float(k), dtype=x.dtype, device=x.device)
        rows[-1], cols[-1] = h - (gh - 1) * k, w - (gw - 1) * k
        means = sums / (rows[:, None] * cols[None, :])[None, :, :, None]
        gate = torch.sigmoid(self.squeeze(means))
        gate = gate.repeat_interleave(k, dim=1).repeat_interleave(k, dim=2)[:, :h, :w]
        return self.value(x) * gate


class FeedForward(nn.Module):
    """FFD: normalisation and two linear layers with a ReLU (§3.3.3)."""

    def __init__(self, dim: int, ratio: float):
        super().__init__()
        hidden = int(dim * ratio)
        self.norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(self.norm(x))))


class GuidedAttentionLayer(nn.Module):
    """GAL (Fig. 5): SAL → CAL → SpecAL → FFD with residual connections, on channels-last
    (B, H, W, C) features x (HSI) and y (RGB)."""

    def __init__(self, dim: int, heads: int, window: tuple[int, int], block: int, ffn_ratio: float):
        super().__init__()
        self.norm_sa = nn.LayerNorm(dim)
        self.self_attn = RectangleSelfAttention(dim, heads, window)
        self.proj_sa = nn.Linear(dim, dim)
        self.norm_hsi, self.norm_rgb = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.cross_attn = RectangularCrossAttention(dim, heads, window)
        self.proj_hsi, self.proj_rgb = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.norm_spec = nn.LayerNorm(dim)
        self.spectral = SpectralAttention(dim, block)
        self.ffd = FeedForward(dim, ffn_ratio)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x + self.proj_sa(self.self_attn(self.norm_sa(x)))
        z1, z2 = self.cross_attn(self.norm_hsi(x), self.norm_rgb(y))
        # Each stream receives the other modality's values: Ẑ2 (RGB values, HSI queries)
        # carries the RGB detail into the HSI stream, Ẑ1 (HSI values, RGB queries) the reverse.
        x, y = x + self.proj_hsi(z2), y + self.proj_rgb(z1)
        x = x + self.spectral(self.norm_spec(x))
        x = x + self.ffd(x)
        return x, y


def upsample_bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic ×scale (align_corners=False, edge samples clamped)."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


class RGAN(nn.Module):
    """``forward(lr_hsi, hr_rgb, scale)``: LR HSI (N, B, h, w) and HR RGB guidance
    (N, 3, h·s, w·s), both in the dataset's normalised units (the RGB being the HSI's bands
    nearest 640/550/470 nm), → HR HSI (N, B, h·s, w·s). ``hr_rgb=None`` feeds zeros to the
    RGB branch (Table 7's zero-guidance ablation).

    Inside, every band is standardised with per-band statistics of the training data
    (buffers saved with the weights; constants, so tiling is unaffected): the residual to
    learn is then of order one instead of a few hundredths, which trains far faster."""

    def __init__(
        self,
        bands: int,
        dim: int = 32,
        depth: int = 2,
        heads: int = 2,
        window=(2, 8),
        block: int = 8,
        ffn_ratio: float = 2.0,
        rgb_channels: int = 3,
    ):
        super().__init__()
        self.window, self.block, self.depth = (int(window[0]), int(window[1])), int(block), int(depth)
        self.register_buffer("band_mean", torch.zeros(1, bands, 1, 1))
        self.register_buffer("band_std", torch.ones(1, bands, 1, 1))
        self.register_buffer("rgb_mean", torch.zeros(1, rgb_channels, 1, 1))
        self.register_buffer("rgb_std", torch.ones(1, rgb_channels, 1, 1))
        self.embed_hsi = nn.Conv2d(bands, dim, 3, padding=1)
        self.embed_rgb = nn.Conv2d(rgb_channels, dim, 3, padding=1)
        self.layers = nn.ModuleList(
            GuidedAttentionLayer(dim, heads, self.window, block, ffn_ratio) for _ in range(depth)
        )
        self.body = nn.Conv2d(dim, dim, 3, padding=1)
        self.head = nn.Conv2d(dim, bands, 3, padding=1)
        # The residual head starts at zero, so an untrained RGAN is exactly bicubic.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def set_statistics(self, mean, std, rgb_idx: list[int]) -> None:
        """Per-band mean/std (B,) of the training data; the guidance uses its bands' values."""
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std = torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6).reshape(1, -1, 1, 1)
        self.band_mean.copy_(mean)
        self.band_std.copy_(std)
        self.rgb_mean.copy_(mean[:, rgb_idx])
        self.rgb_std.copy_(std[:, rgb_idx])

    def forward(self, lr_hsi: torch.Tensor, hr_rgb: torch.Tensor | None, scale: int) -> torch.Tensor:
        up = upsample_bicubic((lr_hsi - self.band_mean) / self.band_std, scale)
        if hr_rgb is None:
            guide = up.new_zeros(up.shape[0], self.embed_rgb.in_channels, *up.shape[-2:])
        elif hr_rgb.shape[-2:] != up.shape[-2:]:
            raise ValueError(f"guidance is {tuple(hr_rgb.shape[-2:])}, expected {tuple(up.shape[-2:])}")
        else:
            guide = (hr_rgb - self.rgb_mean) / self.rgb_std
        x = self.embed_hsi(up).permute(0, 2, 3, 1)  # channels-last inside the GALs
        y = self.embed_rgb(guide).permute(0, 2, 3, 1)
        for layer in self.layers:
            x, y = layer(x, y)
        out = up + self.head(F.relu(self.body(x.permute(0, 3, 1, 2))))
        return out * self.band_std + self.band_mean

    def alignment(self) -> int:
        """Period (HR pixels) of every window/block grid: tiles must start on multiples of it."""
        h, w = self.window
        return math.lcm(h, w, self.block)

    def receptive_margin(self) -> int:
        """HR pixels beyond which a change cannot reach an output pixel (excluding the bicubic
        input, which the tiler accounts for): each attention spreads by w−1 (horizontal and
        vertical windows, mixed by the projections), each SpecAL by block−1, and the four
        3×3 convolutions on any path by one pixel each."""
        w = self.window[1]
        return self.depth * (2 * (w - 1) + (self.block - 1)) + 4


def build_rgan(bands: int, arch: dict) -> RGAN:
    return RGAN(
        bands,
        dim=int(arch["dim"]),
        depth=int(arch["depth"]),
        heads=int(arch["heads"]),
        window=tuple(arch["window"]),
        block=int(arch["block"]),
        ffn_ratio=float(arch["ffn_ratio"]),
    )
