"""Benchmark: how well do the shipped latent model's samples follow their hed / seg maps, against
reference rows measured the same way? One run, side by side.

Protocol of tests/latent/test_condition_following.py: the first 12 val patches of the embedded
Indian Pines scene, their hed and seg maps as the conditions stage makes them, samples of
``pretrained:indian-pines-latent`` (DDIM 25, guidance 2 in the model's default interval), seeds
0-2. Columns (stages.evaluate.condition_agreement): seg ARI between the map's regions and the
seg extractor's regions of the sample; hed edge correlation of the sample with its own patch's
map, and with another patch's map (the chance level of the pairing).

Reference rows: the val patches themselves rendered as samples are (the ceiling, 1 / 1), the same
patches with 1 % and 2 % multiplicative noise, reconstructed by the model's autoencoder, and
decoded through the shipped spectral manifold. They show how much of the agreement a small
spectral change removes from real images: the extractors work on an 8-bit RGB rendering and
re-partition regions on small colour changes. Generated rows: unconditional (chance) and each
condition, raw and with every pixel decoded through the manifold (``sample --spectral-manifold``;
the projection of the raw samples, which tests/abundance/test_spectral_manifold.py shows is what
``sample`` writes): to the nearest manifold point, as ``sample`` does, and to the encoder's guess
alone (how ``sample`` decoded before Session 19).

    .venv/bin/python benchmarks/condition_following.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

from pretrain import INGEST, Lane  # noqa: E402

MODEL, MANIFOLD = "pretrained:indian-pines-latent", "pretrained:indian-pines-manifold"
PATCHES, STEPS, GUIDANCE = 12, 25, 2.0
KINDS = {"unconditional": [], "seg": ["seg"], "hed": ["hed"], "seg + hed": ["seg", "hed"]}


def val_conditions(dataset: Path):
    """(val patches in physical units, their seg maps, their hed maps): the first PATCHES val rows."""
    import numpy as np

    from stages.artifacts.datasets import load_patches
    from stages.conditions import make_extractor
    from stages.diffusion.spaces.latent import dataset_rgb

    patches = load_patches(dataset)
    rows = np.flatnonzero(patches.split == "val")[:PATCHES]
    rgbs, _ = dataset_rgb(dataset)
    seg, hed = make_extractor("seg"), make_extractor("hed")
    physical = patches.hsi[rows].astype(np.float64) * patches.scale + patches.offset
    return physical, np.stack([seg(rgbs[i]) for i in rows]), np.stack([hed(rgbs[i]) for i in rows])


def main() -> None:
    import numpy as np
    import torch

    from stages.diffusion.model import load_model
    from stages.diffusion.spaces.latent import load_model_autoencoder, rgb_of_hsi
    from stages.evaluate.condition_agreement import agreement
    from stages.sampling import generate
    from stages.sampling.generation import open_generator
    from stages.unmix.manifold import load_manifold

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="Sampling seeds (comma-separated).")
    parser.add_argument("--work", default=None, help="Where to ingest the scene (default: a temp dir).")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        Lane(work, "condition-following.log").run("dataset", *INGEST)
        val, seg_maps, hed_maps = val_conditions(work / "dataset")
    model, manifold = load_model(MODEL), load_manifold(MANIFOLD)[0]
    spectral = model.artifact.spectral
    scale, offset = float(spectral["scale"]), float(spectral["offset"])
    rgb = lambda normalised: rgb_of_hsi(normalised, spectral["wavelengths_nm"], model.config["rgb"])  # noqa: E731
    score = lambda normalised: agreement(rgb(normalised), seg_maps, hed_maps)  # noqa: E731
    normalised = ((val - offset) / scale).astype(np.float32)

    rng = np.random.default_rng(0)
    autoencoder = load_model_autoencoder(model)
    with torch.no_grad():
        reconstructed = autoencoder.decode(autoencoder.encode(torch.from_numpy(normalised))).numpy()
    references = {
        "val patches (the ceiling)": normalised,
        "val patches, 1 % noise": ((val * (1 + 0.01 * rng.standard_normal(val.shape)) - offset) / scale),
        "val patches, 2 % noise": ((val * (1 + 0.02 * rng.standard_normal(val.shape)) - offset) / scale),
        "val through the autoencoder": reconstructed,
        "val through the spectral manifold": manifold.project_normalised(normalised, scale, offset),
    }
    rows = [(label, score(images.astype(np.float32)), None) for label, images in references.items()]

    for label, kinds in KINDS.items():
        raw, projected, guessed = [], [], []
        for seed in seeds:
            conditions = open_generator(model).prepare(None, PATCHES, 32, GUIDANCE)
            maps = {"seg": seg_maps, "hed": hed_maps}
            conditions.state = conditions.state.with_local_maps(PATCHES, {k: maps[k] for k in kinds})
            hsi, _, _ = generate(
                model, None, PATCHES, 32, "ddim", STEPS, seed, 16, GUIDANCE, "cpu", conditions=conditions
            )
            raw.append(score(hsi))
            projected.append(score(manifold.project_normalised(hsi, scale, offset)))
            guessed.append(score(manifold.project_normalised(hsi, scale, offset, iterations=0)))
        named = ((label, raw), (f"{label}, through the manifold", projected), (f"{label}, encoder's guess", guessed))
        for name, runs in named:
            mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
            sd = {k: float(np.std([r[k] for r in runs])) for k in runs[0]}
            rows.append((name, mean, sd))

    print(f"\ncondition following of {MODEL}, {PATCHES} val patches, DDIM {STEPS}, guidance {GUIDANCE}, "
          f"seeds {args.seeds}; {time.time() - t0:.0f} s")  # fmt: skip
    print(f"{'set':<42} {'seg ARI':>13} {'hed corr':>13} {'hed, another patch':>19}")
    for label, m, sd in rows:
        cells = [
            f"{m[k]:.3f}" + (f" ±{sd[k]:.3f}" if sd else " " * 7) for k in ("seg_ari", "hed_corr", "hed_corr_other")
        ]
        print(f"{label:<42} {cells[0]:>13} {cells[1]:>13} {cells[2]:>19}")


if __name__ == "__main__":
    main()
