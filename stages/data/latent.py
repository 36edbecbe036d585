"""``train-diffusion --space latent`` over a corpus, streamed: latents and condition maps come
from the on-disk caches of ``latent_cache.py``, filled for exactly the (patch, orientation)
pairs the batch plan reads; each step's batch is read from the memory maps by DataLoader
workers. Memory stays bounded by the batch, not the corpus.

Conditions are extracted on the fly with the offline extractors from each patch's RGB bands
(bands nearest 640/550/470 nm) with one 2 % stretch for the whole corpus, estimated on a seeded
subset of training patches (the in-memory path uses the dataset's own stretch). A
``conditions`` artifact and HyperLDM's RGB mode use the in-memory path (one dataset).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..common.errors import ConfigError
from .corpus import Corpus
from .latent_cache import ORIENTATIONS, ConditionCache, LatentCache, cache_key, cache_root, describe_fill
from .plan import BatchPlan
from .stream import PatchReader, dihedral_np

STRETCH_PATCHES = 256


@dataclass
class LatentCorpus:
    corpus: Corpus
    ae: object
    ae_path: Path
    ae_sha: str
    local_kinds: list
    global_dims: dict
    available: np.ndarray
    latent_shape: tuple
    factor: int
    augment: bool
    rgb_info: dict
    extractors: dict
    space_config: dict = field(default_factory=dict)
    spectral: dict = field(default_factory=dict)

    @property
    def inputs(self) -> list[Path]:
        return [self.ae_path] + [s.path for s in self.corpus.sources]

    @property
    def size(self) -> int:
        return self.corpus.size

    def latent_dirs(self) -> list[Path]:
        return [cache_root() / "latents" / cache_key(self.ae_sha, s.sha256) for s in self.corpus.sources]

    def condition_dirs(self) -> list[Path]:
        settings = {k: e.settings() for k, e in self.extractors.items()}
        return [
            cache_root() / "conditions" / cache_key(s.sha256, settings, self.rgb_info["low"], self.rgb_info["high"])
            for s in self.corpus.sources
        ]

    def write_files(self, tmp: Path) -> None:
        from ..diffusion.latent_layout import copy_autoencoder

        copy_autoencoder(self.ae_path, tmp)

    def plan(self, seed: int, batch: int, world_size: int) -> BatchPlan:
        return BatchPlan(
            [s.train_rows for s in self.corpus.sources],
            self.corpus.weights(),
            seed,
            batch,
            self.size,
            self.size,
            world_size=world_size,
            symmetries=self.augment,
        )

    def fill(self, plan: BatchPlan, start: int, stop: int, device) -> None:
        """Encode / extract whatever micro-steps [start, stop) will read and the caches lack."""
        import torch

        needed = plan.needed(start, stop)
        reader = PatchReader([s.h5_path for s in self.corpus.sources])

        def encode(cubes):
            with torch.no_grad():
                return self.ae.encode(torch.from_numpy(cubes).to(device)).float().cpu().numpy()

        latent_counts, map_counts = [], []
        channels = _map_channels()
        for k, (src, ldir, cdir) in enumerate(zip(self.corpus.sources, self.latent_dirs(), self.condition_dirs())):
            pairs = [(r, o) for s, r, o in needed if s == k]
            latent_counts.append(LatentCache(ldir, src.patches, self.latent_shape).fill(reader, k, pairs, encode))
            if self.extractors:
                cache = ConditionCache(cdir, src.patches, self.size, channels, self.global_dims)
                map_counts.append(cache.fill(reader, k, [r for r, _ in pairs], self._extract))
        describe_fill("latents", latent_counts)
        if self.extractors:
            describe_fill("condition sets", map_counts)

    def _extract(self, cube: np.ndarray):
        from ..diffusion.control import LOCAL_SLOTS
        from ..spectral import false_colour

        rgb = false_colour(
            cube,
            self.corpus.wavelengths_nm,
            limits=(np.asarray(self.rgb_info["low"], np.float32), np.asarray(self.rgb_info["high"], np.float32)),
        )
        maps = np.zeros((_map_channels(), self.size, self.size), np.float32)
        embeddings = {}
        for kind, extractor in self.extractors.items():
            value = extractor(rgb)
            if kind in LOCAL_SLOTS:
                maps[LOCAL_SLOTS[kind]] = value
            else:
                embeddings[kind] = np.asarray(value, np.float32).reshape(-1)
        return maps, embeddings

    def step_batches(self, plan: BatchPlan, rank: int, start: int, stop: int) -> LatentStepBatches:
        return LatentStepBatches(
            [str(d) for d in self.latent_dirs()],
            [str(d) for d in self.condition_dirs()] if self.extractors else None,
            list(self.global_dims),
            plan,
            rank,
            start,
            stop,
        )


def _map_channels() -> int:
    from ..diffusion.control import LOCAL_MAP_CHANNELS

    return LOCAL_MAP_CHANNELS


class LatentStepBatches:
    """Item i: micro-step ``start + i``'s latents (b, C, h, w), maps (b, 6, S, S) in [0, 1] and
    embeddings, read from the memory-mapped caches (opened once per worker process)."""

    def __init__(self, latent_dirs, condition_dirs, global_kinds, plan, rank, start, stop):
        self.latent_dirs, self.condition_dirs, self.global_kinds = latent_dirs, condition_dirs, global_kinds
        self.plan, self.rank, self.start, self.stop = plan, rank, int(start), int(stop)
        self._arrays = None

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getstate__(self):
        return {**self.__dict__, "_arrays": None}

    def _open(self):
        if self._arrays is None:
            load = lambda d, n: np.load(Path(d) / n, mmap_mode="r")  # noqa: E731
            self._arrays = {
                "latents": [load(d, "latents.npy") for d in self.latent_dirs],
                "maps": [load(d, "maps.npy") for d in self.condition_dirs] if self.condition_dirs else None,
                "embeddings": {k: [load(d, f"{k}.npy") for d in self.condition_dirs] for k in self.global_kinds},
            }
        return self._arrays

    def __getitem__(self, i: int) -> dict:
        import torch

        step = self.start + int(i)
        arrays, d = self._open(), self.plan.for_step(step, self.rank)
        latents = np.stack([arrays["latents"][s][r, o] for s, r, o in zip(d.source, d.row, d.symmetry)])
        out = {"micro_step": step, "latents": torch.from_numpy(latents.astype(np.float32))}
        if arrays["maps"] is not None:
            maps = np.stack([dihedral_np(arrays["maps"][s][r], int(o)) for s, r, o in zip(d.source, d.row, d.symmetry)])
            out["maps"] = torch.from_numpy(maps.astype(np.float32) / 255.0)
        out["embeddings"] = {
            k: torch.from_numpy(np.stack([v[s][r] for s, r in zip(d.source, d.row)]).astype(np.float32))
            for k, v in arrays["embeddings"].items()
        }
        return out


def _stretch(corpus: Corpus, seed: int, percent: float = 2.0) -> dict:
    from ..spectral.preview import RGB_NM, rgb_band_indices, stretch_limits
    from .subset import read_subset

    bands = rgb_band_indices(corpus.wavelengths_nm)
    sample = read_subset(corpus, "train", STRETCH_PATCHES, seed)
    rgb = np.stack([sample.hsi[:, i] for i in bands], axis=-1).reshape(-1, 3)
    low, high = stretch_limits(rgb, percent)
    return {
        "targets_nm": list(RGB_NM),
        "bands": bands,
        "wavelengths_nm": [float(corpus.wavelengths_nm[i]) for i in bands],
        "stretch_percent": percent,
        "low": low.tolist(),
        "high": high.tolist(),
        "estimated_on_patches": int(len(sample.hsi)),
        "units": "per-source normalised (physical = value * scale + offset of each source)",
    }


def prepare_latent_corpus(inputs: dict, model_cfg: dict, device, seed: int) -> LatentCorpus:
    """``inputs``: ``autoencoder``, ``dataset`` (one or more paths / corpus YAML files), ``kinds``."""
    from ..artifacts import input_record, spectral_block
    from ..autoencoder.io import load_autoencoder
    from ..conditions import make_extractor
    from ..diffusion.control import CONDITION_KINDS, LOCAL_SLOTS
    from ..diffusion.latent_layout import AUTOENCODER_DIR, DEFAULT_KINDS, parse_kinds
    from .corpus import open_corpus

    if inputs.get("conditions") is not None:
        raise ConfigError(
            "--conditions (a conditions artifact) trains from memory on one dataset; a streamed corpus "
            "extracts its conditions on the fly (drop --conditions, or use --loader memory)"
        )
    if model_cfg.get("rgb_condition"):
        raise ConfigError("--rgb-condition (HyperLDM) trains from memory on one dataset; use --loader memory")
    corpus = open_corpus(inputs["dataset"])
    ae_path = Path(inputs["autoencoder"])
    ae = load_autoencoder(ae_path, device)
    if ae.kind != "kl":
        raise ConfigError(f"--space latent over a streamed corpus needs a `kl` autoencoder; this one is {ae.kind}")
    corpus.check_autoencoder(ae)
    kinds = parse_kinds(inputs.get("kinds"))
    kinds = list(DEFAULT_KINDS) if kinds is None else kinds
    if "text" in kinds:
        raise ConfigError(
            "text conditions come from a conditions artifact; drop text from --kinds for a streamed corpus"
        )
    extractors = {k: make_extractor(k) for k in kinds}
    rgb_info = _stretch(corpus, seed) if extractors else {"low": [0, 0, 0], "high": [1, 1, 1]}
    h = corpus.size // int(ae.factor)
    probe = LatentCorpus(
        corpus,
        ae,
        ae_path,
        input_record(ae_path)["sha256"],
        [k for k in kinds if k in LOCAL_SLOTS],
        {},
        np.array([k in kinds for k in CONDITION_KINDS]),
        (int(ae.latent_channels), h, h),
        int(ae.factor),
        bool(model_cfg.get("augment", True)),
        rgb_info,
        extractors,
    )
    if any(k not in LOCAL_SLOTS for k in kinds):  # global dims from one patch's descriptors
        reader = PatchReader([corpus.sources[0].h5_path])
        _, emb = probe._extract(reader.dataset(0, "hsi")[int(corpus.sources[0].train_rows[0])])
        probe.global_dims = {k: int(v.shape[0]) for k, v in emb.items()}
    settings = {k: e.settings() for k, e in extractors.items()}
    probe.space_config = {
        "autoencoder": {
            "path": str(ae_path),
            "kind": ae.kind,
            "factor": int(ae.factor),
            "latent_channels": int(ae.latent_channels),
            "scaling_factor": float(ae.scaling_factor),
            "copied_to": AUTOENCODER_DIR,
        },
        "dataset": [str(s.path) for s in corpus.sources],
        "patch_size": corpus.size,
        "training_patches": int(sum(corpus.train_counts())),
        "orientations": ORIENTATIONS if probe.augment else 1,
        "loader": "stream",
        "conditions": {
            "source": "on-the-fly (offline extractors), cached as uint8",
            "local": [k for k in CONDITION_KINDS if k in LOCAL_SLOTS and k in kinds],
            "global": {k: {"dim": d, **settings.get(k, {})} for k, d in probe.global_dims.items()},
            "settings": {k: settings[k] for k in kinds if k in LOCAL_SLOTS},
        },
        "rgb": rgb_info,
        "corpus_normalisation": corpus.normalisation(),
    }
    if model_cfg.get("standardise_latents"):
        probe.space_config["latent_standardisation"] = _latent_statistics(corpus, ae, device)
    first = corpus.sources[0]
    probe.spectral = spectral_block(corpus.wavelengths_nm, first.scale, first.offset)
    return probe


STANDARDISE_PATCHES = 256  # train patches, spread over the sources, that the channel statistics come from


def _latent_statistics(corpus, ae, device) -> dict:
    """Per-channel latent statistics (``diffusion/channel_norm.py``) of up to STANDARDISE_PATCHES
    train patches taken evenly from every source's train rows (bounded memory; rotations and
    flips leave per-channel statistics unchanged, so the patches are encoded as stored)."""
    import torch

    from ..diffusion.channel_norm import channel_statistics

    reader = PatchReader([s.h5_path for s in corpus.sources])
    per_source = max(1, STANDARDISE_PATCHES // len(corpus.sources))
    latents = []
    for k, source in enumerate(corpus.sources):
        rows = np.asarray(source.train_rows)
        picked = np.unique(rows[np.linspace(0, len(rows) - 1, min(per_source, len(rows))).astype(int)])
        hsi = reader.dataset(k, "hsi")
        for start in range(0, len(picked), 32):
            cubes = np.stack([np.asarray(hsi[int(r)], np.float32) for r in picked[start : start + 32]])
            with torch.no_grad():
                latents.append(ae.encode(torch.from_numpy(cubes).to(device)).float().cpu().numpy())
    return channel_statistics(np.concatenate(latents))
