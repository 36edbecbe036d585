"""Moved: the downstream check lives in ``stages/downstream`` (``--task pixel-classify`` is
``stages/downstream/pixel_classify.py``); these names stay importable from here for
benchmarks/specdm.py and older callers."""

from dataclasses import dataclass

from ..downstream import protocol
from ..downstream.pixel_classify import SYNTHETIC_RATIO, _per_class_budget, interior_labels, run  # noqa: F401


@dataclass
class DownstreamConfig(protocol.DownstreamConfig):
    """The pixel-classification config as it was: the synthetic share is a number, not "task default"."""

    synthetic_ratio: float | None = SYNTHETIC_RATIO
