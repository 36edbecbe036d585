"""Device selection and seeding, shared by every stage that runs a model."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np

from .errors import ConfigError


def resolve_device(spec: str = "auto"):
    """Map ``auto|cpu|cuda|cuda:N`` (or ``mps``) to a torch.device, failing clearly."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec}: no CUDA device is available here; use --device cpu or auto")
        # Under torchrun / accelerate every process of a node gets its own GPU: LOCAL_RANK picks it
        # unless the user named one explicitly.
        local_rank = os.environ.get("LOCAL_RANK", "").strip()
        default_index = str(int(local_rank) % torch.cuda.device_count()) if local_rank.isdigit() else "0"
        index = spec.split(":", 1)[1] if ":" in spec else default_index
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: there are {torch.cuda.device_count()} CUDA devices; use cuda:0..")
        return torch.device(f"cuda:{index}")
    if spec == "mps":
        return torch.device("mps")
    raise ConfigError(f"--device {spec!r} is not one of auto, cpu, cuda, cuda:N")


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def step_generator(seed: int, step: int, device="cpu"):
    """A torch.Generator that depends only on (seed, step).

    Training draws its batch and noise from this, so a run resumed at step N sees exactly
    the randomness an uninterrupted run would have seen: exact ``--resume`` without
    saving RNG state.
    """
    import torch

    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + step) % (2**63 - 1))
    return g


@contextlib.contextmanager
def torch_threads(n: int = 1):
    """Run a block with ``n`` intra-op torch threads. Small networks gain nothing from threads, and
    on a busy few-core CPU OpenMP spin-waiting between threads made them many times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
