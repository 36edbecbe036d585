"""upsample run: seamless tiling, spectral fidelity, the hsi-dataset it writes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from stages.artifacts import open_artifact
from stages.artifacts.datasets import load_patches
from stages.upsample.metrics import nearest_spectrum_angle
from stages.upsample.tiling import plan_tiles


def _cube(path):
    with rasterio.open(path / "cube.tif") as src:
        return src.read().astype(np.float64), src.descriptions


def test_tile_plan_covers_the_scene_once():
    for height, width, tile, margin, align in [(40, 36, 16, 30, 4), (145, 145, 48, 32, 4), (7, 5, 3, 0, 1)]:
        hits = np.zeros((height, width), int)
        for t in plan_tiles(height, width, tile, margin, align):
            r0, r1, c0, c1 = t.core
            R0, R1, C0, C1 = t.read
            hits[r0:r1, c0:c1] += 1
            assert R0 <= r0 and r1 <= R1 and C0 <= c0 and c1 <= C1
            assert r0 % align == 0 and c0 % align == 0 and R0 % align == 0 and C0 % align == 0
            assert R0 == 0 or r0 - R0 >= margin
            assert C0 == 0 or c0 - C0 >= margin
        assert np.all(hits == 1)


def test_tiled_run_equals_untiled_run(cli, small_lr_dataset, tiny_rgan, tmp_path):
    tiled, whole = tmp_path / "tiled", tmp_path / "whole"
    assert (
        cli(
            "upsample",
            "run",
            small_lr_dataset,
            "--rgan",
            tiny_rgan,
            "--tile",
            "24",
            "--size",
            "32",
            "--stride",
            "16",
            "--out",
            tiled,
        )[0]
        == 0
    )
    assert (
        cli(
            "upsample",
            "run",
            small_lr_dataset,
            "--rgan",
            tiny_rgan,
            "--tile",
            "512",
            "--size",
            "32",
            "--stride",
            "16",
            "--out",
            whole,
        )[0]
        == 0
    )
    a, _ = _cube(tiled)
    b, _ = _cube(whole)
    assert a.shape == b.shape == (48, 200, 72)
    manifest = open_artifact(tiled).manifest
    assert manifest["metrics"]["tiles"] == 10 and open_artifact(whole).metrics["tiles"] == 1
    # the scene is taller than a tile with its context, so tiles really see different inputs
    assert 24 + 2 * manifest["source"]["upsample"]["margin_lr"] < 100
    value_range = float(np.nanmax(b) - np.nanmin(b))
    assert np.max(np.abs(a - b)) / value_range < 1e-5
    # the network did something: the result is not the bicubic baseline
    bic = tmp_path / "bicubic"
    assert (
        cli(
            "upsample",
            "run",
            small_lr_dataset,
            "--method",
            "bicubic",
            "--scale",
            "2",
            "--tile",
            "8",
            "--size",
            "32",
            "--stride",
            "16",
            "--out",
            bic,
        )[0]
        == 0
    )
    c, _ = _cube(bic)
    assert np.max(np.abs(c - b)) / value_range > 1e-3


def test_bicubic_tiles_equal_whole_scene_bicubic(cli, small_lr_dataset, tmp_path):
    import torch

    out = tmp_path / "bic"
    assert (
        cli(
            "upsample",
            "run",
            small_lr_dataset,
            "--method",
            "bicubic",
            "--scale",
            "4",
            "--tile",
            "12",
            "--size",
            "32",
            "--stride",
            "32",
            "--out",
            out,
        )[0]
        == 0
    )
    lr, _ = _cube(small_lr_dataset)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(lr)[None], scale_factor=4, mode="bicubic", align_corners=False
    )[0].numpy()
    got, _ = _cube(out)
    assert np.max(np.abs(got - expected)) < 1e-6 * float(lr.max())


def test_super_resolved_spectra_follow_the_real_scene_at_least_as_well_as_bicubic(
    cli, degraded_val_scene, tiny_rgan, tmp_path
):
    """sPr/sRec (hsigene eq. 8, stages.evaluate.manifold) of each ×2 result of the degraded
    held-out rows against the real HR spectra of those rows: RGAN (guided by the bicubic RGB
    bands, as `upsample run` is without DSRNet) >= bicubic on both."""
    from stages.evaluate.manifold import precision_recall

    lr_dataset, truth = degraded_val_scene
    sr, bic = tmp_path / "sr", tmp_path / "bic"
    assert cli("upsample", "run", lr_dataset, "--rgan", tiny_rgan, "--size", "32", "--out", sr)[0] == 0
    assert (
        cli("upsample", "run", lr_dataset, "--method", "bicubic", "--scale", "2", "--size", "32", "--out", bic)[0] == 0
    )
    real = truth.reshape(48, -1).T
    results = {}
    for name, path in (("rgan", sr), ("bicubic", bic)):
        cube, _ = _cube(path)
        assert cube.shape == truth.shape
        results[name] = precision_recall(real, cube.reshape(48, -1).T, k=10)
    assert results["rgan"].precision >= results["bicubic"].precision
    assert results["rgan"].recall >= results["bicubic"].recall
    # nearest-spectrum angle to the real spectra agrees
    pick = np.random.default_rng(0).choice(real.shape[0], 3000, replace=False)
    angles = {
        name: nearest_spectrum_angle(_cube(path)[0].reshape(48, -1).T[pick], real)
        for name, path in (("rgan", sr), ("bicubic", bic))
    }
    assert angles["rgan"] <= angles["bicubic"]


def test_run_writes_an_hsi_dataset_that_training_stages_read(cli, small_lr_dataset, tiny_rgan, tmp_path):
    out = tmp_path / "sr"
    assert (
        cli(
            "upsample",
            "run",
            small_lr_dataset,
            "--rgan",
            tiny_rgan,
            "--size",
            "16",
            "--stride",
            "8",
            "--val-fraction",
            "0.25",
            "--out",
            out,
        )[0]
        == 0
    )
    hr, descriptions = _cube(out)
    assert hr.shape == (48, 200, 72)
    assert descriptions[0] == "400.0 nm" and descriptions[-1] == "1000.0 nm"
    artifact = open_artifact(out, "hsi-dataset")
    patches = load_patches(out, "train")
    assert patches.hsi.shape[1:] == (48, 16, 16) and len(patches.hsi) > 0
    assert len(load_patches(out, "val").hsi) > 0
    assert np.allclose(patches.wavelengths_nm, open_artifact(small_lr_dataset).spectral["wavelengths_nm"])
    phys = patches.physical()
    for i in (0, len(phys) - 1):
        r, c = patches.origin[i]
        assert np.allclose(phys[i], hr[:, r : r + 16, c : c + 16], rtol=1e-5, atol=1e-2)
    assert 0.0 <= patches.hsi.min() and patches.hsi.max() <= 1.0
    assert artifact.manifest["source"]["upsample"]["method"] == "rgan"
    assert artifact.has("preview.png")
    # rerunning the same command is a no-op
    code, _, err = cli(
        "upsample",
        "run",
        small_lr_dataset,
        "--rgan",
        tiny_rgan,
        "--size",
        "16",
        "--stride",
        "8",
        "--val-fraction",
        "0.25",
        "--out",
        out,
    )
    assert code == 0 and "up to date" in err


def _nothing_written(path):
    return not path.exists() and not list(path.parent.glob(f".hsigen-tmp-{path.name}-*"))


def test_run_bad_input_exits_1_and_writes_nothing(cli, ip_dataset, small_lr_dataset, tiny_rgan, tmp_path):
    out = tmp_path / "bad"
    cases = [
        (("upsample", "run", tiny_rgan, "--method", "bicubic", "--scale", "2"), "hsi-dataset"),
        (("upsample", "run", ip_dataset, "--rgan", ip_dataset), "sr-model"),
        (("upsample", "run", ip_dataset, "--method", "bicubic", "--scale", "3"), "--scale 2 or --scale 4"),
        (("upsample", "run", ip_dataset, "--rgan", tiny_rgan, "--scale", "4"), "trained for ×2"),
        (("upsample", "run", ip_dataset, "--method", "bicubic"), "needs --scale"),
        (("upsample", "run", ip_dataset), "needs --rgan"),
        (("upsample", "run", ip_dataset, "--rgan", tiny_rgan, "--guide", "dsr"), "--guide"),
        (
            ("upsample", "run", small_lr_dataset, "--method", "bicubic", "--scale", "2", "--size", "100"),
            "smaller than --size 100",
        ),
        (("upsample", "run", ip_dataset, "--method", "bicubic", "--scale", "2", "--rgan", tiny_rgan), "--rgan"),
    ]
    for args, message in cases:
        code, _, err = cli(*args, "--out", out)
        assert code == 1, (args, err)
        assert message in err, (args, err)
        assert _nothing_written(out)


@pytest.mark.parametrize("guide", ["zero"])
def test_zero_guidance_run_differs_from_guided(cli, small_lr_dataset, tiny_rgan, tmp_path, guide):
    a, b = tmp_path / "guided", tmp_path / guide
    assert cli("upsample", "run", small_lr_dataset, "--rgan", tiny_rgan, "--size", "32", "--out", a)[0] == 0
    assert (
        cli("upsample", "run", small_lr_dataset, "--rgan", tiny_rgan, "--guide", guide, "--size", "32", "--out", b)[0]
        == 0
    )
    x, _ = _cube(a)
    y, _ = _cube(b)
    assert x.shape == y.shape and not np.allclose(x, y)
    assert open_artifact(b).manifest["source"]["upsample"]["guide"] == "zero"
