"""``train-ae``: an ``hsi-dataset`` → an ``autoencoder`` artifact.

Trains on the dataset's ``train`` split with the shared Trainer (AdamW + cosine, exact
``--resume``), measures held-out MPSNR / SAM on the ``val`` split before and after training
beside the PCA baseline of the same size, and writes the model (safetensors), a
``reconstructions.png`` and the manifest.

Two-stream mask accuracy is reported over all held-out pixels and over the held-out pixels
whose class occurs in the training split: a class the mask branch never saw cannot be
reconstructed (on the embedded Indian Pines split, class 13 is 4.4 % of the val pixels and
absent from the train rows, which caps the all-pixel figure at 0.956).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, input_record, spectral_block
from ..common import log
from ..common.errors import ConfigError
from ..common.runtime import resolve_device, seed_everything
from .bandnorm import band_statistics
from .baseline import PCABaseline
from .config import KINDS, TrainAEConfig
from .data import AEData, class_index, load_training_data, random_batch, training_field
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


PCA_INIT_PATCHES = 4096  # patches the block linear path's PCA start is fitted on (spectral_path.py)


def _start_block_path(model, train):
    """A block linear path starts at the train patches' block PCA (spectral_path.fit_pca)."""
    if model.linear_path is not None and model.linear_path.block:
        model.linear_path.fit_pca(train.hsi[:PCA_INIT_PATCHES])
    return model


def build_model(cfg: TrainAEConfig, data: AEData, library=None):
    train = data.train
    bands = train.hsi.shape[1]
    shift = float(train.offset / train.scale)
    if cfg.kind == "hsigene-kl":  # a fresh released-layout VAE (hsigene_kl.py: its units and loss)
        from .hsigene_kl import HSIGeneKLTraining

        return HSIGeneKLTraining(bands, cfg.model, shift)
    cls = model_class(cfg.kind)
    stats = None
    if cfg.model.get("band_standardise") and cfg.kind in ("kl", "two-stream"):
        images = train.hsi if data.train_t2 is None else np.concatenate([train.hsi, data.train_t2.hsi])
        stats = band_statistics(images)
    if cfg.kind == "kl":
        return _start_block_path(cls(bands, cfg.model, shift, band_stats=stats), train)
    if cfg.kind == "two-stream":
        model = cls(bands, cfg.model, shift, classes=data.classes, pairs=cfg.pairs is not None, band_stats=stats)
        return _start_block_path(model, train)
    # t starts near mean physical spectrum / mean library spectrum, so t ⊙ (R A) starts in range.
    reference = train.physical().mean(axis=(0, 2, 3)) / np.maximum(library.spectra.mean(axis=0), 1e-3)
    return cls(
        bands,
        cfg.model,
        shift,
        library=library,
        wavelengths_nm=train.wavelengths_nm,
        scale=train.scale,
        offset=train.offset,
        adversarial=cfg.adversarial,
        reference=reference,
    )


def resolve_epochs(cfg: TrainAEConfig, train_patches: int) -> None:
    """``--epochs N``: steps = ceil(N · training patches / batch size), written into the config."""
    if cfg.epochs is None:
        return
    if cfg.epochs < 1:
        raise ConfigError("--epochs must be at least 1")
    cfg.model["steps"] = max(1, math.ceil(cfg.epochs * train_patches / int(cfg.model["batch_size"])))


def _prepare(dataset, cfg: TrainAEConfig):
    _check_kind(cfg)
    data = load_training_data(dataset, cfg.kind, cfg.factor, cfg.pairs, cfg.loader, cfg.seed)
    cfg.loader = data.loader  # record what "auto" chose
    resolve_epochs(cfg, data.train_patches)
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
    return {
        "kind": cfg.kind,
        "preset": cfg.preset,
        "parameters": parts,
        "total": int(sum(parts.values())),
        "downsampling_factor": cfg.factor,
        "latent_channels": model.latent_channels,
        "steps": cfg.steps,
        "batch_size": int(cfg.model["batch_size"]),
        "training_patches": data.train_patches,
        "loader": data.loader,
        "sources": [str(s.path) for s in data.corpus.sources],
    }


def _training_arrays(data: AEData) -> dict[str, np.ndarray]:
    """The training patches by the name the model's ``forward`` takes them."""
    arrays = {"hsi": data.train.hsi}
    if data.classes is not None:
        arrays["labels"] = class_index(data.train.labels, data.classes)
    if data.train_t2 is not None:
        arrays["hsi_t2"] = data.train_t2.hsi
    return arrays


