"""``train-diffusion --space latent`` under ``accelerate launch`` (2 CPU processes, gloo DDP),
and the launcher environments ``stages.training.distributed`` understands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stages.training import distributed


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, (0, 1)),
        ({"RANK": "1", "WORLD_SIZE": "2"}, (1, 2)),  # torchrun, accelerate --multi_gpu
        ({"PMI_RANK": "3", "PMI_SIZE": "4"}, (3, 4)),  # accelerate --cpu via Intel MPI
        ({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}, (1, 2)),  # ... via Open MPI
        ({"RANK": "0", "WORLD_SIZE": "2", "PMI_RANK": "1", "PMI_SIZE": "8"}, (0, 2)),  # torchrun's names win
    ],
)
def test_world_from_launcher_environment(monkeypatch, env, expected):
    for name in distributed.RANK_VARIABLES + distributed.SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert distributed.world() == expected


def test_train_under_accelerate_launch_two_ranks_end_identical(ip_dataset, kl_autoencoder, tmp_path):
    pytest.importorskip("accelerate")
    out = tmp_path / "accelerate-model"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    bin_dir = Path(sys.executable).parent
    # --multi_gpu selects accelerate's torch.distributed launcher; with --device cpu the two
    # processes train on the CPU over gloo (accelerate's --cpu mode needs mpirun instead).
    cmd = [
        str(bin_dir / "accelerate"),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "29547",
        str(bin_dir / "hsigen"),
        "train-diffusion",
        "--space",
        "latent",
        "--autoencoder",
        str(kl_autoencoder),
        "--dataset",
        str(ip_dataset),
        "--kinds",
        "hed",
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "manifest.json").read_text())["metrics"]
    assert metrics["ddp_world_size"] == 2
    assert metrics["ddp_ranks_identical"] is True
    assert not list(tmp_path.glob(".hsigen-tmp-*")) and not (tmp_path / "accelerate-model.work").exists()
