"""Named model sizes as typed dataclasses: ``tiny`` trains in minutes on a 2-core CPU,
``paper`` is the seed paper's published configuration (docs/design.md §5).

A stage declares its preset type (a dataclass, sections such as ``unet`` as nested
dataclasses) and its table with ``preset_table(Type, {name: mapping})``; every mapping is
checked against the type, so a misspelt key in a table fails at import. ``resolve_preset``
applies a ``--model-config`` mapping (any field; a section as a nested mapping, merged into
the preset's) and then the command-line overrides, and returns the plain dict that the
stage builds its model from and records in the manifest.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..common.errors import ConfigError

P = TypeVar("P")


class Preset:
    """Base of the preset dataclasses: ``to_dict`` gives the plain mapping models are built from."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class UNetConfig(Preset):
    """A diffusers UNet's architecture (``UNet2DModel`` / ``UNet2DConditionModel`` arguments)."""

    block_out_channels: list[int]
    layers_per_block: int
    down_block_types: list[str]
    up_block_types: list[str]
    norm_num_groups: int
    attention_head_dim: int


@dataclasses.dataclass(frozen=True)
class NoiseSchedule(Preset):
    """A DDPM noise schedule (diffusers scheduler arguments)."""

    num_train_timesteps: int
    beta_start: float
    beta_end: float
    beta_schedule: str


def preset_table(preset_type: type[P], table: Mapping[str, Mapping]) -> dict[str, P]:
    """``{name: preset_type}`` from plain mappings, each checked key by key and type by type."""
    return {name: from_mapping(preset_type, values, f"preset {name!r}") for name, values in table.items()}


def from_mapping(preset_type: type[P], values: Mapping, source: str, section: str = "") -> P:
    """An instance of ``preset_type`` from ``values``: every field given, no unknown key, each
    value of its field's type (a nested dataclass from a nested mapping)."""
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"{source}: {section or 'the model config'} must be a mapping of keys to values, not {values!r}"
        )
    hints = typing.get_type_hints(preset_type)
    names = [f.name for f in dataclasses.fields(preset_type)]
    unknown = [key for key in values if key not in names]
    if unknown:
        raise ConfigError(_unknown_key_message(source, section, unknown[0], names))
    missing = [name for name in names if name not in values]
    if missing:
        raise ConfigError(f"{source}: {section or 'the preset'} lacks {', '.join(missing)}")
    return preset_type(**{name: _checked(values[name], hints[name], source, _join(section, name)) for name in names})


def _unknown_key_message(source: str, section: str, key: str, names: list[str]) -> str:
    near = difflib.get_close_matches(str(key), names, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return (
        f"{source}: unknown key {_join(section, str(key))!r}{hint}; valid keys"
        f"{f' of {section}' if section else ''}: {', '.join(names)}"
    )


def _join(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def _checked(value: Any, hint: Any, source: str, where: str) -> Any:
    """``value`` if it is of type ``hint`` (an int passes for a float and stays an int, so
    resolved configs read as they always did), a nested dataclass built from a mapping."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _checked(value, next(a for a in args if a is not type(None)), source, where)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return from_mapping(hint, value, source, where)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {where} must be a list, not {value!r}")
        return [_checked(item, args[0], source, f"{where}[{i}]") for i, item in enumerate(value)]
    accepted = {float: (int, float), int: (int,), bool: (bool,), str: (str,)}.get(hint)
    if accepted is None:
        raise ConfigError(f"internal: preset field {where} has an unsupported type {hint!r}")
    if not isinstance(value, accepted) or (hint is not bool and isinstance(value, bool)):
        raise ConfigError(f"{source}: {where} must be {hint.__name__}, not {value!r}")
    return value


def read_model_config(path: str | Path) -> dict:
    """The mapping of a ``--model-config`` YAML file (``yaml.safe_load``)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--model-config {path} does not exist; give a YAML file of preset fields")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"--model-config {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--model-config {path} must be a mapping of preset fields to values")
    return data


def _merged(base: dict, changes: Mapping) -> dict:
    """``base`` with ``changes`` applied; a mapping onto a section merges into it key by key."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merged(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, Mapping) else value
    return out


def resolve_preset(
    presets: Mapping[str, Preset],
    name: str,
    overrides: dict | None = None,
    model_config: Mapping | None = None,
    source: str = "--model-config",
) -> dict:
    """``presets[name]`` as a plain dict, with ``model_config`` (a ``--model-config`` mapping)
    and then the non-None ``overrides`` (command-line options) applied and type-checked."""
    if name not in presets:
        raise ConfigError(f"--preset {name!r}: choose one of {', '.join(presets)}")
    preset = presets[name]
    values = _merged(preset.to_dict(), model_config or {})
    checked = from_mapping(type(preset), values, source)
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    resolved = from_mapping(type(preset), {**checked.to_dict(), **given}, "command-line option").to_dict()
    resolved["preset"] = name
    return resolved
