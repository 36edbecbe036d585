"""Benchmark (diagnosis): how much of a latent model's sample quality its denoiser loses in one step.

    .venv/bin/python benchmarks/latent_denoising.py                               # pretrained:indian-pines-latent
    .venv/bin/python benchmarks/latent_denoising.py --model runs/demo/latent-model

The embedded scene's val patches are encoded, noised to x_t at a few timesteps and denoised in one
step (unconditional, guidance 1); the decoded x0 estimates are scored by sPr / sRec against the train
rows (physical units, k = 10), beside the autoencoder's own reconstructions and the noisy input
itself (x_t / √ᾱ_t, no denoiser). A denoiser that cannot give back its input at t = 1 caps every
sample at that row: the last reverse step returns its x0 estimate (issue 14: the shipped x0-prediction
model scored sPr 0.48 there against 0.91 for the autoencoder, and its samples 0.51).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

from pretrain import INGEST, Lane  # noqa: E402

TIMESTEPS = (1, 21, 81, 321)


def main() -> None:
    import torch

    from stages.artifacts.datasets import load_patches
    from stages.diffusion.channel_norm import denormalise, normalise
    from stages.diffusion.model import load_model
    from stages.diffusion.precondition import schedule_alphas_cumprod
    from stages.diffusion.spaces.latent import Generator
    from stages.evaluate.manifold import precision_recall
    from stages.pretrained import directory

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pretrained:indian-pines-latent", help="A latent diffusion-model.")
    args = parser.parse_args()
    torch.manual_seed(0)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        Lane(Path(tmp), "ingest.log").run("dataset", *INGEST)
        train, val = load_patches(Path(tmp) / "dataset", "train"), load_patches(Path(tmp) / "dataset", "val")
    model = load_model(directory(args.model))
    gen = Generator(model)
    gen.load(torch.device("cpu"), 16)
    norm = model.config.get("latent_standardisation")
    real = np.unique(np.moveaxis(train.physical(), 1, -1).reshape(-1, train.hsi.shape[1]), axis=0)

    def spectra(latents: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            hsi = gen.autoencoder.decode(torch.from_numpy(denormalise(latents.numpy(), norm))).numpy()
        return np.moveaxis(hsi * val.scale + val.offset, 1, -1).reshape(-1, hsi.shape[1])

    def row(label: str, latents: torch.Tensor) -> None:
        m = precision_recall(real, spectra(latents), k=10)
        print(f"{label:<34} {m.precision:6.3f} {m.recall:6.3f}", flush=True)

    with torch.no_grad():
        z = gen.autoencoder.encode(torch.from_numpy(val.hsi).float()).numpy()
    z0 = torch.from_numpy(normalise(z, norm) if norm else z).float()
    conditions = gen.prepare(None, len(z0), val.hsi.shape[-1], 1.0)
    abar = schedule_alphas_cumprod(model.config["model"]["schedule"])
    print(f"one-step denoising of {len(z0)} val patches by {args.model} (sPr / sRec vs the train rows, k = 10)")
    print(f"{'estimate':<34} {'sPr':>6} {'sRec':>6}")
    row("autoencoder reconstruction", z0)
    for t in TIMESTEPS:
        a = abar[t]
        noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(t))
        xt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        with torch.no_grad():
            x0 = torch.cat(
                [
                    gen.predict(xt[i : i + 16], torch.tensor(t), slice(i, min(i + 16, len(z0))), conditions)
                    for i in range(0, len(z0), 16)
                ]
            )
        if model.config["model"]["prediction_type"] != "sample":
            raise SystemExit("this diagnosis reads the x0 estimate of an x0-predicting (prediction sample) model")
        sigma = float(((1 - a) / a).sqrt())
        row(f"t = {t:<3} noisy input (σ = {sigma:.2f})", xt / a.sqrt())
        row(f"t = {t:<3} denoiser's x0", x0)
    print(f"\n{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
