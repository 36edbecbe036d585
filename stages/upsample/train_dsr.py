"""``upsample train-dsr``: train DSRNet (Pang et al., HSIGene, arXiv:2409.12470 §3.3.2, §4.1.2) on high-resolution RGB
images and write an ``sr-model`` that holds everything sampling needs.

Training data: any mix of PNG/JPEG/GeoTIFF files, directories of them, and ``hsi-dataset``
artifacts (their bands nearest 640/550/470 nm with one 2 % stretch per dataset), read by the
conditions stage's ``read_sources``. Patches in a dataset's ``val`` split are held out for the
evaluation; everything else trains. A training pair is a random ``crop`` (random orientation
of the 8) as the HR target and its documented degradation (``degrade.py``: Gaussian blur +
bicubic downsampling) as the LR condition.

Two phases, one command:
1. the RGB autoencoder (HSIGene's KL VAE, ``stages.autoencoder.kl``, with 3 channels): L1 +
   0.1·SAD (colour angle) + KL, ``--ae-steps``; its latents are then scaled to unit variance;
2. the denoiser (UNet + ControlNet + upsampling module), eq. 3's MSE on latents of the frozen
   autoencoder (of ε in ``paper``, of v in ``tiny``, see ``_presets``), ``--steps``.
The autoencoder trains here rather than in ``train-ae`` because ``train-ae`` models
hyperspectral datasets (B bands in a dataset's units), while DSRNet needs an autoencoder of
plain RGB images from any source; ``--autoencoder DSR`` reuses the autoencoder of an earlier
DSRNet instead (e.g. a ×4 model next to a ×2 one) and skips phase 1. Each phase runs in the
shared Trainer with its own work directory (``<out>.autoencoder.work``, ``<out>.work``), so
``--resume`` continues exactly in either phase.

Evaluation (held-out images): PSNR of the AE reconstruction; PSNR of DSRNet and of bicubic
against the HR image; PSNR of each result degraded again against the LR input (consistency);
per-channel mean and standard deviation of DSRNet's output and of the HR images.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, input_record
from ..common import log
from ..common.errors import ConfigError, InputError
from ..common.runtime import resolve_device, seed_everything
from ..training.presets import preset_table
from .degrade import SCALES, SIGMA_PER_SCALE, degrade
from .dsr import (
    ADAPTERS_FILE,
    AUTOENCODER_DIR,
    CONTROLNET_DIR,
    MODEL_JSON,
    SCHEDULER_DIR,
    UNET_DIR,
    DSRDenoiser,
    DSRModel,
    lr_multiple,
    rgb_to_unit,
    unet_downsampling,
    unit_to_uint8,
)
from .presets import DsrPreset


def _ae_preset(name: str, **overrides) -> dict:
    from ..autoencoder.config import PRESETS as AE_PRESETS

    return {**AE_PRESETS["kl"][name].to_dict(), **overrides}


def _ldm_preset(name: str) -> dict:
    from ..diffusion.spaces.latent import PRESETS as LDM_PRESETS

    return LDM_PRESETS[name].to_dict()


def _presets() -> dict[str, DsrPreset]:
    """``paper``: §4.1.2 'the same training strategy of the HSI synthesis model' — HSIGene's
    latent-diffusion sizes (SD 1.5 UNet + ControlNet, CLIP-width context, SD noise schedule,
    ε-prediction of eq. 3, AdamW 1e-5, batch 16, 100k iterations, 256 crops) and its VAE (f = 4).

    ``tiny`` (2 CPU cores, minutes): the tiny latent-diffusion UNet of ``train-diffusion`` on a
    small f = 2 VAE (16-32 channels), and v-prediction (Salimans & Ho 2022) instead of ε: after
    150 steps on Indian Pines ×2, a v-model's output degraded again matches the LR input at
    26.4 dB PSNR, an ε-model's at 14.2 dB (it has not yet learnt to follow the condition)."""
    tiny, paper = _ldm_preset("tiny"), _ldm_preset("paper")
    shared = ("unet", "cross_attention_dim", "conditioning_base", "schedule")
    # 4 latent channels of RGB (what the kl tiny preset had until issue 14 gave hyperspectral latents 16,
    # then 48 with the block linear path and the edge term — neither is for a 3-band image: kept off)
    small_vae = {
        "block_out_channels": [16, 32],
        "latent_channels": 4,
        "gradient_weight": 0.0,
        "linear_path": False,
        "linear_block": False,
        "norm_num_groups": 8,
        "lr": 3e-3,
        "warmup_steps": 10,
    }
    return preset_table(
        DsrPreset,
        {
            "tiny": {
                **{k: tiny[k] for k in shared},
                # 4 latent channels: the latent preset's full-resolution level at 32, as before it was made 96 wide
                # for 48 latent channels (issue 14)
                "unet": {**tiny["unet"], "block_out_channels": [32, 48, 48]},
                "ae": _ae_preset("tiny", steps=400, crop=32, **small_vae),
                "prediction_type": "v_prediction",
                "upsampler_width": 16,
                "crop": 32,
                "steps": 800,
                "batch_size": 8,
                "lr": 2e-3,
                "warmup_steps": 20,
                "ema_decay": 0.995,
                "sample_steps": 20,
                "eval_images": 16,
            },
            "paper": {
                **{k: paper[k] for k in shared},
                "ae": _ae_preset("paper", crop=256),
                "prediction_type": "epsilon",
                "upsampler_width": 64,
                "crop": 256,
                "steps": 100_000,
                "batch_size": 16,
                "lr": 1e-5,
                "warmup_steps": 0,
                "ema_decay": 0.9999,
                "sample_steps": 50,
                "eval_images": 100,
            },
        },
    )


