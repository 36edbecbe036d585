"""Fine-tuning an imported HSIGene model on the user's own scenes — the public release has no
training code for it, so this follows what its model class declares: ε-prediction MSE on
VAE latents (Pang et al. arXiv:2409.12470 §3.2 eq. 3; ldm ddpm.py p_losses), the VAE and
the CLIP text model frozen (inference.yaml L13 cond_stage_trainable: false), and the
trainable set of CRS_Diff.py L183-L200: the adapters (local, global content, global text,
metadata) and, when "unlocked", the UNet.

The shared Trainer (AdamW, cosine, checkpoints that resume exactly) runs the loop; only
the chosen parts are in its module, so its checkpoints hold just those.

Conditions while fine-tuning:
- without ``conditions``: all local slots empty, the empty prompt and zero content — what the
  release feeds for absent conditions. This adapts the model's unconditional behaviour.
- with ``conditions`` (a ``conditions`` artifact of the same dataset, ``hsigen condition
  DATASET --kinds hed,seg,... --out C``): (image, condition) pairs. Each patch's maps are
  matched to it by its patch index (``diffusion/spaces/latent.py``'s
  ``conditions_from_artifact``, which also refuses an artifact of another dataset) and
  each batch's maps go into the released local slots (hed 0, seg 2, sketch 4, mlsd 5) through
  the sampler's own ``generator.local_slots`` — RGB, bilinear-resized to the model's
  condition size (2 × the patch side) — so training sees exactly what ``sample --cond``
  feeds. Each slot of each sample is emptied with probability ``condition_dropout``
  (default 0.3, the latent space's per-kind dropout), drawn from the step's generator
  (exact resume), so any subset of conditions works at sampling time.
- content: the artifact's content embeddings are used only when they are CLIP image
  features of the model's content width (768 for the release); the offline 64-d descriptor
  does not fit the released 768-d content adapter and is not used (zeros, as for an absent
  ``--content``). Text: always the empty prompt — the artifact's text embeddings are pooled
  vectors, while HSIGene's text path is the CLIP text model over prompt tokens.
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


# The latent space's per-kind condition dropout (every preset of diffusion/spaces/latent.py:
# 0.3); the release publishes no training code, so no HSIGene value exists to follow.
DEFAULT_CONDITION_DROPOUT = 0.3
# Columns of the per-sample keep draw: the six released local slots, then content.
KEEP_COLUMNS = 7


@dataclass
class FineTuneConfig:
    train: str = "adapters"
    steps: int = 1000
    lr: float = 1e-5  # CRS-Diff / ControlNet fine-tuning scale
    batch_size: int = 2
    seed: int = 0
    checkpoint_every: int = 200
    conditions: str | Path | None = None  # a conditions artifact of the dataset
    kinds: str | list | None = None  # default: every kind of ``conditions`` HSIGene takes
    condition_dropout: float | None = None  # default DEFAULT_CONDITION_DROPOUT


class TrainableParts(nn.Module):
    """The selected top-level children of the HSIGene model (shared, not copied)."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]):
        super().__init__()
        self.parts = nn.ModuleDict({name: getattr(model, name) for name in names})


def scene_tensors(dataset) -> tuple[np.ndarray, dict, np.ndarray]:
    """Training patches as the VAE's input range [-1, 1] (the inverse of the release's
    x·0.5 + 0.5), from one min–max over the dataset's physical values, and their patch
    indices in the dataset."""
    from ..artifacts.datasets import load_patches

    patches = load_patches(dataset)
    rows = np.arange(len(patches.hsi))
    if patches.split is not None and np.any(patches.split == "train"):
        rows = np.flatnonzero(patches.split == "train")
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
    return (phys - lo) / (hi - lo) * 2.0 - 1.0, {"min": lo, "max": hi, "maps_to": "[-1, 1]"}, rows


def dataset_wavelengths(dataset) -> list[float]:
    from ..artifacts import open_artifact

    return open_artifact(dataset, "hsi-dataset").spectral["wavelengths_nm"]


