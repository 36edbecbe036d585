"""Session fixtures of the condition tests: synthetic images with known structure, tiny
random-weight HED and CLIP models written locally, and one full CLI run on Indian Pines."""

from __future__ import annotations

import numpy as np
import pytest

ALL_KINDS = "hed,mlsd,sketch,seg,content,text"


@pytest.fixture
def rectangle():
    """64×64 black image with a filled grey rectangle rows 16..47, cols 20..43."""
    image = np.zeros((64, 64, 3), np.uint8)
    image[16:48, 20:44] = 200
    return image


def tiny_hed_state(seed: int = 0) -> dict:
    """A random HED state dict in the ControlNet annotator layout with small widths."""
    import torch

    g = torch.Generator().manual_seed(seed)
    widths, depths = [4, 6, 8, 8, 8], [2, 2, 3, 3, 3]
    state, c_in = {"norm": torch.rand(1, 3, 1, 1, generator=g) * 128}, 3
    for k, (w, d) in enumerate(zip(widths, depths), start=1):
        for j in range(d):
            state[f"block{k}.convs.{j}.weight"] = torch.randn(w, c_in if j == 0 else w, 3, 3, generator=g) * 0.05
            state[f"block{k}.convs.{j}.bias"] = torch.randn(w, generator=g) * 0.1
        state[f"block{k}.projection.weight"] = torch.randn(1, w, 1, 1, generator=g) * 0.3
        state[f"block{k}.projection.bias"] = torch.randn(1, generator=g) * 0.1
        c_in = w
    return state


@pytest.fixture(scope="session")
def hed_state() -> dict:
    return tiny_hed_state()


@pytest.fixture(scope="session")
def hed_weights(tmp_path_factory, hed_state):
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("hed") / "tiny_hed.safetensors"
    save_file(hed_state, str(path))
    return path


def random_state(network, seed: int) -> dict:
    """The network's state dict with every tensor redrawn from ``seed``: weights and biases
    ~ N(0, 0.1²), BatchNorm running variances in [0.5, 1.5] (eval-mode normalisation)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in network.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(100, dtype=value.dtype)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=g)
        else:
            state[key] = torch.randn(value.shape, generator=g) * 0.1
    return state


@pytest.fixture(scope="session")
def mlsd_state() -> dict:
    from stages.conditions.mlsd_net import build_mlsd

    return random_state(build_mlsd(), 1)


@pytest.fixture(scope="session")
def mlsd_weights(tmp_path_factory, mlsd_state):
    """Random M-LSD large weights saved like the annotator file: a plain .pth state dict."""
    import torch

    path = tmp_path_factory.mktemp("mlsd") / "mlsd_large_512_fp32.pth"
    torch.save(mlsd_state, path)
    return path


@pytest.fixture(scope="session")
def pidinet_state() -> dict:
    from stages.conditions.pidinet import build_pidinet

    return random_state(build_pidinet(), 2)


@pytest.fixture(scope="session")
def pidinet_weights(tmp_path_factory, pidinet_state):
    """Random PiDiNet weights saved like table5_pidinet.pth: {"state_dict": {"module.<name>": ...}}."""
    import torch

    path = tmp_path_factory.mktemp("pidinet") / "table5_pidinet.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in pidinet_state.items()}}, path)
    return path


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory):
    """A tiny random CLIPModel + tokenizer + image processor written with save_pretrained."""
    import torch
    import transformers
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    path = tmp_path_factory.mktemp("clip") / "tiny-clip"
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    vocab.update({c: 2 + i for i, c in enumerate(letters)})
    vocab.update({c + "</w>": 2 + len(letters) + i for i, c in enumerate(letters)})
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=32,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=8,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(str(path))
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(str(path))
    processor = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    processor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def ip_conditions(ip_dataset, tmp_path_factory):
    """All six kinds of the Indian Pines patches, offline backends, through the CLI."""
    from typer.testing import CliRunner

    from hsigen_cli.app import app

    out = tmp_path_factory.mktemp("conditions") / "ip"
    result = CliRunner().invoke(
        app, ["condition", str(ip_dataset), "--kinds", ALL_KINDS, "--text", "farmland", "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The tiny networks here run faster on one thread, and the 2-core test machine is shared:
    OpenMP spin-waiting across busy cores made a 32×32 forward pass take 100× longer."""
    from stages.common.runtime import torch_threads

    with torch_threads(1):
        yield


# Micro autoencoders for the encoder content backend: their latents only need to be a fixed
# function of the input, so a few optimiser steps suffice (fixed counts, seed 0).
AE_MICRO = {
    "block_out_channels": [8, 16, 16],
    "norm_num_groups": 4,
    "batch_size": 4,
    "crop": 16,
    "warmup_steps": 0,
    "steps": 4,
}


def train_micro_autoencoder(dataset, out, kind: str):
    from stages.autoencoder import PRESETS, TrainAEConfig, run
    from stages.training import resolve_preset

    # 4 kl / 8 two-stream image latent channels, as the content tests' shapes assume (the tiny presets have 48
    # since issue 14; the two-stream one's block linear path at the image branch's f = 2)
    two_stream = {"mask_block_out_channels": [8, 16, 16], "latent_channels": 8, "linear_block": False}
    extra = two_stream if kind == "two-stream" else {"latent_channels": 4}
    overrides = {**AE_MICRO, **extra}
    model = resolve_preset(PRESETS[kind], "tiny", overrides)
    run(dataset, out, TrainAEConfig(kind=kind, preset="tiny", model=model, seed=0), device="cpu")
    return out


@pytest.fixture(scope="session")
def kl_encoder(ip_dataset, tmp_path_factory):
    return train_micro_autoencoder(ip_dataset, tmp_path_factory.mktemp("encoder") / "kl", "kl")


@pytest.fixture(scope="session")
def two_stream_encoder(ip_dataset, tmp_path_factory):
    return train_micro_autoencoder(ip_dataset, tmp_path_factory.mktemp("encoder") / "two-stream", "two-stream")
