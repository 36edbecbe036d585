"""Artifact contract (DESIGN.md §2): atomic writes, hashes, overwrite rules, refusal of
unknown kinds, newer versions and paths outside the artifact."""

import hashlib
import json

import pytest

from stages.artifacts import ArtifactWriter, input_record, open_artifact
from stages.common.errors import ArtifactError, OutputExistsError


def _write(out, config=None, inputs=(), overwrite=False, fail=False):
    writer = ArtifactWriter(out, "evaluation-report", "evaluate", config or {"a": 1}, list(inputs), overwrite=overwrite)
    if writer.up_to_date():
        return writer, True
    with writer.building() as tmp:
        (tmp / "report.json").write_text('{"x": 1}')
        (tmp / "report.md").write_text("# report\n")
        (tmp / "figs").mkdir()
        (tmp / "figs" / "a.png").write_bytes(b"\x89PNG")
        if fail:
            raise RuntimeError("killed mid-write")
    return writer, False


def test_manifest_records_sorted_outputs_with_sha256(tmp_path):
    writer, _ = _write(tmp_path / "r")
    m = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert [o["path"] for o in m["outputs"]] == ["figs/a.png", "report.json", "report.md"]
    assert m["outputs"][1]["sha256"] == hashlib.sha256(b'{"x": 1}').hexdigest()
    assert m["outputs"][1]["bytes"] == 8
    assert m["kind"] == "evaluation-report" and m["schema_version"] == 1
    assert m["created"].endswith("Z")


def test_failure_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        _write(tmp_path / "r", fail=True)
    assert list(tmp_path.iterdir()) == []


def test_failure_during_overwrite_keeps_the_old_artifact(tmp_path):
    _write(tmp_path / "r")
    before = (tmp_path / "r" / "manifest.json").read_text()
    with pytest.raises(RuntimeError):
        _write(tmp_path / "r", config={"a": 2}, overwrite=True, fail=True)
    assert (tmp_path / "r" / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_directory_without_manifest_is_not_an_artifact(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "report.json").write_text("{}")
    with pytest.raises(ArtifactError, match="no manifest.json"):
        open_artifact(tmp_path / "half")


def test_existing_output_needs_overwrite_and_same_inputs_are_up_to_date(tmp_path):
    _, skipped = _write(tmp_path / "r")
    assert not skipped
    _, skipped = _write(tmp_path / "r")
    assert skipped  # same config, same inputs: no work
    with pytest.raises(OutputExistsError, match="--overwrite"):
        _write(tmp_path / "r", config={"a": 2})
    _, skipped = _write(tmp_path / "r", config={"a": 2}, overwrite=True)
    assert not skipped
    assert open_artifact(tmp_path / "r").config == {"a": 2}


def test_changed_input_hash_is_not_up_to_date(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("one")
    _write(tmp_path / "r", inputs=[input_record(src)])
    src.write_text("two")
    with pytest.raises(OutputExistsError):
        _write(tmp_path / "r", inputs=[input_record(src)])


def test_overwrite_never_deletes_a_foreign_directory(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("precious")
    with pytest.raises(OutputExistsError, match="not an hsigen artifact"):
        _write(home, overwrite=True)
    assert (home / "thesis.tex").read_text() == "precious"


def _tamper(path, **changes):
    m = json.loads((path / "manifest.json").read_text())
    m.update(changes)
    (path / "manifest.json").write_text(json.dumps(m))
    return m


def test_unknown_kind_and_newer_version_are_refused(tmp_path):
    _write(tmp_path / "r")
    _tamper(tmp_path / "r", kind="hologram")
    with pytest.raises(ArtifactError, match="unknown kind 'hologram'"):
        open_artifact(tmp_path / "r")
    _tamper(tmp_path / "r", kind="evaluation-report", schema_version=7, hsigen_version="9.0.0")
    with pytest.raises(ArtifactError, match="needs hsigen 9.0.0"):
        open_artifact(tmp_path / "r")


def test_manifest_paths_outside_the_artifact_are_refused(tmp_path):
    _write(tmp_path / "r")
    m = json.loads((tmp_path / "r" / "manifest.json").read_text())
    m["outputs"].append({"path": "../../etc/passwd", "sha256": "0" * 64, "bytes": 1})
    (tmp_path / "r" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError):
        open_artifact(tmp_path / "r")


def test_wrong_kind_is_named(tmp_path):
    _write(tmp_path / "r")
    with pytest.raises(ArtifactError, match="is a evaluation-report artifact; this needs hsi-dataset"):
        open_artifact(tmp_path / "r", "hsi-dataset")


def test_changed_output_is_caught(tmp_path):
    _write(tmp_path / "r")
    (tmp_path / "r" / "report.md").write_text("# edited by hand, same? no, longer\n")
    with pytest.raises(ArtifactError, match="changed size"):
        open_artifact(tmp_path / "r")
