"""Offline extractors on synthetic images whose structure is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stages.common.errors import ConfigError
from stages.conditions import embed_text, extract, make_extractor
from stages.conditions.lines import detect_segments
from stages.conditions.segmentation import class_palette, segment


def _border_mask(shape, top, bottom, left, right, width):
    """Pixels within ``width`` of the rectangle outline rows top..bottom-1, cols left..right-1."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    dist_in = np.minimum.reduce([rows - top, bottom - 1 - rows, cols - left, right - 1 - cols])
    near = np.where(inside, dist_in < width, False)
    grown = (rows >= top - width) & (rows < bottom + width) & (cols >= left - width) & (cols < right + width)
    return near | (grown & ~inside)


def test_hed_high_on_rectangle_border_low_inside(rectangle):
    hed = extract("hed", rectangle)
    assert hed.shape == (1, 64, 64) and hed.dtype == np.float32
    assert 0.0 <= hed.min() and hed.max() <= 1.0
    border = _border_mask((64, 64), 16, 48, 20, 44, 2)
    far = ~_border_mask((64, 64), 16, 48, 20, 44, 12)
    assert hed[0][border].mean() > 0.8  # contrast 200/255 ≥ saturation 0.6 → saturated
    assert hed[0][far].max() < 0.02
    assert hed[0, 32, 32] < 0.01  # centre of the rectangle, 12 px from any edge
    # A flat image has no edges; contrast is absolute, not stretched per image.
    assert extract("hed", np.full((32, 32, 3), 90, np.uint8)).max() == 0.0
    faint = rectangle // 10  # step height 20/255 ≈ 0.08 → soft response
    assert 0.05 < extract("hed", faint)[0][border].mean() < 0.2


def test_hed_scale_normalised_step_height():
    # An ideal step of height h answers h at every scale (Lindeberg γ=1 normalisation); the
    # step lies between two pixel centres, so the sampled peak is h·exp(-(1/2)²/(2σ²)).
    from stages.conditions.edges import edge_strength

    image = np.zeros((64, 64, 3), np.uint8)
    image[:, 32:] = 128
    for sigma in (1.0, 2.0, 4.0):
        peak = edge_strength(image, (sigma,))[:, 28:36].max()
        expected = 128 / 255 * np.exp(-0.125 / sigma**2)
        assert abs(peak - expected) < 0.015, (sigma, peak, expected)


def test_mlsd_recovers_a_straight_line():
    image = np.zeros((64, 64, 3), np.uint8)
    p0, p1 = np.array([6.0, 10.0]), np.array([58.0, 50.0])
    cv2.line(image, tuple(int(v) for v in p0), tuple(int(v) for v in p1), (255, 255, 255), 3)
    segments = detect_segments(image)
    assert len(segments) >= 1
    direction = (p1 - p0) / np.linalg.norm(p1 - p0)
    for x0, y0, x1, y1 in segments:  # every detected segment lies along the drawn line
        for point in ((x0, y0), (x1, y1)):
            offset = np.asarray(point) - p0
            assert abs(offset[0] * direction[1] - offset[1] * direction[0]) < 4.0
    drawn = extract("mlsd", image)[0]
    assert set(np.unique(drawn)) <= {0.0, 1.0}
    ys, xs = np.nonzero(drawn)
    off_line = np.abs((xs - p0[0]) * direction[1] - (ys - p0[1]) * direction[0])
    assert off_line.max() < 4.0  # LSD finds the two sides of the 3-px bar
    t = np.linspace(0.1, 0.9, 40)  # the map covers the line's length
    samples = p0[None] + t[:, None] * (p1 - p0)[None]
    covered = [np.min(np.hypot(xs - x, ys - y)) <= 3.0 for x, y in samples]
    assert np.mean(covered) > 0.9
    assert extract("mlsd", np.zeros((64, 64, 3), np.uint8)).max() == 0.0


def test_sketch_traces_rectangle_and_drops_specks(rectangle):
    image = rectangle.copy()
    image[4:6, 4:6] = 255  # a 2×2 speck: a contour shorter than min_length
    sketch = extract("sketch", image)[0]
    assert set(np.unique(sketch)) <= {0.0, 1.0}
    border = _border_mask((64, 64), 16, 48, 20, 44, 2)
    assert sketch[~border].sum() == 0  # nothing but the rectangle outline
    outline = _border_mask((64, 64), 16, 48, 20, 44, 1) & ~_border_mask((64, 64), 17, 47, 21, 43, 1)
    rows, cols = np.nonzero(outline)
    hits = [sketch[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2].any() for r, c in zip(rows, cols)]
    assert np.mean(hits) > 0.95  # the whole perimeter is drawn
    assert sketch.sum() < 2.2 * 2 * (32 + 24)  # thin: about one pixel per perimeter pixel


