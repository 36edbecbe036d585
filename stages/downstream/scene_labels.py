"""Given scene labels for ``--task scene-classify``: one class per patch of the real dataset.

Scene-classification sets (MSF-Diff's HSRS-SC: Pan et al., Information Fusion 108 (2024), §5.4)
label whole images, not pixels. A user ingests such images as the dataset's patches and gives
their classes with ``--scene-labels FILE``: ``.npy`` (an integer array, read without pickle) or
``.csv`` / ``.txt`` (one integer per line; a non-numeric first line is a header), in the
dataset's row order, 0 = no label (left out). Each patch is then one scene: the source serves a
constant label mask per patch, so the task's majority-class rule returns the given label, and
synthetic samples keep the rule on their own masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.errors import ConfigError, InputError

SUFFIXES = (".npy", ".csv", ".txt")
FLAG = "--scene-labels"


def read_scene_labels(path: str | Path, patches: int) -> np.ndarray:
    """(patches,) int64 class per patch; one message naming the fix for every bad file."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"{FLAG} {path}: give a .npy array or a .csv/.txt file with one integer per line")
    if not path.is_file():
        raise InputError(f"{FLAG} {path} does not exist; give one class per patch of --real")
    if path.suffix.lower() == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"{FLAG} {path} is not a plain numeric .npy array ({exc})") from None
    else:
        values = _read_text_column(path)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.number) or not np.all(np.mod(values, 1) == 0):
        raise InputError(f"{FLAG} {path}: expected one integer class per patch, got an array of {values.shape}")
    if len(values) != patches:
        raise ConfigError(
            f"{FLAG} {path} has {len(values)} labels but --real has {patches} patches; give one class per "
            "patch, in the dataset's row order (`hsigen inspect DATASET` shows the patch count)"
        )
    if values.min() < 0:
        raise InputError(f"{FLAG} {path}: classes must be 0 (no label) or positive integers")
    return values.astype(np.int64)


def _read_text_column(path: Path) -> np.ndarray:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if lines and not _is_number(lines[0].split(",")[-1]):
        lines = lines[1:]  # header
    try:
        return np.array([float(line.split(",")[-1]) for line in lines])
    except ValueError:
        raise InputError(f"{FLAG} {path}: every line must hold one integer class (or 'row,class')") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
