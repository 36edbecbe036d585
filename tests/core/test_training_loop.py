"""The shared training loop resumes exactly: a run killed after a checkpoint and resumed
ends with the same weights (and EMA) as an uninterrupted run."""

import pytest
import torch

from stages.common.errors import ConfigError
from stages.common.runtime import seed_everything
from stages.training import Trainer, TrainSpec


def _model():
    seed_everything(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))


def _loss(model, step, g):
    x = torch.randn(8, 4, generator=g)
    loss = ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
    return loss, {"loss": loss.item()}


class _Killed(Exception):
    pass


def test_resume_reaches_identical_weights(tmp_path):
    spec = TrainSpec(steps=30, lr=1e-2, ema_decay=0.9, checkpoint_every=10)
    full = Trainer(_model(), spec, tmp_path / "full", torch.device("cpu"), {"data": "x"})
    full.fit(_loss)

    def dies_at_25(model, step, g):
        if step == 25:
            raise _Killed
        return _loss(model, step, g)

    with pytest.raises(_Killed):
        Trainer(_model(), spec, tmp_path / "cut", torch.device("cpu"), {"data": "x"}).fit(dies_at_25)
    resumed = Trainer(_model(), spec, tmp_path / "cut", torch.device("cpu"), {"data": "x"}, resume=True)
    assert resumed.step == 20
    resumed.fit(_loss)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k])
    for k, v in full.ema.shadow.items():
        assert torch.equal(v, resumed.ema.shadow[k])
    assert full.history == resumed.history
    first_loss, last_loss = full.history[0]["loss"], full.history[-1]["loss"]
    assert last_loss < first_loss


def test_resume_with_other_settings_is_refused(tmp_path):
    spec = TrainSpec(steps=10, lr=1e-2, checkpoint_every=5)
    with pytest.raises(_Killed):
        Trainer(_model(), spec, tmp_path / "r", torch.device("cpu"), {"data": "x"}).fit(
            lambda m, s, g: (_ for _ in ()).throw(_Killed) if s == 7 else _loss(m, s, g)
        )
    with pytest.raises(ConfigError, match="other inputs or settings"):
        Trainer(_model(), spec, tmp_path / "r", torch.device("cpu"), {"data": "y"}, resume=True)


def test_cuda_device_follows_local_rank_under_a_launcher(monkeypatch):
    """torchrun/accelerate start one process per GPU: `--device cuda`/auto must pick GPU LOCAL_RANK,
    an explicit cuda:N wins, and a plain run keeps cuda:0."""
    import torch

    from stages.common.runtime import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("cuda") == torch.device("cuda:0")
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("cuda") == torch.device("cuda:2")
    assert resolve_device("auto") == torch.device("cuda:2")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    monkeypatch.setenv("LOCAL_RANK", "5")  # 2 nodes × 4 GPUs launched with a global count
    assert resolve_device("cuda") == torch.device("cuda:1")
