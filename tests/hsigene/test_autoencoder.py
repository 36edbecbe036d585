"""The imported VAE as an ``autoencoder`` artifact (kind ``hsigene-kl``) in ``MODEL_DIR/autoencoder/``:
one copy of the weights, hashed by both manifests, loaded by ``load_autoencoder`` into the same
numbers the model's own decoding gives, and found by evaluate for the reference row."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch


def test_import_writes_a_complete_autoencoder_artifact(tiny_import, released_state):
    from safetensors.torch import load_file

    from stages.artifacts import file_sha256, open_artifact
    from stages.hsigene.artifact import WAVELENGTHS_NM

    ae = open_artifact(tiny_import / "autoencoder", "autoencoder")
    m = ae.manifest
    assert m["stage"] == "import" and m["inputs"][0]["kind"] == "file"
    info = m["autoencoder"]
    assert info["kind"] == "hsigene-kl" and info["downsampling_factor"] == 4 and info["latent_channels"] == 4
    assert info["scaling_factor"] == pytest.approx(0.18215) and info["latent_shape_per_patch"] == [4, 8, 8]
    # The 48-band 400–1000 nm grid; stored units [-1, 1]: physical reflectance = x · 0.5 + 0.5.
    sp = m["spectral"]
    assert sp["band_count"] == 48 and np.allclose(sp["wavelengths_nm"], WAVELENGTHS_NM, atol=1e-3)
    assert (sp["scale"], sp["offset"]) == (0.5, 0.5)
    meta = json.loads(ae.file("model.json").read_text())
    assert meta["kind"] == "hsigene-kl" and meta["weights"] == "model.safetensors"
    # Both manifests hash the one weights file; the model keeps no second copy of the VAE.
    outputs = {o["path"]: o["sha256"] for o in m["outputs"]}
    assert outputs["model.safetensors"] == file_sha256(tiny_import / "autoencoder" / "model.safetensors")
    model = open_artifact(tiny_import, "diffusion-model")
    model_outputs = {o["path"]: o["sha256"] for o in model.manifest["outputs"]}
    assert model_outputs["autoencoder/model.safetensors"] == outputs["model.safetensors"]
    assert model_outputs["autoencoder/manifest.json"] == file_sha256(tiny_import / "autoencoder" / "manifest.json")
    assert not (tiny_import / "vae").exists() and "vae/model.safetensors" not in model_outputs
    assert ae.verify() == [] and model.verify() == []
    assert not [p for p in tiny_import.rglob(".*")]  # no lock or build leftovers inside the artifact
    # The weights are the released first_stage_model.* tensors, bit for bit.
    stored = load_file(str(tiny_import / "autoencoder" / "model.safetensors"))
    released = {k: v for k, v in released_state().items() if k.startswith("first_stage_model.")}
    assert set(stored) == set(released) and all(torch.equal(stored[k], released[k]) for k in released)


def test_load_autoencoder_matches_the_models_own_vae_path(tiny_import):
    from stages.autoencoder.io import load_autoencoder
    from stages.diffusion import load_model
    from stages.sampling.generation import open_generator

    ae = load_autoencoder(tiny_import / "autoencoder")
    assert ae.kind == "hsigene-kl" and (ae.factor, ae.latent_channels) == (4, 4)
    assert ae.scaling_factor == pytest.approx(0.18215) and (ae.scale, ae.offset) == (0.5, 0.5)
    assert ae.wavelengths_nm.shape == (48,) and not ae.training

    gen = open_generator(load_model(tiny_import))
    gen.load("cpu", 16)
    x = torch.rand(2, 48, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    z = ae.encode(x)
    assert z.shape == (2, 4, 8, 8)
    with torch.no_grad():
        mean, _ = gen.net.first_stage_model.encode_moments(x)
    assert torch.equal(z, mean * gen.cfg.scale_factor)
    # decode → physical units (x · scale + offset) against what `sample` writes for these latents.
    physical = (ae.decode(z) * ae.scale + ae.offset).numpy()
    sampled = gen.decode(z.numpy(), slice(0, 2), gen.prepare(None, 2, 32, 1.0)).hsi
    assert physical.shape == sampled.shape == (2, 48, 32, 32)
    assert np.abs(physical - sampled).max() <= 1e-6
    assert 0.0 <= physical.min() and physical.max() <= 1.0


def test_inspect_the_autoencoder(cli, tiny_import):
    # (train-ae --kind hsigene-kl trains one from scratch: tests/hsigene/test_from_scratch.py)
    code, out, err = cli("inspect", tiny_import / "autoencoder", "--verify")
    assert code == 0, err
    assert "autoencoder v1" in out and "stage import" in out and "48 bands 400.0-1000.0 nm" in out
    assert "model.safetensors" in out and "every output matches" in out


def _older_layout(tiny_import, dest):
    """``tiny_import`` as an import made before the autoencoder artifact: the VAE in
    ``vae/model.safetensors``, no ``autoencoder/``, no ``autoencoder`` config key."""
    from stages.artifacts import file_sha256

    shutil.copytree(tiny_import, dest)
    (dest / "vae").mkdir()
    shutil.move(dest / "autoencoder" / "model.safetensors", dest / "vae" / "model.safetensors")
    shutil.rmtree(dest / "autoencoder")
    manifest = json.loads((dest / "manifest.json").read_text())
    del manifest["config"]["autoencoder"]
    manifest["outputs"] = [o for o in manifest["outputs"] if not o["path"].startswith("autoencoder/")] + [
        {
            "path": "vae/model.safetensors",
            "sha256": file_sha256(dest / "vae" / "model.safetensors"),
            "bytes": (dest / "vae" / "model.safetensors").stat().st_size,
        }
    ]
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return dest


def test_an_import_of_the_older_layout_still_samples_and_evaluate_says_reimport(
    cli, tiny_import, tiny_ckpt, ip_dataset, tmp_path
):
    import h5py

    from stages.artifacts import open_artifact
    from stages.hsigene.importer import import_checkpoint

    old = _older_layout(tiny_import, tmp_path / "old")
    args = ["-n", "2", "--steps", "2", "--seed", "5"]
    for model, name in ((old, "s_old"), (tiny_import, "s_new")):
        code, _, err = cli("sample", "--ckpt", model, *args, "--out", tmp_path / name)
        assert code == 0, err
    with h5py.File(tmp_path / "s_old" / "samples.h5") as a, h5py.File(tmp_path / "s_new" / "samples.h5") as b:
        assert np.array_equal(a["hsi"][:], b["hsi"][:])  # the same weights: the same bits
    code, out, err = cli("evaluate", "--real", ip_dataset, "--generated", tmp_path / "s_old", "--metrics", "spr_srec",
                         "--references", "auto", "--out", tmp_path / "e", "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert "autoencoder-reconstruction" not in [r["name"] for r in report["references"]]
    assert any("re-import" in n for n in report["reference_notes"]), report["reference_notes"]
    # The fix: re-importing rewrites it (the older artifact is not "up to date").
    import_checkpoint(tiny_ckpt, old, model_config="tiny", sample_size=32, overwrite=True)
    assert open_artifact(old / "autoencoder", "autoencoder").manifest["autoencoder"]["kind"] == "hsigene-kl"
    assert not (old / "vae").exists()


def test_the_schema_keeps_train_ae_requirements(tiny_import):
    """An imported autoencoder needs no held-out metrics; a train-ae one still does, and other
    stages may not claim the imported kind."""
    from stages.artifacts import validate_manifest
    from stages.common.errors import ArtifactError

    manifest = json.loads((tiny_import / "autoencoder" / "manifest.json").read_text())
    validate_manifest(manifest)
    with pytest.raises(ArtifactError, match="metrics|reconstructions|hsigene-kl"):
        validate_manifest({**manifest, "stage": "train-ae"})
    with pytest.raises(ArtifactError, match="hsigene-kl|is not one of"):
        validate_manifest({**manifest, "autoencoder": {**manifest["autoencoder"], "kind": "kl"}})
