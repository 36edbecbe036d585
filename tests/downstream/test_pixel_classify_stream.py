"""``--task pixel-classify`` in bounded memory (stages/downstream/pixel_classify.py): real and
synthetic pixels are read a chunk of images at a time, the synthetic pixels of each class are a
uniform random sample of its budget kept while streaming (``ClassReservoirs``), and the report
does not depend on the chunk size."""

from __future__ import annotations

import itertools
import json

import numpy as np


def test_class_reservoirs_sample_uniformly():
    """Against brute force: every 3-subset of 7 usable items of a class is drawn equally often,
    unusable items and other classes' items never take its places, and the chunking of the
    stream does not change the sample."""
    from stages.downstream.pixel_classify import ClassReservoirs

    labels = np.array([1, 2, 1, 1, 2, 1, 1, 1, 2, 1, 1])  # class 1 at 0, 2, 3, 5, 6, 7, 9, 10
    usable = np.ones(len(labels), bool)
    usable[5] = False  # 7 usable items of class 1
    items = np.arange(len(labels))
    trials = 7000
    counts = dict.fromkeys(itertools.combinations([0, 2, 3, 6, 7, 9, 10], 3), 0)
    for trial in range(trials):
        reservoirs = ClassReservoirs({1: 3, 2: 5}, np.random.default_rng(trial))
        for start in range(0, len(labels), 2):
            reservoirs.offer(items[start : start + 2], labels[start : start + 2], usable[start : start + 2])
        positions, picked, picked_labels = reservoirs.sample()
        assert np.array_equal(positions, picked) and np.array_equal(picked_labels, labels[picked])
        assert list(picked[picked_labels == 2]) == [1, 4, 8]  # fewer than its budget: all of them
        counts[tuple(picked[picked_labels == 1])] += 1
    # 35 subsets, 200 expected draws each (binomial std ≈ 14): every one within ±30 % (> 4 std).
    expected = trials / len(counts)
    assert all(abs(n - expected) < 0.3 * expected for n in counts.values()), counts
    chunked = reservoirs.sample()  # the last trial's, offered two items at a time
    whole = ClassReservoirs({1: 3, 2: 5}, np.random.default_rng(trials - 1))
    whole.offer(items, labels, usable)
    assert all(np.array_equal(a, b) for a, b in zip(whole.sample(), chunked))


def _record_hsi_reads(monkeypatch) -> list:
    """(rows read, pixels returned) of every ``hsi`` read from disk."""
    from stages.evaluate import streamed

    reads, read = [], streamed.StoredArray._read

    def recording_read(self, rows):
        values = read(self, rows)
        if self.name == "hsi":
            reads.append((self.rows[np.asarray(rows, np.int64)], values.size // values.shape[1]))
        return values

    monkeypatch.setattr(streamed.StoredArray, "_read", recording_read)
    return reads


def test_spectra_at_reads_only_the_images_that_hold_the_pixels(ip_dataset, monkeypatch):
    from stages.evaluate import streamed
    from stages.evaluate.spectra import as_pixels, load_image_set, spectra_at

    images = load_image_set(ip_dataset)
    every = as_pixels(np.asarray(images.cubes))
    flat = np.array([5000, 3, 70000, 3, 1030, 1029])  # any order, repeats
    monkeypatch.setattr(streamed, "CHUNK_BYTES", 1)  # one image a read
    reads = _record_hsi_reads(monkeypatch)
    assert np.array_equal(spectra_at(images, flat), every[flat])
    assert [list(rows) for rows, _ in reads] == [[0], [1], [4], [68]]  # 1024 pixels an image


def test_pixel_classify_streams_in_bounded_memory(
    ip_dataset, labelled_samples, unlabelled_samples, tmp_path, monkeypatch
):
    """One image per read (chunk) gives the very report of the default chunk size; the
    reservoirs never hold more than the budget; the chosen pixels are pixels of the samples,
    labelled ones with their (boundary-filtered) labels, each class filled to its budget."""
    from stages.downstream import DownstreamConfig
    from stages.downstream import pixel_classify as pc
    from stages.evaluate import streamed
    from stages.evaluate.spectra import as_pixels, load_image_set

    config = DownstreamConfig(seeds=[0, 1, 2], steps=10, per_class=10, confidence=0.15, device="cpu")
    synthetic = [labelled_samples, unlabelled_samples]
    pc.run(ip_dataset, synthetic, tmp_path / "default-chunks", config)
    default = json.loads((tmp_path / "default-chunks" / "report.json").read_text())

    budgets, samples, held = [], [], [0]

    class RecordingReservoirs(pc.ClassReservoirs):
        def __init__(self, class_budgets, rng):
            super().__init__(class_budgets, rng)
            budgets.append(class_budgets)

        def offer(self, *args):
            super().offer(*args)
            held[0] = max(held[0], sum(len(keys) for keys, _, _ in self.held.values()))

        def sample(self):
            samples.append(super().sample())
            return samples[-1]

    monkeypatch.setattr(pc, "ClassReservoirs", RecordingReservoirs)
    monkeypatch.setattr(streamed, "CHUNK_BYTES", 1)
    reads = _record_hsi_reads(monkeypatch)
    pc.run(ip_dataset, synthetic, tmp_path / "one-image-chunks", config)
    chunked = json.loads((tmp_path / "one-image-chunks" / "report.json").read_text())
    assert chunked["runs"] == default["runs"]
    # Spectra held: one 32 × 32 image read at a time, plus at most the budget in the reservoirs.
    assert max(n for _, n in reads) == 32 * 32
    assert 0 < held[0] <= max(sum(b.values()) for b in budgets)

    labelled, unlabelled = (load_image_set(p) for p in synthetic)
    x_lab, x_unl = as_pixels(np.asarray(labelled.cubes)), as_pixels(np.asarray(unlabelled.cubes))
    y_lab = pc.interior_labels(np.asarray(labelled.labels), config.boundary).reshape(-1)
    classes = default["settings"]["classes"]
    assert default["runs"][0]["synthetic_sources"][0]["available"] == np.isin(y_lab, classes).sum()
    positions, x, y = samples[0]
    assert len(y) == default["runs"][0]["synthetic_pixels"]
    from_lab = positions < len(x_lab)
    assert from_lab.any() and not from_lab.all()
    assert np.array_equal(x[from_lab], x_lab[positions[from_lab]])
    assert np.array_equal(y[from_lab], y_lab[positions[from_lab]])
    assert np.array_equal(x[~from_lab], x_unl[positions[~from_lab] - len(x_lab)])
    for c, budget in budgets[0].items():
        assert (y == c).sum() == budget if (y_lab == c).sum() >= budget else (y == c).sum() <= budget
