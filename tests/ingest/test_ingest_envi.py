"""ENVI reader: files written by the ``spectral`` package's ENVI writer (an independent
implementation) in every interleave, both byte orders and every supported data type."""

from __future__ import annotations

import numpy as np
import pytest
import spectral.io.envi as envi
from ingest_helpers import TARGET, interp_reference, read_cube, read_patches, smooth_scene

from stages.ingest.readers import open_scene

H, W, B = 34, 30, 40
WL = np.sort(np.random.default_rng(1).uniform(380.0, 1030.0, B))
WL[0], WL[-1] = 380.0, 1030.0
DTYPES = {
    "uint8": (0, 250),
    "int16": (-3000, 12000),
    "int32": (-70000, 90000),
    "float32": (-1.5, 2.5),
    "float64": (-1.5, 2.5),
    "uint16": (0, 60000),
    "uint32": (0, 4_000_000_000),
}


def _scene(dtype: str, seed: int = 0) -> np.ndarray:
    low, high = DTYPES[dtype]
    cube = smooth_scene(np.random.default_rng(seed), H, W, B, low, high)
    return cube.astype(dtype) if dtype.startswith("float") else np.round(cube).astype(dtype)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("byteorder", [0, 1])
@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
def test_reader_round_trips_every_layout(tmp_path, interleave, byteorder, dtype):
    cube = _scene(dtype)
    hdr = tmp_path / "scene.hdr"
    envi.save_image(
        str(hdr),
        cube,
        interleave=interleave,
        byteorder=byteorder,
        metadata={"wavelength": list(WL), "wavelength units": "Nanometers"},
    )
    scene = open_scene(hdr)
    assert (scene.height, scene.width, scene.bands) == (H, W, B)
    assert scene.notes["interleave"] == interleave and scene.notes["byte_order"] == byteorder
    np.testing.assert_allclose(scene.wavelengths_nm, WL, rtol=1e-9)
    np.testing.assert_array_equal(scene._read(0, H), cube)
    # A row block in the middle, read through the data file's own name too.
    data_scene = open_scene(tmp_path / "scene.img")
    np.testing.assert_array_equal(data_scene.read_rows(7, 19), cube[7:19].astype(np.float32))


@pytest.mark.parametrize(
    "interleave,byteorder,dtype", [("bil", 1, "int16"), ("bsq", 0, "float32"), ("bip", 1, "uint16")]
)
def test_ingest_matches_independent_interpolation(tmp_path, cli, interleave, byteorder, dtype):
    cube = _scene(dtype, seed=3)
    nodata = {"int16": -9999, "float32": -1.0e4, "uint16": 65535}[dtype]
    cube[2:5, 3:9, :] = nodata  # a nodata hole in every band
    factor = 10000.0
    hdr = tmp_path / "scene.hdr"
    envi.save_image(
        str(hdr),
        cube,
        interleave=interleave,
        byteorder=byteorder,
        metadata={
            "wavelength": list(WL),
            "wavelength units": "Nanometers",
            "data ignore value": nodata,
            "reflectance scale factor": factor,
        },
    )
    out = tmp_path / "ds"
    code, stdout, err = cli("ingest", hdr, "--size", 16, "--stride", 8, "--out", out, "-q")
    assert code == 0, err
    assert stdout.strip() == str(out)

    got, meta = read_cube(out)
    assert meta["count"] == 48 and meta["dtype"] == "float32"
    assert meta["nodata"] == nodata
    assert meta["descriptions"][0] == "400.0 nm" and meta["descriptions"][-1] == "1000.0 nm"
    hole = np.zeros((H, W), bool)
    hole[2:5, 3:9] = True
    assert np.all(got[:, hole] == nodata)
    ref = interp_reference(cube.astype(np.float64) / factor, WL)
    np.testing.assert_allclose(got[:, ~hole], ref[:, ~hole], rtol=1e-5, atol=1e-6 * np.abs(ref).max())

    # Patches are the cube through the recorded scale/offset at their origins; nodata → 0.
    p = read_patches(out)
    scale, offset = float(p["scale"]), float(p["offset"])
    assert offset == pytest.approx(ref[:, ~hole].min(), rel=1e-5)
    assert offset + scale == pytest.approx(ref[:, ~hole].max(), rel=1e-5)
    valid_cube = np.where(got == nodata, np.nan, got)
    for n, (r, c) in enumerate(p["origin"]):
        window = valid_cube[:, r : r + 16, c : c + 16]
        expected = np.where(np.isfinite(window), (window - offset) / scale, 0.0)
        np.testing.assert_allclose(p["hsi"][n], expected, atol=1e-6)
    assert p["hsi"].shape[1:] == (48, 16, 16)


