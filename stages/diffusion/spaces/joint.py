"""The joint space of SpecDM (Liu et al., SpecDM, arXiv:2502.17056 §3.2-3.3): labelled HSI synthesis.

Training data are the patches of a labelled ``hsi-dataset`` and their masks, encoded once by a
``two-stream`` autoencoder into the channel concatenation z = (z_x, z_y) (§3.2: one denoising
UNet on h × w × 2c) — or, for change detection with a ``--pairs`` autoencoder, the bi-temporal
z = (z_x1, z_x2, z_y) (§3.3: both images through the one image branch).

The diffusion tensors are the latents standardised per channel with the training latents'
mean and std (recorded in the manifest's ``normalisation``, undone before decoding). The
autoencoder's scaling factors give each branch unit variance as a whole, but single channels
differ: the tiny two-stream AE's mask latent had channels with std 0.12 and means up to 0.9, so
the diffusion loss all but ignored them and the mask's class code drowned in noise early in
the forward process. The mask channels can then be multiplied by ``MASK_GAIN`` so that the mask's
class code stays legible to deeper noise (off by default: see the measurements at ``MASK_GAIN``
and benchmarks/specdm.py's diagnosis).

Each patch is encoded in all 8 orientations (4 rotations × optional flip, applied to the image
and its mask alike) so that the generic trainer's latent flips stay near the training set.

The second image of a change-detection pair comes from the dataset's own ``hsi_t2`` (what
``ingest --pair SCENE2 --change-mask FILE`` writes) or from a second dataset (``pairs``, the
convention of ``train-ae --pairs``), expressed in the autoencoder's units.

Several datasets (``--dataset A --dataset B`` or a corpus YAML, ``stages.data.corpus``) train one
model on the labelled training patches of every source, each in its own per-source min/max
normalisation (its ``patches.h5`` values, as the corpus-trained autoencoder saw them), with the
corpus's class space: label values of different sources are different classes unless a
source's ``labels`` map sends them to a shared name. The two-stream autoencoder must know every
class of that space by name (``train-ae --kind two-stream A B`` records them as
``autoencoder.class_names``); the model's labels are the autoencoder's class ids, named in the
manifest. Generated HSIs are in the per-source normalisation with the autoencoder's reference
scale/offset (its first training source's), recorded as ``sample_units``. Change pairs
(``--pairs``, a ``--pairs`` autoencoder) stay single-dataset.

Generated latents are decoded by the autoencoder copied into the model (``autoencoder/``): the
image part(s) by the image decoder, the mask part by the mask decoder and an argmax over the
autoencoder's classes (§3.3 "Decode z_syn using ... D_hsi and D_msk").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...common import log
from ...common.errors import ConfigError, InputError, SpectralError
from ...training.presets import preset_table
from ..channel_norm import channel_statistics, denormalise, normalise
from ..generator import Conditions, Decoded
from ..generator import Generator as BaseGenerator
from ..latent_layout import AUTOENCODER_DIR, copy_autoencoder
from ..presets import DiffusionPreset
from . import SpaceData

# Liu et al., SpecDM, arXiv:2502.17056 §3.4: T = 1000 with a linear β schedule from 0.0015 to 0.0155 (LDM's setting).
SPECDM_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.0015, "beta_end": 0.0155, "beta_schedule": "linear"}

# ≈ 1.5 M parameters: two resolution levels on the 16 × 16 latents of 32 × 32 patches (the tiny two-stream VAE's
# f = 2; 8 × 8 with the f = 4 branches of the paper preset). The full-resolution level is 80 wide, more than the 52
# latent channels (issue 14; at 32 it had fewer, as the latent UNet's first level had, spaces/latent.py): the shipped
# joint model's sPr 0.46 → 0.65 (docs/pretrained.md). Its UNet ships as float16 so that the pretrained models fit
# 25 MB together.
_TINY_UNET = {
    "block_out_channels": [80, 64],
    "layers_per_block": 1,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
    "norm_num_groups": 16,
    "attention_head_dim": 16,
}
# Liu et al., SpecDM, arXiv:2502.17056 §3.4 follows LDM's configurations; LDM's f = 4 UNet (its kl-f4 / vq-f4 latent
# models): 224 base channels, multipliers [1, 2, 3, 4], 2 residual blocks per level, attention
# at the three coarser levels with 32-channel heads.
_PAPER_UNET = {
    "block_out_channels": [224, 448, 672, 896],
    "layers_per_block": 2,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    "norm_num_groups": 32,
    "attention_head_dim": 32,
}

# Gain of the standardised mask channels (1 = all latent channels weigh alike). The mask VAE
# packs 17 classes into 4 latent channels, so noise soon hides which class a latent pixel holds
# (Indian Pines, tiny AE: 15-NN class accuracy from the mask latent 0.80 clean, 0.53 at
# t ≈ 300 with gain 1, 0.76 with gain 6). With ×6 the tiny UNet uses the mask more when it
# denoises the image latent (x0 error of the image latents at t = 500: 0.57 with the own mask
# vs 0.69 with another patch's; gain 1: 0.57 vs 0.61) and keeps more image-mask coupling when
# denoising training latents (benchmarks/specdm.py, diagnosis (a)/(b)) — but the samples were
# no better coupled (5-NN label agreement 0.184 vs 0.171 with labels of other images), and in one
# comparison (not like for like: 2000 vs 1000 joint steps) downstream OA was 0.326 ± 0.127 with
# gain 6 vs 0.457 ± 0.048 with gain 1; so the default keeps Liu et al., SpecDM, arXiv:2502.17056's design, every channel
# alike (benchmarks/specdm.py --mask-gain explores it).
MASK_GAIN = 1.0

PRESETS: dict[str, DiffusionPreset] = preset_table(
    DiffusionPreset,
    {
        # Same β schedule as the paper. Predicting the clean latent (x0) learns the joint latent
        # distribution much faster than ε-prediction in a few hundred CPU steps (measured on
        # Indian Pines, see benchmarks/specdm.py); --prediction epsilon gives the paper's objective.
        # 5000 steps (677 s on this 2-core CPU with other jobs beside it): with the tiny two-stream
        # AE (1000 steps), the samples' class means were nearest their own class's real mean for
        # 3 / 13 classes after 2000 joint steps and 7 / 13 after 5000 (benchmarks/specdm.py). On the f = 2 tiny
        # two-stream VAE (52 × 16 × 16 latents) 5000 steps took 1303 s with the [32, 64] UNet; its samples: sPr 0.46 /
        # sRec 0.84 / gradient 1.17, 2 / 14 classes, 5-NN coupling 0.339 (0.135 with other images' masks). With
        # [80, 64] (1792 s): 0.65 / 0.87 / 1.10 / band-mean error 5.7 %, 5 / 12 classes, mSAD 0.022 rad (0.052),
        # coupling 0.469 (0.144), class-share TV 0.104 (0.131) — docs/pretrained.md. 10000 steps (the shipped model since
        # session 15, `examples/pretrain.py`; 3314 s beside the latent lane): sPr 0.668 ± 0.036 over 3 seeds (0.601 ±
        # 0.036 at 5000), sRec 0.82, gradient 1.11, band-mean error 3.3 %; 7 / 12 classes, mSAD 0.020, coupling 0.573
        # (0.129), class-share TV 0.120, downstream OA 0.480 ± 0.025 (0.395 ± 0.032 at 5000; real subset 0.502).
        "tiny": {
            "unet": _TINY_UNET,
            "prediction_type": "sample",
            "schedule": SPECDM_SCHEDULE,
            "steps": 5000,
            "batch_size": 16,
            "lr": 2e-3,
            "warmup_steps": 20,
            "ema_decay": 0.99,
            "crop": None,
        },
        # Liu et al., SpecDM, arXiv:2502.17056 §3.4: ε-prediction (eq. 4), T = 1000, linear β 0.0015 → 0.0155, lr 5.0e-6.
        # Batch size and step count are not given in the paper: LDM's batch 48 and 200k steps.
        "paper": {
            "unet": _PAPER_UNET,
            "prediction_type": "epsilon",
            "schedule": SPECDM_SCHEDULE,
            "steps": 200_000,
            "batch_size": 48,
            "lr": 5e-6,
            "warmup_steps": 0,
            "ema_decay": 0.9999,
            "crop": None,
        },
    },
)


def dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """Orientation k ∈ 0..7 of (…, H, W) arrays: k % 4 quarter turns, then a flip when k ≥ 4."""
    y = np.rot90(x, k % 4, axes=(-2, -1))
    if k >= 4:
        y = y[..., ::-1]
    return np.ascontiguousarray(y)


def read_second_images(dataset: Path, pairs: Path | None):
    """The t2 images of a change-detection dataset: its ``hsi_t2`` or a second dataset's
    ``hsi``, as (hsi (N, B, S, S) normalised, scale, offset) — or None when there are none."""
    import h5py

    from ...artifacts import open_artifact
    from ...artifacts.datasets import load_patches

    if pairs is not None:
        other = load_patches(pairs)
        return other.hsi, other.scale, other.offset
    artifact = open_artifact(dataset, "hsi-dataset")
    with h5py.File(artifact.file("patches.h5"), "r") as h5:
        if "hsi_t2" not in h5:
            return None
        hsi_t2 = h5["hsi_t2"][...]
    sp = artifact.spectral
    return hsi_t2, float(sp["scale"]), float(sp["offset"])


def _to_ae_units(hsi: np.ndarray, scale: float, offset: float, ae) -> np.ndarray:
    physical = hsi * np.float32(scale) + np.float32(offset)
    return ((physical - ae.offset) / ae.scale).astype(np.float32)


def load_training_pairs(inputs: dict, ae):
    """(rows, hsi, hsi_t2 or None, class indices) of the dataset's training split, in the
    autoencoder's units, after checking that they fit the autoencoder."""
    from ...artifacts.datasets import load_patches
    from ...autoencoder.data import class_index

    dataset = Path(inputs["dataset"])
    patches = load_patches(dataset)
    wl = np.asarray(patches.wavelengths_nm, np.float64)
    if len(wl) != len(ae.wavelengths_nm) or not np.allclose(wl, ae.wavelengths_nm, atol=0.05):
        raise SpectralError(
            f"{dataset} has {len(wl)} bands that differ from the autoencoder's "
            f"{len(ae.wavelengths_nm)}; train the autoencoder on this dataset's band grid"
        )
    if patches.labels is None:
        raise InputError(
            f"--space joint generates image-mask pairs: {dataset} has no labels; "
            "re-run ingest with --labels FILE (or --change-mask FILE for pairs)"
        )
    size = int(patches.hsi.shape[-1])
    if size % ae.factor:
        raise InputError(f"{dataset}: patch size {size} is not a multiple of the autoencoder's factor {ae.factor}")
    rows = np.arange(len(patches.hsi)) if patches.split is None else np.flatnonzero(patches.split == "train")
    if len(rows) == 0:
        raise InputError(f"{dataset} has no training patches; re-run ingest with a smaller --val-fraction")
    second = read_second_images(dataset, inputs.get("pairs"))
    hsi_t2 = None
    if ae.pairs:
        if second is None:
            raise InputError(
                f"this two-stream autoencoder encodes bi-temporal pairs (trained with --pairs) but "
                f"{dataset} has no hsi_t2: ingest the pair with --pair SCENE2 --change-mask FILE, "
                "or give --pairs DATASET_B"
            )
        t2, scale2, offset2 = second
        if t2.shape != patches.hsi.shape:
            raise InputError(f"the second images {t2.shape} do not match {dataset}'s patches {patches.hsi.shape}")
        hsi_t2 = _to_ae_units(t2[rows], scale2, offset2, ae)
    elif second is not None:
        raise ConfigError(
            f"{dataset} holds change-detection pairs (hsi_t2) but the autoencoder encodes one image; "
            "train it with `hsigen train-ae --kind two-stream --pairs ...`"
        )
    labels = class_index(patches.labels[rows], ae.classes)
    hsi = _to_ae_units(patches.hsi[rows], patches.scale, patches.offset, ae)
    return rows, hsi, hsi_t2, labels, patches


