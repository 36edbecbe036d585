"""Generic DDPM training for any space: a denoiser learns to invert q(x_t | x_0) on tensors
a space module prepared. Targets by prediction type: ``epsilon`` ε (Shen et al., HUD (2025) eq. 15,
Pan et al., MSF-Diff, Information Fusion 108 (2024) Algorithm 1), ``v_prediction`` v = √ᾱ_t·ε − √(1−ᾱ_t)·x_0 (Salimans & Ho 2022),
``sample`` x_0 itself; the diffusers samplers convert each back to the reverse step."""

from __future__ import annotations

from .schedules import noised_sample


def augment(batch, crop: int, generator):
    """Random ``crop`` × ``crop`` windows plus random horizontal/vertical flips and 90°
    rotations, per sample, all drawn from the step's generator (exact resume)."""
    import torch

    n, _, h, w = batch.shape
    out = []
    rows = torch.randint(0, h - crop + 1, (n,), generator=generator)
    cols = torch.randint(0, w - crop + 1, (n,), generator=generator)
    flips = torch.randint(0, 2, (n, 3), generator=generator)
    for i in range(n):
        x = batch[i, :, rows[i] : rows[i] + crop, cols[i] : cols[i] + crop]
        if flips[i, 0]:
            x = x.flip(-1)
        if flips[i, 1]:
            x = x.flip(-2)
        if flips[i, 2]:
            x = x.transpose(-1, -2)
        out.append(x)
    return torch.stack(out)


def diffusion_loss_fn(data, scheduler, batch_size: int, crop: int, device, weights=None):
    """``loss_fn(model, step, generator)`` for the shared Trainer. ``data``: (N, C, H, W) on
    ``device`` in the model's normalised units; ``weights``: optional (N,) CPU tensor of
    sampling probabilities (a corpus's source weights), else every tensor is equally likely."""
    import torch

    def loss_fn(model, step, g):
        if weights is None:
            idx = torch.randint(0, len(data), (batch_size,), generator=g)
        else:
            idx = torch.multinomial(weights, batch_size, replacement=True, generator=g)
        x0 = augment(data[idx.to(data.device)], crop, g)
        xt, t, target = noised_sample(scheduler, x0, g, device)
        pred = model(xt, t).sample
        loss = torch.nn.functional.mse_loss(pred.float(), target.float())
        return loss, {"loss": float(loss.detach())}

    return loss_fn
