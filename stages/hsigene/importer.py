"""``hsigen import hsigene CKPT``: the released checkpoint → a ``diffusion-model`` artifact whose
VAE is an ``autoencoder`` artifact in its ``autoencoder/`` (layout: ``artifact.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from ..artifacts import ArtifactWriter, input_record, spectral_block
from ..common import log
from ..common.errors import ConfigError, InputError
from .artifact import WAVELENGTHS_NM, manifest_config, write_weights
from .config import HSIGeneConfig


def _local_dir(option: str, path: str | None) -> str | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_dir():
        raise InputError(f"{option} {path} is not a directory; pass a local folder (nothing is downloaded)")
    return str(p.resolve())


def read_model_config(path: str | None) -> HSIGeneConfig:
    if path is None:
        return HSIGeneConfig()
    if path == "tiny":
        return HSIGeneConfig.tiny()
    try:
        return HSIGeneConfig.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"--model-config {path}: {exc}; pass a JSON of HSIGeneConfig fields or 'tiny'") from None


def import_checkpoint(
    ckpt: str | Path,
    out: str | Path,
    *,
    clip_model: str | None = None,
    content_encoder: str | None = None,
    model_config: str | None = None,
    sample_size: int | None = None,
    overwrite: bool = False,
):
    from .checkpoint import load_strict, read_state_dict, to_released_names
    from .model import build_model

    if not Path(ckpt).is_file():
        raise InputError(
            f"checkpoint {ckpt} does not exist; pass the released HSIGene last.ckpt or a .safetensors file"
        )
    cfg = read_model_config(model_config)
    clip_dir = _local_dir("--clip-model", clip_model)
    content_dir = _local_dir("--content-encoder", content_encoder)
    size = sample_size or cfg.vae.resolution
    if size % (cfg.vae.factor * 2 ** (len(cfg.channel_mult) - 1)):
        raise ConfigError(
            f"--sample-size {size} must be a multiple of {cfg.vae.factor * 2 ** (len(cfg.channel_mult) - 1)}"
        )
    recorded = manifest_config(cfg, size, clip_dir, content_dir)
    inputs = [input_record(ckpt)]
    writer = ArtifactWriter(Path(out), "diffusion-model", "import", recorded, inputs, overwrite)
    if writer.up_to_date():
        log.info("import: up to date")
        return writer.artifact
    writer.check_destination()
    state = read_state_dict(ckpt)
    model = build_model(cfg, device="meta")
    load_strict(model, state)  # refuses before anything is written
    released = to_released_names(model.state_dict(), model)
    with writer.building() as tmp:
        # The VAE goes to tmp/autoencoder/, a complete autoencoder artifact (kind hsigene-kl).
        counts = write_weights(tmp, released, cfg, inputs=inputs, sample_size=size)
        writer.spectral = spectral_block(WAVELENGTHS_NM, 1.0, 0.0)
        writer.metrics = {"parameters": counts, "keys": len(state)}
    log.info(f"import: HSIGene checkpoint ({len(state)} keys, {sum(counts.values()):,} parameters) → {out}")
    return writer.artifact
