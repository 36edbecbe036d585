"""Named model sizes: ``tiny`` trains in minutes on a 2-core CPU, ``paper`` is the seed
paper's published configuration (DESIGN.md §5)."""

from __future__ import annotations

import copy

from ..common.errors import ConfigError


def resolve_preset(presets: dict[str, dict], name: str, overrides: dict | None = None) -> dict:
    """A deep copy of ``presets[name]`` with non-None ``overrides`` applied."""
    if name not in presets:
        raise ConfigError(f"--preset {name!r}: choose one of {', '.join(presets)}")
    resolved = copy.deepcopy(presets[name])
    for key, value in (overrides or {}).items():
        if value is not None:
            resolved[key] = value
    resolved["preset"] = name
    return resolved
