"""Builders shared by the SpecDM (joint space) tests and benchmarks/specdm.py: micro two-stream
autoencoders and joint diffusion models (fixed step counts), samples, and a change-detection
pair built from Indian Pines."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

AE_STEPS = 60
DIFFUSION_STEPS = 150
SAMPLES = 16
SAMPLE_STEPS = 10
# A micro two-stream AE: the tiny preset needs ~1500 steps, far beyond a test's budget, so the
# tests check formats, determinism and label sets; generation quality (class shares, mSAD,
# downstream OA/AA/κ) is measured with properly trained models in benchmarks/specdm.py.
AE_MICRO = {
    "block_out_channels": [8, 16, 16],
    "mask_block_out_channels": [8, 16, 16],
    "norm_num_groups": 4,
    "batch_size": 4,
    "crop": 16,
    "warmup_steps": 0,
    "lr": 3e-3,
    # the tiny preset's image latent before issue 14 moved it to f = 2 × 48 with the block path
    "latent_channels": 8,
    "linear_block": False,
}
DIFFUSION_MICRO = {
    "unet": {
        "block_out_channels": [16, 32],
        "layers_per_block": 1,
        "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
        "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
        "norm_num_groups": 8,
        "attention_head_dim": 8,
    }
}


def train_two_stream(dataset: Path, out: Path, steps: int = AE_STEPS, pairs: Path | None = None) -> Path:
    from stages.autoencoder import PRESETS, TrainAEConfig, run
    from stages.training import resolve_preset

    model = resolve_preset(PRESETS["two-stream"], "tiny", {**AE_MICRO, "steps": steps})
    cfg = TrainAEConfig(
        kind="two-stream", preset="tiny", model=model, seed=0, pairs=str(pairs) if pairs is not None else None
    )
    run(dataset, out, cfg, device="cpu")
    return out


def train_joint(autoencoder: Path, dataset: Path, out: Path, steps: int = DIFFUSION_STEPS, **overrides) -> Path:
    from stages.diffusion import DiffusionTrainConfig, resolve, train

    model = resolve("joint", "tiny", {**DIFFUSION_MICRO, "steps": steps, **overrides})
    cfg = DiffusionTrainConfig(space="joint", preset="tiny", model=model, seed=0, device="cpu", checkpoint_every=0)
    train({"autoencoder": autoencoder, "dataset": dataset}, out, cfg)
    return out


def draw_samples(model: Path, out: Path, n: int = SAMPLES, seed: int = 0) -> Path:
    from stages.sampling import SampleConfig, run

    run(model, out, SampleConfig(n=n, sampler="ddim", steps=SAMPLE_STEPS, seed=seed, batch_size=8), device="cpu")
    return out


def ingest_pair(out: Path, t2: Path, mask: Path, **overrides):
    from stages import ingest
    from stages.spectral import parse_band_ranges, read_wavelengths_file, target_grid

    ex = ingest.EXAMPLES["indian-pines"]
    cfg = ingest.IngestConfig(
        target_wavelengths_nm=list(target_grid()),
        size=32,
        stride=16,
        drop_bands=parse_band_ranges(ex["drop_bands"]),
        val_fraction=0.25,
        wavelengths_source="sidecar",
        **overrides,
    )
    return ingest.run(
        [ex["source"]],
        out,
        cfg,
        wavelengths=read_wavelengths_file(ex["wavelengths_file"]),
        extra_inputs=[ex["wavelengths_file"]],
        pair=t2,
        change_mask=mask,
    )


# -- a bi-temporal pair built from Indian Pines --------------------------------------------------
# A bi-temporal test pair built from the embedded Indian Pines scene (there is no real
# bi-temporal scene in the data folder): t2 = t1 with rectangular regions whose pixels are
# replaced by spectra of another land-cover class (drawn at random from that class's pixels,
# with 1 % multiplicative noise); the change mask is 1 inside those regions, 0 elsewhere.
#
#     python tests/joint/joint_helpers.py OUT_DIR     # writes t2.npy (H, W, 200) and change.npy (H, W)

# (row, col, height, width, class whose spectra replace the region); spread over the scene so
# both the train rows and the bottom-quarter validation rows contain changes.
CHANGES = [
    (10, 10, 14, 14, 11),
    (20, 80, 12, 16, 2),
    (50, 40, 14, 12, 14),
    (60, 110, 12, 14, 5),
    (85, 15, 12, 12, 10),
    (95, 70, 14, 14, 6),
    (115, 100, 12, 16, 11),
    (122, 30, 12, 14, 3),
]


def load_indian_pines() -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    from stages.ingest import EXAMPLES

    ex = EXAMPLES["indian-pines"]
    cube = loadmat(str(ex["source"]))["indian_pines_corrected"].astype(np.float32)
    gt = loadmat(str(ex["labels"]))["indian_pines_gt"].astype(np.int64)
    return cube, gt


def make_change_pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t1 (H, W, 200), t2 (H, W, 200), change mask (H, W) uint8)."""
    cube, gt = load_indian_pines()
    rng = np.random.default_rng(seed)
    t2 = cube.copy()
    mask = np.zeros(gt.shape, np.uint8)
    for r, c, h, w, cls in CHANGES:
        donors = cube[gt == cls]
        pick = rng.integers(0, len(donors), size=(h, w))
        noise = 1.0 + 0.01 * rng.standard_normal((h, w, 1)).astype(np.float32)
        t2[r : r + h, c : c + w] = donors[pick] * noise
        mask[r : r + h, c : c + w] = 1
    return cube, t2, mask


def write_change_pair(out_dir: Path, seed: int = 0) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _, t2, mask = make_change_pair(seed)
    np.save(out_dir / "t2.npy", t2)
    np.save(out_dir / "change.npy", mask)
    return out_dir / "t2.npy", out_dir / "change.npy"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    for path in write_change_pair(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/ip-change")):
        print(path)
