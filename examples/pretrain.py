"""Train hsigen's pretrained models of the embedded Indian Pines scene and install them into the
package (``stages/pretrained/models``), each with a provenance file: the exact command, seed,
data sha256, steps, wall time and the metrics measured on the held-out (val) rows.

    make pretrained                                # = .venv/bin/python examples/pretrain.py
    .venv/bin/python examples/pretrain.py --work runs/pretrain --no-install   # train and score only
    .venv/bin/python examples/pretrain.py --lane latent   # rebuild and reinstall one lane's models only

Four lanes run side by side (one OpenMP thread each, on the machine's two cores): the KL
autoencoder → latent ControlNet model; the two-stream autoencoder → joint model; unmixing →
abundance model → RGAN ×2; the scene's spectral manifolds (scene-wide and by class, for
``sample --spectral-manifold``; its metrics are the other lanes' generators sampled through them). Every model uses its ``tiny`` preset's defaults (the presets carry
what each choice bought). All three lanes together, rebuilding every model but the two (up-to-date)
autoencoders, took 69 minutes on a 2-core CPU in session 14 (lanes: latent 67 + 7 for its KL
autoencoder when that is rebuilt, joint 28 + 15 for its two-stream VAE, pixels 10 — each with the
others beside it); the joint model's 10000 steps since session 15 took 55 minutes beside the latent
lane. Reruns skip every stage whose inputs and config are unchanged (the stages' own
up-to-date check).

Metrics (``hsigen evaluate --metrics spr_srec,spatial``, against the scene's train rows, physical
units, k = 10) of 16 samples per generator: unconditional for the latent model and, for its
conditioned row, under the hed + seg maps of 16 val patches (one sample each); for the
autoencoders, their reconstructions of the val patches.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED = 0
SAMPLES = 16
LATENT_KINDS = "hed,seg"
MANIFOLD_K = 3  # dimensions of the spectral manifold (docs/pretrained.md, Session 17)
UNMIX_K = 12  # endmembers of the min-volume simplex: k = 8 rebuilds the val patches at sRec 0.49, 12 at 0.77 (docs/pretrained.md)
# Longer than the tiny presets' defaults (which tests and the demo shorten further): what the
# shipped models were trained for, recorded in each provenance.json.
STEPS = {"autoencoder": 1500, "latent": 6000, "abundance": 3000, "two-stream": 1500, "joint": 10000, "rgan": 300}
# EMA decays longer than the presets' for these longer runs. The latent model: 6000 steps at 0.999 against 3000 at
# the preset's 0.995 before, unconditional sPr 0.65 → 0.70, hed + seg 0.46 → 0.52 (the joint model gained
# nothing from 0.999: docs/pretrained.md).
EMA_DECAY = {"latent": "0.999", "abundance": "0.999"}

# Weights shipped at half precision to keep the package within 25 MB (25,000,000 bytes; stages/pretrained/install.py):
# the latent model's UNet and ControlNet (17.3 MB in float32 since their full-resolution level is 128 wide) and its
# autoencoder's VAE (its val reconstructions move by 1.4e-4 of a spectrum's norm, the same sPr / sRec to three
# decimals), the joint model's UNet (6.1 MB in float32 since its level is 80 wide) and its mask VAE, the abundance
# model's UNet and the by-class manifold. Measured in float32 and float16 on the same seeds: docs/pretrained.md.
FLOAT16 = {
    "indian-pines-latent": (
        "unet/diffusion_pytorch_model.safetensors",
        "controlnet/diffusion_pytorch_model.safetensors",
        "autoencoder/vae/diffusion_pytorch_model.safetensors",
    ),
    "indian-pines-joint": (
        "unet/diffusion_pytorch_model.safetensors",
        "autoencoder/mask_vae/diffusion_pytorch_model.safetensors",
    ),
    "indian-pines-abundance": ("unet/diffusion_pytorch_model.safetensors",),
    "indian-pines-manifold-by-class": ("weights.safetensors",),
}

DESCRIPTIONS = {
    "indian-pines-autoencoder": "KL-VAE of the scene's 48 bands (HSIGene's latent space)",
    "indian-pines-latent": "HSIGene-style latent diffusion, UNet + ControlNet under hed + seg maps",
    "indian-pines-unmixing": f"minimum-volume simplex endmembers + FCLS abundances of the scene (k = {UNMIX_K})",
    "indian-pines-abundance": "abundance-space diffusion (HUD / MSF-Diff) on the unmixing's maps",
    "indian-pines-two-stream": "SpecDM's two-stream VAE: the HSI and its ground-truth label mask",
    "indian-pines-joint": "SpecDM joint latent diffusion: HSI + label mask pairs",
    "indian-pines-rgan-x2": "RGAN x2 RGB-guided hyperspectral super-resolution (HSIGene §3.4)",
    "indian-pines-manifold": f"the scene's spectral manifold (k = {MANIFOLD_K}) for sample --spectral-manifold",
    "indian-pines-manifold-by-class": f"one spectral manifold per ground-truth class (k = {MANIFOLD_K}), for labelled "
    "(joint) samples",
}


def hsigen() -> list[str]:
    return [sys.executable, "-m", "hsigen_cli.app"]


class Lane:
    """Stages run one after another; each one's command and wall time recorded. A stage that is
    up to date (its manifest did not change) keeps the wall time of the run that built it
    (``times.json`` in the work directory), so provenance always gives the training's time."""

    def __init__(self, work: Path, log_name: str):
        self.work, self.log = work, open(work / log_name, "a")
        self.records: dict[str, dict] = {}

    def run(self, name: str, *args: str) -> None:
        cmd = ["hsigen", *args]
        print(f"[{time.strftime('%H:%M:%S')}] {' '.join(cmd)}", flush=True)
        manifest = self.work / args[args.index("--out") + 1] / "manifest.json" if "--out" in args else None
        before = manifest.stat().st_mtime_ns if manifest is not None and manifest.is_file() else None
        t0 = time.time()
        self.log.write(f"\n$ {shlex.join(cmd)}\n")
        self.log.flush()
        # --overwrite lets a stage whose inputs changed replace its old output in a reused work
        # directory; an up-to-date stage is still skipped (every stage checks that first).
        done = subprocess.run(hsigen() + list(args) + ["--overwrite"], cwd=self.work, stdout=self.log, stderr=self.log)
        if done.returncode:
            raise SystemExit(f"{name} failed (exit {done.returncode}); see {self.log.name}")
        times_path = self.work / "times.json"
        times = json.loads(times_path.read_text()) if times_path.is_file() else {}
        rebuilt = manifest is None or before is None or manifest.stat().st_mtime_ns != before
        if rebuilt or name not in times:
            times[name] = round(time.time() - t0, 1)
            times_path.write_text(json.dumps(times, indent=2, sort_keys=True) + "\n")
        self.records[name] = {"command": shlex.join(cmd), "wall_seconds": times[name]}


