"""``sample``: a trained ``diffusion-model`` → an ``hsi-samples`` artifact, for every
generator alike (``stages/diffusion/generator.py``): check options and conditions, then the
one reverse loop, decoding, and the hsi-samples writer (``stages/artifacts/samples.py``).

As a batch job: samples are made and written part by part (``PART_SAMPLES`` each), so memory
does not grow with ``-n``; finished parts wait in a hidden work directory beside ``--out``
(``.hsigen-partial-NAME``), so a killed run resumes where it stopped. ``--shard I/N`` makes the
I-th of N contiguous slices of whole parts — each sample keeps its own noise and its own
batch, so the shards merged (``merge``) hold exactly the bytes of one run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from ..artifacts import ArtifactWriter, input_record, open_artifact, spectral_block
from ..artifacts.samples import PART_SAMPLES, SampleParts, assemble, link_sample_files
from ..common import log
from ..common.errors import ArtifactError, ConfigError
from ..common.runtime import resolve_device
from .generation import SampleConfig, generate_rows, open_generator, prepare_conditions, resolve_options


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` → (I, N) with 0 ≤ I < N."""
    if text is None:
        return None
    index, _, count = str(text).partition("/")
    if not (index.isdigit() and count.isdigit()) or not 0 <= int(index) < int(count):
        raise ConfigError(f"--shard {text!r}: give I/N with 0 <= I < N, e.g. --shard 0/4")
    return int(index), int(count)


def shard_rows(n: int, shard: tuple[int, int] | None) -> range:
    """The samples of shard I of N: parts ⌊K·I/N⌋ … ⌊K·(I+1)/N⌋ − 1 of the K parts of ``n``."""
    if shard is None:
        return range(n)
    index, count = shard
    parts = -(-n // PART_SAMPLES)
    first, stop = parts * index // count, parts * (index + 1) // count
    return range(min(n, first * PART_SAMPLES), min(n, stop * PART_SAMPLES))


def work_dir(out: Path) -> Path:
    return out.parent / f".hsigen-partial-{out.name}"


def _run_key(recorded: dict, records: list[dict]) -> str:
    text = json.dumps({"config": recorded, "inputs": [r["sha256"] for r in records]}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _open_work(out: Path, key: str) -> Path:
    """The work directory of this run: kept when it belongs to the same config and inputs,
    replaced otherwise (its samples would not be this run's)."""
    work = work_dir(out)
    stamp = work / "run.json"
    if work.exists() and (not stamp.is_file() or json.loads(stamp.read_text()).get("key") != key):
        log.info(f"sample: discarding {work} (partial samples of another config or inputs)")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"key": key}))
    return work


NO_MANIFOLD = "none"  # --spectral-manifold none: raw samples, even from a shipped model with a default


def resolve_spectral_manifold(model_path, requested) -> str | Path | None:
    """The manifold ``sample`` decodes through: the one asked for, none for ``none``, or — when none
    was asked for — the shipped model's default (``stages.pretrained``), which is logged."""
    from .. import pretrained

    if requested is not None:
        return None if str(requested) == NO_MANIFOLD else requested
    default = pretrained.default_spectral_manifold(model_path)
    if default is not None:
        log.info(
            f"sample: decoding every pixel through {default}, the default of {model_path} "
            f"(--spectral-manifold {NO_MANIFOLD} for the raw samples)"
        )
    return default


