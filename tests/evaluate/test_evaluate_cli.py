"""`hsigen evaluate` end to end on the embedded Indian Pines dataset: the report, the
classifier, the downstream check, and bad input (exit 1, one message, nothing written)."""

import json

import numpy as np
import pytest

FAST = ("--max-spectra", "3000", "--kid-subsets", "5", "--kid-subset-size", "200")


@pytest.fixture(scope="module")
def val_as_samples(ip_patches, tmp_path_factory, samples_writer):
    """The real val patches stored as hsi-samples with another scale/offset: identical in
    physical units, so sPr = sRec = F_p = 1 only if units are handled."""
    val = ip_patches.subset(ip_patches.split == "val")
    out = tmp_path_factory.mktemp("copy") / "val_copy"
    return samples_writer(out, val.physical(), val.wavelengths_nm, val.labels, scale=9000.0, offset=-100.0)


def test_report_json_and_files(cli, ip_dataset, ip_samples, ip_classifier, val_as_samples, tmp_path):
    out = tmp_path / "eval"
    code, stdout, stderr = cli(
        "evaluate",
        "--real",
        ip_dataset,
        "--real-split",
        "val",
        "--generated",
        val_as_samples,
        ip_samples,
        "--classifier",
        ip_classifier,
        "--out",
        out,
        "--json",
        *FAST,
        "--max-spectra",
        "20000",
    )  # above the val split's pixel count: no subsampling
    assert code == 0, stderr
    report = json.loads(stdout)  # nothing but the JSON on stdout
    assert report == json.loads((out / "report.json").read_text())
    copy, noisy = report["generated"]
    assert copy["metrics"]["spr"] == 1.0 and copy["metrics"]["srec"] == 1.0
    assert copy["metrics"]["fp"] == pytest.approx(1.0, abs=1e-9)
    assert copy["metrics"]["fid_spectral"] == pytest.approx(0.0, abs=1e-3)
    assert copy["metrics"]["msad"]["msad"] == pytest.approx(0.0, abs=1e-6)
    m = noisy["metrics"]
    for key in ("spr", "srec", "fp", "db", "sd", "sdm", "fid_spectral", "kid_spectral", "is_spectral", "msad"):
        assert key in m, key
    assert 0.0 <= m["spr"] <= 1.0 and m["db"] <= m["fp"] <= 1.0
    assert m["fid_spectral"] > copy["metrics"]["fid_spectral"]
    # SDM = exp(mean KL) is 1 for identical images; the two samples of each condition are one patch
    # at ±5 % brightness with 2 % noise, so barely above it: measured 1.0423 (std 0.0275 over the 6
    # conditions, so ±0.02 is about two standard errors of their mean).
    assert m["sdm"]["conditions"] == 6 and m["sdm"]["mean"] == pytest.approx(1.042, abs=0.02)
    assert report["settings"]["k"] == 10 and report["settings"]["max_spectra"] == 20000
    md = (out / "report.md").read_text()
    assert "| sPr ↑ |" in md and "figures/spectra.png" in md
    for fig in ("spectra", "embedding", "samples"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 5000
    assert json.loads((out / "manifest.json").read_text())["kind"] == "evaluation-report"


def test_grouped_variant_and_metric_selection(cli, ip_dataset, ip_samples, tmp_path):
    code, stdout, stderr = cli(
        "evaluate",
        "--real",
        ip_dataset,
        "--generated",
        ip_samples,
        "--metrics",
        "spr_srec",
        "--groups",
        "3",
        "--out",
        tmp_path / "g",
        "--json",
        *FAST,
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    assert set(report["generated"][0]["metrics"]) == {
        "spr",
        "srec",
        "max_band_mean_error",
    }  # the cast rides with spr_srec
    assert report["settings"]["spr_srec_method"] == "3 groups"


def test_bad_inputs_exit_1_and_write_nothing(cli, ip_dataset, ip_samples, ip_classifier, tmp_path, samples_writer):
    out = tmp_path / "never"
    cases = [
        (("--real", ip_classifier, "--generated", ip_samples), "classifier artifact"),
        (("--real", ip_dataset, "--generated", tmp_path / "missing"), "does not exist"),
        (("--real", ip_dataset, "--generated", ip_samples, "--metrics", "sd"), "--classifier"),
        (("--real", ip_dataset, "--generated", ip_samples, "--metrics", "nope"), "unknown nope"),
        (("--real", ip_dataset, "--generated", ip_samples, "--reference", ip_dataset), "one reference image"),
    ]
    other_grid = samples_writer(tmp_path / "other_grid", np.ones((2, 40, 16, 16)), np.linspace(400, 1000, 40))
    cases.append((("--real", ip_dataset, "--generated", other_grid), "wavelength grid"))
    for args, message in cases:
        code, stdout, stderr = cli("evaluate", *args, "--out", out)
        assert code == 1, (args, stderr)
        assert message in stderr and stdout == ""
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hsigen-tmp")]


def test_classifier_artifact_and_dry_run(cli, ip_dataset, ip_classifier):
    from stages.artifacts.store import open_artifact

    art = open_artifact(ip_classifier, "classifier")
    assert art.metrics["heldout_oa"] > 0.2  # 16 classes: chance is about 0.06
    assert art.manifest["classes"] == list(range(1, 17))
    assert art.spectral["band_count"] == 48
    code, stdout, stderr = cli(
        "evaluate", "train-classifier", ip_dataset, "--out", "unused", "--preset", "paper", "--dry-run", "--json"
    )
    assert code == 0, stderr
    info = json.loads(stdout)
    assert info["channels"] == [32, 64, 128, 128] and info["parameters"] > 50_000


def test_accuracy_scores_match_sklearn():
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, cohen_kappa_score

    from stages.evaluate.classifier import accuracy_scores

    rng = np.random.default_rng(0)
    true = rng.integers(1, 6, 300)
    pred = np.where(rng.random(300) < 0.7, true, rng.integers(1, 6, 300))
    s = accuracy_scores(true, pred)
    assert s["oa"] == pytest.approx(accuracy_score(true, pred))
    assert s["aa"] == pytest.approx(balanced_accuracy_score(true, pred))
    assert s["kappa"] == pytest.approx(cohen_kappa_score(true, pred))


@pytest.mark.slow
def test_downstream_three_seeds(cli, ip_dataset, ip_samples, tmp_path, samples_writer):
    # One labelled and one unlabelled synthetic set: sample labels and pseudo-labels both run.
    from stages.artifacts.datasets import load_samples

    s = load_samples(ip_samples)
    unlabelled = samples_writer(tmp_path / "unlabelled", s.physical(), s.wavelengths_nm)
    out = tmp_path / "down"
    code, stdout, stderr = cli(
        "evaluate",
        "downstream",
        "--real",
        ip_dataset,
        "--synthetic",
        ip_samples,
        unlabelled,
        "--seeds",
        "0,1,2",
        "--per-class",
        "10",
        "--steps",
        "40",
        "--confidence",
        "0.3",
        "--out",
        out,
        "--json",
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    assert [r["seed"] for r in report["runs"]] == [0, 1, 2]
    for name in ("real", "real_plus_synthetic"):
        for key in ("oa", "aa", "kappa"):
            values = [r[name][key] for r in report["runs"]]
            summary = report["summary"][name][key]
            assert summary["mean"] == pytest.approx(np.mean(values))
            assert summary["std"] == pytest.approx(np.std(values, ddof=1))
    run0 = report["runs"][0]
    assert {src["labelling"].split(",")[0] for src in run0["synthetic_sources"]} == {"sample labels", "pseudo-labels"}
    assert run0["synthetic_pixels"] <= 5 * run0["real_pixels"]
    assert report["settings"]["test_pixels"] > 1000
    assert "± " in (out / "report.md").read_text()
    code, _, stderr = cli(
        "evaluate",
        "downstream",
        "--real",
        ip_dataset,
        "--synthetic",
        ip_samples,
        "--seeds",
        "0,1",
        "--out",
        tmp_path / "two",
    )
    assert code == 1 and "at least 3 seeds" in stderr and not (tmp_path / "two").exists()
    code, _, stderr = cli(
        "evaluate",
        "downstream",
        "--real",
        ip_dataset,
        "--synthetic",
        ip_samples,
        "--boundary",
        "-1",
        "--out",
        tmp_path / "negative",
    )
    assert code == 1 and "--boundary must be 0" in stderr and not (tmp_path / "negative").exists()
