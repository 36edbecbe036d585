"""Presets and the resolved configuration of ``train-ae`` (one per ``--kind``).

``tiny`` trains in minutes on a 2-core CPU (issue 5's prototype: widths 32-64-64,
L1 + 0.1·SAD, KL 1e-5, lr 2e-3, batch 8, random 32×32 crops). ``paper`` is the published
configuration of each seed paper, cited per kind below.

Two choices of the ``tiny`` presets matter more than any other setting at these widths
(measured on the embedded Indian Pines val split, 600 steps, ``benchmarks/autoencoder.py``
for the full run):

- ``norm_num_groups=1``: with 32–64 channels, 16 groups leave 2–4 channels per group, and
  GroupNorm then removes most of each patch's per-channel level (kl: 26.96 → 28.29 dB MPSNR,
  3.64° → 2.89° SAM). The ``paper`` presets keep LDM's 32 groups over 64–512 channels.
- ``band_standardise``: the VAE standardises each band with the training statistics inside
  its first/last convolution (``bandnorm.py``; 28.50 → 30.34 dB, 2.84° → 2.43°). It is data
  normalisation, not architecture, so the ``paper`` presets use it too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..training.presets import Preset, preset_table

KINDS = ("kl", "vq-rgb", "two-stream", "hsigene-kl")


@dataclass(frozen=True)
class KLAutoencoderPreset(Preset):
    """``--kind kl``: the HSIGene KL-VAE, its losses and optimiser."""

    block_out_channels: list[int]
    layers_per_block: int
    latent_channels: int
    norm_num_groups: int
    band_standardise: bool
    sad_weight: float
    kl_weight: float
    gradient_weight: float  # metrics.gradient_loss, against decoder blur (not in the papers: 0 there)
    linear_path: bool  # spectral_path.py: a linear code through the latent (not in the papers: off there)
    linear_block: bool  # spectral_path.py: that code maps whole f×f blocks, started at their PCA
    lr: float
    batch_size: int
    steps: int
    crop: int
    warmup_steps: int


@dataclass(frozen=True)
class TwoStreamPreset(KLAutoencoderPreset):
    """``--kind two-stream``: SpecDM's image VAE (a KL-VAE) beside its mask VAE, and their losses."""

    mask_block_out_channels: list[int]
    mask_latent_channels: int
    mask_linear_path: bool
    ce_weight: float


@dataclass(frozen=True)
class VQRGBPreset(Preset):
    """``--kind vq-rgb``: HyperLDM's conditional VQ autoencoder, its losses and optimiser."""

    block_out_channels: list[int]
    layers_per_block: int
    latent_channels: int
    norm_num_groups: int
    codebook_size: int
    condition_channels: int
    head_channels: int
    l1_weight: float
    cos_weight: float
    adv_weight: float
    lr: float
    batch_size: int
    steps: int
    crop: int
    warmup_steps: int


@dataclass(frozen=True)
class HSIGeneKLPreset(Preset):
    """``--kind hsigene-kl``: the released HSIGene VAE's layout (ldm ``AutoencoderKL``,
    ``stages/hsigene/vae.py``), its loss weight and optimiser. The layout fields are
    ``VAEConfig``'s (``stages/hsigene/config.py``); the band count is the dataset's."""

    ch: int
    ch_mult: list[int]
    num_res_blocks: int
    attn_resolutions: list[int]
    resolution: int
    z_channels: int
    embed_dim: int
    kl_weight: float
    sad_weight: float  # metrics.sad_loss (not in ldm's loss: 0 in both presets)
    gradient_weight: float  # metrics.gradient_loss (not in ldm's loss: 0 in both presets)
    lr: float
    batch_size: int
    steps: int
    crop: int
    warmup_steps: int


