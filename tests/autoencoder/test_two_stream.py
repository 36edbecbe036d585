"""two-stream: the mask branch learns the ground truth; the joint latent layout; --pairs."""

from __future__ import annotations

import numpy as np
import torch


def test_mask_branch_reconstructs_ground_truth(two_stream_run, ip_dataset):
    from stages.artifacts.datasets import load_patches
    from stages.autoencoder.data import class_index
    from stages.autoencoder.io import load_autoencoder

    m = two_stream_run.metrics
    assert m["mask_pixel_accuracy_step0"] < 0.5
    ae = load_autoencoder(two_stream_run.path, "cpu")
    train = load_patches(ip_dataset, "train")
    labels = torch.from_numpy(class_index(train.labels, ae.classes))
    with torch.no_grad():
        z = ae.encode(torch.from_numpy(train.hsi), labels)
        hsi, probs = ae.decode(z)
    assert tuple(z.shape) == (len(train.hsi), 8, 8, 8)                 # (z_x, z_y) = 4 + 4 channels
    predicted = ae.labels_from_probs(probs)
    accuracy = float(np.mean(predicted == train.labels))
    majority = np.bincount(train.labels.ravel()).max() / train.labels.size      # ≈ 0.47 (unlabelled)
    assert accuracy > majority + 0.03 and accuracy > m["mask_pixel_accuracy_step0"] + 0.3, (accuracy, majority)
    assert ae.classes == list(range(17))
    assert m["mpsnr_db"] > m["mpsnr_db_step0"]


def test_pairs_mode_shares_the_image_branch(ip_dataset, tmp_path, make_config):
    from dataclasses import replace

    from stages.autoencoder import run
    from stages.autoencoder.io import load_autoencoder

    cfg = replace(make_config("two-stream", 2, mask_block_out_channels=[8, 16, 16]), pairs=str(ip_dataset))
    artifact = run(ip_dataset, tmp_path / "cd", cfg, device="cpu")
    assert artifact.manifest["autoencoder"]["latent_layout"] == ["hsi", "hsi_b", "mask"]
    ae = load_autoencoder(artifact.path, "cpu")
    x = torch.rand(2, 48, 16, 16)
    y = torch.zeros(2, 16, 16, dtype=torch.long)
    z = ae.encode(x, y, x.flip(-1))
    assert tuple(z.shape) == (2, 12, 4, 4)
    # The same branch encodes both images: the second slot is the flipped image's latent.
    torch.testing.assert_close(z[:, 4:8], ae.encode_hsi(x.flip(-1)))
    hsi_a, hsi_b, probs = ae.decode(z)
    assert hsi_a.shape == hsi_b.shape == (2, 48, 16, 16) and probs.shape == (2, 17, 16, 16)
    assert torch.allclose(probs.sum(dim=1), torch.ones(2, 16, 16), atol=1e-5)


def test_paper_preset_parameter_counts(cli, ip_dataset):
    import json

    code, stdout, stderr = cli("train-ae", ip_dataset, "--kind", "two-stream", "--preset", "paper", "--dry-run")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["downsampling_factor"] == 4 and set(report["parameters"]) == {"hsi_vae", "mask_vae"}
