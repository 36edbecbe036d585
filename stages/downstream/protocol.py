"""The one protocol of every ``evaluate downstream --task``: does adding synthetic HSIs to the
real training data make the user's own model better on real data it has not seen?

Per seed, a fixed model is trained for a fixed number of steps on each training set —
``real`` (the real dataset's train split), ``real_plus_synthetic`` (plus at most
``synthetic_ratio`` synthetic patches per real training patch) and, where the seed paper
reports it, ``synthetic_only`` (the same synthetic patches alone) — and scored on the held-out
real rows (the val split: no test pixel shares a patch with a training pixel) and, with
``--test``, on a second scene. The same seed draws the same synthetic subset, initial weights,
batches and test degradations for every training set, so the sets are compared by a paired
test over seeds (``report.paired_verdict``). Training reads only the patches of each batch
(``data.Pool``) and evaluation walks the test patches in batches.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from ..artifacts.store import ArtifactWriter, input_record
from ..common import log
from ..common.errors import ConfigError
from .backbone import backbone_files
from .data import PatchSource, Pool, check_compatible, close_all, open_source, sample_sources
from .nets import band_stats
from .report import Metric, comparisons, sets_only, summarise, write_report

MIN_SEEDS = 3


class Task(str, Enum):
    denoise = "denoise"
    sr = "sr"
    pixel_classify = "pixel-classify"
    segment = "segment"
    change = "change"
    scene_classify = "scene-classify"


@dataclass
class DownstreamConfig:
    task: str = Task.pixel_classify.value
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    synthetic_ratio: float | None = None  # None: the task's default
    steps: int | None = None  # None: the task's fixed budget
    batch_size: int | None = None
    lr: float | None = None
    crop: int | None = None  # training crop (pixels)
    scale: int = 4  # sr: ×4 (HSIGene Table 9) or ×2
    noise_sigma: float = 0.2  # denoise: Gaussian σ in normalised units (HSIGene Table 8)
    test: str | None = None  # a second scene, scored but never trained on
    device: str = "auto"
    # pixel-classify (HyperLDM Table VI protocol; see pixel_classify.py)
    per_class: int = 20
    confidence: float = 0.9
    boundary: int = 1
    preset: str = "tiny"
    labels_file: str | None = None
    scene_labels: str | None = None  # scene-classify: one given class per patch (scene_labels.py)
    # segment: a local transformers SegFormer directory used as the encoder (backbone.py)
    backbone: str | None = None


@dataclass
class Context:
    """What a task's model and metrics need to know about the data."""

    bands: int
    config: DownstreamConfig
    hyper: dict
    device: object
    band_mean: np.ndarray | None = None  # real training patches, per band (nets.band_stats)
    band_std: np.ndarray | None = None
    classes: list[int] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # reported in the settings


class PatchTask(ABC):
    """A patch-level task. Subclasses set the class attributes and implement the four hooks."""

    name: str
    paper: str  # the seed experiment reproduced, cited
    model_name: str
    training_sets: tuple[str, ...] = ("real", "real_plus_synthetic", "synthetic_only")
    metrics: list[Metric]
    primary: str
    baseline_label: str
    needs_labels = False
    needs_pair = False
    keys: tuple[str, ...] = ("hsi",)
    defaults = {"steps": 300, "batch_size": 8, "lr": 2e-3, "crop": 16, "synthetic_ratio": 1.0}

    def setup(self, ctx: Context, train: PatchSource, val: PatchSource) -> None:  # noqa: B027  (optional hook)
        """Fill ``ctx`` (classes, weights) from the real training data."""

    @abstractmethod
    def make_model(self, ctx: Context):
        """The task's fixed model, freshly initialised from the current torch seed."""

    @abstractmethod
    def loss(self, model, batch: dict, generator, ctx: Context):
        """One training batch's loss tensor."""

    @abstractmethod
    def evaluate(self, model, source: PatchSource, ctx: Context, seed: int) -> dict:
        """The task's metrics of ``model`` on ``source``."""

    @abstractmethod
    def baseline(self, source: PatchSource, ctx: Context, seed: int) -> dict:
        """The untrained reference the model must beat (noisy input, bicubic, majority class)."""

    def check_config(self, config: DownstreamConfig, hyper: dict) -> None:  # noqa: B027  (optional hook)
        """Task-specific option checks."""

    def protocol_text(self, settings: dict) -> str:
        return ""

    @staticmethod
    def budget_text(s: dict, crops: str, units: str = "patches") -> str:
        """The sentence every task's protocol shares: model, budget, synthetic share, test set, seeds."""
        r = s["resolved"]
        return (
            f"{s['model']}, {r['steps']} steps of batch {r['batch_size']} ({crops}, AdamW lr {r['lr']}); "
            f"synthetic {units} up to {r['synthetic_ratio']}× the {s['train_patches']} real training {units}; "
            f"scored on the {s['test_patches']} patches of the {s['test_split']}; seeds {s['seeds']}."
        )

    def primary_metric(self) -> Metric:
        return next(m for m in self.metrics if m.key == self.primary)


