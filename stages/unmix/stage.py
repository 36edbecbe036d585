"""``unmix``: an ``hsi-dataset`` → an ``unmixing`` artifact (endmembers + abundance maps).

Four methods:
- ``vca``: endmembers by VCA on the training split's pixels, abundances by FCLS or LSQ
  (Shen et al., HUD (2025) §III-B, eqs. 2-3) for every patch;
- ``min-volume``: the minimum-volume simplex enclosing those pixels, started at VCA's (SISAL-style,
  ``min_volume.py``), then the same abundances: endmembers need not be pixels of the scene, so
  the mixtures reach the spectra VCA's simplex clips;
- ``scene-net``: the MSF-Diff scene-based unmixing network (Pan et al., MSF-Diff, Information Fusion 108 (2024) §4.1), trained with
  the shared Trainer on three RGB-like bands, its decoder initialised from VCA endmembers;
- ``manifold``: no endmembers: a per-pixel nonlinear mixing model (encoder to ``-k`` coordinates,
  decoder back) fitted to the training pixels, written as a ``spectral-manifold`` artifact that
  ``sample --spectral-manifold`` decodes generated spectra through (``manifold.py``).

All unmixing works in the dataset's normalised units; since abundances sum to one,
physical = normalised · scale + offset holds for endmembers too, so ``endmembers.csv`` is
written in physical units and the linear mixing model holds there as well.

Several datasets (``unmix A B ...`` or a corpus YAML, ``stages.data.corpus``; ``vca`` or ``min-volume``) give
one artifact: VCA on a seeded subset of the training pixels of every source (split over the
sources by the corpus weights), each source in its own per-source min/max normalisation, then
FCLS/LSQ abundances for every patch of every source against those endmembers. Why the
normalised units: if a source's pixels follow the linear mixing model x = E_k·a with Σa = 1 in
its physical units, its stored values y = (x − offset_k) / scale_k follow y = E·a with
E = (E_k − offset_k) / scale_k and the *same* abundances a. So one endmember matrix in the
normalised space can describe every source while the abundances stay unit-free; sensors'
units (DN ×10⁴ against reflectance) would otherwise make one source's pixels dominate the
simplex. The abundance diffusion that follows (``--space abundance``) learns only those
unit-free maps, from every source alike, and decodes E·X̂ back into the normalised space;
the artifact's ``spectral`` block and ``endmembers.csv`` take the first source's scale/offset,
so generated HSIs are in the first source's units (another source's: E·X̂ · scale_k + offset_k,
from the recorded ``normalisation``).
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
from .artifact import plot_endmembers, write_abundances_h5, write_endmembers_csv, write_outputs
from .endmembers import extract_corpus_endmembers, extract_endmembers, pixels_of
from .metrics import ReconstructionStats, simplex_stats

METHODS = ("vca", "min-volume", "scene-net", "manifold")
ENDMEMBER_TITLES = {"vca": "VCA endmembers", "min-volume": "minimum-volume endmembers"}
VCA_MAX_PIXELS = 200_000  # VCA runs on a seeded random subset of larger pixel sets


@dataclass
class UnmixConfig:
    method: str = "vca"
    endmembers: int = 5
    abundance: str = "fcls"  # vca / min-volume: fcls | lsq
    seed: int = 0
    vca_max_pixels: int = VCA_MAX_PIXELS
    # scene-net only
    preset: str = "tiny"
    scene_net: dict = field(default_factory=dict)  # resolved preset (channels, steps, lr, ...)
    alpha: float = 0.1  # Pan et al., MSF-Diff, Information Fusion 108 (2024) eq. 4 weights
    beta: float = 1e-3
    device: str = "auto"
    checkpoint_every: int = 0
    # manifold only: network width and training (manifold.ManifoldConfig; -k is its dimension)
    manifold: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        if self.method == "manifold":
            return {"method": "manifold", **asdict(self.manifold_config())}
        d.pop("manifold")
        if self.method != "scene-net":
            for key in ("preset", "scene_net", "alpha", "beta", "device", "checkpoint_every"):
                d.pop(key)
        else:
            d.pop("device")  # where it ran does not change what it computes (on CPU)
            d.pop("checkpoint_every")
        return d

    def manifold_config(self):
        from .manifold import ManifoldConfig

        return ManifoldConfig(dims=self.endmembers, seed=self.seed, **self.manifold)


def validate(cfg: UnmixConfig, patches: PatchSet | int) -> None:
    """``patches``: the dataset, or its number of bands."""
    bands = patches if isinstance(patches, int) else patches.hsi.shape[1]
    if cfg.method not in METHODS:
        raise ConfigError(f"--method {cfg.method!r}: choose one of {', '.join(METHODS)}")
    if cfg.abundance not in ABUNDANCE_METHODS:
        raise ConfigError(f"--abundance {cfg.abundance!r}: choose fcls or lsq")
    if cfg.method == "manifold":
        return  # its dimension is checked by manifold.run
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
    """``dataset``: one hsi-dataset, or several (paths and/or corpus YAML files)."""
    dataset = _one_dataset(dataset)
    if not isinstance(dataset, (str, Path)):
        return run_corpus(dataset, out, cfg, overwrite=overwrite, dry_run=dry_run)
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
        raise ConfigError("--dry-run applies to --method scene-net (vca and min-volume train no network)")
    if cfg.method == "manifold":
        from . import manifold

        return manifold.run(
            patches, Path(dataset), Path(out), cfg.manifold_config(), cfg.to_json(), overwrite=overwrite
        )
    writer = ArtifactWriter(Path(out), "unmixing", "unmix", cfg.to_json(), [input_record(dataset)], overwrite)
    if writer.up_to_date():
        log.info("unmix: up to date")
        return writer.artifact
    endmembers = extract_endmembers(patches, cfg)
    solve = ABUNDANCE_METHODS[cfg.abundance]
    abundances, stats = unmix_patches(patches, endmembers, solve)
    with writer.building() as tmp:
        write_outputs(tmp, patches, endmembers, abundances, f"{ENDMEMBER_TITLES[cfg.method]} (k={cfg.endmembers})")
        writer.spectral = spectral_block(patches.wavelengths_nm, patches.scale, patches.offset)
        writer.metrics = {**stats, **simplex_stats(abundances)}
        writer.extra = {"unmixing": {"method": cfg.method, "abundance": cfg.abundance, "k": cfg.endmembers}}
    log.info(
        f"unmix: RMSE {stats['reconstruction_rmse']:.4g}, SAD {stats['reconstruction_sad_rad']:.4f} rad, "
        f"PSNR {stats['reconstruction_psnr_db']:.2f} dB"
    )
    return writer.artifact


def _one_dataset(dataset):
    """The dataset path when one is given (today's path, unchanged), else the opened corpus."""
    from ..data import open_corpus

    items = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]
    if len(items) == 1 and Path(items[0]).suffix.lower() not in (".yaml", ".yml"):
        return items[0]
    corpus = open_corpus(items)
    return corpus.sources[0].path if corpus.single else corpus


