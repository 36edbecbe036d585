"""The up-to-date key (inputs, config and hsigen's version, with the reason for a rerun) and
the lock that makes two writers of one --out take turns."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import stages
from stages.artifacts.store import ArtifactWriter, lock_path, target_lock

ROOT = Path(__file__).resolve().parents[2]
INGEST = ["ingest", "--example", "indian-pines", "--size", "32", "--stride", "32", "--bands", "12"]


def _hsigen(*args, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", "from hsigen_cli.app import main; main()", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        **popen,
    )


def _write(out: Path, config: dict) -> ArtifactWriter:
    writer = ArtifactWriter(out, "evaluation-report", "evaluate", config, [], overwrite=True)
    if not writer.up_to_date():
        with writer.building() as tmp:
            _report(tmp, config)
    return writer


def _report(folder: Path, config: dict) -> None:
    (folder / "report.json").write_text(json.dumps(config))
    (folder / "report.md").write_text("# report\n")


def test_a_new_hsigen_version_reruns_and_says_why(cli, tmp_path, monkeypatch):
    out = tmp_path / "ds"
    code, _, err = cli(*INGEST, "--out", out)
    assert code == 0, err
    first = json.loads((out / "manifest.json").read_text())
    code, _, err = cli(*INGEST, "--out", out)
    assert code == 0 and "ingest: up to date" in err and "rerunning" not in err
    assert json.loads((out / "manifest.json").read_text()) == first  # untouched

    monkeypatch.setattr(stages, "__version__", "0.2.0")
    code, _, err = cli(*INGEST, "--out", out)
    assert code == 1 and "already exists; pass --overwrite" in err and "(not up to date: hsigen 0.1.0 → 0.2.0)" in err
    assert "rerunning" not in err
    code, _, err = cli(*INGEST, "--out", out, "--overwrite")
    assert code == 0 and "ingest: rerunning, hsigen 0.1.0 → 0.2.0" in err and "up to date" not in err
    again = json.loads((out / "manifest.json").read_text())
    assert again["hsigen_version"] == "0.2.0" and again["created"] >= first["created"]
    code, _, err = cli(*INGEST, "--out", out)
    assert code == 0 and "ingest: up to date" in err


def test_changed_inputs_and_config_are_named(cli, tmp_path):
    dataset, unmixed = tmp_path / "ds", tmp_path / "um"
    assert cli(*INGEST, "--out", dataset)[0] == 0
    assert cli("unmix", dataset, "-k", "3", "--out", unmixed)[0] == 0
    code, _, err = cli("unmix", dataset, "-k", "4", "--out", unmixed, "--overwrite")
    assert code == 0 and "unmix: rerunning, config changed: endmembers" in err
    assert cli(*INGEST, "--stride", "16", "--out", dataset, "--overwrite")[0] == 0
    code, _, err = cli("unmix", dataset, "-k", "4", "--out", unmixed, "--overwrite")
    assert code == 0 and "unmix: rerunning, inputs changed: dataset" in err


def test_the_lock_file_sits_beside_the_target_only_while_it_is_held(tmp_path):
    out = tmp_path / "a" / "r"
    with target_lock(out):
        assert lock_path(out) == tmp_path / "a" / ".r.lock" and lock_path(out).exists()
        with target_lock(out):  # nested in one process: the same lock
            _write(out, {"x": 1})
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["r"]
    with target_lock(tmp_path / "b" / "c" / "r"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # folders made for the lock go again


def test_a_second_writer_waits_for_the_lock_holder(tmp_path):
    out = tmp_path / "ds"
    with target_lock(out):
        proc = _hsigen(*INGEST, "--out", out)
        # an unhindered ingest this size takes about 3 s (start-up included), 5 s beside other jobs
        time.sleep(5)
        assert proc.poll() is None and not out.exists()
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "waiting: another hsigen process is writing" in stderr and stdout.strip() == str(out)
    assert (out / "manifest.json").is_file()


def test_two_concurrent_writers_make_one_artifact(tmp_path):
    out = tmp_path / "ds"
    procs = [_hsigen(*INGEST, "--out", out) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes[0] == 0, results
    waited = [err for code, _, err in results if code == 0 and "ingest: up to date" in err]
    # exactly one wrote it; the other waited and found it up to date (or failed): never two writes
    assert len(waited) == 1 or codes[1] != 0, results
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no build folder, no lock file
    created = json.loads((out / "manifest.json").read_text())["created"]
    assert created and (out / "patches.h5").is_file()


@pytest.mark.parametrize("other_config, replaced", [({"x": 1}, False), ({"x": 2}, True)])
def test_a_writer_finding_the_target_written_meanwhile_never_replaces_it_silently(tmp_path, other_config, replaced):
    out = tmp_path / "r"
    writer = ArtifactWriter(out, "evaluation-report", "evaluate", {"x": 1}, [])
    assert not writer.up_to_date()
    writer.check_destination()
    _write(out, other_config)  # another writer finishes first
    before = (out / "manifest.json").read_text()
    if replaced:
        with pytest.raises(stages.common.errors.OutputExistsError, match="another process wrote"):
            with writer.building() as tmp:
                _report(tmp, {})
    else:
        with writer.building() as tmp:
            _report(tmp, {})
        assert writer.artifact.path == out
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
