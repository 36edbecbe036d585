"""``--task pixel-classify``: does synthetic data help a pixel classifier trained on little
real data? (Liu et al., HyperLDM, IEEE TGRS 61 (2023), §IV-F Table VI; Liu et al., SpecDM,
arXiv:2502.17056, §4.3 for the synthetic share.)

Per seed: draw ``per_class`` labelled pixels of each class from the real training split, train
the pixel classifier on them ("real"), then on them plus synthetic pixels ("real+synthetic"),
and score both on the held-out split (OA / AA / κ). The ingest split is by rows, so no held-out
pixel shares a patch with a training pixel. Synthetic pixels carry the samples' labels when
the samples have them; otherwise the real-only classifier of the same seed labels them and
only pixels with softmax confidence >= ``confidence`` are kept (pseudo-labels).

Choices after SpecDM §4.3 (Table 3: 2k real + 10k synthetic pairs, i.e. 5× synthetic; its LDM
comparison also uses 5×): per class at most ``synthetic_ratio`` × that class's real training
pixels, so synthetic data add examples without shifting the class prior the real subset fixes;
and labelled synthetic pixels within ``boundary`` pixels of another generated label are left
out, because a latent decoder (f = 4) blends spectra across label edges, so those pixels carry
mixed spectra under one label. Summary, paired test, verdict and report files are the common
protocol's (``protocol.py``, ``report.py``)."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..common import log
from ..common.errors import ArtifactError, ConfigError
from ..evaluate.classifier import PRESETS, accuracy_scores, train_pixel_classifier
from ..evaluate.spectra import attach_label_map, check_same_grid, labelled_pixel_table, load_image_set, pixels
from .protocol import DownstreamConfig, _write, check_seeds, start_report
from .report import Metric, comparisons, summarise

SYNTHETIC_RATIO = 5.0  # synthetic pixels per real training pixel of each class, at most
METRICS = [Metric("oa", "OA"), Metric("aa", "AA"), Metric("kappa", "κ")]
TRAINING_SETS = ("real", "real_plus_synthetic")
PAPER = "Liu et al., HyperLDM, IEEE TGRS 61 (2023), §IV-F Table VI (downstream pixel classification, OA / AA / κ)"


def classifier_hyper(config: DownstreamConfig) -> dict:
    from ..training import resolve_preset

    return resolve_preset(PRESETS, config.preset, {"steps": config.steps, "batch_size": config.batch_size})


def synthetic_ratio(config: DownstreamConfig) -> float:
    return SYNTHETIC_RATIO if config.synthetic_ratio is None else float(config.synthetic_ratio)


def _subset_per_class(labels: np.ndarray, per_class: int, rng) -> np.ndarray:
    picks = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        picks.append(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return np.sort(np.concatenate(picks))


def interior_labels(labels: np.ndarray, radius: int) -> np.ndarray:
    """(N, H, W) labels with every pixel whose (2r+1)² window holds another label set to -1."""
    from scipy.ndimage import maximum_filter, minimum_filter

    if radius <= 0:
        return labels
    size = (1, 2 * radius + 1, 2 * radius + 1)
    same = minimum_filter(labels, size=size, mode="nearest") == maximum_filter(labels, size=size, mode="nearest")
    return np.where(same, labels, -1)


def _per_class_budget(y_syn: np.ndarray, y_real: np.ndarray, ratio: float, rng) -> np.ndarray:
    """Indices of at most ``ratio`` × (real pixels of class c) synthetic pixels of each class c."""
    picks = []
    for c in np.unique(y_syn):
        idx = np.flatnonzero(y_syn == c)
        budget = int(round(ratio * np.count_nonzero(y_real == c)))
        if len(idx) > budget:
            idx = rng.choice(idx, budget, replace=False)
        picks.append(idx)
    return np.sort(np.concatenate(picks)) if picks else np.empty(0, np.int64)


def run(real: Path, synthetic: list[Path], out: Path, config: DownstreamConfig, overwrite: bool = False):
    from ..common.runtime import resolve_device

    check_seeds(config.seeds)
    if config.test:
        raise ConfigError("--test: pixel-classify scores the held-out rows of --real only; drop --test")
    ratio = synthetic_ratio(config)
    if ratio < 0:
        raise ConfigError("--synthetic-ratio must be 0 or more (synthetic pixels per real training pixel)")
    if not 0.0 <= config.confidence <= 1.0:
        raise ConfigError("--confidence must be within [0, 1]")
    if config.per_class < 1:
        raise ConfigError("--per-class must be at least 1")
    if config.boundary < 0:
        raise ConfigError("--boundary must be 0 (keep every pixel) or more")
    real_set = load_image_set(real, "--real")
    if real_set.kind != "hsi-dataset":
        raise ArtifactError(f"--real {real} is {real_set.kind}; the downstream check needs the real hsi-dataset")
    if config.labels_file:
        attach_label_map(real_set, config.labels_file)
    synth_sets = [load_image_set(p, "--synthetic") for p in synthetic]
    for s in synth_sets:
        check_same_grid(real_set, s, "--synthetic")
    spectra, labels, split = labelled_pixel_table(real_set)
    if not (np.any(split == "train") and np.any(split == "val")):
        raise ArtifactError(
            f"--real {real} has no train/val split; ingest it with --val-fraction (e.g. 0.25) so "
            "test pixels share no patch with training pixels"
        )
    train_pool = split == "train"
    classes = sorted(int(c) for c in np.unique(labels[train_pool]))
    test = (split == "val") & np.isin(labels, classes)
    hyper = classifier_hyper(config)
    writer, done = start_report(out, config, hyper, real, synthetic, overwrite)
    if done:
        return writer.artifact
    device = resolve_device(config.device)

    synth_pixels = []
    for s in synth_sets:
        if s.labels is not None:
            s = replace(s, labels=interior_labels(s.labels, config.boundary))
        px = pixels(s, None, 0)
        synth_pixels.append((s, px))
    runs = []
    for seed in config.seeds:
        rng = np.random.default_rng(seed)
        pool = np.flatnonzero(train_pool)
        subset = pool[_subset_per_class(labels[pool], config.per_class, rng)]
        x_real, y_real = spectra[subset], labels[subset]
        base, _ = train_pixel_classifier(
            x_real,
            y_real,
            real_set.wavelengths_nm,
            hyper,
            seed,
            device,
            out=out.parent / f".{out.name}-downstream",
            classes=classes,
        )
        base_scores = accuracy_scores(labels[test], base.predict(spectra[test]))
        xs, ys, sources = [], [], []
        for s, px in synth_pixels:
            if px.labels is not None:
                keep = np.isin(px.labels, classes)
                x_syn, y_syn = px.values[keep], px.labels[keep]
                how = "sample labels"
                if config.boundary:
                    how += f", pixels > {config.boundary} px from another label"
            else:
                probs = base.probabilities(px.values)
                keep = probs.max(1) >= config.confidence
                x_syn = px.values[keep]
                y_syn = np.asarray(classes)[probs[keep].argmax(1)]
                how = f"pseudo-labels, confidence >= {config.confidence}"
            sources.append({"path": str(s.path), "labelling": how, "available": int(len(x_syn))})
            xs.append(x_syn)
            ys.append(y_syn)
        x_syn = np.concatenate(xs) if xs else np.empty((0, spectra.shape[1]), np.float32)
        y_syn = np.concatenate(ys) if ys else np.empty(0, np.int64)
        pick = _per_class_budget(y_syn, y_real, ratio, rng)
        x_syn, y_syn = x_syn[pick], y_syn[pick]
        if len(x_syn) == 0:
            raise ConfigError(
                f"no synthetic pixel could be used (no sample labels of classes {classes}, and none reached "
                f"--confidence {config.confidence}); lower --confidence or give labelled samples"
            )
        aug, _ = train_pixel_classifier(
            np.concatenate([x_real, x_syn]),
            np.concatenate([y_real, y_syn]),
            real_set.wavelengths_nm,
            hyper,
            seed,
            device,
            out=out.parent / f".{out.name}-downstream",
            classes=classes,
        )
        aug_scores = accuracy_scores(labels[test], aug.predict(spectra[test]))
        runs.append(
            {
                "seed": seed,
                "real_pixels": int(len(subset)),
                "synthetic_pixels": int(len(x_syn)),
                "synthetic_sources": sources,
                "real": base_scores,
                "real_plus_synthetic": aug_scores,
            }
        )
        log.info(
            f"downstream seed {seed}: real OA {base_scores['oa']:.3f} -> real+synthetic OA "
            f"{aug_scores['oa']:.3f} ({len(x_syn)} synthetic pixels)"
        )

    settings = {
        **asdict(config),
        "synthetic_ratio": ratio,
        "resolved": hyper,
        "classes": classes,
        "test_pixels": int(test.sum()),
        "train_pool_pixels": int(train_pool.sum()),
        "test_split": "dataset val split (rows disjoint from the train split)",
    }
    summary = summarise(runs, TRAINING_SETS, METRICS)
    comp = comparisons(runs, TRAINING_SETS, METRICS[0])
    summary["delta_oa"] = comp["real_plus_synthetic"]["mean_delta"]
    report = {
        "kind": "downstream",
        "task": "pixel-classify",
        "paper": PAPER,
        "settings": settings,
        "real": str(real),
        "synthetic": [str(p) for p in synthetic],
        "training_sets": list(TRAINING_SETS),
        "primary_metric": "oa",
        "summary": summary,
        "comparisons": comp,
        "comparisons_test": "two-sided paired t-test over seeds, alpha 0.05",
        "runs": runs,
    }
    return _write(writer, report, METRICS, METRICS[0], protocol_text(settings))


def protocol_text(s: dict) -> str:
    return (
        f"Protocol: {s['per_class']} real training pixels per class (train split), synthetic pixels up to "
        f"{s['synthetic_ratio']}× the real ones per class (labelled synthetic pixels within {s['boundary']} px "
        f"of another label left out), pixel classifier (4 × Conv1d + FC, HyperLDM §III-E) preset "
        f"`{s['preset']}` ({s['resolved']['steps']} steps), pseudo-label confidence threshold {s['confidence']}; "
        f"tested on {s['test_pixels']} held-out pixels of the {s['test_split']}; seeds {s['seeds']}."
    )
