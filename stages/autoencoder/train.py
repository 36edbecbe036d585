"""``train-ae``: an ``hsi-dataset`` → an ``autoencoder`` artifact.

Trains on the dataset's ``train`` split with the shared Trainer (AdamW + cosine, exact
``--resume``), measures held-out MPSNR / SAM on the ``val`` split before and after training
beside the PCA baseline of the same size, and writes the model (safetensors), a
``reconstructions.png`` and the manifest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, input_record, spectral_block
from ..common import log
from ..common.errors import ConfigError
from ..common.runtime import resolve_device, seed_everything
from .baseline import PCABaseline
from .config import KINDS, TrainAEConfig
from .data import AEData, class_index, load_training_data, random_batch
from .io import model_class
from .metrics import reconstruction_metrics
from .report import save_reconstructions

STAGE = "train-ae"


def _check_kind(cfg: TrainAEConfig) -> None:
    if cfg.kind not in KINDS:
        raise ConfigError(f"--kind {cfg.kind!r}: choose one of {', '.join(KINDS)}")
    if cfg.pairs is not None and cfg.kind != "two-stream":
        raise ConfigError("--pairs is for --kind two-stream (specdm §3.3 change-detection pairs)")
    if cfg.adversarial and cfg.kind != "vq-rgb":
        raise ConfigError("--adversarial is for --kind vq-rgb (hyperldm eq. 6 discriminators)")
    if cfg.library is not None and cfg.kind != "vq-rgb":
        raise ConfigError("--library is for --kind vq-rgb (its decoder mixes library spectra)")


def build_model(cfg: TrainAEConfig, data: AEData, library=None):
    train = data.train
    bands = train.hsi.shape[1]
    shift = float(train.offset / train.scale)
    cls = model_class(cfg.kind)
    if cfg.kind == "kl":
        return cls(bands, cfg.model, shift)
    if cfg.kind == "two-stream":
        return cls(bands, cfg.model, shift, classes=data.classes, pairs=cfg.pairs is not None)
    # t starts near mean physical spectrum / mean library spectrum, so t ⊙ (R A) starts in range.
    reference = train.physical().mean(axis=(0, 2, 3)) / np.maximum(library.spectra.mean(axis=0), 1e-3)
    return cls(bands, cfg.model, shift, library=library, wavelengths_nm=train.wavelengths_nm,
               scale=train.scale, offset=train.offset, adversarial=cfg.adversarial, reference=reference)


def _prepare(dataset, cfg: TrainAEConfig):
    _check_kind(cfg)
    data = load_training_data(dataset, cfg.kind, cfg.factor, cfg.pairs)
    library = None
    if cfg.kind == "vq-rgb":
        from .library import load_library

        library = load_library(cfg.library, data.train.wavelengths_nm)
    return data, library


def describe(dataset, cfg: TrainAEConfig) -> dict:
    """Parameter counts per part (``--dry-run``), without training."""
    data, library = _prepare(dataset, cfg)
    model = build_model(cfg, data, library)
    parts = model.parameter_counts()
    return {"kind": cfg.kind, "preset": cfg.preset, "parameters": parts, "total": int(sum(parts.values())),
            "downsampling_factor": cfg.factor, "latent_channels": model.latent_channels}


def _tensors(data: AEData, device):
    import torch

    t = {"hsi": torch.from_numpy(data.train.hsi).to(device)}
    if data.classes is not None:
        t["labels"] = torch.from_numpy(class_index(data.train.labels, data.classes)).to(device)
    if data.train_b is not None:
        t["hsi_b"] = torch.from_numpy(data.train_b.hsi).to(device)
    return t


def evaluate(model, data: AEData, device, batch: int) -> dict:
    """Held-out reconstruction metrics (and the reconstructions themselves)."""
    import torch

    held = data.heldout
    model.eval()
    recons, masks = [], []
    with torch.no_grad():
        for start in range(0, len(held.hsi), batch):
            hsi = torch.from_numpy(held.hsi[start:start + batch]).to(device)
            kw = {}
            if data.classes is not None:
                kw["labels"] = torch.from_numpy(class_index(held.labels[start:start + batch], data.classes)).to(device)
            out = model.reconstruct(hsi, **kw)
            if isinstance(out, tuple):
                out, mask = out
                masks.append(mask.cpu().numpy())
            recons.append(out.float().cpu().numpy())
    model.train()
    recon = np.concatenate(recons)
    metrics = reconstruction_metrics(held.hsi, recon, held.scale, held.offset)
    result = {"metrics": metrics, "recon": recon}
    if masks:
        predicted = np.asarray(data.classes)[np.concatenate(masks)]
        result["masks"] = predicted
        result["metrics"]["mask_pixel_accuracy"] = float(np.mean(predicted == held.labels))
    return result


def run(dataset, out, cfg: TrainAEConfig, device: str = "auto", resume: bool = False, overwrite: bool = False):
    import torch

    from ..training import TrainSpec, Trainer, count_parameters

    out = Path(out)
    data, library = _prepare(dataset, cfg)
    inputs = [input_record(dataset)]
    if cfg.pairs is not None:
        inputs.append(input_record(cfg.pairs))
    if library is not None and library.path is not None:
        inputs.append(input_record(library.path))
    config = cfg.to_dict()
    writer = ArtifactWriter(out, "autoencoder", STAGE, config, inputs, overwrite=overwrite)
    if writer.up_to_date():
        log.info(f"{STAGE}: up to date")
        return writer.artifact
    writer.check_destination()                     # fail before training, not after

    dev = resolve_device(device)
    seed_everything(cfg.seed)
    model = build_model(cfg, data, library).to(dev)
    log.info(f"{STAGE}: --kind {cfg.kind} --preset {cfg.preset}: {count_parameters(model):,} parameters, "
             f"f={cfg.factor}, {len(data.train.hsi)} training / {len(data.heldout.hsi)} held-out "
             f"({data.heldout_split}) patches")
    before = evaluate(model, data, dev, cfg.eval_batch)["metrics"]

    m = cfg.model
    spec = TrainSpec(steps=cfg.steps, lr=float(m["lr"]), seed=cfg.seed, warmup_steps=int(m.get("warmup_steps", 0)),
                     checkpoint_every=cfg.checkpoint_every)
    fingerprint = {"inputs": [i["sha256"] for i in inputs], "config": config}
    trainer = Trainer(model, spec, out, dev, fingerprint, resume=resume)
    arrays = _tensors(data, dev)
    names = list(arrays)

    def loss_fn(wrapped, step, generator):
        batch = dict(zip(names, random_batch(generator, [arrays[k] for k in names], int(m["batch_size"]),
                                             int(m["crop"]))))
        return wrapped(generator=generator, step=step, **batch)

    history = trainer.fit(loss_fn, description=f"train-ae {cfg.kind}")

    model.eval()
    with torch.no_grad():
        calib = [arrays["hsi"][i:i + cfg.eval_batch] for i in range(0, len(arrays["hsi"]), cfg.eval_batch)]
        extra_calib = {k: [arrays[k][i:i + cfg.eval_batch] for i in range(0, len(arrays[k]), cfg.eval_batch)]
                       for k in names if k != "hsi"}
        scaling = model.calibrate(calib, **extra_calib)
    after = evaluate(model, data, dev, cfg.eval_batch)

    baseline = PCABaseline.fit(data.train.hsi, model.latent_channels, cfg.factor)
    base_metrics = reconstruction_metrics(data.heldout.hsi, baseline.reconstruct(data.heldout.hsi),
                                          data.heldout.scale, data.heldout.offset)
    metrics = {
        "heldout_split": data.heldout_split, "heldout_patches": int(len(data.heldout.hsi)),
        "mpsnr_db": after["metrics"]["mpsnr_db"], "sam_deg": after["metrics"]["sam_deg"],
        "mpsnr_db_step0": before["mpsnr_db"], "sam_deg_step0": before["sam_deg"],
        "baseline_pca_mpsnr_db": base_metrics["mpsnr_db"], "baseline_pca_sam_deg": base_metrics["sam_deg"],
        "baseline_pca_components": model.latent_channels,
    }
    if "mask_pixel_accuracy" in after["metrics"]:
        metrics["mask_pixel_accuracy"] = after["metrics"]["mask_pixel_accuracy"]
        metrics["mask_pixel_accuracy_step0"] = before["mask_pixel_accuracy"]
    metrics.update(model.extra_metrics(arrays, cfg.eval_batch))
    log.info(f"{STAGE}: held-out MPSNR {metrics['mpsnr_db']:.2f} dB, SAM {metrics['sam_deg']:.2f}° "
             f"(step 0: {before['mpsnr_db']:.2f} dB / {before['sam_deg']:.2f}°; PCA baseline "
             f"{base_metrics['mpsnr_db']:.2f} dB / {base_metrics['sam_deg']:.2f}°)")

    with writer.building() as tmp:
        model.save(tmp)
        save_reconstructions(
            tmp / "reconstructions.png", data.heldout.hsi, after["recon"], data.heldout.wavelengths_nm,
            data.heldout.scale, data.heldout.offset,
            f"train-ae {cfg.kind} ({cfg.preset}, {cfg.steps} steps): held-out MPSNR {metrics['mpsnr_db']:.2f} dB, "
            f"SAM {metrics['sam_deg']:.2f}° | PCA {base_metrics['mpsnr_db']:.2f} dB, {base_metrics['sam_deg']:.2f}°",
            masks=(data.heldout.labels, after["masks"]) if "masks" in after else None)
        writer.spectral = spectral_block(data.train.wavelengths_nm, data.train.scale, data.train.offset)
        writer.metrics = metrics
        size = data.train.hsi.shape[-1]
        writer.extra = {"autoencoder": {
            "kind": cfg.kind, "downsampling_factor": cfg.factor, "latent_channels": model.latent_channels,
            "scaling_factor": scaling, "parameters": model.parameter_counts(),
            "latent_shape_per_patch": [model.latent_channels, size // cfg.factor, size // cfg.factor],
            **model.manifest_extra()},
            "training": {"steps": cfg.steps, "history": history}}
    trainer.cleanup()
    return writer.artifact