def test_header_syntax_offset_and_bad_band_list(tmp_path):
    """Hand-written header: upper-case keys, braces over several lines, comments, a header
    offset in front of the data, and ``bbl`` marking bands to drop."""
    cube = _scene("int16", seed=5)
    offset = 777
    data = tmp_path / "raw_scene.dat"
    data.write_bytes(b"\x55" * offset + cube.transpose(0, 2, 1).astype(">i2").tobytes())  # BIL, big endian
    bbl = np.ones(B, int)
    bbl[[4, 17]] = 0
    wl_um = ",\n   ".join(f"{w / 1000:.6f}" for w in WL)
    (tmp_path / "raw_scene.hdr").write_text(
        "ENVI\n"
        "description = {\n  hand written,\n  spans lines}\n"
        f"SAMPLES = {W}\nLines   = {H}\nBands = {B}\n"
        f"Header Offset = {offset}\n"
        "; a comment line\n"
        "file type = ENVI Standard\nDATA TYPE = 2\nInterleave = BIL\nbyte order = 1\n"
        f"Wavelength Units = Micrometers\nWAVELENGTH = {{\n   {wl_um}\n}}\n"
        f"bbl = {{ {', '.join(map(str, bbl))} }}\n"
    )
    scene = open_scene(data)
    np.testing.assert_array_equal(scene.read_rows(0, H), cube.astype(np.float32))
    np.testing.assert_allclose(scene.wavelengths_nm, WL, atol=1e-3)
    assert scene.bad_bands.tolist() == (bbl == 1).tolist()
    assert scene.notes["header_offset"] == offset


def test_bbl_bands_are_left_out_of_alignment(tmp_path):
    from stages import ingest

    cube = _scene("float32", seed=6)
    bbl = np.ones(B, int)
    bbl[[10, 11, 12]] = 0
    cube[:, :, [10, 11, 12]] = 1e6  # garbage in the bad bands must not reach the cube
    hdr = tmp_path / "s.hdr"
    envi.save_image(str(hdr), cube, interleave="bip", metadata={"wavelength": list(WL), "bbl": list(bbl)})
    cfg = ingest.IngestConfig(target_wavelengths_nm=list(TARGET), size=16, stride=16)
    ingest.run([hdr], tmp_path / "ds", cfg)
    got, _ = read_cube(tmp_path / "ds")
    keep = bbl == 1
    ref = interp_reference(cube[:, :, keep], WL[keep])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_wavelengths_below_100_without_units_are_micrometres(tmp_path, cli):
    cube = _scene("float32", seed=7)
    hdr = tmp_path / "um.hdr"
    envi.save_image(str(hdr), cube, interleave="bsq", metadata={"wavelength": list(WL / 1000.0)})
    code, _, err = cli("ingest", hdr, "--size", 16, "--out", tmp_path / "ds")
    assert code == 0, err
    assert "micrometres" in err
    got, _ = read_cube(tmp_path / "ds")
    np.testing.assert_allclose(got, interp_reference(cube, WL), rtol=1e-4, atol=1e-5)


