"""Shared fixtures: the real data folder and a small ingest of the embedded Indian Pines
scene, built once per session and reused by every stage's tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Some areas import another area's builders (downstream and scale use tests/joint/joint_helpers.py).
# pytest puts a test directory on sys.path only when it collects it, so add every area here:
# `pytest tests/downstream` alone then finds them too.
for _area in sorted(Path(__file__).resolve().parent.iterdir()):
    if _area.is_dir() and not _area.name.startswith(("_", ".")) and str(_area) not in sys.path:
        sys.path.append(str(_area))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real scenes and spectral libraries); skipped where absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present beside the project")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ip_dataset(tmp_path_factory) -> Path:
    """The embedded Indian Pines scene as an hsi-dataset: 48 bands, 32×32 patches at
    stride 16, labels, bottom quarter of rows held out as the validation split."""
    from stages.ingest import ingest_example

    out = tmp_path_factory.mktemp("datasets") / "indian_pines"
    ingest_example(out)
    return out


@pytest.fixture
def cli():
    """Invoke the hsigen app in-process; returns (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from hsigen_cli.app import app
    from stages.common import log

    runner = CliRunner()

    def invoke(*args: str):
        log.set_verbosity(0)  # -q/-v of an earlier in-process call must not leak into this one
        result = runner.invoke(app, [str(a) for a in args])
        return result.exit_code, result.stdout, result.stderr

    return invoke


# Session fixtures that train a model for a fixed number of steps (each a minute or more on this
# 2-core CPU, with the tests that use them): every test that uses one is marked ``slow``, so
# ``make test-fast`` (``-m "not slow"``) leaves them out. Tests that train inline for long carry
# ``@pytest.mark.slow`` themselves.
TRAINING_FIXTURES = {
    "tiny_model",
    "tiny_samples",  # abundance: 500 diffusion steps
    "kl_run",
    "vq_run",
    "two_stream_run",  # autoencoder
    "ip_classifier",  # evaluate: 150 classifier steps
    "two_stream_ae",
    "joint_model",
    "joint_samples",  # joint
    "kl_autoencoder",
    "latent_model",
    "hyperldm_model",  # latent: 300 + 300 steps
    "tiny_rgan",
    "tiny_dsr",
    "tiny_dsr_x4",  # upsample
}


# tryfirst: pytest-xdist's worker reads the xdist_group marks in its own collection hook, so they
# must be set before it runs (and pytest must be < 9.2: see pyproject.toml).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        # `make test` runs pytest-xdist with --dist loadgroup: one stage's directory stays on one
        # worker, so the session fixtures its conftest trains are built once, not once per worker.
        item.add_marker(pytest.mark.xdist_group(stage_directory(item)))


def stage_directory(item) -> str:
    parts = Path(str(item.fspath)).resolve().relative_to(ROOT / "tests").parts
    return parts[0] if len(parts) > 1 else "top"
