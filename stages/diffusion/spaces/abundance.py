"""The abundance space (HUD, Shen et al., HUD (2025) §III-C; MSF-Diff, Pan et al., MSF-Diff, Information Fusion 108 (2024) §4.2).

Training data are the abundance maps X of an ``unmixing`` artifact, projected by Shen et al., HUD (2025)
eq. 4, Z = ln(X + e^(−ln d − 8)) with d = k endmembers, then mapped linearly onto the model's
range (recorded in the manifest's ``normalisation``): from Z's exact range [ln ε, ln(1 + ε)] onto
[−1, 1] (``z_scaling: range``, the paper presets), or to zero mean and unit variance per endmember
over the training maps (``standard``, the tiny preset; why: ``PRESETS``). Generated Z go back through eq. 5,
X̂ = softmax(Z) over endmembers (exactly non-negative and sum-to-one), and the linear mixing
model Ŷ = E·X̂ with the unmixing's endmembers E gives HSIs on the dataset's band grid.

An unmixing of several datasets (``hsigen unmix A B ...``) holds the maps of every source's
patches against one set of endmembers found in the per-source normalised units (why that is
consistent: ``stages/unmix/stage.py``). The model trains on the training maps of every source
(each source drawn with its corpus weight when weights were given) and its samples are in the
units of the unmixing's ``spectral`` block, the first source's; the manifest records the
sources (``unmixing_sources``, ``normalisation``) and ``sample_units``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...common.errors import ConfigError
from ...training.presets import preset_table
from ..generator import Conditions, Decoded
from ..generator import Generator as BaseGenerator
from ..presets import AbundanceDiffusionPreset
from . import SpaceData

DECODER_FILE = "decoder/endmembers.csv"

_TINY_UNET = {
    "block_out_channels": [32, 64, 64],
    "layers_per_block": 1,
    "down_block_types": ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
    "norm_num_groups": 8,
    "attention_head_dim": 16,
}
# Pan et al., MSF-Diff, Information Fusion 108 (2024) §5.1.3: U-Net with depth multipliers [1, 2, 2, 4, 4] (base width 128, as in
# DDPM), ~100 M parameters (Table 4: 99.76 M for 5 endmembers).
_PAPER_UNET = {
    "block_out_channels": [128, 256, 256, 512, 512],
    "layers_per_block": 2,
    "down_block_types": ["DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"],
    "norm_num_groups": 32,
    "attention_head_dim": 8,
}

PRESETS: dict[str, AbundanceDiffusionPreset] = preset_table(
    AbundanceDiffusionPreset,
    {
        # ~1.1 M parameters. Predicting the clean sample (x0) gave the smoothest, most realistic
        # maps after a few hundred CPU steps on Indian Pines (400 steps, 16×16 crops: neighbour
        # variation 0.74 vs 0.98 with v-prediction, real 0.43, random Dirichlet 0.89); ε-prediction
        # left short-trained abundances near uniform. --prediction switches it.
        "tiny": {
            "unet": _TINY_UNET,
            "prediction_type": "sample",
            "schedule": {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 2e-2, "beta_schedule": "linear"},
            "steps": 500,
            "batch_size": 8,
            "lr": 2e-3,
            "warmup_steps": 20,
            "ema_decay": 0.995,
            "crop": 16,
            # Maps of a min-volume unmixing are dense (k = 12 on Indian Pines: every endmember
            # 0.055-0.12 on average, 2.7 % of values below 1e-3), so in the fixed range their Z fill a
            # sliver of [-1, 1] and the model (3000 steps) sampled flat maps: sPr 1.00 / sRec 0.00 /
            # gradient 0.06. Standardised per endmember: 0.566 / 0.528 / 0.85 (the shipped
            # indian-pines-abundance, 16 samples, DDIM 50; benchmarks/realism.py).
            "z_scaling": "standard",
        },
        # MSF-Diff (Pan et al., MSF-Diff, Information Fusion 108 (2024) §5.1.3): linear β 1e-6 → 1e-2 over 2000 steps, Adam lr 1e-4,
        # batch 8, 2 M steps, ε-prediction (Algorithm 1).
        "paper": {
            "unet": _PAPER_UNET,
            "prediction_type": "epsilon",
            "schedule": {"num_train_timesteps": 2000, "beta_start": 1e-6, "beta_end": 1e-2, "beta_schedule": "linear"},
            "steps": 2_000_000,
            "batch_size": 8,
            "lr": 1e-4,
            "warmup_steps": 0,
            "ema_decay": 0.9999,
            "crop": None,
            "z_scaling": "range",
        },
        # HUD (Shen et al., HUD (2025) §IV-A): 1000 diffusion steps (DDPM's linear 1e-4 → 2e-2), ε-prediction, 32×32 crops.
        "paper-hud": {
            "unet": _PAPER_UNET,
            "prediction_type": "epsilon",
            "schedule": {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 2e-2, "beta_schedule": "linear"},
            "steps": 500_000,
            "batch_size": 8,
            "lr": 1e-4,
            "warmup_steps": 0,
            "ema_decay": 0.9999,
            "crop": 32,
            "z_scaling": "range",
        },
    },
)


def projection_constants(k: int) -> dict:
    """ε of Shen et al., HUD (2025) eq. 4 and the affine map of Z's exact range [ln ε, ln(1 + ε)] onto [−1, 1]
    (the same for every endmember, so softmax(Z) is untouched by the choice)."""
    eps = math.exp(-math.log(k) - 8.0)
    z_min, z_max = math.log(eps), math.log(1.0 + eps)
    return {
        "projection": "hud-eq4",
        "eps": eps,
        "z_offset": [(z_max + z_min) / 2] * k,
        "z_scale": [(z_max - z_min) / 2] * k,
    }


Z_SCALINGS = ("range", "standard")


def fit_standard_scaling(abundances: np.ndarray, norm: dict) -> dict:
    """``norm`` with Z's per-endmember mean and standard deviation over ``abundances`` (n, k, H, W)
    as its offset and scale (``z_scaling: standard``); softmax(Z) is recovered exactly either way."""
    z = hud_projection(abundances, norm["eps"])
    std = z.std(axis=(0, 2, 3))
    std = np.where(std > 1e-6, std, 1.0)  # an endmember absent from every map (std: rounding) keeps 1
    return {
        **norm,
        "projection": "hud-eq4-standardised",
        "z_offset": z.mean(axis=(0, 2, 3)).tolist(),
        "z_scale": std.tolist(),
    }


def hud_projection(abundances: np.ndarray, eps: float) -> np.ndarray:
    """Shen et al., HUD (2025) eq. 4: Z = ln(X + ε), in float64."""
    return np.log(np.clip(abundances.astype(np.float64), 0.0, None) + eps)


def _per_channel(values, ndim: int = 4) -> np.ndarray:
    return np.asarray(values, np.float64).reshape(1, -1, *([1] * (ndim - 2)))


def to_model_space(abundances: np.ndarray, norm: dict) -> np.ndarray:
    """Shen et al., HUD (2025) eq. 4, then the recorded affine scaling (``range``: onto [−1, 1];
    ``standard``: zero mean, unit variance per endmember)."""
    z = hud_projection(abundances, norm["eps"])
    return ((z - _per_channel(norm["z_offset"])) / _per_channel(norm["z_scale"])).astype(np.float32)


def to_abundances(x: np.ndarray, norm: dict) -> np.ndarray:
    """Undo the scaling, then Shen et al., HUD (2025) eq. 5: softmax over the endmember axis (axis 1)."""
    z = np.asarray(x, np.float64) * _per_channel(norm["z_scale"]) + _per_channel(norm["z_offset"])
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def prepare(inputs: dict, seed: int, model: dict | None = None) -> SpaceData:
    """``inputs``: ``unmixing`` (endmembers and, unless ``abundances`` is given, the maps) and
    optionally ``abundances`` (an ``unmix infer`` artifact of external RGB images: MSF-Diff)."""
    from ...artifacts import spectral_block
    from ...unmix import load_unmixing
    from ...unmix.artifact import write_endmembers_csv

    scaling = (model or {}).get("z_scaling", "range")
    if scaling not in Z_SCALINGS:  # before any file is read
        raise ConfigError(f"z_scaling {scaling!r}: choose one of {', '.join(Z_SCALINGS)}")
    unmixing_path, abundance_path = inputs.get("unmixing"), inputs.get("abundances")
    if unmixing_path is None and abundance_path is None:
        raise ConfigError("--space abundance needs --unmixing UNMIXING (and/or --abundances of `unmix infer`)")
    decoder = load_unmixing(unmixing_path or abundance_path, with_abundances=abundance_path is None)
    maps_from = decoder if abundance_path is None else load_unmixing(abundance_path)
    if maps_from.abundances is None:
        raise ConfigError(f"{maps_from.artifact.path} has no abundances.h5; rebuild it with `hsigen unmix`")
    if maps_from.k != decoder.k:
        raise ConfigError(
            f"--abundances has {maps_from.k} endmembers but --unmixing has {decoder.k}; "
            "use abundances inferred with the same unmixing"
        )
    maps = maps_from.training_abundances()
    norm = projection_constants(decoder.k)
    if scaling == "standard":
        norm = fit_standard_scaling(maps, norm)
    used = [Path(p) for p in (unmixing_path, abundance_path) if p is not None]
    corpus_block = maps_from.artifact.manifest.get("normalisation") if maps_from.source is not None else None
    weights, extra = None, {}
    if corpus_block is not None:  # an unmixing of several datasets
        sources = maps_from.training_sources()
        given = corpus_block["sources"]
        counts = np.bincount(sources, minlength=len(given)).astype(np.float64)
        share = np.asarray([s["weight"] for s in given], np.float64)
        if not np.allclose(share / share.sum(), counts / counts.sum()):  # weights other than the patch counts
            weights = np.where(counts[sources] > 0, share[sources] / np.maximum(counts[sources], 1), 0.0)
            weights = weights / weights.sum()
        extra = {
            "unmixing_sources": [s["path"] for s in given],
            "training_maps_per_source": [int(c) for c in counts],
            "sample_units": f"the unmixing's spectral block: {given[0]['path']}'s units "
            f"(physical = value * {decoder.scale:g} + {decoder.offset:g})",
            "corpus_normalisation": corpus_block,
        }

    def write_files(tmp: Path) -> None:
        (tmp / "decoder").mkdir()
        write_endmembers_csv(tmp / DECODER_FILE, decoder.wavelengths_nm, decoder.endmembers)

    return SpaceData(
        tensors=to_model_space(maps, norm),
        normalisation=norm,
        inputs=used,
        space_config={
            "k": decoder.k,
            "unmixing": str(unmixing_path) if unmixing_path else None,
            "abundances": str(abundance_path) if abundance_path else None,
            "training_maps": int(len(maps)),
            "decoder": DECODER_FILE,
            **extra,
        },
        spectral=spectral_block(decoder.wavelengths_nm, decoder.scale, decoder.offset),
        write_files=write_files,
        sample_weights=weights,
    )


def decode(model, x0: np.ndarray) -> Decoded:
    """Generated (n, k, H, W) in model units → abundances on the simplex and HSIs (eq. 5 + LMM)."""
    from ...unmix.artifact import read_endmembers_csv

    norm = model.config["normalisation"]
    abundances = to_abundances(x0, norm)
    wl, endmembers = read_endmembers_csv(model.artifact.file(DECODER_FILE))
    spectral = model.artifact.spectral
    scale, offset = float(spectral["scale"]), float(spectral["offset"])
    physical = np.einsum("bk,nkhw->nbhw", endmembers, abundances)
    hsi = ((physical - offset) / scale).astype(np.float32)
    return Decoded(hsi, wl, scale, offset, {"abundances": abundances.astype(np.float32)})


class Generator(BaseGenerator):
    """Unconditional abundance-map sampling, decoded by eq. 5 and the linear mixing model."""

    def decode(self, x0: np.ndarray, rows: slice, conditions: Conditions) -> Decoded:
        return decode(self.model, x0)
