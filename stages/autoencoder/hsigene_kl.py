"""``kind: hsigene-kl``: the released HSIGene VAE (Pang et al., arXiv:2409.12470 §3.2; the ldm
``AutoencoderKL`` of LiPang/HSIGene 9f893a7, re-implemented in ``stages/hsigene/vae.py``) as an
hsigen autoencoder. ``hsigen import hsigene`` writes it into ``MODEL_DIR/autoencoder/``; it is
imported, never trained (``train-ae`` has no such kind).

Units: the VAE works on [-1, 1] (the release decodes to x and saves x·0.5 + 0.5 as reflectance in
[0, 1]), so the artifact's spectral block says physical = stored · 0.5 + 0.5 and ``encode`` /
``decode`` take and give [-1, 1]. ``decode`` clips to [-1, 1], as ``sample`` clips its output
to [0, 1]: a reconstruction is what a sample of the imported model can be.

Latents are the posterior mean × the model's ``scale_factor`` (0.18215 in the release): the
units the diffusion model works in.

Weights: ``model.safetensors`` with the released ``first_stage_model.*`` key names (the import's
other two weight files hold the rest of the released state dict).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from ..common.errors import ArtifactError

KIND = "hsigene-kl"
WEIGHTS = "model.safetensors"
PREFIX = "first_stage_model."


def vae_config(values: dict):
    """A ``VAEConfig`` from model.json's ``vae`` block (unknown keys refused)."""
    from ..hsigene.config import HSIGeneConfig

    return HSIGeneConfig.from_dict({"vae": values}).vae


class HSIGeneKLAutoencoder(nn.Module):
    kind = KIND

    def __init__(self, cfg, scale_factor: float, vae: nn.Module | None = None):
        from ..hsigene.vae import AutoencoderKL

        super().__init__()
        self.cfg, self._scale_factor = cfg, float(scale_factor)
        self.bands = int(cfg.bands)
        self.vae = vae if vae is not None else AutoencoderKL(cfg)

    # -- shape facts -------------------------------------------------------------------
    @property
    def factor(self) -> int:
        return int(self.cfg.factor)

    @property
    def latent_channels(self) -> int:
        return int(self.cfg.embed_dim)

    @property
    def scaling_factor(self) -> float:
        return self._scale_factor

    def parameter_counts(self) -> dict:
        return {"vae": sum(p.numel() for p in self.vae.parameters())}

    # -- the public API (see stages.autoencoder.io) ------------------------------------
    @torch.no_grad()
    def encode(self, hsi: torch.Tensor) -> torch.Tensor:
        """(N, 48, H, W) in [-1, 1] → (N, 4, H/f, W/f): posterior mean × scale factor."""
        mean, _ = self.vae.encode_moments(hsi)
        return mean * self._scale_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents → (N, 48, H, W) in [-1, 1] (clipped, as sampling clips)."""
        return self.vae.decode(latents / self._scale_factor).clamp(-1.0, 1.0)

    @torch.no_grad()
    def reconstruct(self, hsi: torch.Tensor, **_) -> torch.Tensor:
        return self.decode(self.encode(hsi))

    # -- files -------------------------------------------------------------------------
    @staticmethod
    def model_json(cfg, scale_factor: float) -> dict:
        return {
            "kind": KIND,
            "bands": int(cfg.bands),
            "vae": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
            "scale_factor": float(scale_factor),
            "weights": WEIGHTS,
            "key_prefix": PREFIX,
            "units": "[-1, 1]: physical reflectance = x * 0.5 + 0.5",
        }

    @classmethod
    def load(cls, directory: Path, meta: dict) -> HSIGeneKLAutoencoder:
        from safetensors.torch import load_file

        try:
            cfg = vae_config(meta["vae"])
            scale_factor = float(meta["scale_factor"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(
                f"{directory}/model.json is not an {KIND} model ({exc}); re-run `hsigen import hsigene`"
            ) from None
        state = load_file(str(Path(directory) / meta.get("weights", WEIGHTS)), device="cpu")
        prefix = meta.get("key_prefix", PREFIX)
        with torch.device("meta"):
            model = cls(cfg, scale_factor)
        local = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        expected = model.vae.state_dict()
        if set(local) != set(expected) or len(local) != len(state):
            raise ArtifactError(
                f"{directory}/{meta.get('weights', WEIGHTS)} does not hold the VAE model.json describes; "
                "re-run `hsigen import hsigene`"
            )
        try:
            model.vae.load_state_dict({k: v.to(expected[k].dtype) for k, v in local.items()}, strict=True, assign=True)
        except RuntimeError as exc:  # shapes of other widths than model.json's
            raise ArtifactError(
                f"{directory}: weights do not fit model.json's VAE ({exc}); re-run the import"
            ) from None
        return model
