"""``ingest``: sensor files → ``hsi-dataset`` artifacts."""

from .config import IngestConfig
from .cube_io import patch_origins
from .embedded import EXAMPLES, EXAMPLES_DIR, ingest_example
from .stage import run

__all__ = ["EXAMPLES", "EXAMPLES_DIR", "IngestConfig", "ingest_example", "patch_origins", "run"]
