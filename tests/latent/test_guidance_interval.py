"""Guidance in a limited interval (``--guidance-interval LO:HI``; Kynkäänniemi et al., NeurIPS 2024):
steps outside it make one conditional pass, so an interval that holds no step gives exactly the
samples of guidance 1, ``all`` exactly those of guidance at every step; the latent defaults
(guidance 2.5 at 300:999) are recorded in the manifest; bad intervals exit 1 and write nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_condition_following import conditioned

from stages.diffusion.generator import Conditions


def test_guidance_at_applies_the_scale_inside_the_interval_only():
    everywhere = Conditions(1, guidance=2.0)
    limited = Conditions(1, guidance=2.0, guidance_interval=(400, 999))
    assert [everywhere.guidance_at(t) for t in (0, 399, 400, 999)] == [2.0, 2.0, 2.0, 2.0]
    assert [limited.guidance_at(t) for t in (0, 399, 400, 981, 999)] == [1.0, 1.0, 2.0, 2.0, 2.0]


def _samples(model, val, interval, guidance=2.0):
    from stages.sampling import generate

    cond = conditioned(model, val, ["seg", "hed"], 3)
    cond.guidance = guidance  # prepared conditions carry the scale; generate's own argument is then unused
    hsi, _, cond = generate(
        model,
        None,
        3,
        32,
        "ddim",
        8,
        5,
        3,
        guidance,
        "cpu",
        conditions=cond,
        guidance_interval=interval,
    )
    return hsi, cond


def test_interval_outside_every_step_is_guidance_1_and_all_is_guidance_everywhere(latent_model, val_conditions):
    from stages.diffusion.model import load_model

    model = load_model(latent_model)
    none_guided, cond = _samples(model, val_conditions, (5000, 6000))
    assert cond.guidance_interval == (5000, 999)  # clipped to the schedule
    unguided, _ = _samples(model, val_conditions, "all", guidance=1.0)
    assert np.array_equal(none_guided, unguided)
    everywhere, cond = _samples(model, val_conditions, "all")
    assert cond.recorded["guidance_interval"] == [0, 999]
    default, cond = _samples(model, val_conditions, None)
    assert cond.guidance_interval == (300, 999) and cond.recorded["guidance_interval"] == [300, 999]
    explicit, _ = _samples(model, val_conditions, "300:999")
    assert np.array_equal(default, explicit)
    # DDIM 8 steps visit t = 999, 874, …, 124: the default guides 6 of them, so it lies between both
    assert not np.array_equal(default, everywhere) and not np.array_equal(default, unguided)


def test_sample_records_the_interval(cli, latent_model, val_conditions, tmp_path):
    from test_cli_latent import _write_map

    seg = _write_map(tmp_path / "seg.png", val_conditions["seg"][0])
    out = tmp_path / "s"
    code, _, stderr = cli(
        "sample", "--ckpt", latent_model, "--cond", seg, "-n", "1", "--steps", "3",
        "--guidance-interval", "200:800", "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config["guidance"] == 2.5 and config["guidance_interval"] == [200, 800]  # the latent defaults


@pytest.mark.parametrize(
    "interval, message",
    [
        ("9:3", "--guidance-interval 9:3: give LO:HI with 0 <= LO <= HI"),
        ("-5:100", "--guidance-interval -5:100: give LO:HI with 0 <= LO <= HI"),
        ("400", "--guidance-interval '400': give LO:HI timesteps"),
        ("a:b", "--guidance-interval 'a:b': give LO:HI timesteps"),
    ],
)
def test_bad_interval_exits_1_and_writes_nothing(cli, latent_model, tmp_path, interval, message):
    out = tmp_path / "s"
    code, _, stderr = cli("sample", "--ckpt", latent_model, "-n", "1", "--guidance-interval", interval, "--out", out)
    assert code == 1 and message in stderr, stderr
    assert not out.exists() and not list(tmp_path.glob("*.work"))