def lane_latent(work: Path) -> dict:
    lane = Lane(work, "lane-latent.log")
    lane.run("conditions", "condition", "dataset", "--kinds", LATENT_KINDS, "--out", "conditions")
    lane.run(
        "conditions-val", "condition", "dataset", "--kinds", LATENT_KINDS, "--split", "val", "--out", "conditions-val"
    )
    lane.run("indian-pines-autoencoder", "train-ae", "dataset", "--kind", "kl", "--preset", "tiny",
             "--steps", str(STEPS["autoencoder"]), "--seed", str(SEED), "--out", "autoencoder")  # fmt: skip
    lane.run("indian-pines-latent", "train-diffusion", "--space", "latent", "--autoencoder", "autoencoder",
             "--dataset", "dataset", "--conditions", "conditions", "--kinds", LATENT_KINDS, "--preset", "tiny",
             "--steps", str(STEPS["latent"]), "--ema-decay", EMA_DECAY["latent"], "--seed", str(SEED),
             "--out", "latent")  # fmt: skip
    return lane.records


def lane_pixels(work: Path) -> dict:
    lane = Lane(work, "lane-pixels.log")
    lane.run("indian-pines-unmixing", "unmix", "dataset", "-k", str(UNMIX_K), "--method", "min-volume",
             "--seed", str(SEED), "--out", "unmixing")  # fmt: skip
    lane.run("indian-pines-abundance", "train-diffusion", "--space", "abundance", "--unmixing", "unmixing",
             "--preset", "tiny", "--steps", str(STEPS["abundance"]), "--ema-decay", EMA_DECAY["abundance"],
             "--seed", str(SEED), "--out", "abundance")  # fmt: skip
    lane.run("indian-pines-rgan-x2", "upsample", "train-rgan", "dataset", "--scale", "2", "--preset", "tiny",
             "--steps", str(STEPS["rgan"]), "--seed", str(SEED), "--out", "rgan-x2")  # fmt: skip
    return lane.records


