"""Which patches every training step reads: a pure function of (seed, step, rank).

The corpus's training patches form a stream of *slots*, cut into epochs of ``sum(train
patches)`` slots. Epoch ``e`` is drawn from a generator seeded by ``(seed, e)`` alone: every source gets
its weight's share of the epoch's slots (largest remainders), the slots are shuffled, and each
source fills its slots from a fresh permutation of its patches (cycled if its weight asks for
more than it has), so with default weights an epoch visits every training patch exactly once. Each slot also carries a random
crop corner and one of the 8 symmetries of the square.

Micro-step ``m`` owns the slots ``[m·b·W, (m+1)·b·W)`` (b = per-rank batch, W = world size);
rank ``r`` reads the sub-range ``[m·b·W + r·b, m·b·W + (r+1)·b)``. The ranks therefore read
disjoint parts of every step's global batch, and a run resumed at step N — or re-launched on
another number of machines with the same global batch — reads exactly the slots an
uninterrupted run would have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def allocate(total: int, weights, available=None) -> list[int]:
    """Split ``total`` over sources by weight (largest remainders), optionally capped."""
    want = np.asarray(weights, np.float64) / float(np.sum(weights)) * total
    counts = np.floor(want).astype(np.int64)
    for i in np.argsort(-(want - counts), kind="stable")[: total - int(counts.sum())]:
        counts[i] += 1
    if available is not None:
        counts = np.minimum(counts, np.asarray(available, np.int64))
    return [int(c) for c in counts]


def rank_positions(micro_step: int, rank: int, world_size: int, batch: int) -> np.ndarray:
    """Global slot positions rank ``rank`` reads at ``micro_step`` (its shard of the step's batch)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside a world of {world_size}")
    start = micro_step * batch * world_size + rank * batch
    return np.arange(start, start + batch, dtype=np.int64)


@dataclass
class Draws:
    """One batch's patches: arrays of equal length."""

    source: np.ndarray  # index into the corpus's sources
    row: np.ndarray  # row in that source's patches.h5
    top: np.ndarray
    left: np.ndarray
    symmetry: np.ndarray  # 0..7 (see ``dihedral``)
    position: np.ndarray  # global slot positions


class BatchPlan:
    def __init__(
        self,
        train_rows: list[np.ndarray],
        weights: list[float],
        seed: int,
        batch: int,
        size: int,
        crop: int,
        world_size: int = 1,
        symmetries: bool = True,
    ):
        if crop > size:
            raise ValueError(f"crop {crop} is larger than the {size}×{size} patches")
        self.train_rows = [np.asarray(r, np.int64) for r in train_rows]
        self.weights = np.asarray(weights, np.float64) / float(np.sum(weights))
        self.seed, self.batch, self.size, self.crop = int(seed), int(batch), int(size), int(crop)
        self.world_size, self.symmetries = int(world_size), bool(symmetries)
        self.epoch_length = int(sum(len(r) for r in self.train_rows))
        self._cache: dict[int, dict] = {}

    def _epoch(self, e: int) -> dict:
        if e in self._cache:
            return self._cache[e]
        rng = np.random.default_rng([self.seed, e, 0x5EED])
        n, k = self.epoch_length, len(self.train_rows)
        source = rng.permutation(np.repeat(np.arange(k), allocate(n, self.weights)))
        row = np.empty(n, np.int64)
        for s, rows in enumerate(self.train_rows):
            slots = np.flatnonzero(source == s)
            cycles = -(-len(slots) // len(rows)) if len(slots) else 0
            order = np.concatenate([rng.permutation(rows) for _ in range(cycles)]) if cycles else rows[:0]
            row[slots] = order[: len(slots)]
        span = self.size - self.crop + 1
        plan = {
            "source": source.astype(np.int64),
            "row": row,
            "top": rng.integers(0, span, n),
            "left": rng.integers(0, span, n),
            "symmetry": rng.integers(0, 8, n) if self.symmetries else np.zeros(n, np.int64),
        }
        if len(self._cache) >= 2:  # the current and the next epoch suffice
            self._cache.pop(min(self._cache))
        self._cache[e] = plan
        return plan

    def draws(self, positions: np.ndarray) -> Draws:
        positions = np.asarray(positions, np.int64)
        out = {k: np.empty(len(positions), np.int64) for k in ("source", "row", "top", "left", "symmetry")}
        epochs, within = np.divmod(positions, self.epoch_length)
        for e in np.unique(epochs):
            pick = epochs == e
            plan = self._epoch(int(e))
            for key in out:
                out[key][pick] = plan[key][within[pick]]
        return Draws(position=positions, **out)

    def for_step(self, micro_step: int, rank: int = 0) -> Draws:
        return self.draws(rank_positions(micro_step, rank, self.world_size, self.batch))

    def needed(self, start: int, stop: int) -> set[tuple[int, int, int]]:
        """(source, row, symmetry) of every slot micro-steps [start, stop) read, over all ranks."""
        first, last = start * self.batch * self.world_size, stop * self.batch * self.world_size
        d = self.draws(np.arange(first, last, dtype=np.int64))
        return set(zip(d.source.tolist(), d.row.tolist(), d.symmetry.tolist()))
