"""``condition`` stage: condition maps and embeddings of every source image (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2).

Output (a ``conditions`` artifact):
- ``<kind>/NNNNNN.png`` for the map kinds (hed, mlsd, sketch: 8-bit grey; seg: RGB), one per
  source image, in the source's size (or ``size``×``size``),
- ``rgb/NNNNNN.png``: the RGB image the conditions were computed from,
- ``content.safetensors`` / ``text.safetensors``: tensor ``embeddings`` (N, D) float32,
- ``index.json``: sources (with the RGB band choice), kinds, and per image its source, patch
  index, split, text and files. Load it with ``io.load_conditions``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..artifacts.store import Artifact, ArtifactWriter, input_record
from ..common import log
from ..common.errors import ConfigError, InputError
from ..spectral.preview import save_png
from .common import MAP_CHANNELS, MAP_KINDS, to_uint8
from .extractors import check_backend, check_kind, make_extractor
from .sources import SourceSet, read_sources, resize_labels, resize_rgb

BATCH = 32  # images per network call of the pretrained backends


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


def _prepare_images(sources: SourceSet, size: int | None) -> list[np.ndarray]:
    rgbs = [resize_rgb(image.rgb, size) for image in sources.images]
    shapes = sorted({r.shape[:2] for r in rgbs})
    if len(shapes) > 1:
        raise ConfigError(
            f"the source images have different sizes ({', '.join(f'{h}x{w}' for h, w in shapes[:4])}); "
            "pass --size N to resize them all to N×N"
        )
    return rgbs


def _extractor_inputs(extractor, sources: SourceSet, rgbs: list, size: int | None) -> list:
    """What ``extractor`` runs on per image (its ``takes``), checked before anything is written."""
    if extractor.takes == "rgb":
        inputs = rgbs
    elif extractor.takes == "labels":
        for image in sources.images:
            if image.labels is None:
                raise InputError(
                    f"seg from labels: source {image.name} has no label map; ingest the dataset "
                    "with --labels, or drop --labels to segment the image itself"
                )
        inputs = [resize_labels(image.labels, size) for image in sources.images]
    else:
        for image in sources.images:
            if image.cube is None:
                raise InputError(
                    f"{extractor.kind} from an hsigen encoder needs hyperspectral sources (an hsi-dataset or "
                    f"hsi-samples artifact), but {image.name} is an RGB image; ingest it with `hsigen ingest`, or "
                    "drop --encoder to use the offline (or --clip-model) content backend"
                )
        inputs = [image.cube for image in sources.images]
    extractor.check_inputs(inputs)
    return inputs


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


def _only_split(source_set: SourceSet, split: str) -> SourceSet:
    """The images of ``split`` only; each keeps its ``item`` (its row in the source dataset)."""
    unsplit = [s["path"] for k, s in enumerate(source_set.sources) if not any(
        im.source == k and im.split is not None for im in source_set.images)]  # fmt: skip
    if unsplit:
        raise ConfigError(
            f"--split {split}: {', '.join(unsplit)} has no train/val split (only hsi-datasets made with "
            "--val-fraction do); leave --split out or give such a dataset"
        )
    source_set.images = [im for im in source_set.images if im.split == split]
    if not source_set.images:
        raise ConfigError(f"--split {split}: no patch of the sources is in the {split} split")
    return source_set


def run(sources: list[str | Path], out: str | Path, cfg: ConditionConfig, overwrite: bool = False) -> Artifact:
    cfg.validate()
    backends = {kind: cfg.backends.get(kind, "offline") for kind in cfg.kinds}
    # Build every extractor first: a missing or wrong weights path fails before any reading.
    extractors = {
        kind: make_extractor(
            kind,
            backends[kind],
            hed_weights=cfg.hed_weights,
            mlsd_weights=cfg.mlsd_weights,
            pidinet_weights=cfg.pidinet_weights,
            clip_model=cfg.clip_model,
            encoder=cfg.encoder,
            device=cfg.device,
            **dict(cfg.settings.get(kind, {})),
        )
        for kind in cfg.kinds
    }
    source_set = read_sources(list(sources), cfg.stretch_percent)
    if cfg.split is not None:
        source_set = _only_split(source_set, cfg.split)
    rgbs = _prepare_images(source_set, cfg.size)
    extracted = [k for k in cfg.kinds if k != "text"]
    per_image = {kind: _extractor_inputs(extractors[kind], source_set, rgbs, cfg.size) for kind in extracted}
    count = len(rgbs)
    texts, text_from = _texts(cfg, count) if "text" in cfg.kinds else ([""] * count, "none")
    text_embeddings = extractors["text"].embed(texts) if "text" in cfg.kinds else None  # validates vocab

    inputs = list(source_set.inputs) + _resource_records(cfg, backends)
    if cfg.text_file is not None:
        inputs.append(input_record(cfg.text_file))
    height, width = rgbs[0].shape[:2]
    kinds_config = {kind: extractors[kind].settings() for kind in cfg.kinds}
    if "text" in cfg.kinds:
        kinds_config["text"]["source"] = text_from
    config = {
        "kinds": kinds_config,
        "count": count,
        "size": [int(height), int(width)],
        "resize": cfg.size,
        "stretch_percent": cfg.stretch_percent,
        "rgb_sources": [s.get("rgb") for s in source_set.sources],
        **({"text": cfg.text} if cfg.text is not None else {}),
    }
    writer = ArtifactWriter(Path(out), "conditions", "condition", config, inputs, overwrite)
    if writer.up_to_date():
        log.info("condition: up to date")
        return writer.artifact

    with writer.building() as tmp:
        items = []
        for kind in ["rgb", *[k for k in cfg.kinds if k in MAP_KINDS]]:
            (tmp / kind).mkdir()
        content = []
        sums = {kind: 0.0 for kind in cfg.kinds if kind in MAP_KINDS}
        with log.progress("condition", count) as bar:
            for first in range(0, count, BATCH):
                rows = range(first, min(first + BATCH, count))
                outputs = {kind: extractors[kind].batch([per_image[kind][n] for n in rows]) for kind in extracted}
                for j, n in enumerate(rows):
                    image, name = source_set.images[n], f"{n:06d}"
                    files = {"rgb": f"rgb/{name}.png"}
                    save_png(tmp / files["rgb"], rgbs[n])
                    for kind in (k for k in cfg.kinds if k in MAP_KINDS):
                        files[kind] = f"{kind}/{name}.png"
                        _save_map(tmp / files[kind], outputs[kind][j])
                        sums[kind] += float(outputs[kind][j].mean())
                    if "content" in outputs:
                        content.append(outputs["content"][j])
                    items.append(
                        {
                            "id": name,
                            "source": image.source,
                            "item": image.item,
                            "name": image.name,
                            "split": image.split,
                            "text": texts[n],
                            "files": files,
                        }
                    )
                bar.advance(len(rows))
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
            "sources": source_set.sources,
            "items": items,
        }
        if "text" in cfg.kinds and backends["text"] == "offline":
            index["kinds"]["text"]["vocab"] = list(extractors["text"].vocab)
        (tmp / "index.json").write_text(json.dumps(index, indent=1) + "\n")
        writer.metrics = {
            "count": count,
            **{f"{kind}_mean": s / max(count, 1) for kind, s in sums.items()},
            **{f"{kind}_dim": int(m.shape[1]) for kind, m in embeddings.items()},
        }
    log.info(f"condition: {count} images × {', '.join(cfg.kinds)} → {writer.out}")
    return writer.artifact


def _save_map(path: Path, chw: np.ndarray) -> None:
    import cv2

    image = to_uint8(chw)
    if image.ndim == 3:
        save_png(path, image)
    elif not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def _save_embeddings(path: Path, matrix: np.ndarray, kind: str) -> None:
    from safetensors.numpy import save_file

    save_file(
        {"embeddings": np.ascontiguousarray(matrix, dtype=np.float32)},
        str(path),
        metadata={"kind": kind, "format": "hsigen-conditions"},
    )
