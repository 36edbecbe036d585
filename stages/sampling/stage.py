"""``sample``: a trained ``diffusion-model`` → an ``hsi-samples`` artifact, for every
generator alike (``stages/diffusion/generator.py``): check options and conditions, then the
one reverse loop, decoding, and the hsi-samples writer (``stages/artifacts/samples.py``)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, input_record, spectral_block
from ..artifacts.samples import write_samples
from ..common import log
from ..common.runtime import resolve_device
from .generate import SampleConfig, generate_rows, open_generator, resolve_options


def run(model_path: str | Path, out: str | Path, cfg: SampleConfig, *, device: str = "auto",
        overwrite: bool = False, conditions=None, guidance: float = 2.0):
    """``conditions``: a ``diffusion.generator.ConditionRequest`` (for models that take conditions)."""
    from ..diffusion import load_model
    from ..diffusion.schedules import sampling_scheduler

    model = load_model(model_path)
    generator = open_generator(model)
    cfg = resolve_options(model, generator, cfg)
    prepared = generator.prepare(conditions, cfg.n, cfg.size, guidance)   # every input read before writing

    recorded = {**asdict(cfg), "space": model.space, **prepared.recorded}
    recorded.pop("batch_size")  # batching does not change the samples
    records = [input_record(model_path)] + [input_record(p) for p in prepared.inputs]
    writer = ArtifactWriter(Path(out), "hsi-samples", "sample", recorded, records, overwrite)
    if writer.up_to_date():
        log.info("sample: up to date")
        return writer.artifact
    writer.check_destination()

    generator.load(resolve_device(device), cfg.batch_size)
    scheduler = sampling_scheduler(cfg.sampler, model.training_scheduler_config())
    with log.progress(f"sample ({cfg.sampler}, {cfg.steps} steps)", cfg.n * cfg.steps) as bar:
        _, decoded = generate_rows(generator, scheduler, prepared, range(cfg.n), cfg, bar)
    with writer.building() as tmp:
        summary = write_samples(tmp, decoded.hsi, decoded.wavelengths_nm, decoded.scale, decoded.offset,
                                cfg.format, **decoded.arrays)
        generator.write_beside(tmp, decoded, slice(0, cfg.n), prepared)
        writer.spectral = spectral_block(decoded.wavelengths_nm, decoded.scale, decoded.offset)
        writer.metrics = {**summary, **decoded.metrics}
        if decoded.extra:
            writer.extra = decoded.extra
    kinds = f" ({', '.join(prepared.kinds)})" if prepared.kinds else ""
    log.info(f"sample: {cfg.n} samples{kinds} of {len(np.asarray(decoded.wavelengths_nm))} bands × "
             f"{cfg.size}×{cfg.size} → {out}")
    return writer.artifact
