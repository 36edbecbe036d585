"""Summaries, the paired test and the verdict, and the report files (report.json, report.md,
figures/downstream.png) shared by every downstream task."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artifacts.store import plain_json

ALPHA = 0.05
SET_LABELS = {"real": "real", "real_plus_synthetic": "real + synthetic", "synthetic_only": "synthetic only"}


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool = True

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


def mean_std(values) -> dict:
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def summarise(per_seed: list[dict], sets, metrics: list[Metric]) -> dict:
    """{set: {metric: {mean, std}}} over seeds; ``per_seed[i][set][metric]``."""
    return {
        s: {m.key: mean_std([r[s][m.key] for r in per_seed]) for m in metrics}
        for s in sets
        if all(s in r for r in per_seed)
    }


def paired_verdict(baseline: list[float], other: list[float], higher_is_better: bool) -> dict:
    """Two-sided paired t-test over seeds (the same seed draws the same real subset, noise and
    initialisation for both training sets). "helps" / "does not help" need p < ALPHA in that
    direction; otherwise the difference is "within noise" (with 3 seeds only large, consistent
    differences reach significance)."""
    from scipy.stats import ttest_rel

    a, b = np.asarray(baseline, np.float64), np.asarray(other, np.float64)
    delta = b - a
    gain = delta if higher_is_better else -delta
    if np.allclose(delta, delta[0]) and not np.isclose(delta[0], 0.0):
        p = 0.0  # identical non-zero gain on every seed: no variance, a sure difference
    elif np.allclose(delta, 0.0):
        p = 1.0
    else:
        p = float(ttest_rel(b, a).pvalue)
    if p < ALPHA:
        verdict = "helps" if gain.mean() > 0 else "does not help"
    else:
        verdict = "within noise"
    return {
        "mean_delta": float(delta.mean()),
        "p_value": p,
        "verdict": verdict,
        "test": f"two-sided paired t-test over {len(a)} seeds, alpha {ALPHA}",
    }


def comparisons(per_seed: list[dict], sets, metric: Metric) -> dict:
    """Every non-real training set against the real-only baseline, on ``metric``."""
    base = [r["real"][metric.key] for r in per_seed]
    return {
        s: {"metric": metric.key, **paired_verdict(base, [r[s][metric.key] for r in per_seed], metric.higher_is_better)}
        for s in sets
        if s != "real"
    }


def bar_chart(
    path: Path,
    title: str,
    blocks: list[tuple[str, dict, dict | None]],
    metrics: list[Metric],
    baseline_label: str = "untrained baseline",
) -> None:
    """One panel per metric; bars = training sets (mean ± std over seeds); a dashed line marks
    the untrained reference. ``blocks`` = (test-set name, summary, baseline summary)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(blocks), len(metrics), figsize=(3.2 * len(metrics), 2.8 * len(blocks)), dpi=100, squeeze=False
    )
    colours = {"real": "#4c72b0", "real_plus_synthetic": "#55a868", "synthetic_only": "#c44e52"}
    for row, (name, summary, baseline) in enumerate(blocks):
        for col, m in enumerate(metrics):
            ax = axes[row][col]
            sets = list(summary)
            means = [summary[s][m.key]["mean"] for s in sets]
            stds = [summary[s][m.key]["std"] for s in sets]
            ax.bar(range(len(sets)), means, yerr=stds, capsize=4, color=[colours.get(s, "grey") for s in sets])
            ax.set_xticks(range(len(sets)), [SET_LABELS.get(s, s) for s in sets], fontsize=7)
            if baseline is not None and m.key in baseline:
                ax.axhline(baseline[m.key]["mean"], ls="--", color="k", lw=1, label=baseline_label)
                ax.legend(fontsize=6, loc="lower right")
            lo = min(means + ([baseline[m.key]["mean"]] if baseline and m.key in baseline else []))
            hi = max(mean + std for mean, std in zip(means, stds))
            pad = 0.15 * max(hi - lo, 1e-6)
            ax.set_ylim(lo - pad, hi + pad)
            ax.set_title(f"{name}: {m.label} {m.arrow}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def _fmt(v: float) -> str:
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.2f}"


