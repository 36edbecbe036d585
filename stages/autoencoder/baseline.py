"""The PCA baseline of issue 5: it stores as many values per patch as the latent does.

Each patch is area-downsampled by f, every low-resolution pixel is projected on the first C
principal components (C = latent channels; fitted on the training patches' downsampled
pixels), and the reconstruction is the inverse projection upsampled bicubically by f. So it
keeps C × (H/f) × (W/f) numbers per patch, exactly the size of the autoencoder's latent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _downsample(hsi: np.ndarray, f: int) -> np.ndarray:
    n, b, h, w = hsi.shape
    if h % f or w % f:
        raise ValueError(f"patch size {h}x{w} is not divisible by the downsampling factor {f}")
    return hsi.reshape(n, b, h // f, f, w // f, f).mean(axis=(3, 5))


@dataclass
class PCABaseline:
    mean: np.ndarray  # (B,)
    components: np.ndarray  # (C, B)
    factor: int

    @classmethod
    def fit(cls, train_hsi: np.ndarray, components: int, factor: int) -> PCABaseline:
        low = _downsample(train_hsi.astype(np.float64), factor)
        pixels = np.moveaxis(low, 1, -1).reshape(-1, low.shape[1])
        mean = pixels.mean(axis=0)
        # Principal axes from the SVD of the centred pixel matrix.
        _, _, vt = np.linalg.svd(pixels - mean, full_matrices=False)
        return cls(mean, vt[:components], factor)

    def encode(self, hsi: np.ndarray) -> np.ndarray:
        low = _downsample(hsi.astype(np.float64), self.factor)
        return np.einsum("cb,nbhw->nchw", self.components, low - self.mean[None, :, None, None])

    def decode(self, codes: np.ndarray) -> np.ndarray:
        import torch

        low = np.einsum("cb,nchw->nbhw", self.components, codes) + self.mean[None, :, None, None]
        up = torch.nn.functional.interpolate(
            torch.from_numpy(low), scale_factor=self.factor, mode="bicubic", align_corners=False
        )
        return up.numpy().astype(np.float32)

    def reconstruct(self, hsi: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(hsi))
