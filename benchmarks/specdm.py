"""SpecDM labelled synthesis quality on Indian Pines (specdm.txt §3.2-3.3, §4.2-4.3), side by side
with the references that bound it. Too slow for a test (a tiny two-stream AE and joint model).

    .venv/bin/python benchmarks/specdm.py --work runs/bench-specdm            # builds what is missing
    .venv/bin/python benchmarks/specdm.py --work runs/bench-specdm --ae-steps 1500 --diffusion-steps 1000

Prints:
1. class shares (Fig. 4): real train split vs generated labels, and their total variation
   distance; as a yardstick, the TV between the real train and val splits (two real samples
   of the same scene);
2. the mSAD check: for each class with ≥ 20 generated pixels, is the generated class mean
   closer in spectral angle to the same class's real mean than to any other class's? Beside
   it the same check for (a) real val pixels and (b) the autoencoder's reconstructions labelled
   by the true labels and (c) by its own decoded masks — the generator cannot beat (b)/(c);
3. ``evaluate downstream``: OA/AA/κ of the pixel classifier on held-out real pixels, trained on
   a small real subset vs subset + labelled synthetic pixels, over seeds 0, 1, 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "joint"))


def ingest_ip(out: Path) -> Path:
    from stages.ingest import ingest_example

    if not (out / "manifest.json").exists():
        ingest_example(out)
    return out


def angle(a: np.ndarray, b: np.ndarray) -> float:
    from stages.spectral.quality import spectral_angles

    return float(spectral_angles(a, b, axis=0))


def nearest_mean_check(real_means: dict, spectra: np.ndarray, labels: np.ndarray, min_pixels: int = 20) -> dict:
    """Per class: own-class angle, the nearest class and whether it is the own class."""
    rows = {}
    for c in sorted(real_means):
        pick = labels == c
        if pick.sum() < min_pixels:
            continue
        mean = spectra[pick].astype(np.float64).mean(0)
        angles = {k: angle(mean, v) for k, v in real_means.items()}
        nearest = min(angles, key=angles.get)
        rows[int(c)] = {"pixels": int(pick.sum()), "own_angle": angles[c], "nearest": int(nearest),
                        "correct": bool(nearest == c)}
    correct = sum(r["correct"] for r in rows.values())
    return {"classes": rows, "correct": correct, "total": len(rows),
            "msad": float(np.mean([r["own_angle"] for r in rows.values()])) if rows else float("nan")}


def pixel_table(cubes_phys: np.ndarray, labels: np.ndarray):
    b = cubes_phys.shape[1]
    return cubes_phys.transpose(0, 2, 3, 1).reshape(-1, b), labels.reshape(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("runs/bench-specdm"))
    ap.add_argument("--ae-steps", type=int, default=300)
    ap.add_argument("--diffusion-steps", type=int, default=400)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--sample-steps", type=int, default=25)
    args = ap.parse_args()

    import torch

    from stages.artifacts import open_artifact
    from stages.artifacts.datasets import load_patches, load_samples
    from stages.autoencoder import PRESETS as AE_PRESETS
    from stages.autoencoder import TrainAEConfig
    from stages.autoencoder import run as train_ae
    from stages.autoencoder.data import class_index
    from stages.autoencoder.io import load_autoencoder
    from stages.diffusion import DiffusionTrainConfig, resolve, train
    from stages.diffusion.spaces.joint import class_share, total_variation
    from stages.evaluate.downstream import DownstreamConfig
    from stages.evaluate.downstream import run as downstream
    from stages.sampling import SampleConfig
    from stages.sampling import run as sample
    from stages.training import resolve_preset

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    timings = {}
    t = time.perf_counter()
    dataset = ingest_ip(work / "ip")
    ae_dir = work / f"ae-{args.ae_steps}"
    if not (ae_dir / "manifest.json").exists():
        model = resolve_preset(AE_PRESETS["two-stream"], "tiny", {"steps": args.ae_steps})
        train_ae(dataset, ae_dir, TrainAEConfig(kind="two-stream", preset="tiny", model=model, seed=0), device="cpu")
    timings["autoencoder_s"] = time.perf_counter() - t
    t = time.perf_counter()
    dm_dir = work / f"joint-{args.ae_steps}-{args.diffusion_steps}"
    if not (dm_dir / "manifest.json").exists():
        model = resolve("joint", "tiny", {"steps": args.diffusion_steps})
        train({"autoencoder": ae_dir, "dataset": dataset}, dm_dir,
              DiffusionTrainConfig(space="joint", preset="tiny", model=model, seed=0, device="cpu",
                                   checkpoint_every=0))
    timings["diffusion_s"] = time.perf_counter() - t
    t = time.perf_counter()
    samples_dir = work / f"samples-{args.ae_steps}-{args.diffusion_steps}-{args.samples}"
    sample(dm_dir, samples_dir, SampleConfig(n=args.samples, steps=args.sample_steps, seed=0), device="cpu",
           overwrite=True)
    timings["sample_s"] = time.perf_counter() - t

    ae_metrics = open_artifact(ae_dir, "autoencoder").manifest["metrics"]
    print(f"two-stream AE ({args.ae_steps} steps): held-out MPSNR {ae_metrics['mpsnr_db']:.2f} dB, "
          f"SAM {ae_metrics['sam_deg']:.2f}°, mask pixel accuracy {ae_metrics['mask_pixel_accuracy']:.3f}")

    # 1. class shares (Fig. 4)
    train_p, val_p = load_patches(dataset, "train"), load_patches(dataset, "val")
    gen = load_samples(samples_dir)
    shares = open_artifact(samples_dir, "hsi-samples").manifest["metrics"]["class_share"]
    classes = sorted(int(k) for k in shares["training"])
    val_share = class_share(val_p.labels, classes)
    print("\nclass share (pixels)   real train   generated   (real val)")
    for k in sorted(shares["training"], key=int):
        print(f"  class {int(k):2d}            {shares['training'][k]:8.4f}   {shares['generated'][k]:9.4f}   "
              f"({val_share[k]:.4f})")
    tv_val = total_variation(shares["training"], val_share)
    print(f"total variation: generated vs train {shares['total_variation']:.4f}; real val vs train {tv_val:.4f}")
    print(f"generated label values {sorted(np.unique(gen.labels).tolist())} ⊆ training classes "
          f"{sorted(np.unique(train_p.labels).tolist())}: "
          f"{set(np.unique(gen.labels).tolist()) <= set(np.unique(train_p.labels).tolist())}")

    # 2. mSAD / nearest class mean
    real_px, real_lab = pixel_table(train_p.physical(), train_p.labels)
    means = {int(c): real_px[real_lab == c].astype(np.float64).mean(0) for c in np.unique(real_lab) if c > 0}
    ae = load_autoencoder(ae_dir)
    with torch.no_grad():
        z = ae.encode(torch.from_numpy(train_p.hsi), torch.from_numpy(class_index(train_p.labels, ae.classes)))
        recon, probs = ae.decode(z)
    recon_phys = recon.numpy() * ae.scale + ae.offset
    rows = {
        "generated (by generated labels)": nearest_mean_check(means, *pixel_table(gen.physical(), gen.labels)),
        "real val split": nearest_mean_check(means, *pixel_table(val_p.physical(), val_p.labels)),
        "AE reconstruction, true labels": nearest_mean_check(means, *pixel_table(recon_phys, train_p.labels)),
        "AE reconstruction, decoded masks": nearest_mean_check(
            means, *pixel_table(recon_phys, ae.labels_from_probs(probs))),
    }
    inter = [min(angle(means[a], means[b]) for b in means if b != a) for a in means]
    print(f"\nreal class means: nearest other class at {np.median(inter):.4f} rad (median), "
          f"{min(inter):.4f} rad (min)")
    print("nearest-class-mean check (classes with >= 20 pixels): correct / classes, mSAD (rad)")
    for name, r in rows.items():
        print(f"  {name:36s} {r['correct']:2d} / {r['total']:2d}   mSAD {r['msad']:.4f}")

    # 3. downstream (specdm.txt Table 3's protocol at our scale)
    t = time.perf_counter()
    down_dir = work / f"downstream-{args.ae_steps}-{args.diffusion_steps}-{args.samples}"
    report = downstream(dataset, [samples_dir], down_dir, DownstreamConfig(seeds=[0, 1, 2], device="cpu"),
                        overwrite=True)
    timings["downstream_s"] = time.perf_counter() - t
    summary = json.loads((report.path / "report.json").read_text())["summary"]
    print("\ndownstream pixel classifier on held-out real pixels (mean ± std over seeds 0, 1, 2)")
    for name in ("real", "real_plus_synthetic"):
        m = summary[name]
        print(f"  {name:22s} OA {m['oa']['mean']:.4f} ± {m['oa']['std']:.4f}   AA {m['aa']['mean']:.4f} ± "
              f"{m['aa']['std']:.4f}   kappa {m['kappa']['mean']:.4f} ± {m['kappa']['std']:.4f}")
    print(f"  change in mean OA: {summary['delta_oa']:+.4f}")
    print("\ntimings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()
