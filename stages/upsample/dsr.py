"""DSRNet: diffusion-based RGB super-resolution (Pang et al., HSIGene, arXiv:2409.12470 §3.3.2).

"Highly based on the framework introduced in Sec. 3.2": a KL autoencoder (diffusers
``AutoencoderKL`` with 3 channels, the HSIGene VAE of ``stages.autoencoder.kl`` on RGB) whose
latent space a denoising UNet works in, and a ControlNet branch that carries the condition.
The condition is the LOW-RESOLUTION RGB image; "we added an upsampling module before the
feature extractor": ``ConditionUpsampler`` brings it to the HR size, then the ControlNet's
conditioning embedding (the feature extractor of §3.2, strided convolutions) brings it to the
latent size, and the zero-convolution outputs join the UNet's skips.

    LR RGB ─► ConditionUpsampler (×s) ─► ControlNet(z_t, t, ·) ─┐ zero convs
    z_t ──────────────────────────────────────────────────────► UNet ─► ε̂ ─► DDIM (eq. 2) ─► z_0 ─► VAE decoder ─► HR RGB

RGB units: DSRNet sees RGB in [-1, 1] (uint8 / 127.5 − 1), whatever the source; callers map
their own units in and out (``dsr_guide.py`` does it for hyperspectral scenes).

Sampling noise is keyed to POSITIONS: the value at latent pixel (i, j) of step k is drawn from
a generator seeded by (seed, item, k, block of (i, j)), so a window of a large scene gets the
same noise whether it is sampled alone or inside a larger call (what makes tiling exact).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..common.errors import ArtifactError, ConfigError
from ..diffusion.schedules import SAMPLERS

AUTOENCODER_DIR, UNET_DIR, CONTROLNET_DIR = "autoencoder", "unet", "controlnet"
SCHEDULER_DIR, ADAPTERS_FILE, MODEL_JSON = "scheduler", "adapters.safetensors", "model.json"

NOISE_BLOCK = 16  # latent pixels per side of one independently seeded noise block


def rgb_to_unit(rgb_uint8: np.ndarray) -> np.ndarray:
    """(…, H, W, 3) uint8 → (…, 3, H, W) float32 in [-1, 1], DSRNet's RGB units."""
    return np.moveaxis(np.asarray(rgb_uint8, np.float32) / 127.5 - 1.0, -1, -3).copy()


def unit_to_uint8(x: np.ndarray) -> np.ndarray:
    """(3, H, W) in [-1, 1] → (H, W, 3) uint8 (clipped)."""
    return (np.clip((np.moveaxis(np.asarray(x, np.float32), 0, -1) + 1.0) * 127.5, 0, 255) + 0.5).astype(np.uint8)


class ConditionUpsampler(nn.Module):
    """§3.3.2's upsampling module before the feature extractor: LR (N, 3, h, w) → (N, 3, h·s, w·s)
    as bicubic ×s plus a learned sub-pixel-convolution residual (conv → PixelShuffle, Shi et al.
    2016). The last convolution starts at zero, so training starts from plain bicubic."""

    def __init__(self, scale: int, width: int, channels: int = 3):
        super().__init__()
        self.scale = int(scale)
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, channels * self.scale**2, 3, padding=1),
        )
        self.shuffle = nn.PixelShuffle(self.scale)
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return up + self.shuffle(self.body(lr))


