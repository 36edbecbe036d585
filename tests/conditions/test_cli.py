"""``hsigen condition`` end to end on the embedded Indian Pines dataset and on image files."""

from __future__ import annotations

import json

import cv2
import numpy as np

from stages.artifacts.datasets import load_patches
from stages.artifacts.store import open_artifact
from stages.conditions import extract, make_extractor
from stages.conditions.io import load_conditions

ALL_KINDS = "hed,mlsd,sketch,seg,content,text"


def test_all_kinds_on_indian_pines(ip_conditions, ip_dataset):
    patches = load_patches(ip_dataset)
    n = patches.hsi.shape[0]
    cond = load_conditions(ip_conditions)
    assert len(cond) == n
    for kind, channels in {"hed": 1, "mlsd": 1, "sketch": 1, "seg": 3}.items():
        assert cond.maps[kind].shape == (n, channels, 32, 32)
        assert cond.maps[kind].min() >= 0 and cond.maps[kind].max() <= 1
        assert cond.maps[kind].max() > 0, kind  # real structure is found in the scene
    assert cond.embeddings["content"].shape == (n, 64)
    assert np.allclose(np.linalg.norm(cond.embeddings["content"], axis=1), 1, atol=1e-5)
    assert cond.embeddings["text"].shape == (n, 4)
    assert (cond.embeddings["text"] == [1, 0, 0, 0]).all()  # --text farmland
    # The RGB choice: bands nearest 640/550/470 nm, recorded.
    rgb = cond.index["sources"][0]["rgb"]
    wl = patches.wavelengths_nm
    assert rgb["bands"] == [int(np.argmin(np.abs(wl - t))) for t in (640, 550, 470)]
    manifest = open_artifact(ip_conditions, "conditions").manifest
    assert {k: v["backend"] for k, v in manifest["config"]["kinds"].items()} == {
        k: "offline" for k in ALL_KINDS.split(",")
    }
    assert manifest["config"]["kinds"]["hed"]["sigmas"] == [1.0, 2.0, 4.0]
    # Items map back to patches and splits; the stored maps equal on-the-fly extraction.
    assert [item["item"] for item in cond.items] == list(range(n))
    assert [item["split"] for item in cond.items] == list(patches.split)
    for i in (0, n // 2):
        image = cv2.imread(str(ip_conditions / cond.items[i]["files"]["rgb"]))[..., ::-1].copy()
        for kind in ("hed", "mlsd", "sketch", "seg"):
            assert np.array_equal(extract(kind, image), cond.maps[kind][i]), kind
        assert np.allclose(extract("content", image), cond.embeddings["content"][i], atol=1e-6)


def test_rerun_is_up_to_date_and_existing_out_needs_overwrite(cli, ip_conditions, ip_dataset):
    before = (ip_conditions / "manifest.json").read_text()
    code, _, err = cli("condition", ip_dataset, "--kinds", ALL_KINDS, "--text", "farmland", "--out", ip_conditions)
    assert code == 0 and "up to date" in err
    assert (ip_conditions / "manifest.json").read_text() == before
    code, _, err = cli("condition", ip_dataset, "--kinds", "hed", "--out", ip_conditions)
    assert code == 1 and "--overwrite" in err


def test_size_and_labels(cli, ip_dataset, tmp_path):
    out = tmp_path / "c48"
    code, _, err = cli("condition", ip_dataset, "--kinds", "hed,seg", "--labels", "--size", "48", "--out", out)
    assert code == 0, err
    cond = load_conditions(out)
    assert cond.maps["hed"].shape[1:] == (1, 48, 48) and cond.maps["seg"].shape[1:] == (3, 48, 48)
    assert cond.kinds["seg"]["backend"] == "labels"
    # Colour coding follows the class map: equal labels ⇔ equal colours.
    labels = load_patches(ip_dataset).labels
    for i in (0, 40):
        resized = cv2.resize(labels[i].astype(np.int32), (48, 48), interpolation=cv2.INTER_NEAREST)
        colours = cond.maps["seg"][i].reshape(3, -1).T
        for k in np.unique(resized):
            assert len(np.unique(colours[resized.ravel() == k], axis=0)) == 1
        assert len(np.unique(colours, axis=0)) == len(np.unique(resized))


def test_split_keeps_only_that_splits_patches_with_their_rows(cli, ip_dataset, ip_conditions, tmp_path):
    out = tmp_path / "val"
    code, _, err = cli("condition", ip_dataset, "--kinds", "hed,seg", "--split", "val", "--out", out)
    assert code == 0, err
    split = load_patches(ip_dataset).split
    val_rows = [int(i) for i in np.flatnonzero(split == "val")]
    items = load_conditions(out).items
    assert [item["item"] for item in items] == val_rows and {item["split"] for item in items} == {"val"}
    # The same maps as in the conditions of every patch: filtering happens before extraction, per image.
    full = load_conditions(ip_conditions)
    np.testing.assert_array_equal(load_conditions(out).maps["hed"], full.maps["hed"][val_rows])
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((32, 32, 3), np.uint8))
    code, _, err = cli("condition", images, "--kinds", "hed", "--split", "val", "--out", tmp_path / "no")
    assert code == 1 and "has no train/val split" in err and not (tmp_path / "no").exists()


