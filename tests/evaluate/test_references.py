"""Reference rows and the spatial / density-coverage / patch metrics: brute-force definitions on
small random inputs, the ``prdc`` package, and the checks the report must pass on the embedded
Indian Pines scene (32×32 patches at stride 8, bottom 30 % of rows held out)."""

import json

import numpy as np
import pytest

from stages.evaluate import manifold, references, spatial
from stages.evaluate.patch_fid import RandomPatchFeatures, patch_frechet_distance
from stages.evaluate.spectra import load_image_set, pixels

DEGRADED = ("shuffled-pixels", "gaussian-pixels", "box-blur-heldout", "gaussian-blur-heldout", "noise-heldout")


@pytest.fixture(scope="module")
def scene8(tmp_path_factory):
    from stages.ingest import ingest_example

    out = tmp_path_factory.mktemp("scene8") / "ip_stride8"
    ingest_example(out, size=32, stride=8, val_fraction=0.3)
    return out


@pytest.fixture(scope="module")
def scene8_sets(scene8):
    real, heldout, _ = references.split_real(load_image_set(scene8), None, True, 0)
    real_px = pixels(real, 100_000, 0)
    refs, _ = references.build(references.References.all, real, real_px.values, heldout, [], 0)
    return real, real_px, {r.name: r.images for r in refs}


@pytest.mark.parametrize("seed,k", [(0, 3), (1, 5), (2, 10)])
def test_density_coverage_equal_prdc_package(seed, k, monkeypatch):
    prdc = pytest.importorskip("prdc")
    rng = np.random.default_rng(seed)
    scale = np.linspace(3, 0.3, 10)
    real = rng.normal(size=(320, 10)) * scale
    gen = rng.normal(size=(270, 10)) * scale * 1.3 + 0.3
    monkeypatch.setattr(manifold, "ROW_CHUNK", 37)  # the pruned band search decides, not one block
    monkeypatch.setattr(manifold, "WINDOW", 40)
    ours = manifold.precision_recall(real, gen, k)
    ref = prdc.compute_prdc(real, gen, k)
    assert abs(ours.density - ref["density"]) < 1e-6 and abs(ours.coverage - ref["coverage"]) < 1e-6
    assert 0.2 < ours.coverage < 1.0  # a non-trivial case


def test_gradient_and_power_spectrum_equal_brute_force():
    rng = np.random.default_rng(3)
    cubes = rng.uniform(1, 2, (3, 2, 12, 10))
    cubes[:, :, :, :5] += 0.5  # an edge: structure, not only noise
    grads = [abs(c[b, i + 1, j] - c[b, i, j]) for c in cubes for b in range(2) for i in range(11) for j in range(10)]
    grads += [abs(c[b, i, j + 1] - c[b, i, j]) for c in cubes for b in range(2) for i in range(12) for j in range(9)]
    assert spatial.gradient_statistic(cubes) == pytest.approx(np.mean(grads) / cubes.mean(), rel=1e-12)

    stats = spatial.spatial_stats(cubes)
    window = np.outer(np.hanning(12), np.hanning(10))
    n_bins = 5
    psd = np.zeros((2, n_bins + 1))
    count = np.zeros(n_bins + 1)
    high = low = 0.0
    for u in range(12):
        for v in range(10):
            f = np.hypot(np.fft.fftfreq(12)[u], np.fft.fftfreq(10)[v])
            ring = int(np.rint(f * 2 * n_bins))
            for c in cubes:
                for b in range(2):
                    x = (c[b] - c[b].mean()) * window
                    coef = np.sum(
                        x * np.exp(-2j * np.pi * (u * np.arange(12)[:, None] / 12 + v * np.arange(10)[None] / 10))
                    )
                    p = abs(coef) ** 2 / np.sum(window**2)
                    if ring <= n_bins:
                        psd[b, ring] += p / len(cubes)
                    high += p if f > 0.25 else 0.0
                    low += p if 0 < f <= 0.25 else 0.0
            if ring <= n_bins:
                count[ring] += 1
    assert np.allclose(stats.psd, psd / count, rtol=1e-4)
    assert stats.hf_energy == pytest.approx(high / low, rel=1e-4)
    same = spatial.compare(stats, stats)
    assert same["gradient_ratio"] == 1.0 and same["log_psd_distance"] == 0.0


def test_patch_features_fixed_and_fd_zero_on_same_set(scene8_sets):
    real, _, sets = scene8_sets
    a = RandomPatchFeatures(real.cubes)(sets["real-heldout"].cubes, seed=0)
    b = RandomPatchFeatures(real.cubes)(sets["real-heldout"].cubes, seed=0)
    assert np.array_equal(a, b) and a.shape[1] == 128
    assert patch_frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_scene_checks_gradient_and_noise(scene8_sets):
    """The issue's checks: gradient ratio of real held-out within 10 % of 1, blurs below 0.7,
    shuffled and Gaussian pixels above 2; 2 % noise drops sPr below 0.7, held-out stays >= 0.95."""
    real, real_px, sets = scene8_sets
    real_stats = spatial.spatial_stats(real.cubes)
    ratio = {
        name: spatial.compare(spatial.spatial_stats(s.cubes), real_stats)["gradient_ratio"]
        for name, s in sets.items()
        if name != "noise-heldout"
    }
    assert abs(ratio["real-heldout"] - 1) < 0.1, ratio
    assert ratio["box-blur-heldout"] < 0.7 and ratio["gaussian-blur-heldout"] < 0.7, ratio
    assert ratio["shuffled-pixels"] > 2 and ratio["gaussian-pixels"] > 2, ratio
    spr = {
        name: manifold.precision_recall(real_px.values, pixels(sets[name], 100_000, 1).values, 10).precision
        for name in ("real-heldout", "noise-heldout")
    }
    assert spr["real-heldout"] >= 0.95 and spr["noise-heldout"] < 0.7, spr


