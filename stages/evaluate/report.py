"""``hsigen evaluate``: every seed paper's metric for real vs generated data, spatial and
patch-level metrics, reference rows built from the real data in the same run, and a verdict per
set, in one ``evaluation-report`` artifact (report.json, report.md, figures)."""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..artifacts.store import ArtifactWriter, input_record, plain_json
from ..common import log
from ..common.errors import ConfigError, SpectralError
from ..spectral.quality import spectral_angles
from . import distribution, diversity, fidelity, figures, manifold, paired, references, spatial
from .patch_fid import DESCRIPTION as PATCH_FD_FEATURES
from .patch_fid import RECEPTIVE_FIELD, RandomPatchFeatures, patch_frechet_distance
from .references import References
from .spectra import ImageSet, check_same_grid, load_image_set, pixels
from .verdict import INFO, RULES, autoencoder_limits, verdict

ALL_METRICS = (
    "spr_srec",
    "prdc",
    "fp",
    "db",
    "sd",
    "sdm",
    "fid",
    "kid",
    "is",
    "fid_rgb",
    "paired",
    "msad",
    "spatial",
    "conditions",
    "patch_fd",
    "c2st",
)
OPTIONAL = ("c2st",)  # trains networks: only when asked for with --metrics
NEEDS = {
    "spatial": "images of the real patches' size (at least 4×4 pixels)",
    "patch_fd": f"images of the real patches' size, at least {RECEPTIVE_FIELD}×{RECEPTIVE_FIELD} pixels",
    "c2st": "--metrics c2st (optional), references (its real-heldout row) and enough images in both sets",
    "sd": "--classifier DIR (train one with `hsigen evaluate train-classifier`)",
    "sdm": "--classifier DIR and samples that share a condition (condition_index or conditions in samples.h5)",
    "fid": "--classifier DIR",
    "kid": "--classifier DIR",
    "is": "--classifier DIR",
    "fid_rgb": "--inception-weights FILE (the pt_inception-2015-12-05 FID weights) and at least 2 images per set",
    "paired": "--reference DIR whose images pair one-to-one with the generated ones",
    "msad": "labels in both the real dataset and the generated samples",
    "db": "images at least --block pixels wide",
    "conditions": "samples of a latent model made under hed or seg maps (conditions in samples.h5) and one real "
    "hsi-dataset (its RGB stretch renders them)",
}


@dataclass
class EvaluateConfig:
    metrics: list[str] | None = None  # None: all that the inputs allow
    k: int = 10
    groups: int | None = None  # sPr/sRec: the paper's grouped variant when set
    block: int = 8
    block_stride: int | None = None
    db_max_blocks: int | None = 2000  # D_b: seeded subset of generated blocks (unbiased mean)
    db_max_real_blocks: int | None = 20_000  # D_b: seeded subset of real blocks searched
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
    rgb_max_images: int | None = None  # RGB FID: seeded subset of at most this many images per set
    rgb_batch_size: int = 16
    device: str = "auto"  # for the Inception network
    references: str = "auto"  # none | auto | all (references.References)
    c2st_folds: int = 3
    c2st_steps: int = 300


def _available(
    name: str,
    gen: ImageSet,
    real: ImageSet,
    clf,
    reference: ImageSet | None,
    block: int,
    inception=None,
    heldout: ImageSet | None = None,
) -> bool:
    from .c2st import enough_images

    if name in ("spr_srec", "prdc", "fp"):
        return True
    same_size = gen.cubes.shape[2:] == real.cubes.shape[2:]
    if name == "spatial":
        return same_size and min(real.cubes.shape[2:]) >= 4
    if name == "patch_fd":
        return same_size and min(real.cubes.shape[2:]) >= RECEPTIVE_FIELD
    if name == "c2st":
        return same_size and heldout is not None and enough_images(gen, real) and enough_images(heldout, real)
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
    if name == "conditions":
        from .condition_agreement import local_conditions_of
        from .streamed import StoredUnion

        if real.kind != "hsi-dataset" or isinstance(real.cubes, StoredUnion):  # several real scenes: a stretch each
            return False
        if gen.kind == "reference":  # rows made image by image from real images: the maps of those
            return gen.derived_from is not None
        return (
            gen.kind == "hsi-samples"
            and gen.artifact is not None
            and local_conditions_of(gen.artifact.file("samples.h5"))
        )
    return False


