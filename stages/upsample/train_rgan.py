"""``upsample train-rgan``: train RGAN on real HSI patches degraded by ×2/×4, guided by their
own high-resolution RGB bands (Pang et al., HSIGene, arXiv:2409.12470 §3.3.3, §4.1.2), and write an ``sr-model``.

Training pairs: a random ``crop`` of a train-split patch (random flips) is the HR target;
its bands nearest 640/550/470 nm are the HR RGB guidance (zeros with ``rgb_zero``, the
Table 7 ablation); the LR input is the documented degradation (``degrade.py``). L1 loss,
AdamW with cosine decay 1e-4 → 1e-5 (``paper``). Patches are read from ``patches.h5`` per
step, so a dataset of any size trains in bounded memory.

Several datasets (or a corpus YAML, ``stages.data.corpus``) train one RGAN: every source's
training patches in its own stored normalisation ("per-source min/max"), drawn uniformly over
all of them unless the YAML gives weights; the manifest's ``normalisation`` records every
source, and ``model.json`` marks the normalisation ``per_source`` so ``upsample run`` converts
its input with the input's own scale/offset.

Evaluation on the val split (whole patches, cropped to a multiple of the scale): MPSNR and
SAM of RGAN with the true HR RGB, of RGAN with zero guidance, and of bicubic upsampling.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, open_artifact, spectral_block
from ..common import log
from ..common.errors import ConfigError, InputError
from ..common.runtime import resolve_device, seed_everything
from ..spectral import rgb_band_indices
from ..training.presets import preset_table
from .degrade import SCALES, SIGMA_PER_SCALE, degrade
from .metrics import mpsnr, sam_degrees
from .presets import RganPreset

WEIGHTS = "rgan.safetensors"
MODEL_JSON = "model.json"
# Smallest LR side a training crop may have (bicubic and the blur need a few pixels).
MIN_LR_SIDE = 4

# The paper publishes the optimisation (§4.1.2) but not RGAN's widths: ``paper`` takes
# SERT-sized layers (hsigene ref. [47]); ``tiny`` trains in about two minutes on 2 CPU cores.
PRESETS: dict[str, RganPreset] = preset_table(
    RganPreset,
    {
        "tiny": {
            "dim": 32,
            "depth": 2,
            "heads": 2,
            "window": [2, 8],
            "block": 8,
            "ffn_ratio": 2.0,
            "crop": 32,
            "batch_size": 4,
            "steps": 300,
            "epochs": None,
            "lr": 1e-3,
            "min_lr": 1e-4,
        },
        "paper": {
            "dim": 96,
            "depth": 6,
            "heads": 3,
            "window": [4, 16],
            "block": 16,
            "ffn_ratio": 2.0,
            "crop": None,
            "batch_size": 2,
            "steps": None,
            "epochs": 30,
            "lr": 1e-4,
            "min_lr": 1e-5,
        },
    },
)
ARCH_KEYS = ("dim", "depth", "heads", "window", "block", "ffn_ratio")


@dataclass
class RganTrainConfig:
    scale: int
    preset: str
    net: dict  # resolved preset (architecture + optimisation)
    rgb_zero: bool = False
    seed: int = 0
    weight_decay: float = 0.01
    checkpoint_every: int = 100
    degradation: dict = field(
        default_factory=lambda: {"blur": "gaussian", "sigma_per_scale": SIGMA_PER_SCALE, "downsample": "bicubic"}
    )

    def to_json(self) -> dict:
        return asdict(self)

    def arch(self) -> dict:
        return {k: self.net[k] for k in ARCH_KEYS}


class PatchReader:
    """Random access to the patches of one split of one or several ``hsi-dataset`` artifacts
    (a corpus: their patches one after another, each in its own stored normalisation) without
    loading them all."""

    def __init__(self, artifact, split: str):
        import h5py

        artifacts = list(artifact) if isinstance(artifact, (list, tuple)) else [artifact]
        self.files, self.datasets, parts = [], [], []
        try:
            for a in artifacts:
                h5 = h5py.File(a.file("patches.h5"), "r")
                self.files.append(h5)
                if "split" not in h5:
                    raise InputError(
                        f"{a.path} has no train/val split; re-ingest it with --val-fraction 0.2 "
                        "so RGAN can be evaluated on held-out patches"
                    )
                self.datasets.append(h5["hsi"])
                parts.append(np.flatnonzero(h5["split"][...].astype(str) == split))
        except BaseException:
            self.close()
            raise
        self.h5, self.hsi = self.files[0], self.datasets[0]
        self.index = np.concatenate(parts)  # row in its own file
        self.source = np.concatenate([np.full(len(rows), k) for k, rows in enumerate(parts)])
        self.counts = [len(rows) for rows in parts]
        self.starts = [int(v) for v in np.cumsum([0] + self.counts[:-1])]
        self.wavelengths_nm = self.h5["wavelengths_nm"][...]

    def __len__(self) -> int:
        return len(self.index)

    def read(self, positions) -> np.ndarray:
        return np.stack([self.datasets[int(self.source[int(p)])][int(self.index[int(p)])] for p in positions]).astype(
            np.float32
        )

    def band_statistics(self, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Per-band mean and standard deviation over every pixel of the split (one streamed pass)."""
        total = sq = None
        count = 0
        for i in range(0, len(self), chunk):
            x = self.read(range(i, min(len(self), i + chunk))).astype(np.float64)
            s1, s2 = x.sum(axis=(0, 2, 3)), (x**2).sum(axis=(0, 2, 3))
            total, sq = (s1, s2) if total is None else (total + s1, sq + s2)
            count += x.shape[0] * x.shape[2] * x.shape[3]
        mean = total / count
        return mean, np.sqrt(np.maximum(sq / count - mean**2, 0.0))

    def close(self) -> None:
        for h5 in self.files:
            h5.close()


