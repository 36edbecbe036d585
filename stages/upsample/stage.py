"""``upsample run``: super-resolve a whole hsi-dataset scene (Pang et al., HSIGene, arXiv:2409.12470 §3.3, Fig. 4) and
write the result as a new ``hsi-dataset`` — the paper's super-resolution-based augmentation.

    LR cube.tif ──(tiles)──► guidance HR RGB ──► RGAN ──► HR cube.tif ──► patches.h5, preview.png

The LR scene is read from ``cube.tif`` by windows (rasterio) and processed in tiles with an
exact context margin (``tiling.py``), so scenes of any size use bounded memory and show no
seams. The HR cube keeps physical units, band descriptions, CRS and nodata; its transform
is the input's with pixels ``scale`` times smaller. Patches, split and preview are written
by the ingest stage's own writers, so ``train-ae``/``train-diffusion`` accept the result
as they accept an ingested scene. Label maps are not carried over (patches have no labels).

Guidance (the HR RGB that steers RGAN) comes from a ``Guide``: ``bicubic`` upsamples the LR
scene's own RGB bands, ``zero`` is Table 7's zero-guidance ablation, and ``dsr`` (``--dsr
DIR``) is the paper's two-stage path: DSRNet (§3.3.2) super-resolves the RGB bands first
(``dsr_guide.py``: on a global window grid, so the result does not depend on ``--tile``).
A guide's ``margin_lr`` widens the tile context, its ``inputs`` join the manifest's inputs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, input_record, open_artifact, spectral_block
from ..common import log
from ..common.errors import ConfigError, InputError, SpectralError
from ..common.georef import no_georeference
from ..common.runtime import resolve_device
from ..ingest.config import IngestConfig
from ..ingest.cube_io import GDAL_CACHE_BYTES, split_boundary, write_patches, write_preview
from ..spectral import rgb_band_indices
from .degrade import SCALES
from .guides import BICUBIC_MARGIN_LR, GUIDES, Guide
from .tiling import round_up, super_resolve_tiled, tile_count

METHODS = ("rgan", "bicubic")


DSR_KEYS = ("dsr_steps", "sampler", "seed", "dsr_window", "dsr_overlap")


@dataclass
class UpsampleRunConfig:
    method: str = "rgan"
    scale: int | None = None  # rgan: taken from the model when None
    guide: str | None = None  # rgan guidance source: GUIDES or "dsr"; None: dsr with --dsr, else bicubic
    size: int = 256  # output patch size (HR pixels)
    stride: int = 128
    val_fraction: float = 0.0
    max_nodata_fraction: float = 0.5
    tile: int = 128  # LR pixels per tile core (memory bound)
    # DSRNet sampling (--dsr only); None: the model's defaults
    dsr_steps: int | None = None
    sampler: str = "ddim"
    seed: int = 0
    dsr_window: int | None = None  # LR pixels per DSRNet window core
    dsr_overlap: int | None = None  # LR pixels of context (and blending) around each core

    def to_json(self) -> dict:
        """The recorded config; DSRNet's sampling settings only when DSRNet guides."""
        values = asdict(self)
        if self.guide != "dsr":
            for key in DSR_KEYS:
                values.pop(key)
        return values


# -- upsamplers (physical units in and out) ------------------------------------------------------


