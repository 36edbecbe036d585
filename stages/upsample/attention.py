"""Rectangle self-attention and the rectangular cross-attention (RCA) of RGAN.

Pang et al., HSIGene, arXiv:2409.12470 §3.3.3 (Fig. 6, Fig. 7, eqs. 4–7), after the rectangle self-attention of SERT
(hsigene ref. [47]): the C channels of Q, K, V are split into two halves; the first half
attends inside *horizontal* windows ``[h, w]`` (w > h), the second inside *vertical* windows
``[w, h]``; each window is a multi-head attention over its h·w tokens with a learnable
position bias P, and the two halves are concatenated again (eq. 7).

Maps are channels-last (B, H, W, C). Maps whose height/width are not multiples of a window are zero-padded at the bottom/right,
the padded tokens are masked out of every key set (so they never influence a real pixel),
and the output is cropped back. Window grids always start at the map's top-left pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def window_partition(x: torch.Tensor, wh: int, ww: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Channels-last (B, H, W, C) → windows (B·nW, wh·ww, C) and a key-validity mask
    (B·nW, wh·ww), or None when no padding was needed.

    Bottom/right zero padding up to multiples of (wh, ww); the mask is False on padding.
    Windows are ordered row-major over the window grid, batch outermost.
    """
    b, h, w, c = x.shape
    ph, pw = (-h) % wh, (-w) % ww
    valid = None
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
        valid = torch.zeros(b, h + ph, w + pw, 1, dtype=torch.bool, device=x.device)
        valid[:, :h, :w] = True
    gh, gw = (h + ph) // wh, (w + pw) // ww

    def split(t: torch.Tensor) -> torch.Tensor:
        ch = t.shape[-1]
        t = t.reshape(b, gh, wh, gw, ww, ch).transpose(2, 3)  # B, gh, gw, wh, ww, C
        return t.reshape(b * gh * gw, wh * ww, ch)

    return split(x), None if valid is None else split(valid)[..., 0]


