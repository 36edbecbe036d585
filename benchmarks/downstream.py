"""Every ``evaluate downstream --task`` on the embedded Indian Pines scene with samples of the
generators that train in minutes on a CPU, printing real vs real + synthetic (and
synthetic-only) side by side with the paired verdicts.

    .venv/bin/python benchmarks/downstream.py --work runs/bench-downstream
    .venv/bin/python benchmarks/downstream.py --tasks denoise,sr --task-steps 300

Generators (tiny presets, fixed steps; all train on the dataset's train split only):
- unlabelled tasks (denoise, sr): HUD/MSF-Diff abundance-space diffusion (VCA k = 5, ``--abundance-steps``);
- labelled tasks (segment, scene-classify, pixel-classify): SpecDM two-stream VAE + joint
  diffusion (``--ae-steps``, ``--joint-steps``), whose samples carry masks;
- change: the same joint chain on the Indian Pines change pair (tests/joint/joint_helpers.py:
  t2 = t1 with eight rectangles of another class), with a ``--pairs`` autoencoder.
The pretrained generators (issue 14) and the imported HSIGene model do not exist in this
project yet; when they do, pass their samples to ``evaluate downstream`` the same way.
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


def print_report(report: dict, seconds: float) -> None:
    primary = report["primary_metric"]
    metrics = [k for k in report["summary"]["real"] if not k.startswith("per_class")]
    print(f"\n== {report['task']} ({report['paper']}); {seconds:.0f} s")
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
    synthetic = {}
    if {"denoise", "sr"} & set(tasks):
        synthetic["unlabelled"] = abundance_samples(work, dataset, args.abundance_steps, args.samples)
    if {"segment", "scene-classify", "pixel-classify"} & set(tasks):
        synthetic["labelled"] = joint_samples(work, dataset, args.ae_steps, args.joint_steps, args.samples, "ip")
    if "change" in tasks:
        pair, t2_only = change_datasets(work)
        synthetic["change"] = joint_samples(
            work, pair, args.ae_steps, args.joint_steps, args.samples, "change", pairs=t2_only
        )
    print(
        f"generators and samples ready in {time.perf_counter() - t0:.0f} s: "
        + ", ".join(f"{k} {v.name}" for k, v in synthetic.items())
    )
    for task in tasks:
        real = pair if task == "change" else dataset
        source = {"denoise": "unlabelled", "sr": "unlabelled", "change": "change"}.get(task, "labelled")
        cfg = DownstreamConfig(task=task, steps=args.task_steps, device="cpu")
        t = time.perf_counter()
        out = work / f"downstream-{task}-{synthetic[source].name}-{args.task_steps or 'default'}"
        artifact = run(real, [synthetic[source]], out, cfg, overwrite=True)  # up to date: skipped
        print_report(json.loads((artifact.path / "report.json").read_text()), time.perf_counter() - t)


if __name__ == "__main__":
    main()