def corpus_of(dataset):
    """The ``stages.data.Corpus`` when ``dataset`` names several sources (or one with a label
    map, through a corpus YAML), else None: one dataset trains exactly as before."""
    from ...data import open_corpus

    items = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]
    yaml_given = any(Path(d).suffix.lower() in (".yaml", ".yml") for d in items)
    if len(items) == 1 and not yaml_given:
        return None
    corpus = open_corpus(items)
    if corpus.single and corpus.sources[0].label_map is None:
        return None
    return corpus


def autoencoder_class_names(ae_path: Path, ae, corpus) -> list[str]:
    """The names of the two-stream autoencoder's classes, in its class order.

    ``train-ae`` over a corpus records them (``autoencoder.class_names``). An autoencoder
    trained on exactly this corpus's sources and label maps before that field existed has the
    corpus's class ids; one trained on a single dataset in memory has raw label values without
    names, which cannot be matched to a corpus's classes."""
    import json

    from ...artifacts import open_artifact

    manifest = open_artifact(ae_path, "autoencoder").manifest
    names = manifest.get("autoencoder", {}).get("class_names")
    if names is not None:
        return [str(n) for n in names]
    recorded = manifest.get("normalisation", {}).get("sources") or []
    ours = corpus.normalisation()["sources"]

    def key(sources):
        return [(s.get("sha256"), json.loads(json.dumps(s.get("label_map")))) for s in sources]

    if key(recorded) == key(ours) and list(ae.classes) == list(range(len(corpus.class_names()))):
        return corpus.class_names()
    raise ConfigError(
        f"the two-stream autoencoder {ae_path} has classes {list(ae.classes)} without names (trained on "
        f"{', '.join(str(s.get('path')) for s in recorded) or 'one dataset'}), so they cannot be matched to "
        f"the corpus's class space {corpus.class_names()}; train it on the corpus: "
        "`hsigen train-ae --kind two-stream A B ...` (or the same corpus YAML)"
    )


