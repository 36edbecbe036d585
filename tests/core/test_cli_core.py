"""CLI conventions (DESIGN.md §4): version, help, exit codes, --config, inspect."""

import json

from stages import __version__


def test_version_and_help(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"hsigen {__version__}"
    code, out, _ = cli("--help")
    assert code == 0 and "ingest" in out and "inspect" in out


def test_usage_error_is_exit_2(cli):
    code, _, err = cli("ingest", "--no-such-option")
    assert code == 2 and "No such option" in err


def test_user_error_is_exit_1_without_traceback(cli, tmp_path):
    code, out, err = cli("inspect", tmp_path / "missing")
    assert code == 1 and out == ""
    assert "does not exist" in err and "Traceback" not in err


def test_inspect_prints_the_manifest(cli, ip_dataset):
    code, out, _ = cli("inspect", ip_dataset, "--json")
    assert code == 0
    manifest = json.loads(out)
    assert manifest["kind"] == "hsi-dataset" and manifest["spectral"]["band_count"] == 48
    code, out, _ = cli("inspect", ip_dataset, "--verify")
    assert code == 0 and "every output matches" in out


def test_config_file_supplies_options_and_command_line_wins(cli, tmp_path):
    cfg = tmp_path / "ingest.yaml"
    cfg.write_text("example: indian-pines\nsize: 40\nstride: 40\nbands: 12\n")
    code, out, err = cli("ingest", "--config", cfg, "--size", "48", "--out", tmp_path / "ds", "-q")
    assert code == 0, err
    _, out, _ = cli("inspect", tmp_path / "ds", "--json")
    m = json.loads(out)
    assert m["config"]["size"] == 48 and m["config"]["stride"] == 40 and m["spectral"]["band_count"] == 12


def test_config_file_with_unknown_key_names_it(cli, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("sise: 40\n")
    code, _, err = cli("ingest", "--config", cfg, "--out", tmp_path / "ds")
    assert code == 1 and "'sise' is not an option" in err
    assert not (tmp_path / "ds").exists()
