"""``kind: hsigene-kl``: the released HSIGene VAE (Pang et al., arXiv:2409.12470 §3.2; the ldm
``AutoencoderKL`` of LiPang/HSIGene 9f893a7, re-implemented in ``stages/hsigene/vae.py``) as an
hsigen autoencoder. ``hsigen import hsigene`` writes the released one into
``MODEL_DIR/autoencoder/``; ``hsigen train-ae --kind hsigene-kl --preset tiny|paper`` trains one
from scratch (``HSIGeneKLTraining`` below) and writes the same files, so that every stage reads
both alike. The trained one's manifest says so (stage ``train-ae``, its config with steps and
seed, the datasets' hashes as inputs, the loss history).

Units: the VAE works on [-1, 1] (the release decodes to x and saves x·0.5 + 0.5 as reflectance in
[0, 1]), so an import's spectral block says physical = stored · 0.5 + 0.5 (a trained one's maps
-1 … 1 onto its dataset's normalised 0 … 1: ``HSIGeneKLTraining.artifact_units``) and ``encode`` /
``decode`` take and give [-1, 1]. ``decode`` clips to [-1, 1], as ``sample`` clips its output
to [0, 1]: a reconstruction is what a sample of the model can be.

Latents are the posterior mean × the model's ``scale_factor`` (0.18215 in the release): the
units the diffusion model works in.

Weights: ``model.safetensors`` with the released ``first_stage_model.*`` key names (the import's
other two weight files hold the rest of the released state dict).

Training (``train-ae --kind hsigene-kl``): the release publishes no first-stage training code
(its configs/inference.yaml L94-L95 has ``lossconfig: torch.nn.Identity``), so the loss is what
applies of ldm's ``LPIPSWithDiscriminator`` (the KL autoencoders' loss, kl_weight 1e-6):
- kept: the L1 reconstruction |x − x̂| of a posterior *sample* in the VAE's [-1, 1] units, and
  the KL term KL(q(z|x) ‖ N(0, I)) at ``kl_weight``. ldm sums both over the image and divides by
  the batch; here both are divided by the values per image as well (mean L1, KL per input value,
  as ``kl.kl_per_value``), which leaves their ratio, and so the meaning of ``kl_weight``, as ldm's.
- left out: the LPIPS perceptual term (an ImageNet VGG on 3-channel RGB, which cannot be loaded
  offline and does not take 48 bands); the patch discriminator (ldm starts it at step 50001); and
  ldm's learnable output log-variance (initialised at 0, it only rescales the reconstruction term
  against the KL term), fixed at 0 here.
- optional, 0 in both presets: hsigen's SAD and edge terms (``metrics.sad_loss``,
  ``metrics.gradient_loss``, as ``kl`` uses them) via ``sad_weight`` / ``gradient_weight``.
The latent scale factor is set after training to 1 / std of the training patches' posterior
means (ldm's ``scale_by_std``, from which Stable Diffusion's 0.18215 comes; hsigen's ``kl`` does
the same), in place of the release's fixed 0.18215.
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


class HSIGeneKLTraining(nn.Module):
    """``train-ae --kind hsigene-kl``: a fresh ``HSIGeneKLAutoencoder`` as the shared train-ae
    loop drives every kind (``forward`` → loss, ``reconstruct``, ``calibrate``, ``save``).

    Units: as every train-ae model, it takes the dataset's normalised values u (about [0, 1],
    physical = u · scale + offset); the VAE sees x = 2u − 1, the [-1, 1] of the release. The
    artifact keeps the kind's convention (encode/decode in [-1, 1]): its spectral block is
    ``artifact_units(scale, offset)`` = (scale / 2, offset + scale / 2), so physical = x · scale'
    + offset' — for a dataset already in [0, 1] (scale 1, offset 0) exactly the import's 0.5 / 0.5.
    """

    kind = KIND

    def __init__(self, bands: int, cfg: dict, shift: float = 0.0):
        from ..hsigene.config import VAEConfig

        super().__init__()
        self.cfg, self.shift = dict(cfg), float(shift)
        layout = {k: tuple(cfg[k]) if isinstance(cfg[k], list) else cfg[k] for k in LAYOUT_FIELDS}
        self.ae = HSIGeneKLAutoencoder(VAEConfig(bands=int(bands), **layout), scale_factor=1.0)
        self.bands = int(bands)

    @property
    def factor(self) -> int:
        return self.ae.factor

    @property
    def latent_channels(self) -> int:
        return self.ae.latent_channels

    @property
    def scaling_factor(self) -> float:
        return self.ae.scaling_factor

    def forward(self, hsi: torch.Tensor, generator: torch.Generator | None = None, **_):
        from .metrics import gradient_loss, sad_loss

        x = hsi * 2.0 - 1.0
        mean, logvar = self.ae.vae.encode_moments(x)
        std = torch.exp(0.5 * logvar)
        # The posterior sample from the step's (CPU) generator, so a resumed run draws the same.
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
        recon = self.ae.vae.decode(mean + std * noise)
        l1 = (recon - x).abs().mean()
        kl = kl_divergence(mean, logvar).mean() / float(x[0].numel())  # per input value, as kl.kl_per_value
        loss = l1 + self.cfg["kl_weight"] * kl
        logs = {"l1": l1.item(), "kl": kl.item()}
        if self.cfg.get("sad_weight"):
            sad = sad_loss(hsi, (recon + 1.0) * 0.5, self.shift)  # on u, with the dataset's shift, as kl
            loss = loss + self.cfg["sad_weight"] * sad
            logs["sad"] = sad.item()
        if self.cfg.get("gradient_weight"):
            grad = gradient_loss(x, recon)
            loss = loss + self.cfg["gradient_weight"] * grad
            logs["grad"] = grad.item()
        return loss, logs

    @torch.no_grad()
    def reconstruct(self, hsi: torch.Tensor, **_) -> torch.Tensor:
        """Dataset units in and out (the stage's held-out metrics are in those units)."""
        return (self.ae.reconstruct(hsi * 2.0 - 1.0) + 1.0) * 0.5

    @torch.no_grad()
    def calibrate(self, batches, **_) -> float:
        from .kl import latent_scaling_factor

        s = latent_scaling_factor(self.ae.vae.encode_moments(x * 2.0 - 1.0)[0] for x in batches)
        self.ae._scale_factor = float(s)
        return float(s)

    def artifact_units(self, scale: float, offset: float) -> tuple[float, float]:
        """The artifact's spectral scale / offset for its [-1, 1] units, from the dataset's."""
        return float(scale) * 0.5, float(offset) + float(scale) * 0.5

    def parameter_counts(self) -> dict:
        return self.ae.parameter_counts()

    def extra_metrics(self, arrays: dict, batch: int) -> dict:
        return {}

    def manifest_extra(self) -> dict:
        return {
            "weights": f"{WEIGHTS} (first_stage_model.* key names, as an import's)",
            "origin": "trained from a random initialisation by train-ae (not imported)",
        }

    def save(self, directory: Path) -> None:
        import json

        from safetensors.torch import save_file

        state = {PREFIX + k: v.detach().contiguous() for k, v in self.ae.vae.state_dict().items()}
        save_file(state, str(Path(directory) / WEIGHTS), metadata={"format": "pt", "architecture": "hsigene"})
        meta = HSIGeneKLAutoencoder.model_json(self.ae.cfg, self.ae.scaling_factor)
        meta["units"] = "[-1, 1]: physical = x * spectral.scale + spectral.offset (the manifest's)"
        meta["origin"] = "train-ae"
        (Path(directory) / "model.json").write_text(json.dumps(meta, indent=2) + "\n")


# The VAEConfig fields a train-ae preset sets (the band count is the dataset's).
LAYOUT_FIELDS = ("ch", "ch_mult", "num_res_blocks", "attn_resolutions", "resolution", "z_channels", "embed_dim")


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) ‖ N(0, I)) summed over the latent, per sample (ldm distributions.py)."""
    return 0.5 * torch.sum(mean**2 + torch.exp(logvar) - 1.0 - logvar, dim=(1, 2, 3))
