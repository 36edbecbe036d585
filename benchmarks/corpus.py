"""Paper-scale data path on a synthetic three-sensor corpus (issue 15 checks).

1. Writes three synthetic scenes from three "sensors" with different native band grids and
   units — A: 60 bands 395-1005 nm, uint16 digital numbers (reflectance × 10⁴); B: 90 bands
   390-1010 nm, float32 reflectance; C: 120 bands 380-1020 nm, float32 radiance with a dark
   offset — and ingests each onto HSIGene's 48-band grid as 64×64 patches at stride 32, so that
   the three ``patches.h5`` hold at least ``--gb`` GB (default 20; each raw scene is deleted once
   ingested, to bound the disk used).
2. Runs, each in a child process whose peak RSS is read from /proc (VmHWM, polled, and its
   DataLoader workers'): ``train-ae`` (tiny, 200 steps), ``train-diffusion --space latent``
   (tiny, 200 steps), ``sample -n 2000``, ``evaluate`` — all on the corpus YAML.
3. Measures the streaming loader's overhead side by side: the same tiny-VAE training steps fed
   from batches already in memory vs from the DataLoader reading the corpus, in three
   alternating rounds (so other load on the machine slows both alike; every round reads plan
   steps no earlier one read; each streamed round timed from its first batch on, so worker
   start-up is left out).
4. Prints peak RSS per child, the overhead ratio and throughput; deletes its files.

    .venv/bin/python benchmarks/corpus.py              # ≥ 20 GB, ~30 min on 2 CPU cores
    .venv/bin/python benchmarks/corpus.py --gb 1       # the same at reduced size
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PATCH, STRIDE, VAL_FRACTION = 64, 32, 0.1
RSS_LIMIT = 2 << 30
OVERHEAD_LIMIT = 1.15
SENSORS = {  # name: (bands, first nm, last nm, dtype, scale of physical values, offset)
    "A_dn": (60, 395.0, 1005.0, np.uint16, 10_000.0, 0.0),
    "B_reflectance": (90, 390.0, 1010.0, np.float32, 1.0, 0.0),
    "C_radiance": (120, 380.0, 1020.0, np.float32, 25.0, 1.5),
}


# -- the synthetic corpus -----------------------------------------------------------------------
def write_scene(path: Path, height: int, width: int, sensor: tuple, seed: int) -> None:
    """(H, W, B) .npy written in row blocks: 5 smooth endmember spectra mixed by smooth random
    abundance fields, plus 1 % noise, in the sensor's units."""
    bands, lo, hi, dtype, scale, offset = sensor
    rng = np.random.default_rng(seed)
    wl = np.linspace(lo, hi, bands)
    centres = rng.uniform(450, 950, (5, 3))
    spectra = sum(np.exp(-(((wl[None] - centres[:, i : i + 1]) / rng.uniform(60, 200)) ** 2)) for i in range(3))
    spectra = (0.05 + 0.9 * spectra / spectra.max()).astype(np.float32)  # reflectance-like
    freq = rng.uniform(0.002, 0.05, (5, 2))
    phase = rng.uniform(0, 2 * np.pi, (5, 2))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(height, width, bands))
    xx = np.arange(width, dtype=np.float32)
    for top in range(0, height, 128):
        yy = np.arange(top, min(top + 128, height), dtype=np.float32)[:, None]
        fields = (
            np.stack(
                [
                    np.sin(freq[k, 0] * yy + phase[k, 0]) * np.cos(freq[k, 1] * xx + phase[k, 1]) + 1.05
                    for k in range(5)
                ],
                -1,
            )
            ** 2
        )
        fields /= fields.sum(-1, keepdims=True)
        block = fields @ spectra
        block *= 1 + 0.01 * rng.standard_normal(block.shape).astype(np.float32)
        physical = block * scale + offset
        out[top : top + len(yy)] = np.rint(physical) if np.issubdtype(dtype, np.integer) else physical
    out.flush()
    del out


