"""PiDiNet (Su et al., "Pixel Difference Networks for Efficient Edge Detection", ICCV 2021) in
the layout of the ControlNet annotator file ``table5_pidinet.pth`` (the paper's Table 5
"PiDiNet": the ``carv4`` configuration, C = 60, CDCM with 24 channels and CSAM) — the network
HSIGene's sketch condition comes from (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2, via the ControlNet annotators).

Pixel difference convolutions (PiDiNet §3.1, Fig. 3), each from a learned 3×3 kernel W:
- ``cv``: vanilla convolution, y = Σ_i w_i · x_i;
- ``cd`` (central, CPDC): y = Σ_i w_i · (x_i − x_c), the centre pixel x_c;
- ``ad`` (angular, APDC): y = Σ_i w_i · (x_i − x_{next(i)}), next(i) the clockwise neighbour of
  i on the 3×3 ring (the centre pairs with itself);
- ``rd`` (radial, RPDC): a 5×5 kernel, y = Σ_k w_k · (x_outer(k) − x_inner(k)) over the 8
  directions k: the pixel 2 steps out minus the pixel 1 step out. The 8 trained weights are
  W[1..8] of the flattened 3×3 tensor (the annotator's layout).
Each is computed as one ordinary convolution with a rearranged kernel (PiDiNet §3.2).

Network (PiDiNet §3.3, Fig. 5): an initial pixel-difference conv 3 → C, then 4 stages of
residual blocks (depthwise PDC 3×3 → ReLU → 1×1), stage widths C, 2C, 4C, 4C with max-pool +
1×1 shortcut at each stage start; the ``carv4`` configuration cycles cd, ad, rd, cv over the 16
layers. Each stage output goes through CDCM (ReLU, 1×1 to 24 channels, sum of 3×3 convolutions
with dilations 5, 7, 9, 11), CSAM (x · σ(conv3×3(conv1×1(ReLU(x))))) and a 1×1 reduction to one
edge map; the four maps are upsampled to the input size and fused by a 1×1 convolution; the
output is the sigmoid of the fused map. Input: BGR in [0, 1].
"""

from __future__ import annotations

import numpy as np

EXPECTED = "the PiDiNet weights of the ControlNet annotators (table5_pidinet.pth, carv4 configuration)"
CARV4 = ("cd", "ad", "rd", "cv") * 4  # PDC type of layers 0..15 (init block, then the 15 blocks)
BASE_CHANNELS = 60
CDCM_CHANNELS = 24
CSAM_CHANNELS = 4
CDCM_DILATIONS = (5, 7, 9, 11)
# APDC: flattened 3×3 index → the index whose weight it loses (the annotator's clockwise permutation).
ANGULAR_PERMUTATION = (3, 0, 1, 6, 4, 2, 7, 8, 5)
# RPDC: positions in a flattened 5×5 kernel of the outer (2 steps) and inner (1 step) pixel per direction.
RADIAL_OUTER = (0, 2, 4, 10, 14, 20, 22, 24)
RADIAL_INNER = (6, 7, 8, 11, 13, 16, 17, 18)


def difference_kernel(weight, op: str):
    """(kernel, padding) of the ordinary convolution equal to pixel difference conv ``op``
    (dilation 1) with learned 3×3 weights ``weight`` (out, in, 3, 3)."""
    import torch

    if op == "cv":
        return weight, 1
    out_c, in_c = weight.shape[:2]
    flat = weight.reshape(out_c, in_c, 9)
    if op == "cd":
        # Σ w_i (x_i − x_c) = Σ w_i x_i − (Σ w_i) x_c: subtract the kernel's sum at the centre.
        centre = torch.zeros_like(flat)
        centre[:, :, 4] = flat.sum(dim=-1)
        return (flat - centre).reshape(weight.shape), 1
    if op == "ad":
        return (flat - flat[:, :, list(ANGULAR_PERMUTATION)]).reshape(weight.shape), 1
    if op == "rd":
        kernel = flat.new_zeros(out_c, in_c, 25)
        kernel[:, :, list(RADIAL_OUTER)] = flat[:, :, 1:]
        kernel[:, :, list(RADIAL_INNER)] = -flat[:, :, 1:]
        return kernel.reshape(out_c, in_c, 5, 5), 2
    raise ValueError(f"unknown pixel difference convolution {op!r}")


