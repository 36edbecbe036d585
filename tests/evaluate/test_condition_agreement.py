"""Condition agreement (stages.evaluate.condition_agreement): the ARI against scikit-learn's and a
brute-force pair count, the seg map's regions, and the agreement of images with their own maps."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest


def brute_force_ari(a, b) -> float:
    """Pairs of items counted one by one: agreements beyond chance over the most possible."""
    pairs = list(combinations(range(len(a)), 2))
    same_a = np.array([a[i] == a[j] for i, j in pairs])
    same_b = np.array([b[i] == b[j] for i, j in pairs])
    index, n_a, n_b = np.sum(same_a & same_b), same_a.sum(), same_b.sum()
    expected = n_a * n_b / len(pairs)
    return float((index - expected) / ((n_a + n_b) / 2 - expected))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adjusted_rand_index_matches_sklearn_and_a_brute_force_count(seed):
    from sklearn.metrics import adjusted_rand_score

    from stages.evaluate.condition_agreement import adjusted_rand_index

    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, 60)
    b = np.where(rng.random(60) < 0.6, a, rng.integers(0, 5, 60)) * 7 + 3  # related, other label values
    ours = adjusted_rand_index(a, b)
    assert ours == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
    assert ours == pytest.approx(brute_force_ari(a, b), abs=1e-12)
    assert 0.2 < ours < 0.9
    assert adjusted_rand_index(a, 5 - a) == pytest.approx(1.0)  # the same partition, relabelled
    assert adjusted_rand_index(np.zeros(9), np.zeros(9)) == 1.0  # one region each: trivially equal
    with pytest.raises(ValueError, match="labelings of 60 and 59"):
        adjusted_rand_index(a, b[:59])


def test_regions_of_a_mean_colour_filled_map():
    from stages.evaluate.condition_agreement import regions_of_seg_map

    seg = np.zeros((3, 4, 4))
    seg[:, :2] = np.array([0.2, 0.4, 0.6])[:, None, None]
    seg[0, 3, 3] = 1.0
    regions = regions_of_seg_map(seg)
    assert regions.shape == (4, 4) and len(np.unique(regions)) == 3
    assert len(np.unique(regions[:2])) == 1 and regions[3, 3] not in regions[:2]


def test_images_agree_with_their_own_maps_and_not_with_another_images():
    """Maps made by the extractors from the images themselves agree exactly (ARI 1, correlation 1);
    against another image's hed map the correlation is far lower."""
    from stages.conditions import make_extractor
    from stages.evaluate.condition_agreement import agreement

    rng = np.random.default_rng(0)
    rgbs = []
    for _ in range(4):  # rectangles of random colours on a random background
        image = np.full((32, 32, 3), rng.integers(0, 256, 3), np.uint8)
        for _ in range(3):
            y, x = rng.integers(0, 24, 2)
            image[y : y + rng.integers(6, 12), x : x + rng.integers(6, 12)] = rng.integers(0, 256, 3)
        rgbs.append(image)
    seg, hed = make_extractor("seg"), make_extractor("hed")
    seg_maps, hed_maps = np.stack([seg(r) for r in rgbs]), np.stack([hed(r) for r in rgbs])
    m = agreement(rgbs, seg_maps, hed_maps, shift=1)
    assert m["seg_ari"] == pytest.approx(1.0) and m["hed_corr"] == pytest.approx(1.0)
    assert m["hed_corr_other"] < 0.5


