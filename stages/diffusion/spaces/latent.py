"""The latent space (HSIGene, Pang et al., HSIGene, arXiv:2409.12470 §3.2; HyperLDM, Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-C).

Training data are the patches of an ``hsi-dataset`` encoded once by a trained ``autoencoder``
(``kl``: HSIGene's VAE; ``vq-rgb``: HyperLDM's conditional VQ autoencoder) and cached in memory,
together with each patch's conditions:

- computed on the fly from the patch's RGB-like bands (bands nearest 640/550/470 nm with the
  dataset-wide 2 % stretch, exactly as ``hsigen condition DATASET`` does) with the conditions
  stage's offline extractors, or
- read from a ``conditions`` artifact whose source is the same dataset.

Augmentation is exact in latent space: each patch is encoded in all 8 orientations (4 rotations
× optional flip) and its maps are transformed the same way; the global descriptors (content,
text) describe the whole patch and stay as they are.

Generated latents are decoded by the autoencoder copied into the model artifact
(``autoencoder/``); the ``vq-rgb`` decoder also takes the RGB condition (Liu et al., HyperLDM, IEEE TGRS 61 (2023) eq. 2).

The space's entries: ``train`` (its own trainer, ``latent_training.py``: UNet + ControlNet,
condition dropout) and ``Generator`` (sampling with the conditions of ``latent_conditions.py``
and classifier-free guidance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...common import log
from ...common.errors import ConfigError, InputError, SpectralError
from ...training.presets import preset_table
from ..channel_norm import channel_statistics, denormalise, normalise
from ..generator import Conditions, Decoded
from ..generator import Generator as BaseGenerator
from ..latent_layout import AUTOENCODER_DIR, DEFAULT_KINDS, copy_autoencoder, parse_kinds  # noqa: F401  (re-exported)
from ..presets import LatentDiffusionPreset

# LDM / Stable Diffusion v1 noise schedule (CRS-Diff and so HSIGene build on SD 1.5).
SD_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
# Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-C.1: T = 100, linear β from 0.01 to 0.2, so that ᾱ_T ≈ 1.26e-5 and x_T ~ N(0, I).
HYPERLDM_SCHEDULE = {"num_train_timesteps": 100, "beta_start": 0.01, "beta_end": 0.2, "beta_schedule": "linear"}

# Cross-attention (global tokens) only at the coarsest level keeps the CPU step cheap. The full-resolution level is
# wider than the 48 latent channels (issue 14): at 32 the x0 prediction could not give back even an almost clean
# input (benchmarks/latent_denoising.py, the val latents at t = 1: decoded sPr 0.48 against 0.90 for the input), and
# every sample ends on that estimate; at 96, 0.72. 128 wide (4.3 M parameters with the ControlNet) since session 14:
# at 3000 steps about where the 96-wide UNet is at 6000, and closer to real under conditions (rows below).
_TINY_UNET = {
    "block_out_channels": [128, 48, 48],
    "layers_per_block": 1,
    "down_block_types": ["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
    "norm_num_groups": 8,
    "attention_head_dim": 8,
}
# Stable Diffusion 1.5's UNet (the UNet CRS-Diff / HSIGene fine-tune, Pang et al., HSIGene, arXiv:2409.12470 §4.1.1), with a
# same-sized ControlNet copy: ≈ 0.86 B + 0.36 B parameters; with the VAE and the CLIP encoders
# this is the "1.5 billion parameters in total" of Pang et al., HSIGene, arXiv:2409.12470 §4.1.1.
_SD15_UNET = {
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "norm_num_groups": 32,
    "attention_head_dim": 8,
}
# Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-C.2: Resblocks ×2 per resolution with [128, 128, 256, 256, 512, 512]
# channels, attention only at the 8×8 and 4×4 feature resolutions (64×64 latents).
_HYPERLDM_UNET = {
    "block_out_channels": [128, 128, 256, 256, 512, 512],
    "layers_per_block": 2,
    "down_block_types": [
        "DownBlock2D",
        "DownBlock2D",
        "DownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"],
    "norm_num_groups": 32,
    "attention_head_dim": 8,
}

PRESETS: dict[str, LatentDiffusionPreset] = preset_table(
    LatentDiffusionPreset,
    {
        # ≈ 2.9 M parameters (UNet + ControlNet); minutes on 2 CPU cores. x0-prediction on per-channel standardised
        # latents (issue 14). 16 unconditional samples (DDIM 50) on the kl tiny AE (f = 2, 48 channels, block linear
        # path), against the scene's train rows, k = 10 — sPr / sRec / gradient ratio / band-mean error:
        #   ε-prediction, one latent scale (the preset before), 1500 steps         0.000 / 1.00 / 22.4 (noise)
        #   ε, standardised per channel                                            0.002 / 1.00 / 11.7 (noise)
        #   v-prediction, standardised                                             0.24 / 0.89 / 1.46 / 2.8 %
        #   x0, one latent scale                                                   0.60 / 0.08 / 0.87 / 3.5 %
        #   x0, standardised (this preset), 1500 / 4000 steps                      0.45 / 0.86 / 1.00 ; 0.51 / 0.84 / 0.89 / 3.0 %
        #   the same with Min-SNR-5 / -20 weighting (snr_gamma)                    0.45 / 0.81 ; 0.40 / 0.75
        #   the same with UNet widths [64, 64, 64]                                 0.46 / 0.87 / 0.95
        #   the same on a 32-channel block AE                                      0.52 / 0.74 / 0.99
        #   (ddpm ancestral / DDIM 200 instead of DDIM 50: 0.41 / 0.88, 0.44 / 0.87)
        #   the same with GroupNorm over 1 group                                   0.46 / 0.80 / 0.99
        #   EDM preconditioning, sigma_data 0.5 / 0.25 (precondition.py)           0.32 / 0.85 / 1.47 ; 0.44 / 0.81 / 1.07
        #   full-resolution level 96 wide ([96, 48, 48]), 1500 steps               0.53 / 0.88 / 0.97 / 3.7 %
        #   [96, 48, 48] + sigma_data 0.25 ; [96, 32, 32] with 1 group             0.47 / 0.87 / 1.12 ; 0.54 / 0.87 / 1.00
        #   [192, 48, 48] (8.0 M parameters: over the shipped models' 25 MB)       0.61 / 0.84 / 0.95
        #   [96, 48, 48], 3000 steps (session 12's shipped model)                  0.65 / 0.84 / 0.86 / 4.3 %
        #   [96, 48, 48], 6000 steps, EMA 0.999 (session 13's shipped model)       0.70 / 0.78 / 0.81 / 2.8 %
        #   [128, 48, 48] (this preset), 3000 steps, EMA 0.999                     0.68 / 0.81 / 0.87 / 3.7 %
        #   [128, 48, 48], 6000 steps, EMA 0.999 (the shipped model, session 14)   0.71 / 0.75 / 0.81 / 4.2 %
        #   [128, 48, 48], 12000 steps (session 15; overfits, not adopted)        0.75 / 0.75 / 0.74 / 5.2 %
        #   [128, 48, 48], 6000 steps on 630 patches cut every 4 px (not adopted)  0.75 / 0.76 / 0.82 / 6.3 %
        #   1500 steps, the x0 loss of channel c weighted ∝ std_c (tried, dropped) 0.51 / 0.87 / 0.97 / 1.9 %
        # Under the hed + seg maps of 16 val patches the 96-wide level lifts sPr more: 0.42 against 0.31 for the
        # shipped 32-wide model at 3000 steps (sigma_data 0.5: 0.22); 0.46 at 3000 steps, 0.52 at 6000 with EMA
        # 0.999; 128 wide: 0.54 at 3000 steps, 0.56 at 6000; at 12000, with today's default guidance, 0.51 against the
        # 6000-step model's 0.61 (3 seeds; seg ARI 0.38 against 0.50); on the dense patches 0.59 (unconditional 0.73
        # against 0.71 over 3 seeds; seg + hed ARI 0.42 against 0.48). One seed's 16 samples move sPr by up to 0.05
        # (docs/pretrained.md), so rows closer than that are not told apart. Preconditioning lets the model give
        # back its input at low noise but then it hardly denoises there (val latents at t = 21: decoded sPr 0.76,
        # the noisy input's 0.75), so the samples keep noise; the width makes the x0 estimate itself more precise.
        # For comparison the shipped model of session 6 (ε on a 16-channel plain VAE): 0.79 / 0.10 / 1.17 / 5.8 %.
        "tiny": {
            "unet": _TINY_UNET,
            "cross_attention_dim": 32,
            "conditioning_base": 8,
            "rgb_channels": 8,
            "prediction_type": "sample",
            "schedule": SD_SCHEDULE,
            "steps": 800,
            "batch_size": 16,
            "lr": 2e-3,
            "warmup_steps": 20,
            "ema_decay": 0.995,
            "condition_dropout": 0.3,
            "drop_all": 0.1,
            "ssim_weight": 0.0,
            "rgb_condition": False,
            "augment": True,
            "grad_accum": 1,
            "standardise_latents": True,
            "snr_gamma": None,
            "sigma_data": None,
        },
        # HSIGene (Pang et al., HSIGene, arXiv:2409.12470 §4.1.1): AdamW lr 1e-5, batch 16, 100k iterations, SD 1.5 sizes, CLIP
        # width (768) cross-attention.
        "paper": {
            "unet": _SD15_UNET,
            "cross_attention_dim": 768,
            "conditioning_base": 16,
            "rgb_channels": 32,
            "prediction_type": "epsilon",
            "schedule": SD_SCHEDULE,
            "steps": 100_000,
            "batch_size": 16,
            "lr": 1e-5,
            "warmup_steps": 0,
            "ema_decay": 0.9999,
            "condition_dropout": 0.3,
            "drop_all": 0.1,
            "ssim_weight": 0.0,
            "rgb_condition": False,
            "augment": True,
            "grad_accum": 1,
            "standardise_latents": False,
            "snr_gamma": None,
            "sigma_data": None,
        },
        # HyperLDM (Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-C, §III-D, Table IV †): T = 100 linear 0.01 → 0.2, λ3 = 0.1,
        # n_c = 32, AdamW, "converges ... after 4000 iterations".
        "paper-hyperldm": {
            "unet": _HYPERLDM_UNET,
            "cross_attention_dim": 512,
            "conditioning_base": 16,
            "rgb_channels": 32,
            "prediction_type": "epsilon",
            "schedule": HYPERLDM_SCHEDULE,
            "steps": 4000,
            "batch_size": 8,
            "lr": 1e-5,
            "warmup_steps": 0,
            "ema_decay": 0.9999,
            "condition_dropout": 0.3,
            "drop_all": 0.1,
            "ssim_weight": 0.1,
            "rgb_condition": True,
            "augment": True,
            "grad_accum": 1,
            "standardise_latents": False,
            "snr_gamma": None,
            "sigma_data": None,
        },
    },
)


@dataclass
class LatentData:
    """What ``train-diffusion --space latent`` trains on (numpy, float32)."""

    latents: np.ndarray  # (M, C, h, w) AE latents (M = patches × orientations)
    maps: np.ndarray  # (M, 6, S, S) local maps in their slots (zeros where absent)
    embeddings: dict  # kind → (M, D)
    available: np.ndarray  # (6,) bool per kind of control.CONDITION_KINDS
    rgb: np.ndarray | None  # (M, 3, S, S) RGB condition in normalised units (HyperLDM)
    factor: int
    patch_size: int
    inputs: list[Path]
    space_config: dict
    spectral: dict
    autoencoder: Path
    condition_settings: dict = field(default_factory=dict)

    def write_files(self, tmp: Path) -> None:
        copy_autoencoder(self.autoencoder, tmp)


def dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """Orientation k ∈ 0..7 of (…, H, W) arrays: k % 4 quarter turns, then a flip when k ≥ 4."""
    y = np.rot90(x, k % 4, axes=(-2, -1))
    if k >= 4:
        y = y[..., ::-1]
    return np.ascontiguousarray(y)


def dataset_rgb(dataset: Path, percent: float = 2.0):
    """Every patch as the uint8 RGB the conditions stage makes of it, and the stretch used."""
    from ...conditions.sources import read_sources

    sources = read_sources([dataset], percent)
    rgb = sources.sources[0]["rgb"]
    return [image.rgb for image in sources.images], rgb


def _check_autoencoder(ae, patches, dataset: Path, rgb_condition: bool) -> None:
    if ae.kind == "two-stream":
        raise ConfigError(
            "--space latent needs a `kl` (HSIGene) or `vq-rgb` (HyperLDM) autoencoder; this one is two-stream (SpecDM)"
        )
    if ae.kind == "vq-rgb" and not rgb_condition:
        raise ConfigError("a vq-rgb autoencoder decodes with the RGB image: add --rgb-condition (HyperLDM mode)")
    if rgb_condition and ae.kind != "vq-rgb":
        raise ConfigError(
            "--rgb-condition (HyperLDM) decodes with a vq-rgb autoencoder; train one with "
            "`hsigen train-ae --kind vq-rgb`"
        )
    wl = np.asarray(patches.wavelengths_nm, np.float64)
    if len(wl) != len(ae.wavelengths_nm) or not np.allclose(wl, ae.wavelengths_nm, atol=0.05):
        raise SpectralError(
            f"{dataset} has {len(wl)} bands that differ from the autoencoder's "
            f"{len(ae.wavelengths_nm)}; train the autoencoder on this dataset's band grid"
        )
    if not (np.isclose(patches.scale, ae.scale) and np.isclose(patches.offset, ae.offset)):
        raise SpectralError(
            f"{dataset} is normalised with scale {patches.scale:g} / offset {patches.offset:g} but "
            f"the autoencoder with {ae.scale:g} / {ae.offset:g}; use the dataset it was trained on"
        )
    size = patches.hsi.shape[-1]
    if size % ae.factor:
        raise InputError(f"{dataset}: patch size {size} is not a multiple of the autoencoder's factor {ae.factor}")


def conditions_from_artifact(path: Path, dataset: Path, rows: np.ndarray, size: int, kinds):
    """Maps / embeddings of the dataset's patches ``rows`` from a conditions artifact."""
    from ...artifacts import input_record
    from ...conditions.io import load_conditions

    cond = load_conditions(path)
    wanted = input_record(dataset)["sha256"]
    recorded = {i["sha256"] for i in cond.artifact.manifest.get("inputs", [])}
    datasets = [s for s, src in enumerate(cond.index["sources"]) if src.get("kind") == "hsi-dataset"]
    matches = [s for s in datasets if Path(cond.index["sources"][s]["path"]).resolve() == Path(dataset).resolve()]
    if not matches and len(datasets) == 1:
        matches = datasets  # the same dataset (by hash) at another path
    if wanted not in recorded or not matches:
        raise InputError(
            f"--conditions {path} was not computed from {dataset}; run "
            f"`hsigen condition {dataset} --kinds ... --out DIR` and pass that"
        )
    if (cond.index["height"], cond.index["width"]) != (size, size):
        raise InputError(
            f"--conditions {path} holds {cond.index['height']}×{cond.index['width']} maps but the "
            f"patches are {size}×{size}; rebuild it without --size"
        )
    by_item = {int(cond.items[r]["item"]): r for r in cond.rows(source=matches[0])}
    missing = [int(i) for i in rows if int(i) not in by_item]
    if missing:
        raise InputError(f"--conditions {path} lacks patches {missing[:5]} of {dataset}; rebuild it from the dataset")
    pick = np.asarray([by_item[int(i)] for i in rows])
    use = [k for k in (kinds or list(cond.maps) + list(cond.embeddings))]
    unknown = [k for k in use if k not in cond.maps and k not in cond.embeddings]
    if unknown:
        raise InputError(
            f"--conditions {path} has no {', '.join(unknown)}; it holds "
            f"{', '.join(list(cond.maps) + list(cond.embeddings))}"
        )
    maps = {k: cond.maps[k][pick] for k in use if k in cond.maps}
    embeddings = {k: cond.embeddings[k][pick] for k in use if k in cond.embeddings}
    settings = {k: dict(cond.kinds.get(k, {})) for k in use}
    if "text" in embeddings and "vocab" in cond.index["kinds"].get("text", {}):
        settings["text"]["vocab"] = list(cond.index["kinds"]["text"]["vocab"])
    return maps, embeddings, settings


