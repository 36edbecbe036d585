"""M-LSD and PiDiNet on random weights the tests save themselves in the annotator files'
formats: strict loading by parameter name, the pixel difference convolutions against their
definitions, M-LSD's line decoding on a hand-built TP map, and the maps they produce."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stages.common.errors import ConfigError, InputError
from stages.conditions import make_extractor
from stages.conditions.mlsd_net import decode_segments
from stages.conditions.pidinet import difference_kernel, pidinet_input

# Flattened 3×3 index → (row, col) offset, and the clockwise successor of each ring pixel.
OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 0), (0, 1), (1, -1), (1, 0), (1, 1)]
CLOCKWISE_NEXT = {0: 1, 1: 2, 2: 5, 5: 8, 8: 7, 7: 6, 6: 3, 3: 0, 4: 4}
DIRECTIONS = [d for d in OFFSETS if d != (0, 0)]


def brute_force_pdc(x: np.ndarray, w: np.ndarray, op: str) -> np.ndarray:
    """Pixel difference convolution of (C_in, H, W) x with (C_out, C_in, 3, 3) w, zero padded,
    straight from PiDiNet's definitions (§3.1) and the annotator's radial weight layout."""
    c_out, (_, h, width) = w.shape[0], x.shape
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    flat = w.reshape(c_out, -1, 9)
    y = np.zeros((c_out, h, width))
    for r in range(h):
        for c in range(width):
            at = lambda dr, dc, r=r, c=c: padded[:, r + 2 + dr, c + 2 + dc]  # noqa: E731
            for i, (dr, dc) in enumerate(OFFSETS):
                if op == "cv":
                    y[:, r, c] += flat[:, :, i] @ at(dr, dc)
                elif op == "cd":
                    y[:, r, c] += flat[:, :, i] @ (at(dr, dc) - at(0, 0))
                elif op == "ad":
                    nr, nc = OFFSETS[CLOCKWISE_NEXT[i]]
                    y[:, r, c] += flat[:, :, i] @ (at(dr, dc) - at(nr, nc))
            if op == "rd":
                for k, (dr, dc) in enumerate(DIRECTIONS):
                    y[:, r, c] += flat[:, :, k + 1] @ (at(2 * dr, 2 * dc) - at(dr, dc))
    return y


@pytest.mark.parametrize("op", ["cv", "cd", "ad", "rd"])
def test_pixel_difference_convolutions_match_their_definitions(op):
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(3, 7, 9)), rng.normal(size=(2, 3, 3, 3))
    kernel, padding = difference_kernel(torch.from_numpy(w), op)
    fast = F.conv2d(torch.from_numpy(x)[None], kernel, padding=padding)[0].numpy()
    assert np.abs(fast - brute_force_pdc(x, w, op)).max() < 1e-10


def hand_built_tp_map(h: int = 32, w: int = 32) -> np.ndarray:
    """Centre logits −8 (score 3e-4) except at five hand-placed centres."""
    tp = np.zeros((9, h, w), np.float32)
    tp[0] = -8.0

    def put(y, x, logit, shift):
        tp[0, y, x] = logit
        tp[1:5, y, x] = shift

    put(5, 6, 4.0, (-3, -2, 7, 4))  # kept: length √(10² + 6²) = 11.66
    put(5, 7, 3.0, (1, 1, 2, 2))  # beside a stronger centre: suppressed (3×3 NMS)
    put(15, 20, 2.0, (0, -6, 0, 6))  # kept: vertical, length 12
    put(10, 28, -3.0, (-5, 0, 5, 0))  # score σ(−3) = 0.047 < 0.1: dropped
    put(20, 3, 5.0, (0.02, 0, -0.03, 0))  # the best score, but length 0.05 < 0.1: dropped
    return tp


def test_mlsd_decoding_of_a_hand_built_tp_map():
    tp = hand_built_tp_map()
    segments = decode_segments(tp)
    # Ordered by score: centre (x=6, y=5) then (x=20, y=15); each centre + its displacements.
    assert np.allclose(segments, [[3, 3, 13, 9], [20, 9, 20, 21]])
    assert np.allclose(decode_segments(tp, distance_threshold=11.7), [[20, 9, 20, 21]])
    assert np.allclose(decode_segments(tp, score_threshold=0.9), [[3, 3, 13, 9]])  # σ(2) = 0.88
    # Only the top-k peaks are candidates: the two best are (20, 3) (too short) and (6, 5).
    assert np.allclose(decode_segments(tp, topk=2), [[3, 3, 13, 9]])
    assert decode_segments(np.full((9, 4, 4), -8.0, np.float32)).shape == (0, 4)


def test_mlsd_weights_load_strictly_by_annotator_names(mlsd_weights, mlsd_state):
    mlsd = make_extractor("mlsd", "pretrained", mlsd_weights=mlsd_weights, resolution=64)
    loaded = mlsd.network.state_dict()
    assert set(loaded) == set(mlsd_state) and all(torch.equal(loaded[k], mlsd_state[k]) for k in loaded)
    # Names and shapes of mlsd_large_512_fp32.pth (MobileNetV2 to the 96-channel stage, 4-channel
    # input, decoder blocks 15..23).
    shapes = {
        "backbone.features.0.0.weight": (32, 4, 3, 3),
        "backbone.features.1.conv.0.0.weight": (32, 1, 3, 3),
        "backbone.features.1.conv.1.weight": (16, 32, 1, 1),
        "backbone.features.2.conv.0.0.weight": (96, 16, 1, 1),
        "backbone.features.13.conv.2.weight": (96, 576, 1, 1),
        "block15.conv1.0.weight": (64, 96, 1, 1),
        "block21.conv2.0.weight": (64, 16, 1, 1),
        "block23.conv1.0.weight": (64, 64, 3, 3),
        "block23.conv3.weight": (16, 64, 1, 1),
    }
    assert {k: tuple(loaded[k].shape) for k in shapes} == shapes
    assert not any(k.startswith("backbone.features.14.") for k in loaded)
    params = sum(v.numel() for k, v in loaded.items() if not k.endswith(("running_mean", "running_var", "tracked")))
    assert abs(params / 1.5e6 - 1) < 0.03  # "M-LSD: 1.5M parameters" (M-LSD paper, Table 1)
    assert mlsd.settings()["weights"] == str(mlsd_weights)


def test_mlsd_segments_are_scaled_back_to_the_image(mlsd_weights):
    """A stand-in network that answers the hand-built TP map isolates the coordinate mapping:
    TP-map pixels × 2 (output stride) × image size / network resolution."""
    mlsd = make_extractor("mlsd", "pretrained", mlsd_weights=mlsd_weights, resolution=64)
    tp = torch.from_numpy(hand_built_tp_map())
    mlsd.network = lambda x: tp[None].expand(x.shape[0], -1, -1, -1)
    image = np.zeros((48, 40, 3), np.uint8)
    (segments,) = mlsd.segments([image])
    scale = 2 * np.array([40, 48, 40, 48]) / 64
    assert np.allclose(segments, np.array([[3, 3, 13, 9], [20, 9, 20, 21]]) * scale)
    drawn = mlsd(image)[0]
    assert drawn.shape == (48, 40) and set(np.unique(drawn)) == {0.0, 1.0}
    ys, xs = np.nonzero(drawn)
    distance = np.min([_point_segment_distance(xs, ys, s) for s in segments], axis=0)
    assert distance.max() <= 1.0


def _point_segment_distance(xs, ys, segment) -> np.ndarray:
    p, a, b = np.stack([xs, ys], 1).astype(float), np.asarray(segment[:2]), np.asarray(segment[2:])
    t = np.clip(((p - a) @ (b - a)) / max((b - a) @ (b - a), 1e-12), 0, 1)
    return np.linalg.norm(p - (a + t[:, None] * (b - a)), axis=1)


def test_mlsd_network_map_is_binary_and_deterministic(mlsd_weights, rectangle):
    mlsd = make_extractor(
        "mlsd", "pretrained", mlsd_weights=mlsd_weights, resolution=64, score_threshold=0.0, distance_threshold=0.0
    )
    first = mlsd(rectangle)
    assert first.shape == (1, 64, 64) and set(np.unique(first)) <= {0.0, 1.0}
    assert first.max() == 1.0  # thresholds 0: every top-200 centre draws a line
    assert np.array_equal(first, mlsd.batch([rectangle, rectangle])[1])


def test_pidinet_weights_load_strictly_and_give_a_sketch(pidinet_weights, pidinet_state, rectangle):
    sketch = make_extractor("sketch", "pidinet", pidinet_weights=pidinet_weights, resolution=64)
    loaded = sketch.network.state_dict()  # "module." prefixes and the state_dict wrapper removed
    assert set(loaded) == set(pidinet_state) and all(torch.equal(loaded[k], pidinet_state[k]) for k in loaded)
    shapes = {
        "init_block.weight": (60, 3, 3, 3),
        "block1_1.conv1.weight": (60, 1, 3, 3),
        "block2_1.shortcut.weight": (120, 60, 1, 1),
        "block3_1.conv2.weight": (240, 120, 1, 1),
        "block4_1.shortcut.weight": (240, 240, 1, 1),
        "block4_4.conv2.weight": (240, 240, 1, 1),
        "dilations.0.conv1.weight": (24, 60, 1, 1),
        "dilations.3.conv2_4.weight": (24, 24, 3, 3),
        "attentions.2.conv2.weight": (1, 4, 3, 3),
        "conv_reduces.1.conv.weight": (1, 24, 1, 1),
        "classifier.weight": (1, 4, 1, 1),
    }
    assert {k: tuple(loaded[k].shape) for k in shapes} == shapes
    assert abs(sum(v.numel() for v in loaded.values()) / 7.1e5 - 1) < 0.01  # PiDiNet Table 5: 710K

    probability = sketch.probabilities([rectangle])
    assert probability.shape == (1, 64, 64) and 0 < probability.min() and probability.max() < 1
    median = float(np.median(probability))
    sketch.threshold = median  # half the pixels are edges: strokes must appear
    first = sketch(rectangle)
    assert first.shape == (1, 64, 64) and set(np.unique(first)) == {0.0, 1.0}
    assert np.array_equal(first, sketch.batch([rectangle])[0])
    assert sketch.settings()["backend"] == "pidinet" and sketch.settings()["resolution"] == 64
    # PiDiNet reads BGR in [0, 1].
    red = np.zeros((1, 2, 2, 3), np.uint8)
    red[..., 0] = 255
    assert pidinet_input(red)[0, :, 0, 0].tolist() == [0.0, 0.0, 1.0]


def test_annotator_files_that_do_not_match_fail_clearly(tmp_path, mlsd_state, pidinet_weights):
    with pytest.raises(InputError, match="--mlsd-weights .*does not exist.*mlsd_large_512_fp32.pth"):
        make_extractor("mlsd", "pretrained", mlsd_weights=tmp_path / "missing.pth")
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in mlsd_state.items() if k != "block23.conv3.bias"}, partial)
    with pytest.raises(InputError, match=r"mlsd_large_512_fp32.pth\): 1 missing key\(s\) \['block23.conv3.bias'\]"):
        make_extractor("mlsd", "pretrained", mlsd_weights=partial)
    reshaped = tmp_path / "reshaped.pth"
    torch.save({**mlsd_state, "block23.conv3.weight": torch.zeros(8, 64, 1, 1)}, reshaped)
    with pytest.raises(InputError, match=r"block23.conv3.weight has shape \(8, 64, 1, 1\), expected \(16, 64, 1, 1\)"):
        make_extractor("mlsd", "pretrained", mlsd_weights=reshaped)
    with pytest.raises(InputError, match="is not the M-LSD large weights"):
        make_extractor("mlsd", "pretrained", mlsd_weights=pidinet_weights)
    with pytest.raises(InputError, match="--pidinet-weights .*is not the PiDiNet weights.*table5_pidinet.pth"):
        make_extractor("sketch", "pidinet", pidinet_weights=partial)
    with pytest.raises(ConfigError, match="multiple of 16"):
        make_extractor("mlsd", "pretrained", mlsd_weights=partial, resolution=100)
