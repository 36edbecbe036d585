"""The spectral manifold (``unmix --method manifold``, ``sample --spectral-manifold``): it recovers a
known curved manifold of spectra that no linear mixing model fits, pulls perturbed spectra back
onto it, round-trips through its files exactly, and the stages around it refuse bad input with
nothing written."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from stages.common.runtime import torch_threads
from stages.unmix.manifold import (
    METRIC_PIXELS,
    NEAREST_ITERATIONS,
    ManifoldConfig,
    SpectralManifold,
    evenly_spaced,
    fit,
    load_manifold,
)

BANDS = 48
MANIFOLD_STEPS = 3000  # fitting steps of the Indian Pines manifold (fixed; about 10 s on one core)


def _bilinear_scene(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Spectra of a 2-D curved manifold: three smooth endmembers mixed with abundances (a1, a2,
    1 − a1 − a2) plus the bilinear term 0.8·a1·a2·(e1 ⊙ e2)/max (Fan's bilinear mixing model), in
    reflectance × 10⁴. Returns (spectra (n, B), abundances (n, 2))."""
    wl = np.linspace(0, 1, BANDS)
    e = np.stack([0.2 + 0.5 * np.exp(-((wl - c) ** 2) / 0.02) for c in (0.2, 0.5, 0.8)])  # (3, B)
    rng = np.random.default_rng(seed)
    a = rng.dirichlet(np.ones(3), size=n)
    spectra = a @ e + 0.8 * (a[:, 0] * a[:, 1])[:, None] * (e[0] * e[1]) / (e[0] * e[1]).max()
    return spectra * 1e4, a[:, :2]


@pytest.fixture(scope="module")
def fitted():
    train, _ = _bilinear_scene(4000, seed=0)
    with torch_threads(1):
        model, loss = fit(train, ManifoldConfig(dims=2, hidden=64, steps=1500, batch_size=512, lr=3e-3))
    return model, loss


def _relative_error(a, b):
    return np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def test_it_recovers_a_curved_manifold_no_linear_mixing_fits(fitted):
    model, loss = fitted
    held_out, _ = _bilinear_scene(500, seed=1)
    error = np.median(_relative_error(model.project_pixels(held_out), held_out))
    # The best linear model of the same dimension (the affine principal plane, what two
    # endmembers' mixtures span at best) misses the curvature.
    mean = held_out.mean(0)
    _, _, vt = np.linalg.svd(held_out - mean, full_matrices=False)
    plane = (held_out - mean) @ vt[:2].T @ vt[:2] + mean
    linear_error = np.median(_relative_error(plane, held_out))
    assert error < 0.004, error
    assert linear_error > 3 * error, (linear_error, error)
    assert np.isfinite(loss) and loss < 1e-3


def _distance_to_manifold(spectra, dense):
    """Each spectrum's relative distance to the nearest of ``dense`` points of the manifold (brute force)."""
    import torch

    d = torch.cdist(torch.tensor(spectra, dtype=torch.float64), torch.tensor(dense)).min(1).values.numpy()
    return d / np.linalg.norm(spectra, axis=1)


def test_it_pulls_perturbed_spectra_back_onto_the_manifold(fitted):
    model, _ = fitted
    clean, _ = _bilinear_scene(300, seed=2)
    dense, _ = _bilinear_scene(60000, seed=9)
    rng = np.random.default_rng(3)
    # 2 % smooth (low-frequency) perturbations: what a generator's spectral errors look like.
    wl = np.linspace(0, 1, BANDS)
    bumps = np.stack([np.sin(np.pi * f * wl + p) for f, p in zip(rng.uniform(1, 4, 300), rng.uniform(0, 6, 300))])
    noisy = clean * (1 + 0.02 * bumps)
    off_before = np.median(_distance_to_manifold(noisy, dense))
    off_after = np.median(_distance_to_manifold(model.project_pixels(noisy), dense))
    floor = np.median(_distance_to_manifold(clean, dense))  # the dense sampling's own spacing
    assert off_before > 0.005 and off_after < max(off_before / 4, 2 * floor), (off_before, off_after, floor)
    # The part of the error along the manifold stays (a projection cannot know it): never worse than before.
    assert np.median(_relative_error(model.project_pixels(noisy), clean)) < np.median(_relative_error(noisy, clean))


