"""``hsigen evaluate train-classifier``: fit the spectral classifier S (Liu et al., HyperLDM,
IEEE TGRS 61 (2023) §III-E) on the labelled pixels of an hsi-dataset and write a ``classifier``
artifact.

Several datasets (``train-classifier A B ...`` or a corpus YAML, ``stages.data.corpus``) train one
classifier on the union of every source's labelled pixels, each source converted to physical
units with its own scale/offset (as one dataset is), in the corpus's class space: label values of
different sources are different classes unless a source's ``labels`` map sends them to a shared
name. Each source is split as one dataset is (its train/val split, else a seeded 20 %). The
classifier's outputs are the corpus's class ids, named in ``classifier.json`` (``extra.class_names``)
and the manifest (``class_names``, ``class_space``, ``sources``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..artifacts.store import ArtifactWriter, input_record, spectral_block
from ..common import log
from ..common.errors import ArtifactError
from .classifier import PRESETS, accuracy_scores, build_model, save_classifier, train_pixel_classifier
from .spectra import attach_label_map, corpus_labelled_pixels, labelled_pixel_table, load_image_set, spectra_at

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


def _dataset_or_corpus(dataset):
    """One dataset's path (the single-dataset path, unchanged) or the corpus of several."""
    from ..data import labelled_corpus_or_dataset

    return labelled_corpus_or_dataset(dataset, "DATASET", unweighted="train-classifier")


def dry_run(dataset, config: TrainClassifierConfig) -> dict:
    from ..training import count_parameters

    hyper = config.hyper()
    dataset = _dataset_or_corpus(dataset)
    if isinstance(dataset, (str, Path)):
        images = load_image_set(dataset, "DATASET")
        bands = images.bands
        n_classes = 16 if images.labels is None else max(2, len(np.unique(images.labels[images.labels > 0])))
    else:
        bands, n_classes = dataset.bands, max(2, len(dataset.class_names()) - 1)
    model = build_model(bands, n_classes, hyper["channels"], hyper["kernel"])
    return {
        "preset": config.preset,
        "parameters": count_parameters(model),
        "bands": bands,
        "classes": n_classes,
        **{k: hyper[k] for k in ("channels", "kernel", "steps", "batch_size", "lr")},
    }


def run(dataset, out: Path, config: TrainClassifierConfig, overwrite: bool = False, resume: bool = False):
    """``dataset``: one hsi-dataset, or several (paths and/or corpus YAML files)."""
    dataset = _dataset_or_corpus(dataset)
    if not isinstance(dataset, (str, Path)):
        return run_corpus(dataset, Path(out), config, overwrite=overwrite, resume=resume)
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
    return fit_and_write(
        writer,
        spectra,
        labels,
        (train_mask, held_mask),
        images.wavelengths_nm,
        config,
        hyper,
        classes,
        resume,
        lambda clf, history: {"classes": clf.meta.classes, "holdout": holdout, "history": history},
        out=out,
    )


def fit_and_write(
    writer, spectra, labels, masks, wavelengths_nm, config, hyper, classes, resume, extra, meta=None, *, out
):
    """Train the pixel classifier on the ``masks[0]`` pixels, score it on those and the held-out
    ``masks[1]`` ones, and write the artifact (``extra(clf, history)``: its manifest's extra block;
    ``meta``: what the classifier file records besides its classes) — one dataset or a corpus."""
    from ..common.runtime import resolve_device

    train_mask, held_mask = masks
    clf, history = train_pixel_classifier(
        spectra[train_mask],
        labels[train_mask],
        wavelengths_nm,
        hyper,
        config.seed,
        resolve_device(config.device),
        out=out,
        resume=resume,
        checkpoint_every=config.checkpoint_every,
        classes=classes,
    )
    if meta is not None:
        clf.meta.extra = meta
    scores = accuracy_scores(labels[held_mask], clf.predict(spectra[held_mask]))
    train_scores = accuracy_scores(labels[train_mask], clf.predict(spectra[train_mask]))
    log.info(f"train-classifier: held-out OA {scores['oa']:.3f} AA {scores['aa']:.3f} kappa {scores['kappa']:.3f}")
    with writer.building() as tmp:
        save_classifier(clf, tmp)
        writer.spectral = spectral_block(wavelengths_nm, 1.0, 0.0)
        writer.metrics = classifier_metrics(scores, train_scores, history)
        writer.extra = extra(clf, history)
    return writer.artifact