def lane_joint(work: Path) -> dict:
    lane = Lane(work, "lane-joint.log")
    lane.run("indian-pines-two-stream", "train-ae", "dataset", "--kind", "two-stream", "--preset", "tiny",
             "--steps", str(STEPS["two-stream"]), "--seed", str(SEED), "--out", "two-stream")  # fmt: skip
    lane.run("indian-pines-joint", "train-diffusion", "--space", "joint", "--autoencoder", "two-stream",
             "--dataset", "dataset", "--preset", "tiny", "--steps", str(STEPS["joint"]), "--seed", str(SEED),
             "--out", "joint")  # fmt: skip
    return lane.records


def lane_manifold(work: Path) -> dict:
    lane = Lane(work, "lane-manifold.log")
    lane.run("indian-pines-manifold", "unmix", "dataset", "-k", str(MANIFOLD_K), "--method", "manifold",
             "--seed", str(SEED), "--out", "manifold")  # fmt: skip
    lane.run("indian-pines-manifold-by-class", "unmix", "dataset", "-k", str(MANIFOLD_K), "--method", "manifold",
             "--by-class", "--seed", str(SEED), "--out", "manifold-by-class")  # fmt: skip
    return lane.records


LANES = {"latent": lane_latent, "joint": lane_joint, "pixels": lane_pixels, "manifold": lane_manifold}
# The models each lane builds (``--lane`` rebuilds and reinstalls only these).
LANE_MODELS = {
    "latent": ("indian-pines-autoencoder", "indian-pines-latent"),
    "joint": ("indian-pines-two-stream", "indian-pines-joint"),
    "pixels": ("indian-pines-unmixing", "indian-pines-abundance", "indian-pines-rgan-x2"),
    "manifold": ("indian-pines-manifold", "indian-pines-manifold-by-class"),
}
# The sample rows (make_samples) of each lane's generators.
LANE_ROWS = {
    "latent": ("latent-unconditional", "latent-conditioned"),
    "joint": ("joint",),
    "pixels": ("abundance",),
    "manifold": (),
}
# Rows sampled again with every pixel decoded through a spectral manifold (make_samples' ``manifold``): the
# latent samples through the scene's, the labelled ones through the by-class one (their own labels).
MANIFOLD_ROWS = {"latent-unconditional": "manifold", "latent-conditioned": "manifold", "joint": "manifold-by-class"}
# The shipped manifold each shipped generator's samples decode through unless `sample --spectral-manifold none`
# (stages/pretrained): with it they meet the realism targets (docs/pretrained.md, Sessions 17 and 19).
DEFAULT_MANIFOLD = {
    "indian-pines-latent": "indian-pines-manifold",
    "indian-pines-joint": "indian-pines-manifold-by-class",
}


def run_lanes(work: Path, lanes=tuple(LANES)) -> dict:
    """The lanes in parallel (child processes of this one), after the shared ingest."""
    from concurrent.futures import ProcessPoolExecutor

    first = Lane(work, "ingest.log")
    first.run("dataset", *INGEST)
    with ProcessPoolExecutor(len(lanes)) as pool:
        jobs = [pool.submit(LANES[lane], work) for lane in lanes]
        records = dict(first.records)
        for job in jobs:
            records.update(job.result())
    return records