def load_corpus_training(corpus, inputs: dict, ae):
    """(hsi, class indices, source per patch, class names) of every source's training patches,
    each source in its own normalisation, labels mapped into the autoencoder's class order."""
    import h5py

    ae_path = Path(inputs["autoencoder"])
    if inputs.get("pairs") is not None:
        raise ConfigError(
            "--pairs (change pairs) trains on one dataset; give a single --dataset with --pairs, "
            f"not the {len(corpus.sources)} sources of {corpus.origin}"
        )
    if ae.pairs:
        raise ConfigError(
            f"{ae_path} encodes bi-temporal pairs (trained with --pairs): change detection trains on one "
            "dataset; several sources need a one-image two-stream autoencoder"
        )
    corpus.check_autoencoder(ae)
    names = autoencoder_class_names(ae_path, ae, corpus)
    luts = corpus.model_class_luts(names, f"the two-stream autoencoder {ae_path}")
    hsi, labels, source = [], [], []
    for k, src in enumerate(corpus.sources):
        with h5py.File(src.h5_path, "r") as h5:
            if "hsi_t2" in h5:
                raise ConfigError(
                    f"{src.path} holds change-detection pairs (hsi_t2); change detection trains on one dataset"
                )
            rows = src.train_rows
            hsi.append(np.asarray(h5["hsi"][...][rows], np.float32))
            labels.append(luts[k][np.asarray(h5["labels"][...][rows], np.int64)])
        source.append(np.full(len(rows), k, np.int64))
    return np.concatenate(hsi), np.concatenate(labels), np.concatenate(source), names