def test_rgb_image_sources(cli, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i, shape in enumerate([(40, 40), (40, 40), (30, 50)]):
        image = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
        cv2.rectangle(image, (5, 5), (25, 25), (255, 255, 255), -1)
        cv2.imwrite(str(images / f"im{i}.png"), image)
    code, _, err = cli("condition", images, "--kinds", "hed", "--out", tmp_path / "mixed")
    assert code == 1 and "--size" in err and not (tmp_path / "mixed").exists()
    code, _, err = cli("condition", images, "--kinds", "hed,mlsd,seg,content", "--size", "32", "--out", tmp_path / "ok")
    assert code == 0, err
    cond = load_conditions(tmp_path / "ok")
    assert cond.maps["hed"].shape == (3, 1, 32, 32)
    assert [item["name"] for item in cond.items] == ["im0.png", "im1.png", "im2.png"]
    index = json.loads((tmp_path / "ok" / "index.json").read_text())
    assert index["sources"][0]["kind"] == "images"


def test_bad_input_exits_1_and_writes_nothing(cli, ip_dataset, tmp_path):
    cases = [
        (["--kinds", "hed,depth"], "unknown condition kind 'depth'"),
        (["--kinds", "hed", "--hed-weights", tmp_path / "nope.safetensors"], "--hed-weights"),
        (["--kinds", "content", "--clip-model", tmp_path / "no-clip"], "--clip-model"),
        (["--kinds", "text", "--text", "forest"], "--vocab"),
        (["--kinds", "mlsd", "--backend", "mlsd=pretrained"], "--mlsd-weights"),
        (["--kinds", "seg", "--backend", "seg=pretrained"], "no backend 'pretrained'"),
        (["--kinds", "mlsd", "--mlsd-weights", tmp_path / "mlsd_large_512_fp32.pth"], "does not exist"),
        (["--kinds", "text", "--text-file", tmp_path / "none.txt"], "--text-file"),
    ]
    for n, (args, message) in enumerate(cases):
        out = tmp_path / f"bad{n}"
        code, _, err = cli("condition", ip_dataset, *args, "--out", out)
        assert code == 1, (args, err)
        assert message in err, (args, err)
        assert not out.exists()
    png = tmp_path / "plain.png"
    cv2.imwrite(str(png), np.zeros((16, 16, 3), np.uint8))
    code, _, err = cli("condition", png, "--kinds", "seg", "--labels", "--out", tmp_path / "nolabels")
    assert code == 1 and "--labels" in err and not (tmp_path / "nolabels").exists()
    assert not list(tmp_path.glob(".hsigen-tmp-*"))


def test_pretrained_backends_through_the_cli(cli, ip_dataset, hed_weights, clip_dir, tmp_path):
    text_file = tmp_path / "texts.txt"
    n = len(load_patches(ip_dataset).hsi)
    text_file.write_text("\n".join(["farmland", "", "city building"] * (n // 3) + ["wasteland"] * (n % 3)) + "\n")
    out = tmp_path / "pre"
    code, _, err = cli(
        "condition",
        ip_dataset,
        "--kinds",
        "hed,sketch,content,text",
        "--hed-weights",
        hed_weights,
        "--backend",
        "sketch=pretrained",
        "--clip-model",
        clip_dir,
        "--text-file",
        text_file,
        "--out",
        out,
    )
    assert code == 0, err
    cond = load_conditions(out)
    assert {k: v["backend"] for k, v in cond.kinds.items()} == {
        "hed": "pretrained",
        "sketch": "pretrained",
        "content": "clip",
        "text": "clip",
    }
    assert cond.embeddings["content"].shape == (n, 8) and cond.embeddings["text"].shape == (n, 8)
    assert not cond.embeddings["text"][1].any() and cond.embeddings["text"][0].any()
    kinds = {record["kind"] for record in open_artifact(out).manifest["inputs"]}
    assert {"hsi-dataset", "hed-weights", "clip-model", "file"} <= kinds


def test_hsi_samples_source_uses_bands_nearest_rgb(cli, tmp_path):
    import h5py

    from stages.artifacts.store import ArtifactWriter, spectral_block

    # Two generated "samples" on a 10-band grid: a bright square only in the band nearest 640 nm.
    wl = np.linspace(400, 1000, 10)
    red = int(np.argmin(np.abs(wl - 640)))
    hsi = np.full((2, 10, 24, 24), 0.2, np.float32)
    hsi[:, red, 6:18, 6:18] = 0.9
    writer = ArtifactWriter(tmp_path / "samples", "hsi-samples", "sample", {"test": True}, [])
    with writer.building() as tmp:
        with h5py.File(tmp / "samples.h5", "w") as h5:
            h5["hsi"], h5["wavelengths_nm"] = hsi, wl
        writer.spectral = spectral_block(wl, 1.0, 0.0)
    out = tmp_path / "cond"
    code, _, err = cli("condition", tmp_path / "samples", "--kinds", "hed,seg", "--out", out)
    assert code == 0, err
    cond = load_conditions(out)
    assert cond.index["sources"][0]["kind"] == "hsi-samples"
    assert cond.index["sources"][0]["rgb"]["bands"][0] == red
    rgb = cv2.imread(str(out / "rgb" / "000000.png"))[..., ::-1]
    assert rgb[12, 12, 0] > 200 and rgb[2, 2, 0] < 50 and abs(int(rgb[12, 12, 1]) - int(rgb[2, 2, 1])) < 5
    assert cond.maps["hed"][0, 0, 6, 12] > 0.8 and cond.maps["hed"][0, 0, 12, 12] < 0.15  # 6 px from edges
    assert len(np.unique(cond.maps["seg"][0].reshape(3, -1).T, axis=0)) == 2


def test_annotator_weights_through_the_cli(cli, mlsd_weights, pidinet_weights, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        image = np.zeros((64, 64, 3), np.uint8)
        cv2.rectangle(image, (8 + 4 * i, 10), (50, 40 + 4 * i), (200, 180, 60), -1)
        cv2.imwrite(str(images / f"im{i}.png"), image)
    out = tmp_path / "annot"
    code, _, err = cli(
        "condition",
        images,
        "--kinds",
        "mlsd,sketch",
        "--mlsd-weights",
        mlsd_weights,
        "--pidinet-weights",
        pidinet_weights,
        "--detect-resolution",
        "64",
        "--mlsd-min-length",
        "4",
        "--sketch-threshold",
        "0.3",
        "--out",
        out,
    )
    assert code == 0, err
    assert "mlsd: the pretrained backend ignores the setting(s) min_length" in err
    cond = load_conditions(out)
    assert cond.kinds["mlsd"]["backend"] == "pretrained" and cond.kinds["mlsd"]["resolution"] == 64
    assert cond.kinds["sketch"]["backend"] == "pidinet" and cond.kinds["sketch"]["threshold"] == 0.3
    for kind in ("mlsd", "sketch"):
        assert cond.maps[kind].shape == (3, 1, 64, 64) and set(np.unique(cond.maps[kind])) <= {0.0, 1.0}
    sketch = make_extractor("sketch", "pidinet", pidinet_weights=pidinet_weights, resolution=64, threshold=0.3)
    image = cv2.imread(str(out / cond.items[1]["files"]["rgb"]))[..., ::-1].copy()
    assert np.array_equal(sketch(image), cond.maps["sketch"][1])
    inputs = {record["kind"]: record for record in open_artifact(out).manifest["inputs"]}
    assert inputs["mlsd-weights"]["path"] == str(mlsd_weights)
    assert inputs["pidinet-weights"]["path"] == str(pidinet_weights)
