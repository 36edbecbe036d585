"""Training data of train-ae: the stitched training scene and its crop windows, the 8 square
symmetries, per-band standardisation inside the VAE, mask accuracy, --epochs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch


def _train_arrays(ip_dataset):
    from stages.artifacts.datasets import load_patches
    from stages.autoencoder.data import class_index

    train = load_patches(ip_dataset, "train")
    classes = sorted(int(v) for v in np.unique(load_patches(ip_dataset).labels))
    return train, {"hsi": train.hsi, "labels": class_index(train.labels, classes)}


def test_stitched_scene_holds_every_training_patch(ip_dataset):
    from stages.autoencoder.data import training_field

    train, arrays = _train_arrays(ip_dataset)
    field = training_field(arrays, train.origin, 16, "cpu")
    assert field.stitched
    scene, labels = field.arrays["hsi"][0].numpy(), field.arrays["labels"][0].numpy()
    assert scene.shape == (48, 109, 145)  # train rows 0..108 of the 145×145 scene
    for i, (r, c) in enumerate(train.origin):
        np.testing.assert_array_equal(scene[:, r : r + 32, c : c + 32], train.hsi[i])
        np.testing.assert_array_equal(labels[r : r + 32, c : c + 32], arrays["labels"][i])
    # Every window lies inside the covered area, and every covered window is listed.
    covered = np.zeros(scene.shape[1:], bool)
    for r, c in train.origin:
        covered[r : r + 32, c : c + 32] = True
    brute = {
        (top, left)
        for top in range(covered.shape[0] - 15)
        for left in range(covered.shape[1] - 15)
        if covered[top : top + 16, left : left + 16].all()
    }
    assert {(int(top), int(left)) for _, top, left in field.windows.tolist()} == brute
    assert field.window_count == len(brute) > 50 * len(train.hsi)


def test_patches_that_disagree_are_not_stitched(ip_dataset):
    from stages.autoencoder.data import training_field

    train, arrays = _train_arrays(ip_dataset)
    hsi = arrays["hsi"].copy()
    hsi[1, :, 0, 0] += 0.5  # patch 1 overlaps patch 0 at (0, 16): now they disagree there
    field = training_field({"hsi": hsi}, train.origin, 16, "cpu")
    assert not field.stitched and field.windows is None
    assert field.window_count == len(hsi) * 17 * 17
    assert not training_field({"hsi": hsi}, None, 16, "cpu").stitched


def test_random_batch_crops_all_arrays_alike_and_repeats_per_generator(ip_dataset):
    from stages.autoencoder.data import dihedral, random_batch, training_field

    train, arrays = _train_arrays(ip_dataset)
    field = training_field(arrays, train.origin, 16, "cpu")
    a = random_batch(torch.Generator().manual_seed(3), field, 64)
    b = random_batch(torch.Generator().manual_seed(3), field, 64)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["hsi"].shape == (64, 48, 16, 16) and a["labels"].shape == (64, 16, 16)
    # Crop i is window windows[pick[i]] of the scene under symmetry symmetry[i] (the draws, in
    # order), and the labels are the same window under the same symmetry.
    g = torch.Generator().manual_seed(3)
    pick = torch.randint(field.window_count, (64,), generator=g)
    symmetry = torch.randint(8, (64,), generator=g)
    scene, labels = field.arrays["hsi"][0], field.arrays["labels"][0]
    for i in range(64):
        _, top, left = field.windows[pick[i]].tolist()
        assert torch.equal(a["hsi"][i], dihedral(scene[:, top : top + 16, left : left + 16], int(symmetry[i])))
        assert torch.equal(a["labels"][i], dihedral(labels[top : top + 16, left : left + 16], int(symmetry[i])))
    assert len(set(pick.tolist())) == 64 and len(set(symmetry.tolist())) == 8


def test_dihedral_gives_the_eight_distinct_symmetries():
    from stages.autoencoder.data import dihedral

    x = torch.arange(9.0).reshape(1, 3, 3)
    images = {tuple(dihedral(x, k).flatten().tolist()) for k in range(8)}
    assert len(images) == 8
    assert torch.equal(dihedral(x, 1)[0, 0], torch.tensor([2.0, 5.0, 8.0]))  # a quarter turn


def test_band_standardisation_is_inside_the_diffusers_vae(kl_run, ip_dataset):
    from stages.artifacts.datasets import load_patches
    from stages.autoencoder.io import load_autoencoder

    train = load_patches(ip_dataset, "train")
    meta = json.loads(kl_run.file("model.json").read_text())
    mean, std = (np.asarray(v) for v in meta["band_stats"])
    np.testing.assert_allclose(mean, train.hsi.astype(np.float64).mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(std, train.hsi.astype(np.float64).std(axis=(0, 2, 3)), rtol=1e-6)
    ae = load_autoencoder(kl_run.path, "cpu")
    x = torch.from_numpy(train.hsi[:3])
    conv = ae.vae.encoder.conv_in
    standardised = (x - torch.tensor(mean, dtype=torch.float32)[None, :, None, None]) / torch.tensor(
        std, dtype=torch.float32
    )[None, :, None, None]
    torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(standardised, conv.weight, conv.bias, padding=1))
    out = ae.vae.decoder.conv_out
    h = torch.randn(2, out.in_channels, 8, 8)
    raw = torch.nn.functional.conv2d(h, out.weight, out.bias, padding=1)
    torch.testing.assert_close(
        out(h),
        raw * torch.tensor(std, dtype=torch.float32)[None, :, None, None]
        + torch.tensor(mean, dtype=torch.float32)[None, :, None, None],
    )
    # Code that calls the diffusers model directly sees the same latents as ae.encode.
    with torch.no_grad():
        direct = ae.vae.encode(x).latent_dist.mode() * ae.scaling_factor
    torch.testing.assert_close(direct, ae.encode(x))
    # The saved diffusers weights keep the plain AutoencoderKL layout.
    from safetensors.torch import load_file

    keys = set(load_file(kl_run.file("vae/diffusion_pytorch_model.safetensors")))
    assert "encoder.conv_in.weight" in keys and not any("band_" in k for k in keys)


def test_mask_accuracy_against_brute_force():
    from stages.autoencoder.stage import mask_accuracy

    rng = np.random.default_rng(1)
    truth = rng.integers(0, 5, (3, 6, 6))
    predicted = np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, 5, truth.shape))
    train_labels = np.array([0, 1, 2, 4])  # class 3 never seen in training
    got = mask_accuracy(predicted, truth, train_labels)
    flat_t, flat_p = truth.ravel(), predicted.ravel()
    seen = [i for i in range(flat_t.size) if flat_t[i] != 3]
    assert got["mask_pixel_accuracy"] == pytest.approx(sum(flat_t == flat_p) / flat_t.size)
    assert got["mask_pixel_accuracy_seen_classes"] == pytest.approx(
        sum(flat_t[i] == flat_p[i] for i in seen) / len(seen)
    )
    assert got["mask_heldout_unseen_share"] == pytest.approx(1 - len(seen) / flat_t.size)
    assert got["mask_classes_unseen_in_training"] == [3]


def test_epochs_set_the_step_count(cli, ip_dataset):
    code, stdout, stderr = cli(
        "train-ae", ip_dataset, "--kind", "kl", "--epochs", "3", "--batch-size", "5", "--dry-run"
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["training_patches"] == 54 and report["batch_size"] == 5
    assert report["steps"] == math.ceil(3 * 54 / 5) == 33
    code, stdout, _ = cli("train-ae", ip_dataset, "--kind", "kl", "--dry-run")
    assert json.loads(stdout)["steps"] == 1500  # the tiny preset's own count


def test_epochs_recorded_in_the_manifest(ip_dataset, tmp_path, make_config):
    from dataclasses import replace

    from stages.autoencoder import run

    cfg = replace(make_config("kl", 1000), epochs=1)  # --epochs wins over the preset's steps
    artifact = run(ip_dataset, tmp_path / "ae", cfg, device="cpu")
    assert artifact.config["epochs"] == 1 and artifact.config["model"]["steps"] == math.ceil(54 / 8)
    assert artifact.manifest["training"]["steps"] == 7 and artifact.manifest["training"]["history"][-1]["step"] == 7


def test_second_images_come_from_hsi_t2_when_the_dataset_holds_pairs(ip_dataset, tmp_path):
    import h5py

    from stages.artifacts import ArtifactWriter, input_record, spectral_block
    from stages.artifacts.datasets import load_patches
    from stages.autoencoder.data import load_second_images

    p = load_patches(ip_dataset)
    t2 = np.ascontiguousarray(p.hsi[..., ::-1])  # a stand-in second date
    writer = ArtifactWriter(tmp_path / "pair", "hsi-dataset", "test", {"pair": True}, [input_record(ip_dataset)])
    with writer.building() as tmp:
        with h5py.File(tmp / "patches.h5", "w") as h5:
            for name, value in (
                ("hsi", p.hsi),
                ("hsi_t2", t2),
                ("wavelengths_nm", p.wavelengths_nm),
                ("labels", p.labels),
                ("origin", p.origin),
                ("split", p.split.astype("S")),
            ):
                h5.create_dataset(name, data=value)
        for name in ("cube.tif", "preview.png"):
            (tmp / name).write_bytes((ip_dataset / name).read_bytes())
        writer.spectral = spectral_block(p.wavelengths_nm, p.scale, p.offset)
    np.testing.assert_array_equal(load_second_images(tmp_path / "pair").hsi, t2)
    np.testing.assert_array_equal(load_second_images(tmp_path / "pair", "val").hsi, t2[p.split == "val"])
    np.testing.assert_array_equal(load_second_images(ip_dataset, "val").hsi, p.hsi[p.split == "val"])
