"""Reading a ``conditions`` artifact back: the API of the diffusion trainer and sampler.

    from stages.conditions.io import load_conditions
    cond = load_conditions("runs/conditions")
    cond.maps["hed"]          # (N, 1, H, W) float32 in [0, 1]; "seg" is (N, 3, H, W)
    cond.embeddings["text"]   # (N, D) float32
    cond.items[i]             # {"source", "item" (patch index in that source), "split", "text", ...}
    cond.kinds["hed"]         # backend and settings recorded in the manifest

For on-the-fly extraction from an RGB array use ``stages.conditions.extract``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artifacts.store import Artifact, open_artifact
from ..common.errors import ArtifactError


@dataclass
class Conditions:
    maps: dict[str, np.ndarray]
    embeddings: dict[str, np.ndarray]
    items: list[dict]
    index: dict
    kinds: dict[str, dict]
    artifact: Artifact

    def __len__(self) -> int:
        return len(self.items)

    def rows(self, split: str | None = None, source: int | None = None) -> np.ndarray:
        """Indices of the items from one split and/or one source (in artifact order)."""
        keep = [
            i
            for i, item in enumerate(self.items)
            if (split is None or item.get("split") == split) and (source is None or item["source"] == source)
        ]
        return np.asarray(keep, dtype=np.int64)


def _read_png(path: Path, channels: int) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ArtifactError(f"{path} is not a readable PNG; rebuild the conditions artifact")
    if channels == 1:
        return image[None]
    return np.moveaxis(image[..., ::-1], -1, 0)


def load_conditions(path: str | Path | Artifact) -> Conditions:
    artifact = path if isinstance(path, Artifact) else open_artifact(path, "conditions")
    index = json.loads(artifact.file("index.json").read_text())
    items = index["items"]
    maps, embeddings = {}, {}
    for kind, spec in index["kinds"].items():
        if spec["type"] == "map":
            stack = np.empty((len(items), spec["channels"], index["height"], index["width"]), np.float32)
            for n, item in enumerate(items):
                stack[n] = _read_png(artifact.file(item["files"][kind]), spec["channels"]) / np.float32(255.0)
            maps[kind] = stack
        else:
            from safetensors.numpy import load_file

            embeddings[kind] = load_file(str(artifact.file(spec["file"])))["embeddings"]
    return Conditions(maps, embeddings, items, index, artifact.config.get("kinds", {}), artifact)
