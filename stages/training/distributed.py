"""DDP set-up when launched by ``torchrun`` / ``accelerate launch`` (world size > 1).

``torchrun`` and ``accelerate launch --multi_gpu --num_processes N`` (also on CPU machines,
with ``--device cpu``) set RANK / WORLD_SIZE / LOCAL_RANK. ``accelerate launch --cpu
--num_processes N --mpirun_hostfile FILE`` (its multi-CPU mode) starts the processes with
mpirun instead, which sets only the MPI library's own names — Intel MPI / MPICH ``PMI_*``,
Open MPI ``OMPI_COMM_WORLD_*``, MVAPICH ``MV2_COMM_WORLD_*`` — while accelerate adds
MASTER_ADDR / MASTER_PORT; both forms are read here, in accelerate's order.
"""

from __future__ import annotations

import os

from ..common.errors import ConfigError

RANK_VARIABLES = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def _first_int(names: tuple[str, ...], default: int) -> int:
    for name in names:
        if os.environ.get(name, "").strip():
            return int(os.environ[name])
    return default


def world() -> tuple[int, int]:
    """(rank, world_size) from the launcher's environment; (0, 1) for a plain run."""
    return _first_int(RANK_VARIABLES, 0), _first_int(SIZE_VARIABLES, 1)


def is_main_process() -> bool:
    return world()[0] == 0


def init_if_needed(device) -> bool:
    """Initialise the process group once; gloo on CPU, nccl on CUDA. Returns True under DDP."""
    import torch.distributed as dist

    rank, size = world()
    if size <= 1:
        return False
    if not dist.is_initialized():
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
        if missing:
            raise ConfigError(
                f"{size} processes were launched but {' and '.join(missing)} are not set; launch "
                "with torchrun or `accelerate launch`, or export MASTER_ADDR and MASTER_PORT"
            )
        backend = "nccl" if getattr(device, "type", str(device)) == "cuda" else "gloo"
        if backend == "nccl":
            import torch

            torch.cuda.set_device(device)  # nccl binds each rank to the GPU it trains on
        dist.init_process_group(backend=backend, rank=rank, world_size=size)
    return True


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
