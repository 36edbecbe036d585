"""Install a trained artifact as a shipped pretrained model (what ``examples/pretrain.py`` calls).

The artifact directory is copied whole (hidden files such as locks left out) to
``models/NAME``, its ``provenance.json`` written beside it, and ``models/index.json`` updated
with the sha256 of every file, so that ``resolve`` can refuse a modified copy. Safetensors
weights only: an artifact holding a pickle-based file (.pt, .pth, .ckpt, .bin, .pkl) is refused.
``float16`` names weight files to ship at half precision (the package's size budget); diffusers loads
them back into the float32 model, and the copy's manifest records their new hashes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..artifacts.store import file_sha256, open_artifact
from ..common.errors import ArtifactError
from . import INDEX_NAME, PROVENANCE_NAME, _dir

PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle"}


def file_hashes(directory: Path) -> dict:
    """sha256 of every file under ``directory`` (relative POSIX paths), provenance excluded."""
    return {
        p.relative_to(directory).as_posix(): file_sha256(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != PROVENANCE_NAME
    }


def half_precision(directory: Path, files) -> None:
    """Store the float32 tensors of ``files`` (safetensors, relative to the artifact ``directory``) as
    float16 and update the record of them (sha256, bytes) in the artifact's manifest and in that of
    every artifact nested on the way (a model's ``autoencoder/``), whose own manifest then changes too."""
    import torch
    from safetensors.torch import load_file, save_file

    listed = {o["path"] for o in json.loads((directory / "manifest.json").read_text())["outputs"]}
    for rel in files:
        if rel not in listed or not rel.endswith(".safetensors"):
            raise ArtifactError(f"{directory}: {rel} is not a safetensors output of the artifact")
    for rel in files:
        path = directory / rel
        tensors = load_file(path)
        save_file({k: v.half() if v.dtype == torch.float32 else v for k, v in tensors.items()}, path)
        parents = [directory.joinpath(*Path(rel).parts[:i]) for i in range(len(Path(rel).parts))]
        changed = {path}
        for holder in reversed([d for d in parents if (d / "manifest.json").is_file()]):  # innermost first
            manifest_path = holder / "manifest.json"
            manifest = json.loads(manifest_path.read_text())
            for record in manifest["outputs"]:
                target = holder / record["path"]
                if target in changed:
                    record.update(sha256=file_sha256(target), bytes=target.stat().st_size)
            manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
            changed.add(manifest_path)


def install(
    name: str,
    artifact_dir: str | Path,
    description: str,
    provenance: dict,
    models_dir: Path | None = None,
    float16: tuple[str, ...] = (),
    spectral_manifold: str | None = None,
) -> Path:
    """Copy ``artifact_dir`` to ``models_dir/name`` and register it; returns the installed path.
    ``spectral_manifold``: the name of a shipped manifold the model's samples decode through by
    default (``stages.pretrained``)."""
    if not name or "/" in name or name.startswith("."):
        raise ArtifactError(f"pretrained model name {name!r} must be a plain name such as indian-pines-latent")
    artifact = open_artifact(artifact_dir)
    bad = artifact.verify()
    if bad:
        raise ArtifactError(f"{artifact_dir}: {', '.join(bad)} changed since they were written; rebuild it first")
    pickles = [p.name for p in Path(artifact_dir).rglob("*") if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise ArtifactError(f"{artifact_dir} holds pickle-based files ({', '.join(pickles)}); ship safetensors only")
    models_dir = _dir(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / name
    staging = models_dir / f".{name}.installing"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(artifact_dir, staging, ignore=shutil.ignore_patterns(".*"))
    if float16:
        try:
            half_precision(staging, float16)
        except Exception:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        provenance = {**provenance, "float16_weights": sorted(float16)}
    (staging / PROVENANCE_NAME).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)

    entry = {"kind": artifact.kind, "description": description, "files": file_hashes(target)}
    if spectral_manifold is not None:
        entry["spectral_manifold"] = spectral_manifold
    _register(models_dir, name, entry)
    return target


def install_held(
    name: str, holder: str, subdir: str, description: str, provenance: dict, models_dir: Path | None = None
) -> Path:
    """Register the artifact at ``holder/subdir`` (already shipped inside ``holder``) as ``name``."""
    models_dir = _dir(models_dir)
    index = _read(models_dir)
    if holder not in index or "inside" in index[holder]:
        raise ArtifactError(f"{holder!r} is not an installed pretrained model; install it first")
    path = models_dir / holder / subdir
    artifact = open_artifact(path)
    entry = {"kind": artifact.kind, "description": description, "inside": holder, "subdir": subdir}
    _register(models_dir, name, entry | {"provenance": provenance})
    shutil.rmtree(models_dir / name, ignore_errors=True)  # a copy shipped whole before
    return path


def _read(models_dir: Path) -> dict:
    index_path = models_dir / INDEX_NAME
    return json.loads(index_path.read_text())["models"] if index_path.is_file() else {}


def _register(models_dir: Path, name: str, entry: dict) -> None:
    models = _read(models_dir)
    models[name] = entry
    (models_dir / INDEX_NAME).write_text(json.dumps({"models": models}, indent=2, sort_keys=True) + "\n")
