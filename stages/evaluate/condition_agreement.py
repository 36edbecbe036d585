"""How well images follow the local condition maps they were generated under: the same offline
extractor run on each image, compared with its map.

* ``seg``: adjusted Rand index (Hubert & Arabie, "Comparing partitions", Journal of
  Classification 2, 1985) between the regions of the seg map (one region per fill colour) and
  the regions the seg extractor finds in the image: 1 for the same partition, about 0 for an
  unrelated one.
* ``hed``: Pearson correlation of the hed extractor's edge map of the image with the hed map.
  The same correlation against another image's map (``shift``) is the chance level of that pairing.

Both extractors are edge and colour-region detectors on an 8-bit RGB rendering, so they react to
small colour changes: a 1 % multiplicative perturbation of real Indian Pines patches already
lowers their seg ARI against their own maps to 0.66 (benchmarks/condition_following.py).
Compare a set's agreement with reference rows measured the same way, never with 1.

``hsigen evaluate`` (metric ``conditions``) scores samples against the maps stored with them
(``samples_agreement``) and reference rows made from real images against those images' maps
(``derived_agreement``).
"""

from __future__ import annotations

import numpy as np


def regions_of_seg_map(seg_chw: np.ndarray) -> np.ndarray:
    """(3, H, W) mean-colour-filled seg map in [0, 1] → (H, W) region labels, one per distinct colour."""
    flat = np.round(np.asarray(seg_chw).reshape(3, -1).T * 255).astype(np.int64)
    return np.unique(flat, axis=0, return_inverse=True)[1].reshape(seg_chw.shape[1:])


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """ARI of two labelings of the same items: pair counts of their contingency table, corrected
    for chance (Hubert & Arabie 1985, eq. 5); 1.0 when the chance-corrected maximum is reached
    trivially (e.g. both labelings one region)."""
    _, a = np.unique(np.asarray(a).ravel(), return_inverse=True)
    _, b = np.unique(np.asarray(b).ravel(), return_inverse=True)
    if a.size != b.size:
        raise ValueError(f"labelings of {a.size} and {b.size} items")
    table = np.zeros((a.max() + 1, b.max() + 1), np.float64)
    np.add.at(table, (a, b), 1.0)
    pairs = lambda counts: float(np.sum(counts * (counts - 1) / 2))  # noqa: E731
    both, rows, cols = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = rows * cols / (a.size * (a.size - 1) / 2) if a.size > 1 else 0.0
    best = (rows + cols) / 2
    return 1.0 if best == expected else (both - expected) / (best - expected)


def seg_agreement(seg_maps: np.ndarray, rgbs: list[np.ndarray], shift: int = 0) -> np.ndarray:
    """(N,) ARI between seg map (i + shift) mod N ((N, 3, H, W)) and the seg extractor's regions of image i."""
    from ..conditions.segmentation import segment

    n = len(rgbs)
    return np.array(
        [adjusted_rand_index(regions_of_seg_map(seg_maps[(i + shift) % n]), segment(rgbs[i])) for i in range(n)]
    )


def edge_agreement(hed_maps: np.ndarray, rgbs: list[np.ndarray], shift: int = 0) -> np.ndarray:
    """(N,) correlation of the hed extractor on image i with hed map (i + shift) mod N."""
    from ..conditions import make_extractor

    hed = make_extractor("hed")
    n = len(rgbs)
    edges = [np.asarray(hed(rgb), np.float64).ravel() for rgb in rgbs]
    maps = [np.asarray(hed_maps[(i + shift) % n], np.float64).ravel() for i in range(n)]
    return np.array([np.corrcoef(e, m)[0, 1] for e, m in zip(edges, maps)])


def agreement(rgbs: list[np.ndarray], seg_maps: np.ndarray, hed_maps: np.ndarray, shift: int = 3) -> dict:
    """Means over the images: seg ARI, hed edge correlation with their own maps and with image
    (i + shift)'s map (the chance level)."""
    return {
        "seg_ari": float(seg_agreement(seg_maps, rgbs).mean()),
        "hed_corr": float(edge_agreement(hed_maps, rgbs).mean()),
        "hed_corr_other": float(edge_agreement(hed_maps, rgbs, shift).mean()),
    }


# Images scored per set (samples: a seeded subset; reference rows: the first): the extractors run per image.
MAX_IMAGES = 256


