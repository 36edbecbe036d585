"""The ``diffusion-model`` artifact of an imported HSIGene model (architecture ``hsigene``):

    unet/config.json                         the HSIGeneConfig (+ architecture tag)
    unet/diffusion_pytorch_model.safetensors UNet + local/global adapters + metadata + schedule buffers
    autoencoder/                             the 48-band KL VAE as an ``autoencoder`` artifact
                                             (kind ``hsigene-kl``, stages/autoencoder/hsigene_kl.py):
      manifest.json, model.json              its own manifest (hashes what it holds) and model facts
      model.safetensors                      the VAE weights (first_stage_model.*): the only copy
    text_encoder/model.safetensors           the frozen CLIP ViT-L/14 text model (cond_stage_model.*)
    scheduler/scheduler_config.json          the training schedule as a diffusers DDPMScheduler config

Every weight file keeps the released key names, so the three files together are the released
state dict again. The model's manifest lists (and hashes) the autoencoder's files too, as for
hsigen's own latent models, whose ``autoencoder/`` is a copy of the one they were trained on.
The CLIP tokenizer vocabulary and the content encoder (a fine-tuned CLIP image model, not in
the release checkpoint) are references to user-local folders.

Imports made before the autoencoder artifact existed keep the VAE in ``vae/model.safetensors``
(``LEGACY_VAE_FILE``); they still load and sample, but have no ``autoencoder/`` for evaluate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..common.errors import ArtifactError
from ..diffusion.latent_layout import AUTOENCODER_DIR, copy_autoencoder
from .config import PUBLIC_COMMIT, PUBLIC_REPO, HSIGeneConfig

ARCHITECTURE = "hsigene"
FILES = {
    "unet": "unet/diffusion_pytorch_model.safetensors",
    "vae": f"{AUTOENCODER_DIR}/model.safetensors",
    "text": "text_encoder/model.safetensors",
}
LEGACY_VAE_FILE = "vae/model.safetensors"  # imports made before autoencoder/ existed
CONFIG_FILE, SCHEDULER_FILE = "unet/config.json", "scheduler/scheduler_config.json"
# Pang et al. arXiv:2409.12470 §4.1.1: every training set was resampled to 48 bands over 400–1000 nm.
WAVELENGTHS_NM = np.linspace(400.0, 1000.0, 48)


def part_of(name: str) -> str:
    if name.startswith("first_stage_model."):
        return "vae"
    if name.startswith("cond_stage_model."):
        return "text"
    return "unet"


def scheduler_config(cfg: HSIGeneConfig) -> dict:
    # diffusers' "scaled_linear" is ldm's "linear" (linspace of √β, squared).
    return {
        "_class_name": "DDPMScheduler",
        "num_train_timesteps": cfg.timesteps,
        "beta_start": cfg.linear_start,
        "beta_end": cfg.linear_end,
        "beta_schedule": "scaled_linear",
        "prediction_type": "epsilon",
        "clip_sample": False,
    }


def manifest_config(
    cfg: HSIGeneConfig, sample_size: int, clip_model: str | None, content_encoder: str | None, preset: str = "released"
) -> dict:
    return {
        "space": "latent",
        "architecture": ARCHITECTURE,
        "preset": preset,
        "model": {
            "prediction_type": "epsilon",
            "schedule": scheduler_config(cfg),
            "hsigene": cfg.to_dict(),
            "source": {"repository": PUBLIC_REPO, "commit": PUBLIC_COMMIT},
        },
        "sample_size": sample_size,
        "channels": cfg.vae.bands,
        # Samples are x·0.5 + 0.5 of the decoder output (inference_single.py L136): [0, 1] units.
        "normalisation": {"kind": "hsigene", "decoded": "x*0.5+0.5", "units": "normalised reflectance in [0, 1]"},
        "clip_model": clip_model,
        "content_encoder": content_encoder,
        # The VAE's place (its own artifact); also makes an import of the older layout
        # (vae/model.safetensors) "not up to date", so re-importing rewrites it.
        "autoencoder": f"{AUTOENCODER_DIR}/",
    }


def write_autoencoder(
    directory: Path, vae_state: dict[str, torch.Tensor], cfg: HSIGeneConfig, inputs: list[dict], sample_size: int
):
    """The VAE (``first_stage_model.*`` tensors) as a complete ``autoencoder`` artifact at
    ``directory`` (inside the model's build directory): manifest, model.json, weights."""
    from safetensors.torch import save_file

    from ..artifacts import ArtifactWriter, spectral_block
    from ..autoencoder.hsigene_kl import KIND, WEIGHTS, HSIGeneKLAutoencoder

    meta = HSIGeneKLAutoencoder.model_json(cfg.vae, cfg.scale_factor)
    config = {
        "kind": KIND,
        "source": {"repository": PUBLIC_REPO, "commit": PUBLIC_COMMIT, "part": "first_stage_model"},
        "vae": meta["vae"],
        "scale_factor": cfg.scale_factor,
    }
    parameters = int(sum(v.numel() for v in vae_state.values() if v.is_floating_point()))
    side = sample_size // cfg.vae.factor
    writer = ArtifactWriter(Path(directory), "autoencoder", "import", config, inputs)
    with writer.building() as tmp:
        save_file(vae_state, str(tmp / WEIGHTS), metadata={"format": "pt", "architecture": ARCHITECTURE})
        (tmp / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
        # The VAE's units: [-1, 1]; physical reflectance in [0, 1] = x · 0.5 + 0.5 (inference_single.py L136).
        writer.spectral = spectral_block(WAVELENGTHS_NM, 0.5, 0.5)
        writer.metrics = {"parameters": parameters, "keys": len(vae_state)}
        writer.extra = {
            "autoencoder": {
                "kind": KIND,
                "downsampling_factor": cfg.vae.factor,
                "latent_channels": cfg.vae.embed_dim,
                "scaling_factor": cfg.scale_factor,
                "parameters": {"vae": parameters},
                "latent_shape_per_patch": [cfg.vae.embed_dim, side, side],
                "weights": f"{WEIGHTS} (the released first_stage_model.* tensors, released key names)",
                "trainable": False,
            }
        }
    return writer.artifact


def write_weights(
    tmp: Path,
    released_state: dict[str, torch.Tensor],
    cfg: HSIGeneConfig,
    *,
    inputs: list[dict],
    sample_size: int,
    autoencoder: Path | None = None,
) -> dict[str, int]:
    """The model's files into the build directory ``tmp``; the VAE as the ``autoencoder/``
    artifact — copied from ``autoencoder`` (the init's, when fine-tuning: the VAE is frozen)
    or written from ``released_state`` with ``inputs`` as its inputs."""
    from safetensors.torch import save_file

    parts: dict[str, dict[str, torch.Tensor]] = {p: {} for p in FILES}
    for name, value in released_state.items():
        parts[part_of(name)][name] = value.detach().contiguous()
    for part, rel in FILES.items():
        if part == "vae":
            continue
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        save_file(parts[part], str(tmp / rel), metadata={"format": "pt", "architecture": ARCHITECTURE})
    if autoencoder is not None:
        copy_autoencoder(autoencoder, tmp)
    else:
        write_autoencoder(tmp / AUTOENCODER_DIR, parts["vae"], cfg, inputs, sample_size)
    (tmp / CONFIG_FILE).write_text(
        json.dumps({"_class_name": "HSIGene", "architecture": ARCHITECTURE, "hsigene": cfg.to_dict()}, indent=2) + "\n"
    )
    (tmp / SCHEDULER_FILE).parent.mkdir(parents=True, exist_ok=True)
    (tmp / SCHEDULER_FILE).write_text(json.dumps(scheduler_config(cfg), indent=2) + "\n")
    # Parameters only: the 13 schedule buffers (top-level names) and position ids are not counted.
    return {
        part: int(sum(v.numel() for k, v in parts[part].items() if "." in k and v.is_floating_point()))
        for part in parts
    }


def autoencoder_dir(artifact) -> Path | None:
    """The model's ``autoencoder/`` artifact directory, or None for an import of the older layout."""
    return artifact.path / AUTOENCODER_DIR if artifact.has(f"{AUTOENCODER_DIR}/manifest.json") else None


def is_hsigene(artifact) -> bool:
    return artifact.config.get("architecture") == ARCHITECTURE


def load_config(artifact) -> HSIGeneConfig:
    try:
        return HSIGeneConfig.from_dict(json.loads(artifact.file(CONFIG_FILE).read_text())["hsigene"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ArtifactError(
            f"{artifact.path}/{CONFIG_FILE} is not an HSIGene config ({exc}); re-run `hsigen import hsigene`"
        ) from None


def load_model(artifact, device="cpu", dtype=torch.float32):
    """The full model from an artifact: built on the meta device, weights assigned (no double copy)."""
    from safetensors.torch import load_file

    from .checkpoint import load_strict
    from .model import build_model

    cfg = load_config(artifact)
    model = build_model(cfg, device="meta")
    state: dict[str, torch.Tensor] = {}
    for part, rel in FILES.items():
        if part == "vae" and not artifact.has(rel) and artifact.has(LEGACY_VAE_FILE):
            rel = LEGACY_VAE_FILE  # an import made before the VAE became autoencoder/
        state.update(load_file(str(artifact.file(rel)), device="cpu"))
    load_strict(model, state)
    return model.to(device=device, dtype=dtype).eval(), cfg