PRESETS = _presets()


@dataclass
class DsrTrainConfig:
    scale: int
    preset: str
    net: dict  # resolved preset (the AE's under "ae")
    seed: int = 0
    checkpoint_every: int = 100
    autoencoder: str | None = None  # a DSRNet sr-model whose AE is reused (phase 1 skipped)
    degradation: dict = field(
        default_factory=lambda: {"blur": "gaussian", "sigma_per_scale": SIGMA_PER_SCALE, "downsample": "bicubic"}
    )

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class RgbImages:
    train: list  # (H, W, 3) uint8 each
    held_out: list
    held_out_split: str  # "val" (a dataset's val patches) or "train" (none held out)
    inputs: list
    sources: list


def _geometry(net: dict, scale: int) -> tuple[int, int, int]:
    """(AE factor f, HR multiple, crop) for a resolved preset."""
    factor = 2 ** (len(net["ae"]["block_out_channels"]) - 1)
    multiple = factor * unet_downsampling(net)
    return factor, multiple, int(net["crop"])


def check_config(cfg: DsrTrainConfig) -> None:
    if cfg.scale not in SCALES:
        raise ConfigError(f"--scale {cfg.scale}: DSRNet is trained for ×2 or ×4; use --scale 2 or --scale 4")
    net = cfg.net
    for key, flag in (("steps", "--steps"), ("batch_size", "--batch-size"), ("sample_steps", "--sample-steps")):
        if int(net[key]) < 1:
            raise ConfigError(f"{flag} must be at least 1")
    if cfg.autoencoder is None and int(net["ae"]["steps"]) < 1:
        raise ConfigError("--ae-steps must be at least 1 (or reuse a trained one with --autoencoder DSR)")
    _, multiple, crop = _geometry(net, cfg.scale)
    step = np.lcm(multiple, cfg.scale)
    if crop < step or crop % step:
        raise ConfigError(
            f"--crop {crop}: the {cfg.preset} DSRNet needs HR crops that are multiples of {step} "
            f"(AE factor × UNet downsampling, and the scale); "
            f"try --crop {max(step, crop - crop % step)}"
        )


def load_images(paths: list[Path], crop: int) -> RgbImages:
    """Every source as uint8 RGB; images smaller than ``crop`` are skipped with a warning."""
    from ..conditions.sources import read_sources

    sources = read_sources(paths)
    train = [im.rgb for im in sources.images if im.split != "val"]
    held_out = [im.rgb for im in sources.images if im.split == "val"]
    big = lambda ims: [im for im in ims if min(im.shape[:2]) >= crop]  # noqa: E731
    small = len(train) + len(held_out) - len(big(train)) - len(big(held_out))
    train, held_out = big(train), big(held_out)
    if small:
        log.warn(f"train-dsr: {small} image(s) smaller than the {crop}×{crop} crop are skipped")
    if not train:
        raise InputError(
            f"no training image is at least {crop}×{crop} pixels; give larger images or a smaller "
            f"--crop (a multiple of the model's size step)"
        )
    split = "val" if held_out else "train"
    return RgbImages(train, held_out, split, sources.inputs, sources.sources)


