"""The ``diffusion-model`` artifact of an imported HSIGene model (architecture ``hsigene``):

    unet/config.json                         the HSIGeneConfig (+ architecture tag)
    unet/diffusion_pytorch_model.safetensors UNet + local/global adapters + metadata + schedule buffers
    vae/model.safetensors                    the 48-band KL autoencoder (first_stage_model.*)
    text_encoder/model.safetensors           the frozen CLIP ViT-L/14 text model (cond_stage_model.*)
    scheduler/scheduler_config.json          the training schedule as a diffusers DDPMScheduler config

Every weight file keeps the released key names, so the three files together are the released
state dict again. The CLIP tokenizer vocabulary and the content encoder (a fine-tuned CLIP
image model, not in the release checkpoint) are references to user-local folders.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..common.errors import ArtifactError
from .config import PUBLIC_COMMIT, PUBLIC_REPO, HSIGeneConfig

ARCHITECTURE = "hsigene"
FILES = {
    "unet": "unet/diffusion_pytorch_model.safetensors",
    "vae": "vae/model.safetensors",
    "text": "text_encoder/model.safetensors",
}
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
    }


def write_weights(tmp: Path, released_state: dict[str, torch.Tensor], cfg: HSIGeneConfig) -> dict[str, int]:
    from safetensors.torch import save_file

    parts: dict[str, dict[str, torch.Tensor]] = {p: {} for p in FILES}
    for name, value in released_state.items():
        parts[part_of(name)][name] = value.detach().contiguous()
    for part, rel in FILES.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        save_file(parts[part], str(tmp / rel), metadata={"format": "pt", "architecture": ARCHITECTURE})
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
    for rel in FILES.values():
        state.update(load_file(str(artifact.file(rel)), device="cpu"))
    load_strict(model, state)
    return model.to(device=device, dtype=dtype).eval(), cfg
