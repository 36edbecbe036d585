"""``reconstructions.png``: real vs reconstructed false colour (one stretch per patch pair)
and a few pixel spectra in physical units, for held-out patches."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..spectral.preview import false_colour, rgb_band_indices, stretch_limits


def save_reconstructions(
    path: Path,
    real: np.ndarray,
    recon: np.ndarray,
    wavelengths_nm,
    scale: float,
    offset: float,
    title: str,
    masks: tuple[np.ndarray, np.ndarray] | None = None,
    count: int = 4,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = min(count, len(real))
    picks = np.linspace(0, len(real) - 1, count).round().astype(int)
    columns = 3 + (2 if masks is not None else 0)
    fig, axes = plt.subplots(count, columns, figsize=(3.2 * columns, 3.0 * count), squeeze=False)
    idx = rgb_band_indices(wavelengths_nm)
    wl = np.asarray(wavelengths_nm)
    for row, n in enumerate(picks):
        rgb_real = np.stack([real[n, i] for i in idx], axis=-1)
        limits = stretch_limits(rgb_real)  # same stretch for real and reconstruction
        axes[row, 0].imshow(false_colour(real[n], wl, limits=limits))
        axes[row, 1].imshow(false_colour(recon[n], wl, limits=limits))
        axes[row, 0].set_title(f"real #{n}", fontsize=9)
        axes[row, 1].set_title("reconstructed", fontsize=9)
        h, w = real.shape[-2:]
        ax = axes[row, 2]
        for k, (y, x) in enumerate([(h // 4, w // 4), (h // 2, w // 2), (3 * h // 4, 3 * w // 4)]):
            colour = f"C{k}"
            ax.plot(wl, real[n, :, y, x] * scale + offset, color=colour, lw=1.2)
            ax.plot(wl, recon[n, :, y, x] * scale + offset, color=colour, lw=1.0, ls="--")
            for a in axes[row, :2]:
                a.plot([x], [y], marker="+", color=colour, ms=8)
        ax.set_title("spectra: real — / recon --", fontsize=9)
        ax.set_xlabel("nm", fontsize=8)
        ax.tick_params(labelsize=7)
        if masks is not None:
            vmax = max(int(masks[0].max()), int(masks[1].max()), 1)
            axes[row, 3].imshow(masks[0][n], cmap="tab20", vmin=0, vmax=vmax, interpolation="nearest")
            axes[row, 4].imshow(masks[1][n], cmap="tab20", vmin=0, vmax=vmax, interpolation="nearest")
            axes[row, 3].set_title("mask", fontsize=9)
            axes[row, 4].set_title("reconstructed mask", fontsize=9)
        for a in list(axes[row, :2]) + (list(axes[row, 3:]) if masks is not None else []):
            a.set_xticks([])
            a.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
