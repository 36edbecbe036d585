"""``evaluate downstream --task ...`` end to end on the embedded Indian Pines scene, at tiny
fixed budgets (downstream_helpers.STEPS): each task writes its report and chart, its model
beats the untrained reference (noisy input, bicubic, majority class, "no change"), and every
summary is the mean ± std of the per-seed numbers with a stated verdict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from downstream_helpers import STEPS

VERDICTS = {"helps", "does not help", "within noise"}


def run_task(cli, task, real, synthetic, out, *extra):
    code, stdout, stderr = cli(
        "evaluate",
        "downstream",
        "--task",
        task,
        "--real",
        real,
        "--synthetic",
        synthetic,
        "--steps",
        STEPS[task],
        "--device",
        "cpu",
        "--out",
        out,
        "--json",
        *extra,
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report == json.loads((out / "report.json").read_text())
    return report


def check_report(report, out, sets, metrics):
    assert [r["seed"] for r in report["runs"]] == [0, 1, 2]
    assert report["training_sets"] == list(sets)
    for s in sets:
        for m in metrics:
            values = [r[s][m] for r in report["runs"]]
            assert report["summary"][s][m]["mean"] == pytest.approx(np.mean(values))
            assert report["summary"][s][m]["std"] == pytest.approx(np.std(values, ddof=1))
    for s in sets[1:]:
        c = report["comparisons"][s]
        assert c["verdict"] in VERDICTS and 0.0 <= c["p_value"] <= 1.0
        assert "paired t-test" in c["test"]
    md = (out / "report.md").read_text()
    assert "figures/downstream.png" in md and " ± " in md and report["paper"] in md
    assert any(v in md for v in VERDICTS)
    assert (out / "figures" / "downstream.png").stat().st_size > 10_000
    assert json.loads((out / "manifest.json").read_text())["kind"] == "evaluation-report"


def test_denoise_beats_noisy_input_and_scores_a_second_scene(
    cli, ip_dataset, unlabelled_samples, second_scene, tmp_path
):
    out = tmp_path / "denoise"
    report = run_task(cli, "denoise", ip_dataset, unlabelled_samples, out, "--test", second_scene)
    check_report(report, out, ("real", "real_plus_synthetic", "synthetic_only"), ("psnr", "ssim", "sam"))
    noisy = report["baseline_summary"]
    # σ = 0.2 on [0, 1] data: the noisy input is at 10·log10(1 / 0.04) ≈ 14 dB.
    assert noisy["psnr"]["mean"] == pytest.approx(13.98, abs=0.1)
    for s in report["training_sets"]:
        assert report["summary"][s]["psnr"]["mean"] > noisy["psnr"]["mean"] + 4.0
        assert report["summary"][s]["sam"]["mean"] < noisy["sam"]["mean"]
    scene = report["test_scene"]
    assert scene["patches"] == 30
    assert scene["summary"]["real"]["psnr"]["mean"] > scene["baseline_summary"]["psnr"]["mean"] + 3
    assert report["runs"][0]["synthetic_patches"] == 24  # all 24 samples: ratio 1 × 54 real patches
    assert "Second scene" in (out / "report.md").read_text()


def test_sr_beats_bicubic(cli, ip_dataset, unlabelled_samples, tmp_path):
    out = tmp_path / "sr"
    report = run_task(cli, "sr", ip_dataset, unlabelled_samples, out)
    check_report(report, out, ("real", "real_plus_synthetic", "synthetic_only"), ("psnr", "ssim", "sam", "ergas"))
    bicubic = report["baseline_summary"]
    for r in report["runs"]:
        assert r["real"]["psnr"] > r["baseline"]["psnr"]
    assert report["summary"]["real"]["ergas"]["mean"] < bicubic["ergas"]["mean"]
    assert report["settings"]["scale"] == 4


def test_segment_beats_majority_class(cli, ip_dataset, labelled_samples, tmp_path):
    out = tmp_path / "segment"
    report = run_task(cli, "segment", ip_dataset, labelled_samples, out)
    check_report(report, out, ("real", "real_plus_synthetic", "synthetic_only"), ("miou", "oa"))
    majority = report["baseline_summary"]
    assert report["summary"]["real"]["oa"]["mean"] > majority["oa"]["mean"] + 0.2
    assert report["summary"]["real"]["miou"]["mean"] > majority["miou"]["mean"] + 0.03
    per_class = report["runs"][0]["real"]["per_class_iou"]
    assert set(per_class) == {str(c) for c in report["settings"]["classes"]}


def test_change_detector_finds_changes(cli, pair_dataset, change_samples, tmp_path):
    out = tmp_path / "change"
    report = run_task(cli, "change", pair_dataset, change_samples, out)
    check_report(report, out, ("real", "real_plus_synthetic", "synthetic_only"), ("f1", "iou", "oa"))
    nothing = report["baseline_summary"]
    assert nothing["f1"]["mean"] == 0.0 and nothing["oa"]["mean"] > 0.85  # changes are rare
    assert report["summary"]["real"]["f1"]["mean"] > 0.5
    assert report["summary"]["real"]["oa"]["mean"] > nothing["oa"]["mean"]


def test_scene_classify_beats_chance(cli, ip_dataset, labelled_samples, tmp_path):
    out = tmp_path / "scene"
    report = run_task(cli, "scene-classify", ip_dataset, labelled_samples, out)
    check_report(report, out, ("real", "real_plus_synthetic"), ("oa", "kappa"))
    chance = 1.0 / len(report["settings"]["classes"])
    assert report["summary"]["real"]["oa"]["mean"] > max(chance, report["baseline_summary"]["oa"]["mean"]) + 0.05
    assert report["summary"]["real"]["kappa"]["mean"] > 0.05
