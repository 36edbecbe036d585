"""``text``: category text per image (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2, "Text": each training image is
labelled with one of four categories — farmland, city building, architecture, wasteland —
for category-guided synthesis).

Offline backend: a one-hot table over the vocabulary (``--vocab``, the paper's four categories
by default); matching ignores case and surrounding spaces; the empty text is the all-zero
"no text" vector that classifier-free guidance uses. ``clip`` backend: free text through
``CLIPModel.get_text_features`` of a local ``save_pretrained`` directory, L2-normalised; the
empty text is again all zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..common.errors import ConfigError
from .common import Extractor
from .pretrained import ClipExtractor

PAPER_VOCAB = ("farmland", "city building", "architecture", "wasteland")


def parse_vocab(spec: str | None) -> tuple[str, ...]:
    if spec is None or not spec.strip():
        return PAPER_VOCAB
    words = tuple(w.strip().lower() for w in spec.split(",") if w.strip())
    if len(set(words)) != len(words):
        raise ConfigError(f"--vocab {spec!r} repeats a category; list each once, comma-separated")
    return words


@dataclass
class VocabText(Extractor):
    vocab: tuple = field(default=PAPER_VOCAB)  # or a comma-separated string
    kind = "text"
    settings_accepted = ("vocab",)

    def __post_init__(self):
        self.vocab = parse_vocab(self.vocab) if isinstance(self.vocab, str) or self.vocab is None else tuple(self.vocab)

    def settings(self) -> dict:
        return {
            "backend": self.backend,
            "method": "one-hot over the vocabulary",
            "vocab": list(self.vocab),
            "dim": len(self.vocab),
        }

    def embed(self, texts: list[str]) -> np.ndarray:
        table = np.eye(len(self.vocab), dtype=np.float32)
        out = np.zeros((len(texts), len(self.vocab)), np.float32)
        for i, text in enumerate(texts):
            key = text.strip().lower()
            if not key:
                continue
            if key not in self.vocab:
                raise ConfigError(
                    f"text {text!r} is not in the vocabulary ({', '.join(self.vocab)}); add it with --vocab "
                    "or give --clip-model DIR to embed free text"
                )
            out[i] = table[self.vocab.index(key)]
        return out


class ClipText(ClipExtractor):
    kind = "text"

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.clip.dim), np.float32)
        filled = [i for i, t in enumerate(texts) if t.strip()]
        if filled:
            out[filled] = self.clip.text_features([texts[i].strip() for i in filled])
        return out
