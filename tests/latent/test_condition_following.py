"""Composable control works: samples under a held-out patch's seg map agree with that map
(adjusted Rand index between the map's regions and the same extractor run on the sample)
clearly better than unconditional samples do; same seed and inputs give bit-identical samples."""

from __future__ import annotations

import numpy as np

GUIDANCE, STEPS = 2.0, 25


def conditioned(model, val, kinds, n):
    from stages.sampling.generation import open_generator

    cond = open_generator(model).prepare(None, n, 32, GUIDANCE)
    cond.state = cond.state.with_local_maps(n, {kind: val[kind][:n] for kind in kinds})
    return cond


def agreement(model, val, kinds, n=12, seed=0):
    """(seg ARI, hed edge correlation with each sample's own patch map, the same against another
    patch's map) of n samples under the maps of n held-out patches (stages.evaluate.condition_agreement)."""
    from stages.diffusion.spaces.latent import rgb_of_hsi
    from stages.evaluate.condition_agreement import agreement as measure
    from stages.sampling import generate

    hsi, _, _ = generate(
        model, None, n, 32, "ddim", STEPS, seed, 16, GUIDANCE, "cpu", conditions=conditioned(model, val, kinds, n)
    )
    rgb = rgb_of_hsi(hsi, model.artifact.spectral["wavelengths_nm"], model.config["rgb"])
    m = measure(rgb, val["seg"][:n], val["hed"][:n], shift=3)
    return m["seg_ari"], m["hed_corr"], m["hed_corr_other"]


def test_seg_condition_is_followed_better_than_unconditional(latent_model, val_conditions):
    from stages.diffusion.model import load_model

    model = load_model(latent_model)
    assert model.config["conditions"]["local"] == ["hed", "seg"]
    results = {
        name: agreement(model, val_conditions, kinds)
        for name, kinds in (("unconditional", []), ("hed", ["hed"]), ("seg", ["seg"]), ("seg+hed", ["seg", "hed"]))
    }
    print(
        f"\nagreement with 12 held-out patches (DDIM {STEPS}, guidance {GUIDANCE}): "
        "ARI(seg map, seg of sample) / corr(hed of sample, hed of patch) / same vs another patch"
    )
    for name, (ari, corr, other) in results.items():
        print(f"  {name:>13}: ARI {ari:.3f}  edge corr {corr:.3f}  (another patch {other:.3f})")
    uncond, seg, both = results["unconditional"], results["seg"], results["seg+hed"]
    # ARI with this model (x0-prediction on standardised latents, the tiny preset since issue 14),
    # sampling seed 0: unconditional 0.235, seg 0.381, seg + hed 0.362 (the ε-prediction preset
    # before: seg 0.269-0.289, seg + hed 0.278-0.310, with seg + hed ahead of seg by 0.009-0.021;
    # now seg alone is followed better than both were, and adding hed, which 300 steps do not
    # teach the model to follow, costs 0.02).
    assert seg[0] > uncond[0] + 0.08  # regions of the map reappear in the sample
    assert seg[1] > uncond[1] + 0.2  # and so do its boundaries
    assert seg[1] > seg[2] + 0.2  # …those of this patch, not of any patch
    assert both[1] > uncond[1] + 0.2  # composable: adding hed keeps seg's control
    assert both[0] > uncond[0] + 0.08


def test_same_seed_and_inputs_give_bit_identical_samples(latent_model, val_conditions):
    from stages.diffusion.model import load_model
    from stages.sampling import generate

    model = load_model(latent_model)
    runs = [
        generate(
            model,
            None,
            3,
            32,
            sampler,
            6,
            7,
            2,
            GUIDANCE,
            "cpu",
            conditions=conditioned(model, val_conditions, ["hed"], 3),
        )[0]
        for sampler in ("ddpm", "ddpm", "dpm")
    ]
    assert runs[0].shape == (3, 48, 32, 32) and np.isfinite(runs[0]).all()
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    other_seed = generate(
        model, None, 3, 32, "ddpm", 6, 8, 2, GUIDANCE, "cpu", conditions=conditioned(model, val_conditions, ["hed"], 3)
    )[0]
    assert not np.allclose(runs[0], other_seed)
