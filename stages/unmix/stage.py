"""``unmix``: an ``hsi-dataset`` → an ``unmixing`` artifact (endmembers + abundance maps).

Two methods:
- ``vca``: endmembers by VCA on the training split's pixels, abundances by FCLS or LSQ
  (Shen et al., HUD (2025) §III-B, eqs. 2-3) for every patch;
- ``scene-net``: the MSF-Diff scene-based unmixing network (Pan et al., MSF-Diff, Information Fusion 108 (2024) §4.1), trained with
  the shared Trainer on three RGB-like bands, its decoder initialised from VCA endmembers.

All unmixing works in the dataset's normalised units; since abundances sum to one,
physical = normalised · scale + offset holds for endmembers too, so ``endmembers.csv`` is
written in physical units and the linear mixing model holds there as well.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, input_record, spectral_block
from ..artifacts.datasets import PatchSet, load_patches
from ..common import log
from ..common.errors import ConfigError
from .abundances import ABUNDANCE_METHODS
from .artifact import write_outputs
from .endmembers import extract_endmembers, pixels_of
from .metrics import ReconstructionStats, simplex_stats

METHODS = ("vca", "scene-net")
VCA_MAX_PIXELS = 200_000  # VCA runs on a seeded random subset of larger pixel sets


@dataclass
class UnmixConfig:
    method: str = "vca"
    endmembers: int = 5
    abundance: str = "fcls"  # vca only: fcls | lsq
    seed: int = 0
    vca_max_pixels: int = VCA_MAX_PIXELS
    # scene-net only
    preset: str = "tiny"
    scene_net: dict = field(default_factory=dict)  # resolved preset (channels, steps, lr, ...)
    alpha: float = 0.1  # Pan et al., MSF-Diff, Information Fusion 108 (2024) eq. 4 weights
    beta: float = 1e-3
    device: str = "auto"
    checkpoint_every: int = 0

    def to_json(self) -> dict:
        d = asdict(self)
        if self.method != "scene-net":
            for key in ("preset", "scene_net", "alpha", "beta", "device", "checkpoint_every"):
                d.pop(key)
        else:
            d.pop("device")  # where it ran does not change what it computes (on CPU)
            d.pop("checkpoint_every")
        return d


def validate(cfg: UnmixConfig, patches: PatchSet) -> None:
    bands = patches.hsi.shape[1]
    if cfg.method not in METHODS:
        raise ConfigError(f"--method {cfg.method!r}: choose one of {', '.join(METHODS)}")
    if cfg.abundance not in ABUNDANCE_METHODS:
        raise ConfigError(f"--abundance {cfg.abundance!r}: choose fcls or lsq")
    if cfg.endmembers < 2:
        raise ConfigError(f"-k {cfg.endmembers}: unmixing needs at least 2 endmembers")
    if cfg.endmembers > bands:
        raise ConfigError(f"-k {cfg.endmembers} is larger than the dataset's {bands} bands; choose k <= {bands}")


def run(
    dataset: str | Path,
    out: str | Path,
    cfg: UnmixConfig,
    *,
    overwrite: bool = False,
    resume: bool = False,
    dry_run: bool = False,
):
    patches = load_patches(dataset)
    validate(cfg, patches)
    if cfg.method == "scene-net":
        from . import scene_training

        return scene_training.run(
            patches,
            Path(dataset),
            Path(out) if out is not None else None,
            cfg,
            overwrite=overwrite,
            resume=resume,
            dry_run=dry_run,
        )
    if dry_run:
        raise ConfigError("--dry-run applies to --method scene-net (VCA has no trainable parameters)")
    writer = ArtifactWriter(Path(out), "unmixing", "unmix", cfg.to_json(), [input_record(dataset)], overwrite)
    if writer.up_to_date():
        log.info("unmix: up to date")
        return writer.artifact
    endmembers = extract_endmembers(patches, cfg)
    solve = ABUNDANCE_METHODS[cfg.abundance]
    abundances, stats = unmix_patches(patches, endmembers, solve)
    with writer.building() as tmp:
        write_outputs(tmp, patches, endmembers, abundances, f"VCA endmembers (k={cfg.endmembers})")
        writer.spectral = spectral_block(patches.wavelengths_nm, patches.scale, patches.offset)
        writer.metrics = {**stats, **simplex_stats(abundances)}
        writer.extra = {"unmixing": {"method": "vca", "abundance": cfg.abundance, "k": cfg.endmembers}}
    log.info(
        f"unmix: RMSE {stats['reconstruction_rmse']:.4g}, SAD {stats['reconstruction_sad_rad']:.4f} rad, "
        f"PSNR {stats['reconstruction_psnr_db']:.2f} dB"
    )
    return writer.artifact


def unmix_patches(patches: PatchSet, endmembers: np.ndarray, solve, chunk: int = 64):
    """Abundances (N, k, S, S) for every patch plus reconstruction stats in physical units."""
    n, bands, s, _ = patches.hsi.shape
    k = endmembers.shape[1]
    out = np.empty((n, k, s, s), np.float32)
    stats = ReconstructionStats()
    for start in range(0, n, chunk):
        block = patches.hsi[start : start + chunk]
        y = pixels_of(block).astype(np.float64)
        x = solve(y, endmembers)
        out[start : start + chunk] = np.moveaxis(x.reshape(k, len(block), s, s), 0, 1)
        stats.add(y * patches.scale + patches.offset, (endmembers @ x) * patches.scale + patches.offset)
    return out, stats.result()
