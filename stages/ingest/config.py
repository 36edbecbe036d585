"""The fully resolved configuration of one ``ingest`` run (recorded in the manifest)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class IngestConfig:
    target_wavelengths_nm: list[float]
    size: int = 256
    stride: int = 128
    drop_bands: list[int] | None = None  # 1-based, see stages/ingest/stage.py
    extrapolate: str = "error"  # error | edge
    var: str | None = None  # .mat variable
    labels_var: str | None = None  # .mat variable of the label map
    wavelengths_source: str = "file"  # file | sidecar | grid
    max_nodata_fraction: float = 0.5  # patches with more nodata pixels are dropped
    val_fraction: float = 0.0  # spatial split: the bottom rows become validation
    block_rows: int = 256  # rows per streamed block
    example: str | None = None

    def to_json(self) -> dict:
        return asdict(self)
