"""CLI conventions: choices are usage errors (exit 2) listing the values, the shared options
are declared once and accepted after any command, and --help shows the module's examples."""

import pytest

from hsigen_cli import choices


@pytest.mark.parametrize(
    "args, flag, listed",
    [
        (("sample", "--ckpt", "m", "--out", "o", "--sampler", "foo"), "--sampler", "'ddim', 'ddpm', 'dpm'"),
        (("sample", "--ckpt", "m", "--out", "o", "--format", "png"), "--format", "'tif', 'envi', 'mat'"),
        (("train-diffusion", "--space", "pixel"), "--space", "'abundance', 'latent', 'joint'"),
        (("train-ae", "ds", "--kind", "vae"), "--kind", "'kl', 'vq-rgb', 'two-stream', 'hsigene-kl'"),
        (
            ("ingest", "--example", "indian-pines", "--out", "o", "--extrapolate", "nearest"),
            "--extrapolate",
            "'error', 'edge'",
        ),
        (("unmix", "ds", "--out", "o", "--method", "nmf"), "--method", "'vca', 'min-volume', 'scene-net'"),
        (("upsample", "run", "ds", "--out", "o", "--guide", "none"), "--guide", "'bicubic', 'zero', 'dsr'"),
        (("train-diffusion", "--preset", "huge", "--dry-run"), "--preset", "'tiny', 'paper'"),
        (("sample", "--ckpt", "m", "--out", "o", "--precision", "fp8"), "--precision", "'fp32', 'bf16', 'fp16'"),
        (("train-diffusion", "--architecture", "sd"), "--architecture", "'hsigene', 'controlnet'"),
        (("train-diffusion", "--train", "vae"), "--train", "'adapters', 'unet', 'all'"),
    ],
)
def test_a_bad_choice_is_a_usage_error_listing_the_choices(cli, tmp_path, args, flag, listed):
    code, out, err = cli(*args)
    assert code == 2 and out == ""
    assert f"Invalid value for '{flag}'" in err and listed in err


def test_choice_lists_match_what_the_stages_accept():
    from stages.autoencoder import KINDS
    from stages.diffusion import PREDICTION_TYPES, SAMPLERS, SPACES
    from stages.ingest import EXAMPLES
    from stages.unmix import METHODS
    from stages.unmix.abundances import ABUNDANCE_METHODS
    from stages.upsample.dsr import SAMPLERS as DSR_SAMPLERS
    from stages.upsample.guides import GUIDES
    from stages.upsample.stage import METHODS as UPSAMPLE_METHODS

    def values(enum):
        return {c.value for c in enum}

    assert values(choices.AutoencoderKind) == set(KINDS)
    assert values(choices.Space) == set(SPACES)
    assert values(choices.Prediction) == set(PREDICTION_TYPES)
    assert values(choices.Sampler) == set(SAMPLERS) == set(DSR_SAMPLERS)
    assert values(choices.Example) == set(EXAMPLES)
    assert values(choices.UnmixMethod) == set(METHODS)
    assert values(choices.AbundanceSolver) == set(ABUNDANCE_METHODS)
    assert values(choices.UpsampleMethod) == set(UPSAMPLE_METHODS)
    assert values(choices.Guide) == set(GUIDES) | {"dsr"}
    from stages.diffusion.spaces import ARCHITECTURES
    from stages.diffusion.stage import FINETUNE_ARCHITECTURES, LATENT_ARCHITECTURES
    from stages.hsigene.finetune import TRAINABLE
    from stages.hsigene.generator import DTYPES

    assert values(choices.Precision) == set(DTYPES)
    assert values(choices.Architecture) == set(LATENT_ARCHITECTURES)
    # hsigene has its own sampler and fine-tuning; controlnet is the latent space's own model
    assert set(ARCHITECTURES) == set(FINETUNE_ARCHITECTURES) == set(LATENT_ARCHITECTURES) - {"controlnet"}
    assert values(choices.TrainParts) == set(TRAINABLE)


def test_preset_choices_are_every_stage_preset_name():
    from stages.autoencoder import PRESETS as AE
    from stages.diffusion import get_space
    from stages.evaluate.classifier import PRESETS as CLASSIFIER
    from stages.unmix import SCENE_NET_PRESETS
    from stages.upsample.train_dsr import PRESETS as DSR
    from stages.upsample.train_rgan import PRESETS as RGAN

    names = set(SCENE_NET_PRESETS) | set(CLASSIFIER) | set(DSR) | set(RGAN)
    names |= {name for kind in AE.values() for name in kind}
    names |= {name for space in ("abundance", "latent", "joint") for name in get_space(space).PRESETS}
    assert {c.value for c in choices.Preset} == names


def test_shared_options_once_per_command_and_after_the_command(cli, tmp_path):
    from typer.main import get_command

    from hsigen_cli.app import app

    root = get_command(app)

    def leaves(group, path=()):
        for name, command in group.commands.items():
            if hasattr(command, "commands") and not command.invoke_without_command:
                yield from leaves(command, (*path, name))
            else:
                yield (*path, name), command

    found = dict(leaves(root))
    assert {("sample",), ("ingest",), ("unmix", "run"), ("upsample", "train-dsr"), ("evaluate",)} <= set(found)
    for name, command in found.items():
        opts = [o for p in command.params for o in p.opts]
        for flag in ("-v", "--verbose", "-q", "--quiet", "--config"):
            assert opts.count(flag) == 1, (name, flag)
    # -v after the command shows the traceback of a user error; before it, too
    for args in (("inspect", tmp_path / "missing", "-v"), ("-v", "inspect", tmp_path / "missing")):
        code, _, err = cli(*args)
        assert code == 1 and "does not exist" in err and "Traceback" in err
    code, _, err = cli("inspect", tmp_path / "missing", "-q")
    assert code == 1 and "does not exist" in err


def test_help_shows_the_module_examples_line_by_line(cli):
    code, out, _ = cli("sample", "--help")
    assert code == 0 and "Examples:" in out
    assert (
        "    hsigen sample --ckpt runs/ip-diff -n 4 --sampler ddpm --out runs/ip-ddpm     # ancestral, all steps\n"
        in out
    )
    code, out, _ = cli("unmix", "run", "--help")
    assert code == 0 and "hsigen unmix infer runs/ip-net photo1.png photo2.jpg --out runs/photos-abund" in out
