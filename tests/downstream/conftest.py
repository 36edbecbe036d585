"""Fixtures of the downstream tests: perturbed-real hsi-samples (labelled, unlabelled, change
triplets) and a change-detection pair ingested from the embedded scene."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "joint"))  # joint_helpers: the Indian Pines change pair

from downstream_helpers import write_perturbed_samples


@pytest.fixture(scope="session")
def labelled_samples(ip_dataset, tmp_path_factory) -> Path:
    return write_perturbed_samples(ip_dataset, tmp_path_factory.mktemp("downstream") / "labelled", seed=1)


@pytest.fixture(scope="session")
def unlabelled_samples(ip_dataset, tmp_path_factory) -> Path:
    return write_perturbed_samples(
        ip_dataset, tmp_path_factory.mktemp("downstream") / "unlabelled", seed=2, labels=False
    )


@pytest.fixture(scope="session")
def second_scene(tmp_path_factory) -> Path:
    """The embedded scene ingested again on a coarser grid of patches (stride 32: 30 patches,
    its own normalisation), as the ``--test`` scene. Small on purpose: SSIM over 48 bands in
    float64 dominates the cost of scoring a patch."""
    from stages.ingest import ingest_example

    out = tmp_path_factory.mktemp("downstream") / "second-scene"
    ingest_example(out, stride=32, labels=False)
    return out


@pytest.fixture(scope="session")
def pair_dataset(tmp_path_factory) -> Path:
    """Indian Pines t1 and a t2 with eight replaced rectangles; labels = the change mask."""
    from joint_helpers import ingest_pair, write_change_pair

    t2, mask = write_change_pair(tmp_path_factory.mktemp("downstream-pair"))
    out = tmp_path_factory.mktemp("downstream") / "pair"
    ingest_pair(out, t2, mask)
    return out


@pytest.fixture(scope="session")
def change_samples(pair_dataset, tmp_path_factory) -> Path:
    return write_perturbed_samples(pair_dataset, tmp_path_factory.mktemp("downstream") / "triplets", seed=3)
