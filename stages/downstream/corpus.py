"""Several real datasets for ``evaluate downstream`` (``--real A --real B`` or a corpus YAML,
``stages.data.corpus``): the real training set is the union of the sources' train rows, the test
set the union of their val rows, every source in its own normalisation (``data.SourceUnion``:
its stored [0, 1] values, as corpus training sees them; synthetic samples are converted into the
first source's, the units a corpus-trained generator records), and labels in the corpus's class space — label
values of different sources are different classes unless a YAML ``labels:`` map sends them to
a shared name; 0 stays unlabelled.

Synthetic labels are read as class ids of that space: what a joint model trained on the same
corpus generates. When the samples name their generating model and that model records its class
names (``train-diffusion --space joint`` over a corpus), the samples' labels are mapped to the
corpus's classes by name instead (a class the corpus lacks is refused). Change detection
(pairs) and ``--scene-labels`` (one file per dataset) stay one dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.errors import ConfigError, HsigenError

UNITS = (
    "each real source in its own normalisation (its stored values; physical = value * its scale + its "
    "offset); synthetic samples converted into the first source's (physical = value * {scale:g} + {offset:g})"
)


def real_paths(real) -> list:
    return list(real) if isinstance(real, (list, tuple)) else [real]


def refuse_single_dataset_options(real, task: str, scene_labels: str | None) -> None:
    """What needs one real dataset, refused before anything is read when several are given."""
    items = real_paths(real)
    several = len(items) > 1 or any(Path(p).suffix.lower() in (".yaml", ".yml") for p in items)
    if not several:
        return
    given = ", ".join(str(p) for p in items)
    if task == "change":
        raise ConfigError(
            f"--task change trains on the (t1, t2, change mask) pairs of one dataset; give one --real (not {given})"
        )
    if scene_labels:
        raise ConfigError(
            f"--scene-labels {scene_labels} gives one class per patch of one dataset; with several --real "
            f"({given}) leave it out (scenes are then labelled by their majority class) or give one --real"
        )


def open_real(real):
    """One real dataset's path (the single-dataset path, unchanged), or the corpus of several."""
    from ..data import labelled_corpus_or_dataset

    items = real_paths(real)
    return labelled_corpus_or_dataset(items, "--real", unweighted="evaluate downstream")


def union_splits(corpus, labelled: bool):
    """(train, val) ``SourceUnion``s of every source's train and val rows."""
    from .data import SourceUnion, open_source

    luts = [corpus.label_lut(k) for k in range(len(corpus.sources))] if labelled else None
    train = SourceUnion([open_source(s.path, "--real", "train") for s in corpus.sources], luts)
    val = SourceUnion([open_source(s.path, "--real", "val") for s in corpus.sources], luts)
    return train, val


def real_records(corpus, train_counts: list[int], test_counts: list[int]) -> list[dict]:
    """The report's entry per real source: path, hash, units, label map and rows used."""
    return [
        {
            **s.identity(),
            "train_patches": int(n_train),
            "test_patches": int(n_test),
        }
        for s, n_train, n_test in zip(corpus.sources, train_counts, test_counts)
    ]


def units_text(corpus) -> str:
    first = corpus.sources[0]
    return UNITS.format(scale=first.scale, offset=first.offset)


def class_names(corpus, classes) -> dict:
    names = corpus.class_names()
    return {str(c): names[int(c)] for c in classes}


def synthetic_label_lut(path, corpus) -> tuple[np.ndarray | None, str]:
    """(lookup array: the samples' label value → corpus class id, or None to read them as corpus
    class ids; how they were read, for the report)."""
    from ..artifacts.store import open_artifact

    names = None
    try:
        artifact = open_artifact(path, ("hsi-samples", "hsi-dataset"), role="--synthetic")
        for record in artifact.manifest.get("inputs", []):
            if record.get("kind") == "diffusion-model":
                model = open_artifact(record["path"], "diffusion-model", role="the samples' model")
                names = model.config.get("class_names")
                break
    except (HsigenError, OSError, KeyError):
        names = None
    if not names:
        return None, "labels read as the corpus's class ids"
    ours = corpus.class_names()
    missing = [n for n in names if n not in ours]
    if missing:
        raise ConfigError(
            f"--synthetic {path}: its model's classes {missing} are not classes of the real corpus {ours}; "
            "give samples of a model trained on these real datasets (with the same label maps)"
        )
    lut = np.asarray([ours.index(n) for n in names], np.int64)
    return lut, "labels mapped to the corpus's classes by their model's class names"
