"""Benchmark: how realistic are hsigen's samples? Reference rows and every generator — the shipped
pretrained models and, when a demo run exists, the demo-trained ones — scored side by side by one
``hsigen evaluate`` against the embedded Indian Pines scene's train rows (physical units, k = 10),
with the targets of the realism issue beside them.

    .venv/bin/python benchmarks/realism.py                      # pretrained models (+ runs/demo if present)
    .venv/bin/python benchmarks/realism.py --demo runs/demo     # name the demo run explicitly
    .venv/bin/python benchmarks/realism.py --no-demo

Rows: real-heldout (the val rows: the ceiling), shuffled / Gaussian pixels, blurred and noisy
held-out images (``--references all``), each latent/joint model's autoencoder on the val rows,
then 16 samples per generator: abundance (HUD / MSF-Diff), latent unconditional and under the
hed + seg maps of 16 val patches (HSIGene), joint (SpecDM). Quality at fixed seeds does not
depend on how busy the machine is; the seconds are printed for reference only.
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

from pretrain import INGEST, LATENT_KINDS, Lane, evaluate_sets, make_samples  # noqa: E402

PRETRAINED = {
    "abundance": "pretrained:indian-pines-abundance",
    "latent": "pretrained:indian-pines-latent",
    "joint": "pretrained:indian-pines-joint",
}
DEMO_SETS = {"abundance": "abundance-samples", "latent-conditioned": "latent-samples", "joint": "labelled-samples"}

# The goals: (sPr ≥, sRec ≥, gradient ratio range, max band-mean error ≤) per kind of row.
TARGETS = {
    "autoencoder": (0.90, 0.50, (0.85, None), None),
    "latent": (0.85, 0.35, (0.75, 1.33), 0.05),
    "abundance": (None, 0.30, (0.75, 1.33), None),
    "joint": (0.85, 0.35, (0.75, 1.33), 0.05),
}


def target_of(row: str):
    for key in ("autoencoder", "latent", "abundance", "joint"):
        if key in row:
            return key, TARGETS[key]
    return None, None


def verdict(row: str, m: dict) -> str:
    key, target = target_of(row)
    if target is None:
        return ""
    spr, srec, (g_lo, g_hi), cast = target
    misses = []
    if spr is not None and m.get("spr", 0) < spr:
        misses.append(f"sPr<{spr}")
    if srec is not None and m.get("srec", 0) < srec:
        misses.append(f"sRec<{srec}")
    g = m.get("gradient_ratio", 0)
    if g < g_lo or (g_hi is not None and g > g_hi):
        misses.append(f"grad∉[{g_lo},{g_hi or '∞'}]")
    # Conditioned samples follow val maps, whose mean spectrum differs from the train rows' (another
    # land-cover mix); the colour-cast check is for samples that imitate the train rows.
    if cast is not None and "conditioned" not in row and m.get("max_band_mean_error", 1) > cast:
        misses.append(f"cast>{cast:.0%}")
    return "met" if not misses else "missed: " + ", ".join(misses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", default=None, help="A `make demo` run directory (default runs/demo if present).")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--work", default=None, help="Keep the samples and report here (default: a temp dir).")
    args = parser.parse_args()
    demo = None if args.no_demo else Path(args.demo or ROOT / "runs" / "demo")
    if demo is not None and not (demo / "dataset" / "manifest.json").is_file():
        if args.demo:
            raise SystemExit(f"--demo {demo} has no dataset/; run `make demo` first")
        demo = None
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        lane = Lane(work, "realism.log")
        lane.run("dataset", *INGEST)
        lane.run("conditions-val", "condition", "dataset", "--kinds", LATENT_KINDS, "--split", "val",
                 "--out", "conditions-val")  # fmt: skip
        sets = make_samples(work, PRETRAINED, "conditions-val", prefix="pretrained-")
        if demo is not None:
            for row, name in DEMO_SETS.items():
                if (demo / name / "manifest.json").is_file():
                    sets[f"demo-{row}"] = str((demo / name).resolve())
        refs, generated = evaluate_sets(work, sets, references="all")
        rename = lambda label: label.replace("autoencoder-reconstruction:", "autoencoder of ")  # noqa: E731
        rows = [(rename(label), m) for label, m in refs] + generated
        print(f"\nrealism on the embedded Indian Pines scene (train rows; val held out), {time.time() - t0:.0f} s")
        print(f"{'set':<36} {'sPr':>6} {'sRec':>6} {'grad':>6} {'cast':>6}  target")
        for label, m in rows:
            print(
                f"{label:<36} {m.get('spr', float('nan')):6.3f} {m.get('srec', float('nan')):6.3f} "
                f"{m.get('gradient_ratio', float('nan')):6.2f} {m.get('max_band_mean_error', float('nan')):6.3f}  "
                f"{verdict(label, m)}"
            )
        print(
            "\nsPr/sRec: spectral precision/recall (k = 10); grad: mean spatial gradient ÷ the real set's (1 = as "
            "sharp); cast: largest relative error of a band's mean level (val rows differ from train by ~0.2)."
        )
        if args.work:
            print(f"report: {work / 'evaluation' / 'report.md'}")


if __name__ == "__main__":
    main()