def run(
    model_path: str | Path,
    out: str | Path,
    cfg: SampleConfig,
    *,
    device: str = "auto",
    overwrite: bool = False,
    conditions=None,
    guidance: float | None = None,
    shard: str | None = None,
    precision: str | None = None,
    guidance_interval: str | tuple[int, int] | None = None,
    spectral_manifold: str | Path | None = None,
):
    """``conditions``: a ``diffusion.generator.ConditionRequest`` (for models that take
    conditions); ``guidance`` None: the generator's default; ``guidance_interval``: (lo, hi) or
    ``"LO:HI"`` timesteps where the guidance applies (None: the generator's default); ``shard``: ``"I/N"`` to make slice I
    of N (merge the N artifacts with ``merge``); ``precision``: fp32 (None) or one the generator
    lists in ``precisions``; ``spectral_manifold``: a ``spectral-manifold`` artifact (``unmix --method
    manifold``) every generated pixel is decoded through (None: a shipped model's default, if any;
    ``"none"``: raw)."""
    from ..diffusion import load_model
    from ..diffusion.schedules import sampling_scheduler

    out = Path(out)
    which = parse_shard(shard)
    model = load_model(model_path)
    generator = open_generator(model)
    cfg = resolve_options(model, generator, cfg)
    rows = shard_rows(cfg.n, which)
    if not rows:
        raise ConfigError(
            f"--shard {shard}: {cfg.n} samples make {-(-cfg.n // PART_SAMPLES)} parts of "
            f"{PART_SAMPLES}, too few for {which[1]} shards; use fewer shards"
        )
    dev = resolve_device(device)
    generator.set_precision(precision, dev)
    prepared = prepare_conditions(model, generator, conditions, cfg.n, cfg.size, guidance, guidance_interval)
    spectral_manifold = resolve_spectral_manifold(model_path, spectral_manifold)
    manifold = None
    if spectral_manifold is not None:
        from ..unmix.manifold import NEAREST_ITERATIONS, open_for_model

        manifold = open_for_model(spectral_manifold, model)

    recorded = {**asdict(cfg), "space": model.space, **prepared.recorded}
    if manifold is not None:
        recorded["spectral_manifold"] = {
            "dims": manifold.dims,
            "by_class": manifold.classes is not None,
            "nearest_iterations": NEAREST_ITERATIONS,  # the projection (stages/unmix/manifold.py)
        }
    recorded.pop("batch_size")  # batching does not change the samples
    if which is not None:
        recorded["shard"] = {"index": which[0], "count": which[1], "first": rows.start, "stop": rows.stop}
    records = [input_record(model_path)] + [input_record(p) for p in prepared.inputs]
    if manifold is not None:
        records.append(input_record(spectral_manifold))
    writer = ArtifactWriter(out, "hsi-samples", "sample", recorded, records, overwrite)
    if writer.up_to_date():
        log.info("sample: up to date")
        return writer.artifact
    writer.check_destination()

    spectral = model.artifact.spectral
    work = _open_work(out, _run_key(recorded, records))
    parts = SampleParts(work, spectral["wavelengths_nm"], spectral["scale"], spectral["offset"], cfg.format)
    done = parts.finished()
    todo = [first for first in range(rows.start, rows.stop, PART_SAMPLES) if first not in done]
    if done:
        log.info(f"sample: resuming — {sum(done.values())} of {len(rows)} samples already made in {work}")
    if todo:
        generator.load(dev, cfg.batch_size)
        scheduler = sampling_scheduler(cfg.sampler, generator.scheduler_config())
        remaining = sum(min(PART_SAMPLES, rows.stop - first) for first in todo)
        with log.progress(f"sample ({cfg.sampler}, {cfg.steps} steps)", remaining * cfg.steps) as bar:
            for first in todo:
                part = range(first, min(first + PART_SAMPLES, rows.stop))
                _, decoded = generate_rows(generator, scheduler, prepared, part, cfg, bar, manifold)
                parts.write_files(first, decoded.hsi, decoded.arrays)
                generator.write_beside(work, decoded, slice(part.start, part.stop), prepared)
                parts.commit(first, decoded.hsi, decoded.arrays)

    with writer.building() as tmp:
        link_sample_files(work, tmp)
        summary = assemble(tmp, parts.sources(), parts.wl, parts.scale, parts.offset)
        metrics, extra = generator.summary(tmp / "samples.h5", prepared)
        writer.spectral = spectral_block(parts.wl, parts.scale, parts.offset)
        writer.metrics = {**summary, **metrics}
        writer.extra = extra
    shutil.rmtree(work)
    kinds = f" ({', '.join(prepared.kinds)})" if prepared.kinds else ""
    part_of = f" (shard {which[0]}/{which[1]}: samples {rows.start}..{rows.stop - 1})" if which else ""
    log.info(f"sample: {len(rows)} samples{kinds}{part_of} of {len(parts.wl)} bands × {cfg.size}×{cfg.size} → {out}")
    return writer.artifact


