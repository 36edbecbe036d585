"""``hsigen condition --workers N``: a pool of worker processes writes the same files as one process."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import cv2
import numpy as np
import pytest

KINDS = "hed,seg,sketch,content"


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 5 images, so 12 images make 3 chunks shared by 2 workers (the parent splits them)."""
    from stages.conditions import chunks

    monkeypatch.setattr(chunks, "CHUNK", 5)


def smooth_images(folder: Path, n: int = 12, side: int = 40) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        coarse = rng.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8)
        image = cv2.GaussianBlur(cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC), (0, 0), 1.5)
        cv2.rectangle(image, (6, 8), (20 + i, 26), (240, 240, 240), 2)
        cv2.imwrite(str(folder / f"im{i:02d}.png"), image)
    return folder


def files_of(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def assert_same_artifact(a: Path, b: Path) -> None:
    fa, fb = files_of(a), files_of(b)
    assert sorted(fa) == sorted(fb)
    assert [k for k in fa if k != "manifest.json" and fa[k] != fb[k]] == []
    ma, mb = (json.loads(f["manifest.json"]) for f in (fa, fb))
    for m in (ma, mb):
        del m["created"], m["runtime"]  # when it ran, and with how many processes
    assert ma == mb


def test_workers_write_the_same_files_in_image_order(cli, tmp_path, small_chunks):
    images = smooth_images(tmp_path / "images")
    outs = {}
    for workers in (0, 2):
        outs[workers] = tmp_path / f"w{workers}"
        code, _, err = cli(
            "condition", images, "--kinds", KINDS, "--size", 32, "--workers", workers, "--out", outs[workers]
        )
        assert code == 0, err
    assert_same_artifact(outs[0], outs[2])
    index = json.loads((outs[2] / "index.json").read_text())
    assert [item["name"] for item in index["items"]] == [f"im{i:02d}.png" for i in range(12)]
    assert json.loads((outs[2] / "manifest.json").read_text())["runtime"] == {"workers": 2}
    # workers is not part of the up-to-date key: another --workers value reruns nothing.
    before = (outs[0] / "manifest.json").read_text()
    code, _, err = cli("condition", images, "--kinds", KINDS, "--size", 32, "--workers", 1, "--out", outs[0])
    assert code == 0 and "up to date" in err
    assert (outs[0] / "manifest.json").read_text() == before
    assert multiprocessing.active_children() == []


def test_dataset_source_with_workers(cli, ip_dataset, tmp_path, small_chunks):
    outs = {}
    for workers in (0, 2):
        outs[workers] = tmp_path / f"w{workers}"
        code, _, err = cli(
            "condition", ip_dataset, "--kinds", "hed,seg,content,text", "--text", "farmland", "--split", "val",
            "--workers", workers, "--out", outs[workers],
        )  # fmt: skip
        assert code == 0, err
    assert_same_artifact(outs[0], outs[2])


def test_a_failure_in_a_worker_names_the_file_and_writes_nothing(cli, tmp_path, small_chunks):
    images = smooth_images(tmp_path / "images")
    (images / "im07b.png").write_bytes(b"\x89PNG\r\n\x1a\n this is no image")
    out = tmp_path / "out"
    code, _, err = cli("condition", images, "--kinds", KINDS, "--size", 32, "--workers", 2, "--out", out)
    assert code == 1, err
    assert "im07b.png" in err and "could not be decoded" in err
    assert err.count("error:") == 1
    assert not out.exists() and not list(tmp_path.glob(".hsigen-tmp-*"))
    assert multiprocessing.active_children() == []


def test_negative_workers_is_refused(cli, tmp_path):
    images = smooth_images(tmp_path / "images", n=2)
    code, _, err = cli("condition", images, "--kinds", "hed", "--workers", -1, "--out", tmp_path / "out")
    assert code == 1
    assert "--workers -1" in err and "give 0" in err
    assert not (tmp_path / "out").exists()
