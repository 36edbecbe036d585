"""The classic RGB FID (Heusel et al. 2017) on false-colour composites, for users who have the
FID Inception-v3 weights (``pt_inception-2015-12-05-6726825d.pth``, pytorch-fid's port of
TensorFlow's ``inception-2015-12-05`` graph). Nothing is downloaded: the user gives the file.

The network is the FID variant of Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception
Architecture", Fig. 5-7 / Table 1), written here in plain torch because torchvision cannot be
used beside this torch build and would unpickle weights. It differs from torchvision's ImageNet
Inception3 exactly where the 2015 TensorFlow graph does:
  * the average pools inside the Mixed blocks exclude the zero padding (TF "SAME" pooling);
  * the last block (Mixed_7c) pools its fourth branch with a 3×3 max pool, not an average;
  * 1008 output classes and no auxiliary classifier.
Parameter and buffer names follow torchvision's Inception3, which is what the weight file uses,
so the file loads with ``strict=True``. Features are the 2048-d global average pool ("pool3").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..common.weights import load_strict, read_state_dict

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
EXPECTED = (
    f"the FID Inception-v3 weights {WEIGHTS_NAME} (pytorch-fid's port of TensorFlow's "
    "inception-2015-12-05 graph, or that file converted to .safetensors)"
)
FEATURES = 2048
CLASSES = 1008
INPUT_SIZE = 299
BN_EPS = 1e-3  # the TF graph's batch-norm epsilon


class ConvBN(nn.Module):
    """Conv (no bias) → batch norm → ReLU; named ``conv`` / ``bn`` like torchvision's BasicConv2d."""

    def __init__(self, c_in: int, c_out: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_same(x):
    # TF "SAME" average pooling divides by the number of real pixels under the window.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class MixedA(nn.Module):
    """35×35 block (Szegedy et al. Fig. 5): 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | pool→1×1."""

    def __init__(self, c_in: int, pool_features: int):
        super().__init__()
        self.branch1x1 = ConvBN(c_in, 64, 1)
        self.branch5x5_1 = ConvBN(c_in, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(c_in, pool_features, 1)

    def forward(self, x):
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool_same(x)),
            ],
            1,
        )


class ReductionB(nn.Module):
    """35×35 → 17×17 grid reduction: stride-2 3×3 | 1×1→3×3→stride-2 3×3 | stride-2 max pool."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3 = ConvBN(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2),
            ],
            1,
        )


class MixedC(nn.Module):
    """17×17 block with factorised 7×7 convolutions (Szegedy et al. Fig. 6, n = 7)."""

    def __init__(self, c_in: int, c7: int):
        super().__init__()
        self.branch1x1 = ConvBN(c_in, 192, 1)
        self.branch7x7_1 = ConvBN(c_in, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(c_in, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(c_in, 192, 1)

    def forward(self, x):
        single = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            double = layer(double)
        return torch.cat([self.branch1x1(x), single, double, self.branch_pool(_avg_pool_same(x))], 1)


class ReductionD(nn.Module):
    """17×17 → 8×8 grid reduction: 1×1→stride-2 3×3 | 1×1→1×7→7×1→stride-2 3×3 | max pool."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3_1 = ConvBN(c_in, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(c_in, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x):
        tower = x
        for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            tower = layer(tower)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), tower, F.max_pool2d(x, 3, stride=2)], 1)


