"""Building blocks of the ldm ``openaimodel`` UNet as the HSIGene release uses them.

Module and attribute names follow the public state dict (LiPang/HSIGene 9f893a7,
ldm/modules/diffusionmodules/openaimodel.py and ldm/modules/attention.py) so that released
weights load by name; the forward passes are written for CPU speed: fused
``scaled_dot_product_attention`` instead of explicit softmax(QKᵀ) matrices, and nothing that
works in float32 only (GroupNorm upcasts, like ldm's GroupNorm32, when running in bf16/fp16).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class GroupNorm32(nn.GroupNorm):
    """ldm diffusionmodules/util.py L359-L361: GroupNorm computed in float32 (eps 1e-5)."""

    def forward(self, x):
        if x.dtype == torch.float32:
            return super().forward(x)
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.group_norm(x.float(), self.num_groups, weight, bias, self.eps).to(x.dtype)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """ldm diffusionmodules/util.py L238-L247: [cos(t·f), sin(t·f)], f = exp(-ln(P)·i/half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def time_mlp(model_channels: int) -> nn.Sequential:
    """openaimodel.py L529-L534: ``time_embed`` = Linear, SiLU, Linear (keys .0 and .2)."""
    width = 4 * model_channels
    return nn.Sequential(nn.Linear(model_channels, width), nn.SiLU(), nn.Linear(width, width))


class TimestepBlock(nn.Module):
    """Marker: forward(x, emb)."""


class ResBlock(TimestepBlock):
    """openaimodel.py L163-L275 (use_scale_shift_norm False, no up/down): keys in_layers.{0,2},
    emb_layers.1, out_layers.{0,3}, skip_connection (a 1×1 conv when the width changes)."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int | None = None, groups: int = 32):
        super().__init__()
        out_channels = out_channels or channels
        self.in_layers = nn.Sequential(
            GroupNorm32(groups, channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            GroupNorm32(groups, out_channels),
            nn.SiLU(),
            nn.Dropout(0.0),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x, emb):
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Downsample(nn.Module):
    """openaimodel.py L134-L160 (conv_resample): key ``op``, a 3×3 stride-2 conv, padding 1."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class Upsample(nn.Module):
    """openaimodel.py L91-L119: nearest ×2 then a 3×3 conv (key ``conv``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class GEGLU(nn.Module):
    """attention.py L49-L56: one Linear to 2·inner, value · GELU(gate) (key ``proj``)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x):
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """attention.py L59-L77 with glu=True: net.0 = GEGLU(dim, dim·mult), net.1 dropout,
    net.2 = Linear(dim·mult, dim_out)."""

    def __init__(self, dim: int, dim_out: int | None = None, mult: float = 4, dropout: float = 0.0):
        super().__init__()
        inner = int(dim * mult)
        self.net = nn.Sequential(GEGLU(dim, inner), nn.Dropout(dropout), nn.Linear(inner, dim_out or dim))

    def forward(self, x):
        return self.net(x)


class CrossAttention(nn.Module):
    """attention.py L146-L195: bias-free to_q/to_k/to_v, to_out.0 Linear; softmax(q·kᵀ/√d)."""

    def __init__(self, query_dim: int, context_dim: int | None, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        context_dim = context_dim or query_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(0.0))

    def forward(self, x, context=None):
        context = x if context is None else context
        b, n, _ = x.shape
        q, k, v = (
            t.view(b, t.shape[1], self.heads, -1).transpose(1, 2)
            for t in (self.to_q(x), self.to_k(context), self.to_v(context))
        )
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class BasicTransformerBlock(nn.Module):
    """attention.py L247-L276: self-attention, cross-attention, GEGLU feed-forward, pre-norm."""

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int):
        super().__init__()
        self.attn1 = CrossAttention(dim, None, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads, dim_head)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x, context):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    """attention.py L279-L345 (use_linear False): GroupNorm(32, eps 1e-6), 1×1 proj_in, blocks,
    1×1 proj_out, residual."""

    def __init__(self, channels: int, heads: int, dim_head: int, depth: int, context_dim: int, groups: int = 32):
        super().__init__()
        inner = heads * dim_head
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner, heads, dim_head, context_dim) for _ in range(depth)]
        )
        self.proj_out = nn.Conv2d(inner, channels, 1)

    def forward(self, x, context):
        b, c, h, w = x.shape
        y = self.proj_in(self.norm(x))
        y = y.permute(0, 2, 3, 1).reshape(b, h * w, -1)
        for block in self.transformer_blocks:
            y = block(y, context)
        y = y.reshape(b, h, w, -1).permute(0, 3, 1, 2)
        return self.proj_out(y) + x


class Step(nn.Sequential):
    """ldm's TimestepEmbedSequential (openaimodel.py L74-L88): children get what they take."""

    def forward(self, x, emb=None, context=None, local_features=None):
        for layer in self:
            if isinstance(layer, TimestepBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            elif getattr(layer, "takes_local_features", False):
                x = layer(x, emb, local_features)
            else:
                x = layer(x)
        return x
