"""The common protocol: determinism per seed, the paired verdict, and bad input (exit 1, one
message naming the fix, nothing written)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from downstream_helpers import write_raw_samples

from stages.downstream.report import paired_verdict


def test_paired_verdict():
    assert paired_verdict([20.0, 21.0, 22.0], [21.0, 22.1, 23.0], True)["verdict"] == "helps"
    assert paired_verdict([20.0, 21.0, 22.0], [19.0, 20.1, 21.0], True)["verdict"] == "does not help"
    # Lower is better (SAM, ERGAS): a consistent drop helps.
    assert paired_verdict([3.0, 3.2, 3.1], [2.5, 2.71, 2.6], False)["verdict"] == "helps"
    noisy = paired_verdict([20.0, 21.0, 22.0], [21.0, 20.0, 22.5], True)
    assert noisy["verdict"] == "within noise" and noisy["p_value"] > 0.05
    assert noisy["mean_delta"] == pytest.approx(0.5 / 3)
    assert paired_verdict([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], True)["verdict"] == "within noise"


@pytest.mark.parametrize("task", ["denoise", "sr", "segment", "change", "scene-classify"])
def test_same_seed_same_model(task, ip_dataset, pair_dataset):
    """Two trainings with one seed give identical weights and scores; another seed differs."""
    import torch

    from stages.downstream import DownstreamConfig, patch_task
    from stages.downstream.data import Pool, open_source
    from stages.downstream.nets import band_stats
    from stages.downstream.protocol import Context, resolve_hyper, train_model

    real = pair_dataset if task == "change" else ip_dataset
    t = patch_task(task)
    cfg = DownstreamConfig(task=task, steps=5, device="cpu")
    train, val = open_source(real, "--real", "train"), open_source(real, "--real", "val")
    ctx = Context(48, cfg, resolve_hyper(t, cfg), torch.device("cpu"))
    ctx.band_mean, ctx.band_std = band_stats(train)
    t.setup(ctx, train, val)
    scratch = Path(".downstream-test-scratch")
    a, b, c = (train_model(t, Pool([train]), ctx, seed, scratch) for seed in (0, 0, 1))
    for (name, wa), wb, _wc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(wa, wb), name
    assert any(
        not torch.equal(wa, wc)
        for wa, wc in zip(a.state_dict().values(), c.state_dict().values())
        if wa.dtype.is_floating_point
    )
    assert t.evaluate(a, val, ctx, 0) == t.evaluate(b, val, ctx, 0)
    assert not scratch.with_name(scratch.name + ".work").exists()


def _expect_failure(cli, tmp_path, message, *args):
    out = tmp_path / "never"
    code, stdout, stderr = cli("evaluate", "downstream", *args, "--steps", "2", "--out", out)
    assert code == 1, stderr
    assert message in stderr and stdout == ""
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".hsigen-tmp", ".never"))]


def test_bad_inputs_exit_1_and_write_nothing(
    cli, ip_dataset, pair_dataset, unlabelled_samples, labelled_samples, tmp_path
):
    wl = np.linspace(400, 1000, 48)
    other_grid = write_raw_samples(tmp_path / "other-grid", np.ones((2, 40, 32, 32)), np.linspace(400, 1000, 40))
    bad_pair = write_raw_samples(
        tmp_path / "bad-pair",
        np.ones((2, 48, 32, 32)),
        wl,
        hsi_t2=np.ones((2, 48, 16, 16), np.float32),
        labels=np.zeros((2, 32, 32), np.int32),
    )
    # a labelled task with unlabelled samples
    _expect_failure(
        cli, tmp_path, "has no labels", "--task", "segment", "--real", ip_dataset, "--synthetic", unlabelled_samples
    )
    _expect_failure(
        cli,
        tmp_path,
        "has no labels",
        "--task",
        "scene-classify",
        "--real",
        ip_dataset,
        "--synthetic",
        unlabelled_samples,
    )
    # mismatched band grids
    _expect_failure(
        cli, tmp_path, "another wavelength grid", "--task", "denoise", "--real", ip_dataset, "--synthetic", other_grid
    )
    # t1 / t2 of different shapes, and a change task without t2 images
    _expect_failure(
        cli,
        tmp_path,
        "do not have the shape of the t1 images",
        "--task",
        "change",
        "--real",
        pair_dataset,
        "--synthetic",
        bad_pair,
    )
    _expect_failure(
        cli, tmp_path, "has no t2 images", "--task", "change", "--real", ip_dataset, "--synthetic", labelled_samples
    )
    _expect_failure(
        cli, tmp_path, "has no t2 images", "--task", "change", "--real", pair_dataset, "--synthetic", labelled_samples
    )
    # options
    _expect_failure(
        cli,
        tmp_path,
        "at least 3",
        "--task",
        "denoise",
        "--real",
        ip_dataset,
        "--synthetic",
        unlabelled_samples,
        "--seeds",
        "0,1",
    )
    _expect_failure(
        cli,
        tmp_path,
        "--scale 3",
        "--task",
        "sr",
        "--real",
        ip_dataset,
        "--synthetic",
        unlabelled_samples,
        "--scale",
        "3",
    )
    _expect_failure(
        cli,
        tmp_path,
        "smaller than --crop 64",
        "--task",
        "denoise",
        "--real",
        ip_dataset,
        "--synthetic",
        unlabelled_samples,
        "--crop",
        "64",
    )
    _expect_failure(
        cli,
        tmp_path,
        "raise --synthetic-ratio",
        "--task",
        "denoise",
        "--real",
        ip_dataset,
        "--synthetic",
        unlabelled_samples,
        "--synthetic-ratio",
        "0",
    )
    code, _, stderr = cli(
        "evaluate",
        "downstream",
        "--task",
        "nope",
        "--real",
        ip_dataset,
        "--synthetic",
        unlabelled_samples,
        "--out",
        tmp_path / "never",
    )
    assert code == 2 and "denoise" in stderr and not (tmp_path / "never").exists()
