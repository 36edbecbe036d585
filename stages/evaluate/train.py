"""``hsigen evaluate train-classifier``: fit the spectral classifier S (Liu et al., HyperLDM,
IEEE TGRS 61 (2023) §III-E) on the labelled pixels of an hsi-dataset and write a ``classifier``
artifact."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..artifacts.store import ArtifactWriter, input_record, spectral_block
from ..common import log
from ..common.errors import ArtifactError
from .classifier import PRESETS, accuracy_scores, build_model, save_classifier, train_pixel_classifier
from .spectra import attach_label_map, labelled_pixel_table, load_image_set

HOLDOUT_FRACTION = 0.2


@dataclass
class TrainClassifierConfig:
    preset: str = "tiny"
    channels: list[int] | None = None
    kernel: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 0
    labels_file: str | None = None

    def hyper(self) -> dict:
        from ..training import resolve_preset

        return resolve_preset(
            PRESETS,
            self.preset,
            {
                "channels": self.channels,
                "kernel": self.kernel,
                "steps": self.steps,
                "batch_size": self.batch_size,
                "lr": self.lr,
            },
        )


def split_pixels(split: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Train / held-out masks: the dataset's spatial train/val split when it has one (no
    held-out pixel shares a patch with a training pixel), else a seeded random 20 % of pixels."""
    if np.any(split == "val") and np.any(split == "train"):
        return split == "train", split == "val", "dataset val split"
    rng = np.random.default_rng(seed)
    held = rng.random(len(split)) < HOLDOUT_FRACTION
    return ~held, held, f"random {int(HOLDOUT_FRACTION * 100)} % of labelled pixels"


def dry_run(dataset: Path, config: TrainClassifierConfig) -> dict:
    from ..training import count_parameters

    hyper = config.hyper()
    images = load_image_set(dataset, "DATASET")
    n_classes = 16 if images.labels is None else max(2, len(np.unique(images.labels[images.labels > 0])))
    model = build_model(images.bands, n_classes, hyper["channels"], hyper["kernel"])
    return {
        "preset": config.preset,
        "parameters": count_parameters(model),
        "bands": images.bands,
        "classes": n_classes,
        **{k: hyper[k] for k in ("channels", "kernel", "steps", "batch_size", "lr")},
    }


def run(dataset: Path, out: Path, config: TrainClassifierConfig, overwrite: bool = False, resume: bool = False):
    from ..common.runtime import resolve_device

    images = load_image_set(dataset, "DATASET")
    if images.kind != "hsi-dataset":
        raise ArtifactError(f"DATASET {dataset} is {images.kind}; train the classifier on a real hsi-dataset")
    if config.labels_file:
        attach_label_map(images, config.labels_file)
    inputs = [input_record(dataset)] + ([input_record(config.labels_file)] if config.labels_file else [])
    hyper = config.hyper()
    writer = ArtifactWriter(
        out, "classifier", "evaluate train-classifier", {**asdict(config), "resolved": hyper}, inputs, overwrite
    )
    if writer.up_to_date():
        log.info("evaluate train-classifier: up to date")
        return writer.artifact
    writer.check_destination()
    spectra, labels, split = labelled_pixel_table(images)
    train_mask, held_mask, holdout = split_pixels(split, config.seed)
    classes = sorted(int(c) for c in np.unique(labels))
    if train_mask.sum() == 0 or held_mask.sum() == 0:
        raise ArtifactError(f"{dataset} has too few labelled pixels to hold some out; label more pixels")
    log.info(
        f"train-classifier: {int(train_mask.sum())} training and {int(held_mask.sum())} held-out pixels "
        f"({holdout}), {len(classes)} classes"
    )
    device = resolve_device(config.device)
    clf, history = train_pixel_classifier(
        spectra[train_mask],
        labels[train_mask],
        images.wavelengths_nm,
        hyper,
        config.seed,
        device,
        out=out,
        resume=resume,
        checkpoint_every=config.checkpoint_every,
        classes=classes,
    )
    scores = accuracy_scores(labels[held_mask], clf.predict(spectra[held_mask]))
    train_scores = accuracy_scores(labels[train_mask], clf.predict(spectra[train_mask]))
    log.info(f"train-classifier: held-out OA {scores['oa']:.3f} AA {scores['aa']:.3f} kappa {scores['kappa']:.3f}")
    with writer.building() as tmp:
        save_classifier(clf, tmp)
        writer.spectral = spectral_block(images.wavelengths_nm, 1.0, 0.0)
        writer.metrics = {
            "heldout_oa": scores["oa"],
            "heldout_aa": scores["aa"],
            "heldout_kappa": scores["kappa"],
            "heldout_pixels": scores["n"],
            "train_oa": train_scores["oa"],
            "train_pixels": train_scores["n"],
            "final_loss": history[-1]["loss"] if history else None,
        }
        writer.extra = {"classes": clf.meta.classes, "holdout": holdout, "history": history}
    return writer.artifact