# The loss: the release publishes no first-stage training (configs/inference.yaml L94-L95,
# lossconfig: torch.nn.Identity). Of the ldm KL-autoencoder loss its VAE comes from
# (LPIPSWithDiscriminator; kl_weight 1e-6 in ldm's autoencoder_kl_* configs) the L1
# reconstruction and the KL term at 1e-6 are kept (hsigene_kl.py has the details); its LPIPS
# term (an ImageNet VGG on 3-channel RGB) and its patch discriminator (from step 50001) are left
# out: the first cannot be loaded offline and does not take 48 bands.
_HSIGENE_KL_LOSS = {"kl_weight": 1e-6, "sad_weight": 0.0, "gradient_weight": 0.0}
# The layouts are VAEConfig's (stages/hsigene/config.py; tests/hsigene/test_from_scratch.py checks
# that they match): written out here so that importing the presets does not import torch.
_HSIGENE_KL_TABLE = {
    # HSIGeneConfig.tiny()'s VAE (the released layout at toy widths), trained as kl's tiny preset is.
    "tiny": {
        "ch": 32,
        "ch_mult": [1, 2, 2],
        "num_res_blocks": 1,
        "attn_resolutions": [8],
        "resolution": 32,
        "z_channels": 8,
        "embed_dim": 4,
        **_HSIGENE_KL_LOSS,
        "lr": 1e-3,
        "batch_size": 8,
        "steps": 1500,
        "crop": 32,
        "warmup_steps": 50,
    },
    # The released VAE (VAEConfig's defaults, configs/inference.yaml L75-L95); ldm's
    # KL-autoencoder optimiser settings (base lr 4.5e-6) as kl's paper preset; 256-px crops (L83).
    "paper": {
        "ch": 64,
        "ch_mult": [1, 2, 4],
        "num_res_blocks": 4,
        "attn_resolutions": [16, 32, 64],
        "resolution": 256,
        "z_channels": 96,
        "embed_dim": 4,
        **_HSIGENE_KL_LOSS,
        "lr": 4.5e-6,
        "batch_size": 8,
        "steps": 100_000,
        "crop": 256,
        "warmup_steps": 0,
    },
}


