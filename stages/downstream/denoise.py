"""``--task denoise``: HSIGene's denoising experiment (Pang et al., HSIGene, arXiv:2409.12470,
§4.5, Table 8): additive Gaussian noise σ = 0.2 in normalised units on real test patches; a
denoiser trained on real, synthetic, and real + synthetic patches (degraded the same way);
PSNR / SSIM / SAM on held-out real rows and on a second scene (Xiongan → WHU-Hi-HanChuan in
the paper; ``--test DATASET`` here).

The paper's denoisers (T3SC, TRQ3D, SERT) are large; this uses a compact spectral-spatial CNN
("SS-DnCNN"): a 1×1 spectral projection to a few channels, a DnCNN-style stack of 3×3 conv +
ReLU layers (Zhang, Zuo, Chen, Meng, Zhang, "Beyond a Gaussian Denoiser: Residual Learning of
Deep CNN for Image Denoising", IEEE TIP 26(7), 2017) and a 1×1 back-projection to the bands.
It predicts the clean image directly: measured on the embedded scene, 100 steps reached
26.4 dB this way against 14.9 dB when predicting the noise (DnCNN's residual form), because
the projection onto few spectral channels already removes most of the noise."""

from __future__ import annotations

from ..common.errors import ConfigError
from .nets import forward_np
from .protocol import PatchTask
from .restoration import PSNR, SAM, SSIM, image_scores

SPECTRAL, WIDTH, DEPTH = 16, 32, 2


def build_denoiser(bands: int, spectral: int = SPECTRAL, width: int = WIDTH, depth: int = DEPTH):
    from torch import nn

    layers = [nn.Conv2d(bands, spectral, 1), nn.Conv2d(spectral, width, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    layers.append(nn.Conv2d(width, bands, 1))
    return nn.Sequential(*layers)


def add_noise(clean, generator, sigma: float):
    """The test degradation: clean (n, B, H, W) numpy + σ · N(0, 1) from ``generator``."""
    import torch

    return clean + sigma * torch.randn(clean.shape, generator=generator).numpy()


class Denoise(PatchTask):
    name = "denoise"
    paper = "Pang et al., HSIGene, arXiv:2409.12470, §4.5 Table 8 (HSI denoising with/without synthesized HSIs)"
    model_name = (
        f"SS-DnCNN: 1×1 spectral projection to {SPECTRAL} channels, {DEPTH} 3×3 conv layers of width {WIDTH} "
        "(DnCNN, Zhang et al., IEEE TIP 2017), 1×1 back-projection; predicts the clean image"
    )
    metrics = [PSNR, SSIM, SAM]
    primary = "psnr"
    baseline_label = "noisy input"

    def check_config(self, config, hyper):
        if not config.noise_sigma > 0:
            raise ConfigError("--noise-sigma must be positive (normalised units; HSIGene Table 8 uses 0.2)")

    def make_model(self, ctx):
        return build_denoiser(ctx.bands)

    def loss(self, model, batch, generator, ctx):
        import torch

        clean = batch["hsi"]
        noise = torch.randn(clean.shape, generator=generator).to(clean.device)
        return torch.nn.functional.mse_loss(model(clean + ctx.config.noise_sigma * noise), clean)

    def evaluate(self, model, source, ctx, seed):
        sigma = ctx.config.noise_sigma
        return image_scores(source, seed, lambda clean, g: forward_np(model, add_noise(clean, g, sigma)))

    def baseline(self, source, ctx, seed):
        sigma = ctx.config.noise_sigma
        return image_scores(source, seed, lambda clean, g: add_noise(clean, g, sigma))

    def protocol_text(self, s):
        crop = s["resolved"]["crop"]
        return (
            f"Protocol: Gaussian noise σ = {s['noise_sigma']} (normalised units of each scene) on every patch; "
            + self.budget_text(s, f"{crop}×{crop} crops, MSE")
            + " PSNR/SSIM in normalised units (peak 1), SAM in degrees in physical units."
        )
