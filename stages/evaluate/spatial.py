"""Spatial realism without pretrained weights: per-band radially averaged power spectra and a
gradient statistic, for sets of images (N, B, H, W) in physical units.

Every per-pixel metric of the report (sPr/sRec, density/coverage, F_p, spectral FID) is blind to
where the pixels sit: real pixels shuffled across the scene score as well as real images. These
statistics look at the arrangement instead:

* ``gradient``: mean absolute difference of horizontally and vertically adjacent pixels,
  divided by the set's mean level (scale free). Blur lowers it, speckle raises it.
* the power spectrum of each band after removing its mean and applying a 2-D Hann window (a
  patch is not periodic; without the window its edges leak power to every frequency), averaged
  over images and binned by radial frequency |f| in cycles per pixel (Van der Schaaf & van
  Hateren, "Modelling the power spectra of natural images", Vision Research 36(17), 1996, use
  the same radial average to characterise natural-image statistics);
* ``hf_energy``: energy above half the Nyquist frequency (|f| > 0.25 cycles/px) over the energy
  between DC and it — the share of fine detail;
* ``log_psd_distance``: RMS over bands and radial bins of log10(P_generated / P_real), in
  decades: 0 for the same spectra, 1 for a tenfold power mismatch everywhere.

The report gives gradient and high-frequency energy as ratios to the real set, so 1 is real.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..common.errors import ConfigError

HIGH_FREQUENCY = 0.25  # cycles per pixel: half the Nyquist frequency
CHUNK = 64  # images per FFT batch
EPS = 1e-30


@dataclass
class SpatialStats:
    """Summary statistics of one image set."""

    gradient: float  # mean |∇x| / mean x
    hf_energy: float  # E(|f| > 0.25) / E(0 < |f| <= 0.25)
    psd: np.ndarray  # (B, R + 1) mean power per band and ring (ring 0 = DC)
    frequencies: np.ndarray  # (R + 1,) ring frequencies, cycles per pixel


def on_disk_or_array(cubes):
    """Images read CHUNK at a time: a StoredArray stays on disk, anything else becomes an array."""
    from .streamed import StoredArray

    return cubes if isinstance(cubes, StoredArray) else np.asarray(cubes)


def gradient_statistic(cubes: np.ndarray) -> float:
    """Mean absolute spatial gradient (adjacent-pixel differences, both axes) ÷ mean level."""
    cubes = on_disk_or_array(cubes)
    if min(cubes.shape[2:]) < 2:
        raise ConfigError(f"the spatial metrics need images of at least 2x2 pixels, got {cubes.shape[2:]}")
    total = count = level = 0.0
    for a in range(0, len(cubes), CHUNK):
        x = cubes[a : a + CHUNK].astype(np.float64)
        dy, dx = np.abs(np.diff(x, axis=2)), np.abs(np.diff(x, axis=3))
        total += dy.sum() + dx.sum()
        count += dy.size + dx.size
        level += x.sum()
    mean_level = level / float(np.prod(cubes.shape))
    if mean_level <= 0:
        raise ConfigError("the gradient statistic needs images with a positive mean level (physical units)")
    return float(total / count / mean_level)


def _radial_bins(h: int, w: int, n_bins: int):
    """Ring index of every FFT coefficient: round(|f| · 2 n_bins), so ring 0 is DC alone and
    ring n_bins is the Nyquist frequency; the corners beyond it get -1 (no ring)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    index = np.rint(radius * 2 * n_bins).astype(np.int64)
    index[index > n_bins] = -1
    return radius, index, np.arange(n_bins + 1) / (2 * n_bins)


def spatial_stats(cubes: np.ndarray, n_bins: int | None = None) -> SpatialStats:
    """Gradient, high/low-frequency energy and the mean radial power spectrum of a set."""
    import torch

    cubes = on_disk_or_array(cubes)
    n, b, h, w = cubes.shape
    n_bins = n_bins or min(h, w) // 2
    radius, index, centres = _radial_bins(h, w, n_bins)
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    norm = float((window.astype(np.float64) ** 2).sum())  # power per pixel, comparable across sizes
    flat_index = torch.from_numpy(index.reshape(-1))
    valid = flat_index >= 0
    high = torch.from_numpy((radius > HIGH_FREQUENCY).reshape(-1))
    low = torch.from_numpy(((radius > 0) & (radius <= HIGH_FREQUENCY)).reshape(-1))
    power_sum = torch.zeros(b, n_bins + 1, dtype=torch.float64)
    counts = torch.bincount(flat_index[valid], minlength=n_bins + 1).double()
    e_high = e_low = 0.0
    tw = torch.from_numpy(window)
    for a in range(0, n, CHUNK):
        x = torch.from_numpy(np.ascontiguousarray(cubes[a : a + CHUNK], dtype=np.float32))
        x = (x - x.mean(dim=(2, 3), keepdim=True)) * tw
        power = torch.fft.fft2(x).abs().square().double().reshape(len(x), b, -1) / norm  # (n, B, H*W)
        per_band = power.sum(0)  # (B, H*W)
        power_sum.index_add_(1, flat_index[valid], per_band[:, valid])
        e_high += float(per_band[:, high].sum())
        e_low += float(per_band[:, low].sum())
    psd = (power_sum / counts.clamp(min=1) / n).numpy()
    return SpatialStats(gradient_statistic(cubes), e_high / max(e_low, EPS), psd, centres)


def compare(gen: SpatialStats, real: SpatialStats) -> dict:
    """The report's spatial metrics of one set against the real set."""
    if gen.psd.shape != real.psd.shape:
        raise ConfigError(
            f"spatial metrics: power spectra on different bins ({gen.psd.shape} vs {real.psd.shape}); "
            "give images of the same size as the real patches"
        )
    # Ring 0 is DC, which the mean removal zeroes: it carries no texture information.
    ratio = np.log10((gen.psd[:, 1:] + EPS) / (real.psd[:, 1:] + EPS))
    return {
        "gradient_ratio": gen.gradient / real.gradient,
        "hf_energy_ratio": gen.hf_energy / real.hf_energy,
        "log_psd_distance": float(np.sqrt(np.mean(ratio**2))),
        "gradient": gen.gradient,
        "hf_energy": gen.hf_energy,
    }
