"""Figures for report.md (matplotlib, Agg backend): spectra per class or cluster, a PCA
embedding of real vs generated spectra, and a false-colour grid of images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..spectral.preview import false_colour, rgb_band_indices, stretch_limits

MAX_POINTS = 3000
COLOURS = ["tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cluster_real(real: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """k-means centroids of (a subset of) the real spectra."""
    from scipy.cluster.vq import kmeans2

    rng = np.random.default_rng(seed)
    pick = real[rng.choice(len(real), min(len(real), 5000), replace=False)].astype(np.float64)
    centroids, _ = kmeans2(pick, min(clusters, len(pick)), seed=seed, minit="++")
    return centroids


def nearest(spectra: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    d2 = (spectra**2).sum(1)[:, None] - 2 * spectra @ centroids.T + (centroids**2).sum(1)[None]
    return d2.argmin(1)


def spectra_figure(
    path: Path,
    wl: np.ndarray,
    groups: list,
    real_groups: np.ndarray,
    real: np.ndarray,
    generated: list[tuple[str, np.ndarray, np.ndarray]],
    title: str,
    prefix: str = "",
) -> None:
    """One panel per group (class or cluster): mean ± std of real and of each generated set."""
    plt = _plt()
    cols = min(4, len(groups))
    rows = int(np.ceil(len(groups) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False, sharex=True)
    for ax, g in zip(axes.flat, groups):
        for name, values, colour in [("real", real[real_groups == g], "tab:blue")] + [
            (n, v[gg == g], COLOURS[i % len(COLOURS)]) for i, (n, v, gg) in enumerate(generated)
        ]:
            if len(values) == 0:
                continue
            mean, std = values.mean(0), values.std(0)
            ax.plot(wl, mean, color=colour, label=f"{name} (n={len(values)})", lw=1.2)
            ax.fill_between(wl, mean - std, mean + std, color=colour, alpha=0.2, lw=0)
        ax.set_title(f"{prefix}{g}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.supxlabel("wavelength (nm)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def embedding_figure(path: Path, real: np.ndarray, generated: list[tuple[str, np.ndarray]], seed: int) -> dict:
    """2-D PCA fitted on the real spectra; returns the explained variance ratios."""
    plt = _plt()
    rng = np.random.default_rng(seed)
    centre = real.mean(0)
    _, s, vt = np.linalg.svd(
        (real[rng.choice(len(real), min(len(real), 20000), replace=False)] - centre).astype(np.float64),
        full_matrices=False,
    )
    axes2 = vt[:2].T
    ratio = (s[:2] ** 2 / np.sum(s**2)).tolist()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for i, (name, values) in enumerate([("real", real)] + generated):
        pts = values[rng.choice(len(values), min(len(values), MAX_POINTS), replace=False)]
        z = (pts - centre) @ axes2
        ax.scatter(
            z[:, 0],
            z[:, 1],
            s=3,
            alpha=0.4,
            label=name,
            color="tab:blue" if i == 0 else COLOURS[(i - 1) % len(COLOURS)],
        )
    ax.set_xlabel(f"PC1 ({ratio[0] * 100:.1f} % of real variance)")
    ax.set_ylabel(f"PC2 ({ratio[1] * 100:.1f} %)")
    ax.legend(markerscale=4, fontsize=7)
    ax.set_title("PCA of real vs generated spectra", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return {"explained_variance_ratio": ratio}


def samples_figure(path: Path, wl: np.ndarray, rows: list[tuple[str, np.ndarray]], per_row: int = 8) -> None:
    """False-colour grid (bands nearest 640/550/470 nm), one row per set, one stretch for all
    (taken from the first row, the real images) so colours compare."""
    plt = _plt()
    idx = rgb_band_indices(wl)
    first = rows[0][1][:per_row]
    limits = stretch_limits(np.stack([first[:, i] for i in idx], axis=-1).reshape(-1, 3))
    fig, axes = plt.subplots(len(rows), per_row, figsize=(1.3 * per_row, 1.45 * len(rows)), squeeze=False)
    for r, (name, cubes) in enumerate(rows):
        for c in range(per_row):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(cubes):
                ax.imshow(false_colour(cubes[c], wl, limits=limits), interpolation="nearest")
        axes[r, 0].set_title(name, fontsize=7, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def psd_figure(path: Path, real, sets: list[tuple[str, object]]) -> None:
    """Radially averaged power spectra (``spatial.SpatialStats``), real vs each set: each band
    is divided by the real set's total power in that band, then averaged over bands, so bright
    bands do not dominate and the curves share one scale."""
    plt = _plt()
    band_total = real.psd[:, 1:].sum(1, keepdims=True) + 1e-30
    f = real.frequencies[1:]
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    ax.loglog(f, (real.psd[:, 1:] / band_total).mean(0), color="black", lw=2, label="real")
    for i, (name, stats) in enumerate(sets):
        ax.loglog(
            f,
            (stats.psd[:, 1:] / band_total).mean(0),
            lw=1.2,
            color=plt.cm.tab10(i % 10),
            ls="-" if name.startswith("generated") else "--",
            label=name,
        )
    ax.axvline(0.25, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("radial frequency (cycles / pixel); dotted: high/low-frequency split")
    ax.set_ylabel("power ÷ real band total (mean over bands)")
    ax.legend(fontsize=6)
    ax.set_title("radially averaged power spectra", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