def resolved_steps(net: dict, n_train: int) -> int:
    if net.get("steps"):
        return int(net["steps"])
    if not net.get("epochs"):
        raise ConfigError("give --steps or --epochs")
    return int(net["epochs"]) * math.ceil(n_train / int(net["batch_size"]))


def validate(dataset, cfg: RganTrainConfig):
    """Check the dataset(s) and options before any work; returns (corpus, patch size, crop).
    ``dataset``: one hsi-dataset, or several (paths and/or corpus YAML files, ``stages.data``)."""
    from ..data import open_corpus

    if cfg.scale not in SCALES:
        raise ConfigError(f"--scale {cfg.scale}: RGAN is trained for ×2 or ×4; use --scale 2 or --scale 4")
    corpus = open_corpus(dataset)
    size = corpus.size
    crop = size if cfg.net.get("crop") is None else min(int(cfg.net["crop"]), size)
    crop -= crop % cfg.scale
    if crop // cfg.scale < MIN_LR_SIDE:
        raise InputError(
            f"{corpus.origin}: patches are {size}x{size} pixels; ×{cfg.scale} training needs at least "
            f"{MIN_LR_SIDE * cfg.scale} pixels (re-ingest with a larger --size or use a smaller --scale)"
        )
    if int(cfg.net["batch_size"]) < 1 or (cfg.net.get("steps") is not None and int(cfg.net["steps"]) < 1):
        raise ConfigError("--batch-size and --steps must be at least 1")
    return corpus, size, crop


def evaluate(
    model,
    reader: PatchReader,
    scale: int,
    rgb_idx: list[int],
    patch_scale,
    patch_offset,
    device,
    batch: int = 8,
) -> dict:
    """MPSNR (peak = the dataset's physical range) and SAM (physical units) on val patches.

    Several sources (``reader`` over a corpus): ``patch_scale``/``patch_offset`` are lists, one
    per source; batches stay inside a source, MPSNR is over every val patch in its source's
    normalisation and SAM over every pixel in its source's physical units."""
    import torch

    from .rgan import upsample_bicubic

    scales = list(patch_scale) if isinstance(patch_scale, (list, tuple)) else [patch_scale]
    offsets = list(patch_offset) if isinstance(patch_offset, (list, tuple)) else [patch_offset]
    refs, outs, factors = [], {"rgan_rgb": [], "rgan_zero": [], "bicubic": []}, []
    model.eval()
    with torch.no_grad():
        for k, (start, count) in enumerate(zip(reader.starts, reader.counts)):
            for i in range(start, start + count, batch):
                hr = torch.from_numpy(reader.read(range(i, min(start + count, i + batch)))).to(device)
                s = hr.shape[-1] - hr.shape[-1] % scale
                hr = hr[..., :s, :s]
                lr = degrade(hr, scale)
                rgb = hr[:, rgb_idx]
                outs["rgan_rgb"].append(model(lr, rgb, scale).cpu().numpy())
                outs["rgan_zero"].append(model(lr, None, scale).cpu().numpy())
                outs["bicubic"].append(upsample_bicubic(lr, scale).cpu().numpy())
                refs.append(hr.cpu().numpy())
                factors.append((k, len(hr)))
    ref = np.concatenate(refs)
    if len(scales) == 1:
        phys = lambda a: a * np.float32(scales[0]) + np.float32(offsets[0])  # noqa: E731
    else:
        per = np.concatenate([np.full(n, k) for k, n in factors])
        sc = np.float32(scales)[per][:, None, None, None]
        off = np.float32(offsets)[per][:, None, None, None]
        phys = lambda a: a * sc + off  # noqa: E731
    metrics = {"val_patches": int(len(ref))}
    for name, arrays in outs.items():
        est = np.concatenate(arrays)
        metrics[f"{name}_mpsnr"] = round(mpsnr(ref, est, peak=1.0), 4)
        metrics[f"{name}_sam_deg"] = round(sam_degrees(phys(ref), phys(est)), 4)
    return metrics


