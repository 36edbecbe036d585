"""One training loop for every model: AdamW + warm-up/cosine, gradient accumulation, EMA,
mixed precision on GPU, DDP, and checkpoints that resume exactly.

Exactness comes from drawing all training randomness (batch choice, noise, crops) from a
generator seeded by (seed, step, rank) — see ``stages.common.runtime.step_generator`` — so a
run resumed from step N continues with the same draws as an uninterrupted run.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..common import log
from ..common.errors import ConfigError
from ..common.runtime import step_generator
from . import distributed
from .checkpoint import read_checkpoint, write_checkpoint
from .ema import EMA


@dataclass
class TrainSpec:
    steps: int
    lr: float
    seed: int = 0
    weight_decay: float = 0.01
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # cosine decays lr to lr * min_lr_ratio
    grad_accum: int = 1
    grad_clip: float | None = 1.0
    ema_decay: float | None = None
    checkpoint_every: int = 0  # 0: only when training ends
    log_every: int = 25
    mixed_precision: bool = True  # bf16 autocast on CUDA; ignored on CPU


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def make_optimizer(params, spec: TrainSpec, fused: bool = False):
    """AdamW with linear warm-up then cosine decay to ``lr * min_lr_ratio``; ``fused`` (CUDA
    only) runs the update as one kernel per parameter group instead of a loop over tensors."""
    import torch

    optimizer = torch.optim.AdamW(
        params, lr=spec.lr, weight_decay=spec.weight_decay, **({"fused": True} if fused else {})
    )

    def factor(step: int) -> float:
        if spec.warmup_steps and step < spec.warmup_steps:
            return (step + 1) / spec.warmup_steps
        span = max(1, spec.steps - spec.warmup_steps)
        progress = min(1.0, (step - spec.warmup_steps) / span)
        return spec.min_lr_ratio + (1 - spec.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def work_dir_for(out: Path) -> Path:
    """Where an unfinished run keeps its checkpoint: a sibling ``<out>.work`` directory
    (never an artifact: it has no manifest)."""
    out = Path(out)
    return out.parent / f"{out.name}.work"


LossFn = Callable[..., tuple]  # (model, step, generator[, batch]) -> (loss tensor, {name: float})
BatchSource = Callable[[int], object]  # first micro-step -> iterable of batches, one per micro-step


@dataclass
class Performance:
    """GPU efficiency switches; they change speed, not what is learned, so a run may resume
    with other values (they are not part of the resume fingerprint)."""

    compile: bool = False  # torch.compile the training forward
    channels_last: bool = False  # NHWC memory format for weights and 4-D batches (tensor cores)
    fused_adamw: bool = True  # fused AdamW kernel, used on CUDA only


class Trainer:
    def __init__(
        self,
        model,
        spec: TrainSpec,
        out: Path,
        device,
        fingerprint: dict,
        resume: bool = False,
        params=None,
        performance: Performance | None = None,
    ):
        import torch

        self.spec, self.device, self.fingerprint = spec, device, fingerprint
        self.performance = performance or Performance()
        self.work_dir = work_dir_for(out)
        self.model = model.to(device)
        cuda = getattr(device, "type", "") == "cuda"
        if self.performance.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ddp = distributed.init_if_needed(device)
        self.rank, self.world_size = distributed.world()
        if self.ddp:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if getattr(device, "type", "") == "cuda" else None
            self.wrapped = DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.wrapped = self.model
        if self.performance.compile:
            self.wrapped = torch.compile(self.wrapped)
        self.optimizer, self.scheduler = make_optimizer(
            params if params is not None else [p for p in self.model.parameters() if p.requires_grad],
            spec,
            fused=cuda and self.performance.fused_adamw,
        )
        self.ema = EMA(self.model, spec.ema_decay) if spec.ema_decay else None
        self.step = 0
        self.history: list[dict] = []
        self._autocast = spec.mixed_precision and getattr(device, "type", "") == "cuda"
        self._torch = torch
        if resume:
            self._resume()
        elif self.work_dir.exists() and distributed.is_main_process():
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _meta(self) -> dict:
        return {
            "fingerprint": self.fingerprint,
            "spec": asdict(self.spec),
            "ema_updates": self.ema.updates if self.ema else 0,
        }

    def _resume(self) -> None:
        state = read_checkpoint(self.work_dir, self.device)
        if state is None:
            log.warn(f"--resume: no checkpoint in {self.work_dir}; starting from step 0")
            return
        if state["meta"]["fingerprint"] != self.fingerprint or state["meta"]["spec"] != asdict(self.spec):
            raise ConfigError(
                f"--resume: the checkpoint in {self.work_dir} was made with other inputs or settings; "
                "rerun with the original options, or drop --resume to start again"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optim"]["optimizer"])
        self.scheduler.load_state_dict(state["optim"]["scheduler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"], state["meta"]["ema_updates"])
        self.step = int(state["meta"]["step"])
        self.history = state["optim"].get("history", [])
        log.info(f"resumed from step {self.step} ({self.work_dir})")

    def save_checkpoint(self) -> None:
        if distributed.is_main_process():
            write_checkpoint(
                self.work_dir,
                self.step,
                self.model.state_dict(),
                self.ema.state_dict() if self.ema else None,
                {
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "history": self.history,
                },
                self._meta(),
            )
        distributed.barrier()

    def _batches(self, source: BatchSource | None):
        """The batch iterator from the current micro-step (exact resume: the source's batches are
        a function of the micro-step index, see ``stages.data.plan``)."""
        if source is None:
            return None
        first = self.step * self.spec.grad_accum
        return iter(source(first)), first

    def _next_batch(self, batches, expected: int) -> dict:
        batch = next(batches)
        if int(batch.get("micro_step", expected)) != expected:
            raise RuntimeError(f"data loader returned micro-step {batch['micro_step']}, expected {expected}")
        if self.performance.channels_last:
            torch = self._torch
            batch = {
                k: v.contiguous(memory_format=torch.channels_last)
                if torch.is_tensor(v) and v.ndim == 4 and v.is_floating_point()
                else v
                for k, v in batch.items()
            }
        return batch

    def fit(self, loss_fn: LossFn, description: str = "training", batches: BatchSource | None = None) -> list[dict]:
        """Run until ``spec.steps``; ``loss_fn(model, step, generator)`` returns (loss, logs).
        With ``batches`` (micro-step → iterable of batch dicts, e.g. ``stages.data.stream.loader``)
        each call also gets that micro-step's batch: ``loss_fn(model, step, generator, batch)``."""
        torch, spec = self._torch, self.spec
        self.model.train()
        stream = self._batches(batches)
        self.data_wait_s = 0.0  # time spent waiting for the loader (its share of step time)
        self.loader_start_s = 0.0  # the wait for the first batch (worker start-up), kept apart
        started = time.perf_counter()
        with log.progress(description, spec.steps) as bar:
            if self.step:
                bar.advance(self.step)
            while self.step < spec.steps:
                self.optimizer.zero_grad(set_to_none=True)
                logs_sum: dict[str, float] = {}
                for micro in range(spec.grad_accum):
                    g = step_generator(spec.seed + 7919 * self.rank, self.step * spec.grad_accum + micro)
                    extra = ()
                    if stream is not None:
                        waited = time.perf_counter()
                        index = self.step * spec.grad_accum + micro
                        extra = (self._next_batch(stream[0], index),)
                        if index == stream[1]:
                            self.loader_start_s = time.perf_counter() - waited
                        else:
                            self.data_wait_s += time.perf_counter() - waited
                    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self._autocast):
                        loss, logs = loss_fn(self.wrapped, self.step, g, *extra)
                    (loss / spec.grad_accum).backward()
                    for k, v in logs.items():
                        logs_sum[k] = logs_sum.get(k, 0.0) + float(v) / spec.grad_accum
                if spec.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), spec.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
                if self.ema is not None:
                    self.ema.update(self.model)
                self.step += 1
                if self.step % spec.log_every == 0 or self.step == spec.steps:
                    self.history.append({"step": self.step, **{k: round(v, 6) for k, v in logs_sum.items()}})
                status = " ".join(f"{k}={v:.4g}" for k, v in logs_sum.items())
                bar.advance(1, status)
                if spec.checkpoint_every and self.step % spec.checkpoint_every == 0 and self.step < spec.steps:
                    self.save_checkpoint()
        self.elapsed_s = time.perf_counter() - started
        return self.history

    def data_wait_share(self) -> float | None:
        """The fraction of the last ``fit``'s time spent waiting for batches after the first one
        (whose wait is the workers' start-up, ``loader_start_s``); None before a fit."""
        elapsed = getattr(self, "elapsed_s", 0.0) - getattr(self, "loader_start_s", 0.0)
        return round(self.data_wait_s / elapsed, 4) if elapsed > 0 else None

    def final_state(self, use_ema: bool = True) -> dict:
        """Weights to publish: the EMA copy when there is one."""
        if use_ema and self.ema is not None:
            return {k: v.clone() for k, v in self.ema.state_dict().items()} | {
                k: v for k, v in self.model.state_dict().items() if k not in self.ema.shadow
            }
        return self.model.state_dict()

    def cleanup(self) -> None:
        """Remove the work directory once the artifact is safely written."""
        if distributed.is_main_process():
            shutil.rmtree(self.work_dir, ignore_errors=True)
