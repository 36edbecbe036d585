"""manifest.json: JSON-Schema validation on write and read, version and kind checks."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from ..common.errors import ArtifactError

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

# The newest manifest version this hsigen writes and reads, per artifact kind.
SCHEMA_VERSIONS: dict[str, int] = {
    "hsi-dataset": 1,
    "unmixing": 1,
    "spectral-manifold": 1,
    "autoencoder": 1,
    "diffusion-model": 1,
    "conditions": 1,
    "hsi-samples": 1,
    "sr-model": 1,
    "evaluation-report": 1,
    "classifier": 1,
}
KINDS = tuple(SCHEMA_VERSIONS)


@functools.cache
def _registry() -> Registry:
    if not SCHEMA_DIR.is_dir():
        raise ArtifactError(f"schema directory {SCHEMA_DIR} is missing; reinstall hsigen from its source tree")
    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        schema = json.loads(path.read_text())
        resources.append((path.name, Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@functools.cache
def schema(name: str) -> dict:
    """A schema by file name, e.g. ``hsi-dataset.v1.json``."""
    path = SCHEMA_DIR / name
    if not path.is_file():
        raise ArtifactError(f"no schema {name} in {SCHEMA_DIR}")
    return json.loads(path.read_text())


def validate(document: Any, schema_name: str, what: str) -> None:
    validator = jsonschema.Draft202012Validator(schema(schema_name), registry=_registry())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise ArtifactError(f"{what} does not match {schema_name} at {where}: {first.message}")


def validate_manifest(manifest: dict, where: str = "manifest") -> None:
    """Refuse unknown kinds and newer versions with a useful message, then validate."""
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{where} is not a JSON object; the artifact is corrupt, rebuild it")
    kind = manifest.get("kind")
    if kind not in SCHEMA_VERSIONS:
        raise ArtifactError(
            f"{where} has unknown kind {kind!r}; this hsigen knows {', '.join(KINDS)} "
            f"(it may come from a newer hsigen {manifest.get('hsigen_version', '?')}; upgrade hsigen)"
        )
    version = manifest.get("schema_version")
    if not isinstance(version, int):
        raise ArtifactError(f"{where} has no integer schema_version; the artifact is corrupt, rebuild it")
    if version > SCHEMA_VERSIONS[kind]:
        raise ArtifactError(
            f"{where} is a {kind} v{version}, newer than this hsigen reads (v{SCHEMA_VERSIONS[kind]}); "
            f"it needs hsigen {manifest.get('hsigen_version', 'newer')} or later: upgrade hsigen"
        )
    validate(manifest, f"{kind}.v{version}.json", where)


def load_manifest(directory: Path) -> dict:
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise ArtifactError(
            f"{directory} is not an hsigen artifact (no manifest.json: missing, or an interrupted run); "
            "run the stage that makes it again"
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}); the artifact is corrupt, rebuild it") from exc
    validate_manifest(manifest, str(path))
    return manifest
