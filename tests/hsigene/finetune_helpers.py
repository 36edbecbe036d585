"""Shared by the fine-tuning tests: a model's tensors, and one uninterrupted run beside one
killed after its step-2 checkpoint and resumed."""

from __future__ import annotations

from pathlib import Path

import pytest


def weights(path: Path) -> dict:
    """Every tensor of an hsigene model directory, by its released key."""
    from safetensors.torch import load_file

    from stages.hsigene.artifact import FILES

    state = {}
    for rel in FILES.values():
        state.update(load_file(str(path / rel)))
    return state


class _Killed(Exception):
    pass


def full_and_resumed(init: Path, dataset: Path, out: Path, cfg, monkeypatch) -> tuple[dict, dict]:
    """Weights of ``cfg`` run straight through (out/full) and of the same run killed at step 3,
    after the step-2 checkpoint, then resumed (out/cut); the cut run leaves nothing behind."""
    import stages.hsigene.finetune as ft

    ft.finetune(init, dataset, out / "full", cfg)
    real = ft.denoising_loss
    calls = {"n": 0}

    def dies_at_step_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise _Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(ft, "denoising_loss", dies_at_step_3)
    with pytest.raises(_Killed):
        ft.finetune(init, dataset, out / "cut", cfg)
    assert not (out / "cut").exists()
    monkeypatch.setattr(ft, "denoising_loss", real)
    ft.finetune(init, dataset, out / "cut", cfg, resume=True)
    return weights(out / "full"), weights(out / "cut")
