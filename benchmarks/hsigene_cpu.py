"""Seconds per denoiser call and per 256×256×48 DDIM-50 sample of the full-size HSIGene
architecture (random weights: time does not depend on them), and peak memory.

One denoiser call = local adapter + UNet at batch 1 on 4 × 64 × 64 latents with the 81-token
context (the release samples with guidance 1: one call per step). The per-sample constants —
CLIP text model, both global adapters, the adapter's feature extractor over the 18 × 512 × 512
condition stack, the metadata embedding — and the VAE decode are timed once; a sample costs
constants + 50 calls + decode (extrapolated from ``--calls`` timed calls after a warm-up).

    .venv/bin/python benchmarks/hsigene_cpu.py                       # fp32, channels_last, CPU
    .venv/bin/python benchmarks/hsigene_cpu.py --dtype bf16          # where the CPU has bf16 units
    .venv/bin/python benchmarks/hsigene_cpu.py --device cuda --dtype fp16

Reference (issue 16): the public code, patched to run on this CPU, took 58 s per call; the
arithmetic floor here is about 13 s (≈0.55 TFLOP at ~41 GFLOP/s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


def random_full_model(device, dtype):
    """Built on the meta device, then materialised with random values (no 1.5 B-parameter init pass)."""
    import torch

    from stages.hsigene import build_model
    from stages.hsigene.checkpoint import _materialise_unsaved_buffers

    model = build_model(device="meta")
    model = model.to_empty(device="cpu")
    _materialise_unsaved_buffers(model)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02, generator=g)
    return model.to(device=device, dtype=dtype).eval()


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--calls", type=int, default=2, help="timed denoiser calls after one warm-up")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    dev = torch.device(args.device)
    fmt = torch.contiguous_format if args.no_channels_last else torch.channels_last
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.set_grad_enabled(False)

    t0 = time.perf_counter()
    model = random_full_model(dev, dtype)
    if not args.no_channels_last:
        model = model.to(memory_format=torch.channels_last)
    build_s = time.perf_counter() - t0
    cfg = model.cfg

    # Per-sample constants (once).
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    tokens = torch.tensor([[49406] + [49407] * 76], device=dev)
    text = model.cond_stage_model(tokens).to(dtype)
    context = model.context(text, torch.zeros(1, cfg.content_dim, device=dev, dtype=dtype))
    local = torch.rand(1, 18, 512, 512, device=dev, dtype=dtype).contiguous(memory_format=fmt)
    features = model.local_adapter.feature_extractor(local)
    meta = model.metadata_emb(torch.zeros(1, 7, device=dev)).to(dtype)
    sync()
    constants_s, constants_cpu = time.perf_counter() - t0, time.process_time() - c0

    x = torch.randn(1, 4, 64, 64, device=dev, dtype=dtype).contiguous(memory_format=fmt)
    t = torch.tensor([981], device=dev)
    model.denoise(x, t, context, features, meta)  # warm-up
    sync()
    times, cpu_times = [], []
    for _ in range(args.calls):
        t0, c0 = time.perf_counter(), time.process_time()
        eps = model.denoise(x, t, context, features, meta)
        sync()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    assert torch.isfinite(eps.float()).all()
    per_call = sum(times) / len(times)
    # CPU seconds of this process over all its threads: on a machine shared with other jobs, wall
    # time overstates the cost; cpu_s / threads bounds an idle machine's wall time from below
    # (reached when the threads scale perfectly).
    per_call_cpu = sum(cpu_times) / len(cpu_times)

    t0, c0 = time.perf_counter(), time.process_time()
    hsi = model.first_stage_model.decode((x / cfg.scale_factor).contiguous(memory_format=fmt))
    sync()
    decode_s, decode_cpu = time.perf_counter() - t0, time.process_time() - c0
    assert hsi.shape == (1, 48, 256, 256)

    result = {
        "device": str(dev),
        "dtype": args.dtype,
        "channels_last": not args.no_channels_last,
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "build_s": round(build_s, 1),
        "per_call_s": round(per_call, 2),
        "calls_s": [round(v, 2) for v in times],
        "per_call_cpu_s": round(per_call_cpu, 2),
        "per_call_idle_lower_bound_s": round(per_call_cpu / max(torch.get_num_threads(), 1), 2),
        "constants_s": round(constants_s, 2),
        "decode_s": round(decode_s, 2),
        f"per_sample_ddim{args.steps}_s": round(constants_s + args.steps * per_call + decode_s, 1),
        "peak_rss_gib": round(peak_rss_gib(), 2),
    }
    threads = max(torch.get_num_threads(), 1)
    result[f"per_sample_ddim{args.steps}_idle_lower_bound_s"] = round(
        (constants_cpu + args.steps * per_call_cpu + decode_cpu) / threads, 1
    )
    if dev.type == "cuda":
        result["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
