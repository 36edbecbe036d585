"""The full-size HSIGene architecture against the released checkpoint's layout (meta device:
nothing is allocated)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

REFERENCE = Path(__file__).with_name("released_keys.json")

# issue 16: the released model built with its own code from configs/inference.yaml (9f893a7).
PREFIX_COUNTS = {
    "model.diffusion_model.": 859_520_964,
    "local_adapter.": 419_462_288,
    "global_content_adapter.": 47_213_568,
    "global_text_adapter.": 28_333_824,
    "metadata_emb.": 2_876_160,
    "first_stage_model.": 23_126_424,
    "cond_stage_model.": 123_060_480,
}
TOTAL = 1_503_593_708


@pytest.fixture(scope="module")
def full():
    from stages.hsigene import build_model

    return build_model(device="meta")


def test_parameter_counts_per_prefix_and_total(full):
    from stages.hsigene import prefix_counts

    assert prefix_counts(full) == PREFIX_COUNTS
    assert sum(p.numel() for p in full.parameters()) == TOTAL  # ≈1.5 B with CLIP (paper: a foundation model)


def test_keys_and_shapes_match_the_public_definition(full):
    from stages.hsigene.checkpoint import to_released_names

    doc = json.loads(REFERENCE.read_text())
    assert doc["provenance"]["commit"] == "9f893a7"
    reference = doc["keys"]
    assert len(reference) == 1738
    ours = {k: list(v.shape) for k, v in to_released_names(full.state_dict(), full).items()}
    optional = set(doc["optional"])
    assert set(ours) - set(reference) == set()
    assert set(reference) - set(ours) <= optional
    assert len(ours) in (1737, 1738)
    assert {k: reference[k] for k in ours} == ours
    buffers = [k for k in reference if "." not in k]
    assert len(buffers) == 13 and all(reference[k] == [1000] for k in buffers)
    params = sum(math.prod(s) for k, s in reference.items() if "." in k and k not in optional)
    assert params == TOTAL


def test_injection_blocks_have_no_input_norms(full):
    sd = full.state_dict()
    for i in (1, 4, 7, 10):
        assert f"local_adapter.input_blocks.{i}.0.norm_in.fdn.conv_gamma.weight" in sd
        assert not any(k.startswith(f"local_adapter.input_blocks.{i}.0.in_layers.0") for k in sd)
        assert not any(k.startswith(f"local_adapter.input_blocks.{i}.0.out_layers.0") for k in sd)
    assert "local_adapter.input_blocks.2.0.in_layers.0.weight" in sd


def test_schedule_buffers_are_the_ldm_linear_schedule():
    import numpy as np

    from stages.hsigene import HSIGeneConfig
    from stages.hsigene.model import schedule_arrays

    s = schedule_arrays(HSIGeneConfig())
    assert len(s) == 13
    assert s["betas"][0] == pytest.approx(1e-4) and s["betas"][-1] == pytest.approx(0.02)
    # √β linear from 1e-2 to √0.02: ᾱ_T = 7.334e-4 (a plain linear β schedule would give 4.0e-5).
    assert s["alphas_cumprod"][-1] == pytest.approx(7.334e-4, rel=1e-3)
    assert np.allclose(s["sqrt_alphas_cumprod"] ** 2, s["alphas_cumprod"])


def test_tiny_forward_shapes():
    import torch

    from stages.hsigene import HSIGeneConfig, build_model

    cfg = HSIGeneConfig.tiny()
    m = build_model(cfg).eval()
    x = torch.randn(2, 4, 8, 8)
    ctx = m.context(torch.randn(2, 77, cfg.context_dim), torch.randn(2, cfg.content_dim))
    assert ctx.shape == (2, 81, cfg.context_dim)
    feats = m.local_adapter.feature_extractor(torch.rand(2, 18, 64, 64))
    assert [f.shape[-1] for f in feats] == [8, 4, 2, 1]
    meta = m.metadata_emb(torch.zeros(2, 7))
    eps = m.denoise(x, torch.tensor([10, 500]), ctx, feats, meta)
    assert eps.shape == x.shape
    assert m.first_stage_model.decode(torch.randn(1, 4, 8, 8)).shape == (1, 48, 32, 32)
