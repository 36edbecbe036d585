"""One entry point per condition: build an extractor, run it on an RGB array in memory.

    from stages.conditions import extract, make_extractor, embed_text
    hed = extract("hed", rgb_hw3_uint8)                     # (1, H, W) float32 in [0, 1]
    seg = extract("seg", rgb, region_pixels=32)             # (3, H, W)
    vec = extract("content", rgb)                           # (64,) unit-norm descriptor
    net = make_extractor("hed", "pretrained", hed_weights="ControlNetHED.pth")
    maps = [net(rgb) for rgb in images]                     # weights loaded once
    lines = make_extractor("mlsd", "pretrained", mlsd_weights="mlsd_large_512_fp32.pth")
    sketch = make_extractor("sketch", "pidinet", pidinet_weights="table5_pidinet.pth")
    enc = make_extractor("content", "encoder", encoder="runs/ae")   # enc(SpectralCube) → (D,)
    txt = embed_text(["farmland", ""])                      # (2, 4) one-hot; "" = no text

Maps are exactly what a conditions artifact stores (8-bit levels), so on-the-fly extraction
during training or sampling matches ``io.load_conditions``.
"""

from __future__ import annotations

import importlib

import numpy as np

from ..common.errors import ConfigError
from .common import KINDS

# kind → backend → "module:Class" (imported when used, so torch loads only for networks).
REGISTRY = {
    "hed": {"offline": "edges:OfflineHED", "pretrained": "edges:PretrainedHED"},
    "mlsd": {"offline": "lines:OfflineMLSD", "pretrained": "lines:PretrainedMLSD"},
    "sketch": {
        "offline": "sketch:OfflineSketch",
        "pretrained": "sketch:PretrainedSketch",
        "pidinet": "sketch:PidiNetSketch",
    },
    "seg": {"offline": "segmentation:OfflineSeg", "labels": "segmentation:LabelSeg"},
    "content": {
        "offline": "content:OfflineContent",
        "clip": "content:ClipContent",
        "encoder": "encoder:EncoderContent",
    },
    "text": {"offline": "text:VocabText", "clip": "text:ClipText"},
}
BACKENDS = {kind: tuple(backends) for kind, backends in REGISTRY.items()}

# The local file or directory each non-offline backend loads: (make_extractor keyword, flag, what).
RESOURCES = {
    ("hed", "pretrained"): ("hed_weights", "--hed-weights FILE", "a local HED weights file, ControlNetHED.pth"),
    ("sketch", "pretrained"): ("hed_weights", "--hed-weights FILE", "a local HED weights file, ControlNetHED.pth"),
    ("sketch", "pidinet"): (
        "pidinet_weights",
        "--pidinet-weights FILE",
        "the local PiDiNet weights, table5_pidinet.pth",
    ),
    ("mlsd", "pretrained"): (
        "mlsd_weights",
        "--mlsd-weights FILE",
        "the local M-LSD large weights, mlsd_large_512_fp32.pth",
    ),
    ("content", "clip"): ("clip_model", "--clip-model DIR", "a local CLIP save_pretrained directory"),
    ("text", "clip"): ("clip_model", "--clip-model DIR", "a local CLIP save_pretrained directory"),
    ("content", "encoder"): (
        "encoder",
        "--encoder AE",
        "an hsigen autoencoder artifact; it embeds hyperspectral images, so a model trained "
        "on encoder content takes its content from a conditions artifact: "
        "`hsigen sample --conditions DIR`",
    ),
}


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"unknown condition kind {kind!r}; choose from {', '.join(KINDS)}")
    return kind


def check_backend(kind: str, backend: str) -> str:
    if backend not in BACKENDS[check_kind(kind)]:
        raise ConfigError(f"{kind} has no backend {backend!r}; available: {', '.join(BACKENDS[kind])}")
    return backend


def extractor_class(kind: str, backend: str = "offline"):
    module, name = REGISTRY[check_kind(kind)][check_backend(kind, backend)].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def accepted_settings(kind: str, backend: str = "offline") -> tuple[str, ...]:
    """The settings (keyword arguments) the extractor of ``kind`` / ``backend`` takes."""
    return extractor_class(kind, backend).accepted_settings()


def make_extractor(
    kind: str,
    backend: str = "offline",
    *,
    hed_weights=None,
    mlsd_weights=None,
    pidinet_weights=None,
    clip_model=None,
    encoder=None,
    device: str = "cpu",
    **settings,
):
    """An extractor object: ``extractor(x) -> array`` (``.embed(texts)`` for text) with
    ``.settings()`` for the manifest and ``.takes`` naming its input (rgb, labels or hsi).
    Pretrained weights are loaded here, once."""
    cls = extractor_class(kind, backend)
    unknown = set(settings) - set(cls.accepted_settings())
    if unknown:
        raise ConfigError(
            f"{kind} ({backend}): unknown settings {sorted(unknown)}; known: "
            f"{', '.join(cls.accepted_settings()) or 'none'}"
        )
    if (kind, backend) not in RESOURCES:
        return cls(**settings)
    keyword, flag, what = RESOURCES[(kind, backend)]
    resource = {
        "hed_weights": hed_weights,
        "mlsd_weights": mlsd_weights,
        "pidinet_weights": pidinet_weights,
        "clip_model": clip_model,
        "encoder": encoder,
    }[keyword]
    if resource is None:
        raise ConfigError(f"{kind} backend {backend} needs {flag} ({what})")
    return cls(resource, device, **settings)


def extract(kind: str, rgb_hw3_uint8: np.ndarray, backend="offline", **options) -> np.ndarray:
    """One condition of one RGB image: maps (C, H, W) float32 in [0, 1], content (D,).
    ``backend`` is a backend name or an extractor from ``make_extractor``."""
    if kind == "text":
        raise ConfigError("text is not extracted from an image; use embed_text(texts)")
    if kind == "seg" and backend == "labels":
        raise ConfigError("the labels backend colour-codes a class map; call make_extractor('seg', 'labels')(labels)")
    if backend == "encoder":
        raise ConfigError(
            "the encoder backend embeds hyperspectral cubes, not RGB; call "
            "make_extractor('content', 'encoder', encoder=AE)(cube)"
        )
    extractor = backend if not isinstance(backend, str) else make_extractor(kind, backend, **options)
    return extractor(rgb_hw3_uint8)


def embed_text(texts: list[str], backend="offline", **options) -> np.ndarray:
    """(N, D) text embeddings: one-hot over the vocabulary (offline) or CLIP (``clip_model=DIR``)."""
    embedder = backend if not isinstance(backend, str) else make_extractor("text", backend, **options)
    return embedder.embed(list(texts))
