"""GPU smoke benchmark (issue 15 item 5), run by ``benchmarks/gpu_smoke.sh``.

1. paper-preset latent training (SD 1.5-sized UNet + ControlNet over a paper-preset KL VAE),
   ``--steps`` steps at batch 16 from the streaming loader, bf16 autocast: steps/s, peak GPU
   memory, and the loader's share of the step time (time the training loop waited for batches);
   then the same with ``--compile --channels-last`` unless ``--no-compile``;
2. DDIM-50 sampling of 256×256×48: seconds per sample, as (time for 1 + N samples − time for 1) / N
   so that model loading cancels out.

Data: a synthetic 48-band scene ingested into 256×256 patches. ``--tiny --device cpu`` runs the
same code at tiny presets and sizes in a few minutes, without the ``--compile`` run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def hsigen(*args) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-c", "from hsigen_cli.app import main; main()", *map(str, args)],
        check=True,
        env=env,
        cwd=ROOT,
    )


def synthetic_scene(path: Path, size: int, bands: int = 48, seed: int = 0) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    spectra = rng.uniform(0, 1, (4, bands)).cumsum(1).astype(np.float32)
    spectra /= spectra.max(1, keepdims=True)
    mix = np.stack(
        [
            np.sin(yy / 17) ** 2,
            np.cos(xx / 23) ** 2,
            (yy + xx) / (2 * size),
            rng.uniform(0, 1, (size, size)).astype(np.float32),
        ],
        -1,
    )
    mix /= mix.sum(-1, keepdims=True)
    np.save(path, (mix @ spectra).astype(np.float32))


def train_latent(
    ae: Path,
    dataset: Path,
    out: Path,
    preset: str,
    steps: int,
    batch: int,
    device: str,
    compile_model: bool,
    channels_last: bool,
    workers: int,
) -> dict:
    import torch

    from stages import diffusion as stage

    model = stage.resolve("latent", preset, {"steps": steps, "batch_size": batch})
    cfg = stage.DiffusionTrainConfig(
        space="latent",
        preset=preset,
        model=model,
        seed=0,
        device=device,
        checkpoint_every=0,
        loader="stream",
        workers=workers,
        compile=compile_model,
        channels_last=channels_last,
    )
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    stage.train({"autoencoder": ae, "dataset": [dataset], "kinds": "hed"}, out, cfg, overwrite=True)
    manifest = json.loads((out / "manifest.json").read_text())
    fit = manifest["fit_seconds"] - manifest["loader_start_seconds"]  # steady state
    return {
        "steps": steps,
        "batch": batch,
        "compile": compile_model,
        "channels_last": channels_last,
        "steps_per_s": round(steps / fit, 3),
        "fit_seconds": round(fit, 2),
        "loader_share_of_step_time": manifest["data_wait_share"],
        "loader_start_seconds": manifest["loader_start_seconds"],
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    }


def sample_seconds(model: Path, out: Path, n: int, device: str) -> float:
    from stages import sampling as stage

    def timed(count: int, where: Path) -> float:
        cfg = stage.SampleConfig(n=count, sampler="ddim", steps=50, seed=0, batch_size=1)
        start = time.perf_counter()
        stage.run(model, where, cfg, device=device, overwrite=True)
        return time.perf_counter() - start

    one = timed(1, out / "one")
    more = timed(1 + n, out / "more")
    return (more - one) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny presets and sizes (CPU check of this script)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--samples", type=int, default=3, help="timed DDIM-50 samples")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--no-compile", action="store_true", help="skip the --compile --channels-last run")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if args.tiny:
        # torch.compile is only exercised on the GPU run: on a CPU its inductor C++ build takes far
        # longer than the check itself.
        args.steps, args.batch, args.samples = min(args.steps, 4), min(args.batch, 4), min(args.samples, 1)
        args.no_compile = True
    preset, patch, scene = ("tiny", 32, 96) if args.tiny else ("paper", 256, 1024 + 512)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="hsigen-gpu-smoke-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HSIGEN_CACHE", str(work / "cache"))
    synthetic_scene(work / "scene.npy", scene)
    hsigen(
        "ingest",
        work / "scene.npy",
        "--wavelengths",
        "400:1000:48",
        "--size",
        patch,
        "--stride",
        patch,
        "--val-fraction",
        "0.2" if not args.tiny else "0.34",
        "--out",
        work / "ds",
        "--overwrite",
    )
    hsigen(
        "train-ae",
        work / "ds",
        "--kind",
        "kl",
        "--preset",
        preset,
        "--steps",
        2,
        "--batch-size",
        2,
        "--crop",
        patch,
        "--device",
        args.device,
        "--out",
        work / "ae",
        "--overwrite",
    )
    results = {
        "device": args.device,
        "preset": preset,
        "patch": patch,
        "training": [
            train_latent(
                work / "ae",
                work / "ds",
                work / "ldm",
                preset,
                args.steps,
                args.batch,
                args.device,
                False,
                False,
                args.workers,
            )
        ],
    }
    if not args.no_compile:
        results["training"].append(
            train_latent(
                work / "ae",
                work / "ds",
                work / "ldm_c",
                preset,
                args.steps,
                args.batch,
                args.device,
                True,
                True,
                args.workers,
            )
        )
    results["ddim50_seconds_per_sample"] = round(
        sample_seconds(work / "ldm", work / "samples", args.samples, args.device), 3
    )
    print(json.dumps(results, indent=2))
    (work / "gpu_smoke.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
