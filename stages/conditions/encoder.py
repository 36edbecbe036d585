"""``content`` from a trained hsigen encoder (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2 "Content": a global embedding
of the image; HSIGene takes it from CLIP's image encoder, here from the spectral autoencoder
that the latent diffusion itself works in, so the embedding sees all bands, not only RGB).

The embedding of one hyperspectral image is pooled statistics of its latent z (C, h, w) — the
posterior mean × scaling factor for ``kl`` and the HSI branch of ``two-stream`` (≈ unit
variance), the quantised codes × scaling factor for ``vq-rgb``:
- the per-channel mean and standard deviation over all latent positions (2·C values), then
- with ``grid`` = g > 0, the per-channel means over a g × g grid of cells (C·g² values).
Mean and standard deviation do not change when the image is rotated or flipped, which is what
the latent trainer's 8-orientation augmentation assumes of a global condition; the grid cells
do, so keep ``grid`` 0 unless training without augmentation.

Sources must be hyperspectral (hsi-dataset / hsi-samples). Their physical values are brought
onto the autoencoder's wavelength grid (identical grids as they are; otherwise linear
interpolation, ``spectral.alignment_matrix``, which refuses targets outside the source's
coverage) and into its normalised units ((physical − offset) / scale). ``--size`` does not
apply: the statistics are global.
"""

from __future__ import annotations

import numpy as np

from ..common.errors import ConfigError, SpectralError
from .common import Extractor

MAX_GRID = 8


def latent_statistics(latents: np.ndarray, grid: int = 0) -> np.ndarray:
    """(N, C, h, w) latents → (N, 2C + C·grid²) float32: channel means, channel standard
    deviations (population), then the channel means of each grid cell (row-major)."""
    z = np.asarray(latents, dtype=np.float64)
    n, c, h, w = z.shape
    parts = [z.mean(axis=(2, 3)), z.std(axis=(2, 3))]
    if grid:
        rows = np.array_split(np.arange(h), grid)
        cols = np.array_split(np.arange(w), grid)
        cells = [z[:, :, r[0] : r[-1] + 1, k[0] : k[-1] + 1].mean(axis=(2, 3)) for r in rows for k in cols]
        parts.append(np.stack(cells, axis=-1).reshape(n, c * grid * grid))
    return np.concatenate(parts, axis=1).astype(np.float32)


class EncoderContent(Extractor):
    """``content`` embeddings from an ``autoencoder`` artifact; called with ``sources.SpectralCube``s."""

    kind = "content"
    backend = "encoder"
    takes = "hsi"
    settings_accepted = ("grid",)

    def __init__(self, encoder, device: str = "cpu", grid: int = 0):
        from ..artifacts.store import open_artifact
        from ..autoencoder.io import load_autoencoder
        from ..common.runtime import resolve_device

        try:
            self.grid = int(grid)
        except (TypeError, ValueError):
            self.grid = -1
        if not 0 <= self.grid <= MAX_GRID:
            raise ConfigError(f"content: grid {grid!r} must be an integer from 0 (no spatial cells) to {MAX_GRID}")
        self.artifact = open_artifact(encoder, "autoencoder", role="--encoder")
        self.device = resolve_device(device)
        self.model = load_autoencoder(self.artifact, self.device)
        self.channels = int(
            self.model.hsi_latent_channels if self.model.kind == "two-stream" else self.model.latent_channels
        )
        self.dim = self.channels * (2 + self.grid * self.grid)
        self._weights: dict[tuple, np.ndarray | None] = {}  # source grid → alignment matrix (None = same)
        self.alignments: list[str] = []

    def settings(self) -> dict:
        statistic = (
            "quantised codes × scaling factor" if self.model.kind == "vq-rgb" else "posterior mean × scaling factor"
        )
        return {
            "backend": self.backend,
            "autoencoder": str(self.artifact.path),
            "autoencoder_kind": self.model.kind,
            "autoencoder_sha256": self.artifact.sha256(),
            "method": f"per-channel mean and std of the latent ({statistic})"
            + (f" + {self.grid}×{self.grid} cell means" if self.grid else ""),
            "grid": self.grid,
            "latent_channels": self.channels,
            "dim": self.dim,
            "spectral_alignment": list(self.alignments),
        }

    def _alignment(self, wavelengths_nm) -> np.ndarray | None:
        """The matrix taking the source's bands to the autoencoder's (None when they agree)."""
        from ..spectral import alignment_matrix

        key = tuple(np.round(np.asarray(wavelengths_nm, np.float64), 4))
        if key in self._weights:
            return self._weights[key]
        source, target = np.asarray(key), np.asarray(self.model.wavelengths_nm, np.float64)
        if source.shape == target.shape and np.allclose(source, target, atol=0.05):
            weights, note = None, f"identical grid ({len(target)} bands)"
        else:
            try:
                weights = alignment_matrix(source, target)
            except SpectralError:
                raise SpectralError(
                    f"the source covers {source.min():.1f}-{source.max():.1f} nm but the autoencoder "
                    f"{self.artifact.path} works on {target.min():.1f}-{target.max():.1f} nm; ingest the source "
                    "over the autoencoder's range (--bands/--range) or use an autoencoder trained on its grid"
                ) from None
            note = f"linear interpolation of {len(source)} bands onto the autoencoder's {len(target)}"
        self._weights[key] = weights
        self.alignments.append(note)
        return weights

    def check_inputs(self, cubes: list) -> None:
        """Prepare (and so validate) the spectral alignment of every source grid before writing."""
        for cube in cubes:
            self._alignment(cube.wavelengths_nm)

    def _normalised(self, cube) -> np.ndarray:
        """(B_ae, H, W) float32 in the autoencoder's normalised units."""
        from ..spectral import align_block

        physical = cube.physical()
        weights = self._alignment(cube.wavelengths_nm)
        if weights is not None:
            physical = np.moveaxis(align_block(np.moveaxis(physical, 0, -1), weights), -1, 0)
        return ((physical - self.model.offset) / self.model.scale).astype(np.float32)

    def latents(self, cubes: list) -> list[np.ndarray]:
        """(C, h, w) latent per cube (cubes of one size are encoded together)."""
        import torch

        out: list = [None] * len(cubes)
        by_shape: dict[tuple, list[int]] = {}
        for i, cube in enumerate(cubes):
            by_shape.setdefault(tuple(cube.hsi.shape[-2:]), []).append(i)
        encode = self.model.encode_hsi if self.model.kind == "two-stream" else self.model.encode
        with torch.no_grad():
            for rows in by_shape.values():
                x = torch.from_numpy(np.stack([self._normalised(cubes[i]) for i in rows])).to(self.device)
                z = encode(x).float().cpu().numpy()
                for i, zi in zip(rows, z):
                    out[i] = zi
        return out

    def batch(self, cubes: list) -> list[np.ndarray]:
        return [latent_statistics(z[None], self.grid)[0] for z in self.latents(cubes)]

    def __call__(self, cube) -> np.ndarray:
        return self.batch([cube])[0]
