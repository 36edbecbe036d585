"""The HSIGene denoiser: ldm's UNetModel whose skips and middle receive the local adapter's
13 control residuals (LiPang/HSIGene 9f893a7 models/local_adapter.py L443-L461,
``LocalControlUNetModel``), with the metadata embedding added to the time embedding
(L447: ``emb = time_embed(t_emb) + metadata``)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .blocks import Downsample, GroupNorm32, ResBlock, SpatialTransformer, Step, Upsample, time_mlp, timestep_embedding
from .config import HSIGeneConfig


def attention(cfg: HSIGeneConfig, channels: int) -> SpatialTransformer:
    # openaimodel.py L570-L596 with num_head_channels -1, legacy False: num_heads heads of channels // num_heads.
    return SpatialTransformer(
        channels, cfg.num_heads, channels // cfg.num_heads, cfg.transformer_depth, cfg.context_dim, cfg.norm_groups
    )


def encoder_blocks(cfg: HSIGeneConfig, res_block: Callable[[int, int, int], nn.Module]):
    """openaimodel.py L545-L624: input_blocks (conv_in, then per level ``num_res_blocks`` ×
    [ResBlock (+ SpatialTransformer)], a Downsample between levels) and the middle block.
    ``res_block(index, in_ch, out_ch)`` builds the residual block of input block ``index``
    (the local adapter swaps its injection blocks in there). Returns (input_blocks,
    middle_block, widths of every input block's output)."""
    emb = cfg.time_embed_dim
    blocks = nn.ModuleList([Step(nn.Conv2d(cfg.latent_channels, cfg.model_channels, 3, padding=1))])
    widths = [cfg.model_channels]
    ch, ds = cfg.model_channels, 1
    for level, mult in enumerate(cfg.channel_mult):
        for _ in range(cfg.num_res_blocks):
            out = mult * cfg.model_channels
            layers = [res_block(len(blocks), ch, out)]
            ch = out
            if ds in cfg.attention_resolutions:
                layers.append(attention(cfg, ch))
            blocks.append(Step(*layers))
            widths.append(ch)
        if level != len(cfg.channel_mult) - 1:
            blocks.append(Step(Downsample(ch)))
            widths.append(ch)
            ds *= 2
    middle = Step(
        ResBlock(ch, emb, groups=cfg.norm_groups), attention(cfg, ch), ResBlock(ch, emb, groups=cfg.norm_groups)
    )  # openaimodel.py L634-L662
    return blocks, middle, widths


class ControlledUNet(nn.Module):
    """State-dict prefix ``model.diffusion_model.``: time_embed, input_blocks, middle_block,
    output_blocks, out."""

    def __init__(self, cfg: HSIGeneConfig):
        super().__init__()
        self.model_channels = cfg.model_channels
        emb = cfg.time_embed_dim
        self.time_embed = time_mlp(cfg.model_channels)
        self.input_blocks, self.middle_block, widths = encoder_blocks(
            cfg, lambda _i, cin, cout: ResBlock(cin, emb, cout, cfg.norm_groups)
        )
        ch = widths[-1]
        ds = 2 ** (len(cfg.channel_mult) - 1)
        self.output_blocks = nn.ModuleList()
        # openaimodel.py L665-L727: per level (deepest first) num_res_blocks + 1 blocks, each
        # concatenating one skip; an Upsample closes every level but the top one.
        for level, mult in list(enumerate(cfg.channel_mult))[::-1]:
            for i in range(cfg.num_res_blocks + 1):
                out = cfg.model_channels * mult
                layers = [ResBlock(ch + widths.pop(), emb, out, cfg.norm_groups)]
                ch = out
                if ds in cfg.attention_resolutions:
                    layers.append(attention(cfg, ch))
                if level and i == cfg.num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(Step(*layers))
        # openaimodel.py L729-L733.
        self.out = nn.Sequential(
            GroupNorm32(cfg.norm_groups, ch),
            nn.SiLU(),
            nn.Conv2d(cfg.model_channels, cfg.latent_channels, 3, padding=1),
        )

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        metadata_emb: torch.Tensor,
        context: torch.Tensor,
        control: list[torch.Tensor],
    ) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.model_channels).to(x.dtype)) + metadata_emb.to(x.dtype)
        skips = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb, context)
            skips.append(h)
        h = self.middle_block(h, emb, context) + control[-1]
        # local_adapter.py L456-L458: skip i gets control residual i, consumed deepest first.
        for j, block in enumerate(self.output_blocks):
            k = len(skips) - 1 - j
            h = block(torch.cat([h, skips[k] + control[k]], dim=1), emb, context)
        return self.out(h)
