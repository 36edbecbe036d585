"""A build killed halfway leaves no artifact at ``--out``; a folder without a manifest is
never taken for one; a later run builds it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ingest_helpers import entries, smooth_scene

from stages.artifacts import open_artifact
from stages.common.errors import ArtifactError

ROOT = Path(__file__).resolve().parents[2]

# Runs the real CLI in a child process; the patch step announces itself (a marker file) and
# then waits, so the parent can kill the build at a known point: cube.tif written, no manifest.
CHILD = """
import signal, sys, time
# A job started in the background by a non-interactive shell inherits SIGINT ignored; restore
# Python's handler so Ctrl-C behaves as in a terminal however the test run was launched.
signal.signal(signal.SIGINT, signal.default_int_handler)
from pathlib import Path
from stages.ingest import stage as pipeline
marker = Path(sys.argv[1])
real = pipeline.write_patches
def slow(*args, **kwargs):
    marker.write_text("cube written")
    time.sleep(60)
    return real(*args, **kwargs)
pipeline.write_patches = slow
sys.argv = ["hsigen"] + sys.argv[2:]
from hsigen_cli.app import main
main()
"""


def _start(tmp_path, out):
    src = tmp_path / "scene.npy"
    np.save(src, smooth_scene(np.random.default_rng(0), 40, 40, 10, 0, 1))
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(marker),
            "ingest",
            str(src),
            "--wavelengths",
            "380:1020:10",
            "--size",
            "16",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120  # the child imports torch first: slow on a loaded machine
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the child never reached the patch step"
        time.sleep(0.05)
    return proc, src


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_build_leaves_no_artifact(tmp_path, cli, sig):
    work = tmp_path / "work"
    work.mkdir()
    out = work / "ds"
    proc, src = _start(tmp_path, out)
    building = [p for p in work.iterdir() if p.name.startswith(".hsigen-tmp-ds-")]
    assert len(building) == 1 and (building[0] / "cube.tif").is_file()
    os.kill(proc.pid, sig)
    proc.communicate(timeout=30)
    assert not out.exists()
    leftovers = [p for p in work.iterdir() if p.name.startswith(".hsigen-tmp-")]
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and leftovers == []  # cleaned up on the way out
    else:
        # SIGKILL gives no chance to clean up: the half-built folder has no manifest and is refused.
        assert len(leftovers) == 1 and not (leftovers[0] / "manifest.json").exists()
        with pytest.raises(ArtifactError):
            open_artifact(leftovers[0])
        code, _, err = cli("inspect", leftovers[0])
        assert code == 1 and "manifest" in err
    code, _, err = cli("ingest", src, "--wavelengths", "380:1020:10", "--size", 16, "--out", out, "-q")
    assert code == 0, err
    assert open_artifact(out, "hsi-dataset").metrics["count"] == 4  # origins 0 and 24 per axis
    assert "ds" in entries(work)


def test_directory_without_manifest_is_not_an_artifact(tmp_path, cli):
    fake = tmp_path / "ds"
    fake.mkdir()
    (fake / "cube.tif").write_bytes(b"")
    (fake / "patches.h5").write_bytes(b"")
    with pytest.raises(ArtifactError, match="manifest"):
        open_artifact(fake)
    # ...and ingest will not overwrite a non-artifact folder even with --overwrite.
    src = tmp_path / "scene.npy"
    np.save(src, smooth_scene(np.random.default_rng(0), 20, 20, 10, 0, 1))
    code, _, err = cli("ingest", src, "--wavelengths", "380:1020:10", "--size", 16, "--out", fake, "--overwrite")
    assert code == 1 and "not an hsigen artifact" in err
    assert entries(fake) == {"cube.tif", "patches.h5"}
    assert not any(p.name.startswith(".hsigen-tmp-") for p in tmp_path.iterdir())


def test_manifest_is_written_last_and_lists_every_output(tmp_path, cli):
    src = tmp_path / "scene.npy"
    np.save(src, smooth_scene(np.random.default_rng(0), 20, 20, 10, 0, 1))
    code, _, err = cli("ingest", src, "--wavelengths", "380:1020:10", "--size", 16, "--out", tmp_path / "ds", "-q")
    assert code == 0, err
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert {o["path"] for o in manifest["outputs"]} == {"cube.tif", "patches.h5", "preview.png"}
    assert manifest["source"]["format"] == "npy" and manifest["config"]["wavelengths_source"] == "grid"
