"""SpecDM labelled synthesis (specdm.txt §3.2-3.3) end to end on Indian Pines with micro
models: sample format (labels, label GeoTIFFs, overlay previews), determinism, label sets."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import rasterio
from joint_helpers import SAMPLES, draw_samples

from stages.artifacts import open_artifact
from stages.artifacts.datasets import load_patches
from stages.artifacts.labelled_samples import OVERLAY_ALPHA, label_colours
from stages.diffusion.spaces.joint import class_share, dihedral, total_variation


def _h5(samples):
    with h5py.File(samples / "samples.h5", "r") as h5:
        return {k: h5[k][...] for k in h5}


def test_model_records_joint_layout_and_paper_schedule(joint_model, two_stream_ae):
    config = open_artifact(joint_model, "diffusion-model").config
    assert config["space"] == "joint"
    assert config["normalisation"]["latent_layout"] == ["hsi", "mask"]
    ae = open_artifact(two_stream_ae, "autoencoder").manifest["autoencoder"]
    # z = (z_x, z_y): image latent channels + mask latent channels (§3.2: h × w × 2c).
    assert config["channels"] == ae["latent_channels"] + ae["mask_latent_channels"]
    assert config["sample_size"] == 32 // ae["downsampling_factor"]
    schedule = config["model"]["schedule"]
    assert (schedule["num_train_timesteps"], schedule["beta_start"], schedule["beta_end"]) == (1000, 0.0015, 0.0155)
    assert (joint_model / "autoencoder" / "manifest.json").is_file()


def test_samples_h5_labels_geotiffs_and_overlays(joint_samples, ip_dataset):
    arrays = _h5(joint_samples)
    hsi, labels = arrays["hsi"], arrays["labels"]
    assert hsi.shape == (SAMPLES, 48, 32, 32) and hsi.dtype == np.float32
    assert labels.shape == (SAMPLES, 32, 32) and np.issubdtype(labels.dtype, np.integer)
    training_classes = set(np.unique(load_patches(ip_dataset, "train").labels).tolist())
    assert set(np.unique(labels).tolist()) <= training_classes
    # Not all background: the micro joint model (150 steps) drew classes 2 and 11 beside 0, in 15
    # of its 16 samples, on 30 % of all pixels (measured, seed 0).
    assert len(set(np.unique(labels).tolist()) - {0}) >= 2
    assert np.mean(labels != 0) > 0.15 and sum(bool((lab != 0).any()) for lab in labels) >= 12
    artifact = open_artifact(joint_samples, "hsi-samples")
    scale, offset = artifact.spectral["scale"], artifact.spectral["offset"]
    for i in range(SAMPLES):
        with rasterio.open(joint_samples / "samples" / f"sample_{i:04d}_labels.tif") as src:
            assert src.count == 1 and np.issubdtype(np.dtype(src.dtypes[0]), np.integer)
            np.testing.assert_array_equal(src.read(1), labels[i])
        with rasterio.open(joint_samples / "samples" / f"sample_{i:04d}.tif") as src:
            np.testing.assert_allclose(src.read(), hsi[i] * scale + offset, rtol=1e-5, atol=1e-3)
    # The overlay preview blends each non-zero label's colour into the false-colour image.
    from PIL import Image

    i = int(np.argmax([(lab != 0).sum() for lab in labels]))
    plain = np.asarray(Image.open(joint_samples / "previews" / f"sample_{i:04d}.png").convert("RGB"), np.float32)
    over = np.asarray(Image.open(joint_samples / "previews" / f"sample_{i:04d}_labels.png").convert("RGB"), np.float32)
    background = labels[i] == 0
    assert (~background).sum() > 0.3 * background.size  # the blend below is checked on many pixels
    np.testing.assert_array_equal(over[background], plain[background])
    for value, colour in label_colours(np.unique(labels[i][~background])).items():
        where = labels[i] == value
        expected = (1 - OVERLAY_ALPHA) * plain[where] + OVERLAY_ALPHA * colour
        assert np.abs(over[where] - expected).max() <= 1.0
    assert (joint_samples / "previews" / "grid.png").is_file()


def test_class_shares_reported_real_vs_generated(joint_samples, ip_dataset):
    metrics = open_artifact(joint_samples, "hsi-samples").manifest["metrics"]
    shares = metrics["class_share"]
    labels = _h5(joint_samples)["labels"]
    train = load_patches(ip_dataset, "train").labels
    real = {str(k): v for k, v in class_share(train, np.unique(train)).items()}
    # Every class the autoencoder knows is listed; those absent from the train split with 0.
    assert set(real) <= set(shares["training"]) and set(shares["training"]) == set(shares["generated"])
    for k, v in shares["training"].items():
        assert v == pytest.approx(real.get(k, 0.0))
    values, counts = np.unique(labels, return_counts=True)
    for v, c in zip(values, counts):
        assert shares["generated"][str(int(v))] == pytest.approx(c / labels.size)
    assert sum(shares["generated"].values()) == pytest.approx(1.0)
    assert shares["total_variation"] == pytest.approx(total_variation(shares["training"], shares["generated"]))


def test_total_variation_and_class_share_definitions():
    assert total_variation({"1": 0.5, "2": 0.5}, {"1": 0.5, "2": 0.5}) == 0.0
    assert total_variation({"1": 1.0}, {"2": 1.0}) == 1.0
    assert total_variation({"1": 0.75, "2": 0.25}, {"1": 0.25, "2": 0.75}) == pytest.approx(0.5)
    assert class_share(np.array([[0, 0, 3, 3]]), [0, 3, 5]) == {"0": 0.5, "3": 0.5, "5": 0.0}


def test_dihedral_orientations_are_distinct_and_invertible():
    x = np.arange(16).reshape(1, 4, 4)
    views = [dihedral(x, k) for k in range(8)]
    assert len({v.tobytes() for v in views}) == 8
    np.testing.assert_array_equal(np.rot90(dihedral(x, 1), -1, axes=(-2, -1)), x)


def test_same_seed_same_samples_other_seed_differs(joint_model, joint_samples, tmp_path):
    again = draw_samples(joint_model, tmp_path / "again", n=4, seed=0)
    other = draw_samples(joint_model, tmp_path / "other", n=4, seed=1)
    first, second, third = _h5(joint_samples), _h5(again), _h5(other)
    # Sample i depends only on (seed, i): the first 4 of the 16 are the same 4 samples (up to
    # float rounding: CPU convolutions may sum in another order for another batch size).
    np.testing.assert_allclose(first["hsi"][:4], second["hsi"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(first["labels"][:4], second["labels"])
    assert not np.allclose(first["hsi"][:4], third["hsi"])


def test_sample_size_counts_pixels(joint_model, tmp_path, cli):
    code, out, err = cli(
        "sample", "--ckpt", joint_model, "-n", "2", "--steps", "3", "--size", "48", "--out", tmp_path / "big"
    )
    assert code == 0, err
    arrays = _h5(tmp_path / "big")
    assert arrays["hsi"].shape == (2, 48, 48, 48) and arrays["labels"].shape == (2, 48, 48)
    code, out, err = cli("sample", "--ckpt", joint_model, "-n", "2", "--size", "30", "--out", tmp_path / "bad")
    assert code == 1 and "--size 30" in err and not (tmp_path / "bad").exists()


def test_cli_rejects_wrong_inputs(cli, tmp_path, ip_dataset, two_stream_ae):
    code, _, err = cli("train-diffusion", "--space", "joint", "--dataset", ip_dataset, "--out", tmp_path / "m")
    assert code == 1 and "--autoencoder" in err
    code, _, err = cli(
        "train-diffusion",
        "--space",
        "joint",
        "--autoencoder",
        two_stream_ae,
        "--dataset",
        ip_dataset,
        "--kinds",
        "hed",
        "--out",
        tmp_path / "m",
    )
    assert code == 1 and "--kinds" in err
    # A kl / unmixing artifact is not a two-stream autoencoder.
    code, _, err = cli(
        "train-diffusion",
        "--space",
        "joint",
        "--autoencoder",
        ip_dataset,
        "--dataset",
        ip_dataset,
        "--out",
        tmp_path / "m",
    )
    assert code == 1 and "autoencoder" in err
    assert not (tmp_path / "m").exists()


def test_dry_run_prints_parameter_counts(cli, ip_dataset, two_stream_ae):
    code, out, err = cli(
        "train-diffusion",
        "--space",
        "joint",
        "--autoencoder",
        two_stream_ae,
        "--dataset",
        ip_dataset,
        "--preset",
        "paper",
        "--dry-run",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["space"] == "joint" and report["channels"] == 8 + 4  # image + mask latent channels
    assert report["diffusion_steps"] == 1000 and report["prediction_type"] == "epsilon"
    assert report["parameters"] == {"unet": 274_092_460, "total": 274_092_460}


def test_unlabelled_dataset_is_refused(tmp_path, two_stream_ae, cli):
    from stages import ingest
    from stages.spectral import parse_band_ranges, read_wavelengths_file, target_grid

    ex = ingest.EXAMPLES["indian-pines"]
    cfg = ingest.IngestConfig(
        target_wavelengths_nm=list(target_grid()),
        size=32,
        stride=32,
        drop_bands=parse_band_ranges(ex["drop_bands"]),
        wavelengths_source="sidecar",
    )
    ingest.run([ex["source"]], tmp_path / "nolabels", cfg, wavelengths=read_wavelengths_file(ex["wavelengths_file"]))
    code, _, err = cli(
        "train-diffusion",
        "--space",
        "joint",
        "--autoencoder",
        two_stream_ae,
        "--dataset",
        tmp_path / "nolabels",
        "--out",
        tmp_path / "m",
    )
    assert code == 1 and "no labels" in err and not (tmp_path / "m").exists()