def local_conditions_of(h5_path) -> bool:
    """Whether a samples.h5 holds per-sample local condition maps with presence flags (the latent
    generator's layout: ``conditions`` (n, 6, H, W) in LOCAL_SLOTS order, ``condition_present``
    (n, 6) in CONDITION_KINDS order) with a hed or seg map present in some sample."""
    import h5py

    from ..diffusion.control import CONDITION_KINDS, LOCAL_MAP_CHANNELS

    with h5py.File(h5_path, "r") as h5:
        if "conditions" not in h5 or "condition_present" not in h5:
            return False
        maps, present = h5["conditions"], h5["condition_present"]
        if (
            maps.ndim != 4
            or maps.shape[1] != LOCAL_MAP_CHANNELS
            or present.shape != (maps.shape[0], len(CONDITION_KINDS))
        ):
            return False
        flags = present[...]
    return bool(any(flags[:, CONDITION_KINDS.index(k)].any() for k in ("seg", "hed")))


def _scores(out: dict, key: str, measure, maps: np.ndarray, rgbs: list[np.ndarray]) -> None:
    """``out[key]``: the mean agreement of image i with map i; ``out[key + "_other"]``: with map i − 1
    (another image's, the chance level; needs two images); ``out[key + "_images"]``: how many."""
    out[key] = float(np.mean(measure(maps, rgbs)))
    if len(rgbs) >= 2:
        out[f"{key}_other"] = float(np.mean(measure(maps, rgbs, -1)))
    out[f"{key}_images"] = len(rgbs)


def samples_agreement(h5_path, wavelengths_nm, scale: float, offset: float, limits_physical, seed: int = 0) -> dict:
    """Agreement of the samples in ``h5_path`` with the hed and seg maps they were generated under,
    each sample rendered as 8-bit RGB with ``limits_physical`` (the real dataset's stretch, as the
    conditions stage renders it): per kind present, over the samples that had that map (``_scores``)."""
    import h5py

    from ..diffusion.control import CONDITION_KINDS, LOCAL_SLOTS
    from ..spectral import false_colour

    low, high = (np.asarray(v, np.float64) for v in limits_physical)
    limits = (((low - offset) / scale).astype(np.float32), ((high - offset) / scale).astype(np.float32))
    out: dict = {}
    with h5py.File(h5_path, "r") as h5:
        present = np.asarray(h5["condition_present"][...]) > 0.5
        for kind, key, measure in (("seg", "cond_seg_ari", seg_agreement), ("hed", "cond_hed_corr", edge_agreement)):
            rows = np.flatnonzero(present[:, CONDITION_KINDS.index(kind)])
            if len(rows) > MAX_IMAGES:
                rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_IMAGES, replace=False))
            if len(rows):
                rgbs = [false_colour(h5["hsi"][int(i)], wavelengths_nm, limits=limits) for i in rows]
                _scores(out, key, measure, np.stack([h5["conditions"][int(i), LOCAL_SLOTS[kind]] for i in rows]), rgbs)
    return out


def render(cubes, wavelengths_nm, limits_physical) -> list[np.ndarray]:
    """The first MAX_IMAGES images (physical units) as 8-bit RGB with the real dataset's stretch."""
    from ..spectral import false_colour

    limits = tuple(np.asarray(v, np.float32) for v in limits_physical)
    return [
        false_colour(np.asarray(cubes[i]), wavelengths_nm, limits=limits) for i in range(min(len(cubes), MAX_IMAGES))
    ]


def maps_of(rgbs: list[np.ndarray]) -> dict:
    """The seg and hed maps the extractors make of ``rgbs`` (kind → (N, C, H, W))."""
    from ..conditions import make_extractor

    return {kind: np.stack([make_extractor(kind)(r) for r in rgbs]) for kind in ("seg", "hed")}


def derived_agreement(rgbs: list[np.ndarray], source_maps: dict) -> dict:
    """A reference row's agreement (its images rendered by ``render``) with ``maps_of`` the real images it
    was derived from, image i from real image i: how much agreement that change alone (a blur, noise,
    the autoencoder) leaves, under the keys of ``samples_agreement``. The real-heldout row scores 1; its
    ``_other`` values are the chance level."""
    out: dict = {}
    for kind, key, measure in (("seg", "cond_seg_ari", seg_agreement), ("hed", "cond_hed_corr", edge_agreement)):
        _scores(out, key, measure, source_maps[kind][: len(rgbs)], rgbs)
    return out
