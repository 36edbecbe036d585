"""Exact resume with the streaming loader: a run killed mid-epoch and resumed reads the same
batches, in the same order, as an uninterrupted run, and ends with the same weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHILD = Path(__file__).with_name("resume_child.py")
ROOT = Path(__file__).resolve().parents[2]
STEPS = 12  # 21 training patches, batch 4: an epoch is 5.25 steps, so step 3 is mid-epoch


def _run(log, out, datasets, delay=0.0, resume=False, kill_after=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, str(CHILD), str(log), str(out), str(STEPS), str(delay)] + (["--resume"] if resume else [])
    proc = subprocess.Popen(args + ["--", *map(str, datasets)], env=env, start_new_session=True)
    if kill_after is None:
        assert proc.wait(timeout=300) == 0
        return
    deadline = time.time() + 300
    work = out.parent / f"{out.name}.work"
    # Kill once the checkpoint of step 2 exists and step 3 has started (mid-epoch), before step 4's.
    while time.time() < deadline:
        lines = log.read_text().split() if log.exists() else []
        if (work / "checkpoint" / "state.json").is_file() and len(lines) // 2 >= kill_after:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _steps(log):
    return [tuple(line.split()) for line in log.read_text().splitlines()]


def test_kill_mid_epoch_resume_reads_same_batches(sensors, tmp_path):
    from stages.training import load_weights

    datasets = [sensors["dn"], sensors["refl"]]
    _run(tmp_path / "full.log", tmp_path / "full", datasets)
    _run(tmp_path / "cut.log", tmp_path / "cut", datasets, delay=1.0, kill_after=4)
    killed = _steps(tmp_path / "cut.log")
    assert 4 <= len(killed) < STEPS and not (tmp_path / "cut.safetensors").exists()
    _run(tmp_path / "cut.log", tmp_path / "cut", datasets, resume=True)

    full, cut = _steps(tmp_path / "full.log"), _steps(tmp_path / "cut.log")
    assert [s for s, _ in full] == [str(i) for i in range(STEPS)]
    resumed = cut[len(killed) :]
    first = int(resumed[0][0])
    assert 0 < first < len(killed)  # restarted from the checkpoint, not from 0
    assert resumed == full[first:]  # the same batches from there on
    assert cut[: len(killed)] == full[: len(killed)]
    a, b = load_weights(tmp_path / "full.safetensors"), load_weights(tmp_path / "cut.safetensors")
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_batch_order_is_a_function_of_seed_and_step(sensors):
    """Loaders started at step 0 and at step 5 (with workers) give identical batches for steps ≥ 5;
    another seed gives other batches."""
    from stages.data import BatchPlan, open_corpus
    from stages.data.stream import StepBatches, loader

    corpus = open_corpus([sensors["dn"], sensors["refl"]])

    def batches(seed, first, workers):
        plan = BatchPlan([s.train_rows for s in corpus.sources], corpus.weights(), seed, 4, corpus.size, 8)
        return [b["hsi"].numpy() for b in loader(StepBatches(corpus, plan, 0, first, 9), "cpu", workers=workers)]

    whole, late = batches(0, 0, 0), batches(0, 5, 2)
    assert len(whole) == 9 and len(late) == 4
    assert all(np.array_equal(a, b) for a, b in zip(whole[5:], late))
    assert not np.array_equal(batches(1, 0, 0)[0], whole[0])
