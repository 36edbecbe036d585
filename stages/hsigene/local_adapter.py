"""The local adapter (Uni-ControlNet style, inherited from CRS-Diff; Pang et al. arXiv:2409.12470
§3.2): a trainable copy of the UNet encoder whose four injection blocks are modulated by
multi-scale features of the condition maps through feature denormalisation, with a
self-attention in front (HSIGene's ``EnhancedFDN``).

Read from LiPang/HSIGene 9f893a7 models/local_adapter.py (line numbers below). Its 13 outputs
(one zero-conv per input block and one for the middle block) are added to the UNet's skips.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ResBlock, Step, time_mlp, timestep_embedding
from .config import HSIGeneConfig
from .unet import encoder_blocks


class FDN(nn.Module):
    """L32-L47: GroupNorm(32) without affine, then ·(1 + γ) + β with γ, β 3×3 convs of the
    condition features."""

    def __init__(self, channels: int, feature_channels: int, groups: int = 32):
        super().__init__()
        self.param_free_norm = nn.GroupNorm(groups, channels, affine=False)
        self.conv_gamma = nn.Conv2d(feature_channels, channels, 3, padding=1)
        self.conv_beta = nn.Conv2d(feature_channels, channels, 3, padding=1)

    def forward(self, x, features):
        normalized = (
            self.param_free_norm(x.float()).to(x.dtype) if x.dtype != torch.float32 else self.param_free_norm(x)
        )
        return normalized * (1 + self.conv_gamma(features)) + self.conv_beta(features)


class SelfAttention(nn.Module):
    """L49-L69: single-head attention over pixels with 1×1-conv queries/keys of width C/8 and
    values of width C, softmax(q·k) with NO 1/√d scaling, residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.query_conv = nn.Conv2d(channels, channels // 8, 1)
        self.key_conv = nn.Conv2d(channels, channels // 8, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        b, c, h, w = x.shape

        def tokens(t):  # (B, C', H, W) → (B, 1, HW, C')
            return t.flatten(2).transpose(1, 2).unsqueeze(1)

        out = F.scaled_dot_product_attention(
            tokens(self.query_conv(x)), tokens(self.key_conv(x)), tokens(self.value_conv(x)), scale=1.0
        )
        return out.squeeze(1).transpose(1, 2).reshape(b, c, h, w) + x


class EnhancedFDN(nn.Module):
    """L71-L80: self-attention, then FDN."""

    def __init__(self, channels: int, feature_channels: int, groups: int = 32):
        super().__init__()
        self.fdn = FDN(channels, feature_channels, groups)
        self.attention = SelfAttention(channels)

    def forward(self, x, features):
        return self.fdn(self.attention(x), features)


class LocalResBlock(nn.Module):
    """L83-L147: a ResBlock whose two GroupNorms are replaced by EnhancedFDN (``norm_in``,
    ``norm_out``); ``in_layers.0`` / ``out_layers.0`` are Identity, so they hold no weights."""

    takes_local_features = True

    def __init__(self, channels: int, emb_channels: int, out_channels: int, feature_channels: int, groups: int = 32):
        super().__init__()
        self.norm_in = EnhancedFDN(channels, feature_channels, groups)
        self.norm_out = EnhancedFDN(out_channels, feature_channels, groups)
        self.in_layers = nn.Sequential(nn.Identity(), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            nn.Identity(), nn.SiLU(), nn.Dropout(0.0), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        )
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x, emb, features):
        h = self.in_layers(self.norm_in(x, features))
        h = h + self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        h = self.out_layers(self.norm_out(h, features))
        return self.skip_connection(x) + h


class FeatureExtractor(nn.Module):
    """L150-L198: convs over the 18-channel condition stack (two stride-2 halvings in
    ``pre_extractor``), then one stride-2 conv per injection level, each read out through a
    zero-initialised 3×3 conv. Depends on the conditions only, so a sampler runs it once."""

    def __init__(self, local_channels: int, inject_channels, widths=(32, 64, 128)):
        super().__init__()
        a, b, c = widths
        self.pre_extractor = nn.Sequential(
            nn.Conv2d(local_channels, a, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(a, b, 3, padding=1, stride=2),
            nn.SiLU(),
            nn.Conv2d(b, b, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(b, c, 3, padding=1, stride=2),
            nn.SiLU(),
            nn.Conv2d(c, c, 3, padding=1),
            nn.SiLU(),
        )
        ins = (c,) + tuple(inject_channels[:-1])
        # Each extractor is a one-conv Sequential + SiLU (keys extractors.i.0), as in L165-L182.
        self.extractors = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(i, o, 3, padding=1, stride=2), nn.SiLU()) for i, o in zip(ins, inject_channels)]
        )
        self.zero_convs = nn.ModuleList([nn.Conv2d(o, o, 3, padding=1) for o in inject_channels])

    def forward(self, conditions):
        h = self.pre_extractor(conditions)
        features = []
        for extractor, zero_conv in zip(self.extractors, self.zero_convs):
            h = extractor(h)
            features.append(zero_conv(h))
        return features


class LocalAdapter(nn.Module):
    """L201-L440, state-dict prefix ``local_adapter.``."""

    def __init__(self, cfg: HSIGeneConfig):
        super().__init__()
        self.model_channels = cfg.model_channels
        self.inject_layers = tuple(cfg.inject_layers)
        emb = cfg.time_embed_dim
        self.time_embed = time_mlp(cfg.model_channels)
        self.feature_extractor = FeatureExtractor(cfg.local_channels, cfg.inject_channels, cfg.extractor_channels)
        per_block = cfg.num_res_blocks + 1  # res blocks + the downsample closing each level

        def res_block(index: int, cin: int, cout: int) -> nn.Module:
            # L299: block 1 + 3·level + nr is an injection block when listed in inject_layers
            # (the released config lists the first block of each level).
            if index in self.inject_layers:
                level = (index - 1) // per_block
                return LocalResBlock(cin, emb, cout, cfg.inject_channels[level], cfg.norm_groups)
            return ResBlock(cin, emb, cout, cfg.norm_groups)

        self.input_blocks, self.middle_block, widths = encoder_blocks(cfg, res_block)
        # L291, L352, L377, L417: a zero 1×1 conv after every input block and the middle block.
        self.zero_convs = nn.ModuleList([Step(nn.Conv2d(w, w, 1)) for w in widths])
        self.middle_block_out = Step(nn.Conv2d(widths[-1], widths[-1], 1))

    def forward(self, x, t, context, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """``features``: ``feature_extractor(conditions)``, computed once per sample."""
        emb = self.time_embed(timestep_embedding(t, self.model_channels).to(x.dtype))
        outs = []
        h = x
        for index, (block, zero_conv) in enumerate(zip(self.input_blocks, self.zero_convs)):
            local = features[self.inject_layers.index(index)] if index in self.inject_layers else None
            h = block(h, emb, context, local)
            outs.append(zero_conv(h))
        h = self.middle_block(h, emb, context)
        outs.append(self.middle_block_out(h))
        return outs
