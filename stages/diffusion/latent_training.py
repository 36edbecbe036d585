"""``train-diffusion --space latent``: HSIGene's controllable latent diffusion (Pang et al., HSIGene, arXiv:2409.12470 §3.2,
eqs. 1 and 3) and HyperLDM's RGB-conditioned mode (Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-C, eqs. 21-24).

The artifact (a ``diffusion-model``, see ``model.py`` for the shared part):

    unet/          diffusers UNet2DConditionModel (save_pretrained)
    controlnet/    diffusers ControlNetModel (save_pretrained)
    adapters.safetensors   global-condition projections, null tokens, RGB encoder (HyperLDM)
    scheduler/     the training DDPMScheduler
    autoencoder/   a copy of the autoencoder artifact that decodes the latents
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, input_record
from ..common import log
from ..common.errors import ConfigError
from ..common.runtime import resolve_device, seed_everything
from .latent_model import ADAPTERS_FILE, CONTROLNET_DIR
from .model import SCHEDULER_DIR, UNET_DIR, check_unet_config, warn_if_narrow
from .schedules import noised_sample

DRY_RUN_GLOBAL_DIMS = {"content": 64, "text": 4}  # the offline descriptors' sizes


def check_options(model_cfg: dict) -> None:
    if model_cfg["batch_size"] < 1 or model_cfg["steps"] < 1 or model_cfg.get("grad_accum", 1) < 1:
        raise ConfigError("--steps, --batch-size and --grad-accum must be at least 1")
    for key, flag in (("condition_dropout", "--condition-dropout"), ("drop_all", "--drop-all")):
        if not 0.0 <= float(model_cfg[key]) < 1.0:
            raise ConfigError(f"{flag} {model_cfg[key]} must be in [0, 1)")
    if float(model_cfg["ssim_weight"]) < 0:
        raise ConfigError("--ssim-weight must be >= 0")
    if model_cfg.get("sigma_data") is not None:
        if float(model_cfg["sigma_data"]) <= 0:
            raise ConfigError(f"sigma_data {model_cfg['sigma_data']} must be > 0 (or null: no preconditioning)")
        if model_cfg["prediction_type"] != "sample" or model_cfg.get("snr_gamma") is not None:
            raise ConfigError(
                "sigma_data (EDM preconditioning) needs --prediction sample and no snr_gamma: it sets both "
                "the output and the loss weighting"
            )


def dry_run(inputs: dict, model_cfg: dict, preset: str) -> dict:
    """Parameter counts without data: the UNet, the ControlNet and the adapters are built on
    PyTorch's meta device (no memory), for the AE's latent shape when one is given."""
    import torch

    from .control import ControlledDenoiser

    # Without an autoencoder: HSIGene's 4 latent channels, HyperLDM's n_x = 16 (Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-D), f = 4.
    channels, factor = (16 if model_cfg["rgb_condition"] else 4), 4
    if inputs.get("autoencoder") is not None:
        from ..artifacts import open_artifact

        info = open_artifact(inputs["autoencoder"], "autoencoder").manifest.get("autoencoder", {})
        channels, factor = int(info.get("latent_channels", 4)), int(info.get("downsampling_factor", 4))
    check_unet_config(model_cfg["unet"], head_size=False)
    with torch.device("meta"):
        model = ControlledDenoiser.build(
            model_cfg, channels, 8, factor, DRY_RUN_GLOBAL_DIMS, bool(model_cfg["rgb_condition"])
        )
    return {
        "model": "latent diffusion" + (" (HyperLDM RGB mode)" if model_cfg["rgb_condition"] else ""),
        "preset": preset,
        "parameters": model.parameter_counts(),
        "latent_channels": channels,
        "downsampling_factor": factor,
        "diffusion_steps": model_cfg["schedule"]["num_train_timesteps"],
        "training_steps": model_cfg["steps"],
    }


def ssim_loss(x0_hat, x0):
    """Liu et al., HyperLDM, IEEE TGRS 61 (2023) eq. 23: 1 − SSIM(x̃_0, x_0) on latents (torchmetrics' Gaussian-window SSIM,
    window shrunk to fit small latents; data range from the clean batch)."""
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    size = min(x0.shape[-2:])
    kernel = min(11, size if size % 2 else size - 1)
    data_range = float((x0.max() - x0.min()).clamp_min(1e-6))
    return 1.0 - ssim(x0_hat.float(), x0.float(), data_range=data_range, kernel_size=kernel, sigma=1.5)


def min_snr_weights(scheduler, t, prediction: str, gamma: float):
    """Min-SNR-γ loss weights (Hang et al., "Efficient Diffusion Training via Min-SNR Weighting
    Strategy", ICCV 2023, eq. 9 and §3.4): min(SNR(t), γ) on the x_0 error, expressed for the
    prediction type's own target (÷ SNR for ε, ÷ (SNR + 1) for v)."""
    a = scheduler.alphas_cumprod.to(t.device)[t].float()
    snr = a / (1 - a)
    clipped = snr.clamp(max=float(gamma))
    if prediction == "epsilon":
        return clipped / snr
    if prediction == "v_prediction":
        return clipped / (snr + 1)
    return clipped


def denoising_loss(
    model, x0, cond, g, scheduler, lam: float, device, snr_gamma: float | None = None, sigma_data: float | None = None
):
    """Pang et al., HSIGene, arXiv:2409.12470 eq. 3 (MSE between the added and the predicted noise) plus, in HyperLDM mode,
    λ3·L_ssim (Liu et al., HyperLDM, IEEE TGRS 61 (2023) eq. 24); ``snr_gamma``: Min-SNR-γ weighting
    of that MSE over t (``min_snr_weights``), None = every t alike; ``sigma_data``: the model is
    EDM-preconditioned (precondition.py) and the x0 error gets EDM's weights instead."""
    import torch

    prediction = scheduler.config.prediction_type
    xt, t, target = noised_sample(scheduler, x0, g, device)
    pred = model(xt, t, cond)
    if snr_gamma is None and sigma_data is None:
        mse = torch.nn.functional.mse_loss(pred.float(), target.float())
    else:
        per_sample = (pred.float() - target.float()).pow(2).mean(dim=(1, 2, 3))
        if sigma_data is not None:
            from .precondition import loss_weights

            weights = loss_weights(scheduler.alphas_cumprod.to(t.device)[t], sigma_data)
        else:
            weights = min_snr_weights(scheduler, t, prediction, snr_gamma)
        mse = (per_sample * weights.to(per_sample.device)).mean()
    logs = {"loss": float(mse.detach())}
    loss = mse
    if lam > 0:
        a = scheduler.alphas_cumprod.to(device)[t].view(-1, 1, 1, 1)
        if prediction == "epsilon":  # Liu et al., HyperLDM, IEEE TGRS 61 (2023) eq. 22 (with ᾱ_t): x̃_0 from ε_θ
            x0_hat = (xt - (1 - a).sqrt() * pred) / a.sqrt()
        elif prediction == "v_prediction":
            x0_hat = a.sqrt() * xt - (1 - a).sqrt() * pred
        else:
            x0_hat = pred
        structural = ssim_loss(x0_hat, x0)
        loss = mse + lam * structural
        logs["ssim_loss"] = float(structural.detach())
    return loss, logs


def latent_loss_fn(tensors: dict, available, scheduler, model_cfg: dict, device):
    """``loss_fn(model, step, generator)`` for the shared Trainer on in-memory latents. Batch,
    dropout, noise and t are all drawn from the step's generator (exact resume)."""
    import torch

    from .control import ConditionBatch, drop_conditions

    batch = int(model_cfg["batch_size"])
    p, p_all = float(model_cfg["condition_dropout"]), float(model_cfg["drop_all"])
    lam = float(model_cfg["ssim_weight"])
    gamma, sigma_data = model_cfg.get("snr_gamma"), model_cfg.get("sigma_data")
    latents, maps = tensors["latents"], tensors["maps"]

    def loss_fn(model, step, g):
        idx = torch.randint(0, len(latents), (batch,), generator=g).to(device)
        x0 = latents[idx]
        keep = drop_conditions(available, batch, p, p_all, g).to(device)
        cond = ConditionBatch(
            maps[idx],
            keep,
            {k: v[idx] for k, v in tensors["embeddings"].items()},
            tensors["rgb"][idx] if tensors["rgb"] is not None else None,
        )
        return denoising_loss(model, x0, cond, g, scheduler, lam, device, gamma, sigma_data)

    return loss_fn


def streamed_loss_fn(available, scheduler, model_cfg: dict, device, size: int, standardisation: dict | None = None):
    """``loss_fn(model, step, generator, batch)`` on batches from the streamed caches
    (``stages.data.latent``): the batch comes from the plan, dropout / noise / t from the generator.
    ``standardisation``: per-channel latent statistics (channel_norm.py) applied to each batch."""
    import torch

    from .channel_norm import torch_affine
    from .control import LOCAL_MAP_CHANNELS, ConditionBatch, drop_conditions

    p, p_all = float(model_cfg["condition_dropout"]), float(model_cfg["drop_all"])
    lam = float(model_cfg["ssim_weight"])
    gamma, sigma_data = model_cfg.get("snr_gamma"), model_cfg.get("sigma_data")
    shift, scale = torch_affine(standardisation, device) if standardisation is not None else (None, None)

    def loss_fn(model, step, g, batch):
        x0 = batch["latents"].to(device, non_blocking=True)
        if shift is not None:
            x0 = (x0 - shift) / scale
        n = len(x0)
        maps = batch.get("maps")
        maps = (
            torch.zeros((n, LOCAL_MAP_CHANNELS, size, size), device=device)
            if maps is None
            else maps.to(device, non_blocking=True)
        )
        keep = drop_conditions(available, n, p, p_all, g).to(device)
        cond = ConditionBatch(maps, keep, {k: v.to(device) for k, v in batch["embeddings"].items()}, None)
        return denoising_loss(model, x0, cond, g, scheduler, lam, device, gamma, sigma_data)

    return loss_fn


def weights_digest(state: dict) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def ranks_agree(digest: str) -> bool | None:
    """Under DDP: whether every rank ended with the same weights (None on a single process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, digest)
    return len(set(gathered)) == 1


def _one(dataset):
    return dataset[0] if isinstance(dataset, (list, tuple)) and len(dataset) == 1 else dataset


def wants_stream(inputs: dict, cfg) -> bool:
    """``--loader``: memory (one dataset, in-memory latents), stream (on-disk caches), auto
    (stream several sources, or one whose training patches exceed 512 MiB)."""
    from ..autoencoder.data import choose_loader
    from ..data import open_corpus

    if inputs.get("dataset") is None or inputs.get("autoencoder") is None:
        raise ConfigError("--space latent needs --autoencoder AE and --dataset DATASET")
    corpus = open_corpus(inputs["dataset"])
    if cfg.loader == "auto" and corpus.single and (inputs.get("conditions") or cfg.model.get("rgb_condition")):
        return False  # a conditions artifact / HyperLDM's RGB mode: the in-memory path
    return choose_loader(corpus, cfg.loader, None)


def streamed_batches(data, spec, trainer, device, workers: int, batch: int):
    """Fill the caches for every step still to run (rank 0), then micro-step → DataLoader."""
    from ..data.stream import loader
    from ..training import distributed

    plan = data.plan(spec.seed, batch, trainer.world_size)
    total = spec.steps * spec.grad_accum
    if distributed.is_main_process():
        data.fill(plan, trainer.step * spec.grad_accum, total, device)
    distributed.barrier()
    return lambda first: loader(data.step_batches(plan, trainer.rank, first, total), device, workers)


def train_latent(
    inputs: dict,
    out: Path | None,
    cfg,
    *,
    prepare,
    overwrite: bool = False,
    resume: bool = False,
    dry_run_only: bool = False,
):
    """``cfg``: a ``DiffusionTrainConfig`` with ``space == "latent"`` (its schedule already
    switched for HyperLDM mode); ``prepare(inputs, model_cfg, device) -> LatentData`` is the
    space's data preparation (``spaces.latent.prepare_latent``, passed in so that this module
    does not import the space back)."""
    import torch

    from ..training import Trainer, TrainSpec, count_parameters, distributed, save_weights
    from .control import ControlledDenoiser
    from .schedules import training_scheduler

    model_cfg = cfg.model
    check_options(model_cfg)
    if dry_run_only:
        return dry_run(inputs, model_cfg, cfg.preset)
    if out is None:
        raise ConfigError("--out is required: name the diffusion-model directory to write")

    device = resolve_device(cfg.device)
    streamed = wants_stream(inputs, cfg)
    if streamed:
        from ..data.latent import prepare_latent_corpus

        data = prepare_latent_corpus(inputs, model_cfg, device, cfg.seed)
        (channels, h, w), m = data.latent_shape, data.space_config["training_patches"]
        global_dims = dict(data.global_dims)
    else:
        data = prepare({**inputs, "dataset": _one(inputs.get("dataset"))}, model_cfg, device)
        m, channels, h, w = data.latents.shape
        global_dims = {k: int(v.shape[1]) for k, v in data.embeddings.items()}
    cfg.loader = "stream" if streamed else "memory"
    factor = 2 ** (len(model_cfg["unet"]["block_out_channels"]) - 1)
    if h % factor:
        halvings = len(model_cfg["unet"]["block_out_channels"]) - 1
        raise ConfigError(
            f"the {cfg.preset} UNet halves the latent size {halvings} "
            f"times: the {h}×{w} latents need patches a multiple of {factor * data.factor} pixels"
        )
    recorded = {
        **cfg.recorded(),
        "sample_size": h,
        "channels": channels,
        "normalisation": {
            "latents": "autoencoder encode() (scaled by its scaling_factor)",
            "images": "per-source min/max (each dataset's own scale/offset, stages.data.corpus)",
        },
        "global_dims": global_dims,
        **data.space_config,
    }
    records = [input_record(p) for p in data.inputs]
    writer = ArtifactWriter(out, "diffusion-model", "train-diffusion", recorded, records, overwrite)
    if writer.up_to_date():
        log.info("train-diffusion: up to date")
        return writer.artifact
    writer.check_destination()

    seed_everything(cfg.seed)
    check_unet_config(model_cfg["unet"], head_size=False)
    warn_if_narrow(model_cfg["unet"], channels)
    model = ControlledDenoiser.build(model_cfg, channels, h, data.factor, global_dims, bool(model_cfg["rgb_condition"]))
    scheduler = training_scheduler(model_cfg["schedule"], model_cfg["prediction_type"])
    if streamed:
        loss_fn = streamed_loss_fn(
            torch.from_numpy(data.available),
            scheduler,
            model_cfg,
            device,
            data.size,
            data.space_config.get("latent_standardisation"),
        )
    else:
        as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        tensors = {
            "latents": as_tensor(data.latents),
            "maps": as_tensor(data.maps),
            "embeddings": {k: as_tensor(v) for k, v in data.embeddings.items()},
            "rgb": as_tensor(data.rgb) if data.rgb is not None else None,
        }
        loss_fn = latent_loss_fn(tensors, torch.from_numpy(data.available), scheduler, model_cfg, device)
    spec = TrainSpec(
        steps=int(model_cfg["steps"]),
        lr=float(model_cfg["lr"]),
        seed=cfg.seed,
        warmup_steps=int(model_cfg.get("warmup_steps", 0)),
        ema_decay=model_cfg.get("ema_decay"),
        grad_accum=int(model_cfg.get("grad_accum", 1)),
        checkpoint_every=cfg.checkpoint_every,
    )
    fingerprint = {"config": recorded, "inputs": [r["sha256"] for r in records]}
    counts = model.parameter_counts()
    log.info(
        f"train-diffusion (latent): UNet {counts['unet']:,} + ControlNet {counts['controlnet']:,} parameters; "
        f"{m} training latents {channels}×{h}×{w}; conditions "
        f"{', '.join(data.space_config['conditions']['local'] + list(global_dims)) or 'none'}; "
        f"{spec.steps} steps on {device}"
    )
    trainer = Trainer(model, spec, out, device, fingerprint, resume=resume, performance=cfg.performance())
    batches = (
        streamed_batches(data, spec, trainer, device, cfg.workers, int(model_cfg["batch_size"])) if streamed else None
    )
    history = trainer.fit(loss_fn, "train-diffusion latent", batches=batches)
    model.load_state_dict(trainer.final_state())
    agree = ranks_agree(weights_digest(model.state_dict()))
    if not distributed.is_main_process():
        distributed.barrier()
        return None

    with writer.building() as tmp:
        model.unet.save_pretrained(str(tmp / UNET_DIR), safe_serialization=True)
        model.controlnet.save_pretrained(str(tmp / CONTROLNET_DIR), safe_serialization=True)
        save_weights(model.adapter_state(), tmp / ADAPTERS_FILE)
        scheduler.save_pretrained(str(tmp / SCHEDULER_DIR))
        data.write_files(tmp)
        writer.spectral = data.spectral
        writer.metrics = {
            "final_loss": history[-1]["loss"] if history else None,
            "parameters": count_parameters(model),
            "parameter_counts": counts,
            **({"ddp_world_size": trainer.world_size, "ddp_ranks_identical": agree} if agree is not None else {}),
        }
        writer.extra = {
            "history": history,
            "data_wait_share": trainer.data_wait_share(),
            "fit_seconds": round(trainer.elapsed_s, 3),
            "loader_start_seconds": round(trainer.loader_start_s, 3),
            **({"normalisation": data.space_config["corpus_normalisation"]} if streamed else {}),
        }
    trainer.cleanup()
    distributed.barrier()
    return writer.artifact