def make_samples(
    work: Path,
    models: dict[str, str],
    val_conditions: str,
    prefix: str = "",
    rows=None,
    seed: int = 1,
    manifold: str | None = None,
) -> dict[str, str]:
    """16 samples of 32×32 pixels (fixed seeds; the size of the real patches) of each of ``models`` (abundance, latent, joint: a directory or
    pretrained:NAME); the latent model twice, unconditional and under the hed + seg maps of the
    val patches (``val_conditions``: ``hsigen condition --split val``; sample i uses val patch i);
    ``seed``: the sampling seed (the shipped models' provenance metrics: seed 1); ``manifold``: a
    spectral-manifold artifact every sample is decoded through (``sample --spectral-manifold``).
    Returns the samples directory of each row, by row name."""
    lane = Lane(work, "score.log")
    runs = {
        "abundance": (models["abundance"],),
        "latent-unconditional": (models["latent"],),
        "latent-conditioned": (models["latent"], "--conditions", val_conditions),
        "joint": (models["joint"],),
    }
    sets = {}
    for row, (ckpt, *extra) in runs.items():
        if rows is not None and row not in rows:
            continue
        out = f"samples/{prefix}{row}"
        extra = [*extra, "--spectral-manifold", manifold or "none"]  # none: raw, not a shipped model's default
        lane.run(f"samples-{prefix}{row}", "sample", "--ckpt", ckpt, *extra, "-n", str(SAMPLES), "--size", "32",
                 "--seed", str(seed), "--out", out)  # fmt: skip
        sets[prefix + row] = out
    return sets


KEEP = ("spr", "srec", "gradient_ratio", "max_band_mean_error", "hf_energy_ratio", "log_psd_distance")
INGEST = (
    "ingest",
    "--example",
    "indian-pines",
    "--size",
    "32",
    "--stride",
    "16",
    "--val-fraction",
    "0.25",
    "--out",
    "dataset",
)  # fmt: skip  (as make demo ingests the scene)


def evaluate_sets(
    work: Path,
    sets: dict[str, str],
    references: str = "auto",
    metrics: str = "spr_srec,spatial",
    keep: tuple = KEEP,
    out: str = "evaluation",
):
    """One ``hsigen evaluate --metrics METRICS`` of ``sets`` against work/dataset, written to work/OUT:
    (reference rows, generated rows), each a list of (label, the ``keep`` metrics); a model's
    autoencoder row is labelled ``autoencoder-reconstruction:<model directory>``."""
    lane = Lane(work, "score.log")
    lane.run(out, "evaluate", "--real", "dataset", "--generated", *sets.values(), "--metrics", metrics,
             "--references", references, "--out", out)  # fmt: skip
    report = json.loads((work / out / "report.json").read_text())
    by_path = {v: k for k, v in sets.items()}
    refs = []
    for r in report["references"]:
        label = r["name"]
        if label == "autoencoder-reconstruction":
            served = r.get("autoencoder", "")
            label = f"{label}:{Path(served).parent.name or served}"
        refs.append((label, {k: r["metrics"][k] for k in keep if k in r["metrics"]}))
    generated = [
        (by_path.get(g["path"], g["path"]), {k: g["metrics"][k] for k in keep if k in g["metrics"]})
        for g in report["generated"]
    ]
    return refs, generated


def score(work: Path, sets: dict[str, str]) -> dict[str, dict]:
    """Metrics by row name, the generated sets then the reference rows."""
    refs, generated = evaluate_sets(work, sets)
    return dict(generated + refs)


def _steps(manifest: dict):
    config = manifest.get("config", {})
    model = config.get("model", {}) if isinstance(config.get("model"), dict) else {}
    return model.get("steps", config.get("steps"))


