"""The latent space (HSIGene, hsigene.txt §3.2; HyperLDM, hyperldm.txt §III-C): a conditional
UNet + ControlNet on the latents of a trained autoencoder, steered by condition maps, content /
text embeddings and (HyperLDM) an RGB image.

This module is the space's entry: ``PRESETS``, ``train`` (its own trainer,
``latent_training.py``, on the data ``latent_data.py`` prepares) and ``Generator`` (sampling:
conditions from ``latent_conditions.py``, classifier-free guidance, decoding with the
autoencoder copied into the model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...common.errors import ConfigError
from ..generator import Conditions, Decoded
from ..generator import Generator as BaseGenerator
from .latent_data import HYPERLDM_SCHEDULE, SD_SCHEDULE, load_model_autoencoder

# Cross-attention (global tokens) only at the coarsest level keeps the CPU step cheap.
_TINY_UNET = {
    "block_out_channels": [32, 48, 48], "layers_per_block": 1,
    "down_block_types": ["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
    "norm_num_groups": 8, "attention_head_dim": 8,
}
# Stable Diffusion 1.5's UNet (the UNet CRS-Diff / HSIGene fine-tune, hsigene.txt §4.1.1), with a
# same-sized ControlNet copy: ≈ 0.86 B + 0.36 B parameters; with the VAE and the CLIP encoders
# this is the "1.5 billion parameters in total" of hsigene.txt §4.1.1.
_SD15_UNET = {
    "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "norm_num_groups": 32, "attention_head_dim": 8,
}
# hyperldm.txt §III-C.2: Resblocks ×2 per resolution with [128, 128, 256, 256, 512, 512]
# channels, attention only at the 8×8 and 4×4 feature resolutions (64×64 latents).
_HYPERLDM_UNET = {
    "block_out_channels": [128, 128, 256, 256, 512, 512], "layers_per_block": 2,
    "down_block_types": ["DownBlock2D", "DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D",
                         "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D",
                       "UpBlock2D"],
    "norm_num_groups": 32, "attention_head_dim": 8,
}

PRESETS: dict[str, dict] = {
    # ≈ 1 M parameters (UNet + ControlNet); trains in minutes on 2 CPU cores on 4×8×8 latents.
    "tiny": {"unet": _TINY_UNET, "cross_attention_dim": 32, "conditioning_base": 8, "rgb_channels": 8,
             "prediction_type": "epsilon", "schedule": SD_SCHEDULE, "steps": 800, "batch_size": 16, "lr": 2e-3,
             "warmup_steps": 20, "ema_decay": 0.995, "condition_dropout": 0.3, "drop_all": 0.1,
             "ssim_weight": 0.0, "rgb_condition": False, "augment": True, "grad_accum": 1},
    # HSIGene (hsigene.txt §4.1.1): AdamW lr 1e-5, batch 16, 100k iterations, SD 1.5 sizes, CLIP
    # width (768) cross-attention.
    "paper": {"unet": _SD15_UNET, "cross_attention_dim": 768, "conditioning_base": 16, "rgb_channels": 32,
              "prediction_type": "epsilon", "schedule": SD_SCHEDULE, "steps": 100_000, "batch_size": 16, "lr": 1e-5,
              "warmup_steps": 0, "ema_decay": 0.9999, "condition_dropout": 0.3, "drop_all": 0.1,
              "ssim_weight": 0.0, "rgb_condition": False, "augment": True, "grad_accum": 1},
    # HyperLDM (hyperldm.txt §III-C, §III-D, Table IV †): T = 100 linear 0.01 → 0.2, λ3 = 0.1,
    # n_c = 32, AdamW, "converges ... after 4000 iterations".
    "paper-hyperldm": {"unet": _HYPERLDM_UNET, "cross_attention_dim": 512, "conditioning_base": 16,
                       "rgb_channels": 32, "prediction_type": "epsilon", "schedule": HYPERLDM_SCHEDULE,
                       "steps": 4000, "batch_size": 8, "lr": 1e-5, "warmup_steps": 0, "ema_decay": 0.9999,
                       "condition_dropout": 0.3, "drop_all": 0.1, "ssim_weight": 0.1, "rgb_condition": True,
                       "augment": True, "grad_accum": 1},
}


def train(inputs: dict, out: Path | None, cfg, *, overwrite: bool = False, resume: bool = False,
          dry_run: bool = False):
    """``train-diffusion --space latent``: the latent space has its own trainer (ControlNet,
    condition dropout, HyperLDM's SSIM term)."""
    from ..latent_training import train_latent

    return train_latent(inputs, out, cfg, overwrite=overwrite, resume=resume, dry_run_only=dry_run)


class Generator(BaseGenerator):
    """Conditional latent sampling with classifier-free guidance; decodes with the model's
    autoencoder (the ``vq-rgb`` decoder also takes the RGB condition)."""

    def __init__(self, model):
        super().__init__(model)
        self.pixel_factor = int(model.config["autoencoder"]["factor"])
        self._batch = (None, None)          # (rows, ConditionBatch) of the batch being denoised

    def prepare(self, request, n: int, size: int, guidance: float) -> Conditions:
        from ..generator import ConditionRequest
        from .latent_conditions import resolve_conditions

        if guidance < 0:
            raise ConfigError("--guidance must be >= 0 (1 = no guidance, the paper-style default is 2-7.5)")
        resolved = resolve_conditions(self.model, request or ConditionRequest(), n, size)
        return Conditions(n, inputs=list(resolved.inputs), kinds=list(resolved.described["kinds"]),
                          recorded={"guidance": float(guidance), "conditions": resolved.described},
                          state=resolved, guidance=float(guidance))

    def load(self, device, batch_size: int = 16) -> None:
        from ..latent_model import load_denoiser

        self.device, self.batch_size = device, batch_size
        self.denoiser = load_denoiser(self.model, device)
        self.autoencoder = load_model_autoencoder(self.model, device)

    def condition_batch(self, rows: slice, conditions: Conditions):
        """The conditions of samples ``rows`` as tensors on the device (built once per batch)."""
        import torch

        from ..control import ConditionBatch

        if self._batch[0] != (rows.start, rows.stop):
            c = conditions.state
            to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
            batch = ConditionBatch(to(c.maps[rows]), to(c.keep[rows]), {k: to(v[rows]) for k, v in c.embeddings.items()},
                                   to(c.rgb[rows]) if c.rgb is not None else None)
            self._batch = ((rows.start, rows.stop), batch)
        return self._batch[1]

    def predict(self, x, t, rows: slice, conditions: Conditions):
        from ..control import guided_noise

        return guided_noise(self.denoiser, x, t.to(self.device), self.condition_batch(rows, conditions),
                            conditions.guidance)

    def decode(self, x0: np.ndarray, rows: slice, conditions: Conditions) -> Decoded:
        import torch

        from ..control import CONDITION_KINDS

        c = conditions.state
        out = []
        with torch.no_grad():
            for start in range(0, len(x0), self.batch_size):
                z = torch.from_numpy(x0[start:start + self.batch_size]).to(self.device)
                if c.rgb is not None:
                    first = rows.start + start
                    rgb = torch.from_numpy(c.rgb[first:first + len(z)]).to(self.device)
                    x = self.autoencoder.decode(z, rgb)
                else:
                    x = self.autoencoder.decode(z)
                out.append(x.float().cpu().numpy())
        spectral = self.model.artifact.spectral
        arrays = {"conditions": c.maps[rows], "condition_present": c.keep[rows],
                  **{f"condition_{kind}": values[rows] for kind, values in c.embeddings.items()}}
        return Decoded(np.concatenate(out).astype(np.float32), np.asarray(spectral["wavelengths_nm"], np.float64),
                       float(spectral["scale"]), float(spectral["offset"]), arrays,
                       metrics={"conditions": list(conditions.kinds)},
                       extra={"condition_kinds": list(CONDITION_KINDS)})

    def write_beside(self, tmp: Path, decoded: Decoded, rows: slice, conditions: Conditions) -> None:
        """The conditions each sample used: ``samples/sample_NNNN_<kind>.png`` (and ``_rgb``)."""
        from ...conditions.common import to_uint8
        from ...spectral import save_png
        from ..control import LOCAL_KINDS, LOCAL_SLOTS

        c = conditions.state
        for i in range(rows.start, rows.stop):
            for j, kind in enumerate(LOCAL_KINDS):
                if c.keep[i, j]:
                    image = to_uint8(c.maps[i, LOCAL_SLOTS[kind]])
                    if image.ndim != 3:
                        image = np.repeat(image[..., None], 3, axis=-1)
                    save_png(tmp / "samples" / f"sample_{i:04d}_{kind}.png", image)
            if c.rgb_png is not None:
                save_png(tmp / "samples" / f"sample_{i:04d}_rgb.png", c.rgb_png[i])
