"""--text and --content through user-local folders (built here at toy size; nothing downloaded)."""

from __future__ import annotations

import string

import h5py
import numpy as np
import pytest


@pytest.fixture(scope="module")
def local_dirs(tmp_path_factory):
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("clip")
    vocab = {c: i for i, c in enumerate(string.ascii_lowercase)}
    vocab.update({c + "</w>": 26 + i for i, c in enumerate(string.ascii_lowercase)})
    vocab.update({"<|startoftext|>": 49406, "<|endoftext|>": 49407})
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(root / "clip")
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2},
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=32,
    )  # = the tiny HSIGene content_dim
    CLIPModel(cfg).save_pretrained(root / "content")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        root / "content"
    )
    return root / "clip", root / "content"


def test_text_and_content_change_the_samples(cli, tiny_ckpt, local_dirs, tmp_path):
    from PIL import Image

    clip, content = local_dirs
    code, _, err = cli(
        "import",
        "hsigene",
        tiny_ckpt,
        "--model-config",
        "tiny",
        "--sample-size",
        "32",
        "--clip-model",
        clip,
        "--content-encoder",
        content,
        "--out",
        tmp_path / "m",
    )
    assert code == 0, err
    scene = tmp_path / "scene.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(scene)
    runs = {"plain": [], "text": ["--text", "Farmland"], "content": ["--content", scene]}
    out = {}
    for name, extra in runs.items():
        code, _, err = cli(
            "sample",
            "--ckpt",
            tmp_path / "m",
            "-n",
            "1",
            "--steps",
            "2",
            "--seed",
            "1",
            *extra,
            "--out",
            tmp_path / name,
        )
        assert code == 0, err
        with h5py.File(tmp_path / name / "samples.h5") as f:
            out[name] = f["hsi"][:]
    assert not np.array_equal(out["plain"], out["text"])
    assert not np.array_equal(out["plain"], out["content"])


def test_tokens_match_the_release_padding(local_dirs):
    from stages.hsigene.generator import empty_prompt_tokens, tokenize

    clip, _ = local_dirs
    assert tokenize("", str(clip)).tolist() == empty_prompt_tokens().tolist()
    ids = tokenize("Farmland", str(clip))[0].tolist()
    assert ids[0] == 49406 and ids[1:9] == [5, 0, 17, 12, 11, 0, 13, 29] and set(ids[9:]) == {49407}
