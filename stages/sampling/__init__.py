"""``sample``: generated HSIs as ``hsi-samples`` artifacts; the writer is shared by all generators."""

from .pipeline import SampleConfig, run
from .writer import FORMATS, write_samples

__all__ = ["FORMATS", "SampleConfig", "run", "write_samples"]
