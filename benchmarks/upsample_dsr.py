"""Does DSRNet's HR RGB help RGAN? (hsigene.txt §3.3, Fig. 4 and Table 7) — held-out Indian Pines ×2.

Trains a tiny ×2 RGAN and a tiny ×2 DSRNet on the train split of the embedded Indian Pines
scene (32×32 patches, bottom quarter of rows held out), degrades the held-out rows (36×144 HR
→ 18×72 LR, the training degradation), and super-resolves them with the same RGAN guided by
  - the TRUE HR RGB bands (the upper bound: what RGAN was trained with),
  - DSRNet's HR RGB (the paper's two-stage path, ``upsample run --dsr``),
  - the LR RGB bands upsampled bicubically (``upsample run`` without --dsr),
  - zeros (Table 7's zero-guidance ablation),
beside plain bicubic upsampling, all through ``upsample run``'s tiled upsampler. Prints MPSNR
(normalised units, peak 1) and SAM (degrees, physical units) of each, side by side, plus the
PSNR of the RGB guidance itself against the true HR RGB.

    .venv/bin/python benchmarks/upsample_dsr.py [--ae-steps 400] [--steps 800] [--rgan-steps 300]
                                                [--sample-steps 20] [--seeds 0 1]
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


def ingest_indian_pines(out: Path) -> Path:
    from stages.ingest import ingest_example

    ingest_example(out)
    return out


def train_models(dataset: Path, root: Path, args) -> tuple[Path, Path, dict]:
    from stages.training import resolve_preset
    from stages.upsample import train_dsr
    from stages.upsample import train_rgan as train

    seconds = {}
    start = time.perf_counter()
    net = resolve_preset(train.PRESETS, "tiny", {"steps": args.rgan_steps})
    train.run(dataset, root / "rgan", train.RganTrainConfig(scale=2, preset="tiny", net=net, seed=0), device="cpu")
    seconds["rgan"] = time.perf_counter() - start
    start = time.perf_counter()
    net = resolve_preset(train_dsr.PRESETS, "tiny", {"steps": args.steps, "sample_steps": args.sample_steps})
    net["ae"]["steps"] = args.ae_steps
    train_dsr.run(
        [dataset], root / "dsr", train_dsr.DsrTrainConfig(scale=2, preset="tiny", net=net, seed=0), device="cpu"
    )
    seconds["dsr"] = time.perf_counter() - start
    return root / "rgan", root / "dsr", seconds


def held_out_scene(dataset: Path):
    """(HR truth (B, 36, 144) physical, LR (B, 18, 72) physical) of the held-out rows."""
    import rasterio
    import torch

    from stages.upsample.degrade import degrade

    with rasterio.open(dataset / "cube.tif") as src:
        truth = src.read(window=((109, 145), (0, 144))).astype(np.float64)
    lr = degrade(torch.from_numpy(truth)[None], 2)[0].numpy()
    return truth, lr.astype(np.float32)


class TrueRgbGuide:
    """Guidance from the real HR scene's RGB bands (model units), cropped to the tile."""

    name, margin_lr, align_lr, inputs = "true", 0, 1, ()

    def __init__(self, truth_model_units: np.ndarray, rgb_idx, scale: int):
        self.rgb = truth_model_units[rgb_idx].astype(np.float32)
        self.scale = scale

    def __call__(self, lr, origin=(0, 0)):
        import torch

        s, (r0, c0) = self.scale, origin
        h, w = lr.shape[-2:]
        return torch.from_numpy(self.rgb[:, r0 * s : (r0 + h) * s, c0 * s : (c0 + w) * s].copy())[None].to(lr)


