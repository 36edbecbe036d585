"""``--kind vq-rgb``: HyperLDM's conditional VQ autoencoder (Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-A, eqs. 1–6).

encoder E (diffusers ``Encoder``) → codebook Z of K codes (eq. 1: nearest code by L1
distance, straight-through gradients) → decoder T (diffusers ``Decoder``) that also receives
the condition encoder's features C(C) of the RGB image (eq. 2) and outputs abundances A over a
spectral library R (softmax: A on the simplex) and a per-image solar/atmospheric spectrum t;
the parameter-free linear mixing model (eq. 3) gives Ĩ = t ⊙ (R A) in physical units, which
is then expressed in the dataset's normalised units. Loss: λ1·L1 + λ2·(1 − cos) + eq. 4's
quantisation loss; with ``adversarial`` also the spatial and spectral discriminators of eq. 6.

The RGB condition is the HSI's own bands nearest 640/550/470 nm (normalised units), the
co-registered RGB image HyperLDM pairs with each HSI.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..spectral import rgb_band_indices
from .metrics import cosine_loss


class ConditionEncoder(nn.Module):
    """C: RGB (N, 3, H, W) → features at the latent resolution (N, c, H/f, W/f)."""

    def __init__(self, channels: int, factor: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.SiLU()]
        for _ in range(int(math.log2(factor))):
            layers += [nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.SiLU()]
        layers.append(nn.Conv2d(channels, channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, rgb):
        return self.net(rgb)


class SpatialDiscriminator(nn.Module):
    """Patch discriminator on the HSI cube (hyperldm eq. 6, D_spat)."""

    def __init__(self, bands: int, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(bands, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.GroupNorm(8, 2 * width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, padding=1),
        )

    def forward(self, x):
        return self.net(x)


class SpectralDiscriminator(nn.Module):
    """1-D discriminator on single-pixel spectra (hyperldm eq. 6, D_spec)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(1, width, 5, stride=2, padding=2),
            nn.LeakyReLU(0.2),
            nn.Conv1d(width, 2 * width, 5, stride=2, padding=2),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(2 * width, 1),
        )

    def forward(self, spectra):  # (P, B)
        return self.net(spectra[:, None, :])


