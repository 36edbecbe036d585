"""``--task segment --backbone DIR``: a local SegFormer encoder (Xie et al., "SegFormer: Simple
and Efficient Design for Semantic Segmentation with Transformers", NeurIPS 2021) in place of
the U-Net trained from scratch.

DIR is what transformers' ``save_pretrained`` writes for a SegFormer (``SegformerModel``,
``SegformerForSemanticSegmentation`` or ``SegformerForImageClassification``): config.json and
model.safetensors. It is read with ``local_files_only=True`` and ``use_safetensors=True``, so
nothing is downloaded and no pickle (pytorch_model.bin) is ever opened; a directory that does
not hold both files, or whose config is not a SegFormer's, stops with one message before
anything is written. The checkpoint's own decode head, if it has one, is not used.

The model: per-band standardisation → a learned 1×1 conv from the HSI bands to the encoder's
``num_channels`` → the SegFormer encoder (its four stages' feature maps) → a fresh all-MLP
decode head (Xie et al. §3.2) → bilinear upsampling to the input size. Every weight is
fine-tuned, the encoder's included.
"""

from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import InputError
from ..common.hashing import file_sha256
from .nets import standardise

CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
FLAG = "--backbone"
_SAVE_HINT = (
    "save a SegFormer into it with transformers' save_pretrained(DIR, safe_serialization=True) "
    "(config.json + model.safetensors)"
)


def backbone_files(directory: str | Path | None) -> list[Path]:
    """The files of a backbone directory recorded as the report's inputs (none without one)."""
    if not directory:
        return []
    return [Path(directory) / CONFIG_FILE, Path(directory) / WEIGHTS_FILE]


@dataclass
class Backbone:
    """A SegFormer encoder loaded once from DIR; ``fresh_encoder`` copies it for each training."""

    path: Path
    sha256: str  # of model.safetensors
    config: dict  # the encoder's shape, as reported
    encoder: object  # transformers SegformerModel, never trained itself

    @property
    def num_channels(self) -> int:
        return int(self.encoder.config.num_channels)

    def fresh_encoder(self):
        return copy.deepcopy(self.encoder).train()

    def record(self) -> dict:
        return {
            "path": str(self.path),
            "weights": WEIGHTS_FILE,
            "sha256": self.sha256,
            **self.config,
            "fine_tuned": "all weights (band projection, encoder, decode head)",
        }

    def model_name(self) -> str:
        c = self.config
        return (
            f"SegFormer (Xie et al., NeurIPS 2021): encoder from {self.path} "
            f"({WEIGHTS_FILE} sha256 {self.sha256[:12]}…, hidden sizes {c['hidden_sizes']}, depths {c['depths']}) "
            f"after a learned 1×1 band → {c['num_channels']}-channel projection, fresh all-MLP decode head "
            f"(width {c['decoder_hidden_size']}), all weights fine-tuned"
        )


def _check_files(path: Path) -> None:
    if not path.is_dir():
        raise InputError(
            f"{FLAG} {path}: no such directory; give the directory that transformers' "
            "save_pretrained(DIR, safe_serialization=True) wrote for a SegFormer (config.json + model.safetensors)"
        )
    config_file = path / CONFIG_FILE
    if not config_file.is_file():
        raise InputError(f"{FLAG} {path} has no {CONFIG_FILE}; {_SAVE_HINT}")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"{FLAG} {config_file} is not a readable JSON config ({exc}); {_SAVE_HINT}") from None
    if model_type != "segformer":
        raise InputError(
            f"{FLAG} {path} holds a {model_type or 'model without a model_type'} config, not a SegFormer; "
            f"give a SegFormer directory ({_SAVE_HINT})"
        )
    if not (path / WEIGHTS_FILE).is_file():
        found = [p.name for p in sorted(path.iterdir()) if p.suffix in {".bin", ".pt", ".pth", ".ckpt"}]
        also = f" ({', '.join(found)} is never unpickled)" if found else ""
        raise InputError(f"{FLAG} {path} has no {WEIGHTS_FILE}{also}; {_SAVE_HINT}")


@contextlib.contextmanager
def _quiet_transformers():
    """transformers' load report and progress bars off while loading (hsigen logs what matters)."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_backbone(directory: str | Path) -> Backbone:
    """The SegFormer encoder of ``directory``, every weight read from its model.safetensors."""
    from transformers import SegformerModel

    path = Path(directory)
    _check_files(path)
    try:
        with _quiet_transformers():
            encoder, info = SegformerModel.from_pretrained(
                str(path),
                local_files_only=True,
                use_safetensors=True,
                output_loading_info=True,
                ignore_mismatched_sizes=True,  # reported below, with the key
            )
    except Exception as exc:  # transformers raises OSError, ValueError or RuntimeError for a bad file
        raise InputError(f"{FLAG} {path}: transformers could not load the SegFormer ({exc}); {_SAVE_HINT}") from None
    missing = sorted(str(k) for k in info.get("missing_keys") or [])
    bad = missing + sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys") or [])
    if bad:
        raise InputError(
            f"{FLAG} {path}/{WEIGHTS_FILE} does not hold this config's encoder weights "
            f"({len(bad)} missing or of another shape, e.g. {bad[0]}); {_SAVE_HINT}"
        )
    c = encoder.config
    shape = {
        "num_channels": int(c.num_channels),
        "hidden_sizes": [int(h) for h in c.hidden_sizes],
        "depths": [int(d) for d in c.depths],
        "decoder_hidden_size": int(c.decoder_hidden_size),
    }
    return Backbone(path, file_sha256(path / WEIGHTS_FILE), shape, encoder.eval())


def build_segformer(backbone: Backbone, bands: int, n_classes: int, mean, std, dropout: float = 0.1):
    """The segmenter: fresh band projection and decode head (drawn from the current torch seed)
    around a copy of the loaded encoder."""
    import torch
    from torch import nn

    hidden, width = backbone.config["hidden_sizes"], backbone.config["decoder_hidden_size"]

    class SegFormerSegmenter(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = standardise(mean, std)
            # A learned 1×1 conv maps the HSI's bands to the encoder's input channels, so
            # weights pretrained on RGB (num_channels 3) take any band count.
            self.bands_in = nn.Conv2d(bands, backbone.num_channels, 1)
            # All-MLP decode head: each stage to ``width`` channels, upsampled to the first
            # stage's 1/4 resolution, concatenated, fused, classified (Xie et al. §3.2).
            self.stage_mlps = nn.ModuleList(nn.Conv2d(h, width, 1) for h in hidden)
            self.fuse = nn.Sequential(
                nn.Conv2d(len(hidden) * width, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
            )
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Conv2d(width, n_classes, 1)
            self.encoder = backbone.fresh_encoder()

        def forward(self, x):
            features = self.encoder(pixel_values=self.bands_in(self.inp(x)), output_hidden_states=True).hidden_states
            size = features[0].shape[-2:]
            up = [
                nn.functional.interpolate(mlp(f), size=size, mode="bilinear", align_corners=False)
                for mlp, f in zip(self.stage_mlps, features)
            ]
            logits = self.classifier(self.dropout(self.fuse(torch.cat(up[::-1], 1))))
            return nn.functional.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)

    return SegFormerSegmenter()
