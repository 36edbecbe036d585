"""One entry point per condition: build an extractor, run it on an RGB array in memory.

    from stages.conditions import extract, make_extractor, embed_text
    hed = extract("hed", rgb_hw3_uint8)                     # (1, H, W) float32 in [0, 1]
    seg = extract("seg", rgb, region_pixels=32)             # (3, H, W)
    vec = extract("content", rgb)                           # (64,) unit-norm descriptor
    net = make_extractor("hed", "pretrained", hed_weights="ControlNetHED.pth")
    maps = [net(rgb) for rgb in images]                     # weights loaded once
    txt = embed_text(["farmland", ""])                      # (2, 4) one-hot; "" = no text

Maps are exactly what a conditions artifact stores (8-bit levels), so on-the-fly extraction
during training or sampling matches ``io.load_conditions``.
"""

from __future__ import annotations

import numpy as np

from ..common.errors import ConfigError
from .common import KINDS

BACKENDS = {
    "hed": ("offline", "pretrained"),
    "mlsd": ("offline",),
    "sketch": ("offline", "pretrained"),
    "seg": ("offline", "labels"),
    "content": ("offline", "clip"),
    "text": ("offline", "clip"),
}
# Settings an offline extractor accepts (the dataclass fields), for clear errors on typos.
SETTINGS = {
    "hed": ("sigmas", "saturation"),
    "mlsd": ("min_length", "thickness"),
    "sketch": ("low", "high", "blur", "epsilon", "min_length", "threshold"),
    "seg": ("region_pixels", "compactness", "threshold"),
    "content": (),
    "text": ("vocab",),
}


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"unknown condition kind {kind!r}; choose from {', '.join(KINDS)}")
    return kind


def check_backend(kind: str, backend: str) -> str:
    if backend not in BACKENDS[check_kind(kind)]:
        raise ConfigError(f"{kind} has no backend {backend!r}; available: {', '.join(BACKENDS[kind])}")
    return backend


def make_extractor(kind: str, backend: str = "offline", *, hed_weights=None, clip_model=None,
                   device: str = "cpu", **settings):
    """An extractor object: ``extractor(rgb) -> array`` (``.embed(texts)`` for text) with
    ``.settings()`` for the manifest. Pretrained weights are loaded here, once."""
    check_backend(kind, backend)
    unknown = set(settings) - set(SETTINGS[kind])
    if unknown:
        raise ConfigError(f"{kind}: unknown settings {sorted(unknown)}; known: {', '.join(SETTINGS[kind]) or 'none'}")
    if backend in ("pretrained",) and hed_weights is None:
        raise ConfigError(f"{kind} backend pretrained needs --hed-weights FILE (a local HED weights file)")
    if backend == "clip" and clip_model is None:
        raise ConfigError(f"{kind} backend clip needs --clip-model DIR (a local CLIP save_pretrained directory)")
    if kind == "hed":
        from .edges import OfflineHED, PretrainedHED

        if backend == "pretrained":
            return PretrainedHED(hed_weights, device)
        if "sigmas" in settings:
            settings["sigmas"] = tuple(float(s) for s in settings["sigmas"])
        return OfflineHED(**settings)
    if kind == "mlsd":
        from .lines import OfflineMLSD

        return OfflineMLSD(**settings)
    if kind == "sketch":
        from .sketch import OfflineSketch, PretrainedSketch

        if backend == "pretrained":
            keep = {k: v for k, v in settings.items() if k in ("threshold", "epsilon", "min_length")}
            return PretrainedSketch(hed_weights, device, **keep)
        settings.pop("threshold", None)
        return OfflineSketch(**settings)
    if kind == "seg":
        from .segmentation import LabelSeg, OfflineSeg

        return LabelSeg() if backend == "labels" else OfflineSeg(**settings)
    if kind == "content":
        from .content import ClipContent, OfflineContent

        return ClipContent(clip_model, device) if backend == "clip" else OfflineContent()
    from .text import ClipText, VocabText, parse_vocab

    if backend == "clip":
        return ClipText(clip_model, device)
    vocab = settings.get("vocab")
    return VocabText(parse_vocab(vocab) if isinstance(vocab, str) or vocab is None else tuple(vocab))


def extract(kind: str, rgb_hw3_uint8: np.ndarray, backend="offline", **options) -> np.ndarray:
    """One condition of one RGB image: maps (C, H, W) float32 in [0, 1], content (D,).
    ``backend`` is a backend name or an extractor from ``make_extractor``."""
    if kind == "text":
        raise ConfigError("text is not extracted from an image; use embed_text(texts)")
    if kind == "seg" and backend == "labels":
        raise ConfigError("the labels backend colour-codes a class map; call make_extractor('seg', 'labels')(labels)")
    extractor = backend if not isinstance(backend, str) else make_extractor(kind, backend, **options)
    return extractor(rgb_hw3_uint8)


def embed_text(texts: list[str], backend="offline", **options) -> np.ndarray:
    """(N, D) text embeddings: one-hot over the vocabulary (offline) or CLIP (``clip_model=DIR``)."""
    embedder = backend if not isinstance(backend, str) else make_extractor("text", backend, **options)
    return embedder.embed(list(texts))
