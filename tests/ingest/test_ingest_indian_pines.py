"""The real Indian Pines scene: band dropping against the 220-band .spc, labels (also the
ERDAS .GIS copy), patches against the cube, and the spatial split."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import spectral.io.envi as envi
from ingest_helpers import TARGET, interp_reference, read_cube, read_patches

from stages.ingest.erdas import read_erdas_gis
from stages.spectral import parse_band_ranges, read_wavelengths_file

DROPPED = "104-108,150-163,220"


@pytest.fixture(scope="module")
def ip(shared_data):
    folder = shared_data / "indian_pines"
    cube = scipy.io.loadmat(folder / "Indian_pines_corrected.mat")["indian_pines_corrected"]
    gt = scipy.io.loadmat(folder / "Indian_pines_gt.mat")["indian_pines_gt"]
    wl220 = read_wavelengths_file(folder / "92AV3C.spc")
    keep = np.ones(220, bool)
    keep[np.array(parse_band_ranges(DROPPED)) - 1] = False
    return {"folder": folder, "cube": cube, "gt": gt, "wl220": wl220, "wl200": wl220[keep]}


def test_erdas_gis_ground_truth(ip):
    """``92AV3GT.GIS`` read by our parser equals the ``spectral`` package's ERDAS reader
    exactly, and matches ``Indian_pines_gt.mat`` wherever both label a pixel: the two
    distributions differ only in 395 boundary pixels that one of them leaves unlabelled."""
    import spectral

    gis = read_erdas_gis(ip["folder"] / "92AV3GT.GIS")
    reference = spectral.open_image(str(ip["folder"] / "92AV3GT.GIS")).read_band(0)
    np.testing.assert_array_equal(gis, reference)
    gt = ip["gt"]
    assert gis.shape == gt.shape == (145, 145)
    assert set(np.unique(gis)) == set(np.unique(gt)) == set(range(17))
    both = (gis > 0) & (gt > 0)
    assert np.array_equal(gis[both], gt[both])
    differ = gis != gt
    assert differ.sum() == 395 and np.all((gis[differ] == 0) | (gt[differ] == 0))


def test_drop_bands_indexes_the_spc_when_the_cube_already_lacks_them(ip, tmp_path, cli):
    """The .mat has 200 bands, the .spc 220: ``--drop-bands`` removes the 20 from the
    wavelength list only, and the cube is the interpolation over the 200 remaining centres.
    The range reaches 2400 nm so the dropped water bands (1.36, 1.9 um) matter."""
    target = np.linspace(450, 2400, 40)
    code, _, err = cli(
        "ingest",
        "--example",
        "indian-pines",
        "--range",
        "450:2400",
        "--bands",
        40,
        "--size",
        64,
        "--stride",
        64,
        "--out",
        tmp_path / "ds",
        "-q",
    )
    assert code == 0, err
    got, meta = read_cube(tmp_path / "ds")
    assert meta["count"] == 40 and meta["descriptions"][0] == "450.0 nm"
    rows = slice(60, 72)  # a band of rows keeps the reference quick
    ref = interp_reference(ip["cube"][rows], ip["wl200"], target)
    np.testing.assert_allclose(got[:, rows], ref, rtol=1e-5, atol=1e-2)
    # Pairing the cube with the first 200 centres of the .spc instead would be clearly wrong.
    wrong = interp_reference(ip["cube"][rows], ip["wl220"][:200], target)
    assert np.abs(wrong - ref).max() > 100


def test_default_grid_on_the_embedded_example(ip, ip_dataset):
    got, meta = read_cube(ip_dataset)
    assert meta["count"] == 48 and meta["descriptions"][0] == "400.0 nm"
    rows = slice(100, 110)
    np.testing.assert_allclose(got[:, rows], interp_reference(ip["cube"][rows], ip["wl200"]), rtol=1e-5, atol=1e-2)


def test_drop_bands_applies_to_cube_and_list_when_they_match(ip, tmp_path, cli):
    """An ENVI file of the 200-band cube with its 200 wavelengths: dropping bands 1-3 and 50
    removes them from both, so targets are interpolated without them."""
    hdr = tmp_path / "ip.hdr"
    envi.save_image(
        str(hdr), ip["cube"], interleave="bil", metadata={"wavelength": list(ip["wl200"]), "wavelength units": "nm"}
    )
    code, _, err = cli(
        "ingest",
        hdr,
        "--drop-bands",
        "1-3,50",
        "--range",
        "430:990",
        "--bands",
        20,
        "--size",
        64,
        "--out",
        tmp_path / "ds",
        "-q",
    )
    assert code == 0, err
    got, _ = read_cube(tmp_path / "ds")
    keep = np.ones(200, bool)
    keep[[0, 1, 2, 49]] = False
    rows = slice(0, 12)
    ref = interp_reference(ip["cube"][rows][:, :, keep], ip["wl200"][keep], np.linspace(430, 990, 20))
    np.testing.assert_allclose(got[:, rows], ref, rtol=1e-5, atol=1e-2)


def test_patches_labels_and_split(ip, ip_dataset):
    got, _ = read_cube(ip_dataset)
    p = read_patches(ip_dataset)
    n = len(p["origin"])
    assert p["hsi"].shape == (n, 48, 32, 32) and p["labels"].shape == (n, 32, 32)
    np.testing.assert_allclose(p["wavelengths_nm"], TARGET)
    scale, offset = float(p["scale"]), float(p["offset"])
    assert offset == pytest.approx(got.min(), rel=1e-6) and offset + scale == pytest.approx(got.max(), rel=1e-6)
    for k, (r, c) in enumerate(p["origin"]):
        np.testing.assert_allclose(p["hsi"][k] * scale + offset, got[:, r : r + 32, c : c + 32], rtol=1e-5, atol=1e-2)
        np.testing.assert_array_equal(p["labels"][k], ip["gt"][r : r + 32, c : c + 32])
    # Spatial split: bottom quarter of the 145 rows is validation; no pixel in both.
    split = p["split"].astype(str)
    train_px, val_px = np.zeros((145, 145), bool), np.zeros((145, 145), bool)
    for (r, c), s in zip(p["origin"], split):
        (train_px if s == "train" else val_px)[r : r + 32, c : c + 32] = True
    assert not np.any(train_px & val_px)
    assert train_px.any() and val_px.any()
    assert np.all(train_px | val_px)  # edge-flush origins cover every pixel
    boundary = 145 - round(145 * 0.25)
    assert all(r + 32 <= boundary for (r, _), s in zip(p["origin"], split) if s == "train")
    assert all(r >= boundary for (r, _), s in zip(p["origin"], split) if s == "val")


def test_gis_labels_through_the_cli(ip, tmp_path, cli):
    code, _, err = cli(
        "ingest",
        "--example",
        "indian-pines",
        "--labels",
        ip["folder"] / "92AV3GT.GIS",
        "--size",
        48,
        "--stride",
        48,
        "--bands",
        8,
        "--out",
        tmp_path / "ds",
        "-q",
    )
    assert code == 0, err
    gis = read_erdas_gis(ip["folder"] / "92AV3GT.GIS")
    p = read_patches(tmp_path / "ds")
    for k, (r, c) in enumerate(p["origin"]):
        np.testing.assert_array_equal(p["labels"][k], gis[r : r + 48, c : c + 48])