def _conditions_on_the_fly(rgbs: list, kinds) -> tuple[dict, dict, dict]:
    from ...conditions import make_extractor

    if "text" in kinds:
        raise ConfigError(
            "text conditions come from a conditions artifact (`hsigen condition DATASET --kinds "
            "text --text-file ...`); pass it with --conditions, or drop text from --kinds"
        )
    maps, embeddings, settings = {}, {}, {}
    with log.progress("conditions", len(kinds) * len(rgbs)) as bar:
        for kind in kinds:
            extractor = make_extractor(kind)
            settings[kind] = extractor.settings()
            values = []
            for rgb in rgbs:
                values.append(extractor(rgb))
                bar.advance()
            target = maps if kind in ("hed", "mlsd", "sketch", "seg") else embeddings
            target[kind] = np.stack(values).astype(np.float32)
    return maps, embeddings, settings


def stack_maps(maps: dict, n: int, size: int) -> np.ndarray:
    from ..control import LOCAL_MAP_CHANNELS, LOCAL_SLOTS

    out = np.zeros((n, LOCAL_MAP_CHANNELS, size, size), np.float32)
    for kind, values in maps.items():
        out[:, LOCAL_SLOTS[kind]] = values
    return out


def prepare_latent(inputs: dict, model_cfg: dict, device="cpu") -> LatentData:
    """``inputs``: ``autoencoder``, ``dataset``, optional ``conditions`` and ``kinds``."""
    import torch

    from ...artifacts import spectral_block
    from ...artifacts.datasets import load_patches
    from ...autoencoder.io import load_autoencoder
    from ..control import CONDITION_KINDS

    ae_path, dataset, cond_path = inputs.get("autoencoder"), inputs.get("dataset"), inputs.get("conditions")
    if ae_path is None or dataset is None:
        raise ConfigError("--space latent needs --autoencoder AE and --dataset DATASET")
    kinds = parse_kinds(inputs.get("kinds"))
    rgb_condition = bool(model_cfg["rgb_condition"])
    ae = load_autoencoder(ae_path, device)
    patches = load_patches(dataset)
    _check_autoencoder(ae, patches, Path(dataset), rgb_condition)
    rows = np.arange(len(patches.hsi)) if patches.split is None else np.flatnonzero(patches.split == "train")
    if len(rows) == 0:
        raise InputError(f"{dataset} has no training patches; re-run ingest with a smaller --val-fraction")
    size = int(patches.hsi.shape[-1])
    rgbs, rgb_info = dataset_rgb(Path(dataset))
    if cond_path is not None:
        maps, embeddings, settings = conditions_from_artifact(Path(cond_path), Path(dataset), rows, size, kinds)
    else:
        maps, embeddings, settings = _conditions_on_the_fly(
            [rgbs[i] for i in rows], kinds if kinds is not None else list(DEFAULT_KINDS)
        )
    hsi = patches.hsi[rows]
    orientations = range(8) if model_cfg.get("augment", True) else range(1)
    latents, stacks, rgb_cond = [], [], []
    base_maps = stack_maps(maps, len(rows), size)
    with torch.no_grad(), log.progress("encode latents", len(orientations)) as bar:
        for k in orientations:
            cube = dihedral(hsi, k)
            for start in range(0, len(cube), 32):
                x = torch.from_numpy(cube[start : start + 32]).to(device)
                latents.append(ae.encode(x).float().cpu().numpy())
                if rgb_condition:
                    rgb_cond.append(ae.rgb_condition(x).float().cpu().numpy())
            stacks.append(dihedral(base_maps, k))
            bar.advance()
    copies = len(orientations)
    available = np.array([k in maps or k in embeddings for k in CONDITION_KINDS])
    latents = np.concatenate(latents).astype(np.float32)
    standardisation = channel_statistics(latents) if model_cfg.get("standardise_latents") else None
    if standardisation is not None:
        latents = normalise(latents, standardisation)
    space_config = {
        "autoencoder": {
            "path": str(ae_path),
            "kind": ae.kind,
            "factor": int(ae.factor),
            "latent_channels": int(ae.latent_channels),
            "scaling_factor": float(ae.scaling_factor),
            "copied_to": AUTOENCODER_DIR,
        },
        "dataset": str(dataset),
        "patch_size": size,
        "training_patches": int(len(rows)),
        "orientations": copies,
        "conditions": {
            "source": str(cond_path) if cond_path else "on-the-fly (offline extractors)",
            "local": [k for k in CONDITION_KINDS if k in maps],
            "global": {k: {"dim": int(v.shape[1]), **settings.get(k, {})} for k, v in embeddings.items()},
            "settings": {k: settings[k] for k in maps},
        },
        "rgb": rgb_info,
        **({"latent_standardisation": standardisation} if standardisation is not None else {}),
    }
    used = [Path(ae_path), Path(dataset)] + ([Path(cond_path)] if cond_path else [])
    return LatentData(
        latents=latents,
        maps=np.concatenate(stacks),
        embeddings={k: np.tile(v, (copies, 1)).astype(np.float32) for k, v in embeddings.items()},
        available=available,
        rgb=np.concatenate(rgb_cond).astype(np.float32) if rgb_condition else None,
        factor=int(ae.factor),
        patch_size=size,
        inputs=used,
        space_config=space_config,
        spectral=spectral_block(patches.wavelengths_nm, patches.scale, patches.offset),
        autoencoder=Path(ae_path),
        condition_settings=settings,
    )