class MixedE(nn.Module):
    """8×8 block with expanded 1×3 / 3×1 outputs (Szegedy et al. Fig. 7). ``max_pool`` selects the
    FID graph's quirk in its last block (Mixed_7c): a max pool in the pool branch."""

    def __init__(self, c_in: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = ConvBN(c_in, 320, 1)
        self.branch3x3_1 = ConvBN(c_in, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(c_in, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(c_in, 192, 1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool_same(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(a),
                self.branch3x3_2b(a),
                self.branch3x3dbl_3a(b),
                self.branch3x3dbl_3b(b),
                self.branch_pool(pooled),
            ],
            1,
        )


class FIDInceptionV3(nn.Module):
    """Inception-v3 as in the 2015 TF graph the FID reference code uses; ``forward`` maps RGB in
    [0, 1] of any size to the 2048-d pool3 features."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = MixedA(192, 32)
        self.Mixed_5c = MixedA(256, 64)
        self.Mixed_5d = MixedA(288, 64)
        self.Mixed_6a = ReductionB(288)
        self.Mixed_6b = MixedC(768, 128)
        self.Mixed_6c = MixedC(768, 160)
        self.Mixed_6d = MixedC(768, 160)
        self.Mixed_6e = MixedC(768, 192)
        self.Mixed_7a = ReductionD(768)
        self.Mixed_7b = MixedE(1280, max_pool=False)
        self.Mixed_7c = MixedE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURES, CLASSES)  # the ImageNet head; unused for FID, kept for the names

    def forward(self, rgb01: torch.Tensor) -> torch.Tensor:
        # The FID input convention: bilinear resize to 299×299, then [0, 1] → [-1, 1].
        x = F.interpolate(rgb01, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return self.pool3(2 * x - 1)

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 299, 299) in [-1, 1] → (N, 2048)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return x.mean(dim=(2, 3))  # pool3: global average over the 8×8 grid


def load_fid_inception(path: str | Path, device="cpu") -> FIDInceptionV3:
    """The FID network with the user's weights, in eval mode; any mismatch is one InputError."""
    state = read_state_dict(path, "--inception-weights", EXPECTED)
    model = load_strict(FIDInceptionV3(), state, "--inception-weights", path, EXPECTED)
    return model.to(device).eval().requires_grad_(False)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def choose_images(n: int, max_images: int | None, seed: int) -> np.ndarray:
    """All image indices, or a seeded random subset of ``max_images`` of them (sorted)."""
    if max_images is None or n <= max_images:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_images, replace=False))


def rgb_stretch(cubes: np.ndarray, wavelengths_nm) -> tuple[np.ndarray, np.ndarray]:
    """The 2 % linear stretch of the report's false colour, over all pixels of ``cubes``."""
    from ..spectral.preview import rgb_band_indices, stretch_limits

    idx = rgb_band_indices(wavelengths_nm)
    return stretch_limits(np.stack([cubes[:, i] for i in idx], axis=-1))


def composites(cubes: np.ndarray, wavelengths_nm, limits) -> np.ndarray:
    """(N, B, H, W) physical → (N, 3, H, W) float32 in [0, 1]: the report's false colour (bands
    nearest 640/550/470 nm), 8-bit like the image files classic FID reads, one fixed stretch."""
    from ..spectral.preview import false_colour

    rgb = np.stack([false_colour(cube, wavelengths_nm, limits=limits) for cube in cubes])
    return rgb.transpose(0, 3, 1, 2).astype(np.float32) / 255.0


def features(
    model: FIDInceptionV3,
    cubes: np.ndarray,
    wavelengths_nm,
    limits,
    batch_size: int = 16,
    device="cpu",
    label: str = "inception",
) -> np.ndarray:
    """(N, 2048) float64 pool3 features of the false-colour composites, in batches."""
    from ..common import log

    out = []
    with torch.inference_mode(), log.progress(label, len(cubes)) as bar:
        for start in range(0, len(cubes), batch_size):
            rgb = torch.from_numpy(composites(cubes[start : start + batch_size], wavelengths_nm, limits))
            out.append(model(rgb.to(device)).double().cpu().numpy())
            bar.advance(len(rgb))
    return np.concatenate(out) if out else np.zeros((0, FEATURES))


class RgbFid:
    """Classic FID of generated sets against one real set, on false-colour composites.

    Every set uses the real images' stretch, so brightness and colour errors of the generator
    show in the composites instead of being normalised away per image. Sets larger than
    ``max_images`` use a seeded random subset (the same seed for every set)."""

    def __init__(
        self,
        model: FIDInceptionV3,
        real_cubes: np.ndarray,
        wavelengths_nm,
        max_images: int | None,
        seed: int,
        batch_size: int,
        device,
    ):
        self.model, self.wavelengths_nm, self.max_images = model, np.asarray(wavelengths_nm), max_images
        self.seed, self.batch_size, self.device = seed, batch_size, device
        chosen = real_cubes[choose_images(len(real_cubes), max_images, seed)]
        self.limits = rgb_stretch(chosen, self.wavelengths_nm)
        self.real_images = len(chosen)
        self.real_features = self.features(chosen, "inception (real)")

    def features(self, cubes: np.ndarray, label: str) -> np.ndarray:
        return features(self.model, cubes, self.wavelengths_nm, self.limits, self.batch_size, self.device, label)

    def __call__(self, generated_cubes: np.ndarray, label: str = "inception (generated)") -> tuple[float, int]:
        """(FID, number of generated images used)."""
        from .distribution import frechet_distance

        chosen = generated_cubes[choose_images(len(generated_cubes), self.max_images, self.seed)]
        return frechet_distance(self.real_features, self.features(chosen, label), items="images"), len(chosen)

    def describe(self) -> dict:
        from ..spectral.preview import RGB_NM, rgb_band_indices

        idx = rgb_band_indices(self.wavelengths_nm)
        return {
            "network": "FID Inception-v3 (TF inception-2015-12-05), pool3 2048-d",
            "composite": f"false colour, bands nearest {'/'.join(f'{t:g}' for t in RGB_NM)} nm, 8-bit, "
            "the real images' 2 % stretch for every set; bilinear 299×299, scaled to [-1, 1]",
            "rgb_bands_nm": [float(self.wavelengths_nm[i]) for i in idx],
            "stretch": {"low": self.limits[0].tolist(), "high": self.limits[1].tolist()},
            "real_images": int(self.real_images),
        }
