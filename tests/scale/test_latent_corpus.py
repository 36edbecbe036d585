"""train-diffusion --space latent over a two-source corpus: cached, memory-mapped latents and
uint8 condition maps, encoded once per autoencoder."""

from __future__ import annotations

import json

import numpy as np


def test_latent_training_on_two_sources_uses_the_cache(sensors, corpus_ae, cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HSIGEN_CACHE", str(tmp_path / "cache"))
    args = [
        "train-diffusion",
        "--space",
        "latent",
        "--autoencoder",
        corpus_ae,
        "--dataset",
        sensors["dn"],
        "--dataset",
        sensors["refl"],
        "--kinds",
        "hed,content",
        "--batch-size",
        "4",
        "--workers",
        "1",
        "--device",
        "cpu",
        "--checkpoint-every",
        "0",
    ]
    code, _, stderr = cli(*args, "--steps", "4", "--out", tmp_path / "ldm")
    assert code == 0, stderr
    manifest = json.loads((tmp_path / "ldm" / "manifest.json").read_text())
    assert [i["path"] for i in manifest["inputs"]] == [str(corpus_ae), str(sensors["dn"]), str(sensors["refl"])]
    assert manifest["config"]["loader"] == "stream"
    assert manifest["config"]["dataset"] == [str(sensors["dn"]), str(sensors["refl"])]
    assert manifest["normalisation"]["scheme"] == "per-source min/max"
    assert manifest["config"]["conditions"]["local"] == ["hed"]
    assert manifest["config"]["global_dims"] == {"content": 64}

    latents = sorted((tmp_path / "cache" / "latents").glob("*/filled.npy"))
    maps = sorted((tmp_path / "cache" / "conditions").glob("*/maps.npy"))
    assert len(latents) == 2 and len(maps) == 2
    filled = sum(int(np.load(f).sum()) for f in latents)
    assert 0 < filled <= 4 * 4  # only the (patch, orientation) pairs the 4 steps read
    stored = np.load(maps[0], mmap_mode="r")
    assert stored.dtype == np.uint8 and stored.shape[1:] == (6, 16, 16)

    # Same autoencoder and datasets, more steps: earlier entries are reused, not re-encoded.
    code, _, stderr = cli(*args, "--steps", "8", "--out", tmp_path / "ldm8")
    assert code == 0, stderr
    refilled = sum(int(np.load(f).sum()) for f in latents)
    assert filled < refilled <= 8 * 4
    assert f"cache: {refilled - filled:,} latents computed" in stderr

    code, _, stderr = cli(
        "sample",
        "--ckpt",
        tmp_path / "ldm",
        "-n",
        "2",
        "--steps",
        "2",
        "--device",
        "cpu",
        "--out",
        tmp_path / "samples",
    )
    assert code == 0, stderr
