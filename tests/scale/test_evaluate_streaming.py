"""evaluate's data layer at scale: images stay on disk, distinct pixels are sampled in one
bounded pass (bottom-k by a seeded hash)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest


def test_distinct_sample_exact_when_small_and_dedupes():
    from stages.evaluate.streamed import distinct_sample

    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 5)).astype(np.float32)
    repeated = np.concatenate([base, base[:100], base[50:120]])  # duplicates as overlapping patches
    blocks = [(repeated[i : i + 64], np.arange(len(repeated))[i : i + 64] % 7) for i in range(0, len(repeated), 64)]
    values, labels, count = distinct_sample(blocks, 5, 1000, seed=3)
    assert count == 300 and len(values) == 300
    assert sorted(map(bytes, values)) == sorted(map(bytes, base))
    assert labels.shape == (300,)


def test_distinct_sample_is_uniform_and_estimates_the_count():
    from stages.evaluate.streamed import distinct_sample

    x = np.arange(60_000, dtype=np.float32)[:, None] * np.float32([1.0, 0.5])
    blocks = [(x[i : i + 5000], None) for i in range(0, len(x), 5000)]
    values, _, count = distinct_sample(blocks, 2, 3000, seed=1)
    assert len(values) == 3000 and len(np.unique(values[:, 0])) == 3000
    assert count == pytest.approx(60_000, rel=0.06)  # KMV: rel. error ~ 1/sqrt(k)
    # Uniform over the distinct values: each sixth of the range holds about a sixth of the sample.
    share = np.histogram(values[:, 0], bins=6, range=(0, 60_000))[0] / 3000
    assert np.all(np.abs(share - 1 / 6) < 0.03)
    again, _, _ = distinct_sample(iter(blocks), 2, 3000, seed=1)
    assert np.array_equal(again, values)
    other, _, _ = distinct_sample(iter(blocks), 2, 3000, seed=2)
    assert not np.array_equal(np.sort(other[:, 0]), np.sort(values[:, 0]))


def test_streamed_pixels_match_exact_and_stay_bounded(ip_dataset, monkeypatch):
    from stages.evaluate import spectra, streamed

    images = spectra.load_image_set(ip_dataset)
    assert isinstance(images.cubes, streamed.StoredArray)
    exact = spectra.pixels(images, 10**7, seed=0)
    monkeypatch.setattr(spectra, "EXACT_PIXELS_BYTES", 0)
    monkeypatch.setattr(streamed, "CHUNK_BYTES", 1 << 20)
    tracemalloc.start()
    streamed_px = spectra.pixels(images, 10**7, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert streamed_px.unique_count == exact.unique_count
    assert sorted(map(bytes, streamed_px.values)) == sorted(map(bytes, exact.values))
    whole = int(np.prod(images.cubes.shape)) * 4
    # The sample itself (every distinct pixel here, since k is huge) plus a few 1 MiB chunks.
    assert peak < exact.values.nbytes * 4 + (8 << 20) and peak < whole * 4
    # A capped sample: max_spectra spectra, all of them real pixels of the set.
    capped = spectra.pixels(images, 500, seed=0)
    assert len(capped.values) == 500
    assert set(map(bytes, capped.values)) <= set(map(bytes, exact.values))
    assert capped.unique_count == pytest.approx(exact.unique_count, rel=0.15)


def test_stored_array_indexing_reads_physical_units(ip_dataset):
    from stages.artifacts.datasets import load_patches
    from stages.evaluate.spectra import load_image_set

    images = load_image_set(ip_dataset, split="val")
    patches = load_patches(ip_dataset, split="val")
    ref = patches.physical()
    assert images.cubes.shape == ref.shape
    assert np.array_equal(images.cubes[2], ref[2])
    assert np.array_equal(images.cubes[[3, 0, 3]], ref[[3, 0, 3]])
    assert np.array_equal(images.cubes[:, 5], ref[:, 5])
    assert np.array_equal(np.asarray(images.cubes), ref)
    assert np.array_equal(images.labels[1:3], patches.labels[1:3])