def corpus_weights(corpus, source: np.ndarray, orientations: int) -> np.ndarray | None:
    """Sampling probability of every training tensor (orientation-major, as ``prepare`` stacks
    them) giving each source its corpus weight; None for the default weights (each source's
    share of training patches), which uniform sampling already gives."""
    if all(s.weight is None for s in corpus.sources):
        return None
    counts = np.bincount(source, minlength=len(corpus.sources)).astype(np.float64)
    per_patch = np.asarray(corpus.weights())[source] / counts[source]
    return np.tile(per_patch / orientations, orientations)


def class_share(labels: np.ndarray, classes) -> dict:
    """Fraction of pixels per label value (Liu et al., SpecDM, arXiv:2502.17056 Fig. 4), every class listed."""
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    return share_of_counts(dict(zip(values.tolist(), counts.tolist())), classes)


def share_of_counts(counts: dict, classes) -> dict:
    """{label value: pixel count} → fraction per class, every class listed."""
    total = max(int(sum(counts.values())), 1)
    share = {int(c): 0.0 for c in classes}
    for v, n in counts.items():
        share[int(v)] = n / total
    return {str(k): float(v) for k, v in sorted(share.items())}


def total_variation(p: dict, q: dict) -> float:
    """½ Σ |p − q| over the union of classes (0 = identical class frequencies, 1 = disjoint)."""
    keys = set(p) | set(q)
    return 0.5 * float(sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys))


