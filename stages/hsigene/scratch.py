"""Training the HSIGene architecture from scratch: ``train-diffusion --space latent --architecture
hsigene --autoencoder AE --dataset D --preset tiny|paper`` (``--preset paper`` of the latent space
alone means this too), so that hsigen's own paper-scale training and the released weights are one
model (``stages/hsigene``), sampled, evaluated and fine-tuned by the same code.

The model is a fresh ``HSIGene`` (``model.build_model``: PyTorch's default initialisation, seeded
by ``--seed``, then the release's zero-initialised residual branches and adapter outputs) of the
preset's ``HSIGeneConfig`` — ``HSIGeneConfig()`` for ``paper`` (the released layout, ≈ 1.5 B
parameters), ``HSIGeneConfig.tiny()`` for ``tiny`` — with two parts taken from elsewhere:

- the VAE is the ``--autoencoder``'s (kind ``hsigene-kl``: ``train-ae --kind hsigene-kl``, or the
  ``autoencoder/`` of an import), frozen; its layout, band count and latent scale factor replace
  the preset's, and the artifact is copied into the model as ``autoencoder/``;
- the CLIP text model keeps its random initialisation and stays frozen, as the tiny import of the
  tests does (the release's is CLIP ViT-L/14's, which is not in hsigen; its text path only ever
  sees the empty prompt here, as in fine-tuning, so the text adapter learns on those tokens).

Everything else (UNet, local adapter, global content / text adapters, metadata embedding) learns:
the ``--train all`` path of ``finetune.py``, whose loop, conditions (``--conditions C --kinds``,
per-slot dropout) and artifact writing this module reuses (``finetune.train_run``).

Training data: the dataset's training patches in the autoencoder's units (x = (physical − offset) /
scale with its spectral block), so the latents are what that autoencoder gives for them; samples
are x·0.5 + 0.5 (the release's output, ``generator.py``) and the model's spectral block turns them
back into the dataset's physical units (scale 2·s, offset o − s for the autoencoder's s, o: for the
import's 0.5 / 0.5 that is the import's own 1 / 0).

Presets: ``paper`` trains as Pang et al. arXiv:2409.12470 §4.1.1 does (AdamW, lr 1e-5, batch 16,
100k iterations; the paper starts its UNet from CRS-Diff's weights, which hsigen does not have, so
here it starts from the initialisation above). ``tiny`` is sized for a CPU (not tuned).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..common import log
from ..common.errors import ConfigError, InputError
from .config import HSIGeneConfig


@dataclass(frozen=True)
class ScratchPreset:
    config: HSIGeneConfig
    steps: int
    batch_size: int
    lr: float


PRESETS = {
    "tiny": ScratchPreset(HSIGeneConfig.tiny(), steps=1000, batch_size=4, lr=2e-4),
    "paper": ScratchPreset(HSIGeneConfig(), steps=100_000, batch_size=16, lr=1e-5),  # arXiv:2409.12470 §4.1.1
}


def preset(name: str) -> ScratchPreset:
    if name not in PRESETS:
        raise ConfigError(
            f"--preset {name!r}: --architecture hsigene trains the presets {', '.join(PRESETS)}"
            + (
                " (paper-hyperldm is HyperLDM's RGB mode of the diffusers ControlNet design: --architecture controlnet)"
                if name == "paper-hyperldm"
                else ""
            )
        )
    return PRESETS[name]


def model_config(name: str, vae=None, scale_factor: float | None = None) -> HSIGeneConfig:
    """The preset's ``HSIGeneConfig`` with the autoencoder's VAE layout and scale factor (when given)."""
    cfg = preset(name).config
    if vae is not None:
        cfg = replace(cfg, vae=vae, latent_channels=int(vae.embed_dim), scale_factor=float(scale_factor))
    return cfg


def open_hsigene_autoencoder(path):
    """The ``--autoencoder`` artifact, refused unless it is of kind hsigene-kl."""
    from ..artifacts import open_artifact

    if path is None:
        raise ConfigError(
            "--architecture hsigene from scratch needs --autoencoder AE of kind hsigene-kl "
            "(`hsigen train-ae DATASET --kind hsigene-kl --out AE`), or --init MODEL to fine-tune an import"
        )
    art = open_artifact(path, "autoencoder", role="--autoencoder")
    kind = art.manifest.get("autoencoder", {}).get("kind")
    if kind != "hsigene-kl":
        raise ConfigError(
            f"--autoencoder {path} is a {kind} autoencoder; --architecture hsigene (--preset paper's) decodes "
            "with the HSIGene VAE: train one with `hsigen train-ae DATASET --kind hsigene-kl --out AE`, or "
            f"train hsigen's diffusers UNet + ControlNet on this one with --architecture controlnet"
        )
    return art


def describe(name: str, autoencoder=None) -> dict:
    """``--dry-run``: parameter counts of the model the preset builds (on the meta device: nothing
    is allocated), for the autoencoder's VAE when one is given."""
    import json

    from .finetune import TRAINABLE
    from .model import build_model, prefix_counts

    vae = scale = None
    if autoencoder is not None:
        from ..autoencoder.hsigene_kl import vae_config

        art = open_hsigene_autoencoder(autoencoder)
        meta = json.loads(art.file("model.json").read_text())
        vae, scale = vae_config(meta["vae"]), float(meta["scale_factor"])
    cfg = model_config(name, vae, scale)
    model = build_model(cfg, device="meta")
    counts = {key.rstrip("."): n for key, n in prefix_counts(model).items()}
    counts = {("unet" if k == "model.diffusion_model" else k): n for k, n in counts.items()}
    trained = sum(p.numel() for part in TRAINABLE["all"] for p in getattr(model, part).parameters())
    p = preset(name)
    return {
        "model": "HSIGene (the released architecture, from scratch)",
        "preset": name,
        "architecture": "hsigene",
        "parameters": {**counts, "total": int(sum(counts.values()))},
        "trained_parameters": int(trained),
        "latent_channels": cfg.latent_channels,
        "downsampling_factor": cfg.vae.factor,
        "model_channels": cfg.model_channels,
        "diffusion_steps": cfg.timesteps,
        "training_steps": p.steps,
    }


