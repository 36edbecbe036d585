"""Reading the report: what each metric measures and which direction is better, and a short
verdict per image set against the ``real-heldout`` reference row.

A set is flagged on a metric when it is worse than real-heldout by more than that metric's
margin (the ``FLAGS`` table). The margins were set on the embedded Indian Pines scene (32×32
patches, stride 8, bottom 30 % of rows held out), where they separate the held-out rows from a
2-px box blur, a σ 0.7 Gaussian blur, 2 % multiplicative noise, shuffled and Gaussian pixels;
tests/evaluate/test_references.py checks that. They are heuristics, stated in the report.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    key: str
    label: str
    source: str
    measures: str
    better: str  # "higher", "lower" or "closer to 1"


METRICS = [
    MetricInfo(
        "spr", "sPr", "hsigene eq. 8", "share of generated spectra inside the real spectra's k-NN manifold", "higher"
    ),
    MetricInfo(
        "srec", "sRec", "hsigene eq. 8", "share of real spectra inside the generated spectra's k-NN manifold", "higher"
    ),
    MetricInfo(
        "density",
        "density",
        "Naeem et al. 2020 eq. 3",
        "mean number of real k-NN balls holding a generated spectrum, ÷ k (robust to real outliers)",
        "higher",
    ),
    MetricInfo(
        "coverage",
        "coverage",
        "Naeem et al. 2020 eq. 4",
        "share of real k-NN balls holding at least one generated spectrum (falls with fewer samples)",
        "higher",
    ),
    MetricInfo(
        "fp", "F_p", "hud eq. 16", "mean best cosine similarity of a generated spectrum to a real one", "higher"
    ),
    MetricInfo(
        "db", "D_b", "hud eq. 17", "mean best similarity of a generated block to a real block (copying)", "lower"
    ),
    MetricInfo("db_over_fp", "D_b / F_p", "hud Table I", "block similarity relative to pixel fidelity", "lower"),
    MetricInfo("sd", "SD", "hyperldm eq. 28", "classifier-softmax diversity within each image", "higher"),
    MetricInfo("sdm", "SDM", "hyperldm eq. 29", "diversity of images generated from one condition", "higher"),
    MetricInfo(
        "fid_spectral",
        "FID (spectral)",
        "classifier features",
        "Fréchet distance of pixel-classifier features, real vs set",
        "lower",
    ),
    MetricInfo(
        "kid_spectral", "KID (spectral)", "classifier features", "kernel distance of the same features", "lower"
    ),
    MetricInfo(
        "is_spectral", "IS (spectral)", "classifier softmax", "confidence and variety of predicted classes", "higher"
    ),
    MetricInfo(
        "fid_rgb",
        "FID (RGB false colour)",
        "Inception-v3 pool3",
        "Fréchet distance of Inception features of false-colour composites",
        "lower",
    ),
    MetricInfo(
        "gradient_ratio",
        "gradient ÷ real",
        "spatial",
        "mean |spatial gradient| ÷ mean level, as a ratio to real (< 1 smoother, > 1 rougher)",
        "closer to 1",
    ),
    MetricInfo(
        "hf_energy_ratio",
        "high-freq. energy ÷ real",
        "spatial",
        "power above 0.25 cycles/px over power below it, as a ratio to real (< 1 smoother)",
        "closer to 1",
    ),
    MetricInfo(
        "log_psd_distance",
        "log-PSD distance",
        "spatial",
        "RMS over bands and frequencies of log10(power spectrum ÷ real's), decades",
        "lower",
    ),
    MetricInfo(
        "cond_seg_ari",
        "seg map followed (ARI)",
        "condition agreement",
        "adjusted Rand index of each sample's seg map regions and the seg extractor's regions of the sample",
        "higher",
    ),
    MetricInfo(
        "cond_seg_ari_other",
        "… against another image's seg map",
        "condition agreement",
        "the same ARI against another sample's map: the chance level of the pairing",
        "lower",
    ),
    MetricInfo(
        "cond_hed_corr",
        "hed map followed (corr.)",
        "condition agreement",
        "correlation of the hed extractor's edges of each sample with its hed map",
        "higher",
    ),
    MetricInfo(
        "cond_hed_corr_other",
        "… against another image's hed map",
        "condition agreement",
        "the same correlation against another sample's map: the chance level of the pairing",
        "lower",
    ),
    MetricInfo(
        "patch_fd",
        "patch FD",
        "random conv features",
        "Fréchet distance of 15×15-px patch features of a fixed random conv net",
        "lower",
    ),
    MetricInfo(
        "c2st",
        "C2ST accuracy",
        "Lopez-Paz & Oquab 2017",
        "held-out accuracy of a small conv net telling real from the set (0.5 = indistinguishable)",
        "lower",
    ),
]
INFO = {m.key: m for m in METRICS}


@dataclass(frozen=True)
class Flag:
    """How a value ``v`` is worse than real-heldout's ``h``, and the words for it."""

    key: str
    test: str  # "below" (v < h - margin), "above_ratio" (v > h × margin), "below_ratio", ...
    margin: float
    words: str


