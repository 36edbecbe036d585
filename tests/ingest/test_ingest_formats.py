"""GeoTIFF (rasterio), MATLAB v5 (scipy) / v7.3 (h5py in MATLAB's transposed layout) and
.npy inputs, each written by its own library and checked against ``np.interp`` per pixel."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import rasterio
import scipy.io
from ingest_helpers import TARGET, interp_reference, read_cube, read_patches, smooth_scene
from rasterio.crs import CRS
from rasterio.transform import Affine

from stages.ingest.readers import open_scene

H, W, B = 36, 33, 30
WL = np.linspace(390.0, 1010.0, B)


def _cube(seed: int, low=100.0, high=5000.0, dtype="float32") -> np.ndarray:
    return smooth_scene(np.random.default_rng(seed), H, W, B, low, high).astype(dtype)


def _write_tif(path, cube_hwb, descriptions=None, nodata=None, crs=None, transform=None, tags=None):
    profile = dict(driver="GTiff", height=H, width=W, count=B, dtype=cube_hwb.dtype.name)
    if nodata is not None:
        profile["nodata"] = nodata
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.moveaxis(cube_hwb, -1, 0))
        for i, d in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, d)
        if tags:
            dst.update_tags(**tags)


def test_geotiff_descriptions_nodata_crs_transform_are_carried(tmp_path, cli):
    cube = _cube(1, dtype="int16", low=-200, high=9000)
    cube[0:3, 0:10] = -32768
    transform = Affine(30.0, 0.0, 300000.0, 0.0, -30.0, 4200000.0)
    src = tmp_path / "scene.tif"
    _write_tif(
        src,
        cube,
        descriptions=[f"Band {i + 1} ({w / 1000:.5f} um)" for i, w in enumerate(WL)],
        nodata=-32768,
        crs=CRS.from_epsg(32633),
        transform=transform,
    )
    scene = open_scene(src)
    np.testing.assert_allclose(scene.wavelengths_nm, WL, atol=1e-2)

    code, _, err = cli("ingest", src, "--size", 16, "--stride", 8, "--out", tmp_path / "ds", "-q")
    assert code == 0, err
    got, meta = read_cube(tmp_path / "ds")
    assert meta["crs"].to_epsg() == 32633 and meta["transform"] == transform
    assert meta["nodata"] == -32768
    assert [d for d in meta["descriptions"]] == [f"{w:.1f} nm" for w in TARGET]
    hole = np.zeros((H, W), bool)
    hole[0:3, 0:10] = True
    assert np.all(got[:, hole] == -32768)
    ref = interp_reference(cube, scene.wavelengths_nm)
    np.testing.assert_allclose(got[:, ~hole], ref[:, ~hole], rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("how", ["nm-descriptions", "bare-descriptions-um", "dataset-tags", "none"])
def test_geotiff_wavelength_sources(tmp_path, how):
    cube = _cube(2)
    src = tmp_path / "s.tif"
    if how == "nm-descriptions":
        _write_tif(src, cube, descriptions=[f"{w:.2f} nm" for w in WL])
    elif how == "bare-descriptions-um":
        _write_tif(src, cube, descriptions=[f"{w / 1000:.5f}" for w in WL])
    elif how == "dataset-tags":
        _write_tif(
            src,
            cube,
            tags={
                "wavelength": "{" + ", ".join(f"{w / 1000:.5f}" for w in WL) + "}",
                "wavelength_units": "Micrometers",
            },
        )
    else:
        _write_tif(src, cube)
    scene = open_scene(src)
    if how == "none":
        assert scene.wavelengths_nm is None
    else:
        np.testing.assert_allclose(scene.wavelengths_nm, WL, atol=1e-2)
    np.testing.assert_array_equal(scene.read_rows(10, 20), cube[10:20])


def test_geotiff_without_wavelengths_needs_them_given(tmp_path, cli):
    src = tmp_path / "plain.tif"
    cube = _cube(3)
    _write_tif(src, cube)
    code, out, err = cli("ingest", src, "--size", 16, "--out", tmp_path / "a")
    assert code == 1 and out == ""
    assert "--wavelengths-file" in err and "--wavelengths START:STOP:COUNT" in err
    assert not (tmp_path / "a").exists()
    code, _, err = cli("ingest", src, "--size", 16, "--wavelengths", "390:1010:30", "--out", tmp_path / "b")
    assert code == 0, err
    got, _ = read_cube(tmp_path / "b")
    np.testing.assert_allclose(got, interp_reference(cube, WL), rtol=1e-5, atol=1e-3)


def _write_mat73(path, variables: dict):
    """MATLAB v7.3 layout: HDF5 with a 512-byte user block and every array stored transposed."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            f.create_dataset(name, data=np.asarray(value).T)
            f[name].attrs["MATLAB_class"] = np.bytes_("double" if value.dtype.kind == "f" else "uint16")
    with open(path, "r+b") as raw:
        raw.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")


