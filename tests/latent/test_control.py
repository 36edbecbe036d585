"""The conditional denoiser's pieces: condition slots, dropout statistics, guidance, SSIM loss,
the HyperLDM schedule, and parameter counts of the presets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stages.diffusion.control import (
    CONDITION_KINDS,
    CONTROL_CHANNELS,
    LOCAL_SLOTS,
    ConditionBatch,
    ControlledDenoiser,
    control_input,
    drop_conditions,
    guided_noise,
)
from stages.diffusion.spaces.latent import HYPERLDM_SCHEDULE, PRESETS


def test_local_maps_have_fixed_slots_and_presence_planes():
    maps = torch.rand(2, 6, 8, 8)
    keep = torch.tensor([[1, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=torch.float32)
    x = control_input(maps, keep)
    assert x.shape == (2, CONTROL_CHANNELS, 8, 8) == (2, 10, 8, 8)
    assert torch.equal(x[0, LOCAL_SLOTS["hed"]], maps[0, LOCAL_SLOTS["hed"]])
    assert torch.equal(x[0, LOCAL_SLOTS["seg"]], maps[0, LOCAL_SLOTS["seg"]])
    assert x[0, LOCAL_SLOTS["mlsd"]].abs().sum() == 0 and x[1, :6].abs().sum() == 0
    assert torch.equal(x[0, 6:, 0, 0], torch.tensor([1.0, 0, 0, 1]))  # presence of hed, mlsd, sketch, seg


def test_condition_dropout_rates():
    g = torch.Generator().manual_seed(0)
    available = torch.tensor([True, False, False, True, True, False])
    keep = drop_conditions(available, 40_000, p=0.3, p_all=0.1, generator=g).numpy()
    assert keep[:, ~available.numpy()].sum() == 0  # never an unavailable kind
    # each available kind: kept with probability (1 − p)(1 − p_all) = 0.63
    assert np.allclose(keep[:, available.numpy()].mean(axis=0), 0.63, atol=0.01)
    # none kept: p_all + (1 − p_all)·p³ = 0.1243; every subset appears (composable control)
    assert abs((keep.sum(axis=1) == 0).mean() - (0.1 + 0.9 * 0.3**3)) < 0.01
    assert len({tuple(r) for r in keep}) == 2**3


def _small_model(**kw):
    torch.manual_seed(0)
    return ControlledDenoiser.build(PRESETS["tiny"].to_dict(), 4, 8, 4, {"content": 5}, **kw).eval()


def test_guidance_combines_conditional_and_unconditional_predictions():
    model = _small_model(rgb_condition=False)
    for p in model.parameters():  # zero convolutions would hide the control at init
        p.data.add_(torch.randn_like(p) * 0.01)
    x, t = torch.randn(2, 4, 8, 8), torch.tensor(500)
    keep = torch.zeros(2, 6)
    keep[:, CONDITION_KINDS.index("seg")] = 1
    cond = ConditionBatch(torch.rand(2, 6, 32, 32), keep, {"content": torch.randn(2, 5)})
    with torch.no_grad():
        eps_c = model(x, t, cond)
        eps_u = model(x, t, cond.with_keep(torch.zeros_like(keep)))
        guided = guided_noise(model, x, t, cond, 3.0)
        unguided = guided_noise(model, x, t, cond.with_keep(torch.zeros_like(keep)), 3.0)
    assert not torch.allclose(eps_c, eps_u)
    assert torch.allclose(guided, eps_u + 3.0 * (eps_c - eps_u), atol=1e-5)
    assert torch.allclose(unguided, eps_u, atol=1e-6)  # nothing given: unconditional


def test_absent_global_condition_ignores_its_embedding():
    model = _small_model(rgb_condition=False)
    keep = torch.zeros(1, 6)
    a = ConditionBatch(torch.zeros(1, 6, 32, 32), keep, {"content": torch.randn(1, 5)})
    b = ConditionBatch(torch.zeros(1, 6, 32, 32), keep, {"content": torch.randn(1, 5)})
    assert torch.equal(model.tokens(a, torch.float32), model.tokens(b, torch.float32))
    keep_c = keep.clone()
    keep_c[0, CONDITION_KINDS.index("content")] = 1
    given_a, given_b = a.with_keep(keep_c), b.with_keep(keep_c)
    assert not torch.equal(model.tokens(given_a, torch.float32), model.tokens(given_b, torch.float32))


def test_rgb_mode_concatenates_encoded_rgb_with_the_latent():
    model = _small_model(rgb_condition=True)
    assert model.unet.config.in_channels == 4 + PRESETS["tiny"].rgb_channels
    assert model.unet.config.out_channels == 4
    rgb = torch.rand(1, 3, 32, 32)
    assert model.rgb_encoder(rgb).shape == (1, PRESETS["tiny"].rgb_channels, 8, 8)  # latent size, f = 4


def test_hyperldm_schedule_matches_the_paper():
    from stages.diffusion.schedules import training_scheduler

    s = training_scheduler(HYPERLDM_SCHEDULE, "epsilon")
    assert s.config.num_train_timesteps == 100
    assert math.isclose(float(s.betas[0]), 0.01, rel_tol=1e-5) and math.isclose(float(s.betas[-1]), 0.2, rel_tol=1e-5)
    # hyperldm.txt §III-C.1: ᾱ_T = 1.26e-5 (recomputed here from the βs)
    assert float(s.alphas_cumprod[-1]) == pytest.approx(np.prod(1 - np.linspace(0.01, 0.2, 100)), rel=1e-4)
    assert float(s.alphas_cumprod[-1]) == pytest.approx(1.26e-5, rel=0.15)


def test_ssim_loss_is_zero_for_identical_latents_and_grows_with_noise():
    from stages.diffusion.latent_training import ssim_loss

    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.randn(4, 4, 16, 16, generator=g), 3, 1, 1)
    assert float(ssim_loss(x, x)) == pytest.approx(0.0, abs=1e-5)
    small = float(ssim_loss(x + 0.05 * torch.randn(x.shape, generator=g), x))
    large = float(ssim_loss(x + 0.5 * torch.randn(x.shape, generator=g), x))
    assert 0 < small < large


def test_paper_dry_run_reports_hsigene_scale(cli):
    import json

    # --preset paper alone is the released HSIGene architecture (tests/hsigene/test_from_scratch.py);
    # the diffusers design's paper preset stays reachable as --architecture controlnet.
    code, out, err = cli(
        "train-diffusion",
        "--space",
        "latent",
        "--preset",
        "paper",
        "--architecture",
        "controlnet",
        "--dry-run",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    # Stable Diffusion 1.5's UNet (859,520,964 parameters) and its ControlNet copy
    assert report["parameters"] == {
        "unet": 859_520_964,
        "controlnet": 360_514_848,
        "condition_adapters": 56_064,
        "total": 1_220_091_876,
    }
    assert report["latent_channels"] == 4 and report["downsampling_factor"] == 4
    code, out, _ = cli("train-diffusion", "--space", "latent", "--preset", "tiny", "--dry-run", "--json")
    # issue 14: the first level 96 wide (was 1,266,004), then 128 (96: 2,893,908)
    assert code == 0 and json.loads(out)["parameters"]["total"] == 4_202_452


def test_condition_kind_from_file_name():
    from stages.common.errors import ConfigError
    from stages.diffusion.control import LOCAL_KINDS
    from stages.diffusion.spaces.latent_conditions import kind_of

    assert kind_of("maps/hed.png", LOCAL_KINDS)[0] == "hed"
    assert kind_of("field_seg_03.png", LOCAL_KINDS)[0] == "seg"
    assert kind_of("runs/cond/sketch/000070.png", LOCAL_KINDS)[0] == "sketch"  # a conditions artifact's folder
    assert kind_of("seg=edges.png", LOCAL_KINDS) == ("seg", __import__("pathlib").Path("edges.png"))
    for bad in ("edges.png", "depth=x.png"):
        with pytest.raises(ConfigError):
            kind_of(bad, LOCAL_KINDS)
