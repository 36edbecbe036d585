"""``condition`` stage: condition maps and embeddings of every source image (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2).

Output (a ``conditions`` artifact):
- ``<kind>/NNNNNN.png`` for the map kinds (hed, mlsd, sketch: 8-bit grey; seg: RGB), one per
  source image, in the source's size (or ``size``×``size``),
- ``rgb/NNNNNN.png``: the RGB image the conditions were computed from,
- ``content.safetensors`` / ``text.safetensors``: tensor ``embeddings`` (N, D) float32,
- ``index.json``: sources (with the RGB band choice), kinds, and per image its source, patch
  index, split, text and files. Load it with ``io.load_conditions``.

Images are read and computed in chunks (``chunks.py``), in this process or in ``workers``
processes, and written in image order as each chunk is done: the same bytes either way.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..artifacts.store import Artifact, ArtifactWriter, input_record
from ..common import log
from ..common.errors import ConfigError, InputError
from .chunks import ChunkPlan, chunk_results, worker_threads
from .common import MAP_CHANNELS, MAP_KINDS
from .extractors import check_backend, check_kind, make_extractor
from .sources import SourceList, SpectralCube, list_sources, load_images


@dataclass
class ConditionConfig:
    kinds: list[str]
    backends: dict[str, str] = field(default_factory=dict)  # kind → backend (default offline)
    settings: dict[str, dict] = field(default_factory=dict)  # kind → extractor settings
    size: int | None = None
    stretch_percent: float = 2.0
    hed_weights: str | None = None
    mlsd_weights: str | None = None
    pidinet_weights: str | None = None
    clip_model: str | None = None
    encoder: str | None = None  # an autoencoder artifact (content backend "encoder")
    device: str = "cpu"
    text: str | None = None  # one text for every image
    text_file: str | None = None  # one line per image (blank = no text)
    split: str | None = None  # dataset sources: only the patches of this split (e.g. held-out val conditions)
    # Worker processes (0: this process). Where it ran does not change what it computes, so it is
    # kept out of the manifest's config (the up-to-date key) and recorded under ``runtime``.
    workers: int = 0

    def validate(self) -> None:
        if not self.kinds:
            raise ConfigError("--kinds is empty; name at least one of hed, mlsd, sketch, seg, content, text")
        for kind in self.kinds:
            check_kind(kind)
        if len(set(self.kinds)) != len(self.kinds):
            raise ConfigError(f"--kinds {','.join(self.kinds)} names a kind twice")
        for kind, backend in self.backends.items():
            check_backend(kind, backend)
        if self.size is not None and not 8 <= self.size <= 8192:
            raise ConfigError(f"--size {self.size}: use a side length between 8 and 8192 pixels")
        if not 0 <= self.stretch_percent < 50:
            raise ConfigError("--stretch must be a percentage in [0, 50)")
        if self.text is not None and self.text_file is not None:
            raise ConfigError("give --text or --text-file, not both")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise ConfigError(
                f"--workers {self.workers}: give 0 (compute in this process) or a number of worker processes, "
                "e.g. --workers 4"
            )


def _texts(cfg: ConditionConfig, count: int) -> tuple[list[str], str]:
    if cfg.text is not None:
        return [cfg.text] * count, "--text"
    if cfg.text_file is not None:
        path = Path(cfg.text_file)
        if not path.is_file():
            raise InputError(f"--text-file {path} does not exist; give a text file with one line per image")
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) != count:
            raise InputError(
                f"--text-file {path} has {len(lines)} lines but the sources hold {count} images; "
                "give one line per image (blank for no text), in index order"
            )
        return [line.strip() for line in lines], "--text-file"
    log.warn("text: no --text or --text-file given; every image gets the empty (no-text) embedding")
    return [""] * count, "none"


def _image_shape(listing: SourceList, size: int | None) -> tuple[tuple[int, int], str]:
    """(H, W) every image must have, and the image it was taken from. Artifact sources know their
    patch size; image files are checked as they are read (``chunks.compute_chunk``)."""
    first = listing.refs[0]
    if size is not None:
        return (size, size), first.name
    spec = listing.specs[first.source]
    shape = spec.shape or load_images(listing.specs, [first])[0].rgb.shape[:2]
    used = {ref.source for ref in listing.refs}
    known = sorted({s.shape for k, s in enumerate(listing.specs) if s.shape is not None and k in used})
    if any(tuple(other) != tuple(shape) for other in known):
        shapes = sorted({tuple(shape), *map(tuple, known)})
        raise ConfigError(
            f"the source images have different sizes ({', '.join(f'{h}x{w}' for h, w in shapes[:4])}); "
            "pass --size N to resize them all to N×N"
        )
    return (int(shape[0]), int(shape[1])), first.name


def _check_inputs(extractor, listing: SourceList) -> None:
    """What ``extractor`` runs on (its ``takes``) exists for every image, checked before anything is written."""
    if extractor.takes == "rgb":
        return
    if extractor.takes == "labels":
        for ref in listing.refs:
            if not listing.specs[ref.source].has_labels:
                raise InputError(
                    f"seg from labels: source {ref.name} has no label map; ingest the dataset "
                    "with --labels, or drop --labels to segment the image itself"
                )
        return
    cubes, seen = [], set()
    for ref in listing.refs:
        spec = listing.specs[ref.source]
        if spec.kind != "h5":
            raise InputError(
                f"{extractor.kind} from an hsigen encoder needs hyperspectral sources (an hsi-dataset or "
                f"hsi-samples artifact), but {ref.name} is an RGB image; ingest it with `hsigen ingest`, or "
                "drop --encoder to use the offline (or --clip-model) content backend"
            )
        if ref.source not in seen:  # one wavelength grid per source: the alignment is checked once
            seen.add(ref.source)
            cubes.append(SpectralCube(np.zeros((0, 0, 0), np.float32), spec.wavelengths_nm, spec.scale, spec.offset))
    extractor.check_inputs(cubes)


def _weights_record(path: str, kind: str) -> dict:
    """Manifest input record of a weights file, or of a model directory (hash of its files)."""
    import hashlib

    from ..artifacts.store import file_sha256

    p = Path(path)
    if p.is_file():
        return {**input_record(p), "kind": kind}
    digest = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        digest.update(f.relative_to(p).as_posix().encode() + b"\0" + file_sha256(f).encode())
    return {"path": str(p), "sha256": digest.hexdigest(), "kind": kind}


# Manifest input kind of each local resource a backend loads.
_RESOURCE_RECORDS = {
    "hed_weights": "hed-weights",
    "mlsd_weights": "mlsd-weights",
    "pidinet_weights": "pidinet-weights",
    "clip_model": "clip-model",
    "encoder": "autoencoder",
}


def _resource_records(cfg: ConditionConfig, backends: dict) -> list[dict]:
    """One input record per local weights file / model directory / autoencoder in use."""
    from .extractors import RESOURCES

    used = []
    for kind, backend in backends.items():
        keyword = RESOURCES.get((kind, backend), (None,))[0]
        if keyword is not None and keyword not in used:
            used.append(keyword)
    return [
        input_record(getattr(cfg, keyword))
        if keyword == "encoder"
        else _weights_record(getattr(cfg, keyword), _RESOURCE_RECORDS[keyword])
        for keyword in used
    ]


def _only_split(source_set: SourceList, split: str) -> SourceList:
    """The images of ``split`` only; each keeps its ``item`` (its row in the source dataset)."""
    unsplit = [s["path"] for k, s in enumerate(source_set.sources) if not any(
        im.source == k and im.split is not None for im in source_set.refs)]  # fmt: skip
    if unsplit:
        raise ConfigError(
            f"--split {split}: {', '.join(unsplit)} has no train/val split (only hsi-datasets made with "
            "--val-fraction do); leave --split out or give such a dataset"
        )
    source_set.refs = [im for im in source_set.refs if im.split == split]
    if not source_set.refs:
        raise ConfigError(f"--split {split}: no patch of the sources is in the {split} split")
    return source_set


def _extractor_arguments(cfg: ConditionConfig, kind: str) -> dict:
    return dict(
        hed_weights=cfg.hed_weights,
        mlsd_weights=cfg.mlsd_weights,
        pidinet_weights=cfg.pidinet_weights,
        clip_model=cfg.clip_model,
        encoder=cfg.encoder,
        device=cfg.device,
        **dict(cfg.settings.get(kind, {})),
    )


def run(sources: list[str | Path], out: str | Path, cfg: ConditionConfig, overwrite: bool = False) -> Artifact:
    cfg.validate()
    backends = {kind: cfg.backends.get(kind, "offline") for kind in cfg.kinds}
    arguments = {kind: _extractor_arguments(cfg, kind) for kind in cfg.kinds}
    # Build every extractor first: a missing or wrong weights path fails before any reading.
    extractors = {kind: make_extractor(kind, backends[kind], **arguments[kind]) for kind in cfg.kinds}
    listing = list_sources(list(sources), cfg.stretch_percent)
    if cfg.split is not None:
        listing = _only_split(listing, cfg.split)
    extracted = [k for k in cfg.kinds if k != "text"]
    for kind in extracted:
        _check_inputs(extractors[kind], listing)
    (height, width), first_name = _image_shape(listing, cfg.size)
    count = len(listing.refs)
    texts, text_from = _texts(cfg, count) if "text" in cfg.kinds else ([""] * count, "none")
    text_embeddings = extractors["text"].embed(texts) if "text" in cfg.kinds else None  # validates vocab

    inputs = list(listing.inputs) + _resource_records(cfg, backends)
    if cfg.text_file is not None:
        inputs.append(input_record(cfg.text_file))
    kinds_config = {kind: extractors[kind].settings() for kind in cfg.kinds}
    if "text" in cfg.kinds:
        kinds_config["text"]["source"] = text_from
    config = {
        "kinds": kinds_config,
        "count": count,
        "size": [int(height), int(width)],
        "resize": cfg.size,
        "stretch_percent": cfg.stretch_percent,
        "rgb_sources": [s.get("rgb") for s in listing.sources],
        **({"text": cfg.text} if cfg.text is not None else {}),
    }
    writer = ArtifactWriter(Path(out), "conditions", "condition", config, inputs, overwrite)
    if writer.up_to_date():
        log.info("condition: up to date")
        return writer.artifact

    plan = ChunkPlan(
        kinds=extracted,
        extractors={kind: (backends[kind], arguments[kind]) for kind in extracted},
        specs=listing.specs,
        size=cfg.size,
        shape=(int(height), int(width)),
        first_name=first_name,
        threads=worker_threads(cfg.workers) if cfg.workers else 0,
    )
    vocab = list(extractors["text"].vocab) if "text" in cfg.kinds and backends["text"] == "offline" else None
    if cfg.workers:  # the workers build their own; free this process's copy of any network weights
        extractors = {}
    map_kinds = [k for k in cfg.kinds if k in MAP_KINDS]
    with writer.building() as tmp:
        items = []
        for kind in ["rgb", *map_kinds]:
            (tmp / kind).mkdir()
        content = []
        sums = {kind: 0.0 for kind in map_kinds}
        with (
            log.progress("condition", count) as bar,
            contextlib.closing(chunk_results(plan, listing.refs, cfg.workers, extractors)) as chunks,
        ):
            for first, results in chunks:
                for n, result in enumerate(results, start=first):
                    ref, name = listing.refs[n], f"{n:06d}"
                    files = {}
                    for kind in ["rgb", *map_kinds]:
                        files[kind] = f"{kind}/{name}.png"
                        (tmp / files[kind]).write_bytes(result.files[kind])
                    for kind in map_kinds:
                        sums[kind] += result.means[kind]
                    if result.content is not None:
                        content.append(result.content)
                    items.append(
                        {
                            "id": name,
                            "source": ref.source,
                            "item": ref.item,
                            "name": ref.name,
                            "split": ref.split,
                            "text": texts[n],
                            "files": files,
                        }
                    )
                bar.advance(len(results))
        embeddings = {}
        if "content" in cfg.kinds:
            embeddings["content"] = np.stack(content)
        if text_embeddings is not None:
            embeddings["text"] = text_embeddings
        for kind, matrix in embeddings.items():
            _save_embeddings(tmp / f"{kind}.safetensors", matrix, kind)
        index = {
            "count": count,
            "height": int(height),
            "width": int(width),
            "kinds": {
                kind: (
                    {"type": "map", "channels": MAP_CHANNELS[kind], "dir": kind}
                    if kind in MAP_KINDS
                    else {"type": "embedding", "file": f"{kind}.safetensors", "dim": int(embeddings[kind].shape[1])}
                )
                for kind in cfg.kinds
            },
            "sources": listing.sources,
            "items": items,
        }
        if vocab is not None:
            index["kinds"]["text"]["vocab"] = vocab
        (tmp / "index.json").write_text(json.dumps(index, indent=1) + "\n")
        writer.metrics = {
            "count": count,
            **{f"{kind}_mean": s / max(count, 1) for kind, s in sums.items()},
            **{f"{kind}_dim": int(m.shape[1]) for kind, m in embeddings.items()},
        }
        writer.extra = {"runtime": {"workers": cfg.workers}}
    log.info(f"condition: {count} images × {', '.join(cfg.kinds)} → {writer.out}")
    return writer.artifact


def _save_embeddings(path: Path, matrix: np.ndarray, kind: str) -> None:
    """``matrix`` as the safetensors tensor ``embeddings`` (float32, little-endian). The header is
    written here with sorted keys: safetensors' own writer orders the metadata by a hash map, so
    the same embeddings gave different bytes from one process to the next."""
    data = np.ascontiguousarray(matrix, dtype="<f4")
    header = {
        "__metadata__": {"format": "hsigen-conditions", "kind": kind},
        "embeddings": {"dtype": "F32", "shape": list(data.shape), "data_offsets": [0, data.nbytes]},
    }
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors pads it
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + data.tobytes())