# -- the model side ------------------------------------------------------------------------------
def load_model_autoencoder(model, device="cpu"):
    from ...autoencoder.io import load_autoencoder

    return load_autoencoder(model.artifact.path / AUTOENCODER_DIR, device)


def rgb_of_hsi(hsi: np.ndarray, wavelengths_nm, rgb_info: dict) -> list[np.ndarray]:
    """Generated (n, B, H, W) HSIs as uint8 RGB with the training dataset's stretch, so that
    condition extractors see samples the way they saw the training patches."""
    from ...spectral import false_colour

    limits = (np.asarray(rgb_info["low"], np.float32), np.asarray(rgb_info["high"], np.float32))
    return [false_colour(cube, wavelengths_nm, limits=limits) for cube in hsi]


def apply_rgb_mode(model_cfg: dict) -> dict:
    """``--rgb-condition`` switches to HyperLDM's short schedule (Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-C.1)."""
    if model_cfg.get("rgb_condition"):
        model_cfg["schedule"] = dict(HYPERLDM_SCHEDULE)
    return model_cfg


# -- training and sampling entries of the space ------------------------------------------------


def train(inputs: dict, out: Path | None, cfg, *, overwrite: bool = False, resume: bool = False, dry_run: bool = False):
    """``train-diffusion --space latent``: the latent space has its own trainer (ControlNet,
    condition dropout, HyperLDM's SSIM term)."""
    from ..latent_training import train_latent

    cfg.model = apply_rgb_mode(cfg.model)
    return train_latent(
        inputs, out, cfg, prepare=prepare_latent, overwrite=overwrite, resume=resume, dry_run_only=dry_run
    )


