"""Corpora for the joint space (SpecDM) and for unmixing + the abundance space: two datasets in
different units train one model / give one unmixing; class spaces, refusals, and the records."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from corpus_helpers import train_corpus_two_stream

JOINT_FAST = ("--steps", "3", "--batch-size", "4", "--checkpoint-every", "0", "--device", "cpu")


def manifest(path) -> dict:
    return json.loads((path / "manifest.json").read_text())


# -- the joint space over a corpus ---------------------------------------------------------------


def test_joint_trains_on_two_sources_with_their_classes_apart(sensors, corpus_two_stream, cli, tmp_path):
    ae = manifest(corpus_two_stream)
    names = ["unlabelled", "dn:1", "dn:2", "dn:3", "refl:1", "refl:2"]
    assert ae["autoencoder"]["class_names"] == names and ae["autoencoder"]["classes"] == list(range(6))

    out = tmp_path / "joint"
    code, stdout, stderr = cli(
        "train-diffusion",
        "--space",
        "joint",
        "--autoencoder",
        corpus_two_stream,
        "--dataset",
        sensors["dn"],
        "--dataset",
        sensors["refl"],
        *JOINT_FAST,
        "--out",
        out,
    )
    assert code == 0, stderr
    m = manifest(out)
    assert [i["path"] for i in m["inputs"]] == [str(corpus_two_stream), str(sensors["dn"]), str(sensors["refl"])]
    cfg = m["config"]
    assert cfg["dataset"] == [str(sensors["dn"]), str(sensors["refl"])]
    assert cfg["training_patches"] == 12 + 9 and cfg["training_patches_per_source"] == [12, 9]
    assert cfg["class_names"] == names and cfg["classes"] == list(range(6))
    assert [c["name"] for c in cfg["class_space"]] == names
    assert cfg["class_space"][4]["from"] == [{"source": str(sensors["refl"]), "value": 1}]
    # Both sources' classes are in the training share (no mapping: they stay apart).
    share = cfg["training_class_share"]
    assert all(share[str(i)] > 0 for i in range(1, 6)) and share["0"] == 0
    norm = m["normalisation"]
    assert norm["scheme"] == "per-source min/max"
    assert [s["path"] for s in norm["sources"]] == [str(sensors["dn"]), str(sensors["refl"])]
    assert norm["sources"][0]["scale"] > 1000 and norm["sources"][1]["scale"] < 1
    assert "first training source" in cfg["sample_units"]
    assert m["spectral"]["scale"] == pytest.approx(norm["sources"][0]["scale"])
    assert m["history"][-1]["step"] == 3 and np.isfinite(m["metrics"]["final_loss"])

    code, _, stderr = cli(
        "sample", "--ckpt", out, "-n", "2", "--steps", "2", "--device", "cpu", "--out", tmp_path / "samples"
    )
    assert code == 0, stderr
    with h5py.File(tmp_path / "samples" / "samples.h5", "r") as h5:
        assert h5["hsi"].shape == (2, 48, 16, 16)
        assert set(np.unique(h5["labels"][...]).tolist()) <= set(range(6))


def test_label_maps_merge_classes_and_the_autoencoder_must_cover_them(sensors, corpus_two_stream, cli, tmp_path):
    spec = tmp_path / "corpus.yaml"
    spec.write_text(
        f"sources:\n  - path: {sensors['dn']}\n    labels: {{1: field, 2: water}}\n"
        f"  - path: {sensors['refl']}\n    labels: {{2: field}}\n"
    )
    merged = ["unlabelled", "field", "water", "dn:3", "refl:1"]

    # The autoencoder of the unmapped corpus lacks the shared names: refused, nothing written.
    out = tmp_path / "refused"
    args = ("train-diffusion", "--space", "joint", "--dataset", spec, *JOINT_FAST)
    code, _, stderr = cli(*args, "--autoencoder", corpus_two_stream, "--out", out)
    assert code == 1
    assert "do not cover the corpus's class space" in stderr and "['field', 'water']" in stderr
    assert not out.exists()

    ae = train_corpus_two_stream([spec], tmp_path / "ae")
    assert manifest(ae)["autoencoder"]["class_names"] == merged
    out = tmp_path / "joint"
    code, _, stderr = cli(*args, "--autoencoder", ae, "--out", out)
    assert code == 0, stderr
    cfg = manifest(out)["config"]
    assert cfg["class_names"] == merged and cfg["classes"] == list(range(5))
    field = cfg["class_space"][1]
    assert field["name"] == "field"
    assert field["from"] == [{"source": str(sensors["dn"]), "value": 1}, {"source": str(sensors["refl"]), "value": 2}]
    assert manifest(out)["normalisation"]["sources"][0]["label_map"] == {"1": "field", "2": "water"}


def test_joint_corpus_refusals(sensors, corpus_two_stream, cli, tmp_path):
    base = ("train-diffusion", "--space", "joint", "--autoencoder", corpus_two_stream, *JOINT_FAST)
    out = tmp_path / "m"
    # A grid mismatch is named.
    code, _, stderr = cli(*base, "--dataset", sensors["dn"], "--dataset", sensors["other_grid"], "--out", out)
    assert code == 1 and "other spectral grid (32 bands" in stderr and "48 bands" in stderr
    # Change pairs stay single-dataset.
    code, _, stderr = cli(
        *base, "--dataset", sensors["dn"], "--dataset", sensors["refl"], "--pairs", sensors["dn"], "--out", out
    )
    assert code == 1 and "--pairs (change pairs) trains on one dataset" in stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_joint_source_weights_set_the_sampling_shares(sensors, tmp_path):
    from stages.data import open_corpus
    from stages.diffusion.spaces.joint import corpus_weights

    spec = tmp_path / "c.yaml"
    spec.write_text(f"- path: {sensors['dn']}\n  weight: 3\n- path: {sensors['refl']}\n  weight: 1\n")
    corpus = open_corpus([spec])
    source = np.repeat([0, 1], corpus.train_counts())
    w = corpus_weights(corpus, source, 8)
    assert w.shape == (8 * 21,) and w.sum() == pytest.approx(1.0)
    assert w.reshape(8, -1)[:, source == 0].sum() == pytest.approx(0.75)
    assert corpus_weights(open_corpus([sensors["dn"], sensors["refl"]]), source, 8) is None


# -- unmixing of a corpus, and the abundance space on it ------------------------------------------


def _match(found: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, float]:
    """The permutation of ``found`` (B, k) columns nearest ``truth`` and the worst angle (rad)."""
    import itertools

    def angle(a, b):
        return float(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))

    k = truth.shape[1]
    best = min(
        itertools.permutations(range(k)), key=lambda p: sum(angle(found[:, p[i]], truth[:, i]) for i in range(k))
    )
    return np.asarray(best), max(angle(found[:, best[i]], truth[:, i]) for i in range(k))


@pytest.fixture(scope="module")
def corpus_unmixing(mixed_sources, tmp_path_factory):
    from typer.testing import CliRunner

    from hsigen_cli.app import app

    out = tmp_path_factory.mktemp("corpus-unmix") / "u"
    args = ["unmix", mixed_sources["dn"], mixed_sources["refl"], "-k", "4", "--out", out]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return out


def test_unmix_two_sources_recovers_the_endmembers(mixed_sources, corpus_unmixing):
    from stages.artifacts.datasets import load_patches
    from stages.unmix import load_unmixing

    m = manifest(corpus_unmixing)
    dn, refl = load_patches(mixed_sources["dn"]), load_patches(mixed_sources["refl"])
    assert [i["path"] for i in m["inputs"]] == [str(mixed_sources["dn"]), str(mixed_sources["refl"])]
    assert m["unmixing"]["sources"] == [str(mixed_sources["dn"]), str(mixed_sources["refl"])]
    assert m["normalisation"]["scheme"] == "per-source min/max"
    assert m["spectral"]["scale"] == pytest.approx(dn.scale) and m["spectral"]["offset"] == pytest.approx(dn.offset)
    assert dn.scale / refl.scale == pytest.approx(10000, rel=1e-3)  # different units, same normalised spectra

    u = load_unmixing(corpus_unmixing)
    # endmembers.csv is in the first source's units (DN): the library spectra × 10 000 + 200.
    truth_dn = mixed_sources["spectra"] * 10000.0 + 200.0
    perm, worst = _match(u.endmembers, truth_dn)
    assert worst < 0.01
    assert np.abs(u.endmembers[:, perm] - truth_dn).max() < 1e-3 * truth_dn.max()
    # In the reflectance source's own units the same normalised endmembers are the library spectra.
    refl_units = u.endmembers_normalised()[:, perm] * refl.scale + refl.offset
    assert np.abs(refl_units - mixed_sources["spectra"]).max() < 1e-3 * mixed_sources["spectra"].max()

    # Abundances of every patch of both sources, recorded by source, matching the truth.
    assert u.abundances.shape == (len(dn.hsi) + len(refl.hsi), 4, 16, 16)
    assert u.source.tolist() == [0] * len(dn.hsi) + [1] * len(refl.hsi)
    with h5py.File(corpus_unmixing / "abundances.h5", "r") as h5:
        rows, split = h5["source_row"][...], h5["split"][...].astype(str)
    assert rows.tolist() == list(range(len(dn.hsi))) + list(range(len(refl.hsi)))
    assert split.tolist() == dn.split.tolist() + refl.split.tolist()
    offset = 0
    for name, patches in (("dn", dn), ("refl", refl)):
        truth = mixed_sources["truth"][name]
        for i, (r, c) in enumerate(patches.origin.astype(int)):
            expected = np.moveaxis(truth[r : r + 16, c : c + 16], -1, 0)
            assert np.abs(u.abundances[offset + i][perm] - expected).max() < 1e-3
        offset += len(patches.hsi)
    metrics = m["metrics"]
    assert metrics["reconstruction_rmse"] < 1e-4 and len(metrics["per_source"]) == 2
    assert m["unmixing"]["vca_pixels_per_source"] == [12 * 256, 9 * 256]


def test_min_volume_unmixes_a_corpus(mixed_sources, cli, tmp_path):
    """The enclosing simplex of both sources' pixels (each in its own normalisation) is the true
    one, found from VCA's; the method is recorded."""
    from stages.unmix import load_unmixing

    out = tmp_path / "mv"
    code, _, stderr = cli("unmix", mixed_sources["dn"], mixed_sources["refl"], "-k", "4", "--method", "min-volume",
                          "--out", out)  # fmt: skip
    assert code == 0, stderr
    assert manifest(out)["unmixing"]["method"] == "min-volume"
    _, worst = _match(load_unmixing(out).endmembers, mixed_sources["spectra"] * 10000.0 + 200.0)
    assert worst < 0.01


