"""Every bad input of issue 2: one message naming the fix, exit code 1, nothing written
(the output's parent folder gains no entry, not even a ``.hsigen-tmp-*`` build folder)."""

from __future__ import annotations

import numpy as np
import pytest
import spectral.io.envi as envi
from ingest_helpers import entries, smooth_scene

H, W, B = 24, 20, 12
WL = np.linspace(380, 1020, B)


def _npy(folder, cube=None):
    path = folder / "scene.npy"
    np.save(path, smooth_scene(np.random.default_rng(0), H, W, B, 0, 1) if cube is None else cube)
    return path


def _envi(folder, **meta):
    hdr = folder / "scene.hdr"
    cube = np.round(smooth_scene(np.random.default_rng(0), H, W, B, 0, 4000)).astype(np.int16)
    envi.save_image(str(hdr), cube, interleave="bil", metadata={"wavelength": list(WL), **meta})
    return hdr


def _edit_header(hdr, old, new):
    text = hdr.read_text()
    assert old in text
    hdr.write_text(text.replace(old, new))


def case_missing_file(d):
    return [d / "nope.hdr"], "does not exist"


def case_envi_header_missing(d):
    hdr = _envi(d)
    hdr.unlink()
    return [d / "scene.img"], "no ENVI header found"


def case_envi_header_not_envi(d):
    hdr = _envi(d)
    _edit_header(hdr, "ENVI\n", "NOT-ENVI\n")
    return [hdr], "first line must be 'ENVI'"


def case_envi_header_missing_key(d):
    hdr = _envi(d)
    _edit_header(hdr, f"samples = {W}\n", "")
    return [hdr], "has no 'samples' field"


def case_envi_header_unclosed_brace(d):
    hdr = _envi(d)
    text = hdr.read_text()
    start = text.index("wavelength = {")
    end = text.index("}", start)
    hdr.write_text(text[:end] + text[end + 1 :])
    return [hdr], "never closes it"


def case_envi_data_short(d):
    hdr = _envi(d)
    data = d / "scene.img"
    data.write_bytes(data.read_bytes()[:-100])
    return [hdr], "truncated or the header is wrong"


def case_envi_unknown_data_type(d):
    hdr = _envi(d)
    _edit_header(hdr, "data type = 2", "data type = 6")
    return [hdr], "data type 6 is not supported; hsigen reads data types 1 (uint8), 2 (int16)"


def case_no_wavelengths(d):
    return [_npy(d)], "carries no wavelengths; give --wavelengths-file"


def case_band_count_mismatch(d):
    return [_npy(d), "--wavelengths", "400:1000:13"], "12 bands but 13 wavelengths"


def case_range_outside_coverage(d):
    return [_npy(d), "--wavelengths", "450:1000:12"], "pass --extrapolate edge"


def case_all_nan_cube(d):
    return [_npy(d, np.full((H, W, B), np.nan)), "--wavelengths", "380:1020:12"], "all nodata/NaN or constant"


def case_constant_cube(d):
    return [_npy(d, np.full((H, W, B), 7.0)), "--wavelengths", "380:1020:12"], "all nodata/NaN or constant"


def case_label_size_differs(d):
    np.save(d / "labels.npy", np.zeros((H, W + 1), np.int64))
    return [_npy(d), "--wavelengths", "380:1020:12", "--labels", d / "labels.npy"], "give the label map of this scene"


def case_labels_missing(d):
    return [_npy(d), "--wavelengths", "380:1020:12", "--labels", d / "gone.mat"], "check --labels"


def case_scene_smaller_than_size(d):
    return [_npy(d), "--wavelengths", "380:1020:12", "--size", 32], "use --size 20 or less"


def case_mat_several_cubes(d):
    import scipy.io

    cube = smooth_scene(np.random.default_rng(1), H, W, B, 0, 1)
    scipy.io.savemat(d / "two.mat", {"a": cube, "b": cube})
    return [d / "two.mat", "--wavelengths", "380:1020:12"], "choose one with --var"


def case_missing_wavelengths_file(d):
    return [_npy(d), "--wavelengths-file", d / "wl.txt"], "check --wavelengths-file"


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_1_and_writes_nothing(tmp_path, cli, case):
    inputs, work = tmp_path / "in", tmp_path / "work"
    inputs.mkdir()
    work.mkdir()
    args, message = CASES[case](inputs)
    before_in = entries(inputs)
    code, out, err = (
        cli("ingest", *args, "--size", 16, "--out", work / "ds")
        if "--size" not in args
        else cli("ingest", *args, "--out", work / "ds")
    )
    assert code == 1, err
    assert out == ""
    assert message in " ".join(err.split()), err
    assert "Traceback" not in err
    assert entries(work) == set()
    assert entries(inputs) == before_in


def test_range_outside_coverage_is_accepted_with_extrapolate_edge(tmp_path, cli):
    src = _npy(tmp_path)
    code, _, err = cli(
        "ingest",
        src,
        "--wavelengths",
        "450:1000:12",
        "--extrapolate",
        "edge",
        "--size",
        16,
        "--out",
        tmp_path / "ds",
        "-q",
    )
    assert code == 0, err
    import rasterio

    with rasterio.open(tmp_path / "ds" / "cube.tif") as f:
        first = f.read(1)
    cube = np.load(src)
    np.testing.assert_allclose(first, cube[:, :, 0], rtol=1e-6)  # 400 nm takes the 450 nm band


def test_existing_output_needs_overwrite(tmp_path, cli):
    src = _npy(tmp_path)
    out = tmp_path / "work" / "ds"
    code, _, err = cli("ingest", src, "--wavelengths", "380:1020:12", "--size", 16, "--out", out, "-q")
    assert code == 0, err
    manifest = (out / "manifest.json").read_bytes()
    code, stdout, err = cli("ingest", src, "--wavelengths", "380:1020:12", "--size", 20, "--out", out)
    assert code == 1 and stdout == ""
    assert "already exists; pass --overwrite" in " ".join(err.split())
    assert entries(out.parent) == {"ds"} and (out / "manifest.json").read_bytes() == manifest
    code, _, err = cli("ingest", src, "--wavelengths", "380:1020:12", "--size", 20, "--out", out, "--overwrite", "-q")
    assert code == 0, err
    assert entries(out.parent) == {"ds"} and (out / "manifest.json").read_bytes() != manifest
