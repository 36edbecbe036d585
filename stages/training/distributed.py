"""DDP set-up when launched by ``torchrun`` / ``accelerate launch`` (WORLD_SIZE > 1)."""

from __future__ import annotations

import os


def world() -> tuple[int, int]:
    """(rank, world_size) from the launcher's environment; (0, 1) for a plain run."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return world()[0] == 0


def init_if_needed(device) -> bool:
    """Initialise the process group once; gloo on CPU, nccl on CUDA. Returns True under DDP."""
    import torch.distributed as dist

    rank, size = world()
    if size <= 1:
        return False
    if not dist.is_initialized():
        backend = "nccl" if getattr(device, "type", str(device)) == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=size)
    return True


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
