"""Latent vs pixel-space diffusion, and DDIM vs DDPM, measured side by side in one run.

Seconds per 256×256×48 sample for
- latent-space diffusion (HSIGene: 4 × 64 × 64 latents of an f = 4 ``kl`` autoencoder, then the
  AE decoder) against pixel-space diffusion (48 × 256 × 256 directly) with the same denoiser
  widths (``--preset`` of ``train-diffusion --space latent``: UNet + ControlNet, one local map);
- 50-step DDIM against 1000-step DDPM in the latent space.

hyperldm.txt Table V reports 60× (47.2 s vs 0.77 s) for data vs latent space.

Reverse steps all cost one denoiser evaluation, so a sampler's time is measured as the mean
time of ``--probe`` evaluations (after one warm-up) × its step count, plus the decoder, timed
once. Weights are random: time does not depend on them.

    .venv/bin/python benchmarks/latent_sampling.py            # tiny widths, CPU
    .venv/bin/python benchmarks/latent_sampling.py --preset paper --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def per_step_seconds(model, shape, size, device, probes: int, guidance: bool) -> float:
    import torch

    from stages.diffusion.control import CONDITION_KINDS, ConditionBatch, guided_noise

    keep = torch.zeros(1, len(CONDITION_KINDS), device=device)
    keep[:, 0] = 1  # one hed map
    cond = ConditionBatch(
        torch.rand(1, 6, size, size, device=device),
        keep,
        {k: torch.zeros(1, d, device=device) for k, d in model.global_dims.items()},
    )
    x = torch.randn(1, *shape, device=device)
    with torch.no_grad():
        guided_noise(model, x, torch.tensor(500, device=device), cond, 2.0 if guidance else 1.0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(probes):
            guided_noise(model, x, torch.tensor(500, device=device), cond, 2.0 if guidance else 1.0)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / probes


def main() -> None:
    import torch

    from stages.autoencoder.config import PRESETS as AE_PRESETS
    from stages.autoencoder.kl import make_autoencoder_kl
    from stages.common.runtime import resolve_device
    from stages.diffusion.control import ControlledDenoiser
    from stages.diffusion.spaces.latent import PRESETS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--bands", type=int, default=48)
    parser.add_argument("--probes", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    cfg = dict(PRESETS[args.preset].to_dict(), rgb_condition=False)
    ae_cfg = AE_PRESETS["kl"]["tiny" if args.preset == "tiny" else "paper"].to_dict()
    factor = 2 ** (len(ae_cfg["block_out_channels"]) - 1)
    latent = args.size // factor
    dims = {"content": 64}

    latent_model = ControlledDenoiser.build(cfg, ae_cfg["latent_channels"], latent, factor, dims, False)
    latent_model = latent_model.to(device).eval()
    pixel_model = ControlledDenoiser.build(cfg, args.bands, args.size, 1, dims, False).to(device).eval()
    vae = (
        make_autoencoder_kl(
            args.bands,
            ae_cfg["block_out_channels"],
            ae_cfg["layers_per_block"],
            ae_cfg["latent_channels"],
            ae_cfg["norm_num_groups"],
        )
        .to(device)
        .eval()
    )

    t_latent = per_step_seconds(
        latent_model, (ae_cfg["latent_channels"], latent, latent), args.size, device, args.probes, guidance=True
    )
    t_pixel = per_step_seconds(
        pixel_model, (args.bands, args.size, args.size), args.size, device, args.probes, guidance=True
    )
    with torch.no_grad():
        z = torch.randn(1, ae_cfg["latent_channels"], latent, latent, device=device)
        vae.decode(z)
        start = time.perf_counter()
        vae.decode(z)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t_decode = time.perf_counter() - start

    ddim, ddpm = 50, 1000
    latent_ddim = ddim * t_latent + t_decode
    pixel_ddim = ddim * t_pixel
    latent_ddpm = ddpm * t_latent + t_decode
    print(
        f"{args.size}×{args.size}×{args.bands} sample, preset {args.preset} (UNet widths "
        f"{cfg['unet']['block_out_channels']}), {device}, classifier-free guidance (2 passes per step)"
    )
    print(
        f"  denoiser step: latent {ae_cfg['latent_channels']}×{latent}×{latent} {t_latent:.4f} s, "
        f"pixel {args.bands}×{args.size}×{args.size} {t_pixel:.4f} s; AE decode {t_decode:.4f} s"
    )
    print(
        f"  DDIM {ddim} steps: latent {latent_ddim:.2f} s/sample, pixel {pixel_ddim:.2f} s/sample "
        f"→ latent is {pixel_ddim / latent_ddim:.1f}× faster (hyperldm.txt Table V: 60×)"
    )
    print(
        f"  latent space: DDPM {ddpm} steps {latent_ddpm:.2f} s/sample vs DDIM {ddim} steps {latent_ddim:.2f} s "
        f"→ DDIM is {latent_ddpm / latent_ddim:.1f}× faster"
    )


if __name__ == "__main__":
    main()
