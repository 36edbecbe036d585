"""Classifier two-sample test, C2ST (Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample Tests",
ICLR 2017, §2): train a classifier to tell real images from a set's images; its accuracy on
images it did not train on is 0.5 when the two are indistinguishable and 1 when they are fully
separable. Here: a small convolution net on whole patches, K seeded stratified folds, mean ± std
of the held-out accuracy.

Normalisation: GroupNorm, not BatchNorm, and each image's own band means removed, so the net
sees spatial texture. A BatchNorm net on raw patches separated the Indian Pines val rows from
its own train rows at 0.98 (a land-cover shift between the two row bands), which makes the test
unreadable. The accuracy of real held-out images against the real set (the report's
``real-heldout`` row) is the floor to read every other row against; the report never shows
C2ST without it.
"""

from __future__ import annotations

import numpy as np

from ..common.runtime import torch_threads

MIN_IMAGES = 10  # per set; fewer make the fold accuracies meaningless
WIDTH = 32
BATCH = 32
LR = 1e-3


def enough_images(images, real) -> bool:
    return min(len(images.cubes), len(real.cubes)) >= MIN_IMAGES


def _net(bands: int, generator):
    import torch
    from torch import nn

    net = nn.Sequential(
        nn.Conv2d(bands, 16, 1),  # band mixing first: the 3×3 layers then run on 16 channels, not B
        nn.Conv2d(16, WIDTH, 3, padding=1),
        nn.GroupNorm(4, WIDTH),
        nn.ReLU(),
        nn.Conv2d(WIDTH, WIDTH, 3, stride=2, padding=1),
        nn.GroupNorm(4, WIDTH),
        nn.ReLU(),
        nn.Conv2d(WIDTH, WIDTH, 3, stride=2, padding=1),
        nn.GroupNorm(4, WIDTH),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(WIDTH, 1),
    )
    with torch.no_grad():  # seeded initialisation independent of the global torch RNG
        for p in net.parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) * np.sqrt(2.0 / fan_in))
            else:
                p.zero_()
        for m in net:
            if isinstance(m, nn.GroupNorm):
                m.weight.fill_(1.0)
    return net


def _augment(x, generator):
    """Random flips and 90° rotations, the same for both classes (no class cue)."""
    import torch

    k = int(torch.randint(0, 4, (1,), generator=generator))
    x = torch.rot90(x, k, dims=(2, 3))
    if int(torch.randint(0, 2, (1,), generator=generator)):
        x = torch.flip(x, dims=(3,))
    return x


def two_sample_test(
    real_cubes: np.ndarray, gen_cubes: np.ndarray, folds: int = 3, steps: int = 300, seed: int = 0
) -> dict:
    """Held-out accuracy over ``folds`` stratified folds of equally many real and set images."""
    import torch

    rng = np.random.default_rng(seed)
    n = min(len(real_cubes), len(gen_cubes))
    real = real_cubes[np.sort(rng.choice(len(real_cubes), n, replace=False))]
    gen = gen_cubes[np.sort(rng.choice(len(gen_cubes), n, replace=False))]
    std = real.std(axis=(0, 2, 3), dtype=np.float64)[:, None, None] + 1e-6
    x = np.concatenate([real, gen]) / std
    # Each image's own band means removed: the test sees texture, not the land-cover mix.
    x = torch.from_numpy((x - x.mean(axis=(2, 3), keepdims=True)).astype(np.float32))
    y = torch.cat([torch.zeros(n), torch.ones(n)])
    fold_of = np.concatenate([rng.permutation(n) % folds, rng.permutation(n) % folds])
    accuracies = []
    with torch_threads(1):
        for f in range(folds):
            train_idx = torch.from_numpy(np.flatnonzero(fold_of != f))
            test_idx = torch.from_numpy(np.flatnonzero(fold_of == f))
            generator = torch.Generator().manual_seed(seed * 1000 + f)
            net = _net(x.shape[1], generator)
            opt = torch.optim.Adam(net.parameters(), lr=LR)
            for _ in range(steps):
                pick = train_idx[torch.randint(0, len(train_idx), (min(BATCH, len(train_idx)),), generator=generator)]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    net(_augment(x[pick], generator)).squeeze(1), y[pick]
                )
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                pred = (net(x[test_idx]).squeeze(1) > 0).float()
            accuracies.append(float((pred == y[test_idx]).float().mean()))
    return {
        "mean": float(np.mean(accuracies)),
        "std": float(np.std(accuracies)),
        "folds": folds,
        "images_per_class": int(n),
        "steps": steps,
    }
