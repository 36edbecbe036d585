"""The conditions a latent ``diffusion-model`` samples with: maps from files or a conditions
artifact, ``--content`` and ``--text`` embeddings, and HyperLDM's RGB image — read and checked
against what the model was trained with, before anything is written.

Composable control: any subset of the kinds the model was trained with may be given; the
others are absent (their presence flags are 0), exactly as condition dropout showed them in
training. Nothing given = unconditional sampling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...common.errors import ConfigError, InputError

_KIND_IN_NAME = re.compile(r"[a-z]+")


@dataclass
class ResolvedConditions:
    """A table of m condition rows; sample i uses row i mod m (``take``)."""

    maps: np.ndarray  # (m, 6, S, S)
    keep: np.ndarray  # (m, 6) 0/1 per control.CONDITION_KINDS
    embeddings: dict  # kind → (m, D)
    rgb: np.ndarray | None  # (m, 3, S, S) normalised (HyperLDM) or None
    rgb_png: list | None  # m uint8 RGB images, saved beside the samples (HyperLDM)
    inputs: list[Path]  # files/artifacts read (manifest inputs)
    described: dict  # plain description for the manifest

    def table_rows(self, samples: slice) -> np.ndarray:
        return np.arange(samples.start, samples.stop) % len(self.keep)

    def take(self, samples: slice) -> ResolvedConditions:
        """The conditions of samples ``samples`` (a slice of sample numbers), one row each."""
        rows = self.table_rows(samples)
        return ResolvedConditions(
            self.maps[rows],
            self.keep[rows],
            {k: v[rows] for k, v in self.embeddings.items()},
            None if self.rgb is None else self.rgb[rows],
            None if self.rgb_png is None else [self.rgb_png[r] for r in rows],
            self.inputs,
            self.described,
        )

    def tiled(self, n: int) -> ResolvedConditions:
        """One row per sample (to set per-sample conditions in memory)."""
        return self.take(slice(0, n))

    def with_local_maps(self, n: int, maps: dict) -> ResolvedConditions:
        """One row per sample, sample i under ``maps[kind][i]`` for each kind given ((n, C, S, S) in the
        conditions stage's units) and without the local kinds not given: per-sample maps in memory."""
        from ..control import CONDITION_KINDS, LOCAL_SLOTS

        rows = self.tiled(n)
        for kind in LOCAL_SLOTS:
            rows.keep[:, CONDITION_KINDS.index(kind)] = 0
        for kind, values in maps.items():
            rows.keep[:, CONDITION_KINDS.index(kind)] = 1
            rows.maps[:, LOCAL_SLOTS[kind]] = values
        return rows


def kind_of(spec: str, allowed) -> tuple[str, Path]:
    """``KIND=FILE``, a file named after its kind (``hed.png``, ``seg_03.png``), or a map inside
    a conditions artifact's kind folder (``cond/seg/000070.png``)."""
    if "=" in spec:
        kind, _, path = spec.partition("=")
        kind = kind.strip().lower()
        if kind not in allowed:
            raise ConfigError(f"--cond {spec}: unknown condition kind {kind!r}; map kinds are {', '.join(allowed)}")
        return kind, Path(path)
    path = Path(spec)
    words = _KIND_IN_NAME.findall(path.stem.lower()) + [path.parent.name.lower()]
    kind = next((w for w in words if w in allowed), None)
    if kind is None:
        raise ConfigError(
            f"--cond {spec}: cannot tell the condition kind from the file name; name the file after "
            f"its kind (hed.png, seg.png …) or write KIND=FILE with KIND one of {', '.join(allowed)}"
        )
    return kind, path


def read_map(kind: str, path: Path, size: int) -> np.ndarray:
    """A condition PNG as (C, size, size) float32 in [0, 1] (grey for edge-like kinds, RGB for seg)."""
    from ...conditions.common import MAP_CHANNELS, quantise

    rgb = read_sized_rgb(kind, path, size, f"resize it (e.g. `hsigen condition IMAGE --size {size}`) or pass --size")
    values = rgb.astype(np.float32) / 255.0
    if MAP_CHANNELS[kind] == 1:
        values = values.mean(axis=-1)
    return quantise(values)


def read_sized_rgb(kind: str, path: Path, size: int, fix: str) -> np.ndarray:
    """``--cond KIND=FILE`` as uint8 RGB, refused unless it exists and is ``size`` × ``size``."""
    from ...conditions.sources import read_rgb

    if not path.is_file():
        raise InputError(f"--cond {kind}={path}: the file does not exist")
    rgb = read_rgb(path)
    if rgb.shape[:2] != (size, size):
        raise InputError(
            f"--cond {kind}={path} is {rgb.shape[1]}×{rgb.shape[0]} pixels but the samples are {size}×{size}; {fix}"
        )
    return rgb


def _embed(kind: str, settings: dict, rgb=None, text: str | None = None) -> np.ndarray:
    from ...conditions import make_extractor

    backend = settings.get("backend", "offline")
    if kind == "content":
        extractor = make_extractor("content", backend, clip_model=settings.get("model"))
        return extractor(rgb)
    options = {"vocab": settings["vocab"]} if backend == "offline" and settings.get("vocab") else {}
    return make_extractor("text", backend, clip_model=settings.get("model"), **options).embed([text])[0]


def resolve_conditions(model, request, n: int, size: int) -> ResolvedConditions:
    """Read and check every condition of ``request`` (a ``generator.ConditionRequest``) BEFORE
    anything is written. The result holds one table row per conditions-artifact item (one row
    without an artifact); sample i uses row i mod rows, so memory does not grow with n."""
    from ...conditions.sources import read_rgb, resize_rgb
    from ..control import CONDITION_KINDS, LOCAL_KINDS, LOCAL_MAP_CHANNELS, LOCAL_SLOTS

    cfg = model.config
    trained_local = cfg["conditions"]["local"]
    trained_global = cfg["conditions"]["global"]
    rgb_mode = bool(cfg["model"]["rgb_condition"])
    map_kinds = tuple(LOCAL_KINDS) + (("rgb",) if rgb_mode else ())
    m = 1
    if request.conditions is not None:
        from ...conditions.io import load_conditions

        if request.files:
            raise ConfigError("give condition files (--cond) or a conditions artifact, not both")
        cond = load_conditions(request.conditions)
        m = min(len(cond), n)
    maps = np.zeros((m, LOCAL_MAP_CHANNELS, size, size), np.float32)
    keep = np.zeros((m, len(CONDITION_KINDS)), np.float32)
    embeddings = {k: np.zeros((m, int(v["dim"])), np.float32) for k, v in trained_global.items()}
    rgb_png = None
    inputs: list[Path] = []
    described: dict = {"files": {}, "conditions": None, "content": None, "text": None}

    def need(kind: str) -> None:
        if kind != "rgb" and kind not in trained_local and kind not in trained_global:
            known = ", ".join(trained_local + list(trained_global)) or "no conditions (unconditional)"
            raise ConfigError(f"this model was trained without {kind!r} conditions; it knows {known}")

    if request.conditions is not None:
        if (cond.index["height"], cond.index["width"]) != (size, size):
            raise InputError(
                f"{request.conditions} holds {cond.index['height']}×{cond.index['width']} maps but the "
                f"samples are {size}×{size}; rebuild it with --size {size} or pass --size"
            )
        usable = [k for k in list(cond.maps) + list(cond.embeddings) if k in trained_local or k in trained_global]
        if not usable:
            raise ConfigError(
                f"{request.conditions} holds none of the kinds this model knows "
                f"({', '.join(trained_local + list(trained_global))})"
            )
        rows = np.arange(m)  # table row r = artifact item r (sample i → i mod m)
        for kind in usable:
            j = CONDITION_KINDS.index(kind)
            keep[:, j] = 1
            if kind in cond.maps:
                maps[:, LOCAL_SLOTS[kind]] = cond.maps[kind][rows]
            else:
                if cond.embeddings[kind].shape[1] != embeddings[kind].shape[1]:
                    raise InputError(
                        f"{request.conditions}: {kind} embeddings have {cond.embeddings[kind].shape[1]} "
                        f"dimensions, the model {embeddings[kind].shape[1]}; use the same backend"
                    )
                embeddings[kind] = cond.embeddings[kind][rows].astype(np.float32)
        if rgb_mode:
            rgb_png = [_read_png_rgb(cond.artifact.file(cond.items[r]["files"]["rgb"])) for r in rows]
        inputs.append(Path(request.conditions))
        described["conditions"] = {
            "path": str(request.conditions),
            "kinds": usable,
            "items": (np.arange(n) % m).tolist(),
        }

    seen = set()
    for spec in request.files:
        kind, path = kind_of(spec, map_kinds)
        if kind in seen:
            raise ConfigError(f"--cond gives {kind} twice; give each kind once")
        seen.add(kind)
        need(kind)
        if kind == "rgb":
            rgb_png = [read_sized_rgb("rgb", path, size, "resize it or pass --size")] * m
        else:
            maps[:, LOCAL_SLOTS[kind]] = read_map(kind, path, size)[None]
            keep[:, CONDITION_KINDS.index(kind)] = 1
        inputs.append(path)
        described["files"][kind] = str(path)

    if request.content is not None:
        need("content")
        path = Path(request.content)
        if not path.is_file():
            raise InputError(f"--content {path}: the file does not exist")
        vector = _embed("content", trained_global["content"], rgb=resize_rgb(read_rgb(path), size))
        embeddings["content"][:] = vector[None]
        keep[:, CONDITION_KINDS.index("content")] = 1
        inputs.append(path)
        described["content"] = str(path)
    if request.text is not None:
        need("text")
        embeddings["text"][:] = _embed("text", trained_global["text"], text=request.text)[None]
        keep[:, CONDITION_KINDS.index("text")] = 1
        described["text"] = request.text

    rgb = None
    if rgb_mode:
        if rgb_png is None:
            raise ConfigError(
                "this HyperLDM model decodes with an RGB image: give --cond rgb=IMAGE (uint8 RGB of the "
                f"sample size {size}×{size}) or a conditions artifact (its rgb/ images)"
            )
        rgb = np.stack([rgb_from_png(im, cfg["rgb"]) for im in rgb_png])
    described["kinds"] = [k for j, k in enumerate(CONDITION_KINDS) if keep[:, j].any()]
    return ResolvedConditions(maps, keep, embeddings, rgb, rgb_png, inputs, described)


def _read_png_rgb(path: Path) -> np.ndarray:
    from ...conditions.sources import read_rgb

    return read_rgb(path)


def rgb_from_png(rgb_hw3_uint8: np.ndarray, rgb_info: dict) -> np.ndarray:
    """Invert the dataset's stretch: a uint8 RGB image → (3, H, W) RGB condition in the AE's
    normalised units (the units ``vq-rgb``'s ``rgb_condition`` takes from the HSI bands)."""
    low = np.asarray(rgb_info["low"], np.float32)
    high = np.asarray(rgb_info["high"], np.float32)
    values = low + (np.asarray(rgb_hw3_uint8, np.float32) / 255.0) * (high - low)
    return np.moveaxis(values, -1, 0).astype(np.float32)
