"""``--kind kl``: HSIGene's KL-regularised VAE latent space (Pang et al., HSIGene, arXiv:2409.12470 §3.2, Fig. 3).

A diffusers ``AutoencoderKL`` configured for B input/output bands. The loss is Liu et al., SpecDM, arXiv:2502.17056
eq. 1 (L1 + λ·SAD) plus the KL term of a KL-regularised autoencoder (LDM [18]), here per
input value: LDM's summed KL divided by B·H·W, weighted by ``kl_weight``.

With ``band_stats`` (the presets' ``band_standardise``) the VAE standardises every band with
the training patches' statistics inside its first and last convolution (``bandnorm.py``);
its inputs and outputs stay in the dataset's normalised units.

Latents are the posterior mean times ``scaling_factor`` (1 / std of the training latents,
set after training and stored in the diffusers config and the manifest), so that a latent
diffusion model sees roughly unit variance, as Stable Diffusion does.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .bandnorm import attach_band_norm
from .metrics import gradient_loss, sad_loss
from .spectral_path import SpectralLinearPath, decode_with, shifted_posterior


def make_autoencoder_kl(
    channels: int, widths, layers_per_block: int, latent_channels: int, norm_num_groups: int, sample_size: int = 32
):
    from diffusers import AutoencoderKL

    levels = len(widths)
    return AutoencoderKL(
        in_channels=channels,
        out_channels=channels,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(int(w) for w in widths),
        layers_per_block=int(layers_per_block),
        latent_channels=int(latent_channels),
        norm_num_groups=int(norm_num_groups),
        sample_size=sample_size,
        scaling_factor=1.0,
    )


def kl_per_value(posterior, inputs: torch.Tensor) -> torch.Tensor:
    """LDM's KL(q(z|x) ‖ N(0, I)) summed over the latent, averaged over the batch, per input value."""
    return posterior.kl().mean() / float(inputs[0].numel())


def latent_scaling_factor(means) -> float:
    """1 / std of posterior means (Stable Diffusion's latent scaling); ``means``: tensors."""
    std = torch.cat([m.flatten() for m in means]).float().std().item()
    return 1.0 / max(std, 1e-8)


class KLAutoencoder(nn.Module):
    kind = "kl"

    def __init__(self, bands: int, cfg: dict, shift: float = 0.0, vae=None, band_stats=None):
        super().__init__()
        self.bands, self.cfg, self.shift = bands, dict(cfg), float(shift)
        self.vae = (
            vae
            if vae is not None
            else make_autoencoder_kl(
                bands,
                cfg["block_out_channels"],
                cfg["layers_per_block"],
                cfg["latent_channels"],
                cfg["norm_num_groups"],
                cfg.get("crop", 32),
            )
        )
        self.band_stats = band_stats  # (mean, std) per band, or None
        if band_stats is not None:
            attach_band_norm(self.vae, *band_stats)
        # spectral_path.py: a linear code through the same latent (the tiny preset's linear_path)
        self.linear_path = (
            SpectralLinearPath(
                bands,
                int(self.vae.config.latent_channels),
                self.factor,
                band_stats,
                block=cfg.get("linear_block", False),
            )
            if cfg.get("linear_path")
            else None
        )

    # -- shape facts for the next stages ----------------------------------------------
    @property
    def factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    # -- training ----------------------------------------------------------------------
    def forward(self, hsi: torch.Tensor, generator: torch.Generator | None = None, **_):
        posterior = shifted_posterior(self.vae, self.linear_path, hsi)
        recon = decode_with(self.vae, self.linear_path, posterior.sample(generator=generator))
        l1 = (recon - hsi).abs().mean()
        sad = sad_loss(hsi, recon, self.shift)
        kl = kl_per_value(posterior, hsi)
        # Liu et al., SpecDM, arXiv:2502.17056 eq. 1 (L1 + λ·SAD) + KL weight (LDM's KL-regularised autoencoder),
        # + an edge term against blur (metrics.gradient_loss; 0 in the paper presets)
        grad = gradient_loss(hsi, recon)
        loss = (
            l1 + self.cfg["sad_weight"] * sad + self.cfg["kl_weight"] * kl + self.cfg.get("gradient_weight", 0) * grad
        )
        return loss, {"l1": l1.item(), "sad": sad.item(), "kl": kl.item(), "grad": grad.item()}

    def calibrate(self, batches, **_) -> float:
        s = latent_scaling_factor(shifted_posterior(self.vae, self.linear_path, x).mode() for x in batches)
        self.vae.register_to_config(scaling_factor=s)
        return s

    def parameter_counts(self) -> dict:
        counts = {"vae": sum(p.numel() for p in self.vae.parameters())}
        if self.linear_path is not None:
            counts["linear_path"] = sum(p.numel() for p in self.linear_path.parameters())
        return counts

    def extra_metrics(self, arrays: dict, batch: int) -> dict:
        return {}

    def manifest_extra(self) -> dict:
        return {
            "weights": "vae/ (diffusers AutoencoderKL, save_pretrained layout; the per-band standardisation "
            "of model.json band_stats is put back by stages.autoencoder.io.load_autoencoder)"
        }

    # -- the public API (see stages.autoencoder.io) ------------------------------------
    @torch.no_grad()
    def encode(self, hsi: torch.Tensor) -> torch.Tensor:
        """(N, B, H, W) normalised HSI → (N, C, H/f, W/f) scaled posterior means."""
        return shifted_posterior(self.vae, self.linear_path, hsi).mode() * self.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents → (N, B, H, W) normalised HSI."""
        return decode_with(self.vae, self.linear_path, latents / self.scaling_factor)

    @torch.no_grad()
    def reconstruct(self, hsi: torch.Tensor, **_) -> torch.Tensor:
        return self.decode(self.encode(hsi))

    # -- files -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        self.vae.save_pretrained(directory / "vae", safe_serialization=True)
        if self.linear_path is not None:
            self.linear_path.save(directory)
        (directory / "model.json").write_text(
            json.dumps(
                {
                    "kind": self.kind,
                    "bands": self.bands,
                    "cfg": self.cfg,
                    "shift": self.shift,
                    "band_stats": self.band_stats,
                },
                indent=2,
            )
        )

    @classmethod
    def load(cls, directory: Path, meta: dict) -> KLAutoencoder:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(directory / "vae", local_files_only=True, low_cpu_mem_usage=False)
        model = cls(meta["bands"], meta["cfg"], meta["shift"], vae=vae, band_stats=meta.get("band_stats"))
        if model.linear_path is not None:
            model.linear_path.load_weights(directory)
        return model
