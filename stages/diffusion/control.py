"""The conditional latent denoiser of HSIGene (Pang et al., HSIGene, arXiv:2409.12470 §3.2, Fig. 3; CRS-Diff style) with
HyperLDM's RGB-conditioned input (Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-C.2) as an option.

- A diffusers ``UNet2DConditionModel`` predicts the noise of a latent (eq. 3 of Pang et al., HSIGene, arXiv:2409.12470).
- A diffusers ``ControlNetModel`` (the trainable encoder copy of ControlNet, initialised from the
  UNet's encoder) takes the **local conditions** — hed, mlsd, sketch, seg — stacked in fixed
  channel slots (``LOCAL_SLOTS``) plus one presence plane per kind, at pixel resolution; its
  conditioning embedding (strided convolutions) brings them down to the latent size, and its
  zero-convolution outputs are added to the UNet's skip connections and mid block.
- **Global conditions** (content embedding, text embedding) become cross-attention tokens: one
  linear projection per kind, and a learned "null" token per kind that stands in when that
  condition is absent, plus one always-present base token.
- HyperLDM mode: a separate RGB condition encoder C (Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-C.2, e_c ∈ R^{h×w×n_c})
  whose features are concatenated with the noisy latent x_t (eq. 21) before the UNet and the
  ControlNet.

Composable control (CRS-Diff / Uni-ControlNet): during training each available condition is
dropped independently with probability p, and all of them together with probability p_all
(``drop_conditions``), so at sampling time any subset — including none — is in distribution.
Classifier-free guidance (``guided_noise``) contrasts the given subset with the all-absent input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..conditions.common import EMBEDDING_KINDS, MAP_CHANNELS, MAP_KINDS

LOCAL_KINDS: tuple[str, ...] = MAP_KINDS  # hed, mlsd, sketch, seg
GLOBAL_KINDS: tuple[str, ...] = EMBEDDING_KINDS  # content, text
CONDITION_KINDS = LOCAL_KINDS + GLOBAL_KINDS


def _slots() -> dict[str, slice]:
    slots, start = {}, 0
    for kind in LOCAL_KINDS:
        slots[kind] = slice(start, start + MAP_CHANNELS[kind])
        start += MAP_CHANNELS[kind]
    return slots


LOCAL_SLOTS = _slots()  # kind → channel slice of the map stack
LOCAL_MAP_CHANNELS = sum(MAP_CHANNELS[k] for k in LOCAL_KINDS)  # 6
CONTROL_CHANNELS = LOCAL_MAP_CHANNELS + len(LOCAL_KINDS)  # maps + one presence plane per kind


@dataclass
class ConditionBatch:
    """Conditions of a batch of N samples (all tensors on one device).

    ``maps``: (N, 6, H, W) local maps in [0, 1] in their slots; ``keep``: (N, 6) float 0/1, one
    column per kind of ``CONDITION_KINDS`` (1 = given); ``embeddings``: kind → (N, D);
    ``rgb``: (N, 3, H, W) RGB condition in the AE's normalised units (HyperLDM mode only).
    """

    maps: torch.Tensor
    keep: torch.Tensor
    embeddings: dict
    rgb: torch.Tensor | None = None

    def with_keep(self, keep: torch.Tensor) -> ConditionBatch:
        return ConditionBatch(self.maps, keep, self.embeddings, self.rgb)

    def cat(self, other: ConditionBatch) -> ConditionBatch:
        rgb = None if self.rgb is None else torch.cat([self.rgb, other.rgb])
        return ConditionBatch(
            torch.cat([self.maps, other.maps]),
            torch.cat([self.keep, other.keep]),
            {k: torch.cat([v, other.embeddings[k]]) for k, v in self.embeddings.items()},
            rgb,
        )


def control_input(maps: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """(N, 10, H, W) ControlNet input: each map slot multiplied by its kind's presence, then
    the presence planes (so an absent map is distinguishable from an empty one)."""
    n, _, h, w = maps.shape
    parts, planes = [], []
    for i, kind in enumerate(LOCAL_KINDS):
        present = keep[:, i].view(n, 1, 1, 1).to(maps.dtype)
        parts.append(maps[:, LOCAL_SLOTS[kind]] * present)
        planes.append(present.expand(n, 1, h, w))
    return torch.cat(parts + planes, dim=1)


def drop_conditions(available: torch.Tensor, n: int, p: float, p_all: float, generator) -> torch.Tensor:
    """(n, 6) keep mask: each available condition kept with probability 1 − p, independently;
    with probability p_all every condition is dropped (CRS-Diff's joint dropout), so the model
    also learns the unconditional distribution that classifier-free guidance needs."""
    draws = torch.rand((n, len(CONDITION_KINDS)), generator=generator)
    keep = (draws >= p).float() * available.float().cpu()[None]
    all_dropped = torch.rand((n, 1), generator=generator) < p_all
    return torch.where(all_dropped, torch.zeros_like(keep), keep)


class RGBConditionEncoder(nn.Module):
    """Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-C.2: C encodes the RGB image C to e_c ∈ R^{h×w×n_c} at the latent size
    (strided 3×3 convolutions, one per factor of 2), "standing alone" from the VQGAN's own."""

    def __init__(self, channels: int, factor: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.SiLU()]
        for _ in range(int(round(math.log2(factor)))):
            layers += [nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.SiLU()]
        layers.append(nn.Conv2d(channels, channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, rgb):
        return self.net(rgb)


def unet_kwargs(unet_cfg: dict) -> dict:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in unet_cfg.items()}


def conditioning_widths(base: int, factor: int) -> tuple[int, ...]:
    """Channel widths of the ControlNet conditioning embedding: log2(f) stride-2 stages bring
    pixel-resolution maps to the latent size (Stable Diffusion's f = 8 uses 16, 32, 96, 256)."""
    stages = int(round(math.log2(factor)))
    ladder = [base, 2 * base, 6 * base, 16 * base, 32 * base]
    return tuple(ladder[: stages + 1])


def build_unet_and_controlnet(
    model_cfg: dict, in_channels: int, out_channels: int, sample_size: int, conditioning_channels: int, factor: int
):
    """The denoising UNet (``model_cfg["unet"]``, ``cross_attention_dim``) and its ControlNet
    (Pang et al., HSIGene, arXiv:2409.12470 Fig. 3: a trainable copy of the UNet encoder with zero convolutions out) whose
    conditioning embedding takes ``conditioning_channels`` pixel-resolution planes down by ``factor``."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    unet = UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=out_channels,
        cross_attention_dim=int(model_cfg["cross_attention_dim"]),
        **unet_kwargs(model_cfg["unet"]),
    )
    controlnet = ControlNetModel.from_unet(
        unet,
        conditioning_channels=conditioning_channels,
        conditioning_embedding_out_channels=conditioning_widths(int(model_cfg["conditioning_base"]), factor),
    )
    return unet, controlnet


def controlled_unet(
    unet, controlnet, sample: torch.Tensor, t, tokens: torch.Tensor, control: torch.Tensor
) -> torch.Tensor:
    """UNet(sample, t, tokens) with the ControlNet's zero-convolution outputs added to its skip
    connections and mid block (Pang et al., HSIGene, arXiv:2409.12470 §3.2: the conditions reach the UNet only this way)."""
    down, mid = controlnet(sample, t, encoder_hidden_states=tokens, controlnet_cond=control, return_dict=False)
    return unet(
        sample, t, encoder_hidden_states=tokens, down_block_additional_residuals=down, mid_block_additional_residual=mid
    ).sample


def preconditioning_of(model_cfg: dict):
    """EDM preconditioning of the x0 prediction when the preset sets ``sigma_data`` (precondition.py)."""
    if model_cfg.get("sigma_data") is None:
        return None
    from .precondition import Preconditioning, schedule_alphas_cumprod

    return Preconditioning(schedule_alphas_cumprod(model_cfg["schedule"]), float(model_cfg["sigma_data"]))


class ControlledDenoiser(nn.Module):
    """ε_θ(x_t, t, conditions) = UNet(x_t ⊕ C(rgb), t, tokens, ControlNet(x_t ⊕ C(rgb), t, tokens, maps))."""

    def __init__(
        self,
        unet,
        controlnet,
        global_dims: dict[str, int],
        rgb_encoder: RGBConditionEncoder | None = None,
        preconditioning=None,
    ):
        super().__init__()
        self.unet, self.controlnet, self.rgb_encoder = unet, controlnet, rgb_encoder
        self.preconditioning = preconditioning  # precondition.py (the preset's sigma_data), or None
        width = int(unet.config.cross_attention_dim)
        self.global_dims = {k: int(d) for k, d in global_dims.items()}
        self.projections = nn.ModuleDict({k: nn.Linear(d, width) for k, d in self.global_dims.items()})
        # Token 0: always present; tokens 1..: the null embedding of each global kind.
        self.null_tokens = nn.Parameter(torch.randn(1 + len(GLOBAL_KINDS), width) * 0.02)

    @classmethod
    def build(
        cls,
        model_cfg: dict,
        latent_channels: int,
        sample_size: int,
        factor: int,
        global_dims: dict[str, int],
        rgb_condition: bool,
    ) -> ControlledDenoiser:
        rgb_channels = int(model_cfg["rgb_channels"]) if rgb_condition else 0
        unet, controlnet = build_unet_and_controlnet(
            model_cfg, latent_channels + rgb_channels, latent_channels, sample_size, CONTROL_CHANNELS, factor
        )
        encoder = RGBConditionEncoder(rgb_channels, factor) if rgb_condition else None
        return cls(unet, controlnet, global_dims, encoder, preconditioning_of(model_cfg))

    def tokens(self, cond: ConditionBatch, dtype) -> torch.Tensor:
        n = cond.keep.shape[0]
        null = self.null_tokens.to(dtype)
        tokens = [null[0].expand(n, -1)]
        for j, kind in enumerate(GLOBAL_KINDS, start=1):
            if kind in self.projections:
                keep = cond.keep[:, len(LOCAL_KINDS) + j - 1].to(dtype)[:, None]
                projected = self.projections[kind](cond.embeddings[kind].to(dtype))
                tokens.append(keep * projected + (1 - keep) * null[j])
            else:
                tokens.append(null[j].expand(n, -1))
        return torch.stack(tokens, dim=1)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: ConditionBatch) -> torch.Tensor:
        sample = x_t
        if self.rgb_encoder is not None:
            # Liu et al., HyperLDM, IEEE TGRS 61 (2023) eq. 21: e_c concatenated with x_t along channels
            sample = torch.cat([x_t, self.rgb_encoder(cond.rgb.to(x_t.dtype))], dim=1)
        tokens = self.tokens(cond, x_t.dtype)
        control = control_input(cond.maps, cond.keep).to(x_t.dtype)
        out = controlled_unet(self.unet, self.controlnet, sample, t, tokens, control)
        return out if self.preconditioning is None else self.preconditioning(x_t, t, out)

    # -- parameters and files ---------------------------------------------------------------
    def parameter_counts(self) -> dict[str, int]:
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        counts = {
            "unet": count(self.unet),
            "controlnet": count(self.controlnet),
            "condition_adapters": count(self.projections) + self.null_tokens.numel(),
        }
        if self.rgb_encoder is not None:
            counts["rgb_encoder"] = count(self.rgb_encoder)
        counts["total"] = sum(counts.values())
        return counts

    def adapter_state(self) -> dict:
        """Weights outside the two diffusers models (token projections, null tokens, RGB encoder)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(("unet.", "controlnet."))}


def guided_noise(model: ControlledDenoiser, x: torch.Tensor, t, cond: ConditionBatch, guidance: float) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022): ε_u + w·(ε_c − ε_u), with ε_u the prediction
    with every condition absent. The RGB input of HyperLDM is part of the data, never dropped.
    No condition given (or w = 1): a single conditional pass."""
    given = bool(cond.keep.any())
    if not given or guidance == 1.0:
        return model(x, t, cond)
    both = cond.cat(cond.with_keep(torch.zeros_like(cond.keep)))
    eps = model(torch.cat([x, x]), t, both)
    eps_c, eps_u = eps.chunk(2)
    return eps_u + guidance * (eps_c - eps_u)
