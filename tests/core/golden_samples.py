"""Golden sample bytes: micro abundance, latent and joint models built with fixed seeds, then
sampled with every sampler each model supports, recording the sha256 of the sample arrays
(``samples.h5`` datasets, not manifests). ``tests/core/test_golden_samples.py`` asserts that
the sampling code reproduces them bit-identically.

The models are trained for two steps with lr = 0: the weights stay at their seeded
initialisation, so the recorded bytes depend on model construction, data normalisation and the
sampling path — not on the training loop's batch order, which other work may change. The
weight hashes are recorded too, so a failure says whether the models or the sampling changed.

    PYTHONPATH=. OMP_NUM_THREADS=1 python tests/core/golden_samples.py --write   # regenerate
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

GOLDEN_FILE = Path(__file__).resolve().parents[1] / "data" / "golden_samples.json"
MICRO_UNET = {
    "block_out_channels": [16, 32],
    "layers_per_block": 1,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
    "norm_num_groups": 8,
    "attention_head_dim": 8,
}
FROZEN = {"steps": 2, "lr": 0.0, "warmup_steps": 0}
# The autoencoder fields as the tiny presets had them when the golden file was written (issue 14 changed the
# presets; the golden models stay what they were).
FROZEN_AE = {
    "kl": {"latent_channels": 4, "gradient_weight": 0.0, "linear_path": False},
    "two-stream": {"latent_channels": 8, "gradient_weight": 0.0, "linear_path": False, "linear_block": False},
}
# The latent preset's fields as they were then (issue 14 moved it to x0-prediction on standardised latents).
FROZEN_LATENT = {"prediction_type": "epsilon", "standardise_latents": False}
# The abundance preset's Z scaling then (issue 14 made the tiny preset's per-endmember standard).
FROZEN_ABUNDANCE = {"z_scaling": "range"}
SAMPLE_STEPS = 4
SAMPLES = 3
# Every (model, sampler) pair the code supported when the golden file was written.
CASES = {
    "abundance": ("ddim", "ddpm"),
    "latent": ("ddim", "ddpm", "dpm"),
    "latent-hed": ("ddim", "ddpm", "dpm"),
    "joint": ("ddim", "ddpm"),
}


def array_digest(values: np.ndarray) -> str:
    """sha256 over dtype, shape and C-order bytes."""
    values = np.ascontiguousarray(values)
    digest = hashlib.sha256(f"{values.dtype.str}{values.shape}".encode())
    digest.update(values.tobytes())
    return digest.hexdigest()


def sample_digests(artifact: Path) -> dict:
    import h5py

    with h5py.File(Path(artifact) / "samples.h5", "r") as h5:
        return {name: array_digest(h5[name][...]) for name in sorted(h5.keys())}


def sample_values(artifact: Path) -> dict:
    """A float fingerprint of each samples.h5 array: its sum, sum of squares and 16 strided values.
    Another CPU's kernels (AVX-512 against AVX2, another BLAS) round differently, so the bytes only
    reproduce on the kind of machine that wrote them; these say whether a mismatch is rounding."""
    import h5py

    out = {}
    with h5py.File(Path(artifact) / "samples.h5", "r") as h5:
        for name in sorted(h5.keys()):
            a = np.asarray(h5[name][...], np.float64).ravel()
            picks = a[:: max(1, a.size // 16)][:16]
            out[name] = [float(a.sum()), float((a**2).sum()), *map(float, picks)]
    return out


def values_match(drawn: list, recorded: list, rtol: float = 1e-4) -> bool:
    """Equal up to rounding: sums within rtol, every strided value within rtol of the values' scale
    (their root mean square; the fingerprint does not hold the array's size, so not the sum's)."""
    drawn, recorded = np.asarray(drawn), np.asarray(recorded)
    if drawn.shape != recorded.shape:
        return False
    scale = max(float(np.sqrt(np.mean(recorded[2:] ** 2))), 1e-12)
    return bool(np.allclose(drawn[2:], recorded[2:], rtol=rtol, atol=rtol * scale)) and bool(
        np.allclose(drawn[:2], recorded[:2], rtol=rtol)
    )


def weight_digests(model: Path) -> dict:
    return {
        str(p.relative_to(model)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(model).rglob("*.safetensors"))
    }


def hed_map(path: Path, size: int = 32) -> Path:
    """A fixed edge map (a ring and a diagonal) as a grey PNG, named after its kind."""
    from stages.spectral import save_png

    yy, xx = np.mgrid[:size, :size]
    ring = np.abs(np.hypot(yy - size / 2, xx - size / 2) - size / 4) < 1.5
    edges = (ring | (np.abs(yy - xx) < 1)).astype(np.uint8) * 255
    save_png(path, np.repeat(edges[..., None], 3, axis=-1))
    return path


def build_models(dataset: Path, work: Path, names=("abundance", "latent", "joint")) -> dict:
    """{"abundance": path, "latent": path, "latent-hed": path, "joint": path} of frozen micro
    models (those of ``names``; "latent" builds both latent models)."""
    from stages import diffusion, unmix
    from stages.autoencoder import PRESETS as AE_PRESETS
    from stages.autoencoder import TrainAEConfig
    from stages.autoencoder import run as train_ae
    from stages.training import resolve_preset

    work = Path(work)
    unmixing = work / "unmixing"
    if "abundance" in names:
        unmix.run(dataset, unmixing, unmix.UnmixConfig(method="vca", endmembers=4))

    def train(space: str, inputs: dict, out: Path, **extra) -> Path:
        model = diffusion.resolve(space, "tiny", {**FROZEN, "unet": MICRO_UNET, **extra})
        cfg = diffusion.DiffusionTrainConfig(space, "tiny", model, seed=0, device="cpu", checkpoint_every=0)
        diffusion.train(inputs, out, cfg)
        return out

    def autoencoder(kind: str, out: Path, **extra) -> Path:
        model = resolve_preset(
            AE_PRESETS[kind],
            "tiny",
            {**FROZEN, **FROZEN_AE[kind], "block_out_channels": [8, 16, 16], "batch_size": 4, "crop": 16, **extra},
        )
        train_ae(dataset, out, TrainAEConfig(kind=kind, preset="tiny", model=model, seed=0), device="cpu")
        return out

    models = {}
    if "abundance" in names:
        models["abundance"] = train(
            "abundance", {"unmixing": unmixing}, work / "abundance", crop=16, **FROZEN_ABUNDANCE
        )
    if "latent" in names:
        kl = autoencoder("kl", work / "ae-kl")
        latent_unet = {
            **MICRO_UNET,
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
        }
        models["latent"] = train(
            "latent",
            {"autoencoder": kl, "dataset": dataset, "kinds": ""},
            work / "latent",
            unet=latent_unet,
            augment=False,
            **FROZEN_LATENT,
        )
        models["latent-hed"] = train(
            "latent",
            {"autoencoder": kl, "dataset": dataset, "kinds": "hed"},
            work / "latent-hed",
            unet=latent_unet,
            augment=False,
            **FROZEN_LATENT,
        )
    if "joint" in names:
        two_stream = autoencoder(
            "two-stream", work / "ae-two-stream", mask_block_out_channels=[8, 16, 16], norm_num_groups=4
        )
        models["joint"] = train("joint", {"autoencoder": two_stream, "dataset": dataset}, work / "joint")
    return models


def draw_all(models: dict, work: Path, cases: dict = CASES) -> dict:
    """{"model/sampler": {dataset name: sha256}} for every case; batch size 2 of 3 samples,
    so a batch boundary is crossed."""
    from stages import sampling

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    hed = hed_map(work / "hed.png")
    results = {}
    for name, samplers in cases.items():
        for sampler in samplers:
            out = work / "samples" / f"{name}-{sampler}"
            cfg = sampling.SampleConfig(n=SAMPLES, sampler=sampler, steps=SAMPLE_STEPS, seed=7, batch_size=2)
            extra = {}
            if name == "latent-hed":
                extra = {"conditions": sampling.ConditionRequest(files=[str(hed)]), "guidance": 2.5}
            sampling.run(models[name], out, cfg, device="cpu", **extra)
            results[f"{name}/{sampler}"] = sample_digests(out)
    return results


def golden(dataset: Path, work: Path) -> dict:
    models = build_models(dataset, work)
    record = {
        "weights": {name: weight_digests(path) for name, path in models.items()},
        "samples": draw_all(models, work),
    }
    record["values"] = {
        case: sample_values(Path(work) / "samples" / case.replace("/", "-")) for case in record["samples"]
    }
    return record


def main() -> None:
    import tempfile

    from stages.common.runtime import torch_threads
    from stages.ingest import ingest_example

    with tempfile.TemporaryDirectory() as tmp, torch_threads(1):
        dataset = Path(tmp) / "indian_pines"
        ingest_example(dataset)
        record = golden(dataset, Path(tmp) / "work")
    record = {
        "note": "sha256 of the samples.h5 arrays (dtype, shape, bytes) of micro models built by "
        "tests/core/golden_samples.py (seed 0, lr 0, 2 steps) on the embedded Indian Pines ingest, "
        "sampled with seed 7, 4 steps, 3 samples in batches of 2, on CPU with 1 thread. "
        "Written before the issue-17 refactor of the sampling code (values: float fingerprints for other CPUs, "
        "added with --add-values); regenerate only when a "
        "change of the samples is intended: python tests/core/golden_samples.py --write",
        **record,
    }
    if "--add-values" in sys.argv:  # keep the recorded digests, add this machine's value fingerprints
        kept = json.loads(GOLDEN_FILE.read_text())
        kept["values"] = record["values"]
        GOLDEN_FILE.write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n")
        print(GOLDEN_FILE)
    elif "--write" in sys.argv:
        GOLDEN_FILE.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN_FILE.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(GOLDEN_FILE)
    else:
        print(json.dumps(record, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
