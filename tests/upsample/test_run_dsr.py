"""upsample run --dsr --rgan (hsigene Fig. 4): LR HSI → RGB bands → DSRNet → HR RGB → RGAN → HR HSI.
The result does not depend on --tile, is recorded as DSR-guided, differs from the bicubic-guided
run, feeds train-ae; inconsistent models and options are refused before anything is written."""

from __future__ import annotations

import numpy as np
import rasterio

from stages.artifacts import open_artifact


def _cube(path):
    with rasterio.open(path / "cube.tif") as src:
        return src.read().astype(np.float64)


def test_dsr_guided_run_is_tile_independent_and_feeds_train_ae(cli, strip_dataset, tiny_dsr, tiny_rgan, tmp_path):
    tiled, whole, bicubic = (tmp_path / n for n in ("tiled", "whole", "bicubic"))
    common = ("--rgan", tiny_rgan, "--size", "16", "--stride", "16", "--val-fraction", "0.25")
    dsr = ("--dsr", tiny_dsr, "--steps", "4")
    assert cli("upsample", "run", strip_dataset, *common, *dsr, "--tile", "16", "--out", tiled)[0] == 0
    assert cli("upsample", "run", strip_dataset, *common, *dsr, "--tile", "512", "--out", whole)[0] == 0
    a, b = _cube(tiled), _cube(whole)
    assert a.shape == b.shape == (48, 288, 48)
    manifest = open_artifact(tiled, "hsi-dataset").manifest
    upsample = manifest["source"]["upsample"]
    # tiles really see different inputs: a tile plus its context is shorter than the scene
    assert manifest["metrics"]["tiles"] == 18 and 16 + 2 * upsample["margin_lr"] < 144
    assert open_artifact(whole).metrics["tiles"] == 1
    # DSRNet's windows are fixed by the scene, so tiling changes nothing beyond RGAN's float order
    value_range = float(b.max() - b.min())
    assert np.max(np.abs(a - b)) / value_range < 1e-5
    assert manifest["metrics"]["dsr_windows_sampled"] == open_artifact(whole).metrics["dsr_windows_sampled"] == 18
    assert upsample["guide"] == "dsr"
    details = upsample["guide_details"]
    assert details["steps"] == 4 and details["sampler"] == "ddim" and details["seed"] == 0
    assert (details["window_lr"], details["overlap_lr"]) == (16, 8)
    assert manifest["config"]["dsr_steps"] == 4 and str(tiny_dsr) in {i["path"] for i in manifest["inputs"]}

    # the guidance matters: bicubic guidance gives another scene (seeds: test_dsr.py)
    assert cli("upsample", "run", strip_dataset, *common, "--tile", "512", "--out", bicubic)[0] == 0
    assert np.max(np.abs(_cube(bicubic) - b)) / value_range > 1e-3
    assert open_artifact(bicubic).manifest["source"]["upsample"]["guide"] == "bicubic"
    assert "dsr_steps" not in open_artifact(bicubic).config

    # the same command again is a no-op; the result trains an autoencoder
    code, _, err = cli("upsample", "run", strip_dataset, *common, *dsr, "--tile", "16", "--out", tiled)
    assert code == 0 and "up to date" in err
    code, _, err = cli(
        "train-ae", "run", tiled, "--steps", "2", "--batch-size", "2", "--crop", "16", "--out", tmp_path / "ae"
    )
    assert code == 0, err
    assert open_artifact(tmp_path / "ae", "autoencoder").manifest["inputs"][0]["path"] == str(tiled)


def _nothing_written(path):
    return not path.exists() and not list(path.parent.glob(f".hsigen-tmp-{path.name}-*"))


def test_dsr_run_bad_input_exits_1_and_writes_nothing(
    cli, small_lr_dataset, tiny_dsr, tiny_dsr_x4, tiny_rgan, tmp_path
):
    out = tmp_path / "bad"
    scene = small_lr_dataset
    cases = [
        (("--dsr", tiny_dsr_x4, "--rgan", tiny_rgan), "super-resolves ×4 but the RGAN is ×2"),
        (("--dsr", tiny_dsr, "--rgan", tiny_rgan, "--scale", "4"), "trained for ×2"),
        (("--dsr", tiny_rgan, "--rgan", tiny_rgan), "rgan sr-model"),
        (("--dsr", scene, "--rgan", tiny_rgan), "sr-model"),
        (("--dsr", tiny_dsr, "--method", "bicubic", "--scale", "2"), "--dsr makes the HR RGB"),
        (("--dsr", tiny_dsr, "--rgan", tiny_rgan, "--guide", "zero"), "drop one of them"),
        (("--rgan", tiny_rgan, "--steps", "4"), "only apply to DSRNet guidance"),
        (("--dsr", tiny_dsr, "--rgan", tiny_rgan, "--steps", "5000"), "choose 1..1000"),
        (("--dsr", tiny_dsr, "--rgan", tiny_rgan, "--dsr-window", "6"), "multiples of 4"),
    ]
    for args, message in cases:
        code, _, err = cli("upsample", "run", scene, *args, "--size", "16", "--out", out)
        assert code == 1, (args, err)
        assert message in err, (args, err)
        assert _nothing_written(out)
    # An unknown sampler is a usage error (exit 2) that lists the samplers.
    code, _, err = cli(
        "upsample",
        "run",
        scene,
        "--dsr",
        tiny_dsr,
        "--rgan",
        tiny_rgan,
        "--sampler",
        "euler",
        "--size",
        "16",
        "--out",
        out,
    )
    assert code == 2 and "'euler' is not one of 'ddim', 'ddpm', 'dpm'" in err and _nothing_written(out)
