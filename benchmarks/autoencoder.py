"""Benchmark: the ``tiny`` autoencoder vs the PCA baseline of the same size on held-out patches
of the embedded Indian Pines scene (issue 5), at a fixed step count.

The PCA baseline keeps C principal components (C = latent channels) of the patch
downsampled by f = 4 and upsamples bicubically: exactly as many numbers per patch as the VAE
latent. Quality at a fixed step count does not depend on how busy the machine is; the
seconds are printed beside it for reference only.

    .venv/bin/python benchmarks/autoencoder.py                       # kl, the tiny preset's steps
    .venv/bin/python benchmarks/autoencoder.py --steps 600           # a shorter check
    .venv/bin/python benchmarks/autoencoder.py --kind two-stream     # SpecDM: HSI branch + mask accuracy
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", default="kl", choices=("kl", "two-stream"))
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the tiny preset's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from stages import ingest
    from stages.autoencoder import PRESETS, TrainAEConfig, run
    from stages.common import log
    from stages.spectral import parse_band_ranges, read_wavelengths_file, target_grid
    from stages.training import resolve_preset

    log.set_verbosity(-1)
    work = Path(tempfile.mkdtemp(prefix="hsigen-bench-ae-"))
    ex = ingest.EXAMPLES["indian-pines"]
    cfg = ingest.IngestConfig(
        target_wavelengths_nm=list(target_grid()),
        size=32,
        stride=16,
        drop_bands=parse_band_ranges(ex["drop_bands"]),
        val_fraction=0.25,
        wavelengths_source="sidecar",
        example="indian-pines",
    )
    ingest.run(
        [ex["source"]],
        work / "ip",
        cfg,
        wavelengths=read_wavelengths_file(ex["wavelengths_file"]),
        labels_path=ex["labels"],
        extra_inputs=[ex["wavelengths_file"]],
    )

    model = resolve_preset(PRESETS[args.kind], "tiny", {"steps": args.steps})
    start = time.perf_counter()
    artifact = run(
        work / "ip",
        work / "ae",
        TrainAEConfig(kind=args.kind, preset="tiny", model=model, seed=args.seed),
        device=args.device,
    )
    seconds = time.perf_counter() - start
    m = artifact.metrics
    steps = int(model["steps"])
    params = sum(artifact.manifest["autoencoder"]["parameters"].values())
    training = artifact.manifest["training"]
    print(
        f"held-out patches: {m['heldout_patches']} ({m['heldout_split']} split of the embedded Indian Pines, "
        f"32x32x48); {training['crop_windows']:,} distinct {model['crop']}x{model['crop']} training windows"
    )
    print(
        f"tiny {args.kind}: {params:,} parameters, {steps} steps of batch {model['batch_size']} in {seconds:.0f} s "
        f"({seconds / steps:.3f} s/step incl. evaluation)"
    )
    label = f"tiny {args.kind}" + (" HSI branch" if args.kind == "two-stream" else "")
    print(f"{'':26s}{'MPSNR dB':>10s}{'SAM deg':>10s}")
    baseline = f"PCA baseline (C={m['baseline_pca_components']})"
    print(f"{baseline:26s}{m['baseline_pca_mpsnr_db']:10.2f}{m['baseline_pca_sam_deg']:10.2f}")
    print(f"{label:26s}{m['mpsnr_db']:10.2f}{m['sam_deg']:10.2f}")
    print(f"{'same model at step 0':26s}{m['mpsnr_db_step0']:10.2f}{m['sam_deg_step0']:10.2f}")
    print(
        f"ours - PCA: {m['mpsnr_db'] - m['baseline_pca_mpsnr_db']:+.2f} dB MPSNR, "
        f"SAM ratio ours/PCA {m['sam_deg'] / m['baseline_pca_sam_deg']:.3f}"
    )
    print(
        f"beats baseline on both: {m['mpsnr_db'] > m['baseline_pca_mpsnr_db'] and m['sam_deg'] < m['baseline_pca_sam_deg']}"
    )
    if args.kind == "two-stream":
        print(
            f"mask pixel accuracy (held-out): {m['mask_pixel_accuracy']:.4f} all pixels, "
            f"{m['mask_pixel_accuracy_seen_classes']:.4f} on classes seen in training "
            f"(classes {m['mask_classes_unseen_in_training']} = {100 * m['mask_heldout_unseen_share']:.1f} % of "
            f"held-out pixels never occur in the train split); step 0: {m['mask_pixel_accuracy_step0']:.4f}"
        )


if __name__ == "__main__":
    main()
