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
protocol's (``protocol.py``, ``report.py``).

Memory stays bounded whatever the number of patches and samples: spectra are read a chunk of
images at a time (``spectra.image_chunks``). Of the real dataset only ints per labelled pixel are
held (where it is, label, split), plus the small training subset; the held-out pixels are
predicted chunk by chunk. Each class's synthetic pixels are a uniform random sample of its budget,
kept while the samples stream past (``ClassReservoirs``); pixels that overlapping patches of a
dataset given as synthetic repeat count once."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..common import log
from ..common.errors import ArtifactError, ConfigError
from ..evaluate.classifier import PRESETS, accuracy_scores, train_pixel_classifier
from ..evaluate.spectra import (
    ImageSet,
    as_pixels,
    attach_label_map,
    check_same_grid,
    corpus_labelled_pixels,
    image_chunks,
    labelled_pixel_index,
    load_image_set,
    pixel_spectra,
    scene_first_pixels,
    spectra_at,
)
from .data import apply_lut
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


def class_budgets(y_real: np.ndarray, ratio: float, classes) -> dict[int, int]:
    """At most ``ratio`` × (real training pixels of class c) synthetic pixels of each class c."""
    return {int(c): int(round(ratio * np.count_nonzero(y_real == c))) for c in classes}


class ClassReservoirs:
    """A uniform random sample without replacement of at most ``budgets[c]`` of the items of
    each class c offered in a stream, held in O(budget) memory: every offered item gets an
    i.i.d. uniform key and each class keeps the items with its ``budget`` smallest keys (the k
    smallest of i.i.d. keys fall on a uniform k-subset; reservoir sampling with random keys,
    Efraimidis & Spirakis, IPL 97 (2006), equal weights). One key per offered item is drawn from
    ``rng`` in stream order, so the sample does not depend on how the stream is chunked."""

    def __init__(self, budgets: dict[int, int], rng):
        self.budgets, self.rng, self.seen = budgets, rng, 0
        self.held: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # class -> (keys, positions, items)

    def offer(self, items: np.ndarray, labels: np.ndarray, usable: np.ndarray) -> None:
        """``items`` (n, ...) with their ``labels`` (n,); only those where ``usable`` may enter."""
        keys = self.rng.random(len(labels))
        positions = self.seen + np.arange(len(labels))
        self.seen += len(labels)
        for c, budget in self.budgets.items():
            keys_c, pos_c, items_c = self.held.get(c, (keys[:0], positions[:0], items[:0]))
            new = np.flatnonzero(usable & (labels == c))
            if len(keys_c) == budget:  # full: only keys below its largest can enter
                new = new[keys[new] < keys_c.max()] if budget else new[:0]
            keys_c = np.concatenate([keys_c, keys[new]])
            pos_c = np.concatenate([pos_c, positions[new]])
            items_c = np.concatenate([items_c, items[new]])
            if len(keys_c) > budget:
                keep = np.argpartition(keys_c, budget - 1)[:budget] if budget else np.empty(0, np.int64)
                keys_c, pos_c, items_c = keys_c[keep], pos_c[keep], items_c[keep]
            self.held[c] = (keys_c, pos_c, items_c)

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(stream positions, items, labels) of the sample, in stream order."""
        if not self.held:
            return np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64)
        pos = np.concatenate([p for _, p, _ in self.held.values()])
        items = np.concatenate([i for _, _, i in self.held.values()])
        labels = np.concatenate([np.full(len(p), c, np.int64) for c, (_, p, _) in self.held.items()])
        order = np.argsort(pos)
        return pos[order], items[order], labels[order]


def _per_class_budget(y_syn: np.ndarray, y_real: np.ndarray, ratio: float, rng) -> np.ndarray:
    """Indices of at most ``ratio`` × (real pixels of class c) synthetic pixels of each class c
    (the in-memory case of ``ClassReservoirs``)."""
    reservoirs = ClassReservoirs(class_budgets(y_real, ratio, np.unique(y_syn)), rng)
    reservoirs.offer(np.arange(len(y_syn)), y_syn, np.ones(len(y_syn), bool))
    return reservoirs.sample()[0]


def held_out_scores(classifier, images: ImageSet, flat: np.ndarray, y_true: np.ndarray) -> dict:
    """OA / AA / κ on the pixels ``flat`` of ``images``, predicted a chunk of images at a time."""
    y_pred = np.empty_like(y_true)
    for positions, spectra in pixel_spectra(images, flat):
        y_pred[positions] = classifier.predict(spectra)
    return accuracy_scores(y_true, y_pred)


class RealPixels:
    """The labelled scene pixels of the real dataset(s), held as a few ints each: which dataset
    (``part``), where in it (``flat``), class and split. One dataset: its label values; several
    (a corpus): the corpus's class ids, every dataset's spectra in its own physical units."""

    def __init__(self, sets: list[ImageSet], part, flat, labels, split):
        self.sets, self.part, self.flat, self.labels, self.split = sets, part, flat, labels, split

    @classmethod
    def of_dataset(cls, images: ImageSet) -> RealPixels:
        flat, labels, split = labelled_pixel_index(images)
        return cls([images], np.zeros(len(flat), np.int64), flat, labels, split)

    @classmethod
    def of_corpus(cls, corpus) -> RealPixels:
        sets, parts, flats, labels, splits = [], [], [], [], []
        for k, src in enumerate(corpus.sources):
            images, flat, ids, split = corpus_labelled_pixels(corpus, k, "--real")
            if not (np.any(split == "train") and np.any(split == "val")):
                raise ArtifactError(
                    f"--real {src.path} has no labelled pixels in both a train and a val split; ingest it with "
                    "--val-fraction (e.g. 0.25) so test pixels share no patch with training pixels"
                )
            sets.append(images)
            parts.append(np.full(len(flat), k, np.int64))
            flats.append(flat)
            labels.append(ids)
            splits.append(split)
        return cls(sets, *(np.concatenate(a) for a in (parts, flats, labels, splits)))

    def spectra(self, which: np.ndarray) -> np.ndarray:
        """(len(which), B) physical spectra of the pixels at positions ``which``, in that order."""
        if len(self.sets) == 1:
            return spectra_at(self.sets[0], self.flat[which])
        out = np.empty((len(which), self.sets[0].bands), np.float32)
        for k, images in enumerate(self.sets):
            mine = np.flatnonzero(self.part[which] == k)
            out[mine] = spectra_at(images, self.flat[which[mine]])
        return out

    def scores(self, classifier, which: np.ndarray) -> dict:
        """OA / AA / κ on the pixels at positions ``which``, predicted a chunk of images at a time."""
        if len(self.sets) == 1:
            return held_out_scores(classifier, self.sets[0], self.flat[which], self.labels[which])
        y_true = self.labels[which]
        y_pred = np.empty_like(y_true)
        for k, images in enumerate(self.sets):
            mine = np.flatnonzero(self.part[which] == k)
            for positions, spectra in pixel_spectra(images, self.flat[which[mine]]):
                y_pred[mine[positions]] = classifier.predict(spectra)
        return accuracy_scores(y_true, y_pred)


def distinct_pixels(images: ImageSet) -> np.ndarray | None:
    """(N, H, W) mask of each scene pixel's first occurrence when the images are overlapping
    patches of a scene (an hsi-dataset), so a repeated pixel is offered once; None for samples."""
    if images.origin is None:
        return None
    n, _, h, w = images.cubes.shape
    mask = np.zeros(n * h * w, bool)
    mask[scene_first_pixels(images)] = True
    return mask.reshape(n, h, w)


def offer_synthetic(
    s: ImageSet, base, classes: list[int], config: DownstreamConfig, reservoirs, label_lut=None
) -> dict:
    """Stream the pixels of one synthetic set into ``reservoirs``, a chunk of images at a time:
    labelled by the samples' labels (away from label edges; through ``label_lut`` into a
    corpus's class ids when given) or by ``base``'s confident predictions. Returns the set's
    report entry, with how many of its pixels could be used."""
    if s.labels is not None:
        how = "sample labels" + (f", pixels > {config.boundary} px from another label" if config.boundary else "")
    else:
        how = f"pseudo-labels, confidence >= {config.confidence}"
    distinct, available = distinct_pixels(s), 0
    for at, cubes, labels in image_chunks(s):
        x = as_pixels(cubes)
        if labels is not None:
            if label_lut is not None:
                labels = apply_lut(label_lut, labels)
            # the window spans rows and columns only, so filtering chunk by chunk is exact
            y = interior_labels(labels, config.boundary).reshape(-1)
            usable = np.isin(y, classes)
        else:
            probs = base.probabilities(x)
            usable = probs.max(1) >= config.confidence
            y = np.asarray(classes)[probs.argmax(1)]
        if distinct is not None:
            usable &= distinct[at].reshape(-1)
        available += int(usable.sum())
        reservoirs.offer(x, y, usable)
    return {"path": str(s.path), "labelling": how, "available": available}


def run(real, synthetic: list[Path], out: Path, config: DownstreamConfig, overwrite: bool = False):
    """``real``: one hsi-dataset, or the ``Corpus`` of several (``corpus.py``)."""
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
    corpus = None if isinstance(real, (str, Path)) else real
    if corpus is None:
        real_set = load_image_set(real, "--real")
        if real_set.kind != "hsi-dataset":
            raise ArtifactError(f"--real {real} is {real_set.kind}; the downstream check needs the real hsi-dataset")
        if config.labels_file:
            attach_label_map(real_set, config.labels_file)
    elif config.labels_file:
        raise ConfigError(
            f"--labels {config.labels_file} is one scene's label map; with several --real ingest each dataset "
            "with its own --labels FILE"
        )
    else:
        real_set = load_image_set(corpus.sources[0].path, "--real")
    synth_sets = [load_image_set(p, "--synthetic") for p in synthetic]
    for s in synth_sets:
        check_same_grid(real_set, s, "--synthetic")
    if corpus is None:
        px = RealPixels.of_dataset(real_set)  # spectra stay on disk
        if not (np.any(px.split == "train") and np.any(px.split == "val")):
            raise ArtifactError(
                f"--real {real} has no train/val split; ingest it with --val-fraction (e.g. 0.25) so "
                "test pixels share no patch with training pixels"
            )
        luts = [None] * len(synth_sets)
    else:
        from .corpus import synthetic_label_lut

        px = RealPixels.of_corpus(corpus)
        luts, hows = zip(*(synthetic_label_lut(p, corpus) for p in synthetic))
    labels, split = px.labels, px.split
    train_pool = split == "train"
    classes = sorted(int(c) for c in np.unique(labels[train_pool]))
    test = (split == "val") & np.isin(labels, classes)
    hyper = classifier_hyper(config)
    writer, done = start_report(out, config, hyper, real, synthetic, overwrite, corpus)
    if done:
        return writer.artifact
    device = resolve_device(config.device)

    runs = []
    for seed in config.seeds:
        rng = np.random.default_rng(seed)
        pool = np.flatnonzero(train_pool)
        subset = pool[_subset_per_class(labels[pool], config.per_class, rng)]
        x_real, y_real = px.spectra(subset), labels[subset]
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
        base_scores = px.scores(base, np.flatnonzero(test))
        reservoirs = ClassReservoirs(class_budgets(y_real, ratio, classes), rng)
        sources = [offer_synthetic(s, base, classes, config, reservoirs, lut) for s, lut in zip(synth_sets, luts)]
        _, x_syn, y_syn = reservoirs.sample()
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
        aug_scores = px.scores(aug, np.flatnonzero(test))
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
    if corpus is not None:
        from .corpus import class_names

        settings["test_split"] = "val splits of every real source (rows disjoint from their train splits)"
        settings["real_units"] = "physical: each real source's stored values * its own scale + its offset"
        settings["class_names"] = class_names(corpus, classes)
        settings["synthetic_labels"] = [{"path": str(p), "labels": h} for p, h in zip(synthetic, hows)]
    summary = summarise(runs, TRAINING_SETS, METRICS)
    comp = comparisons(runs, TRAINING_SETS, METRICS[0])
    summary["delta_oa"] = comp["real_plus_synthetic"]["mean_delta"]
    report = {
        "kind": "downstream",
        "task": "pixel-classify",
        "paper": PAPER,
        "settings": settings,
        "real": str(real) if corpus is None else [str(s.path) for s in corpus.sources],
        **({} if corpus is None else {"real_sources": _real_records(corpus, px, train_pool, test)}),
        "synthetic": [str(p) for p in synthetic],
        "training_sets": list(TRAINING_SETS),
        "primary_metric": "oa",
        "summary": summary,
        "comparisons": comp,
        "comparisons_test": "two-sided paired t-test over seeds, alpha 0.05",
        "runs": runs,
    }
    return _write(writer, report, METRICS, METRICS[0], protocol_text(settings))


def _real_records(corpus, px: RealPixels, train_pool: np.ndarray, test: np.ndarray) -> list[dict]:
    """Every real source: path, units, label map, its labelled train-pool and test pixels."""
    records = []
    for k, src in enumerate(corpus.sources):
        mine = px.part == k
        records.append(
            {
                **src.identity(),
                "train_pool_pixels": int((train_pool & mine).sum()),
                "test_pixels": int((test & mine).sum()),
            }
        )
    return records


def protocol_text(s: dict) -> str:
    return (
        f"Protocol: {s['per_class']} real training pixels per class (train split), synthetic pixels up to "
        f"{s['synthetic_ratio']}× the real ones per class (labelled synthetic pixels within {s['boundary']} px "
        f"of another label left out), pixel classifier (4 × Conv1d + FC, HyperLDM §III-E) preset "
        f"`{s['preset']}` ({s['resolved']['steps']} steps), pseudo-label confidence threshold {s['confidence']}; "
        f"tested on {s['test_pixels']} held-out pixels of the {s['test_split']}; seeds {s['seeds']}."
    )
