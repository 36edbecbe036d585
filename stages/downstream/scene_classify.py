"""``--task scene-classify``: MSF-Diff's scene-classification experiment (Pan et al., MSF-Diff,
Information Fusion 108 (2024), §5.4, Table 7: OA of CNNs trained on 40 % of HSRS-SC with and
without synthetic HSIs). A scene is a ``crop`` × ``crop`` window; its label is the majority
class of its labelled pixels (windows less than half labelled, or whose majority is a class
absent from the real training split, are left out). With ``--scene-labels`` (scene_labels.py)
a real scene is a whole patch with its given class instead. A small CNN (per-band standardisation, three 3×3 conv layers, global
average pooling, one linear layer) classifies windows; OA and Cohen's κ on the
non-overlapping windows of the held-out real rows (each scene position counted once). The
untrained reference always answers the most frequent training class."""

from __future__ import annotations

import numpy as np

from ..evaluate.classifier import accuracy_scores
from .classes import IGNORE, index_map, training_classes
from .nets import forward_np, standardise
from .protocol import PatchTask
from .report import Metric
from .segment import labelled_loss

WIDTH = 32
MIN_LABELLED_SHARE = 0.5
EVAL_BATCH = 16


def build_scene_cnn(bands: int, n_classes: int, mean, std, width: int = WIDTH):
    from torch import nn

    return nn.Sequential(
        standardise(mean, std),
        nn.Conv2d(bands, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, n_classes),
    )


def window_labels(labels: np.ndarray, classes: list[int]) -> np.ndarray:
    """(n, h, w) label windows → (n,) class index of the majority labelled class, or IGNORE."""
    idx = index_map(labels, classes).reshape(len(labels), -1)
    k = len(classes)
    out = np.full(len(labels), IGNORE, np.int64)
    labelled = (labels.reshape(len(labels), -1) > 0).mean(1)
    for i, row in enumerate(idx):
        counts = np.bincount(row[row != IGNORE], minlength=k)
        if labelled[i] >= MIN_LABELLED_SHARE and counts.sum():
            out[i] = int(counts.argmax())
    return out


def scene_windows(source, crop: int):
    """Non-overlapping windows of every test patch, each scene position once (patches overlap;
    several real datasets: once per scene); patches with given scene labels are separate scenes,
    each window of each counted."""
    seen = set()
    by_position = source.origin is not None and source.scene_labels is None
    scenes = source.scenes  # several real datasets: positions are per scene
    for start in range(0, len(source), EVAL_BATCH):
        b = source.read(np.arange(start, min(start + EVAL_BATCH, len(source))))
        h, w = b["hsi"].shape[-2:]
        xs, ys = [], []
        for j in range(len(b["hsi"])):
            origin = source.origin[start + j] if by_position else None
            for r in range(0, h - crop + 1, crop):
                for c in range(0, w - crop + 1, crop):
                    key = (int(origin[0]) + r, int(origin[1]) + c) if origin is not None else (start + j, r, c)
                    if origin is not None and scenes is not None:
                        key = (int(scenes[start + j]), *key)
                    if key in seen:
                        continue
                    seen.add(key)
                    xs.append(b["hsi"][j, :, r : r + crop, c : c + crop])
                    ys.append(b["labels"][j, r : r + crop, c : c + crop])
        if xs:
            yield np.stack(xs), np.stack(ys)


class SceneClassify(PatchTask):
    name = "scene-classify"
    paper = (
        "Pan et al., MSF-Diff, Information Fusion 108 (2024), §5.4 Table 7 (scene classification with/without "
        "synthetic HSIs)"
    )
    model_name = f"small CNN: 3 conv layers (width {WIDTH}/{2 * WIDTH}/{2 * WIDTH}), global average pooling, linear"
    training_sets = ("real", "real_plus_synthetic")
    metrics = [Metric("oa", "OA"), Metric("kappa", "κ")]
    primary = "oa"
    baseline_label = "majority class"
    needs_labels = True
    keys = ("hsi", "labels")
    # 8×8 windows: the embedded scene's held-out rows hold 68 distinct scenes of that size, 17 of 16×16.
    defaults = {**PatchTask.defaults, "crop": 8}

    def setup(self, ctx, train, val):
        ctx.classes, _ = training_classes(train)
        crop = int(ctx.hyper["crop"])
        counts = np.zeros(len(ctx.classes), np.int64)
        for _, labels in scene_windows(train, crop):
            y = window_labels(labels, ctx.classes)
            counts += np.bincount(y[y != IGNORE], minlength=len(ctx.classes))
        ctx.extra["majority_class"] = ctx.classes[int(counts.argmax())]
        ctx.extra["train_scene_counts"] = {str(c): int(n) for c, n in zip(ctx.classes, counts)}

    def make_model(self, ctx):
        return build_scene_cnn(ctx.bands, len(ctx.classes), ctx.band_mean, ctx.band_std)

    def loss(self, model, batch, generator, ctx):
        return labelled_loss(model, batch, window_labels(batch["labels"].cpu().numpy(), ctx.classes))

    def _scores(self, source, ctx, predict):
        truth, pred = [], []
        for x, labels in scene_windows(source, int(ctx.hyper["crop"])):
            y = window_labels(labels, ctx.classes)
            keep = y != IGNORE
            if keep.any():
                truth.append(y[keep])
                pred.append(predict(x[keep]))
        if not truth:
            from ..common.errors import ConfigError

            raise ConfigError(
                f"{source.path}: no test window of --crop {ctx.hyper['crop']} px is at least half "
                "labelled with a training class; lower --crop"
            )
        scores = accuracy_scores(np.concatenate(truth), np.concatenate(pred))
        return {"oa": scores["oa"], "kappa": scores["kappa"], "scenes": scores["n"]}

    def evaluate(self, model, source, ctx, seed):
        return self._scores(source, ctx, lambda x: forward_np(model, x).argmax(1))

    def baseline(self, source, ctx, seed):
        majority = ctx.classes.index(ctx.extra["majority_class"])
        return self._scores(source, ctx, lambda x: np.full(len(x), majority, np.int64))

    def protocol_text(self, s):
        crop = s["resolved"]["crop"]
        if s.get("scene_labels"):
            scenes = (
                f"Protocol: real scenes = the patches with the classes of {s['scene_labels']} (given labels; "
                f"{crop}×{crop} crops of them in training), synthetic scenes labelled by the majority class of "
                f"their masks (at least {MIN_LABELLED_SHARE:.0%} labelled), scored on each test patch once; "
            )
        else:
            scenes = (
                f"Protocol: scenes = {crop}×{crop} windows labelled by their majority class (at least "
                f"{MIN_LABELLED_SHARE:.0%} labelled), scored on the non-overlapping windows of the test patches; "
            )
        return scenes + self.budget_text(s, "random windows")