def parse_kinds(kinds) -> list[str] | None:
    """``--kinds`` for HSIGene: local map kinds with a released slot, and content."""
    from .generator import ALIASES, SLOTS

    if kinds is None:
        return None
    names = [k.strip().lower() for k in (kinds.split(",") if isinstance(kinds, str) else kinds) if k.strip()]
    names = [ALIASES.get(k, k) for k in names]
    if not names:
        raise ConfigError("--kinds is empty; name some of hed, seg, sketch, mlsd (and content)")
    if len(set(names)) != len(names):
        raise ConfigError(f"--kinds {','.join(names)} names a kind twice")
    if "text" in names:
        raise ConfigError(
            "--kinds text: HSIGene has no slot for a text embedding (its text is the CLIP text model "
            "over a prompt); drop text from --kinds"
        )
    unslotted = [k for k in names if k not in SLOTS and k != "content"]
    if unslotted:
        raise ConfigError(
            f"--kinds {', '.join(unslotted)}: no released HSIGene slot; its local slots take "
            f"{', '.join(SLOTS)} (and content its content adapter)"
        )
    return names


@dataclass
class PairedConditions:
    """Each training patch's condition maps (row r = patch ``rows[r]``) and, when usable, its
    content embedding; ``slots`` builds a batch's local input through the sampler's
    ``local_slots``."""

    maps: dict  # kind → (N, 1|3, S, S) float32 torch tensors in [0, 1]
    content: torch.Tensor | None  # (N, content_dim) or None
    kinds: list
    recorded: dict

    def slots(self, cfg, idx: torch.Tensor, size: int) -> torch.Tensor:
        from .generator import local_slots

        return local_slots(cfg, {k: v[idx] for k, v in self.maps.items()}, size)


def paired_conditions(path, dataset, rows: np.ndarray, size: int, kinds, mcfg, dropout: float) -> PairedConditions:
    """Read and check ``--conditions`` for the training patches ``rows`` before anything is
    written: of this dataset (by hash), every patch present, every ``--kinds`` kind held."""
    import json

    from ..artifacts import open_artifact
    from ..diffusion.spaces.latent import conditions_from_artifact
    from .generator import SLOTS

    art = open_artifact(path, "conditions", role="--conditions")
    held = json.loads(art.file("index.json").read_text())["kinds"]
    content_spec = art.config.get("kinds", {}).get("content", {})
    content_fits = content_spec.get("backend") == "clip" and int(held.get("content", {}).get("dim", -1)) == int(
        mcfg.content_dim
    )
    if kinds is None:
        kinds = [k for k in SLOTS if k in held] + (["content"] if "content" in held and content_fits else [])
        if not kinds:
            raise InputError(
                f"--conditions {path} holds {', '.join(held) or 'no kinds'}, none of which HSIGene takes "
                f"(local maps {', '.join(SLOTS)}; content as {mcfg.content_dim}-d CLIP image features)"
            )
        if "content" in held and not content_fits:
            log.info(
                f"train-diffusion: {path}'s content ({content_spec.get('backend', '?')}, "
                f"{held['content'].get('dim')}-d) does not fit HSIGene's {mcfg.content_dim}-d CLIP content "
                "adapter; content stays zero"
            )
    maps, embeddings, _settings = conditions_from_artifact(Path(path), Path(dataset), rows, size, kinds)
    if "content" in kinds and not content_fits:
        raise InputError(
            f"--kinds content: {path} holds {content_spec.get('backend', '?')} content of "
            f"{held['content'].get('dim')} dimensions, but HSIGene's content adapter takes "
            f"{mcfg.content_dim}-d CLIP image features (the offline 64-d descriptor does not fit it); "
            "drop content from --kinds"
        )
    content = torch.from_numpy(embeddings["content"]).float() if "content" in kinds else None
    recorded = {
        "artifact": str(path),
        "kinds": list(kinds),
        "slots": {k: SLOTS[k] for k in kinds if k in SLOTS},
        "dropout": dropout,
        "dropout_unit": "each released slot (and content) of each sample, independently",
        "content": (
            {k: content_spec.get(k) for k in ("backend", "model", "dim", "normalised")}
            if content is not None
            else "zeros"
        ),
        "text": "empty prompt",
    }
    return PairedConditions({k: torch.from_numpy(v) for k, v in maps.items()}, content, list(kinds), recorded)


def denoising_loss(model, latents_mean, latents_std, encoded, batch: int, generator, idx=None) -> torch.Tensor:
    """ε-MSE at a uniform random t (ldm ddpm.py: q_sample then MSE against the noise);
    ``idx``: the batch's patches when the caller drew them (paired conditions)."""
    # All draws come from the Trainer's per-step CPU generator (exact resume), then move.
    dev = latents_mean.device
    n = latents_mean.shape[0]
    if idx is None:
        idx = torch.randint(0, n, (batch,), generator=generator)
    idx = idx.to(dev)
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


def keep_draws(batch: int, p: float, generator) -> torch.Tensor:
    """(batch, 7) 0/1: slot j (the six released local slots, then content) of each sample kept
    with probability 1 − p, independently, from the step's generator."""
    return (torch.rand((batch, KEEP_COLUMNS), generator=generator) >= p).float()