def scene_shape(gb: float, sensors: int) -> tuple[int, int]:
    """Rows/cols of each scene so that the patches of all scenes hold ≥ ``gb`` GB (with margin
    for the edge and split losses)."""
    per_patch = 48 * PATCH * PATCH * 4
    patches = gb * 1e9 * 1.06 / per_patch / sensors
    width = 2048 if gb >= 4 else 1024
    cols = (width - PATCH) // STRIDE + 1
    rows = int(np.ceil(patches / cols))  # patch rows; ~1 more row is lost to the val split's cut
    height = (rows + 1) * STRIDE + PATCH
    return max(height, int(np.ceil(PATCH / VAL_FRACTION))), width


def hsigen(*args, env=None) -> list[str]:
    return [sys.executable, "-c", "from hsigen_cli.app import main; main()", *map(str, args)]


# -- peak RSS of a child and its workers ------------------------------------------------------------
def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(name: str, cmd: list[str], env: dict) -> dict:
    """Run ``cmd``; poll /proc every 0.2 s for VmHWM of the child and of every descendant."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak_main, peak_worker, peak_tree = 0, 0, 0
    out_lines: list[str] = []
    import threading

    reader = threading.Thread(target=lambda: out_lines.extend(proc.stdout), daemon=True)
    reader.start()
    while proc.poll() is None:
        peak_main = max(peak_main, _status_kib(proc.pid, "VmHWM"))
        tree, stack = 0, list(_children(proc.pid))
        tree += _status_kib(proc.pid, "VmRSS")
        while stack:
            pid = stack.pop()
            peak_worker = max(peak_worker, _status_kib(pid, "VmHWM"))
            tree += _status_kib(pid, "VmRSS")
            stack += _children(pid)
        peak_tree = max(peak_tree, tree)
        time.sleep(0.2)
    reader.join(timeout=5)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stdout.write("".join(out_lines[-40:]))
        raise SystemExit(f"{name} failed with exit code {proc.returncode}")
    return {
        "name": name,
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak_main / 1024, 1),
        "peak_worker_rss_mib": round(peak_worker / 1024, 1),
        "peak_tree_rss_mib": round(peak_tree / 1024, 1),
        "output": "".join(out_lines[-5:]),
    }


# -- the loader's overhead, side by side ------------------------------------------------------------
def overhead(corpus_yaml: Path, steps: int, workers: int) -> dict:
    """Seconds per tiny-VAE training step fed from memory vs from the streaming DataLoader."""
    import torch

    from stages.autoencoder.config import PRESETS
    from stages.autoencoder.io import model_class
    from stages.data import BatchPlan, open_corpus
    from stages.data.stream import StepBatches, loader
    from stages.training import TrainSpec, make_optimizer, resolve_preset

    torch.manual_seed(0)
    corpus = open_corpus([corpus_yaml])
    cfg = resolve_preset(PRESETS["kl"], "tiny")
    model = model_class("kl")(corpus.bands, cfg, 0.0, band_stats=None)
    optimizer, _ = make_optimizer(model.parameters(), TrainSpec(steps=steps, lr=float(cfg["lr"])))
    plan = BatchPlan(
        [s.train_rows for s in corpus.sources],
        corpus.weights(),
        0,
        int(cfg["batch_size"]),
        corpus.size,
        int(cfg["crop"]),
    )

    def step(batch, k):
        optimizer.zero_grad(set_to_none=True)
        loss, _ = model(hsi=batch["hsi"], generator=torch.Generator().manual_seed(k), step=k)
        loss.backward()
        optimizer.step()

    warm = StepBatches(corpus, plan, 0, 0, 5)
    for k in range(5):
        step(warm[k], k)
    # Rounds alternate pre-loaded and streamed steps, so that whatever else runs on the machine
    # slows both about equally; each round reads plan steps no earlier round read (nothing streamed
    # is in the page cache from before). A streamed round's clock starts once its first batch is
    # there (worker start-up excluded).
    rounds, per_round = 3, max(1, steps // 3)
    t_memory = t_stream = 0.0
    first = 5
    for _ in range(rounds):
        memory = StepBatches(corpus, plan, 0, first, first + per_round)
        preloaded = [memory[i] for i in range(len(memory))]
        t0 = time.perf_counter()
        for k, batch in enumerate(preloaded):
            step(batch, k)
        t_memory += time.perf_counter() - t0
        del preloaded
        first += per_round
        streamed = iter(loader(StepBatches(corpus, plan, 0, first, first + per_round + 1), "cpu", workers=workers))
        step(next(streamed), 0)
        t0 = time.perf_counter()
        for k, batch in enumerate(streamed):
            step(batch, k)
        t_stream += time.perf_counter() - t0
        first += per_round + 1
    steps = rounds * per_round
    t_memory, t_stream = t_memory / steps, t_stream / steps
    # What one batch costs the worker (CPU seconds, read in this process): the part of the
    # overhead a spare core would hide; the rest of the ratio is the worker sharing cores.
    probe = StepBatches(corpus, plan, 0, first, first + per_round)
    c0 = time.process_time()
    for i in range(len(probe)):
        probe[i]
    load_cpu = (time.process_time() - c0) / len(probe)
    patch_bytes = corpus.bands * corpus.size**2 * 4
    return {
        "steps": steps,
        "rounds": rounds,
        "batch": int(cfg["batch_size"]),
        "crop": int(cfg["crop"]),
        "workers": workers,
        "seconds_per_step_preloaded": round(t_memory, 4),
        "seconds_per_step_streamed": round(t_stream, 4),
        "ratio": round(t_stream / t_memory, 3),
        "loader_cpu_seconds_per_batch": round(load_cpu, 4),
        "loader_cpu_share_of_step": round(load_cpu / t_memory, 3),
        "streamed_patches_per_s": round(int(cfg["batch_size"]) / t_stream, 1),
        "streamed_disk_mb_per_s": round(int(cfg["batch_size"]) * patch_bytes / t_stream / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=20.0, help="GB of patches on disk (≥ 20 for the issue's check)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory under /tmp")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--sample-steps", type=int, default=20, help="DDIM steps per sample")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--overhead-steps", type=int, default=60)
    parser.add_argument("--keep", action="store_true", help="keep the files (default: delete them)")
    parser.add_argument("--overhead-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.overhead_only:  # the child of step 3
        print(json.dumps(overhead(args.overhead_only, args.overhead_steps, args.workers)))
        return

    work = Path(args.workdir or tempfile.mkdtemp(prefix="hsigen-corpus-"))
    work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(work).free
    need = args.gb * 1e9 * 1.6
    if free < need:
        raise SystemExit(
            f"{work}: {free / 1e9:.0f} GB free, the benchmark needs about {need / 1e9:.0f} GB; "
            "use --workdir on a larger disk or a smaller --gb"
        )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "HSIGEN_CACHE": str(work / "cache"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    report: dict = {"gb_target": args.gb}
    try:
        height, width = scene_shape(args.gb, len(SENSORS))
        t0 = time.perf_counter()
        datasets = []
        for i, (name, sensor) in enumerate(SENSORS.items()):
            raw = work / f"{name}.npy"
            write_scene(raw, height, width, sensor, seed=i)
            bands, lo, hi = sensor[:3]
            result = run_measured(
                f"ingest {name}",
                hsigen(
                    "ingest",
                    raw,
                    "--wavelengths",
                    f"{lo}:{hi}:{bands}",
                    "--size",
                    PATCH,
                    "--stride",
                    STRIDE,
                    "--val-fraction",
                    VAL_FRACTION,
                    "--out",
                    work / name,
                ),
                env,
            )
            raw.unlink()
            datasets.append(work / name)
            print(f"{result['name']}: {result['seconds']} s, peak RSS {result['peak_rss_mib']} MiB", flush=True)
        sizes = [(d / "patches.h5").stat().st_size for d in datasets]
        report["corpus"] = {
            "scenes": len(datasets),
            "scene_pixels": [height, width],
            "patches_gb": round(sum(sizes) / 1e9, 2),
            "per_source_gb": [round(s / 1e9, 2) for s in sizes],
            "build_seconds": round(time.perf_counter() - t0, 1),
        }
        print(f"corpus: {report['corpus']}", flush=True)
        corpus_yaml = work / "corpus.yaml"
        corpus_yaml.write_text(
            "sources:\n" + "".join(f"  - path: {d}\n    weight: {w}\n" for d, w in zip(datasets, (2.0, 1.0, 1.0)))
        )

        runs = [
            (
                "train-ae",
                hsigen(
                    "train-ae",
                    corpus_yaml,
                    "--kind",
                    "kl",
                    "--preset",
                    "tiny",
                    "--steps",
                    args.steps,
                    "--workers",
                    args.workers,
                    "--device",
                    "cpu",
                    "--out",
                    work / "ae",
                ),
            ),
            (
                "train-diffusion latent",
                hsigen(
                    "train-diffusion",
                    "--space",
                    "latent",
                    "--autoencoder",
                    work / "ae",
                    "--dataset",
                    corpus_yaml,
                    "--kinds",
                    "hed,content",
                    "--preset",
                    "tiny",
                    "--steps",
                    args.steps,
                    "--workers",
                    args.workers,
                    "--checkpoint-every",
                    "0",
                    "--device",
                    "cpu",
                    "--out",
                    work / "ldm",
                ),
            ),
            (
                "sample",
                hsigen(
                    "sample",
                    "--ckpt",
                    work / "ldm",
                    "-n",
                    args.samples,
                    "--steps",
                    args.sample_steps,
                    "--batch-size",
                    16,
                    "--device",
                    "cpu",
                    "--out",
                    work / "samples",
                ),
            ),
            (
                "evaluate",
                hsigen(
                    "evaluate",
                    "--real",
                    datasets[0],
                    "--generated",
                    work / "samples",
                    "--metrics",
                    "spr_srec,fp",
                    "--max-spectra",
                    20000,
                    "--out",
                    work / "eval",
                ),
            ),
        ]
        report["children"] = []
        for name, cmd in runs:
            result = run_measured(name, cmd, env)
            report["children"].append(result)
            print(
                f"{name}: {result['seconds']} s, peak RSS {result['peak_rss_mib']} MiB (workers "
                f"{result['peak_worker_rss_mib']} MiB, tree {result['peak_tree_rss_mib']} MiB)",
                flush=True,
            )
        ae = json.loads((work / "ae" / "manifest.json").read_text())
        ldm = json.loads((work / "ldm" / "manifest.json").read_text())
        train_ae, sample = report["children"][0], report["children"][2]
        report["throughput"] = {
            "train_ae_patches_per_s": round(args.steps * 8 / train_ae["seconds"], 1),
            "train_ae_loader_wait_share": ae["training"]["data_wait_share"],
            "latent_fit_steps_per_s": round(args.steps / ldm["fit_seconds"], 2),
            "latent_loader_wait_share": ldm["data_wait_share"],
            "samples_per_s": round(args.samples / sample["seconds"], 2),
        }
        over = subprocess.run(
            [
                sys.executable,
                __file__,
                "--overhead-only",
                str(corpus_yaml),
                "--overhead-steps",
                str(args.overhead_steps),
                "--workers",
                str(args.workers),
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        report["loader_overhead"] = json.loads(over.stdout.strip().splitlines()[-1])
        report["checks"] = {
            "patches_gb_at_least_target": report["corpus"]["patches_gb"] >= args.gb,
            "peak_rss_each_child_at_most_2_gib": all(
                c["peak_rss_mib"] * 2**20 <= RSS_LIMIT for c in report["children"]
            ),
            "workers_at_most_2_gib": all(c["peak_worker_rss_mib"] * 2**20 <= RSS_LIMIT for c in report["children"]),
            "stream_within_15_percent": report["loader_overhead"]["ratio"] <= OVERHEAD_LIMIT,
        }
        for c in report["children"]:
            c.pop("output", None)
        print(json.dumps(report, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