def upsample(upsampler, lr: np.ndarray, tile: int = 128) -> np.ndarray:
    from stages.upsample.tiling import super_resolve_tiled

    s = upsampler.scale
    out = np.zeros((lr.shape[0], lr.shape[1] * s, lr.shape[2] * s), np.float32)

    def write(block, r0, c0):
        out[:, r0 : r0 + block.shape[1], c0 : c0 + block.shape[2]] = block

    super_resolve_tiled(lambda r0, r1, c0, c1: lr[:, r0:r1, c0:c1], write, lr.shape[1], lr.shape[2], upsampler, tile)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ae-steps", type=int, default=400)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--rgan-steps", type=int, default=300)
    parser.add_argument("--sample-steps", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()

    import torch

    from stages.artifacts import open_artifact
    from stages.spectral import rgb_band_indices
    from stages.spectral.preview import stretch_limits
    from stages.spectral.quality import mpsnr, sam_degrees
    from stages.upsample.dsr import load_dsr
    from stages.upsample.dsr_guide import DsrGuide
    from stages.upsample.guides import BicubicGuide, ZeroGuide
    from stages.upsample.stage import BicubicUpsampler, RganUpsampler
    from stages.upsample.train_rgan import load_rgan

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset = ingest_indian_pines(root / "ip")
        rgan_path, dsr_path, seconds = train_models(dataset, root, args)
        model, info, _ = load_rgan(rgan_path)
        dsr = load_dsr(dsr_path)
        wl = np.asarray(open_artifact(dataset).spectral["wavelengths_nm"])
        rgb_idx = rgb_band_indices(wl)
        norm = info["normalisation"]
        to_model = lambda v: (v - norm["offset"]) / norm["scale"]  # noqa: E731
        truth, lr = held_out_scene(dataset)
        low, high = stretch_limits(np.moveaxis(lr[rgb_idx], 0, -1), 2.0)
        truth_model = to_model(truth)

        results, guides_rgb = {}, {}
        guides = {
            "true HR RGB": TrueRgbGuide(truth_model, rgb_idx, 2),
            "bicubic RGB": BicubicGuide(rgb_idx, 2),
            "zero": ZeroGuide(rgb_idx, 2),
        }
        for seed in args.seeds:
            guides[f"DSRNet RGB (seed {seed})"] = DsrGuide(
                rgb_idx,
                dsr,
                dsr_path,
                lr.shape[1:],
                to_model(low.astype(np.float64)),
                to_model(high.astype(np.float64)),
                args.sample_steps,
                "ddim",
                seed,
                int(dsr.info["window_lr"]),
                int(dsr.info["overlap_lr"]),
            )
        for name, guide in guides.items():
            start = time.perf_counter()
            hr = upsample(RganUpsampler(model, info, guide, torch.device("cpu")), lr)
            results[f"RGAN + {name}"] = (hr, time.perf_counter() - start)
            rgb = guide(torch.from_numpy(to_model(lr))[None].float(), (0, 0))
            if rgb is not None:
                guides_rgb[name] = rgb[0].numpy()
        start = time.perf_counter()
        results["bicubic (no RGAN)"] = (upsample(BicubicUpsampler(2), lr), time.perf_counter() - start)

        print(
            f"held-out Indian Pines ×2: HR {truth.shape[1]}×{truth.shape[2]}×{truth.shape[0]}, LR "
            f"{lr.shape[1]}×{lr.shape[2]}; RGAN tiny {args.rgan_steps} steps ({seconds['rgan']:.0f} s), DSRNet tiny "
            f"{args.ae_steps} AE + {args.steps} steps ({seconds['dsr']:.0f} s), {args.sample_steps} DDIM steps"
        )
        print(f"{'method':<32} {'MPSNR dB':>9} {'SAM °':>7} {'Δ MPSNR vs bicubic RGB':>23} {'seconds':>8}")
        ref = mpsnr(truth_model[None], to_model(results["RGAN + bicubic RGB"][0])[None])
        for name, (hr, sec) in results.items():
            p = mpsnr(truth_model[None], to_model(hr)[None])
            print(f"{name:<32} {p:9.3f} {sam_degrees(truth[None], hr[None]):7.3f} {p - ref:23.3f} {sec:8.2f}")
        true_rgb = truth_model[rgb_idx]
        print("\nthe guidance itself against the true HR RGB bands (model units, peak 1):")
        for name, rgb in guides_rgb.items():
            if name != "true HR RGB":
                print(f"  {name:<28} PSNR {mpsnr(true_rgb[None], rgb[None]):.3f} dB")


if __name__ == "__main__":
    main()
