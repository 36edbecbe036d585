"""Generic reverse diffusion with diffusers schedulers, reproducible per sample: sample i's
initial noise and every ancestral noise draw come from its own generator seeded by
(seed, i), so the output depends on the seed only (not on batch size or device for noise)."""

from __future__ import annotations

import numpy as np


def sample_generators(seed: int, indices):
    import torch

    return [torch.Generator().manual_seed((seed * 1_000_003 + int(i)) % (2**63 - 1)) for i in indices]


def denoise(unet, scheduler, n: int, shape: tuple[int, int, int], steps: int, seed: int, batch_size: int,
            device, progress=None) -> np.ndarray:
    """Run ``steps`` reverse steps of ``scheduler`` from N(0, I); returns (n, *shape) float32."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    out = []
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        gens = sample_generators(seed, range(start, start + count))
        scheduler.set_timesteps(steps)
        x = randn_tensor((count, *shape), generator=gens, device=torch.device("cpu")).to(device)
        x = x * scheduler.init_noise_sigma
        with torch.no_grad():
            for t in scheduler.timesteps:
                model_in = scheduler.scale_model_input(x, t)
                pred = unet(model_in, t.to(device)).sample
                # Ancestral noise (DDPM) is drawn on CPU from the per-sample generators.
                x = scheduler.step(pred, t, x, generator=gens).prev_sample
                if progress is not None:
                    progress.advance(count)
        out.append(x.float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)
