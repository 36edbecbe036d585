"""Pretrained models shipped inside the package, used by name: ``pretrained:NAME``.

Every stage that opens an artifact accepts ``pretrained:NAME`` where it takes a directory
(``stages.artifacts.store.open_artifact`` resolves it here), e.g.

    hsigen sample --ckpt pretrained:indian-pines-latent --cond hed.png -n 4 --out s
    hsigen inspect pretrained:indian-pines-latent
    hsigen pretrained                      # the list, with each model's measured metrics

Layout (``models/``, built by ``examples/pretrain.sh``):

    models/index.json          name → kind, description, sha256 of every file of the model
    models/NAME/               an ordinary artifact directory (manifest.json + safetensors)
    models/NAME/provenance.json  command, seed, data sha256, steps, wall time, metrics

A model that a shipped model already holds (a latent model keeps a copy of its autoencoder in
``autoencoder/``) is shipped once: its index entry names the holder (``inside``) and the
sub-directory, and carries its own provenance, so ``pretrained:indian-pines-autoencoder``
opens ``indian-pines-latent/autoencoder`` after verifying the holder.

A shipped generator may name the shipped spectral manifold its samples decode through by default
(the index entry's ``spectral_manifold``): ``sample`` then applies it unless told
``--spectral-manifold none``, so that the samples a user gets by name are the ones the realism
targets were measured on (docs/pretrained.md, Session 19).

A pretrained model is read-only: it is verified against ``index.json`` (every file, nested
artifacts such as a latent model's copy of its autoencoder included) the first time a process
opens it, and refused with the fix when any file differs, is missing or was added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import ArtifactError

PREFIX = "pretrained:"
MODELS_DIR = Path(__file__).resolve().parent / "models"
INDEX_NAME = "index.json"
PROVENANCE_NAME = "provenance.json"

_VERIFIED: set[str] = set()  # names verified in this process (hashing ~20 MB once is enough)


@dataclass(frozen=True)
class PretrainedModel:
    name: str
    kind: str
    description: str
    files: dict  # relative path → sha256 (empty for a model inside another)
    path: Path
    inside: str | None = None  # the shipped model that holds this one
    own_provenance: dict | None = None  # a held model's provenance (from the index)
    spectral_manifold: str | None = None  # the shipped manifold its samples decode through by default

    @property
    def reference(self) -> str:
        return PREFIX + self.name

    @property
    def spectral_manifold_reference(self) -> str | None:
        """``pretrained:MANIFOLD`` its samples decode through by default, or None."""
        return None if self.spectral_manifold is None else PREFIX + self.spectral_manifold

    def provenance(self) -> dict:
        if self.own_provenance is not None:
            return self.own_provenance
        path = self.path / PROVENANCE_NAME
        return json.loads(path.read_text()) if path.is_file() else {}

    @property
    def bytes(self) -> int:
        """Bytes this model adds to the package (0 for one held inside another)."""
        return sum((self.path / rel).stat().st_size for rel in self.files if (self.path / rel).is_file())


def is_reference(path) -> bool:
    return isinstance(path, (str, Path)) and str(path).startswith(PREFIX)


def _dir(models_dir: Path | None) -> Path:
    return Path(models_dir) if models_dir is not None else MODELS_DIR  # read at call time (tests point it elsewhere)


def read_index(models_dir: Path | None = None) -> dict:
    path = _dir(models_dir) / INDEX_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())["models"]
    except (ValueError, KeyError) as exc:
        raise ArtifactError(
            f"{path} is corrupt ({exc}); reinstall hsigen or rebuild it with `make pretrained`"
        ) from exc


def available(models_dir: Path | None = None) -> list[PretrainedModel]:
    models_dir = _dir(models_dir)
    models = []
    for name, entry in sorted(read_index(models_dir).items()):
        if "inside" in entry:
            path = models_dir / entry["inside"] / entry["subdir"]
            models.append(
                PretrainedModel(
                    name,
                    entry["kind"],
                    entry.get("description", ""),
                    {},
                    path,
                    entry["inside"],
                    entry.get("provenance", {}),
                )  # fmt: skip
            )
        else:
            models.append(
                PretrainedModel(
                    name,
                    entry["kind"],
                    entry.get("description", ""),
                    dict(entry["files"]),
                    models_dir / name,
                    spectral_manifold=entry.get("spectral_manifold"),
                )
            )
    return models


def lookup(name: str, models_dir: Path | None = None) -> PretrainedModel:
    models = {m.name: m for m in available(models_dir)}
    if name not in models:
        listed = ", ".join(models) or "none are installed (run `make pretrained`)"
        raise ArtifactError(f"there is no pretrained model {name!r}; `hsigen pretrained` lists them: {listed}")
    return models[name]


def verify(model: PretrainedModel, models_dir: Path | None = None) -> None:
    """Every file of the model (of its holder, for a held one) against index.json; raise
    naming the first difference."""
    from ..common.hashing import file_sha256

    if model.inside is not None:
        verify(lookup(model.inside, models_dir), models_dir)
        return
    fix = "reinstall hsigen, or rebuild the pretrained models with `make pretrained`"
    present = {p.relative_to(model.path).as_posix() for p in model.path.rglob("*") if p.is_file()}
    for rel, digest in sorted(model.files.items()):
        target = model.path / rel
        if not target.is_file():
            raise ArtifactError(f"{model.reference} is incomplete: {rel} is missing; {fix}")
        if file_sha256(target) != digest:
            raise ArtifactError(
                f"{model.reference} was modified: {rel} does not match its sha256 in {INDEX_NAME}; refusing it ({fix})"
            )
    extra = sorted(present - set(model.files) - {PROVENANCE_NAME})
    if extra:
        raise ArtifactError(f"{model.reference} has files it was not shipped with ({', '.join(extra)}); {fix}")


def resolve(path, models_dir: Path | None = None) -> Path:
    """The directory of ``pretrained:NAME``, verified once per process."""
    model = lookup(str(path)[len(PREFIX) :], models_dir)
    key = str(model.path)
    if key not in _VERIFIED:
        verify(model, models_dir)
        _VERIFIED.add(key)
    return model.path


def directory(path) -> Path:
    """The directory an artifact argument names: ``pretrained:NAME`` resolved (and verified), any
    other path as it is. For code that copies or lists an artifact's files itself."""
    return resolve(path) if is_reference(path) else Path(path)


def reference_of(path) -> str | None:
    """``pretrained:NAME`` for a path inside the shipped models (how an input is recorded), else None."""
    models_dir = _dir(None)
    try:
        rel = Path(path).resolve().relative_to(models_dir.resolve())
    except (ValueError, OSError):
        return None
    for model in available(models_dir):
        if model.path.resolve() == (models_dir / rel).resolve():
            return model.reference
    return None


def default_spectral_manifold(ckpt) -> str | None:
    """``pretrained:MANIFOLD`` when ``ckpt`` is a shipped generator that decodes through one by
    default (its index entry), else None."""
    return lookup(str(ckpt)[len(PREFIX) :]).spectral_manifold_reference if is_reference(ckpt) else None
