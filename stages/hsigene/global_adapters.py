"""Global conditioning of HSIGene (Pang et al. arXiv:2409.12470 §3.2, after CRS-Diff): the text
adapter over CLIP text tokens, the content adapter turning one CLIP image feature into context
tokens appended to them, and the metadata embedding summed into the UNet's time embedding.

Read from LiPang/HSIGene 9f893a7 models/global_adapter.py, models/metadata_embedding.py and
ldm/modules/diffusionmodules/util.py (line numbers below).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import FeedForward
from .config import HSIGeneConfig


class GlobalTextAdapter(nn.Module):
    """global_adapter.py L32-L48: LN → GEGLU FF (d → 2d, mult 2) → LN → GEGLU FF (2d → d, mult 4),
    token-wise, no residual. Prefix ``global_text_adapter.``."""

    def __init__(self, dim: int):
        super().__init__()
        self.ff1 = FeedForward(dim, 2 * dim, mult=2, dropout=0.1)
        self.ff2 = FeedForward(2 * dim, dim, mult=4, dropout=0.3)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(2 * dim)

    def forward(self, tokens):
        return self.ff2(self.norm2(self.ff1(self.norm1(tokens))))


class GlobalContentAdapter(nn.Module):
    """global_adapter.py L70-L90: one feature (B, d) → LN → FF (d → m0·d, mult 2·m0) → LN →
    FF (m0·d → m1·d, mult 2·m1/m0) → reshaped into m1 tokens of width d. Prefix
    ``global_content_adapter.``."""

    def __init__(self, dim: int, mult=(2, 4)):
        super().__init__()
        m0, m1 = mult
        self.dim, self.tokens = dim, m1
        self.ff1 = FeedForward(dim, dim * m0, mult=m0 * 2)
        self.ff2 = FeedForward(dim * m0, dim * m1, mult=m1 * 2 // m0)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim * m0)

    def forward(self, feature):
        x = self.ff2(self.norm2(self.ff1(self.norm1(feature))))
        return x.view(x.shape[0], self.tokens, self.dim)


class MetadataMLP(nn.Module):
    """metadata_embedding.py L13-L24: a single Linear (key ``fc1``)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.fc1 = nn.Linear(dim_in, dim_out)

    def forward(self, x):
        return self.fc1(x)


class MetadataEmbedding(nn.Module):
    """metadata_embedding.py L26-L44 with ldm util.py L154-L194: each of the 7 values k is scaled
    by max_value and embedded as interleaved [sin(k·ω_i), cos(k·ω_i)], ω_i = 10000^(-2i/D);
    value j goes through its own Linear(D → 4D) and the results are summed. Inference passes
    zeros (inference_single.py L100), which still yields a constant, learned offset."""

    def __init__(self, cfg: HSIGeneConfig):
        super().__init__()
        self.dim = cfg.model_channels  # inference.yaml L53 embedding_dim 320
        self.max_value = cfg.metadata_max_value
        self.mlp_models = nn.ModuleList([MetadataMLP(self.dim, 4 * self.dim) for _ in range(cfg.metadata_dim)])

    def sinusoid(self, values: torch.Tensor) -> torch.Tensor:
        i = torch.arange(self.dim // 2, dtype=torch.float32, device=values.device)
        omega = 10000.0 ** (-2 * i / self.dim)
        args = (values.float() * self.max_value)[..., None] * omega  # (B, M, D/2)
        return torch.stack([torch.sin(args), torch.cos(args)], dim=-1).flatten(-2)  # interleaved

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """values (B, 7) → (B, 4D)."""
        emb = self.sinusoid(values).to(self.mlp_models[0].fc1.weight.dtype)
        return sum(mlp(emb[:, j]) for j, mlp in enumerate(self.mlp_models))