def random_crops(images: list, n: int, crop: int, generator) -> np.ndarray:
    """(n, 3, crop, crop) in [-1, 1]: random image, position and orientation (of 8), all drawn
    from ``generator`` (exact resume)."""
    import torch

    from ..diffusion.spaces.latent import dihedral

    picks = torch.randint(0, len(images), (n,), generator=generator).tolist()
    out = np.empty((n, 3, crop, crop), np.float32)
    for i, p in enumerate(picks):
        image = images[p]
        r0 = int(torch.randint(0, image.shape[0] - crop + 1, (1,), generator=generator))
        c0 = int(torch.randint(0, image.shape[1] - crop + 1, (1,), generator=generator))
        k = int(torch.randint(0, 8, (1,), generator=generator))
        out[i] = dihedral(rgb_to_unit(image[r0 : r0 + crop, c0 : c0 + crop]), k)
    return out


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    r0, c0 = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return rgb_to_unit(image[r0 : r0 + size, c0 : c0 + size])


def build_autoencoder(net: dict):
    from ..autoencoder.kl import KLAutoencoder

    # shift 1: SAD measures the colour angle of RGB in [0, 2] (values in [-1, 1] shifted)
    return KLAutoencoder(3, net["ae"], shift=1.0)


def parameter_counts(cfg: DsrTrainConfig) -> dict[str, int]:
    """Parameter counts of every part, built on PyTorch's meta device (no memory)."""
    import torch

    factor, _, crop = _geometry(cfg.net, cfg.scale)
    with torch.device("meta"):
        ae = build_autoencoder(cfg.net)
        denoiser = DSRDenoiser.build(cfg.net, int(cfg.net["ae"]["latent_channels"]), crop // factor, factor, cfg.scale)
    counts = {"autoencoder": sum(p.numel() for p in ae.parameters()), **denoiser.parameter_counts()}
    counts["total"] = sum(counts.values())
    return counts


def dry_run(cfg: DsrTrainConfig) -> dict:
    check_config(cfg)
    counts = parameter_counts(cfg)
    factor, _, crop = _geometry(cfg.net, cfg.scale)
    return {
        "model": "dsrnet",
        "preset": cfg.preset,
        "parameters": counts,
        "scale": cfg.scale,
        "latent_channels": cfg.net["ae"]["latent_channels"],
        "downsampling_factor": factor,
        "crop": crop,
        "autoencoder_steps": 0 if cfg.autoencoder else int(cfg.net["ae"]["steps"]),
        "training_steps": int(cfg.net["steps"]),
        "batch_size": cfg.net["batch_size"],
    }


def _reused_autoencoder(path: str, net: dict):
    """The RGB autoencoder of an earlier DSRNet (``--autoencoder``); it must match the preset's."""
    from .dsr import load_dsr

    earlier = load_dsr(path, "cpu", role="--autoencoder")
    arch = ("block_out_channels", "layers_per_block", "latent_channels", "norm_num_groups")
    if any(earlier.ae.cfg[k] != net["ae"][k] for k in arch):
        raise ConfigError(
            f"--autoencoder {path} has another autoencoder architecture than the {net['preset']} "
            "preset; use a DSRNet trained with the same --preset"
        )
    return earlier.ae


def train_autoencoder(
    ae, images: RgbImages, cfg: DsrTrainConfig, out: Path, device, fingerprint: dict, resume: bool
) -> tuple:
    """Phase 1 in its own Trainer (work dir ``<out>.autoencoder.work``). Its final state is
    checkpointed so a ``--resume`` during phase 2 does not repeat it."""
    from ..training import Trainer, TrainSpec

    net, ae_cfg = cfg.net, cfg.net["ae"]
    batch, crop = int(net["batch_size"]), int(net["crop"])

    def loss_fn(model, step, g):
        import torch

        x = torch.from_numpy(random_crops(images.train, batch, crop, g)).to(device)
        return model(x, generator=g)  # L1 + λ·SAD + KL (stages.autoencoder.kl)

    spec = TrainSpec(
        steps=int(ae_cfg["steps"]),
        lr=float(ae_cfg["lr"]),
        seed=cfg.seed,
        warmup_steps=int(ae_cfg.get("warmup_steps", 0)),
        checkpoint_every=cfg.checkpoint_every,
    )
    trainer = Trainer(
        ae, spec, Path(f"{out}.autoencoder"), device, {**fingerprint, "phase": "autoencoder"}, resume=resume
    )
    history = trainer.fit(loss_fn, "train-dsr autoencoder")
    trainer.save_checkpoint()
    return trainer, history


def calibrate(ae, images: list, crop: int, device, count: int = 64) -> float:
    """Stable Diffusion's latent scaling (1 / std of the posterior means) on centre crops."""
    import torch

    x = np.stack([centre_crop(im, crop) for im in images[:count]])
    batches = [torch.from_numpy(x[i : i + 16]).to(device) for i in range(0, len(x), 16)]
    with torch.no_grad():
        return ae.calibrate(batches)


def diffusion_loss_fn(ae, scheduler, images: RgbImages, cfg: DsrTrainConfig, device):
    """Pang et al., HSIGene, arXiv:2409.12470 eq. 3 (MSE to the scheduler's target: ε, or v in tiny) on the frozen
    autoencoder's latents of HR crops, with the LR crop as the condition."""
    import torch

    from ..diffusion.schedules import noised_sample

    batch, crop = int(cfg.net["batch_size"]), int(cfg.net["crop"])

    def loss_fn(model, step, g):
        hr = torch.from_numpy(random_crops(images.train, batch, crop, g)).to(device)
        z0 = ae.encode(hr)
        lr = degrade(hr, cfg.scale)
        xt, t, target = noised_sample(scheduler, z0, g, device)
        mse = torch.nn.functional.mse_loss(model(xt, t, lr).float(), target.float())
        return mse, {"loss": float(mse.detach())}

    return loss_fn


def evaluate(dsr: DSRModel, images: list, crop: int, steps: int, seed: int) -> tuple[dict, list]:
    """Held-out quality (in [0, 1] units, peak 1) on centre crops; returns (metrics, examples)."""
    import torch

    from ..spectral.quality import mpsnr
    from .dsr_guide import WindowedDSR
    from .rgan import upsample_bicubic

    s = dsr.scale
    size = crop - crop % int(np.lcm(dsr.multiple, s))
    hr = np.stack([centre_crop(im, size) for im in images])
    t_hr = torch.from_numpy(hr)
    lr = degrade(t_hr.double(), s).float()
    sr = []
    for i in range(len(hr)):
        windows = WindowedDSR(
            dsr,
            lr.shape[-2],
            lr.shape[-1],
            int(dsr.info["window_lr"]),
            int(dsr.info["overlap_lr"]),
            steps,
            "ddim",
            seed,
            item=i,
        )
        sr.append(windows(lr[i]))
    sr = torch.stack(sr)
    with torch.no_grad():
        recon = dsr.ae.reconstruct(t_hr.to(dsr.device)).float().cpu()
    bic = upsample_bicubic(lr, s)
    unit = lambda t: (t.double().numpy() + 1.0) / 2.0  # noqa: E731
    again = lambda t: degrade(t.double(), s)  # noqa: E731
    sr01, hr01 = unit(sr), unit(t_hr)
    metrics = {
        "eval_images": int(len(hr)),
        "eval_size": int(size),
        "sample_steps": int(steps),
        "ae_psnr": round(mpsnr(hr01, unit(recon)), 4),
        "dsr_psnr": round(mpsnr(hr01, sr01), 4),
        "bicubic_psnr": round(mpsnr(hr01, unit(bic)), 4),
        "dsr_lr_psnr": round(mpsnr(unit(lr), unit(again(sr))), 4),
        "bicubic_lr_psnr": round(mpsnr(unit(lr), unit(again(bic))), 4),
        "dsr_rgb_mean": [round(float(v), 5) for v in sr01.mean(axis=(0, 2, 3))],
        "hr_rgb_mean": [round(float(v), 5) for v in hr01.mean(axis=(0, 2, 3))],
        "dsr_rgb_std": [round(float(v), 5) for v in sr01.std(axis=(0, 2, 3))],
        "hr_rgb_std": [round(float(v), 5) for v in hr01.std(axis=(0, 2, 3))],
    }
    examples = [
        np.concatenate([unit_to_uint8(bic[i].numpy()), unit_to_uint8(sr[i].numpy()), unit_to_uint8(hr[i])], axis=1)
        for i in range(min(4, len(hr)))
    ]
    return metrics, examples


def expand_corpora(sources: list) -> list[Path]:
    """Corpus YAML files among the sources (``stages.data.corpus``) become their hsi-datasets.
    Every image trains equally often here, so a source ``weight:`` is refused; ``labels:`` maps
    do not matter to RGB super-resolution."""
    from ..data import open_corpus

    out = []
    for src in map(Path, sources):
        if not (src.is_file() and src.suffix.lower() in (".yaml", ".yml")):
            out.append(src)
            continue
        corpus = open_corpus([src])
        weighted = [str(s.path) for s in corpus.sources if s.weight is not None]
        if weighted:
            raise ConfigError(
                f"{src}: train-dsr samples every image equally; drop 'weight:' of {', '.join(weighted)} "
                "(or list the datasets directly)"
            )
        out += [s.path for s in corpus.sources]
    return out


def run(
    sources: list[Path],
    out: Path | None,
    cfg: DsrTrainConfig,
    *,
    device: str = "auto",
    overwrite: bool = False,
    resume: bool = False,
    dry_run_only: bool = False,
):
    from ..diffusion.schedules import training_scheduler
    from ..spectral import save_png
    from ..training import (
        Trainer,
        TrainSpec,
        count_parameters,
        distributed,
        save_weights,
    )

    check_config(cfg)
    if dry_run_only:
        return dry_run(cfg)
    if out is None:
        raise ConfigError("--out DIR is required (only --dry-run runs without it)")
    if not sources:
        raise InputError("give IMAGES_OR_DATASET: RGB image files, directories of them, or hsi-dataset artifacts")
    net = cfg.net
    factor, multiple, crop = _geometry(net, cfg.scale)
    images = load_images(expand_corpora(sources), crop)
    inputs = list(images.inputs) + ([input_record(cfg.autoencoder)] if cfg.autoencoder else [])
    reused = _reused_autoencoder(cfg.autoencoder, net) if cfg.autoencoder is not None else None
    writer = ArtifactWriter(out, "sr-model", "upsample train-dsr", cfg.to_json(), inputs, overwrite)
    if writer.up_to_date():
        log.info("upsample train-dsr: up to date")
        return writer.artifact
    writer.check_destination()
    dev = resolve_device(device)
    fingerprint = {"config": cfg.to_json(), "inputs": [r["sha256"] for r in inputs]}

    # Phase 1: the RGB autoencoder (or the one of an earlier DSRNet).
    seed_everything(cfg.seed)
    ae_trainer, ae_history = None, []
    if reused is not None:
        ae = reused
        scaling = float(ae.scaling_factor)
    else:
        ae = build_autoencoder(net)
        ae_trainer, ae_history = train_autoencoder(ae, images, cfg, out, dev, fingerprint, resume)
        ae.load_state_dict(ae_trainer.final_state())
        ae.eval()
        scaling = calibrate(ae, images.train, crop, dev)
    ae = ae.to(dev).eval()
    for p in ae.parameters():
        p.requires_grad_(False)

    # Phase 2: the denoiser on the frozen autoencoder's latents.
    seed_everything(cfg.seed + 1)
    channels = int(net["ae"]["latent_channels"])
    denoiser = DSRDenoiser.build(net, channels, crop // factor, factor, cfg.scale)
    scheduler = training_scheduler(net["schedule"], net["prediction_type"])
    spec = TrainSpec(
        steps=int(net["steps"]),
        lr=float(net["lr"]),
        seed=cfg.seed,
        warmup_steps=int(net.get("warmup_steps", 0)),
        ema_decay=net.get("ema_decay"),
        checkpoint_every=cfg.checkpoint_every,
    )
    counts = {"autoencoder": count_parameters(ae), **denoiser.parameter_counts()}
    log.info(
        f"train-dsr ×{cfg.scale}: {len(images.train)} training images, {len(images.held_out)} held out; "
        f"{', '.join(f'{k} {v:,}' for k, v in counts.items())} parameters; {spec.steps} steps on {dev}"
    )
    trainer = Trainer(denoiser, spec, out, dev, {**fingerprint, "phase": "denoiser"}, resume=resume)
    history = trainer.fit(diffusion_loss_fn(ae, scheduler, images, cfg, dev), f"train-dsr ×{cfg.scale}")
    denoiser.load_state_dict(trainer.final_state())
    denoiser.eval()
    if not distributed.is_main_process():  # under DDP, rank 0 evaluates and writes
        distributed.barrier()
        return None

    window = max(lr_multiple(multiple, cfg.scale), crop // cfg.scale)
    description = {
        "method": "dsr",
        "scale": cfg.scale,
        "factor": factor,
        "multiple": multiple,
        "latent_channels": channels,
        "latent_scaling_factor": scaling,
        "upsampler_width": int(net["upsampler_width"]),
        "arch": {k: net[k] for k in ("unet", "cross_attention_dim", "conditioning_base")},
        "autoencoder": {
            k: net["ae"][k] for k in ("block_out_channels", "layers_per_block", "latent_channels", "norm_num_groups")
        },
        "prediction_type": net["prediction_type"],
        "schedule": net["schedule"],
        "crop": crop,
        "sample_steps": int(net["sample_steps"]),
        "window_lr": window,
        "overlap_lr": (window // 2) - (window // 2) % lr_multiple(multiple, cfg.scale),
        "rgb": {"units": "[-1, 1] = uint8 / 127.5 - 1", "dataset_bands_nm": [640.0, 550.0, 470.0]},
        "degradation": cfg.degradation,
        "parameters": counts,
        "files": {
            "autoencoder": f"{AUTOENCODER_DIR}/",
            "unet": f"{UNET_DIR}/",
            "controlnet": f"{CONTROLNET_DIR}/",
            "adapters": ADAPTERS_FILE,
            "scheduler": f"{SCHEDULER_DIR}/",
        },
    }
    dsr = DSRModel(ae, denoiser, dict(scheduler.config), description)
    held_out = images.held_out or images.train
    metrics, examples = evaluate(dsr, held_out[: int(net["eval_images"])], crop, int(net["sample_steps"]), cfg.seed)
    metrics.update(
        {
            "eval_split": images.held_out_split,
            "training_images": len(images.train),
            "final_loss": history[-1]["loss"] if history else None,
            "final_ae_l1": ae_history[-1]["l1"] if ae_history else None,
        }
    )
    with writer.building() as tmp:
        (tmp / AUTOENCODER_DIR).mkdir()
        ae.save(tmp / AUTOENCODER_DIR)
        denoiser.unet.save_pretrained(str(tmp / UNET_DIR), safe_serialization=True)
        denoiser.controlnet.save_pretrained(str(tmp / CONTROLNET_DIR), safe_serialization=True)
        save_weights(denoiser.adapter_state(), tmp / ADAPTERS_FILE)
        scheduler.save_pretrained(str(tmp / SCHEDULER_DIR))
        (tmp / MODEL_JSON).write_text(json.dumps(description, indent=2) + "\n")
        save_png(tmp / "examples.png", np.concatenate(examples, axis=0))
        writer.metrics = metrics
        writer.extra = {
            "sr_model": description,
            "sources": images.sources,
            "history": {"autoencoder": ae_history, "denoiser": history},
        }
    trainer.cleanup()
    if ae_trainer is not None:
        ae_trainer.cleanup()
    distributed.barrier()
    log.info(
        f"upsample train-dsr: held-out PSNR DSRNet {metrics['dsr_psnr']:.2f} dB (bicubic "
        f"{metrics['bicubic_psnr']:.2f}, AE {metrics['ae_psnr']:.2f}); LR consistency "
        f"{metrics['dsr_lr_psnr']:.2f} dB (bicubic {metrics['bicubic_lr_psnr']:.2f})"
    )
    return writer.artifact
