"""Conventions shared by every condition extractor.

Maps are float32 (C, H, W) in [0, 1], quantised to 8-bit levels so that a map computed in
memory equals the PNG written to a conditions artifact; embeddings are float32 (D,).
"""

from __future__ import annotations

import numpy as np

from ..common.errors import ConfigError, InputError

MAP_KINDS = ("hed", "mlsd", "sketch", "seg")
EMBEDDING_KINDS = ("content", "text")
KINDS = MAP_KINDS + EMBEDDING_KINDS
MAP_CHANNELS = {"hed": 1, "mlsd": 1, "sketch": 1, "seg": 3}


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"an extractor needs an (H, W, 3) uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    return rgb


def quantise(map_hw_or_hwc: np.ndarray) -> np.ndarray:
    """[0, 1] float (H, W) or (H, W, C) → (C, H, W) float32 on the 8-bit grid."""
    m = np.clip(np.nan_to_num(np.asarray(map_hw_or_hwc, dtype=np.float32)), 0.0, 1.0)
    m = np.round(m * 255.0) / 255.0
    if m.ndim == 2:
        m = m[None]
    else:
        m = np.moveaxis(m, -1, 0)
    return np.ascontiguousarray(m, dtype=np.float32)


def to_uint8(map_chw: np.ndarray) -> np.ndarray:
    """(C, H, W) [0, 1] → (H, W) or (H, W, 3) uint8 for PNG."""
    m = (np.clip(map_chw, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    return m[0] if m.shape[0] == 1 else np.moveaxis(m, 0, -1)


# How a setting is normalised, by its dataclass annotation (settings arrive from the command
# line, YAML or Python; the manifest must record one canonical form).
_SETTING_TYPES = {"float": float, "int": int, "tuple": lambda v: tuple(float(x) for x in v)}


class Extractor:
    """What every condition extractor shares.

    ``takes`` names the input ``__call__`` expects per image: ``"rgb"`` ((H, W, 3) uint8),
    ``"labels"`` ((H, W) class map) or ``"hsi"`` (a ``sources.SpectralCube``). ``batch`` runs a
    list at once (networks override it to make one forward pass).
    """

    kind: str = ""
    backend: str = "offline"
    takes: str = "rgb"
    settings_accepted: tuple[str, ...] = ()

    @classmethod
    def accepted_settings(cls) -> tuple[str, ...]:
        """Keyword settings ``make_extractor`` may pass to this class."""
        return cls.settings_accepted

    def check_inputs(self, inputs: list) -> None:
        """Validate every input before anything is written (extractors with requirements override)."""

    def batch(self, inputs: list) -> list[np.ndarray]:
        return [self(x) for x in inputs]


class MapExtractor(Extractor):
    """Base of the classical map extractors, written as dataclasses of their settings.

    ``settings()`` (the manifest record) lists every dataclass field (renamed through
    ``setting_names`` where the manifest has always used another key) after ``backend`` and
    ``method``; ``__call__`` quantises what ``compute`` returns ((H, W) or (H, W, C) in [0, 1])."""

    method: str = ""
    setting_names: dict = {}

    @classmethod
    def accepted_settings(cls) -> tuple[str, ...]:
        from dataclasses import fields

        return tuple(f.name for f in fields(cls))

    def __post_init__(self):
        from dataclasses import fields

        for f in fields(self):
            cast, value = _SETTING_TYPES.get(str(f.type)), getattr(self, f.name)
            try:
                setattr(self, f.name, value if cast is None else cast(value))
            except (TypeError, ValueError):
                raise ConfigError(f"{self.kind}: setting {f.name}={value!r} is not a valid {f.type}") from None

    def settings(self) -> dict:
        record = {"backend": self.backend, "method": self.method}
        for name in self.accepted_settings():
            value = getattr(self, name)
            record[self.setting_names.get(name, name)] = list(value) if isinstance(value, tuple) else value
        return record

    def __call__(self, x) -> np.ndarray:
        return quantise(self.compute(x))  # each subclass defines ``compute``


class NetworkExtractor(Extractor):
    """An annotator network on the user's local weights: one forward pass per ``batch``;
    ``__call__`` is a batch of one."""

    def __call__(self, x) -> np.ndarray:
        return self.batch([x])[0]


def network_resolution(resolution, kind: str, multiple: int = 1) -> int:
    """The side an annotator network runs at (ControlNet's detect resolution), checked."""
    try:
        side = int(resolution)
    except (TypeError, ValueError):
        side = -1
    if side < multiple or side % multiple or side > 4096:
        raise ConfigError(
            f"{kind}: resolution {resolution!r} must be a multiple of {multiple} between {multiple} "
            "and 4096 pixels (the side the network runs at; 512 = ControlNet's)"
        )
    return side
