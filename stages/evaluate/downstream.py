"""Moved: the downstream check lives in ``stages/downstream`` (``--task pixel-classify`` is
``stages/downstream/pixel_classify.py``); these names stay importable from here."""

from ..downstream.pixel_classify import _per_class_budget, interior_labels, run  # noqa: F401
from ..downstream.protocol import DownstreamConfig  # noqa: F401
