"""The M-LSD large line-segment detector (Gu et al., "Towards Light-weight and Real-time Line
Segment Detection", AAAI 2022) in the layout of the ControlNet annotator file
``mlsd_large_512_fp32.pth`` — Pang et al., HSIGene, arXiv:2409.12470 §3.1.2 draws its MLSD condition with it.

Network (M-LSD §3.1, Fig. 2 "M-LSD"):
- encoder: MobileNetV2 (Sandler et al. 2018) up to its 96-channel stage, input 4 channels
  (RGB and a constant plane), inverted residual settings (t, c, n, s) = (1, 16, 1, 1),
  (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1); stride-2 convolutions pad only
  right/bottom (the TFLite convention the model was trained with); feature maps after
  ``features`` 1, 3, 6, 10, 13 feed the decoder.
- decoder: four (block type A: 1×1 conv + BN + ReLU of both inputs, ×2 bilinear upsampling of
  the coarser one, concatenation; block type B: two 3×3 conv + BN + ReLU with a residual) pairs
  from 1/16 up to 1/2 resolution, then block type C (dilated 3×3, 3×3, 1×1) with 16 outputs of
  which channels 7..15 are the "TP map" (M-LSD §3.2): channel 0 the centre-point logits,
  1..4 the displacements (dx_start, dy_start, dx_end, dy_end) from the centre to both ends.

Decoding (M-LSD §3.2 "TP representation", the annotator's ``pred_lines``): sigmoid of the
centre map, 3×3 max-pool non-maximum suppression, the ``topk`` highest peaks, and a segment
(centre + start displacement, centre + end displacement) for every peak whose score exceeds
``score_threshold`` and whose length exceeds ``distance_threshold`` (both in output-grid
pixels, the grid at half the input resolution).
"""

from __future__ import annotations

import numpy as np

EXPECTED = "the M-LSD large weights of the ControlNet annotators (mlsd_large_512_fp32.pth)"
# MobileNetV2 inverted residual stages used by M-LSD large: (expansion t, channels c, repeats n, stride s).
BACKBONE_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))
FEATURE_TAPS = (1, 3, 6, 10, 13)  # indices of ``features`` whose outputs feed the decoder
STEM_CHANNELS = 32
OUTPUT_STRIDE = 2  # the TP map is at half the input resolution
MULTIPLE = 16  # input sides must be multiples of this (four halvings, then ×2 back)
TP_CHANNELS_FROM = 7  # block23's outputs 7.. form the TP map


