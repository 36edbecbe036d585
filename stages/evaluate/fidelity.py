"""Point fidelity F_p and block diversity D_b (Shen et al., HUD (2025) §III-D, eqs. 16-17).

F_p: mean over generated pixels of the best cosine similarity to any real pixel (eq. 16).
D_b: mean over generated blocks of the best block similarity to any real block, where the
similarity of two b×b blocks is the mean over their aligned pixels of the pixel cosine
similarity (the 1/|ŷ_b| factor of eq. 17). D_b <= F_p always; the paper reads a lower D_b as
a generated image that copies the real one less.
"""

from __future__ import annotations

import numpy as np

from ..common.errors import ConfigError

CHUNK = 1024
EPS = 1e-12


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), EPS)


def _best_match(query, ref, dtype) -> np.ndarray:
    """max_j query_i · ref_j for each row i, chunked (both sets already scaled)."""
    import torch

    q = torch.from_numpy(np.ascontiguousarray(query)).to(dtype)
    r = torch.from_numpy(np.ascontiguousarray(ref)).to(dtype)
    best = np.empty(len(q), dtype=np.float64)
    for a in range(0, len(q), CHUNK):
        block = q[a : a + CHUNK]
        top = torch.full((len(block),), -np.inf, dtype=dtype)
        for c in range(0, len(r), 16 * CHUNK):
            top = torch.maximum(top, (block @ r[c : c + 16 * CHUNK].T).amax(1))
        best[a : a + CHUNK] = top.double().numpy()
    return best


def point_fidelity(generated: np.ndarray, real: np.ndarray, dtype: str = "float64") -> float:
    """Eq. 16 on pixel spectra (n_gen, B) and (n_real, B)."""
    import torch

    tdtype = torch.float64 if dtype == "float64" else torch.float32
    return float(_best_match(_unit_rows(generated), _unit_rows(real), tdtype).mean())


def _block_positions(n: int, h: int, w: int, block: int, stride: int, limit: int | None, rng) -> np.ndarray:
    """(image, row, col) of every block, or a seeded random subset of ``limit`` of them."""
    rows, cols = np.arange(0, h - block + 1, stride), np.arange(0, w - block + 1, stride)
    total = n * len(rows) * len(cols)
    flat = np.arange(total) if limit is None or total <= limit else np.sort(rng.choice(total, limit, replace=False))
    img, rest = np.divmod(flat, len(rows) * len(cols))
    r, c = np.divmod(rest, len(cols))
    return np.stack([img, rows[r], cols[c]], 1)


def _blocks(cubes: np.ndarray, block: int, positions: np.ndarray, dtype) -> np.ndarray:
    """Blocks at ``positions`` → (n_blocks, block*block*B) rows of unit-normalised pixels divided
    by sqrt(P) on both sides' behalf, so a dot product of two rows is the mean pixel cosine (eq. 17)."""
    b = cubes.shape[1]
    out = np.empty((len(positions), block * block * b), dtype=dtype)
    for a in range(0, len(positions), CHUNK):
        part = positions[a : a + CHUNK]
        pix = np.stack([cubes[i, :, r : r + block, c : c + block] for i, r, c in part])  # (m, B, block, block)
        out[a : a + CHUNK] = _unit_rows(np.moveaxis(pix, 1, -1)).reshape(len(part), -1)
    return out / np.sqrt(block * block)


def block_diversity(
    generated_cubes: np.ndarray,
    real_cubes: np.ndarray,
    block: int = 8,
    real_stride: int | None = None,
    dtype: str = "float64",
    max_generated_blocks: int | None = None,
    max_real_blocks: int | None = None,
    seed: int = 0,
) -> float:
    """Eq. 17: generated images are tiled into non-overlapping blocks; real blocks are taken
    every ``real_stride`` pixels (default block // 2) from the real images.

    The cost is (generated blocks × real blocks × block² B): the caps take seeded random
    subsets — of generated blocks (an unbiased estimate of the mean) and of real blocks (the
    best match over fewer candidates, so at most slightly lower)."""
    import torch

    if block < 1:
        raise ConfigError("--block must be at least 1")
    stride = real_stride or max(1, block // 2)
    gh, gw = generated_cubes.shape[2:]
    rh, rw = real_cubes.shape[2:]
    if block > min(gh, gw, rh, rw):
        raise ConfigError(
            f"--block {block} is larger than the images ({gh}x{gw} generated, {rh}x{rw} real); lower --block"
        )
    rng = np.random.default_rng(seed)
    np_dtype = np.float64 if dtype == "float64" else np.float32
    gen = _blocks(
        generated_cubes,
        block,
        _block_positions(len(generated_cubes), gh, gw, block, block, max_generated_blocks, rng),
        np_dtype,
    )
    real = _blocks(
        real_cubes, block, _block_positions(len(real_cubes), rh, rw, block, stride, max_real_blocks, rng), np_dtype
    )
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    # Each row carries 1/sqrt(P); the product of two rows carries the 1/P of eq. 17.
    return float(_best_match(gen, real, tdtype).mean())
