"""The released HSIGene foundation model (Pang et al., "HSIGene: A Foundation Model for
Hyperspectral Image Generation", arXiv:2409.12470) re-implemented with its public state-dict
layout: import its checkpoint (``checkpoint.py``), sample it (``generator.py``), fine-tune it
(``finetune.py``)."""

from .config import HSIGeneConfig, TextConfig, VAEConfig
from .model import HSIGene, build_model, prefix_counts

__all__ = ["HSIGeneConfig", "TextConfig", "VAEConfig", "HSIGene", "build_model", "prefix_counts"]
