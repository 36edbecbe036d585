"""Typed presets: every table resolves to exactly the configuration (and so the same model,
parameter for parameter, for a seed) it had as nested dicts, and --model-config overrides any
field of it, refusing unknown keys and wrong types by name."""

import json
from pathlib import Path

import pytest
import torch

from stages.common.errors import ConfigError
from stages.training import resolve_preset

# Every preset as resolve_preset returns it: recorded when presets were typed (hsigen 0.1.0, nested dicts) and
# rewritten only for a deliberate preset change, each named in the preset's comment (issue 14: the gradient_weight and linear_path fields, the tiny kl and joint sizes;
# issue 16: the autoencoder/hsigene-kl presets added, every other entry unchanged; issue 14 again: linear_block,
# standardise_latents and snr_gamma fields, the kl tiny block path with 48 channels, x0-prediction for the latent tiny preset;
# then the two-stream tiny image branch as kl's: f = 2, 48 channels, block path, the mask branch at f = 2;
# then the abundance presets' z_scaling field, standard for tiny; then the latent presets' sigma_data field, null in all, and the latent tiny UNet's first level 96 wide).
RESOLVED = json.loads((Path(__file__).parent / "data" / "resolved_presets.json").read_text())


def _tables():
    from stages.autoencoder.config import PRESETS as AE
    from stages.diffusion import get_space
    from stages.evaluate.classifier import PRESETS as CLASSIFIER
    from stages.unmix import SCENE_NET_PRESETS
    from stages.upsample.train_dsr import PRESETS as DSR
    from stages.upsample.train_rgan import PRESETS as RGAN

    tables = {f"autoencoder/{kind}": table for kind, table in AE.items()}
    tables |= {f"diffusion/{space}": get_space(space).PRESETS for space in ("abundance", "latent", "joint")}
    return tables | {"scene-net": SCENE_NET_PRESETS, "classifier": CLASSIFIER, "rgan": RGAN, "dsr": DSR}


def test_every_preset_resolves_as_before():
    resolved = {
        f"{family}/{name}": resolve_preset(table, name) for family, table in _tables().items() for name in table
    }
    assert resolved.keys() == RESOLVED.keys() and len(resolved) == 24
    for key, before in RESOLVED.items():
        assert resolved[key] == before, key


def _fingerprint(model) -> list:
    return [
        sum(p.numel() for p in model.parameters()),
        round(float(sum(p.detach().double().abs().sum() for p in model.parameters())), 6),
    ]


def test_tiny_presets_build_the_same_models_for_a_seed():
    """Parameter count and the sum of |weights| after torch.manual_seed(0), measured with the
    dict presets of hsigen 0.1.0."""
    from stages.autoencoder.config import PRESETS as AE
    from stages.autoencoder.io import model_class
    from stages.diffusion import get_space
    from stages.diffusion.control import ControlledDenoiser
    from stages.diffusion.model import build_unet
    from stages.evaluate.classifier import PRESETS as CLASSIFIER
    from stages.evaluate.classifier import build_model
    from stages.unmix import SCENE_NET_PRESETS
    from stages.unmix.scene_net import build_scene_net
    from stages.upsample import train_rgan as rgan
    from stages.upsample.rgan import build_rgan

    def tiny(table):
        return resolve_preset(table, "tiny")

    builders = {
        "abundance-unet": lambda: build_unet(tiny(get_space("abundance").PRESETS)["unet"], 5, 16),
        "joint-unet": lambda: build_unet(tiny(get_space("joint").PRESETS)["unet"], 12, 8),
        "latent-denoiser": lambda: ControlledDenoiser.build(
            tiny(get_space("latent").PRESETS), 4, 8, 4, {"content": 64, "text": 4}, False
        ),
        "kl-vae": lambda: model_class("kl")(48, tiny(AE["kl"]), 0.0, band_stats=None),
        "scene-net": lambda: build_scene_net(tiny(SCENE_NET_PRESETS)["channels"], 5, 48),
        "rgan": lambda: build_rgan(48, {k: tiny(rgan.PRESETS)[k] for k in rgan.ARCH_KEYS}),
        "classifier": lambda: build_model(48, 17, tiny(CLASSIFIER)["channels"], tiny(CLASSIFIER)["kernel"]),
    }
    measured = {
        "abundance-unet": [1115109, 30288.467929],
        # issue 14: [80, 64], the full-resolution level wider than the 52 latent channels (was [32, 64]: 707692,
        # 21288.626345; before that [48, 96]: 1583004, 38470.724006)
        "joint-unet": [1448860, 35460.584972],
        # issue 14: the full-resolution level 96 wide (was 32: 1266004, 48832.439022), then 128 (96: 2893908,
        # 78772.999315)
        "latent-denoiser": [4202452, 97444.678449],
        # issue 14: f = 2 × 16 (was 980532, 24631.783012), then f = 2 × 48 with the block linear path (was 706336, 18677.112264)
        "kl-vae": [790560, 20907.255063],
        "scene-net": [45987, 1843.006055],
        "rgan": [76176, 4213.529916],
        "classifier": [10641, 506.520765],
    }
    for name, build in builders.items():
        torch.manual_seed(0)
        assert _fingerprint(build()) == measured[name], name


