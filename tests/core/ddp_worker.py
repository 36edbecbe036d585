"""Run by tests/core/test_ddp.py under torchrun: trains a small model with the shared
Trainer on each rank and saves that rank's final weights."""

import sys
from pathlib import Path

import torch

from stages.common.runtime import seed_everything
from stages.training import Trainer, TrainSpec
from stages.training.checkpoint import save_weights
from stages.training.distributed import world


def main(out_dir: str) -> None:
    seed_everything(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    def loss_fn(m, step, g):
        x = torch.randn(8, 4, generator=g)  # differs per rank: the Trainer seeds by rank
        loss = ((m(x) - x.sum(1, keepdim=True)) ** 2).mean()
        return loss, {"loss": loss.item()}

    trainer = Trainer(
        model, TrainSpec(steps=20, lr=1e-2, ema_decay=0.9), Path(out_dir) / "run", torch.device("cpu"), {"t": 1}
    )
    trainer.fit(loss_fn)
    rank, _ = world()
    save_weights(trainer.final_state(), Path(out_dir) / f"rank{rank}.safetensors")


if __name__ == "__main__":
    main(sys.argv[1])
