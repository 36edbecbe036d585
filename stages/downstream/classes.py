"""Label handling shared by the labelled tasks (segment, scene-classify): dataset label
values ↔ class indices, class counts streamed over a source, and a confusion matrix
accumulated batch by batch (mIoU, OA, per-class IoU)."""

from __future__ import annotations

import numpy as np

from ..common.errors import ConfigError
from .data import PatchSource

IGNORE = -1


def class_counts(source: PatchSource, batch: int = 32) -> dict[int, int]:
    """Labelled pixels (label > 0) per label value."""
    counts: dict[int, int] = {}
    for b in source.batches(batch):
        values, n = np.unique(b["labels"][b["labels"] > 0], return_counts=True)
        for v, c in zip(values, n):
            counts[int(v)] = counts.get(int(v), 0) + int(c)
    return counts


def training_classes(source: PatchSource) -> tuple[list[int], dict[int, int]]:
    counts = class_counts(source)
    if len(counts) < 2:
        raise ConfigError(
            f"--real {source.path}: its training split has {len(counts)} labelled class(es); "
            "a labelled task needs at least 2 (ingest with --labels)"
        )
    return sorted(counts), counts


def index_map(labels: np.ndarray, classes: list[int]) -> np.ndarray:
    """Label values → 0..K-1 for training classes, IGNORE for the rest (0 = unlabelled, unseen classes)."""
    lut = np.full(max(max(classes), int(labels.max(initial=0))) + 1, IGNORE, np.int64)
    lut[np.asarray(classes)] = np.arange(len(classes))
    out = np.full(labels.shape, IGNORE, np.int64)
    valid = labels >= 0
    out[valid] = lut[labels[valid]]
    return out


class Confusion:
    def __init__(self, n: int):
        self.matrix = np.zeros((n, n), np.int64)

    def add(self, truth: np.ndarray, pred: np.ndarray) -> None:
        keep = truth != IGNORE
        n = len(self.matrix)
        self.matrix += np.bincount(truth[keep] * n + pred[keep], minlength=n * n).reshape(n, n)

    def scores(self, classes: list[int]) -> dict:
        """OA, mean IoU over the classes present in the truth or the predictions, IoU per class."""
        cm = self.matrix.astype(np.float64)
        tp = np.diag(cm)
        union = cm.sum(0) + cm.sum(1) - tp
        present = union > 0
        iou = np.where(present, tp / np.maximum(union, 1), np.nan)
        return {
            "oa": float(tp.sum() / max(cm.sum(), 1)),
            "miou": float(np.nanmean(iou)) if present.any() else 0.0,
            "per_class_iou": {str(c): (None if np.isnan(v) else float(v)) for c, v in zip(classes, iou)},
            "pixels": int(cm.sum()),
        }
