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
    args = [
        "sample",
        "--ckpt",
        tiny_import,
        "--cond",
        f"hed={cond_images / 'hed.png'}",
        "--cond",
        cond_images / "seg.png",
        "-n",
        "1",
        "--steps",
        "3",
        "--seed",
        "7",
    ]
    code, _, err = cli(*args, "--out", tmp_path / "a")
    assert code == 0, err
    code, _, err = cli(*args, "--out", tmp_path / "b")
    assert code == 0, err
    a, conds = _samples(tmp_path / "a")
    b, _ = _samples(tmp_path / "b")
    assert a.shape == (1, 48, 32, 32) and a.dtype == np.float32
    assert np.array_equal(a, b)  # same seed → same bits
    assert 0.0 <= a.min() and a.max() <= 1.0 and a.std() > 0
    # Released slot order hed, -, seg, -, sketch, mlsd; maps at 2 × the sample size, / 255.
    assert conds.shape == (1, 18, 64, 64)
    assert conds[0, 0:3].max() > 0 and conds[0, 6:9].max() > 0
    assert conds[0, 3:6].max() == 0 and conds[0, 9:18].max() == 0
    code, _, err = cli(*args[:-1], "8", "--out", tmp_path / "c")
    assert not np.array_equal(_samples(tmp_path / "c")[0], a)


def test_generator_in_the_one_path_every_sampler(tiny_import):
    from stages.diffusion import load_model
    from stages.diffusion.schedules import sampling_scheduler
    from stages.hsigene.generator import Generator
    from stages.sampling.generation import generate, open_generator

    model = load_model(tiny_import)
    gen = open_generator(model)
    assert isinstance(gen, Generator) and gen.default_size() == 32 and gen.noise_shape(32) == (4, 8, 8)
    ddim = sampling_scheduler("ddim", gen.scheduler_config())
    ddim.set_timesteps(50)  # ldm's grid: k·T/S + 1, from the largest
    assert ddim.timesteps[:3].tolist() == [981, 961, 941] and int(ddim.timesteps[-1]) == 1
    assert float(ddim.final_alpha_cumprod) == float(ddim.alphas_cumprod[0])
    cond = gen.prepare_conditions([], None, None, 32)
    assert cond.tokens[0, :3].tolist() == [49406, 49407, 49407]
    for sampler in ("ddim", "ddpm", "dpm"):
        hsi, x0, _ = generate(model, None, 2, None, sampler, 3, 5, 2, None, "cpu")
        assert hsi.shape == (2, 48, 32, 32) and x0.shape == (2, 4, 8, 8)
        assert np.isfinite(hsi).all() and 0.0 <= hsi.min() and hsi.max() <= 1.0 and hsi.std() > 0
        # Batch independence: sample 1 of a batch of 2 equals itself made in batches of 1.
        alone, _, _ = generate(model, None, 2, None, sampler, 3, 5, 1, None, "cpu")
        assert np.abs(alone[1] - hsi[1]).max() < 1e-5


def test_guidance_adds_an_unconditional_pass(tiny_import, cond_images):
    from stages.diffusion import load_model
    from stages.diffusion.generator import ConditionRequest
    from stages.sampling.generation import open_generator

    model = load_model(tiny_import)
    gen = open_generator(model)
    gen.load("cpu", 2)
    hed = ConditionRequest(files=[f"hed={cond_images / 'hed.png'}"])
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor(501)
    eps = {}
    for name, request, g in (("c", hed, 1.0), ("u", None, 1.0), ("g", hed, 3.0)):
        conditions = gen.prepare(request, 2, 32, g)
        eps[name] = gen.predict(x, t, slice(0, 2), conditions)
        assert len(gen._constants(conditions)) == (1 if g == 1.0 else 2)  # guidance 1: one pass only
    assert not torch.equal(eps["c"], eps["u"])
    assert torch.allclose(eps["g"], eps["u"] + 3.0 * (eps["c"] - eps["u"]), atol=1e-5)
    # Outside --guidance-interval the step is the conditional pass alone, inside it the guided one.
    limited = gen.prepare(hed, 2, 32, 3.0)
    limited.guidance_interval = (600, 999)
    assert torch.equal(gen.predict(x, t, slice(0, 2), limited), eps["c"])
    assert torch.allclose(
        gen.predict(x, torch.tensor(701), slice(0, 2), limited),
        gen.predict(x, torch.tensor(701), slice(0, 2), gen.prepare(hed, 2, 32, 3.0)),
        atol=1e-6,
    )


