"""``evaluate``: the seed papers' metrics for generated HSIs (sPr/sRec, F_p/D_b, SD/SDM,
spectral FID/KID/IS, paired metrics, mSAD), the classic RGB FID when the user has the FID
Inception weights, the pixel classifier the spectral metrics need, and the downstream-task
check. See report.py for the main entry point."""

from .downstream import DownstreamConfig
from .report import ALL_METRICS, EvaluateConfig
from .train import TrainClassifierConfig

__all__ = ["ALL_METRICS", "DownstreamConfig", "EvaluateConfig", "TrainClassifierConfig"]