def data_provenance(work: Path) -> dict:
    m = json.loads((work / "dataset" / "manifest.json").read_text())
    files = {Path(i["path"]).name: i["sha256"] for i in m["inputs"]}
    patches = next(o["sha256"] for o in m["outputs"] if o["path"] == "patches.h5")
    return {"scene": "AVIRIS Indian Pines (embedded), train split", "patches_h5_sha256": patches, "sources": files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="runs/pretrain", help="Where the artifacts are trained.")
    parser.add_argument("--no-install", action="store_true", help="Train and score only.")
    parser.add_argument("--smoke", action="store_true", help="10 steps per model: check the script, not the models.")
    parser.add_argument(
        "--lane", choices=sorted(LANES), action="append", help="Rebuild only this lane's models (repeatable)."
    )
    args = parser.parse_args()
    lanes = tuple(args.lane or LANES)
    if args.smoke:
        STEPS.update(dict.fromkeys(STEPS, 10))
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.time()
    records = run_lanes(work, lanes)
    wanted = [row for lane in lanes for row in LANE_ROWS[lane]]
    # A lane not rebuilt here samples its installed model (the manifold's rows need the generators).
    models = {kind: kind if (work / kind / "manifest.json").is_file() else f"pretrained:indian-pines-{kind}"
              for kind in ("abundance", "latent", "joint")}  # fmt: skip
    if "manifold" in lanes and not (work / "conditions-val" / "manifest.json").is_file():
        Lane(work, "score.log").run("conditions-val", "condition", "dataset", "--kinds", LATENT_KINDS, "--split",
                                    "val", "--out", "conditions-val")  # fmt: skip
    sets = make_samples(work, models, "conditions-val", rows=wanted)
    if "manifold" in lanes:
        for row, manifold in MANIFOLD_ROWS.items():
            sets.update(make_samples(work, models, "conditions-val", "manifold-", (row,), manifold=manifold))
    rows = score(work, sets)
    (work / "realism.json").write_text(json.dumps(rows, indent=2) + "\n")
    metrics_of = {}
    if "latent" in lanes:
        metrics_of["indian-pines-autoencoder"] = rows.get("autoencoder-reconstruction:latent", {})
        metrics_of["indian-pines-latent"] = {
            "unconditional": rows["latent-unconditional"],
            "hed+seg": rows["latent-conditioned"],
        }
    if "pixels" in lanes:
        metrics_of["indian-pines-abundance"] = rows["abundance"]
    if "joint" in lanes:
        metrics_of["indian-pines-joint"] = rows["joint"]
        metrics_of["indian-pines-two-stream"] = rows.get("autoencoder-reconstruction:joint", {})
    if "manifold" in lanes:
        # The samples of the shipped generators decoded through it (its own projection errors are in its manifest).
        for name, directory in (("indian-pines-manifold", "manifold"), ("indian-pines-manifold-by-class",
                                                                         "manifold-by-class")):  # fmt: skip
            metrics_of[name] = {
                f"{row} through it": rows[f"manifold-{row}"] for row, used in MANIFOLD_ROWS.items() if used == directory
            }
    print(json.dumps(rows, indent=2))
    if args.no_install:
        return
    from stages.pretrained.install import install, install_held

    data = data_provenance(work)
    dirs = {"indian-pines-latent": "latent", "indian-pines-unmixing": "unmixing",
            "indian-pines-abundance": "abundance", "indian-pines-joint": "joint", "indian-pines-rgan-x2": "rgan-x2",
            "indian-pines-autoencoder": "autoencoder", "indian-pines-two-stream": "two-stream",
            "indian-pines-manifold": "manifold", "indian-pines-manifold-by-class": "manifold-by-class"}  # fmt: skip
    # The autoencoders ship once, inside the latent / joint model that copied them (stages/pretrained).
    held = {"indian-pines-autoencoder": "indian-pines-latent", "indian-pines-two-stream": "indian-pines-joint"}
    for name, directory in dirs.items():
        if not any(name in LANE_MODELS[lane] for lane in lanes):
            continue
        manifest = json.loads((work / directory / "manifest.json").read_text())
        provenance = {
            **records[name],
            "seed": SEED,
            "data": data,
            "steps": _steps(manifest),
            "preset": manifest.get("config", {}).get("preset"),
            "metrics": metrics_of.get(name, manifest.get("metrics", {})),
            "metrics_how": "hsigen evaluate --metrics spr_srec,spatial against the train rows (k = 10), "
            f"{SAMPLES} samples or the val reconstructions; examples/pretrain.py",
            "hsigen_version": manifest["hsigen_version"],
            "wall_note": "seconds on a 2-core CPU, one OpenMP thread, with the other lane (and other jobs) running",
        }
        if name in held:
            path = install_held(name, held[name], "autoencoder", DESCRIPTIONS[name], provenance)
        else:
            path = install(name, work / directory, DESCRIPTIONS[name], provenance, float16=FLOAT16.get(name, ()),
                           spectral_manifold=DEFAULT_MANIFOLD.get(name))  # fmt: skip
        print(f"installed {name} → {path.relative_to(ROOT)}")
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
