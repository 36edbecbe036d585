"""Fine-tuning an imported HSIGene model on the user's own scenes — the public release has no
training code for it, so this follows what its model class declares: ε-prediction MSE on
VAE latents (Pang et al. arXiv:2409.12470 §3.2 eq. 3; ldm ddpm.py p_losses), the VAE and
the CLIP text model frozen (inference.yaml L13 cond_stage_trainable: false), and the
trainable set of CRS_Diff.py L183-L200: the adapters (local, global content, global text,
metadata) and, when "unlocked", the UNet.

The shared Trainer (AdamW, cosine, checkpoints that resume exactly) runs the loop; only
the chosen parts are in its module, so its checkpoints hold just those.

Conditions while fine-tuning: all local slots empty, the empty prompt and zero content —
what the release feeds for absent conditions. This adapts the model's unconditional
behaviour to the new scenes; condition maps are not taken here (`--conditions`/`--kinds`
with `--architecture hsigene` exit 1 naming them, hsigen_cli/train_diffusion.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..common import log
from ..common.errors import ConfigError, InputError

TRAINABLE = {
    "adapters": ("local_adapter", "global_content_adapter", "global_text_adapter", "metadata_emb"),
    "unet": ("model",),
    "all": ("local_adapter", "global_content_adapter", "global_text_adapter", "metadata_emb", "model"),
}


@dataclass
class FineTuneConfig:
    train: str = "adapters"
    steps: int = 1000
    lr: float = 1e-5  # CRS-Diff / ControlNet fine-tuning scale
    batch_size: int = 2
    seed: int = 0
    checkpoint_every: int = 200


class TrainableParts(nn.Module):
    """The selected top-level children of the HSIGene model (shared, not copied)."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]):
        super().__init__()
        self.parts = nn.ModuleDict({name: getattr(model, name) for name in names})


def scene_tensors(dataset) -> tuple[np.ndarray, dict]:
    """Training patches as the VAE's input range [-1, 1] (the inverse of the release's
    x·0.5 + 0.5), from one min–max over the dataset's physical values."""
    from ..artifacts.datasets import load_patches

    patches = load_patches(dataset)
    if patches.split is not None and np.any(patches.split == "train"):
        patches = patches.subset(patches.split == "train")  # the held-out split stays unseen
    if patches.hsi.shape[1] != 48:
        raise InputError(
            f"{dataset} has {patches.hsi.shape[1]} bands; HSIGene's VAE takes 48 bands over "
            "400–1000 nm: re-ingest the scene resampled to that grid"
        )
    wl = np.asarray(patches.wavelengths_nm, np.float64)
    if abs(wl[0] - 400.0) > 20 or abs(wl[-1] - 1000.0) > 20:
        log.warn(
            f"{dataset} spans {wl[0]:.0f}–{wl[-1]:.0f} nm; HSIGene was trained on 400–1000 nm, so its "
            "VAE sees these bands as that range"
        )
    phys = patches.physical().astype(np.float32)
    lo, hi = float(phys.min()), float(phys.max())
    if hi <= lo:
        raise InputError(f"{dataset} is constant; nothing to fine-tune on")
    return (phys - lo) / (hi - lo) * 2.0 - 1.0, {"min": lo, "max": hi, "maps_to": "[-1, 1]"}


def denoising_loss(model, latents_mean, latents_std, encoded, batch: int, generator) -> torch.Tensor:
    """ε-MSE at a uniform random t (ldm ddpm.py: q_sample then MSE against the noise)."""
    # All draws come from the Trainer's per-step CPU generator (exact resume), then move.
    dev = latents_mean.device
    n = latents_mean.shape[0]
    idx = torch.randint(0, n, (batch,), generator=generator).to(dev)
    shape = (batch,) + tuple(latents_mean.shape[1:])
    z0 = latents_mean[idx] + latents_std[idx] * torch.randn(shape, generator=generator).to(dev)
    z0 = z0 * model.cfg.scale_factor
    t = torch.randint(0, model.cfg.timesteps, (batch,), generator=generator).to(dev)
    noise = torch.randn(shape, generator=generator).to(dev)
    ac = model.alphas_cumprod[t].view(-1, 1, 1, 1)
    zt = ac.sqrt() * z0 + (1 - ac).sqrt() * noise
    eps = model.denoise(
        zt, t, encoded["context"][:batch], [f[:batch] for f in encoded["features"]], encoded["metadata"][:batch]
    )
    return torch.mean((eps - noise) ** 2)