class DSRDenoiser(nn.Module):
    """ε_θ(z_t, t, lr) = UNet(z_t, t, c, ControlNet(z_t, t, c, Up(lr))) (Pang et al., HSIGene, arXiv:2409.12470 §3.2 and §3.3.2).

    There is no text or content condition in super-resolution: the cross-attention context ``c``
    is one learned token."""

    def __init__(self, unet, controlnet, upsampler: ConditionUpsampler):
        super().__init__()
        self.unet, self.controlnet, self.upsampler = unet, controlnet, upsampler
        self.token = nn.Parameter(torch.randn(1, 1, int(unet.config.cross_attention_dim)) * 0.02)

    @classmethod
    def build(cls, net: dict, latent_channels: int, sample_size: int, factor: int, scale: int) -> DSRDenoiser:
        from ..diffusion.control import build_unet_and_controlnet

        unet, controlnet = build_unet_and_controlnet(net, latent_channels, latent_channels, sample_size, 3, factor)
        return cls(unet, controlnet, ConditionUpsampler(scale, int(net["upsampler_width"])))

    @classmethod
    def from_description(cls, info: dict) -> DSRDenoiser:
        """An untrained denoiser of the architecture a DSRNet's ``model.json`` describes."""
        net = {**info["arch"], "upsampler_width": info["upsampler_width"]}
        size = int(info["crop"]) // int(info["factor"])
        return cls.build(net, int(info["latent_channels"]), size, int(info["factor"]), int(info["scale"]))

    def forward(self, z_t: torch.Tensor, t, lr: torch.Tensor) -> torch.Tensor:
        from ..diffusion.control import controlled_unet

        control = self.upsampler(lr.to(z_t.dtype))
        tokens = self.token.to(z_t.dtype).expand(z_t.shape[0], -1, -1)
        return controlled_unet(self.unet, self.controlnet, z_t, t, tokens, control)

    def parameter_counts(self) -> dict[str, int]:
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        return {
            "unet": count(self.unet),
            "controlnet": count(self.controlnet),
            "condition_upsampler": count(self.upsampler) + self.token.numel(),
        }

    def adapter_state(self) -> dict:
        """Weights outside the two diffusers models (the upsampling module and the token)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(("unet.", "controlnet."))}


def unet_downsampling(net: dict) -> int:
    return 2 ** (len(net["unet"]["block_out_channels"]) - 1)


def lr_multiple(multiple: int, scale: int) -> int:
    """Smallest LR size step m whose HR size m·s is a multiple of ``multiple``."""
    return multiple // math.gcd(multiple, scale)


# -- the trained model ---------------------------------------------------------------------------


@dataclass
class DSRModel:
    """A loaded DSRNet sr-model: the RGB autoencoder, the denoiser and the noise schedule."""

    ae: object  # stages.autoencoder.kl.KLAutoencoder on RGB
    denoiser: DSRDenoiser
    scheduler_config: dict
    info: dict  # the artifact's model.json
    path: Path | None = None

    @property
    def scale(self) -> int:
        return int(self.info["scale"])

    @property
    def factor(self) -> int:
        return int(self.info["factor"])

    @property
    def multiple(self) -> int:
        """HR sizes the model takes must be multiples of this (AE factor × UNet downsampling)."""
        return int(self.info["multiple"])

    @property
    def device(self):
        return next(self.denoiser.parameters()).device


def load_dsr(path: str | Path, device="cpu", role: str = "--dsr") -> DSRModel:
    """The DSRNet of an ``sr-model`` artifact written by ``upsample train-dsr``, in eval mode."""
    from diffusers import ControlNetModel, DDPMScheduler, UNet2DConditionModel

    from ..artifacts import open_artifact
    from ..autoencoder.kl import KLAutoencoder
    from ..training import load_weights

    artifact = open_artifact(path, "sr-model", role=role)
    method = artifact.manifest.get("sr_model", {}).get("method", "unknown")
    if method != "dsr":
        raise ArtifactError(f"{role} {path} is a {method} sr-model; give one made by `hsigen upsample train-dsr`")
    for name in (
        MODEL_JSON,
        ADAPTERS_FILE,
        f"{AUTOENCODER_DIR}/{MODEL_JSON}",
        f"{UNET_DIR}/config.json",
        f"{CONTROLNET_DIR}/config.json",
        f"{SCHEDULER_DIR}/scheduler_config.json",
    ):
        artifact.file(name)
    root = artifact.path
    info = json.loads((root / MODEL_JSON).read_text())
    ae_meta = json.loads((root / AUTOENCODER_DIR / MODEL_JSON).read_text())
    ae = KLAutoencoder.load(root / AUTOENCODER_DIR, ae_meta)
    unet = UNet2DConditionModel.from_pretrained(str(root / UNET_DIR), local_files_only=True, low_cpu_mem_usage=False)
    controlnet = ControlNetModel.from_pretrained(
        str(root / CONTROLNET_DIR), local_files_only=True, low_cpu_mem_usage=False
    )
    denoiser = DSRDenoiser(unet, controlnet, ConditionUpsampler(int(info["scale"]), int(info["upsampler_width"])))
    missing, unexpected = denoiser.load_state_dict(load_weights(root / ADAPTERS_FILE), strict=False)
    missing = [k for k in missing if not k.startswith(("unet.", "controlnet."))]
    if missing or unexpected:
        raise ArtifactError(
            f"{root}/{ADAPTERS_FILE} does not match the model (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); rebuild it with `hsigen upsample train-dsr`"
        )
    scheduler_config = dict(DDPMScheduler.from_pretrained(str(root / SCHEDULER_DIR)).config)
    device = torch.device(device) if isinstance(device, str) else device
    return DSRModel(ae.to(device).eval(), denoiser.to(device).eval(), scheduler_config, info, Path(path))


# -- sampling --------------------------------------------------------------------------------------


def _block_seed(*keys: int) -> int:
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31 | int(state[1]) >> 1) & ((1 << 63) - 1)


def position_noise(seed: int, item: int, step: int, channels: int, r0: int, c0: int, h: int, w: int) -> torch.Tensor:
    """N(0, I) noise of shape (channels, h, w) for latent rows r0..r0+h, columns c0..c0+w of a
    scene: every NOISE_BLOCK² block has its own generator seeded by (seed, item, step, block),
    so a value depends on its position only, never on the window it is drawn for."""
    b = NOISE_BLOCK
    br0, bc0 = r0 // b, c0 // b
    br1, bc1 = -(-(r0 + h) // b), -(-(c0 + w) // b)
    out = torch.empty(channels, (br1 - br0) * b, (bc1 - bc0) * b)
    for bi in range(br0, br1):
        for bj in range(bc0, bc1):
            g = torch.Generator().manual_seed(_block_seed(seed, item, step, bi, bj))
            out[:, (bi - br0) * b : (bi - br0 + 1) * b, (bj - bc0) * b : (bj - bc0 + 1) * b] = torch.randn(
                (channels, b, b), generator=g
            )
    return out[:, r0 - br0 * b : r0 - br0 * b + h, c0 - bc0 * b : c0 - bc0 * b + w]


def make_sampler(kind: str, scheduler_config: dict):
    """(scheduler, eta): ``ddim`` (Pang et al., HSIGene, arXiv:2409.12470 eq. 2, η = 0), ``dpm`` (DPM-Solver++, deterministic),
    ``ddpm``: ancestral sampling as DDIM with η = 1 (Song et al. 2021 §4.1: η = 1 is DDPM's
    posterior), so that its per-step noise can be given as position-keyed ``variance_noise``."""
    from diffusers import DDIMScheduler

    from ..diffusion.schedules import sampling_scheduler

    if kind not in SAMPLERS:
        raise ConfigError(f"--sampler {kind!r}: choose one of {', '.join(SAMPLERS)}")
    if kind == "ddpm":
        return DDIMScheduler.from_config(scheduler_config), 1.0
    return sampling_scheduler(kind, scheduler_config), 0.0


def check_sampling(dsr: DSRModel, steps: int, sampler: str) -> None:
    total = int(dsr.scheduler_config["num_train_timesteps"])
    if not 1 <= int(steps) <= total:
        raise ConfigError(f"--steps {steps}: the DSRNet was trained with {total} diffusion steps; choose 1..{total}")
    make_sampler(sampler, dsr.scheduler_config)


def sample_window(
    dsr: DSRModel, lr: torch.Tensor, latent_origin: tuple[int, int], steps: int, sampler: str, seed: int, item: int = 0
) -> torch.Tensor:
    """Super-resolve ONE window: LR (3, h, w) in [-1, 1] → HR (3, h·s, w·s).

    The window is padded (edge replication) at its bottom/right to the model's size multiple and
    cropped after; ``latent_origin`` is its top-left latent pixel in the scene (for the noise)."""
    from ..diffusion.reverse import reverse_diffusion

    s, f = dsr.scale, dsr.factor
    h, w = lr.shape[-2:]
    m = lr_multiple(dsr.multiple, s)
    hp, wp = -(-h // m) * m, -(-w // m) * m
    device = dsr.device
    x = lr[None].to(device=device, dtype=torch.float32)
    if (hp, wp) != (h, w):
        x = F.pad(x, (0, wp - w, 0, hp - h), mode="replicate")
    channels = int(dsr.info["latent_channels"])
    lh, lw = hp * s // f, wp * s // f
    r0, c0 = latent_origin
    scheduler, eta = make_sampler(sampler, dsr.scheduler_config)
    noise = position_noise(seed, item, 0, channels, r0, c0, lh, lw)[None].to(device)

    def step_kwargs(i: int) -> dict:
        if eta == 0.0:
            return {}
        noise_i = position_noise(seed, item, i + 1, channels, r0, c0, lh, lw)
        return {"eta": eta, "variance_noise": noise_i[None].to(device)}

    z = reverse_diffusion(scheduler, noise, int(steps), lambda z_t, t: dsr.denoiser(z_t, t.to(device), x), step_kwargs)
    with torch.no_grad():
        hr = dsr.ae.decode(z)
    return hr[0, :, : h * s, : w * s].float().cpu()
