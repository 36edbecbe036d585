"""``hsigen import hsigene``: a tiny-width checkpoint in the released format imports strictly;
broken or unsafe checkpoints are refused with nothing written."""

from __future__ import annotations

import json
import os

import torch


def test_import_writes_a_latent_hsigene_diffusion_model(tiny_import, released_state):
    from safetensors.torch import load_file

    from stages.artifacts import open_artifact
    from stages.hsigene.artifact import FILES

    art = open_artifact(tiny_import, "diffusion-model")
    assert art.config["space"] == "latent" and art.config["architecture"] == "hsigene"
    assert art.config["channels"] == 48 and art.config["sample_size"] == 32
    released = released_state()
    stored = {}
    for rel in FILES.values():
        stored.update(load_file(str(tiny_import / rel)))
    # Every released tensor comes back bit-identical under its released name (position_ids is
    # a transformers-4.x buffer rebuilt on load, not a weight).
    released.pop("cond_stage_model.transformer.text_model.embeddings.position_ids")
    assert set(stored) == set(released)
    assert all(torch.equal(stored[k], released[k]) for k in released)
    assert art.metrics["keys"] == len(released) + 1
    assert sum(art.metrics["parameters"].values()) == sum(v.numel() for k, v in released.items() if "." in k)


def test_cli_import_and_safetensors_input(cli, tmp_path, released_state):
    from safetensors.torch import save_file

    state = released_state()
    st = tmp_path / "hsigene.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    code, out, err = cli("import", "hsigene", st, "--model-config", "tiny", "--out", tmp_path / "m")
    assert code == 0, err
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["config"]["architecture"] == "hsigene"


def _refused(cli, tmp_path, state, *fragments):
    path = tmp_path / "bad.ckpt"
    torch.save({"state_dict": state}, path)
    code, _, err = cli("import", "hsigene", path, "--model-config", "tiny", "--out", tmp_path / "out")
    assert code == 1
    for fragment in fragments:
        assert fragment in err
    assert not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".hsigen-tmp") for p in tmp_path.iterdir())


def test_refuses_a_missing_key_and_names_it(cli, tmp_path, released_state):
    state = released_state()
    del state["local_adapter.input_blocks.4.0.norm_in.fdn.conv_beta.weight"]
    _refused(cli, tmp_path, state, "missing keys", "local_adapter.input_blocks.4.0.norm_in.fdn.conv_beta.weight")


def test_refuses_an_extra_key(cli, tmp_path, released_state):
    state = released_state()
    state["model_ema.decay"] = torch.tensor(0.999)
    _refused(cli, tmp_path, state, "unexpected keys", "model_ema.decay")


def test_refuses_a_shape_mismatch_of_another_width(cli, tmp_path, released_state):
    state = released_state()
    state["global_text_adapter.norm1.weight"] = torch.ones(64)
    _refused(cli, tmp_path, state, "shape mismatches", "global_text_adapter.norm1.weight")


class _Payload:
    """Unpickling this would run os.system and create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_refuses_a_pickle_with_code_and_executes_nothing(cli, tmp_path, released_state):
    marker = tmp_path / "pwned"
    state = released_state()
    state["evil"] = _Payload(marker)
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": state}, path)
    code, _, err = cli("import", "hsigene", path, "--model-config", "tiny", "--out", tmp_path / "out")
    assert code == 1
    assert "not tensors, containers or numbers" in err and "system" in err
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_refuses_a_missing_file_and_a_bad_clip_dir(cli, tmp_path, tiny_ckpt):
    code, _, err = cli("import", "hsigene", tmp_path / "nope.ckpt", "--out", tmp_path / "o")
    assert code == 1 and "does not exist" in err
    code, _, err = cli(
        "import",
        "hsigene",
        tiny_ckpt,
        "--model-config",
        "tiny",
        "--clip-model",
        tmp_path / "nodir",
        "--out",
        tmp_path / "o",
    )
    assert code == 1 and "--clip-model" in err and "nothing is downloaded" in err
    assert not (tmp_path / "o").exists()


def test_lightning_extras_are_never_constructed(tmp_path, released_state):
    """An object beside the state_dict (where Lightning keeps hyper-parameters) is replaced by an
    inert placeholder: the import proceeds, the payload never runs."""
    from stages.hsigene.checkpoint import read_state_dict

    marker = tmp_path / "pwned"
    path = tmp_path / "extras.ckpt"
    state = released_state()
    torch.save({"state_dict": state, "hyper_parameters": _Payload(marker)}, path)
    loaded = read_state_dict(path)
    assert set(loaded) == set(state)
    assert not marker.exists()
