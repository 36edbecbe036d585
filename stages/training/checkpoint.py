"""Checkpoints: weights as safetensors; optimiser state with ``torch.save`` read back only
with ``weights_only=True`` (docs/design.md §2: nothing is ever unpickled)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def save_weights(state: dict, path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    save_file(tensors, str(path))


def load_weights(path: Path, device="cpu") -> dict:
    from safetensors.torch import load_file

    return load_file(str(path), device=str(device))


def write_checkpoint(
    work_dir: Path, step: int, model_state: dict, ema_state: dict | None, optim_state: dict, meta: dict
) -> Path:
    """Write ``work_dir/checkpoint`` atomically (temp dir + rename), replacing the previous one."""
    import torch

    work_dir.mkdir(parents=True, exist_ok=True)
    tmp = work_dir / f".checkpoint-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_weights(model_state, tmp / "model.safetensors")
    if ema_state is not None:
        save_weights(ema_state, tmp / "ema.safetensors")
    torch.save(optim_state, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({**meta, "step": step}, indent=2))
    final = work_dir / "checkpoint"
    old = work_dir / ".checkpoint-old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint(work_dir: Path, device="cpu") -> dict | None:
    import torch

    ckpt = work_dir / "checkpoint"
    if not (ckpt / "state.json").is_file():
        return None
    meta = json.loads((ckpt / "state.json").read_text())
    return {
        "meta": meta,
        "model": load_weights(ckpt / "model.safetensors", device),
        "ema": load_weights(ckpt / "ema.safetensors", device) if (ckpt / "ema.safetensors").is_file() else None,
        "optim": torch.load(ckpt / "optimizer.pt", map_location=device, weights_only=True),
    }
