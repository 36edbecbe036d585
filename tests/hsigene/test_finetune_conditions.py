"""Condition-paired fine-tuning of a tiny-width import on the embedded scene: the maps of a
conditions artifact reach the local adapter in the released slots, exactly as sampling builds
them; dropout keeps resume exact; bad conditions are refused before anything is written."""

from __future__ import annotations

import json

import pytest
import torch
from finetune_helpers import full_and_resumed, weights

FIRST_CONV = "local_adapter.feature_extractor.pre_extractor.0.weight"


@pytest.fixture(scope="module")
def ip_cond(ip_dataset, tmp_path_factory):
    """Offline hed + seg maps (and the offline 64-d content descriptor) of every patch."""
    from stages.conditions.stage import ConditionConfig, run

    out = tmp_path_factory.mktemp("hsigene-cond") / "cond"
    run([ip_dataset], out, ConditionConfig(kinds=["hed", "seg", "content"]))
    return out


def _base(tiny_import, ip_dataset):
    return [
        "train-diffusion",
        "--space",
        "latent",
        "--architecture",
        "hsigene",
        "--init",
        tiny_import,
        "--dataset",
        ip_dataset,
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--lr",
        "1e-3",
        "--device",
        "cpu",
    ]


def test_maps_reach_the_adapter_only_when_given(cli, tiny_import, ip_dataset, ip_cond, tmp_path):
    """With empty slots the feature extractor's first conv sees zeros, so its weights (not its
    bias) get zero gradient and stay; with hed + seg exactly the hed (0) and seg (2) slot
    channels of those weights learn."""
    from stages.artifacts import open_artifact
    from stages.hsigene.artifact import load_model
    from stages.hsigene.finetune import FineTuneConfig, finetune
    from stages.hsigene.generator import empty_conditions, encode_conditions

    # The property relied on: an all-zero input gives the first conv's weights zero gradient.
    model, mcfg = load_model(open_artifact(tiny_import), "cpu")
    sum(f.sum() for f in encode_conditions(model, empty_conditions(mcfg, 32), 2)["features"]).backward()
    conv = model.local_adapter.feature_extractor.pre_extractor[0]
    assert torch.count_nonzero(conv.weight.grad) == 0 and torch.count_nonzero(conv.bias.grad) > 0

    before = weights(tiny_import)[FIRST_CONV]
    finetune(tiny_import, ip_dataset, tmp_path / "empty", FineTuneConfig(steps=2, lr=1e-3, batch_size=2))
    assert torch.equal(weights(tmp_path / "empty")[FIRST_CONV], before)

    code, _, err = cli(*_base(tiny_import, ip_dataset), "--conditions", ip_cond, "--out", tmp_path / "cond")
    assert code == 0, err
    after = weights(tmp_path / "cond")[FIRST_CONV]
    for used in (slice(0, 3), slice(6, 9)):  # hed, seg
        assert not torch.equal(after[:, used], before[:, used])
    for empty in (slice(3, 6), slice(9, 18)):  # the release's empty slots 1, 3 and sketch, mlsd
        assert torch.equal(after[:, empty], before[:, empty])
    recorded = json.loads((tmp_path / "cond" / "manifest.json").read_text())["config"]["finetune"]["conditions"]
    assert recorded["kinds"] == ["hed", "seg"]  # the offline 64-d content does not fit: not used
    assert recorded["slots"] == {"hed": 0, "seg": 2}
    assert recorded["dropout"] == 0.3 and recorded["content"] == "zeros"


