"""``--task scene-classify --scene-labels FILE``: given classes per patch instead of the majority
of a window's mask. Checked against a brute-force count of the file's classes, the reader
against bad files, and the CLI for exit 1 / nothing written."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from downstream_helpers import STEPS

from stages.common.errors import ConfigError, InputError
from stages.downstream.scene_labels import read_scene_labels


def patch_majority(dataset) -> tuple[np.ndarray, np.ndarray]:
    """(class per patch: majority labelled class, 0 when under half labelled; split per patch)."""
    with h5py.File(dataset / "patches.h5", "r") as h5:
        labels, split = h5["labels"][...], h5["split"][...].astype(str)
    out = np.zeros(len(labels), np.int64)
    for i, patch in enumerate(labels):
        labelled = patch[patch > 0]
        if labelled.size >= patch.size / 2:
            out[i] = np.bincount(labelled).argmax()
    return out, split


def test_reader_accepts_npy_and_csv_and_refuses_bad_files(tmp_path):
    classes = np.array([3, 0, 5, 5])
    np.save(tmp_path / "a.npy", classes)
    (tmp_path / "b.csv").write_text("row,class\n0,3\n1,0\n2,5\n3,5\n")
    (tmp_path / "c.txt").write_text("3\n0\n5\n5\n")
    for name in ("a.npy", "b.csv", "c.txt"):
        assert read_scene_labels(tmp_path / name, 4).tolist() == [3, 0, 5, 5]
    with pytest.raises(ConfigError, match="has 4 labels but --real has 5 patches"):
        read_scene_labels(tmp_path / "a.npy", 5)
    np.save(tmp_path / "objects.npy", np.array([{"x": 1}] * 4, dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="not a plain numeric .npy array"):
        read_scene_labels(tmp_path / "objects.npy", 4)  # never unpickled
    (tmp_path / "bad.csv").write_text("3\nforest\n")
    with pytest.raises(InputError, match="one integer class"):
        read_scene_labels(tmp_path / "bad.csv", 2)
    np.save(tmp_path / "frac.npy", np.array([1.5, 2.0]))
    with pytest.raises(InputError, match="one integer class per patch"):
        read_scene_labels(tmp_path / "frac.npy", 2)
    with pytest.raises(InputError, match="does not exist"):
        read_scene_labels(tmp_path / "missing.npy", 2)
    with pytest.raises(InputError, match=".npy array or a .csv/.txt"):
        read_scene_labels(tmp_path / "labels.json", 2)


def test_scene_classify_with_given_labels_counts_each_patch_once(cli, ip_dataset, labelled_samples, tmp_path):
    given, split = patch_majority(ip_dataset)
    labels_file = tmp_path / "scenes.csv"
    labels_file.write_text("row,class\n" + "".join(f"{i},{c}\n" for i, c in enumerate(given)))
    out = tmp_path / "given"
    code, stdout, stderr = cli(
        "evaluate", "downstream", "--task", "scene-classify", "--real", ip_dataset, "--synthetic", labelled_samples,
        "--scene-labels", labels_file, "--steps", STEPS["scene-classify"], "--device", "cpu", "--out", out, "--json",
    )  # fmt: skip
    assert code == 0, stderr
    report = json.loads(stdout)
    settings = report["settings"]
    assert settings["resolved"]["crop"] == 32  # whole patches
    assert settings["scene_labels"] == str(labels_file)
    train_classes = sorted(int(c) for c in np.unique(given[(split == "train") & (given > 0)]))
    assert settings["classes"] == train_classes
    expected_counts = {str(c): int(np.sum((split == "train") & (given == c))) for c in train_classes}
    assert settings["train_scene_counts"] == expected_counts
    scored = int(np.sum((split == "val") & np.isin(given, train_classes)))
    assert [r["baseline"]["scenes"] for r in report["runs"]] == [scored] * 3
    majority = max(expected_counts, key=expected_counts.get)
    baseline_oa = np.sum((split == "val") & (given == int(majority))) / scored
    assert report["baseline_summary"]["oa"]["mean"] == pytest.approx(baseline_oa)
    assert all(np.isfinite(r[s]["oa"]) for r in report["runs"] for s in report["training_sets"])
    assert "given labels" in (out / "report.md").read_text()
    recorded = {i["path"] for i in json.loads((out / "manifest.json").read_text())["inputs"]}
    assert any(p.endswith("scenes.csv") for p in recorded)


def test_bad_scene_labels_exit_1_and_write_nothing(cli, ip_dataset, labelled_samples, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("1\n2\n")
    cases = [
        ("scene-classify", short, "has 2 labels but --real has"),
        ("segment", short, "--scene-labels is for --task scene-classify"),
    ]
    for task, labels_file, message in cases:
        out = tmp_path / "never"
        code, stdout, stderr = cli(
            "evaluate", "downstream", "--task", task, "--real", ip_dataset, "--synthetic", labelled_samples,
            "--scene-labels", labels_file, "--steps", "2", "--out", out,
        )  # fmt: skip
        assert code == 1, stderr
        assert message in stderr and stdout == ""
        assert not out.exists()
