"""Patch-level Fréchet distance on the features of a fixed random convolution network.

No weights are downloaded: the network is three 3×3 convolutions (B → 64 → 128 → 128, the last
two with stride 2, ReLU after each, no padding) initialised from the fixed seed ``NET_SEED`` and
never trained. Random convolutional features are a known, training-free image descriptor
(Jarrett, Kavukcuoglu, Ranzato & LeCun, "What is the best multi-stage architecture for object
recognition?", ICCV 2009, §3: random filters with rectification and pooling already
discriminate textures). Every position of the last feature map describes one 15×15-pixel patch,
so even a handful of generated images gives hundreds of feature vectors, and the Fréchet
distance (Heusel et al., NeurIPS 2017, eq. 6) between the real and generated patch features
scores joint spatial-spectral texture. Inputs are divided per band by the real set's std (the
same transform for every set) and each image's own band means are removed: the features then
describe texture, not the land-cover mix that the spectral metrics already score. (With the
means kept, the Indian Pines val rows — other fields than the train rows — scored worse than
real pixels shuffled into noise.) Values compare only between rows of one report.
"""

from __future__ import annotations

import numpy as np

from ..common.runtime import torch_threads
from .distribution import frechet_distance

NET_SEED = 20170601  # fixed: the features must not change with --seed
WIDTHS = (64, 128, 128)
RECEPTIVE_FIELD = 15  # pixels seen by one output position
MAX_PATCHES = 20_000  # feature vectors per set (seeded subset beyond this)
BATCH = 64
DESCRIPTION = (
    f"Fréchet distance of {RECEPTIVE_FIELD}×{RECEPTIVE_FIELD}-px patch features from a fixed random "
    f"3-layer conv net (widths {', '.join(map(str, WIDTHS))}, seed {NET_SEED}, not trained)"
)


class RandomPatchFeatures:
    """The fixed network and the real set's per-band scale."""

    def __init__(self, real_cubes: np.ndarray):
        import torch
        from torch import nn

        bands = real_cubes.shape[1]
        self.std = (real_cubes.std(axis=(0, 2, 3), dtype=np.float64) + 1e-6).astype(np.float32)
        generator = torch.Generator().manual_seed(NET_SEED)
        layers, c_in = [], bands
        for i, c_out in enumerate(WIDTHS):
            conv = nn.Conv2d(c_in, c_out, 3, stride=1 if i == 0 else 2)
            # He-normal weights keep the activations' scale through the ReLUs (He et al. 2015).
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * np.sqrt(2.0 / (c_in * 9)))
                conv.bias.zero_()
            layers += [conv, nn.ReLU()]
            c_in = c_out
        self.net = nn.Sequential(*layers).eval()

    def __call__(self, cubes: np.ndarray, seed: int) -> np.ndarray:
        """(n_patches, 128) features of every output position, a seeded subset of MAX_PATCHES."""
        import torch

        rng = np.random.default_rng(seed)
        per_image = self.positions(cubes.shape[2], cubes.shape[3])
        needed = -(-MAX_PATCHES // per_image)  # images enough for MAX_PATCHES positions
        if len(cubes) > needed:
            cubes = cubes[np.sort(rng.choice(len(cubes), needed, replace=False))]
        out = []
        with torch.no_grad(), torch_threads(1):
            for a in range(0, len(cubes), BATCH):
                x = np.asarray(cubes[a : a + BATCH], np.float32) / self.std[:, None, None]
                x = x - x.mean(axis=(2, 3), keepdims=True)
                f = self.net(torch.from_numpy(np.ascontiguousarray(x)))
                out.append(f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]).double().numpy())
        feats = np.concatenate(out)
        if len(feats) > MAX_PATCHES:
            feats = feats[np.sort(rng.choice(len(feats), MAX_PATCHES, replace=False))]
        return feats

    @staticmethod
    def positions(h: int, w: int) -> int:
        """Output positions per image: 3×3 valid, then two stride-2 3×3 valid convolutions."""
        for stride in (1, 2, 2):
            h, w = (h - 3) // stride + 1, (w - 3) // stride + 1
        return max(1, h * w)


def patch_frechet_distance(real_feats: np.ndarray, gen_feats: np.ndarray) -> float:
    return frechet_distance(real_feats, gen_feats, items="feature patches")