def build_mlsd():
    """The M-LSD large network (parameter names as in ``mlsd_large_512_fp32.pth``)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class ConvBNReLU6(nn.Sequential):
        """Conv (no bias) + BN + ReLU6; stride 2 pads right/bottom by one (TFLite "SAME")."""

        def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1):
            padding = 0 if stride == 2 else (kernel - 1) // 2
            super().__init__(
                nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU6(inplace=True),
            )
            self.stride = stride

        def forward(self, x):
            if self.stride == 2:
                x = F.pad(x, (0, 1, 0, 1))
            return super().forward(x)

    class InvertedResidual(nn.Module):
        """MobileNetV2 block: 1×1 expansion (when t > 1), 3×3 depthwise, linear 1×1 projection."""

        def __init__(self, c_in: int, c_out: int, stride: int, expansion: int):
            super().__init__()
            hidden = int(round(c_in * expansion))
            layers = [ConvBNReLU6(c_in, hidden, kernel=1)] if expansion != 1 else []
            layers += [
                ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
                nn.Conv2d(hidden, c_out, 1, bias=False),
                nn.BatchNorm2d(c_out),
            ]
            self.conv = nn.Sequential(*layers)
            self.residual = stride == 1 and c_in == c_out

        def forward(self, x):
            return x + self.conv(x) if self.residual else self.conv(x)

    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            features, c_in = [ConvBNReLU6(4, STEM_CHANNELS, stride=2)], STEM_CHANNELS
            for expansion, c_out, repeats, stride in BACKBONE_STAGES:
                for i in range(repeats):
                    features.append(InvertedResidual(c_in, c_out, stride if i == 0 else 1, expansion))
                    c_in = c_out
            self.features = nn.Sequential(*features)

        def forward(self, x):
            taps = []
            for i, layer in enumerate(self.features):
                x = layer(x)
                if i in FEATURE_TAPS:
                    taps.append(x)
            return taps

    def conv_bn_relu(c_in, c_out, kernel, padding=0, dilation=1):
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, kernel, padding=padding, dilation=dilation), nn.BatchNorm2d(c_out), nn.ReLU()
        )

    class BlockA(nn.Module):
        """Merge a fine map ``a`` with a coarse map ``b`` (1×1 projections, ×2 upsampling of b)."""

        def __init__(self, fine: int, coarse: int, fine_out: int, coarse_out: int, upscale: bool = True):
            super().__init__()
            self.conv1 = conv_bn_relu(coarse, coarse_out, 1)
            self.conv2 = conv_bn_relu(fine, fine_out, 1)
            self.upscale = upscale

        def forward(self, a, b):
            b, a = self.conv1(b), self.conv2(a)
            if self.upscale:
                b = F.interpolate(b, scale_factor=2.0, mode="bilinear", align_corners=True)
            return torch.cat((a, b), dim=1)

    class BlockB(nn.Module):
        def __init__(self, c_in: int, c_out: int):
            super().__init__()
            self.conv1 = conv_bn_relu(c_in, c_in, 3, padding=1)
            self.conv2 = conv_bn_relu(c_in, c_out, 3, padding=1)

        def forward(self, x):
            return self.conv2(self.conv1(x) + x)

    class BlockC(nn.Module):
        def __init__(self, c_in: int, c_out: int):
            super().__init__()
            self.conv1 = conv_bn_relu(c_in, c_in, 3, padding=5, dilation=5)
            self.conv2 = conv_bn_relu(c_in, c_in, 3, padding=1)
            self.conv3 = nn.Conv2d(c_in, c_out, 1)

        def forward(self, x):
            return self.conv3(self.conv2(self.conv1(x)))

    class MLSDLarge(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = Backbone()
            self.block15, self.block16 = BlockA(64, 96, 64, 64, upscale=False), BlockB(128, 64)
            self.block17, self.block18 = BlockA(32, 64, 64, 64), BlockB(128, 64)
            self.block19, self.block20 = BlockA(24, 64, 64, 64), BlockB(128, 64)
            self.block21, self.block22 = BlockA(16, 64, 64, 64), BlockB(128, 64)
            self.block23 = BlockC(64, 16)

        def forward(self, x):
            """(N, 4, H, W) in [-1, 1] → (N, 9, H/2, W/2) TP maps (channel 0 centre logits,
            1..4 displacements)."""
            c1, c2, c3, c4, c5 = self.backbone(x)
            x = self.block16(self.block15(c4, c5))
            x = self.block18(self.block17(c3, x))
            x = self.block20(self.block19(c2, x))
            x = self.block22(self.block21(c1, x))
            return self.block23(x)[:, TP_CHANNELS_FROM:]

    return MLSDLarge()


def mlsd_input(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB → (N, 4, H, W) float32: RGB and a constant plane of ones, all
    mapped by v / 127.5 - 1 (the annotator's preprocessing)."""
    images = np.asarray(images, dtype=np.float32)
    ones = np.ones(images.shape[:-1] + (1,), np.float32)
    return (np.concatenate([images, ones], axis=-1).transpose(0, 3, 1, 2) / 127.5 - 1.0).astype(np.float32)


def decode_segments(
    tp_map: np.ndarray,
    score_threshold: float = 0.1,
    distance_threshold: float = 0.1,
    topk: int = 200,
    nms_size: int = 3,
) -> np.ndarray:
    """(K, 4) float32 segments x_start, y_start, x_end, y_end in TP-map pixels from one TP map
    (≥ 5, h, w): centre logits in channel 0, displacements in 1..4 (M-LSD §3.2)."""
    import torch
    from torch.nn import functional as F

    tp = torch.as_tensor(np.asarray(tp_map[:5], dtype=np.float32))
    _, h, w = tp.shape
    heat = torch.sigmoid(tp[0])[None, None]
    # A centre counts only where it is the maximum of its nms_size × nms_size neighbourhood.
    peaks = F.max_pool2d(heat, nms_size, stride=1, padding=(nms_size - 1) // 2)
    heat = torch.where(peaks == heat, heat, torch.zeros_like(heat)).reshape(-1)
    scores, index = torch.topk(heat, min(int(topk), heat.numel()))
    ys, xs = index // w, index % w
    shift = tp[1:5, ys, xs].T  # (k, 4) dx0, dy0, dx1, dy1
    length = torch.hypot(shift[:, 0] - shift[:, 2], shift[:, 1] - shift[:, 3])
    keep = (scores > score_threshold) & (length > distance_threshold)
    centre = torch.stack([xs, ys, xs, ys], dim=1).float()
    return (centre + shift)[keep].numpy().astype(np.float32)
