"""``ingest``: sensor files → ``hsi-dataset`` artifacts."""

from .config import IngestConfig
from .embedded import EXAMPLES, EXAMPLES_DIR, ingest_example
from .stage import patch_origins, run

__all__ = ["EXAMPLES", "EXAMPLES_DIR", "IngestConfig", "ingest_example", "patch_origins", "run"]