def build_pidinet():
    """PiDiNet ``carv4`` with CDCM and CSAM (parameter names as in ``table5_pidinet.pth``)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class PixelDifferenceConv(nn.Module):
        def __init__(self, op: str, c_in: int, c_out: int, groups: int = 1):
            super().__init__()
            self.op, self.groups = op, groups
            self.weight = nn.Parameter(torch.empty(c_out, c_in // groups, 3, 3))
            nn.init.kaiming_uniform_(self.weight, a=5**0.5)

        def forward(self, x):
            kernel, padding = difference_kernel(self.weight, self.op)
            return F.conv2d(x, kernel, padding=padding, groups=self.groups)

    class Block(nn.Module):
        """Depthwise PDC → ReLU → 1×1, plus the input (max-pooled and projected at a stage start)."""

        def __init__(self, op: str, c_in: int, c_out: int, stride: int = 1):
            super().__init__()
            self.stride = stride
            if stride > 1:
                self.shortcut = nn.Conv2d(c_in, c_out, 1)
            self.conv1 = PixelDifferenceConv(op, c_in, c_in, groups=c_in)
            self.conv2 = nn.Conv2d(c_in, c_out, 1, bias=False)

        def forward(self, x):
            if self.stride > 1:
                x = F.max_pool2d(x, 2, 2)
            y = self.conv2(F.relu(self.conv1(x)))
            return y + (self.shortcut(x) if self.stride > 1 else x)

    class CDCM(nn.Module):
        """Compact dilation convolution module (PiDiNet §3.3)."""

        def __init__(self, c_in: int, c_out: int):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 1)
            for j, d in enumerate(CDCM_DILATIONS, start=1):
                setattr(self, f"conv2_{j}", nn.Conv2d(c_out, c_out, 3, padding=d, dilation=d, bias=False))

        def forward(self, x):
            x = self.conv1(F.relu(x))
            return sum(getattr(self, f"conv2_{j}")(x) for j in range(1, len(CDCM_DILATIONS) + 1))

    class CSAM(nn.Module):
        """Compact spatial attention module (PiDiNet §3.3)."""

        def __init__(self, channels: int):
            super().__init__()
            self.conv1 = nn.Conv2d(channels, CSAM_CHANNELS, 1)
            self.conv2 = nn.Conv2d(CSAM_CHANNELS, 1, 3, padding=1, bias=False)

        def forward(self, x):
            return x * torch.sigmoid(self.conv2(self.conv1(F.relu(x))))

    class MapReduce(nn.Module):
        def __init__(self, channels: int):
            super().__init__()
            self.conv = nn.Conv2d(channels, 1, 1)

        def forward(self, x):
            return self.conv(x)

    class PiDiNet(nn.Module):
        def __init__(self):
            super().__init__()
            c = BASE_CHANNELS
            self.init_block = PixelDifferenceConv(CARV4[0], 3, c)
            widths = (c, 2 * c, 4 * c, 4 * c)
            depths = (3, 4, 4, 4)
            layer, c_in = 1, c
            for stage, (width, depth) in enumerate(zip(widths, depths), start=1):
                for j in range(1, depth + 1):
                    stride = 2 if stage > 1 and j == 1 else 1
                    setattr(self, f"block{stage}_{j}", Block(CARV4[layer], c_in, width, stride))
                    c_in, layer = width, layer + 1
            self.stage_depths = depths
            self.dilations = nn.ModuleList([CDCM(w, CDCM_CHANNELS) for w in widths])
            self.attentions = nn.ModuleList([CSAM(CDCM_CHANNELS) for _ in widths])
            self.conv_reduces = nn.ModuleList([MapReduce(CDCM_CHANNELS) for _ in widths])
            self.classifier = nn.Conv2d(len(widths), 1, 1)

        def forward(self, x):
            """(N, 3, H, W) BGR in [0, 1] → (N, 1, H, W) fused edge probability."""
            size = x.shape[-2:]
            x = self.init_block(x)
            edges = []
            for stage, depth in enumerate(self.stage_depths, start=1):
                for j in range(1, depth + 1):
                    x = getattr(self, f"block{stage}_{j}")(x)
                k = stage - 1
                side = self.conv_reduces[k](self.attentions[k](self.dilations[k](x)))
                edges.append(F.interpolate(side, size=size, mode="bilinear", align_corners=False))
            return torch.sigmoid(self.classifier(torch.cat(edges, dim=1)))

    return PiDiNet()


def pidinet_input(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB → (N, 3, H, W) float32 BGR in [0, 1] (PiDiNet was trained on
    OpenCV-loaded BGR images)."""
    images = np.asarray(images, dtype=np.float32)[..., ::-1]
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2) / 255.0, dtype=np.float32)
