"""Corpora for `evaluate train-classifier` and `evaluate downstream`: two datasets in different
units (DN and reflectance, the `sensors` fixture: 12 + 9 training and 4 + 3 held-out 16×16 patches,
labels 1..3 and 1..2), every source in physical units by its own scale/offset, labels in the
corpus's class space; change pairs and --scene-labels stay one dataset; a grid mismatch is refused
before anything is written."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from downstream_helpers import STEPS, write_perturbed_samples

NAMES = ["unlabelled", "dn:1", "dn:2", "dn:3", "refl:1", "refl:2"]
CLF_ARGS = ("--steps", "20", "--batch-size", "64", "--device", "cpu")


def _nothing_written(path):
    return not path.exists() and not list(path.parent.glob(f".hsigen-tmp-{path.name}-*"))


def _labelled_pixels(dataset) -> dict:
    """Brute force: {(split, label value): distinct labelled scene pixels} of one dataset, each
    pixel identified by its scene coordinates (patch origin + offset)."""
    with h5py.File(dataset / "patches.h5", "r") as h5:
        labels, origin = h5["labels"][...], h5["origin"][...]
        split = h5["split"][...].astype(str)
    seen, counts = set(), {}
    for i in range(len(labels)):
        for r, c in zip(*np.nonzero(labels[i] > 0)):
            key = (int(origin[i, 0]) + int(r), int(origin[i, 1]) + int(c))
            if key not in seen:
                seen.add(key)
                k = (split[i], int(labels[i, r, c]))
                counts[k] = counts.get(k, 0) + 1
    return counts


def _count(counts: dict, split: str, values=None) -> int:
    return sum(n for (s, v), n in counts.items() if s == split and (values is None or v in values))


def _manifest(path) -> dict:
    return json.loads((path / "manifest.json").read_text())


# -- train-classifier ----------------------------------------------------------------------------


def test_classifier_on_two_sources_counts_every_labelled_pixel(sensors, cli, tmp_path):
    out = tmp_path / "clf"
    code, _, stderr = cli("evaluate", "train-classifier", sensors["dn"], sensors["refl"], *CLF_ARGS, "--out", out)
    assert code == 0, stderr
    dn, refl = _labelled_pixels(sensors["dn"]), _labelled_pixels(sensors["refl"])
    m = _manifest(out)
    assert [i["path"] for i in m["inputs"]] == [str(sensors["dn"]), str(sensors["refl"])]
    # 64·48 dn train pixels (rows 0..47) + 48·48 refl train pixels (rows 0..47), every one labelled.
    assert m["metrics"]["train_pixels"] == _count(dn, "train") + _count(refl, "train") == 3072 + 2304
    assert m["metrics"]["heldout_pixels"] == _count(dn, "val") + _count(refl, "val") == 1024 + 768
    assert [s["train_pixels"] for s in m["sources"]] == [3072, 2304]
    assert m["class_names"] == NAMES[1:] and m["classes"] == [1, 2, 3, 4, 5]
    assert [c["name"] for c in m["class_space"]] == NAMES
    assert m["train_pixels_per_class"] == {
        "dn:1": _count(dn, "train", {1}),
        "dn:2": _count(dn, "train", {2}),
        "dn:3": _count(dn, "train", {3}),
        "refl:1": _count(refl, "train", {1}),
        "refl:2": _count(refl, "train", {2}),
    }
    assert m["sources"][0]["scale"] > 1000 and m["sources"][1]["scale"] < 1
    assert m["spectral"]["scale"] == 1.0 and m["spectral"]["offset"] == 0.0  # physical units
    meta = json.loads((out / "classifier.json").read_text())
    assert meta["classes"] == [1, 2, 3, 4, 5] and meta["extra"]["class_names"] == NAMES[1:]
    assert [s["path"] for s in meta["extra"]["sources"]] == [str(sensors["dn"]), str(sensors["refl"])]

    # The standardisation is over physical spectra: the band means are the pixel-weighted means
    # of both sources' physical training pixels.
    from stages.artifacts.datasets import load_patches

    phys = []
    for path in (sensors["dn"], sensors["refl"]):
        p = load_patches(path)
        x = p.physical()[p.split == "train"]
        phys.append(x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1]))
    np.testing.assert_allclose(meta["mean"], np.concatenate(phys).astype(np.float64).mean(0), rtol=1e-4)

    # evaluate takes it: the classifier metrics over the union of both real sources, its classes named.
    code, _, stderr = cli(
        "evaluate", "--real", sensors["dn"], "--real", sensors["refl"], "--generated", sensors["refl"],
        "--classifier", out, "--metrics", "sd,fid,kid,is", "--references", "none", "--kid-subset-size", "100",
        "--kid-subsets", "5", "--max-spectra", "2000", "--device", "cpu", "--out", tmp_path / "eval",
    )  # fmt: skip
    assert code == 0, stderr
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["classifier"]["class_names"] == NAMES[1:]
    assert report["classifier"]["trained_on"] == [str(sensors["dn"]), str(sensors["refl"])]
    metrics = report["generated"][0]["metrics"]
    assert np.isfinite(metrics["fid_spectral"]) and 1.0 <= metrics["is_spectral"]["mean"] <= 5.0
    assert np.isfinite(metrics["sd"]["mean"])


def test_classifier_label_map_merges_two_classes(sensors, cli, tmp_path):
    spec = tmp_path / "corpus.yaml"
    spec.write_text(
        f"sources:\n  - path: {sensors['dn']}\n    labels: {{1: field}}\n"
        f"  - path: {sensors['refl']}\n    labels: {{2: field}}\n"
    )
    out = tmp_path / "clf"
    code, _, stderr = cli("evaluate", "train-classifier", spec, *CLF_ARGS, "--out", out)
    assert code == 0, stderr
    dn, refl = _labelled_pixels(sensors["dn"]), _labelled_pixels(sensors["refl"])
    m = _manifest(out)
    assert m["class_names"] == ["field", "dn:2", "dn:3", "refl:1"] and m["classes"] == [1, 2, 3, 4]
    per_class = m["train_pixels_per_class"]
    assert per_class["field"] == _count(dn, "train", {1}) + _count(refl, "train", {2})
    assert per_class["refl:1"] == _count(refl, "train", {1})
    assert sum(per_class.values()) == m["metrics"]["train_pixels"] == 3072 + 2304
    assert m["config"]["sources"][0]["labels"] == {"1": "field"}

    code, stdout, stderr = cli("evaluate", "train-classifier", spec, "--dry-run", "--json", "--out", tmp_path / "dry")
    assert code == 0, stderr
    info = json.loads(stdout)
    assert info["classes"] == 4 and info["bands"] == 48


def test_classifier_corpus_refusals(sensors, cli, tmp_path):
    out = tmp_path / "clf"
    code, _, stderr = cli("evaluate", "train-classifier", sensors["dn"], sensors["other_grid"], *CLF_ARGS, "--out", out)
    assert code == 1
    assert "other spectral grid (32 bands" in stderr and "48 bands" in stderr and str(sensors["other_grid"]) in stderr
    assert _nothing_written(out)

    spec = tmp_path / "weighted.yaml"
    spec.write_text(f"- path: {sensors['dn']}\n  weight: 2\n- {sensors['refl']}\n")
    code, _, stderr = cli("evaluate", "train-classifier", spec, *CLF_ARGS, "--out", out)
    assert code == 1 and "weight:" in stderr and _nothing_written(out)

    labels = tmp_path / "labels.npy"
    np.save(labels, np.ones((64, 64), np.int32))
    code, _, stderr = cli(
        "evaluate", "train-classifier", sensors["dn"], sensors["refl"], "--labels", labels, *CLF_ARGS, "--out", out
    )
    assert code == 1 and "--labels" in stderr and _nothing_written(out)


# -- downstream ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dn_samples(sensors, tmp_path_factory):
    """Eight perturbed dn training patches with their labels (dn's values 1..3, which are the
    corpus's ids of dn:1..dn:3), stored in units of their own."""
    return write_perturbed_samples(sensors["dn"], tmp_path_factory.mktemp("corpus-down") / "samples", n=8, seed=4)


def _downstream(cli, task, reals, synthetic, out, *extra):
    real_args = [a for r in reals for a in ("--real", r)]
    return cli(
        "evaluate", "downstream", "--task", task, *real_args, "--synthetic", synthetic, "--device", "cpu",
        "--out", out, *extra,
    )  # fmt: skip


def test_denoise_on_two_sources_trains_and_tests_on_their_union(sensors, dn_samples, cli, tmp_path):
    out = tmp_path / "denoise"
    code, _, stderr = _downstream(
        cli, "denoise", [sensors["dn"], sensors["refl"]], dn_samples, out, "--steps", STEPS["denoise"]
    )
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    s = report["settings"]
    assert s["train_patches"] == 12 + 9 and s["test_patches"] == 4 + 3
    assert [r["real_patches"] for r in report["runs"]] == [21, 21, 21]
    assert [r["synthetic_patches"] for r in report["runs"]] == [8, 8, 8]  # all 8: ratio 1 × 21
    assert report["real"] == [str(sensors["dn"]), str(sensors["refl"])]
    sources = report["real_sources"]
    assert [(r["train_patches"], r["test_patches"]) for r in sources] == [(12, 4), (9, 3)]
    assert sources[0]["scale"] > 1000 and sources[1]["scale"] < 1
    assert "each real source in its own normalisation" in s["real_units"]
    m = _manifest(out)
    assert [i["path"] for i in m["inputs"]] == [str(sensors["dn"]), str(sensors["refl"]), str(dn_samples)]
    md = (out / "report.md").read_text()
    assert f"`{sensors['dn']}` (12 train / 4 test patches)" in md and f"`{sensors['refl']}` (9 train / 3 test" in md
    for name in report["training_sets"]:
        assert np.isfinite(report["summary"][name]["psnr"]["mean"])


def test_union_reads_every_source_in_its_own_normalisation_and_the_corpus_classes(sensors):
    """The union's values are each source's stored values (its own normalisation, as corpus
    training reads them), the synthetic reference is the first source's units, and its labels
    the corpus's class ids."""
    from stages.artifacts.datasets import load_patches
    from stages.data import open_corpus
    from stages.downstream.corpus import union_splits

    corpus = open_corpus([sensors["dn"], sensors["refl"]])
    train, val = union_splits(corpus, labelled=True)
    assert len(train) == 21 and len(val) == 7
    got = train.read(np.arange(21))
    refl = load_patches(sensors["refl"])
    np.testing.assert_allclose(got["hsi"][12:], refl.hsi[refl.split == "train"], rtol=0, atol=1e-6)
    dn = load_patches(sensors["dn"])
    np.testing.assert_allclose(got["hsi"][:12], dn.hsi[dn.split == "train"], rtol=0, atol=1e-6)
    assert (train.ref_scale, train.ref_offset) == pytest.approx((dn.scale, dn.offset))
    # Each part converts its own values to physical units.
    want = refl.physical()[refl.split == "train"]
    np.testing.assert_allclose(train.parts[1].physical(got["hsi"][12:]), want, rtol=1e-4, atol=1e-4 * float(want.max()))
    dn = load_patches(sensors["dn"])
    assert set(np.unique(got["labels"][:12])) == {1, 2, 3}  # dn:1..3
    assert set(np.unique(got["labels"][12:])) == {4, 5}  # refl:1, refl:2
    np.testing.assert_array_equal(got["labels"][12:], refl.labels[refl.split == "train"] + 3)
    np.testing.assert_array_equal(got["labels"][:12], dn.labels[dn.split == "train"])


def test_segment_on_two_sources_uses_the_corpus_classes(sensors, dn_samples, cli, tmp_path):
    out = tmp_path / "segment"
    code, _, stderr = _downstream(cli, "segment", [sensors["dn"], sensors["refl"]], dn_samples, out, "--steps", "6")
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    s = report["settings"]
    assert s["classes"] == [1, 2, 3, 4, 5]
    assert s["class_names"] == {str(i): NAMES[i] for i in range(1, 6)}
    assert s["synthetic_labels"] == [{"path": str(dn_samples), "labels": "labels read as the corpus's class ids"}]
    assert set(report["runs"][0]["real"]["per_class_iou"]) == {"1", "2", "3", "4", "5"}
    # Every test pixel is scored: the 4 + 3 val patches of 16×16 px are labelled everywhere.
    assert report["runs"][0]["real"]["pixels"] == (4 + 3) * 16 * 16


def test_pixel_classify_on_two_sources_pools_their_labelled_pixels(sensors, dn_samples, cli, tmp_path):
    out = tmp_path / "pixels"
    code, _, stderr = _downstream(
        cli, "pixel-classify", [sensors["dn"], sensors["refl"]], dn_samples, out, "--steps", "10", "--per-class", "5"
    )
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    dn, refl = _labelled_pixels(sensors["dn"]), _labelled_pixels(sensors["refl"])
    s = report["settings"]
    assert s["classes"] == [1, 2, 3, 4, 5]
    assert s["train_pool_pixels"] == _count(dn, "train") + _count(refl, "train") == 5376
    assert s["test_pixels"] == _count(dn, "val") + _count(refl, "val") == 1792
    assert [r["real_pixels"] for r in report["runs"]] == [25, 25, 25]  # 5 per class × 5 classes
    assert [(r["train_pool_pixels"], r["test_pixels"]) for r in report["real_sources"]] == [(3072, 1024), (2304, 768)]

    # A corpus YAML as --real: its label map merges dn:1 and refl:2 into one class.
    spec = tmp_path / "corpus.yaml"
    spec.write_text(
        f"- path: {sensors['dn']}\n  labels: {{1: field}}\n- path: {sensors['refl']}\n  labels: {{2: field}}\n"
    )
    code, _, stderr = _downstream(
        cli, "pixel-classify", [spec], dn_samples, tmp_path / "merged", "--steps", "10", "--per-class", "5"
    )
    assert code == 0, stderr
    merged = json.loads((tmp_path / "merged" / "report.json").read_text())
    assert merged["settings"]["class_names"] == {"1": "field", "2": "dn:2", "3": "dn:3", "4": "refl:1"}
    assert merged["settings"]["train_pool_pixels"] == 5376 and merged["settings"]["test_pixels"] == 1792
    assert [r["real_pixels"] for r in merged["runs"]] == [20, 20, 20]  # 5 per class × 4 classes
    assert merged["real_sources"][1]["label_map"] == {"2": "field"}
    assert _manifest(tmp_path / "merged")["config"]["real_sources"][0]["labels"] == {"1": "field"}


def test_downstream_single_dataset_options_refuse_several_real(sensors, dn_samples, cli, tmp_path):
    out = tmp_path / "down"
    code, _, stderr = _downstream(cli, "change", [sensors["dn"], sensors["refl"]], dn_samples, out)
    assert code == 1
    assert "--task change trains on the (t1, t2, change mask) pairs of one dataset; give one --real" in stderr
    assert _nothing_written(out) and not list(tmp_path.glob(".down-downstream*"))

    scenes = tmp_path / "scenes.npy"
    np.save(scenes, np.ones(16, np.int64))
    code, _, stderr = _downstream(
        cli, "scene-classify", [sensors["dn"], sensors["refl"]], dn_samples, out, "--scene-labels", scenes
    )
    assert code == 1 and "--scene-labels" in stderr and "one class per patch of one dataset" in stderr
    assert _nothing_written(out)


def test_downstream_grid_mismatch_refused(sensors, dn_samples, cli, tmp_path):
    out = tmp_path / "down"
    code, _, stderr = _downstream(cli, "denoise", [sensors["dn"], sensors["other_grid"]], dn_samples, out)
    assert code == 1
    assert str(sensors["other_grid"]) in stderr and "other spectral grid (32 bands" in stderr and "48 bands" in stderr
    assert _nothing_written(out)


def test_scene_classify_on_two_sources_counts_each_scene_of_each_source(sensors, dn_samples, cli, tmp_path):
    out = tmp_path / "scenes"
    code, _, stderr = _downstream(
        cli, "scene-classify", [sensors["dn"], sensors["refl"]], dn_samples, out, "--steps", "6"
    )
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    # 8×8 windows of the val patches: 4 dn patches × 4 + 3 refl patches × 4 = 28 scenes. Both scenes'
    # val patches start at the same origins, so counting positions across sources would give 16.
    assert report["runs"][0]["real"]["scenes"] == 4 * 4 + 3 * 4
    assert report["settings"]["classes"] == [1, 2, 3, 4, 5]
    assert sum(report["settings"]["train_scene_counts"].values()) == (12 + 9) * 4


def test_samples_of_a_corpus_model_are_mapped_to_the_real_classes_by_name(sensors, corpus_two_stream, cli, tmp_path):
    """A joint model trained on dn + refl names its classes; with --real refl --real dn (another
    class order) its samples' labels are mapped by those names; a corpus lacking them is refused."""
    from stages.common.errors import ConfigError
    from stages.data import open_corpus
    from stages.downstream.corpus import synthetic_label_lut

    model, samples = tmp_path / "joint", tmp_path / "samples"
    code, _, stderr = cli(
        "train-diffusion", "--space", "joint", "--autoencoder", corpus_two_stream, "--dataset", sensors["dn"],
        "--dataset", sensors["refl"], "--steps", "2", "--batch-size", "4", "--checkpoint-every", "0",
        "--device", "cpu", "--out", model,
    )  # fmt: skip
    assert code == 0, stderr
    code, _, stderr = cli("sample", "--ckpt", model, "-n", "2", "--steps", "2", "--device", "cpu", "--out", samples)
    assert code == 0, stderr

    lut, how = synthetic_label_lut(samples, open_corpus([sensors["refl"], sensors["dn"]]))
    # model ids: unlabelled, dn:1, dn:2, dn:3, refl:1, refl:2; this corpus: unlabelled, refl:1, refl:2, dn:1..3
    assert lut.tolist() == [0, 3, 4, 5, 1, 2] and "by their model's class names" in how
    lut, _ = synthetic_label_lut(samples, open_corpus([sensors["dn"], sensors["refl"]]))
    assert lut.tolist() == [0, 1, 2, 3, 4, 5]
    spec = tmp_path / "merged.yaml"
    spec.write_text(f"- path: {sensors['dn']}\n  labels: {{1: field}}\n- {sensors['refl']}\n")
    with pytest.raises(ConfigError, match=r"\['dn:1'\] are not classes of the real corpus"):
        synthetic_label_lut(samples, open_corpus([spec]))