def test_report_references_and_verdicts(cli, scene8, scene8_sets, tmp_path, samples_writer):
    """Every degraded set is worse than real-heldout on a metric of the report and its verdict
    names that metric; reference rows are in report.md and report.json."""
    real = scene8_sets[0]
    train_copy = samples_writer(tmp_path / "train_copy", real.cubes, real.wavelengths_nm, scale=5000.0)
    out = tmp_path / "eval"
    code, stdout, stderr = cli(
        "evaluate",
        "--real",
        scene8,
        "--generated",
        train_copy,
        "--references",
        "all",
        "--metrics",
        "spr_srec,prdc,spatial,patch_fd",
        "--out",
        out,
        "--json",
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report == json.loads((out / "report.json").read_text())
    rows = {r["name"]: r for r in report["references"]}
    assert list(rows)[:3] == ["real-heldout", "shuffled-pixels", "gaussian-pixels"]
    heldout = rows["real-heldout"]["metrics"]
    for name in DEGRADED:
        flags = rows[name]["verdict"]["flags"]
        assert flags, name
        for f in flags:
            better = report["metric_info"][f["metric"]]["better"]
            v, h = rows[name]["metrics"][f["metric"]], heldout[f["metric"]]
            worse = v < h if better == "higher" else v > h if better == "lower" else abs(np.log(v)) > abs(np.log(h))
            assert worse, (name, f)
            assert f["detail"] in rows[name]["verdict"]["text"]
    texts = {name: rows[name]["verdict"]["text"] for name in DEGRADED}
    assert "too smooth" in texts["box-blur-heldout"] and "too smooth" in texts["gaussian-blur-heldout"]
    assert "sPr" in texts["noise-heldout"]
    assert "too rough" in texts["shuffled-pixels"] and "spectra close to real" in texts["shuffled-pixels"]
    # The generated set is the real train split itself: judged close to real everywhere.
    assert report["generated"][0]["verdict"]["flags"] == []
    md = (out / "report.md").read_text()
    assert "| metric | source | *ref:* real-heldout | *ref:* shuffled-pixels |" in md
    assert "*ref:* box-blur-heldout: " in md and "patch FD features: " in md and "figures/psd.png" in md
    assert (out / "figures" / "psd.png").stat().st_size > 5000


def test_same_seed_same_numbers_and_references_none(cli, ip_dataset, ip_samples, tmp_path):
    args = ("evaluate", "--real", ip_dataset, "--generated", ip_samples, "--metrics", "spr_srec,prdc,spatial", "--json")
    reports = []
    for name in ("a", "b"):
        code, stdout, stderr = cli(*args, "--out", tmp_path / name)
        assert code == 0, stderr
        reports.append(json.loads(stdout))
    strip = lambda r: [row["metrics"] for row in r["references"] + r["generated"]]  # noqa: E731
    assert strip(reports[0]) == strip(reports[1])
    assert [r["name"] for r in reports[0]["references"]] == ["real-heldout", "shuffled-pixels", "gaussian-pixels"]
    code, stdout, stderr = cli(*args, "--references", "none", "--out", tmp_path / "none")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["references"] == [] and "--references none" in report["generated"][0]["verdict"]["text"]
    assert report["generated"][0]["metrics"] == reports[0]["generated"][0]["metrics"]


def test_c2st_needs_references_and_cli_enum_matches(cli, ip_dataset, ip_samples, tmp_path):
    from hsigen_cli.choices import References as ReferenceRows
    from stages.common.errors import ConfigError
    from stages.evaluate import EvaluateConfig
    from stages.evaluate.report import _validate

    assert [r.value for r in ReferenceRows] == [r.value for r in references.References]
    with pytest.raises(ConfigError, match="real-heldout"):
        _validate(EvaluateConfig(metrics=["c2st"], references="none"))
    with pytest.raises(ConfigError, match="choose none, auto or all"):
        _validate(EvaluateConfig(references="some"))
    out = tmp_path / "never"
    code, stdout, stderr = cli(
        "evaluate",
        "--real",
        ip_dataset,
        "--generated",
        ip_samples,
        "--metrics",
        "c2st",
        "--references",
        "none",
        "--out",
        out,
    )
    assert code == 1 and "real-heldout" in stderr and stdout == "" and not out.exists()


def test_c2st_separates_shuffled_pixels_from_real(scene8_sets):
    from stages.evaluate.c2st import two_sample_test

    real, _, sets = scene8_sets
    shuffled = two_sample_test(real.cubes, sets["shuffled-pixels"].cubes, folds=2, steps=60, seed=0)
    assert shuffled["mean"] > 0.9 and shuffled["folds"] == 2
    assert shuffled == two_sample_test(real.cubes, sets["shuffled-pixels"].cubes, folds=2, steps=60, seed=0)