def test_training_slots_equal_sampling_slots(tiny_import, ip_dataset, ip_cond):
    """One patch's slots in training are the ones `sample --cond hed=… --cond seg=…` builds
    from that patch's files in the conditions artifact."""
    from stages.artifacts import open_artifact
    from stages.conditions.io import load_conditions
    from stages.diffusion import load_model as load_diffusion_model
    from stages.hsigene.artifact import load_config
    from stages.hsigene.finetune import conditioned_batch, paired_conditions, scene_tensors
    from stages.hsigene.generator import Generator, empty_conditions

    mcfg = load_config(open_artifact(tiny_import))
    _, _, rows = scene_tensors(ip_dataset)
    paired = paired_conditions(ip_cond, ip_dataset, rows, 32, None, mcfg, 0.3)
    r = 5
    item = next(i for i in load_conditions(ip_cond).items if int(i["item"]) == int(rows[r]))
    files = [f"{kind}={ip_cond / item['files'][kind]}" for kind in ("hed", "seg")]
    sampled = Generator(load_diffusion_model(tiny_import)).prepare_conditions(files, None, None, 32).local
    trained = paired.slots(mcfg, torch.tensor([r]), 64)
    assert trained.shape == sampled.shape == (1, 18, 64, 64)
    assert trained[0, 0:3].max() > 0 and trained[0, 6:9].max() > 0
    assert torch.equal(trained, sampled)
    # Through the batch builder with no dropout: the same slots, the empty prompt, zero content.
    empty = empty_conditions(mcfg, 32)
    c = conditioned_batch(mcfg, empty, paired, torch.tensor([r]), 64, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(c.local, sampled) and torch.equal(c.tokens, empty.tokens)
    assert torch.count_nonzero(c.content) == 0
    # Dropout empties whole slots of single samples, at about the rate asked for.
    idx = torch.zeros(400, dtype=torch.long) + r
    c = conditioned_batch(mcfg, empty, paired, idx, 64, 0.5, torch.Generator().manual_seed(1))
    kept = c.local[:, 0:3].flatten(1).amax(1) > 0
    assert 150 < int(kept.sum()) < 250
    assert torch.equal(c.local[kept][:, 0:3], sampled[0, 0:3].expand(int(kept.sum()), -1, -1, -1))


def test_resume_is_exact_with_conditions(tiny_import, ip_dataset, ip_cond, tmp_path, monkeypatch):
    import stages.hsigene.finetune as ft

    cfg = ft.FineTuneConfig(
        train="all",
        steps=4,
        lr=1e-3,
        batch_size=2,
        checkpoint_every=2,
        seed=3,
        conditions=ip_cond,
        kinds="hed,seg",
        condition_dropout=0.5,
    )
    full, resumed = full_and_resumed(tiny_import, ip_dataset, tmp_path, cfg, monkeypatch)
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    assert not torch.equal(full[FIRST_CONV][:, 0:3], weights(tiny_import)[FIRST_CONV][:, 0:3])
    recorded = json.loads((tmp_path / "cut" / "manifest.json").read_text())["config"]["finetune"]["conditions"]
    assert recorded["kinds"] == ["hed", "seg"] and recorded["dropout"] == 0.5


def test_bad_conditions_are_refused(cli, tiny_import, ip_dataset, ip_cond, tmp_path):
    from stages.conditions.stage import ConditionConfig, run
    from stages.ingest import ingest_example

    other = tmp_path / "other"
    ingest_example(other, val_fraction=0.5)  # the same scene, another dataset (another hash)
    run([other], tmp_path / "other-cond", ConditionConfig(kinds=["hed"]))
    out = tmp_path / "ft"
    base = [*_base(tiny_import, ip_dataset), "--out", out]
    cases = [
        (["--conditions", tmp_path / "other-cond"], "was not computed from"),
        (["--conditions", ip_cond, "--kinds", "hed,mlsd"], "has no mlsd"),
        (["--conditions", ip_cond, "--kinds", "hed,text"], "no slot for a text"),
        (["--conditions", ip_cond, "--kinds", "hed,rgb"], "rgb: no released HSIGene slot"),
        (["--conditions", ip_cond, "--kinds", "seg,content"], "the offline 64-d descriptor does not fit"),
        (["--conditions", ip_cond, "--condition-dropout", "1"], "must be in [0, 1)"),
        (["--kinds", "hed"], "add --conditions"),
        (["--condition-dropout", "0.2"], "add --conditions"),
    ]
    for extra, message in cases:
        code, _, err = cli(*base, *extra)
        assert code == 1 and message in err, (extra, err)
        assert not out.exists(), extra
