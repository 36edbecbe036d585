"""Reference rows: image sets built in the same run from the real data, scored exactly like the
generated sets so every number in the report has its scale beside it.

* ``real-heldout``: real images the metrics did not see (the dataset's other split, else a
  seeded disjoint half) — the ceiling a generator can reach;
* ``shuffled-pixels``: the real pixels permuted across all images and positions — the right
  spectra with no spatial structure;
* ``gaussian-pixels``: independent pixels from a multivariate normal fitted to the real spectra;
* ``autoencoder-reconstruction``: a latent or joint model's own autoencoder applied to the
  held-out images — the best that model's samples can reach;
* with ``--references all`` also the held-out images degraded: a 2-pixel box blur, a Gaussian
  blur (σ 0.7 px) and 2 % multiplicative noise — what a too-smooth or too-noisy generator
  looks like on each metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

import numpy as np

from ..artifacts.store import open_artifact
from ..common import log
from ..common.errors import ArtifactError, ConfigError, HsigenError
from .spectra import ImageSet, pixels, spectra_at
from .streamed import StoredArray, StoredUnion

# Size of each in-memory derived reference row (shuffled / Gaussian pixels, the autoencoder's
# reconstructions). Three of them sit in memory together, and scoring one finds its distinct
# pixels in memory (about 3× its size in temporaries): at 256 MiB each, `evaluate` peaked at
# 2.3 GiB on a 20 GB corpus. 64 MiB is still ~350 000 pixels of 48 bands, far more than the
# --max-spectra subset scored, and 85 patches of 64×64 for the spatial statistics.
DERIVED_ROWS_BYTES = 64 << 20

BOX_BLUR_PX = 2
GAUSSIAN_BLUR_SIGMA = 0.7
NOISE_FRACTION = 0.02


class References(str, Enum):
    none = "none"
    auto = "auto"
    all = "all"


DESCRIPTIONS = {
    "real-heldout": "real images the metrics did not see: the ceiling",
    "shuffled-pixels": "real pixels permuted across images: right spectra, no spatial structure",
    "gaussian-pixels": "independent pixels from a normal fitted to the real spectra (mean, covariance)",
    "autoencoder-reconstruction": "the model's own autoencoder on the held-out images: the best its samples can reach",
    "box-blur-heldout": f"held-out images, {BOX_BLUR_PX}-px box blur: a too-smooth generator",
    "gaussian-blur-heldout": f"held-out images, Gaussian blur σ {GAUSSIAN_BLUR_SIGMA} px: a too-smooth generator",
    "noise-heldout": f"held-out images × (1 + {NOISE_FRACTION:g}·N(0, 1)): a noisy generator",
}


@dataclass
class Reference:
    name: str
    images: ImageSet
    description: str
    extra: dict = field(default_factory=dict)  # e.g. the autoencoder and the generated sets it serves


def subset(images: ImageSet, mask: np.ndarray, label: str, on_disk: bool = True) -> ImageSet:
    """The images at ``mask``; stored images stay on disk (``StoredArray.take``: a train split can
    be larger than RAM) unless ``on_disk`` is False."""
    pick = lambda a: None if a is None else a[mask]  # noqa: E731
    lazy = on_disk and isinstance(images.cubes, StoredArray)
    return replace(
        images,
        path=Path(f"{images.path}[{label}]"),
        cubes=images.cubes.take(np.flatnonzero(mask)) if lazy else images.cubes[mask],
        labels=images.labels.take(np.flatnonzero(mask))
        if lazy and isinstance(images.labels, StoredArray)
        else pick(images.labels),
        split=pick(images.split),
        origin=pick(images.origin),
        condition_ids=pick(images.condition_ids),
    )


def split_real(real: ImageSet, real_split: str | None, with_heldout: bool, seed: int, on_disk: bool = True):
    """(scored-against set, held-out set or None, how it was split).

    With a train/val split the metrics score against ``real_split`` (default train) and the
    other split is held out. Without one, a held-out set is only made when references are on:
    a seeded half of the images (the other half is scored against)."""
    has_split = real.split is not None and {"train", "val"} <= set(np.unique(real.split).tolist())
    if real_split is not None and not has_split:
        raise ConfigError(
            f"--real-split {real_split}: {real.path} has no train/val split; "
            "re-run ingest with --val-fraction or leave --real-split out"
        )
    if has_split:
        scored = real_split or "train"
        other = "val" if scored == "train" else "train"
        held = subset(real, real.split == other, other, on_disk) if with_heldout else None
        return subset(real, real.split == scored, scored, on_disk), held, f"{scored} split (held out: {other} split)"
    if not with_heldout:
        return real, None, "all images"
    if len(real.cubes) < 4:
        raise ConfigError(
            f"--real {real.path} has {len(real.cubes)} images, too few to hold half out for the "
            "reference rows; give more real images or pass --references none"
        )
    held_mask = np.zeros(len(real.cubes), bool)
    held_mask[np.random.default_rng(seed).permutation(len(real.cubes))[: len(real.cubes) // 2]] = True
    return (
        subset(real, ~held_mask, "half A", on_disk),
        subset(real, held_mask, "half B", on_disk),
        "a seeded half of the images (no train/val split; the other half is held out)",
    )


MULTI_REAL_LABELS_NOTE = (
    "labels of the real sets are not used with several --real datasets (label values of different "
    "sources are different classes): mSAD and per-class figures need one --real"
)


def _join(parts: list[ImageSet], kind: str = "hsi-dataset") -> ImageSet:
    """One image set of several, one after another (images stay on disk, each part in its own
    physical units; no labels, no origins — the parts are different scenes)."""
    splits = [p.split for p in parts]
    return ImageSet(
        Path(" + ".join(str(p.path) for p in parts)),
        kind,
        StoredUnion([p.cubes for p in parts]),
        parts[0].wavelengths_nm,
        split=None if any(x is None for x in splits) else np.concatenate(splits),
        artifact=parts[0].artifact,
    )


def split_real_sources(paths: list, real_split: str | None, with_heldout: bool, seed: int):
    """Several ``--real`` datasets: each is split as ``split_real`` splits one (its train/val split,
    or a seeded half), and the scored parts and the held-out parts are joined — the union of the
    sources' rows, each converted to physical units with its own scale/offset, left on disk.

    Returns (scored set, held-out set or None, how it was split, one record per source)."""
    from ..common.errors import InputError
    from .spectra import check_same_grid, load_image_set

    seen = set()
    for p in paths:
        key = Path(p).resolve()
        if key in seen:
            raise ConfigError(f"--real {p} is given twice; list each real dataset once")
        seen.add(key)
    sets = [load_image_set(p, "--real") for p in paths]
    first = sets[0]
    for other in sets[1:]:
        check_same_grid(first, other, "--real")
        if other.cubes.shape[2:] != first.cubes.shape[2:]:
            (h, w), (h0, w0) = other.cubes.shape[2:], first.cubes.shape[2:]
            raise InputError(
                f"--real {other.path} has {h}×{w} images but --real {first.path} has {h0}×{w0}; "
                "ingest every real dataset with the same --size"
            )
    scored, held, notes, records = [], [], [], []
    for images in sets:
        images = replace(images, labels=None, origin=None)
        a, b, note = split_real(images, real_split, with_heldout, seed, on_disk=True)
        scored.append(a)
        held.append(b)
        notes.append(note)
        sp = images.artifact.spectral
        records.append(
            {
                "path": str(images.path),
                "images": int(len(a.cubes)),
                "heldout_images": 0 if b is None else int(len(b.cubes)),
                "split": note,
                "scale": float(sp["scale"]),
                "offset": float(sp["offset"]),
                "units": sp.get("units"),
            }
        )
    note = notes[0] if len(set(notes)) == 1 else "; ".join(f"{r['path']}: {n}" for r, n in zip(records, notes))
    heldout = None if held[0] is None else _join(held)
    return _join(scored), heldout, note, records


def _like(images: ImageSet, cubes: np.ndarray, name: str, labels=None, derived: bool = False) -> ImageSet:
    """A reference row's images; ``derived``: image i was made from ``images``' image i (a blur, the
    autoencoder), which condition agreement compares it with."""
    return ImageSet(
        Path(name),
        "reference",
        cubes.astype(np.float32),
        images.wavelengths_nm,
        labels,
        derived_from=images if derived else None,
    )


def shuffled_pixels(real: ImageSet, n_images: int, seed: int) -> ImageSet:
    """``n_images`` images of the real set's pixels (with their labels) drawn in random order,
    read from only the images that hold the drawn pixels."""
    n, b, h, w = real.cubes.shape
    pick = np.random.default_rng(seed).permutation(n * h * w)[: n_images * h * w]
    if len(pick) < n_images * h * w:  # fewer real pixels than asked for: draw with repetition
        pick = np.random.default_rng(seed).choice(n * h * w, n_images * h * w)
    cubes = spectra_at(real, pick).reshape(n_images, h, w, b).transpose(0, 3, 1, 2)
    labels = None if real.labels is None else _labels_at(real.labels, pick, h * w).reshape(n_images, h, w)
    return _like(real, cubes, "shuffled-pixels", labels)


def _labels_at(labels, flat: np.ndarray, per_image: int) -> np.ndarray:
    """``labels.reshape(-1)[flat]``, reading only the label maps that hold those pixels."""
    rows, where = np.unique(flat // per_image, return_inverse=True)
    return np.asarray(labels[rows]).reshape(len(rows), -1)[where, flat % per_image]


def bounded_heldout(heldout: ImageSet, seed: int) -> ImageSet:
    """The held-out images the derived reference rows are built from: all of them, or a seeded
    subset of at most DERIVED_ROWS_BYTES when the held-out split is larger (those rows are made
    in memory; the real-heldout row itself is scored from disk)."""
    n, b, h, w = heldout.cubes.shape
    cap = max(4, DERIVED_ROWS_BYTES // (b * h * w * 4))
    if n <= cap:
        return heldout
    mask = np.zeros(n, bool)
    mask[np.random.default_rng(seed).choice(n, cap, replace=False)] = True
    return subset(heldout, mask, f"{cap} of {n}")


def gaussian_pixels(real_spectra: np.ndarray, like: ImageSet, n_images: int, n_spectra: int, seed: int) -> ImageSet:
    """``n_images`` images of independent pixels drawn from a pool of ``n_spectra`` samples of
    N(mean, covariance) of the real spectra. The pool has as many distinct spectra as the
    real-heldout row (``pixels()`` counts unique spectra): sPr/sRec and coverage depend on set
    size, so the reference rows compare at equal sizes (and the cost stays that of real-heldout)."""
    x = np.asarray(real_spectra, np.float64)
    _, b, h, w = like.cubes.shape
    rng = np.random.default_rng(seed)
    mean, cov = x.mean(0), np.cov(x, rowvar=False)
    # Cholesky of the covariance (plus a tiny ridge for rank-deficient sets) keeps it seeded and fast.
    root = np.linalg.cholesky(cov + 1e-9 * np.trace(cov) / b * np.eye(b))
    pool = mean + rng.standard_normal((max(1, min(n_spectra, n_images * h * w)), b)) @ root.T
    px = pool[rng.permutation(np.resize(np.arange(len(pool)), n_images * h * w))]
    return _like(like, px.reshape(n_images, h, w, b).transpose(0, 3, 1, 2), "gaussian-pixels")


def degraded(heldout: ImageSet, seed: int) -> list[Reference]:
    from scipy import ndimage

    x = np.asarray(heldout.cubes).astype(np.float64)
    noise = 1 + NOISE_FRACTION * np.random.default_rng(seed).standard_normal(x.shape)
    sets = {
        "box-blur-heldout": ndimage.uniform_filter(x, size=(1, 1, BOX_BLUR_PX, BOX_BLUR_PX), mode="reflect"),
        "gaussian-blur-heldout": ndimage.gaussian_filter(
            x, sigma=(0, 0, GAUSSIAN_BLUR_SIGMA, GAUSSIAN_BLUR_SIGMA), mode="reflect"
        ),
        "noise-heldout": x * noise,
    }
    return [
        Reference(name, _like(heldout, cubes, name, heldout.labels, derived=True), DESCRIPTIONS[name])
        for name, cubes in sets.items()
    ]


def find_autoencoder(gen: ImageSet):
    """The autoencoder artifact that decodes a latent / joint model's samples, or (None, why):
    hsi-samples record their diffusion-model input, which keeps a copy in ``autoencoder/``."""
    if gen.artifact is None or gen.kind != "hsi-samples":
        return None, None
    for record in gen.artifact.manifest.get("inputs", []):
        if record.get("kind") != "diffusion-model":
            continue
        from .. import pretrained

        if pretrained.is_reference(record["path"]):
            model_dir = pretrained.resolve(record["path"])
        else:
            model_dir = _recorded_model(record, Path(gen.path))
        if model_dir is None:
            return None, (
                f"its model {record['path']} is not found from here, or has changed since the samples were made "
                "(run from the directory it was made in)"
            )
        ae_dir = model_dir / "autoencoder"
        if not ae_dir.is_dir():
            if _older_hsigene_import(model_dir):
                return None, (
                    f"its model {record['path']} is an HSIGene import made before hsigen wrote the VAE as an "
                    f"autoencoder artifact: re-import it (`hsigen import hsigene CKPT --out {record['path']} "
                    "--overwrite`)"
                )
            return None, None  # a pixel- or abundance-space model: no autoencoder
        try:
            return open_artifact(ae_dir, "autoencoder"), None
        except ArtifactError as exc:
            return None, str(exc)
    return None, None


def _older_hsigene_import(model_dir: Path) -> bool:
    """An ``architecture: hsigene`` model whose VAE is still ``vae/model.safetensors``."""
    import json

    try:
        manifest = json.loads((model_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("config", {}).get("architecture") == "hsigene" and any(
        o.get("path") == "vae/model.safetensors" for o in manifest.get("outputs", [])
    )


def _recorded_model(record: dict, samples_dir: Path) -> Path | None:
    """The model directory a samples manifest records: its path as given (relative to where
    ``sample`` ran), else that relative path under a directory above the samples (``sample`` ran
    there and ``evaluate`` runs elsewhere) — accepted only when its manifest has the recorded sha256."""
    from ..common.hashing import file_sha256

    recorded = Path(record["path"])
    candidates = [recorded]
    if not recorded.is_absolute():
        candidates += [parent / recorded for parent in samples_dir.resolve().parents]
    for candidate in candidates:
        manifest = candidate / "manifest.json"
        if manifest.is_file() and file_sha256(manifest) == record.get("sha256"):
            return candidate
    return None


def autoencoder_reconstruction(ae_artifact, heldout: ImageSet) -> ImageSet:
    """Encode and decode the held-out images with the autoencoder (physical units in and out)."""
    import torch

    from ..autoencoder.data import class_index
    from ..autoencoder.io import load_autoencoder

    model = load_autoencoder(ae_artifact, "cpu")
    if model.wavelengths_nm.shape != heldout.wavelengths_nm.shape or not np.allclose(
        model.wavelengths_nm, heldout.wavelengths_nm, atol=0.01
    ):
        raise ConfigError(f"autoencoder {ae_artifact.path} was trained on another wavelength grid than --real")
    kind = ae_artifact.manifest["autoencoder"]["kind"]
    union = isinstance(heldout.cubes, StoredUnion)
    if kind == "two-stream" and (model.pairs or heldout.labels is None):
        raise ConfigError(
            "a change-pair autoencoder, or held-out images without labels"
            if model.pairs
            else "the two-stream autoencoder encodes label masks: "
            + ("several --real datasets carry no shared labels; give one --real" if union else "--real has no labels")
        )
    if union:
        # Several --real sources: each in its own normalisation (its stored values), as a corpus trains.
        counts = [len(part) for part in heldout.cubes.parts]
        norm_scale = np.repeat(np.float32([part.scale for part in heldout.cubes.parts]), counts)[:, None, None, None]
        norm_offset = np.repeat(np.float32([part.offset for part in heldout.cubes.parts]), counts)[:, None, None, None]
        x_all = ((np.asarray(heldout.cubes) - norm_offset) / norm_scale).astype(np.float32)
    else:
        x_all = ((np.asarray(heldout.cubes) - model.offset) / model.scale).astype(np.float32)
    out = []
    with torch.no_grad():
        for a in range(0, len(x_all), 16):
            x = torch.from_numpy(x_all[a : a + 16])
            if kind == "two-stream":
                y = torch.from_numpy(class_index(heldout.labels[a : a + 16], model.classes))
                rec = model.decode(model.encode(x, y))[0]
            elif kind == "vq-rgb":
                rec = model.decode(model.encode(x), model.rgb_condition(x))
            else:
                rec = model.decode(model.encode(x))
            out.append(rec.float().numpy())
    if union:
        cubes = np.concatenate(out) * norm_scale + norm_offset
    else:
        cubes = np.concatenate(out) * np.float32(model.scale) + np.float32(model.offset)
    return _like(heldout, cubes, "autoencoder-reconstruction", heldout.labels, derived=True)


def _unique_count(images: ImageSet, max_spectra: int | None) -> int:
    """Distinct spectra of ``images`` (exact up to EXACT_PIXELS_BYTES, estimated while streaming beyond)."""
    return pixels(images, max_spectra, 0).unique_count


def build(
    mode: References,
    real: ImageSet,
    real_spectra: np.ndarray,
    heldout: ImageSet | None,
    generated: list[ImageSet],
    seed: int,
    max_spectra: int | None = None,
) -> tuple[list[Reference], list[str]]:
    """The reference rows for ``mode``, and notes on the ones that could not be made."""
    if mode == References.none or heldout is None:
        return [], []
    real_heldout = Reference(
        "real-heldout", replace(heldout, kind="reference", derived_from=heldout), DESCRIPTIONS["real-heldout"]
    )
    heldout = bounded_heldout(heldout, seed + 10)
    n = len(heldout.cubes)
    refs = [
        real_heldout,
        Reference("shuffled-pixels", shuffled_pixels(real, n, seed + 11), DESCRIPTIONS["shuffled-pixels"]),
        Reference(
            "gaussian-pixels",
            gaussian_pixels(real_spectra, real, n, _unique_count(heldout, max_spectra), seed + 12),
            DESCRIPTIONS["gaussian-pixels"],
        ),
    ]
    notes, by_ae = [], {}
    for i, g in enumerate(generated):
        ae, why = find_autoencoder(g)
        if why:
            notes.append(f"autoencoder-reconstruction for generated {i + 1}: {why}")
        if ae is not None:
            by_ae.setdefault(str(ae.path), (ae, []))[1].append(i)
    for path, (ae, users) in by_ae.items():
        try:
            images = autoencoder_reconstruction(ae, heldout)
        except HsigenError as exc:
            notes.append(f"autoencoder-reconstruction for {path}: {exc}")
            continue
        log.info(f"evaluate: reference autoencoder-reconstruction with {path}")
        refs.append(
            Reference(
                "autoencoder-reconstruction",
                images,
                DESCRIPTIONS["autoencoder-reconstruction"],
                {
                    "autoencoder": path,
                    "kind": ae.manifest["autoencoder"]["kind"],
                    "for_generated": [u + 1 for u in users],
                },
            )
        )
    if mode == References.all:
        refs += degraded(heldout, seed + 13)
    return refs, notes
