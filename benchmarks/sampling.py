"""Seconds per 256×256 abundance sample: 50-step DDIM vs 2000-step ancestral DDPM (the
MSF-Diff recipe) on the same network, measured side by side in one run.

    python benchmarks/sampling.py                       # tiny UNet, CPU
    python benchmarks/sampling.py --preset paper --device cuda --ddpm-measured 2000

DDPM is timed over ``--ddpm-measured`` reverse steps and extrapolated linearly to 2000 (each
reverse step costs one UNet evaluation plus a scheduler update); the output says so whenever
fewer than 2000 steps were run. Weights are random: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import time


def time_sampler(unet, scheduler, steps: int, size: int, channels: int, device) -> float:
    import torch

    from stages.diffusion.reverse import denoise

    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    denoise(
        lambda x, t, rows: unet(x, t.to(device)).sample,
        scheduler,
        range(1),
        (channels, size, size),
        steps,
        seed=0,
        batch_size=1,
        device=device,
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", help="abundance-space UNet preset (tiny | paper)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--k", type=int, default=5, help="endmembers = UNet channels")
    parser.add_argument("--ddim-steps", type=int, default=50)
    parser.add_argument("--ddpm-steps", type=int, default=2000)
    parser.add_argument("--ddpm-measured", type=int, default=20, help="DDPM steps actually run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from stages.common.runtime import resolve_device
    from stages.diffusion import resolve
    from stages.diffusion.model import build_unet
    from stages.diffusion.schedules import sampling_scheduler, training_scheduler

    device = resolve_device(args.device)
    torch.manual_seed(0)
    preset = resolve("abundance", args.preset, {})
    # The MSF-Diff schedule (linear β 1e-6 → 1e-2 over 2000 steps) for both samplers.
    schedule = {"num_train_timesteps": args.ddpm_steps, "beta_start": 1e-6, "beta_end": 1e-2, "beta_schedule": "linear"}
    train_cfg = dict(training_scheduler(schedule, preset["prediction_type"]).config)
    unet = build_unet(preset["unet"], args.k, args.size).to(device).eval()
    params = sum(p.numel() for p in unet.parameters())

    time_sampler(unet, sampling_scheduler("ddim", train_cfg), 2, args.size, args.k, device)  # warm-up
    ddim = time_sampler(unet, sampling_scheduler("ddim", train_cfg), args.ddim_steps, args.size, args.k, device)
    measured = min(args.ddpm_measured, args.ddpm_steps)
    ddpm_sched = sampling_scheduler("ddpm", train_cfg)
    # Run `measured` steps of the full 2000-step ancestral chain (its last `measured` steps).
    ddpm_sched.set_timesteps(args.ddpm_steps)
    ddpm_part = time_sampler_partial(unet, ddpm_sched, measured, args.size, args.k, device)
    ddpm = ddpm_part * args.ddpm_steps / measured

    print(f"device {device}, {args.preset} UNet ({params:,} parameters), {args.k}×{args.size}×{args.size} sample")
    print(f"DDIM {args.ddim_steps} steps: {ddim:.2f} s/sample ({ddim / args.ddim_steps * 1000:.1f} ms/step)")
    note = "" if measured == args.ddpm_steps else f" (extrapolated from {measured} measured steps: {ddpm_part:.2f} s)"
    print(f"DDPM {args.ddpm_steps} steps: {ddpm:.2f} s/sample{note}")
    print(f"ratio DDPM/DDIM: {ddpm / ddim:.1f}x")


def time_sampler_partial(unet, scheduler, steps: int, size: int, channels: int, device) -> float:
    """Time ``steps`` ancestral updates taken from the scheduler's full timestep list."""
    import torch

    from stages.diffusion.reverse import sample_generators

    gens = sample_generators(0, [0])
    x = torch.randn((1, channels, size, size), generator=gens[0]).to(device)
    timesteps = scheduler.timesteps[-steps:]
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.no_grad():
        for t in timesteps:
            pred = unet(x, t.to(device)).sample
            x = scheduler.step(pred, t, x, generator=gens).prev_sample
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