def test_model_config_overrides_nested_fields_and_the_command_line_wins():
    from stages.diffusion import get_space

    table = get_space("latent").PRESETS
    got = resolve_preset(
        table,
        "tiny",
        {"lr": 1e-3},
        {"unet": {"block_out_channels": [16, 32, 32]}, "lr": 5e-4, "schedule": {"beta_end": 0.02}},
    )
    assert got["unet"]["block_out_channels"] == [16, 32, 32]
    assert got["unet"]["layers_per_block"] == RESOLVED["diffusion/latent/tiny"]["unet"]["layers_per_block"]
    assert got["schedule"]["beta_end"] == 0.02 and got["schedule"]["num_train_timesteps"] == 1000
    assert got["lr"] == 1e-3  # the option beats the file
    assert table["tiny"].unet.block_out_channels == [128, 48, 48]  # the table is untouched


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"latent_chanels": 8},
            "unknown key 'latent_chanels' (did you mean 'latent_channels'?); valid keys: "
            "block_out_channels, layers_per_block, latent_channels,",
        ),
        ({"latent_channels": "8"}, "latent_channels must be int, not '8'"),
        ({"band_standardise": 1}, "band_standardise must be bool, not 1"),
        ({"block_out_channels": [32, 64.5]}, "block_out_channels[1] must be int, not 64.5"),
        ({"block_out_channels": 32}, "block_out_channels must be a list, not 32"),
    ],
)
def test_model_config_refuses_unknown_keys_and_wrong_types(change, message):
    from stages.autoencoder.config import PRESETS

    with pytest.raises(ConfigError) as info:
        resolve_preset(PRESETS["kl"], "tiny", model_config=change, source="--model-config m.yaml")
    assert str(info.value).startswith("--model-config m.yaml: ") and message in str(info.value)


def test_unknown_keys_of_a_nested_section_name_the_section():
    from stages.diffusion import get_space

    with pytest.raises(ConfigError) as info:
        resolve_preset(get_space("abundance").PRESETS, "tiny", model_config={"unet": {"layers": 2}})
    assert (
        "unknown key 'unet.layers'; valid keys of unet: block_out_channels, layers_per_block, "
        "down_block_types, up_block_types, norm_num_groups, attention_head_dim"
    ) in str(info.value)
    with pytest.raises(ConfigError, match="unet must be a mapping"):
        resolve_preset(get_space("abundance").PRESETS, "tiny", model_config={"unet": 3})


def test_cli_model_config_changes_the_model_and_is_recorded(cli, ip_dataset, tmp_path):
    config = tmp_path / "ae.yaml"
    config.write_text("latent_channels: 8\nblock_out_channels: [16, 32, 32]\nkl_weight: 1.0e-4\n")
    code, out, err = cli("train-ae", ip_dataset, "--kind", "kl", "--model-config", config, "--dry-run")
    assert code == 0, err
    report = json.loads(out)
    # the tiny preset has 790,560; 259,048 of these 271,392 are the VAE, the rest its block linear path
    assert report["latent_channels"] == 8 and report["total"] == 271_392 != 790_560

    net = tmp_path / "net.yaml"
    net.write_text("channels: [3, 8, 8]\nlr: 0.01\n")
    code, _, err = cli(
        "unmix", ip_dataset, "--method", "scene-net", "--model-config", net, "--steps", "2", "--out", tmp_path / "um"
    )
    assert code == 0, err
    recorded = json.loads((tmp_path / "um" / "manifest.json").read_text())["config"]["scene_net"]
    assert recorded["channels"] == [3, 8, 8] and recorded["lr"] == 0.01 and recorded["steps"] == 2
    assert recorded["batch_size"] == 8 and recorded["preset"] == "tiny"  # the rest is the preset's


def test_cli_model_config_with_a_misspelt_key_exits_1_naming_the_valid_keys(cli, tmp_path):
    config = tmp_path / "m.yaml"
    config.write_text("unet:\n  block_out_chanels: [16, 32, 32]\n")
    code, out, err = cli("train-diffusion", "--space", "latent", "--model-config", config, "--dry-run")
    assert code == 1 and out == ""
    assert (
        f"--model-config {config}: unknown key 'unet.block_out_chanels' (did you mean 'block_out_channels'?); "
        "valid keys of unet: block_out_channels, layers_per_block, down_block_types, up_block_types, "
        "norm_num_groups, attention_head_dim"
    ) in " ".join(err.split())
    config.write_text("- lr\n")
    code, _, err = cli("train-diffusion", "--space", "latent", "--model-config", config, "--dry-run")
    assert code == 1 and "must be a mapping of preset fields" in err
    code, _, err = cli("train-diffusion", "--model-config", tmp_path / "none.yaml", "--dry-run")
    assert code == 1 and "does not exist" in err
    code, _, err = cli("unmix", tmp_path, "--model-config", config, "--out", tmp_path / "o")
    assert code == 1 and "--model-config is for --method scene-net" in err


def test_cli_latent_unet_widths_groupnorm_cannot_split_exit_1(cli, tmp_path):
    config = tmp_path / "m.yaml"
    config.write_text("unet:\n  block_out_channels: [12, 48, 48]\n")  # the tiny preset's 8 groups
    code, out, err = cli("train-diffusion", "--space", "latent", "--model-config", config, "--dry-run")
    assert code == 1 and out == ""
    assert "12 is not a multiple of unet.norm_num_groups 8" in err and "internal error" not in err
