"""``sample``: generated HSIs as ``hsi-samples`` artifacts from any generator (entry: ``stage.run``);
``generate`` makes samples in memory. The writer lives in ``stages/artifacts/samples.py``."""

from ..artifacts.samples import FORMATS, write_samples
from ..diffusion.generator import ConditionRequest
from .generation import SampleConfig, generate
from .stage import NO_MANIFOLD, merge, run

__all__ = ["FORMATS", "NO_MANIFOLD", "ConditionRequest", "SampleConfig", "generate", "merge", "run", "write_samples"]
