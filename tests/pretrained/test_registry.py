"""``pretrained:NAME``: installing an artifact as a shipped model, resolving it wherever a stage
opens an artifact, and refusing a modified, incomplete or padded copy (every file is checked
against index.json). Uses a small artifact the test writes itself, in a private models folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stages import pretrained
from stages.artifacts.store import ArtifactWriter, input_record, open_artifact, spectral_block
from stages.common.errors import ArtifactError
from stages.pretrained.install import install


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    target = tmp_path / "models"
    monkeypatch.setattr(pretrained, "MODELS_DIR", target)
    monkeypatch.setattr(pretrained, "_VERIFIED", set())
    return target


def write_artifact(out, nested: bool = True):
    """A two-file artifact with a nested one inside it (as a latent model holds its autoencoder)."""
    writer = ArtifactWriter(out, "sr-model", "test", {"k": 3}, [])
    writer.spectral = spectral_block(np.linspace(400.0, 1000.0, 4), 1.0, 0.0)
    with writer.building() as tmp:
        np.savetxt(tmp / "endmembers.csv", np.arange(12.0).reshape(3, 4), delimiter=",")
        (tmp / "notes.json").write_text(json.dumps({"a": 1}))
        if nested:
            (tmp / "inner").mkdir()
            (tmp / "inner" / "weights.safetensors").write_bytes(b"\x00" * 64)
    return out


def test_install_resolve_and_record_by_name(tmp_path, models_dir, cli):
    src = write_artifact(tmp_path / "trained")
    path = install("toy", src, "a toy model", {"command": "hsigen test", "seed": 0, "metrics": {"spr": 0.5}})
    assert path == models_dir / "toy"
    index = json.loads((models_dir / "index.json").read_text())["models"]["toy"]
    assert set(index["files"]) == {"manifest.json", "endmembers.csv", "notes.json", "inner/weights.safetensors"}
    art = open_artifact("pretrained:toy", "sr-model")
    assert art.path == models_dir / "toy" and art.config == {"k": 3}
    record = input_record("pretrained:toy")
    assert record["path"] == "pretrained:toy" and record["kind"] == "sr-model"
    assert input_record(models_dir / "toy")["path"] == "pretrained:toy"  # the installed dir, by name too
    code, out, err = cli("inspect", "pretrained:toy")
    assert code == 0, err
    assert "sr-model v" in out and "read-only" in out
    code, out, err = cli("pretrained", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["toy"] and rows[0]["provenance"]["metrics"] == {"spr": 0.5}
    code, out, err = cli("pretrained", "--verify")
    assert code == 0 and "pretrained:toy" in out and "every file matches" in out


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "inner" / "weights.safetensors").write_bytes(b"\x01" * 64), "was modified: inner/weights"),
        (lambda d: (d / "notes.json").unlink(), "is incomplete: notes.json is missing"),
        (lambda d: (d / "extra.pt").write_bytes(b"x"), "files it was not shipped with (extra.pt)"),
    ],
)
def test_a_changed_pretrained_model_is_refused(tmp_path, models_dir, cli, damage, message):
    install("toy", write_artifact(tmp_path / "trained"), "a toy model", {})
    damage(models_dir / "toy")
    with pytest.raises(ArtifactError, match="reinstall hsigen"):
        open_artifact("pretrained:toy")
    code, out, err = cli("inspect", "pretrained:toy")
    assert code == 1 and message in err and "make pretrained" in err


def test_unknown_name_lists_the_installed_ones(tmp_path, models_dir, cli):
    install("toy", write_artifact(tmp_path / "trained"), "a toy model", {})
    code, out, err = cli("inspect", "pretrained:nope")
    assert code == 1 and "no pretrained model 'nope'" in err and "toy" in err


def test_install_refuses_pickles_and_bad_names(tmp_path, models_dir):
    src = write_artifact(tmp_path / "trained")
    (src / "inner" / "model.pt").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="pickle-based files"):
        install("toy", src, "", {})
    with pytest.raises(ArtifactError, match="plain name"):
        install("../x", write_artifact(tmp_path / "other"), "", {})
    assert not (models_dir / "toy").exists()


def test_a_model_held_inside_another_ships_once_and_is_verified_with_its_holder(tmp_path, models_dir, cli):
    from stages.pretrained.install import install_held

    install("holder", write_artifact(tmp_path / "trained", nested=False), "holds inner", {"seed": 0})
    inner = models_dir / "holder" / "inner"
    write_artifact(inner, nested=False)  # an artifact inside the holder, as a latent model's autoencoder/
    install("holder", models_dir / "holder", "holds inner", {"seed": 0})  # re-hash with the nested artifact
    install_held("inner-model", "holder", "inner", "the held one", {"steps": 5})
    assert not (models_dir / "inner-model").exists()
    art = open_artifact("pretrained:inner-model", "sr-model")
    assert art.path == models_dir / "holder" / "inner"
    assert input_record(models_dir / "holder" / "inner")["path"] == "pretrained:inner-model"
    rows = {r["name"]: r for r in json.loads(cli("pretrained", "--json")[1])}
    assert rows["inner-model"]["bytes"] == 0 and rows["inner-model"]["provenance"] == {"steps": 5}
    pretrained._VERIFIED.clear()
    (inner / "notes.json").write_text("{}")  # changing the held model is changing its holder
    with pytest.raises(ArtifactError, match="pretrained:holder was modified: inner/notes.json"):
        open_artifact("pretrained:inner-model")


def test_float16_weights_are_stored_half_loaded_as_float32_and_verified(tmp_path, models_dir):
    """``install(..., float16=...)`` (the latent model's UNet and ControlNet): the copy's weights are float16,
    within float16 rounding of the trained ones, the copy's manifest and the index agree with them, and the
    trained artifact is left as it was."""
    import torch
    from safetensors.torch import load_file, save_file

    writer = ArtifactWriter(tmp_path / "trained", "sr-model", "test", {"k": 3}, [])
    writer.spectral = spectral_block(np.linspace(400.0, 1000.0, 4), 1.0, 0.0)
    weights = {"w": torch.randn(64, 8, generator=torch.Generator().manual_seed(0)), "steps": torch.tensor([7])}
    with writer.building() as tmp:
        save_file(weights, tmp / "net.safetensors")
    before = (tmp_path / "trained" / "net.safetensors").read_bytes()
    path = install("toy", tmp_path / "trained", "a toy model", {"seed": 0}, float16=("net.safetensors",))
    stored = load_file(path / "net.safetensors")
    assert stored["w"].dtype == torch.float16 and stored["steps"].dtype == torch.int64
    np.testing.assert_allclose(stored["w"].float().numpy(), weights["w"].numpy(), rtol=1e-3, atol=1e-4)
    assert (path / "net.safetensors").stat().st_size < 0.6 * len(before)
    assert open_artifact("pretrained:toy").verify() == []  # its manifest has the new hash
    assert json.loads((path / "provenance.json").read_text())["float16_weights"] == ["net.safetensors"]
    assert (tmp_path / "trained" / "net.safetensors").read_bytes() == before
    with pytest.raises(ArtifactError, match="notes.json is not a safetensors output"):
        install("toy2", tmp_path / "trained", "", {}, float16=("notes.json",))
    assert sorted(p.name for p in models_dir.iterdir()) == ["index.json", "toy"]  # nothing of toy2 left


def test_float16_weights_of_a_nested_artifact_update_both_manifests(tmp_path, models_dir):
    """A weight file of an artifact nested in the installed one (the joint model's autoencoder/mask_vae):
    the nested manifest records its new hash, and the holder's manifest the nested manifest's new hash."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    inner = ArtifactWriter(tmp_path / "inner", "sr-model", "test", {"k": 1}, [])
    inner.spectral = spectral_block(np.linspace(400.0, 1000.0, 4), 1.0, 0.0)
    with inner.building() as tmp:
        save_file({"w": torch.randn(32, 8, generator=torch.Generator().manual_seed(1))}, tmp / "net.safetensors")
    holder = ArtifactWriter(tmp_path / "holder", "sr-model", "test", {"k": 2}, [])
    holder.spectral = inner.spectral
    with holder.building() as tmp:
        shutil.copytree(tmp_path / "inner", tmp / "autoencoder")
    inner_manifest_before = (tmp_path / "holder" / "autoencoder" / "manifest.json").read_text()
    path = install("toy", tmp_path / "holder", "", {}, float16=("autoencoder/net.safetensors",))
    assert load_file(path / "autoencoder" / "net.safetensors")["w"].dtype == torch.float16
    assert open_artifact(path / "autoencoder").verify() == [] and open_artifact("pretrained:toy").verify() == []
    assert (path / "autoencoder" / "manifest.json").read_text() != inner_manifest_before
    assert (tmp_path / "holder" / "autoencoder" / "manifest.json").read_text() == inner_manifest_before
