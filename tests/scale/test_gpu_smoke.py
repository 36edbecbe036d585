"""benchmarks/gpu_smoke.sh parses and its Python part knows its flags (the script itself runs
on a GPU machine; `benchmarks/gpu_smoke.sh --tiny --device cpu` runs it here at tiny size)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_smoke_script_parses_and_has_a_cpu_mode():
    assert subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu_smoke.sh")]).returncode == 0
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_smoke.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag in ("--tiny", "--device", "--steps", "--batch", "--no-compile"):
        assert flag in out


def test_trainer_performance_switches_on_cpu(tmp_path):
    """channels_last and the fused-AdamW switch leave CPU training numerically sound."""
    import torch

    from stages.training import Performance, Trainer, TrainSpec

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 3, 1))
    spec = TrainSpec(steps=3, lr=1e-2)
    trainer = Trainer(model, spec, tmp_path / "m", torch.device("cpu"), {}, performance=Performance(channels_last=True))
    x = torch.rand(2, 3, 8, 8)

    def batches(first):
        return ({"micro_step": i, "x": x} for i in range(first, 3))

    def loss_fn(wrapped, step, g, batch):
        assert batch["x"].is_contiguous(memory_format=torch.channels_last)
        return ((wrapped(batch["x"]) - batch["x"]) ** 2).mean(), {"loss": 0.0}

    trainer.fit(loss_fn, batches=batches)
    assert trainer.step == 3 and 0 <= trainer.data_wait_share() < 1
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
