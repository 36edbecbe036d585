"""``condition``: HSIGene's six control conditions (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2) from hsi-dataset /
hsi-samples artifacts or RGB images — hed, mlsd, sketch, seg (maps) and content, text
(embeddings) — each with an offline backend and, where the paper uses a network, a backend on
local pretrained weights (HED, M-LSD, PiDiNet, CLIP), plus content from a trained hsigen
autoencoder of the hyperspectral source itself. Read results with ``io.load_conditions``; extract in memory with
``extract`` / ``make_extractor`` / ``embed_text``."""

from .common import EMBEDDING_KINDS, KINDS, MAP_KINDS
from .extractors import BACKENDS, embed_text, extract, make_extractor

__all__ = [
    "BACKENDS",
    "EMBEDDING_KINDS",
    "KINDS",
    "MAP_KINDS",
    "ConditionConfig",
    "embed_text",
    "extract",
    "load_conditions",
    "make_extractor",
]


def __getattr__(name):
    # ``stages.conditions.stage`` is the stage module; its ``run`` function is the entry point.
    if name == "ConditionConfig":
        from .stage import ConditionConfig

        return ConditionConfig
    if name == "load_conditions":
        from .io import load_conditions

        return load_conditions
    raise AttributeError(name)
