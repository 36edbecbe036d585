"""Pretrained backends on random weights the tests write themselves (nothing is downloaded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stages.common.errors import InputError
from stages.conditions import embed_text, extract, make_extractor
from stages.conditions.pretrained import load_hed


def reference_hed(state: dict, rgb: np.ndarray) -> np.ndarray:
    """HED forward written out with functional ops straight from the state dict."""
    x = torch.from_numpy(rgb.transpose(2, 0, 1).copy()).float()[None] - state["norm"]
    sides = []
    for k in range(1, 6):
        if k > 1:
            x = F.max_pool2d(x, 2, 2)
        j = 0
        while f"block{k}.convs.{j}.weight" in state:
            x = F.relu(F.conv2d(x, state[f"block{k}.convs.{j}.weight"], state[f"block{k}.convs.{j}.bias"], padding=1))
            j += 1
        side = F.conv2d(x, state[f"block{k}.projection.weight"], state[f"block{k}.projection.bias"])
        sides.append(F.interpolate(side, size=rgb.shape[:2], mode="bilinear", align_corners=False))
    return torch.sigmoid(sum(sides) / len(sides))[0, 0].numpy()


def test_hed_network_loads_by_name_and_matches_reference(hed_weights, hed_state, rectangle, tmp_path):
    state = hed_state
    network, _ = load_hed(hed_weights)
    loaded = network.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    hed = extract("hed", rectangle, "pretrained", hed_weights=hed_weights)
    assert hed.shape == (1, 64, 64) and 0 <= hed.min() and hed.max() <= 1
    assert np.abs(hed[0] - reference_hed(state, rectangle)).max() <= 0.5 / 255 + 1e-6
    # The same weights as a PyTorch state dict (.pth, read with weights_only=True), with a
    # DataParallel "module." prefix, give the same map.
    pth = tmp_path / "hed.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, pth)
    assert np.array_equal(extract("hed", rectangle, "pretrained", hed_weights=pth), hed)


def test_pretrained_sketch_uses_hed_edges(hed_weights, rectangle):
    sketch = make_extractor("sketch", "pretrained", hed_weights=hed_weights, threshold=0.5)
    out = sketch(rectangle)
    assert out.shape == (1, 64, 64) and set(np.unique(out)) <= {0.0, 1.0}
    assert sketch.settings()["backend"] == "pretrained"


def test_hed_weights_with_wrong_layout_or_path_fail_clearly(tmp_path):
    from safetensors.torch import save_file

    bad = tmp_path / "vgg.safetensors"
    save_file({"features.0.weight": torch.zeros(4, 3, 3, 3)}, str(bad))
    with pytest.raises(InputError, match="ControlNet annotator layout"):
        load_hed(bad)
    with pytest.raises(InputError, match="--hed-weights .*does not exist"):
        load_hed(tmp_path / "missing.pth")


def test_clip_content_and_text_match_the_model(clip_dir, rectangle):
    from transformers import CLIPModel, CLIPTokenizer

    model = CLIPModel.from_pretrained(str(clip_dir), local_files_only=True).eval()
    content = make_extractor("content", "clip", clip_model=clip_dir)
    vector = content(rectangle)
    assert vector.shape == (8,) and abs(np.linalg.norm(vector) - 1) < 1e-5
    pixels = content.clip.processor()(images=[rectangle], return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 32, 32)
    with torch.no_grad():
        out = model.get_image_features(pixel_values=pixels)
    direct = getattr(out, "pooler_output", out)[0].numpy()
    assert np.allclose(vector, direct / np.linalg.norm(direct), atol=1e-5)

    texts = embed_text(["farmland", "city building", ""], "clip", clip_model=clip_dir)
    assert texts.shape == (3, 8) and not texts[2].any()
    assert np.abs(texts[0] - texts[1]).max() > 1e-3  # different words, different vectors
    tokens = CLIPTokenizer.from_pretrained(str(clip_dir))(["farmland"], return_tensors="pt")
    with torch.no_grad():
        out = model.get_text_features(**tokens)
    direct = getattr(out, "pooler_output", out)[0].numpy()
    assert np.allclose(texts[0], direct / np.linalg.norm(direct), atol=1e-5)


def test_clip_directory_missing_fails_clearly(tmp_path):
    with pytest.raises(InputError, match="--clip-model"):
        make_extractor("content", "clip", clip_model=tmp_path / "nowhere")