class BicubicUpsampler:
    """The baseline: bicubic ×s (linear, so it works directly in physical units)."""

    margin_lr, align_lr, fill = BICUBIC_MARGIN_LR, 1, 0.0

    def __init__(self, scale: int):
        self.scale = scale

    def __call__(self, lr: np.ndarray, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
        import torch

        from .rgan import upsample_bicubic

        with torch.no_grad():
            return upsample_bicubic(torch.from_numpy(lr)[None].double(), self.scale)[0].float().numpy()


class RganUpsampler:
    """RGAN in the model's normalised units, guided by ``guide``."""

    def __init__(self, model, info: dict, guide: Guide, device):
        self.model, self.guide, self.device = model, guide, device
        self.scale = int(info["scale"])
        norm = info["normalisation"]
        self.norm_scale, self.norm_offset = float(norm["scale"]), float(norm["offset"])
        self.fill = self.norm_offset
        align_hr = model.alignment()
        self.align_lr = math.lcm(align_hr // math.gcd(align_hr, self.scale), guide.align_lr)
        context = math.ceil(model.receptive_margin() / self.scale) + BICUBIC_MARGIN_LR + guide.margin_lr
        self.margin_lr = round_up(context, self.align_lr)

    def __call__(self, lr: np.ndarray, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
        import torch

        x = (torch.from_numpy(lr)[None] - self.norm_offset) / self.norm_scale
        with torch.no_grad():
            x = x.to(self.device)
            hr = self.model(x, self.guide(x, origin), self.scale)
        return hr[0].float().cpu().numpy() * np.float32(self.norm_scale) + np.float32(self.norm_offset)


# -- the stage --------------------------------------------------------------------------------------


def _read_window(src, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    data = src.read(window=((r0, r1), (c0, c1))).astype(np.float32)
    if src.nodata is not None and not np.isnan(src.nodata):
        data[data == src.nodata] = np.nan
    return data


def _hr_profile(src, scale: int) -> dict:
    from rasterio.transform import Affine

    profile = dict(
        driver="GTiff",
        height=src.height * scale,
        width=src.width * scale,
        count=src.count,
        dtype="float32",
        tiled=True,
        blockxsize=256,
        blockysize=256,
        interleave="band",
        compress="deflate",
        predictor=3,
        BIGTIFF="IF_SAFER",
    )
    if src.nodata is not None:
        profile["nodata"] = src.nodata
    if src.crs is not None:
        profile["crs"] = src.crs
    if src.transform is not None and not src.transform.is_identity:
        profile["transform"] = src.transform * Affine.scale(1.0 / scale)
    return profile


def validate(
    dataset: Path,
    cfg: UpsampleRunConfig,
    rgan: Path | None,
    device: str,
    guide: Guide | None = None,
    dsr: Path | None = None,
):
    """Every check that can fail, before anything is written. Returns (artifact, upsampler, info).
    ``guide`` replaces the ``cfg.guide`` entry of GUIDES (a caller-built guidance source);
    ``dsr`` (an sr-model from train-dsr) makes DSRNet the guide."""
    if cfg.method not in METHODS:
        raise ConfigError(f"--method {cfg.method!r}: choose one of {', '.join(METHODS)}")
    if cfg.scale is not None and cfg.scale not in SCALES:
        raise ConfigError(f"--scale {cfg.scale}: super-resolution is ×2 or ×4; use --scale 2 or --scale 4")
    if cfg.size < 4 or cfg.stride < 1 or cfg.tile < 1:
        raise ConfigError("--size must be >= 4, --stride >= 1 and --tile >= 1")
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise ConfigError("--val-fraction must be in [0, 1)")
    if dsr is not None:
        if cfg.method != "rgan":
            raise ConfigError("--dsr makes the HR RGB that guides RGAN: use it with --method rgan and --rgan DIR")
        if cfg.guide not in (None, "dsr"):
            raise ConfigError(f"--guide {cfg.guide} and --dsr both choose the guidance; drop one of them")
        cfg.guide = "dsr"
    elif cfg.guide == "dsr":
        raise ConfigError("--guide dsr needs the DSRNet: add --dsr DIR (an sr-model from `hsigen upsample train-dsr`)")
    else:
        unused = [
            f"--{k.replace('_', '-')}"
            for k in ("dsr_steps", "dsr_window", "dsr_overlap")
            if getattr(cfg, k) is not None
        ]
        if unused:
            raise ConfigError(f"{', '.join(unused)} only apply to DSRNet guidance; add --dsr DIR or drop them")
        cfg.guide = cfg.guide or "bicubic"
    artifact = open_artifact(dataset, "hsi-dataset")
    wl = np.asarray(artifact.spectral["wavelengths_nm"], dtype=np.float64)
    info = None
    if cfg.method == "bicubic":
        if rgan is not None:
            raise ConfigError("--rgan is only used with --method rgan; drop it for the bicubic baseline")
        if cfg.scale is None:
            raise ConfigError("--method bicubic needs --scale 2 or --scale 4")
        upsampler = BicubicUpsampler(cfg.scale)
    else:
        if rgan is None:
            raise ConfigError("--method rgan needs --rgan DIR (an sr-model from `hsigen upsample train-rgan`)")
        if guide is None and dsr is None and cfg.guide not in GUIDES:
            raise ConfigError(f"--guide {cfg.guide!r}: choose one of {', '.join(GUIDES)}")
        from .train_rgan import load_rgan

        dev = resolve_device(device)
        model, info, _ = load_rgan(rgan, dev)
        if cfg.scale is not None and cfg.scale != int(info["scale"]):
            raise ConfigError(
                f"--scale {cfg.scale} but {rgan} was trained for ×{info['scale']}; "
                f"use --scale {info['scale']} or train a ×{cfg.scale} RGAN"
            )
        cfg.scale = int(info["scale"])
        if info["normalisation"].get("per_source"):  # trained on a corpus: each dataset in its own normalisation
            sp = artifact.spectral
            info = {**info, "normalisation": {**info["normalisation"], "scale": sp["scale"], "offset": sp["offset"]}}
        model_wl = np.asarray(info["wavelengths_nm"], dtype=np.float64)
        if model_wl.shape != wl.shape or not np.allclose(model_wl, wl, atol=0.05):
            raise SpectralError(
                f"{dataset} has {wl.size} bands ({wl[0]:.1f}–{wl[-1]:.1f} nm) but {rgan} was trained "
                f"on {model_wl.size} bands ({model_wl[0]:.1f}–{model_wl[-1]:.1f} nm); ingest the "
                "scene onto the model's wavelength grid or train RGAN on this grid"
            )
        if dsr is not None:
            guide = _dsr_guide(artifact, dsr, cfg, info, rgb_band_indices(wl), dev)
        elif guide is None:
            guide = GUIDES[cfg.guide](rgb_band_indices(wl), cfg.scale)
        elif guide.scale != cfg.scale:
            raise ConfigError(f"the {guide.name} guidance is ×{guide.scale} but the RGAN is ×{cfg.scale}")
        cfg.guide = guide.name
        upsampler = RganUpsampler(model, info, guide, dev)
    import rasterio

    with no_georeference(), rasterio.open(artifact.file("cube.tif")) as src:
        height, width = src.height, src.width
    hr_h, hr_w = height * cfg.scale, width * cfg.scale
    if min(height, width) < 2 or min(hr_h, hr_w) < cfg.size:
        raise InputError(
            f"{dataset}: the scene is {height}x{width} pixels, {hr_h}x{hr_w} after ×{cfg.scale}, smaller than "
            f"--size {cfg.size}; use --size {min(hr_h, hr_w)} or less"
        )
    split_boundary(hr_h, _ingest_config(cfg, wl))
    return artifact, upsampler, info


def _dsr_guide(artifact, dsr: Path, cfg: UpsampleRunConfig, info: dict, rgb_idx: list[int], device):
    """DSRNet as the guide: same scale as the RGAN, sampling settings checked, the scene's RGB
    stretch (RGAN units) measured once so every tile maps colours alike."""
    import rasterio

    from .dsr import check_sampling, load_dsr
    from .dsr_guide import DsrGuide, scene_rgb_limits

    model = load_dsr(dsr, device)
    if model.scale != cfg.scale:
        raise ConfigError(
            f"--dsr {dsr} super-resolves ×{model.scale} but the RGAN is ×{cfg.scale}; "
            f"use a ×{cfg.scale} DSRNet (`hsigen upsample train-dsr --scale {cfg.scale}`)"
        )
    cfg.dsr_steps = int(cfg.dsr_steps or model.info["sample_steps"])
    check_sampling(model, cfg.dsr_steps, cfg.sampler)
    cfg.dsr_window = int(cfg.dsr_window or model.info["window_lr"])
    cfg.dsr_overlap = int(model.info["overlap_lr"] if cfg.dsr_overlap is None else cfg.dsr_overlap)
    cube = artifact.file("cube.tif")
    with no_georeference(), rasterio.open(cube) as src:
        shape = (src.height, src.width)
    low, high = scene_rgb_limits(cube, rgb_idx)
    norm = info["normalisation"]
    to_model = lambda v: (v - float(norm["offset"])) / float(norm["scale"])  # noqa: E731
    return DsrGuide(
        rgb_idx,
        model,
        dsr,
        shape,
        to_model(low),
        to_model(high),
        cfg.dsr_steps,
        cfg.sampler,
        cfg.seed,
        cfg.dsr_window,
        cfg.dsr_overlap,
    )


def _ingest_config(cfg: UpsampleRunConfig, wl: np.ndarray) -> IngestConfig:
    """The settings the ingest stage's patch writer reads (size, stride, split, nodata share)."""
    return IngestConfig(
        target_wavelengths_nm=[float(w) for w in wl],
        size=cfg.size,
        stride=cfg.stride,
        max_nodata_fraction=cfg.max_nodata_fraction,
        val_fraction=cfg.val_fraction,
    )


def run(
    dataset: Path,
    out: Path,
    cfg: UpsampleRunConfig,
    *,
    rgan: Path | None = None,
    dsr: Path | None = None,
    device: str = "auto",
    overwrite: bool = False,
    guide: Guide | None = None,
):
    """``dsr``: a DSRNet sr-model that makes the HR RGB guidance (hsigene Fig. 4); ``guide``: an
    HR-RGB source built by the caller instead of the ``cfg.guide`` entry of GUIDES."""
    import rasterio

    artifact, upsampler, info = validate(dataset, cfg, rgan, device, guide, dsr)
    wl = np.asarray(artifact.spectral["wavelengths_nm"], dtype=np.float64)
    inputs = [input_record(dataset)] + ([input_record(rgan)] if rgan is not None else [])
    if cfg.method == "rgan":
        inputs += [input_record(p) for p in upsampler.guide.inputs]
    writer = ArtifactWriter(out, "hsi-dataset", "upsample run", cfg.to_json(), inputs, overwrite)
    if writer.up_to_date():
        log.info("upsample run: up to date")
        return writer.artifact
    writer.check_destination()
    s = cfg.scale
    with (
        no_georeference(),
        writer.building() as tmp,
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES),
        rasterio.open(artifact.file("cube.tif")) as src,
    ):
        cube = tmp / "cube.tif"
        lo, hi = np.inf, -np.inf
        nodata_out = None if src.nodata is None or np.isnan(src.nodata) else np.float32(src.nodata)
        with rasterio.open(cube, "w", **_hr_profile(src, s)) as dst:
            for i, band_nm in enumerate(wl, start=1):
                dst.set_band_description(i, f"{band_nm:.1f} nm")
                dst.update_tags(i, wavelength_nm=f"{band_nm:.4f}")
            dst.update_tags(
                wavelength_units="nm",
                wavelengths_nm=",".join(f"{w:.4f}" for w in wl),
                upsampled_from=str(Path(dataset).name),
                upsample_scale=str(s),
            )

            def write_hr(block: np.ndarray, r0: int, c0: int) -> None:
                nonlocal lo, hi
                if np.isfinite(block).any():
                    lo, hi = min(lo, float(np.nanmin(block))), max(hi, float(np.nanmax(block)))
                if nodata_out is not None:
                    block = np.where(np.isfinite(block), block, nodata_out)
                dst.write(block, window=((r0, r0 + block.shape[1]), (c0, c0 + block.shape[2])))

            total = tile_count(src.height, src.width, cfg.tile, upsampler)
            with log.progress(f"upsample ×{s} ({cfg.method})", total) as bar:
                tiles = super_resolve_tiled(
                    lambda r0, r1, c0, c1: _read_window(src, r0, r1, c0, c1),
                    write_hr,
                    src.height,
                    src.width,
                    upsampler,
                    cfg.tile,
                    bar,
                )
        if not np.isfinite(lo) or hi - lo <= 0:
            raise InputError(f"{dataset}: the super-resolved scene is all nodata or constant; check the input cube")
        scale, offset = float(hi - lo), float(lo)
        stats = write_patches(cube, tmp / "patches.h5", wl, scale, offset, None, _ingest_config(cfg, wl))
        if stats["count"] == 0:
            raise InputError(f"{dataset}: every HR patch is mostly nodata; use a smaller --size")
        write_preview(cube, wl, tmp / "preview.png")
        writer.spectral = spectral_block(wl, scale, offset)
        guide_used = upsampler.guide if cfg.method == "rgan" else None
        writer.metrics = {**stats, "tiles": tiles}
        if hasattr(guide_used, "windows"):
            writer.metrics["dsr_windows_sampled"] = guide_used.windows.windows_sampled
        writer.extra = {
            "source": {
                "format": "hsi-dataset",
                "height": src.height,
                "width": src.width,
                "bands": int(wl.size),
                "upsample": {
                    "method": cfg.method,
                    "scale": s,
                    "guide": cfg.guide if cfg.method == "rgan" else None,
                    "guide_details": getattr(guide_used, "details", None),
                    "margin_lr": upsampler.margin_lr,
                    "align_lr": upsampler.align_lr,
                    "rgan_rgb_zero_training": None if info is None else bool(info["rgb_zero"]),
                },
            }
        }
    log.info(f"upsample run: ×{s} {cfg.method} → {src.height * s}x{src.width * s}, {stats['count']} patches → {out}")
    return writer.artifact
