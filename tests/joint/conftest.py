"""Session fixtures of the SpecDM (joint space) tests, each built once with fixed step counts:
a micro two-stream autoencoder on the embedded Indian Pines patches and masks, a micro joint
diffusion model on its (z_x, z_y) latents, samples drawn from it, and the change-detection
pair built from Indian Pines (see ``joint_helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from joint_helpers import draw_samples, ingest_pair, train_joint, train_two_stream, write_change_pair


@pytest.fixture(scope="session")
def two_stream_ae(ip_dataset, tmp_path_factory) -> Path:
    return train_two_stream(ip_dataset, tmp_path_factory.mktemp("joint") / "ae")


@pytest.fixture(scope="session")
def joint_model(ip_dataset, two_stream_ae, tmp_path_factory) -> Path:
    return train_joint(two_stream_ae, ip_dataset, tmp_path_factory.mktemp("joint") / "model")


@pytest.fixture(scope="session")
def joint_samples(joint_model, tmp_path_factory) -> Path:
    return draw_samples(joint_model, tmp_path_factory.mktemp("joint") / "samples")


@pytest.fixture(scope="session")
def change_pair_files(tmp_path_factory) -> tuple[Path, Path]:

    return write_change_pair(tmp_path_factory.mktemp("change-pair"))


@pytest.fixture(scope="session")
def change_dataset(change_pair_files, tmp_path_factory) -> Path:
    t2, mask = change_pair_files
    out = tmp_path_factory.mktemp("joint") / "ip-change"
    ingest_pair(out, t2, mask)
    return out


@pytest.fixture(scope="session")
def change_t2_dataset(change_pair_files, tmp_path_factory) -> Path:
    """The t2 scene alone, ingested like the pair: ``train-ae --pairs`` takes the second images
    as a dataset of their own."""
    from stages import ingest
    from stages.spectral import parse_band_ranges, read_wavelengths_file, target_grid

    t2, _ = change_pair_files
    ex = ingest.EXAMPLES["indian-pines"]
    out = tmp_path_factory.mktemp("joint") / "ip-t2"
    cfg = ingest.IngestConfig(
        target_wavelengths_nm=list(target_grid()),
        size=32,
        stride=16,
        drop_bands=parse_band_ranges(ex["drop_bands"]),
        val_fraction=0.25,
        wavelengths_source="sidecar",
    )
    ingest.run(
        [t2],
        out,
        cfg,
        wavelengths=read_wavelengths_file(ex["wavelengths_file"]),
        labels_path=change_pair_files[1],
        extra_inputs=[ex["wavelengths_file"]],
    )
    return out