def msad(real_px, gen_px) -> dict:
    """Per-class mean spectra of real and generated pixels and their spectral angle
    distance, averaged over classes present in both (Liu et al., SpecDM, arXiv:2502.17056 §4.2 "mSAD", radians)."""
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
            mean, std = distribution.kernel_inception_distance(
                real_feats, gen_feats, cfg.kid_subsets, cfg.kid_subset_size, cfg.seed
            )
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
        values = np.array([diversity.spectral_diversity(p) for p in per_image])  # eq. 28 per image
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
    for name, value in (("--db-max-blocks", cfg.db_max_blocks), ("--db-max-real-blocks", cfg.db_max_real_blocks)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1")
    if cfg.rgb_max_images is not None and cfg.rgb_max_images < 2:
        raise ConfigError("--rgb-max-images must be at least 2 (FID needs 2 images per set)")
    if cfg.rgb_batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    if cfg.references not in {r.value for r in References}:
        raise ConfigError(f"--references {cfg.references!r}: choose none, auto or all")
    if cfg.metrics is not None and "c2st" in cfg.metrics and cfg.references == References.none.value:
        raise ConfigError("--metrics c2st is only readable against its real-heldout row; drop --references none")
    if cfg.c2st_folds < 2:
        raise ConfigError("--c2st-folds must be at least 2")
    return cfg.metrics


@dataclass
class _Context:
    """What every set is scored against: the real set and everything derived from it once."""

    cfg: EvaluateConfig
    real: ImageSet
    real_px: object
    clf: object = None
    real_feats: np.ndarray | None = None
    reference: ImageSet | None = None
    rgb_fid: object = None
    real_spatial: spatial.SpatialStats | None = None
    patch_net: RandomPatchFeatures | None = None
    real_patch_feats: np.ndarray | None = None
    # id(real image set) → the extractors' maps of its images: the reference rows derived from the same
    # held-out images share them (computed once, not once per row)
    condition_maps: dict = field(default_factory=dict)

    @functools.cached_property
    def real_band_means(self) -> np.ndarray:
        return self.real_px.values.mean(0, dtype=np.float64)

    @functools.cached_property
    def real_rgb_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """The real dataset's RGB stretch in physical units: the one the conditions stage renders it
        with (the whole dataset, 2 % tails), so samples are seen as its condition maps were made."""
        from ..conditions.sources import list_sources

        rgb = list_sources([self.real.artifact.path]).sources[0]["rgb"]
        sp = self.real.artifact.spectral
        physical = lambda v: np.asarray(v, np.float64) * float(sp["scale"]) + float(sp["offset"])  # noqa: E731
        return physical(rgb["low"]), physical(rgb["high"])

    def maps_of_source(self, source: ImageSet) -> dict:
        from .condition_agreement import maps_of, render

        if id(source) not in self.condition_maps:
            self.condition_maps[id(source)] = maps_of(render(source.cubes, source.wavelengths_nm, self.real_rgb_limits))
        return self.condition_maps[id(source)]


def _plan(
    g: ImageSet,
    real: ImageSet,
    clf,
    reference,
    cfg: EvaluateConfig,
    inception,
    heldout,
    requested,
    is_reference: bool = False,
) -> set:
    names = {
        m
        for m in ALL_METRICS
        if _available(m, g, real, clf, None if is_reference else reference, cfg.block, inception, heldout)
    }
    if requested is None:
        return names - set(OPTIONAL)
    if is_reference:  # reference rows get what the generated sets get, where it applies to them
        return names & set(requested)
    missing = sorted(set(requested) - names)
    if missing:
        raise ConfigError(
            f"--metrics {', '.join(missing)} cannot run for {g.path}: "
            + "; ".join(f"{m} needs {NEEDS[m]}" for m in missing)
        )
    return set(requested)


def run(real_path, generated: list[Path], out: Path, cfg: EvaluateConfig, overwrite: bool = False):
    """Compute the report; returns (artifact, report dict). ``real_path``: one real dataset, or a
    list of several (their union is the real set: ``references.split_real_sources``)."""
    requested = _validate(cfg)
    mode = References(cfg.references)
    if not generated:
        raise ConfigError("give at least one --generated artifact (hsi-samples or hsi-dataset)")
    real_paths = list(real_path) if isinstance(real_path, (list, tuple)) else [real_path]
    if not real_paths:
        raise ConfigError("give at least one --real hsi-dataset")
    real_sources = None
    if len(real_paths) == 1:
        real_all = load_image_set(real_paths[0], "--real")
        real, heldout, split_note = references.split_real(real_all, cfg.real_split, mode != References.none, cfg.seed)
    else:
        if requested is not None and "msad" in requested:
            raise ConfigError(
                "--metrics msad compares per-class spectra and needs one --real: label values of "
                "different real datasets are different classes"
            )
        real, heldout, split_note, real_sources = references.split_real_sources(
            real_paths, cfg.real_split, mode != References.none, cfg.seed
        )
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
            raise SpectralError(
                f"--classifier {cfg.classifier} was trained on another wavelength grid "
                f"({len(wl)} bands); train one on this dataset with `hsigen evaluate train-classifier`"
            )
    inception = device = None
    if cfg.inception_weights:
        from ..common.runtime import resolve_device
        from .inception import load_fid_inception

        device = resolve_device(cfg.device)
        inception = load_fid_inception(cfg.inception_weights, device)
    plans = []
    for g in gens:
        names = _plan(g, real, clf, reference, cfg, inception, heldout, requested)
        if reference is not None and "paired" not in names and (requested is None or "paired" in requested):
            raise ConfigError(
                f"--reference {cfg.reference} has images {reference.cubes.shape} but {g.path} has "
                f"{g.cubes.shape}; paired metrics need one reference image per generated image"
            )
        plans.append(names)

    inputs = [input_record(p) for p in real_paths] + [input_record(p) for p in generated]
    inputs += [input_record(p) for p in (cfg.classifier, cfg.reference) if p]
    weights_record = input_record(cfg.inception_weights) if cfg.inception_weights else None
    inputs += [weights_record] if weights_record else []
    writer = ArtifactWriter(out, "evaluation-report", "evaluate", asdict(cfg), inputs, overwrite)
    if writer.up_to_date():
        log.info("evaluate: up to date")
        return writer.artifact, json.loads(writer.artifact.file("report.json").read_text())
    writer.check_destination()

    real_px = pixels(real, cfg.max_spectra, cfg.seed)
    refs, ref_notes = references.build(mode, real, real_px.values, heldout, gens, cfg.seed, cfg.max_spectra)
    ref_plans = [
        _plan(
            r.images,
            real,
            clf,
            reference,
            cfg,
            inception,
            heldout,
            requested or sorted(set().union(*plans)),
            is_reference=True,
        )
        for r in refs
    ]
    ctx = _Context(cfg, real, real_px, clf, clf.features(real_px.values) if clf is not None else None, reference)
    every_plan = plans + ref_plans
    if any("spatial" in names for names in every_plan):
        ctx.real_spatial = spatial.spatial_stats(real.cubes)
    if any("patch_fd" in names for names in every_plan):
        ctx.patch_net = RandomPatchFeatures(real.cubes)
        ctx.real_patch_feats = ctx.patch_net(real.cubes, cfg.seed)
    if inception is not None and any("fid_rgb" in names for names in every_plan):
        from .inception import RgbFid

        ctx.rgb_fid = RgbFid(
            inception, real.cubes, real.wavelengths_nm, cfg.rgb_max_images, cfg.seed, cfg.rgb_batch_size, device
        )

    ref_rows, ref_stats = [], []
    for r, names in zip(refs, ref_plans):
        log.info(f"evaluate: reference {r.name} ({', '.join(m for m in ALL_METRICS if m in names)})")
        row, px, stats = _score(ctx, r.images, names, cfg.seed + 2)
        ref_rows.append(
            {
                "name": r.name,
                "reference": True,
                "description": r.description,
                **r.extra,
                "images": int(len(r.images.cubes)),
                "spectra_used": len(px.values),
                "metrics": row,
            }
        )
        ref_stats.append((r.name, stats))
    heldout_metrics = ref_rows[0]["metrics"] if ref_rows else None
    for row in ref_rows[1:]:
        row["verdict"] = verdict(row["metrics"], heldout_metrics)

    results, gen_pixels, gen_stats = [], [], []
    for i, (g, names) in enumerate(zip(gens, plans)):
        log.info(f"evaluate: {g.path} ({', '.join(m for m in ALL_METRICS if m in names)})")
        metrics, gen_px, stats = _score(ctx, g, names, cfg.seed + 1)
        gen_pixels.append(gen_px)
        gen_stats.append((f"generated {i + 1}", stats))
        skipped = {m: NEEDS.get(m, "") for m in ALL_METRICS if m not in names}
        judged = verdict(metrics, heldout_metrics)
        for row in ref_rows:
            if i + 1 in row.get("for_generated", []):
                judged = autoencoder_limits(judged, row["verdict"])
        results.append(
            {
                **g.describe(),
                "spectra_unique": gen_px.unique_count,
                "spectra_used": len(gen_px.values),
                "metrics": metrics,
                "skipped": skipped,
                "verdict": judged,
            }
        )

    settings = asdict(cfg)
    if cfg.inception_weights:
        settings["inception_weights"] = {"path": cfg.inception_weights, "sha256": weights_record["sha256"]}
    used = {k for r in results + ref_rows for k in r["metrics"]}
    report = {
        "kind": "evaluation",
        "settings": plain_json(
            {
                **settings,
                "units": "physical (stored * scale + offset)",
                "spr_srec_method": f"{cfg.groups} groups" if cfg.groups else "exact, whole sets",
                "patch_fd_features": PATCH_FD_FEATURES,
                "verdict_rules": RULES,
            }
        ),
        "real": {
            **real.describe(),
            "split": split_note,
            "spectra_unique": real_px.unique_count,
            "spectra_used": len(real_px.values),
            **({"sources": real_sources} if real_sources else {}),
        },
        "references": ref_rows,
        "reference_notes": ref_notes,
        "notes": _c2st_notes(heldout_metrics) + ([references.MULTI_REAL_LABELS_NOTE] if real_sources else []),
        "generated": results,
        "metric_info": {
            m.key: {"label": m.label, "source": m.source, "measures": m.measures, "better": m.better}
            for m in INFO.values()
            if m.key in used
        },
        "classifier": None if clf is None else _classifier_record(cfg.classifier, clf),
        "rgb_fid": None if ctx.rgb_fid is None else ctx.rgb_fid.describe(),
    }
    with writer.building() as tmp:
        report["figures"] = _figures(
            tmp,
            real,
            real_px,
            gens,
            gen_pixels,
            cfg,
            ctx.real_spatial,
            [x for x in ref_stats + gen_stats if x[1] is not None],
        )
        report = plain_json(report)
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (tmp / "report.md").write_text(markdown(report))
        writer.metrics = _headline(results)
    return writer.artifact, report


def _classifier_record(path: str, clf) -> dict:
    """The report's classifier block; a classifier trained on a corpus adds its class names and
    the sources it was trained on (every metric it serves reads only its softmax and features)."""
    record = {"path": path, "classes": clf.meta.classes}
    if clf.class_names is not None:
        record["class_names"] = clf.class_names
        record["trained_on"] = [s["path"] for s in clf.meta.extra.get("sources", [])]
    return record


def _score(ctx: _Context, g: ImageSet, names: set, seed: int):
    """(metrics, pixels, spatial stats or None) of one image set against the real set."""
    cfg, real_px = ctx.cfg, ctx.real_px
    gen_px = pixels(g, cfg.max_spectra, seed)
    metrics: dict = {}
    if {"spr_srec", "prdc"} & names:
        if cfg.groups:
            res = manifold.grouped_precision_recall(real_px.values, gen_px.values, cfg.k, cfg.groups, cfg.seed)
        else:
            res = manifold.precision_recall(real_px.values, gen_px.values, cfg.k)
        if "spr_srec" in names:
            metrics["spr"], metrics["srec"] = res.precision, res.recall
            # A colour cast: the largest relative error of a band's mean level (0 = the real set's mean spectrum).
            band_means = gen_px.values.mean(0, dtype=np.float64) / np.maximum(ctx.real_band_means, 1e-12)
            metrics["max_band_mean_error"] = float(np.max(np.abs(band_means - 1.0)))
        if "prdc" in names:
            metrics["density"], metrics["coverage"] = res.density, res.coverage
    if "fp" in names:
        metrics["fp"] = fidelity.point_fidelity(
            gen_px.values, real_px.values, _dtype(len(gen_px.values) * len(real_px.values) * g.bands)
        )
    if "db" in names:
        metrics["db"] = fidelity.block_diversity(
            g.cubes,
            ctx.real.cubes,
            cfg.block,
            cfg.block_stride,
            _dtype((cfg.db_max_blocks or 0) * (cfg.db_max_real_blocks or 0) * g.bands * cfg.block**2),
            cfg.db_max_blocks,
            cfg.db_max_real_blocks,
            seed,
        )
        if "fp" in metrics:
            metrics["db_over_fp"] = metrics["db"] / metrics["fp"]
    if ctx.clf is not None:
        metrics.update(_classifier_metrics(names, ctx.clf, g, ctx.real_feats, gen_px, cfg))
    if "fid_rgb" in names:
        metrics["fid_rgb"], used = ctx.rgb_fid(g.cubes)
        metrics["fid_rgb_images"] = {"real": ctx.rgb_fid.real_images, "generated": used}
    if "paired" in names:
        metrics["paired"] = paired.all_paired(g.cubes, ctx.reference.cubes, cfg.ergas_ratio)
    if "msad" in names:
        metrics["msad"] = msad(real_px, gen_px)
    stats = None
    if "spatial" in names:
        stats = spatial.spatial_stats(g.cubes)
        metrics.update(spatial.compare(stats, ctx.real_spatial))
    if "conditions" in names and g.kind == "reference":
        from .condition_agreement import derived_agreement, render

        rgbs = render(g.cubes, g.wavelengths_nm, ctx.real_rgb_limits)
        metrics.update(derived_agreement(rgbs, ctx.maps_of_source(g.derived_from)))
    elif "conditions" in names:
        from .condition_agreement import samples_agreement

        sp = g.artifact.spectral
        metrics.update(
            samples_agreement(
                g.artifact.file("samples.h5"),
                g.wavelengths_nm,
                float(sp["scale"]),
                float(sp["offset"]),
                ctx.real_rgb_limits,
                seed,
            )
        )
    if "patch_fd" in names:
        metrics["patch_fd"] = patch_frechet_distance(ctx.real_patch_feats, ctx.patch_net(g.cubes, seed))
    if "c2st" in names:
        from .c2st import two_sample_test

        metrics["c2st"] = two_sample_test(ctx.real.cubes, g.cubes, cfg.c2st_folds, cfg.c2st_steps, cfg.seed)
    return metrics, gen_px, stats


def _c2st_notes(heldout_metrics: dict | None) -> list[str]:
    floor = (heldout_metrics or {}).get("c2st")
    if not floor or floor["mean"] < C2ST_UNREADABLE:
        return []
    return [
        f"C2ST tells real-heldout from the real set at {floor['mean']:.2f}: the held-out images already differ "
        "from the real set (e.g. another land-cover mix), so C2ST cannot judge a generator on this data; read "
        "the other metrics."
    ]


def _dtype(multiply_adds: int) -> str:
    """float64 up to 2·10¹⁰ multiply-adds (exact, a copy scores 1 to 1e-9), float32 beyond (twice
    as fast): the cosine similarities are near 1 and float32 keeps about 7 digits of them."""
    return "float64" if multiply_adds <= 2e10 else "float32"


def _headline(results: list[dict]) -> dict:
    head = {}
    for i, r in enumerate(results):
        for key in (
            "spr",
            "srec",
            "max_band_mean_error",
            "density",
            "coverage",
            "fp",
            "db",
            "fid_spectral",
            "fid_rgb",
            "gradient_ratio",
            "hf_energy_ratio",
            "patch_fd",
        ):
            if key in r["metrics"]:
                head[f"{key}_{i}"] = r["metrics"][key]
    return head


def _figures(
    tmp: Path, real: ImageSet, real_px, gens, gen_pixels, cfg: EvaluateConfig, real_spatial, spatial_sets: list
) -> dict:
    fig_dir = tmp / "figures"
    fig_dir.mkdir()
    wl = real.wavelengths_nm
    names = [f"generated {i + 1}" for i in range(len(gens))]
    labelled = real_px.labels is not None and all(p.labels is not None for p in gen_pixels)
    if labelled:
        groups = sorted(
            set(int(c) for c in np.unique(real_px.labels) if c > 0)
            & set(int(c) for p in gen_pixels for c in np.unique(p.labels) if c > 0)
        )
    if labelled and groups:
        real_groups, gen_groups = real_px.labels, [p.labels for p in gen_pixels]
        grouping = "class"
    else:
        centroids = figures.cluster_real(real_px.values, cfg.clusters, cfg.seed)
        real_groups = figures.nearest(real_px.values.astype(np.float64), centroids)
        gen_groups = [figures.nearest(p.values.astype(np.float64), centroids) for p in gen_pixels]
        groups = sorted(int(c) for c in np.unique(real_groups))
        grouping = "k-means cluster of the real spectra (generated spectra assigned to the nearest centre)"
    figures.spectra_figure(
        fig_dir / "spectra.png",
        wl,
        groups,
        real_groups,
        real_px.values,
        [(n, p.values, gg) for n, p, gg in zip(names, gen_pixels, gen_groups)],
        f"mean ± std spectra per {grouping.split(' (')[0]}",
        prefix="class " if grouping == "class" else "cluster ",
    )
    pca = figures.embedding_figure(
        fig_dir / "embedding.png", real_px.values, [(n, p.values) for n, p in zip(names, gen_pixels)], cfg.seed
    )
    figures.samples_figure(
        fig_dir / "samples.png", wl, [("real", real.cubes)] + [(n, g.cubes) for n, g in zip(names, gens)]
    )
    out = {
        "spectra": "figures/spectra.png",
        "embedding": "figures/embedding.png",
        "samples": "figures/samples.png",
        "spectra_grouping": grouping,
        "pca": pca,
    }
    if real_spatial is not None:
        figures.psd_figure(fig_dir / "psd.png", real_spatial, spatial_sets)
        out["psd"] = "figures/psd.png"
    return out


def _fmt(value) -> str:
    if isinstance(value, dict) and "mean" in value:
        return f"{value['mean']:.4f} ± {value['std']:.4f}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    return "–" if value is None else str(value)


C2ST_UNREADABLE = 0.9  # real-heldout's own C2ST accuracy from which the test says nothing
ARROW = {"higher": "↑", "lower": "↓", "closer to 1": "→1"}
PAIRED_ROWS = [
    ("mpsnr", "MPSNR ↑"),
    ("mssim", "MSSIM ↑"),
    ("sam", "SAM (rad) ↓"),
    ("ergas", "ERGAS ↓"),
    ("rmse", "RMSE ↓"),
    ("mrae", "MRAE ↓"),
]


def _ref_name(row: dict) -> str:
    """A reference row's name; autoencoder rows also name the generated sets they serve."""
    if "for_generated" in row:
        return f"{row['name']} (of generated {', '.join(map(str, row['for_generated']))})"
    return row["name"]


def _column_name(row: dict, i: int) -> str:
    return f"*ref:* {_ref_name(row)}" if row.get("reference") else f"generated {i + 1}"


def markdown(report: dict) -> str:
    s, real, gens = report["settings"], report["real"], report["generated"]
    refs = report.get("references", [])
    cols = refs + gens
    lines = [
        "# hsigen evaluation report",
        "",
        f"Real (scored against): `{real['path']}` — {real['split']} ({real['kind']}, {real['images']} images "
        f"{real['height']}×{real['width']}, {real['bands']} bands; {real['spectra_unique']} unique spectra, "
        f"{real['spectra_used']} used)",
        "",
    ]
    if real.get("sources"):
        lines += [f"Real sources ({len(real['sources'])}, each in physical units by its own scale/offset):", ""]
        lines += [
            f"- `{r['path']}` — {r['images']} images scored against, {r['heldout_images']} held out; "
            f"units {r['units'] or 'unknown'}, scale {r['scale']:.6g}, offset {r['offset']:.6g}"
            for r in real["sources"]
        ]
        lines.append("")
    for i, g in enumerate(gens):
        lines.append(
            f"Generated {i + 1}: `{g['path']}` ({g['kind']}, {g['images']} images {g['height']}×{g['width']}; "
            f"{g['spectra_unique']} unique spectra, {g['spectra_used']} used)"
        )
    if refs:
        lines += ["", "Reference rows (*ref:*, built from the real data in this run, scored like the generated sets):"]
        for r in refs:
            extra = (
                f"; autoencoder `{r['autoencoder']}` ({r['kind']}) of generated {', '.join(map(str, r['for_generated']))}"
                if "autoencoder" in r
                else ""
            )
            lines.append(f"- **{r['name']}** — {r['description']} ({r['images']} images{extra})")
    for note in report.get("reference_notes", []):
        lines.append(f"- not made: {note}")
    lines += [
        "",
        f"Settings: sPr/sRec {s['spr_srec_method']}, k = {s['k']}; D_b block {s['block']} (seeded subsets of at most "
        f"{s['db_max_blocks']} generated and {s['db_max_real_blocks']} real blocks); "
        f"at most {s['max_spectra']} spectra per set (seed {s['seed']}); units: {s['units']}; "
        f"references: {s['references']}.",
        "",
        "## Results",
        "",
        "| metric | source | " + " | ".join(_column_name(c, i - len(refs)) for i, c in enumerate(cols)) + " |",
        "| --- | --- | " + " | ".join("---" for _ in cols) + " |",
    ]
    info = report.get("metric_info", {})
    for key, m in info.items():
        if any(key in c["metrics"] for c in cols):
            lines.append(
                f"| {m['label']} {ARROW[m['better']]} | {m['source']} | "
                + " | ".join(_fmt(c["metrics"].get(key)) for c in cols)
                + " |"
            )
    if any("msad" in c["metrics"] for c in cols):
        lines.append(
            "| mSAD (rad) ↓ | specdm §4.2 | "
            + " | ".join(_fmt(c["metrics"]["msad"]["msad"]) if "msad" in c["metrics"] else "–" for c in cols)
            + " |"
        )
    if any("paired" in c["metrics"] for c in cols):
        for key, label in PAIRED_ROWS:
            lines.append(
                f"| {label} | paired with --reference | "
                + " | ".join(_fmt(c["metrics"]["paired"][key]) if "paired" in c["metrics"] else "–" for c in cols)
                + " |"
            )
    lines += ["", "## Verdicts", ""]
    if refs:
        lines.append(f"Against *ref:* real-heldout ({s['verdict_rules']}).")
        lines.append("")
    for i, g in enumerate(gens):
        lines.append(f"- **generated {i + 1}**: {g['verdict']['text']}")
    for r in refs[1:]:
        lines.append(f"- *ref:* {_ref_name(r)}: {r['verdict']['text']}")
    lines += ["", "## How to read the metrics", ""]
    for m in info.values():
        lines.append(f"- **{m['label']}** ({m['source']}): {m['measures']}; {m['better']} is better.")
    if "patch_fd" in info:
        lines.append(f"- patch FD features: {s['patch_fd_features']}.")
    lines += [f"- {note}" for note in report.get("notes", [])]
    rgb = report.get("rgb_fid")
    if rgb and any("fid_rgb" in g["metrics"] for g in gens):
        w = s["inception_weights"]
        used = ", ".join(
            f"{g['metrics']['fid_rgb_images']['generated']} (generated {i + 1})"
            for i, g in enumerate(gens)
            if "fid_rgb" in g["metrics"]
        )
        lines += [
            "",
            f"RGB FID: weights `{w['path']}` (sha256 {w['sha256'][:12]}…); {rgb['composite']} "
            f"(bands {', '.join(f'{b:.1f}' for b in rgb['rgb_bands_nm'])} nm); "
            f"{rgb['real_images']} real images vs {used}.",
        ]
    skipped = sorted({(m, why) for g in gens for m, why in g["skipped"].items()})
    if skipped:
        lines += ["", "Not computed: " + "; ".join(f"{m} (needs {why})" for m, why in skipped) + "."]
    f = report["figures"]
    lines += [
        "",
        "## Figures",
        "",
        f"Mean ± std spectra per {f['spectra_grouping']}:",
        "",
        f"![spectra]({f['spectra']})",
        "",
        "PCA of the spectra (axes fitted on the real set):",
        "",
        f"![embedding]({f['embedding']})",
        "",
        "False-colour images (640/550/470 nm, one stretch for all rows):",
        "",
        f"![samples]({f['samples']})",
        "",
    ]
    if "psd" in f:
        lines += [
            "Radially averaged power spectra (mean over bands, each band ÷ its real total), real vs each set:",
            "",
            f"![psd]({f['psd']})",
            "",
        ]
    return "\n".join(lines)
