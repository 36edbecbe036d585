"""Reading evaluation inputs with bounded memory.

:class:`StoredArray` is an ``hsi`` / ``labels`` dataset of a ``patches.h5`` / ``samples.h5``
left on disk: ``shape``, ``len`` and indexing read only what is asked for (and convert to
physical units); any other numpy use (``np.asarray``, ``.transpose``, ``.reshape`` …) loads
it whole, so metrics that need every image still work on sets that fit in memory.

:func:`distinct_sample` is the bounded way to take "all distinct pixel spectra, or a seeded
random subset of k of them": a bottom-k sample by a seeded hash of each spectrum's bytes.
Identical spectra (overlapping patches) share a hash, so duplicates count once; the k
smallest hashes are a uniform random sample of the distinct spectra; the distinct count is
exact while at most k are seen, and otherwise the K-minimum-values estimate
(k − 1) / h_k (h_k the k-th smallest hash in [0, 1)) — Bar-Yossef et al., "Counting distinct
elements in a data stream", RANDOM 2002.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHUNK_BYTES = 32 << 20  # images read per step of a streamed pass
HASH_ROWS = 1 << 15  # rows hashed at a time (bounds the uint64 temporaries)


class StoredArray:
    """Rows ``rows`` of dataset ``name`` in ``h5_path``; ``value * scale + offset`` when read."""

    def __init__(
        self,
        h5_path: Path,
        name: str,
        rows: np.ndarray | None = None,
        scale: float = 1.0,
        offset: float = 0.0,
        dtype=np.float32,
    ):
        import h5py

        self.h5_path, self.name, self.scale, self.offset = Path(h5_path), name, float(scale), float(offset)
        self.dtype = np.dtype(dtype)
        with h5py.File(self.h5_path, "r") as h5:
            full = h5[name].shape
        self.rows = np.arange(full[0]) if rows is None else np.asarray(rows, np.int64)
        self.shape = (len(self.rows), *full[1:])
        self._h5 = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _dataset(self):
        import h5py

        if self._h5 is None:
            self._h5 = h5py.File(self.h5_path, "r")
        return self._h5[self.name]

    def _read(self, rows: np.ndarray) -> np.ndarray:
        """Rows in the given order (h5py wants increasing, unique indices)."""
        rows = np.asarray(rows, np.int64)
        if len(rows) == 0:
            return np.empty((0, *self.shape[1:]), self.dtype)
        wanted, inverse = np.unique(self.rows[rows], return_inverse=True)
        block = self._dataset()[wanted]
        values = block[inverse].astype(self.dtype, copy=False)
        if self.scale != 1.0 or self.offset != 0.0:
            values = values * np.float32(self.scale) + np.float32(self.offset)
        return values

    def __getitem__(self, key):
        if isinstance(key, tuple):
            return self[key[0]][(slice(None),) + key[1:]] if not np.isscalar(key[0]) else self[key[0]][key[1:]]
        if isinstance(key, (int, np.integer)):
            index = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= index < len(self):
                raise IndexError(f"index {key} out of range for {len(self)} images")
            return self._read(np.array([index]))[0]
        if isinstance(key, slice):
            return self._read(np.arange(len(self))[key])
        key = np.asarray(key)
        if key.ndim != 1:  # an element-wise mask or index grid: on the loaded array
            return np.asarray(self)[key]
        if key.dtype == bool:
            key = np.flatnonzero(key)
        return self._read(key)

    def chunks(self, max_bytes: int | None = None):
        """(start, array) blocks of whole images of at most ``max_bytes`` (default CHUNK_BYTES;
        at least one image)."""
        max_bytes = CHUNK_BYTES if max_bytes is None else max_bytes
        per = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        step = max(1, max_bytes // max(per, 1))
        for start in range(0, len(self), step):
            yield start, self._read(np.arange(start, min(start + step, len(self))))

    def take(self, rows) -> StoredArray:
        """Images ``rows`` (positions in this array), still on disk."""
        picked = self.rows[np.asarray(rows, np.int64)]
        return StoredArray(self.h5_path, self.name, picked, self.scale, self.offset, self.dtype)

    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __array__(self, dtype=None, copy=None):
        whole = self._read(np.arange(len(self)))
        return whole if dtype is None else whole.astype(dtype)

    def __getattr__(self, attr):
        # Anything numpy-like that is not defined here works on the loaded array.
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(np.asarray(self), attr)

    def __getstate__(self):
        return {**self.__dict__, "_h5": None}

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        loaded = [np.asarray(x) if isinstance(x, StoredArray) else x for x in inputs]
        return getattr(ufunc, method)(*loaded, **kwargs)


class StoredUnion(StoredArray):
    """Several ``StoredArray`` parts (e.g. the real images of several ``--real`` datasets), one
    after another along the first axis: each part keeps its own file and its own
    ``scale``/``offset``, so every image reads back in physical units. Behaves like one
    ``StoredArray`` (``shape``, indexing, ``chunks``, ``take``; other numpy use loads it)."""

    def __init__(self, parts: list[StoredArray]):
        if not parts:
            raise ValueError("StoredUnion needs at least one part")
        tails = {tuple(p.shape[1:]) for p in parts}
        if len(tails) != 1:
            raise ValueError(f"StoredUnion parts differ in image shape: {sorted(tails)}")
        self.parts = list(parts)
        self.name, self.dtype = parts[0].name, parts[0].dtype
        self.h5_path, self.scale, self.offset = parts[0].h5_path, parts[0].scale, parts[0].offset
        self.starts = np.cumsum([0] + [len(p) for p in parts])
        self.rows = np.arange(int(self.starts[-1]))
        self.shape = (int(self.starts[-1]), *parts[0].shape[1:])
        self._h5 = None

    def _part_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.starts, rows, side="right") - 1

    def _read(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        which = self._part_of(rows)
        for k in np.unique(which):
            mine = which == k
            out[mine] = self.parts[int(k)]._read(rows[mine] - self.starts[k])
        return out

    def chunks(self, max_bytes: int | None = None):
        for k, part in enumerate(self.parts):
            for start, block in part.chunks(max_bytes):
                yield int(self.starts[k]) + start, block

    def take(self, rows) -> StoredUnion:
        """Images ``rows`` (positions in this union, any order), still on disk: consecutive
        positions in one part become one part of the result, so the order is kept."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        which = self._part_of(rows)
        breaks = np.flatnonzero(np.diff(which)) + 1
        parts = [
            self.parts[int(which[run[0]])].take(rows[run] - self.starts[which[run[0]]])
            for run in np.split(np.arange(len(rows)), breaks)
            if len(run)
        ]
        return StoredUnion(parts or [self.parts[0].take(rows[:0])])