def conditioned_batch(mcfg, empty, paired: PairedConditions, idx, csize: int, p: float, generator):
    """The batch's conditions: its patches' maps in the released slots (the sampler's
    ``local_slots``), each slot and the content emptied with probability ``p``; the empty
    prompt and zero metadata as ``empty``."""
    from .generator import HSIGeneConditions

    keep = keep_draws(len(idx), p, generator)
    local = paired.slots(mcfg, idx, csize) * keep[:, :6].repeat_interleave(3, dim=1)[:, :, None, None]
    content = empty.content.expand(len(idx), -1)
    if paired.content is not None:
        content = paired.content[idx] * keep[:, 6:7]
    return HSIGeneConditions(local, empty.tokens, content, empty.metadata)


def check_config(cfg: FineTuneConfig) -> tuple[float, list | None]:
    """Refuse bad settings before anything is read; the condition dropout and ``--kinds``."""
    from ..training import distributed

    if distributed.world()[1] > 1:
        # The loop below calls the model itself, not the Trainer's DDP wrapper, and every rank would
        # write the artifact: refused rather than trained wrongly.
        raise ConfigError(
            "--architecture hsigene trains in one process: run it without torchrun / accelerate launch "
            "(hsigen's diffusers design trains under DDP: --architecture controlnet)"
        )
    if cfg.train not in TRAINABLE:  # (the CLI offers only these; a direct call may not)
        raise ConfigError(f"--train {cfg.train!r}: choose adapters, unet or all")
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise ConfigError("--steps and --batch-size must be at least 1")
    if cfg.conditions is None and (cfg.kinds is not None or cfg.condition_dropout is not None):
        raise ConfigError(
            "--kinds and --condition-dropout choose how --conditions C is used: add --conditions "
            "(a conditions artifact of --dataset, `hsigen condition DATASET --kinds hed,seg --out C`)"
        )
    dropout = DEFAULT_CONDITION_DROPOUT if cfg.condition_dropout is None else float(cfg.condition_dropout)
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"--condition-dropout {dropout} must be in [0, 1)")
    return dropout, parse_kinds(cfg.kinds)


def check_patch_size(mcfg, size: int, dataset) -> None:
    """Patches must halve through the VAE (factor f) and then through every UNet level."""
    halvings = 2 ** (len(mcfg.channel_mult) - 1)
    multiple = mcfg.vae.factor * halvings
    if size % multiple:
        raise InputError(
            f"{dataset}: patch size {size} must be a multiple of {multiple} for HSIGene (its VAE's factor "
            f"{mcfg.vae.factor} × {halvings} for the UNet's {len(mcfg.channel_mult) - 1} halvings); re-ingest "
            f"with --size a multiple of {multiple}"
        )


def training_record(cfg: FineTuneConfig, scaling: dict, paired: PairedConditions | None) -> dict:
    return {
        "train": cfg.train,
        "steps": cfg.steps,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "scaling": scaling,
        "conditions": "none (empty slots, empty prompt)" if paired is None else paired.recorded,
    }


@dataclass
class Run:
    """One training run of an HSIGene model: what fine-tuning an import and training from scratch
    (``scratch.py``) share. ``build()`` makes the model on the device (called only when there is
    work to do); its VAE and CLIP text model stay frozen, ``cfg.train`` selects what learns."""

    build: object  # () -> HSIGene on the device
    mcfg: object  # HSIGeneConfig
    data: np.ndarray  # (N, B, S, S) training patches in the VAE's [-1, 1]
    paired: PairedConditions | None
    dropout: float
    recorded: dict  # the manifest's config
    records: list  # the manifest's inputs (records[0]: what the model starts from)
    autoencoder: Path | None  # the autoencoder artifact copied into the model as autoencoder/
    spectral: dict  # the model's spectral block (its samples' units)
    description: str