def run_corpus(corpus, out, cfg: UnmixConfig, *, overwrite: bool = False, dry_run: bool = False):
    """Several datasets → one unmixing artifact (see the module docstring)."""
    import h5py

    if cfg.method in ("scene-net", "manifold"):
        raise ConfigError(
            f"--method {cfg.method} unmixes one dataset (it fits one scene's network); "
            f"{len(corpus.sources)} datasets unmix with --method vca or min-volume"
        )
    validate(cfg, corpus.bands)
    if dry_run:
        raise ConfigError("--dry-run applies to --method scene-net (vca and min-volume train no network)")
    if out is None:
        raise ConfigError("--out is required: name the unmixing artifact directory to write")
    # The sources' weights set the VCA subset: recorded so that changing them is not "up to date".
    recorded = {**cfg.to_json(), "sources": [{"path": str(s.path), "weight": s.weight} for s in corpus.sources]}
    writer = ArtifactWriter(Path(out), "unmixing", "unmix", recorded, corpus.input_records(), overwrite)
    if writer.up_to_date():
        log.info("unmix: up to date")
        return writer.artifact
    writer.check_destination()
    endmembers, vca_pixels = extract_corpus_endmembers(corpus, cfg)
    solve = ABUNDANCE_METHODS[cfg.abundance]
    maps, splits, origins, sources, rows, per_source = [], [], [], [], [], []
    pooled = ReconstructionStats()  # in the shared normalised units
    for k, src in enumerate(corpus.sources):
        with h5py.File(src.h5_path, "r") as h5:
            split = h5["split"][...].astype(str) if "split" in h5 else np.array(["train"] * src.patches)
            origin = h5["origin"][...] if "origin" in h5 else None
            hsi = h5["hsi"]
            own = ReconstructionStats()  # in this source's physical units
            for start in range(0, src.patches, 64):
                block = PatchSet(
                    np.asarray(hsi[start : start + 64], np.float32),
                    src.wavelengths_nm,
                    src.scale,
                    src.offset,
                    None,
                    None,
                    None,
                    src.artifact,
                )
                abundances, _ = unmix_patches(block, endmembers, solve, stats=(own, pooled))
                maps.append(abundances)
        splits.append(split)
        origins.append(origin)
        sources.append(np.full(src.patches, k, np.int64))
        rows.append(np.arange(src.patches, dtype=np.int64))
        per_source.append({"path": str(src.path), "units": src.units, "vca_pixels": vca_pixels[k], **own.result()})
    abundances = np.concatenate(maps)
    first = corpus.sources[0]
    physical = endmembers * first.scale + first.offset  # the first source's units
    title = (
        f"{ENDMEMBER_TITLES[cfg.method]} (k={cfg.endmembers}, {len(corpus.sources)} sources; {first.path.name}'s units)"
    )
    with writer.building() as tmp:
        write_endmembers_csv(tmp / "endmembers.csv", corpus.wavelengths_nm, physical)
        write_abundances_h5(
            tmp / "abundances.h5",
            abundances,
            split=np.concatenate(splits),
            origin=None if any(o is None for o in origins) else np.concatenate(origins),
            source=np.concatenate(sources),
            source_row=np.concatenate(rows),
        )
        plot_endmembers(tmp / "endmembers.png", corpus.wavelengths_nm, physical, title)
        writer.spectral = spectral_block(corpus.wavelengths_nm, first.scale, first.offset)
        writer.metrics = {
            **pooled.result(),
            "reconstruction_units": "per-source min/max normalised (every source pooled); "
            "per_source: each source's physical units",
            "per_source": per_source,
            **simplex_stats(abundances),
        }
        writer.extra = {
            "unmixing": {
                "method": cfg.method,
                "abundance": cfg.abundance,
                "k": cfg.endmembers,
                "sources": [str(s.path) for s in corpus.sources],
                "vca_pixels_per_source": vca_pixels,
                "endmember_units": f"{first.path}'s physical units (physical = normalised * "
                f"{first.scale:g} + {first.offset:g}); the endmembers in source k's units are "
                "normalised * scale_k + offset_k (normalisation.sources)",
            },
            "normalisation": corpus.normalisation(),
        }
    stats = pooled.result()
    log.info(
        f"unmix: {len(corpus.sources)} sources, {len(abundances)} patches; normalised RMSE "
        f"{stats['reconstruction_rmse']:.4g}, SAD {stats['reconstruction_sad_rad']:.4f} rad"
    )
    return writer.artifact


def unmix_patches(patches: PatchSet, endmembers: np.ndarray, solve, chunk: int = 64, stats=None):
    """Abundances (N, k, S, S) for every patch plus reconstruction stats in physical units."""
    n, bands, s, _ = patches.hsi.shape
    k = endmembers.shape[1]
    out = np.empty((n, k, s, s), np.float32)
    physical, normalised = (ReconstructionStats(), None) if stats is None else stats
    for start in range(0, n, chunk):
        block = patches.hsi[start : start + chunk]
        y = pixels_of(block).astype(np.float64)
        x = solve(y, endmembers)
        out[start : start + chunk] = np.moveaxis(x.reshape(k, len(block), s, s), 0, 1)
        recon = endmembers @ x
        physical.add(y * patches.scale + patches.offset, recon * patches.scale + patches.offset)
        if normalised is not None:
            normalised.add(y, recon)
    return out, physical.result()