def classifier_metrics(scores: dict, train_scores: dict, history: list) -> dict:
    """The manifest's metrics of a trained pixel classifier (one dataset or a corpus)."""
    return {
        "heldout_oa": scores["oa"],
        "heldout_aa": scores["aa"],
        "heldout_kappa": scores["kappa"],
        "heldout_pixels": scores["n"],
        "train_oa": train_scores["oa"],
        "train_pixels": train_scores["n"],
        "final_loss": history[-1]["loss"] if history else None,
    }


def corpus_pixels(corpus, seed: int):
    """Every source's unique labelled scene pixels in physical units (its own scale/offset), their
    labels as corpus class ids, and train / held-out masks split per source as one dataset is.

    Returns (spectra (n, B) float32, labels (n,), train mask, held-out mask, one record per source)."""
    spectra, labels, train, held, records = [], [], [], [], []
    for k, src in enumerate(corpus.sources):
        images, flat, ids, split = corpus_labelled_pixels(corpus, k, "DATASET")
        train_mask, held_mask, holdout = split_pixels(split, seed)
        spectra.append(spectra_at(images, flat))
        labels.append(ids)
        train.append(train_mask)
        held.append(held_mask)
        records.append(
            {
                **src.identity(),
                "train_pixels": int(train_mask.sum()),
                "heldout_pixels": int(held_mask.sum()),
                "holdout": holdout,
            }
        )
    return np.concatenate(spectra), np.concatenate(labels), np.concatenate(train), np.concatenate(held), records


def run_corpus(corpus, out: Path, config: TrainClassifierConfig, overwrite: bool = False, resume: bool = False):
    """One classifier on the union of the sources' labelled pixels (module docstring)."""
    from ..common.errors import ConfigError

    if config.labels_file:
        raise ConfigError(
            f"--labels is one scene's label map; with the {len(corpus.sources)} datasets of {corpus.origin} "
            "ingest each with its own --labels FILE"
        )
    names = corpus.class_names()  # refuses a source without labels, naming it
    hyper = config.hyper()
    writer = ArtifactWriter(
        out,
        "classifier",
        "evaluate train-classifier",
        {
            **asdict(config),
            "resolved": hyper,
            "sources": [{"path": str(s.path), "labels": s.label_map} for s in corpus.sources],
        },
        corpus.input_records(),
        overwrite,
    )
    if writer.up_to_date():
        log.info("evaluate train-classifier: up to date")
        return writer.artifact
    writer.check_destination()
    spectra, labels, train_mask, held_mask, records = corpus_pixels(corpus, config.seed)
    if train_mask.sum() == 0 or held_mask.sum() == 0:
        raise ArtifactError(f"{corpus.origin} has too few labelled pixels to hold some out; label more pixels")
    classes = sorted(int(c) for c in np.unique(labels))
    log.info(
        f"train-classifier: {int(train_mask.sum())} training and {int(held_mask.sum())} held-out pixels of "
        f"{len(corpus.sources)} sources, {len(classes)} classes"
    )
    class_names = [names[c] for c in classes]
    return fit_and_write(
        writer,
        spectra,
        labels,
        (train_mask, held_mask),
        corpus.wavelengths_nm,
        config,
        hyper,
        classes,
        resume,
        lambda clf, history: {
            "classes": clf.meta.classes,
            "class_names": class_names,
            "class_space": corpus.class_record(),
            "train_pixels_per_class": {names[c]: int(np.count_nonzero(labels[train_mask] == c)) for c in classes},
            "sources": records,
            "units": "physical (each source's stored values * its scale + its offset)",
            "holdout": "per source: " + "; ".join(f"{r['path']}: {r['holdout']}" for r in records),
            "history": history,
        },
        meta={
            "class_names": class_names,
            "sources": [{k: r[k] for k in ("path", "sha256", "scale", "offset", "units")} for r in records],
        },
        out=out,
    )