def run(
    dataset,
    out: Path,
    cfg: RganTrainConfig,
    *,
    device: str = "auto",
    overwrite: bool = False,
    resume: bool = False,
    dry_run: bool = False,
):
    import torch

    from ..training import Trainer, TrainSpec, count_parameters, save_weights
    from .rgan import build_rgan

    corpus, size, crop = validate(dataset, cfg)
    artifacts = [src.artifact for src in corpus.sources]
    train = PatchReader(artifacts, "train")
    try:
        val = PatchReader(artifacts, "val")
    except BaseException:
        train.close()
        raise
    try:
        if len(train) == 0 or len(val) == 0:
            raise InputError(
                f"{corpus.origin} has {len(train)} train and {len(val)} val patches; RGAN needs both "
                "(re-ingest with --val-fraction 0.2 and a smaller --size)"
            )
        bands = int(train.hsi.shape[1])
        wl = train.wavelengths_nm
        rgb_idx = rgb_band_indices(wl)
        cfg.net = {**cfg.net, "steps": resolved_steps(cfg.net, len(train))}
        seed_everything(cfg.seed)
        model = build_rgan(bands, cfg.arch())
        if dry_run:  # the parameter counts, for the CLI to print
            attn = sum(count_parameters(layer.self_attn) + count_parameters(layer.cross_attn) for layer in model.layers)
            return {
                "model": "rgan",
                "preset": cfg.preset,
                "scale": cfg.scale,
                "parameters": {"attention": attn, "total": count_parameters(model)},
                "gals": len(model.layers),
                "training_steps": cfg.net["steps"],
                "batch_size": cfg.net["batch_size"],
                "crop": crop,
            }
        inputs = corpus.input_records()
        recorded = cfg.to_json()
        if not corpus.single:  # what else decides the batches of a corpus: its sources' weights
            recorded["corpus"] = {"sources": [str(s.path) for s in corpus.sources], "weights": corpus.weights()}
        writer = ArtifactWriter(out, "sr-model", "upsample train-rgan", recorded, inputs, overwrite)
        if writer.up_to_date():
            log.info("upsample train-rgan: up to date")
            return writer.artifact
        writer.check_destination()
        dev = resolve_device(device)
        sp = corpus.sources[0].artifact.spectral
        model.set_statistics(*train.band_statistics(), rgb_idx)
        batch_size, scale = int(cfg.net["batch_size"]), cfg.scale
        # Default weights (each source's share of the training patches): uniform over all of them.
        weighted = not corpus.single and any(s.weight is not None for s in corpus.sources)
        source_p = torch.tensor(corpus.weights(), dtype=torch.float64)
        counts, starts = torch.tensor(train.counts), torch.tensor(train.starts)

        def draw(g):
            if not weighted:
                return torch.randint(0, len(train), (batch_size,), generator=g).tolist()
            src = torch.multinomial(source_p, batch_size, replacement=True, generator=g)
            local = (torch.rand(batch_size, generator=g, dtype=torch.float64) * counts[src]).long()
            return (starts[src] + torch.minimum(local, counts[src] - 1)).tolist()

        def loss_fn(net, step, g):
            picks = draw(g)
            hr = torch.from_numpy(train.read(picks))
            r0, c0 = (torch.randint(0, size - crop + 1, (2,), generator=g)).tolist()
            hr = hr[..., r0 : r0 + crop, c0 : c0 + crop]
            flips = torch.rand(2, generator=g)
            if flips[0] < 0.5:
                hr = hr.flip(-1)
            if flips[1] < 0.5:
                hr = hr.flip(-2)
            hr = hr.to(dev)
            lr = degrade(hr, scale)
            rgb = None if cfg.rgb_zero else hr[:, rgb_idx]
            loss = torch.nn.functional.l1_loss(net(lr, rgb, scale), hr)  # §4.1.2: L1 loss
            return loss, {"l1": loss.item()}

        spec = TrainSpec(
            steps=int(cfg.net["steps"]),
            lr=float(cfg.net["lr"]),
            seed=cfg.seed,
            weight_decay=cfg.weight_decay,
            min_lr_ratio=float(cfg.net["min_lr"]) / float(cfg.net["lr"]),
            grad_clip=1.0,
            checkpoint_every=cfg.checkpoint_every,
        )
        fingerprint = {"config": recorded, "inputs": [r["sha256"] for r in inputs]}
        trainer = Trainer(model, spec, out, dev, fingerprint, resume=resume)
        history = trainer.fit(loss_fn, f"upsample train-rgan ×{scale}")
        model.load_state_dict(trainer.final_state())
        if corpus.single:
            metrics = evaluate(model, val, scale, rgb_idx, float(sp["scale"]), float(sp["offset"]), dev)
        else:
            metrics = evaluate(
                model, val, scale, rgb_idx, [s.scale for s in corpus.sources], [s.offset for s in corpus.sources], dev
            )
        metrics["final_l1"] = history[-1]["l1"] if history else None
        per_source = None if corpus.single else _per_source_metrics(model, val, corpus, scale, rgb_idx, dev)
        normalisation = {
            "scale": float(sp["scale"]),
            "offset": float(sp["offset"]),
            "units": "model units = (physical - offset) / scale",
        }
        if not corpus.single:
            normalisation = {
                "scheme": corpus.normalisation()["scheme"],
                "per_source": True,
                **normalisation,
                "units": "model units = (physical - offset) / scale with each dataset's own scale/offset "
                "(`upsample run` uses its input's; scale/offset here are the first source's)",
            }
        description = {
            "method": "rgan",
            "scale": scale,
            "bands": bands,
            "arch": cfg.arch(),
            "rgb_zero": cfg.rgb_zero,
            "rgb_band_indices": rgb_idx,
            "rgb_wavelengths_nm": [float(wl[i]) for i in rgb_idx],
            "wavelengths_nm": [float(w) for w in wl],
            "normalisation": normalisation,
            "degradation": cfg.degradation,
            "weights": WEIGHTS,
            "receptive_margin_hr": model.receptive_margin(),
            "alignment_hr": model.alignment(),
        }
        with writer.building() as tmp:
            save_weights(model.state_dict(), tmp / WEIGHTS)
            (tmp / MODEL_JSON).write_text(json.dumps(description, indent=2) + "\n")
            writer.spectral = spectral_block(wl, sp["scale"], sp["offset"])
            writer.metrics = metrics
            writer.extra = {"sr_model": {**description, "history": history}, "normalisation": corpus.normalisation()}
            if per_source is not None:
                writer.extra["per_source_metrics"] = per_source
        trainer.cleanup()
    finally:
        train.close()
        val.close()
    log.info(
        f"upsample train-rgan: val MPSNR rgan {metrics['rgan_rgb_mpsnr']:.2f} dB "
        f"(zero guidance {metrics['rgan_zero_mpsnr']:.2f}, bicubic {metrics['bicubic_mpsnr']:.2f}); "
        f"SAM {metrics['rgan_rgb_sam_deg']:.3f}° (zero {metrics['rgan_zero_sam_deg']:.3f}°, "
        f"bicubic {metrics['bicubic_sam_deg']:.3f}°)"
    )
    return writer.artifact