def latent_normalisation(latents: np.ndarray, mask_channels: int, mask_gain: float | None = None) -> dict:
    """Per-channel mean/std of the training latents, and the gain of the mask channels.

    Standardising every channel gives each latent channel the same weight in the diffusion loss
    (a mask channel of the two-stream AE can have a tenth of another's spread, and an
    un-centred channel keeps its offset through the whole noise schedule)."""
    gain_value = MASK_GAIN if mask_gain is None else float(mask_gain)
    gain = np.ones(latents.shape[1])
    gain[latents.shape[1] - mask_channels :] = gain_value
    return {**channel_statistics(latents), "channel_gain": gain.tolist(), "mask_gain": gain_value}


def prepare(inputs: dict, seed: int, model: dict | None = None) -> SpaceData:
    """``inputs``: ``autoencoder`` (two-stream), ``dataset`` (labelled; with ``hsi_t2`` for
    change detection) and optionally ``pairs`` (a second dataset holding the t2 images). ``model``
    (the resolved preset) is read by the abundance space only; the joint space takes every setting
    from its autoencoder."""
    import torch

    from ...artifacts import spectral_block
    from ...autoencoder.io import load_autoencoder

    ae_path, dataset = inputs.get("autoencoder"), inputs.get("dataset")
    if ae_path is None or dataset is None:
        raise ConfigError("--space joint needs --autoencoder TWO_STREAM_AE and --dataset LABELLED_DATASET")
    ae = load_autoencoder(ae_path, "cpu")
    if ae.kind != "two-stream":
        raise ConfigError(
            f"--space joint needs a two-stream autoencoder (SpecDM); {ae_path} is {ae.kind}: "
            "train one with `hsigen train-ae --kind two-stream`"
        )
    corpus = corpus_of(dataset)
    if corpus is None:
        dataset = dataset[0] if isinstance(dataset, (list, tuple)) else dataset
        rows, hsi, hsi_t2, labels, patches = load_training_pairs({**inputs, "dataset": dataset}, ae)
    else:
        hsi, labels, source, class_names = load_corpus_training(corpus, inputs, ae)
        rows, hsi_t2 = np.arange(len(hsi)), None
    latents = []
    with torch.no_grad(), log.progress("joint: encode latents", 8) as bar:
        for k in range(8):
            cube, mask = dihedral(hsi, k), dihedral(labels, k)
            cube_t2 = dihedral(hsi_t2, k) if hsi_t2 is not None else None
            for start in range(0, len(cube), 32):
                sl = slice(start, start + 32)
                extra = [torch.from_numpy(cube_t2[sl])] if cube_t2 is not None else []
                z = ae.encode(torch.from_numpy(cube[sl]), torch.from_numpy(mask[sl]), *extra)
                latents.append(z.float().numpy())
            bar.advance()
    latents = np.concatenate(latents).astype(np.float32)
    layout = ["hsi", "hsi_t2", "mask"] if ae.pairs else ["hsi", "mask"]
    label_values = np.asarray(ae.classes)[labels]
    norm = latent_normalisation(latents, int(ae.mask_latent_channels))
    tensors = normalise(latents, norm)
    norm.update(
        {
            "latent_layout": layout,
            "hsi_latent_channels": int(ae.hsi_latent_channels),
            "mask_latent_channels": int(ae.mask_latent_channels),
            "scaling_factor": float(ae.scaling_factor),
            "mask_scaling_factor": float(ae.mask_scaling_factor),
        }
    )
    space_config = {
        "task": "change-detection" if ae.pairs else "segmentation",
        "autoencoder": {
            "path": str(ae_path),
            "kind": ae.kind,
            "factor": int(ae.factor),
            "pairs": bool(ae.pairs),
            "classes": [int(c) for c in ae.classes],
            "copied_to": AUTOENCODER_DIR,
        },
        "dataset": str(dataset) if corpus is None else [str(src.path) for src in corpus.sources],
        "patch_size": int(hsi.shape[-1]),
        "training_patches": int(len(rows)),
        "orientations": 8,
        "classes": [int(c) for c in ae.classes],
        # The training split's class frequencies: `sample` reports generated vs these (Fig. 4).
        "training_class_share": class_share(label_values, ae.classes),
    }
    weights = None
    if corpus is None:
        used = [Path(ae_path), Path(dataset)] + ([Path(inputs["pairs"])] if inputs.get("pairs") else [])
    else:
        used = [Path(ae_path)] + [src.path for src in corpus.sources]
        weights = corpus_weights(corpus, source, 8)
        space_config.update(
            {
                "class_names": class_names,
                "class_space": corpus.class_record(),
                "training_patches_per_source": corpus.train_counts(),
                "sample_units": (
                    "per-source min/max normalised; physical = value * scale + offset of the autoencoder's "
                    f"reference ({ae.scale:g}, {ae.offset:g}: its first training source's units)"
                ),
                "corpus_normalisation": corpus.normalisation(),
            }
        )

    def write_files(tmp: Path) -> None:
        copy_autoencoder(ae_path, tmp)

    log.info(
        f"joint: {len(rows)} training pairs × 8 orientations → latents {tuple(tensors.shape[1:])} "
        f"({' + '.join(layout)})"
    )
    return SpaceData(
        tensors=tensors,
        normalisation=norm,
        inputs=used,
        space_config=space_config,
        spectral=spectral_block(ae.wavelengths_nm, ae.scale, ae.offset),
        write_files=write_files,
        sample_weights=weights,
    )


