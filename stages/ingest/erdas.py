"""ERDAS 7.x ``.GIS`` thematic (class) maps, e.g. the Indian Pines ground truth ``92AV3GT.GIS``.

Layout (ERDAS 7.5 "LAN/GIS" format): a 128-byte header, then the pixels row by row (BIL).
Header fields used here (byte offsets): 0-5 magic ``HEAD74`` (7.4+) or ``HEADER`` (older),
6-7 ``ipack`` (0 = 8-bit, 1 = 4-bit, 2 = 16-bit), 8-9 number of bands, 16-19 columns and
20-23 rows (int32 for HEAD74; float32 for HEADER). The format does not record byte order:
little endian is tried first and big endian when the sizes are implausible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.errors import InputError

HEADER_BYTES = 128


def _dims(header: bytes, endian: str) -> tuple[int, int, int, int]:
    pack, bands = np.frombuffer(header, dtype=f"{endian}i2", count=2, offset=6)
    if header[:6] == b"HEAD74":
        cols, rows = np.frombuffer(header, dtype=f"{endian}i4", count=2, offset=16)
    else:
        cols, rows = np.frombuffer(header, dtype=f"{endian}f4", count=2, offset=16).astype(np.int64)
    return int(pack), int(bands), int(rows), int(cols)


def read_erdas_gis(path: str | Path) -> np.ndarray:
    """The (rows, cols) class map of an ERDAS ``.GIS`` file (one band, 8 or 16 bits)."""
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) < HEADER_BYTES or raw[:6] not in (b"HEAD74", b"HEADER"):
        raise InputError(
            f"{path} is not an ERDAS .GIS file (no HEAD74/HEADER magic); "
            "give the label map as .mat, .npy or GeoTIFF instead"
        )
    header = raw[:HEADER_BYTES]
    endian = "<"
    pack, bands, rows, cols = _dims(header, endian)
    if not (0 < bands < 1024 and 0 < rows < 10**6 and 0 < cols < 10**6):
        endian = ">"
        pack, bands, rows, cols = _dims(header, endian)
    if not (0 < bands < 1024 and 0 < rows < 10**6 and 0 < cols < 10**6):
        raise InputError(f"{path}: the ERDAS header holds implausible sizes; the file is corrupt")
    if bands != 1:
        raise InputError(
            f"{path}: an ERDAS file with {bands} bands is an image, not a class map; give a one-band .GIS label map"
        )
    dtype = {0: np.dtype("u1"), 2: np.dtype(f"{endian}u2")}.get(pack)
    if dtype is None:
        raise InputError(
            f"{path}: ERDAS packing {pack} ({'4-bit' if pack == 1 else 'unknown'}) is not supported; "
            "convert the map to 8 or 16 bits"
        )
    needed = HEADER_BYTES + rows * cols * dtype.itemsize
    if len(raw) < needed:
        raise InputError(
            f"{path} is {len(raw)} bytes but its header implies {needed} "
            f"({rows} x {cols} pixels); the file is truncated"
        )
    return np.frombuffer(raw, dtype=dtype, count=rows * cols, offset=HEADER_BYTES).reshape(rows, cols).copy()
