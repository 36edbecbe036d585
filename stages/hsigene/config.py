"""Hyper-parameters of the released HSIGene model (Pang et al., "HSIGene: A Foundation Model for
Hyperspectral Image Generation", arXiv:2409.12470, §3.2: the CRS-Diff controllable LDM).

Every default is the value of the public release, LiPang/HSIGene at commit 9f893a7,
configs/inference.yaml (line numbers below); ``HSIGeneConfig.tiny()`` keeps the layout and
shrinks the widths so tests can build, save, import and sample it on a CPU in seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

# Public source the layout is read from (recorded in artifacts and in the key list's provenance).
PUBLIC_REPO = "LiPang/HSIGene"
PUBLIC_COMMIT = "9f893a7"


@dataclass(frozen=True)
class VAEConfig:
    # configs/inference.yaml L75-L95 (first_stage_config: ldm AutoencoderKL).
    bands: int = 48  # in_channels / out_ch L84-L85
    ch: int = 64  # L86
    ch_mult: tuple = (1, 2, 4)  # L87-L90: f = 4
    num_res_blocks: int = 4  # L91
    attn_resolutions: tuple = (16, 32, 64)  # L92: only 64 px occurs (256 → 128 → 64)
    resolution: int = 256  # L83
    z_channels: int = 96  # L82 (double_z: the encoder emits 2 × 96)
    embed_dim: int = 4  # L78: latent channels

    @property
    def factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)


@dataclass(frozen=True)
class TextConfig:
    # ldm/modules/encoders/modules.py L95-L102: FrozenCLIPEmbedder = transformers CLIPTextModel of
    # clip-vit-large-patch14 (the ViT-L/14 text tower: 12 layers, width 768, 77 tokens).
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_layers: int = 12
    num_heads: int = 12
    max_length: int = 77  # modules.py L95 max_length=77
    vocab_size: int = 49408
    hidden_act: str = "quick_gelu"


@dataclass(frozen=True)
class HSIGeneConfig:
    # UNet (unet_config, L58-L73) — the SD 1.x shape.
    latent_channels: int = 4  # L62, L64
    model_channels: int = 320  # L63
    channel_mult: tuple = (1, 2, 4, 4)  # L67
    num_res_blocks: int = 2  # L65
    attention_resolutions: tuple = (4, 2, 1)  # L66: downsample rates with a SpatialTransformer
    num_heads: int = 8  # L69 (legacy: False → head width = channels // 8)
    transformer_depth: int = 1  # L71
    context_dim: int = 768  # L72
    norm_groups: int = 32  # ldm diffusionmodules/util.py L350: GroupNorm32(32, ·)
    # Local adapter (local_control_config, L20-L36).
    local_channels: int = 18  # L25: 6 condition slots × 3 channels
    inject_channels: tuple = (192, 256, 384, 512)  # L26
    inject_layers: tuple = (1, 4, 7, 10)  # L27
    extractor_channels: tuple = (32, 64, 128)  # models/local_adapter.py L153-L163 (pre_extractor widths)
    # Global adapters (L38-L47) and metadata embedding (L49-L55).
    content_dim: int = 768  # L41: CLIP image feature width
    content_mult: tuple = (2, 4)  # L42: 4 context tokens
    metadata_dim: int = 7  # L54
    metadata_max_value: int = 1000  # L52
    # Diffusion (L4-L16).
    timesteps: int = 1000  # L8
    linear_start: float = 1e-4  # L4
    linear_end: float = 0.02  # L5
    scale_factor: float = 0.18215  # L16
    vae: VAEConfig = field(default_factory=VAEConfig)
    text: TextConfig = field(default_factory=TextConfig)

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.model_channels  # openaimodel.py L529

    @property
    def content_tokens(self) -> int:
        return self.content_mult[-1]  # global_adapter.py L89: 'b (n d) -> b n d', n = mult[-1]

    @property
    def condition_factor(self) -> int:
        """Condition maps are this many times the latent size: the feature extractor halves them
        twice (pre_extractor) and once more before level 0 (local_adapter.py L156-L167)."""
        return 8

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> HSIGeneConfig:
        def tup(values: dict, klass):
            names = {f.name for f in fields(klass)}
            unknown = set(values) - names
            if unknown:
                raise ValueError(f"unknown HSIGene config keys {sorted(unknown)}")
            return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}

        d = dict(d)
        vae = VAEConfig(**tup(d.pop("vae", {}), VAEConfig))
        text = TextConfig(**tup(d.pop("text", {}), TextConfig))
        return cls(**tup(d, cls), vae=vae, text=text)

    @classmethod
    def tiny(cls) -> HSIGeneConfig:
        """The released layout at toy widths (GroupNorm's 32 groups still divide every width)."""
        return cls(
            model_channels=32,
            channel_mult=(1, 2, 2, 2),
            num_heads=4,
            context_dim=32,
            inject_channels=(32, 32, 64, 64),
            extractor_channels=(16, 16, 32),
            content_dim=32,
            vae=VAEConfig(
                ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(8,), resolution=32, z_channels=8
            ),
            text=TextConfig(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2),
        )

    def with_overrides(self, **kw) -> HSIGeneConfig:
        return replace(self, **kw)
