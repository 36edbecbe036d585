"""`evaluate --inception-weights`: the FID Inception-v3 written in plain torch, strict loading of
the user's weights (.pth and .safetensors), the RGB FID against a brute-force transcription of
the Fréchet formula, and bad weight files (exit 1, one message, nothing written).

No real FID weights can be downloaded here, so the tests save random weights of the right
layout themselves; they check the pipeline and the formula, not ImageNet semantics."""

import hashlib
import json

import numpy as np
import pytest
import torch

from stages.evaluate import distribution, inception

# torchvision documents 27,161,264 parameters for inception_v3 (IMAGENET1K_V1: 1000 classes with
# the AuxLogits head). The FID network drops AuxLogits (conv0 768·128 + 2·128, conv1 128·768·25
# + 2·768, fc 768·1000 + 1000 = 3,326,696) and has 1008 classes (+ 8·2049 = 16,392):
# 27,161,264 − 3,326,696 + 16,392 = 23,850,960.
FID_INCEPTION_PARAMETERS = 23_850_960
IMAGES = 4  # --rgb-max-images in the CLI test: 4 real, 4 per generated set


def random_state_dict(seed: int = 0) -> dict:
    """He-initialised convolutions and identity batch norms, so activations keep their scale
    through the 94 conv layers and the features are neither zero nor overflowing."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in inception.FIDInceptionV3().state_dict().items():
        if key.endswith("conv.weight"):
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif key.endswith(("bn.weight", "bn.running_var")):
            state[key] = torch.ones_like(value)
        elif key.endswith(("bn.bias", "bn.running_mean")):
            state[key] = 0.05 * torch.randn(value.shape, generator=g)
        elif key.startswith("fc."):
            state[key] = 0.01 * torch.randn(value.shape, generator=g)
        else:  # num_batches_tracked
            state[key] = torch.zeros_like(value)
    return state


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The same random weights as .pth (torch.save of the state dict, with num_batches_tracked)
    and as .safetensors (without it, like a file saved before batch norm counted batches)."""
    from safetensors.torch import save_file

    state = random_state_dict()
    folder = tmp_path_factory.mktemp("inception")
    torch.save(state, folder / "fid_inception.pth")
    save_file(
        {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")},
        str(folder / "fid_inception.safetensors"),
    )
    return {"state": state, "pth": folder / "fid_inception.pth", "safetensors": folder / "fid_inception.safetensors"}


def test_weights_load_strictly_and_give_2048_features(weights):
    state = weights["state"]
    for fmt in ("pth", "safetensors"):
        model = inception.load_fid_inception(weights[fmt])
        loaded = model.state_dict()
        assert set(loaded) == set(state)  # torchvision Inception3 names, nothing more or less
        assert all(torch.equal(loaded[k], state[k]) for k in state), fmt
        assert not model.training
    assert inception.count_parameters(model) == FID_INCEPTION_PARAMETERS
    assert loaded["fc.weight"].shape == (1008, 2048) and "Mixed_7c.branch_pool.conv.weight" in loaded
    # Grid sizes and widths of Szegedy et al. 2016, Table 1 (input resized to 299×299).
    table1 = {
        "Conv2d_1a_3x3": (32, 149),
        "Conv2d_2a_3x3": (32, 147),
        "Conv2d_2b_3x3": (64, 147),
        "Conv2d_4a_3x3": (192, 71),
        "Mixed_5b": (256, 35),
        "Mixed_5d": (288, 35),
        "Mixed_6a": (768, 17),
        "Mixed_6e": (768, 17),
        "Mixed_7a": (1280, 8),
        "Mixed_7c": (2048, 8),
    }
    seen = {}
    for name in table1:
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: seen.update({name: o}))
    rgb = torch.rand(3, 3, 40, 56, generator=torch.Generator().manual_seed(1))  # any size: resized to 299
    with torch.inference_mode():
        feats = model(rgb)
    for name, (channels, size) in table1.items():
        assert tuple(seen[name].shape) == (3, channels, size, size), name
    assert torch.allclose(feats, seen["Mixed_7c"].mean(dim=(2, 3)))  # pool3: global average pool
    with torch.inference_mode():
        single = model(rgb[1:2])
    assert feats.shape == (3, 2048)
    assert torch.isfinite(feats).all() and (feats >= 0).all() and feats.std() > 1e-3  # pooled ReLUs
    assert torch.allclose(single[0], feats[1], rtol=1e-4, atol=1e-5)  # batch-independent (eval BN)


