"""The UNet widths of train-diffusion: a full-resolution level narrower than the input channels
(the fault that capped the latent and joint models' precision, docs/pretrained.md) warns and trains
anyway; widths the UNet cannot run (GroupNorm groups, attention heads) are refused before anything
is written."""

from __future__ import annotations

import pytest
import yaml

ARGS = ("train-diffusion", "--space", "abundance", "--steps", "1", "--batch-size", "2")


def test_a_unet_narrower_than_its_input_warns_and_a_wide_one_does_not(cli, ip_unmixing, tmp_path):
    narrow = tmp_path / "narrow.yaml"
    unet = {"block_out_channels": [4, 8, 8], "norm_num_groups": 4, "attention_head_dim": 8}
    narrow.write_text(yaml.safe_dump({"unet": unet}))
    code, _, err = cli(*ARGS, "--unmixing", ip_unmixing, "--model-config", narrow, "--out", tmp_path / "narrow")
    assert code == 0, err
    assert "full-resolution level is 4 channels wide for 5 input channels" in err
    assert "unet.block_out_channels[0] to at least 5" in err
    assert (tmp_path / "narrow" / "manifest.json").is_file()
    code, _, err = cli(*ARGS, "--unmixing", ip_unmixing, "--out", tmp_path / "wide")  # tiny: 32 wide for 5
    assert code == 0, err
    assert "full-resolution level" not in err


@pytest.mark.parametrize(
    "unet, message",
    [
        (
            {"block_out_channels": [4, 8, 8], "norm_num_groups": 4},  # the preset's 16-channel heads
            "an attention level 8 wide is narrower than unet.attention_head_dim 16",
        ),
        ({"block_out_channels": [12, 64, 64]}, "12 is not a multiple of unet.norm_num_groups 8"),
    ],
)
def test_unet_widths_it_cannot_run_exit_1_and_write_nothing(cli, ip_unmixing, tmp_path, unet, message):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"unet": unet}))
    code, _, err = cli(*ARGS, "--unmixing", ip_unmixing, "--model-config", config, "--out", tmp_path / "m")
    assert code == 1, err
    assert message in err and "internal error" not in err
    assert not (tmp_path / "m").exists()