def test_map_info_becomes_crs_and_transform(tmp_path):
    from stages import ingest

    cube = _scene("uint16", seed=8)
    hdr = tmp_path / "geo.hdr"
    envi.save_image(
        str(hdr),
        cube,
        interleave="bil",
        metadata={
            "wavelength": list(WL),
            "wavelength units": "nm",
            "map info": ["UTM", 1.0, 1.0, 500000.0, 4500000.0, 20.0, 20.0, 16, "North", "WGS-84", "units=Meters"],
        },
    )
    cfg = ingest.IngestConfig(target_wavelengths_nm=list(TARGET), size=16, stride=16)
    ingest.run([hdr], tmp_path / "ds", cfg)
    _, meta = read_cube(tmp_path / "ds")
    assert meta["crs"].to_epsg() == 32616
    assert tuple(meta["transform"])[:6] == (20.0, 0.0, 500000.0, 0.0, -20.0, 4500000.0)


def test_streaming_block_size_does_not_change_the_result(tmp_path):
    """Rows are read in blocks of at most ``block_rows``; 5-row blocks give the same bytes
    as one block holding the whole scene."""
    from stages import ingest

    cube = _scene("int16", seed=9)
    hdr = tmp_path / "s.hdr"
    envi.save_image(str(hdr), cube, interleave="bsq", metadata={"wavelength": list(WL)})
    calls = []
    for rows in (5, 256):
        cfg = ingest.IngestConfig(target_wavelengths_nm=list(TARGET), size=16, stride=8, block_rows=rows)
        scene = open_scene(hdr)
        inner = scene._read

        def spy(r0, r1, inner=inner, rows=rows):
            calls.append((rows, r1 - r0))
            return inner(r0, r1)

        scene._read = spy
        from stages.ingest import stage as pipeline

        original = pipeline.open_scene
        pipeline.open_scene = lambda *a, scene=scene, **k: scene
        try:
            ingest.run([hdr], tmp_path / f"ds{rows}", cfg)
        finally:
            pipeline.open_scene = original
    assert max(n for rows, n in calls if rows == 5) == 5
    assert sum(n for rows, n in calls if rows == 5) == H
    a, _ = read_cube(tmp_path / "ds5")
    b, _ = read_cube(tmp_path / "ds256")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(read_patches(tmp_path / "ds5")["hsi"], read_patches(tmp_path / "ds256")["hsi"])


def test_envi_data_file_is_an_input_of_the_artifact(tmp_path, cli):
    """Given by its header, the ENVI data file is hashed too: an unchanged re-run is
    "up to date", a changed data file is not (and needs --overwrite)."""
    cube = _scene("int16", seed=10)
    hdr = tmp_path / "s.hdr"
    envi.save_image(str(hdr), cube, interleave="bil", metadata={"wavelength": list(WL)})
    args = ("ingest", hdr, "--size", 16, "--out", tmp_path / "ds")
    code, _, err = cli(*args)
    assert code == 0, err
    import json

    inputs = json.loads((tmp_path / "ds" / "manifest.json").read_text())["inputs"]
    assert [i["path"] for i in inputs] == [str(hdr), str(tmp_path / "s.img")]
    manifest = (tmp_path / "ds" / "manifest.json").read_bytes()
    code, _, err = cli(*args)
    assert code == 0, err
    assert (tmp_path / "ds" / "manifest.json").read_bytes() == manifest  # up to date: not rebuilt
    data = tmp_path / "s.img"
    raw = bytearray(data.read_bytes())
    raw[100] ^= 0xFF
    data.write_bytes(bytes(raw))
    code, _, err = cli(*args)
    assert code == 1 and "--overwrite" in err


def test_real_third_party_header(shared_data):
    """The Earth Library's ENVI header (written by other software) parses: 180 micrometre
    wavelengths over braces spanning many entries; as a spectral library it is refused as a scene."""
    from stages.common.errors import InputError
    from stages.ingest.envi import parse_envi_header

    hdr = shared_data / "spectral_libraries" / "earthlib" / "spectra.sli.hdr"
    fields = parse_envi_header(hdr)
    assert (fields["samples"], fields["lines"], fields["bands"]) == ("180", "7261", "1")
    wl = [float(v) for v in fields["wavelength"].split(",")]
    assert len(wl) == 180 and wl[0] == pytest.approx(0.4) and wl[-1] == pytest.approx(2.45)
    assert len(fields["spectra names"].split(",")) == 7261
    with pytest.raises(InputError, match="spectral library"):
        open_scene(hdr)
