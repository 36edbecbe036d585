"""Loading a trained ``autoencoder`` artifact: the API the latent-diffusion stages use.

    from stages.autoencoder.io import load_autoencoder
    ae = load_autoencoder("runs/ae", device="cpu")      # eval mode, on that device
    z = ae.encode(hsi)            # hsi: (N, B, H, W) float tensor in the AE's normalised units
    x = ae.decode(z)              # → (N, B, H, W) normalised HSI
    ae.factor, ae.latent_channels, ae.scaling_factor, ae.wavelengths_nm, ae.scale, ae.offset

Per kind:
- ``kl``: ``encode(hsi) -> (N, C, H/f, W/f)``: posterior mean × ``scaling_factor`` (≈ unit
  variance); ``decode(latents) -> hsi``.
- ``vq-rgb``: ``encode(hsi)`` → quantised codes × ``scaling_factor`` (hyperldm eq. 1);
  ``decode(latents, rgb)`` needs the RGB condition (N, 3, H, W): ``ae.rgb_condition(hsi)``
  takes it from the bands nearest 640/550/470 nm in normalised units. ``ae.mix(A, t)`` is
  the linear mixing model (eq. 3); ``ae.decode_parts`` returns (hsi, abundances, spectrum).
- ``two-stream``: ``encode(hsi, labels) -> (N, C_x + C_y, h, w)`` (image latent then mask
  latent, each with its own scaling factor; with ``--pairs``: ``encode(hsi, labels, hsi_t2)``
  → C_x + C_x + C_y); ``decode(latents) -> (hsi, mask_probs)`` (or ``(hsi, hsi_t2, mask_probs)``)
  where ``mask_probs`` is (N, K, H, W) over ``ae.classes``; ``ae.labels_from_probs(p)``
  gives label values.
- ``hsigene-kl``: the HSIGene VAE, the released one that ``hsigen import hsigene`` writes into
  ``MODEL_DIR/autoencoder/`` or one trained from scratch by ``train-ae --kind hsigene-kl``:
  ``encode(hsi)`` → posterior mean × ``scaling_factor`` (0.18215 for the release, 1 / latent
  std for a trained one); ``decode(latents)`` → [-1, 1], clipped. Its normalised units are
  [-1, 1] (the import's spectral block: scale 0.5, offset 0.5, reflectance in [0, 1]; a trained
  one's: half the dataset's scale, so that -1 … 1 spans the dataset's 0 … 1).

Normalised units are the AE's: physical = hsi * ae.scale + ae.offset. To encode data of
another dataset, convert its physical values with these (``stages.autoencoder.codec`` does).
"""

from __future__ import annotations

import importlib
import json

import numpy as np

from ..artifacts import Artifact, open_artifact
from ..common.errors import ArtifactError

MODEL_CLASSES = {
    "kl": ("kl", "KLAutoencoder"),
    "vq-rgb": ("vq_rgb", "VQRGBAutoencoder"),
    "two-stream": ("two_stream", "TwoStreamAutoencoder"),
    "hsigene-kl": ("hsigene_kl", "HSIGeneKLAutoencoder"),  # import hsigene, or train-ae --kind hsigene-kl
}


def model_class(kind: str):
    module, name = MODEL_CLASSES[kind]
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def load_autoencoder(path, device="cpu"):
    """The trained model of an ``autoencoder`` artifact, in eval mode on ``device``."""
    import torch

    artifact = path if isinstance(path, Artifact) else open_artifact(path, "autoencoder")
    meta_path = artifact.file("model.json")
    meta = json.loads(meta_path.read_text())
    if meta.get("kind") not in MODEL_CLASSES:
        raise ArtifactError(f"{artifact.path}: unknown autoencoder kind {meta.get('kind')!r}; upgrade hsigen")
    model = model_class(meta["kind"]).load(artifact.path, meta)
    device = torch.device(device) if isinstance(device, str) else device
    model = model.to(device).eval()
    sp = artifact.spectral
    model.artifact = artifact
    model.wavelengths_nm = np.asarray(sp["wavelengths_nm"], dtype=np.float64)
    model.scale, model.offset = float(sp["scale"]), float(sp["offset"])
    return model
