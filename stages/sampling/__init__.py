"""``sample``: generated HSIs as ``hsi-samples`` artifacts; the writer is shared by all generators."""

from .stage import SampleConfig, run
from ..artifacts.samples import FORMATS, write_samples

__all__ = ["FORMATS", "SampleConfig", "run", "write_samples"]