FLAGS = [
    Flag("spr", "below", 0.15, "spectra off the real manifold"),
    Flag("density", "below_ratio", 0.5, "spectra in sparse regions of the real set"),
    Flag("coverage", "below_ratio", 0.5, "spectra cover little of the real set"),
    Flag("fid_spectral", "above_ratio", 2.0, "spectral features unlike real"),
    Flag("gradient_ratio", "below_ratio", 0.8, "spatially too smooth"),
    Flag("gradient_ratio", "above_ratio", 1.3, "spatially too rough"),
    Flag("hf_energy_ratio", "below_ratio", 0.6, "spatially too smooth"),
    Flag("hf_energy_ratio", "above_ratio", 1.8, "spatially too speckled"),
    Flag("log_psd_distance", "above_diff", 0.3, "power spectra unlike real"),
    Flag("patch_fd", "above_ratio", 1.3, "local texture unlike real"),
    Flag("c2st", "above_diff", 0.1, "told apart from real by a classifier"),
]
RULES = (
    "a metric is flagged when worse than real-heldout by: sPr 0.15 lower; density or coverage below half; "
    "spectral FID above 2×; gradient ratio below 0.8× or above 1.3×; high-frequency energy below 0.6× or "
    "above 1.8×; log-PSD distance 0.3 decades higher; patch FD above 1.3×; C2ST accuracy 0.1 higher"
)


def scalar(metrics: dict, key: str):
    value = metrics.get(key)
    if isinstance(value, dict):
        value = value.get("mean")
    return value if isinstance(value, (int, float)) else None


def _flagged(flag: Flag, v: float, h: float) -> bool:
    if flag.test == "below":
        return v < h - flag.margin
    if flag.test == "below_ratio":
        return v < h * flag.margin
    if flag.test == "above_ratio":
        return v > h * flag.margin
    return v > h + flag.margin  # above_diff


def _phrase(flag: Flag, v: float, h: float) -> str:
    if flag.key in ("gradient_ratio", "hf_energy_ratio"):
        name = "gradient" if flag.key == "gradient_ratio" else "high-frequency energy"
        return f"{name} {v:.2g}× real (real-heldout {h:.2f}×)"
    return f"{INFO[flag.key].label} {v:.3g} (real-heldout {h:.3g})"


def verdict(metrics: dict, heldout: dict | None) -> dict:
    """{"text", "flags": [{metric, value, real_heldout, words}]} of one set's metrics."""
    if heldout is None:
        return {"text": "no real-heldout row to judge against (--references none)", "flags": []}
    flags = []
    for flag in FLAGS:
        v, h = scalar(metrics, flag.key), scalar(heldout, flag.key)
        if v is not None and h is not None and _flagged(flag, v, h):
            flags.append(
                {"metric": flag.key, "value": v, "real_heldout": h, "words": flag.words, "detail": _phrase(flag, v, h)}
            )
    spectral = [f for f in flags if f["metric"] in ("spr", "density", "coverage", "fid_spectral")]
    spatial = [f for f in flags if f not in spectral]
    parts = []
    if spectral:
        parts.append(_group(spectral))
    elif any(scalar(metrics, k) is not None for k in ("spr", "density")):
        parts.append("spectra close to real")
    if spatial:
        parts.append(_group(spatial))
    elif any(scalar(metrics, k) is not None for k in ("gradient_ratio", "patch_fd")):
        parts.append("spatially close to real")
    return {"text": "; ".join(parts) or "nothing to judge", "flags": flags}


def _group(flags: list[dict]) -> str:
    """'words: detail, detail' per distinct wording, in table order."""
    by_words: dict[str, list[str]] = {}
    for f in flags:
        by_words.setdefault(f["words"], []).append(f["detail"])
    return "; ".join(f"{words}: {', '.join(details)}" for words, details in by_words.items())


def autoencoder_limits(gen_verdict: dict, ae_verdict: dict) -> dict:
    """Mark the generated set's flags that its own autoencoder's reconstructions share: the
    decoder, not the diffusion model, sets that limit (a latent model cannot beat its decoder)."""
    shared = {(f["metric"], f["words"]) for f in ae_verdict["flags"]}
    limited = [f["metric"] for f in gen_verdict["flags"] if (f["metric"], f["words"]) in shared]
    if not limited:
        return gen_verdict
    names = ", ".join(dict.fromkeys(INFO[m].label for m in limited))
    return {
        **gen_verdict,
        "autoencoder_limited": limited,
        "text": f"{gen_verdict['text']} — its autoencoder-reconstruction row is flagged the same on {names}: "
        "the autoencoder limits these",
    }