def _loaded_operator(name: str):
    def operator(self, *args):
        return getattr(np.asarray(self), name)(*args)

    operator.__name__ = name
    return operator


# Arithmetic and comparisons (``labels > 0``, ``cubes - mean``) work on the loaded array.
for _name in (
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__eq__",
    "__ne__",
    "__add__",
    "__radd__",
    "__sub__",
    "__rsub__",
    "__mul__",
    "__rmul__",
    "__truediv__",
    "__rtruediv__",
    "__neg__",
    "__iter__",
):
    setattr(StoredArray, _name, _loaded_operator(_name))
StoredArray.__hash__ = None


def _hash_rows(rows: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    """A seeded 64-bit hash per row of float32 values: Σ word_i · m_i (mod 2⁶⁴) over the rows'
    32-bit words with random odd multipliers, then a final avalanche (splitmix64's finaliser)."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    h = np.empty(len(rows), np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, len(rows), HASH_ROWS):
            words = rows[start : start + HASH_ROWS].view(np.uint32).astype(np.uint64)
            h[start : start + HASH_ROWS] = (words * multipliers[None, :]).sum(axis=1, dtype=np.uint64)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


def distinct_sample(blocks, bands: int, k: int, seed: int):
    """Bottom-k sample over ``blocks`` of (spectra (n, B) float32, labels (n,) or None).

    Returns (spectra (≤ k, B), labels or None, distinct count — exact, or estimated when more
    than k distinct spectra were seen)."""
    rng = np.random.default_rng([seed, 0xD15])
    multipliers = rng.integers(1, 2**63, size=bands, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    keep_h = np.empty(0, np.uint64)
    keep_x = np.empty((0, bands), np.float32)
    keep_y = None
    for spectra, labels in blocks:
        h = _hash_rows(spectra, multipliers)
        if len(keep_h) == k:  # only hashes below the current k-th can enter
            below = h < keep_h[-1]
            h, spectra = h[below], spectra[below]
            labels = None if labels is None else labels[below]
        all_h = np.concatenate([keep_h, h])
        all_x = np.concatenate([keep_x, np.asarray(spectra, np.float32)])
        all_y = None if labels is None else np.concatenate([keep_y if keep_y is not None else labels[:0], labels])
        unique_h, first = np.unique(all_h, return_index=True)  # sorted hashes, one row each
        take = first[:k]
        keep_h, keep_x = unique_h[:k], all_x[take]
        keep_y = None if all_y is None else all_y[take]
    if len(keep_h) < k:
        count = len(keep_h)
    else:
        kth = float(keep_h[-1]) / 2.0**64
        count = int(round((k - 1) / kth)) if kth > 0 else k
    return keep_x, keep_y, count