class VQRGBAutoencoder(nn.Module):
    kind = "vq-rgb"

    def __init__(
        self,
        bands: int,
        cfg: dict,
        shift: float = 0.0,
        library=None,
        wavelengths_nm=None,
        scale: float = 1.0,
        offset: float = 0.0,
        adversarial: bool = False,
        reference=None,
        library_names=None,
        library_source: str = "bundled",
    ):
        from diffusers.models.autoencoders.vae import Decoder, Encoder

        super().__init__()
        self.bands, self.cfg, self.shift = bands, dict(cfg), float(shift)
        self.norm_scale, self.norm_offset = float(scale), float(offset)
        self.adversarial = bool(adversarial)
        # On load the library comes back from the weights file; only its size is needed here.
        spectra = (
            np.asarray(library.spectra, dtype=np.float32)
            if library is not None
            else np.zeros((len(library_names), bands), dtype=np.float32)
        )
        self.library_names = list(library.names if library is not None else library_names)
        self.library_source = library.source if library is not None else library_source
        widths = tuple(int(w) for w in cfg["block_out_channels"])
        levels, n_x = len(widths), int(cfg["latent_channels"])
        groups = int(cfg["norm_num_groups"])
        self._factor = 2 ** (levels - 1)
        self.encoder = Encoder(
            in_channels=bands,
            out_channels=n_x,
            down_block_types=("DownEncoderBlock2D",) * levels,
            block_out_channels=widths,
            layers_per_block=int(cfg["layers_per_block"]),
            norm_num_groups=groups,
            double_z=False,
        )
        k = int(cfg["codebook_size"])
        self.codebook = nn.Embedding(k, n_x)
        nn.init.uniform_(self.codebook.weight, -1.0 / k, 1.0 / k)
        c = int(cfg["condition_channels"])
        self.condition = ConditionEncoder(c, self._factor)
        head = int(cfg["head_channels"])
        self.decoder = Decoder(
            in_channels=n_x + c,
            out_channels=head,
            up_block_types=("UpDecoderBlock2D",) * levels,
            block_out_channels=widths,
            layers_per_block=int(cfg["layers_per_block"]),
            norm_num_groups=groups,
        )
        self.abundance_head = nn.Conv2d(head, spectra.shape[0], 1)
        self.spectrum_head = nn.Linear(head, bands)
        self.register_buffer("library", torch.from_numpy(spectra))  # R: (n_g, B)
        ref = np.ones(bands, np.float32) if reference is None else np.asarray(reference, np.float32)
        self.register_buffer("reference", torch.from_numpy(ref))  # typical t, physical units
        wl = np.zeros(bands) if wavelengths_nm is None else np.asarray(wavelengths_nm)
        self.register_buffer("rgb_bands", torch.tensor(rgb_band_indices(wl), dtype=torch.long))
        self.register_buffer("scaling", torch.ones(()))
        if self.adversarial:
            self.disc_spatial = SpatialDiscriminator(bands)
            self.disc_spectral = SpectralDiscriminator()

    # -- shape facts ----------------------------------------------------------------------
    @property
    def factor(self) -> int:
        return self._factor

    @property
    def latent_channels(self) -> int:
        return int(self.cfg["latent_channels"])

    @property
    def scaling_factor(self) -> float:
        return float(self.scaling)

    def rgb_condition(self, hsi: torch.Tensor) -> torch.Tensor:
        """The RGB condition image: bands nearest 640/550/470 nm, normalised units."""
        return hsi[:, self.rgb_bands]

    # -- the pieces of eqs. 1–3 ------------------------------------------------------------
    def quantise(self, z: torch.Tensor):
        """eq. 1: each latent pixel → its nearest code by L1 distance. Returns (x_q, indices)."""
        n, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        indices = torch.cdist(flat, self.codebook.weight, p=1).argmin(dim=1)
        xq = self.codebook(indices).reshape(n, h, w, c).permute(0, 3, 1, 2)
        return xq, indices.reshape(n, h, w)

    def mix(self, abundances: torch.Tensor, spectrum: torch.Tensor) -> torch.Tensor:
        """eq. 3, the parameter-free linear mixing model: physical Ĩ = t ⊙ (R A)."""
        return spectrum[:, :, None, None] * torch.einsum("gb,nghw->nbhw", self.library, abundances)

    def decode_parts(self, xq: torch.Tensor, rgb: torch.Tensor):
        """eq. 2: (A, t) = T(x_q, C(C)); returns (normalised HSI, A, t)."""
        features = nn.functional.silu(self.decoder(torch.cat([xq, self.condition(rgb)], dim=1)))
        abundances = self.abundance_head(features).softmax(dim=1)  # A on the simplex
        spectrum = nn.functional.softplus(self.spectrum_head(features.mean(dim=(2, 3)))) * self.reference
        physical = self.mix(abundances, spectrum)
        return (physical - self.norm_offset) / self.norm_scale, abundances, spectrum

    # -- training ----------------------------------------------------------------------------
    def forward(self, hsi: torch.Tensor, generator: torch.Generator | None = None, step: int = 0, **_):
        z = self.encoder(hsi)
        xq, _ = self.quantise(z)
        # eq. 4: ‖sg[E(I)] − x_q‖² + ‖sg[x_q] − E(I)‖²
        q_loss = nn.functional.mse_loss(xq, z.detach()) + nn.functional.mse_loss(z, xq.detach())
        xq_st = z + (xq - z).detach()  # straight-through estimator
        recon, _, _ = self.decode_parts(xq_st, self.rgb_condition(hsi))
        l1 = (recon - hsi).abs().mean()
        cos = cosine_loss(hsi, recon, self.shift)
        c = self.cfg
        loss = c["l1_weight"] * l1 + c["cos_weight"] * cos + q_loss  # eq. 4
        logs = {"l1": l1.item(), "cos": cos.item(), "quant": q_loss.item()}
        if self.adversarial:
            adv_g, adv_d = self._adversarial(hsi, recon, generator, step)
            loss = loss + c["adv_weight"] * adv_g + adv_d  # eq. 6
            logs.update({"adv_g": adv_g.item(), "adv_d": adv_d.item()})
        return loss, logs

    def _pixels(self, x, generator, count: int = 256):
        spectra = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
        pick = torch.randint(spectra.shape[0], (min(count, spectra.shape[0]),), generator=generator)
        return spectra[pick.to(spectra.device)]

    def _adversarial(self, real, fake, generator, step: int):
        """Hinge GAN terms of eq. 6 within one optimiser step: the generator term sees the
        discriminators with frozen (detached) weights; the discriminator term sees detached
        fakes and counts on every third step only (hyperldm §IV-A-3)."""
        from torch.func import functional_call

        frozen = lambda m: {k: v.detach() for k, v in m.named_parameters()}  # noqa: E731
        real_px, fake_px = self._pixels(real, generator), self._pixels(fake, generator)
        adv_g = -(
            functional_call(self.disc_spatial, frozen(self.disc_spatial), (fake,)).mean()
            + functional_call(self.disc_spectral, frozen(self.disc_spectral), (fake_px,)).mean()
        )
        hinge = lambda r, f: nn.functional.relu(1 - r).mean() + nn.functional.relu(1 + f).mean()  # noqa: E731
        adv_d = hinge(self.disc_spatial(real), self.disc_spatial(fake.detach())) + hinge(
            self.disc_spectral(real_px), self.disc_spectral(fake_px.detach())
        )
        return adv_g, adv_d * float(step % 3 == 0)

    def calibrate(self, batches, **_) -> float:
        codes = torch.cat([self.quantise(self.encoder(x))[0].flatten() for x in batches])
        s = 1.0 / max(codes.float().std().item(), 1e-8)
        self.scaling.fill_(s)
        return s

    def parameter_counts(self) -> dict:
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        parts = {
            "encoder": count(self.encoder),
            "codebook": count(self.codebook),
            "condition_encoder": count(self.condition),
            "decoder": count(self.decoder) + count(self.abundance_head) + count(self.spectrum_head),
        }
        if self.adversarial:
            parts["discriminators"] = count(self.disc_spatial) + count(self.disc_spectral)
        return parts

    def extra_metrics(self, arrays: dict, batch: int) -> dict:
        """Codebook usage: the share of the K codes chosen by the training patches."""
        used = set()
        with torch.no_grad():
            for i in range(0, len(arrays["hsi"]), batch):
                used.update(self.quantise(self.encoder(arrays["hsi"][i : i + batch]))[1].unique().tolist())
        k = int(self.cfg["codebook_size"])
        return {"codebook_usage": len(used) / k, "codebook_codes_used": len(used), "codebook_size": k}

    def manifest_extra(self) -> dict:
        return {
            "library": {"source": self.library_source, "spectra": len(self.library_names), "names": self.library_names},
            "adversarial": self.adversarial,
            "codebook_size": int(self.cfg["codebook_size"]),
            "weights": "model.safetensors (encoder, codebook, condition encoder, decoder, library R)",
        }

    # -- the public API ------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, hsi: torch.Tensor) -> torch.Tensor:
        """(N, B, H, W) → quantised codes × scaling_factor, (N, n_x, H/f, W/f)."""
        return self.quantise(self.encoder(hsi))[0] * self.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        return self.decode_parts(latents / self.scaling_factor, rgb)[0]

    @torch.no_grad()
    def reconstruct(self, hsi: torch.Tensor, **_) -> torch.Tensor:
        return self.decode(self.encode(hsi), self.rgb_condition(hsi))

    # -- files ---------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        from ..training import save_weights

        state = {k: v for k, v in self.state_dict().items() if not k.startswith("disc_")}
        save_weights(state, directory / "model.safetensors")
        (directory / "model.json").write_text(
            json.dumps(
                {
                    "kind": self.kind,
                    "bands": self.bands,
                    "cfg": self.cfg,
                    "shift": self.shift,
                    "scale": self.norm_scale,
                    "offset": self.norm_offset,
                    "library_names": self.library_names,
                    "library_source": self.library_source,
                    "trained_adversarially": self.adversarial,
                },
                indent=2,
            )
        )

    @classmethod
    def load(cls, directory: Path, meta: dict) -> VQRGBAutoencoder:
        from ..training import load_weights

        state = load_weights(directory / "model.safetensors")
        model = cls(
            meta["bands"],
            meta["cfg"],
            meta["shift"],
            scale=meta["scale"],
            offset=meta["offset"],
            library_names=meta["library_names"],
            library_source=meta["library_source"],
            reference=state["reference"].numpy(),
        )
        model.load_state_dict(state)
        return model