def test_mat_v73_transposed_layout(tmp_path, cli):
    cube = _cube(4, dtype="uint16", low=900, high=9600)
    labels = np.random.default_rng(0).integers(0, 5, (H, W)).astype(np.uint8)
    _write_mat73(tmp_path / "scene.mat", {"cube": cube, "ignored_vector": np.arange(5.0)})
    _write_mat73(tmp_path / "gt.mat", {"gt": labels})
    (tmp_path / "wl.txt").write_text("\n".join(f"{w:.3f}" for w in WL))
    scene = open_scene(tmp_path / "scene.mat")
    assert (scene.height, scene.width, scene.bands) == (H, W, B) and scene.format == "mat-v7.3"
    np.testing.assert_array_equal(scene._read(5, 9), cube[5:9])

    out = tmp_path / "ds"
    code, _, err = cli(
        "ingest",
        tmp_path / "scene.mat",
        "--wavelengths-file",
        tmp_path / "wl.txt",
        "--labels",
        tmp_path / "gt.mat",
        "--size",
        16,
        "--stride",
        10,
        "--out",
        out,
        "-q",
    )
    assert code == 0, err
    got, _ = read_cube(out)
    np.testing.assert_allclose(got, interp_reference(cube, WL), rtol=1e-5, atol=1e-3)
    p = read_patches(out)
    for n, (r, c) in enumerate(p["origin"]):
        np.testing.assert_array_equal(p["labels"][n], labels[r : r + 16, c : c + 16])


def test_mat_v5_variable_choice(tmp_path, cli):
    cube = _cube(5)
    scipy.io.savemat(tmp_path / "two.mat", {"radiance": cube, "reflectance": cube / 10000.0})
    (tmp_path / "wl.txt").write_text(", ".join(f"{w:.3f}" for w in WL))
    code, _, err = cli(
        "ingest", tmp_path / "two.mat", "--wavelengths-file", tmp_path / "wl.txt", "--size", 16, "--out", tmp_path / "x"
    )
    assert code == 1 and "several 3-D variables" in err and "--var" in err
    assert not (tmp_path / "x").exists()
    code, _, err = cli(
        "ingest",
        tmp_path / "two.mat",
        "--var",
        "reflectance",
        "--wavelengths-file",
        tmp_path / "wl.txt",
        "--size",
        16,
        "--out",
        tmp_path / "y",
        "-q",
    )
    assert code == 0, err
    got, _ = read_cube(tmp_path / "y")
    np.testing.assert_allclose(got, interp_reference(cube / 10000.0, WL), rtol=1e-5, atol=1e-7)


def test_npy_scene(tmp_path, cli):
    cube = _cube(6, dtype="float64")
    np.save(tmp_path / "scene.npy", cube)
    code, _, err = cli(
        "ingest",
        tmp_path / "scene.npy",
        "--wavelengths",
        "390:1010:30",
        "--bands",
        24,
        "--range",
        "450:950",
        "--size",
        32,
        "--stride",
        32,
        "--out",
        tmp_path / "ds",
        "-q",
    )
    assert code == 0, err
    got, meta = read_cube(tmp_path / "ds")
    target = np.linspace(450, 950, 24)
    assert meta["count"] == 24 and meta["crs"] is None
    np.testing.assert_allclose(got, interp_reference(cube, WL, target), rtol=1e-5, atol=1e-3)
    p = read_patches(tmp_path / "ds")
    # 33 columns, size 32 → origins 0 and the edge-flush 1; 36 rows → 0 and 4.
    assert sorted(map(tuple, p["origin"])) == [(0, 0), (0, 1), (4, 0), (4, 1)]