def ae_tensors(dataset, ae) -> tuple[np.ndarray, dict, np.ndarray]:
    """The training patches of ``dataset`` in the autoencoder's units, their scaling record and
    their patch indices; refused when the band grid or the patch size does not fit ``ae``."""
    from ..artifacts.datasets import load_patches
    from ..data import open_corpus

    open_corpus(dataset).check_autoencoder(ae)
    patches = load_patches(dataset)
    rows = np.arange(len(patches.hsi))
    if patches.split is not None and np.any(patches.split == "train"):
        rows = np.flatnonzero(patches.split == "train")
        patches = patches.subset(patches.split == "train")  # the held-out split stays unseen
    x = ((patches.physical() - ae.offset) / ae.scale).astype(np.float32)
    lo, hi = float(x.min()), float(x.max())
    if lo < -1.5 or hi > 1.5:
        log.warn(
            f"{dataset} spans {lo:.2f} … {hi:.2f} in the autoencoder's units, which are about [-1, 1]; "
            "train the autoencoder on this dataset (`hsigen train-ae DATASET --kind hsigene-kl`)"
        )
    scaling = {
        "units": "the autoencoder's: x = (physical - offset) / scale",
        "scale": float(ae.scale),
        "offset": float(ae.offset),
        "min": lo,
        "max": hi,
    }
    return x, scaling, rows


def fresh_model(cfg: HSIGeneConfig, ae, seed: int, device):
    """A new HSIGene of ``cfg`` on ``device`` (seeded init + the release's zero-inits) whose VAE
    holds the autoencoder's weights."""
    import torch

    from .model import build_model

    torch.manual_seed(seed)
    model = build_model(cfg, device=device)
    model.first_stage_model.load_state_dict(ae.vae.state_dict(), strict=True)
    return model


def train_from_scratch(
    autoencoder,
    dataset,
    out: Path,
    cfg,
    *,
    preset_name: str = "tiny",
    resume: bool = False,
    overwrite: bool = False,
    device: str = "cpu",
):
    """``cfg``: a ``finetune.FineTuneConfig`` with ``train="all"`` (its steps, lr and batch size
    already resolved from the preset and the command line)."""
    import torch

    from ..artifacts import input_record, spectral_block
    from ..autoencoder.io import load_autoencoder
    from ..common.runtime import resolve_device
    from .artifact import manifest_config
    from .finetune import Run, check_config, check_patch_size, paired_conditions, train_run, training_record

    if cfg.train != "all":
        raise ConfigError(
            f"--train {cfg.train}: from scratch everything but the VAE and the text model learns (--train all); "
            "--train adapters|unet choose what of an imported --init MODEL learns"
        )
    preset(preset_name)
    dropout, kinds = check_config(cfg)
    if dataset is None or out is None:
        raise ConfigError("--architecture hsigene needs --autoencoder AE, --dataset DATASET and --out")
    art = open_hsigene_autoencoder(autoencoder)
    dev = torch.device(resolve_device(device))
    ae = load_autoencoder(art, dev)
    mcfg = model_config(preset_name, ae.cfg, ae.scaling_factor)
    data, scaling, rows = ae_tensors(dataset, ae)
    size = data.shape[-1]
    check_patch_size(mcfg, size, dataset)
    if len(data) == 0:
        raise InputError(f"{dataset} has no training patches; re-run ingest with a smaller --val-fraction")
    paired = None
    if cfg.conditions is not None:
        paired = paired_conditions(cfg.conditions, dataset, rows, size, kinds, mcfg, dropout)
    recorded = {
        **manifest_config(mcfg, size, None, None, preset=preset_name),
        # Decoded x·0.5 + 0.5 is the dataset's 0 … 1 here (the spectral block below), not reflectance.
        "normalisation": {
            "kind": "hsigene",
            "decoded": "x*0.5+0.5",
            "units": "[0, 1] of the training data: physical = value * spectral.scale + spectral.offset",
        },
        "training": {
            "from": "scratch: a random initialisation (seed), the release's zero-initialised branches",
            **training_record(cfg, scaling, paired),
            "autoencoder": {
                "path": str(autoencoder),
                "kind": "hsigene-kl",
                "frozen": True,
                "copied_to": "autoencoder/",
            },
            "text_encoder": "CLIP text model of the config, randomly initialised (seed) and frozen; empty prompt only",
        },
    }
    records = [input_record(autoencoder), input_record(dataset)]
    if paired is not None:
        records.append(input_record(cfg.conditions))
    run = Run(
        build=lambda: fresh_model(mcfg, ae, cfg.seed, dev),
        mcfg=mcfg,
        data=data,
        paired=paired,
        dropout=dropout,
        recorded=recorded,
        records=records,
        autoencoder=art.path,
        # samples u = x·0.5 + 0.5 → physical = x·s + o = u·2s + (o − s)
        spectral=spectral_block(ae.wavelengths_nm, 2.0 * ae.scale, ae.offset - ae.scale),
        description=f"train-diffusion (hsigene from scratch, {preset_name})",
    )
    return train_run(run, out, cfg, dev, resume=resume, overwrite=overwrite)
