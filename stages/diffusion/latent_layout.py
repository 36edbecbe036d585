"""Names a latent diffusion-model artifact and its condition kinds share between the latent
space (``spaces/latent.py``), the joint space (``spaces/joint.py``), the corpus data path
(``stages/data/latent.py``) and imported HSIGene models (``stages/hsigene``). Kept apart from
them so that none imports another (no import cycle)."""

from __future__ import annotations

from pathlib import Path

from ..common.errors import ConfigError

AUTOENCODER_DIR = "autoencoder"  # the autoencoder copied into a latent model's artifact


def copy_autoencoder(autoencoder, model_dir: Path) -> None:
    """Copy the autoencoder artifact (a directory or ``pretrained:NAME``) into
    ``model_dir/autoencoder/``: a latent model decodes with it, so it travels inside."""
    import shutil

    from .. import pretrained

    shutil.copytree(pretrained.directory(autoencoder), model_dir / AUTOENCODER_DIR, ignore=shutil.ignore_patterns(".*"))


DEFAULT_KINDS = ("hed", "mlsd", "sketch", "seg", "content")


def parse_kinds(kinds) -> list[str] | None:
    from .control import CONDITION_KINDS

    if kinds is None:
        return None
    names = [k.strip() for k in (kinds.split(",") if isinstance(kinds, str) else kinds) if k.strip()]
    unknown = [k for k in names if k not in CONDITION_KINDS]
    if unknown:
        raise ConfigError(
            f"--kinds: unknown condition kind(s) {', '.join(unknown)}; choose from {', '.join(CONDITION_KINDS)}"
        )
    if len(set(names)) != len(names):
        raise ConfigError("--kinds names a kind twice")
    return names
