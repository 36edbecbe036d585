"""The pretrained models shipped in the package (stages/pretrained/models, built by
``make pretrained``): all present and verified, within the size budget, each with its
provenance; each generator samples by name, deterministically; the user's own line
``hsigen sample --ckpt pretrained:indian-pines-latent --cond hed.png`` works with nothing but
the clone; a modified copy is refused and nothing is written."""

from __future__ import annotations

import json
import shutil

import cv2
import h5py
import numpy as np
import pytest

from stages import pretrained

SHIPPED = {
    "indian-pines-abundance": "diffusion-model",
    "indian-pines-autoencoder": "autoencoder",
    "indian-pines-joint": "diffusion-model",
    "indian-pines-latent": "diffusion-model",
    "indian-pines-manifold": "spectral-manifold",
    "indian-pines-manifold-by-class": "spectral-manifold",
    "indian-pines-rgan-x2": "sr-model",
    "indian-pines-two-stream": "autoencoder",
    "indian-pines-unmixing": "unmixing",
}
GENERATORS = ("indian-pines-abundance", "indian-pines-latent", "indian-pines-joint")
BUDGET_BYTES = 25_000_000  # the realism issue's 25 MB


def test_every_model_is_shipped_verified_and_within_budget(cli):
    models = {m.name: m for m in pretrained.available()}
    assert {name: m.kind for name, m in models.items()} == SHIPPED
    for m in models.values():
        pretrained.verify(m)
        prov = m.provenance()
        assert prov["command"].startswith("hsigen ") and prov["seed"] == 0
        assert len(prov["data"]["patches_h5_sha256"]) == 64 and prov["wall_seconds"] > 0
        assert not any(p.suffix in {".pt", ".pth", ".ckpt", ".bin", ".pkl"} for p in m.path.rglob("*"))
    several = ("indian-pines-latent", "indian-pines-manifold", "indian-pines-manifold-by-class")
    for name in GENERATORS + ("indian-pines-autoencoder",) + several[1:]:
        metrics = models[name].provenance()["metrics"]
        rows = metrics.values() if name in several else [metrics]
        assert all(0 <= r["spr"] <= 1 and 0 <= r["srec"] <= 1 and r["gradient_ratio"] > 0 for r in rows), name
    assert sum(m.bytes for m in models.values()) <= BUDGET_BYTES
    code, out, err = cli("pretrained")
    assert code == 0, err
    assert all(f"pretrained:{name}" in out for name in SHIPPED)


@pytest.mark.parametrize("name", GENERATORS)
def test_each_generator_samples_by_name_deterministically(cli, name, tmp_path):
    arrays = []
    for run in ("a", "b"):
        out = tmp_path / run
        code, _, err = cli("sample", "--ckpt", f"pretrained:{name}", "-n", "2", "--steps", "4", "--size", "32",
                           "--seed", "5", "--out", out)  # fmt: skip
        assert code == 0, err
        with h5py.File(out / "samples.h5", "r") as h5:
            arrays.append(h5["hsi"][...])
            assert h5["hsi"].shape == (2, 48, 32, 32)
    np.testing.assert_array_equal(arrays[0], arrays[1])
    assert np.isfinite(arrays[0]).all() and arrays[0].std() > 0


def _hed_png(path):
    """An edge map as a user would pass one: white field boundaries on black, 32×32."""
    image = np.zeros((32, 32), np.uint8)
    cv2.rectangle(image, (4, 6), (20, 26), 255, 1)
    cv2.line(image, (0, 16), (31, 12), 255, 1)
    cv2.imwrite(str(path), image)
    return path


def test_the_users_line_works_with_nothing_but_the_clone(cli, tmp_path):
    hed = _hed_png(tmp_path / "hed.png")
    out = tmp_path / "s"
    code, _, err = cli("sample", "--ckpt", "pretrained:indian-pines-latent", "--cond", hed, "-n", "2",
                       "--steps", "4", "--out", out)  # fmt: skip
    assert code == 0, err
    with h5py.File(out / "samples.h5", "r") as h5:
        assert h5["hsi"].shape[:2] == (2, 48)
    code, stdout, _ = cli("inspect", out, "--json")
    assert '"pretrained:indian-pines-latent"' in stdout  # the input is recorded by name


