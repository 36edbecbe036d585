"""``ingest --pair --change-mask`` and the change-detection chain (specdm.txt §3.3) on a pair
built from Indian Pines (t2 = t1 with regions replaced by another class's spectra)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import rasterio
from joint_helpers import SAMPLE_STEPS, draw_samples, make_change_pair, train_joint, train_two_stream

from stages.artifacts import open_artifact


def test_pair_dataset_shares_grid_scale_and_origins(change_dataset, change_pair_files):
    artifact = open_artifact(change_dataset, "hsi-dataset")
    with h5py.File(change_dataset / "patches.h5", "r") as h5:
        hsi, hsi_t2, labels, origin = h5["hsi"][...], h5["hsi_t2"][...], h5["labels"][...], h5["origin"][...]
    assert hsi_t2.shape == hsi.shape == (len(origin), 48, 32, 32)
    _, _, mask = make_change_pair()
    for i, (r, c) in enumerate(origin):
        np.testing.assert_array_equal(labels[i], mask[r : r + 32, c : c + 32])
    # Outside the changed regions t2 is t1: one shared scale/offset makes them equal exactly.
    unchanged = labels[:, None].repeat(48, 1) == 0
    np.testing.assert_array_equal(hsi[unchanged], hsi_t2[unchanged])
    changed = labels == 1
    assert changed.any()
    assert np.abs(hsi - hsi_t2).max(axis=1)[changed].min() > 0
    # Both scenes in [0, 1] of one joint range, recorded once.
    assert min(hsi.min(), hsi_t2.min()) == 0.0 and max(hsi.max(), hsi_t2.max()) == 1.0
    pair = artifact.manifest["pair"]
    assert pair["changed_fraction"] == float(np.mean(mask != 0))
    with rasterio.open(change_dataset / "cube_t2.tif") as src:
        assert src.count == 48 and (src.height, src.width) == mask.shape


def test_pair_bad_inputs_write_nothing(cli, tmp_path, change_pair_files):
    t2, mask = change_pair_files
    code, _, err = cli("ingest", "--example", "indian-pines", "--pair", t2, "--size", "32", "--out", tmp_path / "a")
    assert code == 1 and "--change-mask" in err and not (tmp_path / "a").exists()
    np.save(tmp_path / "small.npy", np.load(t2)[:100])
    code, _, err = cli(
        "ingest",
        "--example",
        "indian-pines",
        "--pair",
        tmp_path / "small.npy",
        "--change-mask",
        mask,
        "--size",
        "32",
        "--out",
        tmp_path / "b",
    )
    assert code == 1 and "co-register" in err and not (tmp_path / "b").exists()
    np.save(tmp_path / "mask.npy", np.load(mask)[:, :100])
    code, _, err = cli(
        "ingest",
        "--example",
        "indian-pines",
        "--pair",
        t2,
        "--change-mask",
        tmp_path / "mask.npy",
        "--size",
        "32",
        "--out",
        tmp_path / "c",
    )
    assert code == 1 and "change mask" in err and not (tmp_path / "c").exists()


@pytest.mark.slow
def test_change_detection_triplets(change_dataset, change_t2_dataset, tmp_path):
    """(z_x1, z_x2, z_y): a --pairs two-stream AE, joint diffusion on 3 latent parts, samples
    with hsi, hsi_t2 and a change mask."""
    ae = train_two_stream(change_dataset, tmp_path / "ae", steps=6, pairs=change_t2_dataset)
    model = train_joint(ae, change_dataset, tmp_path / "model", steps=6)
    config = open_artifact(model, "diffusion-model").config
    assert config["normalisation"]["latent_layout"] == ["hsi", "hsi_t2", "mask"]
    assert config["task"] == "change-detection"
    samples = draw_samples(model, tmp_path / "samples", n=2)
    with h5py.File(samples / "samples.h5", "r") as h5:
        hsi, hsi_t2, labels = h5["hsi"][...], h5["hsi_t2"][...], h5["labels"][...]
    assert hsi.shape == hsi_t2.shape == (2, 48, 32, 32) and labels.shape == (2, 32, 32)
    assert set(np.unique(labels).tolist()) <= {0, 1}
    for i in range(2):
        assert (samples / "samples" / f"sample_{i:04d}_t2.tif").is_file()
        assert (samples / "previews" / f"sample_{i:04d}_t2.png").is_file()
        assert (samples / "previews" / f"sample_{i:04d}_labels.png").is_file()
    # Through a spectral manifold both dates are projected, the change mask left as generated.
    from stages import unmix
    from stages.sampling import SampleConfig, run
    from stages.unmix.manifold import load_manifold

    manifold_dir = tmp_path / "manifold"
    unmix.run(change_dataset, manifold_dir, unmix.UnmixConfig(method="manifold", endmembers=3, manifold={"steps": 50}))
    projected = tmp_path / "projected"
    run(model, projected, SampleConfig(n=2, sampler="ddim", steps=SAMPLE_STEPS, seed=0, batch_size=8), device="cpu",
        spectral_manifold=manifold_dir)  # fmt: skip
    manifold, _ = load_manifold(manifold_dir)
    with h5py.File(projected / "samples.h5", "r") as h5:
        scale, offset = float(h5.attrs["scale"]), float(h5.attrs["offset"])
        np.testing.assert_array_equal(h5["labels"][...], labels)
        for key, raw in (("hsi", hsi), ("hsi_t2", hsi_t2)):
            np.testing.assert_allclose(h5[key][...], manifold.project_normalised(raw, scale, offset), atol=1e-6)
