"""The whole `hsigen evaluate` report (every default metric, the default reference rows, the
figures) for 1,000 real + 1,000 generated 32×32×48 patches, timed. Target: under 2 minutes on
the development CPU.

Real: 2,000 random 32×32 crops of the embedded Indian Pines scene (aligned to 48 bands), stored
without a train/val split, so the report scores against a seeded half (1,000 patches) and holds
out the other half as the real-heldout reference. Generated: 1,000 other crops, slightly
blurred, with 1 % multiplicative noise (every generated pixel unique: the --max-spectra cap of
100,000 applies). Overlapping crops of a 145×145 scene repeat pixels, so the real half has at
most the scene's 21,025 unique spectra, as real data of this scene would.

    python benchmarks/evaluate_speed.py [--real 1000] [--generated 1000] [--references auto] [--c2st]

Prints wall and CPU seconds and the load average (other processes on the machine slow it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
SIZE = 32


def aligned_scene() -> np.ndarray:
    """The embedded scene on the project's 48-band grid, (H, W, 48) physical units."""
    from stages import ingest
    from stages.ingest.readers import open_scene
    from stages.spectral import alignment_matrix, parse_band_ranges, read_wavelengths_file, target_grid

    ex = ingest.EXAMPLES["indian-pines"]
    scene = open_scene(ex["source"])
    wl = np.delete(read_wavelengths_file(ex["wavelengths_file"]), np.asarray(parse_band_ranges(ex["drop_bands"])) - 1)
    cube = scene.read_rows(0, scene.height)
    return (cube.reshape(-1, scene.bands) @ alignment_matrix(wl, target_grid()).astype(np.float32)).reshape(
        scene.height, scene.width, -1
    )


def crops(scene: np.ndarray, n: int, rng) -> np.ndarray:
    r = rng.integers(0, scene.shape[0] - SIZE + 1, n)
    c = rng.integers(0, scene.shape[1] - SIZE + 1, n)
    return np.stack([scene[a : a + SIZE, b : b + SIZE].transpose(2, 0, 1) for a, b in zip(r, c)]).astype(np.float32)


def write_samples(out: Path, cubes: np.ndarray, wl: np.ndarray, scale: float) -> Path:
    import h5py

    from stages.artifacts.store import ArtifactWriter, spectral_block

    writer = ArtifactWriter(out, "hsi-samples", "benchmark", {"n": len(cubes)}, [])
    with writer.building() as tmp:
        with h5py.File(tmp / "samples.h5", "w") as h5:
            h5["hsi"] = (cubes / scale).astype(np.float32)
            h5["wavelengths_nm"] = wl
        writer.spectral = spectral_block(wl, scale, 0.0)
    return out


def write_inputs(root: Path, n_real: int, n_gen: int, seed: int = 0) -> tuple[Path, Path]:
    from scipy import ndimage

    from stages.spectral import target_grid

    rng = np.random.default_rng(seed)
    scene = aligned_scene()
    wl = np.asarray(target_grid(), np.float64)
    scale = float(scene.max())
    real = write_samples(root / "real", crops(scene, 2 * n_real, rng), wl, scale)
    gen = crops(scene, n_gen, rng)
    gen = ndimage.gaussian_filter(gen, sigma=(0, 0, 0.5, 0.5)) * (1 + 0.01 * rng.standard_normal(gen.shape))
    return real, write_samples(root / "generated", gen, wl, scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", type=int, default=1000)
    parser.add_argument("--generated", type=int, default=1000)
    parser.add_argument("--references", default="auto", choices=["none", "auto", "all"])
    parser.add_argument("--c2st", action="store_true", help="also the optional C2ST (trains 3 nets per row)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from stages.evaluate import EvaluateConfig
    from stages.evaluate.report import ALL_METRICS, OPTIONAL, run

    with tempfile.TemporaryDirectory() as d:
        real, gen = write_inputs(Path(d), args.real, args.generated)
        metrics = list(ALL_METRICS) if args.c2st else None
        if metrics is not None:  # every metric these inputs allow, with c2st
            metrics = [m for m in metrics if m in ("spr_srec", "prdc", "fp", "db", "spatial", "patch_fd") + OPTIONAL]
        cfg = EvaluateConfig(metrics=metrics, references=args.references)
        load0 = os.getloadavg()
        t0, c0 = time.perf_counter(), time.process_time()
        _, report = run(real, [gen], Path(d) / "eval", cfg)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        load1 = os.getloadavg()
    rows = {r["name"]: r["metrics"] for r in report["references"]}
    rows["generated"] = report["generated"][0]["metrics"]
    print(
        json.dumps(
            {k: {m: round(v, 4) for m, v in row.items() if isinstance(v, float)} for k, row in rows.items()}, indent=1
        )
    )
    print(
        f"real {args.real} + generated {args.generated} patches of {SIZE}x{SIZE}x48, references {args.references}"
        f"{', with c2st' if args.c2st else ''}: {report['real']['spectra_unique']} unique real spectra, "
        f"{report['generated'][0]['spectra_used']} generated spectra used"
    )
    print(
        f"whole report: {wall:.1f} s wall, {cpu:.1f} s CPU (target < 120 s); load average "
        f"{load0[0]:.2f} before, {load1[0]:.2f} after on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
