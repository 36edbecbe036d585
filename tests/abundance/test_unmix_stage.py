"""`hsigen unmix` on the embedded Indian Pines data: files, units, metrics, bad input, and the
MSF-Diff scene network with `unmix infer` on RGB images."""

import csv

import h5py
import numpy as np

from stages.artifacts import open_artifact
from stages.artifacts.datasets import load_patches
from stages.spectral import false_colour, save_png
from stages.unmix import load_unmixing


def test_vca_fcls_artifact(ip_dataset, ip_unmixing):
    art = open_artifact(ip_unmixing, "unmixing")
    patches = load_patches(ip_dataset)
    u = load_unmixing(ip_unmixing)
    n, bands, s, _ = patches.hsi.shape
    assert u.abundances.shape == (n, 5, s, s)
    assert u.abundances.min() >= 0 and np.abs(u.abundances.sum(1) - 1).max() < 1e-6
    with open(art.file("endmembers.csv")) as f:
        header = next(csv.reader(f))
    assert header == ["wavelength_nm"] + [f"endmember_{i}" for i in range(1, 6)]
    assert np.allclose(u.wavelengths_nm, patches.wavelengths_nm, atol=1e-3)
    # Physical units: every endmember lies within the scene's physical range.
    phys = patches.physical()
    assert phys.min() - 1 <= u.endmembers.min() and u.endmembers.max() <= phys.max() + 1
    # The manifest's RMSE is the linear-mixing error recomputed from the files.
    recon = np.einsum("bk,nkhw->nbhw", u.endmembers, u.abundances.astype(np.float64))
    rmse = np.sqrt(np.mean((recon - phys) ** 2))
    assert abs(rmse - art.metrics["reconstruction_rmse"]) < 1e-3 * rmse
    assert art.metrics["reconstruction_psnr_db"] > 25
    assert art.has("endmembers.png")
    with h5py.File(art.file("abundances.h5")) as h5:
        assert h5["split"][...].astype(str).tolist() == patches.split.tolist()


def test_lsq_option_and_up_to_date(cli, ip_dataset, tmp_path):
    out = tmp_path / "lsq"
    code, stdout, _ = cli("unmix", ip_dataset, "-k", "4", "--abundance", "lsq", "--out", out)
    assert code == 0 and stdout.strip() == str(out)
    u = load_unmixing(out)
    patches = load_patches(ip_dataset)
    y = np.moveaxis(patches.hsi[:2], 1, 0).reshape(patches.hsi.shape[1], -1).astype(np.float64)
    expected = np.linalg.pinv(u.endmembers_normalised()) @ y
    got = np.moveaxis(u.abundances[:2], 1, 0).reshape(4, -1)
    assert np.allclose(got, expected, atol=1e-4)
    code, _, stderr = cli("unmix", ip_dataset, "-k", "4", "--abundance", "lsq", "--out", out)
    assert code == 0 and "up to date" in stderr


def test_min_volume_reconstructs_the_scene_better_than_vca(cli, ip_dataset, ip_unmixing, tmp_path):
    """Same k and FCLS as the VCA fixture: the enclosing simplex's mixtures are closer to the real
    pixels, and its endmembers stay physical (radiance ≥ 0)."""
    out = tmp_path / "mv"
    code, stdout, stderr = cli("unmix", ip_dataset, "-k", "5", "--method", "min-volume", "--out", out)
    assert code == 0 and stdout.strip() == str(out)
    assert "pixels stay outside it" in stderr
    art = open_artifact(out, "unmixing")
    assert art.manifest["unmixing"]["method"] == "min-volume"
    vca_rmse = open_artifact(ip_unmixing, "unmixing").metrics["reconstruction_rmse"]
    assert art.metrics["reconstruction_rmse"] < 0.9 * vca_rmse  # measured 124.1 vs 147.5
    u = load_unmixing(out)
    assert u.endmembers.min() >= -1.0
    assert u.abundances.min() >= 0 and np.abs(u.abundances.sum(1) - 1).max() < 1e-6


def test_bad_input_exits_1_and_writes_nothing(cli, ip_dataset, ip_unmixing, tmp_path):
    out = tmp_path / "never"
    code, _, stderr = cli("unmix", ip_dataset, "-k", "49", "--out", out)
    assert code == 1 and "larger than the dataset's 48 bands" in stderr
    code, _, stderr = cli("unmix", ip_unmixing, "--out", out)
    assert code == 1 and "is a unmixing artifact; this needs hsi-dataset" in stderr
    code, _, stderr = cli("unmix", tmp_path / "missing", "--out", out)
    assert code == 1 and "does not exist" in stderr
    code, _, stderr = cli("unmix", ip_dataset, "--method", "nmf", "--out", out)
    assert code == 2 and "'vca', 'min-volume', 'scene-net'" in stderr  # a usage error, before any work
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_scene_net_and_infer(cli, ip_dataset, tmp_path):
    net = tmp_path / "net"
    code, stdout, _ = cli(
        "unmix", ip_dataset, "--method", "scene-net", "--steps", "6", "--batch-size", "2", "--out", net
    )
    assert code == 0, stdout
    art = open_artifact(net, "unmixing")
    info = art.manifest["unmixing"]
    assert info["method"] == "scene-net" and len(info["rgb_bands"]) == 3
    assert [round(w) for w in info["rgb_wavelengths_nm"]] == [643, 553, 464]
    u = load_unmixing(net)
    assert u.abundances.min() >= 0 and np.abs(u.abundances.sum(1) - 1).max() < 1e-5
    assert len(art.manifest["unmixing"]["history"]) >= 1

    # External RGB images: a PNG rendered from the scene and a 3-band GeoTIFF.
    patches = load_patches(ip_dataset)
    png = tmp_path / "scene.png"
    save_png(png, false_colour(patches.hsi[5], patches.wavelengths_nm))
    code, _, stderr = cli("unmix", "infer", net, png, "--out", tmp_path / "photos", "--size", "16")
    assert code == 0, stderr
    inferred = load_unmixing(tmp_path / "photos")
    assert inferred.abundances.shape == (4, 5, 16, 16)
    assert np.abs(inferred.abundances.sum(1) - 1).max() < 1e-5
    assert np.allclose(inferred.endmembers, u.endmembers)

    code, _, stderr = cli("unmix", "infer", tmp_path / "photos", png, "--out", tmp_path / "bad")
    assert code == 1 and "--method scene-net" in stderr
    code, _, stderr = cli("unmix", "infer", net, tmp_path / "nope.png", "--out", tmp_path / "bad")
    assert code == 1 and "does not exist" in stderr
    assert not (tmp_path / "bad").exists()

    # The inferred maps train an abundance diffusion model (MSF-Diff fusion path).
    code, _, stderr = cli(
        "train-diffusion",
        "--space",
        "abundance",
        "--abundances",
        tmp_path / "photos",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--out",
        tmp_path / "fusion",
    )
    assert code == 0, stderr
    assert open_artifact(tmp_path / "fusion").config["abundances"] == str(tmp_path / "photos")
