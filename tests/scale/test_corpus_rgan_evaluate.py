"""Corpora for `upsample train-rgan` and the real side of `evaluate`: two datasets in different
units (DN and reflectance, the `sensors` fixture), each kept in its own normalisation; the
grid mismatch refused before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pytest

RGAN_ARGS = ("--scale", "2", "--steps", "3", "--batch-size", "2", "--checkpoint-every", "0", "--device", "cpu")


def _nothing_written(path):
    return not path.exists() and not list(path.parent.glob(f".hsigen-tmp-{path.name}-*"))


def test_train_rgan_on_two_units_records_both_sources(sensors, cli, tmp_path):
    out = tmp_path / "rgan"
    code, _, stderr = cli("upsample", "train-rgan", sensors["dn"], sensors["refl"], *RGAN_ARGS, "--out", out)
    assert code == 0, stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [i["path"] for i in manifest["inputs"]] == [str(sensors["dn"]), str(sensors["refl"])]
    norm = manifest["normalisation"]
    assert norm["scheme"] == "per-source min/max"
    assert [s["path"] for s in norm["sources"]] == [str(sensors["dn"]), str(sensors["refl"])]
    assert norm["sources"][0]["scale"] > 1000 and norm["sources"][1]["scale"] < 1
    assert [s["train_patches"] for s in norm["sources"]] == [12, 9]
    assert manifest["config"]["corpus"]["weights"] == pytest.approx([12 / 21, 9 / 21])
    model_norm = manifest["sr_model"]["normalisation"]
    assert model_norm["per_source"] is True and model_norm["scheme"] == "per-source min/max"

    # Held-out metrics over both val splits (4 + 3 patches), and per source; every val patch has the
    # same bands and pixels, so the pooled MPSNR / SAM are the patch-weighted means of the sources'.
    m, per = manifest["metrics"], manifest["per_source_metrics"]
    assert m["val_patches"] == 7 and [p["val_patches"] for p in per] == [4, 3]
    for key in ("rgan_rgb_mpsnr", "bicubic_mpsnr", "rgan_rgb_sam_deg", "bicubic_sam_deg"):
        assert m[key] == pytest.approx((4 * per[0][key] + 3 * per[1][key]) / 7, abs=2e-4)

    # `upsample run` on one source uses that source's own normalisation (reflectance stays reflectance).
    code, _, stderr = cli(
        "upsample", "run", sensors["refl"], "--rgan", out, "--size", "32", "--stride", "32", "--device", "cpu",
        "--out", tmp_path / "refl-x2",
    )  # fmt: skip
    assert code == 0, stderr
    from stages.artifacts.datasets import load_patches

    hr, lr = load_patches(tmp_path / "refl-x2").physical(), load_patches(sensors["refl"]).physical()
    assert hr.shape[-1] == 32 and np.isfinite(hr).all()
    assert abs(float(hr.mean()) - float(lr.mean())) < 0.1 * float(lr.mean())


def test_train_rgan_corpus_yaml_weights(sensors, cli, tmp_path):
    spec = tmp_path / "corpus.yaml"
    spec.write_text(f"sources:\n  - path: {sensors['dn']}\n    weight: 3\n  - path: {sensors['refl']}\n    weight: 1\n")
    out = tmp_path / "rgan"
    code, _, stderr = cli("upsample", "train-rgan", spec, *RGAN_ARGS, "--out", out)
    assert code == 0, stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["corpus"]["weights"] == pytest.approx([0.75, 0.25])
    assert [s["weight"] for s in manifest["normalisation"]["sources"]] == pytest.approx([0.75, 0.25])


def test_train_rgan_grid_mismatch_refused(sensors, cli, tmp_path):
    out = tmp_path / "rgan"
    code, _, stderr = cli("upsample", "train-rgan", sensors["dn"], sensors["other_grid"], *RGAN_ARGS, "--out", out)
    assert code == 1
    assert "other spectral grid (32 bands" in stderr and "48 bands" in stderr
    assert _nothing_written(out) and not (tmp_path / "rgan.work").exists()


def _merged_dataset(paths, out):
    """One hsi-dataset holding every patch of ``paths`` in physical units (scale 1, offset 0),
    their splits kept: the brute-force definition of "the union of the sources' rows"."""
    import h5py

    from stages.artifacts import ArtifactWriter, spectral_block
    from stages.artifacts.datasets import load_patches

    sets = [load_patches(p) for p in paths]
    wl = sets[0].wavelengths_nm
    writer = ArtifactWriter(out, "hsi-dataset", "test merge", {"sources": [str(p) for p in paths]}, [])
    with writer.building() as tmp:
        with h5py.File(tmp / "patches.h5", "w") as h5:
            h5["hsi"] = np.concatenate([s.physical() for s in sets]).astype(np.float32)
            h5["wavelengths_nm"] = wl
            h5["split"] = np.concatenate([s.split for s in sets]).astype("S5")
        for name in ("cube.tif", "preview.png"):  # required by the schema; evaluate reads patches.h5 only
            (tmp / name).write_bytes(b"placeholder")
        writer.spectral = spectral_block(wl, 1.0, 0.0)
    return out, sets


EVAL_ARGS = ("--metrics", "spr_srec,prdc,fp,db,spatial,patch_fd", "--max-spectra", "4000", "--device", "cpu")


def test_evaluate_two_real_sources_is_their_union(sensors, cli, tmp_path):
    gen = sensors["dn"]
    code, _, stderr = cli(
        "evaluate", "--real", sensors["dn"], "--real", sensors["refl"], "--generated", gen, *EVAL_ARGS,
        "--out", tmp_path / "two",
    )  # fmt: skip
    assert code == 0, stderr
    two = json.loads((tmp_path / "two" / "report.json").read_text())

    merged, sets = _merged_dataset([sensors["dn"], sensors["refl"]], tmp_path / "merged")
    code, _, stderr = cli("evaluate", "--real", merged, "--generated", gen, *EVAL_ARGS, "--out", tmp_path / "one")
    assert code == 0, stderr
    one = json.loads((tmp_path / "one" / "report.json").read_text())

    # The reference set: every source's train rows in its own physical units (brute force).
    def distinct(x):
        px = x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])
        return len(np.unique(px, axis=0))

    train = [s.physical()[s.split == "train"] for s in sets]
    assert two["real"]["spectra_unique"] == sum(distinct(t) for t in train) == one["real"]["spectra_unique"]
    assert two["real"]["images"] == 12 + 9
    assert [s["path"] for s in two["real"]["sources"]] == [str(sensors["dn"]), str(sensors["refl"])]
    assert [s["images"] for s in two["real"]["sources"]] == [12, 9]
    assert [s["heldout_images"] for s in two["real"]["sources"]] == [4, 3]
    assert two["real"]["sources"][0]["scale"] > 1000 and two["real"]["sources"][1]["scale"] < 1
    md = (tmp_path / "two" / "report.md").read_text()
    assert str(sensors["dn"]) in md and str(sensors["refl"]) in md
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert [i["path"] for i in manifest["inputs"]][:2] == [str(sensors["dn"]), str(sensors["refl"])]

    # Every number matches the evaluation against one dataset holding both sources' patches.
    rows = lambda r: [x["metrics"] for x in r["references"]] + [g["metrics"] for g in r["generated"]]  # noqa: E731
    assert [x["name"] for x in two["references"]] == [x["name"] for x in one["references"]]
    for a, b in zip(rows(two), rows(one)):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key


def test_evaluate_real_grid_mismatch_refused(sensors, cli, tmp_path):
    out = tmp_path / "eval"
    code, _, stderr = cli(
        "evaluate", "--real", sensors["dn"], "--real", sensors["other_grid"], "--generated", sensors["dn"],
        "--out", out,
    )  # fmt: skip
    assert code == 1
    assert "--real" in stderr and str(sensors["other_grid"]) in stderr and "32 bands" in stderr
    assert _nothing_written(out)


def test_evaluate_several_real_refuse_msad(sensors, cli, tmp_path):
    out = tmp_path / "eval"
    code, _, stderr = cli(
        "evaluate", "--real", sensors["dn"], "--real", sensors["refl"], "--generated", sensors["dn"],
        "--metrics", "msad", "--out", out,
    )  # fmt: skip
    assert code == 1 and "msad" in stderr and "one --real" in stderr
    assert _nothing_written(out)


def test_train_dsr_expands_a_corpus_yaml(sensors, tmp_path):
    from stages.common.errors import ConfigError
    from stages.upsample.train_dsr import expand_corpora

    spec = tmp_path / "corpus.yaml"
    spec.write_text(f"- {sensors['dn']}\n- path: {sensors['refl']}\n  labels: {{1: field}}\n")
    photos = tmp_path / "photos"
    assert expand_corpora([photos, spec]) == [photos, sensors["dn"], sensors["refl"]]
    spec.write_text(f"- path: {sensors['dn']}\n  weight: 2\n- {sensors['refl']}\n")
    with pytest.raises(ConfigError, match="drop 'weight:'"):
        expand_corpora([spec])


def test_autoencoder_reconstruction_of_several_sources_uses_each_normalisation(sensors, corpus_ae):
    """The reconstruction reference row of a union encodes every source's held-out images in that
    source's own normalisation (as the corpus autoencoder trained), and returns physical units."""
    import torch

    from stages.artifacts import open_artifact
    from stages.autoencoder.io import load_autoencoder
    from stages.evaluate import references
    from stages.evaluate.spectra import load_image_set

    _, held, _, _ = references.split_real_sources([sensors["dn"], sensors["refl"]], None, True, 0)
    ae = open_artifact(corpus_ae, "autoencoder")
    rec = references.autoencoder_reconstruction(ae, held)
    assert rec.cubes.shape == (7, 48, 16, 16)
    model = load_autoencoder(ae, "cpu")
    for k, path in enumerate([sensors["dn"], sensors["refl"]]):
        val = load_image_set(path, split="val")
        sp = val.artifact.spectral
        x = ((np.asarray(val.cubes) - np.float32(sp["offset"])) / np.float32(sp["scale"])).astype(np.float32)
        with torch.no_grad():
            y = model.decode(model.encode(torch.from_numpy(x))).float().numpy()
        want = y * np.float32(sp["scale"]) + np.float32(sp["offset"])
        got = rec.cubes[[0, 1, 2, 3]] if k == 0 else rec.cubes[[4, 5, 6]]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * float(sp["scale"]))