def resolve_hyper(task: PatchTask, config: DownstreamConfig) -> dict:
    given = {
        "steps": config.steps,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "crop": config.crop,
        "synthetic_ratio": config.synthetic_ratio,
    }
    hyper = {k: (v if given[k] is None else given[k]) for k, v in task.defaults.items()}
    if hyper["steps"] < 1 or hyper["batch_size"] < 1:
        raise ConfigError("--steps and --batch-size must be at least 1")
    if hyper["lr"] <= 0:
        raise ConfigError("--lr must be positive")
    if hyper["synthetic_ratio"] < 0:
        raise ConfigError("--synthetic-ratio must be 0 or more (synthetic patches per real training patch)")
    if hyper["crop"] < 8:
        raise ConfigError("--crop must be at least 8 pixels")
    return hyper


def start_report(
    out: Path, config: DownstreamConfig, hyper: dict, real, synthetic: list[Path], overwrite: bool, corpus=None
) -> tuple[ArtifactWriter, bool]:
    """The evaluation-report writer, and whether an identical report (same inputs, by hash, and
    config) is already at ``out``; when not, the destination is checked before any training.
    ``corpus``: the several real datasets (``real`` is then ignored): every source is an input
    and its label map part of the config."""
    extra = [p for p in (config.test, config.labels_file, config.scene_labels) if p] + backbone_files(config.backbone)
    recorded = {**asdict(config), "resolved": hyper}
    if corpus is None:
        inputs = [input_record(p) for p in (real, *synthetic, *extra)]
    else:
        inputs = corpus.input_records() + [input_record(p) for p in (*synthetic, *extra)]
        recorded["real_sources"] = [{"path": str(s.path), "labels": s.label_map} for s in corpus.sources]
    writer = ArtifactWriter(out, "evaluation-report", "evaluate downstream", recorded, inputs, overwrite)
    if writer.up_to_date():
        log.info("evaluate downstream: up to date")
        return writer, True
    writer.check_destination()
    return writer, False


def given_scene_labels(path: str, real: Path, train: PatchSource, val: PatchSource):
    """``train`` and ``val`` labelled by the file's class per patch of ``real``."""
    from .scene_labels import read_scene_labels

    per_row = read_scene_labels(path, len(open_source(real, "--real")))
    return train.with_scene_labels(per_row), val.with_scene_labels(per_row)


def check_seeds(seeds: list[int]) -> None:
    if len(seeds) < MIN_SEEDS or len(set(seeds)) != len(seeds):
        raise ConfigError(
            f"--seeds: the downstream check reports mean ± std and a paired test over at least "
            f"{MIN_SEEDS} seeds, all different, e.g. 0,1,2"
        )