def test_average_pools_exclude_padding_and_last_block_max_pools():
    # TF "SAME" average pooling divides by the real pixels under the window: on a constant
    # input the pool branch is constant up to the border (torch's default would darken it).
    x = torch.full((1, 4, 6, 6), 3.0)
    assert torch.allclose(inception._avg_pool_same(x), x)
    # Mixed_7c's pool branch is a 3×3 max pool: a single bright pixel spreads to its 3×3
    # neighbourhood unchanged, where an average pool would divide it.
    model = inception.FIDInceptionV3()
    last = model.Mixed_7c
    assert last.max_pool and not model.Mixed_7b.max_pool
    spike = torch.zeros(1, 2048, 5, 5)
    spike[0, :, 2, 2] = 1.0
    captured = {}
    last.branch_pool.register_forward_pre_hook(lambda m, inp: captured.update({"in": inp[0]}))
    with torch.inference_mode():
        last.eval()(spike)
    assert torch.equal(captured["in"][0, 0, 1:4, 1:4], torch.ones(3, 3))
    assert captured["in"][0, 0].sum() == 9


def brute_force_fid(a: np.ndarray, b: np.ndarray) -> float:
    """Heusel et al. 2017, eq. 6, as pytorch-fid transcribes it: sqrtm of Σ_a Σ_b.

    The features live in a subspace of dimension ≤ len(a) + len(b); FID is unchanged by an
    orthonormal change of basis, so both sets are first expressed in an orthonormal basis of
    that subspace (sqrtm of the full 2048 × 2048 product takes ~25 s on this machine)."""
    from scipy import linalg

    basis, _ = np.linalg.qr(np.concatenate([a, b]).T)
    assert np.allclose(a @ basis @ basis.T, a, atol=1e-8 * np.abs(a).max())  # nothing lost
    a, b = a @ basis, b @ basis
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean.real))