def test_shards_merge_to_the_unsharded_run(cli, tiny_import, tmp_path):
    import json

    args = ["sample", "--ckpt", tiny_import, "-n", "17", "--steps", "1", "--seed", "3"]
    for name, extra in (("full", []), ("s0", ["--shard", "0/2"]), ("s1", ["--shard", "1/2"])):
        code, _, err = cli(*args, *extra, "--out", tmp_path / name)
        assert code == 0, err
    code, _, err = cli("sample", "--merge", tmp_path / "s0", "--merge", tmp_path / "s1", "--out", tmp_path / "m")
    assert code == 0, err
    full, _ = _samples(tmp_path / "full")
    merged, _ = _samples(tmp_path / "m")
    assert full.shape == (17, 48, 32, 32) and np.array_equal(full, merged)
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["config"]["architecture"] == "hsigene" and manifest["config"]["guidance"] == 1.0
    assert manifest["generator"]["slots"] == ["hed", "", "seg", "", "sketch", "mlsd"]


def test_sample_refuses_unknown_kinds_and_missing_tokenizer(cli, tiny_import, cond_images, tmp_path):
    code, _, err = cli(
        "sample",
        "--ckpt",
        tiny_import,
        "--cond",
        f"depth={cond_images / 'hed.png'}",
        "-n",
        "1",
        "--out",
        tmp_path / "x",
    )
    assert code == 1 and "hed, seg, sketch and mlsd" in err
    code, _, err = cli(
        "sample", "--ckpt", tiny_import, "--text", "Farmland", "-n", "1", "--steps", "1", "--out", tmp_path / "y"
    )
    assert code == 1 and "--clip-model" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_evaluate_scores_hsigene_samples(cli, tiny_import, ip_dataset, tmp_path):
    """Scored like any generator, with the import's autoencoder (``DIR/autoencoder``, kind
    hsigene-kl) as the autoencoder-reconstruction reference row."""
    import json

    code, _, err = cli("sample", "--ckpt", tiny_import, "-n", "4", "--steps", "2", "--out", tmp_path / "s")
    assert code == 0, err
    code, out, err = cli("evaluate", "--real", ip_dataset, "--generated", tmp_path / "s", "--metrics", "spr_srec,fp,db",
                         "--references", "auto", "--out", tmp_path / "e", "--json")  # fmt: skip
    assert code == 0, err
    metrics = json.loads((tmp_path / "e" / "manifest.json").read_text())["metrics"]
    assert {"spr_0", "srec_0", "fp_0", "db_0"} <= set(metrics)
    assert all(0.0 <= metrics[k] <= 1.0 for k in ("spr_0", "srec_0", "fp_0", "db_0"))
    rows = [r for r in json.loads(out)["references"] if r["name"] == "autoencoder-reconstruction"]
    assert len(rows) == 1, json.loads(out).get("reference_notes")
    assert rows[0]["kind"] == "hsigene-kl" and rows[0]["for_generated"] == [1]
    assert rows[0]["autoencoder"].endswith("autoencoder")


def test_bf16_sampling_tracks_fp32(tiny_import, cli, tmp_path):
    from stages.diffusion import load_model
    from stages.sampling.generation import generate

    model = load_model(tiny_import)
    out = {p: generate(model, None, 1, 32, "ddim", 2, 0, 1, None, "cpu", precision=p)[0] for p in ("fp32", "bf16")}
    assert out["bf16"].dtype == np.float32 and np.isfinite(out["bf16"]).all()
    assert np.abs(out["bf16"] - out["fp32"]).mean() < 0.02
    code, _, err = cli(
        "sample", "--ckpt", tiny_import, "-n", "1", "--precision", "fp16", "--device", "cpu", "--out", tmp_path / "h"
    )
    assert code == 1 and "needs a GPU" in err and not (tmp_path / "h").exists()
    code, _, err = cli("sample", "--ckpt", tiny_import, "-n", "1", "--precision", "fp8", "--out", tmp_path / "h")
    assert code == 2 and not (tmp_path / "h").exists()
