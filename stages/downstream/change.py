"""``--task change``: SpecDM's change-detection experiment (Liu et al., SpecDM,
arXiv:2502.17056, §4.3, Table 3(b): 100 real vs 100 real + 500 synthetic (t1, t2, mask)
triplets; mIoU / F1). The detector is a compact FC-Siam-diff (Daudt, Le Saux, Boulch, "Fully
Convolutional Siamese Networks for Change Detection", ICIP 2018): one encoder with shared
weights for t1 and t2, and a decoder over the absolute feature differences at each level.
Triplets come from ``ingest SCENE --pair T2 --change-mask MASK`` (``hsi``, ``hsi_t2``,
``labels`` = mask) or from the samples of a change-pair joint model (same arrays). Scored by
F1 and IoU of the change class and OA; the untrained reference predicts "no change"."""

from __future__ import annotations

import numpy as np

from .nets import conv_block, forward_np, standardise
from .protocol import PatchTask
from .report import Metric

WIDTH = 24
EVAL_BATCH = 16
MAX_CHANGE_WEIGHT = 10.0


def build_siamese(bands: int, mean, std, width: int = WIDTH):
    import torch
    from torch import nn

    class FCSiamDiff(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = standardise(mean, std)
            self.enc1, self.enc2 = conv_block(bands, width), conv_block(width, 2 * width)
            self.up = nn.ConvTranspose2d(2 * width, width, 2, 2)
            self.dec = conv_block(2 * width, width)
            self.out = nn.Conv2d(width, 2, 1)

        def encode(self, x):
            f1 = self.enc1(self.inp(x))
            return f1, self.enc2(nn.functional.max_pool2d(f1, 2))

        def forward(self, t1, t2):
            a1, a2 = self.encode(t1)
            b1, b2 = self.encode(t2)
            return self.out(self.dec(torch.cat([self.up((a2 - b2).abs()), (a1 - b1).abs()], 1)))

    return FCSiamDiff()


def change_scores(truth: np.ndarray, pred: np.ndarray) -> dict:
    tp = float(np.sum(truth & pred))
    fp = float(np.sum(~truth & pred))
    fn = float(np.sum(truth & ~pred))
    n = truth.size
    return {"tp": tp, "fp": fp, "fn": fn, "correct": float(np.sum(truth == pred)), "n": float(n)}


class ChangeDetect(PatchTask):
    name = "change"
    paper = "Liu et al., SpecDM, arXiv:2502.17056, §4.3 Table 3(b) (change detection, real / synthetic / both)"
    model_name = f"FC-Siam-diff (Daudt et al., ICIP 2018), shared 2-level encoder of width {WIDTH}"
    metrics = [Metric("f1", "F1 (change)"), Metric("iou", "IoU (change)"), Metric("oa", "OA")]
    primary = "f1"
    baseline_label = "no change everywhere"
    needs_labels = True
    needs_pair = True
    keys = ("hsi", "hsi_t2", "labels")

    def setup(self, ctx, train, val):
        changed = total = 0
        for b in train.batches(32):
            changed += int((b["labels"] > 0).sum())
            total += b["labels"].size
        share = changed / max(total, 1)
        # Changes are rare: weight the change class by the inverse share (capped) so that
        # "no change everywhere" is not the easy minimum of the loss.
        ctx.extra["train_change_share"] = share
        ctx.extra["change_weight"] = float(min(MAX_CHANGE_WEIGHT, (1 - share) / max(share, 1e-6)))
        ctx.classes = [0, 1]

    def make_model(self, ctx):
        return build_siamese(ctx.bands, ctx.band_mean, ctx.band_std)

    def loss(self, model, batch, generator, ctx):
        import torch

        target = (batch["labels"] > 0).long()
        weight = torch.tensor([1.0, ctx.extra["change_weight"]], device=target.device)
        return torch.nn.functional.cross_entropy(model(batch["hsi"], batch["hsi_t2"]), target, weight=weight)

    def _scores(self, source, predict):
        total = {"tp": 0.0, "fp": 0.0, "fn": 0.0, "correct": 0.0, "n": 0.0}
        for b in source.batches(EVAL_BATCH):
            h, w = b["hsi"].shape[-2:]
            crop = (..., slice(0, h - h % 2), slice(0, w - w % 2))
            pred = predict(b["hsi"][crop], b["hsi_t2"][crop]).astype(bool)
            for k, v in change_scores(b["labels"][crop] > 0, pred).items():
                total[k] += v
        tp, fp, fn = total["tp"], total["fp"], total["fn"]
        return {
            "f1": 2 * tp / max(2 * tp + fp + fn, 1.0),
            "iou": tp / max(tp + fp + fn, 1.0),
            "oa": total["correct"] / max(total["n"], 1.0),
            "changed_pixels": int(tp + fn),
        }

    def evaluate(self, model, source, ctx, seed):
        return self._scores(source, lambda t1, t2: forward_np(model, t1, t2).argmax(1))

    def baseline(self, source, ctx, seed):
        return self._scores(source, lambda t1, t2: np.zeros((len(t1), *t1.shape[-2:]), np.int64))

    def protocol_text(self, s):
        crop = s["resolved"]["crop"]
        return "Protocol: " + self.budget_text(
            s,
            f"{crop}×{crop} crops of t1, t2 and mask; cross-entropy with the change class weighted "
            f"{s['change_weight']:.2f}, the inverse of its {s['train_change_share']:.3f} share in the real "
            f"training patches, capped at {MAX_CHANGE_WEIGHT:g}",
            units="triplets",
        )