def finetune(
    init, dataset, out: Path, cfg: FineTuneConfig, *, resume: bool = False, overwrite: bool = False, device: str = "cpu"
):
    from ..artifacts import input_record, open_artifact, spectral_block
    from ..common.runtime import resolve_device
    from .artifact import autoencoder_dir, is_hsigene, load_config, load_model, manifest_config

    dropout, kinds = check_config(cfg)
    art = open_artifact(init, "diffusion-model", role="--init")
    if not is_hsigene(art):
        raise ConfigError(f"--init {init} is not an HSIGene model; import one with `hsigen import hsigene CKPT`")
    data, scaling, rows = scene_tensors(dataset)
    dev = torch.device(resolve_device(device))
    mcfg = load_config(art)
    size = data.shape[-1]
    check_patch_size(mcfg, size, dataset)
    paired = None
    if cfg.conditions is not None:
        paired = paired_conditions(cfg.conditions, dataset, rows, size, kinds, mcfg, dropout)

    recorded = {
        **manifest_config(
            mcfg, size, art.config.get("clip_model"), art.config.get("content_encoder"), preset="finetune"
        ),
        "finetune": training_record(cfg, scaling, paired),
    }
    records = [input_record(init), input_record(dataset)]
    if paired is not None:
        records.append(input_record(cfg.conditions))
    run = Run(
        build=lambda: load_model(art, dev)[0],
        mcfg=mcfg,
        data=data,
        paired=paired,
        dropout=dropout,
        recorded=recorded,
        records=records,
        # The VAE is frozen: the init's autoencoder/ artifact is copied as it is (an init of the older
        # layout, without one, gets it written from the weights).
        autoencoder=autoencoder_dir(art),
        # Samples are x·0.5 + 0.5 of the [-1, 1] the patches were mapped to from [min, max] of the
        # dataset's physical values: the dataset's grid and units again.
        spectral=spectral_block(dataset_wavelengths(dataset), scaling["max"] - scaling["min"], scaling["min"]),
        description=f"train-diffusion (hsigene, {cfg.train})",
    )
    return train_run(run, out, cfg, dev, resume=resume, overwrite=overwrite)


def train_run(run: Run, out: Path, cfg: FineTuneConfig, dev, *, resume: bool = False, overwrite: bool = False):
    """Train ``run`` on the shared Trainer and write the diffusion-model artifact ``out``."""
    from ..artifacts import ArtifactWriter
    from ..training import Trainer, TrainSpec
    from .artifact import write_weights
    from .checkpoint import to_released_names
    from .generator import empty_conditions, encode_conditions

    mcfg, data, paired, dropout = run.mcfg, run.data, run.paired, run.dropout
    size = data.shape[-1]
    writer = ArtifactWriter(Path(out), "diffusion-model", "train-diffusion", run.recorded, run.records, overwrite)
    if writer.up_to_date():
        log.info("train-diffusion: up to date")
        return writer.artifact
    writer.check_destination()

    model = run.build()
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
    empty = empty_conditions(mcfg, size)  # every condition absent, as the release feeds it
    csize = empty.local.shape[-1]

    def loss_fn(_wrapped, step, generator):
        # The text adapter's dropout (global_adapter.py L38-L39: 0.1, 0.3) draws from torch's global
        # RNG: seed it from the step's generator so a resumed run replays the same masks.
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        # The constants pass through the trainable adapters, so they are recomputed with grads
        # (the frozen CLIP text model makes no graph).
        if paired is None:
            encoded = encode_conditions(model, empty, cfg.batch_size)
            loss = denoising_loss(model, mean, std, encoded, cfg.batch_size, generator)
            return loss, {"loss": float(loss.detach())}
        idx = torch.randint(0, len(data), (cfg.batch_size,), generator=generator)
        c = conditioned_batch(mcfg, empty, paired, idx, csize, dropout, generator)
        encoded = encode_conditions(model, c, cfg.batch_size)
        loss = denoising_loss(model, mean, std, encoded, cfg.batch_size, generator, idx=idx)
        return loss, {"loss": float(loss.detach())}

    spec = TrainSpec(
        steps=cfg.steps,
        lr=cfg.lr,
        seed=cfg.seed,
        checkpoint_every=cfg.checkpoint_every,
        weight_decay=0.0,
        grad_clip=1.0,
    )
    fingerprint = {"config": writer.config, "inputs": [r["sha256"] for r in run.records]}
    trainer = Trainer(parts, spec, Path(out), dev, fingerprint, resume=resume, params=[p for p in parts.parameters()])
    history = trainer.fit(loss_fn, run.description)
    model.eval()
    released = to_released_names(model.state_dict(), model)
    with writer.building() as tmp:
        counts = write_weights(
            tmp, released, mcfg, inputs=[run.records[0]], sample_size=size, autoencoder=run.autoencoder
        )
        writer.spectral = run.spectral
        writer.metrics = {
            "final_loss": history[-1]["loss"] if history else None,
            "parameters": counts,
            "trained_parameters": sum(p.numel() for p in parts.parameters()),
        }
        writer.extra = {"history": history}
    trainer.cleanup()
    return writer.artifact
