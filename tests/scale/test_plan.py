"""The batch plan: epochs, weights, DDP shards (pure index arithmetic, no processes)."""

from __future__ import annotations

import numpy as np
import pytest

from stages.data.plan import BatchPlan, rank_positions


def test_ranks_read_disjoint_shards_of_each_step():
    world, batch = 4, 3
    for step in range(5):
        shards = [rank_positions(step, r, world, batch) for r in range(world)]
        union = np.concatenate(shards)
        assert len(set(union.tolist())) == world * batch  # disjoint
        assert union.tolist() == list(range(step * 12, step * 12 + 12))  # the step's whole global batch
    assert rank_positions(2, 1, 4, 3).tolist() == [27, 28, 29]
    with pytest.raises(ValueError):
        rank_positions(0, 4, 4, 3)


def test_shards_concatenate_to_the_single_process_batch():
    """4 ranks × batch 2 read exactly what one process with batch 8 reads, step by step."""
    rows = [np.arange(10), np.arange(100, 106)]
    one = BatchPlan(rows, [0.5, 0.5], seed=7, batch=8, size=16, crop=8)
    four = BatchPlan(rows, [0.5, 0.5], seed=7, batch=2, size=16, crop=8, world_size=4)
    for step in range(6):
        whole = one.for_step(step)
        parts = [four.for_step(step, r) for r in range(4)]
        for key in ("source", "row", "top", "left", "symmetry"):
            assert np.array_equal(getattr(whole, key), np.concatenate([getattr(p, key) for p in parts]))


def test_default_weights_visit_every_patch_once_per_epoch():
    rows = [np.arange(7), np.arange(50, 55)]
    counts = [7, 5]
    plan = BatchPlan(rows, counts, seed=1, batch=3, size=8, crop=4)
    assert plan.epoch_length == 12
    for e in range(3):
        d = plan.draws(np.arange(12 * e, 12 * (e + 1)))
        assert sorted(zip(d.source.tolist(), d.row.tolist())) == sorted(
            [(0, i) for i in range(7)] + [(1, i) for i in range(50, 55)]
        )
        assert d.top.max() <= 4 and d.left.min() >= 0 and set(d.symmetry.tolist()) <= set(range(8))
    # Epochs differ in order; the same seed gives the same plan in a fresh object.
    a, b = plan.draws(np.arange(12)), plan.draws(np.arange(12, 24))
    assert not np.array_equal(a.row, b.row)
    again = BatchPlan(rows, counts, seed=1, batch=3, size=8, crop=4).draws(np.arange(12, 24))
    assert np.array_equal(again.row, b.row) and np.array_equal(again.symmetry, b.symmetry)


def test_weights_set_source_shares():
    rows = [np.arange(10), np.arange(1000)]
    plan = BatchPlan(rows, [3.0, 1.0], seed=0, batch=8, size=8, crop=8)
    d = plan.draws(np.arange(40_000))
    share = float(np.mean(d.source == 0))
    assert share == pytest.approx(0.75, abs=0.01)
    # The small source is cycled through fresh permutations: each patch about equally often.
    counts = np.bincount(d.row[d.source == 0], minlength=10)
    assert counts.min() >= 0.9 * counts.mean()
    assert d.top.max() == 0 and d.left.max() == 0  # crop == size


def test_needed_covers_all_ranks():
    rows = [np.arange(20)]
    plan = BatchPlan(rows, [1.0], seed=0, batch=2, size=8, crop=8, world_size=3)
    need = plan.needed(0, 2)
    got = {
        (0, int(r), int(k))
        for step in range(2)
        for rank in range(3)
        for r, k in zip(plan.for_step(step, rank).row, plan.for_step(step, rank).symmetry)
    }
    assert need == got and len(got) <= 12
