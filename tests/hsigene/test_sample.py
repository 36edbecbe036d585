"""Sampling a tiny-width import on CPU: released slot order, deterministic bits, [0, 1] output."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def cond_images(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("conds")
    rng = np.random.default_rng(0)
    for name in ("hed", "seg"):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(d / f"{name}.png")
    return d


def _samples(path):
    import h5py

    with h5py.File(path / "samples.h5") as f:
        return f["hsi"][:], f["conditions"][:]


def test_sample_one_image_deterministically(cli, tiny_import, cond_images, tmp_path):
    args = ["sample", "--ckpt", tiny_import, "--cond", f"hed={cond_images / 'hed.png'}",
            "--cond", cond_images / "seg.png", "-n", "1", "--steps", "3", "--seed", "7"]
    code, _, err = cli(*args, "--out", tmp_path / "a")
    assert code == 0, err
    code, _, err = cli(*args, "--out", tmp_path / "b")
    assert code == 0, err
    a, conds = _samples(tmp_path / "a")
    b, _ = _samples(tmp_path / "b")
    assert a.shape == (1, 48, 32, 32) and a.dtype == np.float32
    assert np.array_equal(a, b)                              # same seed → same bits
    assert 0.0 <= a.min() and a.max() <= 1.0 and a.std() > 0
    # Released slot order hed, -, seg, -, sketch, mlsd; maps at 2 × the sample size, / 255.
    assert conds.shape == (1, 18, 64, 64)
    assert conds[0, 0:3].max() > 0 and conds[0, 6:9].max() > 0
    assert conds[0, 3:6].max() == 0 and conds[0, 9:18].max() == 0
    code, _, err = cli(*args[:-1], "8", "--out", tmp_path / "c")
    assert not np.array_equal(_samples(tmp_path / "c")[0], a)


def test_generator_pieces_and_samplers(tiny_import):
    from stages.artifacts import open_artifact
    from stages.hsigene.generator import HSIGeneGenerator, ddim_timesteps

    assert list(ddim_timesteps(1000, 50)[:3]) == [981, 961, 941] and ddim_timesteps(1000, 50)[-1] == 1
    gen = HSIGeneGenerator(open_artifact(tiny_import))
    cond = gen.prepare_conditions([], None, None, 32)
    assert cond.tokens[0, :3].tolist() == [49406, 49407, 49407]
    enc = gen.encode_conditions(cond, 2)
    assert enc["context"].shape == (2, 81, 32)
    # Batch independence: sample 1 of a batch of 2 equals the same seed alone.
    both = gen.sample_latents(enc, [5, 6], 8, "ddim", 2)
    alone = gen.sample_latents(enc, [6], 8, "ddim", 2)
    assert torch.allclose(both[1:], alone, atol=1e-5)
    dpm = gen.sample_latents(enc, [5], 8, "dpm", 3)
    assert dpm.shape == (1, 4, 8, 8) and torch.isfinite(dpm).all()


def test_sample_refuses_unknown_kinds_and_missing_tokenizer(cli, tiny_import, cond_images, tmp_path):
    code, _, err = cli("sample", "--ckpt", tiny_import, "--cond", f"depth={cond_images / 'hed.png'}", "-n", "1",
                       "--out", tmp_path / "x")
    assert code == 1 and "hed, seg, sketch and mlsd" in err
    code, _, err = cli("sample", "--ckpt", tiny_import, "--text", "Farmland", "-n", "1", "--steps", "1",
                       "--out", tmp_path / "y")
    assert code == 1 and "--clip-model" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_evaluate_scores_hsigene_samples(cli, tiny_import, ip_dataset, tmp_path):
    import json

    code, _, err = cli("sample", "--ckpt", tiny_import, "-n", "4", "--steps", "2", "--out", tmp_path / "s")
    assert code == 0, err
    code, _, err = cli("evaluate", "--real", ip_dataset, "--generated", tmp_path / "s", "--out", tmp_path / "e")
    assert code == 0, err
    metrics = json.loads((tmp_path / "e" / "manifest.json").read_text())["metrics"]
    assert {"spr_0", "srec_0", "fp_0", "db_0"} <= set(metrics)
    assert all(0.0 <= metrics[k] <= 1.0 for k in ("spr_0", "srec_0", "fp_0", "db_0"))


def test_bf16_sampling_tracks_fp32(tiny_import):
    from stages.artifacts import open_artifact
    from stages.hsigene.generator import HSIGeneGenerator

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        gen = HSIGeneGenerator(open_artifact(tiny_import), "cpu", dtype)
        out[name] = gen.generate(gen.prepare_conditions([], None, None, 32), 1, 32, "ddim", 2, 0, 1)
    assert out["bf16"].dtype == np.float32 and np.isfinite(out["bf16"]).all()
    assert np.abs(out["bf16"] - out["fp32"]).mean() < 0.02
