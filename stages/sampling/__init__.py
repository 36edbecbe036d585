"""``sample``: generated HSIs as ``hsi-samples`` artifacts from any generator (entry: ``stage.run``);
``generate`` makes samples in memory. The writer lives in ``stages/artifacts/samples.py``."""

from ..artifacts.samples import FORMATS, write_samples
from ..diffusion.generator import ConditionRequest
from .generate import SampleConfig, generate
from .stage import run

__all__ = ["FORMATS", "ConditionRequest", "SampleConfig", "generate", "run", "write_samples"]