class Generator(BaseGenerator):
    """Conditional latent sampling with classifier-free guidance; decodes with the model's
    autoencoder (the ``vq-rgb`` decoder also takes the RGB condition)."""

    # Guidance 2.5 at t >= 300 only (Kynkäänniemi et al., NeurIPS 2024): the layout is set at high noise, and
    # guiding the last steps pushed the spectra off the real ones. The shipped model under hed + seg of 16 val
    # patches, DDIM 50, 6 seeds (sPr / seg ARI / hed edge correlation of the samples): guidance 2 at every step
    # (the default before) 0.569 / 0.440 / 0.762; 2 at t >= 300 0.611 / 0.433 / 0.762; 2.5 at t >= 300
    # 0.603 / 0.449 / 0.772 (3 seeds: 2 at t >= 400 0.616, guidance 1 0.616 / 0.382 / 0.688). The agreement
    # of tests/latent/test_condition_following.py (12 val patches, DDIM 25, 5 seeds), old → this default:
    # seg 0.436 / 0.693 → 0.448 / 0.697, seg + hed 0.488 / 0.819 → 0.497 / 0.826, hed 0.294 / 0.614 → 0.297 / 0.619.
    default_guidance = 2.5
    default_guidance_interval = (300, 999)

    def __init__(self, model):
        super().__init__(model)
        self.pixel_factor = int(model.config["autoencoder"]["factor"])
        self._batch = (None, None)  # (rows, ConditionBatch) of the batch being denoised

    def prepare(self, request, n: int, size: int, guidance: float) -> Conditions:
        from ..generator import ConditionRequest
        from .latent_conditions import resolve_conditions

        if guidance < 0:
            raise ConfigError("--guidance must be >= 0 (1 = no guidance, the paper-style default is 2-7.5)")
        resolved = resolve_conditions(self.model, request or ConditionRequest(), n, size)
        return Conditions(
            n,
            inputs=list(resolved.inputs),
            kinds=list(resolved.described["kinds"]),
            recorded={"guidance": float(guidance), "conditions": resolved.described},
            state=resolved,
            guidance=float(guidance),
        )

    def load(self, device, batch_size: int = 16) -> None:
        from ..latent_model import load_denoiser

        self.device, self.batch_size = device, batch_size
        self.denoiser = load_denoiser(self.model, device)
        self.autoencoder = load_model_autoencoder(self.model, device)

    def condition_batch(self, rows: slice, conditions: Conditions):
        """The conditions of samples ``rows`` as tensors on the device (built once per batch)."""
        import torch

        from ..control import ConditionBatch

        if self._batch[0] != (rows.start, rows.stop):
            c = conditions.state.take(rows)
            to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
            batch = ConditionBatch(
                to(c.maps),
                to(c.keep),
                {k: to(v) for k, v in c.embeddings.items()},
                to(c.rgb) if c.rgb is not None else None,
            )
            self._batch = ((rows.start, rows.stop), batch)
        return self._batch[1]

    def predict(self, x, t, rows: slice, conditions: Conditions):
        from ..control import guided_noise

        return guided_noise(
            self.denoiser, x, t.to(self.device), self.condition_batch(rows, conditions), conditions.guidance_at(t)
        )

    def decode(self, x0: np.ndarray, rows: slice, conditions: Conditions) -> Decoded:
        import torch

        c = conditions.state.take(rows)
        x0 = denormalise(x0, self.model.config.get("latent_standardisation"))
        out = []
        with torch.no_grad():
            for start in range(0, len(x0), self.batch_size):
                z = torch.from_numpy(x0[start : start + self.batch_size]).to(self.device)
                if c.rgb is not None:
                    rgb = torch.from_numpy(c.rgb[start : start + len(z)]).to(self.device)
                    x = self.autoencoder.decode(z, rgb)
                else:
                    x = self.autoencoder.decode(z)
                out.append(x.float().cpu().numpy())
        spectral = self.model.artifact.spectral
        arrays = {
            "conditions": c.maps,
            "condition_present": c.keep,
            **{f"condition_{kind}": values for kind, values in c.embeddings.items()},
        }
        return Decoded(
            np.concatenate(out).astype(np.float32),
            np.asarray(spectral["wavelengths_nm"], np.float64),
            float(spectral["scale"]),
            float(spectral["offset"]),
            arrays,
        )

    def summary(self, samples_h5: Path, conditions: Conditions) -> tuple[dict, dict]:
        from ..control import CONDITION_KINDS

        return {"conditions": list(conditions.kinds)}, {"condition_kinds": list(CONDITION_KINDS)}

    def write_beside(self, tmp: Path, decoded: Decoded, rows: slice, conditions: Conditions) -> None:
        """The conditions each sample used: ``samples/sample_NNNN_<kind>.png`` (and ``_rgb``)."""
        from ...conditions.common import to_uint8
        from ...spectral import save_png
        from ..control import LOCAL_KINDS, LOCAL_SLOTS

        c = conditions.state.take(rows)
        for row, i in enumerate(range(rows.start, rows.stop)):
            for j, kind in enumerate(LOCAL_KINDS):
                if c.keep[row, j]:
                    image = to_uint8(c.maps[row, LOCAL_SLOTS[kind]])
                    if image.ndim != 3:
                        image = np.repeat(image[..., None], 3, axis=-1)
                    save_png(tmp / "samples" / f"sample_{i:04d}_{kind}.png", image)
            if c.rgb_png is not None:
                save_png(tmp / "samples" / f"sample_{i:04d}_rgb.png", c.rgb_png[row])