def test_seg_two_flat_regions_get_their_mean_colours():
    image = np.zeros((32, 40, 3), np.uint8)
    image[:, :15] = (200, 40, 40)
    image[:, 15:] = (30, 90, 210)
    seg = extract("seg", image)
    assert seg.shape == (3, 32, 40)
    colours = np.unique((seg * 255).round().reshape(3, -1).T, axis=0)
    assert colours.tolist() == [[30, 90, 210], [200, 40, 40]]
    assert (seg[:, :, :15] * 255).round().reshape(3, -1).T.tolist()[0] == [200, 40, 40]
    # With sensor-like noise the regions still merge into two that follow the true boundary,
    # each filled with its own mean colour.
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    regions = segment(noisy)
    assert regions.max() + 1 == 2
    truth = np.zeros(regions.shape, int)
    truth[:, 15:] = 1
    agreement = max((regions == truth).mean(), (regions == 1 - truth).mean())
    assert agreement > 0.98
    filled = extract("seg", noisy)
    for k in range(2):
        mean = noisy[regions == k].reshape(-1, 3).mean(axis=0) / 255
        assert np.abs(filled[:, regions == k] - mean[:, None]).max() <= 0.5 / 255 + 1e-6


def test_seg_labels_colour_coding():
    labels = np.array([[0, 1, 1], [2, 2, 16]])
    seg = make_extractor("seg", "labels")(labels)
    palette = class_palette(256) / 255.0
    assert np.allclose(seg[:, 0, 0], 0.0)  # background black
    for (r, c), k in np.ndenumerate(labels):
        assert np.allclose(seg[:, r, c], palette[k], atol=0.5 / 255)
    assert len(np.unique(class_palette(17)[1:], axis=0)) == 16  # distinct class colours


def test_content_descriptor_is_deterministic_unit_and_discriminative():
    def field(colour, seed):
        base = np.zeros((48, 48, 3)) + colour
        return np.clip(base + np.random.default_rng(seed).normal(0, 8, base.shape), 0, 255).astype(np.uint8)

    green_a, green_b = field((40, 140, 50), 1), field((40, 140, 50), 2)
    stripes = green_a.copy()
    stripes[::6] = (220, 210, 180)  # roads across the same field
    grey = field((120, 120, 120), 3)
    vectors = {
        name: extract("content", im)
        for name, im in {"a": green_a, "b": green_b, "stripes": stripes, "grey": grey}.items()
    }
    for v in vectors.values():
        assert v.shape == (64,) and abs(np.linalg.norm(v) - 1) < 1e-5
    assert np.array_equal(extract("content", green_a), vectors["a"])
    cos = lambda x, y: float(vectors[x] @ vectors[y])  # noqa: E731
    assert cos("a", "b") > 0.99  # same scene, other noise: nearly identical
    assert cos("a", "stripes") < 0.8  # same field with roads: texture/orientation differ
    assert cos("a", "grey") < 0.8  # other colour


def test_text_one_hot_and_vocabulary():
    table = embed_text(["farmland", " City Building ", "", "wasteland"])
    assert table.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    with pytest.raises(ConfigError, match="--vocab"):
        embed_text(["forest"])
    assert embed_text(["forest"], vocab="water,forest").tolist() == [[0, 1]]


def test_maps_are_deterministic_in_range_and_on_the_8bit_grid(rectangle):
    noisy = np.clip(rectangle + np.random.default_rng(0).normal(0, 20, rectangle.shape), 0, 255).astype(np.uint8)
    for kind in ("hed", "mlsd", "sketch", "seg"):
        first, second = extract(kind, noisy), extract(kind, noisy)
        assert np.array_equal(first, second), kind
        assert first.shape[1:] == (64, 64) and 0 <= first.min() and first.max() <= 1
        assert np.array_equal(np.round(first * 255) / 255, first.astype(np.float32)), kind


def test_bad_requests_fail_clearly(rectangle):
    with pytest.raises(ConfigError, match="unknown condition kind 'depth'"):
        extract("depth", rectangle)
    with pytest.raises(ConfigError, match="no backend 'pretrained'"):
        make_extractor("seg", "pretrained")
    with pytest.raises(ConfigError, match="--mlsd-weights"):
        make_extractor("mlsd", "pretrained")
    with pytest.raises(ConfigError, match="--pidinet-weights"):
        make_extractor("sketch", "pidinet")
    with pytest.raises(ConfigError, match="--encoder"):
        make_extractor("content", "encoder")
    with pytest.raises(ConfigError, match="--hed-weights"):
        make_extractor("hed", "pretrained")
    with pytest.raises(ConfigError, match="--clip-model"):
        make_extractor("content", "clip")
    with pytest.raises(ConfigError, match="unknown settings"):
        make_extractor("hed", sigma=3)


def test_seg_of_a_constant_image_is_one_region():
    # SLIC leaves label numbers unused on flat images; the region graph must not see the gaps.
    from stages.conditions.segmentation import segment

    for value in (0, 128, 255):
        regions = segment(np.full((32, 32, 3), value, np.uint8))
        assert regions.shape == (32, 32) and set(np.unique(regions)) == {0}