def _per_source_metrics(model, val: PatchReader, corpus, scale: int, rgb_idx: list[int], device) -> list[dict]:
    """The held-out metrics of each source of a corpus on its own val patches."""
    out = []
    for k, src in enumerate(corpus.sources):
        if val.counts[k] == 0:
            out.append({"path": str(src.path), "val_patches": 0})
            continue
        one = _SourceView(val, k)
        out.append({"path": str(src.path), **evaluate(model, one, scale, rgb_idx, src.scale, src.offset, device)})
    return out


class _SourceView:
    """The val patches of one source of a corpus ``PatchReader``."""

    def __init__(self, reader: PatchReader, k: int):
        self.reader, self.offset = reader, reader.starts[k]
        self.starts, self.counts = [0], [reader.counts[k]]

    def read(self, positions) -> np.ndarray:
        return self.reader.read([self.offset + int(p) for p in positions])


def load_rgan(path: Path, device="cpu"):
    """(model in eval mode, description dict) from an ``sr-model`` written by train-rgan."""
    from ..common.errors import ArtifactError
    from ..training import load_weights
    from .rgan import build_rgan

    artifact = open_artifact(path, "sr-model", role="--rgan")
    info = artifact.manifest.get("sr_model", {})
    if info.get("method") != "rgan" or not artifact.has(WEIGHTS):
        raise ArtifactError(
            f"--rgan {path} is a {info.get('method', 'unknown')} sr-model; give one made by "
            "`hsigen upsample train-rgan`"
        )
    model = build_rgan(int(info["bands"]), info["arch"])
    model.load_state_dict(load_weights(artifact.file(WEIGHTS)))
    return model.to(device).eval(), info, artifact
