"""Two CPU processes under torchrun (gloo) end with identical weights: gradients are
averaged across ranks although each rank draws different batches."""

import os
import subprocess
import sys
from pathlib import Path

import torch

from stages.training.checkpoint import load_weights


def test_two_rank_gloo_training_ends_identical(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        str(worker),
        str(tmp_path),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    a = load_weights(tmp_path / "rank0.safetensors")
    b = load_weights(tmp_path / "rank1.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # and the ranks really trained (weights moved from the shared initialisation)
    torch.manual_seed(0)
    init = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).state_dict()
    assert not torch.equal(init["0.weight"], a["0.weight"])
