"""The one reverse-diffusion loop, reproducible per sample: sample i's initial noise and every
ancestral noise draw come from its own generator seeded by (seed, i), so a sample depends on
the seed and its index only — not on the batch size, on which other samples share its batch,
or on the device (noise is drawn on the CPU)."""

from __future__ import annotations

import numpy as np


def sample_generators(seed: int, indices):
    import torch

    return [torch.Generator().manual_seed((seed * 1_000_003 + int(i)) % (2**63 - 1)) for i in indices]


def reverse_diffusion(scheduler, noise, steps: int, model_fn, step_kwargs=None, progress=None):
    """The reverse process from x_T = ``noise`` · σ_init: for each of the ``steps`` timesteps,
    ``model_fn(model_input, t)`` predicts the noise (or v / x0) and ``scheduler.step`` moves to
    the previous timestep. ``step_kwargs(i)`` gives extra arguments of step i (a generator for
    ancestral noise, or DDIM's ``eta`` / ``variance_noise``)."""
    import torch

    scheduler.set_timesteps(steps)
    x = noise * scheduler.init_noise_sigma
    with torch.no_grad():
        for i, t in enumerate(scheduler.timesteps):
            model_in = scheduler.scale_model_input(x, t)
            prediction = model_fn(model_in, t)
            x = scheduler.step(prediction, t, x, **(step_kwargs(i) if step_kwargs else {})).prev_sample
            if progress is not None:
                progress.advance(x.shape[0])
    return x


def denoise(
    predict,
    scheduler,
    indices: range,
    shape: tuple[int, int, int],
    steps: int,
    seed: int,
    batch_size: int,
    device,
    progress=None,
) -> np.ndarray:
    """Samples ``indices`` (global sample numbers) in batches of ``batch_size``:
    ``predict(model_input, t, rows)`` is one denoiser call for the samples ``rows`` (a slice of
    global sample numbers). Returns (len(indices), *shape) float32 model-space tensors."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    out = []
    for start in range(indices.start, indices.stop, batch_size):
        rows = slice(start, min(indices.stop, start + batch_size))
        gens = sample_generators(seed, range(rows.start, rows.stop))
        noise = randn_tensor((len(gens), *shape), generator=gens, device=torch.device("cpu")).to(device)
        x = reverse_diffusion(
            scheduler,
            noise,
            steps,
            lambda model_in, t, rows=rows: predict(model_in, t, rows),
            step_kwargs=lambda i, gens=gens: {"generator": gens},
            progress=progress,
        )
        out.append(x.float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)