def pixel_factor(model) -> int:
    """Output pixels per latent pixel (the autoencoder's f): ``sample --size`` counts pixels."""
    return int(model.config["autoencoder"]["factor"])


def load_model_autoencoder(model, device="cpu"):
    from ...autoencoder.io import load_autoencoder

    return load_autoencoder(model.artifact.path / AUTOENCODER_DIR, device)


def decode_latents(ae, x0: np.ndarray, batch_size: int = 16) -> dict:
    """Joint latents (n, C, h, w) → {"hsi", ["hsi_t2"], "labels"} (AE units; label values)."""
    import torch

    expected = ae.joint_latent_channels
    if x0.shape[1] != expected:
        raise ConfigError(f"the joint latents have {x0.shape[1]} channels but the autoencoder expects {expected}")
    hsi, hsi_t2, labels = [], [], []
    with torch.no_grad():
        for start in range(0, len(x0), batch_size):
            *images, probs = ae.decode(torch.from_numpy(np.ascontiguousarray(x0[start : start + batch_size])))
            hsi.append(images[0].float().numpy())
            if len(images) > 1:
                hsi_t2.append(images[1].float().numpy())
            labels.append(ae.labels_from_probs(probs))
    out = {"hsi": np.concatenate(hsi).astype(np.float32), "labels": np.concatenate(labels).astype(np.int32)}
    if hsi_t2:
        out["hsi_t2"] = np.concatenate(hsi_t2).astype(np.float32)
    return out


def decode(model, x0: np.ndarray) -> Decoded:
    """Generated joint latents → HSIs (and t2 HSIs) in the autoencoder's normalised units and
    label maps (n, H, W) of the training label values."""
    ae = load_model_autoencoder(model)
    parts = decode_latents(ae, denormalise(x0, model.config["normalisation"]))
    arrays = {"labels": parts["labels"]}
    if "hsi_t2" in parts:
        arrays["hsi_t2"] = parts["hsi_t2"]
    real = model.config["training_class_share"]
    generated = class_share(parts["labels"], model.config["classes"])
    # Reported in the samples' manifest (Liu et al., SpecDM, arXiv:2502.17056 Fig. 4): per-class share, real vs generated.
    metrics = {
        "class_share": {"training": real, "generated": generated, "total_variation": total_variation(real, generated)}
    }
    return Decoded(parts["hsi"], ae.wavelengths_nm, ae.scale, ae.offset, arrays, metrics)


class Generator(BaseGenerator):
    """Unconditional joint (image, mask) latent sampling, decoded by the two-stream autoencoder."""

    def __init__(self, model):
        super().__init__(model)
        self.pixel_factor = pixel_factor(model)

    def decode(self, x0: np.ndarray, rows: slice, conditions: Conditions) -> Decoded:
        return decode(self.model, x0)

    def summary(self, samples_h5: Path, conditions: Conditions) -> tuple[dict, dict]:
        """Generated vs training class shares (Liu et al., SpecDM, arXiv:2502.17056 Fig. 4), counted over every sample."""
        import h5py

        counts: dict[int, int] = {}
        with h5py.File(samples_h5, "r") as h5:
            labels = h5["labels"]
            for start in range(0, labels.shape[0], 64):
                values, found = np.unique(labels[start : start + 64], return_counts=True)
                for v, c in zip(values.tolist(), found.tolist()):
                    counts[int(v)] = counts.get(int(v), 0) + int(c)
        real = self.model.config["training_class_share"]
        generated = share_of_counts(counts, self.model.config["classes"])
        return {
            "class_share": {
                "training": real,
                "generated": generated,
                "total_variation": total_variation(real, generated),
            }
        }, {}