def test_decoding_reaches_the_nearest_manifold_point_found_by_brute_force(fitted):
    """The projection is the least-squares point of the manifold: Levenberg–Marquardt from the
    encoder's guess ends where an exhaustive search over a dense grid of the decoder's coordinates
    does, and never farther from a spectrum than the guess."""
    import torch

    model, _ = fitted
    clean, _ = _bilinear_scene(200, seed=12)
    # 5 % brightness errors: off the manifold where the encoder's guess is furthest from the nearest
    # point (for smooth 2 % bumps the guess is within 1 % of it on this simple manifold).
    noisy = clean * (1 + 0.05 * np.random.default_rng(13).standard_normal((200, 1)))
    weights = model.error_weights().double()

    def error(spectra, points):  # the squared error nearest() minimises, per pixel
        z = model.whiten(torch.tensor(spectra, dtype=torch.float32)).double()
        p = model.whiten(torch.tensor(points, dtype=torch.float32)).double()
        return (((p - z) ** 2) * weights).sum(1).numpy()

    guess = error(noisy, model.project_pixels(noisy, iterations=0))
    found = error(noisy, model.project_pixels(noisy))
    assert np.all(found <= guess * (1 + 1e-5)), np.max(found / guess)
    # Brute force: decode a 400 x 400 grid spanning the coordinates real spectra take (and a margin).
    with torch.no_grad():
        coords = model.encode(model.whiten(torch.tensor(clean, dtype=torch.float32)))
        lo, hi = coords.min(0).values, coords.max(0).values
        margin = 0.2 * (hi - lo)
        axes = [torch.linspace(float(a - m), float(b + m), 400) for a, b, m in zip(lo, hi, margin)]
        grid = torch.cartesian_prod(*axes)
        root = weights.sqrt()  # the weighted error as a plain distance
        points = model.decode(grid).double() * root
        z = model.whiten(torch.tensor(noisy, dtype=torch.float32)).double() * root
        brute = (torch.cdist(z, points).min(1).values ** 2).numpy()
    # The grid's spacing bounds how close brute force gets, so allow 2 % above its minimum; the
    # encoder's guess is well above it.
    assert np.median(found / brute) < 1.02 and np.percentile(found / brute, 95) < 1.05, np.percentile(found / brute, 95)
    assert np.median(guess / brute) > 1.04 and np.percentile(guess / brute, 90) > 1.2, np.median(guess / brute)


def test_projecting_images_and_normalised_units_agree_with_pixels(fitted):
    model, _ = fitted
    spectra, _ = _bilinear_scene(2 * 4 * 4, seed=4)
    cubes = np.moveaxis(spectra.reshape(2, 4, 4, BANDS), -1, 1)
    projected = model.project(cubes)
    assert projected.shape == cubes.shape
    np.testing.assert_allclose(np.moveaxis(projected, 1, -1).reshape(-1, BANDS), model.project_pixels(spectra))
    scale, offset = 1e4, 100.0
    normalised = model.project_normalised((cubes - offset) / scale, scale, offset)
    np.testing.assert_allclose(normalised * scale + offset, projected, rtol=1e-5, atol=0.05)


def test_files_round_trip_exactly(fitted, tmp_path):
    model, _ = fitted
    model.save(tmp_path / "w.safetensors")
    again = SpectralManifold.read(tmp_path / "w.safetensors", model.dims, model.hidden)
    spectra, _ = _bilinear_scene(100, seed=5)
    assert np.array_equal(again.project_pixels(spectra), model.project_pixels(spectra))


@pytest.fixture(scope="module")
def ip_manifold(ip_dataset, tmp_path_factory):
    from stages import unmix

    out = tmp_path_factory.mktemp("manifold") / "ip"
    cfg = unmix.UnmixConfig(
        method="manifold", endmembers=4, manifold={"steps": MANIFOLD_STEPS, "hidden": 64, "batch_size": 512, "lr": 5e-3}
    )
    with torch_threads(1):
        unmix.run(ip_dataset, out, cfg)
    return out


