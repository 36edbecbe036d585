"""Bad input: exit code 1, one clear message, nothing written."""

from __future__ import annotations

import h5py
import numpy as np


def _dataset_without_labels(ip_dataset, out):
    """The same real Indian Pines patches re-packed without their label map."""
    from stages.artifacts import ArtifactWriter, input_record, spectral_block
    from stages.artifacts.datasets import load_patches

    p = load_patches(ip_dataset)
    writer = ArtifactWriter(out, "hsi-dataset", "test", {"labels": False}, [input_record(ip_dataset)])
    with writer.building() as tmp:
        with h5py.File(tmp / "patches.h5", "w") as h5:
            h5.create_dataset("hsi", data=p.hsi)
            h5.create_dataset("wavelengths_nm", data=p.wavelengths_nm)
            h5.create_dataset("split", data=p.split.astype("S"))
        (tmp / "cube.tif").write_bytes((ip_dataset / "cube.tif").read_bytes())
        (tmp / "preview.png").write_bytes((ip_dataset / "preview.png").read_bytes())
        writer.spectral = spectral_block(p.wavelengths_nm, p.scale, p.offset)
    return out


def test_unknown_kind(cli, ip_dataset, tmp_path):
    code, _, stderr = cli("train-ae", ip_dataset, "--kind", "vqgan", "--out", tmp_path / "ae")
    assert code == 2 and "'--kind'" in stderr and "'kl', 'vq-rgb', 'two-stream'" in stderr  # usage error
    assert not (tmp_path / "ae").exists()


def test_two_stream_needs_labels(cli, ip_dataset, tmp_path):
    unlabelled = _dataset_without_labels(ip_dataset, tmp_path / "nolabels")
    code, _, stderr = cli("train-ae", unlabelled, "--kind", "two-stream", "--steps", "1", "--out", tmp_path / "ae")
    assert code == 1 and "no labels" in stderr and "--labels" in stderr
    assert not (tmp_path / "ae").exists() and not (tmp_path / "ae.work").exists()


def test_missing_library_file(cli, ip_dataset, tmp_path):
    code, _, stderr = cli(
        "train-ae", ip_dataset, "--kind", "vq-rgb", "--library", tmp_path / "nope.sli", "--out", tmp_path / "ae"
    )
    assert code == 1 and "nope.sli does not exist" in stderr
    assert not (tmp_path / "ae").exists()


def test_wrong_artifact_kinds(cli, ip_dataset, kl_run, tmp_path):
    # A dataset where an autoencoder is expected …
    code, _, stderr = cli("train-ae", "encode", ip_dataset, ip_dataset, "--out", tmp_path / "z.h5")
    assert code == 1 and "hsi-dataset artifact; this needs autoencoder" in stderr
    assert not (tmp_path / "z.h5").exists()
    # … and an autoencoder where a dataset is expected.
    code, _, stderr = cli("train-ae", kl_run.path, "--kind", "kl", "--steps", "1", "--out", tmp_path / "ae")
    assert code == 1 and "autoencoder artifact; this needs hsi-dataset" in stderr
    assert not (tmp_path / "ae").exists()
    # A latents file of another autoencoder is refused by decode.
    fake = tmp_path / "other.h5"
    with h5py.File(fake, "w") as h5:
        h5.create_dataset("latents", data=np.zeros((1, 4, 8, 8), np.float32))
        h5.attrs["autoencoder_sha256"] = "0" * 64
    code, _, stderr = cli("train-ae", "decode", kl_run.path, fake, "--out", tmp_path / "dec")
    assert code == 1 and "another autoencoder" in stderr
    assert not (tmp_path / "dec").exists()


def test_existing_output_refused_before_training(cli, ip_dataset, kl_run, tmp_path):
    out = tmp_path / "ae"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, stderr = cli("train-ae", ip_dataset, "--kind", "kl", "--steps", "1", "--out", out)
    assert code == 1 and "--overwrite" in stderr
    assert (out / "keep.txt").read_text() == "mine"


def test_steps_and_epochs_together_refused(cli, ip_dataset, tmp_path):
    code, _, stderr = cli(
        "train-ae", ip_dataset, "--kind", "kl", "--steps", "5", "--epochs", "2", "--out", tmp_path / "ae"
    )
    assert code == 1 and "either --steps or --epochs" in stderr
    assert not (tmp_path / "ae").exists() and not (tmp_path / "ae.work").exists()


def test_decode_refuses_unknown_format(cli, ip_dataset, kl_run, tmp_path):
    code, _, stderr = cli("train-ae", "encode", kl_run.path, ip_dataset, "--out", tmp_path / "z.h5", "--split", "val")
    assert code == 0, stderr
    code, _, stderr = cli(
        "train-ae", "decode", kl_run.path, tmp_path / "z.h5", "--format", "png", "--out", tmp_path / "dec"
    )
    assert code == 2 and "'--format'" in stderr and "'tif', 'envi', 'mat'" in stderr
    assert not (tmp_path / "dec").exists()
