"""Corpora of several datasets: sources, weights, normalisation record, grid mismatch, labels."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_corpus_yaml_weights_and_label_maps(sensors, tmp_path):
    from stages.data import open_corpus

    spec = tmp_path / "corpus.yaml"
    spec.write_text(
        f"sources:\n  - path: {sensors['dn']}\n    weight: 3\n    labels: {{1: field, 2: water}}\n"
        f"  - path: {sensors['refl']}\n    weight: 1\n    labels: {{2: field}}\n"
    )
    corpus = open_corpus([spec])
    assert [s.path for s in corpus.sources] == [sensors["dn"], sensors["refl"]]
    assert corpus.weights() == pytest.approx([0.75, 0.25])
    # Each source keeps its own scale/offset: DN ≈ 8800 wide, reflectance ≈ 0.58 wide.
    norm = corpus.normalisation()
    assert norm["scheme"] == "per-source min/max"
    scales = [s["scale"] for s in norm["sources"]]
    assert scales[0] == pytest.approx(8800, rel=0.02) and scales[1] == pytest.approx(0.58, rel=0.02)
    table, names = corpus.label_table()
    # dn: 1 → field, 2 → water, 3 unmapped → own class; refl: 2 → field (shared), 1 unmapped → own class.
    assert names == ["unlabelled", "field", "water", "dn:3", "refl:1"]
    assert table[(0, 1)] == table[(1, 2)] == 1
    assert table[(0, 2)] == 2 and table[(0, 3)] == 3 and table[(1, 1)] == 4


def test_labels_kept_apart_without_maps(sensors):
    from stages.data import open_corpus

    _, names = open_corpus([sensors["dn"], sensors["refl"]]).label_table()
    assert names == ["unlabelled", "dn:1", "dn:2", "dn:3", "refl:1", "refl:2"]


def test_grid_mismatch_refused(sensors, cli, tmp_path):
    code, _, stderr = cli("train-ae", sensors["dn"], sensors["other_grid"], "--steps", "1", "--out", tmp_path / "ae")
    assert code == 1
    assert "other spectral grid (32 bands" in stderr and "48 bands" in stderr
    assert "same --bands/--range" in stderr
    assert not (tmp_path / "ae").exists() and not list(tmp_path.iterdir())


def test_same_source_twice_refused(sensors, cli, tmp_path):
    code, _, stderr = cli("train-ae", sensors["dn"], sensors["dn"], "--steps", "1", "--out", tmp_path / "ae")
    assert code == 1 and "given twice" in stderr


def test_two_units_train_together(sensors, corpus_ae):
    """A DN dataset and a reflectance dataset train one VAE; the manifest records both sources
    with their own scale/offset and the normalisation used."""
    out = corpus_ae
    manifest = json.loads((out / "manifest.json").read_text())
    assert [i["path"] for i in manifest["inputs"]] == [str(sensors["dn"]), str(sensors["refl"])]
    norm = manifest["normalisation"]
    assert norm["scheme"] == "per-source min/max" and "shape" in norm["why"]
    assert [s["path"] for s in norm["sources"]] == [str(sensors["dn"]), str(sensors["refl"])]
    assert norm["sources"][0]["scale"] > 1000 and norm["sources"][1]["scale"] < 1
    assert manifest["config"]["loader"] == "stream"
    assert manifest["training"]["training_patches"] == 12 + 9
    assert np.isfinite(manifest["metrics"]["mpsnr_db"])


def test_abundance_space_points_a_corpus_to_unmix(sensors, cli, tmp_path):
    """--space abundance trains on an unmixing: several --dataset are pointed to `unmix A B`."""
    code, _, stderr = cli(
        "train-diffusion",
        "--space",
        "abundance",
        "--dataset",
        sensors["dn"],
        "--dataset",
        sensors["refl"],
        "--out",
        tmp_path / "m",
    )
    assert code == 1 and "hsigen unmix A B" in stderr
    assert not (tmp_path / "m").exists()