def train_model(task: PatchTask, pool: Pool, ctx: Context, seed: int, scratch: Path):
    """Fixed steps with the project's Trainer; batches come from the step generator."""
    import torch

    from ..common.runtime import seed_everything, torch_threads
    from ..training import Trainer, TrainSpec

    hyper = ctx.hyper
    seed_everything(seed)
    model = task.make_model(ctx)
    spec = TrainSpec(
        steps=int(hyper["steps"]),
        lr=float(hyper["lr"]),
        seed=seed,
        weight_decay=1e-4,
        warmup_steps=min(20, int(hyper["steps"]) // 10),
        log_every=max(1, int(hyper["steps"]) // 5),
        mixed_precision=False,
    )
    trainer = Trainer(model, spec, scratch, ctx.device, {"task": task.name, "seed": seed})

    def loss_fn(net, step, generator):
        batch = pool.draw(generator, int(hyper["batch_size"]), int(hyper["crop"]), task.keys)
        tensors = {k: torch.from_numpy(v).to(trainer.device) for k, v in batch.items()}
        loss = task.loss(net, tensors, generator, ctx)
        return loss, {"loss": float(loss.detach())}

    with torch_threads(1):
        trainer.fit(loss_fn, f"downstream {task.name} seed {seed}")
    model.load_state_dict(trainer.final_state())
    trainer.cleanup()
    return model.eval()


def run_patch_task(
    task: PatchTask, real, synthetic: list[Path], out: Path, config: DownstreamConfig, overwrite: bool = False
):
    """``real``: one hsi-dataset, or the ``Corpus`` of several (``corpus.py``)."""
    try:
        return _run_patch_task(task, real, synthetic, out, config, overwrite)
    finally:
        close_all()


def _run_patch_task(task: PatchTask, real, synthetic: list[Path], out: Path, config: DownstreamConfig, overwrite: bool):
    from ..common.runtime import resolve_device, torch_threads

    check_seeds(config.seeds)
    hyper = resolve_hyper(task, config)
    task.check_config(config, hyper)
    if not synthetic:
        raise ConfigError("--synthetic: give at least one hsi-samples artifact to add to the real data")
    corpus = None if isinstance(real, (str, Path)) else real
    if corpus is None:
        train = open_source(real, "--real", "train")
        val = open_source(real, "--real", "val")
    else:
        from .corpus import union_splits

        train, val = union_splits(corpus, task.needs_labels)
    if config.scene_labels:
        train, val = given_scene_labels(config.scene_labels, real, train, val)
        if config.crop is None:  # each patch is one scene: train and score on whole patches
            hyper["crop"] = min(train.size)
    crop = int(hyper["crop"])
    check_compatible(train, train, "--real", crop, task.needs_labels, task.needs_pair)
    test = None
    if config.test:
        test = open_source(config.test, "--test")
        check_compatible(train, test, "--test", crop, task.needs_labels, task.needs_pair)
    synth, synthetic_labels = [], []
    for path in synthetic:
        s = open_source(path, "--synthetic")
        check_compatible(train, s, "--synthetic", crop, task.needs_labels, task.needs_pair)
        s = s.in_units_of(train)
        if corpus is not None and task.needs_labels:
            from dataclasses import replace

            from .corpus import synthetic_label_lut

            lut, how = synthetic_label_lut(path, corpus)
            s = replace(s, label_lut=lut)
            synthetic_labels.append({"path": str(path), "labels": how})
        synth.append(s)
    writer, done = start_report(out, config, hyper, real, synthetic, overwrite, corpus)
    if done:
        return writer.artifact
    ctx = Context(bands=len(train.wavelengths_nm), config=config, hyper=hyper, device=resolve_device(config.device))
    ctx.band_mean, ctx.band_std = band_stats(train)
    task.setup(ctx, train, val)
    if corpus is not None:
        from . import corpus as several

        ctx.extra["real_units"] = several.units_text(corpus)
        if task.needs_labels:
            ctx.extra["class_names"] = several.class_names(corpus, ctx.classes)
            ctx.extra["synthetic_labels"] = synthetic_labels
    scratch = out.parent / f".{out.name}-downstream"
    budget = int(round(hyper["synthetic_ratio"] * len(train)))
    available = sum(len(s) for s in synth)
    if budget == 0 or available == 0:
        raise ConfigError(
            f"no synthetic patch would be used (--synthetic-ratio {hyper['synthetic_ratio']} × "
            f"{len(train)} real patches, {available} available); raise --synthetic-ratio"
        )

    runs = []
    for seed in config.seeds:
        rng = np.random.default_rng(seed)
        chosen = sample_sources(synth, budget, rng)
        pools = {"real": Pool([train]), "real_plus_synthetic": Pool([train, *chosen]), "synthetic_only": Pool(chosen)}
        with torch_threads(1):
            record = {
                "seed": seed,
                "real_patches": len(train),
                "synthetic_patches": int(sum(len(c) for c in chosen)),
                "baseline": task.baseline(val, ctx, seed),
            }
            if test is not None:
                record["test_scene"] = {"baseline": task.baseline(test, ctx, seed)}
            for name in task.training_sets:
                model = train_model(task, pools[name], ctx, seed, scratch)
                record[name] = task.evaluate(model, val, ctx, seed)
                if test is not None:
                    record["test_scene"][name] = task.evaluate(model, test, ctx, seed)
        primary = task.primary
        log.info(
            f"downstream {task.name} seed {seed}: "
            + ", ".join(f"{n} {record[n][primary]:.4f}" for n in ("baseline", *task.training_sets))
        )
        runs.append(record)

    metrics, primary = task.metrics, task.primary_metric()
    settings = {
        **asdict(config),
        "resolved": hyper,
        "model": task.model_name,
        "classes": ctx.classes,
        "train_patches": len(train),
        "test_patches": len(val),
        "test_split": "dataset val split (rows disjoint from the train split)"
        if corpus is None
        else "val splits of every real source (rows disjoint from their train splits)",
        "synthetic_available": available,
        **ctx.extra,
    }
    report = {
        "kind": "downstream",
        "task": task.name,
        "paper": task.paper,
        "settings": settings,
        "real": str(real) if corpus is None else [str(s.path) for s in corpus.sources],
        **({} if corpus is None else {"real_sources": _real_records(corpus, train, val)}),
        "synthetic": [str(p) for p in synthetic],
        "training_sets": list(task.training_sets),
        "primary_metric": primary.key,
        "baseline_label": task.baseline_label,
        "summary": summarise(runs, task.training_sets, metrics),
        "baseline_summary": summarise(runs, ["baseline"], metrics)["baseline"],
        "comparisons": comparisons(runs, task.training_sets, primary),
        "comparisons_test": "two-sided paired t-test over seeds, alpha 0.05",
        "runs": runs,
    }
    report["summary"][f"delta_{primary.key}"] = report["comparisons"]["real_plus_synthetic"]["mean_delta"]
    if test is not None:
        scene_runs = [{**r["test_scene"], "seed": r["seed"]} for r in runs]
        report["test_scene"] = {
            "path": str(config.test),
            "patches": len(test),
            "summary": summarise(scene_runs, task.training_sets, metrics),
            "baseline_summary": summarise(scene_runs, ["baseline"], metrics)["baseline"],
            "comparisons": comparisons(scene_runs, task.training_sets, primary),
        }
    return _write(writer, report, metrics, primary, task.protocol_text(settings))


def _real_records(corpus, train, val) -> list[dict]:
    from .corpus import real_records

    return real_records(corpus, [len(p) for p in train.parts], [len(p) for p in val.parts])


def _write(writer: ArtifactWriter, report: dict, metrics: list[Metric], primary: Metric, protocol_text: str):
    summary = sets_only(report["summary"])
    with writer.building() as tmp:
        write_report(tmp, report, metrics, primary, protocol_text)
        writer.metrics = {f"{s}_{m.key}_mean": summary[s][m.key]["mean"] for s in summary for m in metrics}
        writer.metrics.update({f"verdict_{s}": c["verdict"] for s, c in report["comparisons"].items()})
    return writer.artifact
