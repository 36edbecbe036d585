"""SpecDM labelled synthesis quality on Indian Pines (specdm.txt §3.2-3.3, §4.2-4.3), side by side
with the references that bound it. Too slow for a test (a tiny two-stream AE and joint model).

    .venv/bin/python benchmarks/specdm.py --work runs/bench-specdm            # builds what is missing
    .venv/bin/python benchmarks/specdm.py --work runs/bench-specdm --ae-steps 1500 --diffusion-steps 8000 --mask-gain 1

Prints:
0. where class identity is lost, stage by stage: (1) real pixels → AE reconstruction, labelled by
   the true labels; (2) (z_x, z_y) of real patches → both decoders (spectra labelled by the decoded
   mask); (3) joint samples. Beside the nearest-class-mean check, a pixel-level coupling score:
   the share of labelled pixels whose spectrum a 5-NN classifier fitted on real train pixels
   assigns to the pixel's label, and the same with label maps paired with another sample's
   image (image and mask independent): (3) must beat its shuffled score to show that the joint
   model generates masks that belong to its images;
1. class shares (Fig. 4): real train split vs generated labels, and their total variation
   distance; as a yardstick, the TV between the real train and val splits (two real samples
   of the same scene);
2. the mSAD check: for each class with ≥ 20 generated pixels, is the generated class mean
   closer in spectral angle to the same class's real mean than to any other class's? Beside
   it the same check for (a) real val pixels and (b) the autoencoder's reconstructions labelled
   by the true labels and (c) by its own decoded masks — the generator cannot beat (b)/(c);
3. ``evaluate downstream``: OA/AA/κ of the pixel classifier on held-out real pixels, trained on
   a small real subset vs subset + labelled synthetic pixels, over seeds 0, 1, 2 — for the joint
   samples and, as the reference that bounds them, for the AE's reconstructions of the real
   train patches labelled by their decoded masks.
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
        rows[int(c)] = {
            "pixels": int(pick.sum()),
            "own_angle": angles[c],
            "nearest": int(nearest),
            "correct": bool(nearest == c),
        }
    correct = sum(r["correct"] for r in rows.values())
    return {
        "classes": rows,
        "correct": correct,
        "total": len(rows),
        "msad": float(np.mean([r["own_angle"] for r in rows.values()])) if rows else float("nan"),
    }


def pixel_table(cubes_phys: np.ndarray, labels: np.ndarray):
    b = cubes_phys.shape[1]
    return cubes_phys.transpose(0, 2, 3, 1).reshape(-1, b), labels.reshape(-1)


def coupling(knn, cubes_phys: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(agreement of a real-pixel 5-NN classifier with the labels, the same with each label map
    moved to the next image): how much the masks belong to their images."""

    def agree(lab):
        spectra, flat = pixel_table(cubes_phys, lab)
        keep = flat > 0
        unit = spectra[keep] / np.linalg.norm(spectra[keep], axis=1, keepdims=True)
        return float((knn.predict(unit) == flat[keep]).mean())

    return agree(labels), agree(np.roll(labels, 1, axis=0))


def diffusion_diagnosis(dm_dir: Path, ae_dir: Path, dataset: Path, means: dict, knn) -> None:
    """Where the joint model loses the image-mask coupling: (a) its x0 error on the image
    latents of noised training latents with their own mask latents vs another patch's (a model
    that uses the mask predicts the image better from its own); (b) training latents noised to
    t and denoised back with DDIM (SDEdit): the coupling left after each depth of noise."""
    import torch
    from diffusers import DDPMScheduler

    import stages.diffusion.spaces.joint as joint_space
    from stages.diffusion import load_model
    from stages.diffusion.schedules import sampling_scheduler

    model = load_model(dm_dir)
    unet = model.load_unet()
    norm = model.config["normalisation"]
    saved_gain = joint_space.MASK_GAIN
    joint_space.MASK_GAIN = norm.get("mask_gain", 1.0)
    data = joint_space.prepare({"autoencoder": ae_dir, "dataset": dataset}, 0)
    joint_space.MASK_GAIN = saved_gain
    n_patches = int(model.config["training_patches"])
    clean = torch.from_numpy(data.tensors[:n_patches])  # orientation 0 of every training patch
    cx = clean.shape[1] - int(norm["mask_latent_channels"])
    train_sched = DDPMScheduler.from_config(model.training_scheduler_config())
    g = torch.Generator().manual_seed(0)
    print(
        "  (a) image-latent x0 MSE, own mask vs another patch's mask (image-latent variance "
        f"{float(clean[:, :cx].var()):.3f}):"
    )
    for t in (150, 300, 500):
        tt = torch.full((len(clean),), t)
        xt = train_sched.add_noise(clean, torch.randn(clean.shape, generator=g), tt)
        other = xt.clone()
        other[:, cx:] = xt.roll(1, 0)[:, cx:]
        with torch.no_grad():
            own = float(((unet(xt, tt).sample[:, :cx] - clean[:, :cx]) ** 2).mean())
            swapped = float(((unet(other, tt).sample[:, :cx] - clean[:, :cx]) ** 2).mean())
        print(f"      t = {t:3d}: {own:.3f} vs {swapped:.3f}")
    print("  (b) training latents noised to t and denoised (DDIM, 25 steps): nearest-mean check, coupling")
    for t_start in (0, 100, 300, 500, 999):
        sched = sampling_scheduler("ddim", model.training_scheduler_config())
        sched.set_timesteps(25)
        steps = [t for t in sched.timesteps if t <= t_start]
        x = clean.clone()
        if steps:
            x = sched.add_noise(clean, torch.randn(clean.shape, generator=g), torch.tensor([int(steps[0])]))
            with torch.no_grad():
                for t in steps:
                    x = sched.step(unet(x, t).sample, t, x).prev_sample
        decoded = joint_space.decode(model, x.numpy())
        phys = decoded.hsi * decoded.scale + decoded.offset
        r = nearest_mean_check(means, *pixel_table(phys, decoded.arrays["labels"]))
        agree, shuffled = coupling(knn, phys, decoded.arrays["labels"])
        print(
            f"      t = {t_start:3d}: {r['correct']:2d} / {r['total']:2d}   mSAD {r['msad']:.4f}   "
            f"coupling {agree:.3f} ({shuffled:.3f})"
        )


