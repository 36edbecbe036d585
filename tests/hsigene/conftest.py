"""A tiny-width HSIGene checkpoint in the released format ({"state_dict": …}, released key
names, transformers-4.x ``position_ids`` included), imported once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def tiny_released_state(seed: int = 0) -> dict:
    from stages.hsigene import HSIGeneConfig, build_model
    from stages.hsigene.checkpoint import POSITION_IDS, to_released_names

    torch.manual_seed(seed)
    model = build_model(HSIGeneConfig.tiny())
    with torch.no_grad():  # random everywhere (the release's zero-inits would make ε ≡ 0)
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    state = to_released_names(model.state_dict(), model)
    state[POSITION_IDS] = torch.arange(77)[None]
    return state


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hsigene") / "last.ckpt"
    torch.save({"state_dict": tiny_released_state(), "epoch": 3, "global_step": 1200}, path)
    return path


@pytest.fixture(scope="session")
def tiny_import(tiny_ckpt) -> Path:
    from stages.hsigene.importer import import_checkpoint

    out = tiny_ckpt.parent / "imported"
    import_checkpoint(tiny_ckpt, out, model_config="tiny", sample_size=32)
    return out


@pytest.fixture(scope="session")
def released_state():
    """The factory: ``released_state(seed)`` → a fresh tiny state dict in the released format."""
    return tiny_released_state