def window_reverse(windows: torch.Tensor, wh: int, ww: int, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: windows (B·nW, wh·ww, C) → (B, height, width, C)."""
    gh, gw = -(-height // wh), -(-width // ww)
    c = windows.shape[-1]
    b = windows.shape[0] // (gh * gw)
    x = windows.reshape(b, gh, gw, wh, ww, c).transpose(2, 3).reshape(b, gh * wh, gw * ww, c)
    return x[:, :height, :width]


class PositionBias(nn.Module):
    """Learnable position bias P of eq. 6, one value per head and relative offset inside a
    window (a relative-position table, so P has (2h-1)(2w-1)·heads parameters)."""

    def __init__(self, wh: int, ww: int, heads: int):
        super().__init__()
        self.table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), heads))
        nn.init.trunc_normal_(self.table, std=0.02)
        rows, cols = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
        coords = torch.stack([rows.flatten(), cols.flatten()])  # 2, N
        rel = coords[:, :, None] - coords[:, None, :]  # 2, N, N
        index = (rel[0] + wh - 1) * (2 * ww - 1) + (rel[1] + ww - 1)
        self.register_buffer("index", index, persistent=False)

    def forward(self) -> torch.Tensor:
        n = self.index.shape[0]
        return self.table[self.index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)  # heads, N, N


def window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, bias: torch.Tensor, key_valid: torch.Tensor | None
) -> torch.Tensor:
    """SoftMax(Q Kᵀ/√d + P) V per window and head (eq. 6). q/k/v: (nW, N, C); bias P: (heads, N, N);
    key_valid: (nW, N) or None — padded keys get −∞."""
    nw, n, c = q.shape
    d = c // heads

    def heads_first(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(nw, n, heads, d).transpose(1, 2)  # nW, heads, N, d

    mask = bias.unsqueeze(0)
    if key_valid is not None:
        mask = mask.masked_fill(~key_valid[:, None, None, :], float("-inf"))
    out = F.scaled_dot_product_attention(heads_first(q), heads_first(k), heads_first(v), attn_mask=mask)
    return out.transpose(1, 2).reshape(nw, n, c)


def _check_dims(dim: int, heads: int, window: tuple[int, int]) -> tuple[int, int]:
    h, w = int(window[0]), int(window[1])
    if dim % 2 or (dim // 2) % heads:
        raise ValueError(f"dim {dim} must be even and each half divisible by heads {heads}")
    if not (0 < h < w):
        raise ValueError(f"rectangle window {window}: need 0 < h < w (horizontal windows are wider than tall)")
    return h, w


def rect_attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    heads: int,
    window: tuple[int, int],
    bias_h: PositionBias,
    bias_v: PositionBias,
) -> torch.Tensor:
    """Rectangle attention of channels-last maps (B, H, W, C): channels [0, C/2) in horizontal
    windows [h, w], channels [C/2, C) in vertical windows [w, h] (eq. 5), outputs
    concatenated (eq. 7)."""
    h, w = window
    height, width, c = q.shape[1:]
    half = c // 2
    outputs = []
    for sl, (wh, ww), bias in ((slice(0, half), (h, w), bias_h), (slice(half, None), (w, h), bias_v)):
        qw, valid = window_partition(q[..., sl], wh, ww)
        kw, _ = window_partition(k[..., sl], wh, ww)
        vw, _ = window_partition(v[..., sl], wh, ww)
        out = window_attention(qw, kw, vw, heads, bias(), valid)
        outputs.append(window_reverse(out, wh, ww, height, width))
    return torch.cat(outputs, dim=-1)


class RectangleSelfAttention(nn.Module):
    """Rectangle self-attention (RA of SERT [47]) on channels-last maps (B, H, W, C): Q, K, V
    from one map by a 1×1 convolution (a Linear over channels). Returns the concatenated
    half-maps; output projection and residual belong to the layer."""

    def __init__(self, dim: int, heads: int, window: tuple[int, int]):
        super().__init__()
        self.window = _check_dims(dim, heads, window)
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.bias_h = PositionBias(*self.window, heads)
        self.bias_v = PositionBias(self.window[1], self.window[0], heads)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(z).chunk(3, dim=-1)
        return rect_attend(q, k, v, self.heads, self.window, self.bias_h, self.bias_v)


class RectangularCrossAttention(nn.Module):
    """RCA (hsigene §3.3.3, eqs. 4–7) on channels-last maps. ``forward(z1, z2)`` returns (Ẑ1, Ẑ2):

        Q_i, K_i, V_i = Split(Conv2d_i(Z_i))                           (eq. 4; 1×1 conv = Linear)
        Ẑ1 = SoftMax(Q2 K1ᵀ/√d + P) V1,  Ẑ2 = SoftMax(Q1 K2ᵀ/√d + P) V2   (eq. 6)

    per channel half and window orientation (eq. 5), halves concatenated (eq. 7). Each
    modality has its own projection; P is shared by both directions (one table per orientation).
    """

    def __init__(self, dim: int, heads: int, window: tuple[int, int]):
        super().__init__()
        self.window = _check_dims(dim, heads, window)
        self.heads = heads
        self.qkv1 = nn.Linear(dim, 3 * dim)
        self.qkv2 = nn.Linear(dim, 3 * dim)
        self.bias_h = PositionBias(*self.window, heads)
        self.bias_v = PositionBias(self.window[1], self.window[0], heads)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q1, k1, v1 = self.qkv1(z1).chunk(3, dim=-1)
        q2, k2, v2 = self.qkv2(z2).chunk(3, dim=-1)
        out1 = rect_attend(q2, k1, v1, self.heads, self.window, self.bias_h, self.bias_v)
        out2 = rect_attend(q1, k2, v2, self.heads, self.window, self.bias_h, self.bias_v)
        return out1, out2