def evaluate(model, data: AEData, device, batch: int, patches=None) -> dict:
    """Held-out reconstruction metrics (and the reconstructions themselves); ``patches``
    evaluates another PatchSet (the training patches) instead."""
    import torch

    held = data.heldout if patches is None else patches
    model.eval()
    recons, masks = [], []
    with torch.no_grad():
        for start in range(0, len(held.hsi), batch):
            hsi = torch.from_numpy(held.hsi[start : start + batch]).to(device)
            kw = {}
            if data.classes is not None:
                kw["labels"] = torch.from_numpy(class_index(held.labels[start : start + batch], data.classes)).to(
                    device
                )
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
        result["metrics"].update(mask_accuracy(predicted, held.labels, data.train.labels))
    return result


def mask_accuracy(predicted: np.ndarray, truth: np.ndarray, train_labels: np.ndarray) -> dict:
    """Pixel accuracy over all held-out pixels and over those of classes seen in training."""
    correct = predicted == truth
    seen = np.isin(truth, np.unique(train_labels))
    return {
        "mask_pixel_accuracy": float(correct.mean()),
        "mask_pixel_accuracy_seen_classes": float(correct[seen].mean()) if seen.any() else None,
        "mask_heldout_unseen_share": float(1.0 - seen.mean()),
        "mask_classes_unseen_in_training": sorted(int(v) for v in np.unique(truth[~seen])),
    }


def _streamed_batches(data: AEData, cfg: TrainAEConfig, trainer, dev, workers: int):
    """micro-step → DataLoader over the corpus (see ``stages.data``)."""
    from ..data import BatchPlan
    from ..data.stream import StepBatches, loader

    corpus = data.corpus
    plan = BatchPlan(
        [s.train_rows for s in corpus.sources],
        corpus.weights(),
        cfg.seed,
        int(cfg.model["batch_size"]),
        corpus.size,
        min(int(cfg.model["crop"]), corpus.size),
        world_size=trainer.world_size,
    )
    total = cfg.steps * trainer.spec.grad_accum

    def batches(first: int):
        dataset = StepBatches(corpus, plan, trainer.rank, first, total, labels=data.classes is not None)
        return loader(dataset, dev, workers)

    return plan, batches