def test_unmix_fits_the_scene_better_than_a_linear_mixing_model(ip_manifold, ip_dataset):
    manifest = json.loads((ip_manifold / "manifest.json").read_text())
    assert manifest["kind"] == "spectral-manifold" and manifest["manifold"]["dims"] == 4
    assert manifest["config"]["method"] == "manifold" and manifest["config"]["steps"] == MANIFOLD_STEPS
    # The val pixels (never seen in the fit) through it, against the best linear model of as many
    # dimensions: the train pixels' affine principal subspace (what 5 endmembers' mixtures span at best).
    from stages.artifacts.datasets import load_patches

    def pixels(split):
        p = load_patches(ip_dataset, split)
        return np.moveaxis(p.hsi * p.scale + p.offset, 1, -1).reshape(-1, p.hsi.shape[1]).astype(np.float64)

    train, val = pixels("train"), pixels("val")
    mean = train.mean(0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    linear = np.sqrt(np.mean(((val - mean) @ vt[:4].T @ vt[:4] + mean - val) ** 2))
    rmse = manifest["metrics"]["val"]["reconstruction_rmse"]
    model, _ = load_manifold(ip_manifold)
    measured = evenly_spaced(val)  # the fit's metrics use at most METRIC_PIXELS pixels per split
    assert len(measured) <= METRIC_PIXELS < len(val)
    assert rmse == pytest.approx(np.sqrt(np.mean((model.project_pixels(measured) - measured) ** 2)), rel=1e-4)
    assert rmse == pytest.approx(np.sqrt(np.mean((model.project_pixels(val) - val) ** 2)), rel=0.02)
    assert rmse < 0.8 * linear, (rmse, linear)
    assert model.dims == 4 and model.bands == 48


def _sample_raw_and_projected(cli, ckpt: str, manifold, tmp_path) -> tuple[dict, dict]:
    """Two samples of ``ckpt`` (fixed seed), without and with ``--spectral-manifold``: each run's
    samples.h5 as {hsi, labels (or None), scale, offset}."""
    common = ("--ckpt", ckpt, "-n", "2", "--steps", "4", "--seed", "5")
    runs = []
    for name, extra in (("raw", ("--spectral-manifold", "none")), ("projected", ("--spectral-manifold", manifold))):
        code, _, err = cli("sample", *common, *extra, "--out", tmp_path / name)
        assert code == 0, err
        with h5py.File(tmp_path / name / "samples.h5", "r") as h5:
            runs.append({"hsi": h5["hsi"][...], "labels": h5["labels"][...] if "labels" in h5 else None,
                         "scale": float(h5.attrs["scale"]), "offset": float(h5.attrs["offset"])})  # fmt: skip
    return runs[0], runs[1]


def test_sample_decodes_through_the_manifold_and_records_it(cli, ip_manifold, tmp_path):
    raw_run, projected = _sample_raw_and_projected(cli, "pretrained:indian-pines-latent", ip_manifold, tmp_path)
    model, _ = load_manifold(ip_manifold)
    raw, scale, offset, got = raw_run["hsi"], raw_run["scale"], raw_run["offset"], projected["hsi"]
    np.testing.assert_allclose(got, model.project_normalised(raw, scale, offset), atol=1e-6)
    assert np.abs(got - raw).max() > 1e-3  # the projection did move the spectra
    manifest = json.loads((tmp_path / "projected" / "manifest.json").read_text())
    assert manifest["config"]["spectral_manifold"] == {
        "dims": 4,
        "by_class": False,
        "nearest_iterations": NEAREST_ITERATIONS,
    }
    assert any(i["kind"] == "spectral-manifold" for i in manifest["inputs"])


def test_bad_input_exits_1_with_the_fix_and_writes_nothing(cli, ip_dataset, ip_manifold, tmp_path):
    out = tmp_path / "m"
    code, _, err = cli("unmix", ip_dataset, "-k", "48", "--method", "manifold", "--out", out)
    assert code == 1 and "1 to 47 dimensions" in err and not out.exists()
    shutil.copytree(ip_dataset, tmp_path / "second-scene")
    code, _, err = cli("unmix", ip_dataset, tmp_path / "second-scene", "--method", "manifold", "--out", out)
    assert code == 1 and "unmixes one dataset" in err and not out.exists()
    # A manifold of another band grid is refused before anything is sampled.
    other = tmp_path / "other-grid"
    shutil.copytree(ip_manifold, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["spectral"]["wavelengths_nm"] = [w + 50 for w in manifest["spectral"]["wavelengths_nm"]]
    (other / "manifest.json").write_text(json.dumps(manifest))
    samples = tmp_path / "s"
    code, _, err = cli("sample", "--ckpt", "pretrained:indian-pines-latent", "-n", "1", "--steps", "2",
                       "--spectral-manifold", other, "--out", samples)  # fmt: skip
    assert code == 1 and "fit one on the same band grid" in err
    assert not samples.exists() and not list(tmp_path.glob(".hsigen-partial-*"))
    # It has no endmembers, so the abundance space refuses it as an unmixing.
    code, _, err = cli("train-diffusion", "--space", "abundance", "--unmixing", ip_manifold, "--steps", "1",
                       "--out", tmp_path / "d")  # fmt: skip
    assert code == 1 and "spectral-manifold artifact" in err and not (tmp_path / "d").exists()


def test_a_by_class_manifold_decodes_each_class_on_its_own(tmp_path):
    """Two classes on two different curved manifolds: fitted by class, each pixel decodes onto its own
    class's manifold; the labels are required, and a label it was not fitted on is refused."""
    from stages.common.errors import ConfigError

    first, _ = _bilinear_scene(3000, seed=10)
    second = first[:, ::-1].copy()  # the same shapes mirrored along the bands: another material
    pixels = np.concatenate([first, second])
    labels = np.repeat([3, 7], len(first))
    with torch_threads(1):
        model, _ = fit(
            pixels, ManifoldConfig(dims=2, hidden=64, steps=1500, batch_size=512, lr=3e-3, by_class=True), None, labels
        )
    assert model.classes == [3, 7]
    held, _ = _bilinear_scene(300, seed=11)
    held = np.concatenate([held, held[:, ::-1]])
    held_labels = np.repeat([3, 7], 300)
    right = np.median(_relative_error(model.project_pixels(held, held_labels), held))
    wrong = np.median(_relative_error(model.project_pixels(held, held_labels[::-1]), held))
    assert right < 0.006 and wrong > 5 * right, (right, wrong)
    model.save(tmp_path / "w.safetensors")
    again = SpectralManifold.read(tmp_path / "w.safetensors", 2, 64)
    assert again.classes == [3, 7]
    assert np.array_equal(again.project_pixels(held, held_labels), model.project_pixels(held, held_labels))
    with pytest.raises(ConfigError, match="decodes by class"):
        model.project_pixels(held)
    with pytest.raises(ConfigError, match=r"labels \[5\] are not among"):
        model.project_pixels(held[:2], np.array([3, 5]))


def test_sample_decodes_labelled_samples_by_their_generated_labels(cli, ip_dataset, tmp_path):
    out = tmp_path / "by-class"
    code, _, err = cli("unmix", ip_dataset, "-k", "3", "--method", "manifold", "--by-class", "--steps", "200",
                       "--out", out)  # fmt: skip
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["by_class"] is True and 0 in manifest["manifold"]["classes"]
    raw, projected = _sample_raw_and_projected(cli, "pretrained:indian-pines-joint", out, tmp_path)
    model, _ = load_manifold(out)
    labels = raw["labels"]
    np.testing.assert_array_equal(projected["labels"], labels)  # the masks are the generator's
    expected = model.project_normalised(raw["hsi"], raw["scale"], raw["offset"], labels, True)
    np.testing.assert_allclose(projected["hsi"], expected, atol=1e-6)
    # A model without masks cannot use it: refused before anything is written.
    code, _, err = cli("sample", "--ckpt", "pretrained:indian-pines-latent", "-n", "1", "--steps", "2",
                       "--spectral-manifold", out, "--out", tmp_path / "latent")  # fmt: skip
    assert code == 1 and "decodes by class" in err and not (tmp_path / "latent").exists()
    code, _, err = cli("unmix", ip_dataset, "--by-class", "--out", tmp_path / "vca")
    assert code == 1 and "--by-class is for --method manifold" in err and not (tmp_path / "vca").exists()
