"""``evaluate downstream --task segment --backbone DIR``: a local SegFormer directory (written
here with random weights, tiny) as the encoder. The report names the model and the weights
file by path and sha256, the encoder starts from the file's weights and is fine-tuned, one seed
gives one result, and a directory that cannot be used safely (no model.safetensors, no config,
not a SegFormer) or a backbone for another task stops with one message and nothing written."""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import shutil
from pathlib import Path

import pytest

STEPS = 8


def write_segformer(directory: Path) -> Path:
    """A random two-stage SegFormer with a decode head, as ``save_pretrained`` writes it."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    config = SegformerConfig(
        num_channels=3,
        num_encoder_blocks=2,
        depths=[1, 1],
        hidden_sizes=[8, 16],
        num_attention_heads=[1, 2],
        sr_ratios=[2, 1],
        patch_sizes=[7, 3],
        strides=[4, 2],
        mlp_ratios=[2, 2],
        decoder_hidden_size=8,
        num_labels=5,
    )
    SegformerForSemanticSegmentation(config).save_pretrained(directory, safe_serialization=True)
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]
    return directory


@pytest.fixture(scope="module")
def segformer_dir(tmp_path_factory) -> Path:
    return write_segformer(tmp_path_factory.mktemp("backbone") / "segformer")


def _segment(cli, real, synthetic, out, backbone, *extra):
    return cli(
        "evaluate",
        "downstream",
        "--task",
        "segment",
        "--backbone",
        backbone,
        "--real",
        real,
        "--synthetic",
        synthetic,
        "--steps",
        STEPS,
        "--seeds",
        "0,1,2",
        "--device",
        "cpu",
        "--out",
        out,
        "--json",
        *extra,
    )


def test_segment_with_a_segformer_backbone_is_recorded_and_deterministic(
    cli, ip_dataset, labelled_samples, segformer_dir, tmp_path
):
    reports = []
    for name in ("a", "b"):
        code, stdout, stderr = _segment(cli, ip_dataset, labelled_samples, tmp_path / name, segformer_dir)
        assert code == 0, stderr
        reports.append(json.loads(stdout))
    report = reports[0]
    assert report == json.loads((tmp_path / "a" / "report.json").read_text())

    weights = segformer_dir / "model.safetensors"
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    settings = report["settings"]
    assert settings["backbone"]["path"] == str(segformer_dir) and settings["backbone"]["sha256"] == sha
    assert (
        settings["model"].startswith("SegFormer (Xie et al., NeurIPS 2021)") and str(segformer_dir) in settings["model"]
    )
    assert settings["backbone"]["hidden_sizes"] == [8, 16] and "all weights" in settings["backbone"]["fine_tuned"]
    inputs = json.loads((tmp_path / "a" / "manifest.json").read_text())["inputs"]
    assert {"path": str(weights), "sha256": sha, "kind": "file"} in inputs
    assert "SegFormer" in (tmp_path / "a" / "report.md").read_text()

    assert [r["seed"] for r in report["runs"]] == [0, 1, 2]
    for run in report["runs"]:
        for s in report["training_sets"]:
            assert math.isfinite(run[s]["miou"]) and 0.0 <= run[s]["oa"] <= 1.0
    # Same seeds, same inputs: the same numbers, to the last digit.
    assert reports[1]["runs"] == report["runs"] and reports[1]["summary"] == report["summary"]


def test_encoder_starts_from_the_file_and_is_fine_tuned(ip_dataset, segformer_dir):
    import torch
    from safetensors.torch import load_file

    from stages.common.runtime import seed_everything
    from stages.downstream import DownstreamConfig, patch_task
    from stages.downstream.data import Pool, open_source
    from stages.downstream.nets import band_stats
    from stages.downstream.protocol import Context, resolve_hyper, train_model

    task = patch_task("segment")
    cfg = DownstreamConfig(task="segment", steps=3, device="cpu", backbone=str(segformer_dir))
    hyper = resolve_hyper(task, cfg)
    task.check_config(cfg, hyper)
    train, val = open_source(ip_dataset, "--real", "train"), open_source(ip_dataset, "--real", "val")
    ctx = Context(48, cfg, hyper, torch.device("cpu"))
    ctx.band_mean, ctx.band_std = band_stats(train)
    task.setup(ctx, train, val)

    # The file keeps the checkpoint's own key names (transformers renames them on load): every
    # encoder tensor equals one of the file's, and named ones equal their counterparts.
    saved = {k: v for k, v in load_file(segformer_dir / "model.safetensors").items() if k.startswith("segformer.")}
    seed_everything(0)
    model = task.make_model(ctx)
    encoder = model.encoder.state_dict()
    assert len(encoder) == len(saved)
    for key, value in encoder.items():
        assert any(v.shape == value.shape and torch.equal(v, value) for v in saved.values()), key
    pairs = {
        "stages.0.patch_embeddings.proj.weight": "segformer.encoder.patch_embeddings.0.proj.weight",
        "stages.1.blocks.0.attention.q_proj.weight": "segformer.encoder.block.1.0.attention.self.query.weight",
        "stages.0.blocks.0.mlp.fc1.weight": "segformer.encoder.block.0.0.mlp.dense1.weight",
    }
    for ours, theirs in pairs.items():
        assert torch.equal(encoder[ours], saved[theirs]), ours
    assert model.bands_in.in_channels == 48 and model.bands_in.out_channels == 3
    assert model.classifier.out_channels == len(ctx.classes)
    assert model(torch.zeros(2, 48, 32, 32)).shape == (2, len(ctx.classes), 32, 32)

    trained = train_model(task, Pool([train]), ctx, 0, Path(".backbone-test-scratch")).encoder.state_dict()
    key, file_key = next(iter(pairs.items()))
    assert not torch.equal(trained[key], saved[file_key])  # the encoder is fine-tuned too
    assert torch.equal(task.backbone.encoder.state_dict()[key], saved[file_key])  # a copy: each run starts afresh


def _expect_failure(cli, ip_dataset, synthetic, tmp_path, message, backbone, task="segment"):
    out = tmp_path / "never"
    code, stdout, stderr = cli(
        "evaluate",
        "downstream",
        "--task",
        task,
        "--backbone",
        backbone,
        "--real",
        ip_dataset,
        "--synthetic",
        synthetic,
        "--steps",
        "2",
        "--out",
        out,
    )
    assert code == 1, stderr
    assert message in stderr and stdout == ""
    assert len([line for line in stderr.splitlines() if line.strip()]) <= 3, stderr  # one message, not a traceback
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".hsigen-tmp", ".never"))]


class _Tripwire:
    """Unpickling this creates ``marker``: proof that a pickle was opened."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_unusable_backbones_exit_1_and_write_nothing(cli, ip_dataset, labelled_samples, segformer_dir, tmp_path):
    from safetensors.torch import load_file, save_file
    from transformers import BertConfig, SegformerConfig

    def fail(message, backbone, task="segment"):
        _expect_failure(cli, ip_dataset, labelled_samples, tmp_path, message, backbone, task)

    fail("no such directory", tmp_path / "nowhere")

    # A SegFormer config with only a pickle beside it: refused, the pickle never opened.
    pickled = tmp_path / "pickled"
    SegformerConfig().save_pretrained(pickled)
    marker = tmp_path / "unpickled"
    (pickled / "pytorch_model.bin").write_bytes(pickle.dumps(_Tripwire(marker)))
    fail("has no model.safetensors (pytorch_model.bin is never unpickled)", pickled)
    assert not marker.exists()

    no_config = tmp_path / "no-config"
    no_config.mkdir()
    shutil.copy(segformer_dir / "model.safetensors", no_config)
    fail("has no config.json", no_config)

    bert = tmp_path / "bert"
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8).save_pretrained(bert)
    shutil.copy(segformer_dir / "model.safetensors", bert)
    fail("holds a bert config, not a SegFormer", bert)

    # A SegFormer config whose encoder is not the one in the weights file.
    other = tmp_path / "other-shape"
    shutil.copytree(segformer_dir, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "hidden_sizes": [12, 16]}))
    fail("does not hold this config's encoder weights", other)

    # A weights file with only part of the encoder: refused, not filled with random weights.
    partial = tmp_path / "partial"
    shutil.copytree(segformer_dir, partial)
    state = load_file(partial / "model.safetensors")
    save_file({k: v for k, v in state.items() if ".block.0." in k}, partial / "model.safetensors")
    fail("does not hold this config's encoder weights", partial)

    fail("--backbone is for --task segment", segformer_dir, task="denoise")
