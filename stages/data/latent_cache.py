"""On-disk caches for latent training: autoencoder latents and condition maps, memory-mapped.

Latents of source patches are keyed by the autoencoder artifact's hash and the dataset's hash
(``<cache>/latents/<key>/``: ``latents.npy`` (N, 8, C, h, w) float32 — one slot per
orientation, since a convolutional encoder does not commute with rotations — and
``filled.npy`` (N, 8) uint8). Conditions are keyed by the dataset's hash, the kinds, the
extractor settings and the RGB stretch (``<cache>/conditions/<key>/``: ``maps.npy`` (N, 6, S,
S) uint8 — the precision of the PNG maps ``hsigen condition`` writes — one ``<kind>.npy``
(N, D) float32 per global kind, and ``filled.npy`` (N,)). Maps are computed on the unrotated
patch and turned with the latent's orientation when read, as in the in-memory path.

Only the (patch, orientation) pairs the batch plan will read are encoded — once: a later run
with the same autoencoder and dataset, or a resumed one, finds them filled. The cache
directory is ``$HSIGEN_CACHE`` (default ``~/.cache/hsigen``); entries can be deleted at any
time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..common import log

ORIENTATIONS = 8
ENCODE_BATCH = 32


def cache_root() -> Path:
    return Path(os.environ.get("HSIGEN_CACHE", Path.home() / ".cache" / "hsigen"))


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _open(path: Path, shape: tuple, dtype) -> np.memmap:
    """A .npy memmap, created (sparse, zero-filled) when missing."""
    if path.is_file():
        array = np.load(path, mmap_mode="r+")
        if array.shape != tuple(shape) or array.dtype != np.dtype(dtype):
            raise RuntimeError(
                f"cache file {path} has shape {array.shape} {array.dtype}, expected {shape} {dtype}; "
                "delete it (caches are rebuilt on demand)"
            )
        return array
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=tuple(shape))
    del array
    os.replace(tmp, path)
    return np.load(path, mmap_mode="r+")


class LatentCache:
    """One source's latents under one autoencoder."""

    def __init__(self, directory: Path, patches: int, latent_shape: tuple):
        self.directory = Path(directory)
        self.latents = _open(self.directory / "latents.npy", (patches, ORIENTATIONS, *latent_shape), np.float32)
        self.filled = _open(self.directory / "filled.npy", (patches, ORIENTATIONS), np.uint8)

    def fill(self, reader, source: int, pairs: list[tuple[int, int]], encode) -> int:
        """Encode the missing (row, orientation) pairs with ``encode`` ((n, B, S, S) → (n, C, h, w))."""
        from .stream import dihedral_np

        todo = sorted(p for p in pairs if not self.filled[p[0], p[1]])
        for start in range(0, len(todo), ENCODE_BATCH):
            chunk = todo[start : start + ENCODE_BATCH]
            cubes = np.stack([np.ascontiguousarray(dihedral_np(reader.dataset(source, "hsi")[r], k)) for r, k in chunk])
            z = encode(cubes)
            for (r, k), value in zip(chunk, z):
                self.latents[r, k] = value
                self.filled[r, k] = 1
        self.latents.flush()
        self.filled.flush()
        return len(todo)


class ConditionCache:
    """One source's condition maps (uint8) and global embeddings."""

    def __init__(self, directory: Path, patches: int, size: int, channels: int, global_dims: dict):
        self.directory = Path(directory)
        self.maps = _open(self.directory / "maps.npy", (patches, channels, size, size), np.uint8)
        self.embeddings = {
            k: _open(self.directory / f"{k}.npy", (patches, d), np.float32) for k, d in global_dims.items()
        }
        self.filled = _open(self.directory / "filled.npy", (patches,), np.uint8)

    def fill(self, reader, source: int, rows: list[int], extract) -> int:
        """``extract(cube)`` → (maps (channels, S, S) float in [0, 1], {kind: (D,)})."""
        todo = sorted(r for r in set(rows) if not self.filled[r])
        for r in todo:
            maps, embeddings = extract(reader.dataset(source, "hsi")[r])
            self.maps[r] = np.clip(np.rint(maps * 255.0), 0, 255).astype(np.uint8)
            for k, v in embeddings.items():
                self.embeddings[k][r] = v
            self.filled[r] = 1
        for array in (self.maps, self.filled, *self.embeddings.values()):
            array.flush()
        return len(todo)


def describe_fill(what: str, counts: list[int]) -> None:
    log.info(f"cache: {sum(counts):,} {what} computed ({', '.join(map(str, counts))} per source); the rest were cached")
