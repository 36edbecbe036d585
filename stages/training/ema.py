"""Exponential moving average of weights, keyed by parameter name (saved as safetensors)."""

from __future__ import annotations


class EMA:
    def __init__(self, model, decay: float = 0.999, warmup: bool = True):
        import torch

        self.decay, self.warmup, self.updates = decay, warmup, 0
        self.shadow = {
            k: v.detach().clone().float() for k, v in model.state_dict().items() if torch.is_floating_point(v)
        }

    def update(self, model) -> None:
        import torch

        self.updates += 1
        # Warm-up (1 + n) / (10 + n): early EMA tracks the fast-moving weights closely.
        d = min(self.decay, (1 + self.updates) / (10 + self.updates)) if self.warmup else self.decay
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if k in self.shadow:
                    self.shadow[k].mul_(d).add_(v.detach().float(), alpha=1 - d)

    def copy_to(self, model) -> None:
        state = model.state_dict()
        for k, v in self.shadow.items():
            state[k].copy_(v.to(state[k].dtype))

    def state_dict(self) -> dict:
        return dict(self.shadow)

    def load_state_dict(self, tensors: dict, updates: int) -> None:
        for k in self.shadow:
            self.shadow[k].copy_(tensors[k])
        self.updates = updates
