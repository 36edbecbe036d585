"""The downstream tasks' patch reader: small arrays are held in memory within a byte budget,
larger ones stream from disk, and both give the same patches."""

from __future__ import annotations

import numpy as np


def test_small_arrays_are_held_in_memory_within_the_budget_and_read_the_same(ip_dataset, monkeypatch):
    from stages.downstream import data

    which = np.array([5, 1, 1, 30, 2])
    data.close_all()
    monkeypatch.setattr(data, "IN_MEMORY_BYTES", 0)  # nothing fits: every row from disk
    streamed = data.open_source(ip_dataset, "--real", "train").read(which)
    assert data._HELD == {}
    data.close_all()
    monkeypatch.setattr(data, "IN_MEMORY_BYTES", 512 * 1024**2)
    held = data.open_source(ip_dataset, "--real", "train").read(which)
    assert len(data._HELD) >= 1 and sum(a.nbytes for a in data._HELD.values()) <= data.IN_MEMORY_BYTES
    for key in streamed:
        np.testing.assert_array_equal(streamed[key], held[key])
    data.close_all()
    assert data._HELD == {}