def merge(shards: list[str | Path], out: str | Path, *, overwrite: bool = False):
    """Join the hsi-samples artifacts of ``sample --shard I/N`` (all N of one run) into the
    artifact that run would have made without ``--shard``, after checking every shard's file
    hashes against its manifest."""
    from ..diffusion import load_model

    if not shards:
        raise ConfigError("--merge needs the shard artifacts of one run (all of `sample --shard I/N`, I = 0..N-1)")
    artifacts = [open_artifact(path, "hsi-samples", role="shard") for path in shards]
    for artifact in artifacts:
        if "shard" not in artifact.config:
            raise ConfigError(
                f"{artifact.path} is not a shard (made without --shard); merge only `sample --shard` outputs"
            )
        changed = artifact.verify()
        if changed:
            raise ArtifactError(
                f"shard {artifact.path}: {changed[0]} does not match the hash in its manifest "
                f"({len(changed)} file(s) changed); remake that shard"
            )
    artifacts.sort(key=lambda a: a.config["shard"]["index"])
    base = {k: v for k, v in artifacts[0].config.items() if k != "shard"}
    inputs = artifacts[0].manifest["inputs"]
    count = artifacts[0].config["shard"]["count"]
    for artifact in artifacts:
        config = {k: v for k, v in artifact.config.items() if k != "shard"}
        if config != base or [i["sha256"] for i in artifact.manifest["inputs"]] != [i["sha256"] for i in inputs]:
            raise ConfigError(
                f"{artifact.path} was made with another config or inputs than {artifacts[0].path}; "
                "merge the shards of one run"
            )
    indices = [a.config["shard"]["index"] for a in artifacts]
    if indices != list(range(count)) or any(a.config["shard"]["count"] != count for a in artifacts):
        missing = sorted(set(range(count)) - set(indices))
        raise ConfigError(
            f"--merge needs each of the {count} shards exactly once; got shards {indices}"
            + (f" (missing {', '.join(map(str, missing))})" if missing else "")
        )

    writer = ArtifactWriter(Path(out), "hsi-samples", "sample", base, inputs, overwrite)
    if writer.up_to_date():
        log.info("sample --merge: up to date")
        return writer.artifact
    writer.check_destination()
    model = load_model(inputs[0]["path"])
    generator = open_generator(model)
    prepared = _conditions_of(generator, artifacts[0])
    spectral = artifacts[0].spectral
    sources = [(a.path / "samples.h5", a.config["shard"]["first"], a.metrics["samples"]) for a in artifacts]
    with writer.building() as tmp:
        for artifact in artifacts:
            link_sample_files(artifact.path, tmp)
        summary = assemble(tmp, sources, spectral["wavelengths_nm"], spectral["scale"], spectral["offset"])
        metrics, extra = generator.summary(tmp / "samples.h5", prepared)
        writer.spectral = spectral
        writer.metrics = {**summary, **metrics}
        writer.extra = extra
    log.info(f"sample --merge: {len(artifacts)} shards, {summary['samples']} samples → {out}")
    return writer.artifact


def _conditions_of(generator, artifact):
    """What ``summary`` needs of the conditions, rebuilt from a shard's manifest (no inputs re-read)."""
    from ..diffusion.generator import Conditions

    described = artifact.config.get("conditions") or {}
    return Conditions(int(artifact.config["n"]), kinds=list(described.get("kinds", [])))
