"""sha256 of a file, read in chunks (artifact outputs, inputs and the shipped pretrained models)."""

from __future__ import annotations

import hashlib
from pathlib import Path

_HASH_CHUNK = 1 << 22


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()
