"""``sample`` as a batch job: shards merged equal one run bit for bit, a killed run resumes
with its finished samples kept, and a tampered shard is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from golden_samples import build_models

ROOT = Path(__file__).resolve().parents[2]
N = 40  # three parts of PART_SAMPLES = 16: 16 + 16 + 8
ARGS = ("-n", str(N), "--steps", "4", "--seed", "3", "--batch-size", "4")


@pytest.fixture(scope="module")
def micro_models(ip_dataset, tmp_path_factory):
    from stages.common.runtime import torch_threads

    with torch_threads(1):
        return build_models(ip_dataset, tmp_path_factory.mktemp("batch-jobs"), names=("abundance", "joint"))


def outputs(artifact: Path) -> dict:
    """{file: sha256} of an artifact, from its manifest."""
    return {o["path"]: o["sha256"] for o in json.loads((artifact / "manifest.json").read_text())["outputs"]}


def test_shards_merged_equal_one_run(micro_models, cli, tmp_path):
    from stages.artifacts.samples import PART_SAMPLES

    assert PART_SAMPLES == 16
    model = micro_models["abundance"]
    assert cli("sample", "--ckpt", model, *ARGS, "--out", tmp_path / "whole")[0] == 0
    for i in (0, 1):
        code, _, err = cli("sample", "--ckpt", model, *ARGS, "--shard", f"{i}/2", "--out", tmp_path / f"shard{i}")
        assert code == 0, err
    shard0 = json.loads((tmp_path / "shard0" / "manifest.json").read_text())
    assert shard0["config"]["shard"] == {"index": 0, "count": 2, "first": 0, "stop": 16}
    assert shard0["metrics"]["samples"] == 16 and (tmp_path / "shard1" / "samples" / "sample_0039.tif").is_file()

    code, _, err = cli(
        "sample", "--merge", tmp_path / "shard1", "--merge", tmp_path / "shard0", "--out", tmp_path / "m"
    )
    assert code == 0, err
    whole, merged = outputs(tmp_path / "whole"), outputs(tmp_path / "m")
    assert len(whole) == 1 + N + N + 1  # samples.h5, N tifs, N previews, grid.png
    assert merged == whole  # every file, byte for byte
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("whole", "m")]
    assert manifests[0]["config"] == manifests[1]["config"] and manifests[0]["metrics"] == manifests[1]["metrics"]
    # The merged artifact is the run itself: sampling again into it is "up to date".
    assert cli("sample", "--ckpt", model, *ARGS, "--out", tmp_path / "m")[0] == 0
    assert outputs(tmp_path / "m") == whole


def test_joint_shards_merge_with_class_shares(micro_models, tmp_path):
    from stages import sampling

    cfg = sampling.SampleConfig(n=20, sampler="ddim", steps=3, seed=1, batch_size=8)
    whole = sampling.run(micro_models["joint"], tmp_path / "whole", cfg, device="cpu")
    shards = [
        sampling.run(micro_models["joint"], tmp_path / f"s{i}", cfg, device="cpu", shard=f"{i}/2") for i in (0, 1)
    ]
    merged = sampling.merge([s.path for s in shards], tmp_path / "m")
    assert outputs(merged.path) == outputs(whole.path)
    assert merged.metrics["class_share"] == whole.metrics["class_share"]
    assert abs(sum(whole.metrics["class_share"]["generated"].values()) - 1) < 1e-9


def test_bad_shards_are_refused(micro_models, cli, tmp_path):
    model = micro_models["abundance"]
    code, _, err = cli("sample", "--ckpt", model, *ARGS, "--shard", "2/2", "--out", tmp_path / "x")
    assert code == 1 and "--shard '2/2'" in err and "0 <= I < N" in err
    code, _, err = cli("sample", "--ckpt", model, *ARGS, "--shard", "0/4", "--out", tmp_path / "x")
    assert code == 1 and "too few for 4 shards" in err and not (tmp_path / "x").exists()
    assert cli("sample", "--ckpt", model, *ARGS, "--shard", "0/2", "--out", tmp_path / "a")[0] == 0
    code, _, err = cli("sample", "--merge", tmp_path / "a", "--out", tmp_path / "m")
    assert code == 1 and "each of the 2 shards exactly once" in err and "missing 1" in err
    assert cli("sample", "--ckpt", model, *ARGS, "--shard", "1/2", "--out", tmp_path / "b")[0] == 0
    tif = tmp_path / "b" / "samples" / "sample_0020.tif"
    os.chmod(tif, 0o644)
    data = bytearray(tif.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    tif.write_bytes(bytes(data))
    code, _, err = cli("sample", "--merge", tmp_path / "a", "--merge", tmp_path / "b", "--out", tmp_path / "m")
    assert code == 1 and "samples/sample_0020.tif does not match the hash" in err
    assert not (tmp_path / "m").exists()
    code, _, err = cli("sample", "--out", tmp_path / "m")
    assert code == 2 and "--ckpt" in err


def test_killed_run_resumes_keeping_finished_samples(micro_models, tmp_path, monkeypatch):
    from stages import sampling
    from stages.sampling import generation, stage

    model, out = micro_models["abundance"], tmp_path / "run"
    cfg = dict(n=64, sampler="ddpm", steps=60, seed=5, batch_size=8)  # four parts, slow enough to kill
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from stages import sampling; "
            f"sampling.run(sys.argv[1], sys.argv[2], sampling.SampleConfig(**{cfg!r}), device='cpu')",
            str(model),
            str(out),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parts = stage.work_dir(out) / "parts"
    deadline = time.monotonic() + 120
    while not list(parts.glob("part_*.h5")) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    kept = {p.name for p in parts.glob("part_*.h5")}
    assert 1 <= len(kept) < 4 and not out.exists()

    made = []
    real = generation.generate_rows
    monkeypatch.setattr(stage, "generate_rows", lambda *a, **k: made.append(a[3]) or real(*a, **k))
    resumed = sampling.run(model, out, sampling.SampleConfig(**cfg), device="cpu")
    assert [r.start for r in made] == [first for first in (0, 16, 32, 48) if f"part_{first:08d}.h5" not in kept]
    assert not stage.work_dir(out).exists()
    monkeypatch.setattr(stage, "generate_rows", real)
    uninterrupted = sampling.run(model, tmp_path / "once", sampling.SampleConfig(**cfg), device="cpu")
    assert outputs(resumed.path) == outputs(uninterrupted.path)