PRESETS: dict[str, dict[str, Preset]] = {
    "kl": preset_table(
        KLAutoencoderPreset,
        {
            # f = 2, 48 latent channels, the block linear path (issue 14). Reconstructions of the embedded scene's val
            # patches against its train rows (`hsigen evaluate`, k = 10), 1500 steps, seed 0 (docs/pretrained.md):
            #   f = 4, 4 channels (the preset of session 5)        31.5 dB, SAM 2.18°; sPr 0.71, sRec 0.13, grad 0.45
            #   f = 2, 16 channels, no linear path (session 6)     34.9 dB, 1.78°; 0.77 / 0.18 / 0.70
            #   f = 2, 32 ch + gradient 1 + pooled linear path     40.5 dB, 1.32°; 0.83 / 0.25 / 0.85 (3000 steps: 0.95 / 0.33)
            #   f = 2, 32 ch + gradient 1 + block linear path      43.7 dB, 1.08°; 0.85 / 0.49 / 0.92
            #   f = 2, 48 ch + gradient 1 + block linear path      0.92 / 0.58 / 0.95 (this preset: every autoencoder target)
            # The pooled path averaged each 2×2 block before its 1×1 code, which caps what the latent can hold; the block
            # path codes the block's 192 values and starts at their PCA (spectral_path.py). Its latent is only usable with
            # the latent preset's per-channel standardisation and x0-prediction (spaces/latent.py: ε-prediction on it
            # made noise, sPr 0.00-0.002, gradient 12-22); the decoder is robust to latent error (val latents + 0.3 σ
            # per channel: gradient 1.29, sRec 0.87).
            "tiny": dict(
                block_out_channels=[32, 64],
                layers_per_block=1,
                latent_channels=48,
                norm_num_groups=1,
                band_standardise=True,
                sad_weight=0.1,
                kl_weight=1e-5,
                gradient_weight=1.0,
                linear_path=True,
                linear_block=True,
                lr=2e-3,
                batch_size=8,
                steps=1500,
                crop=32,
                warmup_steps=50,
            ),
            # Pang et al., HSIGene, arXiv:2409.12470 §3.2 / Fig. 3: 48 bands, base channels 64, multipliers [1, 2, 4] (f = 4),
            # 4 latent channels, two residual blocks per level (the LDM/CRS-Diff VAE it adopts).
            "paper": dict(
                block_out_channels=[64, 128, 256],
                layers_per_block=2,
                latent_channels=4,
                norm_num_groups=32,
                band_standardise=True,
                sad_weight=0.1,
                kl_weight=1e-6,
                gradient_weight=0.0,
                linear_path=False,
                linear_block=False,
                lr=4.5e-6,
                batch_size=8,
                steps=100_000,
                crop=256,
                warmup_steps=0,
            ),
        },
    ),
    "two-stream": preset_table(
        TwoStreamPreset,
        {
            # The mask branch is as wide as the image branch (two_stream.py) and has a linear path
            # through its latent (mask_branch.py) so that it learns the class map in a short run.
            # The image branch as kl's tiny (issue 14): f = 2, 48 latent channels, the block linear path. Its
            # reconstructions of the embedded scene's val patches against the train rows (k = 10), 1500 steps, seed 0:
            #   f = 4, 8 channels, pooled linear path (the preset before)   sPr 0.79 / sRec 0.17 / gradient 0.53
            #   f = 2, 48 channels, block linear path (this preset)          0.93 / 0.62 / 0.95, 46.3 dB, SAM 0.83°
            # (mask pixel accuracy on the val patches 0.955, 0.999 on the classes seen in training). Earlier, with f = 4:
            # 8 image-latent channels rather than 4 kept what tells the classes apart for labelled synthesis
            # (benchmarks/specdm.py, 1000 AE steps, 4 → 8 channels together with the mask linear path: AE
            # reconstructions nearest their own class mean 8/15 → 15/15 classes).
            "tiny": dict(
                block_out_channels=[32, 64],
                layers_per_block=1,
                latent_channels=48,
                norm_num_groups=1,
                band_standardise=True,
                mask_block_out_channels=[32, 64],
                mask_latent_channels=4,
                mask_linear_path=True,
                sad_weight=0.1,
                kl_weight=1e-5,
                gradient_weight=1.0,
                linear_path=True,
                linear_block=True,
                ce_weight=1.0,
                lr=2e-3,
                batch_size=8,
                steps=1500,
                crop=32,
                warmup_steps=50,
            ),
            # Liu et al., SpecDM, arXiv:2502.17056 §3.1 / §4.1: both branches are LDM KL-VAEs with f = 4 (LDM kl-f4: 128
            # channels, multipliers [1, 2, 4], 2 blocks, 3 latent channels), λ = 0.1, lr 4.5e-6.
            "paper": dict(
                block_out_channels=[128, 256, 512],
                layers_per_block=2,
                latent_channels=3,
                norm_num_groups=32,
                band_standardise=True,
                mask_block_out_channels=[128, 256, 512],
                mask_latent_channels=3,
                mask_linear_path=False,
                sad_weight=0.1,
                kl_weight=1e-6,
                gradient_weight=0.0,
                linear_path=False,
                linear_block=False,
                ce_weight=1.0,
                lr=4.5e-6,
                batch_size=8,
                steps=100_000,
                crop=256,
                warmup_steps=0,
            ),
        },
    ),
    "vq-rgb": preset_table(
        VQRGBPreset,
        {
            "tiny": dict(
                block_out_channels=[32, 64, 64],
                layers_per_block=1,
                latent_channels=8,
                norm_num_groups=16,
                codebook_size=256,
                condition_channels=16,
                head_channels=32,
                l1_weight=100.0,
                cos_weight=1000.0,
                adv_weight=0.1,
                lr=2e-3,
                batch_size=8,
                steps=1500,
                crop=32,
                warmup_steps=50,
            ),
            # Liu et al., HyperLDM, IEEE TGRS 61 (2023) §IV-A-1: f = 4, n_x = 16, K = 1024, λ1 = 100, λ2 = 1000, lr 1e-5 (cosine);
            # encoder/decoder widths of the VQGAN f = 4 model it builds on (128, [1, 2, 4], 2 blocks).
            "paper": dict(
                block_out_channels=[128, 256, 512],
                layers_per_block=2,
                latent_channels=16,
                norm_num_groups=32,
                codebook_size=1024,
                condition_channels=32,
                head_channels=64,
                l1_weight=100.0,
                cos_weight=1000.0,
                adv_weight=0.1,
                lr=1e-5,
                batch_size=8,
                steps=400_000,
                crop=256,
                warmup_steps=0,
            ),
        },
    ),
    "hsigene-kl": preset_table(HSIGeneKLPreset, _HSIGENE_KL_TABLE),
}


@dataclass
class TrainAEConfig:
    kind: str
    preset: str
    model: dict  # the resolved preset (architecture + loss weights + optimiser)
    seed: int = 0
    checkpoint_every: int = 0
    library: str | None = None  # vq-rgb: spectral library file (None = bundled)
    adversarial: bool = False  # vq-rgb: spatial + spectral discriminators (hyperldm eq. 6)
    pairs: str | None = None  # two-stream: co-registered second dataset (specdm §3.3)
    epochs: int | None = None  # --epochs: steps = ceil(epochs · training patches / batch size)
    loader: str = "auto"  # auto | memory | stream (stages/autoencoder/data.py: choose_loader)
    eval_batch: int = 16
    extra: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return int(self.model["steps"])

    @property
    def factor(self) -> int:
        levels = self.model["ch_mult"] if self.kind == "hsigene-kl" else self.model["block_out_channels"]
        return 2 ** (len(levels) - 1)

    def to_dict(self) -> dict:
        return asdict(self)
