"""Cost of seamless tiling in ``upsample run``: an untrained tiny-preset RGAN (×2) over a
synthetic 192×192×48 LR scene, whole-scene vs tiled at several tile sizes, side by side.

    .venv/bin/python benchmarks/upsample_tiling.py

Prints wall time, the largest tile (LR pixels, which bounds memory) and the ratios to the
whole-scene run, plus the largest difference between tiled and whole results.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from stages.upsample.guides import BicubicGuide
from stages.upsample.rgan import build_rgan
from stages.upsample.stage import RganUpsampler
from stages.upsample.tiling import plan_tiles, super_resolve_tiled
from stages.upsample.train_rgan import PRESETS


def main() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    bands, size, scale = 48, 192, 2
    scene = rng.random((bands, size, size), dtype=np.float32).cumsum(axis=1).cumsum(axis=2) / size
    model = build_rgan(bands, PRESETS["tiny"].to_dict()).eval()
    torch.nn.init.normal_(model.head.weight, std=0.01)  # make the network's output matter
    info = {"scale": scale, "normalisation": {"scale": 1.0, "offset": 0.0}}
    up = RganUpsampler(model, info, BicubicGuide([26, 18, 5], scale), "cpu")
    print(f"tiny RGAN ×{scale} on a {size}x{size}x{bands} scene; margin {up.margin_lr} LR px, align {up.align_lr}")

    def run(tile: int):
        out = np.zeros((bands, size * scale, size * scale), np.float32)

        def write(block, r0, c0):
            out[:, r0 : r0 + block.shape[1], c0 : c0 + block.shape[2]] = block

        start = time.perf_counter()
        super_resolve_tiled(lambda r0, r1, c0, c1: scene[:, r0:r1, c0:c1], write, size, size, up, tile)
        tiles = plan_tiles(size, size, tile, up.margin_lr, up.align_lr)
        largest = max((t.read[1] - t.read[0]) * (t.read[3] - t.read[2]) for t in tiles)
        return out, time.perf_counter() - start, largest, len(tiles)

    whole, t_whole, px_whole, _ = run(size)
    print(
        f"{'tile':>6} {'tiles':>6} {'seconds':>8} {'time ratio':>10} {'max tile px':>11} {'mem ratio':>9} {'max |diff|':>10}"
    )
    print(f"{'whole':>6} {1:>6} {t_whole:8.2f} {1.0:10.2f} {px_whole:11d} {1.0:9.2f} {0.0:10.2e}")
    for tile in (96, 64, 32):
        out, seconds, px, n = run(tile)
        print(
            f"{tile:>6} {n:>6} {seconds:8.2f} {seconds / t_whole:10.2f} {px:11d} {px / px_whole:9.2f} "
            f"{float(np.abs(out - whole).max()):10.2e}"
        )


if __name__ == "__main__":
    main()
