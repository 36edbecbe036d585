"""``--task segment``: SpecDM's semantic-segmentation experiment (Liu et al., SpecDM,
arXiv:2502.17056, §4.3, Table 3(a): real, synthetic, and real + synthetic image-mask pairs;
mIoU / F1). A small U-Net (Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", MICCAI 2015) with two pooling levels takes all bands as input
channels (standardised per band); scored by mIoU, OA and per-class IoU on the held-out real rows. Pixels labelled 0
(unlabelled) and classes absent from the real training split are ignored, in training and in
scoring; the untrained reference predicts the majority training class everywhere. With
``--backbone DIR`` the model is a local SegFormer encoder with a fresh decode head instead
(backbone.py)."""

from __future__ import annotations

import numpy as np

from .classes import IGNORE, Confusion, index_map, training_classes
from .nets import conv_block, forward_np, standardise
from .protocol import PatchTask
from .report import Metric

WIDTH = 24
EVAL_BATCH = 16


def build_unet(bands: int, n_classes: int, mean, std, width: int = WIDTH):
    import torch
    from torch import nn

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = standardise(mean, std)
            self.enc1, self.enc2 = conv_block(bands, width), conv_block(width, 2 * width)
            self.mid = conv_block(2 * width, 4 * width)
            self.up2, self.dec2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, 2), conv_block(4 * width, 2 * width)
            self.up1, self.dec1 = nn.ConvTranspose2d(2 * width, width, 2, 2), conv_block(2 * width, width)
            self.out = nn.Conv2d(width, n_classes, 1)

        def forward(self, x):
            e1 = self.enc1(self.inp(x))
            e2 = self.enc2(nn.functional.max_pool2d(e1, 2))
            m = self.mid(nn.functional.max_pool2d(e2, 2))
            d2 = self.dec2(torch.cat([self.up2(m), e2], 1))
            return self.out(self.dec1(torch.cat([self.up1(d2), e1], 1)))

    return UNet()


def masked_cross_entropy(logits, target):
    """Mean cross-entropy over pixels with a class; 0 (with a gradient path) when there are none."""
    import torch

    if not bool((target != IGNORE).any()):
        return logits.sum() * 0.0
    return torch.nn.functional.cross_entropy(logits, target, ignore_index=IGNORE)


def labelled_loss(model, batch: dict, targets: np.ndarray):
    """Cross-entropy of ``model(hsi)`` against class indices ``targets`` (IGNORE left out)."""
    import torch

    return masked_cross_entropy(model(batch["hsi"]), torch.from_numpy(targets).to(batch["hsi"].device))


class Segment(PatchTask):
    name = "segment"
    paper = "Liu et al., SpecDM, arXiv:2502.17056, §4.3 Table 3(a) (semantic segmentation, real / synthetic / both)"
    model_name = f"U-Net (Ronneberger et al., MICCAI 2015), 2 pooling levels, width {WIDTH}"
    metrics = [Metric("miou", "mIoU"), Metric("oa", "OA")]
    primary = "miou"
    baseline_label = "majority class"
    needs_labels = True
    keys = ("hsi", "labels")

    backbone = None  # backbone.Backbone with --backbone, loaded by check_config

    def check_config(self, config, hyper):
        if config.backbone:  # loaded (and refused, when unusable) before anything is written
            from .backbone import load_backbone

            self.backbone = load_backbone(config.backbone)
            self.model_name = self.backbone.model_name()

    def setup(self, ctx, train, val):
        ctx.classes, counts = training_classes(train)
        ctx.extra["majority_class"] = max(counts, key=counts.get)
        if self.backbone is not None:
            ctx.extra["backbone"] = self.backbone.record()

    def make_model(self, ctx):
        if self.backbone is not None:
            from .backbone import build_segformer

            return build_segformer(self.backbone, ctx.bands, len(ctx.classes), ctx.band_mean, ctx.band_std)
        return build_unet(ctx.bands, len(ctx.classes), ctx.band_mean, ctx.band_std)

    def loss(self, model, batch, generator, ctx):
        return labelled_loss(model, batch, index_map(batch["labels"].cpu().numpy(), ctx.classes))

    def _scores(self, source, ctx, predict):
        conf = Confusion(len(ctx.classes))
        for b in source.batches(EVAL_BATCH):
            h, w = b["hsi"].shape[-2:]
            x, labels = b["hsi"][..., : h - h % 4, : w - w % 4], b["labels"][..., : h - h % 4, : w - w % 4]
            conf.add(index_map(labels, ctx.classes).ravel(), predict(x).ravel())
        return conf.scores(ctx.classes)

    def evaluate(self, model, source, ctx, seed):
        return self._scores(source, ctx, lambda x: forward_np(model, x).argmax(1))

    def baseline(self, source, ctx, seed):
        majority = ctx.classes.index(ctx.extra["majority_class"])
        return self._scores(source, ctx, lambda x: np.full((len(x), *x.shape[-2:]), majority, np.int64))

    def protocol_text(self, s):
        crop = s["resolved"]["crop"]
        return (
            f"Protocol: {len(s['classes'])} training classes {s['classes']}; "
            + self.budget_text(s, f"{crop}×{crop} crops, cross-entropy over labelled pixels")
            + " Only labelled pixels of training classes are scored."
        )
