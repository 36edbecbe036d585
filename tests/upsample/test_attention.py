"""The rectangular cross-attention (RCA, hsigene eqs. 4–7) and its window machinery, directly."""

from __future__ import annotations

import math

import pytest
import torch

from stages.upsample.attention import (
    RectangleSelfAttention,
    RectangularCrossAttention,
    window_partition,
    window_reverse,
)

SIZES = [(8, 16), (13, 21), (5, 7), (1, 3)]


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("window", [(2, 8), (8, 2), (3, 5)])
def test_windows_cover_the_map_exactly_once(height, width, window):
    wh, ww = window
    ids = torch.arange(height * width, dtype=torch.float64).reshape(1, height, width, 1) + 1
    windows, valid = window_partition(ids, wh, ww)
    assert windows.shape[1:] == (wh * ww, 1)
    n_windows = math.ceil(height / wh) * math.ceil(width / ww)
    assert windows.shape[0] == n_windows
    if valid is None:
        assert height % wh == 0 and width % ww == 0
        valid = torch.ones(windows.shape[:2], dtype=torch.bool)
    seen = windows[..., 0][valid]
    # every pixel id exactly once among the valid tokens, padding is exactly the rest
    assert sorted(seen.tolist()) == list(range(1, height * width + 1))
    assert int((~valid).sum()) == n_windows * wh * ww - height * width
    assert torch.all(windows[..., 0][~valid] == 0)
    # each window is one [wh, ww] rectangle of the map: ids in it form contiguous rows/cols
    rows = ((seen - 1) // width).reshape(-1)
    assert rows.numel() == height * width
    assert torch.equal(window_reverse(windows, wh, ww, height, width), ids)


def _same_projection(rca: RectangularCrossAttention, ra: RectangleSelfAttention) -> None:
    with torch.no_grad():
        rca.qkv2.weight.copy_(rca.qkv1.weight)
        rca.qkv2.bias.copy_(rca.qkv1.bias)
        ra.qkv.weight.copy_(rca.qkv1.weight)
        ra.qkv.bias.copy_(rca.qkv1.bias)
        ra.bias_h.table.copy_(rca.bias_h.table)
        ra.bias_v.table.copy_(rca.bias_v.table)


@pytest.mark.parametrize("height,width", [(8, 16), (13, 21)])
def test_rca_shapes_and_self_attention_reduction(height, width):
    torch.manual_seed(0)
    dim, heads, window = 16, 2, (2, 8)
    rca = RectangularCrossAttention(dim, heads, window)
    ra = RectangleSelfAttention(dim, heads, window)
    z1, z2 = torch.randn(2, height, width, dim), torch.randn(2, height, width, dim)
    out1, out2 = rca(z1, z2)
    assert out1.shape == out2.shape == (2, height, width, dim)
    # different modalities give different outputs in each direction
    assert not torch.allclose(out1, out2, atol=1e-3)

    _same_projection(rca, ra)
    self_out = ra(z1)
    cross1, cross2 = rca(z1, z1)
    assert torch.allclose(cross1, self_out, atol=1e-6)
    assert torch.allclose(cross2, self_out, atol=1e-6)


def _brute_force_rca_hsi_output(rca: RectangularCrossAttention, z1, z2):
    """Ẑ2 = SoftMax(Q1 K2ᵀ/√d + P) V2 of eq. 6 pixel by pixel with explicit loops: half 1
    in horizontal windows [h, w], half 2 in vertical windows [w, h] (eq. 5, Fig. 7)."""
    _, height, width, dim = z1.shape
    heads = rca.heads
    q1, _, _ = rca.qkv1(z1).chunk(3, dim=-1)
    _, k2, v2 = rca.qkv2(z2).chunk(3, dim=-1)
    half, d = dim // 2, dim // 2 // heads
    h, w = rca.window
    out = torch.zeros(1, height, width, dim, dtype=z1.dtype)
    for part, (wh, ww), bias in ((0, (h, w), rca.bias_h), (1, (w, h), rca.bias_v)):
        table = bias()  # heads, N, N
        for r in range(height):
            for c in range(width):
                r0, c0 = (r // wh) * wh, (c // ww) * ww
                keys = [(rr, cc) for rr in range(r0, min(r0 + wh, height)) for cc in range(c0, min(c0 + ww, width))]
                qi = (r - r0) * ww + (c - c0)
                for head in range(heads):
                    lo = part * half + head * d
                    q = q1[0, r, c, lo : lo + d]
                    logits = torch.stack(
                        [
                            q @ k2[0, rr, cc, lo : lo + d] / math.sqrt(d) + table[head, qi, (rr - r0) * ww + (cc - c0)]
                            for rr, cc in keys
                        ]
                    )
                    weights = torch.softmax(logits, dim=0)
                    out[0, r, c, lo : lo + d] = sum(
                        wt * v2[0, rr, cc, lo : lo + d] for wt, (rr, cc) in zip(weights, keys)
                    )
    return out


def test_rca_matches_eq6_brute_force_with_padding():
    torch.manual_seed(1)
    rca = RectangularCrossAttention(8, 2, (2, 4)).double()
    z1, z2 = torch.randn(1, 5, 7, 8, dtype=torch.float64), torch.randn(1, 5, 7, 8, dtype=torch.float64)
    with torch.no_grad():
        _, out2 = rca(z1, z2)
        expected = _brute_force_rca_hsi_output(rca, z1, z2)
    assert torch.allclose(out2, expected, atol=1e-10)


def test_padding_never_influences_real_pixels():
    """A map not divisible by the window gives the same result as the same map padded with
    arbitrary content and cropped: padded keys are masked out."""
    torch.manual_seed(2)
    ra = RectangleSelfAttention(8, 2, (2, 4)).double()
    rca = RectangularCrossAttention(8, 2, (2, 4)).double()
    _same_projection(rca, ra)
    z = torch.randn(1, 5, 7, 8, dtype=torch.float64)
    big = torch.randn(1, 6, 8, 8, dtype=torch.float64) * 50
    big[:, :5, :7] = z
    with torch.no_grad():
        small_out = ra(z)
        expected = _brute_force_rca_hsi_output(rca, z, z)  # only real pixels as keys
        big_out = ra(big)[:, :5, :7]  # row 5 / col 7 are real tokens there
    assert torch.allclose(small_out, expected, atol=1e-10)
    assert not torch.allclose(big_out, small_out, atol=1e-3)


def test_window_must_be_rectangular():
    with pytest.raises(ValueError, match="0 < h < w"):
        RectangularCrossAttention(16, 2, (8, 8))
    with pytest.raises(ValueError, match="divisible"):
        RectangularCrossAttention(18, 2, (2, 8))
