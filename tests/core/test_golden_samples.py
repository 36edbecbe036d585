"""Same seed → the same sample bytes as recorded in tests/data/golden_samples.json (written by
tests/core/golden_samples.py before the sampling code was refactored), for every model kind
and every sampler it supported then."""

from __future__ import annotations

import json

import pytest
from golden_samples import GOLDEN_FILE, build_models, draw_all, sample_values, values_match, weight_digests


@pytest.fixture(scope="module")
def golden_models(ip_dataset, tmp_path_factory):
    from stages.common.runtime import torch_threads

    work = tmp_path_factory.mktemp("golden")
    with torch_threads(1):
        return build_models(ip_dataset, work), work


def test_sampling_reproduces_golden_bytes(golden_models):
    from stages.common.runtime import torch_threads

    models, work = golden_models
    recorded = json.loads(GOLDEN_FILE.read_text())
    for name, path in models.items():
        # Distinguish "the models changed" from "sampling changed" before comparing samples.
        assert weight_digests(path) == recorded["weights"][name], (
            f"the frozen micro {name} model's weights differ from the recorded ones: model construction "
            "changed, not sampling"
        )
    with torch_threads(1):
        drawn = draw_all(models, work)
    mismatched = {
        case: sorted(k for k in recorded["samples"][case] if drawn[case].get(k) != recorded["samples"][case][k])
        for case in recorded["samples"]
    }
    mismatched = {case: names for case, names in mismatched.items() if names}
    # Bytes differ on another kind of CPU (its kernels round differently): then the values must
    # still agree to rounding with the fingerprints recorded beside the digests.
    not_rounding = {}
    for case, names in mismatched.items():
        values = sample_values(work / "samples" / case.replace("/", "-"))
        bad = [k for k in names if not values_match(values[k], recorded["values"][case][k])]
        if bad:
            not_rounding[case] = bad
    assert not not_rounding, f"sample arrays differ from the golden samples beyond rounding: {not_rounding}"
    assert set(drawn) == set(recorded["samples"])


def test_every_sampler_runs_on_every_generator(golden_models):
    """dpm was latent-only before the one scheduler factory; now abundance and joint take it too,
    reproducibly, and it differs from ddim."""
    import h5py

    from stages import sampling
    from stages.common.runtime import torch_threads
    from stages.diffusion import SAMPLERS

    models, work = golden_models
    assert SAMPLERS == ("ddim", "ddpm", "dpm")
    with torch_threads(1):
        drawn = draw_all(models, work / "dpm", {"abundance": ("dpm", "ddim"), "joint": ("dpm",)})
        again = draw_all(models, work / "dpm-again", {"abundance": ("dpm",), "joint": ("dpm",)})
    assert drawn["abundance/dpm"] == again["abundance/dpm"] and drawn["joint/dpm"] == again["joint/dpm"]
    assert drawn["abundance/dpm"]["hsi"] != drawn["abundance/ddim"]["hsi"]
    with h5py.File(work / "dpm" / "samples" / "abundance-dpm" / "samples.h5", "r") as h5:
        abundances = h5["abundances"][...]
    assert abundances.shape[:2] == (3, 4) and abs(abundances.sum(axis=1) - 1).max() < 1e-5
    manifest = json.loads((work / "dpm" / "samples" / "joint-dpm" / "manifest.json").read_text())
    assert manifest["config"]["sampler"] == "dpm" and manifest["config"]["steps"] == 4
    assert sampling.SampleConfig().sampler == "ddim"