def finetune(
    init, dataset, out: Path, cfg: FineTuneConfig, *, resume: bool = False, overwrite: bool = False, device: str = "cpu"
):
    from ..artifacts import ArtifactWriter, input_record, open_artifact, spectral_block
    from ..training import Trainer, TrainSpec
    from .artifact import WAVELENGTHS_NM, is_hsigene, load_model, manifest_config, write_weights
    from .checkpoint import to_released_names
    from .generator import HSIGeneConditions, empty_prompt_tokens, encode_conditions

    if cfg.train not in TRAINABLE:  # (the CLI offers only these; a direct call may not)
        raise ConfigError(f"--train {cfg.train!r}: choose adapters, unet or all")
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise ConfigError("--steps and --batch-size must be at least 1")
    art = open_artifact(init, "diffusion-model", role="--init")
    if not is_hsigene(art):
        raise ConfigError(f"--init {init} is not an HSIGene model; import one with `hsigen import hsigene CKPT`")
    data, scaling = scene_tensors(dataset)
    from ..common.runtime import resolve_device

    dev = torch.device(resolve_device(device))
    model, mcfg = load_model(art, dev)
    size = data.shape[-1]
    multiple = mcfg.vae.factor * 2 ** (len(mcfg.channel_mult) - 1)
    if size % multiple:
        raise InputError(f"{dataset}: patch size {size} must be a multiple of {multiple} for HSIGene")

    recorded = {
        **manifest_config(
            mcfg, size, art.config.get("clip_model"), art.config.get("content_encoder"), preset="finetune"
        ),
        "finetune": {
            "train": cfg.train,
            "steps": cfg.steps,
            "lr": cfg.lr,
            "batch_size": cfg.batch_size,
            "seed": cfg.seed,
            "scaling": scaling,
            "conditions": "none (empty slots, empty prompt)",
        },
    }
    records = [input_record(init), input_record(dataset)]
    writer = ArtifactWriter(Path(out), "diffusion-model", "train-diffusion", recorded, records, overwrite)
    if writer.up_to_date():
        log.info("train-diffusion: up to date")
        return writer.artifact
    writer.check_destination()

    for p in model.parameters():
        p.requires_grad_(False)
    parts = TrainableParts(model, TRAINABLE[cfg.train])
    for p in parts.parameters():
        p.requires_grad_(True)
    model.train()
    model.first_stage_model.eval()
    model.cond_stage_model.eval()
    with torch.no_grad():  # frozen encoders: latents and the empty-condition constants once
        x = torch.from_numpy(data).to(dev)
        moments = [model.first_stage_model.encode_moments(x[i : i + 8]) for i in range(0, len(x), 8)]
        mean = torch.cat([m for m, _ in moments])
        std = torch.cat([torch.exp(0.5 * lv) for _, lv in moments])
    empty = HSIGeneConditions(
        local=torch.zeros(1, mcfg.local_channels, size * 2, size * 2, device=dev),
        tokens=empty_prompt_tokens(mcfg.text.max_length).to(dev),
        content=torch.zeros(1, mcfg.content_dim, device=dev),
        metadata=torch.zeros(1, mcfg.metadata_dim, device=dev),
    )

    def loss_fn(_wrapped, step, generator):
        # The text adapter's dropout (global_adapter.py L38-L39: 0.1, 0.3) draws from torch's global
        # RNG: seed it from the step's generator so a resumed run replays the same masks.
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        # The constants pass through the trainable adapters, so they are recomputed with grads
        # (the frozen CLIP text model makes no graph).
        encoded = encode_conditions(model, empty, cfg.batch_size)
        loss = denoising_loss(model, mean, std, encoded, cfg.batch_size, generator)
        return loss, {"loss": float(loss.detach())}

    spec = TrainSpec(
        steps=cfg.steps,
        lr=cfg.lr,
        seed=cfg.seed,
        checkpoint_every=cfg.checkpoint_every,
        weight_decay=0.0,
        grad_clip=1.0,
    )
    fingerprint = {"config": writer.config, "inputs": [r["sha256"] for r in records]}
    trainer = Trainer(parts, spec, Path(out), dev, fingerprint, resume=resume, params=[p for p in parts.parameters()])
    history = trainer.fit(loss_fn, f"train-diffusion (hsigene, {cfg.train})")
    model.eval()
    released = to_released_names(model.state_dict(), model)
    with writer.building() as tmp:
        counts = write_weights(tmp, released, mcfg)
        writer.spectral = spectral_block(WAVELENGTHS_NM, 1.0, 0.0)
        writer.metrics = {
            "final_loss": history[-1]["loss"] if history else None,
            "parameters": counts,
            "trained_parameters": sum(p.numel() for p in parts.parameters()),
        }
        writer.extra = {"history": history}
    trainer.cleanup()
    return writer.artifact