def run(
    dataset,
    out,
    cfg: TrainAEConfig,
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    workers: int = 2,
    performance=None,
):
    """``dataset``: one hsi-dataset or several (paths and/or corpus YAML files, ``stages.data.corpus``);
    ``workers``: DataLoader processes when the corpus is streamed."""
    import torch

    from ..training import Trainer, TrainSpec, count_parameters

    out = Path(out)
    data, library = _prepare(dataset, cfg)
    inputs = data.corpus.input_records()
    if cfg.pairs is not None:
        inputs.append(input_record(cfg.pairs))
    if library is not None and library.path is not None:
        inputs.append(input_record(library.path))
    config = cfg.to_dict()
    writer = ArtifactWriter(out, "autoencoder", STAGE, config, inputs, overwrite=overwrite)
    if writer.up_to_date():
        log.info(f"{STAGE}: up to date")
        return writer.artifact
    writer.check_destination()  # fail before training, not after

    dev = resolve_device(device)
    seed_everything(cfg.seed)
    model = build_model(cfg, data, library).to(dev)
    log.info(
        f"{STAGE}: --kind {cfg.kind} --preset {cfg.preset}: {count_parameters(model):,} parameters, "
        f"f={cfg.factor}, {data.train_patches} training / {len(data.heldout.hsi)} held-out "
        f"({data.heldout_split}) patches from {len(data.corpus.sources)} source(s), {data.loader} loader"
    )
    before = evaluate(model, data, dev, cfg.eval_batch)["metrics"]

    m = cfg.model
    spec = TrainSpec(
        steps=cfg.steps,
        lr=float(m["lr"]),
        seed=cfg.seed,
        warmup_steps=int(m.get("warmup_steps", 0)),
        checkpoint_every=cfg.checkpoint_every,
    )
    fingerprint = {"inputs": [i["sha256"] for i in inputs], "config": config}
    trainer = Trainer(model, spec, out, dev, fingerprint, resume=resume, performance=performance)
    patches = _training_arrays(data)
    arrays = {k: torch.from_numpy(v).to(dev) for k, v in patches.items()}
    names = list(arrays)
    if data.streamed:
        plan, batches = _streamed_batches(data, cfg, trainer, dev, workers)
        crop, windows, stitched = plan.crop, data.train_patches * (plan.size - plan.crop + 1) ** 2, False

        def loss_fn(wrapped, step, generator, batch):
            batch = {k: v for k, v in batch.items() if k != "micro_step"}
            return wrapped(generator=generator, step=step, **batch)
    else:
        batches = None
        field = training_field(patches, data.train.origin, int(m["crop"]), dev)
        crop, windows, stitched = field.crop, field.window_count, field.stitched

        def loss_fn(wrapped, step, generator):
            batch = random_batch(generator, field, int(m["batch_size"]))
            return wrapped(generator=generator, step=step, **batch)

    log.debug(
        f"{STAGE}: {windows:,} distinct {crop}×{crop} training windows "
        f"({'stitched scene' if stitched else 'inside single patches'})"
    )

    history = trainer.fit(loss_fn, description=f"train-ae {cfg.kind}", batches=batches)

    model.eval()
    with torch.no_grad():
        calib = [arrays["hsi"][i : i + cfg.eval_batch] for i in range(0, len(arrays["hsi"]), cfg.eval_batch)]
        extra_calib = {
            k: [arrays[k][i : i + cfg.eval_batch] for i in range(0, len(arrays[k]), cfg.eval_batch)]
            for k in names
            if k != "hsi"
        }
        scaling = model.calibrate(calib, **extra_calib)
    after = evaluate(model, data, dev, cfg.eval_batch)

    baseline = PCABaseline.fit(data.train.hsi, model.latent_channels, cfg.factor)
    base_metrics = reconstruction_metrics(
        data.heldout.hsi, baseline.reconstruct(data.heldout.hsi), data.heldout.scale, data.heldout.offset
    )
    metrics = {
        "heldout_split": data.heldout_split,
        "heldout_patches": int(len(data.heldout.hsi)),
        "mpsnr_db": after["metrics"]["mpsnr_db"],
        "sam_deg": after["metrics"]["sam_deg"],
        "mpsnr_db_step0": before["mpsnr_db"],
        "sam_deg_step0": before["sam_deg"],
        "baseline_pca_mpsnr_db": base_metrics["mpsnr_db"],
        "baseline_pca_sam_deg": base_metrics["sam_deg"],
        "baseline_pca_components": model.latent_channels,
    }
    if "mask_pixel_accuracy" in after["metrics"]:
        for key in (
            "mask_pixel_accuracy",
            "mask_pixel_accuracy_seen_classes",
            "mask_heldout_unseen_share",
            "mask_classes_unseen_in_training",
        ):
            metrics[key] = after["metrics"][key]
        metrics["mask_pixel_accuracy_step0"] = before["mask_pixel_accuracy"]
        train_masks = evaluate(model, data, dev, cfg.eval_batch, patches=data.train)["masks"]
        metrics["mask_pixel_accuracy_train"] = float(np.mean(train_masks == data.train.labels))
    metrics.update(model.extra_metrics(arrays, cfg.eval_batch))
    log.info(
        f"{STAGE}: held-out MPSNR {metrics['mpsnr_db']:.2f} dB, SAM {metrics['sam_deg']:.2f}° "
        f"(step 0: {before['mpsnr_db']:.2f} dB / {before['sam_deg']:.2f}°; PCA baseline "
        f"{base_metrics['mpsnr_db']:.2f} dB / {base_metrics['sam_deg']:.2f}°)"
    )

    with writer.building() as tmp:
        model.save(tmp)
        save_reconstructions(
            tmp / "reconstructions.png",
            data.heldout.hsi,
            after["recon"],
            data.heldout.wavelengths_nm,
            data.heldout.scale,
            data.heldout.offset,
            f"train-ae {cfg.kind} ({cfg.preset}, {cfg.steps} steps): held-out MPSNR {metrics['mpsnr_db']:.2f} dB, "
            f"SAM {metrics['sam_deg']:.2f}° | PCA {base_metrics['mpsnr_db']:.2f} dB, {base_metrics['sam_deg']:.2f}°",
            masks=(data.heldout.labels, after["masks"]) if "masks" in after else None,
        )
        scale, offset = data.train.scale, data.train.offset
        if hasattr(model, "artifact_units"):  # hsigene-kl keeps its [-1, 1] units in the artifact
            scale, offset = model.artifact_units(scale, offset)
        writer.spectral = spectral_block(data.train.wavelengths_nm, scale, offset)
        writer.metrics = metrics
        size = data.train.hsi.shape[-1]
        writer.extra = {
            "autoencoder": {
                "kind": cfg.kind,
                "downsampling_factor": cfg.factor,
                "latent_channels": model.latent_channels,
                "scaling_factor": scaling,
                "parameters": model.parameter_counts(),
                "latent_shape_per_patch": [model.latent_channels, size // cfg.factor, size // cfg.factor],
                **model.manifest_extra(),
                # A corpus's class space: the name of every class id (stages.data.corpus.label_table).
                **({"class_names": data.class_names} if data.class_names is not None else {}),
            },
            "training": {
                "steps": cfg.steps,
                "epochs": cfg.epochs,
                "training_patches": data.train_patches,
                "crop_windows": windows,
                "stitched_scene": stitched,
                "loader": data.loader,
                "data_wait_share": trainer.data_wait_share(),
                "loader_start_seconds": round(trainer.loader_start_s, 3),
                "history": history,
            },
            "normalisation": data.corpus.normalisation(),
        }
    trainer.cleanup()
    return writer.artifact
