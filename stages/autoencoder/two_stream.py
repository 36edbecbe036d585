"""``--kind two-stream``: SpecDM's two-stream VAE (Liu et al., SpecDM, arXiv:2502.17056 §3.1, eq. 1; §3.3 pairs).

Two separately parameterised diffusers ``AutoencoderKL`` branches with f = 4: the HSI branch
(L1 + λ·SAD, eq. 1) and the mask branch (one-hot input over the dataset's classes,
cross-entropy), each KL-regularised. The diffusion latent is the channel concatenation
(z_x, z_y); with ``pairs`` (change detection, §3.3) two co-registered images (t1 ``hsi`` and
t2 ``hsi_t2``) go through the same HSI branch: (z_x1, z_x2, z_y).

Why the tiny mask branch is as wide as the image branch and trained on crops of the stitched
scene (``data.py``): at 16-32-32 channels on the 54 fixed patch windows it memorised the
training layouts (training accuracy 0.99, held-out 0.65 after 1,000 steps, where "all
label 0" already scores 0.59); at 32-64-64 on ~8,900 windows the held-out accuracy on the
classes seen in training reached 0.92 after 600 steps and 0.969 after the tiny preset's 1,500
(benchmarks/autoencoder.py --kind two-stream). The linear path of ``mask_branch.py`` then
made the early steps reliable (mask branch alone, 300 steps: 0.945-0.961 for seeds 0/1/2; in
the two-stream test fixture 0.950-0.957).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .bandnorm import attach_band_norm
from .kl import kl_per_value, latent_scaling_factor, make_autoencoder_kl
from .mask_branch import MaskBranch
from .metrics import gradient_loss, sad_loss
from .spectral_path import SpectralLinearPath, decode_with, shifted_posterior


class TwoStreamAutoencoder(nn.Module):
    kind = "two-stream"

    def __init__(
        self,
        bands: int,
        cfg: dict,
        shift: float = 0.0,
        classes=None,
        pairs: bool = False,
        hsi_vae=None,
        mask_branch=None,
        band_stats=None,
    ):
        super().__init__()
        self.bands, self.cfg, self.shift = bands, dict(cfg), float(shift)
        self.classes, self.pairs = [int(c) for c in classes], bool(pairs)
        size = cfg.get("crop", 32)
        self.hsi_vae = (
            hsi_vae
            if hsi_vae is not None
            else make_autoencoder_kl(
                bands,
                cfg["block_out_channels"],
                cfg["layers_per_block"],
                cfg["latent_channels"],
                cfg["norm_num_groups"],
                size,
            )
        )
        self.band_stats = band_stats  # HSI branch: (mean, std) per band, or None
        if band_stats is not None:
            attach_band_norm(self.hsi_vae, *band_stats)
        factor = 2 ** (len(self.hsi_vae.config.block_out_channels) - 1)
        self.linear_path = (  # the image branch's linear code (spectral_path.py), as in kl.py
            SpectralLinearPath(
                bands,
                int(self.hsi_vae.config.latent_channels),
                factor,
                band_stats,
                block=cfg.get("linear_block", False),
            )
            if cfg.get("linear_path")
            else None
        )
        mask_widths = cfg["mask_block_out_channels"]
        self.mask_branch = (
            mask_branch
            if mask_branch is not None
            else MaskBranch(
                make_autoencoder_kl(
                    len(self.classes),
                    mask_widths,
                    cfg["layers_per_block"],
                    cfg["mask_latent_channels"],
                    min(int(cfg["norm_num_groups"]), int(mask_widths[0])),
                    size,
                ),
                len(self.classes),
                bool(cfg.get("mask_linear_path", False)),
            )
        )
        if len(self.hsi_vae.config.block_out_channels) != len(self.mask_vae.config.block_out_channels):
            raise ValueError("both branches must downsample by the same factor")

    @property
    def mask_vae(self):
        """The mask branch's diffusers AutoencoderKL (without the linear path)."""
        return self.mask_branch.vae

    @property
    def factor(self) -> int:
        return 2 ** (len(self.hsi_vae.config.block_out_channels) - 1)

    @property
    def hsi_latent_channels(self) -> int:
        return int(self.hsi_vae.config.latent_channels)

    @property
    def mask_latent_channels(self) -> int:
        return int(self.mask_vae.config.latent_channels)

    @property
    def latent_channels(self) -> int:
        """Channels of the image latent alone (the PCA baseline's size); the joint latent
        has ``joint_latent_channels``."""
        return self.hsi_latent_channels

    @property
    def joint_latent_channels(self) -> int:
        return self.hsi_latent_channels * (2 if self.pairs else 1) + self.mask_latent_channels

    @property
    def scaling_factor(self) -> float:
        return float(self.hsi_vae.config.scaling_factor)

    @property
    def mask_scaling_factor(self) -> float:
        return float(self.mask_vae.config.scaling_factor)

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        """(N, H, W) class indices 0..K-1 → (N, K, H, W) one-hot (the mask branch's input)."""
        return nn.functional.one_hot(labels.long(), len(self.classes)).permute(0, 3, 1, 2).float()

    # -- training ----------------------------------------------------------------------
    def _hsi_loss(self, hsi, generator):
        posterior = shifted_posterior(self.hsi_vae, self.linear_path, hsi)
        recon = decode_with(self.hsi_vae, self.linear_path, posterior.sample(generator=generator))
        l1 = (recon - hsi).abs().mean()
        sad = sad_loss(hsi, recon, self.shift)
        return l1, sad, kl_per_value(posterior, hsi), gradient_loss(hsi, recon)

    def forward(
        self,
        hsi: torch.Tensor,
        labels: torch.Tensor,
        hsi_t2: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **_,
    ):
        images = hsi if hsi_t2 is None else torch.cat([hsi, hsi_t2])  # §3.3: one branch for both images
        l1, sad, kl_x, grad = self._hsi_loss(images, generator)
        onehot = self.one_hot(labels)
        posterior = self.mask_branch.posterior(onehot)
        logits = self.mask_branch.logits(posterior.sample(generator=generator))
        ce = nn.functional.cross_entropy(logits, labels.long())
        kl_y = kl_per_value(posterior, onehot)
        c = self.cfg
        # Liu et al., SpecDM, arXiv:2502.17056 eq. 1 for the image branch, cross-entropy for the mask branch, each + KL;
        # the image branch's edge term as in kl.py (0 in the paper preset)
        loss = l1 + c["sad_weight"] * sad + c["ce_weight"] * ce + c["kl_weight"] * (kl_x + kl_y)
        loss = loss + c.get("gradient_weight", 0) * grad
        metrics = {"l1": l1.item(), "sad": sad.item(), "ce": ce.item(), "kl": (kl_x + kl_y).item(), "grad": grad.item()}
        return loss, metrics

    def calibrate(self, batches, labels=None, hsi_t2=None, **_) -> float:
        images = list(batches) + list(hsi_t2 or [])
        s = latent_scaling_factor(shifted_posterior(self.hsi_vae, self.linear_path, x).mode() for x in images)
        self.hsi_vae.register_to_config(scaling_factor=s)
        s_mask = latent_scaling_factor(self.mask_branch.posterior(self.one_hot(y)).mode() for y in labels)
        self.mask_vae.register_to_config(scaling_factor=s_mask)
        return s

    def parameter_counts(self) -> dict:
        return {
            "hsi_vae": sum(p.numel() for p in self.hsi_vae.parameters())
            + sum(p.numel() for p in (self.linear_path.parameters() if self.linear_path is not None else [])),
            "mask_vae": sum(p.numel() for p in self.mask_branch.parameters()),
        }

    def extra_metrics(self, arrays: dict, batch: int) -> dict:
        return {}

    def manifest_extra(self) -> dict:
        return {
            "classes": self.classes,
            "pairs": self.pairs,
            "joint_latent_channels": self.joint_latent_channels,
            "mask_latent_channels": self.mask_latent_channels,
            "mask_scaling_factor": self.mask_scaling_factor,
            "latent_layout": (["hsi", "hsi_t2", "mask"] if self.pairs else ["hsi", "mask"]),
            "mask_linear_path": self.mask_branch.linear is not None,
            "weights": "hsi_vae/ and mask_vae/ (diffusers AutoencoderKL, save_pretrained layout; the HSI "
            "branch's per-band standardisation of model.json band_stats is put back by "
            "stages.autoencoder.io.load_autoencoder; with mask_linear_path also "
            "mask_linear_path.safetensors, see stages/autoencoder/mask_branch.py)",
        }

    # -- the public API ------------------------------------------------------------------
    @torch.no_grad()
    def encode_hsi(self, hsi):
        return shifted_posterior(self.hsi_vae, self.linear_path, hsi).mode() * self.scaling_factor

    @torch.no_grad()
    def encode_mask(self, labels):
        return self.mask_branch.posterior(self.one_hot(labels)).mode() * self.mask_scaling_factor

    @torch.no_grad()
    def encode(self, hsi, labels, hsi_t2=None):
        """→ (N, C_x [+ C_x] + C_y, h, w): image latent(s) then mask latent. ``labels`` are
        class indices 0..K-1 (see ``class_index``)."""
        if self.pairs and hsi_t2 is None:
            raise ValueError("this two-stream autoencoder encodes change pairs: pass hsi_t2")
        parts = [self.encode_hsi(hsi)] + ([self.encode_hsi(hsi_t2)] if self.pairs else []) + [self.encode_mask(labels)]
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def decode(self, latents):
        """→ (hsi, mask_probs) or, with pairs, (hsi, hsi_t2, mask_probs)."""
        cx = self.hsi_latent_channels
        images = [latents[:, :cx]] + ([latents[:, cx : 2 * cx]] if self.pairs else [])
        z_mask = latents[:, cx * len(images) :]
        out = [decode_with(self.hsi_vae, self.linear_path, z / self.scaling_factor) for z in images]
        logits = self.mask_branch.logits(z_mask / self.mask_scaling_factor)
        return (*out, logits.softmax(dim=1))

    def labels_from_probs(self, probs) -> np.ndarray:
        return np.asarray(self.classes)[probs.argmax(dim=1).cpu().numpy()]

    @torch.no_grad()
    def reconstruct(self, hsi, labels=None, **_):
        """(hsi reconstruction, mask class indices) for held-out evaluation."""
        recon = decode_with(self.hsi_vae, self.linear_path, self.encode_hsi(hsi) / self.scaling_factor)
        logits = self.mask_branch.logits(self.encode_mask(labels) / self.mask_scaling_factor)
        return recon, logits.argmax(dim=1)

    # -- files -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        self.hsi_vae.save_pretrained(directory / "hsi_vae", safe_serialization=True)
        if self.linear_path is not None:
            self.linear_path.save(directory)
        self.mask_branch.save(directory)
        (directory / "model.json").write_text(
            json.dumps(
                {
                    "kind": self.kind,
                    "bands": self.bands,
                    "cfg": self.cfg,
                    "shift": self.shift,
                    "classes": self.classes,
                    "pairs": self.pairs,
                    "band_stats": self.band_stats,
                },
                indent=2,
            )
        )

    @classmethod
    def load(cls, directory: Path, meta: dict) -> TwoStreamAutoencoder:
        from diffusers import AutoencoderKL

        def branch(name):
            return AutoencoderKL.from_pretrained(directory / name, local_files_only=True, low_cpu_mem_usage=False)

        mask = MaskBranch.load(directory, len(meta["classes"]), bool(meta["cfg"].get("mask_linear_path", False)))
        model = cls(
            meta["bands"],
            meta["cfg"],
            meta["shift"],
            classes=meta["classes"],
            pairs=meta["pairs"],
            hsi_vae=branch("hsi_vae"),
            mask_branch=mask,
            band_stats=meta.get("band_stats"),
        )
        if model.linear_path is not None:
            model.linear_path.load_weights(directory)
        return model