def test_evaluate_reports_how_samples_follow_their_maps(
    cli, ip_dataset, ip_patches, ip_samples, samples_writer, tmp_path
):
    """Real val patches stored as samples under their own hed + seg maps follow them exactly (ARI 1,
        correlation 1), far above the chance level of another sample's map; the same patches under
        each other's maps score that chance level. The report's values equal the agreement computed
        in memory on the conditions stage's RGB of the patches; reference rows made from the held-out
    patches are scored against those patches' maps. Samples without maps are refused."""
    import json

    from stages.conditions import make_extractor
    from stages.diffusion.control import CONDITION_KINDS, LOCAL_MAP_CHANNELS, LOCAL_SLOTS
    from stages.diffusion.spaces.latent import dataset_rgb
    from stages.evaluate.condition_agreement import agreement

    rows = np.flatnonzero(ip_patches.split == "val")[:6]
    rgbs = [dataset_rgb(ip_dataset)[0][i] for i in rows]
    seg, hed = make_extractor("seg"), make_extractor("hed")
    maps = np.zeros((len(rows), LOCAL_MAP_CHANNELS, *rgbs[0].shape[:2]), np.float32)
    maps[:, LOCAL_SLOTS["seg"]] = np.stack([seg(r) for r in rgbs])
    maps[:, LOCAL_SLOTS["hed"]] = np.stack([hed(r) for r in rgbs])
    present = np.zeros((len(rows), len(CONDITION_KINDS)), np.float32)
    present[:, [CONDITION_KINDS.index("seg"), CONDITION_KINDS.index("hed")]] = 1
    cubes = ip_patches.physical()[rows]
    scale, offset = float(ip_patches.scale), float(ip_patches.offset)
    own = samples_writer(tmp_path / "own", cubes, ip_patches.wavelengths_nm, scale=scale, offset=offset,
                         conditions=(maps, present))  # fmt: skip
    swapped = samples_writer(tmp_path / "swapped", cubes, ip_patches.wavelengths_nm, scale=scale, offset=offset,
                             conditions=(np.roll(maps, 2, axis=0), present))  # fmt: skip
    out = tmp_path / "report"
    code, _, stderr = cli("evaluate", "--real", ip_dataset, "--generated", own, swapped,
                          "--metrics", "spr_srec,conditions", "--references", "all", "--out", out)  # fmt: skip
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    first, second = (g["metrics"] for g in report["generated"])
    # Reference rows made image by image from the held-out patches are scored against those patches' maps:
    # the patches themselves exactly, 2 % noise less; rows of pixels in no real image arrangement not at all.
    refs = {r["name"]: r["metrics"] for r in report["references"]}
    assert refs["real-heldout"]["cond_seg_ari"] == pytest.approx(1.0)
    assert refs["real-heldout"]["cond_seg_ari_other"] < 0.5
    assert 0.1 < refs["noise-heldout"]["cond_seg_ari"] < 0.9 and refs["noise-heldout"]["cond_hed_corr"] > 0.9
    assert "cond_seg_ari" not in refs["shuffled-pixels"] and "cond_seg_ari" not in refs["gaussian-pixels"]
    assert first["cond_seg_ari"] == pytest.approx(1.0) and first["cond_hed_corr"] == pytest.approx(1.0)
    assert first["cond_seg_ari_images"] == first["cond_hed_corr_images"] == 6
    assert first["cond_seg_ari_other"] < 0.5 and first["cond_hed_corr_other"] < 0.5
    expected = agreement(
        rgbs, np.roll(maps[:, LOCAL_SLOTS["seg"]], 2, 0), np.roll(maps[:, LOCAL_SLOTS["hed"]], 2, 0), 0
    )
    assert second["cond_seg_ari"] == pytest.approx(expected["seg_ari"], abs=1e-9)
    assert second["cond_hed_corr"] == pytest.approx(expected["hed_corr"], abs=1e-9)
    assert second["cond_seg_ari"] < 0.5 and second["cond_hed_corr"] < 0.5
    assert "seg map followed (ARI)" in (out / "report.md").read_text()
    # Asked for on samples without maps: one message naming what the metric needs, nothing written.
    code, _, stderr = cli("evaluate", "--real", ip_dataset, "--generated", ip_samples, "--metrics", "conditions",
                          "--references", "none", "--out", tmp_path / "none")  # fmt: skip
    assert code == 1 and "conditions needs samples of a latent model made under hed or seg maps" in stderr
    assert not (tmp_path / "none").exists()
    # Against several real datasets (each with its own RGB stretch) it is refused the same way.
    import shutil

    other = shutil.copytree(ip_dataset, tmp_path / "same-scene-again")
    code, _, stderr = cli("evaluate", "--real", ip_dataset, "--real", other, "--generated", own,
                          "--metrics", "conditions", "--out", tmp_path / "two")  # fmt: skip
    assert code == 1 and "one real hsi-dataset" in stderr and not (tmp_path / "two").exists()
