"""``hsigen evaluate``: every seed paper's metric for real vs generated data, in one
``evaluation-report`` artifact (report.json, report.md, figures)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..artifacts.store import ArtifactWriter, input_record, plain_json
from ..common import log
from ..common.errors import ConfigError, SpectralError
from ..spectral.quality import spectral_angles
from . import distribution, diversity, fidelity, figures, manifold, paired
from .spectra import ImageSet, check_same_grid, load_image_set, pixels

ALL_METRICS = ("spr_srec", "fp", "db", "sd", "sdm", "fid", "kid", "is", "fid_rgb", "paired", "msad")
NEEDS = {
    "sd": "--classifier DIR (train one with `hsigen evaluate train-classifier`)",
    "sdm": "--classifier DIR and samples that share a condition (condition_index or conditions in samples.h5)",
    "fid": "--classifier DIR", "kid": "--classifier DIR", "is": "--classifier DIR",
    "fid_rgb": "--inception-weights FILE (the pt_inception-2015-12-05 FID weights) and at least 2 images per set",
    "paired": "--reference DIR whose images pair one-to-one with the generated ones",
    "msad": "labels in both the real dataset and the generated samples",
    "db": "images at least --block pixels wide",
}


@dataclass
class EvaluateConfig:
    metrics: list[str] | None = None      # None: all that the inputs allow
    k: int = 10
    groups: int | None = None             # sPr/sRec: the paper's grouped variant when set
    block: int = 8
    block_stride: int | None = None
    max_spectra: int = 100_000
    seed: int = 0
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    ergas_ratio: float = 1.0
    clusters: int = 6
    classifier: str | None = None
    reference: str | None = None
    real_split: str | None = None
    inception_weights: str | None = None  # RGB FID on false colour when given
    rgb_max_images: int | None = None     # RGB FID: seeded subset of at most this many images per set
    rgb_batch_size: int = 16
    device: str = "auto"                  # for the Inception network


def _available(name: str, gen: ImageSet, real: ImageSet, clf, reference: ImageSet | None, block: int,
               inception=None) -> bool:
    if name in ("spr_srec", "fp"):
        return True
    if name == "db":
        return block <= min(*gen.cubes.shape[2:], *real.cubes.shape[2:])
    if name in ("sd", "fid", "kid", "is"):
        return clf is not None
    if name == "sdm":
        if clf is None or gen.condition_ids is None:
            return False
        _, counts = np.unique(gen.condition_ids, return_counts=True)
        return bool(np.any(counts >= 2))
    if name == "paired":
        return reference is not None and reference.cubes.shape == gen.cubes.shape
    if name == "msad":
        return gen.labels is not None and real.labels is not None
    if name == "fid_rgb":
        return inception is not None and min(len(gen.cubes), len(real.cubes)) >= 2
    return False


def msad(real_px, gen_px) -> dict:
    """Per-class mean spectra of real and generated pixels and their spectral angle
    distance, averaged over classes present in both (specdm.txt §4.2 "mSAD", radians)."""
    per_class = {}
    for c in np.intersect1d(np.unique(real_px.labels), np.unique(gen_px.labels)):
        if c <= 0:
            continue
        a = real_px.values[real_px.labels == c].astype(np.float64).mean(0)
        b = gen_px.values[gen_px.labels == c].astype(np.float64).mean(0)
        per_class[int(c)] = float(spectral_angles(a, b, axis=0))
    if not per_class:
        raise ConfigError("mSAD: the real and generated labels share no class; check the samples' labels")
    return {"msad": float(np.mean(list(per_class.values()))), "per_class": per_class}


def _classifier_metrics(names, clf, gen: ImageSet, real_feats, gen_px, cfg: EvaluateConfig) -> dict:
    out = {}
    if {"fid", "kid"} & names:
        gen_feats = clf.features(gen_px.values)
        if "fid" in names:
            out["fid_spectral"] = distribution.frechet_distance(real_feats, gen_feats)
        if "kid" in names:
            mean, std = distribution.kernel_inception_distance(real_feats, gen_feats, cfg.kid_subsets,
                                                               cfg.kid_subset_size, cfg.seed)
            out["kid_spectral"] = {"mean": mean, "std": std}
    if "is" in names:
        mean, std = distribution.inception_score(clf.probabilities(gen_px.values), cfg.is_splits, cfg.seed)
        out["is_spectral"] = {"mean": mean, "std": std}
    n, b, h, w = gen.cubes.shape
    per_image = None
    if {"sd", "sdm"} & names:
        flat = gen.cubes.transpose(0, 2, 3, 1).reshape(-1, b)
        per_image = clf.probabilities(flat).reshape(n, h * w, -1)
    if "sd" in names:
        values = np.array([diversity.spectral_diversity(p) for p in per_image])   # eq. 28 per image
        out["sd"] = {"mean": float(values.mean()), "std": float(values.std()), "images": int(n)}
    if "sdm" in names:
        values = []
        for cid in np.unique(gen.condition_ids):
            members = np.flatnonzero(gen.condition_ids == cid)
            if len(members) >= 2:
                values.append(diversity.spectral_diversity_multiple(per_image[members]))  # eq. 29
        out["sdm"] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "conditions": len(values)}
    return out


def _validate(cfg: EvaluateConfig) -> list[str] | None:
    if cfg.metrics is not None:
        unknown = sorted(set(cfg.metrics) - set(ALL_METRICS))
        if unknown:
            raise ConfigError(f"--metrics: unknown {', '.join(unknown)}; choose from {', '.join(ALL_METRICS)}")
    if cfg.max_spectra < 2:
        raise ConfigError("--max-spectra must be at least 2")
    if cfg.k < 1:
        raise ConfigError("--k must be at least 1")
    if cfg.groups is not None and cfg.groups < 1:
        raise ConfigError("--groups must be at least 1")
    if cfg.block < 1:
        raise ConfigError("--block must be at least 1")
    if cfg.rgb_max_images is not None and cfg.rgb_max_images < 2:
        raise ConfigError("--rgb-max-images must be at least 2 (FID needs 2 images per set)")
    if cfg.rgb_batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    return cfg.metrics


def run(real_path: Path, generated: list[Path], out: Path, cfg: EvaluateConfig, overwrite: bool = False):
    """Compute the report; returns (artifact, report dict)."""
    requested = _validate(cfg)
    if not generated:
        raise ConfigError("give at least one --generated artifact (hsi-samples or hsi-dataset)")
    real = load_image_set(real_path, "--real", split=cfg.real_split)
    gens = [load_image_set(p, "--generated") for p in generated]
    for g in gens:
        check_same_grid(real, g)
    reference = None
    if cfg.reference:
        reference = load_image_set(cfg.reference, "--reference")
        check_same_grid(real, reference, "--reference")
    clf = None
    if cfg.classifier:
        from .classifier import load_classifier

        clf = load_classifier(cfg.classifier)
        wl = np.asarray(clf.meta.wavelengths_nm)
        if wl.shape != real.wavelengths_nm.shape or not np.allclose(wl, real.wavelengths_nm, atol=0.01):
            raise SpectralError(f"--classifier {cfg.classifier} was trained on another wavelength grid "
                                f"({len(wl)} bands); train one on this dataset with `hsigen evaluate train-classifier`")
    inception = None
    if cfg.inception_weights:
        from ..common.runtime import resolve_device
        from .inception import load_fid_inception

        device = resolve_device(cfg.device)
        inception = load_fid_inception(cfg.inception_weights, device)
    plans = []
    for g in gens:
        names = {m for m in ALL_METRICS if _available(m, g, real, clf, reference, cfg.block, inception)}
        if requested is not None:
            missing = sorted(set(requested) - names)
            if missing:
                raise ConfigError(f"--metrics {', '.join(missing)} cannot run for {g.path}: "
                                  + "; ".join(f"{m} needs {NEEDS[m]}" for m in missing))
            names = set(requested)
        if reference is not None and "paired" not in names and (requested is None or "paired" in requested):
            raise ConfigError(f"--reference {cfg.reference} has images {reference.cubes.shape} but {g.path} has "
                              f"{g.cubes.shape}; paired metrics need one reference image per generated image")
        plans.append(names)

    inputs = [input_record(real_path)] + [input_record(p) for p in generated]
    inputs += [input_record(p) for p in (cfg.classifier, cfg.reference) if p]
    weights_record = input_record(cfg.inception_weights) if cfg.inception_weights else None
    inputs += [weights_record] if weights_record else []
    writer = ArtifactWriter(out, "evaluation-report", "evaluate", asdict(cfg), inputs, overwrite)
    if writer.up_to_date():
        log.info("evaluate: up to date")
        return writer.artifact, json.loads(writer.artifact.file("report.json").read_text())
    writer.check_destination()

    real_px = pixels(real, cfg.max_spectra, cfg.seed)
    real_feats = clf.features(real_px.values) if clf is not None else None
    rgb_fid = None
    if inception is not None and any("fid_rgb" in names for names in plans):
        from .inception import RgbFid

        rgb_fid = RgbFid(inception, real.cubes, real.wavelengths_nm, cfg.rgb_max_images, cfg.seed,
                         cfg.rgb_batch_size, device)
    results = []
    gen_pixels = []
    for g, names in zip(gens, plans):
        log.info(f"evaluate: {g.path} ({', '.join(m for m in ALL_METRICS if m in names)})")
        gen_px = pixels(g, cfg.max_spectra, cfg.seed + 1)
        gen_pixels.append(gen_px)
        metrics: dict = {}
        if "spr_srec" in names:
            if cfg.groups:
                res = manifold.grouped_precision_recall(real_px.values, gen_px.values, cfg.k, cfg.groups, cfg.seed)
            else:
                res = manifold.precision_recall(real_px.values, gen_px.values, cfg.k)
            metrics["spr"], metrics["srec"] = res.precision, res.recall
        if "fp" in names:
            metrics["fp"] = fidelity.point_fidelity(gen_px.values, real_px.values)
        if "db" in names:
            metrics["db"] = fidelity.block_diversity(g.cubes, real.cubes, cfg.block, cfg.block_stride)
            if "fp" in metrics:
                metrics["db_over_fp"] = metrics["db"] / metrics["fp"]
        if clf is not None:
            metrics.update(_classifier_metrics(names, clf, g, real_feats, gen_px, cfg))
        if "fid_rgb" in names:
            metrics["fid_rgb"], used = rgb_fid(g.cubes)
            metrics["fid_rgb_images"] = {"real": rgb_fid.real_images, "generated": used}
        if "paired" in names:
            metrics["paired"] = paired.all_paired(g.cubes, reference.cubes, cfg.ergas_ratio)
        if "msad" in names:
            metrics["msad"] = msad(real_px, gen_px)
        skipped = {m: NEEDS.get(m, "") for m in ALL_METRICS if m not in names}
        results.append({**g.describe(), "spectra_unique": gen_px.unique_count, "spectra_used": len(gen_px.values),
                        "metrics": metrics, "skipped": skipped})

    settings = asdict(cfg)
    if cfg.inception_weights:
        settings["inception_weights"] = {"path": cfg.inception_weights, "sha256": weights_record["sha256"]}
    report = {
        "kind": "evaluation",
        "settings": plain_json({**settings, "units": "physical (stored * scale + offset)",
                                "spr_srec_method": f"{cfg.groups} groups" if cfg.groups else "exact, whole sets"}),
        "real": {**real.describe(), "spectra_unique": real_px.unique_count, "spectra_used": len(real_px.values)},
        "generated": results,
        "classifier": None if clf is None else {"path": cfg.classifier, "classes": clf.meta.classes},
        "rgb_fid": None if rgb_fid is None else rgb_fid.describe(),
    }
    with writer.building() as tmp:
        report["figures"] = _figures(tmp, real, real_px, gens, gen_pixels, cfg)
        report = plain_json(report)
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (tmp / "report.md").write_text(markdown(report))
        writer.metrics = _headline(results)
    return writer.artifact, report


def _headline(results: list[dict]) -> dict:
    head = {}
    for i, r in enumerate(results):
        for key in ("spr", "srec", "fp", "db", "fid_spectral", "fid_rgb"):
            if key in r["metrics"]:
                head[f"{key}_{i}"] = r["metrics"][key]
    return head


def _figures(tmp: Path, real: ImageSet, real_px, gens, gen_pixels, cfg: EvaluateConfig) -> dict:
    fig_dir = tmp / "figures"
    fig_dir.mkdir()
    wl = real.wavelengths_nm
    names = [f"generated {i + 1}" for i in range(len(gens))]
    labelled = real_px.labels is not None and all(p.labels is not None for p in gen_pixels)
    if labelled:
        groups = sorted(set(int(c) for c in np.unique(real_px.labels) if c > 0)
                        & set(int(c) for p in gen_pixels for c in np.unique(p.labels) if c > 0))
    if labelled and groups:
        real_groups, gen_groups = real_px.labels, [p.labels for p in gen_pixels]
        grouping = "class"
    else:
        centroids = figures.cluster_real(real_px.values, cfg.clusters, cfg.seed)
        real_groups = figures.nearest(real_px.values.astype(np.float64), centroids)
        gen_groups = [figures.nearest(p.values.astype(np.float64), centroids) for p in gen_pixels]
        groups = sorted(int(c) for c in np.unique(real_groups))
        grouping = "k-means cluster of the real spectra (generated spectra assigned to the nearest centre)"
    figures.spectra_figure(fig_dir / "spectra.png", wl, groups, real_groups, real_px.values,
                           [(n, p.values, gg) for n, p, gg in zip(names, gen_pixels, gen_groups)],
                           f"mean ± std spectra per {grouping.split(' (')[0]}",
                           prefix="class " if grouping == "class" else "cluster ")
    pca = figures.embedding_figure(fig_dir / "embedding.png", real_px.values,
                                   [(n, p.values) for n, p in zip(names, gen_pixels)], cfg.seed)
    figures.samples_figure(fig_dir / "samples.png", wl, [("real", real.cubes)] + [(n, g.cubes) for n, g in zip(names, gens)])
    return {"spectra": "figures/spectra.png", "embedding": "figures/embedding.png", "samples": "figures/samples.png",
            "spectra_grouping": grouping, "pca": pca}


def _fmt(value) -> str:
    if isinstance(value, dict) and "mean" in value:
        return f"{value['mean']:.4f} ± {value['std']:.4f}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return "–" if value is None else str(value)


ROWS = [("spr", "sPr ↑", "hsigene eq. 8"), ("srec", "sRec ↑", "hsigene eq. 8"), ("fp", "F_p ↑", "hud eq. 16"),
        ("db", "D_b ↓", "hud eq. 17"), ("db_over_fp", "D_b / F_p ↓", "hud Table I"),
        ("sd", "SD ↑", "hyperldm eq. 28"), ("sdm", "SDM ↑", "hyperldm eq. 29"),
        ("fid_spectral", "FID (spectral) ↓", "classifier features"), ("kid_spectral", "KID (spectral) ↓", "classifier features"),
        ("is_spectral", "IS (spectral) ↑", "classifier softmax"),
        ("fid_rgb", "FID (RGB false colour) ↓", "Inception-v3 pool3")]
PAIRED_ROWS = [("mpsnr", "MPSNR ↑"), ("mssim", "MSSIM ↑"), ("sam", "SAM (rad) ↓"), ("ergas", "ERGAS ↓"),
               ("rmse", "RMSE ↓"), ("mrae", "MRAE ↓")]


def markdown(report: dict) -> str:
    s, real, gens = report["settings"], report["real"], report["generated"]
    lines = ["# hsigen evaluation report", "",
             f"Real: `{real['path']}` ({real['kind']}, {real['images']} images {real['height']}×{real['width']}, "
             f"{real['bands']} bands; {real['spectra_unique']} unique spectra, {real['spectra_used']} used)", ""]
    for i, g in enumerate(gens):
        lines.append(f"Generated {i + 1}: `{g['path']}` ({g['kind']}, {g['images']} images {g['height']}×{g['width']}; "
                     f"{g['spectra_unique']} unique spectra, {g['spectra_used']} used)")
    lines += ["", f"Settings: sPr/sRec {s['spr_srec_method']}, k = {s['k']}; D_b block {s['block']}; "
              f"at most {s['max_spectra']} spectra per set (seed {s['seed']}); units: {s['units']}.", "",
              "## Results", "", "| metric | source | " + " | ".join(f"generated {i + 1}" for i in range(len(gens))) + " |",
              "| --- | --- | " + " | ".join("---" for _ in gens) + " |"]
    for key, label, source in ROWS:
        if any(key in g["metrics"] for g in gens):
            lines.append(f"| {label} | {source} | " + " | ".join(_fmt(g["metrics"].get(key)) for g in gens) + " |")
    if any("msad" in g["metrics"] for g in gens):
        lines.append("| mSAD (rad) ↓ | specdm §4.2 | " + " | ".join(
            _fmt(g["metrics"]["msad"]["msad"]) if "msad" in g["metrics"] else "–" for g in gens) + " |")
    if any("paired" in g["metrics"] for g in gens):
        for key, label in PAIRED_ROWS:
            lines.append(f"| {label} | paired with --reference | " + " | ".join(
                _fmt(g["metrics"]["paired"][key]) if "paired" in g["metrics"] else "–" for g in gens) + " |")
    rgb = report.get("rgb_fid")
    if rgb and any("fid_rgb" in g["metrics"] for g in gens):
        w = s["inception_weights"]
        used = ", ".join(f"{g['metrics']['fid_rgb_images']['generated']} (generated {i + 1})"
                         for i, g in enumerate(gens) if "fid_rgb" in g["metrics"])
        lines += ["", f"RGB FID: weights `{w['path']}` (sha256 {w['sha256'][:12]}…); {rgb['composite']} "
                  f"(bands {', '.join(f'{b:.1f}' for b in rgb['rgb_bands_nm'])} nm); "
                  f"{rgb['real_images']} real images vs {used}."]
    skipped = sorted({(m, why) for g in gens for m, why in g["skipped"].items()})
    if skipped:
        lines += ["", "Not computed: " + "; ".join(f"{m} (needs {why})" for m, why in skipped) + "."]
    f = report["figures"]
    lines += ["", "## Figures", "", f"Mean ± std spectra per {f['spectra_grouping']}:", "",
              f"![spectra]({f['spectra']})", "", "PCA of the spectra (axes fitted on the real set):", "",
              f"![embedding]({f['embedding']})", "", "False-colour images (640/550/470 nm, one stretch for all rows):", "",
              f"![samples]({f['samples']})", ""]
    return "\n".join(lines)
