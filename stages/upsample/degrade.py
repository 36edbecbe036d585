"""The documented degradation that makes (LR, HR) training pairs (Pang et al., HSIGene, arXiv:2409.12470 §4.1.2,
after IKC, hsigene ref. [51]): an isotropic Gaussian blur followed by bicubic downsampling.

- blur: σ = ``sigma_per_scale`` · scale pixels (default 0.5 · s, i.e. σ = 1 for ×2 and 2 for
  ×4), kernel radius ⌈3σ⌉, reflect padding, applied to every band alike;
- downsampling: bicubic resampling to (H/s, W/s) (``align_corners=False``, no extra
  anti-aliasing: the blur is the anti-aliasing filter).
H and W must be multiples of ``scale`` (callers crop first).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SCALES = (2, 4)
SIGMA_PER_SCALE = 0.5


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian of radius ⌈3σ⌉."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).float()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflect padding."""
    k = gaussian_kernel(sigma).to(x)
    r = k.numel() // 2
    c = x.shape[1]
    if min(x.shape[-2:]) <= r:
        raise ValueError(f"image {tuple(x.shape[-2:])} too small for a blur of radius {r}")
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def degrade(hr: torch.Tensor, scale: int, sigma_per_scale: float = SIGMA_PER_SCALE) -> torch.Tensor:
    """HR (N, C, H, W) → LR (N, C, H/s, W/s): Gaussian blur then bicubic downsampling."""
    if scale not in SCALES:
        raise ValueError(f"scale {scale} is not one of {SCALES}")
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} is not a multiple of the scale {scale}")
    blurred = gaussian_blur(hr, sigma_per_scale * scale)
    return F.interpolate(blurred, size=(h // scale, w // scale), mode="bicubic", align_corners=False)
