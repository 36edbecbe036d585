"""HSIGene's 48-band KL autoencoder (ldm ``AutoencoderKL``), state-dict prefix
``first_stage_model.``: encoder, decoder, quant_conv, post_quant_conv.

Read from LiPang/HSIGene 9f893a7 ldm/models/autoencoder.py L13-L91 and
ldm/modules/diffusionmodules/model.py (line numbers below); no timestep input (temb_ch 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Upsample  # model.py L50-L65: nearest ×2 then a 3×3 conv ``conv`` — the UNet's layer
from .config import VAEConfig


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6)  # model.py L46-L47


class ResnetBlock(nn.Module):
    """model.py L90-L149 (temb_channels 0, no conv shortcut): norm1, conv1, norm2, conv2,
    nin_shortcut (1×1) when the width changes."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """model.py L152-L203: single-head pixel self-attention, softmax(q·k/√C), 1×1 q/k/v/proj_out."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.q, self.k, self.v = (nn.Conv2d(channels, channels, 1) for _ in range(3))
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.norm(x)

        def tokens(t):
            return t.flatten(2).transpose(1, 2).unsqueeze(1)

        out = F.scaled_dot_product_attention(tokens(self.q(y)), tokens(self.k(y)), tokens(self.v(y)))
        return x + self.proj_out(out.squeeze(1).transpose(1, 2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """model.py L68-L87: pad (0, 1, 0, 1) then a 3×3 stride-2 conv without padding."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class _Middle(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.block_1, self.attn_1, self.block_2 = (
            ResnetBlock(channels, channels),
            AttnBlock(channels),
            ResnetBlock(channels, channels),
        )

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class _Level(nn.Module):
    """One resolution: ``block`` and ``attn`` lists plus an optional down/up-sampler."""

    def __init__(self, blocks, attns, resample_name: str | None = None, resample: nn.Module | None = None):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attns)
        if resample_name:
            setattr(self, resample_name, resample)

    def run(self, h):
        for i, block in enumerate(self.block):
            h = block(h)
            if len(self.attn):
                h = self.attn[i](h)
        return h


class Encoder(nn.Module):
    """model.py L453-L544."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.conv_in = nn.Conv2d(cfg.bands, cfg.ch, 3, padding=1)
        res, cin = cfg.resolution, cfg.ch
        self.down = nn.ModuleList()
        for level, mult in enumerate(cfg.ch_mult):
            cout = cfg.ch * mult
            blocks = [ResnetBlock(cin if i == 0 else cout, cout) for i in range(cfg.num_res_blocks)]
            attns = [AttnBlock(cout) for _ in range(cfg.num_res_blocks)] if res in cfg.attn_resolutions else []
            last = level == len(cfg.ch_mult) - 1
            self.down.append(_Level(blocks, attns, None if last else "downsample", None if last else Downsample(cout)))
            cin = cout
            res = res if last else res // 2
        self.mid = _Middle(cin)
        self.norm_out = _norm(cin)
        self.conv_out = nn.Conv2d(cin, 2 * cfg.z_channels, 3, padding=1)  # double_z

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.down:
            h = level.run(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    """model.py L547-L653: ``up`` is indexed by level (0 = full resolution) but run deepest first."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        levels = len(cfg.ch_mult)
        cin = cfg.ch * cfg.ch_mult[-1]
        res = cfg.resolution // 2 ** (levels - 1)
        self.conv_in = nn.Conv2d(cfg.z_channels, cin, 3, padding=1)
        self.mid = _Middle(cin)
        ups = []
        for level in reversed(range(levels)):
            cout = cfg.ch * cfg.ch_mult[level]
            blocks = [ResnetBlock(cin if i == 0 else cout, cout) for i in range(cfg.num_res_blocks + 1)]
            attns = [AttnBlock(cout) for _ in range(cfg.num_res_blocks + 1)] if res in cfg.attn_resolutions else []
            ups.insert(0, _Level(blocks, attns, "upsample" if level else None, Upsample(cout) if level else None))
            cin = cout
            res = res * 2 if level else res
        self.up = nn.ModuleList(ups)
        self.norm_out = _norm(cin)
        self.conv_out = nn.Conv2d(cin, cfg.bands, 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for level in reversed(range(len(self.up))):
            h = self.up[level].run(h)
            if level:
                h = self.up[level].upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoencoderKL(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quant_conv = nn.Conv2d(2 * cfg.z_channels, 2 * cfg.embed_dim, 1)  # autoencoder.py L33
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)  # autoencoder.py L34

    def encode_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, logvar) of the diagonal Gaussian posterior (ldm distributions.py)."""
        mean, logvar = self.quant_conv(self.encoder(x)).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(z))