def test_a_tampered_shipped_model_is_refused_and_nothing_is_written(cli, tmp_path, monkeypatch):
    copy = tmp_path / "models"
    shutil.copytree(pretrained.MODELS_DIR, copy)
    monkeypatch.setattr(pretrained, "MODELS_DIR", copy)
    monkeypatch.setattr(pretrained, "_VERIFIED", set())
    weights = next((copy / "indian-pines-latent").rglob("diffusion_pytorch_model.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    out = tmp_path / "s"
    code, _, err = cli("sample", "--ckpt", "pretrained:indian-pines-latent", "-n", "1", "--steps", "2", "--out", out)
    assert code == 1 and "pretrained:indian-pines-latent was modified" in err and "reinstall hsigen" in err
    assert not out.exists()


def test_evaluate_finds_a_samples_model_by_its_recorded_relative_path_from_elsewhere(
    cli, ip_dataset, tmp_path, monkeypatch
):
    """``sample`` ran in one directory with a relative --ckpt, ``evaluate`` runs in another: the
    model is found under a directory above the samples, by its recorded sha256."""
    work = tmp_path / "project"
    shutil.copytree(pretrained.MODELS_DIR / "indian-pines-latent", work / "models" / "latent")
    monkeypatch.chdir(work)
    code, _, err = cli("sample", "--ckpt", "models/latent", "-n", "2", "--steps", "2", "--out", "out/s")
    assert code == 0, err
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("evaluate", "--real", ip_dataset, "--generated", "project/out/s", "--metrics", "spr_srec",
                         "--references", "auto", "--out", "ev", "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    names = [r["name"] for r in report["references"]]
    assert "autoencoder-reconstruction" in names, report["reference_notes"]


def test_a_latent_model_trains_on_a_shipped_autoencoder_by_name(cli, ip_dataset, tmp_path):
    """``--autoencoder pretrained:NAME``: the shipped files are copied into the new model (the
    name is not a directory), and the model samples with them."""
    out = tmp_path / "ldm"
    code, _, err = cli("train-diffusion", "--space", "latent", "--autoencoder", "pretrained:indian-pines-autoencoder",
                       "--dataset", ip_dataset, "--kinds", "hed", "--steps", "2", "--out", out)  # fmt: skip
    assert code == 0, err
    shipped = pretrained.directory("pretrained:indian-pines-autoencoder")
    copied = out / "autoencoder" / "vae" / "diffusion_pytorch_model.safetensors"
    assert copied.read_bytes() == (shipped / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    code, _, err = cli("sample", "--ckpt", out, "-n", "1", "--steps", "2", "--out", tmp_path / "s")
    assert code == 0, err


def test_the_shipped_manifold_moves_real_spectra_little_and_generated_ones_onto_it(ip_dataset, tmp_path):
    """Real val pixels come back through the shipped manifold within 3 % of their level (it was fitted
    to the train rows only); the shipped latent model's samples are moved onto it, where projecting
    them again moves nothing (the nearest point of a point on the manifold is itself — the encoder's
    guess alone misses it by about 0.25 %)."""
    from stages.artifacts.datasets import load_patches
    from stages.sampling import SampleConfig
    from stages.sampling import run as sample
    from stages.unmix.manifold import load_manifold

    model, _ = load_manifold("pretrained:indian-pines-manifold")
    val = load_patches(ip_dataset, "val")
    real = (val.hsi[:4] * val.scale + val.offset).astype(np.float64)
    moved_real = np.linalg.norm(model.project(real) - real, axis=1) / np.linalg.norm(real, axis=1)
    assert np.median(moved_real) < 0.03
    sample("pretrained:indian-pines-latent", tmp_path / "s", SampleConfig(n=2, steps=10, seed=1), device="cpu",
           spectral_manifold="none")  # fmt: skip
    with h5py.File(tmp_path / "s" / "samples.h5", "r") as h5:
        generated = h5["hsi"][...] * h5.attrs["scale"] + h5.attrs["offset"]

    def moved(after, before):
        return np.median(np.linalg.norm(after - before, axis=1) / np.linalg.norm(before, axis=1))

    projected = model.project(generated)
    assert moved(projected, generated) > 0.005  # about 1.5 %: as far off as real val pixels are
    assert moved(model.project(projected), projected) < 1e-5
    assert moved(model.project(projected, iterations=0), projected) > 1e-3


def test_the_shipped_by_class_manifold_decodes_the_joint_models_pixels_by_label(tmp_path):
    from stages.sampling import SampleConfig
    from stages.sampling import run as sample
    from stages.unmix.manifold import load_manifold

    model, _ = load_manifold("pretrained:indian-pines-manifold-by-class")
    assert model.classes is not None and 0 in model.classes
    for name, manifold in (("raw", "none"), ("projected", "pretrained:indian-pines-manifold-by-class")):
        sample("pretrained:indian-pines-joint", tmp_path / name, SampleConfig(n=2, steps=4, seed=3), device="cpu",
               spectral_manifold=manifold)  # fmt: skip
    with h5py.File(tmp_path / "raw" / "samples.h5", "r") as h5:
        raw, labels, scale, offset = h5["hsi"][...], h5["labels"][...], h5.attrs["scale"], h5.attrs["offset"]
    with h5py.File(tmp_path / "projected" / "samples.h5", "r") as h5:
        expected = model.project_normalised(raw, float(scale), float(offset), labels, as_unlabelled=True)
        np.testing.assert_allclose(h5["hsi"][...], expected, atol=1e-6)


@pytest.mark.parametrize(
    "name, manifold",
    [("indian-pines-latent", "indian-pines-manifold"), ("indian-pines-joint", "indian-pines-manifold-by-class")],
)
def test_shipped_generators_decode_through_their_manifold_unless_told_none(cli, name, manifold, tmp_path):
    """By name, a shipped generator's samples are decoded through its shipped manifold (the samples the
    realism targets were measured on), the same bytes as asking for it; ``--spectral-manifold none``
    gives the raw samples; the manifest says which, and ``hsigen pretrained`` names the default."""
    common = ("sample", "--ckpt", f"pretrained:{name}", "-n", "2", "--steps", "3", "--seed", "4")
    runs = {}
    for run, extra in (("default", ()), ("asked", ("--spectral-manifold", f"pretrained:{manifold}")),
                       ("raw", ("--spectral-manifold", "none"))):  # fmt: skip
        code, _, err = cli(*common, *extra, "--out", tmp_path / run)
        assert code == 0, err
        if run == "default":
            assert f"through pretrained:{manifold}, the default" in err and "--spectral-manifold none" in err
        with h5py.File(tmp_path / run / "samples.h5", "r") as h5:
            runs[run] = h5["hsi"][...]
    np.testing.assert_array_equal(runs["default"], runs["asked"])
    assert np.abs(runs["default"] - runs["raw"]).max() > 1e-3
    manifests = {run: json.loads((tmp_path / run / "manifest.json").read_text()) for run in runs}
    assert manifests["default"]["config"]["spectral_manifold"]["by_class"] is (name == "indian-pines-joint")
    assert "spectral_manifold" not in manifests["raw"]["config"]
    kinds = lambda m: [i["kind"] for i in m["inputs"]]  # noqa: E731
    assert "spectral-manifold" in kinds(manifests["default"]) and "spectral-manifold" not in kinds(manifests["raw"])
    code, out, _ = cli("pretrained")
    assert code == 0 and f"samples decode through pretrained:{manifold} by default" in out