def write_reference_samples(out: Path, hsi_ae_units: np.ndarray, labels: np.ndarray, ae) -> Path:
    """The AE's reconstructions as an hsi-samples artifact (the downstream reference)."""
    from stages.artifacts import ArtifactWriter, spectral_block
    from stages.artifacts.samples import write_samples

    writer = ArtifactWriter(
        out, "hsi-samples", "benchmark", {"reference": "two-stream AE reconstructions"}, [], overwrite=True
    )
    with writer.building() as tmp:
        writer.metrics = write_samples(tmp, hsi_ae_units, ae.wavelengths_nm, ae.scale, ae.offset, "tif", labels=labels)
        writer.spectral = spectral_block(ae.wavelengths_nm, ae.scale, ae.offset)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("runs/bench-specdm"))
    ap.add_argument("--ae-steps", type=int, default=1000)
    ap.add_argument("--diffusion-steps", type=int, default=5000)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--sample-steps", type=int, default=25)
    ap.add_argument("--mask-gain", type=float, default=None, help="joint latent mask gain (default: the space's)")
    ap.add_argument(
        "--ae-latent-channels",
        type=int,
        default=None,
        help="image-latent channels of the two-stream AE (default: the tiny preset's)",
    )
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
    ae_overrides = {"steps": args.ae_steps}
    if args.ae_latent_channels is not None:
        ae_overrides["latent_channels"] = args.ae_latent_channels
    ae_model = resolve_preset(AE_PRESETS["two-stream"], "tiny", ae_overrides)
    ae_dir = work / f"ae-{args.ae_steps}-c{ae_model['latent_channels']}"
    if not (ae_dir / "manifest.json").exists():
        train_ae(dataset, ae_dir, TrainAEConfig(kind="two-stream", preset="tiny", model=ae_model, seed=0), device="cpu")
    timings["autoencoder_s"] = time.perf_counter() - t
    t = time.perf_counter()
    import stages.diffusion.spaces.joint as joint_space

    if args.mask_gain is not None:
        joint_space.MASK_GAIN = args.mask_gain
    dm_dir = work / f"joint-{ae_dir.name}-{args.diffusion_steps}-g{joint_space.MASK_GAIN:g}"
    if not (dm_dir / "manifest.json").exists():
        model = resolve("joint", "tiny", {"steps": args.diffusion_steps})
        train(
            {"autoencoder": ae_dir, "dataset": dataset},
            dm_dir,
            DiffusionTrainConfig(space="joint", preset="tiny", model=model, seed=0, device="cpu", checkpoint_every=0),
        )
    timings["diffusion_s"] = time.perf_counter() - t
    t = time.perf_counter()
    samples_dir = work / f"samples-{dm_dir.name}-{args.samples}"
    sample(
        dm_dir, samples_dir, SampleConfig(n=args.samples, steps=args.sample_steps, seed=0), device="cpu", overwrite=True
    )
    timings["sample_s"] = time.perf_counter() - t

    ae_metrics = open_artifact(ae_dir, "autoencoder").manifest["metrics"]
    print(
        f"two-stream AE ({args.ae_steps} steps): held-out MPSNR {ae_metrics['mpsnr_db']:.2f} dB, "
        f"SAM {ae_metrics['sam_deg']:.2f}°, mask pixel accuracy {ae_metrics['mask_pixel_accuracy']:.3f}"
    )

    # 1. class shares (Fig. 4)
    train_p, val_p = load_patches(dataset, "train"), load_patches(dataset, "val")
    gen = load_samples(samples_dir)
    shares = open_artifact(samples_dir, "hsi-samples").manifest["metrics"]["class_share"]
    classes = sorted(int(k) for k in shares["training"])
    val_share = class_share(val_p.labels, classes)
    print("\nclass share (pixels)   real train   generated   (real val)")
    for k in sorted(shares["training"], key=int):
        print(
            f"  class {int(k):2d}            {shares['training'][k]:8.4f}   {shares['generated'][k]:9.4f}   "
            f"({val_share[k]:.4f})"
        )
    tv_val = total_variation(shares["training"], val_share)
    print(f"total variation: generated vs train {shares['total_variation']:.4f}; real val vs train {tv_val:.4f}")
    print(
        f"generated label values {sorted(np.unique(gen.labels).tolist())} ⊆ training classes "
        f"{sorted(np.unique(train_p.labels).tolist())}: "
        f"{set(np.unique(gen.labels).tolist()) <= set(np.unique(train_p.labels).tolist())}"
    )

    # 2. mSAD / nearest class mean
    real_px, real_lab = pixel_table(train_p.physical(), train_p.labels)
    means = {int(c): real_px[real_lab == c].astype(np.float64).mean(0) for c in np.unique(real_lab) if c > 0}
    ae = load_autoencoder(ae_dir)
    ae_units = ((train_p.physical() - ae.offset) / ae.scale).astype(np.float32)
    with torch.no_grad():
        z = ae.encode(torch.from_numpy(ae_units), torch.from_numpy(class_index(train_p.labels, ae.classes)))
        recon, probs = ae.decode(z)
    recon_phys = recon.numpy() * ae.scale + ae.offset
    decoded_masks = ae.labels_from_probs(probs)
    cases = {
        "real val split": (val_p.physical(), val_p.labels),
        "(1) AE reconstruction, true labels": (recon_phys, train_p.labels),
        "(2) AE (z_x, z_y) decoded, decoded masks": (recon_phys, decoded_masks),
        "(3) joint samples, generated labels": (gen.physical(), gen.labels),
    }
    rows = {name: nearest_mean_check(means, *pixel_table(c, lab)) for name, (c, lab) in cases.items()}
    from sklearn.neighbors import KNeighborsClassifier

    labelled = real_lab > 0
    knn = KNeighborsClassifier(5).fit(
        real_px[labelled] / np.linalg.norm(real_px[labelled], axis=1, keepdims=True), real_lab[labelled]
    )
    inter = [min(angle(means[a], means[b]) for b in means if b != a) for a in means]
    print(f"\nreal class means: nearest other class at {np.median(inter):.4f} rad (median), {min(inter):.4f} rad (min)")
    print(
        "nearest-class-mean check (classes with >= 20 pixels): correct / classes, mSAD (rad); "
        "pixel coupling: 5-NN agreement with the labels (with another image's labels)"
    )
    for name, r in rows.items():
        agree, shuffled = coupling(knn, *cases[name])
        print(
            f"  {name:42s} {r['correct']:2d} / {r['total']:2d}   mSAD {r['msad']:.4f}   "
            f"coupling {agree:.3f} ({shuffled:.3f})"
        )
    print("where the joint model loses the coupling:")
    diffusion_diagnosis(dm_dir, ae_dir, dataset, means, knn)
    gen_rows = rows["(3) joint samples, generated labels"]["classes"]
    print(
        "  per class (3): "
        + ", ".join(f"{c}:{'ok' if r['correct'] else r['nearest']} {r['own_angle']:.3f}" for c, r in gen_rows.items())
    )

    # 3. downstream (specdm.txt Table 3's protocol at our scale)
    t = time.perf_counter()
    reference_dir = write_reference_samples(work / f"recon-{ae_dir.name}", recon.numpy(), decoded_masks, ae)
    config = DownstreamConfig(seeds=[0, 1, 2], device="cpu")
    summaries = {}
    for name, synthetic in (("joint samples", samples_dir), ("AE reconstructions (reference)", reference_dir)):
        report = downstream(dataset, [synthetic], work / f"downstream-{synthetic.name}", config, overwrite=True)
        summaries[name] = json.loads((report.path / "report.json").read_text())
    timings["downstream_s"] = time.perf_counter() - t
    print(
        f"\ndownstream pixel classifier on held-out real pixels (mean ± std over seeds 0, 1, 2); "
        f"{config.per_class} real pixels per class, synthetic up to {config.synthetic_ratio:g}× per class, "
        f"labelled synthetic pixels within {config.boundary} px of another label left out"
    )

    def line(label, m):
        print(
            f"  {label:44s} OA {m['oa']['mean']:.4f} ± {m['oa']['std']:.4f}   AA {m['aa']['mean']:.4f} ± "
            f"{m['aa']['std']:.4f}   kappa {m['kappa']['mean']:.4f} ± {m['kappa']['std']:.4f}"
        )

    first = next(iter(summaries.values()))
    line("real subset", first["summary"]["real"])
    for name, rep in summaries.items():
        pixels_used = [r["synthetic_pixels"] for r in rep["runs"]]
        line(f"real + {name} ({min(pixels_used)}-{max(pixels_used)} px)", rep["summary"]["real_plus_synthetic"])
        print(f"    change in mean OA: {rep['summary']['delta_oa']:+.4f}")
    print("\ntimings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()
