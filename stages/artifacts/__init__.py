"""Versioned artifact directories (docs/design.md §2): atomic writes, manifests, validation."""

from .manifest import KINDS, SCHEMA_VERSIONS, load_manifest, validate_manifest
from .store import Artifact, ArtifactWriter, file_sha256, input_record, open_artifact, plain_json, spectral_block

__all__ = [
    "KINDS",
    "SCHEMA_VERSIONS",
    "Artifact",
    "ArtifactWriter",
    "file_sha256",
    "input_record",
    "load_manifest",
    "open_artifact",
    "plain_json",
    "spectral_block",
    "validate_manifest",
]
