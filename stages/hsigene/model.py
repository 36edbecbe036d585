"""The whole released HSIGene model as one module whose ``state_dict()`` has the released key
names and shapes (LiPang/HSIGene 9f893a7: models/CRS_Diff.py L12-L29 ``CRSControlNet``, a
LatentDiffusion from ldm/models/diffusion/ddpm.py):

    betas … logvar                  13 schedule buffers (ddpm.py L158-L178, L133)
    model.diffusion_model.*         the UNet (DiffusionWrapper, ddpm.py L93)
    first_stage_model.*             the 48-band VAE (frozen)
    cond_stage_model.transformer.*  CLIP ViT-L/14 text model (frozen; modules.py L102)
    local_adapter.*, metadata_emb.*, global_content_adapter.*, global_text_adapter.*
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .config import HSIGeneConfig
from .global_adapters import GlobalContentAdapter, GlobalTextAdapter, MetadataEmbedding
from .local_adapter import LocalAdapter
from .unet import ControlledUNet
from .vae import AutoencoderKL

SCHEDULE_BUFFERS = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
    "logvar",
)

# Parts by state-dict prefix; ``--train`` selects among the trainable ones.
PARTS = {
    "unet": ("model.diffusion_model.",),
    "adapters": ("local_adapter.", "global_content_adapter.", "global_text_adapter.", "metadata_emb."),
    "frozen": ("first_stage_model.", "cond_stage_model."),
}


def schedule_arrays(cfg: HSIGeneConfig) -> dict[str, np.ndarray]:
    """ddpm.py L139-L178 with ldm util.py L22-L25 ("linear": linspace of √β, squared),
    v_posterior 0, eps parameterisation; logvar zeros (ddpm.py L129, logvar_init 0)."""
    betas = np.linspace(cfg.linear_start**0.5, cfg.linear_end**0.5, cfg.timesteps, dtype=np.float64) ** 2
    alphas = 1.0 - betas
    ac = np.cumprod(alphas)
    ac_prev = np.append(1.0, ac[:-1])
    post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
    return {
        "betas": betas,
        "alphas_cumprod": ac,
        "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": np.sqrt(ac),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": np.log(1.0 - ac),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / ac),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / ac - 1.0),
        "posterior_variance": post_var,
        "posterior_log_variance_clipped": np.log(np.maximum(post_var, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(ac_prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
        "logvar": np.zeros(cfg.timesteps),
    }


class _Wrapper(nn.Module):
    """ldm's DiffusionWrapper: only holds ``diffusion_model``."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.diffusion_model = unet


class FrozenCLIPText(nn.Module):
    """``cond_stage_model``: holds ``transformer`` = transformers CLIPTextModel built from a
    config (no download); the tokenizer lives outside the checkpoint (``encoders.py``)."""

    def __init__(self, cfg: HSIGeneConfig):
        super().__init__()
        from transformers import CLIPTextConfig, CLIPTextModel

        t = cfg.text
        self.transformer = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=t.vocab_size,
                hidden_size=t.hidden_size,
                intermediate_size=t.intermediate_size,
                num_hidden_layers=t.num_layers,
                num_attention_heads=t.num_heads,
                max_position_embeddings=t.max_length,
                hidden_act=t.hidden_act,
                attn_implementation="sdpa",
            )
        )

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        # modules.py L124-L126: layer "last" → last_hidden_state (after the final LayerNorm).
        return self.transformer(input_ids=token_ids).last_hidden_state


class HSIGene(nn.Module):
    def __init__(self, cfg: HSIGeneConfig):
        super().__init__()
        self.cfg = cfg
        for name, values in schedule_arrays(cfg).items():
            self.register_buffer(name, torch.tensor(values, dtype=torch.float32))
        self.model = _Wrapper(ControlledUNet(cfg))
        self.first_stage_model = AutoencoderKL(cfg.vae)
        self.cond_stage_model = FrozenCLIPText(cfg)
        self.local_adapter = LocalAdapter(cfg)
        self.metadata_emb = MetadataEmbedding(cfg)
        self.global_content_adapter = GlobalContentAdapter(cfg.context_dim, cfg.content_mult)
        self.global_text_adapter = GlobalTextAdapter(cfg.context_dim)

    @property
    def unet(self) -> ControlledUNet:
        return self.model.diffusion_model

    def context(self, text_tokens: torch.Tensor, content: torch.Tensor, global_strength: float = 1.0) -> torch.Tensor:
        """CRS_Diff.py L88-L93: text adapter over the CLIP tokens, then the content tokens appended."""
        text = self.global_text_adapter(text_tokens)
        return torch.cat([text, global_strength * self.global_content_adapter(content).to(text.dtype)], dim=1)

    def denoise(self, x, t, context, features, metadata_emb, control_scale: float = 1.0) -> torch.Tensor:
        """One ε prediction (CRS_Diff.py L59-L103, ``apply_model``); the per-sample constants
        (context, condition features, metadata embedding) are computed once by the caller."""
        control = self.local_adapter(x, t, context, features)
        if control_scale != 1.0:
            control = [c * control_scale for c in control]
        return self.unet(x, t, metadata_emb, context, control)


def zero_init(model: HSIGene) -> None:
    """The release's zero_module() initialisations (openaimodel.py L229, L312, L732;
    attention.py L314; local_adapter.py L120, L184-L187, L421): a fresh model starts with
    the adapter silent and every residual branch an identity."""
    unet, adapter = model.unet, model.local_adapter
    convs = [
        unet.out[2],
        adapter.middle_block_out[0],
        *[z[0] for z in adapter.zero_convs],
        *adapter.feature_extractor.zero_convs,
    ]
    for module in list(unet.modules()) + list(adapter.modules()):
        if hasattr(module, "out_layers"):
            convs.append(module.out_layers[-1])
        if hasattr(module, "proj_out") and hasattr(module, "transformer_blocks"):
            convs.append(module.proj_out)
    with torch.no_grad():
        for conv in convs:
            conv.weight.zero_()
            conv.bias.zero_()


def build_model(cfg: HSIGeneConfig | None = None, device: str | torch.device = "cpu") -> HSIGene:
    """The architecture with the release's initialisation; ``device="meta"`` allocates nothing."""
    cfg = cfg or HSIGeneConfig()
    with torch.device(device):
        model = HSIGene(cfg)
    zero_init(model)
    return model


def prefix_counts(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level state-dict prefix (buffers excluded)."""
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():
        top = name.split(".")[0]
        key = "model.diffusion_model." if top == "model" else top + "."
        counts[key] = counts.get(key, 0) + p.numel()
    return counts