def test_unmix_corpus_refusals(sensors, mixed_sources, cli, tmp_path):
    out = tmp_path / "u"
    code, _, stderr = cli("unmix", sensors["dn"], sensors["other_grid"], "--out", out)
    assert code == 1 and "other spectral grid (32 bands" in stderr
    code, _, stderr = cli("unmix", mixed_sources["dn"], mixed_sources["refl"], "--method", "scene-net", "--out", out)
    assert code == 1 and "unmixes one dataset" in stderr
    code, _, stderr = cli("unmix", mixed_sources["dn"], mixed_sources["refl"], "-k", "49", "--out", out)
    assert code == 1 and "larger than the dataset's 48 bands" in stderr
    assert list(tmp_path.iterdir()) == []


def test_abundance_model_trains_on_every_source(mixed_sources, corpus_unmixing, cli, tmp_path):
    out = tmp_path / "hud"
    code, _, stderr = cli(
        "train-diffusion",
        "--space",
        "abundance",
        "--unmixing",
        corpus_unmixing,
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--crop",
        "8",
        "--checkpoint-every",
        "0",
        "--device",
        "cpu",
        "--out",
        out,
    )
    assert code == 0, stderr
    m = manifest(out)
    cfg = m["config"]
    assert cfg["training_maps"] == 12 + 9 and cfg["training_maps_per_source"] == [12, 9]
    assert cfg["unmixing_sources"] == [str(mixed_sources["dn"]), str(mixed_sources["refl"])]
    assert str(mixed_sources["dn"]) in cfg["sample_units"]
    assert [s["path"] for s in m["normalisation"]["sources"]] == cfg["unmixing_sources"]
    unmixed = manifest(corpus_unmixing)["spectral"]
    assert (m["spectral"]["scale"], m["spectral"]["offset"]) == (unmixed["scale"], unmixed["offset"])
    assert m["history"][-1]["step"] == 3

    code, _, stderr = cli(
        "sample", "--ckpt", out, "-n", "2", "--steps", "2", "--device", "cpu", "--out", tmp_path / "s"
    )
    assert code == 0, stderr
    with h5py.File(tmp_path / "s" / "samples.h5", "r") as h5:
        assert h5["hsi"].shape[:2] == (2, 48) and np.isfinite(h5["hsi"][...]).all()


def test_abundance_space_honours_source_weights(mixed_sources, tmp_path):
    from stages import unmix
    from stages.diffusion.spaces import abundance

    spec = tmp_path / "c.yaml"
    spec.write_text(f"- path: {mixed_sources['dn']}\n  weight: 1\n- path: {mixed_sources['refl']}\n  weight: 3\n")
    unmix.run([spec], tmp_path / "u", unmix.UnmixConfig(method="vca", endmembers=4))
    data = abundance.prepare({"unmixing": tmp_path / "u"}, 0)
    w = data.sample_weights
    assert w is not None and w.shape == (21,) and w.sum() == pytest.approx(1.0)
    assert w[12:].sum() == pytest.approx(0.75)  # the reflectance source's 9 training maps
    # The VCA subset follows the weights too: 1 : 3 of the 5 376 training pixels, capped at what a
    # source has (the reflectance source's 2 304).
    assert manifest(tmp_path / "u")["unmixing"]["vca_pixels_per_source"] == [1344, 2304]
