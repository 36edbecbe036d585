"""Every ``evaluate downstream --task`` on the embedded Indian Pines scene, printing real vs
real + synthetic (and synthetic-only) side by side with the paired verdicts, for the samples of
the shipped pretrained generators and/or of generators trained here in minutes.

    .venv/bin/python benchmarks/downstream.py --work runs/bench-downstream               # pretrained
    .venv/bin/python benchmarks/downstream.py --generators trained --tasks denoise,sr --task-steps 300
    .venv/bin/python benchmarks/downstream.py --generators both

Generators, one report per (task, generator) so each gets its own verdict:
- ``pretrained`` (``hsigen pretrained``): unlabelled tasks (denoise, sr) with the latent model's
  unconditional samples (HSIGene) and the abundance model's (HUD / MSF-Diff); labelled tasks
  (segment, scene-classify, pixel-classify) with the joint model's HSI + mask pairs (SpecDM);
  change has no pretrained generator (no change pair is shipped), so it uses the trained chain.
- ``trained`` (tiny presets, fixed steps; all train on the dataset's train split only): abundance
  diffusion (VCA k = 5, ``--abundance-steps``) for denoise/sr; the SpecDM two-stream VAE + joint
  diffusion (``--ae-steps``, ``--joint-steps``) for the labelled tasks; change: the same joint
  chain on the Indian Pines change pair (tests/joint/joint_helpers.py: t2 = t1 with eight
  rectangles of another class), with a ``--pairs`` autoencoder.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "joint"))

TASKS = ("denoise", "sr", "segment", "change", "scene-classify", "pixel-classify")
UNLABELLED, LABELLED = ("denoise", "sr"), ("segment", "scene-classify", "pixel-classify")
PRETRAINED = {  # source of samples -> (pretrained model, tasks it feeds)
    "pretrained-latent": ("pretrained:indian-pines-latent", UNLABELLED),
    "pretrained-abundance": ("pretrained:indian-pines-abundance", UNLABELLED),
    "pretrained-joint": ("pretrained:indian-pines-joint", LABELLED),
}


def once(out: Path, build) -> Path:
    """Build an artifact unless a complete one is already there (benchmarks rerun cheaply)."""
    if not (out / "manifest.json").exists():
        build(out)
    return out


def abundance_samples(work: Path, dataset: Path, steps: int, n: int) -> Path:
    from stages import diffusion, sampling, unmix
    from stages.common.runtime import torch_threads

    unmixing = once(work / "unmixing", lambda o: unmix.run(dataset, o, unmix.UnmixConfig(method="vca", endmembers=5)))

    def train(o):
        model = diffusion.resolve("abundance", "tiny", {"steps": steps, "crop": 16})
        with torch_threads(1):
            diffusion.train(
                {"unmixing": unmixing},
                o,
                diffusion.DiffusionTrainConfig("abundance", "tiny", model, seed=0, device="cpu", checkpoint_every=0),
            )

    model = once(work / f"abundance-{steps}", train)
    return once(
        work / f"abundance-{steps}-samples-{n}",
        lambda o: sampling.run(
            model, o, sampling.SampleConfig(n=n, sampler="ddim", steps=25, size=32, seed=0), device="cpu"
        ),
    )


def joint_samples(
    work: Path, dataset: Path, ae_steps: int, joint_steps: int, n: int, tag: str, pairs: Path | None = None
) -> Path:
    from joint_helpers import draw_samples, train_joint, train_two_stream

    ae = once(work / f"{tag}-ae-{ae_steps}", lambda o: train_two_stream(dataset, o, steps=ae_steps, pairs=pairs))
    model = once(work / f"{tag}-joint-{joint_steps}", lambda o: train_joint(ae, dataset, o, steps=joint_steps))
    return once(work / f"{tag}-joint-{joint_steps}-samples-{n}", lambda o: draw_samples(model, o, n=n))


def pretrained_samples(work: Path, model: str, n: int) -> Path:
    """``n`` unconditional 32×32 samples of a shipped model (DDIM 50, seed 1: the realism benchmark's), raw
    (not through the model's default spectral manifold: the rows docs/pretrained.md records)."""
    from stages import sampling

    out = work / f"{model.split(':', 1)[1]}-samples-{n}"
    return once(
        out,
        lambda o: sampling.run(
            model,
            o,
            sampling.SampleConfig(n=n, sampler="ddim", steps=50, size=32, seed=1),
            device="cpu",
            spectral_manifold=sampling.NO_MANIFOLD,
        ),
    )


def change_datasets(work: Path) -> tuple[Path, Path]:
    """(pair dataset t1 + t2 + mask, the t2 scene alone for the --pairs autoencoder)."""
    from joint_helpers import ingest_pair, write_change_pair

    from stages.ingest import ingest_example

    t2, mask = write_change_pair(work / "change-pair-files")
    pair = once(work / "ip-change", lambda o: ingest_pair(o, t2, mask))
    t2_only = once(work / "ip-t2", lambda o: ingest_example(o, source=t2, labels=mask))
    return pair, t2_only


def fmt(summary: dict, key: str) -> str:
    return f"{summary[key]['mean']:.4f} ± {summary[key]['std']:.4f}"


def print_report(report: dict, seconds: float, samples: str) -> None:
    primary = report["primary_metric"]
    metrics = [k for k in report["summary"]["real"] if not k.startswith("per_class")]
    print(f"\n== {report['task']} with {samples} ({report['paper']}); {seconds:.0f} s")
    header = f"  {'training data':22s}" + "".join(f"{m:>20s}" for m in metrics)
    print(header)
    if report.get("baseline_summary"):
        base = report["baseline_summary"]
        print(f"  {report['baseline_label']:22s}" + "".join(f"{base[m]['mean']:>20.4f}" for m in metrics))
    for s in report["training_sets"]:
        print(f"  {s:22s}" + "".join(f"{fmt(report['summary'][s], m):>20s}" for m in metrics))
    for s, c in report["comparisons"].items():
        print(f"  {s} vs real on {primary}: {c['mean_delta']:+.4f} (p = {c['p_value']:.3g}) -> {c['verdict']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-downstream")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--generators", choices=("pretrained", "trained", "both"), default="pretrained")
    ap.add_argument("--task-steps", type=int, default=None, help="training steps per model (default: the task's)")
    ap.add_argument("--abundance-steps", type=int, default=500)
    ap.add_argument("--ae-steps", type=int, default=300)
    ap.add_argument("--joint-steps", type=int, default=300)
    ap.add_argument("--samples", type=int, default=32)
    args = ap.parse_args()

    from stages.downstream import DownstreamConfig, run
    from stages.ingest import ingest_example

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    dataset = once(work / "ip", ingest_example)
    t0 = time.perf_counter()
    runs = []  # (task, real dataset, samples)
    if args.generators in ("pretrained", "both"):
        for model, feeds in PRETRAINED.values():
            wanted = [t for t in tasks if t in feeds]
            if wanted:
                samples = pretrained_samples(work, model, args.samples)
                runs += [(t, dataset, samples) for t in wanted]
    trained = args.generators in ("trained", "both")
    if trained and set(UNLABELLED) & set(tasks):
        samples = abundance_samples(work, dataset, args.abundance_steps, args.samples)
        runs += [(t, dataset, samples) for t in tasks if t in UNLABELLED]
    if trained and set(LABELLED) & set(tasks):
        samples = joint_samples(work, dataset, args.ae_steps, args.joint_steps, args.samples, "ip")
        runs += [(t, dataset, samples) for t in tasks if t in LABELLED]
    if "change" in tasks:  # no pretrained change-pair generator: always the trained chain
        pair, t2_only = change_datasets(work)
        samples = joint_samples(work, pair, args.ae_steps, args.joint_steps, args.samples, "change", pairs=t2_only)
        runs.append(("change", pair, samples))
    print(f"generators and samples ready in {time.perf_counter() - t0:.0f} s")
    order = {t: i for i, t in enumerate(tasks)}
    for task, real, samples in sorted(runs, key=lambda r: order[r[0]]):
        cfg = DownstreamConfig(task=task, steps=args.task_steps, device="cpu")
        t = time.perf_counter()
        out = work / f"downstream-{task}-{samples.name}-{args.task_steps or 'default'}"
        artifact = run(real, [samples], out, cfg, overwrite=True)  # up to date: skipped
        report = json.loads((artifact.path / "report.json").read_text())
        print_report(report, time.perf_counter() - t, samples.name)


if __name__ == "__main__":
    main()
