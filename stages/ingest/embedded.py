"""The example scenes embedded in the package (what ``make demo`` and the tests run on), and
one function that ingests them the way the tests, benchmarks and demo all do."""

from __future__ import annotations

from pathlib import Path

from .config import IngestConfig
from .stage import run

EXAMPLES_DIR = Path(__file__).parent / "examples"

# The embedded example scenes: source file, options that make it ingestible as-is.
EXAMPLES = {
    "indian-pines": {
        "source": EXAMPLES_DIR / "indian_pines" / "Indian_pines_corrected.mat",
        "wavelengths_file": EXAMPLES_DIR / "indian_pines" / "92AV3C.spc",
        "labels": EXAMPLES_DIR / "indian_pines" / "Indian_pines_gt.mat",
        # The .mat already lacks these water-absorption bands of the 220-band .spc.
        "drop_bands": "104-108,150-163,220",
    },
}


def ingest_example(
    out: Path,
    name: str = "indian-pines",
    *,
    size: int = 32,
    stride: int = 16,
    val_fraction: float = 0.25,
    labels: bool | Path = True,
    source: Path | None = None,
    **run_kwargs,
):
    """Ingest an embedded scene onto the project's 48-band grid (``hsigen ingest --example NAME``).

    ``labels``: True = the scene's ground truth, False = none, a path = that label map.
    ``source`` replaces the scene file (e.g. a derived scene on the same sensor grid, such as
    the second date of a synthetic change pair); ``run_kwargs`` go to ``ingest.run``
    (``pair``, ``change_mask``, ``overwrite``)."""
    from ..spectral import parse_band_ranges, read_wavelengths_file, target_grid

    ex = EXAMPLES[name]
    labels_path = ex["labels"] if labels is True else (labels or None)
    cfg = IngestConfig(
        target_wavelengths_nm=list(target_grid()),
        size=size,
        stride=stride,
        drop_bands=parse_band_ranges(ex["drop_bands"]),
        val_fraction=val_fraction,
        wavelengths_source="sidecar",
        example=name if source is None else None,
    )
    return run(
        [source or ex["source"]],
        Path(out),
        cfg,
        wavelengths=read_wavelengths_file(ex["wavelengths_file"]),
        labels_path=labels_path,
        extra_inputs=[ex["wavelengths_file"]],
        **run_kwargs,
    )
