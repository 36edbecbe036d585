"""sPr / sRec (hsigene.txt eq. 8) on 100,000 real × 100,000 generated 48-band spectra:
the exact whole-set computation beside the paper's 10-group variant, timed in one run.

Spectra come from the embedded Indian Pines scene aligned to 48 bands (400-1000 nm): the
"real" set draws scene pixels with ±3 % brightness and 1 % per-band noise, the "generated"
set is two-pixel mixtures with the same jitter. ``--isotropic`` adds the worst case for the
exact method (Gaussian points with no dominant direction, where no pruning applies).

    python benchmarks/metrics.py [--n 100000] [--threads 2] [--isotropic]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scene_pixels() -> np.ndarray:
    from stages import ingest
    from stages.ingest.readers import open_scene
    from stages.spectral import alignment_matrix, parse_band_ranges, read_wavelengths_file, target_grid

    ex = ingest.EXAMPLES["indian-pines"]
    scene = open_scene(ex["source"])
    wl = read_wavelengths_file(ex["wavelengths_file"])
    drop = np.asarray(parse_band_ranges(ex["drop_bands"])) - 1
    wl = np.delete(wl, drop)
    cube = scene.read_rows(0, scene.height).reshape(-1, scene.bands)
    return cube @ alignment_matrix(wl, target_grid()).astype(np.float32)


def realistic_sets(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = scene_pixels().astype(np.float64)

    def jitter(x):
        return x * rng.uniform(0.97, 1.03, (len(x), 1)) * (1 + 0.01 * rng.standard_normal(x.shape))

    real = jitter(pixels[rng.integers(0, len(pixels), n)])
    w = rng.uniform(0, 1, (n, 1))
    gen = jitter(w * pixels[rng.integers(0, len(pixels), n)] + (1 - w) * pixels[rng.integers(0, len(pixels), n)])
    return real.astype(np.float32), gen.astype(np.float32)


def timed(fn, *args, **kwargs):
    """(result, wall seconds, CPU seconds of this process): on a shared machine the CPU time
    divided by the thread count is the better estimate of the wall time on an idle one."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--isotropic", action="store_true", help="also time isotropic Gaussian spectra")
    args = parser.parse_args()

    import torch

    from stages.evaluate.manifold import grouped_precision_recall, precision_recall

    torch.set_num_threads(args.threads)
    cases = [("Indian Pines spectra", realistic_sets(args.n))]
    if args.isotropic:
        rng = np.random.default_rng(1)
        cases.append(
            (
                "isotropic Gaussian",
                (
                    rng.standard_normal((args.n, 48)).astype(np.float32),
                    rng.standard_normal((args.n, 48)).astype(np.float32),
                ),
            )
        )
    print(
        f"sPr/sRec, {args.n:,} real x {args.n:,} generated, 48 bands, k={args.k}, "
        f"{args.threads} torch threads; load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    for name, (real, gen) in cases:
        exact, t_exact, c_exact = timed(precision_recall, real, gen, args.k)
        grouped, t_grouped, c_grouped = timed(grouped_precision_recall, real, gen, args.k, args.groups)
        print(f"{name}:")
        print(
            f"  exact       {t_exact:7.1f} s wall  {c_exact:7.1f} s CPU   sPr={exact.precision:.4f} "
            f"sRec={exact.recall:.4f}"
        )
        print(
            f"  {args.groups:2d} groups   {t_grouped:7.1f} s wall  {c_grouped:7.1f} s CPU   "
            f"sPr={grouped.precision:.4f} sRec={grouped.recall:.4f}"
        )
        print(f"  exact / grouped: wall {t_exact / t_grouped:.2f}x, CPU {c_exact / c_grouped:.2f}x")


if __name__ == "__main__":
    main()