@pytest.mark.slow
def test_cli_fid_rgb_equals_brute_force(cli, ip_dataset, ip_patches, ip_samples, samples_writer, weights, tmp_path):
    from stages.artifacts.datasets import load_samples

    val = ip_patches.subset(ip_patches.split == "val")
    copy = samples_writer(tmp_path / "val_copy", val.physical(), val.wavelengths_nm, scale=7000.0, offset=-50.0)
    out = tmp_path / "eval"
    code, stdout, stderr = cli(
        "evaluate",
        "--real",
        ip_dataset,
        "--real-split",
        "val",
        "--generated",
        copy,
        ip_samples,
        "--metrics",
        "fid_rgb",
        "--inception-weights",
        weights["pth"],
        "--rgb-max-images",
        str(IMAGES),
        "--device",
        "cpu",
        "--out",
        out,
        "--json",
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report == json.loads((out / "report.json").read_text())
    same, noisy = (g["metrics"] for g in report["generated"])
    assert set(noisy) == {"fid_rgb", "fid_rgb_images"}
    assert noisy["fid_rgb_images"] == {"real": IMAGES, "generated": IMAGES}

    # Independent pipeline: the same seeded image subsets, the real images' 2 % stretch of the
    # bands nearest 640/550/470 nm, 8-bit composites, bilinear 299×299 in [-1, 1], then pool3.
    wl = val.wavelengths_nm
    bands = [int(np.argmin(np.abs(wl - t))) for t in (640, 550, 470)]
    real = val.physical()[inception.choose_images(len(val.hsi), IMAGES, 0)]
    gen = load_samples(ip_samples).physical()[inception.choose_images(12, IMAGES, 0)]
    rgb_real = real[:, bands].transpose(0, 2, 3, 1).reshape(-1, 3)
    low, high = np.percentile(rgb_real, 2, axis=0), np.percentile(rgb_real, 98, axis=0)
    stretch = report["rgb_fid"]["stretch"]
    assert np.allclose(stretch["low"], low, rtol=1e-5) and np.allclose(stretch["high"], high, rtol=1e-5)
    assert report["rgb_fid"]["rgb_bands_nm"] == pytest.approx(wl[bands].tolist())

    def network_input(cubes):
        scaled = (cubes[:, bands] - low[None, :, None, None]) / (high - low)[None, :, None, None]
        rgb01 = torch.from_numpy((np.clip(scaled, 0, 1) * 255 + 0.5).astype(np.uint8) / np.float32(255))
        resized = torch.nn.functional.interpolate(rgb01, size=(299, 299), mode="bilinear", align_corners=False)
        return resized * 2 - 1

    model = inception.load_fid_inception(weights["safetensors"])
    with torch.inference_mode():
        feat_real = model.pool3(network_input(real)).double().numpy()
        feat_gen = model.pool3(network_input(gen)).double().numpy()
    expected = brute_force_fid(feat_real, feat_gen)
    assert expected > 0
    assert noisy["fid_rgb"] == pytest.approx(expected, rel=1e-4)
    assert distribution.frechet_distance(feat_real, feat_real) == pytest.approx(0.0, abs=1e-9 * expected)
    # The real images again, stored with another scale/offset: the same composites, FID ≈ 0.
    assert abs(same["fid_rgb"]) <= 1e-6 * noisy["fid_rgb"]

    digest = hashlib.sha256(weights["pth"].read_bytes()).hexdigest()
    assert report["settings"]["inception_weights"] == {"path": str(weights["pth"]), "sha256": digest}
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"path": str(weights["pth"]), "sha256": digest, "kind": "file"} in manifest["inputs"]
    assert manifest["metrics"]["fid_rgb_1"] == noisy["fid_rgb"]
    md = (out / "report.md").read_text()
    assert "| FID (RGB false colour) ↓ |" in md and f"{IMAGES} real images vs {IMAGES} (generated 1)" in md


def test_bad_weights_exit_1_and_write_nothing(cli, ip_dataset, ip_samples, weights, tmp_path):
    from safetensors.torch import save_file

    state = dict(weights["state"])
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)  # torchvision's ImageNet head
    state["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    save_file(state, str(tmp_path / "imagenet_inception.safetensors"))
    torch.save({"conv.weight": torch.zeros(3, 3)}, tmp_path / "other_model.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint\n")
    (tmp_path / "broken.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    cases = [
        ("missing.pth", "does not exist"),
        ("other_model.pth", "472 missing key(s)"),  # 566 minus the 94 optional num_batches_tracked
        ("imagenet_inception.safetensors", "fc.weight has shape (1000, 2048), expected (1008, 2048)"),
        ("text.pth", "could not be read"),
        ("broken.safetensors", "could not be read"),
    ]
    out = tmp_path / "never"
    for name, message in cases:
        code, stdout, stderr = cli(
            "evaluate",
            "--real",
            ip_dataset,
            "--generated",
            ip_samples,
            "--inception-weights",
            tmp_path / name,
            "--out",
            out,
        )
        assert code == 1, (name, stderr)
        assert message in stderr and "pt_inception-2015-12-05-6726825d.pth" in stderr, stderr
        assert "Traceback" not in stderr and stdout == ""
        assert len(stderr.strip().splitlines()) == 1, stderr
    code, _, stderr = cli(
        "evaluate", "--real", ip_dataset, "--generated", ip_samples, "--metrics", "fid_rgb", "--out", out
    )
    assert code == 1 and "--inception-weights FILE" in stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hsigen-tmp")]
