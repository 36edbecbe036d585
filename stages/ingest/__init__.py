"""``ingest``: sensor files → ``hsi-dataset`` artifacts."""

from pathlib import Path

from .config import IngestConfig
from .pipeline import patch_origins, run

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

__all__ = ["EXAMPLES", "EXAMPLES_DIR", "IngestConfig", "patch_origins", "run"]
