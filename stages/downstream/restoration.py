"""What the two restoration tasks (denoise, sr) share: a degradation fixed per (seed, batch)
so every training set is scored on the same degraded inputs, and the image-quality metrics of
``stages/spectral/quality.py`` and ``stages/evaluate/paired.py`` accumulated batch by batch.

PSNR and SSIM are computed in the reference normalisation (peak 1: ingest maps the scene to
[0, 1]); SAM and ERGAS in physical units, because an angle or a relative error is not
invariant to the normalisation's offset."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..evaluate import paired
from ..spectral import quality
from .data import PatchSource
from .report import Metric

PSNR = Metric("psnr", "PSNR (dB)")
SSIM = Metric("ssim", "SSIM")
SAM = Metric("sam", "SAM (°)", higher_is_better=False)
ERGAS = Metric("ergas", "ERGAS", higher_is_better=False)
EVAL_BATCH = 16


def batch_generator(seed: int, batch_index: int):
    """The test degradation's randomness: fixed by the seed and the batch, not the model."""
    import torch

    return torch.Generator().manual_seed(1_000_003 * (seed + 1) + batch_index)


def image_scores(
    source: PatchSource, seed: int, restore: Callable, crop_to: int = 1, ergas_ratio: float | None = None
) -> dict:
    """Mean metrics over ``source``'s patches of ``restore(clean (n,B,H,W) float32, generator)``
    → estimate, patch by patch weighted equally (every metric is a mean over patches)."""
    sums: dict[str, float] = {}
    count = 0
    # Several real datasets: each in its own units, scored part by part (batch numbers, and so the
    # noise drawn for them, run on across the parts as they do through one source).
    batches = ((part, batch) for part in source.parts for batch in part.batches(EVAL_BATCH))
    for b, (part, batch) in enumerate(batches):
        clean = batch["hsi"]
        h, w = clean.shape[-2:]
        clean = clean[..., : h - h % crop_to, : w - w % crop_to]
        estimate = np.asarray(restore(clean, batch_generator(seed, b)), np.float32)
        ref_phys, est_phys = part.physical(clean), part.physical(estimate)
        n = len(clean)
        scores = {
            "psnr": quality.mpsnr(clean, estimate, peak=1.0),
            "ssim": paired.mssim(estimate, clean, value_range=1.0),
            "sam": quality.sam_degrees(ref_phys, est_phys),
        }
        if ergas_ratio is not None:
            scores["ergas"] = paired.ergas(est_phys, ref_phys, ratio=ergas_ratio)
        for k, v in scores.items():
            sums[k] = sums.get(k, 0.0) + v * n
        count += n
    return {k: v / count for k, v in sums.items()}