def summary_table(summary: dict, baseline: dict | None, baseline_label: str, metrics: list[Metric]) -> list[str]:
    lines = [
        "| training data | " + " | ".join(f"{m.label} {m.arrow}" for m in metrics) + " |",
        "| --- |" + " --- |" * len(metrics),
    ]
    if baseline is not None:
        lines.append(
            f"| {baseline_label} | "
            + " | ".join(_fmt(baseline[m.key]["mean"]) if m.key in baseline else "–" for m in metrics)
            + " |"
        )
    for s, values in summary.items():
        lines.append(
            f"| {SET_LABELS.get(s, s)} | "
            + " | ".join(f"{_fmt(values[m.key]['mean'])} ± {_fmt(values[m.key]['std'])}" for m in metrics)
            + " |"
        )
    return lines


def verdict_lines(comp: dict, metric: Metric) -> list[str]:
    return [
        f"- **{SET_LABELS.get(s, s)}** vs real: {metric.label} {c['mean_delta']:+.4f} (p = {c['p_value']:.3g}) → "
        f"**{c['verdict']}**"
        for s, c in comp.items()
    ]


def sets_only(summary: dict) -> dict:
    """The per-training-set entries of a summary (it also carries scalar deltas)."""
    return {k: v for k, v in summary.items() if isinstance(v, dict)}


def _real_line(report: dict) -> str:
    if isinstance(report["real"], str):
        return f"Real dataset: `{report['real']}`  "
    parts = ", ".join(
        f"`{r['path']}` ({r.get('train_patches', r.get('train_pool_pixels'))} train / "
        f"{r.get('test_patches', r.get('test_pixels'))} test {'patches' if 'train_patches' in r else 'pixels'})"
        for r in report["real_sources"]
    )
    return f"Real datasets (their union, each in physical units by its own scale/offset): {parts}  "


def write_report(tmp: Path, report: dict, metrics: list[Metric], primary: Metric, protocol_text: str) -> None:
    """report.json, report.md and figures/downstream.png into the artifact being built."""
    (tmp / "figures").mkdir()
    (tmp / "report.json").write_text(json.dumps(plain_json(report), indent=2) + "\n")
    report = {**report, "summary": sets_only(report["summary"])}
    blocks = [("held-out real rows", report["summary"], report.get("baseline_summary"))]
    if report.get("test_scene"):
        ts = report["test_scene"]
        blocks.append(("test scene", ts["summary"], ts.get("baseline_summary")))
    bar_chart(
        tmp / "figures" / "downstream.png",
        f"{report['task']}: {report['paper']}",
        blocks,
        metrics,
        report.get("baseline_label") or "untrained baseline",
    )
    lines = [
        f"# Downstream check `{report['task']}`: does synthetic data help?",
        "",
        f"Reproduces: {report['paper']}  ",
        _real_line(report),
        f"Synthetic: {', '.join(f'`{p}`' for p in report['synthetic'])}  ",
        "",
        protocol_text,
        "",
        "## Held-out real rows",
        "",
    ]
    lines += summary_table(report["summary"], report.get("baseline_summary"), report.get("baseline_label", ""), metrics)
    lines += [
        "",
        f'Verdict on {primary.label} ({report["comparisons_test"]}; "helps" = better with p < {ALPHA}, '
        f'"does not help" = worse with p < {ALPHA}, otherwise "within noise"):',
    ]
    lines += verdict_lines(report["comparisons"], primary)
    if report.get("test_scene"):
        ts = report["test_scene"]
        lines += ["", f"## Second scene `{ts['path']}` (never seen in training)", ""]
        lines += summary_table(ts["summary"], ts.get("baseline_summary"), report.get("baseline_label", ""), metrics)
        lines += ["", f"Verdict on {primary.label}:"] + verdict_lines(ts["comparisons"], primary)
    lines += [
        "",
        "![downstream](figures/downstream.png)",
        "",
        f"## Per seed ({primary.label})",
        "",
        "| seed | " + " | ".join(SET_LABELS.get(s, s) for s in report["summary"]) + " |",
        "| --- |" + " --- |" * len(report["summary"]),
    ]
    for r in report["runs"]:
        lines.append(f"| {r['seed']} | " + " | ".join(_fmt(r[s][primary.key]) for s in report["summary"]) + " |")
    (tmp / "report.md").write_text("\n".join(lines) + "\n")
